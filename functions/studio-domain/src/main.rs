//! `studio-domain` — the `Custom::StudioDomain` resource: a SageMaker Studio domain that is created and
//! waited for, updated in place or replaced, and torn down completely (apps, spaces, user profiles,
//! the domain, and with `HomeEfsFileSystem: Delete` what SageMaker leaves behind).
//!
//! Wiring only: the modules and the provider the framework serves (`shared::cfn::serve`).

mod network;
mod projects;
mod properties;
mod provider;

#[tokio::main]
async fn main() -> Result<(), shared::RuntimeError> {
    shared::cfn::serve(provider::StudioDomain::new).await
}
