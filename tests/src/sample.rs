//! Runs one sample event (`events/<function>/*.json`) through its function on the fixture, as Lambda
//! would deliver it: what `try-event` does for a user, and what the `samples` test does for every
//! sample.
//!
//! - A CloudFormation request (it has a `RequestType`) is sent asynchronously with its `ResponseURL`
//!   and `StackId` replaced by the test bed's; the result is the one response CloudFormation gets.
//!   Placeholders stand for what moto makes anew every time: `{{ou:<path>}}` is the id of that OU of
//!   the seeded organization (e.g. `{{ou:Staging}}`), `{{accounts:<path>}}` its ACTIVE accounts
//!   (nested ones included, comma-separated), `{{bucket}}` a bucket and `{{key}}` the ARN of a KMS key
//!   made for the sample, `{{vpc}}`, `{{subnets}}` (comma-separated) and `{{security-group}}` a Studio
//!   network made in moto, `{{domain}}` the id of an InService Studio domain made in it,
//!   `{{approved:<group>}}` the ARN of an approved version of that model package group (with the
//!   deployment pipeline and its endpoint template in place).
//! - A CodePipeline job (`CodePipeline.job`) of the template's staging action is handed out by the
//!   CodePipeline twin as CodePipeline would (`GetJobDetails` knows it, with the template's pipeline,
//!   `DeployStaging` stage and `StagingEndpoints` action), the staging OU's accounts are ready for the
//!   stack set, and the job is invoked again with each `continuationToken` the function reports until
//!   it succeeds or fails: the result is the job's. `{{template-version}}` is the S3 version of the
//!   endpoint template the pipeline's source would have read.
//! - A CloudTrail event of a SageMaker call (`AWS API Call via CloudTrail`) first replays the call
//!   against the twin, so that the resource the record says was made exists; then the event is invoked.
//! - Anything else is invoked as it is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::fixture::Fixture;
use crate::harness::{Config, Harness, Invocation, Invoked};

/// Where the sample events are.
pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The template's logical id of a function: `org-accounts` → `OrgAccountsFunction`.
pub fn logical_id(function: &str) -> String {
    let name: String = function
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("{name}Function")
}

/// What came of one sample.
#[derive(Debug)]
pub struct Tried {
    /// The function's answer: the response CloudFormation got, or the invocation's result.
    pub answer: Value,
    /// False when the function failed the invocation (or answered CloudFormation `FAILED`).
    pub ok: bool,
    /// Everything the function logged (JSON lines, the metric documents among them).
    pub logs: Vec<String>,
    /// The X-Ray subsegments the function sent (one per AWS call of the sampled invocation).
    pub segments: Vec<Value>,
    /// Every invocation of the function, in the order they ended.
    pub invocations: Vec<Invocation>,
    /// How the function was run (before the harness routed its AWS calls through itself).
    pub config: Config,
    /// The harness's endpoint (in the `ResponseURL`s the function was given).
    pub endpoint: String,
    /// The function process's peak memory (`VmHWM`), as Lambda's `Max Memory Used`.
    pub peak_rss_kib: Option<u64>,
}

/// Runs the sample at `path` through `function` (e.g. `org-accounts`) on a fresh fixture.
pub async fn run(function: &str, path: &Path) -> Result<Tried, String> {
    run_with(function, path, |config| config).await
}

/// [`run`], with the function's harness configuration changed by `configure` first (the benchmark
/// records its AWS answers this way).
pub async fn run_with(
    function: &str,
    path: &Path,
    configure: impl FnOnce(Config) -> Config,
) -> Result<Tried, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut fx = Fixture::start().await;
    if text.contains("\"CodePipeline.job\"") {
        deployment_targets(&mut fx, &text).await?;
    }
    let text = fill(&fx, text).await?;
    let mut event: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let config = configure(fx.function(&logical_id(function)));
    let h = Harness::start(config.clone()).await;
    let tried = if event.get("RequestType").is_some() {
        custom_resource(&h, event).await
    } else if event.get("CodePipeline.job").is_some() {
        pipeline_job(&fx, &h, event).await
    } else {
        if event["detail-type"] == "AWS API Call via CloudTrail"
            && event["detail"]["errorCode"].is_null()
        {
            // The record of a successful call: make what it made.
            crate::cloudtrail::replay(&fx.twin.endpoint, &mut event).await?;
        }
        match h.invoke(&event).await {
            Invoked::Response(answer) => (answer, true),
            Invoked::Error(answer) => (answer, false),
            other => (Value::String(format!("{other:?}")), false),
        }
    };
    Ok(Tried {
        answer: tried.0,
        ok: tried.1,
        logs: h.logs(),
        segments: h.trace_segments(),
        invocations: h.invocations(),
        config,
        endpoint: h.endpoint().to_owned(),
        peak_rss_kib: h.peak_rss_kib(),
    })
}

/// The sample's placeholders replaced (see the module docs).
async fn fill(fx: &Fixture, mut text: String) -> Result<String, String> {
    if text.contains("{{ou:") || text.contains("{{accounts:") {
        let org = crate::org::seed(&fx.config).await;
        for (ou_path, id) in &org.ous {
            text = text.replace(&format!("{{{{ou:{ou_path}}}}}"), id);
            let accounts = org.expected(&[ou_path.as_str()], true).join(",");
            text = text.replace(&format!("{{{{accounts:{ou_path}}}}}"), &accounts);
        }
    }
    if text.contains("{{bucket}}") {
        let bucket = "secure-mlops-sample-models";
        fx.moto
            .s3()
            .await
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| format!("CreateBucket: {e}"))?;
        text = text.replace("{{bucket}}", bucket);
    }
    if ["{{vpc}}", "{{subnets}}", "{{security-group}}", "{{domain}}"]
        .iter()
        .any(|p| text.contains(p))
    {
        let (vpc, subnets, group) =
            crate::twin::moto_side::studio_network(&fx.moto.endpoint, 60, "sample-studio-apps")
                .await;
        if text.contains("{{domain}}") {
            text = text.replace(
                "{{domain}}",
                &studio_domain(fx, &vpc, &subnets, &group).await?,
            );
        }
        text = text
            .replace("{{vpc}}", &vpc)
            .replace("{{subnets}}", &subnets.join(","))
            .replace("{{security-group}}", &group);
    }
    if let Some(start) = text.find("{{approved:") {
        // A model package group with an approved version, and the deployment pipeline (with the
        // endpoint template it deploys) the approval starts.
        let group = text[start + 11..]
            .split("}}")
            .next()
            .unwrap_or_default()
            .to_owned();
        let s3 = fx.moto.s3().await;
        let bucket = crate::deployment::ARTIFACTS_BUCKET;
        let template_version = crate::deployment::publish_template(&s3, bucket).await;
        text = text.replace("{{template-version}}", &template_version);
        crate::deployment::create_pipeline(
            &fx.codepipeline(),
            "secure-mlops-stackset-deploy",
            bucket,
            true,
        )
        .await;
        let sm = fx.sagemaker();
        sm.create_model_package_group()
            .model_package_group_name(&group)
            .send()
            .await
            .map_err(|e| format!("CreateModelPackageGroup: {e}"))?;
        let arn = crate::deployment::register_version(
            &sm,
            &group,
            &format!("s3://{bucket}/models/{group}/model.tar.gz"),
            aws_sdk_sagemaker::types::ModelApprovalStatus::Approved,
        )
        .await;
        text = text.replace(&format!("{{{{approved:{group}}}}}"), &arn);
    }
    if text.contains("{{key}}") {
        let key = aws_sdk_kms::Client::new(&fx.config)
            .create_key()
            .description("sample model key")
            .send()
            .await
            .map_err(|e| format!("CreateKey: {e}"))?;
        let arn = key.key_metadata().and_then(|m| m.arn()).unwrap_or_default();
        text = text.replace("{{key}}", arn);
    }
    match text.find("{{") {
        Some(i) => Err(format!(
            "unknown placeholder at {}",
            &text[i..text.len().min(i + 40)]
        )),
        None => Ok(text),
    }
}

/// A Studio domain in the twin (`{{domain}}`), InService: what a user profile sample is created in.
async fn studio_domain(
    fx: &Fixture,
    vpc: &str,
    subnets: &[String],
    group: &str,
) -> Result<String, String> {
    use aws_sdk_sagemaker::types::{AuthMode, DomainStatus, UserSettings};
    let sm = fx.sagemaker();
    let out = sm
        .create_domain()
        .domain_name("sample-domain")
        .auth_mode(AuthMode::Iam)
        .vpc_id(vpc)
        .set_subnet_ids(Some(subnets.to_vec()))
        .default_user_settings(
            UserSettings::builder()
                .execution_role("arn:aws:iam::123456789012:role/StudioExecution")
                .security_groups(group)
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("CreateDomain: {e}"))?;
    let id = out.domain_id().unwrap_or_default().to_owned();
    for _ in 0..100 {
        let d = sm
            .describe_domain()
            .domain_id(&id)
            .send()
            .await
            .map_err(|e| format!("DescribeDomain: {e}"))?;
        if d.status() == Some(&DomainStatus::InService) {
            return Ok(id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("domain {id} not InService within 10 s"))
}

/// The stack's deployment targets for a pipeline job sample: the seeded organization's Staging OU (its
/// accounts ready for the stack set in us-east-1) and the sample's model package group configured.
async fn deployment_targets(fx: &mut Fixture, text: &str) -> Result<(), String> {
    let group = text
        .split("{{approved:")
        .nth(1)
        .and_then(|rest| rest.split("}}").next())
        .ok_or("a pipeline job sample names its model package as {{approved:<group>}}")?
        .to_owned();
    let org = crate::org::seed(&fx.config).await;
    let staging = org
        .ous
        .iter()
        .find(|(path, _)| path.as_str() == "Staging")
        .map(|(_, id)| id.clone())
        .ok_or("the seeded organization has no Staging OU")?;
    fx.stack = crate::deployment::targets(
        fx.stack.clone(),
        &staging,
        &["210987654321"],
        &["us-east-1"],
    )
    .parameter("ModelPackageGroups", serde_json::json!([group]));
    for account in org.expected(&["Staging"], true) {
        crate::deployment::prepare_target(&fx.config, &account, &["us-east-1"]).await;
    }
    Ok(())
}

/// Runs a pipeline job sample as CodePipeline runs a Lambda action: a job handed out per invocation,
/// the next one carrying the `continuationToken` of the last, until a result without one.
async fn pipeline_job(fx: &Fixture, h: &Harness, mut event: Value) -> (Value, bool) {
    use crate::twin::codepipeline::{JobContext, JobResult, hand_out};
    let action_type = serde_json::json!({"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"});
    // The template's staging action (`STAGING_ACTION`, `<stage>/<action>`), as the function knows it.
    let staging = fx
        .stack
        .environment("StacksetDeployFunction")
        .ok()
        .and_then(|env| env.into_iter().find(|(k, _)| k == "STAGING_ACTION"))
        .map(|(_, v)| v)
        .unwrap_or_default();
    let (stage, action) = staging.split_once('/').unwrap_or_default();
    let context = JobContext {
        pipeline: crate::deployment::PIPELINE,
        execution: "5a3c1d2e-0000-4000-8000-00000000a001",
        stage,
        action,
        action_type: &action_type,
    };
    for _ in 0..50 {
        let data = event["CodePipeline.job"]["data"].clone();
        let (id, result) = hand_out(&fx.twin.world, &context, &data);
        event["CodePipeline.job"]["id"] = Value::String(id);
        if let Invoked::Error(e) = h.invoke(&event).await {
            return (e, false);
        }
        match tokio::time::timeout(Duration::from_secs(60), result).await {
            Ok(Ok(JobResult::Success {
                continuation_token: Some(token),
                ..
            })) => {
                event["CodePipeline.job"]["data"]["continuationToken"] = Value::String(token);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Ok(JobResult::Success {
                output_variables, ..
            })) => {
                return (
                    serde_json::json!({"result": "Succeeded", "outputVariables": output_variables}),
                    true,
                );
            }
            Ok(Ok(JobResult::Failure(message))) => {
                return (
                    serde_json::json!({"result": "Failed", "message": message}),
                    false,
                );
            }
            _ => return (Value::String("no job result within 60 s".into()), false),
        }
    }
    (
        Value::String("still continuing after 50 invocations".into()),
        false,
    )
}

async fn custom_resource(h: &Harness, mut event: Value) -> (Value, bool) {
    event["ResponseURL"] = Value::String(h.response_url("sample"));
    event["StackId"] = Value::String(crate::cfn::STACK_ID.into());
    h.invoke_async(&event);
    let puts = h.wait_for_response("sample", Duration::from_secs(60)).await;
    match puts.last() {
        Some(put) => {
            let ok = put.body["Status"] == "SUCCESS";
            (put.body.clone(), ok)
        }
        None => (Value::String("no response within 60 s".into()), false),
    }
}
