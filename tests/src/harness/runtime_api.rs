//! The Lambda Runtime API the function polls: `/next`, its response, its error, an init error.

use super::*;

pub(super) async fn next(State(shared): State<Arc<Shared>>) -> Response {
    loop {
        let notified = shared.work.notified();
        let pending = {
            let mut inner = shared.inner.lock().expect("harness state");
            if let Some(spawned) = inner.spawned_at.take() {
                let init = spawned.elapsed();
                inner.init_times.push(init);
            }
            inner.queue.pop_front()
        };
        let Some(pending) = pending else {
            notified.await;
            continue;
        };
        let deadline_ms = epoch_ms() + pending.timeout.as_millis() as u64;
        let timeout = pending.timeout;
        let id = pending.id.clone();
        let payload = pending.payload.clone();
        let mut inner = shared.inner.lock().expect("harness state");
        let cpu_at_start = inner.pid.and_then(process_cpu);
        inner.in_flight.insert(
            id.clone(),
            InFlight {
                pending,
                started: Instant::now(),
                cpu_at_start,
            },
        );
        drop(inner);
        // Lambda's hard stop at the deadline.
        let watchdog = Arc::clone(&shared);
        let watched = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout + Duration::from_millis(100)).await;
            if finish(&watchdog, &watched, Invoked::Timeout) {
                let _ = watchdog.kill.send(());
            }
        });
        let arn = format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            shared.config.function_name
        );
        return Response::builder()
            .status(StatusCode::OK)
            .header("Lambda-Runtime-Aws-Request-Id", &id)
            .header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string())
            .header("Lambda-Runtime-Invoked-Function-Arn", arn)
            .header("Lambda-Runtime-Trace-Id", trace_header(&id))
            .header("Content-Type", "application/json")
            .body(Body::from(payload))
            .unwrap_or_default();
    }
}

pub(super) fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

pub(super) async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Invoked::Response(json_or_text(&body)));
    StatusCode::ACCEPTED
}

pub(super) async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Invoked::Error(json_or_text(&body)));
    StatusCode::ACCEPTED
}

pub(super) async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    shared.log(format!(
        "harness: init error {}",
        String::from_utf8_lossy(&body)
    ));
    StatusCode::ACCEPTED
}

/// The X-Ray trace header Lambda gives an invocation with `Tracing: Active`, sampled: `Root=1-<epoch
/// seconds, 8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1`, both derived from the request id.
pub fn trace_header(request_id: &str) -> String {
    let hex: String = request_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_lowercase())
        .chain(std::iter::repeat('0'))
        .take(40)
        .collect();
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!(
        "Root=1-{epoch:08x}-{};Parent={};Sampled=1",
        &hex[..24],
        &hex[24..40]
    )
}
