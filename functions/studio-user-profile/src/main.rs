//! `studio-user-profile` — the `Custom::StudioUserProfile` resource: a Studio user profile that is
//! created and waited for, updated in place or replaced, and deleted with its apps and the private
//! spaces it owns.
//!
//! Wiring only: the modules and the provider the framework serves (`shared::cfn::serve`).

mod properties;
mod provider;

#[tokio::main]
async fn main() -> Result<(), shared::RuntimeError> {
    shared::cfn::serve(provider::StudioUserProfile::new).await
}
