//! `make demo`: the local story, end to end, with the real function binaries against the emulator.
//! Prints a timeline (step, function, outcome, duration), writes a JSON report, exits non-zero when a
//! step's outcome is wrong, and stops everything it started (also on Ctrl-C).
//!
//! Usage: `demo [REPORT_PATH]` (default `target/demo/report.json`).

mod mlops;
mod studio;
mod world;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testbed::fixture::Fixture;
use testbed::stack::Stack;
use world::World;

struct Step {
    name: String,
    function: &'static str,
    ok: bool,
    outcome: String,
    took: Duration,
}

#[derive(Default)]
struct Story {
    steps: Vec<Step>,
}

impl Story {
    fn record(
        &mut self,
        name: &str,
        function: &'static str,
        ok: bool,
        outcome: String,
        took: Duration,
    ) {
        println!(
            "{:>2}. {:<48} {:<19} {:<4} {:>7.0} ms  {}",
            self.steps.len() + 1,
            name,
            function,
            if ok { "ok" } else { "FAIL" },
            took.as_secs_f64() * 1000.0,
            outcome
        );
        self.steps.push(Step {
            name: name.to_owned(),
            function,
            ok,
            outcome,
            took,
        });
    }

    fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }

    fn report(&self, total: Duration) -> Value {
        json!({
            "ok": self.ok(),
            "total_ms": total.as_millis() as u64,
            "steps": self.steps.iter().map(|s| json!({
                "step": s.name, "function": s.function, "ok": s.ok,
                "outcome": s.outcome, "duration_ms": s.took.as_millis() as u64,
            })).collect::<Vec<_>>(),
        })
    }
}

fn summary(body: &Value) -> String {
    match body["Status"].as_str() {
        Some("SUCCESS") => match body["Data"]["AccountCount"].as_str() {
            Some(n) => format!(
                "SUCCESS {n} accounts, id {}",
                body["PhysicalResourceId"].as_str().unwrap_or("?")
            ),
            None => format!(
                "SUCCESS id {}",
                body["PhysicalResourceId"].as_str().unwrap_or("?")
            ),
        },
        Some(other) => format!("{other}: {}", body["Reason"].as_str().unwrap_or("")),
        None => "no status".to_owned(),
    }
}

fn physical(body: &Value) -> String {
    body["PhysicalResourceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn story(story: &mut Story) {
    let t = Instant::now();
    // The project's stack, with Security Hub findings on.
    let stack = Stack::project().parameter("SecurityHubFindings", "true");
    let fx = Fixture::with(stack).await;
    story.record(
        "start the AWS emulator (moto) and the twin; the stack's topic and tables",
        "-",
        true,
        fx.moto.endpoint.clone(),
        t.elapsed(),
    );
    let t = Instant::now();
    let w = match World::prepare(fx).await {
        Ok(w) => w,
        Err(e) => {
            story.record("prepare the accounts", "-", false, e, t.elapsed());
            return;
        }
    };
    story.record(
        "prepare the accounts (org, VPC, bucket, key, targets)",
        "-",
        true,
        format!(
            "{} OUs 4 deep, {} accounts (2 suspended); {} staging + {} prod accounts prepared; \
             7 functions under the harness; pipeline from the template",
            w.org.ous.len(),
            w.org.active.values().map(Vec::len).sum::<usize>() + 2,
            w.staging_accounts.len(),
            w.prod_accounts.len()
        ),
        t.elapsed(),
    );
    let before = w.inventory().await;

    // 1. Custom::OrgAccounts.
    let (staging, prod) = (w.org.ou("Staging"), w.org.ou("Production"));
    let props = json!({"OrganizationalUnitIds": [staging, prod]});
    let t = Instant::now();
    let body = w
        .cfn(&w.org_fn, "create", "Create", ORG, props.clone(), None)
        .await;
    let expected = w.org.expected(&["Staging", "Production"], true);
    story.record(
        "(1) Custom::OrgAccounts Create: staging + prod OUs",
        "org-accounts",
        body["Status"] == "SUCCESS" && body["Data"]["AccountIds"] == expected.join(","),
        summary(&body),
        t.elapsed(),
    );
    let excluded = expected.first().cloned().unwrap_or_default();
    let updated =
        json!({"OrganizationalUnitIds": [staging, prod], "ExcludeAccountIds": [excluded]});
    let t = Instant::now();
    let body = w
        .cfn(
            &w.org_fn,
            "update",
            "Update",
            ORG,
            updated.clone(),
            Some(&physical(&body)),
        )
        .await;
    let org_physical = physical(&body);
    story.record(
        "   Update: exclude one account (replacement)",
        "org-accounts",
        body["Status"] == "SUCCESS"
            && body["Data"]["AccountCount"]
                .as_str()
                .and_then(|n| n.parse().ok())
                == Some(expected.len() - 1),
        summary(&body),
        t.elapsed(),
    );
    let t = Instant::now();
    let body = w
        .cfn(
            &w.org_fn,
            "bad",
            "Create",
            ORG,
            json!({"OrganizationalUnitIds": ["ou-zzzz-zzzzzzzz"]}),
            None,
        )
        .await;
    story.record(
        "   Create with an unknown OU -> FAILED naming it",
        "org-accounts",
        body["Status"] == "FAILED"
            && body["Reason"]
                .as_str()
                .unwrap_or_default()
                .contains("ou-zzzz-zzzzzzzz"),
        summary(&body),
        t.elapsed(),
    );

    // 2-5.
    let grant = mlops::grant(story, &w).await;
    let studio = studio::up(story, &w).await;
    mlops::deploy(story, &w).await;
    mlops::detective(story, &w).await;

    let during = w.inventory().await;

    // 6. Teardown through the custom resources' Delete, then the stack sets as an operator does.
    studio::down(story, &w, studio).await;
    mlops::revoke(story, &w, grant).await;
    let t = Instant::now();
    let body = w
        .cfn(
            &w.org_fn,
            "delete",
            "Delete",
            ORG,
            updated,
            Some(&org_physical),
        )
        .await;
    story.record(
        "(6) Custom::OrgAccounts Delete (a lookup owns nothing)",
        "org-accounts",
        body["Status"] == "SUCCESS",
        summary(&body),
        t.elapsed(),
    );
    mlops::remove_stack_sets(story, &w).await;
    let t = Instant::now();
    let after = w.inventory().await;
    let changed: Vec<String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: before {v:?}, after {:?}", after.get(k)))
        .collect();
    let count =
        |i: &std::collections::BTreeMap<&str, Vec<String>>| i.values().map(Vec::len).sum::<usize>();
    story.record(
        "   nothing left but what existed before",
        "-",
        changed.is_empty(),
        if changed.is_empty() {
            format!(
                "{} kinds compared: {} items before, {} during the story, {} after (the same)",
                before.len(),
                count(&before),
                count(&during),
                count(&after)
            )
        } else {
            changed.join("; ")
        },
        t.elapsed(),
    );

    for (name, h) in w.functions() {
        let init = h.init_times().first().copied().unwrap_or_default();
        let rss = h.peak_rss_kib().unwrap_or_default() as f64 / 1024.0;
        story.record(
            "cold start and peak memory",
            name,
            true,
            format!(
                "cold init {:.1} ms, peak RSS {rss:.1} MiB",
                init.as_secs_f64() * 1000.0
            ),
            init,
        );
    }
    let logged_url = w
        .functions()
        .iter()
        .any(|(_, h)| h.logs().iter().any(|l| l.contains("/cfn/")));
    story.record(
        "logs: JSON, no ResponseURL in any function's logs",
        "-",
        !logged_url,
        format!(
            "{} log lines",
            w.functions()
                .iter()
                .map(|(_, h)| h.logs().len())
                .sum::<usize>()
        ),
        Duration::ZERO,
    );
    w.stop().await;
}

const ORG: &str = "Custom::OrgAccounts";

#[tokio::main]
async fn main() {
    let report_path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/demo/report.json")
        });
    println!("secure-mlops local demo: custom resources through the Lambda harness, against moto and the SageMaker twin
");
    let started = Instant::now();
    let mut s = Story::default();
    let interrupted = tokio::select! {
        _ = story(&mut s) => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    // Leaving the select dropped the story: every process it started has been killed.
    let total = started.elapsed();
    if interrupted {
        s.record(
            "interrupted (Ctrl-C): stopped everything",
            "-",
            false,
            String::new(),
            Duration::ZERO,
        );
    }
    let report = s.report(total);
    if let Some(dir) = report_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &report_path,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    ) {
        Ok(()) => println!("\nreport: {}", report_path.display()),
        Err(e) => eprintln!("could not write {}: {e}", report_path.display()),
    }
    println!(
        "{} in {:.1} s",
        if s.ok() {
            "all steps ok"
        } else {
            "SOME STEPS FAILED"
        },
        total.as_secs_f64()
    );
    if !s.ok() {
        std::process::exit(1);
    }
}
