//! `detective-control` through the harness: the real binary, SageMaker from the twin, SNS / SQS / KMS /
//! DynamoDB / Security Hub from moto, and CloudTrail events routed by the template's own rule.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, DirectInternetAccess, InstanceType, OutputDataConfig, ResourceConfig,
    RootAccess, StoppingCondition, TrainingInputMode, TrainingInstanceType, VpcConfig,
};
use serde_json::{Value, json};
use testbed::events::Router;
use testbed::fixture::Fixture;
use testbed::harness::{Config, Harness, Invoked};
use testbed::stack::Stack;
use testbed::twin::Fault;

const FUNCTION: &str = "secure-mlops-detective-control";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(repo(&format!("events/detective-control/{name}.json")))
        .expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

struct Bed {
    control: Harness,
    sm: Client,
    router: Router,
    fx: Fixture,
}

async fn bed(mode: &str) -> Bed {
    bed_with(mode, |c| c).await
}

/// The bed, with the function's harness configuration adjusted by `adjust`.
async fn bed_with(mode: &str, adjust: impl FnOnce(Config) -> Config) -> Bed {
    let stack = Stack::project()
        .parameter("DetectiveControlMode", mode)
        .parameter("SecurityHubFindings", "true");
    let fx = Fixture::with(stack).await;
    fx.twin.set_duration("job", 120.0);
    let router = fx.router().await;
    let control = Harness::start(adjust(fx.function("DetectiveControlFunction"))).await;
    Bed {
        control,
        sm: fx.sagemaker(),
        router,
        fx,
    }
}

impl Bed {
    /// The CloudTrail events the template's rule delivered to the function since the last call.
    async fn delivered(&self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        for _ in 0..50 {
            out.extend(self.router.received(FUNCTION).await);
            if out.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        out
    }

    async fn invoke(&self, event: &Value) -> Value {
        match self.control.invoke(event).await {
            Invoked::Response(v) => v,
            other => panic!("{other:?}\nlogs: {:#?}", self.control.logs()),
        }
    }

    async fn training_job(&self, name: &str, secure: bool) {
        let kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let mut req = self
            .sm
            .create_training_job()
            .training_job_name(name)
            .role_arn("arn:aws:iam::123456789012:role/SageMakerExecution")
            .algorithm_specification(
                AlgorithmSpecification::builder()
                    .training_image("683313688378.dkr.ecr.us-east-1.amazonaws.com/xgboost:1.7-1")
                    .training_input_mode(TrainingInputMode::File)
                    .build(),
            )
            .stopping_condition(
                StoppingCondition::builder()
                    .max_runtime_in_seconds(3600)
                    .build(),
            );
        let mut resources = ResourceConfig::builder()
            .instance_type(TrainingInstanceType::MlM5Xlarge)
            .instance_count(2)
            .volume_size_in_gb(30);
        let mut output = OutputDataConfig::builder().s3_output_path("s3://models/out");
        if secure {
            req = req
                .vpc_config(
                    VpcConfig::builder()
                        .subnets("subnet-0a1b2c3d")
                        .security_group_ids("sg-0a1b2c3d")
                        .build(),
                )
                .enable_network_isolation(true)
                .enable_inter_container_traffic_encryption(true);
            resources = resources.volume_kms_key_id(kms);
            output = output.kms_key_id(kms);
        }
        req.resource_config(resources.build())
            .output_data_config(output.build())
            .send()
            .await
            .unwrap();
    }

    fn status(&self, name: &str) -> String {
        self.fx
            .twin
            .lock()
            .sm
            .jobs
            .get(&("TrainingJob", name.to_owned()))
            .map(|r| r.status.clone())
            .unwrap_or_default()
    }

    /// Waits (up to 20 s) until the twin's notebook `name` is in `status`.
    async fn notebook_reaches(&self, name: &str, status: &str) {
        for _ in 0..400 {
            let now = self
                .sm
                .describe_notebook_instance()
                .notebook_instance_name(name)
                .send()
                .await
                .ok()
                .and_then(|d| d.notebook_instance_status().map(|s| s.as_str().to_owned()));
            if now.as_deref() == Some(status) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("notebook {name} never reached {status}");
    }

    fn count(&self, operation: &str) -> usize {
        self.fx
            .twin
            .operations()
            .iter()
            .filter(|o| o.as_str() == operation)
            .count()
    }
}

#[tokio::test]
async fn a_training_job_without_vpc_is_stopped_and_the_security_team_alerted() {
    let bed = bed("enforce").await;
    bed.training_job("churn-train", false).await;
    let events = bed.delivered(1).await;
    assert_eq!(
        events.len(),
        1,
        "the template's rule delivers the CloudTrail record"
    );
    let response = bed.invoke(&events[0]).await;
    assert_eq!(response["findings"][0]["action"], "stop", "{response}");
    assert_eq!(response["findings"][0]["result"], "done");
    assert!(matches!(
        bed.status("churn-train").as_str(),
        "Stopping" | "Stopped"
    ));

    let alerts = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    // SNS allows 100 characters: the check list is cut, never the account and region.
    assert_eq!(
        alert.subject,
        "SageMaker training job stopped: churn-train [vpc, network-isolation, int... (123456789012 us-east-1)"
    );
    let b = &alert.body;
    assert_eq!(b["account"], "123456789012");
    assert_eq!(b["region"], "us-east-1");
    assert_eq!(b["resourceType"], "training job");
    assert_eq!(b["resourceName"], "churn-train");
    assert_eq!(
        b["resourceArn"],
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-train"
    );
    assert_eq!(b["eventName"], "CreateTrainingJob");
    assert_eq!(b["eventId"], events[0]["detail"]["eventID"]);
    assert_eq!(b["eventTime"], events[0]["detail"]["eventTime"]);
    assert_eq!(
        b["principal"],
        "arn:aws:sts::123456789012:assumed-role/DataScientist/data-scientist"
    );
    assert_eq!(b["sourceIp"], "198.51.100.7");
    assert_eq!(b["trigger"], "event");
    assert_eq!(b["mode"], "enforce");
    assert_eq!(b["action"], "stop");
    assert_eq!(b["result"], "done");
    let checks: Vec<&str> = b["failedChecks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "vpc",
            "network-isolation",
            "inter-container-encryption",
            "volume-kms",
            "output-kms"
        ]
    );

    // Security Hub: one finding per failed check, archived because the job no longer runs.
    let findings = bed.fx.inbox.findings().await;
    assert_eq!(findings.len(), 5, "{findings:?}");
    assert!(findings.iter().all(|(id, state, status)| id.starts_with(
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-train/secure-mlops/"
    ) && state == "ARCHIVED"
        && status == "FAILED"));

    // The same event again: no second stop, no second alert, no new finding.
    let again = bed.invoke(&events[0]).await;
    assert_eq!(again["duplicate"], events[0]["detail"]["eventID"]);
    assert_eq!(bed.count("StopTrainingJob"), 1);
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(300))
            .await
            .is_empty()
    );
    assert_eq!(bed.fx.inbox.findings().await.len(), 5);

    // A compliant job: untouched, no alert, and no AWS call at all.
    let before = bed.fx.twin.calls().len();
    bed.training_job("churn-train-secure", true).await;
    let events = bed.delivered(1).await;
    let response = bed.invoke(&events[0]).await;
    assert_eq!(
        response["compliant"],
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-train-secure"
    );
    assert_eq!(
        bed.fx.twin.calls().len(),
        before + 1,
        "only the test's own CreateTrainingJob"
    );
    assert_eq!(bed.status("churn-train-secure"), "InProgress");
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(300))
            .await
            .is_empty()
    );

    // A call that failed created nothing: skipped.
    let _ = bed
        .sm
        .create_training_job()
        .training_job_name("churn-train")
        .send()
        .await;
    let events = bed.delivered(1).await;
    assert!(events[0]["detail"]["errorCode"].is_string());
    assert!(bed.invoke(&events[0]).await["skipped"].is_string());
    // The finding is a metric (CloudWatch EMF in the logs): action and result as its outcome.
    let findings = bed.control.metric("Findings", "stop-done");
    assert_eq!(findings.len(), 1, "{:#?}", bed.control.metrics());
    assert!(findings[0]["Checks"].as_str().unwrap().contains("vpc"));
    assert_eq!(findings[0]["Trigger"], "event");
}

#[tokio::test]
async fn alert_mode_stops_nothing() {
    let bed = bed("alert").await;
    bed.training_job("exploration", false).await;
    let events = bed.delivered(1).await;
    let response = bed.invoke(&events[0]).await;
    assert_eq!(response["findings"][0]["result"], "not-taken", "{response}");
    assert_eq!(bed.count("StopTrainingJob"), 0);
    assert_eq!(bed.status("exploration"), "InProgress");
    let alerts = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].body["mode"], "alert");
    assert_eq!(alerts[0].body["action"], "none");
    assert!(
        alerts[0]
            .subject
            .starts_with("SageMaker training job not compliant: exploration")
    );
    let findings = bed.fx.inbox.findings().await;
    assert!(
        findings.iter().all(|(_, state, _)| state == "ACTIVE"),
        "{findings:?}"
    );
}

#[tokio::test]
async fn a_failed_stop_still_alerts_with_the_failure() {
    let bed = bed("enforce").await;
    bed.training_job("stubborn", false).await;
    let events = bed.delivered(1).await;
    bed.fx.twin.inject("StopTrainingJob", Fault::Server, 10);
    let response = bed.invoke(&events[0]).await;
    assert_eq!(response["findings"][0]["result"], "failed", "{response}");
    let alerts = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    assert!(
        alerts[0]
            .subject
            .starts_with("SageMaker training job STOP FAILED: stubborn"),
        "{}",
        alerts[0].subject
    );
    assert!(
        alerts[0].body["detail"]
            .as_str()
            .unwrap()
            .contains("InternalFailure"),
        "{}",
        alerts[0].body
    );
    assert_eq!(bed.status("stubborn"), "InProgress");
}

/// The process dies between the stop and the alert (the harness kills it at SNS Publish): the event's
/// record stays "in progress" only `IN_PROGRESS_SECONDS`, so Lambda's retry acts and alerts — exactly
/// once — instead of finding the event "handled" and staying silent for a day.
#[tokio::test]
async fn a_crash_between_action_and_alert_is_retried_and_alerted_once() {
    let bed = bed_with("enforce", |mut c| {
        c.retry_delay = Duration::from_millis(1500);
        c.crash_on("Publish", 1).env("IN_PROGRESS_SECONDS", "1")
    })
    .await;
    bed.training_job("crashy", false).await;
    let events = bed.delivered(1).await;
    bed.control.invoke_async(&events[0]);
    let alerts = bed.fx.inbox.alerts(1, Duration::from_secs(15)).await;
    assert_eq!(alerts.len(), 1);
    // The retry stops again; SageMaker answers that the first stop is under way.
    assert!(
        alerts[0].subject.contains(": crashy [") && alerts[0].body["action"] == "stop",
        "{} {}",
        alerts[0].subject,
        alerts[0].body
    );
    bed.control.idle(Duration::from_millis(500)).await;
    let outcomes: Vec<Invoked> = bed
        .control
        .invocations()
        .into_iter()
        .map(|i| i.outcome)
        .collect();
    // The crash; retries that came while the record was still in progress (DynamoDB TTLs count in
    // whole seconds) fail and are retried; the last one acts and alerts.
    assert_eq!(outcomes[0], Invoked::Crash, "{outcomes:?}");
    let (last, middle) = outcomes[1..].split_last().expect("a retry");
    assert!(
        matches!(last, Invoked::Response(r) if r["findings"][0]["action"] == "stop"),
        "{outcomes:?}"
    );
    assert!(
        middle.iter().all(|o| matches!(o, Invoked::Error(e)
            if e["errorMessage"].as_str().unwrap_or_default().contains("being handled by another invocation"))),
        "{outcomes:?}"
    );
    assert!(matches!(
        bed.status("crashy").as_str(),
        "Stopping" | "Stopped"
    ));
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(500))
            .await
            .is_empty(),
        "exactly one alert"
    );
}

/// A stop refused with AccessDenied: the event alerts the failure; each sweep tries again while the
/// job runs, without alerting the same failure again; once the stop works, one alert says so; after
/// that the stopped job is left alone.
#[tokio::test]
async fn a_refused_stop_is_retried_by_each_sweep_with_one_alert_per_state() {
    let bed = bed("enforce").await;
    bed.training_job("denied", false).await;
    let events = bed.delivered(1).await;
    bed.fx
        .twin
        .inject("StopTrainingJob", Fault::AccessDenied, 3);
    let response = bed.invoke(&events[0]).await;
    assert_eq!(response["findings"][0]["result"], "failed", "{response}");
    let alerts = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    assert!(
        alerts[0].body["detail"]
            .as_str()
            .unwrap()
            .contains("AccessDeniedException")
    );

    let mut sweep = fixture("scheduled-sweep");
    sweep["time"] = json!(now_rfc3339());
    for _ in 0..2 {
        let response = bed.invoke(&sweep).await;
        assert_eq!(response["findings"], json!([]), "{response}");
    }
    assert_eq!(bed.count("StopTrainingJob"), 3, "each sweep tried again");
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(300))
            .await
            .is_empty(),
        "the same failure is not alerted again"
    );
    // The permission is fixed (no more faults): the next sweep stops it and says so, once.
    let response = bed.invoke(&sweep).await;
    assert_eq!(response["findings"][0]["result"], "done", "{response}");
    let alerts = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    assert!(
        alerts[0]
            .subject
            .starts_with("SageMaker training job stopped: denied")
    );
    assert_eq!(bed.count("StopTrainingJob"), 4);
    let response = bed.invoke(&sweep).await;
    assert_eq!(response["findings"], json!([]), "{response}");
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(300))
            .await
            .is_empty()
    );
}

/// A model created three days ago, before anything listened: the hourly sweep (new resources only)
/// does not see it, the daily full sweep does — and a sweep that runs out of time goes on in a new
/// invocation until every candidate is handled (here: a reserve longer than the invocation, so each
/// invocation handles one candidate and hands on the rest).
#[tokio::test]
async fn the_full_sweep_finds_old_models_and_continues_when_out_of_time() {
    let bed = bed_with("enforce", |c| {
        c.timeout(Duration::from_secs(5))
            .env("SWEEP_RESERVE_SECONDS", "10")
    })
    .await;
    for name in ["old-model-a", "old-model-b"] {
        bed.sm
            .create_model()
            .model_name(name)
            .execution_role_arn("arn:aws:iam::123456789012:role/SageMakerExecution")
            .primary_container(
                aws_sdk_sagemaker::types::ContainerDefinition::builder()
                    .image("123.dkr.ecr/xgb:1")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        bed.fx.twin.lock().sm.models.get_mut(name).unwrap().created -= 3.0 * 86_400.0;
    }
    bed.delivered(2).await; // their events were missed
    let mut hourly = fixture("scheduled-sweep");
    hourly["time"] = json!(now_rfc3339());
    let response = bed.invoke(&hourly).await;
    assert_eq!(response["examined"], 0, "{response}");

    let mut daily = hourly.clone();
    daily["resources"] =
        json!(["arn:aws:events:us-east-1:123456789012:rule/secure-mlops-full-sweep"]);
    let response = bed.invoke(&daily).await;
    assert_eq!(response["continued"], "model/old-model-a", "{response}");
    assert_eq!(response["findings"][0]["action"], "delete", "{response}");
    // The continuation (an asynchronous invocation of the function by itself) handles the second.
    let alerts = bed.fx.inbox.alerts(2, Duration::from_secs(10)).await;
    assert_eq!(
        alerts.len(),
        2,
        "{:#?}\n{:#?}",
        bed.control
            .invocations()
            .iter()
            .map(|i| (&i.payload["detail-type"], &i.outcome))
            .collect::<Vec<_>>(),
        bed.control.logs()
    );
    assert!(alerts.iter().all(|a| a.body["eventName"] == "FullSweep"));
    assert_eq!(bed.count("DeleteModel"), 2);
    bed.control.idle(Duration::from_millis(300)).await;
    let continued: Vec<_> = bed
        .control
        .invocations()
        .into_iter()
        .filter(|i| i.payload["detail-type"] == "Sweep Continuation")
        .collect();
    assert_eq!(continued.len(), 1, "{continued:#?}");
    assert_eq!(
        continued[0].payload["detail"],
        json!({"full": true, "after": "model/old-model-a"})
    );
}

#[tokio::test]
async fn the_sweep_finds_a_notebook_created_while_nobody_listened() {
    let bed = bed("enforce").await;
    bed.fx.twin.set_duration("notebook.create", 0.2);
    bed.fx.twin.set_duration("notebook.stop", 0.2);
    bed.sm
        .create_notebook_instance()
        .notebook_instance_name("forgotten-lab")
        .instance_type(InstanceType::MlT3Medium)
        .role_arn("arn:aws:iam::123456789012:role/SageMakerExecution")
        .send()
        .await
        .unwrap();
    let missed = bed.delivered(1).await; // the event is lost: the function never sees it
    assert_eq!(missed.len(), 1);
    bed.notebook_reaches("forgotten-lab", "InService").await;

    let mut sweep = fixture("scheduled-sweep");
    sweep["time"] = json!(now_rfc3339());
    let response = bed.invoke(&sweep).await;
    let finding = &response["findings"][0];
    assert_eq!(
        finding["arn"], "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/forgotten-lab",
        "{response}"
    );
    assert_eq!(
        finding["checks"],
        json!([
            "vpc",
            "volume-kms",
            "notebook-direct-internet",
            "notebook-root-access"
        ])
    );
    assert_eq!(finding["result"], "done");
    assert_eq!(bed.count("StopNotebookInstance"), 1);
    let alerts = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    assert_eq!(alerts[0].body["trigger"], "sweep");
    assert_eq!(alerts[0].body["eventName"], "ScheduledSweep");
    assert_eq!(alerts[0].body["principal"], Value::Null);

    // The next sweep: the notebook is stopped, nothing to do, nothing sent.
    bed.notebook_reaches("forgotten-lab", "Stopped").await;
    let response = bed.invoke(&sweep).await;
    assert_eq!(response["findings"], json!([]), "{response}");
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(300))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_pending_notebook_is_deferred_to_the_sweep_and_updates_are_judged_as_described() {
    let bed = bed("enforce").await;
    // Long enough that the event is handled while the notebook is still Pending, even under load.
    bed.fx.twin.set_duration("notebook.create", 3.0);
    bed.fx.twin.set_duration("notebook.stop", 0.2);
    bed.fx.twin.set_duration("notebook.update", 0.2);
    bed.sm
        .create_notebook_instance()
        .notebook_instance_name("lab")
        .instance_type(InstanceType::MlT3Medium)
        .role_arn("arn:aws:iam::123456789012:role/SageMakerExecution")
        .send()
        .await
        .unwrap();
    let events = bed.delivered(1).await;
    let response = bed.invoke(&events[0]).await;
    assert_eq!(response["findings"][0]["result"], "deferred", "{response}");
    bed.notebook_reaches("lab", "InService").await;
    let mut sweep = fixture("scheduled-sweep");
    sweep["time"] = json!(now_rfc3339());
    let response = bed.invoke(&sweep).await;
    assert_eq!(response["findings"][0]["result"], "done", "{response}");
    assert_eq!(
        bed.fx.inbox.alerts(2, Duration::from_secs(5)).await.len(),
        2
    );

    // A compliant notebook later updated to allow root access: the update carries only RootAccess,
    // so the control describes the notebook and judges all of it.
    bed.sm
        .create_notebook_instance()
        .notebook_instance_name("secure-lab")
        .instance_type(InstanceType::MlT3Medium)
        .role_arn("arn:aws:iam::123456789012:role/SageMakerExecution")
        .subnet_id("subnet-0a1b2c3d")
        .security_group_ids("sg-0a1b2c3d")
        .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        .direct_internet_access(DirectInternetAccess::Disabled)
        .root_access(RootAccess::Disabled)
        .send()
        .await
        .unwrap();
    let events = bed.delivered(1).await;
    assert!(bed.invoke(&events[0]).await["compliant"].is_string());
    bed.notebook_reaches("secure-lab", "InService").await;
    bed.sm
        .stop_notebook_instance()
        .notebook_instance_name("secure-lab")
        .send()
        .await
        .unwrap();
    bed.notebook_reaches("secure-lab", "Stopped").await;
    bed.sm
        .update_notebook_instance()
        .notebook_instance_name("secure-lab")
        .root_access(RootAccess::Enabled)
        .send()
        .await
        .unwrap();
    let events = bed.delivered(1).await;
    assert_eq!(events[0]["detail"]["eventName"], "UpdateNotebookInstance");
    let response = bed.invoke(&events[0]).await;
    let finding = &response["findings"][0];
    assert_eq!(
        finding["checks"],
        json!(["notebook-root-access"]),
        "{response}"
    );
    assert_eq!(
        finding["result"], "already-inactive",
        "a stopped notebook needs no stop"
    );
    assert_eq!(
        bed.count("StopNotebookInstance"),
        3,
        "the refused one while Pending, the sweep's and the user's; none for the update"
    );
}

#[tokio::test]
async fn malformed_events_fail_with_the_field_named() {
    let bed = bed("enforce").await;
    match bed
        .control
        .invoke(&json!({"detail-type": "AWS API Call via CloudTrail"}))
        .await
    {
        Invoked::Error(e) => assert!(e.to_string().contains("not an EventBridge event"), "{e}"),
        other => panic!("{other:?}"),
    }
    let mut event = fixture("model-noncompliant");
    event["detail"]["eventID"] = json!(42);
    match bed.control.invoke(&event).await {
        Invoked::Error(e) => assert!(e.to_string().contains("detail.eventID"), "{e}"),
        other => panic!("{other:?}"),
    }
    let mut event = fixture("model-noncompliant");
    event["detail"]["requestParameters"] = Value::Null;
    match bed.control.invoke(&event).await {
        Invoked::Error(e) => assert!(
            e.to_string()
                .contains("requestParameters do not name the model"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        bed.control
            .invocations()
            .iter()
            .all(|i| i.outcome != Invoked::Crash)
    );
}

impl Bed {
    /// Makes in the twin the resource a fixture's record says was created (its request replayed), and
    /// dates the record now: what a live event would find when the function describes it.
    async fn replay(&self, event: &mut Value) {
        let name = event["detail"]["eventName"].clone();
        if let Err(e) = testbed::cloudtrail::replay(&self.fx.twin.endpoint, event).await {
            panic!("{name}: {e}");
        }
    }
}

/// A `CreateModel` record delivered late (EventBridge retries for an hour): the model of that name
/// was deleted and created again since — compliant, or not: either way it is not the model the record
/// speaks of (created after the event, beyond the skew), so nothing is deleted and no one is alerted.
#[tokio::test]
async fn a_late_create_event_never_touches_a_newer_resource_of_the_same_name() {
    let bed = bed("enforce").await;
    let event = fixture("model-late-event-recreated");
    for compliant in [true, false] {
        let mut model = bed
            .sm
            .create_model()
            .model_name("churn-model-late")
            .execution_role_arn("arn:aws:iam::123456789012:role/SageMakerExecution")
            .primary_container(
                aws_sdk_sagemaker::types::ContainerDefinition::builder()
                    .image("123.dkr.ecr/xgb:1")
                    .build(),
            );
        if compliant {
            model = model.enable_network_isolation(true).vpc_config(
                VpcConfig::builder()
                    .subnets("subnet-0a1b2c3d")
                    .security_group_ids("sg-0a1b2c3d")
                    .build(),
            );
        }
        model.send().await.unwrap();
        let mut late = event.clone();
        late["detail"]["eventID"] = json!(format!("late-{compliant}"));
        let deletes = bed.count("DeleteModel");
        let response = bed.invoke(&late).await;
        assert!(
            response["skipped"]
                .as_str()
                .is_some_and(|s| s.contains("a newer resource has the name")),
            "{response}"
        );
        assert_eq!(bed.count("DeleteModel"), deletes, "nothing deleted");
        bed.sm
            .delete_model()
            .model_name("churn-model-late")
            .send()
            .await
            .unwrap();
    }
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(300))
            .await
            .is_empty()
    );
}

/// A model and an endpoint config that an endpoint uses are never deleted — SageMaker would let it, and
/// the endpoint would keep serving on what is gone: the alert says why nothing was done, and the
/// Security Hub findings stay ACTIVE. The endpoint's own events (`CreateEndpoint`, `UpdateEndpoint`) are
/// judged by the endpoint config it runs, and an endpoint is alerted on, never deleted.
#[tokio::test]
async fn what_an_endpoint_uses_is_never_deleted_and_endpoints_are_alerted_not_deleted() {
    use aws_sdk_sagemaker::types::{
        ContainerDefinition, ProductionVariant, ProductionVariantInstanceType,
    };
    let bed = bed("enforce").await;
    bed.fx.twin.set_duration("endpoint.create", 0.1);
    bed.sm
        .create_model()
        .model_name("serving-model")
        .execution_role_arn("arn:aws:iam::123456789012:role/SageMakerExecution")
        .primary_container(
            ContainerDefinition::builder()
                .image("123.dkr.ecr/xgb:1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    bed.sm
        .create_endpoint_config()
        .endpoint_config_name("serving-config")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("serving-model")
                .instance_type(ProductionVariantInstanceType::MlM5Large)
                .initial_instance_count(1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    bed.sm
        .create_endpoint()
        .endpoint_name("serving")
        .endpoint_config_name("serving-config")
        .send()
        .await
        .unwrap();
    let events = bed.delivered(3).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["detail"]["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    );

    for (event, kind) in events[..2].iter().zip(["model", "endpoint config"]) {
        let response = bed.invoke(event).await;
        let f = &response["findings"][0];
        assert_eq!(f["result"], "not-taken", "{response}");
        assert!(
            f["detail"]
                .as_str()
                .unwrap()
                .starts_with("in use by endpoint serving:"),
            "{response}"
        );
        let alert = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
        assert_eq!(alert[0].body["resourceType"], kind);
        assert_eq!(alert[0].body["result"], "not-taken");
    }
    assert_eq!(
        bed.count("DeleteModel") + bed.count("DeleteEndpointConfig"),
        0
    );
    let findings = bed.fx.inbox.findings().await;
    assert!(!findings.is_empty());
    assert!(
        findings.iter().all(|(_, state, _)| state == "ACTIVE"),
        "{findings:?}"
    );

    let response = bed.invoke(&events[2]).await;
    let f = &response["findings"][0];
    assert_eq!(f["checks"], json!(["volume-kms"]), "{response}");
    assert_eq!(f["result"], "not-taken");
    assert!(f["detail"].as_str().unwrap().contains("never deleted"));
    let alert = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    assert_eq!(alert[0].body["resourceType"], "endpoint");
    assert_eq!(bed.count("DeleteEndpoint"), 0);
}

/// The fixture table: event → checks failed → action → alert fields, through the real binary.
#[tokio::test]
async fn fixture_table() {
    enum Expect {
        Findings(&'static [&'static str], &'static str),
        Compliant,
        Skipped,
        Ignored,
        Duplicate,
    }
    use Expect::*;
    let table: &[(&str, Expect)] = &[
        (
            "training-job-noncompliant",
            Findings(
                &[
                    "vpc",
                    "network-isolation",
                    "inter-container-encryption",
                    "volume-kms",
                    "output-kms",
                ],
                "stop",
            ),
        ),
        ("training-job-noncompliant-duplicate", Duplicate),
        ("training-job-compliant", Compliant),
        // ml.g5 cannot take a volume key (local NVMe, encrypted by hardware), one instance has no
        // traffic between containers: no finding.
        ("training-job-gpu-single-instance", Compliant),
        ("training-job-failed-call", Skipped),
        (
            "training-job-null-fields",
            Findings(
                &[
                    "vpc",
                    "network-isolation",
                    "inter-container-encryption",
                    "volume-kms",
                    "output-kms",
                ],
                "stop",
            ),
        ),
        (
            "processing-job-noncompliant",
            Findings(
                &[
                    "vpc",
                    "inter-container-encryption",
                    "volume-kms",
                    "output-kms",
                ],
                "stop",
            ),
        ),
        ("processing-job-compliant", Compliant),
        (
            "transform-job-noncompliant",
            Findings(&["volume-kms", "output-kms"], "stop"),
        ),
        ("transform-job-compliant", Compliant),
        (
            "tuning-job-noncompliant",
            Findings(&["vpc", "inter-container-encryption", "volume-kms"], "stop"),
        ),
        ("tuning-job-compliant", Compliant),
        (
            "model-noncompliant",
            Findings(&["vpc", "network-isolation"], "delete"),
        ),
        ("model-compliant", Compliant),
        (
            "notebook-noncompliant",
            Findings(
                &[
                    "vpc",
                    "volume-kms",
                    "notebook-direct-internet",
                    "notebook-root-access",
                ],
                "stop",
            ),
        ),
        ("notebook-compliant", Compliant),
        // SageMaker.8, alert-only: a notebook on a deprecated platform is alerted, never stopped.
        (
            "notebook-deprecated-platform",
            Findings(&["notebook-platform"], "none"),
        ),
        ("notebook-update-root-access", Skipped), // lab-2 does not exist in this account
        (
            "endpoint-config-noncompliant",
            Findings(&["volume-kms"], "delete"),
        ),
        ("endpoint-config-compliant", Compliant),
        ("endpoint-config-nvme-variant", Compliant),
        // SageMaker.4, alert-only: a production endpoint config on one instance is alerted, not deleted.
        (
            "endpoint-config-prod-single-instance",
            Findings(&["endpoint-instance-count"], "none"),
        ),
        (
            "domain-noncompliant",
            Findings(&["domain-vpc-only"], "none"),
        ),
        ("domain-compliant", Compliant),
        ("domain-update", Skipped), // the domain does not exist in this account
        // Model Monitor job definitions (SageMaker.9–.13, .15, .20, .25): alerted, never deleted.
        (
            "data-quality-job-definition-noncompliant",
            Findings(
                &[
                    "vpc",
                    "network-isolation",
                    "inter-container-encryption",
                    "volume-kms",
                    "output-kms",
                ],
                "none",
            ),
        ),
        (
            "model-quality-job-definition-noncompliant",
            Findings(
                &[
                    "vpc",
                    "network-isolation",
                    "inter-container-encryption",
                    "volume-kms",
                    "output-kms",
                ],
                "none",
            ),
        ),
        (
            "model-bias-job-definition-noncompliant",
            Findings(
                &[
                    "vpc",
                    "network-isolation",
                    "inter-container-encryption",
                    "volume-kms",
                    "output-kms",
                ],
                "none",
            ),
        ),
        (
            "model-explainability-job-definition-noncompliant",
            Findings(
                &[
                    "vpc",
                    "network-isolation",
                    "inter-container-encryption",
                    "volume-kms",
                    "output-kms",
                ],
                "none",
            ),
        ),
        ("model-explainability-job-definition-compliant", Compliant),
        // A schedule with its own job definition is judged by it (one instance: no inter-container
        // traffic); one that names a definition is judged through that definition's event.
        (
            "monitoring-schedule-inline-noncompliant",
            Findings(
                &["vpc", "network-isolation", "volume-kms", "output-kms"],
                "none",
            ),
        ),
        ("monitoring-schedule-by-definition", Compliant),
        // Feature Store (SageMaker.17/.18) and shadow tests (.23/.24): alerted, never deleted.
        (
            "feature-group-noncompliant",
            Findings(&["data-store-kms"], "none"),
        ),
        ("feature-group-compliant", Compliant),
        (
            "inference-experiment-noncompliant",
            Findings(&["volume-kms", "data-store-kms"], "none"),
        ),
        ("read-only-call", Ignored),
    ];
    let bed = bed("enforce").await;
    let mut alerts_expected = 0;
    for (name, expect) in table {
        let mut event = fixture(name);
        // What the function acts on must exist, as the record says it was created (domains are judged
        // from the request: never acted on).
        if matches!(expect, Findings(..))
            && !name.starts_with("domain")
            && !name.contains("job-definition")
            && !name.starts_with("monitoring-schedule")
            && !name.starts_with("feature-group")
            && !name.starts_with("inference-experiment")
        {
            bed.replay(&mut event).await;
        }
        let calls_before = bed.fx.twin.calls().len();
        let response = bed.invoke(&event).await;
        match expect {
            Findings(checks, action) => {
                let f = &response["findings"][0];
                assert_eq!(f["checks"], json!(checks), "{name}: {response}");
                assert_eq!(f["action"], *action, "{name}: {response}");
                let alert = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
                assert_eq!(alert.len(), 1, "{name}");
                let b = &alert[0].body;
                let d = &event["detail"];
                assert_eq!(b["eventId"], d["eventID"], "{name}");
                assert_eq!(b["eventName"], d["eventName"], "{name}");
                assert_eq!(b["eventTime"], d["eventTime"], "{name}");
                assert_eq!(b["principal"], d["userIdentity"]["arn"], "{name}");
                assert_eq!(b["sourceIp"], d["sourceIPAddress"], "{name}");
                assert_eq!(b["action"], *action, "{name}");
                assert!(
                    alert[0].subject.len() <= 100 && alert[0].subject.starts_with("SageMaker "),
                    "{name}"
                );
                alerts_expected += 1;
            }
            Compliant => {
                assert!(response["compliant"].is_string(), "{name}: {response}");
                assert_eq!(
                    bed.fx.twin.calls().len(),
                    calls_before,
                    "{name}: no SageMaker call"
                );
            }
            Skipped => assert!(response["skipped"].is_string(), "{name}: {response}"),
            Ignored => assert!(response["ignored"].is_string(), "{name}: {response}"),
            Duplicate => assert!(response["duplicate"].is_string(), "{name}: {response}"),
        }
    }
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(300))
            .await
            .is_empty()
    );
    assert_eq!(alerts_expected, 18);
    // 5 + 5 + 4 + 2 + 3 + 2 + 4 + 1 + 1 + 1 + 1 + 4 × 5 + 4 + 1 + 2 findings, one per (resource, check)
    assert_eq!(bed.fx.inbox.findings().await.len(), 56);
}

/// SageMaker.16/.19 as an opt-in check (`CHECKS=all,model-private-registry`): a model whose image
/// comes from Amazon ECR (no `ImageConfig`) is alerted, never deleted; one pulling from the VPC's
/// registry passes. Under `all` alone the same model is compliant (the fixture table shows it).
#[tokio::test]
async fn private_registry_models_when_the_check_is_chosen() {
    let bed = bed_with("enforce", |c| c.env("CHECKS", "all,model-private-registry")).await;
    let mut ecr = fixture("model-compliant");
    bed.replay(&mut ecr).await;
    let response = bed.invoke(&ecr).await;
    let f = &response["findings"][0];
    assert_eq!(f["checks"], json!(["model-private-registry"]), "{response}");
    assert_eq!(f["action"], "none", "{response}");
    let alert = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    assert_eq!(alert.len(), 1);
    let name = ecr["detail"]["requestParameters"]["modelName"]
        .as_str()
        .unwrap();
    assert!(
        bed.sm
            .describe_model()
            .model_name(name)
            .send()
            .await
            .is_ok(),
        "alerted, not deleted"
    );

    let mut vpc = fixture("model-compliant");
    let p = &mut vpc["detail"]["requestParameters"];
    p["modelName"] = json!("churn-model-vpc-registry");
    p["primaryContainer"]["imageConfig"] = json!({"repositoryAccessMode": "Vpc"});
    vpc["detail"]["eventID"] = json!("0f5a0041-1111-4222-8333-444455556666");
    bed.replay(&mut vpc).await;
    let response = bed.invoke(&vpc).await;
    assert!(response["compliant"].is_string(), "{response}");
}

fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
}

/// Functions start from the template's own `Environment`: a variable added there reaches the running
/// process with no test code naming it, and every variable the template sets is there.
#[tokio::test]
async fn a_variable_added_to_the_template_reaches_the_function() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let anchor = "          MODE: !Ref DetectiveControlMode\n";
    assert_eq!(text.matches(anchor).count(), 1, "the anchor moved");
    let edited = text.replace(
        anchor,
        &format!("{anchor}          ADDED_BY_A_TEST: !Sub \"${{ProjectName}}-added\"\n"),
    );
    let fx = Fixture::with(Stack::project_text(&edited)).await;
    let h = fx.start_function("DetectiveControlFunction").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.init_times().is_empty() {
        assert!(std::time::Instant::now() < deadline, "{:#?}", h.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let env: std::collections::BTreeMap<_, _> = h.process_environment().into_iter().collect();
    assert_eq!(
        env.get("ADDED_BY_A_TEST").map(String::as_str),
        Some("secure-mlops-added")
    );
    for (key, value) in fx.stack.environment("DetectiveControlFunction").unwrap() {
        assert_eq!(env.get(&key), Some(&value), "{key}");
    }
    assert_eq!(env["ALERT_TOPIC_ARN"], fx.inbox.topic_arn);
}
