//! Every other request: an AWS call, recorded (and logged as an IAM action), then passed on to the emulator of its service or answered 500.

use super::*;

pub(super) async fn aws_call(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            // Query protocol (STS, …): the action is in the form body.
            String::from_utf8_lossy(&body)
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or_default()
                .to_owned()
        });
    shared
        .inner
        .lock()
        .expect("harness state")
        .aws_calls
        .push(format!("{method} {uri} {target}"));
    let service = signing_service(&headers);
    let signed = service.unwrap_or("?");
    let operation = crate::calls::operation(signed, &method, &uri, &headers, &body);
    // The function's role is checked against what it calls with its own credentials; a call made as
    // a role it assumed (another account's) is that role's business, logged as `<binary>@assumed`.
    let own = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .is_none_or(|c| c.starts_with("testing/"));
    if own {
        crate::calls::record(&shared.config.binary, signed, &operation);
    } else {
        // Logged apart: `iam-check` proves the roles of member templates against them.
        crate::calls::record_assumed(&shared.config.binary, signed, &operation);
    }
    let crash = {
        let mut inner = shared.inner.lock().expect("harness state");
        inner.aws_requests.push((
            operation.clone(),
            String::from_utf8_lossy(&body).into_owned(),
        ));
        let spent = &mut inner.crashes;
        let budget = shared
            .config
            .crash_on
            .iter()
            .find(|(op, _)| *op == operation)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        let used = spent.entry(operation.clone()).or_insert(0);
        let crash = *used < budget;
        if crash {
            *used += 1;
        }
        crash
    };
    if crash {
        let _ = shared.kill.send(());
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the harness crashed the function at {operation}"),
        )
            .into_response();
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let taped = format!("{signed} {operation}");
    if let Some(TapeMode::Replay(tape)) = &shared.config.tape {
        return match tape.answer(&taped, path, &body) {
            Some(answer) => {
                let mut response = Response::builder().status(answer.status);
                for (name, value) in &answer.headers {
                    response = response.header(name, value);
                }
                response
                    .body(Body::from(answer.body))
                    .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
            }
            None => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the harness's tape has no answer for {taped} {path}"),
            )
                .into_response(),
        };
    }
    let forward = &shared.config.forward;
    let upstream = forward
        .iter()
        .find(|(s, _)| Some(s.as_str()) == service)
        .or_else(|| forward.iter().find(|(s, _)| s == "*"));
    let Some((_, upstream)) = upstream else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the harness records AWS calls; it does not answer them",
        )
            .into_response();
    };
    let url = format!("{}{path}", upstream.trim_end_matches('/'));
    let mut request = shared.http.request(method, url).body(body.clone());
    for (name, value) in &headers {
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers: Vec<_> = answer
                .headers()
                .iter()
                .filter(|(name, _)| {
                    *name != axum::http::header::CONTENT_LENGTH
                        && *name != axum::http::header::TRANSFER_ENCODING
                })
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            let bytes = answer.bytes().await.unwrap_or_default();
            if let Some(TapeMode::Record(tape)) = &shared.config.tape {
                let answer = tape::Answer {
                    status: status.as_u16(),
                    headers: headers.clone(),
                    body: bytes.clone(),
                };
                tape.record(&taped, path, &body, answer);
            }
            let mut response = Response::builder().status(status);
            for (name, value) in &headers {
                response = response.header(name, value);
            }
            response
                .body(Body::from(bytes))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("harness proxy: {e}")).into_response(),
    }
}

/// The service a SigV4 request is signed for: `Credential=AKID/date/region/<service>/aws4_request`.
pub(super) fn signing_service(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split(['/', ',']).nth(3)
}
