//! The custom-resource framework's guarantees, each proven through the local Lambda harness with the
//! real `cfn-probe` binary (a provider whose behaviour is chosen by its properties).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::cfn::request::FAILED_CREATE_PREFIX;
use testbed::bins;
use testbed::cfn::request;
use testbed::harness::{CfnPut, Config, Harness, Invoked};
use testbed::moto::Moto;

const TYPE: &str = "Custom::Probe";

/// The probe with a function timeout of `timeout`; its AWS calls go to the harness's recorder.
async fn probe(timeout: Duration) -> Harness {
    let config = Config::new(bins::path("cfn-probe"), "cfn-probe")
        .timeout(timeout)
        .env("AWS_ENDPOINT_URL", "{harness}");
    Harness::start(config).await
}

/// The probe named `name` with the key that seals its continuations: an HMAC key in `moto`, as the
/// template's `ContinuationKey` (its other AWS calls are only recorded).
async fn sealed_probe(timeout: Duration, name: &str, moto: &Moto) -> Harness {
    let (_, key) = moto.hmac_key("HMAC_256").await;
    sealed_probe_with(timeout, name, moto, &key).await
}

async fn sealed_probe_with(timeout: Duration, name: &str, moto: &Moto, key: &str) -> Harness {
    let config = Config::new(bins::path("cfn-probe"), name)
        .timeout(timeout)
        .env("AWS_ENDPOINT_URL", "{harness}")
        .env(shared::cfn::seal::KEY_SETTING, key)
        .forward("kms", &moto.endpoint);
    Harness::start(config).await
}

/// Sends `kind` asynchronously, as CloudFormation does, and returns every accepted response.
async fn send(
    h: &Harness,
    key: &str,
    kind: &str,
    props: Value,
    physical: Option<&str>,
) -> Vec<CfnPut> {
    let event = request(
        kind,
        &h.response_url(key),
        TYPE,
        "Probe",
        props,
        physical,
        None,
    );
    h.invoke_async(&event);
    h.wait_for_response(key, Duration::from_secs(30)).await
}

fn only(responses: &[CfnPut]) -> &Value {
    assert_eq!(responses.len(), 1, "exactly one response: {responses:#?}");
    &responses[0].body
}

#[tokio::test]
async fn a_provider_panic_still_produces_one_failed_response() {
    let h = probe(Duration::from_secs(10)).await;
    let r = send(&h, "panic", "Create", json!({"Mode": "panic"}), None).await;
    let body = only(&r);
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("panicked as asked"),
        "{body}"
    );
    // The process survived: the next request is served by the same sandbox.
    let r = send(&h, "after", "Create", json!({"Mode": "ok"}), None).await;
    assert_eq!(only(&r)["Status"], "SUCCESS");
    assert_eq!(
        h.init_times().len(),
        1,
        "the function process was restarted"
    );
    assert!(
        h.invocations()
            .iter()
            .all(|i| matches!(i.outcome, Invoked::Response(_)))
    );
}

#[tokio::test]
async fn a_three_second_deadline_still_gets_a_response_in_time() {
    let h = probe(Duration::from_secs(3)).await;
    let started = Instant::now();
    let r = send(
        &h,
        "slow",
        "Create",
        json!({"Mode": "sleep", "Seconds": "10"}),
        None,
    )
    .await;
    let body = only(&r);
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().contains("timeout"),
        "{body}"
    );
    let took = r[0].at - started;
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    let inv = h.invocations();
    assert_eq!(inv.len(), 1);
    assert!(
        matches!(inv[0].outcome, Invoked::Response(_)),
        "{:?}",
        inv[0].outcome
    );
}

#[tokio::test]
async fn failed_puts_are_retried_until_one_lands() {
    let h = probe(Duration::from_secs(10)).await;
    h.fail_next_puts(3);
    let r = send(&h, "flaky", "Create", json!({"Mode": "ok"}), None).await;
    assert_eq!(only(&r)["Status"], "SUCCESS");
    let all = h.puts("flaky");
    assert_eq!(all.len(), 4, "3 rejected PUTs then the 4th: {all:#?}");
    assert_eq!(all.iter().filter(|p| p.rejected).count(), 3);
    assert!(
        all.iter().all(|p| p.content_type.as_deref() == Some("")),
        "empty Content-Type"
    );
}

#[tokio::test]
async fn oversize_data_fails_with_an_explanation() {
    let h = probe(Duration::from_secs(10)).await;
    let r = send(
        &h,
        "big",
        "Create",
        json!({"Mode": "big", "Bytes": "5000"}),
        None,
    )
    .await;
    let body = only(&r);
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().contains("at most 4096"),
        "{body}"
    );
    assert!(serde_json::to_vec(body).unwrap().len() <= 4096);
    // The resource was made: its id is kept so that CloudFormation's Delete can clean it up.
    assert_eq!(body["PhysicalResourceId"], "probe-Probe");
}

#[tokio::test]
async fn delete_after_a_failed_create_succeeds_without_any_aws_call() {
    let h = probe(Duration::from_secs(10)).await;
    let r = send(&h, "create", "Create", json!({"Mode": "fail"}), None).await;
    let body = only(&r);
    assert_eq!(body["Status"], "FAILED");
    let marker = body["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(marker.starts_with(FAILED_CREATE_PREFIX), "{marker}");
    assert!(marker.ends_with(body["RequestId"].as_str().unwrap()));

    let r = send(
        &h,
        "delete",
        "Delete",
        json!({"Mode": "ok", "CallAws": "true"}),
        Some(&marker),
    )
    .await;
    let body = only(&r);
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["PhysicalResourceId"], marker);
    assert!(h.aws_calls().is_empty(), "{:?}", h.aws_calls());

    // Control: the same Delete of a real resource does reach AWS.
    send(
        &h,
        "delete-real",
        "Delete",
        json!({"Mode": "ok", "CallAws": "true"}),
        Some("probe-Probe"),
    )
    .await;
    assert!(
        h.aws_calls()
            .iter()
            .any(|c| c.contains("GetCallerIdentity")),
        "{:?}",
        h.aws_calls()
    );
}

#[tokio::test]
async fn a_failed_update_keeps_the_physical_id() {
    let h = probe(Duration::from_secs(10)).await;
    let r = send(
        &h,
        "update",
        "Update",
        json!({"Mode": "fail"}),
        Some("probe-existing"),
    )
    .await;
    let body = only(&r);
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], "probe-existing");
}

#[tokio::test]
async fn a_long_operation_continues_across_two_reinvocations_with_one_response() {
    let moto = Moto::start().await;
    let h = sealed_probe(Duration::from_secs(3), "cfn-probe", &moto).await;
    let props = json!({"Mode": "long", "Seconds": "1", "Polls": "5"});
    let r = send(&h, "long", "Create", props, None).await;
    h.idle(Duration::from_millis(300)).await;
    let body = only(&r);
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["Data"]["Polls"], "5");
    assert_eq!(body["Data"]["Attempt"], "3");
    assert_eq!(h.invoke_api_calls(), 2, "two self-re-invocations");
    let inv = h.invocations();
    assert_eq!(inv.len(), 3);
    assert!(
        inv.iter()
            .all(|i| matches!(i.outcome, Invoked::Response(_)) && i.asynchronous)
    );
    assert!(inv[1].payload.get("SecureMlopsContinuation").is_some());
}

/// A wait longer than a whole invocation's budget (3 s timeout, 3 s between polls): each continuation
/// still polls once instead of handing the same wait over again and again.
#[tokio::test]
async fn a_wait_longer_than_an_invocation_still_makes_progress() {
    let moto = Moto::start().await;
    let h = sealed_probe(Duration::from_secs(3), "cfn-probe", &moto).await;
    let props = json!({"Mode": "long", "Seconds": "3", "Polls": "2", "ServiceTimeout": "60"});
    let r = send(&h, "slow-polls", "Create", props, None).await;
    let body = only(&r);
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["Data"]["Polls"], "2");
    assert_eq!(body["Data"]["Attempt"], "3", "one poll per continuation");
}

/// Rules across properties are the framework's to apply (`props::Validate`), on Create and Update,
/// before the provider runs: FAILED naming the property, and no AWS call.
#[tokio::test]
async fn cross_field_rules_fail_before_the_provider_runs() {
    let h = probe(Duration::from_secs(3)).await;
    for (key, kind, physical) in [
        ("v-create", "Create", None),
        ("v-update", "Update", Some("probe-x")),
    ] {
        let props = json!({"Mode": "long", "Polls": "0", "CallAws": "true"});
        let body = only(&send(&h, key, kind, props, physical).await).clone();
        assert_eq!(body["Status"], "FAILED", "{body}");
        assert!(
            body["Reason"]
                .as_str()
                .unwrap()
                .starts_with("Polls: a long operation"),
            "{body}"
        );
    }
    assert!(h.aws_calls().is_empty(), "{:?}", h.aws_calls());
}

#[tokio::test]
async fn the_overall_deadline_ends_a_long_operation_with_failed() {
    let moto = Moto::start().await;
    let h = sealed_probe(Duration::from_secs(3), "cfn-probe", &moto).await;
    let started = Instant::now();
    let props = json!({"Mode": "long", "Seconds": "1", "Polls": "1000", "ServiceTimeout": "5"});
    let r = send(&h, "forever", "Create", props, None).await;
    let body = only(&r);
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains("ServiceTimeout 5 s") && reason.contains("still in progress"),
        "{reason}"
    );
    assert!(r[0].at - started < Duration::from_secs(5));
    assert!(h.invoke_api_calls() >= 1, "it used a continuation first");
}

#[tokio::test]
async fn logs_are_json_with_request_context_and_no_secrets() {
    let h = probe(Duration::from_secs(10)).await;
    let ok = send(
        &h,
        "secret",
        "Create",
        json!({"Mode": "ok", "Secret": "true"}),
        None,
    )
    .await;
    let body = only(&ok);
    assert_eq!(body["NoEcho"], true);
    assert_eq!(body["Data"]["Secret"], "hunter2-do-not-log");
    send(&h, "fails", "Create", json!({"Mode": "fail"}), None).await;
    let logs = h.logs();
    assert!(!logs.is_empty());
    for line in &logs {
        assert!(
            !line.contains("/cfn/") && !line.contains("X-Amz-Signature"),
            "ResponseURL logged: {line}"
        );
        assert!(!line.contains("hunter2"), "NoEcho data logged: {line}");
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    let request_id = body["RequestId"].as_str().unwrap();
    let outcome = logs
        .iter()
        .find(|l| l.contains("responded to CloudFormation") && l.contains(request_id))
        .expect("an outcome line carrying the RequestId");
    assert!(
        outcome.contains("\"logical_resource_id\":\"Probe\"")
            && outcome.contains("\"status\":\"SUCCESS\""),
        "{outcome}"
    );
}

#[tokio::test]
async fn malformed_requests_are_answered_or_rejected_clearly() {
    let h = probe(Duration::from_secs(10)).await;
    // A request CloudFormation could have sent, missing a field: answered FAILED.
    let mut event = request(
        "Create",
        &h.response_url("bad"),
        TYPE,
        "Probe",
        json!({"Mode": "ok"}),
        None,
        None,
    );
    event["RequestType"] = json!("Destroy");
    h.invoke_async(&event);
    let r = h.wait_for_response("bad", Duration::from_secs(10)).await;
    let body = only(&r);
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().contains("RequestType"),
        "{body}"
    );
    // Not a request at all: an error for Lambda's retry/DLQ, no crash.
    match h.invoke(&json!({"hello": "world"})).await {
        Invoked::Error(e) => assert!(
            e.to_string()
                .contains("neither a CloudFormation custom-resource request"),
            "{e}"
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    // Unknown property: FAILED naming it.
    let r = send(
        &h,
        "typo",
        "Create",
        json!({"Mode": "ok", "Mood": "x"}),
        None,
    )
    .await;
    let reason = only(&r)["Reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("unknown field `Mood`"), "{reason}");
}

/// The Lambda error of an invocation the framework refused.
fn refusal(outcome: Invoked) -> String {
    match outcome {
        Invoked::Error(e) => e.to_string(),
        other => panic!("expected the request to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn forged_requests_are_refused_before_any_aws_call_or_put() {
    let h = probe(Duration::from_secs(10)).await;
    let forge = |key: &str, edit: &dyn Fn(&mut Value)| {
        let mut event = request(
            "Delete",
            &h.response_url(key),
            TYPE,
            "Probe",
            json!({"Mode": "ok", "CallAws": "true"}),
            Some("someone-elses-resource"),
            None,
        );
        edit(&mut event);
        event
    };
    // A stack of another account, of another region, or no stack at all.
    let other_account = forge("acct", &|e| {
        e["StackId"] = json!("arn:aws:cloudformation:us-east-1:999999999999:stack/x/1")
    });
    let reason = refusal(h.invoke(&other_account).await);
    assert!(reason.contains("account 999999999999"), "{reason}");
    let other_region = forge("region", &|e| {
        e["StackId"] = json!("arn:aws:cloudformation:eu-west-1:123456789012:stack/x/1")
    });
    let reason = refusal(h.invoke(&other_region).await);
    assert!(reason.contains("region eu-west-1"), "{reason}");
    // A ResponseURL that is not CloudFormation's: the host is named, never the URL.
    let foreign = forge("host", &|e| {
        e["ResponseURL"] =
            json!("https://collector.example.com/cfn/host?X-Amz-Signature=forged-secret")
    });
    let reason = refusal(h.invoke(&foreign).await);
    assert!(reason.contains("host collector.example.com"), "{reason}");
    // A continuation is the original request plus state: it passes the same check (before its seal
    // is even looked at, so a foreign one costs no KMS call).
    let body = json!({"Request": other_account, "State": {"PollsLeft": 0}, "Attempt": 2, "StartedAtMs": 0});
    let continued = json!({"SecureMlopsContinuation": {"Body": body.to_string(), "Mac": "00"}});
    let reason = refusal(h.invoke(&continued).await);
    assert!(reason.contains("account 999999999999"), "{reason}");
    // A malformed request is answered FAILED only when it is authentic.
    let mut malformed = forge("malformed", &|e| {
        e["StackId"] = json!("arn:aws:cloudformation:us-east-1:999999999999:stack/x/1")
    });
    malformed["RequestType"] = json!("Destroy");
    refusal(h.invoke(&malformed).await);

    assert!(h.aws_calls().is_empty(), "AWS calls: {:?}", h.aws_calls());
    for key in ["acct", "region", "host", "malformed"] {
        assert!(
            h.puts(key).is_empty(),
            "a refused request got a PUT ({key})"
        );
    }
    let logs = h.logs();
    let refused = logs
        .iter()
        .filter(|l| l.contains("request refused"))
        .count();
    assert!(refused >= 5, "a log line per refusal: {logs:#?}");
    for line in &logs {
        assert!(
            !line.contains("X-Amz-Signature") && !line.contains("/cfn/"),
            "ResponseURL logged: {line}"
        );
    }
    // The same function still serves an authentic request.
    let r = send(&h, "real", "Create", json!({"Mode": "ok"}), None).await;
    assert_eq!(only(&r)["Status"], "SUCCESS");
}

/// The state a continuation carries is acted on only when this function sealed it (an HMAC of a KMS
/// key only its role may use): anyone else allowed to invoke the function can send a continuation,
/// but not one it accepts. Each refusal: a Lambda error naming the reason, no provider call, no PUT.
#[tokio::test]
async fn continuations_are_accepted_only_with_this_functions_seal() {
    let moto = Moto::start().await;
    let (_, key) = moto.hmac_key("HMAC_256").await;
    let h = sealed_probe_with(Duration::from_secs(3), "cfn-probe", &moto, &key).await;
    // A genuine long operation: its continuations are sealed, verified and accepted.
    let props = json!({"Mode": "long", "Seconds": "1", "Polls": "5"});
    let r = send(&h, "genuine", "Create", props, None).await;
    h.idle(Duration::from_millis(300)).await;
    assert_eq!(only(&r)["Status"], "SUCCESS");
    let genuine = h
        .invocations()
        .into_iter()
        .find_map(|i| i.payload.get("SecureMlopsContinuation").cloned())
        .expect("a continuation");
    let calls = h.aws_calls();
    for op in ["TrentService.GenerateMac", "TrentService.VerifyMac"] {
        assert!(calls.iter().any(|c| c.ends_with(op)), "{op}: {calls:#?}");
    }
    let body: Value = serde_json::from_str(genuine["Body"].as_str().unwrap()).unwrap();
    let refused = |outcome: Invoked, what: &str| {
        let reason = refusal(outcome);
        assert!(reason.contains("continuation refused"), "{what}: {reason}");
        reason
    };

    // Its state changed (and its answer sent elsewhere), the genuine seal kept.
    let mut edited = body.clone();
    edited["State"]["physical_id"] = json!("someone-elses-resource");
    edited["State"]["remaining"] = json!(1);
    edited["Request"]["ResponseURL"] = json!(h.response_url("edited"));
    let forged =
        json!({"SecureMlopsContinuation": {"Body": edited.to_string(), "Mac": genuine["Mac"]}});
    let reason = refused(h.invoke(&forged).await, "edited");
    assert!(reason.contains("does not verify"), "{reason}");
    // A seal of the sender's own making.
    let mut own = body.clone();
    own["Request"]["ResponseURL"] = json!(h.response_url("own-mac"));
    let forged =
        json!({"SecureMlopsContinuation": {"Body": own.to_string(), "Mac": "ab".repeat(32)}});
    refused(h.invoke(&forged).await, "own mac");
    // Not hex at all.
    let forged = json!({"SecureMlopsContinuation": {"Body": own.to_string(), "Mac": "forged"}});
    let reason = refused(h.invoke(&forged).await, "not hex");
    assert!(reason.contains("not a hex MAC"), "{reason}");
    // The unsealed form (the continuation itself, no Body or Mac): malformed.
    let unsealed = json!({"SecureMlopsContinuation": own});
    let reason = refusal(h.invoke(&unsealed).await);
    assert!(reason.contains("malformed continuation"), "{reason}");
    for key in ["edited", "own-mac"] {
        assert!(
            h.puts(key).is_empty(),
            "{key}: a refused continuation got a PUT"
        );
    }

    // The genuine continuation, untouched, sent to another function with the same key: it is not
    // that function's (the seal covers the function's name) ...
    let other = sealed_probe_with(Duration::from_secs(3), "cfn-probe-other", &moto, &key).await;
    let copied = json!({"SecureMlopsContinuation": genuine});
    let reason = refused(other.invoke(&copied).await, "other function");
    assert!(reason.contains("does not verify"), "{reason}");
    // ... nor of a function without the key, which accepts none.
    let keyless = probe(Duration::from_secs(3)).await;
    let reason = refused(keyless.invoke(&copied).await, "no key");
    assert!(
        reason.contains("CONTINUATION_KEY_ARN is not set"),
        "{reason}"
    );
    assert!(keyless.aws_calls().is_empty(), "{:?}", keyless.aws_calls());
    // The genuine operation got its one answer and no other.
    assert_eq!(h.puts("genuine").len(), 1);
}

/// Without the key a function cannot seal a continuation: a long operation that outlives its
/// invocation fails, naming the setting, instead of handing over an unsealed state.
#[tokio::test]
async fn without_the_seal_key_a_long_operation_fails_naming_the_setting() {
    let h = probe(Duration::from_secs(3)).await;
    let props = json!({"Mode": "long", "Seconds": "1", "Polls": "5"});
    let r = send(&h, "unsealed", "Create", props, None).await;
    let body = only(&r);
    assert_eq!(body["Status"], "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains("could not be continued")
            && reason.contains("CONTINUATION_KEY_ARN is not set"),
        "{reason}"
    );
    assert_eq!(h.invoke_api_calls(), 0, "nothing handed over");
}

#[tokio::test]
async fn a_loopback_response_url_needs_the_test_only_setting() {
    let config = Config::new(bins::path("cfn-probe"), "cfn-probe")
        .env("AWS_ENDPOINT_URL", "{harness}")
        .env(shared::cfn::origin::LOOPBACK_SETTING, "");
    let h = Harness::start(config).await;
    let event = request(
        "Create",
        &h.response_url("local"),
        TYPE,
        "Probe",
        json!({"Mode": "ok"}),
        None,
        None,
    );
    let reason = refusal(h.invoke(&event).await);
    assert!(reason.contains("host 127.0.0.1"), "{reason}");
    assert!(h.puts("local").is_empty());
}

#[tokio::test]
async fn trace_logging_never_prints_the_raw_event() {
    let config = Config::new(bins::path("cfn-probe"), "cfn-probe")
        .env("AWS_ENDPOINT_URL", "{harness}")
        .env("AWS_LAMBDA_LOG_LEVEL", "TRACE")
        .env(
            "RUST_LOG",
            "trace,lambda_runtime=trace,lambda_runtime::layers=trace",
        );
    let h = Harness::start(config).await;
    let r = send(&h, "traced", "Create", json!({"Mode": "ok"}), None).await;
    assert_eq!(only(&r)["Status"], "SUCCESS");
    let logs = h.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("\"level\":\"TRACE\"") || l.contains("\"level\":\"DEBUG\"")),
        "TRACE/DEBUG logging is on for everything else: {logs:#?}"
    );
    for line in &logs {
        assert!(
            !line.contains("X-Amz-Signature") && !line.contains("/cfn/"),
            "ResponseURL logged at TRACE: {line}"
        );
    }
}
