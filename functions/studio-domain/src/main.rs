//! `studio-domain` — the `Custom::StudioDomain` resource: a SageMaker Studio domain that is created and
//! waited for, updated in place or replaced, and torn down completely (apps, spaces, user profiles,
//! the domain, and with `HomeEfsFileSystem: Delete` what SageMaker leaves behind).
//!
//! Wiring only: logging, SDK clients (once per cold start), the provider, the framework.

mod network;
mod properties;
mod provider;

#[tokio::main]
async fn main() -> Result<(), shared::cfn::RuntimeError> {
    shared::logging::init();
    let config = shared::aws::config().await;
    let provider = provider::StudioDomain::new(&config);
    shared::cfn::serve(provider, &config).await
}
