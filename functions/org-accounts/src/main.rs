//! `org-accounts` — the `Custom::OrgAccounts` resource: resolves AWS Organizations OU ids (or a root id)
//! to the sorted, unique ids of their ACTIVE accounts, for StackSet targets and bucket/key policies.
//!
//! Wiring only: the modules and the provider the framework serves (`shared::cfn::serve`).

mod properties;
mod provider;

#[tokio::main]
async fn main() -> Result<(), shared::RuntimeError> {
    shared::cfn::serve(provider::OrgAccounts::new).await
}
