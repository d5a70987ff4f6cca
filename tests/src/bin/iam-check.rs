//! `iam-check` — proves each function's role in `infra/template.yaml` against what its code does.
//!
//! Run after the test suite (`make test` does): the harness logged every AWS call each real function
//! binary made, through both emulators (see `testbed::calls`). For each function of the template:
//!
//! - every action its code called must be granted by its role (else it would fail in AWS);
//! - every action its role grants must have been called by some test, or be listed below with the
//!   reason only real AWS needs it (else the role grants more than the code uses).
//!
//! The member roles of stack set templates (`MEMBER_ROLES`: detective-control's responder role) are
//! checked the same way against the calls the function made as that role.
//!
//! Prints a table (function → operations called → granted) and exits 1 on any disagreement.
//! Usage: iam-check [template] (default: infra/template.yaml of this workspace).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

/// Granted actions no test can call, with the reason. `None` as function: any function.
const ONLY_REAL_AWS_NEEDS: &[(Option<&str>, &str, &str)] = &[
    (
        None,
        "logs:CreateLogStream",
        "Lambda writes the function's logs with its role",
    ),
    (
        None,
        "logs:PutLogEvents",
        "Lambda writes the function's logs with its role",
    ),
    (
        None,
        "sqs:SendMessage",
        "Lambda's on-failure destination sends failed events with the role",
    ),
    (
        None,
        "kms:GenerateDataKey",
        "SQS, SNS, DynamoDB and CloudWatch Logs use the project key on the role's behalf",
    ),
    (
        None,
        "kms:Decrypt",
        "SQS, SNS, DynamoDB and CloudWatch Logs use the project key on the role's behalf",
    ),
    (
        None,
        "iam:PassRole",
        "authorises handing a role to a service; not an API call of its own",
    ),
    (
        Some("studio-domain"),
        "kms:CreateGrant",
        "SageMaker creates a grant on the domain's KMS key for the home EFS (kms:ViaService)",
    ),
    (
        Some("studio-domain"),
        "kms:DescribeKey",
        "SageMaker describes the domain's KMS key on the caller's behalf (kms:ViaService)",
    ),
    (
        Some("studio-domain"),
        "ec2:DescribeSubnets",
        "SageMaker CreateDomain checks the subnets with the caller's permissions",
    ),
    (
        Some("studio-domain"),
        "ec2:DescribeVpcs",
        "SageMaker CreateDomain checks the VPC with the caller's permissions",
    ),
    (
        Some("studio-domain"),
        "ec2:DescribeNetworkInterfaces",
        "SageMaker CreateDomain checks the network with the caller's permissions",
    ),
    (
        Some("studio-domain"),
        "sagemaker:AddTags",
        "CreateDomain with Tags needs sagemaker:AddTags (SageMaker's tag-on-create authorization)",
    ),
    (
        Some("studio-user-profile"),
        "sagemaker:AddTags",
        "CreateUserProfile with Tags needs sagemaker:AddTags (SageMaker's tag-on-create authorization)",
    ),
    (
        Some("stackset-deploy"),
        "s3:GetObject",
        "CloudFormation reads the stack set's TemplateURL with the caller's permissions",
    ),
    (
        Some("stackset-deploy"),
        "s3:GetObjectVersion",
        "the TemplateURL names an object version (?versionId=): CloudFormation reads it with the caller's permissions",
    ),
    // Calls the code makes on paths no harness test reaches yet; the unit tests prove them with
    // aws-smithy-mocks, whose calls do not pass the harness.
    (
        Some("studio-domain"),
        "elasticfilesystem:DeleteMountTarget",
        "fallback when SageMaker leaves the home EFS behind (the twin deletes it as SageMaker documents)",
    ),
    (
        Some("studio-domain"),
        "elasticfilesystem:DeleteFileSystem",
        "fallback when SageMaker leaves the home EFS behind (the twin deletes it as SageMaker documents)",
    ),
    (
        Some("studio-user-profile"),
        "lambda:InvokeFunction",
        "continuation of a profile wait longer than one invocation (proved for cfn-probe and studio-domain)",
    ),
    (
        Some("stackset-deploy"),
        "cloudformation:ListStackSetOperationResults",
        "reads why a stack-set operation failed (aws-smithy-mocks unit test)",
    ),
    (
        Some("stackset-deploy"),
        "organizations:ListRoots",
        "a target given as the organization root (shared::organizations, unit-tested with mocks)",
    ),
    (
        Some("detective-control"),
        "organizations:ListRoots",
        "MEMBER_OUS given as the organization root (shared::organizations, unit-tested with mocks)",
    ),
    (
        Some("model-approval"),
        "sns:Publish",
        "alerts on a deployment that cannot start (aws-smithy-mocks unit test)",
    ),
    (
        Some("detective-control"),
        "dynamodb:DeleteItem",
        "releases the idempotency record when an alert fails (aws-smithy-mocks unit test)",
    ),
    (
        Some("detective-control"),
        "sagemaker:DescribeTrainingJob",
        "Update events and sweeps of training jobs (harness tests sweep notebooks)",
    ),
    (
        Some("detective-control"),
        "sagemaker:DescribeProcessingJob",
        "Update events and sweeps of processing jobs (harness tests sweep notebooks)",
    ),
    (
        Some("detective-control"),
        "sagemaker:DescribeTransformJob",
        "Update events and sweeps of transform jobs (harness tests sweep notebooks)",
    ),
    (
        Some("detective-control"),
        "sagemaker:DescribeHyperParameterTuningJob",
        "Update events and sweeps of tuning jobs (harness tests sweep notebooks)",
    ),
    (
        Some("detective-control"),
        "sagemaker:DescribeModel",
        "sweeps of models (harness tests sweep notebooks)",
    ),
    (
        Some("detective-control"),
        "sagemaker:DescribeEndpointConfig",
        "sweeps of endpoint configs (harness tests sweep notebooks)",
    ),
];

/// Roles of stack set templates that a function assumes in member accounts: (log of the calls made as
/// that role, template, logical id of the role). An action such a role grants that no test called as
/// it passes when the function called it with its own role (the same code acts with both).
const MEMBER_ROLES: &[(&str, &str, &str)] = &[(
    "detective-control@assumed",
    "infra/stacksets/detective-member.yaml",
    "ResponderRole",
)];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every action of every statement under `value` (`!If` branches included).
fn actions(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(m) => {
            if let Some(a) = m.get("Action") {
                match a {
                    Value::String(s) => {
                        out.insert(s.clone());
                    }
                    Value::Sequence(items) => {
                        out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
                    }
                    _ => {}
                }
            }
            for v in m.values() {
                actions(v, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| actions(v, out)),
        Value::Tagged(t) => actions(&t.value, out),
        _ => {}
    }
}

/// binary name → the actions its role grants.
fn granted(template: &Mapping) -> BTreeMap<String, BTreeSet<String>> {
    let resources = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("Resources");
    let mut out = BTreeMap::new();
    for (id, r) in resources {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = testbed::stack::binary_of(id.as_str().expect("logical id"));
        let role = match &r["Properties"]["Role"] {
            Value::Tagged(t) => t
                .value
                .as_str()
                .unwrap_or_default()
                .trim_end_matches(".Arn")
                .to_owned(),
            other => panic!("{binary}: Role is not !GetAtt <Role>.Arn: {other:?}"),
        };
        let policies = &resources[role.as_str()]["Properties"]["Policies"];
        let mut set = BTreeSet::new();
        actions(policies, &mut set);
        out.insert(binary, set);
    }
    out
}

/// binary name → the actions its calls needed, and the calls no IAM action could be found for.
/// The calls logged per function (and per role it assumed), and the calls of unknown operations as
/// (log, line).
type Called = (BTreeMap<String, BTreeSet<String>>, Vec<(String, String)>);

fn called(dir: &Path) -> Called {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (out, unknown);
    };
    for entry in entries.flatten() {
        let binary = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let set = out.entry(binary.clone()).or_default();
        for line in text.lines() {
            let Some((service, operation)) = line.split_once(':') else {
                continue;
            };
            if operation.starts_with('?') || service == "?" {
                unknown.push((binary.clone(), line.to_owned()));
                continue;
            }
            if let Some(action) = testbed::calls::iam_action(service, operation) {
                set.insert(action);
            }
        }
    }
    (out, unknown)
}

fn exempt(binary: &str, action: &str) -> bool {
    ONLY_REAL_AWS_NEEDS
        .iter()
        .any(|(f, a, _)| *a == action && f.is_none_or(|f| f == binary))
}

fn main() {
    let template_path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("infra/template.yaml"));
    let text = std::fs::read_to_string(&template_path).expect("read the template");
    let template: Mapping = serde_yaml_ng::from_str(&text).expect("the template is YAML");
    let exe = std::env::current_exe().expect("current executable");
    let dir = testbed::calls::log_dir(&exe);
    let mut roles = granted(&template);
    for (log, member_template, role) in MEMBER_ROLES {
        let text = std::fs::read_to_string(root().join(member_template))
            .expect("read the member template");
        let doc: Mapping = serde_yaml_ng::from_str(&text).expect("the member template is YAML");
        let mut set = BTreeSet::new();
        actions(&doc["Resources"][*role]["Properties"]["Policies"], &mut set);
        roles.insert((*log).to_owned(), set);
    }
    let (calls, unknown) = called(&dir);

    let mut failures = Vec::new();
    println!(
        "IAM check: {} functions of {}, calls from {}",
        roles.len(),
        template_path.display(),
        dir.display()
    );
    println!(
        "| function | operations called (by the test suite) | granted | only real AWS needs |"
    );
    println!("|---|---|---|---|");
    for (binary, grants) in &roles {
        let Some(used) = calls.get(binary) else {
            failures.push(format!(
                "{binary}: no AWS call logged — run the whole test suite first (make test)"
            ));
            continue;
        };
        for action in used.difference(grants) {
            failures.push(format!(
                "{binary}: calls {action}, which its role does not grant"
            ));
        }
        // A member role's action the function called with its own role is proven by that call.
        let own = binary
            .split_once('@')
            .map(|(function, _)| function)
            .filter(|_| MEMBER_ROLES.iter().any(|(log, _, _)| log == binary));
        let exempt = |binary: &str, action: &str| match own {
            Some(function) => {
                calls.get(function).is_some_and(|c| c.contains(action)) || exempt(function, action)
            }
            None => exempt(binary, action),
        };
        let unused: Vec<&String> = grants.difference(used).collect();
        for action in unused.iter().filter(|a| !exempt(binary, a)) {
            failures.push(format!("{binary}: its role grants {action}, which no test saw it call (remove it, or list why only real AWS needs it)"));
        }
        let exempted: Vec<&str> = unused
            .iter()
            .filter(|a| exempt(binary, a))
            .map(|a| a.as_str())
            .collect();
        println!(
            "| {binary} | {} | {} of {} | {} |",
            used.iter().cloned().collect::<Vec<_>>().join(", "),
            used.intersection(grants).count(),
            used.len(),
            exempted.join(", ")
        );
    }
    // Calls made as a role no template of ours defines (another team's, e.g. a target account's
    // deployment role) are not checked.
    let mut unknown: Vec<String> = unknown
        .iter()
        .filter(|(log, _)| roles.contains_key(log))
        .map(|(log, line)| {
            format!("call of unknown operation (teach testbed::calls): {log}: {line}")
        })
        .collect();
    unknown.dedup();
    failures.extend(unknown);
    if failures.is_empty() {
        println!("IAM check: every role grants what its function calls, and nothing it does not");
        return;
    }
    for f in &failures {
        eprintln!("IAM check: {f}");
    }
    std::process::exit(1);
}
