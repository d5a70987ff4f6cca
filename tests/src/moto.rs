//! The local AWS emulator: moto server, installed into the project venv by `make setup`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A moto server on a free 127.0.0.1 port, stopped on drop.
pub struct Moto {
    pub endpoint: String,
    child: tokio::process::Child,
}

/// `SECURE_MLOPS_MOTO_SERVER`, else `<workspace>/.venv/bin/moto_server`.
pub fn server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("SECURE_MLOPS_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Moto {
    /// Starts moto and waits until it answers (a few attempts in case a port is taken meanwhile).
    pub async fn start() -> Moto {
        let exe = server_path();
        assert!(
            exe.is_file(),
            "{} not found: run `make setup` (it installs moto into the project venv)",
            exe.display()
        );
        let http = reqwest::Client::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = tokio::process::Command::new(&exe)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("start moto_server");
            let endpoint = format!("http://127.0.0.1:{port}");
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: port taken, try another
                }
                let up = http
                    .get(format!("{endpoint}/moto-api/"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if up {
                    return Moto { endpoint, child };
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill().await;
        }
        panic!("moto_server did not start");
    }

    /// SDK configuration pointing at this emulator (test credentials, us-east-1).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(shared::http::sdk_http_client())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    /// An S3 client for moto (path-style addressing: bucket names are not host names here).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = self.sdk_config().await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        )
    }

    /// Creates a DynamoDB table keyed by the string `id`, as the template's tables are (idempotency
    /// records, policy locks). Returns its name.
    /// Creates an HMAC KMS key (as the template's `ContinuationKey`) and returns (key id, ARN).
    pub async fn hmac_key(&self, spec: &str) -> (String, String) {
        use aws_sdk_kms::types::{KeySpec, KeyUsageType};
        let key = aws_sdk_kms::Client::new(&self.sdk_config().await)
            .create_key()
            .key_spec(KeySpec::from(spec))
            .key_usage(KeyUsageType::GenerateVerifyMac)
            .send()
            .await
            .expect("create the HMAC key");
        let meta = key.key_metadata().expect("key metadata");
        (
            meta.key_id().to_owned(),
            meta.arn().expect("key ARN").to_owned(),
        )
    }

    pub async fn key_table(&self, name: &str) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key"),
            )
            .send()
            .await
            .expect("create the DynamoDB table");
        name.to_owned()
    }

    /// Stops the server now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
