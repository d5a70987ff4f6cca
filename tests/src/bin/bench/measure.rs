//! How a function is measured: cold starts, a warm instance running a workload one event at a time,
//! and a burst of asynchronous events. All through the same Lambda harness, whatever the language.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::harness::{Config, Harness, Invocation, Invoked, Tape};
use testbed::stack::Stack;

/// Rust (a release binary) or the Python 3 + boto3 reference (`tests/bench/<module>.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Rust,
    Python,
}

impl Runtime {
    pub fn label(self) -> &'static str {
        match self {
            Runtime::Rust => "Rust",
            Runtime::Python => "Python",
        }
    }
}

/// The interpreter of the project venv (the one `make setup` creates for moto, which brings boto3).
pub fn python() -> PathBuf {
    testbed::moto::server_path().with_file_name("python")
}

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench")
}

/// The harness configuration of `function` in `runtime`, its environment from `stack`'s template,
/// every AWS call counted and passed on to moto (SageMaker and CodePipeline to the twin).
pub fn config(stack: &Stack, function: &str, runtime: Runtime, moto: &str, twin: &str) -> Config {
    let template = stack.function(&testbed::sample::logical_id(function));
    let base = match runtime {
        Runtime::Rust => template,
        Runtime::Python => Config {
            binary: python(),
            ..template
        }
        .args([
            bench_dir().join("runtime.py").display().to_string(),
            function.replace('-', "_"),
        ]),
    };
    base.env("AWS_ENDPOINT_URL", "{harness}")
        .forward("sagemaker", twin)
        .forward("codepipeline", twin)
        .forward("*", moto)
        .timeout(Duration::from_secs(60))
}

/// Stripped size of the release binary (`None` for Python).
pub fn size(function: &str, runtime: Runtime) -> Option<u64> {
    match runtime {
        Runtime::Rust => std::fs::metadata(testbed::bins::path(function))
            .ok()
            .map(|m| m.len()),
        Runtime::Python => None,
    }
}

/// Size of the arm64 `bootstrap` that `make sam-build` made for `function` (the deployed artifact), if
/// there is one: `$BENCH_SAM_BUILD_DIR` (default `.aws-sam/build`)/<LogicalId>/bootstrap.
pub fn deployed_size(function: &str) -> Option<u64> {
    let dir = std::env::var_os("BENCH_SAM_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.aws-sam/build"));
    std::fs::metadata(
        dir.join(testbed::sample::logical_id(function))
            .join("bootstrap"),
    )
    .ok()
    .map(|m| m.len())
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `runs` cold starts: process start → first `/next` (the Lambda INIT phase), each a new process.
/// One unmeasured start comes first (it reads the binary from disk into the file cache, as a Lambda
/// worker has the code at hand), and each process is gone before the next starts.
pub async fn cold_inits(config: &Config, runs: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..=runs {
        let h = Harness::start(config.clone()).await;
        let t = Instant::now();
        while h.init_times().is_empty() && t.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if i > 0 {
            out.extend(h.init_times().first().map(|d| ms(*d)));
        }
        drop(h);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    out
}

/// Whether an event got the right answer (its outcome, and what the harness recorded).
pub type Check = Box<dyn Fn(&Invoked, &Harness) -> bool + Send + Sync>;

/// One event of a workload: what to send, and whether the outcome is the right one.
pub struct Event {
    pub payload: Value,
    /// A label for the calls-per-event breakdown (e.g. "compliant").
    pub class: &'static str,
    pub check: Check,
}

/// What one warm instance did with a workload.
#[derive(Default)]
pub struct Run {
    pub latency_ms: Vec<f64>,
    /// (class, AWS calls) per event.
    pub calls: Vec<(&'static str, usize)>,
    pub wrong: Vec<String>,
    pub peak_rss_kib: Option<u64>,
}

/// Sends each event synchronously to one warm instance (started before the first event; its cold start
/// is not counted). Latency is the invocation's own time in the function (`/next` → response).
/// `resolve` completes an event that depends on an earlier answer (a Delete needs the Create's id).
pub async fn warm_run(
    h: &Harness,
    events: Vec<Event>,
    resolve: fn(&Harness, Event) -> Event,
) -> Run {
    let mut run = Run::default();
    for (i, event) in events.into_iter().enumerate() {
        let event = resolve(h, event);
        let before = h.aws_calls().len();
        let outcome = h.invoke(&event.payload).await;
        let calls = h.aws_calls().len() - before;
        if let Some(inv) = h.invocations().last() {
            run.latency_ms.push(ms(inv.ended - inv.started));
        }
        run.calls.push((event.class, calls));
        if !(event.check)(&outcome, h) {
            run.wrong
                .push(format!("event {i} ({}): {outcome:?}", event.class));
        }
    }
    run.peak_rss_kib = h.peak_rss_kib();
    run
}

/// A burst: every event enqueued at once (asynchronous invocations, as EventBridge delivers them),
/// one instance draining the queue. Returns (events per second, per-event latency in the function,
/// AWS calls, failed invocations).
pub async fn burst(h: &Harness, events: &[Value]) -> (f64, Vec<f64>, usize, usize) {
    let already = h.invocations().len();
    let calls_before = h.aws_calls().len();
    for e in events {
        h.invoke_async(e);
    }
    let t = Instant::now();
    while h.invocations().len() < already + events.len() && t.elapsed() < Duration::from_secs(1800)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let invocations = h.invocations();
    let done = &invocations[already.min(invocations.len())..];
    let first = done.iter().map(|i| i.started).min();
    let last = done.iter().map(|i| i.ended).max();
    let rate = match (first, last) {
        (Some(f), Some(l)) if l > f => done.len() as f64 / (l - f).as_secs_f64(),
        _ => 0.0,
    };
    let failed = done
        .iter()
        .filter(|i| !matches!(i.outcome, Invoked::Response(_)))
        .count();
    let latency = done.iter().map(|i| ms(i.ended - i.started)).collect();
    (rate, latency, h.aws_calls().len() - calls_before, failed)
}

/// What the function itself costs per event: CPU time and wall time of each invocation when every
/// AWS call is answered at once from a recording.
#[derive(Default)]
pub struct Stub {
    pub cpu_ms: Vec<f64>,
    pub wall_ms: Vec<f64>,
    /// Replayed events whose outcome differed from the recording's, and calls the tape could not
    /// answer: the replay went another way, and its figures would not be the recorded workload's.
    pub wrong: Vec<String>,
}

/// Replays on a fresh process of `config` the events a harness at `endpoint` was sent synchronously
/// (`recorded`, its invocations), every AWS call answered from `tape` (recorded on that harness):
/// the same work, with an endpoint that answers instantly. `ResponseURL`s are pointed at the new
/// harness. Every invocation it runs (the function's own continuations too) is one event.
pub async fn stub_run(
    config: &Config,
    recorded: &[Invocation],
    endpoint: &str,
    tape: &Tape,
) -> Stub {
    let replay = tape.rewound();
    let h = Harness::start(config.clone().replay(&replay)).await;
    let mut stub = Stub::default();
    for (i, inv) in recorded.iter().filter(|i| !i.asynchronous).enumerate() {
        let text = inv.payload.to_string().replace(endpoint, h.endpoint());
        let payload: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let outcome = h.invoke(&payload).await;
        if std::mem::discriminant(&outcome) != std::mem::discriminant(&inv.outcome) {
            stub.wrong.push(format!(
                "replayed event {i}: {outcome:?}, recorded {:?}",
                inv.outcome
            ));
        }
    }
    // The function's own asynchronous continuations, if any, run to the end.
    let mut seen = h.invocations().len();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = h.invocations().len();
        if now == seen {
            break;
        }
        seen = now;
    }
    for inv in h.invocations() {
        stub.wall_ms.push(ms(inv.ended - inv.started));
        stub.cpu_ms.extend(inv.cpu.map(ms));
    }
    stub.wrong.extend(
        replay
            .misses()
            .into_iter()
            .map(|m| format!("no recorded answer for {m}")),
    );
    stub
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The p-th percentile (nearest rank) of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}
