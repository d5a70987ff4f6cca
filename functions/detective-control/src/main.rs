//! `detective-control` — finds SageMaker resources that break the rules (no VPC, no network isolation,
//! no KMS, notebooks with internet or root access, domains open to the internet), stops or deletes them
//! (`MODE=enforce`) and alerts through SNS and, optionally, AWS Security Hub.
//!
//! Triggered by EventBridge: CloudTrail records of SageMaker calls, and a schedule that sweeps what is
//! running. Wiring only: logging, configuration, SDK clients (once per cold start), the handler.

mod alert;
mod checks;
mod config;
mod continuation;
mod handler;
mod idempotency;
mod notify;
mod resource;
mod respond;
mod sagemaker;
mod trigger;

#[cfg(test)]
mod proptests;

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let config = config::Config::from_env().inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration");
    })?;
    let aws = shared::aws::config().await;
    let handler = Arc::new(handler::Handler {
        continuation: continuation::Continuation::new(
            aws_sdk_lambda::Client::new(&aws),
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
        ),
        sagemaker: sagemaker::SageMaker::new(aws_sdk_sagemaker::Client::new(&aws)),
        notifier: notify::Notifier::new(
            aws_sdk_sns::Client::new(&aws),
            config
                .security_hub
                .then(|| aws_sdk_securityhub::Client::new(&aws)),
            config.topic_arn.clone(),
        ),
        idempotency: idempotency::Idempotency::new(
            aws_sdk_dynamodb::Client::new(&aws),
            config.idempotency_table.clone(),
            config.idempotency_ttl,
            config.in_progress,
        ),
        config,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        let deadline =
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(event.context.deadline);
        async move { handler.handle_until(event.payload, Some(deadline)).await }
    }))
    .await
}
