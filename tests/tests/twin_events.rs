//! The twin's events reach moto's EventBridge and are routed by a template's own patterns: model
//! package changes as `SageMaker Model Package State Change`, watched calls as `AWS API Call via
//! CloudTrail` with camelCase `requestParameters` (and `errorCode` when the call failed).

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::ModelApprovalStatus;
use testbed::events::{Router, routes};
use testbed::moto::Moto;
use testbed::twin::Twin;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/events-template.yaml")
}

#[test]
fn routes_come_from_the_template_with_parameters_resolved() {
    let r = routes(&fixture()).unwrap();
    assert_eq!(r.len(), 2, "{r:?}");
    let approval = r.iter().find(|r| r.function == "model-approval").unwrap();
    assert_eq!(
        approval.pattern["detail"]["ModelPackageGroupName"],
        serde_json::json!(["churn", "fraud"])
    );
    let detective = r
        .iter()
        .find(|r| r.function == "detective-control")
        .unwrap();
    assert_eq!(detective.rule, "DetectiveRule");
}

#[tokio::test]
async fn events_are_routed_by_the_template_patterns() {
    let moto = Moto::start().await;
    let twin = Twin::start(0, Some(moto.endpoint.clone())).await.unwrap();
    let router = Router::install(&moto.endpoint, &routes(&fixture()).unwrap()).await;
    let config = aws_sdk_sagemaker::config::Builder::from(&moto.sdk_config().await)
        .endpoint_url(&twin.endpoint)
        .build();
    let sm = Client::from_conf(config);

    for group in ["churn", "other"] {
        sm.create_model_package_group()
            .model_package_group_name(group)
            .send()
            .await
            .unwrap();
        let arn = sm
            .create_model_package()
            .model_package_group_name(group)
            .send()
            .await
            .unwrap()
            .model_package_arn()
            .unwrap()
            .to_owned();
        sm.update_model_package()
            .model_package_arn(&arn)
            .model_approval_status(ModelApprovalStatus::Approved)
            .send()
            .await
            .unwrap();
    }
    sm.create_training_job()
        .training_job_name("j1")
        .role_arn("arn:aws:iam::123456789012:role/Exec")
        .send()
        .await
        .unwrap();
    sm.create_training_job()
        .training_job_name("j1")
        .send()
        .await
        .unwrap_err();
    sm.create_model().model_name("m").send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let approvals = router.received("model-approval").await;
    assert_eq!(
        approvals.len(),
        2,
        "created + approved in the configured group only: {approvals:#?}"
    );
    assert!(
        approvals
            .iter()
            .all(|e| e["detail"]["ModelPackageGroupName"] == "churn")
    );
    assert_eq!(
        approvals[0]["detail-type"],
        "SageMaker Model Package State Change"
    );
    let statuses: Vec<_> = approvals
        .iter()
        .map(|e| e["detail"]["ModelApprovalStatus"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"Approved") && statuses.contains(&"PendingManualApproval"),
        "{statuses:?}"
    );
    assert!(
        approvals[0]["resources"][0]
            .as_str()
            .unwrap()
            .contains("model-package/churn/1")
    );

    let trail = router.received("detective-control").await;
    assert_eq!(
        trail.len(),
        2,
        "CreateTrainingJob twice (CreateModel is not in the pattern): {trail:#?}"
    );
    let ok = trail
        .iter()
        .find(|e| e["detail"].get("errorCode").is_none())
        .unwrap();
    assert_eq!(ok["detail"]["eventName"], "CreateTrainingJob");
    assert_eq!(ok["detail"]["requestParameters"]["trainingJobName"], "j1");
    assert!(
        ok["detail"]["userIdentity"]["arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::123456789012:assumed-role/")
    );
    let failed = trail
        .iter()
        .find(|e| e["detail"].get("errorCode").is_some())
        .unwrap();
    assert_eq!(failed["detail"]["errorCode"], "ResourceInUse");
    assert!(failed["detail"]["responseElements"].is_null());
}
