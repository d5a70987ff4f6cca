//! `studio-user-profile` — the `Custom::StudioUserProfile` resource: a Studio user profile that is
//! created and waited for, updated in place or replaced, and deleted with its apps and the private
//! spaces it owns.
//!
//! Wiring only: logging, SDK client (once per cold start), the provider, the framework.

mod properties;
mod provider;

#[tokio::main]
async fn main() -> Result<(), shared::cfn::RuntimeError> {
    shared::logging::init();
    let config = shared::aws::config().await;
    let provider = provider::StudioUserProfile::new(&config);
    shared::cfn::serve(provider, &config).await
}
