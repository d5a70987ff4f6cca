//! `model-approval` — reacts to any change in the SageMaker Model Registry of a configured model package
//! group: the desired state is the group's latest Approved version; when staging does not run it and no
//! pipeline execution is already deploying it, starts the deployment pipeline for it (a rejected version
//! thus rolls back to the newest one still approved). Duplicate events start nothing new. A new version
//! of the endpoint template (S3 `Object Created`) redeploys each group's staging version with it.
//!
//! Wiring only: the modules and the handler the framework serves (`shared::event::serve`).

mod aws;
mod config;
mod decide;
mod event;
mod handler;

#[tokio::main]
async fn main() -> Result<(), shared::RuntimeError> {
    shared::event::serve::<handler::Handler>().await
}
