//! CloudTrail records of SageMaker calls, as fixtures: the resource a record says was created, made in
//! the twin from the record's own request, so that the detective control — which describes a resource
//! before it acts on it — finds it as a live event would.

use serde_json::{Value, json};

/// CloudTrail's `requestParameters` (camelCase, nulls for absent members) as the API's JSON (PascalCase).
pub fn api_shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let mut key = k.clone();
                    if let Some(first) = key.get(0..1) {
                        key.replace_range(0..1, &first.to_ascii_uppercase());
                    }
                    (key, api_shape(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(api_shape).collect()),
        other => other.clone(),
    }
}

/// Replays `event`'s call against the twin at `twin` (its request, as the API takes it) and dates the
/// record now. `Err` holds the twin's answer when it refused the call.
pub async fn replay(twin: &str, event: &mut Value) -> Result<(), String> {
    let d = &event["detail"];
    let resp = reqwest::Client::new()
        .post(twin)
        .header(
            "X-Amz-Target",
            format!("SageMaker.{}", d["eventName"].as_str().unwrap_or_default()),
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(api_shape(&d["requestParameters"]).to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(resp.text().await.unwrap_or_default());
    }
    event["detail"]["eventTime"] = json!(
        aws_smithy_types::DateTime::from(std::time::SystemTime::now())
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default()
    );
    Ok(())
}
