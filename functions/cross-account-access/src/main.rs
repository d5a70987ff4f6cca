//! `cross-account-access` — the `Custom::CrossAccountModelAccess` resource: lets the staging and
//! production accounts read model artifacts by adding statements it owns to the artifact bucket's policy
//! (`s3:GetObject` on a prefix, `s3:ListBucket` limited to it) and to the KMS key policy (`kms:Decrypt`
//! through S3 for that bucket and prefix only). Statements it did not write are never changed or reordered.
//!
//! Wiring only: the modules and the provider the framework serves (`shared::cfn::serve`).

mod policy;
mod properties;
mod provider;

#[tokio::main]
async fn main() -> Result<(), shared::RuntimeError> {
    shared::cfn::serve(provider::CrossAccountAccess::new).await
}
