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
        // The Makefile's `build-%Function` copies the bootstrap of the crate the logical id names.
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("makefile"),
            "{id}"
        );
        assert!(id.ends_with("Function"), "{id} does not end in Function");
        let binary = testbed::stack::binary_of(id);
        let manifest = root().join("functions").join(&binary).join("Cargo.toml");
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
        if p.get("Metrics").is_some() {
            continue; // across the functions: see the test below
        }
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

/// The alarms across the functions (throttles, dropped asynchronous events, duration near the
/// timeout) watch every function, and the near-timeout one divides each function's maximum duration
/// by that function's own `Timeout`.
#[test]
fn the_alarms_across_functions_cover_each_function_with_its_own_timeout() {
    let t = template();
    let resources = section(&t, "Resources");
    let functions: BTreeSet<&str> = of_type(resources, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut math = 0;
    for (id, alarm) in of_type(resources, "AWS::CloudWatch::Alarm") {
        let Some(metrics) = alarm["Properties"]["Metrics"].as_sequence() else {
            continue;
        };
        math += 1;
        let mut covered = BTreeSet::new();
        let expression = metrics
            .iter()
            .find_map(|m| m["Expression"].as_str())
            .unwrap_or_else(|| panic!("{id}: no expression"));
        for m in metrics.iter().filter(|m| m.get("MetricStat").is_some()) {
            let function = tagged(&m["MetricStat"]["Metric"]["Dimensions"][0]["Value"], "Ref")
                .unwrap_or_else(|| panic!("{id}: a metric names no function"));
            covered.insert(function);
            if expression.starts_with("IF(MAX(") {
                let metric_id = m["Id"].as_str().expect("Id");
                let timeout = resources[function]["Properties"]["Timeout"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{function}: Timeout"));
                assert!(
                    expression.contains(&format!("{metric_id}/{}", timeout * 1000)),
                    "{id}: {function} ({metric_id}) is not divided by its Timeout {timeout} s: {expression}"
                );
            }
        }
        assert_eq!(covered, functions, "{id} watches every function");
    }
    assert_eq!(math, 3, "throttles, dropped events, near the timeout");
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

/// The loopback ResponseURL exception exists for local tests only: no template or deploy configuration
/// of ours sets it, on any function, in any form (checked as text, so `!Sub`, Globals and nested
/// templates are covered too).
#[test]
fn no_deployed_function_accepts_a_loopback_response_url() {
    let setting = shared::cfn::origin::LOOPBACK_SETTING;
    let mut files = vec![root().join("samconfig.toml")];
    let mut dirs = vec![root().join("infra")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read infra") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 3, "the templates were not found: {files:?}");
    let offenders: Vec<_> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .expect("read file")
                .contains(setting)
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "{setting} must never be deployed: {offenders:?}"
    );
}

/// Every statement of every template that allows `iam:PassRole` says to which service the role may be
/// passed (`iam:PassedToService`), so a function cannot hand its roles to anything else.
#[test]
fn every_pass_role_names_the_service_it_is_passed_to() {
    fn visit(value: &Value, found: &mut Vec<String>, missing: &mut Vec<String>) {
        match value {
            Value::Mapping(m) => {
                let passes = m.get("Action").is_some_and(|a| {
                    let actions: Vec<&Value> = match a {
                        Value::Sequence(s) => s.iter().collect(),
                        other => vec![other],
                    };
                    actions.iter().any(|a| a.as_str() == Some("iam:PassRole"))
                });
                if passes {
                    let sid = m
                        .get("Sid")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned();
                    let scoped = m
                        .get("Condition")
                        .and_then(|c| c.get("StringEquals"))
                        .and_then(|c| c.get("iam:PassedToService"))
                        .is_some();
                    if scoped {
                        found.push(sid)
                    } else {
                        missing.push(sid)
                    }
                }
                m.values().for_each(|v| visit(v, found, missing));
            }
            Value::Sequence(s) => s.iter().for_each(|v| visit(v, found, missing)),
            Value::Tagged(t) => visit(&t.value, found, missing),
            _ => {}
        }
    }
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for dir in ["infra", "infra/examples", "infra/stacksets"] {
        for entry in std::fs::read_dir(root().join(dir)).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).expect("read template");
                let doc: Value = serde_yaml_ng::from_str(&text).expect("YAML");
                visit(&doc, &mut found, &mut missing);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "iam:PassRole without iam:PassedToService: {missing:?}"
    );
    assert!(
        found.len() >= 3,
        "the PassRole statements were not found: {found:?}"
    );
}

/// The Studio roles may change or delete only what a stack's custom resource made: every statement
/// of theirs that allows a destructive action on domains or profiles is conditioned on the owner tag
/// (`aws:ResourceTag/secure-mlops:owner`), the same tag the providers check before acting.
#[test]
fn studio_roles_change_only_owner_tagged_domains_and_profiles() {
    let template = template();
    let resources = section(&template, "Resources");
    for (role, guarded) in [
        (
            "StudioDomainRole",
            &[
                "sagemaker:UpdateDomain",
                "sagemaker:DeleteDomain",
                "sagemaker:DeleteTags",
            ][..],
        ),
        (
            "StudioUserProfileRole",
            &[
                "sagemaker:UpdateUserProfile",
                "sagemaker:DeleteUserProfile",
                "sagemaker:DeleteTags",
            ][..],
        ),
    ] {
        let statements: Vec<&Value> = resources[role]["Properties"]["Policies"]
            .as_sequence()
            .expect("policies")
            .iter()
            .flat_map(|p| {
                p["PolicyDocument"]["Statement"]
                    .as_sequence()
                    .expect("statements")
            })
            .collect();
        for action in guarded {
            let granting: Vec<&&Value> = statements
                .iter()
                .filter(|s| {
                    let actions = &s["Action"];
                    actions.as_str() == Some(action)
                        || actions
                            .as_sequence()
                            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(action)))
                })
                .collect();
            assert!(!granting.is_empty(), "{role} does not grant {action}");
            for s in granting {
                assert!(
                    s["Condition"]["StringLike"]
                        .get("aws:ResourceTag/secure-mlops:owner")
                        .is_some(),
                    "{role}: {action} without the owner-tag condition ({:?})",
                    s.get("Sid")
                );
            }
        }
    }
}

/// Lambda's platform `REPORT` records (duration, Init Duration, Max Memory Used) are INFO-level system
/// logs: the functions' system log level must keep them.
#[test]
fn platform_reports_are_kept() {
    let template = template();
    let level = template["Globals"]["Function"]["LoggingConfig"]["SystemLogLevel"]
        .as_str()
        .unwrap_or("INFO");
    assert!(
        ["DEBUG", "INFO"].contains(&level),
        "SystemLogLevel {level} drops platform.report records"
    );
}

/// Environments cannot touch each other: a project name holds no `--`, stack sets are
/// `<ProjectName>--<group>-<stage>` (`shared::deploy::stack_set_name`), so every stack-set grant names
/// `<ProjectName>--*` and never matches the stack sets of a project whose name extends ours.
#[test]
fn stack_set_grants_match_this_projects_stack_sets_only() {
    let t = template();
    let pattern = t["Parameters"]["ProjectName"]["AllowedPattern"]
        .as_str()
        .expect("ProjectName pattern");
    assert_eq!(
        pattern, "^[a-z](-?[a-z0-9])+$",
        "no `--`, no trailing hyphen"
    );
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    let grants: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(":stackset/") || l.contains(":stackset-target/"))
        .collect();
    assert!(grants.len() >= 3, "{grants:#?}");
    for g in grants {
        assert!(g.contains("/${ProjectName}--*\""), "{g}");
    }
    assert_eq!(
        shared::deploy::stack_set_name("secure-mlops", "churn", "prod"),
        "secure-mlops--churn-prod"
    );
}

/// Only the pipeline's own record of what staging ran reaches production, and only publishers write
/// the endpoint template: the Source action's version goes to staging, staging's outputs to
/// production, and the bucket policy denies template writes to everyone else.
#[test]
fn production_deploys_what_staging_ran_and_only_publishers_write_the_template() {
    let t = template();
    let stages = t["Resources"]["DeploymentPipeline"]["Properties"]["Stages"]
        .as_sequence()
        .expect("stages");
    let params = |stage: &str| -> String {
        stages
            .iter()
            .map(|s| match s {
                Value::Tagged(t) => t.value[1].clone(),
                s => s.clone(),
            })
            .find(|s| s["Name"].as_str() == Some(stage))
            .and_then(|s| {
                s["Actions"][0]["Configuration"]["UserParameters"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("{stage} has UserParameters"))
    };
    assert!(params("DeployStaging").contains("\"TemplateVersion\": \"#{Template.VersionId}\""));
    let prod = params("DeployProduction");
    assert!(
        prod.contains("#{Staging.ModelPackageArn}") && prod.contains("#{Staging.TemplateVersion}"),
        "{prod}"
    );
    let statements =
        t["Resources"]["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            .as_sequence()
            .expect("statements");
    let deny = statements
        .iter()
        .find(|s| s["Sid"].as_str() == Some("EndpointTemplatePublishersOnly"))
        .expect("the template write guard");
    assert_eq!(deny["Effect"].as_str(), Some("Deny"));
    assert_eq!(deny["Principal"].as_str(), Some("*"));
    assert!(
        deny["Condition"]["StringNotEquals"]["aws:PrincipalTag/secure-mlops-template-publisher"]
            .as_str()
            == Some("true")
    );
}

/// The member stack set forwards exactly the calls the central function watches, and its responder
/// role grants no SageMaker action the central function's own role does not (the same code acts with
/// both).
#[test]
fn the_member_template_forwards_what_the_control_watches_and_grants_no_more() {
    let central = template();
    let text = std::fs::read_to_string(root().join("infra/stacksets/detective-member.yaml"))
        .expect("read the member template");
    let member: Mapping = serde_yaml_ng::from_str(&text).expect("member template is YAML");
    let names = |pattern: &Value| -> Vec<String> {
        pattern["detail"]["eventName"]
            .as_sequence()
            .expect("an eventName list")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let resources = section(&central, "Resources");
    let watched = names(
        &resources["DetectiveControlFunction"]["Properties"]["Events"]["SageMakerCalls"]["Properties"]
            ["Pattern"],
    );
    let member_resources = section(&member, "Resources");
    let forwarded = names(&member_resources["ForwardRule"]["Properties"]["EventPattern"]);
    assert_eq!(forwarded, watched);

    let sagemaker_actions = |policies: &Value| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for policy in policies.as_sequence().into_iter().flatten() {
            for statement in policy["PolicyDocument"]["Statement"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                let actions = match &statement["Action"] {
                    Value::String(s) => vec![s.clone()],
                    Value::Sequence(a) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                    _ => vec![],
                };
                out.extend(actions.into_iter().filter(|a| a.starts_with("sagemaker:")));
            }
        }
        out
    };
    let responder = sagemaker_actions(&member_resources["ResponderRole"]["Properties"]["Policies"]);
    let own = sagemaker_actions(&resources["DetectiveControlRole"]["Properties"]["Policies"]);
    assert!(!responder.is_empty());
    let extra: Vec<_> = responder.difference(&own).collect();
    assert!(
        extra.is_empty(),
        "the responder role grants more: {extra:?}"
    );
}
