//! `studio-domain` and `studio-user-profile` through the harness: the real binaries against the twin
//! (SageMaker) and moto (VPC, subnets, EFS, security groups).

use std::time::{Duration, Instant};

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::AppType;
use serde_json::{Value, json};
use testbed::cfn::request;
use testbed::fixture::Fixture;
use testbed::harness::Harness;
use testbed::twin::moto_side::{ec2, efs, studio_network};

struct Bed {
    domain_fn: Harness,
    profile_fn: Harness,
    sm: Client,
    fx: Fixture,
}

async fn bed_with_timeout(timeout: Duration) -> Bed {
    let fx = Fixture::start().await;
    for key in [
        "domain.create",
        "domain.update",
        "domain.delete",
        "profile.create",
        "profile.update",
        "profile.delete",
        "app.create",
        "app.delete",
        "space.create",
        "space.delete",
    ] {
        fx.twin.set_duration(key, 0.3);
    }
    let start = |logical: &str| {
        fx.function(logical)
            .timeout(timeout)
            .env("SECURE_MLOPS_POLL_BASE_MS", "100")
    };
    let domain_fn = Harness::start(start("StudioDomainFunction")).await;
    let profile_fn = Harness::start(start("StudioUserProfileFunction")).await;
    Bed {
        domain_fn,
        profile_fn,
        sm: fx.sagemaker(),
        fx,
    }
}

/// Waits until `done` holds, at most 15 s (what SageMaker does after a call takes a moment).
async fn eventually<F, Fut>(what: &str, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(Instant::now() < deadline, "not within 15 s: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn bed() -> Bed {
    bed_with_timeout(Duration::from_secs(30)).await
}

impl Bed {
    /// A VPC with two subnets and one security group; returns domain properties for it.
    async fn network(&self, cidr: u8) -> Value {
        let (vpc, subnets, sg) =
            studio_network(&self.fx.moto.endpoint, cidr, &format!("studio-apps-{cidr}")).await;
        json!({"DomainName": "ml-studio", "VpcId": vpc, "SubnetIds": subnets, "SecurityGroupIds": [sg],
               "DefaultExecutionRoleArn": "arn:aws:iam::123456789012:role/StudioExecution",
               "Tags": [{"Key": "CostCenter", "Value": "ml"}]})
    }

    /// Sends `event` (built for `key`'s ResponseURL) and returns the one response.
    async fn send(&self, h: &Harness, key: &str, event: Value) -> Value {
        h.invoke_async(&event);
        let r = h.wait_for_response(key, Duration::from_secs(60)).await;
        assert_eq!(r.len(), 1, "exactly one response for {key}: {r:#?}");
        r[0].body.clone()
    }

    async fn domain(
        &self,
        key: &str,
        kind: &str,
        props: Value,
        physical: Option<&str>,
        old: Option<Value>,
    ) -> Value {
        let h = &self.domain_fn;
        let event = request(
            kind,
            &h.response_url(key),
            "Custom::StudioDomain",
            "Domain",
            props,
            physical,
            old,
        );
        self.send(h, key, event).await
    }

    async fn profile(
        &self,
        key: &str,
        kind: &str,
        logical: &str,
        props: Value,
        physical: Option<&str>,
        old: Option<Value>,
    ) -> Value {
        let h = &self.profile_fn;
        let event = request(
            kind,
            &h.response_url(key),
            "Custom::StudioUserProfile",
            logical,
            props,
            physical,
            old,
        );
        self.send(h, key, event).await
    }

    async fn efs_ids(&self) -> Vec<String> {
        let v = efs(
            &self.fx.moto.endpoint,
            reqwest::Method::GET,
            "file-systems",
            None,
        )
        .await
        .unwrap_or(Value::Null);
        v["FileSystems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["FileSystemId"].as_str().map(str::to_owned))
            .collect()
    }

    async fn group_names(&self, vpc: &str) -> String {
        ec2(
            &self.fx.moto.endpoint,
            &[
                ("Action", "DescribeSecurityGroups"),
                ("Filter.1.Name", "vpc-id"),
                ("Filter.1.Value.1", vpc),
            ],
        )
        .await
        .unwrap()
    }

    /// Starts a user app, a private space owned by `user` with an app, as Studio users do.
    async fn use_studio(&self, domain: &str, user: &str) {
        use aws_sdk_sagemaker::types::{OwnershipSettings, SharingType, SpaceSharingSettings};
        self.sm
            .create_app()
            .domain_id(domain)
            .user_profile_name(user)
            .app_type(AppType::JupyterServer)
            .app_name("default")
            .send()
            .await
            .unwrap();
        let space = format!("{user}-space");
        self.sm
            .create_space()
            .domain_id(domain)
            .space_name(&space)
            .ownership_settings(
                OwnershipSettings::builder()
                    .owner_user_profile_name(user)
                    .build(),
            )
            .space_sharing_settings(
                SpaceSharingSettings::builder()
                    .sharing_type(SharingType::Private)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        self.sm
            .create_app()
            .domain_id(domain)
            .space_name(&space)
            .app_type(AppType::JupyterLab)
            .app_name("lab")
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn domain_and_profiles_create_update_and_tear_down_with_apps_running() {
    let b = bed().await;
    let props = b.network(1).await;
    let created = b
        .domain("create", "Create", props.clone(), None, None)
        .await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    let domain_id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    for key in ["DomainId", "DomainArn", "Url", "HomeEfsFileSystemId"] {
        assert!(
            created["Data"][key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {created}"
        );
    }
    let home = created["Data"]["HomeEfsFileSystemId"]
        .as_str()
        .unwrap()
        .to_owned();
    let d =
        b.sm.describe_domain()
            .domain_id(&domain_id)
            .send()
            .await
            .unwrap();
    assert_eq!(
        d.app_network_access_type().map(|a| a.as_str()),
        Some("VpcOnly"),
        "secure by default"
    );

    let mut profiles = Vec::new();
    for user in ["alice", "bob"] {
        let p = json!({"DomainId": domain_id, "UserProfileName": user});
        let r = b
            .profile(&format!("p-{user}"), "Create", user, p, None, None)
            .await;
        assert_eq!(r["Status"], "SUCCESS", "{r}");
        assert_eq!(r["Data"]["UserProfileName"], user);
        assert!(
            r["PhysicalResourceId"]
                .as_str()
                .unwrap()
                .ends_with(&format!("user-profile/{domain_id}/{user}"))
        );
        assert!(
            !r["Data"]["HomeEfsFileSystemUid"]
                .as_str()
                .unwrap()
                .is_empty()
        );
        profiles.push(r["PhysicalResourceId"].as_str().unwrap().to_owned());
    }
    // Update in place: a profile's role, the domain's network access.
    let old = json!({"DomainId": domain_id, "UserProfileName": "alice"});
    let new = json!({"DomainId": domain_id, "UserProfileName": "alice", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/Alice"});
    let r = b
        .profile(
            "p-upd",
            "Update",
            "alice",
            new.clone(),
            Some(&profiles[0]),
            Some(old),
        )
        .await;
    assert_eq!(
        (r["Status"].as_str(), r["PhysicalResourceId"].as_str()),
        (Some("SUCCESS"), Some(profiles[0].as_str())),
        "{r}"
    );
    let mut updated = props.clone();
    updated["AppNetworkAccessType"] = json!("PublicInternetOnly");
    let r = b
        .domain(
            "upd",
            "Update",
            updated.clone(),
            Some(&domain_id),
            Some(props.clone()),
        )
        .await;
    assert_eq!(
        (r["Status"].as_str(), r["PhysicalResourceId"].as_str()),
        (Some("SUCCESS"), Some(domain_id.as_str())),
        "{r}"
    );
    assert!(b.fx.twin.operations().contains(&"UpdateDomain".to_owned()));

    // Users at work: apps and spaces everywhere.
    b.use_studio(&domain_id, "alice").await;
    b.use_studio(&domain_id, "bob").await;

    // Delete alice: her apps and private space go, then her profile.
    let r = b
        .profile("p-del", "Delete", "alice", new, Some(&profiles[0]), None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(
        b.sm.describe_user_profile()
            .domain_id(&domain_id)
            .user_profile_name("alice")
            .send()
            .await
            .is_err()
    );
    assert!(
        b.sm.describe_space()
            .domain_id(&domain_id)
            .space_name("alice-space")
            .send()
            .await
            .is_err()
    );

    // Delete the domain with bob still working: everything goes, the home EFS stays (Retain).
    let r = b
        .domain("del", "Delete", updated, Some(&domain_id), None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], domain_id.as_str());
    let e =
        b.sm.describe_domain()
            .domain_id(&domain_id)
            .send()
            .await
            .unwrap_err();
    assert_eq!(
        e.into_service_error().meta().code(),
        Some("ResourceNotFound")
    );
    assert!(
        b.sm.list_user_profiles()
            .domain_id_equals(&domain_id)
            .send()
            .await
            .unwrap()
            .user_profiles()
            .is_empty()
    );
    assert!(
        b.efs_ids().await.contains(&home),
        "Retain keeps the users' home file system"
    );
    // Deleting it again (CloudFormation retry): SUCCESS without touching anything.
    let r = b
        .domain("again", "Delete", props.clone(), Some(&domain_id), None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    // bob's profile resource, deleted after the domain in a stack teardown, is already gone: SUCCESS.
    let r = b
        .profile(
            "p-bob-del",
            "Delete",
            "bob",
            json!({"DomainId": domain_id, "UserProfileName": "bob"}),
            Some(&profiles[1]),
            None,
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    // Each custom resource's responses are metrics (CloudWatch EMF in the logs).
    for h in [&b.domain_fn, &b.profile_fn] {
        let docs = h.metric("Responses", "SUCCESS");
        assert!(
            docs.iter().any(|d| d["RequestType"] == "Delete"),
            "{:#?}",
            h.metrics()
        );
    }
}

#[tokio::test]
async fn delete_retention_removes_efs_mount_targets_and_both_nfs_groups() {
    let b = bed().await;
    let mut props = b.network(2).await;
    props["HomeEfsFileSystem"] = json!("Delete");
    let created = b
        .domain("create", "Create", props.clone(), None, None)
        .await;
    let domain_id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let home = created["Data"]["HomeEfsFileSystemId"]
        .as_str()
        .unwrap()
        .to_owned();
    let vpc = props["VpcId"].as_str().unwrap().to_owned();
    assert!(
        b.group_names(&vpc)
            .await
            .contains(&format!("security-group-for-inbound-nfs-{domain_id}"))
    );
    b.sm.create_user_profile()
        .domain_id(&domain_id)
        .user_profile_name("carol")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    b.use_studio(&domain_id, "carol").await;

    let r = b
        .domain("del", "Delete", props, Some(&domain_id), None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(!b.efs_ids().await.contains(&home), "the home EFS is gone");
    let mts = efs(
        &b.fx.moto.endpoint,
        reqwest::Method::GET,
        &format!("mount-targets?FileSystemId={home}"),
        None,
    )
    .await
    .unwrap();
    assert!(
        mts["MountTargets"].as_array().is_none_or(|a| a.is_empty()),
        "{mts}"
    );
    let groups = b.group_names(&vpc).await;
    assert!(
        !groups.contains("-nfs-"),
        "both NFS security groups are gone: {groups}"
    );
    assert!(
        groups.contains("studio-apps-2"),
        "the user's own security group is untouched"
    );
}

#[tokio::test]
async fn replacement_resend_and_failures() {
    let b = bed().await;
    let props = b.network(3).await;
    let created = b
        .domain("create", "Create", props.clone(), None, None)
        .await;
    let first = created["PhysicalResourceId"].as_str().unwrap().to_owned();

    // A resent Create (same stack and logical id) adopts the domain instead of making a second one.
    let again = b
        .domain("resent", "Create", props.clone(), None, None)
        .await;
    assert_eq!(again["PhysicalResourceId"], first.as_str());
    assert_eq!(b.sm.list_domains().send().await.unwrap().domains().len(), 1);

    // Changing the VPC cannot happen in place: a new domain, a new physical id; CloudFormation then
    // deletes the old one.
    let moved = b.network(4).await;
    let r = b
        .domain(
            "replace",
            "Update",
            moved.clone(),
            Some(&first),
            Some(props.clone()),
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let second = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(b.sm.list_domains().send().await.unwrap().domains().len(), 2);
    let r = b
        .domain("cleanup-old", "Delete", props.clone(), Some(&first), None)
        .await;
    assert_eq!(r["Status"], "SUCCESS");
    assert!(
        b.sm.describe_domain()
            .domain_id(&first)
            .send()
            .await
            .is_err()
    );
    assert!(
        b.sm.describe_domain()
            .domain_id(&second)
            .send()
            .await
            .is_ok(),
        "the new domain stays"
    );

    // SageMaker fails the creation: FAILED with SageMaker's reason, and the domain's id so that
    // CloudFormation's Delete cleans it up.
    b.fx.twin.set_outcome("domain.create", "Failed");
    let mut other = b.network(5).await;
    other["DomainName"] = json!("doomed");
    let r = b
        .domain("failed", "Create", other.clone(), None, None)
        .await;
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"]
            .as_str()
            .unwrap()
            .contains("is Failed: The twin was told"),
        "{r}"
    );
    let failed_id = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(failed_id.starts_with("d-"), "{failed_id}");
    let r = b
        .domain("failed-del", "Delete", other, Some(&failed_id), None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");

    // SageMaker cannot delete: FAILED with the reason, no endless polling.
    b.fx.twin.set_outcome("domain.delete", "Delete_Failed");
    let r = b
        .domain("del-failed", "Delete", moved, Some(&second), None)
        .await;
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"].as_str().unwrap().contains("Delete_Failed"),
        "{r}"
    );
}

#[tokio::test]
async fn slow_creation_continues_in_a_new_invocation_and_throttling_is_absorbed() {
    let b = bed_with_timeout(Duration::from_secs(3)).await;
    b.fx.twin.set_duration("domain.create", 5.0);
    b.fx.twin
        .inject("DescribeDomain", testbed::twin::Fault::Throttle, 2);
    let props = b.network(6).await;
    let started = Instant::now();
    let r = b.domain("slow", "Create", props, None, None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert!(
        b.domain_fn.invoke_api_calls() >= 1,
        "handed over to a continuation"
    );
    // A slow profile too: its continuation is sealed and accepted the same way.
    b.fx.twin.set_duration("profile.create", 5.0);
    let domain = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    let user = json!({"DomainId": domain, "UserProfileName": "slow"});
    let r = b
        .profile("slow-user", "Create", "Slow", user, None, None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(
        b.profile_fn.invoke_api_calls() >= 1,
        "handed over to a continuation"
    );
    assert!(
        b.domain_fn
            .invocations()
            .iter()
            .all(|i| matches!(i.outcome, testbed::harness::Invoked::Response(_))),
        "no invocation ran into its timeout"
    );
}

#[tokio::test]
async fn bad_properties_fail_before_any_aws_call() {
    let b = bed().await;
    let role = "arn:aws:iam::123456789012:role/Exec";
    let r = b.domain("bad", "Create", json!({"DomainName": "x", "VpcId": "vpc-1", "SubnetIds": [], "DefaultExecutionRoleArn": role}), None, None).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(r["Reason"].as_str().unwrap().contains("VpcId"), "{r}");
    let r = b.domain("bad2", "Create", json!({"DomainName": "x", "VpcId": "vpc-0a1b2c3d", "SubnetIds": "subnet-0a1b2c3d", "DefaultExecutionRoleArn": role}), None, None).await;
    assert!(
        r["Reason"]
            .as_str()
            .unwrap()
            .contains("SecurityGroupIds: a VpcOnly domain"),
        "{r}"
    );
    let r = b
        .profile(
            "bad3",
            "Create",
            "P",
            json!({"DomainId": "d-abcdefghij12", "UserProfileName": "a_b"}),
            None,
            None,
        )
        .await;
    assert!(
        r["Reason"].as_str().unwrap().contains("UserProfileName"),
        "{r}"
    );
    // A lifecycle configuration ARN that is not one, deep in the settings: named, no SageMaker call.
    let mut props = json!({"DomainName": "x", "VpcId": "vpc-0a1b2c3d", "SubnetIds": "subnet-0a1b2c3d",
        "DefaultExecutionRoleArn": role, "SecurityGroupIds": ["sg-0a1b2c3d"]});
    props["DefaultUserSettings"] = json!({"CodeEditorAppSettings": {
        "LifecycleConfigArns": ["arn:aws:sagemaker:us-east-1:123456789012:notebook-instance-lifecycle-config/x"]}});
    let r = b.domain("bad4", "Create", props, None, None).await;
    assert!(
        r["Reason"].as_str().unwrap().contains(
            "DefaultUserSettings.CodeEditorAppSettings.LifecycleConfigArns[0]: `arn:aws:sagemaker:us-east-1:123456789012:notebook-instance-lifecycle-config/x` is not a Studio lifecycle configuration ARN"
        ),
        "{r}"
    );
    assert!(b.fx.twin.calls().is_empty(), "{:?}", b.fx.twin.operations());
}

/// The settings platform teams set, in `AWS::SageMaker::Domain`'s shapes (CloudFormation's strings
/// for numbers): default user settings with a lifecycle configuration, a default instance type, idle
/// shutdown and a custom image; default space settings; domain settings. SageMaker (the twin) shows
/// them in `DescribeDomain`; a change of `DefaultUserSettings` is made in place (same physical id); a
/// user profile takes `UserSettings` likewise; an instance type SageMaker does not know is SageMaker's
/// `ValidationException`, in the `Reason`.
#[tokio::test]
async fn platform_settings_reach_sagemaker_and_update_in_place() {
    let b = bed().await;
    let lcc = "arn:aws:sagemaker:us-east-1:123456789012:studio-lifecycle-config/idle-checker";
    let mut props = b.network(30).await;
    props["DefaultUserSettings"] = json!({
        "JupyterLabAppSettings": {
            "DefaultResourceSpec": {"InstanceType": "ml.t3.medium", "LifecycleConfigArn": lcc},
            "LifecycleConfigArns": [lcc],
            "CustomImages": [{"AppImageConfigName": "team-conda", "ImageName": "team-image", "ImageVersionNumber": "2"}],
            "AppLifecycleManagement": {"IdleSettings": {"LifecycleManagement": "ENABLED", "IdleTimeoutInMinutes": "120"}}
        },
        "SpaceStorageSettings": {"DefaultEbsStorageSettings": {"DefaultEbsVolumeSizeInGb": "5", "MaximumEbsVolumeSizeInGb": "50"}},
        "StudioWebPortal": "ENABLED"
    });
    props["DefaultSpaceSettings"] = json!({
        "ExecutionRole": "arn:aws:iam::123456789012:role/StudioExecution",
        "JupyterLabAppSettings": {"DefaultResourceSpec": {"InstanceType": "ml.t3.large"}}
    });
    props["DomainSettings"] = json!({"DockerSettings": {"EnableDockerAccess": "ENABLED"}});
    props["TagPropagation"] = json!("ENABLED");
    let r = b
        .domain("create", "Create", props.clone(), None, None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let id = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    let d = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    let users = d.default_user_settings().unwrap();
    let lab = users.jupyter_lab_app_settings().unwrap();
    let spec = lab.default_resource_spec().unwrap();
    assert_eq!(
        spec.instance_type().map(|t| t.as_str()),
        Some("ml.t3.medium")
    );
    assert_eq!(spec.lifecycle_config_arn(), Some(lcc));
    assert_eq!(lab.lifecycle_config_arns(), [lcc]);
    assert_eq!(lab.custom_images()[0].image_version_number(), Some(2));
    let idle = lab
        .app_lifecycle_management()
        .unwrap()
        .idle_settings()
        .unwrap();
    assert_eq!(idle.idle_timeout_in_minutes(), Some(120));
    assert_eq!(
        users.execution_role(),
        Some("arn:aws:iam::123456789012:role/StudioExecution"),
        "DefaultExecutionRoleArn joins the settings"
    );
    assert_eq!(
        users
            .space_storage_settings()
            .and_then(|s| s.default_ebs_storage_settings())
            .and_then(|e| e.maximum_ebs_volume_size_in_gb()),
        Some(50)
    );
    let space = d.default_space_settings().unwrap();
    assert_eq!(
        space
            .jupyter_lab_app_settings()
            .and_then(|l| l.default_resource_spec())
            .and_then(|s| s.instance_type())
            .map(|t| t.as_str()),
        Some("ml.t3.large")
    );
    assert_eq!(
        d.domain_settings()
            .and_then(|s| s.docker_settings())
            .and_then(|s| s.enable_docker_access())
            .map(|e| e.as_str()),
        Some("ENABLED")
    );
    assert_eq!(d.tag_propagation().map(|t| t.as_str()), Some("ENABLED"));

    // In place: a longer idle timeout, Docker off.
    let mut changed = props.clone();
    changed["DefaultUserSettings"]["JupyterLabAppSettings"]["AppLifecycleManagement"]["IdleSettings"]
        ["IdleTimeoutInMinutes"] = json!("240");
    changed["DomainSettings"]["DockerSettings"]["EnableDockerAccess"] = json!("DISABLED");
    let r = b
        .domain(
            "update",
            "Update",
            changed.clone(),
            Some(&id),
            Some(props.clone()),
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], id.as_str(), "updated in place");
    let d = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    let idle = d
        .default_user_settings()
        .and_then(|u| u.jupyter_lab_app_settings())
        .and_then(|l| l.app_lifecycle_management())
        .and_then(|a| a.idle_settings())
        .unwrap();
    assert_eq!(idle.idle_timeout_in_minutes(), Some(240));
    assert_eq!(
        d.domain_settings()
            .and_then(|s| s.docker_settings())
            .and_then(|s| s.enable_docker_access())
            .map(|e| e.as_str()),
        Some("DISABLED")
    );
    let update =
        b.fx.twin
            .calls()
            .into_iter()
            .find(|c| c.operation == "UpdateDomain")
            .expect("UpdateDomain");
    assert!(
        update.params.get("DomainSettingsForUpdate").is_some(),
        "UpdateDomain takes DomainSettingsForUpdate: {}",
        update.params
    );

    // A user profile with its own settings.
    let r = b
        .profile(
            "alice",
            "Create",
            "Alice",
            json!({"DomainId": id, "UserProfileName": "alice", "UserSettings": {
                "JupyterLabAppSettings": {"DefaultResourceSpec": {"InstanceType": "ml.g5.xlarge"}},
                "CustomPosixUserConfig": {"Uid": "200001", "Gid": "1001"}}}),
            None,
            None,
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let p =
        b.sm.describe_user_profile()
            .domain_id(&id)
            .user_profile_name("alice")
            .send()
            .await
            .unwrap();
    let settings = p.user_settings().unwrap();
    assert_eq!(
        settings.custom_posix_user_config().unwrap().uid(),
        Some(200001)
    );
    assert_eq!(
        settings
            .jupyter_lab_app_settings()
            .and_then(|l| l.default_resource_spec())
            .and_then(|s| s.instance_type())
            .map(|t| t.as_str()),
        Some("ml.g5.xlarge")
    );

    // An instance type of the right form that SageMaker does not have: SageMaker's answer.
    let r = b
        .profile(
            "bob",
            "Create",
            "Bob",
            json!({"DomainId": id, "UserProfileName": "bob", "UserSettings": {
                "JupyterLabAppSettings": {"DefaultResourceSpec": {"InstanceType": "ml.t3.colossal"}}}}),
            None,
            None,
        )
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    let reason = r["Reason"].as_str().unwrap();
    assert!(
        reason.contains("ValidationException") && reason.contains("ml.t3.colossal"),
        "{reason}"
    );
}

/// A domain's running apps are deleted concurrently, not one after another: with each DeleteApp call
/// taking 0.4 s in the twin, all N calls are in flight at once up to a bound (a domain with hundreds
/// of users must not be throttled into a failed Delete). (Wall times are printed, not asserted:
/// `make bench` measures them.)
#[tokio::test]
async fn app_deletion_is_concurrent_and_bounded() {
    let mut times = Vec::new();
    let bound = shared::studio::MAX_CONCURRENT_DELETES;
    for apps in [1usize, 8, bound * 2 + 3] {
        let b = bed().await;
        b.fx.twin.set_duration("latency.DeleteApp", 0.4);
        b.fx.twin.set_duration("app.delete", 1.0);
        let props = b.network(7).await;
        let created = b.domain("c", "Create", props.clone(), None, None).await;
        let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
        b.sm.create_user_profile()
            .domain_id(&id)
            .user_profile_name("u")
            .send()
            .await
            .unwrap();
        for i in 0..apps {
            b.sm.create_app()
                .domain_id(&id)
                .user_profile_name("u")
                .app_type(AppType::KernelGateway)
                .app_name(format!("k{i}"))
                .send()
                .await
                .unwrap();
        }
        let started = Instant::now();
        let r = b.domain("d", "Delete", props, Some(&id), None).await;
        assert_eq!(r["Status"], "SUCCESS");
        times.push(started.elapsed().as_secs_f64());
        assert_eq!(
            b.fx.twin.max_in_flight("DeleteApp"),
            apps.min(bound),
            "every app's DeleteApp in flight at once, up to {bound}"
        );
        let deletes =
            b.fx.twin
                .operations()
                .iter()
                .filter(|o| *o == "DeleteApp")
                .count();
        assert_eq!(deletes, apps, "each app deleted once");
    }
    let ratio = times[1] / times[0];
    println!(
        "domain delete: 1 app {:.2} s, 8 apps {:.2} s (ratio {ratio:.2}), {} apps {:.2} s",
        times[0],
        times[1],
        bound * 2 + 3,
        times[2]
    );
}

/// A request naming a domain or profile that this stack resource did not make — a forged Delete, or
/// another logical resource's id by mistake — fails with a Reason naming the owner tag and touches
/// nothing: the domain, its profile and its home file system stay. The owner's own requests still
/// work, and a Delete of something already gone is SUCCESS.
#[tokio::test]
async fn foreign_domains_and_profiles_are_never_updated_or_deleted() {
    let b = bed().await;
    let mut props = b.network(9).await;
    props["HomeEfsFileSystem"] = json!("Delete");
    let created = b.domain("c", "Create", props.clone(), None, None).await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let user = json!({"DomainId": id, "UserProfileName": "alice"});
    let alice = b
        .profile("pc", "Create", "Alice", user.clone(), None, None)
        .await;
    assert_eq!(alice["Status"], "SUCCESS", "{alice}");
    let alice_arn = alice["PhysicalResourceId"].as_str().unwrap().to_owned();
    let calls_before = b.fx.twin.operations().len();

    let as_other = |key: &str, kind: &str, kind_type: &str, props: Value, physical: &str| {
        let h = if kind_type == "Custom::StudioDomain" {
            &b.domain_fn
        } else {
            &b.profile_fn
        };
        request(
            kind,
            &h.response_url(key),
            kind_type,
            "SomeoneElse",
            props,
            Some(physical),
            None,
        )
    };
    let r = b
        .send(
            &b.domain_fn,
            "fd",
            as_other("fd", "Delete", "Custom::StudioDomain", props.clone(), &id),
        )
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    let reason = r["Reason"].as_str().unwrap();
    assert!(
        reason.contains("secure-mlops:owner")
            && reason.contains("SomeoneElse")
            && reason.contains(&id),
        "{reason}"
    );
    let mut retagged = props.clone();
    retagged["Tags"] = json!([{"Key": "CostCenter", "Value": "stolen"}]);
    let r = b
        .send(
            &b.domain_fn,
            "fu",
            as_other("fu", "Update", "Custom::StudioDomain", retagged, &id),
        )
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    let r = b
        .send(
            &b.profile_fn,
            "fp",
            as_other(
                "fp",
                "Delete",
                "Custom::StudioUserProfile",
                user.clone(),
                &alice_arn,
            ),
        )
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert!(
        r["Reason"].as_str().unwrap().contains("user profile alice"),
        "{r}"
    );

    let touched: Vec<String> = b.fx.twin.operations()[calls_before..]
        .iter()
        .filter(|o| !o.starts_with("Describe") && !o.starts_with("List"))
        .cloned()
        .collect();
    assert!(
        touched.is_empty(),
        "only reads after the refusals: {touched:?}"
    );
    let d = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    assert_eq!(d.status().map(|s| s.as_str()), Some("InService"));
    assert!(
        !b.efs_ids().await.is_empty(),
        "the home file system is still there"
    );
    b.sm.describe_user_profile()
        .domain_id(&id)
        .user_profile_name("alice")
        .send()
        .await
        .expect("alice is still there");

    // The owners' own Deletes work, and once gone a Delete is SUCCESS whoever sends it.
    let r = b
        .profile(
            "pd",
            "Delete",
            "Alice",
            user.clone(),
            Some(&alice_arn),
            None,
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let r = b
        .domain("d", "Delete", props.clone(), Some(&id), None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let r = b
        .send(
            &b.profile_fn,
            "gone",
            as_other(
                "gone",
                "Delete",
                "Custom::StudioUserProfile",
                user,
                &alice_arn,
            ),
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
}

/// A Delete whose properties no longer parse (a later version tightened validation) still deletes
/// the domain its physical id names, reading the VPC from SageMaker and keeping the users' data
/// unless `HomeEfsFileSystem` still reads `Delete`.
#[tokio::test]
async fn a_delete_with_properties_that_no_longer_parse_still_deletes() {
    let b = bed().await;
    let props = b.network(10).await;
    let created = b.domain("c", "Create", props.clone(), None, None).await;
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let mut drifted = props.clone();
    drifted["RemovedInANewerVersion"] = json!("x");
    drifted["SubnetIds"] = json!("not-a-subnet");
    let r = b.domain("d", "Delete", drifted, Some(&id), None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let gone = b.sm.describe_domain().domain_id(&id).send().await;
    assert!(gone.is_err(), "the domain is deleted");
    assert!(
        !b.efs_ids().await.is_empty(),
        "Retain by default: the users' data stays"
    );
}

/// CloudFormation's rollback after a replacement that failed: the Update to another VPC creates a new
/// domain that goes `Failed` → FAILED, and the half-made domain is deleted; the rollback Update (old
/// properties back) ends on the original domain — same physical id, its user still there, no third
/// domain — instead of adopting the failed one.
#[tokio::test]
async fn a_failed_replacement_rolls_back_to_the_original_domain_with_its_users() {
    let b = bed().await;
    let original = b.network(11).await;
    let created = b.domain("c", "Create", original.clone(), None, None).await;
    let d1 = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let user = json!({"DomainId": d1, "UserProfileName": "alice"});
    let r = b.profile("pc", "Create", "Alice", user, None, None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");

    let moved = b.network(12).await;
    b.fx.twin.set_outcome("domain.create", "Failed");
    let r = b
        .domain(
            "u",
            "Update",
            moved.clone(),
            Some(&d1),
            Some(original.clone()),
        )
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert_eq!(
        r["PhysicalResourceId"],
        d1.as_str(),
        "a failed Update keeps its id"
    );
    let reason = r["Reason"].as_str().unwrap();
    assert!(
        reason.contains("is Failed") && reason.contains("being deleted"),
        "{reason}"
    );

    let r = b
        .domain("rb", "Update", original, Some(&d1), Some(moved))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        r["PhysicalResourceId"],
        d1.as_str(),
        "the rollback ends on the original"
    );
    let creates =
        b.fx.twin
            .operations()
            .iter()
            .filter(|o| *o == "CreateDomain")
            .count();
    assert_eq!(creates, 2, "no third domain");
    let d = b.sm.describe_domain().domain_id(&d1).send().await.unwrap();
    assert_eq!(d.status().map(|s| s.as_str()), Some("InService"));
    b.sm.describe_user_profile()
        .domain_id(&d1)
        .user_profile_name("alice")
        .send()
        .await
        .expect("the original domain keeps its user");
    eventually("the failed replacement is deleted", || async {
        let domains = b.sm.list_domains().send().await.unwrap();
        let ids: Vec<String> = domains
            .domains()
            .iter()
            .filter_map(|d| d.domain_id().map(str::to_owned))
            .collect();
        ids == [d1.clone()]
    })
    .await;
}

/// A resent Create never adopts a domain of its own that went `Failed`: it makes a new one.
#[tokio::test]
async fn a_failed_domain_is_never_adopted() {
    let b = bed().await;
    let props = b.network(13).await;
    b.fx.twin.set_outcome("domain.create", "Failed");
    let r = b.domain("c1", "Create", props.clone(), None, None).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    let failed = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    let r = b.domain("c2", "Create", props, None, None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_ne!(
        r["PhysicalResourceId"],
        failed.as_str(),
        "a new domain, not the failed one"
    );
}

/// The same rollback for a user profile: a rename whose new profile goes `Failed` → FAILED and the
/// failed profile is deleted; the rollback Update ends on the original profile, in place.
#[tokio::test]
async fn a_failed_profile_replacement_rolls_back_to_the_original_profile() {
    let b = bed().await;
    let props = b.network(14).await;
    let created = b.domain("c", "Create", props, None, None).await;
    let domain = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let alice = json!({"DomainId": domain, "UserProfileName": "alice"});
    let bob = json!({"DomainId": domain, "UserProfileName": "bob"});
    let r = b
        .profile("pc", "Create", "User", alice.clone(), None, None)
        .await;
    let arn = r["PhysicalResourceId"].as_str().unwrap().to_owned();

    b.fx.twin.set_outcome("profile.create", "Failed");
    let r = b
        .profile(
            "pu",
            "Update",
            "User",
            bob.clone(),
            Some(&arn),
            Some(alice.clone()),
        )
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert!(
        r["Reason"].as_str().unwrap().contains("being deleted"),
        "{r}"
    );
    let r = b
        .profile("rb", "Update", "User", alice, Some(&arn), Some(bob))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        r["PhysicalResourceId"],
        arn.as_str(),
        "the rollback ends on the original"
    );
    eventually("the failed profile is deleted", || async {
        let names: Vec<String> =
            b.sm.list_user_profiles()
                .domain_id_equals(&domain)
                .send()
                .await
                .unwrap()
                .user_profiles()
                .iter()
                .filter_map(|p| p.user_profile_name().map(str::to_owned))
                .collect();
        names == ["alice"]
    })
    .await;
}

/// Tags changed in an Update are brought over in place on the domain and the profile: removed keys
/// go (DeleteTags), new and changed ones are written (AddTags), and the owner tag stays.
#[tokio::test]
async fn tag_changes_update_in_place_and_keep_the_owner_tag() {
    let b = bed().await;
    let props = b.network(15).await;
    let created = b.domain("c", "Create", props.clone(), None, None).await;
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let mut retagged = props.clone();
    retagged["Tags"] = json!([{"Key": "Team", "Value": "risk"}]);
    let r = b
        .domain("u", "Update", retagged, Some(&id), Some(props))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], id.as_str(), "in place");
    let arn = created["Data"]["DomainArn"].as_str().unwrap().to_owned();

    let user = json!({"DomainId": id, "UserProfileName": "alice", "Tags": [{"Key": "Seat", "Value": "1"}]});
    let p = b
        .profile("pc", "Create", "User", user.clone(), None, None)
        .await;
    let profile_arn = p["PhysicalResourceId"].as_str().unwrap().to_owned();
    let mut moved = user.clone();
    moved["Tags"] = json!([{"Key": "Desk", "Value": "2"}]);
    let r = b
        .profile(
            "pu",
            "Update",
            "User",
            moved,
            Some(&profile_arn),
            Some(user),
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");

    for (resource, kept, gone) in [(&arn, "Team", "CostCenter"), (&profile_arn, "Desk", "Seat")] {
        let tags =
            b.sm.list_tags()
                .resource_arn(resource)
                .send()
                .await
                .unwrap();
        let keys: Vec<&str> = tags.tags().iter().filter_map(|t| t.key()).collect();
        assert!(
            keys.contains(&kept) && !keys.contains(&gone),
            "{resource}: {keys:?}"
        );
        assert!(
            keys.contains(&"secure-mlops:owner"),
            "{resource}: the owner tag stays: {keys:?}"
        );
    }
}

/// A forged Delete sent straight to the real studio-domain binary — another account's stack, or a
/// ResponseURL that is not CloudFormation's — is refused before any AWS call: a Lambda error, no PUT,
/// the domain untouched.
#[tokio::test]
async fn forged_deletes_are_refused_before_any_aws_call() {
    let b = bed().await;
    let mut props = b.network(16).await;
    props["HomeEfsFileSystem"] = json!("Delete");
    let created = b.domain("c", "Create", props.clone(), None, None).await;
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let calls_before = b.fx.twin.operations().len();
    let h = &b.domain_fn;
    for (key, field, value) in [
        (
            "acct",
            "StackId",
            "arn:aws:cloudformation:us-east-1:999999999999:stack/evil/1",
        ),
        (
            "host",
            "ResponseURL",
            "https://collector.example.com/cfn?X-Amz-Signature=forged",
        ),
    ] {
        let mut event = request(
            "Delete",
            &h.response_url(key),
            "Custom::StudioDomain",
            "Domain",
            props.clone(),
            Some(&id),
            None,
        );
        event[field] = json!(value);
        match h.invoke(&event).await {
            testbed::harness::Invoked::Error(e) => {
                assert!(e.to_string().contains("request refused"), "{e}")
            }
            other => panic!("{key}: expected a refusal, got {other:?}"),
        }
        assert!(h.puts(key).is_empty(), "{key}: a refused request got a PUT");
    }
    assert_eq!(
        b.fx.twin.operations().len(),
        calls_before,
        "no SageMaker call"
    );
    let d = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    assert_eq!(d.status().map(|s| s.as_str()), Some("InService"));
}

/// A forged continuation — the state "tearing down this domain, its users' data with it" handed to the
/// real studio-domain binary by someone allowed to invoke it, with an authentic request of this
/// account — is refused because its seal does not verify: no SageMaker call, no PUT, the domain and
/// its home EFS untouched.
#[tokio::test]
async fn a_forged_teardown_continuation_is_refused() {
    let b = bed().await;
    let props = b.network(16).await;
    let created = b.domain("c", "Create", props.clone(), None, None).await;
    let id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    let d = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    let h = &b.domain_fn;
    let delete = request(
        "Delete",
        &h.response_url("forged"),
        "Custom::StudioDomain",
        "Domain",
        props.clone(),
        Some(&id),
        None,
    );
    let body = json!({
        "Request": delete,
        "State": {
            "Phase": "Deleting",
            "domain_id": id,
            "vpc_id": props["VpcId"],
            "retention": "Delete",
            "home_efs": d.home_efs_file_system_id(),
            "polls": 0
        },
        "Attempt": 2,
        "StartedAtMs": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    });
    let calls_before = b.fx.twin.operations().len();
    for mac in ["00".repeat(32), "not hex".to_owned()] {
        let forged = json!({"SecureMlopsContinuation": {"Body": body.to_string(), "Mac": mac}});
        match h.invoke(&forged).await {
            testbed::harness::Invoked::Error(e) => {
                assert!(e.to_string().contains("continuation refused"), "{e}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert!(
        h.puts("forged").is_empty(),
        "a refused continuation got a PUT"
    );
    assert_eq!(
        b.fx.twin.operations().len(),
        calls_before,
        "no SageMaker call"
    );
    let after = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    assert_eq!(after.status().map(|s| s.as_str()), Some("InService"));
    assert_eq!(after.home_efs_file_system_id(), d.home_efs_file_system_id());
    let logs = h.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("continuation refused: not sealed by this function")),
        "{logs:#?}"
    );
}

/// The Service Catalog products of `infra/examples/` (their templates' own properties, resolved as
/// CloudFormation would send them: every scalar a string) provision and terminate through the real
/// functions: a domain with the platform's default user settings, a profile with its own, both gone
/// after termination.
#[tokio::test]
async fn the_service_catalog_products_provision_and_terminate() {
    let b = bed().await;
    let network = b.network(40).await;
    let example = |file: &str| {
        testbed::stack::Stack::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../infra/examples")
                .join(file),
        )
        .unwrap()
    };
    let properties = |stack: &testbed::stack::Stack, logical: &str| -> Value {
        let doc = stack.resource_doc(logical).unwrap();
        let mut out = serde_json::Map::new();
        for (k, v) in doc["Properties"].as_mapping().unwrap() {
            let k = k.as_str().unwrap();
            if k == "ServiceToken" || k == "ServiceTimeout" {
                continue;
            }
            // CloudFormation sends a custom resource's scalars as strings.
            let resolved = stack.resolve(v).unwrap().unwrap();
            out.insert(k.to_owned(), stringify(resolved));
        }
        Value::Object(out)
    };
    let domain_stack = example("sc-studio-domain.yaml")
        .parameter("VpcId", network["VpcId"].clone())
        .parameter("SubnetIds", network["SubnetIds"].clone())
        .parameter("AppSecurityGroupId", network["SecurityGroupIds"][0].clone())
        .parameter(
            "ExecutionRoleArn",
            "arn:aws:iam::123456789012:role/StudioExecution",
        );
    let props = properties(&domain_stack, "Domain");
    assert_eq!(
        props["DefaultUserSettings"]["JupyterLabAppSettings"]["AppLifecycleManagement"]["IdleSettings"]
            ["IdleTimeoutInMinutes"],
        "120"
    );
    let r = b
        .domain("sc-domain", "Create", props.clone(), None, None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let id = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    let d = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    let idle = d
        .default_user_settings()
        .and_then(|u| u.jupyter_lab_app_settings())
        .and_then(|l| l.app_lifecycle_management())
        .and_then(|a| a.idle_settings())
        .unwrap();
    assert_eq!(idle.idle_timeout_in_minutes(), Some(120));

    let profile_stack = example("sc-studio-user-profile.yaml")
        .parameter("DomainId", id.as_str())
        .parameter("UserProfileName", "carol");
    let profile_props = properties(&profile_stack, "Profile");
    let r = b
        .profile(
            "sc-profile",
            "Create",
            "Profile",
            profile_props.clone(),
            None,
            None,
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let arn = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    b.use_studio(&id, "carol").await;

    // Terminating the products: the profile (with carol's apps and space), then the domain.
    let r = b
        .profile(
            "sc-profile-del",
            "Delete",
            "Profile",
            profile_props,
            Some(&arn),
            None,
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let r = b
        .domain("sc-domain-del", "Delete", props, Some(&id), None)
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(b.fx.twin.lock().sm.domains.is_empty());
}

/// A resolved property as CloudFormation sends it to a custom resource: numbers and booleans as strings.
fn stringify(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Array(a) => Value::Array(a.into_iter().map(stringify).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, stringify(v))).collect()),
        other => other,
    }
}

/// `EnableProjects`: SageMaker's Service Catalog portfolio is enabled and the execution role
/// associated; a second domain needing the same finds them done; deleting the first hands both over to
/// the second (Projects stay on); deleting the second undoes them. Projects that were on before any
/// domain of ours stay on after it.
#[tokio::test]
async fn projects_are_enabled_and_undone_only_as_far_as_we_did_them() {
    let b = bed().await;
    let role = "arn:aws:iam::123456789012:role/StudioExecution";
    let projects = |b: &Bed| {
        let w = b.fx.twin.lock();
        (
            w.sm.projects,
            w.sm.portfolio_principals
                .iter()
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    let mut first = b.network(50).await;
    first["EnableProjects"] = json!("true");
    first["DomainName"] = json!("projects-a");
    let r = b.domain("a", "Create", first.clone(), None, None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let a = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_eq!(projects(&b), (true, vec![role.to_owned()]));

    let mut second = b.network(51).await;
    second["EnableProjects"] = json!(true);
    second["DomainName"] = json!("projects-b");
    let r = b.domain("b", "Create", second.clone(), None, None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let bd = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    let associations = |b: &Bed| {
        b.fx.twin
            .calls()
            .iter()
            .filter(|c| c.operation == "AssociatePrincipalWithPortfolio")
            .count()
    };
    assert_eq!(
        associations(&b),
        1,
        "the second domain found the role associated"
    );

    let r = b.domain("a-del", "Delete", first, Some(&a), None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        projects(&b),
        (true, vec![role.to_owned()]),
        "still needed by the second domain: handed over"
    );
    let r = b.domain("b-del", "Delete", second, Some(&bd), None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(projects(&b), (false, vec![]), "undone with the last domain");

    // Projects someone else had enabled, with the role already associated: left as they were.
    {
        let mut w = b.fx.twin.lock();
        w.sm.projects = true;
        w.sm.portfolio_principals.insert(role.to_owned());
    }
    let mut third = b.network(52).await;
    third["EnableProjects"] = json!(true);
    third["DomainName"] = json!("projects-c");
    let r = b.domain("c", "Create", third.clone(), None, None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let c = r["PhysicalResourceId"].as_str().unwrap().to_owned();
    let r = b.domain("c-del", "Delete", third, Some(&c), None).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        projects(&b),
        (true, vec![role.to_owned()]),
        "not ours to undo"
    );
    let disables =
        b.fx.twin
            .operations()
            .iter()
            .filter(|op| *op == "DisableSagemakerServicecatalogPortfolio")
            .count();
    assert_eq!(
        disables, 1,
        "only when the last domain that enabled them went"
    );
}
