//! `make bench`: the numbers. Every function's release binary, and a Python 3 + boto3 reference of
//! `org-accounts` and `detective-control` (`tests/bench/`), side by side, on this machine, against the
//! same emulator, through the same Lambda harness. A benchmark, not a test: it asserts nothing about
//! time; it fails only when a function gives a wrong answer (then its figures would mean nothing).
//!
//! Usage: `bench [OUT_DIR]` (default `target/bench`): prints a markdown report and writes
//! `report.md`, `report.json` and `ratios.png` there.

mod chart;
mod measure;
mod workloads;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use testbed::harness::{Config, Harness, Tape};

use measure::{
    Run, Runtime, Stub, burst, cold_inits, config, mean, median, percentile, stub_run, warm_run,
};
use workloads::Bed;

const COLD_STARTS: usize = 9;

/// `BENCH_QUICK=1`: small bursts, for trying the bench itself (its figures are not the report's).
fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

/// The figures of one function in one runtime.
struct Row {
    function: &'static str,
    runtime: Runtime,
    path: &'static str,
    size: Option<u64>,
    init_ms: Vec<f64>,
    run: Run,
    /// The same events again, every AWS call answered at once from a recording of the run.
    stub: Stub,
}

impl Row {
    fn p(&self, p: f64) -> f64 {
        percentile(&self.run.latency_ms, p)
    }
    fn rss_mib(&self) -> f64 {
        self.run
            .peak_rss_kib
            .map(|k| k as f64 / 1024.0)
            .unwrap_or(f64::NAN)
    }
    fn calls_per_event(&self) -> f64 {
        let total: usize = self.run.calls.iter().map(|(_, c)| c).sum();
        total as f64 / self.run.calls.len().max(1) as f64
    }
    /// "class: n" for each class of event (the minimum and maximum calls seen).
    fn calls_by_class(&self) -> String {
        let mut classes: Vec<&str> = self.run.calls.iter().map(|(c, _)| *c).collect();
        classes.dedup();
        classes.sort();
        classes.dedup();
        classes
            .iter()
            .map(|class| {
                let counts: Vec<usize> = self
                    .run
                    .calls
                    .iter()
                    .filter(|(c, _)| c == class)
                    .map(|(_, n)| *n)
                    .collect();
                let (lo, hi) = (
                    counts.iter().min().copied().unwrap_or(0),
                    counts.iter().max().copied().unwrap_or(0),
                );
                if lo == hi {
                    format!("{class} {lo}")
                } else {
                    format!("{class} {lo}-{hi}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Cold starts of `config`, then one warm instance running `events` (built once it runs) against the
/// emulator, its AWS answers recorded, then the same events on a new instance answered from the
/// recording (the function's own cost).
async fn measure(
    function: &'static str,
    runtime: Runtime,
    path: &'static str,
    config: Config,
    events: impl AsyncFnOnce(&Harness) -> Vec<measure::Event>,
    resolve: fn(&Harness, measure::Event) -> measure::Event,
) -> Row {
    let init_ms = cold_inits(&config, COLD_STARTS).await;
    let tape = Tape::new();
    let h = Harness::start(config.clone().record(&tape)).await;
    let events = events(&h).await;
    let run = warm_run(&h, events, resolve).await;
    let stub = stub_run(&config, &h.invocations(), h.endpoint(), &tape).await;
    drop(h);
    let row = Row {
        function,
        runtime,
        path,
        size: measure::size(function, runtime),
        init_ms,
        run,
        stub,
    };
    row.print();
    row
}

impl Row {
    fn print(&self) {
        eprintln!(
            "  {} ({}): init {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, RSS {:.1} MiB, {:.2} calls/event, {} wrong; \
             stub: CPU {:.2} ms, wall {:.2} ms per event (p50), {} wrong",
            self.function,
            self.runtime.label(),
            median(&self.init_ms),
            self.p(50.0),
            self.p(99.0),
            self.rss_mib(),
            self.calls_per_event(),
            self.run.wrong.len(),
            median(&self.stub.cpu_ms),
            median(&self.stub.wall_ms),
            self.stub.wrong.len()
        );
    }
}

/// stackset-deploy: its sample staging job, `DEPLOY_JOBS` times (each on a fresh fixture), the AWS
/// answers recorded, then every invocation replayed from the recording.
async fn deploy_row(init_ms: Vec<f64>) -> Row {
    const DEPLOY_JOBS: usize = 5;
    let sample = testbed::sample::events_dir().join("stackset-deploy/deploy-staging.json");
    let mut run = Run::default();
    let mut stub = Stub::default();
    for _ in 0..DEPLOY_JOBS {
        let tape = Tape::new();
        let tried = testbed::sample::run_with("stackset-deploy", &sample, |c| {
            c.record(&tape).timeout(Duration::from_secs(60))
        })
        .await;
        let tried = match tried {
            Ok(tried) if tried.ok => tried,
            Ok(tried) => {
                run.wrong.push(format!("staging job: {}", tried.answer));
                continue;
            }
            Err(e) => {
                run.wrong.push(format!("staging job: {e}"));
                continue;
            }
        };
        for inv in &tried.invocations {
            run.latency_ms.push(measure::ms(inv.ended - inv.started));
        }
        run.peak_rss_kib = run.peak_rss_kib.max(tried.peak_rss_kib);
        let replayed = stub_run(&tried.config, &tried.invocations, &tried.endpoint, &tape).await;
        stub.cpu_ms.extend(replayed.cpu_ms);
        stub.wall_ms.extend(replayed.wall_ms);
        stub.wrong.extend(replayed.wrong);
    }
    let row = Row {
        function: "stackset-deploy",
        runtime: Runtime::Rust,
        path: "its sample staging job (8 accounts), invoked with each continuation until Succeeded",
        size: measure::size("stackset-deploy", Runtime::Rust),
        init_ms,
        run,
        stub,
    };
    row.print();
    row
}

fn no_resolve(_: &Harness, e: measure::Event) -> measure::Event {
    e
}

struct Burst {
    runtime: Runtime,
    events: usize,
    rate: f64,
    latency: Vec<f64>,
    calls: usize,
    failed: usize,
}

async fn bursts(bed: &Bed, runtime: Runtime, sizes: &[usize]) -> Vec<Burst> {
    let h = Harness::start(detective_config(bed, runtime)).await;
    // Warm the instance (its cold start is measured elsewhere).
    let mut warm = workloads::detective_events(1, &format!("warm-{}", runtime.label()));
    workloads::prepare_detective(bed, &mut warm).await;
    for (e, _) in warm.iter().take(2) {
        let _ = h.invoke(e).await;
    }
    let mut out = Vec::new();
    for &n in sizes {
        let tag = format!("burst-{}-{n}", runtime.label());
        let mut events = workloads::detective_events(n.div_ceil(16), &tag);
        events.truncate(n);
        workloads::prepare_detective(bed, &mut events).await;
        let events: Vec<Value> = events.into_iter().map(|(e, _)| e).collect();
        let (rate, latency, calls, failed) = burst(&h, &events).await;
        eprintln!(
            "  burst {n} ({}): {rate:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, {failed} failed",
            runtime.label(),
            percentile(&latency, 50.0),
            percentile(&latency, 99.0)
        );
        out.push(Burst {
            runtime,
            events: n,
            rate,
            latency,
            calls,
            failed,
        });
    }
    out
}

fn detective_config(bed: &Bed, runtime: Runtime) -> Config {
    config(
        &bed.fx.stack,
        "detective-control",
        runtime,
        &bed.fx.moto.endpoint,
        &bed.fx.twin.endpoint,
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| format!("{:.0} GiB", k as f64 / 1048576.0))
        .unwrap_or_default();
    format!(
        "{} {}, {cores} cores, {mem}, {cpu}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// A markdown table's header row and its separator.
fn head(md: &mut String, header: &str) {
    let columns = header.matches('|').count().saturating_sub(1);
    let _ = writeln!(md, "{header}\n|{}", "---|".repeat(columns));
}

fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn fmt_mb(bytes: Option<u64>) -> String {
    bytes.map_or("—".into(), |b| {
        format!("{:.2} MB ({:.2} MiB)", b as f64 / 1e6, b as f64 / 1048576.0)
    })
}

#[tokio::main]
async fn main() {
    let out_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench"));
    let _ = std::fs::create_dir_all(&out_dir);
    let started = std::time::Instant::now();
    eprintln!("secure-mlops bench: starting moto and the twin, seeding an organization…");
    let bed = Bed::start().await;
    for key in [
        "domain.create",
        "domain.delete",
        "profile.create",
        "profile.delete",
        "app.create",
        "app.delete",
        "space.delete",
    ] {
        bed.fx.twin.set_duration(key, 0.0);
    }
    bed.fx.twin.set_duration("pipeline.continuation", 0.05);
    let (m, t) = (bed.fx.moto.endpoint.clone(), bed.fx.twin.endpoint.clone());
    // Every function from the template's environment (its parameters at their defaults).
    let config =
        |function: &str, runtime: Runtime| config(&bed.fx.stack, function, runtime, &m, &t);
    // stackset-deploy's configuration names its deployment targets (template parameters without
    // defaults): the seeded Staging and Production OUs.
    let deploy_stack = testbed::deployment::targets(
        bed.fx.stack.clone(),
        bed.org.ou("Staging"),
        &[bed.org.ou("Production")],
        &["us-east-1"],
    );
    if std::env::var_os("BENCH_INIT_ONLY").is_some() {
        // Cold inits alone (a few minutes less than the whole bench), printed, no report written.
        for function in [
            "org-accounts",
            "studio-domain",
            "studio-user-profile",
            "cross-account-access",
            "model-approval",
            "stackset-deploy",
            "detective-control",
        ] {
            let stack = if function == "stackset-deploy" {
                &deploy_stack
            } else {
                &bed.fx.stack
            };
            let function_config = measure::config(stack, function, Runtime::Rust, &m, &t);
            let mut ms = cold_inits(&function_config, COLD_STARTS).await;
            ms.sort_by(f64::total_cmp);
            println!(
                "{function:<22} cold init median {:.1} ms ({:.1}–{:.1} ms, {} starts)",
                median(&ms),
                ms.first().copied().unwrap_or_default(),
                ms.last().copied().unwrap_or_default(),
                ms.len()
            );
        }
        return;
    }
    let mut rows = Vec::new();

    eprintln!("per function (release binaries) and the Python references:");
    for runtime in [Runtime::Rust, Runtime::Python] {
        rows.push(
            measure(
                "org-accounts",
                runtime,
                "Create: 2 OUs (4 levels, 34 ACTIVE accounts) -> account ids",
                config("org-accounts", runtime),
                async |h| workloads::org_accounts(&bed, h, 40),
                no_resolve,
            )
            .await,
        );
    }
    for runtime in [Runtime::Rust, Runtime::Python] {
        rows.push(
            measure(
                "detective-control",
                runtime,
                "CloudTrail Create* events, 8 kinds, compliant and not (stop/delete + alert)",
                detective_config(&bed, runtime),
                async |_| {
                    let mut events =
                        workloads::detective_events(10, &format!("main-{}", runtime.label()));
                    workloads::prepare_detective(&bed, &mut events).await;
                    workloads::detective(events)
                },
                no_resolve,
            )
            .await,
        );
    }
    rows.push(
        measure(
            "cross-account-access",
            Runtime::Rust,
            "Create grant for 34 accounts (bucket + key policy), then Delete",
            config("cross-account-access", Runtime::Rust),
            async |h| workloads::cross_account_access(&bed, h, 15),
            workloads::resolve_deferred,
        )
        .await,
    );
    rows.push(
        measure(
            "studio-user-profile",
            Runtime::Rust,
            "Create user profile (until InService), then Delete",
            config("studio-user-profile", Runtime::Rust).env("SECURE_MLOPS_POLL_BASE_MS", "20"),
            async |h| workloads::studio_user_profile(&bed, h, 15).await,
            no_resolve,
        )
        .await,
    );
    rows.push(
        measure(
            "studio-domain",
            Runtime::Rust,
            "Create VPC-only domain (until InService), then Delete with its home EFS",
            config("studio-domain", Runtime::Rust).env("SECURE_MLOPS_POLL_BASE_MS", "20"),
            async |h| workloads::studio_domain(&bed, h, 8).await,
            workloads::resolve_deferred_domain,
        )
        .await,
    );
    let (approvals, groups) = workloads::model_approval(&bed, 30).await;
    let mut approvals = Some(approvals);
    rows.push(
        measure(
            "model-approval",
            Runtime::Rust,
            "a version approved -> decide -> StartPipelineExecution",
            measure::config(
                &bed.fx.stack.clone().parameter(
                    "ModelPackageGroups",
                    serde_json::json!(groups.split(',').collect::<Vec<_>>()),
                ),
                "model-approval",
                Runtime::Rust,
                &m,
                &t,
            ),
            async |_| approvals.take().unwrap_or_default(),
            no_resolve,
        )
        .await,
    );
    // stackset-deploy's work is a CodePipeline job that polls a stack-set operation: its sample (the
    // staging job, invoked again with each continuation token until it succeeds), on its own fixture.
    let deploy_cfg = measure::config(&deploy_stack, "stackset-deploy", Runtime::Rust, &m, &t);
    let init_ms = cold_inits(&deploy_cfg, COLD_STARTS).await;
    rows.push(deploy_row(init_ms).await);

    eprintln!("detective-control bursts (one warm instance, all events enqueued at once):");
    let (rust_sizes, python_sizes): (&[usize], &[usize]) = if quick() {
        (&[100, 1_000], &[100, 1_000])
    } else {
        (&[100, 1_000, 10_000], &[100, 1_000])
    };
    let mut bursts_all = bursts(&bed, Runtime::Rust, rust_sizes).await;
    bursts_all.extend(bursts(&bed, Runtime::Python, python_sizes).await);

    eprintln!("studio-domain delete with running apps (DeleteApp 0.4 s, an app 1 s to go):");
    let domain_h = Harness::start(
        config("studio-domain", Runtime::Rust).env("SECURE_MLOPS_POLL_BASE_MS", "100"),
    )
    .await;
    let mut deletes = Vec::new();
    for (i, apps) in [1usize, 8, 32].into_iter().enumerate() {
        let took = workloads::domain_delete_with_apps(&bed, &domain_h, apps, 60 + i as u8).await;
        eprintln!("  {apps} apps: {took:.2} s");
        deletes.push((apps, took));
    }

    let report = render(&rows, &bursts_all, &deletes, started.elapsed());
    println!("{}", report.0);
    let _ = std::fs::write(out_dir.join("report.md"), &report.0);
    let _ = std::fs::write(
        out_dir.join("report.json"),
        serde_json::to_vec_pretty(&report.1).unwrap_or_default(),
    );
    let png = out_dir.join("ratios.png");
    match chart::factors(
        &png,
        "secure-mlops: Rust vs the Python 3 + boto3 reference, times better (same harness)",
        &["org-accounts", "detective-control"],
        &report.2,
    ) {
        Ok(()) => eprintln!("chart: {}", png.display()),
        Err(e) => eprintln!("chart not drawn: {e}"),
    }
    eprintln!("report: {}", out_dir.join("report.md").display());
    let wrong: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.run
                .wrong
                .iter()
                .chain(r.stub.wrong.iter())
                .map(move |w| format!("{} ({}): {w}", r.function, r.runtime.label()))
        })
        .chain(
            bursts_all
                .iter()
                .filter(|b| b.failed > 0)
                .map(|b| format!("burst {}: {} failed", b.events, b.failed)),
        )
        .collect();
    bed.fx.moto.stop().await;
    if !wrong.is_empty() {
        eprintln!(
            "WRONG ANSWERS ({}): the figures above do not measure working functions",
            wrong.len()
        );
        for w in wrong.iter().take(20) {
            eprintln!("  {w}");
        }
        std::process::exit(1);
    }
}

type Bars = Vec<(String, [f64; 2])>;

fn render(
    rows: &[Row],
    bursts: &[Burst],
    deletes: &[(usize, f64)],
    took: Duration,
) -> (String, Value, Bars) {
    let mut md = String::new();
    let _ = writeln!(md, "# secure-mlops benchmark\n");
    let _ = writeln!(
        md,
        "Machine: {}. Release binaries (x86_64, stripped) under the local Lambda harness against moto \
         and the SageMaker twin on 127.0.0.1; every AWS call counted by the harness. Cold init = \
         process start → first `/next`, median of {COLD_STARTS} fresh processes after one unmeasured start (min–max). Latency = \
         the function's own time per event on one warm instance. Bench run took {:.0} s.\n",
        machine(),
        took.as_secs_f64()
    );
    let _ = writeln!(md, "## Every function\n");
    head(
        &mut md,
        "| function | runtime | binary (x86_64) | deployed arm64 bootstrap | cold init | peak RSS | p50 | p99 | AWS calls per event | events | main path |",
    );
    for r in rows {
        let lo = r.init_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.init_ms.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} ({}–{}) | {} | {} | {} | {} | {} | {} |",
            r.function,
            r.runtime.label(),
            fmt_mb(r.size),
            if r.runtime == Runtime::Rust {
                fmt_mb(measure::deployed_size(r.function))
            } else {
                "—".into()
            },
            fmt_ms(median(&r.init_ms)),
            fmt_ms(lo),
            fmt_ms(hi),
            if r.run.peak_rss_kib.is_some() {
                format!("{:.1} MiB", r.rss_mib())
            } else {
                "—".into()
            },
            fmt_ms(r.p(50.0)),
            fmt_ms(r.p(99.0)),
            if r.run.calls.is_empty() {
                "—".into()
            } else {
                format!("{:.2} ({})", r.calls_per_event(), r.calls_by_class())
            },
            r.run.latency_ms.len(),
            r.path
        );
    }

    let _ = writeln!(
        md,
        "\n## Our own cost per event (the same events again, every AWS call answered at once)\n"
    );
    let _ = writeln!(
        md,
        "Each warm run above was recorded (every answer the emulator gave); a fresh instance then ran \
         the same events with the harness answering each call from that recording, at once. CPU = the \
         function process's CPU time (all threads) from receiving an event to answering it; wall = the \
         same span in real time. Every invocation is an event (continuations too).\n"
    );
    head(
        &mut md,
        "| function | runtime | events | CPU p50 | CPU mean | wall p50 | wall p99 | wall p50 against the emulator |",
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            r.function,
            r.runtime.label(),
            r.stub.wall_ms.len(),
            fmt_ms(median(&r.stub.cpu_ms)),
            fmt_ms(mean(&r.stub.cpu_ms)),
            fmt_ms(median(&r.stub.wall_ms)),
            fmt_ms(percentile(&r.stub.wall_ms, 99.0)),
            fmt_ms(r.p(50.0)),
        );
    }

    let pair = |f: &str| {
        (
            rows.iter()
                .find(|r| r.function == f && r.runtime == Runtime::Rust),
            rows.iter()
                .find(|r| r.function == f && r.runtime == Runtime::Python),
        )
    };
    let rate = |rt: Runtime| {
        bursts
            .iter()
            .find(|b| b.runtime == rt && b.events == 1_000)
            .map(|b| b.rate)
            .unwrap_or(f64::NAN)
    };
    let _ = writeln!(
        md,
        "\n## Rust vs Python 3 + boto3 (same logic, same calls, same harness)\n"
    );
    let _ = writeln!(
        md,
        "\"Rust better by\" is Python's figure over Rust's for costs (time, memory) and Rust's over \
         Python's for throughput: above 1× Rust is better, below 1× Python is.\n"
    );
    head(
        &mut md,
        "| figure | function | Rust | Python | Rust better by |",
    );
    let mut bars: Bars = Vec::new();
    let mut ratios = json!({});
    /// (name, the figure, how it is shown, its label in the chart if charted).
    type Fig = (
        &'static str,
        fn(&Row) -> f64,
        fn(f64) -> String,
        Option<&'static str>,
    );
    let figures: [Fig; 7] = [
        (
            "cold init",
            |r| median(&r.init_ms),
            fmt_ms,
            Some("cold init"),
        ),
        (
            "peak RSS",
            |r| r.rss_mib(),
            |v| format!("{v:.1} MiB"),
            Some("peak RSS"),
        ),
        (
            "CPU per event, p50 (instant AWS)",
            |r| median(&r.stub.cpu_ms),
            fmt_ms,
            Some("CPU/event (stub)"),
        ),
        (
            "wall per event, p50 (instant AWS)",
            |r| median(&r.stub.wall_ms),
            fmt_ms,
            Some("wall/event (stub)"),
        ),
        (
            "p50 against the emulator",
            |r| r.p(50.0),
            fmt_ms,
            Some("p50 (emulator)"),
        ),
        (
            "p99 against the emulator",
            |r| r.p(99.0),
            fmt_ms,
            Some("p99 (emulator)"),
        ),
        (
            "AWS calls per event",
            |r| r.calls_per_event(),
            |v| format!("{v:.2}"),
            None,
        ),
    ];
    for (name, get, show, chart_label) in figures {
        let mut factor = [f64::NAN; 2];
        for (i, f) in ["org-accounts", "detective-control"].iter().enumerate() {
            if let (Some(rust), Some(py)) = pair(f) {
                let (a, b) = (get(rust), get(py));
                factor[i] = b / a;
                let _ = writeln!(
                    md,
                    "| {name} | `{f}` | {} | {} | {:.2}× |",
                    show(a),
                    show(b),
                    b / a
                );
                ratios[format!("{f} {name}")] =
                    json!({"rust": a, "python": b, "rust_better_by": b / a});
            }
        }
        if let Some(label) = chart_label {
            bars.push((label.to_owned(), factor));
        }
    }
    let (rr, pr) = (rate(Runtime::Rust), rate(Runtime::Python));
    let _ = writeln!(
        md,
        "| events/s, burst of 1,000 (against the emulator) | `detective-control` | {rr:.0} | {pr:.0} | {:.2}× |",
        rr / pr
    );
    ratios["detective-control events/s"] =
        json!({"rust": rr, "python": pr, "rust_better_by": rr / pr});
    bars.push(("events/s (emulator)".into(), [f64::NAN, rr / pr]));

    let _ = writeln!(
        md,
        "\n## detective-control bursts (mixed events, one warm instance, enqueued at once)\n"
    );
    head(
        &mut md,
        "| runtime | events | events/s | p50 | p99 | AWS calls | failed |",
    );
    for b in bursts {
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {} ({:.2}/event) | {} |",
            b.runtime.label(),
            b.events,
            b.rate,
            fmt_ms(percentile(&b.latency, 50.0)),
            fmt_ms(percentile(&b.latency, 99.0)),
            b.calls,
            b.calls as f64 / b.events as f64,
            b.failed
        );
    }

    let _ = writeln!(
        md,
        "\n## studio-domain Delete with running apps (simulated: DeleteApp answers in 0.4 s, an app takes 1 s to go)\n"
    );
    head(
        &mut md,
        "| apps | wall time to CloudFormation's answer | vs 1 app |",
    );
    let base = deletes.first().map(|d| d.1).unwrap_or(f64::NAN);
    for (apps, took) in deletes {
        let _ = writeln!(md, "| {apps} | {took:.2} s | {:.2}× |", took / base);
    }

    // The budgets each function meets (issues 9 and 19).
    let rust: Vec<&Row> = rows.iter().filter(|r| r.runtime == Runtime::Rust).collect();
    let mark = |v: f64, limit: f64, show: String| {
        if v.is_nan() {
            "—".to_owned()
        } else if v <= limit {
            format!("{show} ✓")
        } else {
            format!("**{show} ✗**")
        }
    };
    let _ = writeln!(md, "\n## Budgets per function (✓ met, ✗ missed)\n");
    head(
        &mut md,
        "| function | cold init ≤ 10 ms (median) | arm64 bootstrap ≤ 8 MB | x86_64 binary ≤ 10 MB | peak RSS ≤ 16 MB |",
    );
    for r in &rust {
        let init = median(&r.init_ms);
        let arm = measure::deployed_size(r.function).map_or(f64::NAN, |s| s as f64 / 1e6);
        let x86 = r.size.map_or(f64::NAN, |s| s as f64 / 1e6);
        let rss = r.rss_mib() * 1.048576;
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} |",
            r.function,
            mark(init, 10.0, fmt_ms(init)),
            mark(arm, 8.0, format!("{arm:.2} MB")),
            mark(x86, 10.0, format!("{x86:.2} MB")),
            mark(rss, 16.0, format!("{rss:.1} MB")),
        );
    }
    // The smaller of the two Python/Rust factors.
    let least_factor = |get: fn(&Row) -> f64| {
        ["org-accounts", "detective-control"]
            .iter()
            .filter_map(|f| match pair(f) {
                (Some(r), Some(p)) => Some(get(p) / get(r)),
                _ => None,
            })
            .fold(f64::INFINITY, f64::min)
    };
    let init_x = least_factor(|r| median(&r.init_ms));
    let rss_x = least_factor(|r| r.rss_mib());
    let detective = rows
        .iter()
        .find(|r| r.function == "detective-control" && r.runtime == Runtime::Rust);
    let compliant_calls = detective.map(|r| {
        r.run
            .calls
            .iter()
            .filter(|(c, _)| *c == "compliant")
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    });
    let ok = |b: bool| if b { "**met**" } else { "**missed**" };
    let _ = writeln!(md, "\n## Budgets against the Python references (issue 9)\n");
    head(&mut md, "| budget | measured | |");
    let _ = writeln!(
        md,
        "| cold init ≥ 15× better than Python | {init_x:.1}× (least of the two) | {} |",
        ok(init_x >= 15.0)
    );
    let _ = writeln!(
        md,
        "| peak RSS ≥ 3× better than Python | {rss_x:.1}× (least of the two) | {} |",
        ok(rss_x >= 3.0)
    );
    let _ = writeln!(
        md,
        "| 0 AWS calls for a compliant event | {} | {} |",
        compliant_calls.map_or("—".into(), |c| c.to_string()),
        ok(compliant_calls == Some(0))
    );
    let json = json!({
        "machine": machine(),
        "functions": rows.iter().map(|r| json!({
            "function": r.function, "runtime": r.runtime.label(), "path": r.path,
            "size_bytes": r.size, "init_ms": r.init_ms, "peak_rss_kib": r.run.peak_rss_kib,
            "p50_ms": r.p(50.0), "p99_ms": r.p(99.0), "calls_per_event": r.calls_per_event(),
            "stub_cpu_ms_p50": median(&r.stub.cpu_ms), "stub_cpu_ms_mean": mean(&r.stub.cpu_ms),
            "stub_wall_ms_p50": median(&r.stub.wall_ms), "stub_wall_ms_p99": percentile(&r.stub.wall_ms, 99.0),
            "stub_events": r.stub.wall_ms.len(),
            "calls_by_class": r.calls_by_class(), "events": r.run.calls.len(),
        })).collect::<Vec<_>>(),
        "ratios": ratios,
        "bursts": bursts.iter().map(|b| json!({
            "runtime": b.runtime.label(), "events": b.events, "events_per_s": b.rate,
            "p50_ms": percentile(&b.latency, 50.0), "p99_ms": percentile(&b.latency, 99.0),
            "aws_calls": b.calls, "failed": b.failed,
        })).collect::<Vec<_>>(),
        "domain_delete": deletes.iter().map(|(a, t)| json!({"apps": a, "seconds": t})).collect::<Vec<_>>(),
    });
    (md, json, bars)
}
