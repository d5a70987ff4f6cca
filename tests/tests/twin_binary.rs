//! The `aws-twin` binary (used by `make demo`): prints the address it bound on its first line, and its
//! HTTP control API sets durations, faults and outcomes, lists calls and resets.

use std::process::Stdio;

use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn the_binary_serves_the_twin_and_its_control_api() {
    let mut child = tokio::process::Command::new(testbed::bins::path("aws-twin"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let endpoint = lines
        .next_line()
        .await
        .unwrap()
        .expect("first line: the address");
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{endpoint}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    assert!(
        post(
            "/twin/faults",
            json!({"operation": "ListDomains", "kind": "server", "count": 5})
        )
        .await
        .unwrap()
        .status()
        .is_success()
    );
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(shared::http::sdk_http_client())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sagemaker::config::Credentials::new(
            "testing", "testing", None, None, "t",
        ))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let sm = aws_sdk_sagemaker::Client::new(&config);
    let e = sm
        .list_domains()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("InternalFailure"));
    let calls: Value = serde_json::from_str(
        &http
            .get(format!("{endpoint}/twin/calls"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        calls.as_array().unwrap().len(),
        3,
        "the SDK tried 3 times: {calls}"
    );
    post("/twin/reset", json!({})).await.unwrap();
    assert!(
        sm.list_domains().send().await.unwrap().domains().is_empty(),
        "faults cleared by reset"
    );
    let bad = post(
        "/twin/faults",
        json!({"operation": "X", "kind": "sometimes"}),
    )
    .await
    .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}
