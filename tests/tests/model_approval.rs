//! `model-approval` through the harness: registry changes made on the twin reach the function through
//! the template's own rule; it reads the registry (twin), the staging stack set (moto) and the pipeline
//! (twin), and starts deployments only when staging does not run the latest Approved version.

use std::time::Duration;

use aws_sdk_codepipeline::types::{ActionCategory, OutputArtifact, StageDeclaration};
use aws_sdk_sagemaker::types::ModelApprovalStatus;
use serde_json::{Value, json};
use testbed::deployment::action;
use testbed::events::Router;
use testbed::fixture::Fixture;
use testbed::harness::{Harness, Invoked};

const FUNCTION: &str = "secure-mlops-model-approval";
const PIPELINE: &str = "secure-mlops-model-deployment";

struct Bed {
    f: Harness,
    sm: aws_sdk_sagemaker::Client,
    cp: aws_sdk_codepipeline::Client,
    cfn: aws_sdk_cloudformation::Client,
    router: Router,
    s3: aws_sdk_s3::Client,
    fx: Fixture,
}

async fn bed() -> Bed {
    let fx = Fixture::start().await;
    // The pipeline's source: the endpoint template in a versioned bucket (uploaded before the routes
    // exist, so this first upload is no event).
    let s3 = fx.moto.s3().await;
    testbed::deployment::publish_template(&s3, "artifacts").await;
    let router = fx.router().await;
    let f = fx.start_function("ModelApprovalFunction").await;
    let sm = fx.sagemaker();
    let cp = fx.codepipeline();
    // The deployment pipeline, stopped at its approval so executions stay in progress.
    let pipeline = testbed::deployment::declaration(PIPELINE, "artifacts")
        .stages(
            StageDeclaration::builder()
                .name("Source")
                .actions(
                    action(
                        "Source",
                        ActionCategory::Source,
                        "S3",
                        &[
                            ("S3Bucket", "artifacts"),
                            ("S3ObjectKey", testbed::deployment::TEMPLATE_KEY),
                        ],
                    )
                    .output_artifacts(OutputArtifact::builder().name("Template").build().unwrap())
                    .build()
                    .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .stages(
            StageDeclaration::builder()
                .name("ApproveStaging")
                .actions(
                    action("Approve", ActionCategory::Approval, "Manual", &[])
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cp.create_pipeline()
        .pipeline(pipeline)
        .send()
        .await
        .unwrap();
    sm.create_model_package_group()
        .model_package_group_name("churn")
        .send()
        .await
        .unwrap();
    sm.create_model_package_group()
        .model_package_group_name("fraud")
        .send()
        .await
        .unwrap();
    Bed {
        f,
        sm,
        cp,
        cfn: aws_sdk_cloudformation::Client::new(&fx.config),
        router,
        s3,
        fx,
    }
}

impl Bed {
    async fn version(&self, group: &str) -> String {
        self.sm
            .create_model_package()
            .model_package_group_name(group)
            .send()
            .await
            .unwrap()
            .model_package_arn
            .unwrap()
    }

    async fn set(&self, arn: &str, status: ModelApprovalStatus) {
        self.sm
            .update_model_package()
            .model_package_arn(arn)
            .model_approval_status(status)
            .send()
            .await
            .unwrap();
    }

    /// The events the template's rule delivered since the last call.
    async fn delivered(&self) -> Vec<Value> {
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.router.received(FUNCTION).await
    }

    async fn invoke(&self, event: &Value) -> Value {
        match self.f.invoke(event).await {
            Invoked::Response(v) => v,
            other => panic!("{other:?}\n{:#?}", self.f.logs()),
        }
    }

    /// Delivers every routed event, returns the function's answers.
    async fn deliver_all(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for e in self.delivered().await {
            out.push(self.invoke(&e).await);
        }
        out
    }

    /// ModelPackageArn of every execution ever started, oldest first.
    async fn started(&self) -> Vec<String> {
        let w = self.fx.twin.lock();
        w.cp.executions
            .iter()
            .map(|e| {
                e.variables
                    .iter()
                    .find(|(n, _)| n == "ModelPackageArn")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Marks every execution finished and staging as running `version` (what stackset-deploy leaves: the
    /// stack set's parameter, its instances CURRENT).
    async fn staging_runs(&self, version: &str) {
        {
            let mut w = self.fx.twin.lock();
            for e in w.cp.executions.iter_mut() {
                e.status = "Succeeded".into();
            }
        }
        let param = aws_sdk_cloudformation::types::Parameter::builder()
            .parameter_key("ModelPackageArn")
            .parameter_value(version)
            .build();
        let template = r#"{"Parameters": {"ModelPackageArn": {"Type": "String"}}, "Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}"#;
        let exists = self
            .cfn
            .describe_stack_set()
            .stack_set_name("secure-mlops--churn-staging")
            .send()
            .await
            .is_ok();
        if exists {
            self.cfn
                .update_stack_set()
                .stack_set_name("secure-mlops--churn-staging")
                .template_body(template)
                .parameters(param)
                .send()
                .await
                .unwrap();
        } else {
            self.cfn
                .create_stack_set()
                .stack_set_name("secure-mlops--churn-staging")
                .template_body(template)
                .parameters(param)
                .send()
                .await
                .unwrap();
            // One instance, CURRENT (moto finishes every operation at once): the version runs.
            self.cfn
                .create_stack_instances()
                .stack_set_name("secure-mlops--churn-staging")
                .accounts("111111111111")
                .regions("us-east-1")
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn the_latest_approved_version_is_deployed_once_whatever_the_events_say() {
    let b = bed().await;
    let v1 = b.version("churn").await;
    let v2 = b.version("churn").await;
    let created = b.deliver_all().await;
    assert_eq!(
        created.len(),
        2,
        "PendingManualApproval versions also reach the function"
    );
    assert!(created.iter().all(|r| r["action"] == "none"), "{created:?}");

    // Approve v1: exactly one pipeline start, with v1.
    b.set(&v1, ModelApprovalStatus::Approved).await;
    let events = b.delivered().await;
    assert_eq!(events.len(), 1);
    let r = b.invoke(&events[0]).await;
    assert_eq!(r["action"], "started", "{r}");
    assert_eq!(r["version"], v1.as_str());
    assert_eq!(b.started().await, [v1.as_str()]);

    // The same event delivered again: still one.
    let again = b.invoke(&events[0]).await;
    assert_eq!(again["action"], "none", "{again}");
    assert_eq!(b.started().await.len(), 1);

    // Staging now runs v1. v2 approved: deploy v2.
    b.staging_runs(&v1).await;
    b.set(&v2, ModelApprovalStatus::Approved).await;
    let r = b.deliver_all().await;
    assert_eq!(r[0]["version"], v2.as_str(), "{r:?}");
    assert_eq!(r[0]["rollback"], false);
    let execution = r[0]["executionId"].as_str().unwrap().to_owned();

    // A late event for v1 (older, approved earlier) arrives while v2 deploys: nothing for v1.
    b.set(&v1, ModelApprovalStatus::Approved).await;
    let r = b.deliver_all().await;
    assert_eq!(r[0]["action"], "none", "{r:?}");
    assert!(
        r[0]["reason"]
            .as_str()
            .unwrap()
            .contains("already in progress")
    );

    // The duplicate of v2's start while it runs: the request token gives back the same execution.
    b.staging_runs(&v2).await;
    assert_eq!(b.started().await, [v1.clone(), v2.clone()]);
    let status =
        b.cp.get_pipeline_execution()
            .pipeline_name(PIPELINE)
            .pipeline_execution_id(&execution)
            .send()
            .await
            .unwrap();
    assert!(status.pipeline_execution().is_some());

    // Reject the deployed v2: roll back to v1.
    b.set(&v2, ModelApprovalStatus::Rejected).await;
    let r = b.deliver_all().await;
    assert_eq!(r[0]["action"], "started", "{r:?}");
    assert_eq!(r[0]["version"], v1.as_str());
    assert_eq!(r[0]["rollback"], true, "{r:?}");
    assert_eq!(b.started().await, [v1.clone(), v2.clone(), v1.clone()]);

    // Reject v1 too while v2 is still what staging runs: nothing approved left → alert, no start.
    b.staging_runs(&v2).await;
    b.set(&v1, ModelApprovalStatus::Rejected).await;
    let r = b.deliver_all().await;
    assert_eq!(r[0]["action"], "alert", "{r:?}");
    assert_eq!(b.started().await.len(), 3);
    // Every decision is a metric (CloudWatch EMF in the logs), by outcome.
    assert!(
        !b.f.metric("Decisions", "Started").is_empty(),
        "{:#?}",
        b.f.metrics()
    );
    assert_eq!(b.f.metric("Decisions", "Alerted").len(), 1);
    assert!(!b.f.metric("Events", "Handled").is_empty());
    // And every AWS call an X-Ray subsegment under its invocation's trace.
    let segments = b.f.trace_segments();
    assert!(
        segments
            .iter()
            .any(|s| s["name"] == "CodePipeline"
                && s["aws"]["operation"] == "StartPipelineExecution"),
        "{segments:#?}"
    );
}

#[tokio::test]
async fn other_groups_are_ignored_and_malformed_events_fail_clearly() {
    let b = bed().await;
    let arn = b.version("fraud").await;
    b.set(&arn, ModelApprovalStatus::Approved).await;
    // The template's rule already filters by group: nothing reaches the function.
    assert!(b.delivered().await.is_empty());
    // Delivered anyway (a rule edited by hand): ignored with a log line.
    let event = json!({"version": "0", "id": "e-1", "detail-type": "SageMaker Model Package State Change", "source": "aws.sagemaker",
        "account": "123456789012", "region": "us-east-1", "time": "2026-11-23T10:00:00Z", "resources": [arn],
        "detail": {"ModelPackageGroupName": "fraud", "ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}});
    let r = b.invoke(&event).await;
    assert!(r["ignored"].as_str().unwrap().contains("fraud"), "{r}");
    let mut bad = event.clone();
    bad["detail"] = json!({"ModelApprovalStatus": "Approved"});
    match b.f.invoke(&bad).await {
        Invoked::Error(e) => assert!(e.to_string().contains("ModelPackageGroupName"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(b.started().await.is_empty());
}

/// A new version of the endpoint template (S3 `Object Created`, routed by the template's own rule)
/// redeploys what staging runs, once per event; an upload of another object is ignored.
#[tokio::test]
async fn a_new_endpoint_template_redeploys_what_runs() {
    let b = bed().await;
    let v1 = b.version("churn").await;
    b.set(&v1, ModelApprovalStatus::Approved).await;
    let r = b.deliver_all().await;
    assert_eq!(r[0]["action"], "started", "{r:?}");
    b.staging_runs(&v1).await;

    let mut body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/stacksets/model-endpoint.yaml"
    ))
    .unwrap();
    body.extend_from_slice(b"# a new release of the template\n");
    let version = testbed::deployment::put_template(&b.s3, "artifacts", body).await;
    let events = b.delivered().await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        events[0]["detail"]["object"]["version-id"],
        version.as_str()
    );
    let r = b.invoke(&events[0]).await;
    assert_eq!(r["action"], "redeploy", "{r}");
    assert_eq!(r["started"][0]["version"], v1.as_str(), "{r}");
    assert_eq!(b.started().await, [v1.clone(), v1.clone()]);
    // The same event again: the request token gives back the same execution.
    let again = b.invoke(&events[0]).await;
    assert_eq!(
        again["started"][0]["executionId"],
        r["started"][0]["executionId"]
    );
    assert_eq!(b.started().await.len(), 2);

    // Another object in the bucket: the rule does not route it; delivered anyway, it is ignored.
    b.s3.put_object()
        .bucket("artifacts")
        .key("stacksets/notes.txt")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    assert!(b.delivered().await.is_empty());
    let mut other = events[0].clone();
    other["detail"]["object"]["key"] = serde_json::json!("stacksets/notes.txt");
    let r = b.invoke(&other).await;
    assert!(
        r["ignored"]
            .as_str()
            .unwrap()
            .contains("not the endpoint template"),
        "{r}"
    );
    assert_eq!(b.started().await.len(), 2);
}
