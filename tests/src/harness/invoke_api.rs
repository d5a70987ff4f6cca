//! The Lambda `Invoke` API (a function re-invoking itself asynchronously).

use super::*;

pub(super) async fn invoke_api(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.inner.lock().expect("harness state").invoke_api_calls += 1;
    // The function's own (signed) call: a continuation. The twin's pipeline invokes unsigned.
    if signing_service(&headers).is_some() {
        crate::calls::record(&shared.config.binary, "lambda", "Invoke");
    }
    let kind = headers
        .get("X-Amz-Invocation-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    let timeout = shared.config.timeout;
    if kind == "Event" {
        enqueue(&shared, body, timeout, None);
        return StatusCode::ACCEPTED.into_response();
    }
    let (tx, rx) = oneshot::channel();
    enqueue(&shared, body, timeout, Some(tx));
    match rx.await.unwrap_or(Invoked::Crash) {
        Invoked::Response(v) => (StatusCode::OK, v.to_string()).into_response(),
        Invoked::Error(v) => (
            StatusCode::OK,
            [("X-Amz-Function-Error", "Unhandled")],
            v.to_string(),
        )
            .into_response(),
        other => (
            StatusCode::OK,
            [("X-Amz-Function-Error", "Unhandled")],
            format!("{other:?}"),
        )
            .into_response(),
    }
}
