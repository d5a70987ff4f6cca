//! `model-approval` — reacts to any change in the SageMaker Model Registry of a configured model package
//! group: the desired state is the group's latest Approved version; when staging does not run it and no
//! pipeline execution is already deploying it, starts the deployment pipeline for it (a rejected version
//! thus rolls back to the newest one still approved). Duplicate events start nothing new. A new version
//! of the endpoint template (S3 `Object Created`) redeploys each group's staging version with it.
//!
//! Wiring only: logging, configuration, SDK clients (once per cold start), the handler.

mod aws;
mod config;
mod decide;
mod event;
mod handler;

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::aws::Aws;
use crate::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = shared::aws::config().await;
    let aws = Arc::new(Aws {
        sagemaker: aws_sdk_sagemaker::Client::new(&sdk),
        cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
        codepipeline: aws_sdk_codepipeline::Client::new(&sdk),
        sns: aws_sdk_sns::Client::new(&sdk),
    });
    let config = Arc::new(config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (config, aws) = (Arc::clone(&config), Arc::clone(&aws));
        async move { handler::handle(&config, &aws, event.payload).await }
    }))
    .await
}
