//! `detective-control` — finds SageMaker resources that break the rules (no VPC, no network isolation,
//! no KMS, notebooks with internet or root access, domains open to the internet), stops or deletes them
//! (`MODE=enforce`) and alerts through SNS and, optionally, AWS Security Hub.
//!
//! Triggered by EventBridge: CloudTrail records of SageMaker calls, and a schedule that sweeps what is
//! running.
//!
//! Wiring only: the modules and the handler the framework serves (`shared::event::serve`).

mod alert;
mod checks;
mod config;
mod continuation;
mod handler;
mod idempotency;
mod members;
mod notify;
mod resource;
mod respond;
mod sagemaker;
mod trigger;

#[cfg(test)]
mod proptests;

#[tokio::main]
async fn main() -> Result<(), shared::RuntimeError> {
    shared::event::serve::<handler::Handler>().await
}
