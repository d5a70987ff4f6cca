//! `org-sweep` — measures the organization-wide sweep against the emulator: an organization of
//! `ACCOUNTS` member accounts (each with its responder role and one compliant notebook, so each member
//! sweep lists, describes and judges something) in `REGIONS` regions; one scheduled sweep fans out and
//! every member sweep runs through the real binary under the harness.
//!
//! Usage: `org-sweep [ACCOUNTS=20] [REGIONS=2]` (with `SECURE_MLOPS_BIN_DIR=target/release` for the
//! release binary). Prints the fan-out time, the time until every member sweep finished, and account ×
//! regions per minute. A measurement, not a test: nothing is asserted but that every sweep ran.

use std::time::{Duration, Instant};

use aws_sdk_sagemaker::types::{DirectInternetAccess, InstanceType, RootAccess};
use serde_json::json;
use testbed::fixture::Fixture;
use testbed::harness::{Harness, Invoked};
use testbed::organization::{Organization, acting_in, deploy_member};
use testbed::stack::Stack;

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"];

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let accounts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let regions: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2)
        .clamp(1, REGIONS.len());
    let regions = &REGIONS[..regions];

    let mut fx = Fixture::measured(Stack::project()).await;
    let names: Vec<String> = (0..accounts).map(|i| format!("member-{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let org = Organization::create(&fx.config, &refs, &[]).await;
    fx.stack = fx
        .stack
        .clone()
        .parameter("MemberOUs", json!([org.watched_ou]))
        .parameter("MemberRegions", json!(regions))
        .parameter("OrganizationId", org.id.as_str())
        .parameter(
            "MemberTemplateUrl",
            "https://t.s3.us-east-1.amazonaws.com/m.yaml",
        );
    fx.twin.set_duration("notebook.create", 0.0);
    let bus = "arn:aws:events:us-east-1:123456789012:event-bus/secure-mlops-detective";
    for (_, account) in &org.accounts {
        deploy_member(&fx.moto.endpoint, account, "secure-mlops", bus, true).await;
        let config = acting_in(&fx.config, account).await;
        fx.twin
            .sagemaker(&config)
            .create_notebook_instance()
            .notebook_instance_name("lab")
            .instance_type(InstanceType::MlT3Medium)
            .role_arn(format!("arn:aws:iam::{account}:role/SageMakerExecution"))
            .subnet_id("subnet-0a1b2c3d")
            .security_group_ids("sg-0a1b2c3d")
            .kms_key_id("arn:aws:kms:us-east-1:111122223333:key/k")
            .direct_internet_access(DirectInternetAccess::Disabled)
            .root_access(RootAccess::Disabled)
            .send()
            .await
            .expect("CreateNotebookInstance");
    }
    let control = Harness::start(
        fx.function("DetectiveControlFunction")
            .env("AWS_ENDPOINT_URL_STS", &fx.twin.endpoint),
    )
    .await;
    let sweep = json!({"version": "0", "id": "measured-sweep", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "region": "us-east-1",
        "time": aws_smithy_types::DateTime::from(std::time::SystemTime::now())
            .fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default(),
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/secure-mlops-sweep"], "detail": {}});
    let started = Instant::now();
    let Invoked::Response(_) = control.invoke(&sweep).await else {
        panic!("the sweep failed: {:#?}", control.logs());
    };
    let fanned_out = started.elapsed();
    let expected = accounts * regions.len();
    let deadline = Instant::now() + Duration::from_secs(600);
    let done = loop {
        let done = control
            .invocations()
            .iter()
            .filter(|i| i.payload["detail-type"] == "Sweep Continuation")
            .filter(|i| matches!(i.outcome, Invoked::Response(_)))
            .count();
        if done >= expected || Instant::now() > deadline {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let total = started.elapsed();
    let failed: Vec<_> = control
        .invocations()
        .into_iter()
        .filter(|i| matches!(i.outcome, Invoked::Error(_)))
        .map(|i| i.outcome)
        .collect();
    println!(
        "organization-wide sweep: {accounts} accounts x {} regions = {expected} member sweeps",
        regions.len()
    );
    println!(
        "fan-out (list the OU's accounts, start {expected} invocations): {:.2} s",
        fanned_out.as_secs_f64()
    );
    println!(
        "every member sweep done ({done} of {expected}, {} failed): {:.2} s, {:.1} ms per member sweep, {:.0} account x regions per minute",
        failed.len(),
        total.as_secs_f64(),
        total.as_secs_f64() * 1000.0 / expected.max(1) as f64,
        expected as f64 / total.as_secs_f64() * 60.0
    );
    if done < expected || !failed.is_empty() {
        eprintln!("{failed:#?}");
        std::process::exit(1);
    }
}
