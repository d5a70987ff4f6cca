//! What one event means: a registry change decides against what runs and what is on its way
//! (`decide`); a new endpoint template redeploys what runs.

use serde_json::{Value, json};
use shared::Error;
use shared::metrics::{self, Metric};
use tracing::{info, warn};

use crate::aws::Deployment;
use crate::config::Config;
use crate::decide::{Decision, Observed, decide};
use crate::event::{self, Change, TemplateWritten, Trigger};

/// `clientRequestToken` from the event id: a second delivery of the event starts nothing new.
fn request_token(event_id: &str) -> String {
    format!("model-approval-{}", shared::ids::sha256_hex(event_id, 16))
}

/// The function: its configuration and the deployment's AWS side, built once per cold start.
pub struct Handler {
    config: Config,
    aws: Deployment,
}

impl shared::event::Handler for Handler {
    fn new(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(Handler {
            config: Config::from_env()?,
            aws: Deployment::new(sdk),
        })
    }

    async fn handle(&self, event: Value, _: &shared::event::Invocation) -> Result<Value, Error> {
        let out = handle(&self.config, &self.aws, event).await?;
        let outcome = match out["action"].as_str() {
            Some("started") => "Started",
            Some("none") => "Skipped",
            Some("alert") => "Alerted",
            Some("redeploy") => "Redeployed",
            _ => "Ignored",
        };
        metrics::emit(outcome, &[Metric::count("Decisions")], &[]);
        Ok(out)
    }
}

pub async fn handle(config: &Config, aws: &Deployment, payload: Value) -> Result<Value, Error> {
    match event::trigger(&payload)? {
        Trigger::Registry(change) => registry_changed(config, aws, change).await,
        Trigger::Template(written) => template_written(config, aws, written).await,
    }
}

/// A new version of the endpoint template: each group's staging version is deployed again with it
/// (through the whole pipeline, approval included), so no stage keeps running a template that the
/// next deployment would replace without a look. Another object, or another bucket, is ignored.
async fn template_written(
    config: &Config,
    aws: &Deployment,
    written: TemplateWritten,
) -> Result<Value, Error> {
    let ours = config
        .template
        .as_ref()
        .is_some_and(|(bucket, key)| *bucket == written.bucket && *key == written.key);
    if !ours {
        info!(event_id = %written.event_id, bucket = %written.bucket, key = %written.key,
              "ignored: not the endpoint template (TEMPLATE_BUCKET, TEMPLATE_KEY)");
        return Ok(
            json!({"ignored": format!("s3://{}/{} is not the endpoint template", written.bucket, written.key)}),
        );
    }
    let mut started = Vec::new();
    for group in &config.groups {
        let stack_set = shared::deploy::stack_set_name(&config.stack_set_prefix, group, "staging");
        let Some((version, _)) = aws.deployed(&stack_set).await? else {
            info!(%group, "template changed: nothing deployed for this group");
            continue;
        };
        let token = request_token(&format!("{}/{group}", written.event_id));
        let execution = aws.start(&config.pipeline_name, &version, &token).await?;
        info!(%group, %execution, %version, template_version = ?written.version,
              "template changed: redeploying what runs");
        started.push(json!({"group": group, "version": version, "executionId": execution}));
    }
    Ok(json!({"action": "redeploy", "template": written.version, "started": started}))
}

async fn registry_changed(
    config: &Config,
    aws: &Deployment,
    change: Change,
) -> Result<Value, Error> {
    if !config.groups.contains(&change.group) {
        info!(event_id = %change.event_id, group = %change.group, "ignored: not a configured model package group");
        return Ok(json!({"ignored": format!("group {} is not configured", change.group)}));
    }
    let stack_set =
        shared::deploy::stack_set_name(&config.stack_set_prefix, &change.group, "staging");
    let (deployed, settled) = aws.deployed(&stack_set).await?.unzip();
    let observed = Observed {
        latest_approved: aws.latest_approved(&change.group).await?,
        deployed,
        settled: settled.unwrap_or(false),
        in_flight: aws.in_flight(&config.pipeline_name).await?,
    };
    let decision = decide(&observed);
    info!(event_id = %change.event_id, group = %change.group, package = ?change.package,
          status = ?change.status, ?observed, ?decision, "decided");
    match decision {
        Decision::Nothing(reason) => Ok(json!({"action": "none", "reason": reason})),
        Decision::Deploy {
            version,
            rollback,
            retry,
        } => {
            let token = request_token(&change.event_id);
            let execution = aws.start(&config.pipeline_name, &version, &token).await?;
            info!(%execution, %version, rollback, retry, "pipeline started");
            Ok(
                json!({"action": "started", "version": version, "rollback": rollback, "retry": retry, "executionId": execution}),
            )
        }
        Decision::Alert(reason) => {
            warn!(group = %change.group, %reason, "nothing approved left");
            if let Some(topic) = &config.alert_topic_arn {
                let subject = format!("Model group {}: no approved version left", change.group);
                let body = json!({"source": "secure-mlops model-approval", "group": change.group,
                    "deployed": observed.deployed, "eventId": change.event_id, "reason": reason});
                aws.alert(topic, &subject, &body).await?;
            }
            Ok(json!({"action": "alert", "reason": reason}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_deterministic_and_valid() {
        let t = request_token("7bf73129-1428-4cd3-a780-95db273d1602");
        assert_eq!(t, request_token("7bf73129-1428-4cd3-a780-95db273d1602"));
        assert_ne!(t, request_token("other"));
        assert!(t.len() <= 128 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }

    /// A staging deployment of v2 that failed (an instance `OUTDATED`: CloudFormation's state for a
    /// stack a failed or stopped operation did not bring up to date) is retried by the next event for
    /// v2; once every instance is `CURRENT`, the same event starts nothing. moto reports every instance
    /// `CURRENT`, so this state comes from aws-smithy-mocks.
    mod failed_deployments {
        use aws_sdk_cloudformation::operation::describe_stack_set::DescribeStackSetOutput;
        use aws_sdk_cloudformation::operation::list_stack_instances::ListStackInstancesOutput;
        use aws_sdk_cloudformation::types::{
            Parameter, StackInstanceStatus, StackInstanceSummary, StackSet,
        };
        use aws_sdk_codepipeline::operation::list_pipeline_executions::ListPipelineExecutionsOutput;
        use aws_sdk_codepipeline::operation::start_pipeline_execution::StartPipelineExecutionOutput;
        use aws_sdk_sagemaker::operation::list_model_packages::ListModelPackagesOutput;
        use aws_sdk_sagemaker::types::ModelPackageSummary;
        use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

        use super::*;

        const V2: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/2";

        async fn run(statuses: &'static [StackInstanceStatus]) -> (Value, usize) {
            let latest = mock!(aws_sdk_sagemaker::Client::list_model_packages).then_output(|| {
                ListModelPackagesOutput::builder()
                    .model_package_summary_list(
                        ModelPackageSummary::builder().model_package_arn(V2).build(),
                    )
                    .build()
            });
            let stack_set =
                mock!(aws_sdk_cloudformation::Client::describe_stack_set).then_output(|| {
                    DescribeStackSetOutput::builder()
                        .stack_set(
                            StackSet::builder()
                                .parameters(
                                    Parameter::builder()
                                        .parameter_key("ModelPackageArn")
                                        .parameter_value(V2)
                                        .build(),
                                )
                                .build(),
                        )
                        .build()
                });
            let instances: Rule = mock!(aws_sdk_cloudformation::Client::list_stack_instances)
                .then_output(move || {
                    let mut out = ListStackInstancesOutput::builder();
                    for (i, s) in statuses.iter().enumerate() {
                        out = out.summaries(
                            StackInstanceSummary::builder()
                                .account(format!("11111111111{i}"))
                                .region("us-east-1")
                                .status(s.clone())
                                .build(),
                        );
                    }
                    out.build()
                });
            let executions = mock!(aws_sdk_codepipeline::Client::list_pipeline_executions)
                .then_output(|| ListPipelineExecutionsOutput::builder().build());
            let start =
                mock!(aws_sdk_codepipeline::Client::start_pipeline_execution).then_output(|| {
                    StartPipelineExecutionOutput::builder()
                        .pipeline_execution_id("exec-2")
                        .build()
                });
            let aws = Deployment::from_clients(
                mock_client!(aws_sdk_sagemaker, RuleMode::MatchAny, &[&latest]),
                mock_client!(
                    aws_sdk_cloudformation,
                    RuleMode::MatchAny,
                    &[&stack_set, &instances]
                ),
                mock_client!(
                    aws_sdk_codepipeline,
                    RuleMode::MatchAny,
                    &[&executions, &start]
                ),
                mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[]),
            );
            let config = Config {
                pipeline_name: "secure-mlops-model-deployment".into(),
                groups: vec!["churn".into()],
                stack_set_prefix: "secure-mlops".into(),
                alert_topic_arn: None,
                template: None,
            };
            let event = json!({"id": "event-7", "detail-type": "SageMaker Model Package State Change",
                "source": "aws.sagemaker", "detail": {"ModelPackageGroupName": "churn",
                "ModelApprovalStatus": "Approved", "ModelPackageArn": V2}});
            let out = handle(&config, &aws, event).await.unwrap();
            (out, start.num_calls())
        }

        #[tokio::test]
        async fn an_outdated_instance_means_the_version_does_not_run_yet() {
            let (out, starts) =
                run(&[StackInstanceStatus::Current, StackInstanceStatus::Outdated]).await;
            assert_eq!(
                (out["action"].as_str(), starts),
                (Some("started"), 1),
                "{out}"
            );
            assert_eq!(out["retry"], true);
            let (out, starts) =
                run(&[StackInstanceStatus::Current, StackInstanceStatus::Current]).await;
            assert_eq!((out["action"].as_str(), starts), (Some("none"), 0), "{out}");
        }
    }
}
