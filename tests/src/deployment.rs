//! The model deployment pipeline of `infra/template.yaml`, created in the twin from the template's own
//! stage list: stage and action names, namespaces, action types, artifacts and `UserParameters` come
//! from the template (intrinsics resolved for the test bed: the Lambda actions call `function`, the
//! source bucket is `bucket`), so the tests exercise the wiring that gets deployed.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ApprovalResult, ApprovalStatus,
    ArtifactStore, ArtifactStoreType, InputArtifact, OutputArtifact, PipelineDeclaration,
    PipelineExecutionStatus, PipelineType, PipelineVariable, PipelineVariableDeclaration,
    StageDeclaration,
};
use serde_json::json;
use serde_yaml_ng::Value as Yaml;

use crate::fixture::Fixture;
use crate::harness::Config;
use crate::stack::Stack;

pub const PIPELINE: &str = "secure-mlops-model-deployment";

/// The test beds' artifacts bucket (the template's `ArtifactsBucket`).
pub const ARTIFACTS_BUCKET: &str = "artifacts";

/// The endpoint template's key in the artifacts bucket.
pub const TEMPLATE_KEY: &str = "stacksets/model-endpoint.yaml";

/// Creates the artifacts `bucket` as the template's `ArtifactsBucket` — versioned (CodePipeline's S3
/// source needs it), sending its events to EventBridge — and uploads
/// `infra/stacksets/model-endpoint.yaml`; returns its version id. (Install the event routes after it
/// unless this first upload should be delivered too.)
pub async fn publish_template(s3: &aws_sdk_s3::Client, bucket: &str) -> String {
    let _ = s3.create_bucket().bucket(bucket).send().await;
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("PutBucketVersioning");
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .event_bridge_configuration(
                    aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("PutBucketNotificationConfiguration");
    let template = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../infra")
            .join(TEMPLATE_KEY),
    )
    .expect("endpoint template");
    put_template(s3, bucket, template).await
}

/// Writes `body` as the endpoint template; returns the new version id.
pub async fn put_template(s3: &aws_sdk_s3::Client, bucket: &str, body: Vec<u8>) -> String {
    s3.put_object()
        .bucket(bucket)
        .key(TEMPLATE_KEY)
        .body(body.into())
        .send()
        .await
        .expect("PutObject")
        .version_id
        .expect("a versioned bucket answers with a version id")
}

/// The project's stack with the stages a deployment test gives (as `sam deploy` parameters): staging
/// in `staging` (an OU or account id) in us-east-1, production in `prod` and `prod_regions`, and no
/// bake time (a test's choice).
pub fn targets(stack: Stack, staging: &str, prod: &[&str], prod_regions: &[&str]) -> Stack {
    stack
        .parameter("StagingTargets", json!([staging]))
        .parameter("StagingRegions", json!(["us-east-1"]))
        .parameter("ProdTargets", json!(prod))
        .parameter("ProdRegions", json!(prod_regions))
        .parameter("StagingBakeSeconds", "0")
}

/// `stackset-deploy` as the fixture's stack configures it, polling quickly.
pub fn stackset_deploy(fx: &Fixture) -> Config {
    fx.function("StacksetDeployFunction")
        .env("SECURE_MLOPS_POLL_BASE_MS", "50")
}

/// A V2 pipeline `name` with its artifact store in `bucket` and the `ModelPackageArn` variable
/// (stages to be added).
pub fn declaration(
    name: &str,
    bucket: &str,
) -> aws_sdk_codepipeline::types::builders::PipelineDeclarationBuilder {
    PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/secure-mlops-pipeline")
        .pipeline_type(PipelineType::V2)
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location(bucket)
                .build()
                .expect("store"),
        )
        .variables(
            PipelineVariableDeclaration::builder()
                .name("ModelPackageArn")
                .build()
                .expect("variable"),
        )
}

/// An action declaration of `category`/`provider` (owner AWS, version 1) with `config`.
pub fn action(
    name: &str,
    category: ActionCategory,
    provider: &str,
    config: &[(&str, &str)],
) -> aws_sdk_codepipeline::types::builders::ActionDeclarationBuilder {
    ActionDeclaration::builder()
        .name(name)
        .action_type_id(
            ActionTypeId::builder()
                .category(category)
                .owner(ActionOwner::Aws)
                .provider(provider)
                .version("1")
                .build()
                .expect("action type"),
        )
        .set_configuration(Some(
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        ))
}

fn text(y: &Yaml, function: &str, bucket: &str) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Tagged(t) if t.tag == "Ref" => match t.value.as_str()? {
            "StacksetDeployFunction" => Some(function.to_owned()),
            "ArtifactsBucket" => Some(bucket.to_owned()),
            _ => None, // e.g. NotificationArn: the twin sends no notification
        },
        _ => None,
    }
}

/// Creates the pipeline; `approval_gate` is the template's `ProductionApprovalGate`.
pub async fn create_pipeline(cp: &Client, function: &str, bucket: &str, approval_gate: bool) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let doc: Yaml = serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("template"))
        .expect("template YAML");
    let props = &doc["Resources"]["DeploymentPipeline"]["Properties"];
    // The template declares exactly the `ModelPackageArn` variable.
    assert_eq!(
        props["Variables"][0]["Name"].as_str(),
        Some("ModelPackageArn"),
        "the template's pipeline variables changed: update declaration()"
    );
    let mut pipeline = declaration(PIPELINE, bucket).set_execution_mode(
        props["ExecutionMode"]
            .as_str()
            .map(aws_sdk_codepipeline::types::ExecutionMode::from),
    );
    for stage in props["Stages"].as_sequence().expect("Stages") {
        // `!If [UseApprovalGate, <stage>, !Ref AWS::NoValue]`
        let stage = match stage {
            Yaml::Tagged(t) if t.tag == "If" => {
                if !approval_gate {
                    continue;
                }
                &t.value[1]
            }
            s => s,
        };
        let mut declared =
            StageDeclaration::builder().name(stage["Name"].as_str().expect("stage name"));
        for a in stage["Actions"].as_sequence().expect("Actions") {
            let t = &a["ActionTypeId"];
            let config: HashMap<String, String> = a["Configuration"]
                .as_mapping()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), text(v, function, bucket)?)))
                .collect();
            let mut action = ActionDeclaration::builder()
                .name(a["Name"].as_str().expect("action name"))
                .action_type_id(
                    ActionTypeId::builder()
                        .category(ActionCategory::from(
                            t["Category"].as_str().expect("Category"),
                        ))
                        .owner(ActionOwner::from(t["Owner"].as_str().expect("Owner")))
                        .provider(t["Provider"].as_str().expect("Provider"))
                        .version(t["Version"].as_str().expect("Version"))
                        .build()
                        .expect("type"),
                )
                .set_configuration(Some(config))
                .set_namespace(a["Namespace"].as_str().map(str::to_owned));
            for i in a["InputArtifacts"].as_sequence().into_iter().flatten() {
                action = action.input_artifacts(
                    InputArtifact::builder()
                        .name(i["Name"].as_str().expect("name"))
                        .build()
                        .expect("input"),
                );
            }
            for o in a["OutputArtifacts"].as_sequence().into_iter().flatten() {
                action = action.output_artifacts(
                    OutputArtifact::builder()
                        .name(o["Name"].as_str().expect("name"))
                        .build()
                        .expect("output"),
                );
            }
            declared = declared.actions(action.build().expect("action"));
        }
        pipeline = pipeline.stages(declared.build().expect("stage"));
    }
    cp.create_pipeline()
        .pipeline(pipeline.build().expect("pipeline"))
        .send()
        .await
        .expect("CreatePipeline");
}

/// Starts an execution for `model_package_arn`.
pub async fn start(cp: &Client, model_package_arn: &str) -> String {
    cp.start_pipeline_execution()
        .name(PIPELINE)
        .variables(
            PipelineVariable::builder()
                .name("ModelPackageArn")
                .value(model_package_arn)
                .build()
                .expect("variable"),
        )
        .send()
        .await
        .expect("StartPipelineExecution")
        .pipeline_execution_id
        .unwrap_or_default()
}

/// The execution's status once it is no longer `InProgress`, or when it waits at the approval
/// (`None` then), within `within`.
pub async fn settle(
    cp: &Client,
    execution: &str,
    within: Duration,
) -> Option<PipelineExecutionStatus> {
    let end = Instant::now() + within;
    loop {
        let e = cp
            .get_pipeline_execution()
            .pipeline_name(PIPELINE)
            .pipeline_execution_id(execution)
            .send()
            .await
            .expect("GetPipelineExecution");
        let status = e.pipeline_execution().and_then(|x| x.status()).cloned();
        if status != Some(PipelineExecutionStatus::InProgress) {
            return status;
        }
        if approval_token(cp).await.is_some() {
            return None;
        }
        assert!(
            Instant::now() < end,
            "execution {execution} still in progress"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The production approval's token while the pipeline waits for it.
pub async fn approval_token(cp: &Client) -> Option<String> {
    let state = cp.get_pipeline_state().name(PIPELINE).send().await.ok()?;
    state
        .stage_states()
        .iter()
        .find(|s| s.stage_name() == Some("ApproveProduction"))
        .and_then(|s| s.action_states().first())
        .and_then(|a| a.latest_execution())
        .filter(|l| l.status().map(|s| s.as_str()) == Some("InProgress"))
        .and_then(|l| l.token().map(str::to_owned))
}

pub async fn approve(cp: &Client, token: &str, approved: bool) {
    cp.put_approval_result()
        .pipeline_name(PIPELINE)
        .stage_name("ApproveProduction")
        .action_name("Approve")
        .token(token)
        .result(
            ApprovalResult::builder()
                .status(if approved {
                    ApprovalStatus::Approved
                } else {
                    ApprovalStatus::Rejected
                })
                .summary("reviewed in the test bed")
                .build()
                .expect("result"),
        )
        .send()
        .await
        .expect("PutApprovalResult");
}

/// The SDK configuration of `config` acting as `role` in `account` and `region` (STS AssumeRole; moto
/// keeps each account apart).
/// Credentials of `role` in `account` (STS AssumeRole; moto keeps each account apart).
async fn credentials(
    config: &aws_config::SdkConfig,
    account: &str,
    role: &str,
) -> aws_sdk_sts::types::Credentials {
    aws_sdk_sts::Client::new(config)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{role}"))
        .role_session_name("secure-mlops-test-bed")
        .send()
        .await
        .expect("AssumeRole")
        .credentials
        .expect("credentials")
}

/// The SDK configuration of `config` acting as `role` in `account` and `region`.
async fn as_account(
    config: &aws_config::SdkConfig,
    account: &str,
    role: &str,
    region: &str,
) -> aws_config::SdkConfig {
    let creds = credentials(config, account, role).await;
    config
        .to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
            aws_sdk_sts::config::Credentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                Some(creds.session_token().to_owned()),
                None,
                "assumed",
            ),
        ))
        .build()
}

/// What a target account must hold before endpoints can be deployed into it (the endpoint template reads
/// these SSM parameters): private subnets, security groups and the KMS key, in every target region.
/// Written as the account itself.
pub async fn prepare_target(config: &aws_config::SdkConfig, account: &str, regions: &[&str]) {
    for region in regions {
        let ssm = aws_sdk_ssm::Client::new(
            &as_account(
                config,
                account,
                "AWSCloudFormationStackSetExecutionRole",
                region,
            )
            .await,
        );
        for (name, value, kind) in [
            (
                "/secure-mlops/network/subnet-ids",
                "subnet-0a1b2c3d,subnet-4e5f6a7b".to_owned(),
                aws_sdk_ssm::types::ParameterType::StringList,
            ),
            (
                "/secure-mlops/network/security-group-ids",
                "sg-0a1b2c3d".to_owned(),
                aws_sdk_ssm::types::ParameterType::StringList,
            ),
            (
                "/secure-mlops/kms/endpoint-key-arn",
                format!("arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                aws_sdk_ssm::types::ParameterType::String,
            ),
        ] {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(kind)
                .overwrite(true)
                .send()
                .await
                .expect("PutParameter");
        }
    }
}

/// A SageMaker client acting as `account` in `region` against moto (what a stack-set instance created).
pub async fn sagemaker_in(
    config: &aws_config::SdkConfig,
    account: &str,
    region: &str,
) -> aws_sdk_sagemaker::Client {
    aws_sdk_sagemaker::Client::new(&as_account(config, account, "Auditor", region).await)
}

/// Puts CloudWatch alarm `alarm` of `account` / `region` in ALARM, in moto, as that account. moto's
/// CloudFormation does not create `AWS::CloudWatch::Alarm`s, so the alarm the endpoint template
/// declares is made here first (moto's CloudWatch speaks the query protocol only; the SDK's speaks CBOR).
pub async fn set_alarm(
    config: &aws_config::SdkConfig,
    moto: &str,
    account: &str,
    region: &str,
    alarm: &str,
) {
    let creds = credentials(config, account, "Auditor").await;
    for body in [
        format!(
            "Action=PutMetricAlarm&Version=2010-08-01&AlarmName={alarm}&Namespace=AWS%2FSageMaker&MetricName=Invocation5XXErrors&Statistic=Sum&Period=60&EvaluationPeriods=2&Threshold=1&ComparisonOperator=GreaterThanOrEqualToThreshold"
        ),
        format!(
            "Action=SetAlarmState&Version=2010-08-01&AlarmName={alarm}&StateValue=ALARM&StateReason=test"
        ),
    ] {
        let answer = reqwest::Client::new()
            .post(format!("{moto}/"))
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/20260101/{region}/monitoring/aws4_request, SignedHeaders=host, Signature=0",
                    creds.access_key_id()
                ),
            )
            .header("X-Amz-Security-Token", creds.session_token())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("moto reachable");
        assert!(
            answer.status().is_success(),
            "{}",
            answer.text().await.unwrap_or_default()
        );
    }
}

/// Registers a version of `group` (an XGBoost image and its artifacts, with a sample request for the
/// staging smoke test in its customer metadata) and sets its approval status.
pub async fn register_version(
    sm: &aws_sdk_sagemaker::Client,
    group: &str,
    model_data_url: &str,
    status: aws_sdk_sagemaker::types::ModelApprovalStatus,
) -> String {
    use aws_sdk_sagemaker::types::{InferenceSpecification, ModelPackageContainerDefinition};
    let arn = sm
        .create_model_package()
        .model_package_group_name(group)
        .inference_specification(
            InferenceSpecification::builder()
                .containers(
                    ModelPackageContainerDefinition::builder()
                        .image(
                            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                        )
                        .model_data_url(model_data_url)
                        .build(),
                )
                .supported_content_types("text/csv")
                .supported_response_mime_types("text/csv")
                .build(),
        )
        .customer_metadata_properties("secure-mlops:smoke-payload", "5.1,3.5,1.4,0.2")
        .send()
        .await
        .expect("CreateModelPackage")
        .model_package_arn
        .unwrap_or_default();
    sm.update_model_package()
        .model_package_arn(&arn)
        .model_approval_status(status)
        .send()
        .await
        .expect("UpdateModelPackage");
    arn
}
