//! One CodePipeline job: start (or resume) the stage's stack-set operation, then report — a
//! continuation token while it runs, success with output variables, or failure with the per-account
//! reasons. Every outcome is reported to CodePipeline; only a job that cannot be reported fails the
//! invocation.

use serde_json::{Value, json};
use shared::Error;
use shared::deploy::{MODEL_PACKAGE_PARAMETER, endpoint_name, group_of, stack_set_name};
use tracing::info;

use crate::aws::{Aws, Started};
use crate::config::Config;
use crate::job::{self, Params, Progress, operation_id};

/// What the job reports.
#[derive(Debug, PartialEq)]
pub enum Step {
    Continue(Progress),
    Done(Vec<(&'static str, String)>),
}

pub struct Handler {
    pub config: Config,
    pub aws: Aws,
}

/// Errors worth waiting out rather than failing the deployment for.
fn transient(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(
            "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "InternalFailure"
                | "ServiceUnavailable"
        )
    )
}

/// The (account, region) pairs targeted but not yet instances.
pub fn missing(
    targets: &[String],
    regions: &[String],
    existing: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let mut accounts = Vec::new();
    let mut wanted_regions = Vec::new();
    for a in targets {
        for r in regions {
            if !existing.iter().any(|(ea, er)| ea == a && er == r) {
                if !accounts.contains(a) {
                    accounts.push(a.clone());
                }
                if !wanted_regions.contains(r) {
                    wanted_regions.push(r.clone());
                }
            }
        }
    }
    (accounts, wanted_regions)
}

impl Handler {
    pub async fn handle(&self, payload: Value) -> Result<Value, Error> {
        let job = job::parse(&payload)?;
        let outcome = match job.params {
            Err(e) => Err(e),
            Ok(params) => self.run(&params, job.progress.transpose()).await,
        };
        match outcome {
            Ok(Step::Continue(progress)) => {
                let token =
                    serde_json::to_string(&progress).map_err(|e| Error::other(e.to_string()))?;
                self.aws.succeed(&job.id, Some(token), &[]).await?;
                info!(job = %job.id, ?progress, "continuing");
                Ok(json!({"job": job.id, "continue": progress}))
            }
            Ok(Step::Done(outputs)) => {
                self.aws.succeed(&job.id, None, &outputs).await?;
                info!(job = %job.id, ?outputs, "deployed");
                Ok(
                    json!({"job": job.id, "outputs": outputs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()}),
                )
            }
            Err(e) => {
                self.aws.fail(&job.id, &e.to_string()).await?;
                info!(job = %job.id, error = %e, "failed");
                Ok(json!({"job": job.id, "failed": e.to_string()}))
            }
        }
    }

    async fn run(
        &self,
        params: &Params,
        progress: Result<Option<Progress>, Error>,
    ) -> Result<Step, Error> {
        let stage = self.config.stage(&params.stage)?;
        let group = group_of(&params.model_package_arn).ok_or_else(|| {
            Error::invalid(format!(
                "UserParameters.ModelPackageArn \"{}\": expected a versioned model package ARN (…:model-package/<group>/<version>)",
                params.model_package_arn
            ))
        })?;
        let name = stack_set_name(&self.config.stack_set_prefix, group, &stage.name);
        let endpoint = endpoint_name(&self.config.project, group, &stage.name);
        let op = operation_id(&stage.name, &params.execution_id);
        let progress = match progress? {
            None | Some(Progress::Start) => return self.start(params, &name, &endpoint, &op).await,
            Some(p) => p,
        };
        let (operation_id, phase_update) = match &progress {
            Progress::Update { operation_id } => (operation_id.clone(), true),
            Progress::Instances { operation_id } => (operation_id.clone(), false),
            Progress::Start => unreachable!("handled above"),
        };
        let status = match self.aws.operation_status(&name, &operation_id).await {
            Ok(s) => s,
            Err(e) if transient(&e) => return Ok(Step::Continue(progress)),
            Err(e) => return Err(e),
        };
        info!(stack_set = %name, %operation_id, %status, "operation");
        match status.as_str() {
            "SUCCEEDED" if phase_update => {
                self.add_instances(stage, &name, &endpoint, &op, &operation_id)
                    .await
            }
            "SUCCEEDED" => Ok(Step::Done(outputs(&endpoint, &operation_id, &name))),
            "FAILED" | "STOPPED" => {
                let reasons = self.aws.failures(&name, &operation_id).await?;
                Err(Error::other(format!(
                    "stack set {name}: operation {operation_id} {status}: {}",
                    if reasons.is_empty() {
                        "no per-account result".to_owned()
                    } else {
                        reasons.join("; ")
                    }
                )))
            }
            _ => Ok(Step::Continue(progress)), // RUNNING, QUEUED, STOPPING
        }
    }

    async fn start(
        &self,
        params: &Params,
        name: &str,
        endpoint: &str,
        op: &str,
    ) -> Result<Step, Error> {
        let stage = self.config.stage(&params.stage)?;
        let package = self.aws.package(&params.model_package_arn).await?;
        if !Aws::is_approved(&package) {
            return Err(Error::invalid(format!(
                "model package {} is {} (not Approved): not deployed to {}",
                package.arn,
                package
                    .approved
                    .as_deref()
                    .unwrap_or("without approval status"),
                stage.name
            )));
        }
        if package.image.is_empty() {
            return Err(Error::invalid(format!(
                "model package {} has no inference container image (InferenceSpecification.Containers[0].Image)",
                package.arn
            )));
        }
        let values = [
            (MODEL_PACKAGE_PARAMETER, package.arn.clone()),
            ("ImageUri", package.image.clone()),
            (
                "ModelDataUrl",
                package.model_data_url.clone().unwrap_or_default(),
            ),
            ("EndpointName", endpoint.to_owned()),
            ("Stage", stage.name.clone()),
            ("InstanceType", stage.instance_type.clone()),
            ("InstanceCount", stage.instance_count.to_string()),
            (
                "InstanceStorage",
                instance_storage(&stage.instance_type).to_owned(),
            ),
        ];
        if self.aws.stack_set_exists(name).await? {
            return Ok(
                match self
                    .aws
                    .update_stack_set(&self.config, name, &values, op)
                    .await?
                {
                    Started::Operation(id) => Step::Continue(Progress::Update { operation_id: id }),
                    Started::Busy => Step::Continue(Progress::Start),
                },
            );
        }
        self.aws
            .create_stack_set(&self.config, name, &values)
            .await?;
        let targets = self.aws.targets(stage).await?;
        if targets.is_empty() {
            return Err(Error::invalid(format!(
                "{} has no target account (its OUs have no ACTIVE account)",
                stage.name
            )));
        }
        Ok(
            match self
                .aws
                .create_instances(&self.config, name, &targets, &stage.regions, op)
                .await?
            {
                Started::Operation(id) => Step::Continue(Progress::Instances { operation_id: id }),
                Started::Busy => Step::Continue(Progress::Start),
            },
        )
    }

    /// After an update: targets that have no instance yet get one.
    async fn add_instances(
        &self,
        stage: &crate::config::Stage,
        name: &str,
        endpoint: &str,
        op: &str,
        done_op: &str,
    ) -> Result<Step, Error> {
        let targets = self.aws.targets(stage).await?;
        let existing = self.aws.instances(name).await?;
        let (accounts, regions) = missing(&targets, &stage.regions, &existing);
        if accounts.is_empty() {
            return Ok(Step::Done(outputs(endpoint, done_op, name)));
        }
        Ok(
            match self
                .aws
                .create_instances(
                    &self.config,
                    name,
                    &accounts,
                    &regions,
                    &format!("{op}-add"),
                )
                .await?
            {
                Started::Operation(id) => Step::Continue(Progress::Instances { operation_id: id }),
                Started::Busy => Step::Continue(Progress::Update {
                    operation_id: done_op.to_owned(),
                }),
            },
        )
    }
}

fn outputs(endpoint: &str, operation_id: &str, stack_set: &str) -> Vec<(&'static str, String)> {
    vec![
        ("EndpointName", endpoint.to_owned()),
        ("OperationId", operation_id.to_owned()),
        ("StackSetName", stack_set.to_owned()),
    ]
}

/// The endpoint template's `InstanceStorage`: `local-nvme` leaves the endpoint config's `KmsKeyId` out,
/// since SageMaker refuses a volume key on instance types with local NVMe storage (their storage is
/// encrypted by the instance; see `shared::instances`).
fn instance_storage(instance_type: &str) -> &'static str {
    if shared::instances::has_local_storage(instance_type) {
        "local-nvme"
    } else {
        "ebs"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_nvme_instance_types_deploy_without_a_volume_key() {
        assert_eq!(instance_storage("ml.g5.2xlarge"), "local-nvme");
        assert_eq!(instance_storage("ml.p4d.24xlarge"), "local-nvme");
        assert_eq!(instance_storage("ml.m5.large"), "ebs");
    }

    #[test]
    fn missing_pairs() {
        let t = vec!["1".to_string(), "2".to_string()];
        let r = vec!["us-east-1".to_string()];
        assert_eq!(
            missing(&t, &r, &[("1".into(), "us-east-1".into())]),
            (vec!["2".into()], vec!["us-east-1".into()])
        );
        assert_eq!(
            missing(
                &t,
                &r,
                &[
                    ("1".into(), "us-east-1".into()),
                    ("2".into(), "us-east-1".into())
                ]
            )
            .0
            .len(),
            0
        );
    }
}

/// Stack-set operation states and errors moto cannot produce (it finishes every operation at once and
/// ignores operation ids), with aws-smithy-mocks.
#[cfg(test)]
mod mocked {
    use aws_sdk_cloudformation::operation::describe_stack_set::DescribeStackSetOutput;
    use aws_sdk_cloudformation::operation::describe_stack_set_operation::DescribeStackSetOperationOutput;
    use aws_sdk_cloudformation::operation::list_stack_set_operation_results::ListStackSetOperationResultsOutput;
    use aws_sdk_cloudformation::operation::update_stack_set::UpdateStackSetError;
    use aws_sdk_cloudformation::types::{
        StackSet, StackSetOperation, StackSetOperationResultStatus, StackSetOperationResultSummary,
        StackSetOperationStatus,
    };
    use aws_sdk_codepipeline::operation::put_job_failure_result::PutJobFailureResultOutput;
    use aws_sdk_codepipeline::operation::put_job_success_result::PutJobSuccessResultOutput;
    use aws_sdk_sagemaker::operation::describe_model_package::DescribeModelPackageOutput;
    use aws_sdk_sagemaker::types::{
        InferenceSpecification, ModelApprovalStatus, ModelPackageContainerDefinition,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use serde_json::json;

    use super::*;
    use crate::aws::Aws;

    const ARN: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3";

    fn handler(cfn: &[&Rule], cp: &[&Rule], sm: &[&Rule]) -> Handler {
        let config = Config::from_lookup(|k| {
            Some(
                match k {
                    "STAGING_TARGETS" => "111111111111",
                    "PROD_TARGETS" => "222222222222",
                    "ADMINISTRATION_ROLE_ARN" => "arn:aws:iam::123456789012:role/Admin",
                    "TEMPLATE_URL" => "https://artifacts.s3.amazonaws.com/model-endpoint.yaml",
                    _ => return None,
                }
                .to_owned(),
            )
        })
        .unwrap();
        let org_config = aws_sdk_organizations::Config::builder()
            .behavior_version(aws_sdk_organizations::config::BehaviorVersion::latest())
            .region(aws_sdk_organizations::config::Region::new("us-east-1"))
            .build();
        Handler {
            config,
            aws: Aws {
                sagemaker: mock_client!(aws_sdk_sagemaker, RuleMode::MatchAny, sm),
                cloudformation: mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, cfn),
                codepipeline: mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, cp),
                organizations: shared::organizations::Organizations::new(
                    aws_sdk_organizations::Client::from_conf(org_config),
                ),
            },
        }
    }

    fn event(token: Option<&str>) -> Value {
        let mut data = json!({"actionConfiguration": {"configuration": {"UserParameters":
            json!({"Stage": "staging", "ModelPackageArn": ARN, "ExecutionId": "exec-1"}).to_string()}}});
        if let Some(t) = token {
            data["continuationToken"] = json!(t);
        }
        json!({"CodePipeline.job": {"id": "job-1", "data": data}})
    }

    fn package(status: ModelApprovalStatus) -> Rule {
        mock!(aws_sdk_sagemaker::Client::describe_model_package).then_output(move || {
            DescribeModelPackageOutput::builder()
                .model_package_arn(ARN)
                .model_package_group_name("churn")
                .model_approval_status(status.clone())
                .inference_specification(
                    InferenceSpecification::builder()
                        .containers(
                            ModelPackageContainerDefinition::builder()
                                .image("123.dkr.ecr/xgb:1")
                                .model_data_url("s3://m/model.tar.gz")
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
    }

    fn exists() -> Rule {
        mock!(aws_sdk_cloudformation::Client::describe_stack_set).then_output(|| {
            DescribeStackSetOutput::builder()
                .stack_set(
                    StackSet::builder()
                        .stack_set_name("secure-mlops-churn-staging")
                        .build(),
                )
                .build()
        })
    }

    fn success_with_token(expected: &'static str) -> Rule {
        mock!(aws_sdk_codepipeline::Client::put_job_success_result)
            .match_requests(move |r| r.continuation_token().is_some_and(|t| t.contains(expected)))
            .then_output(|| PutJobSuccessResultOutput::builder().build())
    }

    #[tokio::test]
    async fn a_retried_first_call_reuses_its_operation() {
        let update = mock!(aws_sdk_cloudformation::Client::update_stack_set)
            .match_requests(|r| r.operation_id() == Some("staging-exec-1"))
            .then_error(|| {
                UpdateStackSetError::generic(
                    ErrorMetadata::builder()
                        .code("OperationIdAlreadyExistsException")
                        .message("exists")
                        .build(),
                )
            });
        let (describe, pkg, ok) = (
            exists(),
            package(ModelApprovalStatus::Approved),
            success_with_token("staging-exec-1"),
        );
        let h = handler(&[&describe, &update], &[&ok], &[&pkg]);
        let out = h.handle(event(None)).await.unwrap();
        assert_eq!(
            out["continue"],
            json!({"phase": "update", "operation_id": "staging-exec-1"}),
            "{out}"
        );
        assert_eq!(ok.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_busy_stack_set_is_waited_for() {
        let update = mock!(aws_sdk_cloudformation::Client::update_stack_set).then_error(|| {
            UpdateStackSetError::generic(
                ErrorMetadata::builder()
                    .code("OperationInProgressException")
                    .message("busy")
                    .build(),
            )
        });
        let (describe, pkg, ok) = (
            exists(),
            package(ModelApprovalStatus::Approved),
            success_with_token("start"),
        );
        let h = handler(&[&describe, &update], &[&ok], &[&pkg]);
        let out = h.handle(event(None)).await.unwrap();
        assert_eq!(out["continue"], json!({"phase": "start"}), "{out}");
    }

    #[tokio::test]
    async fn a_running_operation_continues_and_a_failed_one_fails_with_each_accounts_reason() {
        let running = mock!(aws_sdk_cloudformation::Client::describe_stack_set_operation)
            .then_output(|| {
                DescribeStackSetOperationOutput::builder()
                    .stack_set_operation(
                        StackSetOperation::builder()
                            .status(StackSetOperationStatus::Running)
                            .build(),
                    )
                    .build()
            });
        let ok = success_with_token("staging-exec-1");
        let h = handler(&[&running], &[&ok], &[]);
        let token = r#"{"phase": "instances", "operation_id": "staging-exec-1"}"#;
        let out = h.handle(event(Some(token))).await.unwrap();
        assert_eq!(out["continue"]["operation_id"], "staging-exec-1", "{out}");

        let failed = mock!(aws_sdk_cloudformation::Client::describe_stack_set_operation)
            .then_output(|| {
                DescribeStackSetOperationOutput::builder()
                    .stack_set_operation(
                        StackSetOperation::builder()
                            .status(StackSetOperationStatus::Failed)
                            .build(),
                    )
                    .build()
            });
        let results = mock!(aws_sdk_cloudformation::Client::list_stack_set_operation_results).then_output(|| {
            ListStackSetOperationResultsOutput::builder()
                .summaries(StackSetOperationResultSummary::builder().account("111111111111").region("us-east-1").status(StackSetOperationResultStatus::Failed)
                    .status_reason("ResourceLogicalId:Endpoint, ResourceType:AWS::SageMaker::Endpoint, ResourceStatusReason:ml.m5.large quota exceeded").build())
                .summaries(StackSetOperationResultSummary::builder().account("333333333333").region("us-east-1").status(StackSetOperationResultStatus::Succeeded).build())
                .build()
        });
        let failure = mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
            .match_requests(|r| {
                r.failure_details().is_some_and(|d| {
                    d.message()
                        .contains("111111111111/us-east-1: FAILED - ResourceLogicalId:Endpoint")
                        && !d.message().contains("333333333333")
                })
            })
            .then_output(|| PutJobFailureResultOutput::builder().build());
        let h = handler(&[&failed, &results], &[&failure], &[]);
        let out = h.handle(event(Some(token))).await.unwrap();
        assert!(
            out["failed"].as_str().unwrap().contains("quota exceeded"),
            "{out}"
        );
        assert_eq!(failure.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_version_no_longer_approved_is_not_deployed() {
        let pkg = package(ModelApprovalStatus::Rejected);
        let failure = mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
            .match_requests(|r| {
                r.failure_details()
                    .is_some_and(|d| d.message().contains("is Rejected (not Approved)"))
            })
            .then_output(|| PutJobFailureResultOutput::builder().build());
        let h = handler(&[], &[&failure], &[&pkg]);
        h.handle(event(None)).await.unwrap();
        assert_eq!(failure.num_calls(), 1);
    }
}
