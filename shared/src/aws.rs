//! AWS SDK configuration, loaded once per cold start.
//!
//! Honours the standard environment: credentials, `AWS_REGION`, and `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_<SERVICE>` (how tests point the functions at the local emulator).

pub use aws_config::SdkConfig;

/// Loads the SDK configuration from the environment (standard retry mode, 3 attempts), with the
/// process's one HTTPS client ([`crate::tls`]). Every client a function builds comes from this.
pub async fn config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::http::sdk_http_client())
        .load()
        .await
}

/// Whether calls to `service` (its `AWS_ENDPOINT_URL_<SERVICE>` name, e.g. `S3`) go to a custom
/// endpoint: then S3 needs path-style addressing (`http://127.0.0.1:…/bucket/key`), as do VPC
/// endpoints given by URL. Build the S3 client with `force_path_style(custom_endpoint("S3"))`.
pub fn custom_endpoint(service: &str) -> bool {
    [
        format!("AWS_ENDPOINT_URL_{service}"),
        "AWS_ENDPOINT_URL".to_owned(),
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some())
}

/// The SDK configuration of `config` acting as `role` (one `sts:AssumeRole`), in `region` when given.
/// The session lasts 15 minutes, the shortest STS allows: callers use it at once or cache it for less.
/// The error says which role could not be assumed and that it must trust the caller.
#[cfg(feature = "assume")]
pub async fn assume(
    config: &SdkConfig,
    sts: &aws_sdk_sts::Client,
    role: &str,
    session: &str,
    region: Option<&str>,
) -> Result<SdkConfig, crate::Error> {
    let out = sts
        .assume_role()
        .role_arn(role)
        .role_session_name(session)
        .duration_seconds(900)
        .send()
        .await
        .map_err(|e| {
            let err = crate::Error::aws("sts:AssumeRole", e);
            crate::Error::other(format!(
                "role {role}: {err} — the role must exist and trust this function's role"
            ))
        })?;
    let creds = out
        .credentials()
        .ok_or_else(|| crate::Error::other("sts:AssumeRole returned no credentials"))?;
    let mut builder = config.to_builder().credentials_provider(
        aws_sdk_sts::config::SharedCredentialsProvider::new(aws_sdk_sts::config::Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_owned()),
            std::time::SystemTime::try_from(*creds.expiration()).ok(),
            "secure-mlops-assumed-role",
        )),
    );
    if let Some(region) = region {
        builder = builder.region(aws_config::Region::new(region.to_owned()));
    }
    Ok(builder.build())
}
