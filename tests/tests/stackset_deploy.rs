//! `stackset-deploy` driven by the twin's CodePipeline runner with real `CodePipeline.job` events, in
//! the pipeline the template declares: staging through a stack set whose instances land in the staging
//! OU's ACTIVE accounts (moto Organizations + StackSets), a manual approval, then production.
//! Operation states moto cannot produce (RUNNING, FAILED with per-account reasons, an operation id that
//! already exists) are covered by aws-smithy-mocks tests in the function itself.

use std::time::Duration;

use aws_sdk_codepipeline::types::{
    ActionCategory, InputArtifact, OutputArtifact, PipelineExecutionStatus, PipelineVariable,
    StageDeclaration,
};
use aws_sdk_sagemaker::types::ModelApprovalStatus;
use testbed::deployment::{self, PIPELINE};
use testbed::fixture::Fixture;
use testbed::harness::{Config, Harness};
use testbed::org::{SeededOrg, seed};
use testbed::twin::Fault;

struct Bed {
    f: Harness,
    sm: aws_sdk_sagemaker::Client,
    cp: aws_sdk_codepipeline::Client,
    cfn: aws_sdk_cloudformation::Client,
    org: SeededOrg,
    s3: aws_sdk_s3::Client,
    fx: Fixture,
}

const PROD: [&str; 2] = ["210987654321", "310987654321"];
const HAND_MADE: &str = "secure-mlops-hand-made";

async fn bed() -> Bed {
    bed_with(|c| c).await
}

/// The function as the template configures it, for the bed's stages (the staging OU, two production
/// accounts in two regions) and both groups.
fn function(fx: &Fixture) -> Config {
    deployment::stackset_deploy(fx)
        // A second pipeline of ours, built by hand below with parameters the template never writes.
        .env("PIPELINE_NAMES", format!("{PIPELINE},{HAND_MADE}"))
}

/// The bed, with the function's configuration adjusted by `adjust`.
async fn bed_with(adjust: impl FnOnce(Config) -> Config) -> Bed {
    let mut fx = Fixture::start().await;
    let org = seed(&fx.config).await;
    fx.stack = deployment::targets(
        fx.stack.clone(),
        org.ou("Staging"),
        &PROD,
        &["us-east-1", "eu-west-1"],
    )
    .parameter(
        "ModelPackageGroups",
        serde_json::json!(["churn", "ranking"]),
    );
    let s3 = fx.moto.s3().await;
    deployment::publish_template(&s3, deployment::ARTIFACTS_BUCKET).await;
    for account in org.expected(&["Staging"], true) {
        deployment::prepare_target(&fx.config, &account, &["us-east-1"]).await;
    }
    for account in PROD {
        deployment::prepare_target(&fx.config, account, &["us-east-1", "eu-west-1"]).await;
    }
    fx.twin.set_duration("pipeline.continuation", 0.1);
    let f = Harness::start(adjust(function(&fx))).await;
    fx.twin
        .register_lambda("secure-mlops-stackset-deploy", f.endpoint());
    let sm = fx.sagemaker();
    let cp = fx.codepipeline();
    deployment::create_pipeline(&cp, "secure-mlops-stackset-deploy", "artifacts", true).await;
    sm.create_model_package_group()
        .model_package_group_name("churn")
        .send()
        .await
        .unwrap();
    Bed {
        f,
        sm,
        cp,
        cfn: aws_sdk_cloudformation::Client::new(&fx.config),
        org,
        s3,
        fx,
    }
}

impl Bed {
    /// A pipeline `name` shaped like the template's (Source with namespace `Template`, then
    /// `DeployStaging`/`StagingEndpoints` calling the function) with `params` as `UserParameters`.
    async fn hand_made(&self, name: &str, params: &str) {
        let source = deployment::action(
            "EndpointTemplate",
            ActionCategory::Source,
            "S3",
            &[
                ("S3Bucket", "artifacts"),
                ("S3ObjectKey", deployment::TEMPLATE_KEY),
            ],
        )
        .namespace("Template")
        .output_artifacts(OutputArtifact::builder().name("T").build().unwrap())
        .build()
        .unwrap();
        let deploy = deployment::action(
            "StagingEndpoints",
            ActionCategory::Invoke,
            "Lambda",
            &[
                ("FunctionName", "secure-mlops-stackset-deploy"),
                ("UserParameters", params),
            ],
        )
        .namespace("Staging")
        .input_artifacts(InputArtifact::builder().name("T").build().unwrap())
        .build()
        .unwrap();
        let stage = |n: &str, a| {
            StageDeclaration::builder()
                .name(n)
                .actions(a)
                .build()
                .unwrap()
        };
        let pipeline = deployment::declaration(name, "artifacts")
            .stages(stage("Source", source))
            .stages(stage("DeployStaging", deploy))
            .build()
            .unwrap();
        self.cp
            .create_pipeline()
            .pipeline(pipeline)
            .send()
            .await
            .unwrap();
    }

    /// Runs pipeline `name` for `package` to its end; the execution's status and summary.
    async fn run(&self, name: &str, package: &str) -> (PipelineExecutionStatus, String) {
        let id = self
            .cp
            .start_pipeline_execution()
            .name(name)
            .variables(
                PipelineVariable::builder()
                    .name("ModelPackageArn")
                    .value(package)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .pipeline_execution_id
            .unwrap();
        let end = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let e = self
                .cp
                .get_pipeline_execution()
                .pipeline_name(name)
                .pipeline_execution_id(&id)
                .send()
                .await
                .unwrap();
            let e = e.pipeline_execution().unwrap();
            if e.status() != Some(&PipelineExecutionStatus::InProgress) {
                return (
                    e.status().unwrap().clone(),
                    e.status_summary().unwrap_or_default().to_owned(),
                );
            }
            assert!(std::time::Instant::now() < end, "{name} still running");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The stack-set calls the function made (none is what a refused job must show).
    fn stack_set_calls(&self) -> Vec<String> {
        self.f
            .aws_calls()
            .into_iter()
            .filter(|c| c.contains("StackSet") || c.contains("StackInstances"))
            .collect()
    }

    async fn version(&self, status: ModelApprovalStatus) -> String {
        deployment::register_version(&self.sm, "churn", "s3://models/churn/model.tar.gz", status)
            .await
    }

    /// (account, region) of the stack set's instances, sorted.
    async fn instances(&self, stack_set: &str) -> Vec<(String, String)> {
        let out = self
            .cfn
            .list_stack_instances()
            .stack_set_name(stack_set)
            .send()
            .await
            .unwrap();
        let mut v: Vec<(String, String)> = out
            .summaries()
            .iter()
            .map(|s| {
                (
                    s.account().unwrap().to_owned(),
                    s.region().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    }

    async fn parameter(&self, stack_set: &str, key: &str) -> Option<String> {
        let out = self
            .cfn
            .describe_stack_set()
            .stack_set_name(stack_set)
            .send()
            .await
            .ok()?;
        out.stack_set()?
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some(key))
            .and_then(|p| p.parameter_value())
            .map(str::to_owned)
    }

    fn outputs(
        &self,
        execution: &str,
        namespace: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let w = self.fx.twin.lock();
        w.cp.executions
            .iter()
            .find(|e| e.id == execution)
            .and_then(|e| e.outputs.get(namespace).cloned())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn staging_then_approval_then_production() {
    let b = bed().await;
    let v1 = b.version(ModelApprovalStatus::Approved).await;
    let execution = deployment::start(&b.cp, &v1).await;
    assert_eq!(
        deployment::settle(&b.cp, &execution, Duration::from_secs(30)).await,
        None,
        "waits at the approval"
    );

    // Staging: one stack set for (churn, staging), instances in the staging OU's ACTIVE accounts only.
    let staging = "secure-mlops--churn-staging";
    let expected: Vec<(String, String)> = b
        .org
        .expected(&["Staging"], true)
        .into_iter()
        .map(|a| (a, "us-east-1".to_owned()))
        .collect();
    assert_eq!(expected.len(), 8);
    assert_eq!(b.instances(staging).await, expected);
    assert_eq!(
        b.parameter(staging, "ModelPackageArn").await.as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(
        b.parameter(staging, "EndpointName").await.as_deref(),
        Some("secure-mlops-churn-staging")
    );
    assert_eq!(
        b.parameter(staging, "InstanceCount").await.as_deref(),
        Some("1")
    );
    assert_eq!(
        b.parameter(staging, "InstanceStorage").await.as_deref(),
        Some("ebs"),
        "an EBS instance type keeps its volume key"
    );
    assert_eq!(
        b.parameter(staging, "ImageUri").await.as_deref(),
        Some("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    );
    // What the stack instance created in a staging account (moto SageMaker, seen as that account):
    // a model in the account's subnets running the package's image, and an endpoint.
    let account = &expected[0].0;
    let sm = deployment::sagemaker_in(&b.fx.config, account, "us-east-1").await;
    let models = sm.list_models().send().await.unwrap();
    assert_eq!(models.models().len(), 1);
    let model = sm
        .describe_model()
        .model_name(models.models()[0].model_name().unwrap())
        .send()
        .await
        .unwrap();
    // (moto's CloudFormation drops the model's EnableNetworkIsolation; cfn-lint and the template test
    // check the template sets it.)
    assert_eq!(
        model.vpc_config().unwrap().subnets(),
        ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
    );
    assert_eq!(
        model.primary_container().unwrap().image(),
        Some("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    );
    assert_eq!(
        sm.list_endpoints().send().await.unwrap().endpoints().len(),
        1
    );
    let out = b.outputs(&execution, "Staging");
    assert_eq!(out["EndpointName"], "secure-mlops-churn-staging");
    // The smoke test: each staging endpoint answered the package's sample request, through the
    // smoke-test role the stack instance made in its account.
    assert_eq!(out["SmokeTest"], "passed in 8 accounts/regions");
    assert_eq!(
        b.fx.twin
            .calls()
            .iter()
            .filter(|c| c.operation == "InvokeEndpoint")
            .count(),
        8
    );
    assert_eq!(out["StackSetName"], staging);
    // First call started the operation and returned a continuation token; the second saw it SUCCEEDED.
    let calls = b.f.invocations();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert!(
        calls[0].payload["CodePipeline.job"]["data"]
            .get("continuationToken")
            .is_none()
    );
    let token = calls[1].payload["CodePipeline.job"]["data"]["continuationToken"]
        .as_str()
        .unwrap();
    assert!(token.contains("\"phase\":\"instances\""), "{token}");
    assert!(
        b.cfn
            .describe_stack_set()
            .stack_set_name("secure-mlops--churn-prod")
            .send()
            .await
            .is_err(),
        "prod waits for the approval"
    );

    // Approve: production gets the prod accounts in both regions, two instances per endpoint.
    let approval = deployment::approval_token(&b.cp).await.unwrap();
    deployment::approve(&b.cp, &approval, true).await;
    assert_eq!(
        deployment::settle(&b.cp, &execution, Duration::from_secs(30)).await,
        Some(PipelineExecutionStatus::Succeeded)
    );
    let prod = "secure-mlops--churn-prod";
    let mut expected: Vec<(String, String)> = PROD
        .iter()
        .flat_map(|a| ["eu-west-1", "us-east-1"].map(|r| (a.to_string(), r.to_owned())))
        .collect();
    expected.sort();
    assert_eq!(b.instances(prod).await, expected);
    assert_eq!(
        b.parameter(prod, "InstanceCount").await.as_deref(),
        Some("2")
    );
    assert_eq!(
        b.outputs(&execution, "Production")["EndpointName"],
        "secure-mlops-churn-prod"
    );

    // The next version updates the existing stack set in place (same instances, new parameters).
    let v2 = b.version(ModelApprovalStatus::Approved).await;
    let second = deployment::start(&b.cp, &v2).await;
    assert_eq!(
        deployment::settle(&b.cp, &second, Duration::from_secs(30)).await,
        None
    );
    assert_eq!(
        b.parameter(staging, "ModelPackageArn").await.as_deref(),
        Some(v2.as_str())
    );
    assert_eq!(b.instances(staging).await.len(), 8);
    let token =
        b.f.invocations()
            .iter()
            .rev()
            .find_map(|i| {
                i.payload["CodePipeline.job"]["data"]["continuationToken"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap();
    assert!(token.contains("\"phase\":\"update\""), "{token}");
    let approval = deployment::approval_token(&b.cp).await.unwrap();
    deployment::approve(&b.cp, &approval, false).await;
    assert_eq!(
        deployment::settle(&b.cp, &second, Duration::from_secs(30)).await,
        Some(PipelineExecutionStatus::Failed)
    );
    assert_eq!(
        b.parameter(prod, "ModelPackageArn").await.as_deref(),
        Some(v1.as_str()),
        "a rejected approval leaves production alone"
    );
    // Each job's outcome is a metric (CloudWatch EMF in the logs), with its stage.
    let deployed = b.f.metric("Jobs", "Deployed");
    assert!(
        deployed.iter().any(|d| d["Stage"] == "staging")
            && deployed.iter().any(|d| d["Stage"] == "prod"),
        "{:#?}",
        b.f.metrics()
    );
    // And every AWS call an X-Ray subsegment under its invocation's trace.
    let segments = b.f.trace_segments();
    assert!(
        segments
            .iter()
            .any(|s| s["name"] == "CloudFormation"
                && s["aws"]["operation"] == "CreateStackInstances"),
        "{segments:#?}"
    );
}

#[tokio::test]
async fn a_version_no_longer_approved_fails_the_stage_with_the_reason() {
    let b = bed().await;
    let rejected = b.version(ModelApprovalStatus::Rejected).await;
    let execution = deployment::start(&b.cp, &rejected).await;
    assert_eq!(
        deployment::settle(&b.cp, &execution, Duration::from_secs(30)).await,
        Some(PipelineExecutionStatus::Failed)
    );
    let state =
        b.cp.get_pipeline_state()
            .name(PIPELINE)
            .send()
            .await
            .unwrap();
    let staging = state
        .stage_states()
        .iter()
        .find(|s| s.stage_name() == Some("DeployStaging"))
        .unwrap();
    let message = staging.action_states()[0]
        .latest_execution()
        .and_then(|l| l.error_details())
        .and_then(|d| d.message())
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("is Rejected (not Approved)"), "{message}");
    assert!(
        b.cfn
            .describe_stack_set()
            .stack_set_name("secure-mlops--churn-staging")
            .send()
            .await
            .is_err(),
        "nothing deployed"
    );
}

/// The rules the endpoint template must keep (moto does not enforce them): network isolation, the
/// account's VPC, KMS on the volume and on data capture, one endpoint named by the pipeline.
#[test]
fn the_endpoint_template_keeps_its_security_settings() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/stacksets/model-endpoint.yaml"
    ))
    .unwrap();
    let t: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let r = &t["Resources"];
    assert_eq!(
        r["Model"]["Properties"]["EnableNetworkIsolation"],
        serde_yaml_ng::Value::Bool(true)
    );
    assert!(!r["Model"]["Properties"]["VpcConfig"]["Subnets"].is_null());
    assert!(!r["EndpointConfig"]["Properties"]["KmsKeyId"].is_null());
    // Instance types with local NVMe storage cannot take a volume key: it is left out for them.
    assert!(
        text.contains("KmsKeyId: !If [UsesVolumeKey, !Ref KmsKeyArn, !Ref AWS::NoValue]")
            && text.contains("UsesVolumeKey: !Equals [!Ref InstanceStorage, ebs]"),
        "the endpoint config's KmsKeyId depends on InstanceStorage"
    );
    assert!(
        text.contains("KmsKeyId: !Ref KmsKeyArn\n          CaptureOptions"),
        "data capture is encrypted"
    );
    // Deployment guardrails: blue/green with automatic rollback on the template's own two alarms.
    let config = &r["Endpoint"]["Properties"]["DeploymentConfig"];
    assert_eq!(
        config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"].as_str(),
        Some("ALL_AT_ONCE")
    );
    let alarms = config["AutoRollbackConfiguration"]["Alarms"]
        .as_sequence()
        .expect("rollback alarms");
    assert_eq!(alarms.len(), 2);
    for (alarm, metric) in [
        ("ErrorsAlarm", "Invocation5XXErrors"),
        ("LatencyAlarm", "ModelLatency"),
    ] {
        assert_eq!(r[alarm]["Properties"]["MetricName"].as_str(), Some(metric));
        assert!(
            text.contains(&format!("- AlarmName: !Ref {alarm}")),
            "{alarm}"
        );
    }
    for p in [
        "ModelPackageArn",
        "ImageUri",
        "ModelDataUrl",
        "EndpointName",
        "Stage",
        "InstanceType",
        "InstanceCount",
        "InstanceStorage",
    ] {
        assert!(!t["Parameters"][p].is_null(), "stackset-deploy passes {p}");
    }
}

/// Anyone allowed to invoke the function can send a job event that says `prod`: the function reads
/// the job back from CodePipeline, so a made-up job, or the job of a pipeline that is not ours, deploys
/// nothing and is not reported (it is not ours to report).
#[tokio::test]
async fn forged_and_foreign_jobs_deploy_nothing() {
    let b = bed().await;
    let v1 = b.version(ModelApprovalStatus::Approved).await;
    let forged = serde_json::json!({"CodePipeline.job": {"id": "0a1b2c3d-0000-4abc-8000-0123456789ab",
        "accountId": "123456789012", "data": {"actionConfiguration": {"configuration": {
        "UserParameters": format!(r#"{{"Stage": "prod", "ModelPackageArn": "{v1}", "ExecutionId": "x"}}"#)}}}}});
    match b.f.invoke(&forged).await {
        testbed::harness::Invoked::Error(e) => {
            assert!(e.to_string().contains("JobNotFoundException"), "{e}")
        }
        other => panic!("a forged job must fail the invocation: {other:?}"),
    }
    let calls = b.f.aws_calls();
    assert!(
        calls.len() == 1 && calls[0].contains("GetJobDetails"),
        "{calls:#?}"
    );

    // A real job, of a pipeline this function does not serve: refused; its action times out.
    b.fx.twin.set_duration("pipeline.job_timeout", 3.0);
    b.hand_made(
        "someone-elses-pipeline",
        r##"{"ModelPackageArn": "#{variables.ModelPackageArn}", "TemplateVersion": "#{Template.VersionId}"}"##,
    )
    .await;
    let (status, summary) = b.run("someone-elses-pipeline", &v1).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    assert!(summary.contains("did not report a job result"), "{summary}");
    assert!(b.stack_set_calls().is_empty(), "{:#?}", b.f.aws_calls());
    assert!(
        b.f.logs().iter().any(|l| l.contains("refused")
            && l.contains("someone-elses-pipeline")
            && l.contains("PIPELINE_NAMES")),
        "the refusal is logged with the pipeline it came from"
    );
}

/// Our pipeline, wrong parameters: text after the JSON object, or a package of a group that is not
/// configured, fail the job with the reason and deploy nothing.
#[tokio::test]
async fn strict_parameters_and_configured_groups_only() {
    let b = bed().await;
    let v1 = b.version(ModelApprovalStatus::Approved).await;
    b.hand_made(
        HAND_MADE,
        r##"{"ModelPackageArn": "#{variables.ModelPackageArn}", "TemplateVersion": "#{Template.VersionId}"} {"Stage": "prod"}"##,
    )
    .await;
    let (status, summary) = b.run(HAND_MADE, &v1).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    assert!(summary.contains("text after the JSON object"), "{summary}");

    b.sm.create_model_package_group()
        .model_package_group_name("fraud")
        .send()
        .await
        .unwrap();
    let fraud = deployment::register_version(
        &b.sm,
        "fraud",
        "s3://models/fraud/model.tar.gz",
        ModelApprovalStatus::Approved,
    )
    .await;
    let (status, summary) = b.run(PIPELINE, &fraud).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    assert!(
        summary.contains(r#"model package group "fraud" is not configured"#),
        "{summary}"
    );
    assert!(b.stack_set_calls().is_empty(), "{:#?}", b.f.aws_calls());
}

/// The template object overwritten while an execution waits at the approval: production deploys the
/// version staging ran (the `TemplateURL` of both stack-set calls names it), not the new one.
#[tokio::test]
async fn production_deploys_the_template_version_staging_ran() {
    let b = bed().await;
    let v1 = b.version(ModelApprovalStatus::Approved).await;
    let ran =
        b.s3.head_object()
            .bucket("artifacts")
            .key(deployment::TEMPLATE_KEY)
            .send()
            .await
            .unwrap()
            .version_id
            .unwrap();
    let execution = deployment::start(&b.cp, &v1).await;
    assert_eq!(
        deployment::settle(&b.cp, &execution, Duration::from_secs(30)).await,
        None
    );
    let mut changed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/stacksets/model-endpoint.yaml"
    ))
    .unwrap();
    changed.extend_from_slice(b"# written while production waited\n");
    let newer = deployment::put_template(&b.s3, "artifacts", changed).await;
    assert_ne!(newer, ran);
    let approval = deployment::approval_token(&b.cp).await.unwrap();
    deployment::approve(&b.cp, &approval, true).await;
    assert_eq!(
        deployment::settle(&b.cp, &execution, Duration::from_secs(30)).await,
        Some(PipelineExecutionStatus::Succeeded)
    );
    let urls: Vec<String> = ["CreateStackSet", "UpdateStackSet"]
        .iter()
        .flat_map(|op| b.f.aws_requests(op))
        .filter_map(|body| {
            let form = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("TemplateURL="))?;
            let url = percent_encoding::percent_decode_str(form)
                .decode_utf8()
                .ok()?;
            let (_, version) = url.split_once("?versionId=")?;
            Some(
                percent_encoding::percent_decode_str(version)
                    .decode_utf8()
                    .ok()?
                    .into_owned(),
            )
        })
        .collect();
    assert_eq!(urls, [ran.clone(), ran.clone()], "staging and production");
    assert_eq!(
        b.outputs(&execution, "Production")["TemplateVersion"],
        ran.as_str()
    );
}

/// The execution (status, summary) of `id` in the twin.
fn execution(b: &Bed, id: &str) -> (String, String) {
    let w = b.fx.twin.lock();
    let e = w.cp.executions.iter().find(|e| e.id == id).unwrap();
    (e.status.clone(), e.summary.clone().unwrap_or_default())
}

async fn until_at_approval(b: &Bed, id: &str) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = b.fx.twin.lock().cp.approval_token(id) {
            return t;
        }
        assert!(
            std::time::Instant::now() < end,
            "{id} never reached its approval: {:?}",
            execution(b, id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The template's pipeline runs in PARALLEL mode: two groups approved in quick succession each reach
/// production while the other waits at its approval; three quick approvals of one group end with the
/// latest version in both stages, and each older execution fails with a reason naming the newer version
/// — none is superseded without a word.
#[tokio::test]
async fn no_deployment_is_lost_or_held_back_by_another() {
    let b = bed().await;
    b.sm.create_model_package_group()
        .model_package_group_name("ranking")
        .send()
        .await
        .unwrap();
    let churn1 = b.version(ModelApprovalStatus::Approved).await;
    let a = deployment::start(&b.cp, &churn1).await;
    let token_a = until_at_approval(&b, &a).await;
    let ranking1 = deployment::register_version(
        &b.sm,
        "ranking",
        "s3://models/ranking/model.tar.gz",
        ModelApprovalStatus::Approved,
    )
    .await;
    let r = deployment::start(&b.cp, &ranking1).await;
    // Ranking reaches its own approval while churn's waits, and production before churn's approval.
    let token_r = until_at_approval(&b, &r).await;
    deployment::approve(&b.cp, &token_r, true).await;
    assert_eq!(
        deployment::settle(&b.cp, &r, Duration::from_secs(30)).await,
        Some(PipelineExecutionStatus::Succeeded)
    );
    assert_eq!(
        b.parameter("secure-mlops--ranking-prod", "ModelPackageArn")
            .await
            .as_deref(),
        Some(ranking1.as_str())
    );
    assert_eq!(
        execution(&b, &a).0,
        "InProgress",
        "churn still waits for its own approval"
    );
    deployment::approve(&b.cp, &token_a, true).await;
    assert_eq!(
        deployment::settle(&b.cp, &a, Duration::from_secs(30)).await,
        Some(PipelineExecutionStatus::Succeeded)
    );

    // Three quick approvals of churn.
    let mut versions = Vec::new();
    for _ in 0..3 {
        versions.push(b.version(ModelApprovalStatus::Approved).await);
    }
    let mut executions = Vec::new();
    for v in &versions {
        executions.push(deployment::start(&b.cp, v).await);
    }
    let latest = versions[2].clone();
    let token = until_at_approval(&b, &executions[2]).await;
    deployment::approve(&b.cp, &token, true).await;
    assert_eq!(
        deployment::settle(&b.cp, &executions[2], Duration::from_secs(30)).await,
        Some(PipelineExecutionStatus::Succeeded)
    );
    for stage in ["staging", "prod"] {
        assert_eq!(
            b.parameter(&format!("secure-mlops--churn-{stage}"), "ModelPackageArn")
                .await
                .as_deref(),
            Some(latest.as_str()),
            "{stage} runs the latest version"
        );
    }
    for e in &executions[..2] {
        let (status, summary) = execution(&b, e);
        assert_eq!(status, "Failed", "{summary}");
        assert!(
            summary.starts_with(&format!(
                "superseded: {latest} is the latest Approved version"
            )),
            "{summary}"
        );
    }
    assert!(
        b.fx.twin
            .lock()
            .cp
            .executions
            .iter()
            .all(|e| e.status != "Superseded"),
        "no execution is superseded silently"
    );
}

/// Staging is checked before anyone is asked to approve: an endpoint that answers the sample request
/// with a 500 fails the stage naming its account; then, with a bake time, a rollback alarm that fires in
/// one staging account while staging bakes fails it too — the approval is never reached.
#[tokio::test]
async fn a_failing_staging_endpoint_or_alarm_fails_the_stage_before_the_approval() {
    let b = bed_with(|c| c.env("BAKE_SECONDS", "3")).await;
    let staging: Vec<String> = b.org.expected(&["Staging"], true);
    // Every attempt of the SDK's standard retry (3) answers 500: one endpoint fails.
    b.fx.twin.inject("InvokeEndpoint", Fault::Server, 3);
    let v1 = b.version(ModelApprovalStatus::Approved).await;
    let execution = deployment::start(&b.cp, &v1).await;
    assert_eq!(
        deployment::settle(&b.cp, &execution, Duration::from_secs(30)).await,
        Some(PipelineExecutionStatus::Failed)
    );
    let (_, summary) = execution_of(&b, &execution);
    assert!(
        summary.starts_with("smoke test failed: 1 of 8 staging endpoints did not answer"),
        "{summary}"
    );
    assert!(
        staging
            .iter()
            .any(|a| summary.contains(&format!("{a}/us-east-1: "))),
        "the account is named: {summary}"
    );
    assert!(deployment::approval_token(&b.cp).await.is_none());

    // Healthy endpoints and quiet alarms: smoke test and bake pass, the approval is reached.
    b.fx.twin.set_duration("pipeline.continuation", 0.5);
    let healthy = b.version(ModelApprovalStatus::Approved).await;
    let execution = deployment::start(&b.cp, &healthy).await;
    assert_eq!(
        deployment::settle(&b.cp, &execution, Duration::from_secs(30)).await,
        None,
        "waits at the approval"
    );
    assert_eq!(
        b.outputs(&execution, "Staging")["SmokeTest"],
        "passed in 8 accounts/regions"
    );

    // Then an alarm in one account while staging bakes.
    let bakes = |b: &Bed| b.f.logs().iter().filter(|l| l.contains("Bake")).count();
    let before = bakes(&b);
    let v2 = b.version(ModelApprovalStatus::Approved).await;
    let execution = deployment::start(&b.cp, &v2).await;
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while bakes(&b) == before {
        assert!(std::time::Instant::now() < end, "never baked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let broken = &staging[3];
    deployment::set_alarm(
        &b.fx.config,
        &b.fx.moto.endpoint,
        broken,
        "us-east-1",
        "secure-mlops-churn-staging-5xx",
    )
    .await;
    let end = std::time::Instant::now() + Duration::from_secs(30);
    let summary = loop {
        let (status, summary) = execution_of(&b, &execution);
        if status != "InProgress" {
            assert_eq!(status, "Failed", "{summary}");
            break summary;
        }
        assert!(std::time::Instant::now() < end, "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        summary,
        format!(
            "bake time failed: staging alarms in ALARM: {broken}/us-east-1: secure-mlops-churn-staging-5xx"
        )
    );
}

fn execution_of(b: &Bed, id: &str) -> (String, String) {
    let w = b.fx.twin.lock();
    let e = w.cp.executions.iter().find(|e| e.id == id).unwrap();
    (e.status.clone(), e.summary.clone().unwrap_or_default())
}

/// Sends `Custom::EndpointRetirement` request `kind` (from `stack`, the bed's application stack unless
/// given) to `f`; the one response CloudFormation gets.
async fn retirement(
    f: &Harness,
    key: &str,
    kind: &str,
    props: serde_json::Value,
    old: Option<serde_json::Value>,
    stack: Option<&str>,
) -> serde_json::Value {
    let physical = (kind != "Create").then_some("secure-mlops-endpoint-retirement");
    let mut event = testbed::cfn::request(
        kind,
        &f.response_url(key),
        "Custom::EndpointRetirement",
        "EndpointRetirement",
        props,
        physical,
        old,
    );
    if let Some(stack) = stack {
        event["StackId"] = serde_json::json!(stack);
    }
    f.invoke_async(&event);
    let r = f.wait_for_response(key, Duration::from_secs(30)).await;
    assert_eq!(r.len(), 1, "exactly one response: {r:#?}");
    r[0].body.clone()
}

/// Retirement: a group removed from `ModelPackageGroups` keeps its endpoints unless
/// `RetireRemovedGroups` is true (also when switched on after the group was removed); then its staging
/// and production stack sets lose their instances (and
/// the endpoints' stacks in every account) and are deleted, while the other group's stay as they are
/// and a same-named stack set without the project tag is left alone. Only the application stack may
/// ask, and never for a group the function still deploys. Deleting the stack retires the rest only
/// with `RetireOnDelete`.
#[tokio::test]
async fn a_removed_group_is_retired_only_when_asked_and_only_it() {
    let b = bed().await;
    b.sm.create_model_package_group()
        .model_package_group_name("ranking")
        .send()
        .await
        .unwrap();
    for group in ["churn", "ranking"] {
        let v = deployment::register_version(
            &b.sm,
            group,
            &format!("s3://models/{group}/model.tar.gz"),
            ModelApprovalStatus::Approved,
        )
        .await;
        let e = deployment::start(&b.cp, &v).await;
        assert_eq!(
            deployment::settle(&b.cp, &e, Duration::from_secs(30)).await,
            None
        );
        let token = deployment::approval_token(&b.cp).await.unwrap();
        deployment::approve(&b.cp, &token, true).await;
        assert_eq!(
            deployment::settle(&b.cp, &e, Duration::from_secs(30)).await,
            Some(PipelineExecutionStatus::Succeeded)
        );
    }
    let churn = (
        b.instances("secure-mlops--churn-staging").await,
        b.instances("secure-mlops--churn-prod").await,
    );
    assert_eq!((churn.0.len(), churn.1.len()), (8, 4));
    assert_eq!(b.instances("secure-mlops--ranking-prod").await.len(), 4);
    // A stack set with one of our names that this project did not make (no project tag).
    b.cfn
        .create_stack_set()
        .stack_set_name("secure-mlops--legacy-staging")
        .template_body(r#"{"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}"#)
        .send()
        .await
        .unwrap();
    let all = serde_json::json!({"ModelPackageGroups": "churn,ranking,legacy"});
    let created = retirement(&b.f, "create", "Create", all.clone(), None, None).await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");

    // Another stack of the same account: refused, nothing touched.
    let other = testbed::cfn::STACK_ID.replace("secure-mlops-demo", "someone-else");
    let forged = retirement(
        &b.f,
        "forged",
        "Update",
        serde_json::json!({"ModelPackageGroups": "churn", "RetireRemovedGroups": "true"}),
        Some(all.clone()),
        Some(&other),
    )
    .await;
    assert_eq!(forged["Status"], "FAILED");
    assert!(
        forged["Reason"]
            .as_str()
            .unwrap()
            .contains("not this function's application stack"),
        "{forged}"
    );
    // The function still deploys ranking (the template passes the same list to both): refused.
    let disagree = retirement(
        &b.f,
        "disagree",
        "Update",
        serde_json::json!({"ModelPackageGroups": "churn", "RetireRemovedGroups": "true"}),
        Some(all.clone()),
        None,
    )
    .await;
    assert_eq!(disagree["Status"], "FAILED");
    assert!(
        disagree["Reason"]
            .as_str()
            .unwrap()
            .contains("\"ranking\" was removed here but this function still deploys it"),
        "{disagree}"
    );
    assert!(
        !b.stack_set_calls().iter().any(|c| c.contains("Delete")),
        "{:#?}",
        b.stack_set_calls()
    );

    // The stack update: the function now deploys churn only, and so does the resource. (A 3-second
    // function timeout and 1-second polls: the retirement goes on in continuations, as on AWS.)
    let g = Harness::start(
        function(&b.fx)
            .env("MODEL_PACKAGE_GROUPS", "churn")
            .env("SECURE_MLOPS_POLL_BASE_MS", "1000")
            .timeout(Duration::from_secs(3)),
    )
    .await;
    let kept = retirement(
        &g,
        "kept",
        "Update",
        serde_json::json!({"ModelPackageGroups": "churn"}),
        Some(all.clone()),
        None,
    )
    .await;
    assert_eq!(kept["Status"], "SUCCESS", "{kept}");
    assert_eq!(
        kept["Data"]["Kept"], "secure-mlops--ranking-staging,secure-mlops--ranking-prod",
        "the default keeps the endpoints and says which"
    );
    assert_eq!(b.instances("secure-mlops--ranking-staging").await.len(), 8);

    // Retirement switched on in a later update: the group kept earlier is no longer in this update's
    // difference, and goes all the same (every project stack set whose group is not configured).
    let retired = retirement(
        &g,
        "retired",
        "Update",
        serde_json::json!({"ModelPackageGroups": "churn", "RetireRemovedGroups": "true"}),
        Some(serde_json::json!({"ModelPackageGroups": "churn"})),
        None,
    )
    .await;
    assert_eq!(retired["Status"], "SUCCESS", "{retired}");
    assert_eq!(
        retired["Data"]["Retired"],
        "secure-mlops--ranking-staging,secure-mlops--ranking-prod"
    );
    assert!(g.invoke_api_calls() >= 1, "continued in another invocation");
    let skipped = retired["Data"]["Skipped"].as_str().unwrap();
    assert!(
        skipped.contains("secure-mlops--legacy-staging (not tagged for this project"),
        "{skipped}"
    );
    assert!(
        skipped.contains("secure-mlops--legacy-prod (absent)"),
        "{skipped}"
    );
    for gone in [
        "secure-mlops--ranking-staging",
        "secure-mlops--ranking-prod",
    ] {
        let e = b
            .cfn
            .describe_stack_set()
            .stack_set_name(gone)
            .send()
            .await
            .expect_err("deleted");
        assert!(format!("{e:?}").contains("StackSetNotFound"), "{e:?}");
    }
    // The endpoints' stacks went with the instances; churn's stay, as do its stack sets.
    let account = &churn.0[0].0;
    let sm = deployment::sagemaker_in(&b.fx.config, account, "us-east-1").await;
    let endpoints: Vec<String> = sm
        .list_endpoints()
        .send()
        .await
        .unwrap()
        .endpoints()
        .iter()
        .map(|e| e.endpoint_name().unwrap_or_default().to_owned())
        .collect();
    // (moto names a template's endpoint after its stack: `StackSet:<stack set>-Endpoint-…`.)
    assert!(
        endpoints.len() == 1 && endpoints[0].contains("secure-mlops--churn-staging"),
        "{endpoints:?}"
    );
    assert_eq!(b.instances("secure-mlops--churn-staging").await, churn.0);
    assert_eq!(b.instances("secure-mlops--churn-prod").await, churn.1);
    assert!(
        b.cfn
            .describe_stack_set()
            .stack_set_name("secure-mlops--legacy-staging")
            .send()
            .await
            .is_ok()
    );

    // Deleting the application stack keeps the rest by default, retires it with RetireOnDelete.
    let props = serde_json::json!({"ModelPackageGroups": "churn"});
    let deleted = retirement(&g, "delete-keep", "Delete", props, None, None).await;
    assert_eq!(deleted["Status"], "SUCCESS", "{deleted}");
    assert_eq!(b.instances("secure-mlops--churn-prod").await, churn.1);
    let props = serde_json::json!({"ModelPackageGroups": "churn", "RetireOnDelete": "true"});
    let deleted = retirement(&g, "delete", "Delete", props, None, None).await;
    assert_eq!(deleted["Status"], "SUCCESS", "{deleted}");
    assert_eq!(
        deleted["Data"]["Retired"],
        "secure-mlops--churn-staging,secure-mlops--churn-prod"
    );
    assert!(
        sm.list_endpoints()
            .send()
            .await
            .unwrap()
            .endpoints()
            .is_empty()
    );
}
