//! `make demo`: the local story, end to end, with the real function binaries against the emulator.
//! Prints a timeline (step, function, outcome, duration), writes a JSON report, exits non-zero when a
//! step's outcome is wrong, and stops everything it started (also on Ctrl-C).
//!
//! Usage: `demo [REPORT_PATH]` (default `target/demo/report.json`).

mod mlops;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testbed::bins;
use testbed::cfn::request;
use testbed::harness::{Config, Harness};
use testbed::moto::Moto;

struct Step {
    name: String,
    function: &'static str,
    ok: bool,
    outcome: String,
    took: Duration,
}

#[derive(Default)]
struct Story {
    steps: Vec<Step>,
}

impl Story {
    fn record(
        &mut self,
        name: &str,
        function: &'static str,
        ok: bool,
        outcome: String,
        took: Duration,
    ) {
        println!(
            "{:>2}. {:<48} {:<19} {:<4} {:>7.0} ms  {}",
            self.steps.len() + 1,
            name,
            function,
            if ok { "ok" } else { "FAIL" },
            took.as_secs_f64() * 1000.0,
            outcome
        );
        self.steps.push(Step {
            name: name.to_owned(),
            function,
            ok,
            outcome,
            took,
        });
    }

    fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }

    fn report(&self, total: Duration) -> Value {
        json!({
            "ok": self.ok(),
            "total_ms": total.as_millis() as u64,
            "steps": self.steps.iter().map(|s| json!({
                "step": s.name, "function": s.function, "ok": s.ok,
                "outcome": s.outcome, "duration_ms": s.took.as_millis() as u64,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Sends one CloudFormation request as CloudFormation does (asynchronous invoke) and waits for the
/// response on the ResponseURL.
async fn cfn(
    h: &Harness,
    key: &str,
    kind: &str,
    props: Value,
    physical: Option<&str>,
) -> (Value, Duration) {
    let started = Instant::now();
    let event = request(
        kind,
        &h.response_url(key),
        "Custom::OrgAccounts",
        "TargetAccounts",
        props,
        physical,
        None,
    );
    h.invoke_async(&event);
    let responses = h.wait_for_response(key, Duration::from_secs(30)).await;
    let took = responses
        .first()
        .map(|r| r.at - started)
        .unwrap_or_else(|| started.elapsed());
    let body = match responses.as_slice() {
        [one] => one.body.clone(),
        [] => json!({"Status": "NO RESPONSE"}),
        many => json!({"Status": format!("{} RESPONSES", many.len())}),
    };
    (body, took)
}

fn summary(body: &Value) -> String {
    match body["Status"].as_str() {
        Some("SUCCESS") => match body["Data"]["AccountCount"].as_str() {
            Some(n) => format!(
                "SUCCESS {n} accounts, id {}",
                body["PhysicalResourceId"].as_str().unwrap_or("?")
            ),
            None => format!(
                "SUCCESS id {}",
                body["PhysicalResourceId"].as_str().unwrap_or("?")
            ),
        },
        Some(other) => format!("{other}: {}", body["Reason"].as_str().unwrap_or("")),
        None => "no status".to_owned(),
    }
}

async fn story(story: &mut Story) {
    let t = Instant::now();
    let moto = Moto::start().await;
    story.record(
        "start the AWS emulator (moto)",
        "-",
        true,
        moto.endpoint.clone(),
        t.elapsed(),
    );

    let t = Instant::now();
    let org = testbed::org::seed(&moto.sdk_config().await).await;
    let seeded = format!(
        "{} OUs, {} accounts (2 suspended)",
        org.ous.len(),
        org.active.values().map(Vec::len).sum::<usize>() + 2
    );
    story.record(
        "seed an organization (OUs 4 deep)",
        "-",
        true,
        seeded,
        t.elapsed(),
    );

    let t = Instant::now();
    let h = Harness::start(
        Config::new(bins::path("org-accounts"), "org-accounts")
            .env("AWS_ENDPOINT_URL", &moto.endpoint),
    )
    .await;
    story.record(
        "start org-accounts under the Lambda harness",
        "org-accounts",
        true,
        h.endpoint().to_owned(),
        t.elapsed(),
    );

    let (staging, prod) = (org.ou("Staging"), org.ou("Production"));
    let props = json!({"OrganizationalUnitIds": [staging, prod]});
    let (body, took) = cfn(&h, "create", "Create", props.clone(), None).await;
    let expected = org.expected(&["Staging", "Production"], true);
    let ok = body["Status"] == "SUCCESS" && body["Data"]["AccountIds"] == expected.join(",");
    story.record(
        "Create: staging + production OUs -> accounts",
        "org-accounts",
        ok,
        summary(&body),
        took,
    );
    let physical = body["PhysicalResourceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(init) = h.init_times().first() {
        story.record(
            "cold start (process start -> first /next)",
            "org-accounts",
            true,
            format!("{:.1} ms", init.as_secs_f64() * 1000.0),
            *init,
        );
    }

    let excluded = expected.first().cloned().unwrap_or_default();
    let updated_props =
        json!({"OrganizationalUnitIds": [staging, prod], "ExcludeAccountIds": [excluded]});
    let (body, took) = cfn(
        &h,
        "update",
        "Update",
        updated_props.clone(),
        Some(&physical),
    )
    .await;
    let ok = body["Status"] == "SUCCESS"
        && body["Data"]["AccountCount"]
            .as_str()
            .and_then(|n| n.parse().ok())
            == Some(expected.len() - 1)
        && body["PhysicalResourceId"] != physical.as_str();
    story.record(
        "Update: exclude one account (replacement)",
        "org-accounts",
        ok,
        summary(&body),
        took,
    );
    let new_physical = body["PhysicalResourceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let (body, took) = cfn(
        &h,
        "bad",
        "Create",
        json!({"OrganizationalUnitIds": ["ou-zzzz-zzzzzzzz"]}),
        None,
    )
    .await;
    let ok = body["Status"] == "FAILED"
        && body["Reason"]
            .as_str()
            .unwrap_or_default()
            .contains("ou-zzzz-zzzzzzzz");
    story.record(
        "Create with an unknown OU -> FAILED naming it",
        "org-accounts",
        ok,
        summary(&body),
        took,
    );

    let (body, took) = cfn(&h, "delete", "Delete", updated_props, Some(&new_physical)).await;
    story.record(
        "Delete (a lookup owns nothing)",
        "org-accounts",
        body["Status"] == "SUCCESS",
        summary(&body),
        took,
    );

    if let Some(kib) = h.peak_rss_kib() {
        story.record(
            "peak RSS of the function process",
            "org-accounts",
            true,
            format!("{:.1} MiB", kib as f64 / 1024.0),
            Duration::ZERO,
        );
    }
    let logged_url = h.logs().iter().any(|l| l.contains("/cfn/"));
    story.record(
        "logs: JSON, no ResponseURL",
        "org-accounts",
        !logged_url,
        format!("{} log lines", h.logs().len()),
        Duration::ZERO,
    );
    drop(h);
    studio(story, &moto).await;
    mlops::run(story, &moto, &org).await;
    moto.stop().await;
}

/// A Studio domain with a user profile, a user at work, and a clean teardown.
async fn studio(story: &mut Story, moto: &Moto) {
    use testbed::twin::moto_side::{ec2, efs, xml_value};
    let t = Instant::now();
    let Ok(twin) = testbed::twin::Twin::start(0, Some(moto.endpoint.clone())).await else {
        story.record(
            "start the SageMaker twin",
            "-",
            false,
            "cannot bind".into(),
            t.elapsed(),
        );
        return;
    };
    for key in [
        "domain.create",
        "domain.delete",
        "profile.create",
        "profile.delete",
        "app.create",
        "app.delete",
    ] {
        twin.set_duration(key, 1.0);
    }
    story.record(
        "start the SageMaker/CodePipeline twin",
        "-",
        true,
        twin.endpoint.clone(),
        t.elapsed(),
    );
    let start = |name: &str| {
        Config::new(bins::path(name), name)
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_ENDPOINT_URL_SAGEMAKER", &twin.endpoint)
            .env("SECURE_MLOPS_POLL_BASE_MS", "250")
    };
    let domain_fn = Harness::start(start("studio-domain")).await;
    let profile_fn = Harness::start(start("studio-user-profile")).await;

    let m = &moto.endpoint;
    let vpc = ec2(m, &[("Action", "CreateVpc"), ("CidrBlock", "10.9.0.0/16")])
        .await
        .and_then(|x| xml_value(&x, "vpcId"))
        .unwrap_or_default();
    let mut subnets = Vec::new();
    for (i, az) in ["a", "b"].iter().enumerate() {
        let xml = ec2(
            m,
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", &format!("10.9.{i}.0/24")),
                ("AvailabilityZone", &format!("us-east-1{az}")),
            ],
        )
        .await;
        subnets.extend(xml.and_then(|x| xml_value(&x, "subnetId")));
    }
    let sg = ec2(
        m,
        &[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "studio-apps"),
            ("GroupDescription", "apps"),
            ("VpcId", &vpc),
        ],
    )
    .await
    .and_then(|x| xml_value(&x, "groupId"))
    .unwrap_or_default();
    let props = json!({"DomainName": "demo-studio", "VpcId": vpc, "SubnetIds": subnets, "SecurityGroupIds": [sg],
        "DefaultExecutionRoleArn": "arn:aws:iam::123456789012:role/StudioExecution"});
    let (body, took) = cfn(&domain_fn, "domain", "Create", props.clone(), None).await;
    let domain_id = body["PhysicalResourceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let home = body["Data"]["HomeEfsFileSystemId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    story.record(
        "Create: Studio domain (VpcOnly), wait InService",
        "studio-domain",
        body["Status"] == "SUCCESS" && !home.is_empty(),
        format!("{} home EFS {home}", summary(&body)),
        took,
    );

    let profile = json!({"DomainId": domain_id, "UserProfileName": "data-scientist"});
    let (body, took) = cfn(&profile_fn, "profile", "Create", profile.clone(), None).await;
    let profile_arn = body["PhysicalResourceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    story.record(
        "Create: user profile",
        "studio-user-profile",
        body["Status"] == "SUCCESS",
        summary(&body),
        took,
    );

    let sm = aws_sdk_sagemaker_client(moto, &twin).await;
    let app = sm
        .create_app()
        .domain_id(&domain_id)
        .user_profile_name("data-scientist")
        .app_type(aws_sdk_sagemaker::types::AppType::JupyterServer)
        .app_name("default")
        .send()
        .await;
    story.record(
        "a data scientist opens Studio (an app runs)",
        "-",
        app.is_ok(),
        String::new(),
        Duration::ZERO,
    );

    let (body, took) = cfn(
        &profile_fn,
        "profile-del",
        "Delete",
        profile,
        Some(&profile_arn),
    )
    .await;
    story.record(
        "Delete: user profile (its app first)",
        "studio-user-profile",
        body["Status"] == "SUCCESS",
        summary(&body),
        took,
    );
    for (h, name) in [
        (&domain_fn, "studio-domain"),
        (&profile_fn, "studio-user-profile"),
    ] {
        if let (Some(init), Some(rss)) = (h.init_times().first().copied(), h.peak_rss_kib()) {
            let figures = format!(
                "cold init {:.1} ms, peak RSS {:.1} MiB",
                init.as_secs_f64() * 1000.0,
                rss as f64 / 1024.0
            );
            story.record("cold start and peak memory", name, true, figures, init);
        }
    }
    let (body, took) = cfn(&domain_fn, "domain-del", "Delete", props, Some(&domain_id)).await;
    let gone = sm
        .describe_domain()
        .domain_id(&domain_id)
        .send()
        .await
        .is_err();
    let kept = efs(m, reqwest::Method::GET, "file-systems", None)
        .await
        .is_some_and(|v| v.to_string().contains(&home));
    story.record(
        "Delete: domain; home EFS kept (Retain)",
        "studio-domain",
        body["Status"] == "SUCCESS" && gone && kept,
        summary(&body),
        took,
    );
}

async fn aws_sdk_sagemaker_client(
    moto: &Moto,
    twin: &testbed::twin::Twin,
) -> aws_sdk_sagemaker::Client {
    let config = aws_sdk_sagemaker::config::Builder::from(&moto.sdk_config().await)
        .endpoint_url(&twin.endpoint)
        .build();
    aws_sdk_sagemaker::Client::from_conf(config)
}

#[tokio::main]
async fn main() {
    let report_path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/demo/report.json")
        });
    println!("secure-mlops local demo: custom resources through the Lambda harness, against moto and the SageMaker twin
");
    let started = Instant::now();
    let mut s = Story::default();
    let interrupted = tokio::select! {
        _ = story(&mut s) => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    // Leaving the select dropped the story: every process it started has been killed.
    let total = started.elapsed();
    if interrupted {
        s.record(
            "interrupted (Ctrl-C): stopped everything",
            "-",
            false,
            String::new(),
            Duration::ZERO,
        );
    }
    let report = s.report(total);
    if let Some(dir) = report_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &report_path,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    ) {
        Ok(()) => println!("\nreport: {}", report_path.display()),
        Err(e) => eprintln!("could not write {}: {e}", report_path.display()),
    }
    println!(
        "{} in {:.1} s",
        if s.ok() {
            "all steps ok"
        } else {
            "SOME STEPS FAILED"
        },
        total.as_secs_f64()
    );
    if !s.ok() {
        std::process::exit(1);
    }
}
