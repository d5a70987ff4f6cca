//! The CloudFormation `ResponseURL` receiver (`PUT /cfn/{key}`), which can fail the next N PUTs.

use super::*;

pub(super) async fn cfn_put(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut inner = shared.inner.lock().expect("harness state");
    let rejected = inner.fail_puts > 0;
    if rejected {
        inner.fail_puts -= 1;
    }
    inner.puts.push(CfnPut {
        key,
        content_type: headers
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_owned()),
        body: json_or_text(&body),
        at: Instant::now(),
        rejected,
    });
    drop(inner);
    shared.events.notify_waiters();
    if rejected {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}
