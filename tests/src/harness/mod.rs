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

mod aws_proxy;
mod invoke_api;
mod response_url;
mod runtime_api;
mod supervisor;
mod tape;

pub use tape::Tape;

use aws_proxy::*;
use invoke_api::*;
use response_url::*;
use runtime_api::*;
use supervisor::*;

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
    /// Record the answers of the AWS calls passed on, or answer them from a recording (see [`Tape`]).
    pub tape: Option<TapeMode>,
}

/// What the harness does with a [`Tape`].
#[derive(Clone, Debug)]
pub enum TapeMode {
    Record(Tape),
    Replay(Tape),
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
            tape: None,
        }
    }

    /// Records on `tape` every answer of the AWS calls the harness passes on.
    pub fn record(mut self, tape: &Tape) -> Self {
        self.tape = Some(TapeMode::Record(tape.clone()));
        self
    }

    /// Answers the function's AWS calls from `tape` (a [`Tape::rewound`] recording), passing none on.
    pub fn replay(mut self, tape: &Tape) -> Self {
        self.tape = Some(TapeMode::Replay(tape.clone()));
        self
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

    /// The test bed's AWS: moto for every service, the twin for what moto lacks (SageMaker and its
    /// endpoint runtime, CodePipeline, CloudWatch alarms).
    pub fn local_aws(self, moto: &str, twin: &str) -> Self {
        [
            "SAGEMAKER",
            "SAGEMAKER_RUNTIME",
            "CODEPIPELINE",
            "SERVICE_CATALOG",
            "CLOUDWATCH",
        ]
        .iter()
        .fold(self.env("AWS_ENDPOINT_URL", moto), |c, service| {
            c.env(&format!("AWS_ENDPOINT_URL_{service}"), twin)
        })
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Invoked {
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
    pub outcome: Invoked,
    /// CPU time the function process used from receiving the event to answering it (all threads).
    pub cpu: Option<Duration>,
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
    reply: Option<oneshot::Sender<Invoked>>,
    retries_left: u32,
}

struct InFlight {
    pending: Pending,
    started: Instant,
    cpu_at_start: Option<Duration>,
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
    /// X-Ray subsegment documents the function sent to the daemon (`AWS_XRAY_DAEMON_ADDRESS`).
    segments: Vec<Value>,
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
    /// `127.0.0.1:PORT` of the harness's stand-in for Lambda's X-Ray daemon (UDP).
    xray_daemon: String,
    inner: Mutex<Inner>,
    work: Notify,
    kill: mpsc::UnboundedSender<()>,
    events: Notify,
}

impl Shared {
    /// Adds a line to the function's logs (the harness's own lines start with `harness:`).
    fn log(&self, line: String) {
        self.inner.lock().expect("harness state").logs.push(line);
    }
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
        let daemon = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1 (UDP)");
        let daemon_addr = daemon.local_addr().expect("local address");
        let (kill_tx, kill_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config: crate::calls::route_through_harness(config),
            http: reqwest::Client::new(),
            base_url: format!("http://{addr}"),
            xray_daemon: daemon_addr.to_string(),
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
        // The X-Ray daemon's side of its UDP protocol: a header line, then one segment document.
        let traces = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = daemon.recv(&mut buf).await {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let document = text
                        .split_once('\n')
                        .and_then(|(_, doc)| serde_json::from_str::<Value>(doc).ok());
                    if let Some(document) = document {
                        shared
                            .inner
                            .lock()
                            .expect("harness state")
                            .segments
                            .push(document);
                    }
                }
            })
        };
        Harness {
            shared,
            tasks: vec![server, supervisor, traces],
        }
    }

    /// The X-Ray subsegments the function sent, in arrival order.
    pub fn trace_segments(&self) -> Vec<Value> {
        self.lock().segments.clone()
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
    pub async fn invoke(&self, payload: &Value) -> Invoked {
        self.invoke_with_timeout(payload, self.shared.config.timeout)
            .await
    }

    /// Invokes synchronously with a deadline of `timeout` from when the function receives the event.
    pub async fn invoke_with_timeout(&self, payload: &Value, timeout: Duration) -> Invoked {
        let (tx, rx) = oneshot::channel();
        enqueue(
            &self.shared,
            Bytes::from(serde_json::to_vec(payload).expect("payload")),
            timeout,
            Some(tx),
        );
        rx.await.unwrap_or(Invoked::Crash)
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

    /// The CloudWatch metric documents (Embedded Metric Format) the function wrote to its logs.
    pub fn metrics(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    }

    /// The metric documents with `outcome` that carry the metric `name`.
    pub fn metric(&self, name: &str, outcome: &str) -> Vec<Value> {
        self.metrics()
            .into_iter()
            .filter(|d| d["Outcome"] == outcome && d.get(name).is_some())
            .collect()
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

    /// The environment the running function process was started with (`/proc/<pid>/environ`).
    pub fn process_environment(&self) -> Vec<(String, String)> {
        let Some(pid) = self.lock().pid else {
            return vec![];
        };
        std::fs::read(format!("/proc/{pid}/environ"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("harness state")
    }
}

fn enqueue(
    shared: &Arc<Shared>,
    payload: Bytes,
    timeout: Duration,
    reply: Option<oneshot::Sender<Invoked>>,
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
/// The CPU time process `pid` has used so far, all its threads (live and exited) together: the
/// process's CPU-time clock (`clock_getcpuclockid`), exact to the nanosecond, unlike `/proc`'s ticks.
fn process_cpu(pid: u32) -> Option<Duration> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: both calls only write to the out-parameter passed, which lives on this stack frame.
    if unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) } != 0 {
        return None;
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as above.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}

fn finish(shared: &Arc<Shared>, id: &str, outcome: Invoked) -> bool {
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
    let cpu = inner
        .pid
        .and_then(process_cpu)
        .zip(flight.cpu_at_start)
        .map(|(end, start)| end.saturating_sub(start));
    inner.invocations.push(Invocation {
        id: id.clone(),
        payload: serde_json::from_slice(&payload).unwrap_or(Value::Null),
        asynchronous: reply.is_none(),
        started: flight.started,
        ended: Instant::now(),
        outcome: outcome.clone(),
        cpu,
    });
    drop(inner);
    shared.events.notify_waiters();
    match reply {
        Some(tx) => {
            let _ = tx.send(outcome);
        }
        None if !matches!(outcome, Invoked::Response(_)) && retries_left > 0 => {
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
