//! `cross-account-access` — the `Custom::CrossAccountModelAccess` resource: lets the staging and
//! production accounts read model artifacts by adding statements it owns to the artifact bucket's policy
//! (`s3:GetObject` on a prefix, `s3:ListBucket` limited to it) and to the KMS key policy (`kms:Decrypt`
//! through S3 for that bucket and prefix only). Statements it did not write are never changed or reordered.
//!
//! Wiring only: logging, SDK clients (once per cold start), the policy lock table, the provider, the
//! framework.

mod policy;
mod properties;
mod provider;

#[tokio::main]
async fn main() -> Result<(), shared::cfn::RuntimeError> {
    shared::logging::init();
    let config = shared::aws::config().await;
    // A custom endpoint (tests, VPC endpoints by URL) needs path-style bucket addressing.
    let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|k| std::env::var_os(k).is_some());
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(custom_endpoint)
            .build(),
    );
    // Edits of one policy take turns through a lease lock in this table (see shared::lock). Without
    // it every request is answered FAILED saying so (never an init error: CloudFormation must hear back).
    let locks = shared::settings::from_env()
        .get(provider::LOCK_TABLE_SETTING)
        .map(|table| {
            shared::lock::Locks::new(
                aws_sdk_dynamodb::Client::new(&config),
                table,
                shared::lock::DEFAULT_LEASE,
            )
        });
    let provider = provider::CrossAccountAccess::new(
        s3,
        aws_sdk_kms::Client::new(&config),
        aws_sdk_organizations::Client::new(&config),
        locks,
    );
    shared::cfn::serve(provider, &config).await
}
