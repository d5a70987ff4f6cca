//! `stackset-deploy` — the CodePipeline Lambda invoke action that deploys one model package version to
//! one stage (`staging` or `prod`): one SELF_MANAGED stack set per (model package group, stage) with the
//! endpoint template, instances in the stage's accounts (account ids, or OUs resolved to ACTIVE
//! accounts) and regions. The operation id is derived from the pipeline execution and stage, so a retried
//! action reuses its operation; CodePipeline's continuation token carries the deployment while it runs.
//!
//! It also serves `Custom::EndpointRetirement` (see [`retire`]) for its own application stack: a
//! CloudFormation request (or the framework's continuation) goes to the custom-resource framework,
//! every other payload to the job handler.
//!
//! Wiring only: logging, configuration, SDK clients (once per cold start), the handler.

mod aws;
mod config;
mod handler;
mod job;
mod probe;
mod retire;

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let config = config::Config::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = shared::aws::config().await;
    let handler = Arc::new(handler::Handler {
        aws: aws::Aws {
            probe: probe::Probe {
                config: sdk.clone(),
                sts: aws_sdk_sts::Client::new(&sdk),
                role_path: config
                    .smoke
                    .as_ref()
                    .map(|s| s.role_path.clone())
                    .unwrap_or_default(),
            },
            sagemaker: aws_sdk_sagemaker::Client::new(&sdk),
            cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
            codepipeline: aws_sdk_codepipeline::Client::new(&sdk),
            organizations: shared::organizations::Organizations::new(
                aws_sdk_organizations::Client::new(&sdk),
            ),
        },
        config,
    });
    let retirement = Arc::new(shared::cfn::Runner::new(
        retire::Retirement::new(Arc::clone(&handler)),
        aws_sdk_lambda::Client::new(&sdk),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (handler, retirement) = (Arc::clone(&handler), Arc::clone(&retirement));
        async move {
            if shared::cfn::is_custom_resource(&event.payload) {
                retirement.handle_event(event).await
            } else {
                handler.handle(event.payload).await
            }
        }
    }))
    .await
}
