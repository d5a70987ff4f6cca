//! `org-accounts` — the `Custom::OrgAccounts` resource: resolves AWS Organizations OU ids (or a root id)
//! to the sorted, unique ids of their ACTIVE accounts, for StackSet targets and bucket/key policies.
//!
//! Wiring only: logging, SDK clients (once per cold start), the provider, the framework.

mod properties;
mod provider;

#[tokio::main]
async fn main() -> Result<(), shared::cfn::RuntimeError> {
    shared::logging::init();
    let config = shared::aws::config().await;
    let provider = provider::OrgAccounts::new(&config);
    shared::cfn::serve(provider, &config).await
}
