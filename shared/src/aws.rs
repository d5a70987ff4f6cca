//! AWS SDK configuration, loaded once per cold start.
//!
//! Honours the standard environment: credentials, `AWS_REGION`, and `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_<SERVICE>` (how tests point the functions at the local emulator).

pub use aws_config::SdkConfig;

/// Loads the SDK configuration from the environment (standard retry mode, 3 attempts).
pub async fn config() -> SdkConfig {
    aws_config::load_from_env().await
}
