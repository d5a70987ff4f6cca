//! Adapters: the model registry (latest Approved version), the staging stack set (what runs), the
//! pipeline (what is on its way; start), and the alert topic.

use aws_sdk_cloudformation::types::StackInstanceStatus;
use aws_sdk_codepipeline::types::{PipelineExecutionStatus, PipelineVariable};
use shared::Error;
use shared::deploy::MODEL_PACKAGE_PARAMETER;
use shared::error::found;

/// The deployment as AWS sees it: the registry, the staging stack set, the pipeline, the alert topic.
pub struct Deployment {
    sagemaker: aws_sdk_sagemaker::Client,
    cloudformation: aws_sdk_cloudformation::Client,
    codepipeline: aws_sdk_codepipeline::Client,
    sns: aws_sdk_sns::Client,
}

/// How many recent executions are looked at for one already deploying the version.
const RECENT_EXECUTIONS: i32 = 10;

impl Deployment {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Deployment {
            sagemaker: shared::client!(aws_sdk_sagemaker, sdk),
            cloudformation: shared::client!(aws_sdk_cloudformation, sdk),
            codepipeline: shared::client!(aws_sdk_codepipeline, sdk),
            sns: shared::client!(aws_sdk_sns, sdk),
        }
    }

    /// With given clients (aws-smithy-mocks in tests).
    #[cfg(test)]
    pub fn from_clients(
        sagemaker: aws_sdk_sagemaker::Client,
        cloudformation: aws_sdk_cloudformation::Client,
        codepipeline: aws_sdk_codepipeline::Client,
        sns: aws_sdk_sns::Client,
    ) -> Self {
        Deployment {
            sagemaker,
            cloudformation,
            codepipeline,
            sns,
        }
    }

    pub async fn latest_approved(&self, group: &str) -> Result<Option<String>, Error> {
        shared::deploy::latest_approved(&self.sagemaker, group).await
    }

    /// What the staging stack set runs: its `ModelPackageArn` parameter (set when a deployment
    /// *starts*) and whether every stack instance is `CURRENT` (CloudFormation: up to date with the
    /// stack set; `OUTDATED` after a failed or stopped operation). `None` when there is no stack set.
    pub async fn deployed(&self, stack_set: &str) -> Result<Option<(String, bool)>, Error> {
        let Some(out) = found(
            "cloudformation:DescribeStackSet",
            self.cloudformation
                .describe_stack_set()
                .stack_set_name(stack_set)
                .send()
                .await,
        )?
        else {
            return Ok(None);
        };
        let parameter = out
            .stack_set()
            .map(|s| s.parameters())
            .unwrap_or_default()
            .iter()
            .find(|p| p.parameter_key() == Some(MODEL_PACKAGE_PARAMETER))
            .and_then(|p| p.parameter_value())
            .map(str::to_owned);
        let Some(version) = parameter else {
            return Ok(None);
        };
        let instances: Vec<_> = self
            .cloudformation
            .list_stack_instances()
            .stack_set_name(stack_set)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::aws("cloudformation:ListStackInstances", e))?;
        let settled = !instances.is_empty()
            && instances
                .iter()
                .all(|i| i.status() == Some(&StackInstanceStatus::Current));
        Ok(Some((version, settled)))
    }

    /// `ModelPackageArn` of the pipeline's executions still in progress.
    pub async fn in_flight(&self, pipeline: &str) -> Result<Vec<String>, Error> {
        let out = self
            .codepipeline
            .list_pipeline_executions()
            .pipeline_name(pipeline)
            .max_results(RECENT_EXECUTIONS)
            .send()
            .await
            .map_err(|e| Error::aws("codepipeline:ListPipelineExecutions", e))?;
        let mut versions = Vec::new();
        for summary in out.pipeline_execution_summaries() {
            if summary.status() != Some(&PipelineExecutionStatus::InProgress) {
                continue;
            }
            let Some(id) = summary.pipeline_execution_id() else {
                continue;
            };
            let e = self
                .codepipeline
                .get_pipeline_execution()
                .pipeline_name(pipeline)
                .pipeline_execution_id(id)
                .send()
                .await
                .map_err(|e| Error::aws("codepipeline:GetPipelineExecution", e))?;
            let variables = e
                .pipeline_execution()
                .map(|x| x.variables())
                .unwrap_or_default();
            versions.extend(
                variables
                    .iter()
                    .filter(|v| v.name() == Some(MODEL_PACKAGE_PARAMETER))
                    .filter_map(|v| v.resolved_value())
                    .map(str::to_owned),
            );
        }
        Ok(versions)
    }

    /// Starts the pipeline; the same `token` never starts a second execution.
    pub async fn start(&self, pipeline: &str, version: &str, token: &str) -> Result<String, Error> {
        let variable = PipelineVariable::builder()
            .name(MODEL_PACKAGE_PARAMETER)
            .value(version)
            .build()
            .map_err(|e| Error::other(e.to_string()))?;
        let out = self
            .codepipeline
            .start_pipeline_execution()
            .name(pipeline)
            .variables(variable)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| Error::aws("codepipeline:StartPipelineExecution", e))?;
        Ok(out.pipeline_execution_id().unwrap_or_default().to_owned())
    }

    pub async fn alert(
        &self,
        topic: &str,
        subject: &str,
        body: &serde_json::Value,
    ) -> Result<(), Error> {
        self.sns
            .publish()
            .topic_arn(topic)
            .subject(subject)
            .message(body.to_string())
            .send()
            .await
            .map(drop)
            .map_err(|e| Error::aws("sns:Publish", e))
    }
}
