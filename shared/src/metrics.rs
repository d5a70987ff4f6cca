//! CloudWatch metrics in Embedded Metric Format (EMF): one JSON document per line on stdout, which
//! CloudWatch Logs turns into metrics — no API call on the event's path, no permission beyond the logs
//! the function already writes (CloudWatch's "Specification: Embedded metric format").
//!
//! Every document has the namespace `secure-mlops` (`METRICS_NAMESPACE` changes it) and one dimension
//! set, `Function` (the Lambda function's name) × `Outcome` (what happened: `SUCCESS`, `stopped`,
//! `started`, …). What else helps to find the record (a request type, a check id) goes in as a
//! property: searchable in Logs Insights, not a dimension (no metric per value).
//!
//! No maintained crate fits: `metrics_cloudwatch_embedded` brings the `metrics` facade with a global
//! recorder and its own Lambda runtime wrapper; a function here writes a handful of documents per
//! event, which is this one function.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The default namespace.
pub const NAMESPACE: &str = "secure-mlops";

/// A metric's unit, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric value of a document.
#[derive(Clone, Copy, Debug)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub value: f64,
    pub unit: Unit,
}

impl<'a> Metric<'a> {
    pub fn count(name: &'a str) -> Self {
        Metric {
            name,
            value: 1.0,
            unit: Unit::Count,
        }
    }

    pub fn count_of(name: &'a str, value: usize) -> Self {
        Metric {
            name,
            value: value as f64,
            unit: Unit::Count,
        }
    }

    pub fn millis(name: &'a str, elapsed: std::time::Duration) -> Self {
        Metric {
            name,
            value: elapsed.as_secs_f64() * 1000.0,
            unit: Unit::Milliseconds,
        }
    }
}

/// The namespace and the function's name, read from the environment once per process.
fn context() -> &'static (String, String) {
    static CONTEXT: OnceLock<(String, String)> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        (
            std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| NAMESPACE.to_owned()),
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        )
    })
}

/// Writes one EMF document: `metrics` for `outcome`, with `properties`.
pub fn emit(outcome: &str, metrics: &[Metric<'_>], properties: &[(&str, &str)]) {
    let (namespace, function) = context();
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let line = document(namespace, function, outcome, metrics, properties, timestamp);
    // One write of one line: documents never interleave with the JSON log lines.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// The EMF document (pure; see [`emit`]).
pub fn document(
    namespace: &str,
    function: &str,
    outcome: &str,
    metrics: &[Metric<'_>],
    properties: &[(&str, &str)],
    timestamp_ms: u64,
) -> Value {
    let mut doc = Map::new();
    // Properties first: a dimension or a metric of the same name wins.
    for (k, v) in properties {
        doc.insert((*k).to_owned(), json!(v));
    }
    doc.insert("Function".into(), json!(function));
    doc.insert("Outcome".into(), json!(outcome));
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
        .collect();
    for m in metrics {
        doc.insert(m.name.to_owned(), json!(m.value));
    }
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Function", "Outcome"]],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_follows_the_emf_specification() {
        let doc = document(
            "secure-mlops",
            "secure-mlops-detective-control",
            "stopped",
            &[
                Metric::count("Findings"),
                Metric::millis("Duration", std::time::Duration::from_micros(1500)),
            ],
            &[("Check", "vpc"), ("Outcome", "overridden")],
            1_700_000_000_000,
        );
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000u64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "secure-mlops");
        assert_eq!(directive["Dimensions"], json!([["Function", "Outcome"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Findings", "Unit": "Count"}, {"Name": "Duration", "Unit": "Milliseconds"}])
        );
        // Every dimension and metric named in the directive is a member of the document.
        assert_eq!(doc["Function"], "secure-mlops-detective-control");
        assert_eq!(
            doc["Outcome"], "stopped",
            "a property never replaces a dimension"
        );
        assert_eq!(doc["Findings"], 1.0);
        assert_eq!(doc["Duration"], 1.5);
        assert_eq!(doc["Check"], "vpc");
    }
}
