//! Property tests: no payload — arbitrary JSON, or a real CloudTrail event with fields removed, nulled
//! or replaced by anything — makes the pure part of the function (parse → facts → checks → alert) panic.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::alert::{Context, Report};
use crate::checks::{self, RULES};
use crate::config::Mode;
use crate::resource::{Kind, Observed, Resource};
use crate::respond::{Taken, plan};
use crate::trigger::{Trigger, parse};

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("CreateTrainingJob"),
            Just("CreateNotebookInstance"),
            Just("Enabled"),
            Just("aws.sagemaker")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,8}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Everything the function does with a payload short of calling AWS.
fn pipeline(payload: &Value) {
    let Ok(Trigger::Call(call)) = parse(payload) else {
        return;
    };
    let Some((kind, _)) = Kind::from_event_name(&call.event_name) else {
        return;
    };
    let Some(resource) = Resource::from_call(kind, &call.request, &call.response, &call.place)
    else {
        return;
    };
    let observed = Observed::from_request(kind, &call.request);
    let rules: Vec<_> = RULES.iter().collect();
    let failed = checks::failed(kind, &observed, &rules);
    let context = Context {
        trigger: "event",
        event_id: call.event_id.clone(),
        event_name: call.event_name.clone(),
        event_time: call.event_time.clone(),
        principal: call.principal.clone(),
        source_ip: call.source_ip.clone(),
        place: call.place.clone(),
    };
    let report = Report {
        context: &context,
        resource,
        failed,
        taken: Taken::not_taken(plan(kind, Mode::Enforce).1.unwrap_or("x")),
        mode: Mode::Alert,
    };
    let subject = report.subject();
    assert!(subject.len() <= 100 && subject.is_ascii());
    let _ = report.body().to_string();
}

fn fixtures() -> Vec<Value> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/detective-control");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).expect("fixture");
        out.push(serde_json::from_str(&text).expect("fixture is JSON"));
    }
    assert!(out.len() >= 20, "{} fixtures", out.len());
    out
}

/// Every path (object keys and array indexes) inside `v`.
fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(k.clone());
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(i.to_string());
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// Replaces (`Some`) or removes (`None`) the value at `path`.
fn mutate(v: &mut Value, path: &[String], with: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for p in parents {
        cur = match cur {
            Value::Object(m) => match m.get_mut(p) {
                Some(c) => c,
                None => return,
            },
            Value::Array(a) => match p.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(c) => c,
                None => return,
            },
            _ => return,
        };
    }
    match (cur, with) {
        (Value::Object(m), Some(w)) => {
            m.insert(last.clone(), w);
        }
        (Value::Object(m), None) => {
            m.remove(last);
        }
        (Value::Array(a), w) => {
            if let Some(i) = last.parse::<usize>().ok().filter(|i| *i < a.len()) {
                match w {
                    Some(w) => a[i] = w,
                    None => {
                        a.remove(i);
                    }
                }
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(v in json()) {
        pipeline(&v);
    }

    #[test]
    fn an_arbitrary_detail_never_panics(detail in json(), name in prop::sample::select(vec!["CreateTrainingJob", "CreateHyperParameterTuningJob", "CreateNotebookInstance", "UpdateDomain", "CreateModel"])) {
        let mut detail = detail;
        if let Value::Object(m) = &mut detail {
            m.insert("eventID".into(), Value::String("e".into()));
            m.insert("eventName".into(), Value::String(name.into()));
        }
        pipeline(&serde_json::json!({"id": "x", "detail-type": "AWS API Call via CloudTrail", "source": "aws.sagemaker", "detail": detail}));
    }

    #[test]
    fn mutated_real_events_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::option::of(json())), 1..6),
    ) {
        let all = fixtures();
        let mut event = which.get(&all).clone();
        for (at, with) in edits {
            let mut found = Vec::new();
            paths(&event, &mut Vec::new(), &mut found);
            if found.is_empty() { break; }
            let path = at.get(&found).clone();
            mutate(&mut event, &path, with);
        }
        pipeline(&event);
    }
}
