//! Adapters: the model registry, AWS Organizations (OU targets), CloudFormation StackSets and the
//! CodePipeline job results. No decisions here.

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{
    Capability, Parameter, PermissionModels, RegionConcurrencyType, StackSetOperationPreferences,
    Tag,
};
use aws_sdk_codepipeline::types::{FailureDetails, FailureType};
use aws_sdk_sagemaker::types::ModelApprovalStatus;
use shared::Error;
use shared::deploy::PROJECT_TAG;
use shared::error::found;
use shared::organizations::{Organizations, resolve};

use crate::config::{Config, Stage};
use crate::job::Job;

/// A model package version, as the endpoint template needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Package {
    pub arn: String,
    pub group: String,
    pub approved: Option<String>,
    pub image: String,
    pub model_data_url: Option<String>,
    /// The sample request its customer metadata names (`secure-mlops:smoke-payload`, and
    /// `secure-mlops:smoke-content-type`, default the first supported content type).
    pub sample: Option<crate::probe::Sample>,
}

/// How a stack-set operation request went.
#[derive(Clone, Debug, PartialEq)]
pub enum Started {
    /// Running (or already existed: a retried call): poll this operation.
    Operation(String),
    /// Another operation holds the stack set (`OperationInProgressException`): try again later.
    Busy,
}

/// What a deployment reads and changes: jobs, the registry, OU targets, stack sets, staging endpoints.
pub struct Aws {
    probe: crate::probe::Probe,
    sagemaker: aws_sdk_sagemaker::Client,
    cloudformation: aws_sdk_cloudformation::Client,
    codepipeline: aws_sdk_codepipeline::Client,
    organizations: Organizations,
}

fn started<T, E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    op: &'static str,
    requested: &str,
    result: Result<T, aws_sdk_cloudformation::error::SdkError<E, R>>,
    id: impl FnOnce(T) -> Option<String>,
) -> Result<Started, Error> {
    match result {
        Ok(out) => Ok(Started::Operation(
            id(out).unwrap_or_else(|| requested.to_owned()),
        )),
        Err(e) if e.code() == Some("OperationIdAlreadyExistsException") => {
            Ok(Started::Operation(requested.to_owned()))
        }
        Err(e) if e.code() == Some("OperationInProgressException") => Ok(Started::Busy),
        Err(e) => Err(Error::aws(op, e)),
    }
}

impl Aws {
    pub fn new(sdk: &aws_config::SdkConfig, config: &Config) -> Self {
        Aws {
            probe: crate::probe::Probe {
                config: sdk.clone(),
                sts: shared::client!(aws_sdk_sts, sdk),
                role_path: config
                    .smoke
                    .as_ref()
                    .map(|s| s.role_path.clone())
                    .unwrap_or_default(),
            },
            sagemaker: shared::client!(aws_sdk_sagemaker, sdk),
            cloudformation: shared::client!(aws_sdk_cloudformation, sdk),
            codepipeline: shared::client!(aws_sdk_codepipeline, sdk),
            organizations: Organizations::new(
                shared::client!(aws_sdk_organizations, sdk),
                "STAGING_TARGETS / PROD_TARGETS",
            ),
        }
    }

    /// With given clients (aws-smithy-mocks in tests).
    #[cfg(test)]
    pub fn from_parts(
        probe: crate::probe::Probe,
        sagemaker: aws_sdk_sagemaker::Client,
        cloudformation: aws_sdk_cloudformation::Client,
        codepipeline: aws_sdk_codepipeline::Client,
        organizations: Organizations,
    ) -> Self {
        Aws {
            probe,
            sagemaker,
            cloudformation,
            codepipeline,
            organizations,
        }
    }

    /// The staging endpoints' smoke test and alarms, through their accounts' roles.
    pub fn probe(&self) -> &crate::probe::Probe {
        &self.probe
    }

    /// The job as CodePipeline describes it (`GetJobDetails`): an unknown job id is an error.
    pub async fn job(&self, id: &str) -> Result<Job, Error> {
        let out = self
            .codepipeline
            .get_job_details()
            .job_id(id)
            .send()
            .await
            .map_err(|e| Error::aws("codepipeline:GetJobDetails", e))?;
        let data = out.job_details().and_then(|d| d.data());
        let context = data.and_then(|d| d.pipeline_context());
        let kind = data.and_then(|d| d.action_type_id());
        let configuration = data
            .and_then(|d| d.action_configuration())
            .and_then(|c| c.configuration());
        Ok(Job {
            id: id.to_owned(),
            pipeline: context
                .and_then(|c| c.pipeline_name())
                .unwrap_or_default()
                .to_owned(),
            pipeline_arn: context
                .and_then(|c| c.pipeline_arn())
                .unwrap_or_default()
                .to_owned(),
            stage: context
                .and_then(|c| c.stage())
                .and_then(|s| s.name())
                .unwrap_or_default()
                .to_owned(),
            action: context
                .and_then(|c| c.action())
                .and_then(|a| a.name())
                .unwrap_or_default()
                .to_owned(),
            execution_id: context
                .and_then(|c| c.pipeline_execution_id())
                .unwrap_or_default()
                .to_owned(),
            action_type: kind
                .map(|k| {
                    format!(
                        "{}/{}/{}",
                        k.category().as_str(),
                        k.owner().as_str(),
                        k.provider()
                    )
                })
                .unwrap_or_default(),
            user_parameters: configuration.and_then(|c| c.get("UserParameters")).cloned(),
            continuation_token: data.and_then(|d| d.continuation_token()).map(str::to_owned),
        })
    }

    pub async fn package(&self, arn: &str) -> Result<Package, Error> {
        let d = self
            .sagemaker
            .describe_model_package()
            .model_package_name(arn)
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:DescribeModelPackage", e))?;
        let container = d
            .inference_specification()
            .and_then(|s| s.containers().first());
        Ok(Package {
            arn: d.model_package_arn().unwrap_or(arn).to_owned(),
            group: d.model_package_group_name().unwrap_or_default().to_owned(),
            approved: d.model_approval_status().map(|s| s.as_str().to_owned()),
            image: container
                .and_then(|c| c.image())
                .unwrap_or_default()
                .to_owned(),
            model_data_url: container
                .and_then(|c| c.model_data_url())
                .map(str::to_owned),
            sample: d
                .customer_metadata_properties()
                .and_then(|m| m.get("secure-mlops:smoke-payload"))
                .map(|body| crate::probe::Sample {
                    content_type: d
                        .customer_metadata_properties()
                        .and_then(|m| m.get("secure-mlops:smoke-content-type"))
                        .cloned()
                        .or_else(|| {
                            d.inference_specification()
                                .and_then(|s| s.supported_content_types().first())
                                .cloned()
                        })
                        .unwrap_or_else(|| "application/json".into()),
                    body: body.clone(),
                }),
        })
    }

    /// The newest Approved version of `group` (the deployment's desired state, as `model-approval`
    /// decides it).
    pub async fn latest_approved(&self, group: &str) -> Result<Option<String>, Error> {
        shared::deploy::latest_approved(&self.sagemaker, group).await
    }

    pub fn is_approved(p: &Package) -> bool {
        p.approved.as_deref() == Some(ModelApprovalStatus::Approved.as_str())
    }

    /// The stage's accounts: listed ones plus the ACTIVE accounts of its OUs, sorted and unique.
    pub async fn targets(&self, stage: &Stage) -> Result<Vec<String>, Error> {
        let mut accounts: Vec<String> = stage.accounts.iter().map(|a| a.0.clone()).collect();
        if !stage.parents.is_empty() {
            accounts.extend(resolve(&self.organizations, &stage.parents, true, &[]).await?);
        }
        accounts.sort();
        accounts.dedup();
        Ok(accounts)
    }

    /// `None` when the stack set does not exist; else the value of its project tag (`None`: untagged).
    pub async fn stack_set_project(&self, name: &str) -> Result<Option<Option<String>>, Error> {
        let out = found(
            "cloudformation:DescribeStackSet",
            self.cloudformation
                .describe_stack_set()
                .stack_set_name(name)
                .send()
                .await,
        )?;
        Ok(out.map(|out| {
            out.stack_set()
                .map(|s| s.tags())
                .unwrap_or_default()
                .iter()
                .find(|t| t.key() == Some(PROJECT_TAG))
                .and_then(|t| t.value().map(str::to_owned))
        }))
    }

    fn parameters(values: &[(&str, String)]) -> Vec<Parameter> {
        values
            .iter()
            .map(|(k, v)| {
                Parameter::builder()
                    .parameter_key(*k)
                    .parameter_value(v)
                    .build()
            })
            .collect()
    }

    /// The rollout: regions one after the other (`REGION_CONCURRENCY=SEQUENTIAL`) in the stage's
    /// order, a share of each region's accounts at once, and how many may fail before it stops.
    fn preferences(config: &Config, regions: &[String]) -> StackSetOperationPreferences {
        StackSetOperationPreferences::builder()
            .set_region_order(Some(regions.to_vec()))
            .max_concurrent_percentage(config.max_concurrent_percentage)
            .failure_tolerance_percentage(config.failure_tolerance_percentage)
            .region_concurrency_type(RegionConcurrencyType::from(
                config.region_concurrency.as_str(),
            ))
            .build()
    }

    /// Creates the stack set (no instances yet); one that already exists is fine.
    pub async fn create_stack_set(
        &self,
        config: &Config,
        name: &str,
        template_url: &str,
        values: &[(&str, String)],
    ) -> Result<(), Error> {
        let result = self
            .cloudformation
            .create_stack_set()
            .stack_set_name(name)
            .description("secure-mlops: a SageMaker endpoint per target account and region")
            .template_url(template_url)
            .set_parameters(Some(Self::parameters(values)))
            .permission_model(PermissionModels::SelfManaged)
            // The staging smoke-test role has a name (the endpoint's).
            .capabilities(Capability::CapabilityNamedIam)
            .administration_role_arn(&config.administration_role_arn.0)
            .execution_role_name(&config.execution_role_name)
            .client_request_token(name)
            .tags(
                Tag::builder()
                    .key(PROJECT_TAG)
                    .value(&config.stack_set_prefix)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NameAlreadyExistsException") => Ok(()),
            Err(e) => Err(Error::aws("cloudformation:CreateStackSet", e)),
        }
    }

    pub async fn update_stack_set(
        &self,
        config: &Config,
        stage: &Stage,
        name: &str,
        template_url: &str,
        values: &[(&str, String)],
        operation_id: &str,
    ) -> Result<Started, Error> {
        let result = self
            .cloudformation
            .update_stack_set()
            .stack_set_name(name)
            .template_url(template_url)
            .set_parameters(Some(Self::parameters(values)))
            .permission_model(PermissionModels::SelfManaged)
            // The staging smoke-test role has a name (the endpoint's).
            .capabilities(Capability::CapabilityNamedIam)
            .administration_role_arn(&config.administration_role_arn.0)
            .execution_role_name(&config.execution_role_name)
            .operation_preferences(Self::preferences(config, &stage.regions))
            .operation_id(operation_id)
            .send()
            .await;
        started("cloudformation:UpdateStackSet", operation_id, result, |o| {
            o.operation_id
        })
    }

    pub async fn create_instances(
        &self,
        config: &Config,
        name: &str,
        accounts: &[String],
        regions: &[String],
        operation_id: &str,
    ) -> Result<Started, Error> {
        let result = self
            .cloudformation
            .create_stack_instances()
            .stack_set_name(name)
            .set_accounts(Some(accounts.to_vec()))
            .set_regions(Some(regions.to_vec()))
            .operation_preferences(Self::preferences(config, regions))
            .operation_id(operation_id)
            .send()
            .await;
        started(
            "cloudformation:CreateStackInstances",
            operation_id,
            result,
            |o| o.operation_id,
        )
    }

    /// (account, region) of every instance of the stack set.
    pub async fn instances(&self, name: &str) -> Result<Vec<(String, String)>, Error> {
        let pages = self
            .cloudformation
            .list_stack_instances()
            .stack_set_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::aws("cloudformation:ListStackInstances", e))?;
        Ok(pages
            .into_iter()
            .map(|i| {
                (
                    i.account().unwrap_or_default().to_owned(),
                    i.region().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// Removes the stack instances of `accounts` × `regions` and their stacks (`RetainStacks=false`).
    pub async fn delete_instances(
        &self,
        name: &str,
        accounts: &[String],
        regions: &[String],
        operation_id: &str,
    ) -> Result<Started, Error> {
        let result = self
            .cloudformation
            .delete_stack_instances()
            .stack_set_name(name)
            .set_accounts(Some(accounts.to_vec()))
            .set_regions(Some(regions.to_vec()))
            .retain_stacks(false)
            .operation_id(operation_id)
            .send()
            .await;
        started(
            "cloudformation:DeleteStackInstances",
            operation_id,
            result,
            |o| o.operation_id,
        )
    }

    /// The names of the ACTIVE stack sets that start with `prefix`.
    pub async fn stack_sets_named(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let summaries = self
            .cloudformation
            .list_stack_sets()
            .status(aws_sdk_cloudformation::types::StackSetStatus::Active)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::aws("cloudformation:ListStackSets", e))?;
        Ok(summaries
            .into_iter()
            .filter(|s| s.status().map(|st| st.as_str()) != Some("DELETED"))
            .filter_map(|s| s.stack_set_name().map(str::to_owned))
            .filter(|n| n.starts_with(prefix))
            .collect())
    }

    /// Deletes an empty stack set. `Ok(false)`: not now (an operation runs, or instances appeared).
    pub async fn delete_stack_set(&self, name: &str) -> Result<bool, Error> {
        let result = self
            .cloudformation
            .delete_stack_set()
            .stack_set_name(name)
            .send()
            .await;
        match found("cloudformation:DeleteStackSet", result) {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.code(),
                    Some("OperationInProgressException" | "StackSetNotEmptyException")
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn operation_status(&self, name: &str, operation_id: &str) -> Result<String, Error> {
        let out = self
            .cloudformation
            .describe_stack_set_operation()
            .stack_set_name(name)
            .operation_id(operation_id)
            .send()
            .await
            .map_err(|e| Error::aws("cloudformation:DescribeStackSetOperation", e))?;
        Ok(out
            .stack_set_operation()
            .and_then(|o| o.status())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default())
    }

    /// "account/region: STATUS - reason" of every instance that did not succeed.
    pub async fn failures(&self, name: &str, operation_id: &str) -> Result<Vec<String>, Error> {
        let results = self
            .cloudformation
            .list_stack_set_operation_results()
            .stack_set_name(name)
            .operation_id(operation_id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::aws("cloudformation:ListStackSetOperationResults", e))?;
        Ok(results
            .iter()
            .filter(|r| r.status().map(|s| s.as_str()) != Some("SUCCEEDED"))
            .map(|r| {
                format!(
                    "{}/{}: {} - {}",
                    r.account().unwrap_or("?"),
                    r.region().unwrap_or("?"),
                    r.status().map(|s| s.as_str()).unwrap_or("?"),
                    r.status_reason().unwrap_or("no reason given")
                )
            })
            .collect())
    }

    pub async fn succeed(
        &self,
        job_id: &str,
        continuation: Option<String>,
        outputs: &[(&str, String)],
    ) -> Result<(), Error> {
        let mut request = self
            .codepipeline
            .put_job_success_result()
            .job_id(job_id)
            .set_continuation_token(continuation);
        for (k, v) in outputs {
            request = request.output_variables(*k, v);
        }
        request
            .send()
            .await
            .map(drop)
            .map_err(|e| Error::aws("codepipeline:PutJobSuccessResult", e))
    }

    pub async fn fail(&self, job_id: &str, message: &str) -> Result<(), Error> {
        let mut message = message.to_owned();
        if message.len() > 5000 {
            let mut cut = 4990;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" […]");
        }
        let details = FailureDetails::builder()
            .r#type(FailureType::JobFailed)
            .message(message)
            .build()
            .map_err(|e| Error::other(e.to_string()))?;
        self.codepipeline
            .put_job_failure_result()
            .job_id(job_id)
            .failure_details(details)
            .send()
            .await
            .map(drop)
            .map_err(|e| Error::aws("codepipeline:PutJobFailureResult", e))
    }
}
