//! One CodePipeline job: start (or resume) the stage's stack-set operation, then report — a
//! continuation token while it runs, success with output variables, or failure with the per-account
//! reasons. Every outcome is reported to CodePipeline; only a job that cannot be reported fails the
//! invocation.

use std::sync::Arc;

use serde_json::{Value, json};
use shared::Error;
use shared::deploy::{
    MODEL_PACKAGE_PARAMETER, PROJECT_TAG, endpoint_name, group_of, stack_set_name,
};
use tracing::{info, warn};

use crate::aws::{Aws, Started};
use crate::config::{Config, Stage};
use crate::job::{self, Job, Params, Progress, operation_id};
use crate::retire::Retirement;

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

/// The function: CodePipeline jobs, and the application stack's `Custom::EndpointRetirement` (a
/// CloudFormation request or the framework's continuation goes to the custom-resource framework).
pub struct Function {
    jobs: Arc<Handler>,
    retirement: shared::cfn::Runner<Retirement>,
}

impl shared::event::Handler for Function {
    fn new(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let config = Config::from_env()?;
        let jobs = Arc::new(Handler {
            aws: Aws::new(sdk, &config),
            config,
        });
        Ok(Function {
            retirement: shared::cfn::Runner::new(Retirement::new(Arc::clone(&jobs)), sdk),
            jobs,
        })
    }

    async fn handle(
        &self,
        event: Value,
        invocation: &shared::event::Invocation,
    ) -> Result<Value, Error> {
        if shared::cfn::is_custom_resource(&event) {
            self.retirement.handle_invocation(event, invocation).await
        } else {
            self.jobs.handle(event).await
        }
    }
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

/// One deployment job's outcome (the stage in its `Stage` property).
fn job_metric(outcome: &str, stage: &str) {
    shared::metrics::emit(
        outcome,
        &[shared::metrics::Metric::count("Jobs")],
        &[("Stage", stage)],
    );
}

impl Handler {
    /// One invocation. The payload gives the job id only; the job itself is read from CodePipeline.
    /// A payload that is no job, a job CodePipeline does not know, or a job of another pipeline or
    /// action fails the invocation (a log line and, for asynchronous calls, the dead-letter queue)
    /// without any other AWS call: it is not ours to report. Every other outcome is reported to
    /// CodePipeline.
    pub async fn handle(&self, payload: Value) -> Result<Value, Error> {
        let id = job::id(&payload)?;
        let job = self.aws.job(&id).await?;
        let stage = self
            .config
            .stage_of(&job)
            .inspect_err(|e| warn!(job = %id, error = %e, "refused"))?;
        match self.run(stage, &job).await {
            Ok(Step::Continue(progress)) => {
                let token =
                    serde_json::to_string(&progress).map_err(|e| Error::other(e.to_string()))?;
                self.aws.succeed(&job.id, Some(token), &[]).await?;
                info!(job = %job.id, ?progress, "continuing");
                job_metric("Continuing", &stage.name);
                Ok(json!({"job": job.id, "continue": progress}))
            }
            Ok(Step::Done(outputs)) => {
                self.aws.succeed(&job.id, None, &outputs).await?;
                info!(job = %job.id, ?outputs, "deployed");
                job_metric("Deployed", &stage.name);
                Ok(
                    json!({"job": job.id, "outputs": outputs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()}),
                )
            }
            Err(e) => {
                self.aws.fail(&job.id, &e.to_string()).await?;
                info!(job = %job.id, error = %e, "failed");
                job_metric("DeployFailed", &stage.name);
                Ok(json!({"job": job.id, "failed": e.to_string()}))
            }
        }
    }

    /// The model package the parameters name, when it may be deployed by this pipeline: a versioned
    /// package of a configured group, in the registry of the pipeline's own account and region.
    fn deployable<'a>(&self, job: &Job, params: &'a Params) -> Result<&'a str, Error> {
        let arn = &params.model_package_arn;
        let group = group_of(arn).ok_or_else(|| {
            Error::invalid(format!(
                "UserParameters.ModelPackageArn \"{arn}\": expected a versioned model package ARN (…:model-package/<group>/<version>)"
            ))
        })?;
        if !self.config.groups.iter().any(|g| g == group) {
            return Err(Error::invalid(format!(
                "model package group \"{group}\" is not configured for deployment (MODEL_PACKAGE_GROUPS: {}): {arn} not deployed",
                self.config.groups.join(", ")
            )));
        }
        let home = job.pipeline_home();
        if home.is_none() || job::arn_home(arn, "sagemaker") != home {
            return Err(Error::invalid(format!(
                "{arn} is not in this registry (the pipeline's account and region, {}): not deployed",
                home.map(|(a, r)| format!("{a}/{r}"))
                    .unwrap_or_else(|| "unknown".into())
            )));
        }
        Ok(group)
    }

    async fn run(&self, stage: &Stage, job: &Job) -> Result<Step, Error> {
        let params = job.params()?;
        let group = self.deployable(job, &params)?;
        let name = stack_set_name(&self.config.stack_set_prefix, group, &stage.name);
        let endpoint = endpoint_name(&self.config.project, group, &stage.name);
        let op = operation_id(&stage.name, &job.execution_id);
        let deployed = Deployed {
            stack_set: &name,
            endpoint: &endpoint,
            params: &params,
        };
        let progress = match job.progress()? {
            None | Some(Progress::Start) => {
                return self.start(stage, &params, &deployed, &op).await;
            }
            Some(p) => p,
        };
        let (operation_id, phase_update) = match &progress {
            Progress::Update { operation_id } => (operation_id.clone(), true),
            Progress::Instances { operation_id } => (operation_id.clone(), false),
            Progress::Bake {
                operation_id,
                until,
                smoke,
            } => return self.bake(&deployed, operation_id, *until, smoke).await,
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
                self.add_instances(stage, &deployed, &op, &operation_id)
                    .await
            }
            "SUCCEEDED" => self.verify(stage, &deployed, &operation_id).await,
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
        stage: &Stage,
        params: &Params,
        deployed: &Deployed<'_>,
        op: &str,
    ) -> Result<Step, Error> {
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
        // Executions run in parallel (one per approval): an older one must not overwrite a newer
        // version. Only the group's latest Approved version is deployed; a rejected newer version
        // makes an older one the latest again (a rollback).
        let latest = self.aws.latest_approved(&package.group).await?;
        if latest.as_deref() != Some(package.arn.as_str()) {
            return Err(Error::invalid(format!(
                "superseded: {} is the latest Approved version of group {}; {} (an older execution) is not deployed to {}",
                latest.as_deref().unwrap_or("nothing"),
                package.group,
                package.arn,
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
            ("EndpointName", deployed.endpoint.to_owned()),
            ("Stage", stage.name.clone()),
            ("InstanceType", stage.instance_type.clone()),
            ("InstanceCount", stage.instance_count.to_string()),
            (
                "InstanceStorage",
                instance_storage(&stage.instance_type).to_owned(),
            ),
            // The smoke-test role, in staging only, made once per account (IAM is global): in the
            // stage's first region.
            (
                "SmokeTestPrincipalArn",
                self.config
                    .smoke
                    .as_ref()
                    .filter(|_| stage.name == "staging")
                    .map(|s| s.principal_arn.clone())
                    .unwrap_or_default(),
            ),
            (
                "SmokeRoleRegion",
                stage.regions.first().cloned().unwrap_or_default(),
            ),
            (
                "SmokeRolePath",
                self.config
                    .smoke
                    .as_ref()
                    .map(|s| s.role_path.clone())
                    .unwrap_or_else(|| "secure-mlops-smoke".into()),
            ),
        ];
        // Exactly the template version the pipeline names, never "whatever the object is now".
        let template = self.config.template_url(&params.template_version);
        let name = deployed.stack_set;
        let project = &self.config.stack_set_prefix;
        match self.aws.stack_set_project(name).await? {
            Some(tag) if tag.as_deref() != Some(project.as_str()) => {
                return Err(Error::invalid(format!(
                    "stack set {name} exists but is not this project's (tag {PROJECT_TAG} is {}, expected {project}): not touched; remove or rename it, or deploy under another ProjectName",
                    tag.map(|t| format!("\"{t}\""))
                        .unwrap_or_else(|| "missing".into())
                )));
            }
            None => {}
            Some(_) => {
                return Ok(
                    match self
                        .aws
                        .update_stack_set(&self.config, stage, name, &template, &values, op)
                        .await?
                    {
                        Started::Operation(id) => {
                            Step::Continue(Progress::Update { operation_id: id })
                        }
                        Started::Busy => Step::Continue(Progress::Start),
                    },
                );
            }
        }
        self.aws
            .create_stack_set(&self.config, name, &template, &values)
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
        stage: &Stage,
        deployed: &Deployed<'_>,
        op: &str,
        done_op: &str,
    ) -> Result<Step, Error> {
        let name = deployed.stack_set;
        let targets = self.aws.targets(stage).await?;
        let existing = self.aws.instances(name).await?;
        let (accounts, regions) = missing(&targets, &stage.regions, &existing);
        if accounts.is_empty() {
            return self.verify(stage, deployed, done_op).await;
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

impl Handler {
    /// A deployment that succeeded: staging is smoke-tested (each endpoint answers the model package's
    /// sample request) and then baked (its rollback alarms stay OK for `BAKE_SECONDS`); production is
    /// done.
    async fn verify(
        &self,
        stage: &Stage,
        deployed: &Deployed<'_>,
        operation_id: &str,
    ) -> Result<Step, Error> {
        let Some(smoke) = self
            .config
            .smoke
            .as_ref()
            .filter(|_| stage.name == "staging")
        else {
            return Ok(Step::Done(deployed.outputs(operation_id, "not run")));
        };
        let instances = self.aws.instances(deployed.stack_set).await?;
        let package = self.aws.package(&deployed.params.model_package_arn).await?;
        let result = match &package.sample {
            None => "skipped: the model package names no sample request (customer metadata secure-mlops:smoke-payload)".to_owned(),
            Some(sample) => {
                let mut failures = Vec::new();
                for (account, region) in &instances {
                    if let Err(e) = self
                        .aws
                        .probe()
                        .invoke(account, region, deployed.endpoint, sample)
                        .await
                    {
                        failures.push(format!("{account}/{region}: {e}"));
                    }
                }
                if !failures.is_empty() {
                    return Err(Error::other(format!(
                        "smoke test failed: {} of {} staging endpoints did not answer the sample request: {}",
                        failures.len(),
                        instances.len(),
                        failures.join("; ")
                    )));
                }
                format!("passed in {} accounts/regions", instances.len())
            }
        };
        info!(stack_set = %deployed.stack_set, %result, "smoke test");
        if smoke.bake.is_zero() {
            return Ok(Step::Done(deployed.outputs(operation_id, &result)));
        }
        let until = epoch() + smoke.bake.as_secs();
        Ok(Step::Continue(Progress::Bake {
            operation_id: operation_id.to_owned(),
            until,
            smoke: result,
        }))
    }

    /// While staging bakes: every staging endpoint's rollback alarms must stay out of ALARM.
    async fn bake(
        &self,
        deployed: &Deployed<'_>,
        operation_id: &str,
        until: u64,
        smoke: &str,
    ) -> Result<Step, Error> {
        let mut alarms = Vec::new();
        for (account, region) in self.aws.instances(deployed.stack_set).await? {
            let firing = self
                .aws
                .probe()
                .alarms(&account, &region, deployed.endpoint)
                .await?;
            if !firing.is_empty() {
                alarms.push(format!("{account}/{region}: {}", firing.join(", ")));
            }
        }
        if !alarms.is_empty() {
            return Err(Error::other(format!(
                "bake time failed: staging alarms in ALARM: {}",
                alarms.join("; ")
            )));
        }
        if epoch() >= until {
            return Ok(Step::Done(deployed.outputs(operation_id, smoke)));
        }
        Ok(Step::Continue(Progress::Bake {
            operation_id: operation_id.to_owned(),
            until,
            smoke: smoke.to_owned(),
        }))
    }
}

fn epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// What one stage deploys: the stack set, its endpoint and the version of model and template.
struct Deployed<'a> {
    stack_set: &'a str,
    endpoint: &'a str,
    params: &'a Params,
}

impl Deployed<'_> {
    /// The action's output variables: production takes the model and template version from here
    /// (`#{Staging.ModelPackageArn}`, `#{Staging.TemplateVersion}`), so it deploys what staging ran.
    fn outputs(&self, operation_id: &str, smoke: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SmokeTest", smoke.to_owned()),
            ("EndpointName", self.endpoint.to_owned()),
            ("OperationId", operation_id.to_owned()),
            ("StackSetName", self.stack_set.to_owned()),
            (
                MODEL_PACKAGE_PARAMETER,
                self.params.model_package_arn.clone(),
            ),
            ("TemplateVersion", self.params.template_version.clone()),
        ]
    }
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
pub(crate) mod mocked {
    use aws_sdk_cloudformation::operation::describe_stack_set::DescribeStackSetOutput;
    use aws_sdk_cloudformation::operation::describe_stack_set_operation::DescribeStackSetOperationOutput;
    use aws_sdk_cloudformation::operation::list_stack_set_operation_results::ListStackSetOperationResultsOutput;
    use aws_sdk_cloudformation::operation::update_stack_set::UpdateStackSetError;
    use aws_sdk_cloudformation::types::{
        StackSet, StackSetOperation, StackSetOperationResultStatus, StackSetOperationResultSummary,
        StackSetOperationStatus, Tag,
    };
    use aws_sdk_codepipeline::operation::get_job_details::GetJobDetailsOutput;
    use aws_sdk_codepipeline::operation::put_job_failure_result::PutJobFailureResultOutput;
    use aws_sdk_codepipeline::operation::put_job_success_result::PutJobSuccessResultOutput;
    use aws_sdk_codepipeline::types::{
        ActionCategory, ActionConfiguration, ActionContext, ActionOwner, ActionTypeId, JobData,
        JobDetails, PipelineContext, StageContext,
    };
    use aws_sdk_sagemaker::operation::describe_model_package::DescribeModelPackageOutput;
    use aws_sdk_sagemaker::operation::list_model_packages::ListModelPackagesOutput;
    use aws_sdk_sagemaker::types::ModelPackageSummary;
    use aws_sdk_sagemaker::types::{
        InferenceSpecification, ModelApprovalStatus, ModelPackageContainerDefinition,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use serde_json::json;

    use super::*;
    use crate::aws::Aws;

    const ARN: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3";

    pub(crate) fn handler(cfn: &[&Rule], cp: &[&Rule], sm: &[&Rule]) -> Handler {
        let config = Config::from_lookup(|k| {
            Some(
                match k {
                    "STAGING_TARGETS" => "111111111111",
                    "PROD_TARGETS" => "222222222222",
                    "ADMINISTRATION_ROLE_ARN" => "arn:aws:iam::123456789012:role/Admin",
                    "TEMPLATE_URL" => "https://artifacts.s3.amazonaws.com/model-endpoint.yaml",
                    "PIPELINE_NAMES" => "secure-mlops-model-deployment",
                    "MODEL_PACKAGE_GROUPS" => "churn",
                    "SMOKE_PRINCIPAL_ARN" => "arn:aws:iam::123456789012:role/deploy",
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
            aws: Aws::from_parts(
                // The smoke test's clients: not reached by these tests (staging is checked in the
                // harness tests, against the twin and moto).
                crate::probe::Probe {
                    config: aws_config::SdkConfig::builder()
                        .behavior_version(aws_config::BehaviorVersion::latest())
                        .region(aws_config::Region::new("us-east-1"))
                        .build(),
                    sts: aws_sdk_sts::Client::from_conf(
                        aws_sdk_sts::Config::builder()
                            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
                            .region(aws_sdk_sts::config::Region::new("us-east-1"))
                            .build(),
                    ),
                    role_path: "secure-mlops-smoke".into(),
                },
                mock_client!(aws_sdk_sagemaker, RuleMode::MatchAny, sm),
                mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, cfn),
                mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, cp),
                shared::organizations::Organizations::new(
                    aws_sdk_organizations::Client::from_conf(org_config),
                    "STAGING_TARGETS / PROD_TARGETS",
                ),
            ),
        }
    }

    const JOB: &str = "0a1b2c3d-0000-4abc-8000-0123456789ab";

    fn event() -> Value {
        json!({"CodePipeline.job": {"id": JOB, "data": {}}})
    }

    /// `GetJobDetails` of the staging deploy action, with these parameters and continuation token.
    fn details(params: Value, token: Option<&'static str>) -> Rule {
        mock!(aws_sdk_codepipeline::Client::get_job_details)
            .match_requests(|r| r.job_id() == Some(JOB))
            .then_output(move || {
                let mut data = JobData::builder()
                    .action_type_id(
                        ActionTypeId::builder()
                            .category(ActionCategory::Invoke)
                            .owner(ActionOwner::Aws)
                            .provider("Lambda")
                            .version("1")
                            .build()
                            .unwrap(),
                    )
                    .action_configuration(
                        ActionConfiguration::builder()
                            .configuration("UserParameters", params.to_string())
                            .build(),
                    )
                    .pipeline_context(
                        PipelineContext::builder()
                            .pipeline_name("secure-mlops-model-deployment")
                            .pipeline_arn("arn:aws:codepipeline:us-east-1:123456789012:secure-mlops-model-deployment")
                            .pipeline_execution_id("exec-1")
                            .stage(StageContext::builder().name("DeployStaging").build())
                            .action(ActionContext::builder().name("StagingEndpoints").build())
                            .build(),
                    );
                if let Some(t) = token {
                    data = data.continuation_token(t);
                }
                GetJobDetailsOutput::builder()
                    .job_details(JobDetails::builder().id(JOB).data(data.build()).build())
                    .build()
            })
    }

    fn staging(token: Option<&'static str>) -> Rule {
        details(
            json!({"ModelPackageArn": ARN, "TemplateVersion": "v1"}),
            token,
        )
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

    /// The stack set exists, tagged with `project` (untagged: `None`).
    /// `ListModelPackages`: the group's latest Approved version is `arn`.
    fn latest(arn: &'static str) -> Rule {
        mock!(aws_sdk_sagemaker::Client::list_model_packages).then_output(move || {
            ListModelPackagesOutput::builder()
                .model_package_summary_list(
                    ModelPackageSummary::builder()
                        .model_package_arn(arn)
                        .build(),
                )
                .build()
        })
    }

    pub(crate) fn exists_as(project: Option<&'static str>) -> Rule {
        mock!(aws_sdk_cloudformation::Client::describe_stack_set).then_output(move || {
            let mut set = StackSet::builder().stack_set_name("secure-mlops--churn-staging");
            if let Some(p) = project {
                set = set.tags(Tag::builder().key(PROJECT_TAG).value(p).build());
            }
            DescribeStackSetOutput::builder()
                .stack_set(set.build())
                .build()
        })
    }

    pub(crate) fn exists() -> Rule {
        exists_as(Some("secure-mlops"))
    }

    fn success_with_token(expected: &'static str) -> Rule {
        mock!(aws_sdk_codepipeline::Client::put_job_success_result)
            .match_requests(move |r| r.continuation_token().is_some_and(|t| t.contains(expected)))
            .then_output(|| PutJobSuccessResultOutput::builder().build())
    }

    #[tokio::test]
    async fn a_retried_first_call_reuses_its_operation() {
        let update = mock!(aws_sdk_cloudformation::Client::update_stack_set)
            .match_requests(|r| {
                r.operation_id() == Some("staging-exec-1")
                    && r.template_url()
                        .is_some_and(|u| u.ends_with("?versionId=v1"))
                    && r.operation_preferences()
                        .is_some_and(|p| p.region_order() == ["us-east-1"])
            })
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
        let job = staging(None);
        let newest = latest(ARN);
        let h = handler(&[&describe, &update], &[&ok, &job], &[&pkg, &newest]);
        let out = h.handle(event()).await.unwrap();
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
        let job = staging(None);
        let newest = latest(ARN);
        let h = handler(&[&describe, &update], &[&ok, &job], &[&pkg, &newest]);
        let out = h.handle(event()).await.unwrap();
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
        let token = r#"{"phase": "instances", "operation_id": "staging-exec-1"}"#;
        let job = staging(Some(token));
        let h = handler(&[&running], &[&ok, &job], &[]);
        let out = h.handle(event()).await.unwrap();
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
        let h = handler(&[&failed, &results], &[&failure, &job], &[]);
        let out = h.handle(event()).await.unwrap();
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
        let job = staging(None);
        let newest = latest(ARN);
        let h = handler(&[], &[&failure, &job], &[&pkg, &newest]);
        h.handle(event()).await.unwrap();
        assert_eq!(failure.num_calls(), 1);
    }

    /// The stage, pipeline and parameters come from `GetJobDetails`; what is not a job of ours is
    /// refused before anything else, and not reported (it is not ours to report).
    #[tokio::test]
    async fn only_the_configured_pipeline_and_groups_deploy() {
        let failure = mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
            .then_output(|| PutJobFailureResultOutput::builder().build());
        let success = mock!(aws_sdk_codepipeline::Client::put_job_success_result)
            .then_output(|| PutJobSuccessResultOutput::builder().build());
        // No such job.
        let unknown = mock!(aws_sdk_codepipeline::Client::get_job_details).then_error(|| {
            aws_sdk_codepipeline::operation::get_job_details::GetJobDetailsError::generic(
                ErrorMetadata::builder()
                    .code("JobNotFoundException")
                    .message("The job was not found")
                    .build(),
            )
        });
        let h = handler(&[], &[&unknown, &failure, &success], &[]);
        let e = h.handle(event()).await.unwrap_err().to_string();
        assert!(e.contains("JobNotFoundException"), "{e}");
        // Not a job id at all: not even GetJobDetails.
        let e = h
            .handle(json!({"CodePipeline.job": {"id": "x", "data": {}}}))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a CodePipeline job id"), "{e}");
        assert_eq!(unknown.num_calls(), 1);

        // A package of a group that is not configured, or of another registry: the job fails.
        for (arn, expected) in [
            (
                "arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud/1",
                "group \"fraud\" is not configured",
            ),
            (
                "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn/1",
                "not in this registry",
            ),
            (
                "arn:aws:sagemaker:us-east-1:999999999999:model-package/churn/1",
                "not in this registry",
            ),
        ] {
            let job = details(
                json!({"ModelPackageArn": arn, "TemplateVersion": "v1"}),
                None,
            );
            let h = handler(&[], &[&job, &failure], &[]);
            let out = h.handle(event()).await.unwrap();
            assert!(
                out["failed"].as_str().unwrap().contains(expected),
                "{arn}: {out}"
            );
        }
        assert_eq!(failure.num_calls(), 3);
        assert_eq!(success.num_calls(), 0);
    }

    /// A stack set of the same name that this project did not create (no project tag, or another
    /// project's) is never updated: the job fails and says why.
    #[tokio::test]
    async fn a_stack_set_of_another_project_is_not_touched() {
        for owner in [None, Some("secure-mlops-prod")] {
            let update = mock!(aws_sdk_cloudformation::Client::update_stack_set).then_error(|| {
                UpdateStackSetError::generic(ErrorMetadata::builder().code("Unexpected").build())
            });
            let (describe, pkg, job) = (
                exists_as(owner),
                package(ModelApprovalStatus::Approved),
                staging(None),
            );
            let failure = mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
                .match_requests(|r| {
                    r.failure_details()
                        .is_some_and(|d| d.message().contains("is not this project's"))
                })
                .then_output(|| PutJobFailureResultOutput::builder().build());
            let newest = latest(ARN);
            let h = handler(&[&describe, &update], &[&failure, &job], &[&pkg, &newest]);
            h.handle(event()).await.unwrap();
            assert_eq!(
                (failure.num_calls(), update.num_calls()),
                (1, 0),
                "{owner:?}"
            );
        }
    }

    /// Executions run in parallel: an execution of an older version, once a newer one is Approved,
    /// fails with the reason and touches no stack set (the newer execution deploys).
    #[tokio::test]
    async fn an_older_version_is_superseded_not_deployed() {
        let (pkg, job) = (package(ModelApprovalStatus::Approved), staging(None));
        let newest = latest("arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/4");
        let failure = mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
            .match_requests(|r| {
                r.failure_details().is_some_and(|d| {
                    d.message().starts_with("superseded: arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/4 is the latest Approved version")
                })
            })
            .then_output(|| PutJobFailureResultOutput::builder().build());
        let h = handler(&[], &[&failure, &job], &[&pkg, &newest]);
        h.handle(event()).await.unwrap();
        assert_eq!(failure.num_calls(), 1);
    }
}
