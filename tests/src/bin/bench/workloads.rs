//! The main path of every function, as events for a warm instance, on one emulated world: moto
//! (Organizations, S3, KMS, SNS, DynamoDB, CloudFormation) and the SageMaker/CodePipeline twin.

use std::time::Duration;

use aws_sdk_sagemaker::types::{AppType, ModelApprovalStatus};
use serde_json::{Value, json};
use testbed::cfn::request;
use testbed::fixture::Fixture;
use testbed::harness::{Harness, Invoked};
use testbed::org::SeededOrg;
use testbed::stack::Stack;
use testbed::twin::moto_side::studio_network;

use crate::measure::Event;

pub struct Bed {
    /// Moto, the twin and the project's stack (its alert topic unread, its tables).
    pub fx: Fixture,
    pub org: SeededOrg,
    pub bucket: &'static str,
    pub key_arn: String,
}

impl Bed {
    pub async fn start() -> Bed {
        let fx = Fixture::measured(Stack::project()).await;
        let org = testbed::org::seed(&fx.config).await;
        let bucket = "secure-mlops-models";
        let _ = fx
            .moto
            .s3()
            .await
            .create_bucket()
            .bucket(bucket)
            .send()
            .await;
        let key_arn = aws_sdk_kms::Client::new(&fx.config)
            .create_key()
            .send()
            .await
            .ok()
            .and_then(|k| k.key_metadata)
            .and_then(|m| m.arn)
            .unwrap_or_default();
        Bed {
            fx,
            org,
            bucket,
            key_arn,
        }
    }

    pub fn sagemaker(&self) -> aws_sdk_sagemaker::Client {
        self.fx.twin.sagemaker(&self.fx.config)
    }

    /// A VPC with two subnets and a security group: properties of a VPC-only Studio domain.
    pub async fn domain_props(&self, name: &str, cidr: u8) -> Value {
        let (vpc, subnets, sg) =
            studio_network(&self.fx.moto.endpoint, cidr, &format!("apps-{cidr}")).await;
        json!({"DomainName": name, "VpcId": vpc, "SubnetIds": subnets, "SecurityGroupIds": [sg],
               "DefaultExecutionRoleArn": "arn:aws:iam::123456789012:role/StudioExecution",
               "AppNetworkAccessType": "VpcOnly", "HomeEfsFileSystem": "Delete"})
    }
}

/// A custom-resource event whose response must be SUCCESS (and pass `more`).
fn cfn_event(
    h: &Harness,
    key: &str,
    kind: &str,
    resource_type: &str,
    props: Value,
    physical: Option<&str>,
    more: impl Fn(&Value) -> bool + Send + Sync + 'static,
) -> Event {
    let key_owned = key.to_owned();
    Event {
        payload: request(
            kind,
            &h.response_url(key),
            resource_type,
            "Resource",
            props,
            physical,
            None,
        ),
        class: "request",
        check: Box::new(move |_, h| {
            h.puts(&key_owned)
                .last()
                .is_some_and(|p| p.body["Status"] == "SUCCESS" && more(&p.body))
        }),
    }
}

/// `Custom::OrgAccounts` Create: the staging and production OUs (nested) → their ACTIVE accounts.
pub fn org_accounts(bed: &Bed, h: &Harness, n: usize) -> Vec<Event> {
    let ous = [bed.org.ou("Staging"), bed.org.ou("Production")];
    let expected = bed.org.expected(&["Staging", "Production"], true).join(",");
    (0..n)
        .map(|i| {
            let expected = expected.clone();
            cfn_event(
                h,
                &format!("org-{i}"),
                "Create",
                "Custom::OrgAccounts",
                json!({"OrganizationalUnitIds": ous}),
                None,
                move |b| b["Data"]["AccountIds"] == expected.as_str(),
            )
        })
        .collect()
}

/// `Custom::CrossAccountModelAccess`: a grant for the 34 target accounts, then its Delete.
pub fn cross_account_access(bed: &Bed, h: &Harness, pairs: usize) -> Vec<Event> {
    let accounts = bed.org.expected(&["Staging", "Production"], true);
    let mut out = Vec::new();
    for i in 0..pairs {
        let props = json!({"BucketName": bed.bucket, "KmsKeyArn": bed.key_arn,
                           "AccountIds": accounts, "Prefix": format!("m{i}/")});
        // The physical id (the Sid) is only known after Create: Delete reads it from the response.
        out.push(cfn_event(
            h,
            &format!("grant-{i}"),
            "Create",
            "Custom::CrossAccountModelAccess",
            props.clone(),
            None,
            |_| true,
        ));
        out.push(Event {
            payload: json!({"deferred": i, "props": props}),
            class: "request",
            check: Box::new(|_, _| true),
        });
    }
    out
}

/// Resolves the placeholder Delete events of [`cross_account_access`] once their Create answered.
pub fn resolve_deferred(h: &Harness, event: Event) -> Event {
    let Some(i) = event.payload["deferred"].as_u64() else {
        return event;
    };
    let physical = h
        .puts(&format!("grant-{i}"))
        .last()
        .and_then(|p| p.body["PhysicalResourceId"].as_str().map(str::to_owned))
        .unwrap_or_default();
    cfn_event(
        h,
        &format!("revoke-{i}"),
        "Delete",
        "Custom::CrossAccountModelAccess",
        event.payload["props"].clone(),
        Some(&physical),
        |_| true,
    )
}

/// The mixed CloudTrail events of `events/detective-control` (8 kinds, compliant and not), each
/// with its own event id and resource name, `rounds` times.
pub fn detective_events(rounds: usize, tag: &str) -> Vec<(Value, &'static str)> {
    const NAMES: [(&str, &str); 8] = [
        ("CreateTrainingJob", "trainingJobName"),
        ("CreateProcessingJob", "processingJobName"),
        ("CreateTransformJob", "transformJobName"),
        (
            "CreateHyperParameterTuningJob",
            "hyperParameterTuningJobName",
        ),
        ("CreateModel", "modelName"),
        ("CreateNotebookInstance", "notebookInstanceName"),
        ("CreateEndpointConfig", "endpointConfigName"),
        ("CreateDomain", "domainName"),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/detective-control");
    let mut fixtures: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_owned();
            (name.ends_with("-compliant") || name.ends_with("-noncompliant")).then_some(())?;
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            // The eight kinds both runtimes know (the Python reference has the original rules).
            let event = v["detail"]["eventName"].as_str()?;
            NAMES.iter().any(|(call, _)| *call == event).then_some(())?;
            Some((name, v))
        })
        .collect();
    fixtures.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for round in 0..rounds {
        for (name, fixture) in &fixtures {
            let mut e = fixture.clone();
            let n = out.len();
            e["detail"]["eventID"] = json!(format!("{tag}-{n}"));
            let event_name = e["detail"]["eventName"].as_str().unwrap_or_default();
            if let Some((_, member)) = NAMES.iter().find(|(call, _)| *call == event_name) {
                e["detail"]["requestParameters"][*member] = json!(format!("{tag}-{round}-{n}"));
            }
            let class = if name.ends_with("-noncompliant") {
                "non-compliant"
            } else {
                "compliant"
            };
            out.push((e, class));
        }
    }
    out
}

/// The kinds the control acts on (it describes them first): their non-compliant resources must exist.
const ACTED_ON: [&str; 7] = [
    "CreateTrainingJob",
    "CreateProcessingJob",
    "CreateTransformJob",
    "CreateHyperParameterTuningJob",
    "CreateModel",
    "CreateNotebookInstance",
    "CreateEndpointConfig",
];

/// Makes in the twin what each non-compliant event of an acted-on kind says was created (both
/// runtimes get the same preparation; a compliant event is judged from its request alone).
pub async fn prepare_detective(bed: &Bed, events: &mut [(Value, &'static str)]) {
    for (e, class) in events.iter_mut() {
        let name = e["detail"]["eventName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if *class == "non-compliant" && ACTED_ON.contains(&name.as_str()) {
            let _ = testbed::cloudtrail::replay(&bed.fx.twin.endpoint, e).await;
        }
    }
}

pub fn detective(events: Vec<(Value, &'static str)>) -> Vec<Event> {
    events
        .into_iter()
        .map(|(payload, class)| Event {
            payload,
            class,
            check: Box::new(move |o, _| match o {
                Invoked::Response(v) => match class {
                    "compliant" => v.get("compliant").is_some(),
                    _ => v["findings"].as_array().is_some_and(|f| f.len() == 1),
                },
                _ => false,
            }),
        })
        .collect()
}

/// `Custom::StudioUserProfile`: a profile created in a domain of the twin, then deleted.
pub async fn studio_user_profile(bed: &Bed, h: &Harness, pairs: usize) -> Vec<Event> {
    let sm = bed.sagemaker();
    let props = bed.domain_props("bench-profiles", 31).await;
    let domain = sm
        .create_domain()
        .domain_name("bench-profiles")
        .auth_mode(aws_sdk_sagemaker::types::AuthMode::Iam)
        .vpc_id(props["VpcId"].as_str().unwrap_or_default())
        .set_subnet_ids(Some(
            props["SubnetIds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        ))
        .default_user_settings(
            aws_sdk_sagemaker::types::UserSettings::builder()
                .execution_role("arn:aws:iam::123456789012:role/StudioExecution")
                .build(),
        )
        .send()
        .await
        .ok()
        .and_then(|d| d.domain_arn)
        .and_then(|arn| arn.rsplit('/').next().map(str::to_owned))
        .unwrap_or_default();
    wait_in_service(&sm, &domain).await;
    let mut out = Vec::new();
    for i in 0..pairs {
        let props = json!({"DomainId": domain, "UserProfileName": format!("user-{i}")});
        out.push(cfn_event(
            h,
            &format!("profile-{i}"),
            "Create",
            "Custom::StudioUserProfile",
            props.clone(),
            None,
            |_| true,
        ));
        out.push(cfn_event(
            h,
            &format!("profile-del-{i}"),
            "Delete",
            "Custom::StudioUserProfile",
            props,
            Some(&format!(
                "arn:aws:sagemaker:us-east-1:123456789012:user-profile/{domain}/user-{i}"
            )),
            |_| true,
        ));
    }
    out
}

async fn wait_in_service(sm: &aws_sdk_sagemaker::Client, domain: &str) {
    for _ in 0..200 {
        let status = sm
            .describe_domain()
            .domain_id(domain)
            .send()
            .await
            .ok()
            .and_then(|d| d.status.map(|s| s.as_str().to_owned()));
        if status.as_deref() == Some("InService") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `Custom::StudioDomain`: a VPC-only domain created (until InService) and deleted with its home EFS.
/// The Delete's physical id is the domain id from the Create's answer.
pub async fn studio_domain(bed: &Bed, h: &Harness, pairs: usize) -> Vec<Event> {
    let mut out = Vec::new();
    for i in 0..pairs {
        let props = bed.domain_props(&format!("bench-{i}"), 40 + i as u8).await;
        out.push(cfn_event(
            h,
            &format!("domain-{i}"),
            "Create",
            "Custom::StudioDomain",
            props.clone(),
            None,
            |_| true,
        ));
        out.push(Event {
            payload: json!({"deferred-domain": i, "props": props}),
            class: "request",
            check: Box::new(|_, _| true),
        });
    }
    out
}

pub fn resolve_deferred_domain(h: &Harness, event: Event) -> Event {
    let Some(i) = event.payload["deferred-domain"].as_u64() else {
        return event;
    };
    let physical = h
        .puts(&format!("domain-{i}"))
        .last()
        .and_then(|p| p.body["PhysicalResourceId"].as_str().map(str::to_owned))
        .unwrap_or_default();
    cfn_event(
        h,
        &format!("domain-del-{i}"),
        "Delete",
        "Custom::StudioDomain",
        event.payload["props"].clone(),
        Some(&physical),
        |_| true,
    )
}

/// Deleting a domain whose users run `apps` apps (each DeleteApp answers in 0.4 s; an app takes 1 s
/// to go): wall time from the Delete request to CloudFormation's answer.
pub async fn domain_delete_with_apps(bed: &Bed, h: &Harness, apps: usize, cidr: u8) -> f64 {
    bed.fx.twin.set_duration("latency.DeleteApp", 0.4);
    bed.fx.twin.set_duration("app.delete", 1.0);
    let props = bed.domain_props(&format!("apps-{apps}"), cidr).await;
    let key = format!("apps-{apps}");
    h.invoke_async(&request(
        "Create",
        &h.response_url(&key),
        "Custom::StudioDomain",
        "Domain",
        props.clone(),
        None,
        None,
    ));
    let created = h.wait_for_response(&key, Duration::from_secs(120)).await;
    let id = created
        .last()
        .and_then(|p| p.body["PhysicalResourceId"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let sm = bed.sagemaker();
    let users = apps.div_ceil(4);
    for u in 0..users {
        let _ = sm
            .create_user_profile()
            .domain_id(&id)
            .user_profile_name(format!("u{u}"))
            .send()
            .await;
    }
    for a in 0..apps {
        let _ = sm
            .create_app()
            .domain_id(&id)
            .user_profile_name(format!("u{}", a % users))
            .app_type(AppType::KernelGateway)
            .app_name(format!("k{a}"))
            .send()
            .await;
    }
    let key = format!("apps-del-{apps}");
    let started = std::time::Instant::now();
    h.invoke_async(&request(
        "Delete",
        &h.response_url(&key),
        "Custom::StudioDomain",
        "Domain",
        props,
        Some(&id),
        None,
    ));
    let answer = h.wait_for_response(&key, Duration::from_secs(300)).await;
    let took = started.elapsed().as_secs_f64();
    bed.fx.twin.set_duration("latency.DeleteApp", 0.0);
    bed.fx.twin.set_duration("app.delete", 0.0);
    match answer.last() {
        Some(p) if p.body["Status"] == "SUCCESS" => took,
        _ => f64::NAN,
    }
}

/// `model-approval`: each event approves the first version of its own group (`bench-<i>`) → one
/// pipeline start each. Returns the events and the `MODEL_PACKAGE_GROUPS` value.
pub async fn model_approval(bed: &Bed, n: usize) -> (Vec<Event>, String) {
    let sm = bed.sagemaker();
    let cp = bed.fx.twin.codepipeline(&bed.fx.config);
    testbed::deployment::create_pipeline(&cp, "secure-mlops-stackset-deploy", "artifacts", false)
        .await;
    let mut out = Vec::new();
    let mut groups = Vec::new();
    for i in 0..n {
        let group = format!("bench-{i}");
        let _ = sm
            .create_model_package_group()
            .model_package_group_name(&group)
            .send()
            .await;
        let arn = testbed::deployment::register_version(
            &sm,
            &group,
            &format!("s3://secure-mlops-models/{group}/model.tar.gz"),
            ModelApprovalStatus::Approved,
        )
        .await;
        let payload = json!({
            "version": "0", "id": format!("bench-approval-{i}"),
            "detail-type": "SageMaker Model Package State Change", "source": "aws.sagemaker",
            "account": "123456789012", "time": "2026-11-23T10:00:00Z", "region": "us-east-1",
            "resources": [arn],
            "detail": {"ModelPackageGroupName": group, "ModelPackageVersion": 1,
                       "ModelPackageArn": arn, "ModelApprovalStatus": "Approved",
                       "CreationTime": 1_700_000_000_000u64}
        });
        groups.push(group);
        out.push(Event {
            payload,
            class: "approval",
            check: Box::new(|o, _| matches!(o, Invoked::Response(v) if v["action"] == "started")),
        });
    }
    (out, groups.join(","))
}
