//! AWS SDK configuration, loaded once per cold start, from the environment Lambda gives a function.
//!
//! Read: credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`: Lambda sets the
//! function role's), the region (`AWS_REGION`, else `AWS_DEFAULT_REGION`), endpoints (`AWS_ENDPOINT_URL`
//! and `AWS_ENDPOINT_URL_<SERVICE>`, how tests point the functions at the local emulator;
//! `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` turns both off), and `AWS_USE_FIPS_ENDPOINT` /
//! `AWS_USE_DUALSTACK_ENDPOINT`. Retries are the standard mode's 3 attempts; timeouts are the SDK's.
//!
//! Not read, on purpose: profile files, SSO, web identity, ECS and IMDS credentials. None of them exists
//! in Lambda, and `aws-config`'s default chain, which tries each, was about 300 KB of every bootstrap.

use std::collections::HashMap;

pub use aws_config::SdkConfig;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// The SDK configuration every client of a function is built from, with the process's one HTTP client
/// ([`crate::http`]).
pub async fn config() -> SdkConfig {
    config_from(
        std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .collect(),
    )
}

fn config_from(env: HashMap<String, String>) -> SdkConfig {
    let flag = |key: &str| {
        env.get(key)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    };
    let mut builder = SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(aws_types::sdk_config::SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .retry_config(aws_types::sdk_config::RetryConfig::standard())
        .http_client(crate::http::sdk_http_client())
        .use_fips(flag("AWS_USE_FIPS_ENDPOINT"))
        .use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"))
        .service_config(Endpoints(if flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
            HashMap::new()
        } else {
            env.iter()
                .filter(|(k, _)| k.starts_with(ENDPOINT_URL))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }));
    if let Some(region) = env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
    {
        builder = builder.region(aws_config::Region::new(region.clone()));
    }
    builder.build()
}

const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// The endpoint overrides, as the SDK's clients ask for them: a service's own variable
/// (`AWS_ENDPOINT_URL_<SERVICE ID>`, the id upper-cased with `_` for spaces) before the global one.
#[derive(Debug)]
struct Endpoints(HashMap<String, String>);

impl LoadServiceConfig for Endpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() != ENDPOINT_URL {
            return None;
        }
        let service = key.service_id().to_uppercase().replace(' ', "_");
        self.0
            .get(&format!("{ENDPOINT_URL}_{service}"))
            .or_else(|| self.0.get(ENDPOINT_URL))
            .cloned()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The endpoint an SDK client of `service_id` resolves from `config`.
    fn endpoint(config: &SdkConfig, service_id: &str) -> Option<String> {
        let key = ServiceConfigKey::builder()
            .service_id(service_id)
            .env(ENDPOINT_URL)
            .profile("endpoint_url")
            .build()
            .expect("a complete key");
        config.service_config()?.load_config(key)
    }

    #[test]
    fn a_service_endpoint_wins_over_the_global_one_and_both_can_be_ignored() {
        let vars = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:7000"),
            (
                "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
                "http://127.0.0.1:7001",
            ),
        ];
        let config = config_from(env(&vars));
        assert_eq!(
            endpoint(&config, "SageMaker").as_deref(),
            Some("http://127.0.0.1:7000")
        );
        assert_eq!(
            endpoint(&config, "SageMaker Runtime").as_deref(),
            Some("http://127.0.0.1:7001")
        );
        assert_eq!(
            endpoint(&config, "SNS").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(endpoint(&config_from(env(&[])), "SNS"), None);

        let mut ignored = env(&vars);
        ignored.insert("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS".into(), "true".into());
        assert_eq!(endpoint(&config_from(ignored), "SageMaker"), None);
    }

    #[test]
    fn the_region_falls_back_to_the_default_region_and_flags_are_read() {
        let config = config_from(env(&[("AWS_DEFAULT_REGION", "eu-west-1")]));
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(config.use_fips(), Some(false));
        let config = config_from(env(&[
            ("AWS_REGION", "us-gov-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_USE_FIPS_ENDPOINT", "TRUE"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "true"),
        ]));
        assert_eq!(config.region().map(|r| r.as_ref()), Some("us-gov-west-1"));
        assert_eq!(config.use_fips(), Some(true));
        assert_eq!(config.use_dual_stack(), Some(true));
        assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(3));
        assert!(config.credentials_provider().is_some());
    }

    #[tokio::test]
    async fn a_client_built_from_it_calls_its_service_endpoint() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (listener, url) = crate::http::local_server("").await;
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.expect("read");
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\n{\"Functions\":[]}")
                .await
                .expect("write");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let config = config_from(env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ENDPOINT_URL_LAMBDA", &url),
        ]));
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&config)
                .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                    "AKIDTEST", "secret", None, None, "test",
                ))
                .build(),
        );
        lambda.list_functions().send().await.expect("an answer");
        let request = server.await.expect("server");
        assert!(
            request.starts_with("GET /2015-03-31/functions"),
            "{request}"
        );
        assert!(
            request.contains("/eu-west-1/lambda/aws4_request"),
            "signed for the region"
        );
    }
}
