//! The CloudFormation custom-resource request, as CloudFormation sends it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

impl RequestType {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Create => "Create",
            RequestType::Update => "Update",
            RequestType::Delete => "Delete",
        }
    }
}

impl std::fmt::Display for RequestType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A custom-resource request. `Debug` never prints the pre-signed `ResponseURL` nor the properties
/// (they may hold `NoEcho` values).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_properties: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_resource_properties: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_token: Option<String>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("request_type", &self.request_type)
            .field("request_id", &self.request_id)
            .field("stack_id", &self.stack_id)
            .field("logical_resource_id", &self.logical_resource_id)
            .field("resource_type", &self.resource_type)
            .field("physical_resource_id", &self.physical_resource_id)
            .finish_non_exhaustive()
    }
}

/// Prefix of the physical id the framework answers a failed Create with. The Delete CloudFormation
/// sends afterwards carries it back, and is answered SUCCESS without calling the provider.
pub const FAILED_CREATE_PREFIX: &str = "secure-mlops-failed-create-";

impl Request {
    /// The physical id a FAILED response must carry: the resource's own for Update/Delete (anything
    /// else would look like a replacement), a marker derived from the RequestId for Create.
    pub fn failure_physical_id(&self) -> String {
        match (&self.request_type, &self.physical_resource_id) {
            (RequestType::Create, _) | (_, None) => {
                format!("{FAILED_CREATE_PREFIX}{}", self.request_id)
            }
            (_, Some(id)) => id.clone(),
        }
    }

    /// True for the Delete that follows a Create this framework answered FAILED.
    pub fn is_delete_after_failed_create(&self) -> bool {
        self.request_type == RequestType::Delete
            && self
                .physical_resource_id
                .as_deref()
                .is_some_and(|id| id.starts_with(FAILED_CREATE_PREFIX))
    }

    /// `ServiceTimeout` (seconds) from the properties, if it is set and valid (CloudFormation: 1..=3600).
    pub fn service_timeout_secs(&self) -> Option<u64> {
        let raw = self.resource_properties.get("ServiceTimeout")?;
        let secs = match raw {
            Value::String(s) => s.trim().parse::<u64>().ok()?,
            Value::Number(n) => n.as_u64()?,
            _ => return None,
        };
        (1..=3600).contains(&secs).then_some(secs)
    }
}

/// What the framework carries from one invocation to its own asynchronous re-invocation when a long
/// operation outlives an invocation. The original request (with its ResponseURL) travels in the Lambda
/// payload only: it is never logged.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Continuation {
    pub request: Request,
    /// The provider's own state, opaque to the framework.
    pub state: Value,
    /// How many invocations this request has used so far (1 = the first).
    pub attempt: u32,
    /// When the first invocation started handling the request (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// How long the provider asked to wait before its next poll.
    #[serde(default)]
    pub poll_after_ms: u64,
}

/// Key under which a continuation travels in the Lambda payload.
pub const CONTINUATION_KEY: &str = "SecureMlopsContinuation";
