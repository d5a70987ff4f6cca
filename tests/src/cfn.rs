//! CloudFormation custom-resource requests, shaped as CloudFormation sends them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

pub const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/secure-mlops-demo/5b1d7a40-0000-11ef-8000-0a1b2c3d4e5f";

static SEQ: AtomicU64 = AtomicU64::new(1);

/// A fresh RequestId (UUID-shaped, unique within the process).
pub fn request_id() -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 16) as u32,
        std::process::id() & 0xffff,
        n & 0xfff,
        (n >> 12) & 0xfff,
        t & 0xffff_ffff_ffff
    )
}

/// A request of `kind` ("Create", "Update", "Delete") for `resource_type` / `logical_id`.
pub fn request(
    kind: &str,
    response_url: &str,
    resource_type: &str,
    logical_id: &str,
    properties: Value,
    physical_id: Option<&str>,
    old_properties: Option<Value>,
) -> Value {
    let mut props = properties;
    if let Some(obj) = props.as_object_mut() {
        obj.entry("ServiceToken").or_insert(json!(
            "arn:aws:lambda:us-east-1:123456789012:function:secure-mlops"
        ));
    }
    let mut event = json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:secure-mlops",
        "ResponseURL": response_url,
        "StackId": STACK_ID,
        "RequestId": request_id(),
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": props,
    });
    if let Some(id) = physical_id {
        event["PhysicalResourceId"] = json!(id);
    }
    if let Some(old) = old_properties {
        event["OldResourceProperties"] = old;
    }
    event
}
