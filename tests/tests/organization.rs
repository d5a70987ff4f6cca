//! The organization-wide detective control through the harness: moto's AWS Organizations with a watched
//! OU (`ML`: alpha, bravo, charlie, echo) and one it does not watch (`Sandbox`: delta); each member
//! account has what the member stack set creates (its forwarding rule with the template's pattern,
//! targeting the central bus, and its responder role); the central stack is the
//! project's template with `MemberOUs`, its detective bus and rule routed by the template's own
//! patterns. SageMaker is the twin's, one per account; STS is the twin's front of moto, which refuses a
//! role that does not exist as AWS does.

use std::time::{Duration, Instant};

use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, DirectInternetAccess, InstanceType, OutputDataConfig, ResourceConfig,
    StoppingCondition, TrainingInputMode, TrainingInstanceType,
};
use serde_json::{Value, json};
use testbed::events::Router;
use testbed::fixture::Fixture;
use testbed::harness::{Harness, Invoked};
use testbed::organization::{Organization, acting_in, deploy_member};
use testbed::stack::Stack;

const FUNCTION: &str = "secure-mlops-detective-control";
const PROJECT: &str = "secure-mlops";

struct Bed {
    control: Harness,
    router: Router,
    org: Organization,
    fx: Fixture,
}

async fn bed() -> Bed {
    let mut fx = Fixture::with(Stack::project().parameter("SecurityHubFindings", "true")).await;
    let org = Organization::create(
        &fx.config,
        &["alpha", "bravo", "charlie", "echo"],
        &["delta"],
    )
    .await;
    fx.stack = fx
        .stack
        .clone()
        .parameter("MemberOUs", json!([org.watched_ou]))
        .parameter("OrganizationId", org.id.as_str())
        .parameter(
            "MemberTemplateUrl",
            "https://templates.s3.us-east-1.amazonaws.com/detective-member.yaml",
        );
    fx.twin.set_duration("job", 120.0);
    fx.twin.set_duration("notebook.create", 0.2);
    fx.twin.set_duration("notebook.stop", 0.2);
    // Installs the template's rules, the detective bus's among them.
    let router = fx.router().await;
    let bus = format!(
        "arn:aws:events:us-east-1:123456789012:event-bus/{}",
        fx.stack.physical("DetectiveEventBus")
    );
    for (name, account) in &org.accounts {
        // delta is outside the OUs: no stack set instance, but someone copied the rule there.
        deploy_member(&fx.moto.endpoint, account, PROJECT, &bus, name != "delta").await;
    }
    let control = Harness::start(
        fx.function("DetectiveControlFunction")
            .env("AWS_ENDPOINT_URL_STS", &fx.twin.endpoint),
    )
    .await;
    Bed {
        control,
        router,
        org,
        fx,
    }
}

impl Bed {
    async fn invoke(&self, event: &Value) -> Value {
        match self.control.invoke(event).await {
            Invoked::Response(v) => v,
            other => panic!("{other:?}\nlogs: {:#?}", self.control.logs()),
        }
    }

    /// The events the central bus delivered to the function (waits up to 10 s for `n`).
    async fn delivered(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < deadline {
            out.extend(self.router.received(FUNCTION).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        out
    }

    async fn sagemaker_of(&self, name: &str) -> aws_sdk_sagemaker::Client {
        let config = acting_in(&self.fx.config, self.org.account(name)).await;
        self.fx.twin.sagemaker(&config)
    }

    /// A training job without VPC, network isolation or KMS, created in account `name`.
    async fn insecure_job(&self, name: &str, job: &str) {
        self.sagemaker_of(name)
            .await
            .create_training_job()
            .training_job_name(job)
            .role_arn("arn:aws:iam::111122223333:role/SageMakerExecution")
            .algorithm_specification(
                AlgorithmSpecification::builder()
                    .training_image("683313688378.dkr.ecr.us-east-1.amazonaws.com/xgboost:1.7-1")
                    .training_input_mode(TrainingInputMode::File)
                    .build(),
            )
            .resource_config(
                ResourceConfig::builder()
                    .instance_type(TrainingInstanceType::MlM5Xlarge)
                    .instance_count(1)
                    .volume_size_in_gb(30)
                    .build(),
            )
            .output_data_config(
                OutputDataConfig::builder()
                    .s3_output_path("s3://models/out")
                    .build(),
            )
            .stopping_condition(
                StoppingCondition::builder()
                    .max_runtime_in_seconds(3600)
                    .build(),
            )
            .send()
            .await
            .expect("CreateTrainingJob");
    }

    /// The status of training job `job` in account `name` (empty when that account has none).
    fn job_status(&self, name: &str, job: &str) -> String {
        let account = self.org.account(name).to_owned();
        let mut w = self.fx.twin.lock();
        w.as_account(&account, |w| {
            w.sm.jobs
                .get(&("TrainingJob", job.to_owned()))
                .map(|r| r.status.clone())
                .unwrap_or_default()
        })
    }

    fn assumed(&self) -> Vec<String> {
        self.control
            .aws_requests("sts:AssumeRole")
            .into_iter()
            .chain(self.control.aws_requests("AssumeRole"))
            .collect()
    }
}

#[tokio::test]
async fn a_job_in_a_member_account_is_stopped_there_alerted_centrally_and_found_in_its_account() {
    let bed = bed().await;
    let bravo = bed.org.account("bravo").to_owned();
    bed.insecure_job("bravo", "bravo-train").await;

    // Member rule → central bus → central rule → the function, by the templates' own patterns.
    let events = bed.delivered(1).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["detail"]["recipientAccountId"], bravo.as_str());
    let response = bed.invoke(&events[0]).await;
    let finding = &response["findings"][0];
    assert_eq!(finding["action"], "stop", "{response}");
    assert_eq!(finding["result"], "done", "{response}");
    assert!(
        finding["arn"]
            .as_str()
            .is_some_and(|a| a.contains(&format!(":{bravo}:training-job/bravo-train"))),
        "{response}"
    );
    // Stopped in bravo, through bravo's responder role; the central account has no such job.
    assert_eq!(bed.job_status("bravo", "bravo-train"), "Stopping");
    assert!(
        !bed.fx
            .twin
            .lock()
            .sm
            .jobs
            .contains_key(&("TrainingJob", "bravo-train".to_owned()))
    );
    let assumed = bed.assumed();
    assert_eq!(assumed.len(), 1, "one session for bravo: {assumed:?}");
    assert!(
        assumed[0].contains(&format!(
            "{bravo}%3Arole%2Fsecure-mlops-detective-responder"
        )),
        "{assumed:?}"
    );

    // One central alert naming bravo.
    let alerts = bed.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].subject.contains(&bravo), "{}", alerts[0].subject);
    assert_eq!(alerts[0].body["account"], bravo.as_str());

    // The Security Hub finding is bravo's: imported with bravo's role, AwsAccountId = bravo.
    let hub = aws_sdk_securityhub::Client::new(&acting_in(&bed.fx.config, &bravo).await);
    let findings = hub.get_findings().send().await.expect("GetFindings");
    assert!(!findings.findings().is_empty());
    for f in findings.findings() {
        assert_eq!(f.aws_account_id(), Some(bravo.as_str()));
        assert!(
            f.product_arn()
                .is_some_and(|p| p.ends_with(&format!("{bravo}:product/{bravo}/default"))),
            "{:?}",
            f.product_arn()
        );
    }

    // The same event again (EventBridge retries): handled already, nothing more.
    let again = bed.invoke(&events[0]).await;
    assert_eq!(
        again["duplicate"], events[0]["detail"]["eventID"],
        "{again}"
    );
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(300))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn an_account_outside_the_ous_or_a_forged_one_is_never_acted_in() {
    let bed = bed().await;
    let delta = bed.org.account("delta").to_owned();
    bed.insecure_job("delta", "delta-train").await;
    let events = bed.delivered(1).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let response = bed.invoke(&events[0]).await;
    assert!(
        response["ignored"]
            .as_str()
            .is_some_and(|r| r.contains(&delta) && r.contains("MEMBER_OUS")),
        "{response}"
    );
    assert_eq!(bed.job_status("delta", "delta-train"), "InProgress");

    // A forged event: the record names an account of no organization.
    let mut forged = events[0].clone();
    forged["detail"]["recipientAccountId"] = json!("999999999999");
    forged["detail"]["eventID"] = json!("forged-1");
    let response = bed.invoke(&forged).await;
    assert!(response["ignored"].is_string(), "{response}");
    // And one naming a member account in a region the control does not watch.
    let mut elsewhere = events[0].clone();
    elsewhere["detail"]["recipientAccountId"] = json!(bed.org.account("alpha"));
    elsewhere["detail"]["awsRegion"] = json!("ap-southeast-2");
    elsewhere["detail"]["eventID"] = json!("elsewhere-1");
    let response = bed.invoke(&elsewhere).await;
    assert!(
        response["ignored"]
            .as_str()
            .is_some_and(|r| r.contains("MEMBER_REGIONS")),
        "{response}"
    );

    assert!(bed.assumed().is_empty(), "no role was assumed");
    assert!(
        bed.fx
            .inbox
            .alerts(0, Duration::from_millis(300))
            .await
            .is_empty()
    );
}

/// The schedule's sweep starts one sweep per ACTIVE member account (each its own invocation; alpha,
/// closed, is not one); charlie's notebook, created while nothing listened, is stopped; echo, whose
/// responder role someone deleted, is reported once — and counted every time.
#[tokio::test]
async fn the_sweep_covers_every_member_and_reports_one_it_cannot_reach() {
    let bed = bed().await;
    let charlie = bed.org.account("charlie").to_owned();
    let echo = bed.org.account("echo").to_owned();
    testbed::organization::delete_responder(&bed.fx.moto.endpoint, &echo, PROJECT).await;
    aws_sdk_organizations::Client::new(&bed.fx.config)
        .close_account()
        .account_id(bed.org.account("alpha"))
        .send()
        .await
        .expect("CloseAccount");
    bed.sagemaker_of("charlie")
        .await
        .create_notebook_instance()
        .notebook_instance_name("charlie-lab")
        .instance_type(InstanceType::MlT3Medium)
        .role_arn("arn:aws:iam::111122223333:role/SageMakerExecution")
        .direct_internet_access(DirectInternetAccess::Enabled)
        .send()
        .await
        .expect("CreateNotebookInstance");
    // Its event was missed (the function was not running).
    assert_eq!(bed.delivered(1).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await; // InService

    let mut sweep = scheduled_sweep();
    let response = bed.invoke(&sweep).await;
    assert_eq!(
        response["examined"], 0,
        "the central account is empty: {response}"
    );

    let alerts = bed.fx.inbox.alerts(2, Duration::from_secs(15)).await;
    assert_eq!(alerts.len(), 2, "{alerts:#?}\n{:#?}", bed.control.logs());
    let notebook = alerts
        .iter()
        .find(|a| a.body["resourceName"] == "charlie-lab")
        .expect("charlie's notebook alerted");
    assert_eq!(notebook.body["account"], charlie.as_str());
    assert_eq!(notebook.body["trigger"], "sweep");
    assert_eq!(notebook.body["action"], "stop");
    let unreachable = alerts
        .iter()
        .find(|a| a.body["account"] == echo.as_str())
        .expect("echo reported");
    assert!(
        unreachable.subject.contains("cannot reach") && unreachable.subject.contains(&echo),
        "{}",
        unreachable.subject
    );
    assert!(
        unreachable.body["role"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!("{echo}:role/secure-mlops-detective-responder")))
    );
    assert!(
        unreachable.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("AccessDenied"))
    );

    // One sweep per ACTIVE member account and region: bravo, charlie, echo (not alpha, closed; not
    // delta, outside the OUs).
    bed.control.idle(Duration::from_millis(500)).await;
    let members: Vec<String> = bed
        .control
        .invocations()
        .iter()
        .filter(|i| i.payload["detail-type"] == "Sweep Continuation")
        .filter_map(|i| i.payload["account"].as_str().map(str::to_owned))
        .collect();
    let mut expected: Vec<String> = ["bravo", "charlie", "echo"]
        .iter()
        .map(|n| bed.org.account(n).to_owned())
        .collect();
    expected.sort();
    let mut seen = members.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, expected);
    // echo's sweep failed (Lambda retried it twice, and keeps it in the dead-letter queue after):
    // counted each time, alerted once.
    let echo_sweeps = members.iter().filter(|a| **a == echo).count();
    assert_eq!(echo_sweeps, 3, "{members:?}");
    let counted = bed
        .control
        .metric("MemberUnreachable", "MemberUnreachable")
        .len();
    assert_eq!(counted, echo_sweeps);

    // The next sweep: echo is still unreachable — counted again, not alerted again.
    sweep["id"] = json!("second-sweep");
    bed.invoke(&sweep).await;
    bed.control.idle(Duration::from_millis(800)).await;
    assert!(
        bed.control
            .metric("MemberUnreachable", "MemberUnreachable")
            .len()
            > counted
    );
    let again = bed.fx.inbox.alerts(0, Duration::from_millis(500)).await;
    assert!(
        again.iter().all(|a| a.body["account"] != echo.as_str()),
        "{again:#?}"
    );
}

/// Single-account mode (the default): an event that names another account is not this control's.
#[tokio::test]
async fn single_account_mode_ignores_events_of_other_accounts() {
    let fx = Fixture::start().await;
    let control = fx.start_function("DetectiveControlFunction").await;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events/detective-control/training-job-noncompliant.json"),
    )
    .expect("sample");
    let mut event: Value = serde_json::from_str(&text).expect("JSON");
    event["detail"]["recipientAccountId"] = json!("444455556666");
    let Invoked::Response(response) = control.invoke(&event).await else {
        panic!("{:#?}", control.logs())
    };
    assert!(
        response["ignored"]
            .as_str()
            .is_some_and(|r| r.contains("444455556666") && r.contains("MEMBER_OUS")),
        "{response}"
    );
    assert!(fx.twin.calls().is_empty(), "no SageMaker call");
}

fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
}

/// The schedule's sweep event (the sample), timed now.
fn scheduled_sweep() -> Value {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events/detective-control/scheduled-sweep.json"),
    )
    .expect("sample");
    let mut sweep: Value = serde_json::from_str(&text).expect("JSON");
    sweep["time"] = json!(now_rfc3339());
    sweep
}

/// A fan-out with too little time left starts no member sweep it could not finish starting, and says
/// how far it got (the schedule's retry, or a longer Timeout, goes on).
#[tokio::test]
async fn a_fan_out_out_of_time_fails_saying_how_far_it_got() {
    let bed = bed().await;
    let short = Harness::start(
        bed.fx
            .function("DetectiveControlFunction")
            .env("AWS_ENDPOINT_URL_STS", &bed.fx.twin.endpoint)
            .timeout(Duration::from_secs(4)),
    )
    .await;
    let Invoked::Error(error) = short.invoke(&scheduled_sweep()).await else {
        panic!("{:#?}", short.logs())
    };
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("ran out of time after starting 0 of 4 member sweeps")),
        "{error}"
    );
}
