//! Promises of `infra/template.yaml` that no linter checks: every function is one of our crates, named
//! after it, watched by alarms; every parameter is documented for the people who deploy it.
//! (Security rules — encryption, DLQs, IAM scope — are the cfn-guard rules of `infra/rules/`.)

use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Mapping {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).expect("read template");
    match serde_yaml_ng::from_str(&text).expect("template is YAML") {
        Value::Mapping(m) => m,
        other => panic!("template is not a mapping: {other:?}"),
    }
}

fn section<'a>(template: &'a Mapping, name: &str) -> &'a Mapping {
    template
        .get(name)
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("template has no {name}"))
}

/// Logical ids of the resources of one type.
fn of_type<'a>(resources: &'a Mapping, kind: &str) -> Vec<(&'a str, &'a Value)> {
    resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .map(|(id, r)| (id.as_str().expect("logical id"), r))
        .collect()
}

/// The text of a short-form intrinsic (`!Ref X` → "X", `!GetAtt X.Y` → "X.Y", `!Sub "…"` → "…").
fn tagged<'a>(value: &'a Value, tag: &str) -> Option<&'a str> {
    match value {
        Value::Tagged(t) if t.tag == tag => t.value.as_str(),
        _ => None,
    }
}

#[test]
fn every_function_is_a_crate_of_this_workspace_named_after_its_binary() {
    let t = template();
    let functions = of_type(section(&t, "Resources"), "AWS::Serverless::Function");
    assert_eq!(functions.len(), 7, "seven functions");
    for (id, f) in functions {
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} names no Binary"));
        let manifest = root().join("functions").join(binary).join("Cargo.toml");
        assert!(manifest.exists(), "{id}: no crate {}", manifest.display());
        assert_eq!(
            tagged(&f["Properties"]["FunctionName"], "Sub"),
            Some(format!("${{ProjectName}}-{binary}").as_str()),
            "{id}: FunctionName"
        );
        let role = tagged(&f["Properties"]["Role"], "GetAtt").unwrap_or_default();
        assert!(role.ends_with("Role.Arn"), "{id}: own role, got {role:?}");
    }
}

#[test]
fn every_function_and_every_dead_letter_queue_has_an_alarm_on_the_alert_topic() {
    let t = template();
    let resources = section(&t, "Resources");
    let mut watched = BTreeSet::new();
    for (id, alarm) in of_type(resources, "AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        let actions = p["AlarmActions"].as_sequence().expect("AlarmActions");
        assert!(
            actions
                .iter()
                .any(|a| tagged(a, "Ref") == Some("AlertTopic")),
            "{id} notifies the alert topic"
        );
        assert_eq!(
            p["Threshold"].as_u64(),
            Some(1),
            "{id}: the first failure counts"
        );
        assert_eq!(p["TreatMissingData"].as_str(), Some("notBreaching"), "{id}");
        let dimension = &p["Dimensions"][0]["Value"];
        let target = tagged(dimension, "Ref")
            .or_else(|| tagged(dimension, "GetAtt").and_then(|s| s.strip_suffix(".QueueName")))
            .unwrap_or_else(|| panic!("{id}: dimension names no resource"));
        watched.insert(target.to_owned());
    }
    for (id, _) in of_type(resources, "AWS::Serverless::Function")
        .into_iter()
        .chain(of_type(resources, "AWS::SQS::Queue"))
    {
        assert!(watched.contains(id), "{id} has no alarm");
    }
}

#[test]
fn every_parameter_is_documented_in_the_readme_deploy_section() {
    let t = template();
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let deploy = readme
        .split("## Deploy to AWS")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Deploy to AWS section");
    let rows: Vec<&str> = deploy.lines().filter(|l| l.starts_with("| `")).collect();
    for (name, _) in section(&t, "Parameters") {
        let name = name.as_str().expect("parameter name");
        let cell = format!("`{name}`");
        assert!(
            rows.iter().any(|row| row
                .split('|')
                .nth(1)
                .is_some_and(|first| first.contains(&cell))),
            "README \"Deploy to AWS\" has no row for parameter {name}"
        );
    }
}
