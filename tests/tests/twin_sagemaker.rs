//! Fidelity of the SageMaker twin, driven with the real `aws-sdk-sagemaker`. Each test names the AWS
//! behaviour it reproduces.

use std::time::{Duration, Instant};

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use aws_sdk_sagemaker::types::{
    AppType, AuthMode, DomainStatus, ModelApprovalStatus, OwnershipSettings, RetentionPolicy,
    RetentionType, SortOrder, Tag, TrainingJobStatus, UserSettings,
};
use serde_json::Value;
use testbed::fixture::Fixture;
use testbed::twin::Fault;
use testbed::twin::moto_side::{ec2, efs, xml_value};

struct Bed {
    sm: Client,
    fx: Fixture,
}

async fn bed() -> Bed {
    let fx = Fixture::start().await;
    for key in [
        "domain.create",
        "domain.delete",
        "domain.update",
        "profile.create",
        "profile.delete",
        "app.create",
        "app.delete",
        "space.create",
        "space.delete",
        "job",
        "job.stop",
        "notebook.create",
        "notebook.stop",
        "notebook.update",
        "notebook.delete",
    ] {
        fx.twin.set_duration(key, 0.3);
    }
    Bed {
        sm: fx.sagemaker(),
        fx,
    }
}

/// Polls `f` until it returns `Some`, for at most 10 s.
async fn until<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    format!("{}: {}", e.code().unwrap_or("?"), e.message().unwrap_or(""))
}

impl Bed {
    async fn vpc(&self, subnets: usize) -> (String, Vec<String>) {
        let xml = ec2(
            &self.fx.moto.endpoint,
            &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
        )
        .await
        .unwrap();
        let vpc = xml_value(&xml, "vpcId").unwrap();
        let mut ids = Vec::new();
        for i in 0..subnets {
            let cidr = format!("10.0.{i}.0/24");
            let az = format!("us-east-1{}", (b'a' + i as u8) as char);
            let xml = ec2(
                &self.fx.moto.endpoint,
                &[
                    ("Action", "CreateSubnet"),
                    ("VpcId", &vpc),
                    ("CidrBlock", &cidr),
                    ("AvailabilityZone", &az),
                ],
            )
            .await
            .unwrap();
            ids.push(xml_value(&xml, "subnetId").unwrap());
        }
        (vpc, ids)
    }

    async fn domain(&self) -> (String, String) {
        let (vpc, subnets) = self.vpc(2).await;
        let out = self
            .sm
            .create_domain()
            .domain_name("studio")
            .auth_mode(AuthMode::Iam)
            .default_user_settings(
                UserSettings::builder()
                    .execution_role("arn:aws:iam::123456789012:role/Exec")
                    .build(),
            )
            .vpc_id(&vpc)
            .set_subnet_ids(Some(subnets))
            .tags(Tag::builder().key("Owner").value("tests").build())
            .send()
            .await
            .expect("CreateDomain");
        let id = out.domain_id().expect("domain id").to_owned();
        self.wait_domain(&id, DomainStatus::InService).await;
        (id, vpc)
    }

    async fn wait_domain(&self, id: &str, status: DomainStatus) {
        until(|| async {
            let d = self.sm.describe_domain().domain_id(id).send().await.ok()?;
            (d.status() == Some(&status)).then_some(())
        })
        .await
    }

    async fn efs(&self, path: &str) -> Value {
        efs(&self.fx.moto.endpoint, reqwest::Method::GET, path, None)
            .await
            .unwrap_or(Value::Null)
    }
}

/// CreateDomain: Pending → InService; SageMaker creates the home EFS file system (tagged with the
/// domain ARN), a mount target per subnet and the inbound/outbound NFS security groups that reference
/// each other. DeleteDomain with RetentionPolicy Retain (the default) leaves all of them behind.
#[tokio::test]
async fn create_domain_makes_home_efs_and_nfs_groups_and_retain_keeps_them() {
    let b = bed().await;
    let (vpc, subnets) = b.vpc(2).await;
    let out =
        b.sm.create_domain()
            .domain_name("studio")
            .auth_mode(AuthMode::Iam)
            .default_user_settings(UserSettings::builder().build())
            .vpc_id(&vpc)
            .set_subnet_ids(Some(subnets.clone()))
            .send()
            .await
            .unwrap();
    let id = out.domain_id().unwrap().to_owned();
    let first = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    assert_eq!(first.status(), Some(&DomainStatus::Pending));
    b.wait_domain(&id, DomainStatus::InService).await;
    let d = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    let fs = d
        .home_efs_file_system_id()
        .expect("HomeEfsFileSystemId")
        .to_owned();
    assert_eq!(d.domain_arn(), out.domain_arn());

    let systems = b.efs("file-systems").await;
    let system = systems["FileSystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["FileSystemId"] == fs.as_str())
        .expect("EFS in moto");
    assert!(
        system["Tags"]
            .to_string()
            .contains(out.domain_arn().unwrap()),
        "{system}"
    );
    let mts = b.efs(&format!("mount-targets?FileSystemId={fs}")).await;
    assert_eq!(
        mts["MountTargets"].as_array().unwrap().len(),
        2,
        "one mount target per subnet"
    );

    let xml = ec2(
        &b.fx.moto.endpoint,
        &[
            ("Action", "DescribeSecurityGroups"),
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", &vpc),
        ],
    )
    .await
    .unwrap();
    assert!(
        xml.contains(&format!("security-group-for-inbound-nfs-{id}"))
            && xml.contains(&format!("security-group-for-outbound-nfs-{id}"))
    );
    assert!(xml.contains("<fromPort>2049</fromPort>"));

    b.sm.delete_domain().domain_id(&id).send().await.unwrap();
    assert_eq!(
        b.sm.describe_domain()
            .domain_id(&id)
            .send()
            .await
            .unwrap()
            .status(),
        Some(&DomainStatus::Deleting)
    );
    let err = until(|| async { b.sm.describe_domain().domain_id(&id).send().await.err() }).await;
    assert_eq!(err.into_service_error().code(), Some("ResourceNotFound"));
    let systems = b.efs("file-systems").await;
    assert!(
        systems.to_string().contains(&fs),
        "Retain keeps the home EFS"
    );
}

/// DeleteDomain with RetentionPolicy HomeEfsFileSystem=Delete removes the file system and its mount
/// targets, but leaves the NFS security groups (what users find behind).
#[tokio::test]
async fn delete_domain_with_delete_retention_removes_efs_but_not_security_groups() {
    let b = bed().await;
    let (id, vpc) = b.domain().await;
    let fs =
        b.sm.describe_domain()
            .domain_id(&id)
            .send()
            .await
            .unwrap()
            .home_efs_file_system_id()
            .unwrap()
            .to_owned();
    b.sm.delete_domain()
        .domain_id(&id)
        .retention_policy(
            RetentionPolicy::builder()
                .home_efs_file_system(RetentionType::Delete)
                .build(),
        )
        .send()
        .await
        .unwrap();
    until(|| async { b.sm.describe_domain().domain_id(&id).send().await.err() }).await;
    let systems = b.efs("file-systems").await;
    assert!(
        !systems.to_string().contains(&fs),
        "the home EFS is deleted: {systems}"
    );
    let xml = ec2(
        &b.fx.moto.endpoint,
        &[
            ("Action", "DescribeSecurityGroups"),
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", &vpc),
        ],
    )
    .await
    .unwrap();
    assert!(
        xml.contains(&format!("security-group-for-inbound-nfs-{id}")),
        "security groups stay"
    );
}

/// A domain cannot be deleted while it has user profiles or spaces; a user profile not while it has
/// apps that are not Deleted ("Unable to delete UserProfile [arn] because App(s) are associated with
/// it.") or owns spaces; a space not while it has apps. Names are unique per domain.
#[tokio::test]
async fn studio_teardown_order_is_enforced_with_resource_in_use() {
    let b = bed().await;
    let (id, _) = b.domain().await;
    b.sm.create_user_profile()
        .domain_id(&id)
        .user_profile_name("alice")
        .send()
        .await
        .unwrap();
    let dup =
        b.sm.create_user_profile()
            .domain_id(&id)
            .user_profile_name("alice")
            .send()
            .await
            .unwrap_err();
    assert_eq!(dup.into_service_error().code(), Some("ResourceInUse"));
    until(|| async {
        let p =
            b.sm.describe_user_profile()
                .domain_id(&id)
                .user_profile_name("alice")
                .send()
                .await
                .ok()?;
        (p.status().map(|s| s.as_str()) == Some("InService")).then_some(())
    })
    .await;
    b.sm.create_space()
        .domain_id(&id)
        .space_name("shared")
        .ownership_settings(
            OwnershipSettings::builder()
                .owner_user_profile_name("alice")
                .build(),
        )
        .send()
        .await
        .unwrap();
    b.sm.create_app()
        .domain_id(&id)
        .user_profile_name("alice")
        .app_type(AppType::JupyterServer)
        .app_name("default")
        .send()
        .await
        .unwrap();
    b.sm.create_app()
        .domain_id(&id)
        .space_name("shared")
        .app_type(AppType::JupyterLab)
        .app_name("lab")
        .send()
        .await
        .unwrap();

    let e =
        b.sm.delete_domain()
            .domain_id(&id)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("ResourceInUse"), "{}", code(&e));
    let e =
        b.sm.delete_user_profile()
            .domain_id(&id)
            .user_profile_name("alice")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(code(&e).starts_with("ResourceInUse: Unable to delete UserProfile [arn:aws:sagemaker:us-east-1:123456789012:user-profile/"), "{}", code(&e));
    assert!(
        code(&e).ends_with("because App(s) are associated with it."),
        "{}",
        code(&e)
    );
    let e =
        b.sm.delete_space()
            .domain_id(&id)
            .space_name("shared")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(
        code(&e).contains("because App(s) are associated with it."),
        "{}",
        code(&e)
    );

    b.sm.delete_app()
        .domain_id(&id)
        .user_profile_name("alice")
        .app_type(AppType::JupyterServer)
        .app_name("default")
        .send()
        .await
        .unwrap();
    b.sm.delete_app()
        .domain_id(&id)
        .space_name("shared")
        .app_type(AppType::JupyterLab)
        .app_name("lab")
        .send()
        .await
        .unwrap();
    // Deleting apps still block; Deleted apps do not (and stay listed as Deleted).
    let e =
        b.sm.delete_user_profile()
            .domain_id(&id)
            .user_profile_name("alice")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("ResourceInUse"));
    until(|| async {
        let apps = b.sm.list_apps().domain_id_equals(&id).send().await.ok()?;
        apps.apps()
            .iter()
            .all(|a| a.status().map(|s| s.as_str()) == Some("Deleted"))
            .then_some(())
    })
    .await;
    let e =
        b.sm.delete_user_profile()
            .domain_id(&id)
            .user_profile_name("alice")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(
        code(&e).ends_with("because Space(s) are associated with it."),
        "owns a space: {}",
        code(&e)
    );
    b.sm.delete_space()
        .domain_id(&id)
        .space_name("shared")
        .send()
        .await
        .unwrap();
    until(|| async {
        b.sm.describe_space()
            .domain_id(&id)
            .space_name("shared")
            .send()
            .await
            .err()
    })
    .await;
    b.sm.delete_user_profile()
        .domain_id(&id)
        .user_profile_name("alice")
        .send()
        .await
        .unwrap();
    let gone = until(|| async {
        b.sm.describe_user_profile()
            .domain_id(&id)
            .user_profile_name("alice")
            .send()
            .await
            .err()
    })
    .await;
    assert_eq!(gone.into_service_error().code(), Some("ResourceNotFound"));
    b.sm.delete_domain().domain_id(&id).send().await.unwrap();
}

/// Domains that fail: Pending → Failed with a FailureReason; Deleting → Delete_Failed.
#[tokio::test]
async fn forced_failures_surface_as_failed_and_delete_failed() {
    let b = bed().await;
    b.fx.twin.set_outcome("domain.create", "Failed");
    let (vpc, subnets) = b.vpc(1).await;
    let out =
        b.sm.create_domain()
            .domain_name("bad")
            .auth_mode(AuthMode::Iam)
            .default_user_settings(UserSettings::builder().build())
            .vpc_id(vpc)
            .set_subnet_ids(Some(subnets))
            .send()
            .await
            .unwrap();
    let id = out.domain_id().unwrap();
    b.wait_domain(id, DomainStatus::Failed).await;
    assert!(
        b.sm.describe_domain()
            .domain_id(id)
            .send()
            .await
            .unwrap()
            .failure_reason()
            .is_some()
    );

    let (ok, _) = b.domain().await;
    b.fx.twin.set_outcome("domain.delete", "Delete_Failed");
    b.sm.delete_domain().domain_id(&ok).send().await.unwrap();
    b.wait_domain(&ok, DomainStatus::DeleteFailed).await;
}

/// Jobs: InProgress → Completed after their duration; StopTrainingJob → Stopping → Stopped; stopping a
/// finished job is a ValidationException ("The request was rejected because the training job is in
/// status Completed."); names are unique per account and region (ResourceInUse); DescribeTrainingJob of
/// an unknown job is ResourceNotFound, as its API reference documents.
#[tokio::test]
async fn jobs_run_stop_and_reject_invalid_stops() {
    let b = bed().await;
    use aws_sdk_sagemaker::types::{
        AlgorithmSpecification, OutputDataConfig, ResourceConfig, StoppingCondition,
        TrainingInputMode, TrainingInstanceType,
    };
    let create = |name: &'static str| {
        b.sm.create_training_job()
            .training_job_name(name)
            .role_arn("arn:aws:iam::123456789012:role/Exec")
            .algorithm_specification(
                AlgorithmSpecification::builder()
                    .training_image("img")
                    .training_input_mode(TrainingInputMode::File)
                    .build(),
            )
            .output_data_config(
                OutputDataConfig::builder()
                    .s3_output_path("s3://b/o")
                    .build(),
            )
            .resource_config(
                ResourceConfig::builder()
                    .instance_type(TrainingInstanceType::MlM5Large)
                    .instance_count(1)
                    .volume_size_in_gb(10)
                    .build(),
            )
            .stopping_condition(
                StoppingCondition::builder()
                    .max_runtime_in_seconds(60)
                    .build(),
            )
            .send()
    };
    create("done").await.unwrap();
    let dup = create("done").await.unwrap_err().into_service_error();
    assert_eq!(dup.code(), Some("ResourceInUse"));
    until(|| async {
        let j =
            b.sm.describe_training_job()
                .training_job_name("done")
                .send()
                .await
                .ok()?;
        (j.training_job_status() == Some(&TrainingJobStatus::Completed)).then_some(())
    })
    .await;
    let e =
        b.sm.stop_training_job()
            .training_job_name("done")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(
        code(&e),
        "ValidationException: The request was rejected because the training job is in status Completed."
    );

    b.fx.twin.set_duration("job", 30.0);
    create("running").await.unwrap();
    b.sm.stop_training_job()
        .training_job_name("running")
        .send()
        .await
        .unwrap();
    let j =
        b.sm.describe_training_job()
            .training_job_name("running")
            .send()
            .await
            .unwrap();
    assert_eq!(j.training_job_status(), Some(&TrainingJobStatus::Stopping));
    until(|| async {
        let j =
            b.sm.describe_training_job()
                .training_job_name("running")
                .send()
                .await
                .ok()?;
        (j.training_job_status() == Some(&TrainingJobStatus::Stopped)).then_some(())
    })
    .await;
    let listed =
        b.sm.list_training_jobs()
            .status_equals(TrainingJobStatus::Stopped)
            .send()
            .await
            .unwrap();
    assert_eq!(listed.training_job_summaries().len(), 1);
    let e =
        b.sm.describe_training_job()
            .training_job_name("nope")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("ResourceNotFound"));

    // The other job kinds share the rules.
    b.sm.create_processing_job()
        .processing_job_name("p")
        .role_arn("arn:aws:iam::123456789012:role/Exec")
        .send()
        .await
        .unwrap();
    b.sm.stop_processing_job()
        .processing_job_name("p")
        .send()
        .await
        .unwrap();
    b.sm.create_transform_job()
        .transform_job_name("t")
        .model_name("m")
        .send()
        .await
        .unwrap();
    b.sm.stop_transform_job()
        .transform_job_name("t")
        .send()
        .await
        .unwrap();
    b.sm.create_hyper_parameter_tuning_job()
        .hyper_parameter_tuning_job_name("h")
        .send()
        .await
        .unwrap();
    b.sm.stop_hyper_parameter_tuning_job()
        .hyper_parameter_tuning_job_name("h")
        .send()
        .await
        .unwrap();
    let tuning =
        b.sm.list_hyper_parameter_tuning_jobs()
            .send()
            .await
            .unwrap();
    assert_eq!(tuning.hyper_parameter_tuning_job_summaries().len(), 1);
}

/// Notebook instances: Pending → InService; a Pending notebook cannot be stopped ("Status (Pending)
/// not in ([InService]). Unable to transition to (Stopping) …"); Stopping → Stopped; updates need
/// Stopped; DirectInternetAccess and RootAccess default to Enabled; unknown → ValidationException.
#[tokio::test]
async fn notebooks_follow_their_state_rules() {
    let b = bed().await;
    use aws_sdk_sagemaker::types::{
        DirectInternetAccess, InstanceType, NotebookInstanceStatus, RootAccess,
    };
    // Long enough that the Stop below reaches a Pending notebook even on a loaded machine.
    b.fx.twin.set_duration("notebook.create", 2.0);
    b.sm.create_notebook_instance()
        .notebook_instance_name("nb")
        .instance_type(InstanceType::MlT3Medium)
        .role_arn("arn:aws:iam::123456789012:role/Exec")
        .send()
        .await
        .unwrap();
    let e =
        b.sm.stop_notebook_instance()
            .notebook_instance_name("nb")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(code(&e).starts_with("ValidationException: Status (Pending) not in ([InService]). Unable to transition to (Stopping) for Notebook Instance (arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/nb)"), "{}", code(&e));
    let d =
        b.sm.describe_notebook_instance()
            .notebook_instance_name("nb")
            .send()
            .await
            .unwrap();
    assert_eq!(
        d.direct_internet_access(),
        Some(&DirectInternetAccess::Enabled)
    );
    assert_eq!(d.root_access(), Some(&RootAccess::Enabled));
    let status = |want: NotebookInstanceStatus| {
        let sm = b.sm.clone();
        async move {
            until(|| async {
                let d = sm
                    .describe_notebook_instance()
                    .notebook_instance_name("nb")
                    .send()
                    .await
                    .ok()?;
                (d.notebook_instance_status() == Some(&want)).then_some(())
            })
            .await
        }
    };
    status(NotebookInstanceStatus::InService).await;
    let e =
        b.sm.update_notebook_instance()
            .notebook_instance_name("nb")
            .root_access(RootAccess::Disabled)
            .send()
            .await
            .unwrap_err();
    assert_eq!(e.into_service_error().code(), Some("ValidationException"));
    b.sm.stop_notebook_instance()
        .notebook_instance_name("nb")
        .send()
        .await
        .unwrap();
    status(NotebookInstanceStatus::Stopped).await;
    b.sm.update_notebook_instance()
        .notebook_instance_name("nb")
        .root_access(RootAccess::Disabled)
        .send()
        .await
        .unwrap();
    status(NotebookInstanceStatus::Stopped).await;
    let d =
        b.sm.describe_notebook_instance()
            .notebook_instance_name("nb")
            .send()
            .await
            .unwrap();
    assert_eq!(d.root_access(), Some(&RootAccess::Disabled));
    b.sm.delete_notebook_instance()
        .notebook_instance_name("nb")
        .send()
        .await
        .unwrap();
    let e = until(|| async {
        b.sm.describe_notebook_instance()
            .notebook_instance_name("nb")
            .send()
            .await
            .err()
    })
    .await;
    assert_eq!(
        code(&e.into_service_error()),
        "ValidationException: RecordNotFound"
    );
}

/// Models and endpoint configs: names are unique ("Cannot create already existing model …"); unknown
/// ones are ValidationException ("Could not find model …"), as DescribeModel/DeleteModel return.
#[tokio::test]
async fn models_and_endpoint_configs_are_unique_and_deletable() {
    let b = bed().await;
    use aws_sdk_sagemaker::types::{ContainerDefinition, ProductionVariant};
    b.sm.create_model()
        .model_name("m")
        .execution_role_arn("arn:aws:iam::123456789012:role/Exec")
        .primary_container(ContainerDefinition::builder().image("img").build())
        .enable_network_isolation(true)
        .send()
        .await
        .unwrap();
    let e =
        b.sm.create_model()
            .model_name("m")
            .execution_role_arn("arn:aws:iam::123456789012:role/Exec")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(
        code(&e).starts_with("ValidationException: Cannot create already existing model"),
        "{}",
        code(&e)
    );
    let d = b.sm.describe_model().model_name("m").send().await.unwrap();
    assert_eq!(d.enable_network_isolation(), Some(true));
    b.sm.create_endpoint_config()
        .endpoint_config_name("c")
        .kms_key_id("alias/k")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("v")
                .model_name("m")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        b.sm.list_endpoint_configs()
            .send()
            .await
            .unwrap()
            .endpoint_configs()
            .len(),
        1
    );
    b.sm.delete_model().model_name("m").send().await.unwrap();
    b.sm.delete_endpoint_config()
        .endpoint_config_name("c")
        .send()
        .await
        .unwrap();
    let e =
        b.sm.describe_model()
            .model_name("m")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(
        code(&e).starts_with("ValidationException: Could not find model"),
        "{}",
        code(&e)
    );
    let e =
        b.sm.delete_endpoint_config()
            .endpoint_config_name("c")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(
        code(&e).starts_with("ValidationException: Could not find endpoint configuration"),
        "{}",
        code(&e)
    );
}

/// Endpoints (API reference: CreateEndpoint, DescribeEndpoint, UpdateEndpoint): an endpoint needs an
/// existing endpoint config, is `Creating` then `InService`, an update needs an `InService` endpoint
/// and moves it through `Updating`; a missing one is "Could not find endpoint". SageMaker does not stop
/// anyone from deleting the model or endpoint config a running endpoint uses (the endpoint keeps
/// serving): the twin does not either.
#[tokio::test]
async fn endpoints_run_a_config_and_do_not_protect_what_they_use() {
    use aws_sdk_sagemaker::types::{ContainerDefinition, EndpointStatus, ProductionVariant};
    let b = bed().await;
    b.fx.twin.set_duration("endpoint.create", 0.2);
    b.fx.twin.set_duration("endpoint.update", 0.2);
    let e =
        b.sm.create_endpoint()
            .endpoint_name("ep")
            .endpoint_config_name("missing")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(
        code(&e).starts_with("ValidationException: Could not find endpoint configuration"),
        "{}",
        code(&e)
    );
    b.sm.create_model()
        .model_name("m")
        .execution_role_arn("arn:aws:iam::123456789012:role/Exec")
        .primary_container(ContainerDefinition::builder().image("img").build())
        .send()
        .await
        .unwrap();
    for config in ["c1", "c2"] {
        b.sm.create_endpoint_config()
            .endpoint_config_name(config)
            .production_variants(
                ProductionVariant::builder()
                    .variant_name("v")
                    .model_name("m")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    b.sm.create_endpoint()
        .endpoint_name("ep")
        .endpoint_config_name("c1")
        .send()
        .await
        .unwrap();
    let d =
        b.sm.describe_endpoint()
            .endpoint_name("ep")
            .send()
            .await
            .unwrap();
    assert_eq!(d.endpoint_status(), Some(&EndpointStatus::Creating));
    assert_eq!(d.endpoint_config_name(), Some("c1"));
    let e =
        b.sm.update_endpoint()
            .endpoint_name("ep")
            .endpoint_config_name("c2")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(
        code(&e).contains("Cannot update in-progress endpoint"),
        "{}",
        code(&e)
    );
    until(|| async {
        let d =
            b.sm.describe_endpoint()
                .endpoint_name("ep")
                .send()
                .await
                .unwrap();
        (d.endpoint_status() == Some(&EndpointStatus::InService)).then_some(())
    })
    .await;
    b.sm.update_endpoint()
        .endpoint_name("ep")
        .endpoint_config_name("c2")
        .send()
        .await
        .unwrap();
    let d =
        b.sm.describe_endpoint()
            .endpoint_name("ep")
            .send()
            .await
            .unwrap();
    assert_eq!(d.endpoint_status(), Some(&EndpointStatus::Updating));
    assert_eq!(d.endpoint_config_name(), Some("c2"));
    assert_eq!(
        b.sm.list_endpoints()
            .send()
            .await
            .unwrap()
            .endpoints()
            .len(),
        1
    );
    // Nothing protects what the endpoint uses.
    b.sm.delete_endpoint_config()
        .endpoint_config_name("c2")
        .send()
        .await
        .unwrap();
    b.sm.delete_model().model_name("m").send().await.unwrap();
    b.sm.delete_endpoint()
        .endpoint_name("ep")
        .send()
        .await
        .unwrap();
    let e =
        b.sm.describe_endpoint()
            .endpoint_name("ep")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(
        code(&e).starts_with("ValidationException: Could not find endpoint"),
        "{}",
        code(&e)
    );
}

/// Model registry: versions count up per group; ListModelPackages filters by approval status and
/// sorts by CreationTime or Name in either order; UpdateModelPackage changes the approval.
#[tokio::test]
async fn model_packages_version_filter_and_sort() {
    let b = bed().await;
    b.sm.create_model_package_group()
        .model_package_group_name("churn")
        .send()
        .await
        .unwrap();
    let mut arns = Vec::new();
    for _ in 0..3 {
        let out =
            b.sm.create_model_package()
                .model_package_group_name("churn")
                .send()
                .await
                .unwrap();
        arns.push(out.model_package_arn().unwrap().to_owned());
    }
    assert!(arns[2].ends_with("model-package/churn/3"), "{arns:?}");
    for arn in &arns[..2] {
        b.sm.update_model_package()
            .model_package_arn(arn)
            .model_approval_status(ModelApprovalStatus::Approved)
            .send()
            .await
            .unwrap();
    }
    let approved =
        b.sm.list_model_packages()
            .model_package_group_name("churn")
            .model_approval_status(ModelApprovalStatus::Approved)
            .sort_by(aws_sdk_sagemaker::types::ModelPackageSortBy::CreationTime)
            .sort_order(SortOrder::Descending)
            .max_results(1)
            .send()
            .await
            .unwrap();
    let latest = &approved.model_package_summary_list()[0];
    assert_eq!(
        latest.model_package_arn(),
        Some(arns[1].as_str()),
        "latest approved first"
    );
    assert!(approved.next_token().is_some(), "2 approved, 1 per page");
    let d =
        b.sm.describe_model_package()
            .model_package_name(&arns[2])
            .send()
            .await
            .unwrap();
    assert_eq!(
        d.model_approval_status(),
        Some(&ModelApprovalStatus::PendingManualApproval)
    );
    assert_eq!(d.model_package_version(), Some(3));
    let e =
        b.sm.create_model_package()
            .model_package_group_name("nope")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("ValidationException"));
}

/// Throttling and 5xx: the SDK's standard retries absorb two throttles; five 500s exhaust them and
/// surface InternalFailure. Every call, retried or not, is in the call log.
#[tokio::test]
async fn injected_faults_reach_the_sdk_like_aws_errors() {
    let b = bed().await;
    let (id, _) = b.domain().await;
    let before =
        b.fx.twin
            .operations()
            .iter()
            .filter(|o| *o == "DescribeDomain")
            .count();
    b.fx.twin.inject("DescribeDomain", Fault::Throttle, 2);
    b.sm.describe_domain()
        .domain_id(&id)
        .send()
        .await
        .expect("retried through throttling");
    let after =
        b.fx.twin
            .operations()
            .iter()
            .filter(|o| *o == "DescribeDomain")
            .count();
    assert_eq!(after - before, 3);
    b.fx.twin.inject("DescribeDomain", Fault::Server, 5);
    let e =
        b.sm.describe_domain()
            .domain_id(&id)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(e.code(), Some("InternalFailure"));
    let call =
        b.fx.twin
            .calls()
            .into_iter()
            .find(|c| c.operation == "CreateDomain")
            .unwrap();
    assert_eq!(call.params["DomainName"], "studio");
}

/// Tags given at creation and with AddTags are listed by ListTags and removed by DeleteTags.
#[tokio::test]
async fn tags_are_kept_per_resource() {
    let b = bed().await;
    let (id, _) = b.domain().await;
    let arn =
        b.sm.describe_domain()
            .domain_id(&id)
            .send()
            .await
            .unwrap()
            .domain_arn()
            .unwrap()
            .to_owned();
    b.sm.add_tags()
        .resource_arn(&arn)
        .tags(Tag::builder().key("Team").value("ml").build())
        .send()
        .await
        .unwrap();
    let tags = b.sm.list_tags().resource_arn(&arn).send().await.unwrap();
    let keys: Vec<_> = tags.tags().iter().map(|t| t.key()).collect();
    assert_eq!(keys, [Some("Owner"), Some("Team")]);
    b.sm.delete_tags()
        .resource_arn(&arn)
        .tag_keys("Owner")
        .send()
        .await
        .unwrap();
    assert_eq!(
        b.sm.list_tags()
            .resource_arn(&arn)
            .send()
            .await
            .unwrap()
            .tags()
            .len(),
        1
    );
}

/// UpdateDomain / UpdateUserProfile: InService → Updating → InService, fields changed in place; an
/// update while not InService is refused. Plus the remaining read operations, so that every operation
/// the twin serves is driven by the real SDK at least once.
#[tokio::test]
async fn updates_and_every_other_operation_through_the_sdk() {
    let b = bed().await;
    use aws_sdk_sagemaker::types::{
        AppNetworkAccessType, InstanceType, NotebookInstanceStatus, ProcessingJobStatus,
        TransformJobStatus,
    };
    let (id, _) = b.domain().await;
    b.sm.update_domain()
        .domain_id(&id)
        .app_network_access_type(AppNetworkAccessType::VpcOnly)
        .send()
        .await
        .unwrap();
    let d = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    assert_eq!(d.status(), Some(&DomainStatus::Updating));
    let again =
        b.sm.update_domain()
            .domain_id(&id)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(
        again.code(),
        Some("ResourceInUse"),
        "no update while Updating"
    );
    b.wait_domain(&id, DomainStatus::InService).await;
    let d = b.sm.describe_domain().domain_id(&id).send().await.unwrap();
    assert_eq!(
        d.app_network_access_type(),
        Some(&AppNetworkAccessType::VpcOnly)
    );
    assert_eq!(b.sm.list_domains().send().await.unwrap().domains().len(), 1);

    b.sm.create_user_profile()
        .domain_id(&id)
        .user_profile_name("bob")
        .send()
        .await
        .unwrap();
    until(|| async {
        let p =
            b.sm.describe_user_profile()
                .domain_id(&id)
                .user_profile_name("bob")
                .send()
                .await
                .ok()?;
        (p.status().map(|s| s.as_str()) == Some("InService")).then_some(())
    })
    .await;
    b.sm.update_user_profile()
        .domain_id(&id)
        .user_profile_name("bob")
        .user_settings(
            UserSettings::builder()
                .execution_role("arn:aws:iam::123456789012:role/Other")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let p =
        b.sm.describe_user_profile()
            .domain_id(&id)
            .user_profile_name("bob")
            .send()
            .await
            .unwrap();
    assert_eq!(p.status().map(|s| s.as_str()), Some("Updating"));
    assert_eq!(
        p.user_settings().and_then(|u| u.execution_role()),
        Some("arn:aws:iam::123456789012:role/Other")
    );
    let profiles =
        b.sm.list_user_profiles()
            .domain_id_equals(&id)
            .send()
            .await
            .unwrap();
    assert_eq!(profiles.user_profiles().len(), 1);
    b.sm.create_space()
        .domain_id(&id)
        .space_name("s")
        .send()
        .await
        .unwrap();
    assert_eq!(
        b.sm.list_spaces()
            .domain_id_equals(&id)
            .send()
            .await
            .unwrap()
            .spaces()
            .len(),
        1
    );
    b.sm.create_app()
        .domain_id(&id)
        .space_name("s")
        .app_type(AppType::JupyterLab)
        .app_name("a")
        .send()
        .await
        .unwrap();
    let app =
        b.sm.describe_app()
            .domain_id(&id)
            .space_name("s")
            .app_type(AppType::JupyterLab)
            .app_name("a")
            .send()
            .await
            .unwrap();
    assert!(
        app.app_arn()
            .unwrap()
            .ends_with(&format!("app/{id}/s/jupyterlab/a"))
    );
    let missing =
        b.sm.describe_app()
            .domain_id(&id)
            .space_name("s")
            .app_type(AppType::JupyterLab)
            .app_name("zz")
            .send()
            .await
            .unwrap_err();
    assert_eq!(
        missing.into_service_error().code(),
        Some("ResourceNotFound")
    );

    b.fx.twin.set_duration("job", 30.0);
    b.sm.create_processing_job()
        .processing_job_name("p")
        .role_arn("arn:aws:iam::123456789012:role/Exec")
        .send()
        .await
        .unwrap();
    let p =
        b.sm.describe_processing_job()
            .processing_job_name("p")
            .send()
            .await
            .unwrap();
    assert_eq!(
        p.processing_job_status(),
        Some(&ProcessingJobStatus::InProgress)
    );
    assert_eq!(
        b.sm.list_processing_jobs()
            .status_equals(ProcessingJobStatus::InProgress)
            .send()
            .await
            .unwrap()
            .processing_job_summaries()
            .len(),
        1
    );
    b.sm.create_transform_job()
        .transform_job_name("t")
        .model_name("m")
        .send()
        .await
        .unwrap();
    let t =
        b.sm.describe_transform_job()
            .transform_job_name("t")
            .send()
            .await
            .unwrap();
    assert_eq!(
        t.transform_job_status(),
        Some(&TransformJobStatus::InProgress)
    );
    assert_eq!(
        b.sm.list_transform_jobs()
            .send()
            .await
            .unwrap()
            .transform_job_summaries()
            .len(),
        1
    );
    b.sm.create_hyper_parameter_tuning_job()
        .hyper_parameter_tuning_job_name("h")
        .send()
        .await
        .unwrap();
    let h =
        b.sm.describe_hyper_parameter_tuning_job()
            .hyper_parameter_tuning_job_name("h")
            .send()
            .await
            .unwrap();
    assert!(
        h.hyper_parameter_tuning_job_arn()
            .unwrap()
            .ends_with("hyper-parameter-tuning-job/h")
    );

    b.sm.create_notebook_instance()
        .notebook_instance_name("nb")
        .instance_type(InstanceType::MlT3Medium)
        .role_arn("arn:aws:iam::123456789012:role/Exec")
        .send()
        .await
        .unwrap();
    let listed =
        b.sm.list_notebook_instances()
            .status_equals(NotebookInstanceStatus::Pending)
            .send()
            .await
            .unwrap();
    assert_eq!(listed.notebook_instances().len(), 1);
    let e =
        b.sm.start_notebook_instance()
            .notebook_instance_name("nb")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(
        e.code(),
        Some("ValidationException"),
        "only a Stopped notebook starts"
    );

    b.sm.create_model()
        .model_name("m1")
        .execution_role_arn("arn:aws:iam::123456789012:role/Exec")
        .send()
        .await
        .unwrap();
    assert_eq!(
        b.sm.list_models()
            .name_contains("m1")
            .send()
            .await
            .unwrap()
            .models()
            .len(),
        1
    );
    use aws_sdk_sagemaker::types::ProductionVariant;
    b.sm.create_endpoint_config()
        .endpoint_config_name("c1")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("v")
                .model_name("m1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let c =
        b.sm.describe_endpoint_config()
            .endpoint_config_name("c1")
            .send()
            .await
            .unwrap();
    assert_eq!(c.production_variants().len(), 1);
    b.sm.create_model_package_group()
        .model_package_group_name("g")
        .send()
        .await
        .unwrap();
    let g =
        b.sm.describe_model_package_group()
            .model_package_group_name("g")
            .send()
            .await
            .unwrap();
    assert!(
        g.model_package_group_arn()
            .unwrap()
            .ends_with("model-package-group/g")
    );
}

/// SageMaker resources belong to an account: each account lists, describes and names (ARN) only its
/// own, and the same name may exist in two accounts (SageMaker API reference: names are unique "within
/// an AWS Region in an AWS account"). The twin tells accounts apart by the caller's access key, as
/// moto does: a key from `AssumeRole` belongs to the role's account.
#[tokio::test]
async fn each_account_sees_only_its_own_resources() {
    let bed = bed().await;
    let (one, two) = ("111111111111", "222222222222");
    let in_one = bed
        .fx
        .twin
        .sagemaker(&testbed::organization::acting_in(&bed.fx.config, one).await);
    let in_two = bed
        .fx
        .twin
        .sagemaker(&testbed::organization::acting_in(&bed.fx.config, two).await);
    for (client, name) in [
        (&in_one, "shared-name"),
        (&in_two, "shared-name"),
        (&in_two, "only-two"),
    ] {
        client
            .create_model()
            .model_name(name)
            .execution_role_arn("arn:aws:iam::111111111111:role/r")
            .primary_container(
                aws_sdk_sagemaker::types::ContainerDefinition::builder()
                    .image("123.dkr.ecr/xgb:1")
                    .build(),
            )
            .send()
            .await
            .expect("CreateModel");
    }
    let arns = |out: aws_sdk_sagemaker::operation::list_models::ListModelsOutput| -> Vec<String> {
        out.models()
            .iter()
            .filter_map(|m| m.model_arn().map(str::to_owned))
            .collect()
    };
    let listed_one = arns(in_one.list_models().send().await.unwrap());
    assert_eq!(
        listed_one,
        [format!(
            "arn:aws:sagemaker:us-east-1:{one}:model/shared-name"
        )]
    );
    assert_eq!(arns(in_two.list_models().send().await.unwrap()).len(), 2);
    assert!(arns(bed.sm.list_models().send().await.unwrap()).is_empty());
    let err = in_one
        .describe_model()
        .model_name("only-two")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));
}

/// `AssumeRole` of a role that does not exist is refused with `AccessDenied` (HTTP 403), as STS
/// answers ("User … is not authorized to perform: sts:AssumeRole on resource …"); moto alone would
/// hand out credentials. Once the role exists the twin passes moto's answer on, and its credentials act
/// in the role's account.
#[tokio::test]
async fn assume_role_of_a_missing_role_is_access_denied() {
    let bed = bed().await;
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&bed.fx.config)
            .endpoint_url(&bed.fx.twin.endpoint)
            .build(),
    );
    let role = "arn:aws:iam::333333333333:role/secure-mlops-detective-responder";
    let err = sts
        .assume_role()
        .role_arn(role)
        .role_session_name("s")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");
    assert!(err.message().is_some_and(|m| m.contains(role)));

    testbed::organization::deploy_member(
        &bed.fx.moto.endpoint,
        "333333333333",
        "secure-mlops",
        "arn:aws:events:us-east-1:123456789012:event-bus/secure-mlops-detective",
        true,
    )
    .await;
    let out = sts
        .assume_role()
        .role_arn(role)
        .role_session_name("s")
        .send()
        .await
        .expect("the role exists now");
    let creds = out.credentials().expect("credentials");
    let config = testbed::organization::with_credentials(&bed.fx.config, creds);
    bed.fx
        .twin
        .sagemaker(&config)
        .list_models()
        .send()
        .await
        .expect("ListModels");
    let account = bed.fx.twin.lock().keys.get(creds.access_key_id()).cloned();
    assert_eq!(account.as_deref(), Some("333333333333"));
}

/// An app instance type outside the API model's `AppInstanceType` enum, anywhere in a request's
/// settings, is SageMaker's `ValidationException` naming the value and its camelCase path ("1
/// validation error detected: Value '…' at '…' failed to satisfy constraint: Member must satisfy enum
/// value set").
#[tokio::test]
async fn an_unknown_app_instance_type_is_a_validation_exception() {
    use aws_sdk_sagemaker::types::{AppInstanceType, JupyterLabAppSettings, ResourceSpec};
    let bed = bed().await;
    let err = bed
        .sm
        .create_domain()
        .domain_name("d")
        .auth_mode(AuthMode::Iam)
        .vpc_id("vpc-0a1b2c3d")
        .subnet_ids("subnet-0a1b2c3d")
        .default_user_settings(
            UserSettings::builder()
                .execution_role("arn:aws:iam::123456789012:role/r")
                .jupyter_lab_app_settings(
                    JupyterLabAppSettings::builder()
                        .default_resource_spec(
                            ResourceSpec::builder()
                                .instance_type(AppInstanceType::from("ml.t3.colossal"))
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));
    let message = err.message().unwrap_or_default();
    assert!(
        message.contains("Value 'ml.t3.colossal' at 'defaultUserSettings.jupyterLabAppSettings.defaultResourceSpec.instanceType'"),
        "{message}"
    );
    assert!(bed.fx.twin.lock().sm.domains.is_empty());
}

/// SageMaker Projects: `EnableSagemakerServicecatalogPortfolio` switches the account's status to
/// `Enabled` and SageMaker's portfolio appears among the accepted shares (provider "Amazon SageMaker",
/// as `ListAcceptedPortfolioShares` shows it after enabling, SageMaker Developer Guide "Enable
/// SageMaker AI Projects"); principals can then be associated with it; disabling removes the share, and
/// a principal cannot be associated with a portfolio that is not shared (`ResourceNotFoundException`).
#[tokio::test]
async fn projects_share_sagemakers_portfolio_while_enabled() {
    use aws_sdk_sagemaker::types::SagemakerServicecatalogStatus;
    use aws_sdk_servicecatalog::types::PrincipalType;
    let bed = bed().await;
    let sc = aws_sdk_servicecatalog::Client::from_conf(
        aws_sdk_servicecatalog::config::Builder::from(&bed.fx.config)
            .endpoint_url(&bed.fx.twin.endpoint)
            .build(),
    );
    let status = bed
        .sm
        .get_sagemaker_servicecatalog_portfolio_status()
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.status(),
        Some(&SagemakerServicecatalogStatus::Disabled)
    );
    let shares = sc.list_accepted_portfolio_shares().send().await.unwrap();
    assert!(shares.portfolio_details().is_empty());
    let err = sc
        .associate_principal_with_portfolio()
        .portfolio_id(testbed::twin::sagemaker::PROJECTS_PORTFOLIO)
        .principal_arn("arn:aws:iam::123456789012:role/r")
        .principal_type(PrincipalType::Iam)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ResourceNotFoundException"));

    bed.sm
        .enable_sagemaker_servicecatalog_portfolio()
        .send()
        .await
        .unwrap();
    let shares = sc.list_accepted_portfolio_shares().send().await.unwrap();
    let portfolio = &shares.portfolio_details()[0];
    assert_eq!(portfolio.provider_name(), Some("Amazon SageMaker"));
    let id = portfolio.id().unwrap();
    sc.associate_principal_with_portfolio()
        .portfolio_id(id)
        .principal_arn("arn:aws:iam::123456789012:role/r")
        .principal_type(PrincipalType::Iam)
        .send()
        .await
        .unwrap();
    let principals = sc
        .list_principals_for_portfolio()
        .portfolio_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(principals.principals().len(), 1);

    bed.sm
        .disable_sagemaker_servicecatalog_portfolio()
        .send()
        .await
        .unwrap();
    let shares = sc.list_accepted_portfolio_shares().send().await.unwrap();
    assert!(shares.portfolio_details().is_empty());
}
