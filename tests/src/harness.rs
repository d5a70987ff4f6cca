//! A local Lambda service for one function: runs the real binary as a child process and serves it the
//! Lambda Runtime API, as Lambda does. Also on the same 127.0.0.1 port:
//!
//! - the Lambda `Invoke` API (`POST /2015-03-31/functions/{name}/invocations`), so a function's
//!   asynchronous self-re-invocation works through `AWS_ENDPOINT_URL_LAMBDA`;
//! - a CloudFormation `ResponseURL` receiver (`PUT /cfn/{key}`) that records responses and can be told
//!   to fail the next N PUTs with HTTP 500;
//! - a recorder for any other request, to prove that no AWS call was made when the function's
//!   `AWS_ENDPOINT_URL` points here — or, with [`Config::forward`], a counting proxy that passes each
//!   AWS call on to the emulator of its service (the benchmark's "AWS calls per event").
//!
//! Like Lambda: one invocation at a time per sandbox, a deadline per invocation (the function is
//! killed when it passes and restarted for the next event), asynchronous invocations retried twice on
//! error, timeout or crash.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc, oneshot};

/// Lambda retries a failed asynchronous invocation this many times.
const ASYNC_RETRIES: u32 = 2;

/// How to run the function.
#[derive(Clone, Debug)]
pub struct Config {
    pub binary: PathBuf,
    pub function_name: String,
    /// The function timeout: the deadline of every invocation unless one is given.
    pub timeout: Duration,
    /// Extra environment (AWS endpoints, credentials, the function's own settings). `{harness}` in a
    /// value is replaced by the harness's own endpoint (e.g. to record AWS calls).
    pub env: Vec<(String, String)>,
    /// Delay before Lambda's retry of a failed asynchronous invocation (Lambda: ~1 and 2 minutes).
    pub retry_delay: Duration,
    /// Arguments of the process (e.g. the script when `binary` is an interpreter).
    pub args: Vec<String>,
    /// Where recorded AWS calls are passed on, by signing name (`sagemaker`, …; `*` for any other).
    /// Empty: calls are only recorded and answered with HTTP 500.
    pub forward: Vec<(String, String)>,
    /// AWS operations at which the harness kills the function (a crash mid-invocation), and how often.
    pub crash_on: Vec<(String, usize)>,
}

impl Config {
    pub fn new(binary: PathBuf, function_name: &str) -> Self {
        Config {
            binary,
            function_name: function_name.to_owned(),
            timeout: Duration::from_secs(30),
            env: Vec::new(),
            retry_delay: Duration::from_millis(200),
            args: Vec::new(),
            forward: Vec::new(),
            crash_on: Vec::new(),
        }
    }

    /// Kills the function process the next `times` times it calls `operation` (before the call
    /// reaches AWS): a crash between two of its steps, as a sandbox failure would.
    pub fn crash_on(mut self, operation: &str, times: usize) -> Self {
        self.crash_on.push((operation.to_owned(), times));
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Passes the AWS calls signed for `service` (`*`: every other) on to `upstream`, after recording
    /// them. Point the function's `AWS_ENDPOINT_URL` at `{harness}` to count its calls.
    pub fn forward(mut self, service: &str, upstream: &str) -> Self {
        self.forward.push((service.to_owned(), upstream.to_owned()));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
    /// The deadline passed; the sandbox was killed.
    Timeout,
    /// The process exited during the invocation.
    Crash,
}

/// One invocation, as Lambda would show it in its logs and metrics.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub id: String,
    pub payload: Value,
    pub asynchronous: bool,
    pub started: Instant,
    pub ended: Instant,
    pub outcome: Outcome,
}

/// A PUT received on a ResponseURL.
#[derive(Clone, Debug)]
pub struct CfnPut {
    pub key: String,
    /// The Content-Type header as sent (`Some("")` when present and empty, as CloudFormation wants).
    pub content_type: Option<String>,
    pub body: Value,
    pub at: Instant,
    /// True when the harness answered it with HTTP 500 (see [`Harness::fail_next_puts`]).
    pub rejected: bool,
}

struct Pending {
    id: String,
    payload: Bytes,
    timeout: Duration,
    reply: Option<oneshot::Sender<Outcome>>,
    retries_left: u32,
}

struct InFlight {
    pending: Pending,
    started: Instant,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Pending>,
    in_flight: HashMap<String, InFlight>,
    invocations: Vec<Invocation>,
    puts: Vec<CfnPut>,
    fail_puts: usize,
    aws_calls: Vec<String>,
    /// (operation, request body) of every AWS call, for what the answer cannot show.
    aws_requests: Vec<(String, String)>,
    /// How often each `crash_on` operation has crashed the function.
    crashes: HashMap<String, usize>,
    logs: Vec<String>,
    spawned_at: Option<Instant>,
    init_times: Vec<Duration>,
    invoke_api_calls: u32,
    seq: u64,
    pid: Option<u32>,
}

struct Shared {
    config: Config,
    http: reqwest::Client,
    base_url: String,
    inner: Mutex<Inner>,
    work: Notify,
    kill: mpsc::UnboundedSender<()>,
    events: Notify,
}

/// A running function. Dropping it stops the process and the server.
pub struct Harness {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Harness {
    /// Binds 127.0.0.1:0, starts the function process and returns once the server is up.
    pub async fn start(config: Config) -> Harness {
        assert!(
            config.binary.is_file(),
            "function binary {} not found",
            config.binary.display()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let (kill_tx, kill_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config: crate::calls::route_through_harness(config),
            http: reqwest::Client::new(),
            base_url: format!("http://{addr}"),
            inner: Mutex::new(Inner::default()),
            work: Notify::new(),
            kill: kill_tx,
            events: Notify::new(),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
            .route("/cfn/{key}", put(cfn_put))
            .fallback(aws_call)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let supervisor = tokio::spawn(supervise(Arc::clone(&shared), kill_rx));
        Harness {
            shared,
            tasks: vec![server, supervisor],
        }
    }

    /// The function's name.
    pub fn function(&self) -> &str {
        &self.shared.config.function_name
    }

    /// `http://127.0.0.1:PORT`: the Runtime API host, Lambda endpoint and AWS-call recorder.
    pub fn endpoint(&self) -> &str {
        &self.shared.base_url
    }

    /// A fresh pre-signed-URL stand-in; its PUTs are recorded under `key`.
    pub fn response_url(&self, key: &str) -> String {
        format!(
            "{}/cfn/{key}?X-Amz-Signature=not-a-real-signature-{}",
            self.shared.base_url,
            epoch_ms()
        )
    }

    /// Invokes synchronously (RequestResponse) with the function timeout.
    pub async fn invoke(&self, payload: &Value) -> Outcome {
        self.invoke_with_timeout(payload, self.shared.config.timeout)
            .await
    }

    /// Invokes synchronously with a deadline of `timeout` from when the function receives the event.
    pub async fn invoke_with_timeout(&self, payload: &Value, timeout: Duration) -> Outcome {
        let (tx, rx) = oneshot::channel();
        enqueue(
            &self.shared,
            Bytes::from(serde_json::to_vec(payload).expect("payload")),
            timeout,
            Some(tx),
        );
        rx.await.unwrap_or(Outcome::Crash)
    }

    /// Invokes asynchronously (Event), as CloudFormation invokes a custom resource.
    pub fn invoke_async(&self, payload: &Value) {
        enqueue(
            &self.shared,
            Bytes::from(serde_json::to_vec(payload).expect("payload")),
            self.shared.config.timeout,
            None,
        );
    }

    /// Answers the next `n` ResponseURL PUTs with HTTP 500.
    pub fn fail_next_puts(&self, n: usize) {
        self.lock().fail_puts = n;
    }

    /// Every PUT received for `key`, in order (including rejected ones).
    pub fn puts(&self, key: &str) -> Vec<CfnPut> {
        self.lock()
            .puts
            .iter()
            .filter(|p| p.key == key)
            .cloned()
            .collect()
    }

    /// Waits until `key` has an accepted response, then a little longer to catch duplicates, and
    /// returns all accepted responses for it.
    pub async fn wait_for_response(&self, key: &str, within: Duration) -> Vec<CfnPut> {
        let until = Instant::now() + within;
        loop {
            let notified = self.shared.events.notified();
            let accepted: Vec<_> = self.puts(key).into_iter().filter(|p| !p.rejected).collect();
            if !accepted.is_empty() || Instant::now() >= until {
                if !accepted.is_empty() {
                    self.idle(Duration::from_millis(300)).await;
                }
                return self.puts(key).into_iter().filter(|p| !p.rejected).collect();
            }
            let _ = tokio::time::timeout(until - Instant::now(), notified).await;
        }
    }

    /// Waits until no invocation is queued or running (and none started for `quiet`).
    pub async fn idle(&self, quiet: Duration) {
        loop {
            let busy = {
                let inner = self.lock();
                !inner.queue.is_empty() || !inner.in_flight.is_empty()
            };
            if !busy {
                tokio::time::sleep(quiet).await;
                let inner = self.lock();
                if inner.queue.is_empty() && inner.in_flight.is_empty() {
                    return;
                }
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    pub fn invocations(&self) -> Vec<Invocation> {
        self.lock().invocations.clone()
    }

    /// How many times the Lambda `Invoke` API was called (e.g. by self-re-invocation).
    pub fn invoke_api_calls(&self) -> u32 {
        self.lock().invoke_api_calls
    }

    /// Requests that reached the AWS-call recorder: "METHOD path target".
    /// The request bodies the function sent with `operation`, in order (form or JSON text).
    pub fn aws_requests(&self, operation: &str) -> Vec<String> {
        self.lock()
            .aws_requests
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, body)| body.clone())
            .collect()
    }

    pub fn aws_calls(&self) -> Vec<String> {
        self.lock().aws_calls.clone()
    }

    /// Everything the function wrote to stdout and stderr, a line each.
    pub fn logs(&self) -> Vec<String> {
        self.lock().logs.clone()
    }

    /// Process start → first `/next` request, for each process started so far.
    pub fn init_times(&self) -> Vec<Duration> {
        self.lock().init_times.clone()
    }

    /// Peak resident memory (VmHWM, KiB) of the running function process, on Linux.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.lock().pid?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("harness state")
    }
}

fn enqueue(
    shared: &Arc<Shared>,
    payload: Bytes,
    timeout: Duration,
    reply: Option<oneshot::Sender<Outcome>>,
) {
    let mut inner = shared.inner.lock().expect("harness state");
    inner.seq += 1;
    let id = format!("{:08x}-0000-4000-8000-{:012x}", inner.seq, epoch_ms());
    inner.queue.push_back(Pending {
        id,
        payload,
        timeout,
        reply,
        retries_left: ASYNC_RETRIES,
    });
    drop(inner);
    shared.work.notify_one();
}

/// Records the end of an invocation and, for asynchronous ones that failed, schedules Lambda's retry.
fn finish(shared: &Arc<Shared>, id: &str, outcome: Outcome) -> bool {
    let mut inner = shared.inner.lock().expect("harness state");
    let Some(flight) = inner.in_flight.remove(id) else {
        return false; // already timed out
    };
    let Pending {
        id,
        payload,
        timeout,
        reply,
        retries_left,
    } = flight.pending;
    inner.invocations.push(Invocation {
        id: id.clone(),
        payload: serde_json::from_slice(&payload).unwrap_or(Value::Null),
        asynchronous: reply.is_none(),
        started: flight.started,
        ended: Instant::now(),
        outcome: outcome.clone(),
    });
    drop(inner);
    shared.events.notify_waiters();
    match reply {
        Some(tx) => {
            let _ = tx.send(outcome);
        }
        None if !matches!(outcome, Outcome::Response(_)) && retries_left > 0 => {
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                tokio::time::sleep(shared.config.retry_delay).await;
                let mut inner = shared.inner.lock().expect("harness state");
                inner.queue.push_back(Pending {
                    id: format!("{id}-retry{}", ASYNC_RETRIES - retries_left + 1),
                    payload,
                    timeout,
                    reply: None,
                    retries_left: retries_left - 1,
                });
                drop(inner);
                shared.work.notify_one();
            });
        }
        None => {}
    }
    true
}

/// Keeps one function process running; restarts it after a crash or a timeout kill.
async fn supervise(shared: Arc<Shared>, mut kill: mpsc::UnboundedReceiver<()>) {
    let config = shared.config.clone();
    let runtime_api = shared.base_url.trim_start_matches("http://").to_owned();
    loop {
        let mut cmd = tokio::process::Command::new(&config.binary);
        cmd.args(&config.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &config.function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.function_name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_LAMBDA", &shared.base_url)
            // Our ResponseURL receiver is on 127.0.0.1: a setting for local tests only (the template
            // never sets it). A test overrides it with "" to see the refusal real functions give.
            .env(shared::cfn::origin::LOOPBACK_SETTING, "true")
            .envs(
                config
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.replace("{harness}", &shared.base_url))),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        shared.inner.lock().expect("harness state").spawned_at = Some(Instant::now());
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                shared
                    .inner
                    .lock()
                    .expect("harness state")
                    .logs
                    .push(format!(
                        "harness: cannot start {}: {e}",
                        config.binary.display()
                    ));
                return;
            }
        };
        shared.inner.lock().expect("harness state").pid = child.id();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if std::env::var_os("HARNESS_ECHO").is_some() {
                        eprintln!("[{}] {line}", shared.config.function_name);
                    }
                    shared.inner.lock().expect("harness state").logs.push(line);
                }
            });
        }
        tokio::select! {
            _ = child.wait() => {}
            _ = kill.recv() => {
                let _ = child.kill().await;
            }
        }
        // Whatever was running in this process has crashed (a timeout was already recorded).
        let running: Vec<String> = shared
            .inner
            .lock()
            .expect("harness state")
            .in_flight
            .keys()
            .cloned()
            .collect();
        for id in running {
            finish(&shared, &id, Outcome::Crash);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
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
        shared
            .inner
            .lock()
            .expect("harness state")
            .in_flight
            .insert(
                id.clone(),
                InFlight {
                    pending,
                    started: Instant::now(),
                },
            );
        // Lambda's hard stop at the deadline.
        let watchdog = Arc::clone(&shared);
        let watched = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout + Duration::from_millis(100)).await;
            if finish(&watchdog, &watched, Outcome::Timeout) {
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
            .header("Lambda-Runtime-Trace-Id", format!("Root=1-00000000-{id}"))
            .header("Content-Type", "application/json")
            .body(Body::from(payload))
            .unwrap_or_default();
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Outcome::Response(json_or_text(&body)));
    StatusCode::ACCEPTED
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Outcome::Error(json_or_text(&body)));
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    shared
        .inner
        .lock()
        .expect("harness state")
        .logs
        .push(format!(
            "harness: init error {}",
            String::from_utf8_lossy(&body)
        ));
    StatusCode::ACCEPTED
}

async fn invoke_api(
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
    match rx.await.unwrap_or(Outcome::Crash) {
        Outcome::Response(v) => (StatusCode::OK, v.to_string()).into_response(),
        Outcome::Error(v) => (
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

async fn cfn_put(
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

async fn aws_call(
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
    // a role it assumed (another account's) is that role's business.
    let own = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .is_none_or(|c| c.starts_with("testing/"));
    if own {
        crate::calls::record(&shared.config.binary, signed, &operation);
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
    let url = format!(
        "{}{}",
        upstream.trim_end_matches('/'),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = shared.http.request(method, url).body(body);
    for (name, value) in &headers {
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != axum::http::header::CONTENT_LENGTH
                    && name != axum::http::header::TRANSFER_ENCODING
                {
                    response = response.header(name, value);
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            response
                .body(Body::from(bytes))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("harness proxy: {e}")).into_response(),
    }
}

/// The service a SigV4 request is signed for: `Credential=AKID/date/region/<service>/aws4_request`.
fn signing_service(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split(['/', ',']).nth(3)
}
