//! Fidelity of the CodePipeline twin, driven with the real `aws-sdk-codepipeline`, with a real Lambda
//! invoke action (`pipeline-probe`) running under the harness.

use std::time::{Duration, Instant};

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ApprovalResult, ApprovalStatus, ExecutionMode,
    InputArtifact, OutputArtifact, PipelineExecutionStatus, PipelineType, PipelineVariable,
    StageDeclaration,
};
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use serde_json::Value;
use testbed::bins;
use testbed::deployment::action;
use testbed::fixture::Fixture;
use testbed::harness::{Config, Harness};

struct Bed {
    cp: Client,
    h: Harness,
    s3: aws_sdk_s3::Client,
    fx: Fixture,
}

/// The twin, with moto behind it holding the source object `artifacts/endpoint.yaml` in a versioned
/// bucket (CodePipeline's S3 source reads a versioned object).
async fn bed() -> Bed {
    let fx = Fixture::start().await;
    let s3 = fx.moto.s3().await;
    s3.create_bucket().bucket("artifacts").send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket("artifacts")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("artifacts")
        .key("endpoint.yaml")
        .body(b"v1".to_vec().into())
        .send()
        .await
        .unwrap();
    let twin = &fx.twin;
    twin.set_duration("pipeline.continuation", 0.1);
    let h = Harness::start(
        Config::new(bins::path("pipeline-probe"), "pipeline-probe")
            .env("AWS_ENDPOINT_URL_CODEPIPELINE", &twin.endpoint),
    )
    .await;
    twin.register_lambda("pipeline-probe", h.endpoint());
    Bed {
        cp: fx.codepipeline(),
        h,
        s3,
        fx,
    }
}

fn lambda(name: &str, namespace: &str, params: &str) -> ActionDeclaration {
    action(
        name,
        ActionCategory::Invoke,
        "Lambda",
        &[
            ("FunctionName", "pipeline-probe"),
            ("UserParameters", params),
        ],
    )
    .namespace(namespace)
    .input_artifacts(InputArtifact::builder().name("Template").build().unwrap())
    .build()
    .unwrap()
}

fn stage(name: &str, action: ActionDeclaration) -> StageDeclaration {
    StageDeclaration::builder()
        .name(name)
        .actions(action)
        .build()
        .unwrap()
}

/// Source → DeployStaging (continues twice) → ApproveProduction → DeployProduction.
async fn create(b: &Bed, name: &str, staging_params: &str) {
    create_in_mode(b, name, staging_params, None).await
}

async fn create_in_mode(b: &Bed, name: &str, staging_params: &str, mode: Option<ExecutionMode>) {
    let source = action(
        "Source",
        ActionCategory::Source,
        "S3",
        &[("S3Bucket", "artifacts"), ("S3ObjectKey", "endpoint.yaml")],
    )
    .namespace("Source")
    .output_artifacts(OutputArtifact::builder().name("Template").build().unwrap())
    .build()
    .unwrap();
    let approval = action("Approve", ActionCategory::Approval, "Manual", &[])
        .build()
        .unwrap();
    let pipeline = testbed::deployment::declaration(name, "artifacts")
        .set_execution_mode(mode)
        .stages(stage("Source", source))
        .stages(stage(
            "DeployStaging",
            lambda("Staging", "StagingOut", staging_params),
        ))
        .stages(stage("ApproveProduction", approval))
        .stages(stage(
            "DeployProduction",
            lambda(
                "Production",
                "ProdOut",
                r##"{"Stage": "prod", "After": "#{StagingOut.Invocations}"}"##,
            ),
        ))
        .build()
        .unwrap();
    b.cp.create_pipeline()
        .pipeline(pipeline)
        .send()
        .await
        .expect("CreatePipeline");
}

async fn start(b: &Bed, name: &str, token: &str) -> String {
    b.cp.start_pipeline_execution()
        .name(name)
        .client_request_token(token)
        .variables(
            PipelineVariable::builder()
                .name("ModelPackageArn")
                .value("arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("StartPipelineExecution")
        .pipeline_execution_id()
        .unwrap()
        .to_owned()
}

async fn status(b: &Bed, name: &str, id: &str) -> PipelineExecutionStatus {
    let e =
        b.cp.get_pipeline_execution()
            .pipeline_name(name)
            .pipeline_execution_id(id)
            .send()
            .await
            .unwrap();
    e.pipeline_execution().unwrap().status().unwrap().clone()
}

/// The approval token, once the pipeline waits at the manual approval.
async fn approval_token(b: &Bed, name: &str) -> String {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let state = b.cp.get_pipeline_state().name(name).send().await.unwrap();
        let token = state
            .stage_states()
            .iter()
            .find(|s| s.stage_name() == Some("ApproveProduction"))
            .and_then(|s| s.action_states().first())
            .and_then(|a| a.latest_execution())
            .and_then(|l| l.token().map(str::to_owned));
        if let Some(token) = token {
            return token;
        }
        assert!(Instant::now() < end, "never reached the approval");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_status(b: &Bed, name: &str, id: &str, want: PipelineExecutionStatus) {
    let end = Instant::now() + Duration::from_secs(15);
    while status(b, name, id).await != want {
        assert!(Instant::now() < end, "execution never became {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Lambda invoke action that continues twice (PutJobSuccessResult with a continuationToken), then a
/// manual approval, then success; the Lambda receives real `CodePipeline.job` events with resolved
/// `#{variables.…}` and `#{Namespace.…}` references; clientRequestToken makes StartPipelineExecution
/// idempotent.
#[tokio::test]
async fn continuation_approval_and_success_end_to_end() {
    let b = bed().await;
    create(
        &b,
        "deploy",
        r##"{"Continue": 2, "Model": "#{variables.ModelPackageArn}"}"##,
    )
    .await;
    let id = start(&b, "deploy", "event-1").await;
    assert_eq!(
        start(&b, "deploy", "event-1").await,
        id,
        "same clientRequestToken, same execution"
    );
    let token = approval_token(&b, "deploy").await;
    assert_eq!(
        status(&b, "deploy", &id).await,
        PipelineExecutionStatus::InProgress
    );

    let staging: Vec<Value> = b.h.invocations().into_iter().map(|i| i.payload).collect();
    assert_eq!(staging.len(), 3, "initial invocation + 2 continuations");
    let job = &staging[0]["CodePipeline.job"];
    let params: Value = serde_json::from_str(
        job["data"]["actionConfiguration"]["configuration"]["UserParameters"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        params["Model"],
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
    );
    assert_eq!(
        job["data"]["inputArtifacts"][0]["location"]["s3Location"]["objectKey"],
        "endpoint.yaml"
    );
    assert!(job["data"].get("continuationToken").is_none());
    assert_eq!(
        staging[1]["CodePipeline.job"]["data"]["continuationToken"],
        "1"
    );
    assert_eq!(
        staging[2]["CodePipeline.job"]["data"]["continuationToken"],
        "2"
    );

    let wrong =
        b.cp.put_approval_result()
            .pipeline_name("deploy")
            .stage_name("ApproveProduction")
            .action_name("Approve")
            .token("not-the-token")
            .result(
                ApprovalResult::builder()
                    .status(ApprovalStatus::Approved)
                    .summary("ok")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(wrong.code(), Some("InvalidApprovalTokenException"));
    b.cp.put_approval_result()
        .pipeline_name("deploy")
        .stage_name("ApproveProduction")
        .action_name("Approve")
        .token(&token)
        .result(
            ApprovalResult::builder()
                .status(ApprovalStatus::Approved)
                .summary("looks good")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    wait_status(&b, "deploy", &id, PipelineExecutionStatus::Succeeded).await;

    let prod = &b.h.invocations()[3].payload["CodePipeline.job"];
    let params: Value = serde_json::from_str(
        prod["data"]["actionConfiguration"]["configuration"]["UserParameters"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        params["After"], "3",
        "output variable of the staging action"
    );
    let listed =
        b.cp.list_pipeline_executions()
            .pipeline_name("deploy")
            .send()
            .await
            .unwrap();
    assert_eq!(listed.pipeline_execution_summaries().len(), 1);
    let exec =
        b.cp.get_pipeline_execution()
            .pipeline_name("deploy")
            .pipeline_execution_id(&id)
            .send()
            .await
            .unwrap();
    let var = &exec.pipeline_execution().unwrap().variables()[0];
    assert_eq!(
        var.resolved_value(),
        Some("arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3")
    );
    let state =
        b.cp.get_pipeline_state()
            .name("deploy")
            .send()
            .await
            .unwrap();
    assert!(
        state
            .stage_states()
            .iter()
            .all(|s| s.latest_execution().map(|l| l.status().as_str()) == Some("Succeeded"))
    );
}

/// PutJobFailureResult fails the action, the stage and the execution; a rejected approval too.
#[tokio::test]
async fn job_failure_and_rejection_fail_the_execution() {
    let b = bed().await;
    create(&b, "failing", r#"{"Fail": true}"#).await;
    let id = start(&b, "failing", "e-1").await;
    wait_status(&b, "failing", &id, PipelineExecutionStatus::Failed).await;
    let exec =
        b.cp.get_pipeline_execution()
            .pipeline_name("failing")
            .pipeline_execution_id(&id)
            .send()
            .await
            .unwrap();
    assert_eq!(
        exec.pipeline_execution().unwrap().status_summary(),
        Some("the probe failed as asked")
    );

    create(&b, "rejected", "{}").await;
    let id = start(&b, "rejected", "e-2").await;
    let token = approval_token(&b, "rejected").await;
    b.cp.put_approval_result()
        .pipeline_name("rejected")
        .stage_name("ApproveProduction")
        .action_name("Approve")
        .token(&token)
        .result(
            ApprovalResult::builder()
                .status(ApprovalStatus::Rejected)
                .summary("not now")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    wait_status(&b, "rejected", &id, PipelineExecutionStatus::Failed).await;
}

/// Unknown pipelines, undeclared variables and unknown jobs are rejected with CodePipeline's codes.
#[tokio::test]
async fn invalid_requests_get_codepipeline_errors() {
    let b = bed().await;
    let e =
        b.cp.start_pipeline_execution()
            .name("nope")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("PipelineNotFoundException"));
    create(&b, "p", "{}").await;
    let e =
        b.cp.create_pipeline()
            .pipeline(
                b.cp.get_pipeline()
                    .name("p")
                    .send()
                    .await
                    .unwrap()
                    .pipeline()
                    .unwrap()
                    .clone(),
            )
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("PipelineNameInUseException"));
    let e =
        b.cp.start_pipeline_execution()
            .name("p")
            .variables(
                PipelineVariable::builder()
                    .name("Other")
                    .value("x")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("ValidationException"));
    let e =
        b.cp.put_job_success_result()
            .job_id("00000000-0000-0000-0000-000000000000")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("JobNotFoundException"));
    assert!(
        b.fx.twin
            .operations()
            .contains(&"PutJobSuccessResult".to_owned())
    );
}

/// The S3 source action: the object's `VersionId` and `ETag` are output variables of its namespace
/// (CodePipeline action reference, "Amazon S3 source action": output variables `ETag`, `VersionId`);
/// the version read at the start is the one every later stage sees, whatever is written meanwhile.
/// A bucket without versioning fails the source action ("the bucket must be versioned").
#[tokio::test]
async fn the_s3_source_exposes_the_version_it_read_and_needs_versioning() {
    let b = bed().await;
    let first =
        b.s3.head_object()
            .bucket("artifacts")
            .key("endpoint.yaml")
            .send()
            .await
            .unwrap()
            .version_id
            .unwrap();
    create(&b, "versions", r##"{"Version": "#{Source.VersionId}"}"##).await;
    start(&b, "versions", "v-1").await;
    approval_token(&b, "versions").await;
    // Overwritten while the execution waits at the approval.
    b.s3.put_object()
        .bucket("artifacts")
        .key("endpoint.yaml")
        .body(b"v2".to_vec().into())
        .send()
        .await
        .unwrap();
    let params: Value = serde_json::from_str(
        b.h.invocations()[0].payload["CodePipeline.job"]["data"]["actionConfiguration"]
            ["configuration"]["UserParameters"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(params["Version"], first.as_str());

    b.s3.create_bucket().bucket("plain").send().await.unwrap();
    b.s3.put_object()
        .bucket("plain")
        .key("endpoint.yaml")
        .body(b"v1".to_vec().into())
        .send()
        .await
        .unwrap();
    let source = action(
        "Source",
        ActionCategory::Source,
        "S3",
        &[("S3Bucket", "plain"), ("S3ObjectKey", "endpoint.yaml")],
    )
    .output_artifacts(OutputArtifact::builder().name("Template").build().unwrap())
    .build()
    .unwrap();
    let pipeline = testbed::deployment::declaration("unversioned", "plain")
        .stages(stage("Source", source))
        .stages(stage(
            "DeployStaging",
            lambda("Staging", "StagingOut", "{}"),
        ))
        .build()
        .unwrap();
    b.cp.create_pipeline()
        .pipeline(pipeline)
        .send()
        .await
        .unwrap();
    let id = start(&b, "unversioned", "u-1").await;
    wait_status(&b, "unversioned", &id, PipelineExecutionStatus::Failed).await;
    let exec =
        b.cp.get_pipeline_execution()
            .pipeline_name("unversioned")
            .pipeline_execution_id(&id)
            .send()
            .await
            .unwrap();
    assert!(
        exec.pipeline_execution()
            .unwrap()
            .status_summary()
            .unwrap_or_default()
            .contains("must have versioning enabled")
    );
}

/// `GetJobDetails` (API reference): the job's pipeline context — pipeline name and ARN, stage, action,
/// execution id — its action type and configuration; a job id off the documented pattern is a
/// `ValidationException`, an unknown one `JobNotFoundException`.
#[tokio::test]
async fn get_job_details_describes_the_job_as_codepipeline_ran_it() {
    let b = bed().await;
    create(&b, "described", r#"{"Continue": 1}"#).await;
    let id = start(&b, "described", "d-1").await;
    let _ = approval_token(&b, "described").await;
    // The harness records an invocation once its answer is back; the pipeline may move on first.
    let mut invocations = b.h.invocations();
    for _ in 0..100 {
        if invocations.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        invocations = b.h.invocations();
    }
    let job_id = invocations[1].payload["CodePipeline.job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let details = b.cp.get_job_details().job_id(&job_id).send().await.unwrap();
    let data = details.job_details().unwrap().data().unwrap();
    let context = data.pipeline_context().unwrap();
    assert_eq!(context.pipeline_name(), Some("described"));
    assert_eq!(
        context.pipeline_arn(),
        Some("arn:aws:codepipeline:us-east-1:123456789012:described")
    );
    assert_eq!(context.pipeline_execution_id(), Some(id.as_str()));
    assert_eq!(context.stage().unwrap().name(), Some("DeployStaging"));
    assert_eq!(context.action().unwrap().name(), Some("Staging"));
    assert_eq!(data.action_type_id().unwrap().category().as_str(), "Invoke");
    assert_eq!(data.continuation_token(), Some("1"));
    assert_eq!(
        data.action_configuration()
            .unwrap()
            .configuration()
            .unwrap()
            .get("UserParameters")
            .map(String::as_str),
        Some(r#"{"Continue": 1}"#)
    );
    for (id, code) in [
        (
            "0a1b2c3d-0000-4abc-8000-0123456789ab",
            "JobNotFoundException",
        ),
        ("job-1", "ValidationException"),
    ] {
        let e =
            b.cp.get_job_details()
                .job_id(id)
                .send()
                .await
                .unwrap_err()
                .into_service_error();
        assert_eq!(e.code(), Some(code), "{id}");
    }
}

/// Where execution `id` is: its status and the status of each stage ("" = not entered).
fn whereabouts(b: &Bed, id: &str) -> (String, Vec<String>) {
    let w = b.fx.twin.lock();
    let e = w.cp.executions.iter().find(|e| e.id == id).unwrap();
    (
        e.status.clone(),
        e.stages.iter().map(|s| s.status.clone()).collect(),
    )
}

/// Polls until `f` holds for execution `id`'s whereabouts.
async fn until(b: &Bed, id: &str, what: &str, f: impl Fn(&str, &[String]) -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, stages) = whereabouts(b, id);
        if f(&status, &stages) {
            return;
        }
        assert!(
            Instant::now() < end,
            "{id} never {what}: {status} {stages:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `id` waits at the approval (its token is out), then returns the token.
async fn waiting_for_approval(b: &Bed, id: &str) -> String {
    until(b, id, "reached the approval", |_, _| {
        b.fx.twin.lock().cp.approval_token(id).is_some()
    })
    .await;
    b.fx.twin.lock().cp.approval_token(id).unwrap()
}

async fn approve(b: &Bed, name: &str, token: &str) {
    b.cp.put_approval_result()
        .pipeline_name(name)
        .stage_name("ApproveProduction")
        .action_name("Approve")
        .token(token)
        .result(
            ApprovalResult::builder()
                .status(ApprovalStatus::Approved)
                .summary("ok")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// Staged and waiting to enter the locked approval stage.
fn staged_waiting(status: &str, stages: &[String]) -> bool {
    status == "InProgress" && stages[1] == "Succeeded" && stages[2].is_empty()
}

/// Execution modes as "How pipeline executions work" (CodePipeline User Guide) defines them, with three
/// executions and the first waiting at the manual approval. SUPERSEDED: a stage holds one execution at
/// a time, later ones wait at its entrance, and a more recent waiting execution supersedes an older
/// one. QUEUED: they wait and enter in the order they queued. PARALLEL: nobody waits.
#[tokio::test]
async fn execution_modes_decide_who_waits_and_who_is_superseded() {
    let b = bed().await;
    for mode in [
        ExecutionMode::Superseded,
        ExecutionMode::Queued,
        ExecutionMode::Parallel,
    ] {
        let name = format!("modes-{}", mode.as_str().to_lowercase());
        create_in_mode(&b, &name, "{}", Some(mode.clone())).await;
        let e1 = start(&b, &name, "e1").await;
        let t1 = waiting_for_approval(&b, &e1).await;
        let e2 = start(&b, &name, "e2").await;
        if mode == ExecutionMode::Parallel {
            let t2 = waiting_for_approval(&b, &e2).await;
            let e3 = start(&b, &name, "e3").await;
            let t3 = waiting_for_approval(&b, &e3).await;
            for t in [&t3, &t1, &t2] {
                approve(&b, &name, t).await;
            }
            for e in [&e1, &e2, &e3] {
                wait_status(&b, &name, e, PipelineExecutionStatus::Succeeded).await;
            }
            continue;
        }
        until(&b, &e2, "waited at the approval", staged_waiting).await;
        let e3 = start(&b, &name, "e3").await;
        until(&b, &e3, "waited at the approval", staged_waiting).await;
        if mode == ExecutionMode::Superseded {
            until(&b, &e2, "was superseded", |s, _| s == "Superseded").await;
            assert_eq!(
                status(&b, &name, &e2).await,
                PipelineExecutionStatus::Superseded
            );
            approve(&b, &name, &t1).await;
            let t3 = waiting_for_approval(&b, &e3).await;
            approve(&b, &name, &t3).await;
            wait_status(&b, &name, &e3, PipelineExecutionStatus::Succeeded).await;
        } else {
            approve(&b, &name, &t1).await;
            let t2 = waiting_for_approval(&b, &e2).await;
            assert!(staged_waiting(
                &whereabouts(&b, &e3).0,
                &whereabouts(&b, &e3).1
            ));
            approve(&b, &name, &t2).await;
            let t3 = waiting_for_approval(&b, &e3).await;
            approve(&b, &name, &t3).await;
            for e in [&e2, &e3] {
                wait_status(&b, &name, e, PipelineExecutionStatus::Succeeded).await;
            }
        }
        wait_status(&b, &name, &e1, PipelineExecutionStatus::Succeeded).await;
    }

    // QUEUED and PARALLEL need a V2 pipeline.
    let v1 = testbed::deployment::declaration("v1-queued", "artifacts")
        .pipeline_type(PipelineType::V1)
        .execution_mode(ExecutionMode::Queued)
        .stages(stage(
            "Approve",
            action("Approve", ActionCategory::Approval, "Manual", &[])
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap();
    let e =
        b.cp.create_pipeline()
            .pipeline(v1)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("InvalidStructureException"));
}
