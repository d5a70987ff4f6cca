//! AWS X-Ray: with `Tracing: Active`, Lambda records each invocation's segment and passes its trace
//! header to the function (`_X_AMZN_TRACE_ID`, set by the runtime per invocation). [`Segments`], an
//! SDK interceptor on every client ([`crate::client!`]), sends one subsegment per AWS call — service,
//! operation, start and end, HTTP status, error or fault — to the X-Ray daemon Lambda runs
//! (`AWS_XRAY_DAEMON_ADDRESS`, UDP), so SDK calls appear under the invocation in the trace.
//!
//! AWS's X-Ray SDKs have no Rust version and the community crate is unmaintained, so this is the
//! daemon protocol by hand (X-Ray Developer Guide, "Sending segment documents to the X-Ray daemon": a
//! JSON header line `{"format": "json", "version": 1}`, then the subsegment document with `type:
//! "subsegment"`, `trace_id` and `parent_id`). Nothing is sent when the invocation is not sampled or
//! there is no daemon (tests without one, local runs); sending never fails a call.

use std::net::UdpSocket;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::json;

/// Builds an SDK client of `$sdk` (e.g. `aws_sdk_sns`) from `$config` (an `SdkConfig`) with the X-Ray
/// interceptor: `shared::client!(aws_sdk_sns, sdk)`.
#[macro_export]
macro_rules! client {
    ($sdk:ident, $config:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($config)
                .interceptor($crate::xray::Segments)
                .build(),
        )
    };
}

/// The SDK interceptor that reports each call as an X-Ray subsegment.
#[derive(Debug, Clone, Copy)]
pub struct Segments;

#[derive(Debug, Clone)]
struct Started(f64);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `Root=…;Parent=…;Sampled=1` → (trace id, parent id) when sampled.
pub fn trace_context(header: &str) -> Option<(String, String)> {
    let mut root = None;
    let mut parent = None;
    let mut sampled = false;
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", v)) => root = Some(v.to_owned()),
            Some(("Parent", v)) => parent = Some(v.to_owned()),
            Some(("Sampled", v)) => sampled = v == "1",
            _ => {}
        }
    }
    sampled.then_some((root?, parent?))
}

/// A 64-bit subsegment id, as 16 hex digits: unique per process (time and a counter).
fn segment_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    format!(
        "{:016x}",
        t.rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

/// The daemon's socket, bound once per process (`None`: no daemon configured).
fn daemon() -> Option<&'static (UdpSocket, String)> {
    static DAEMON: OnceLock<Option<(UdpSocket, String)>> = OnceLock::new();
    DAEMON
        .get_or_init(|| {
            let address = std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?;
            // `host:port`, or the daemon's `tcp:… udp:…` form.
            let udp = address
                .split_whitespace()
                .find_map(|p| p.strip_prefix("udp:"))
                .unwrap_or(&address)
                .to_owned();
            let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
            Some((socket, udp))
        })
        .as_ref()
}

impl Intercept for Segments {
    fn name(&self) -> &'static str {
        "XRaySegments"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some((socket, address)) = daemon() else {
            return Ok(());
        };
        let Some((trace_id, parent_id)) = std::env::var("_X_AMZN_TRACE_ID")
            .ok()
            .and_then(|h| trace_context(&h))
        else {
            return Ok(());
        };
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_owned(), m.name().to_owned()))
            .unwrap_or_default();
        let start = cfg.load::<Started>().map_or_else(now, |s| s.0);
        let status = context.response().map(|r| r.status().as_u16());
        let failed = matches!(context.output_or_error(), Some(Err(_)));
        let mut segment = json!({
            "name": service,
            "id": segment_id(),
            "trace_id": trace_id,
            "parent_id": parent_id,
            "type": "subsegment",
            "namespace": "aws",
            "start_time": start,
            "end_time": now(),
            "aws": {"operation": operation},
        });
        if let Some(status) = status {
            segment["http"] = json!({"response": {"status": status}});
            if status == 429 {
                segment["throttle"] = json!(true);
            }
            if status >= 500 {
                segment["fault"] = json!(true);
            } else if status >= 400 {
                segment["error"] = json!(true);
            }
        } else if failed {
            segment["fault"] = json!(true);
        }
        let packet = format!("{{\"format\": \"json\", \"version\": 1}}\n{segment}");
        // Best effort: a trace never fails the call it describes.
        let _ = socket.send_to(packet.as_bytes(), address.as_str());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sampled_traces_are_reported() {
        assert_eq!(
            trace_context(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            ),
            Some((
                "1-5759e988-bd862e3fe1be46a994272793".to_owned(),
                "53995c3f42cd8ad8".to_owned()
            ))
        );
        assert_eq!(
            trace_context(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
            ),
            None
        );
        assert_eq!(trace_context("garbage"), None);
        let (a, b) = (segment_id(), segment_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }
}
