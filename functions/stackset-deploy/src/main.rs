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
//! Wiring only: the modules and the function the framework serves (`shared::event::serve`).

mod aws;
mod config;
mod handler;
mod job;
mod probe;
mod retire;

#[tokio::main]
async fn main() -> Result<(), shared::RuntimeError> {
    shared::event::serve::<handler::Function>().await
}
