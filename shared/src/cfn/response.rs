//! The response CloudFormation waits for: its body (within 4,096 bytes, `Reason` capped) and the PUT to
//! the pre-signed `ResponseURL` (empty Content-Type, jittered exponential backoff on network errors and
//! 5xx). The URL is a bearer secret: it never appears in an error or a log line.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::request::Request;
use crate::Error;

/// CloudFormation rejects response bodies larger than this.
pub const MAX_BODY_BYTES: usize = 4096;
/// Longest `Reason` we send; longer ones are cut at a character boundary and end with "…".
pub const MAX_REASON_BYTES: usize = 1024;
/// At least this many PUT attempts are made when time allows.
pub const MAX_PUT_ATTEMPTS: u32 = 8;

/// What the framework answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Success {
        physical_id: String,
        data: Map<String, Value>,
        no_echo: bool,
    },
    Failed {
        reason: String,
        /// The physical id to report; `None` means the request's own (or the failed-Create marker).
        physical_id: Option<String>,
    },
}

impl Reply {
    pub fn failed(reason: impl Into<String>) -> Self {
        Reply::Failed {
            reason: reason.into(),
            physical_id: None,
        }
    }

    pub fn status(&self) -> &'static str {
        match self {
            Reply::Success { .. } => "SUCCESS",
            Reply::Failed { .. } => "FAILED",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    physical_resource_id: &'a str,
    stack_id: &'a str,
    request_id: &'a str,
    logical_resource_id: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    no_echo: bool,
    #[serde(skip_serializing_if = "Map::is_empty")]
    data: &'a Map<String, Value>,
}

/// Renders the body to PUT. Never exceeds [`MAX_BODY_BYTES`]: a `Data` that would overflow turns the
/// reply into FAILED with a Reason saying so (the physical id is kept, so Delete can clean up).
/// Returns the reply actually sent (it may differ from `reply`) and its bytes.
pub fn render(request: &Request, reply: Reply) -> (Reply, Vec<u8>) {
    if let Reply::Success {
        physical_id,
        data,
        no_echo,
    } = &reply
    {
        let bytes = to_bytes(request, "SUCCESS", None, physical_id, data, *no_echo);
        if bytes.len() <= MAX_BODY_BYTES {
            return (reply, bytes);
        }
        let reason = format!(
            "the response would be {} bytes but CloudFormation accepts at most {MAX_BODY_BYTES}: \
             the resource returned {} Data attribute(s) that are too large; return fewer or shorter values",
            bytes.len(),
            data.len()
        );
        return render_failed(request, reason, Some(physical_id.clone()));
    }
    match reply {
        Reply::Failed {
            reason,
            physical_id,
        } => render_failed(request, reason, physical_id),
        Reply::Success { .. } => unreachable!("handled above"),
    }
}

fn render_failed(
    request: &Request,
    reason: String,
    physical_id: Option<String>,
) -> (Reply, Vec<u8>) {
    let physical_id = physical_id.unwrap_or_else(|| request.failure_physical_id());
    let empty = Map::new();
    let mut reason = truncate(&reason, MAX_REASON_BYTES);
    loop {
        let bytes = to_bytes(
            request,
            "FAILED",
            Some(&reason),
            &physical_id,
            &empty,
            false,
        );
        if bytes.len() <= MAX_BODY_BYTES || reason.is_empty() {
            let reply = Reply::Failed {
                reason,
                physical_id: Some(physical_id),
            };
            return (reply, bytes);
        }
        // Only reachable with absurdly long ids: make room by shortening the reason. When the ids
        // alone are too long the reason ends empty and the body goes as it is (CloudFormation will
        // say why it refused it); `truncate` always shrinks, so this ends.
        let excess = bytes.len() - MAX_BODY_BYTES;
        reason = truncate(&reason, reason.len().saturating_sub(excess + 8));
    }
}

fn to_bytes(
    request: &Request,
    status: &'static str,
    reason: Option<&str>,
    physical_id: &str,
    data: &Map<String, Value>,
    no_echo: bool,
) -> Vec<u8> {
    let body = Body {
        status,
        reason,
        physical_resource_id: physical_id,
        stack_id: &request.stack_id,
        request_id: &request.request_id,
        logical_resource_id: &request.logical_resource_id,
        no_echo,
        data,
    };
    // Serializing plain strings and JSON values cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Cuts `s` to at most `max` bytes at a character boundary, marking the cut with "…".
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let ellipsis = "…";
    if max < ellipsis.len() {
        return String::new();
    }
    let mut end = max.saturating_sub(ellipsis.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &s[..end])
}

/// How long a connection to CloudFormation's response endpoint may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends responses to pre-signed URLs. Build once per cold start; its HTTPS client ([`crate::http`],
/// and the trust store) is made on the first send, not at init.
#[derive(Clone)]
pub struct Responder {
    http: Arc<crate::http::Pool>,
    base_delay: Duration,
}

impl Default for Responder {
    fn default() -> Self {
        Self::new()
    }
}

impl Responder {
    pub fn new() -> Self {
        Responder {
            http: Arc::default(),
            base_delay: Duration::from_millis(200),
        }
    }

    /// PUTs `body` to `url`, retrying network errors and 5xx with jittered exponential backoff, as long
    /// as the next attempt can start before `deadline`. Returns the number of attempts made.
    pub async fn send(&self, url: &str, body: Vec<u8>, deadline: Instant) -> Result<u32, Error> {
        let http = self
            .http
            .client(Some(CONNECT_TIMEOUT))
            .map_err(|e| Error::other(format!("no HTTPS client for the response: {e}")))?;
        // The error names no part of the URL: it is a bearer secret.
        let uri: http::Uri = url
            .parse()
            .map_err(|_| Error::other("ResponseURL is not a valid URI"))?;
        let body = bytes::Bytes::from(body);
        let mut last = String::new();
        for attempt in 1..=MAX_PUT_ATTEMPTS {
            let left = deadline.saturating_duration_since(Instant::now());
            let per_try = left.clamp(Duration::from_millis(200), Duration::from_secs(10));
            let request = http::Request::put(uri.clone())
                .header(http::header::CONTENT_TYPE, "")
                .header(http::header::CONTENT_LENGTH, body.len())
                .body(aws_smithy_types::body::SdkBody::from(body.clone()))
                .map_err(|e| Error::other(format!("cannot build the response PUT: {e}")))?;
            match tokio::time::timeout(per_try, http.request(request)).await {
                Ok(Ok(resp)) if resp.status().is_success() => return Ok(attempt),
                Ok(Ok(resp)) if resp.status().is_server_error() => {
                    last = format!("HTTP {}", resp.status().as_u16());
                }
                Ok(Ok(resp)) => {
                    return Err(Error::other(format!(
                        "CloudFormation rejected the response: HTTP {} (not retried)",
                        resp.status().as_u16()
                    )));
                }
                // hyper's errors name the failure (connect, TLS, closed), never the URL.
                Ok(Err(err)) => last = error_chain(&err),
                Err(_) => last = format!("no answer within {} ms", per_try.as_millis()),
            }
            let delay = self.backoff(attempt);
            if Instant::now() + delay >= deadline {
                break;
            }
            tracing::warn!(attempt, error = %last, delay_ms = delay.as_millis() as u64, "response PUT failed; retrying");
            tokio::time::sleep(delay).await;
        }
        Err(Error::other(format!(
            "could not deliver the response to CloudFormation: {last}"
        )))
    }

    /// Full-jitter exponential backoff: a random delay in [d/2, d], d = base·2^(attempt-1), at most 5 s.
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(10))
            .min(Duration::from_secs(5));
        let half = cap / 2;
        let jitter_ms = rand::random::<u64>() % (half.as_millis() as u64 + 1);
        half + Duration::from_millis(jitter_ms)
    }
}

/// An error and its causes, `: `-separated (hyper's own message is only the outermost).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cfn::request::{FAILED_CREATE_PREFIX, RequestType};

    fn request(kind: RequestType) -> Request {
        Request {
            request_type: kind,
            response_url: "https://example.invalid/secret".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1".into(),
            request_id: "req-1".into(),
            logical_resource_id: "Thing".into(),
            resource_type: "Custom::Thing".into(),
            physical_resource_id: Some("phys-1".into()),
            resource_properties: Map::new(),
            old_resource_properties: None,
            service_token: None,
        }
    }

    #[test]
    fn success_body_has_the_contract_fields() {
        let mut data = Map::new();
        data.insert("A".into(), Value::String("1".into()));
        let (reply, bytes) = render(
            &request(RequestType::Create),
            Reply::Success {
                physical_id: "p".into(),
                data,
                no_echo: true,
            },
        );
        assert_eq!(reply.status(), "SUCCESS");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["Status"], "SUCCESS");
        assert_eq!(v["PhysicalResourceId"], "p");
        assert_eq!(v["RequestId"], "req-1");
        assert_eq!(v["LogicalResourceId"], "Thing");
        assert_eq!(v["NoEcho"], true);
        assert_eq!(v["Data"]["A"], "1");
        assert!(v.get("Reason").is_none());
    }

    #[test]
    fn oversize_data_becomes_failed_and_keeps_the_physical_id() {
        let mut data = Map::new();
        data.insert("Big".into(), Value::String("x".repeat(5000)));
        let (reply, bytes) = render(
            &request(RequestType::Create),
            Reply::Success {
                physical_id: "made-it".into(),
                data,
                no_echo: false,
            },
        );
        assert!(bytes.len() <= MAX_BODY_BYTES);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["Status"], "FAILED");
        assert_eq!(v["PhysicalResourceId"], "made-it");
        assert!(v["Reason"].as_str().unwrap().contains("at most 4096"));
        assert!(v.get("Data").is_none());
        assert_eq!(reply.status(), "FAILED");
    }

    #[test]
    fn failed_create_uses_the_marker_and_update_keeps_its_id() {
        let (_, bytes) = render(&request(RequestType::Create), Reply::failed("nope"));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v["PhysicalResourceId"],
            format!("{FAILED_CREATE_PREFIX}req-1")
        );
        let (_, bytes) = render(&request(RequestType::Update), Reply::failed("nope"));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["PhysicalResourceId"], "phys-1");
    }

    #[test]
    fn long_reasons_are_capped_at_a_char_boundary() {
        let reason = "é".repeat(3000);
        let (_, bytes) = render(&request(RequestType::Update), Reply::failed(reason));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let sent = v["Reason"].as_str().unwrap();
        assert!(sent.len() <= MAX_REASON_BYTES);
        assert!(sent.ends_with('…'));
    }

    #[test]
    fn huge_ids_still_fit() {
        let mut req = request(RequestType::Update);
        req.stack_id = "s".repeat(3900);
        let (_, bytes) = render(&req, Reply::failed("r".repeat(900)));
        assert!(bytes.len() <= MAX_BODY_BYTES, "{}", bytes.len());
    }

    #[test]
    fn ids_alone_over_the_limit_still_render_once() {
        let mut req = request(RequestType::Update);
        req.stack_id = "s".repeat(5000);
        let (reply, bytes) = render(&req, Reply::failed("r".repeat(900)));
        assert!(bytes.len() > MAX_BODY_BYTES);
        assert_eq!(
            reply,
            Reply::Failed {
                reason: String::new(),
                physical_id: Some("phys-1".into())
            }
        );
        for max in 0..4 {
            assert!(truncate("abcdef", max).len() <= max, "max {max}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = Responder::new();
        for attempt in 1..=12 {
            let d = r.backoff(attempt);
            let cap = Duration::from_millis(200)
                .saturating_mul(1 << (attempt - 1).min(10))
                .min(Duration::from_secs(5));
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?}");
        }
    }
}
