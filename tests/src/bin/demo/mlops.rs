//! The demo's second half: cross-account model access, the gated model deployment (registry → pipeline
//! → staging → approval → production) and the detective control, then the teardown.

use std::time::{Duration, Instant};

use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, ModelApprovalStatus, OutputDataConfig, ResourceConfig,
    StoppingCondition, TrainingInputMode, TrainingInstanceType,
};
use serde_json::{Value, json};
use testbed::alerts::Inbox;
use testbed::bins;
use testbed::cfn::request;
use testbed::deployment::{self, PIPELINE};
use testbed::events::{Router, project_routes};
use testbed::harness::{Config, Harness, Outcome};
use testbed::moto::Moto;
use testbed::org::SeededOrg;
use testbed::twin::Twin;

use crate::Story;

const PROD_REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

fn env(config: Config, moto: &Moto, twin: &Twin) -> Config {
    config
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ENDPOINT_URL_SAGEMAKER", &twin.endpoint)
        .env("AWS_ENDPOINT_URL_CODEPIPELINE", &twin.endpoint)
}

async fn invoke(h: &Harness, event: &Value) -> Value {
    match h.invoke(event).await {
        Outcome::Response(v) => v,
        other => json!({"error": format!("{other:?}")}),
    }
}

pub async fn run(story: &mut Story, moto: &Moto, org: &SeededOrg) {
    let t = Instant::now();
    let config = moto.sdk_config().await;
    let Ok(twin) = Twin::start(0, Some(moto.endpoint.clone())).await else {
        story.record(
            "start the twin for the deployment",
            "-",
            false,
            "cannot bind".into(),
            t.elapsed(),
        );
        return;
    };
    twin.set_duration("pipeline.continuation", 0.2);
    twin.set_duration("job", 300.0);
    let inbox = Inbox::create(&config, "secure-mlops-alerts").await;
    let router = Router::install(&moto.endpoint, &project_routes()).await;
    let s3 = moto.s3().await;
    let kms = aws_sdk_kms::Client::new(&config);
    let _ = s3
        .create_bucket()
        .bucket("secure-mlops-artifacts")
        .send()
        .await;
    let _ = s3
        .create_bucket()
        .bucket("secure-mlops-models")
        .send()
        .await;
    let template = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/stacksets/model-endpoint.yaml"
    ))
    .unwrap_or_default();
    let _ = s3
        .put_object()
        .bucket("secure-mlops-artifacts")
        .key("stacksets/model-endpoint.yaml")
        .body(template.into())
        .send()
        .await;
    let key_arn = kms
        .create_key()
        .description("model artifacts")
        .send()
        .await
        .ok()
        .and_then(|k| k.key_metadata)
        .and_then(|m| m.arn)
        .unwrap_or_default();
    let staging_accounts = org.expected(&["Staging"], true);
    let prod_accounts = org.expected(&["Production"], true);
    for a in &staging_accounts {
        deployment::prepare_target(&config, a, &["us-east-1"]).await;
    }
    for a in &prod_accounts {
        deployment::prepare_target(&config, a, &PROD_REGIONS).await;
    }
    let access = Harness::start(env(
        Config::new(
            bins::path("cross-account-access"),
            "secure-mlops-cross-account-access",
        ),
        moto,
        &twin,
    ))
    .await;
    let approval = Harness::start(
        env(
            Config::new(bins::path("model-approval"), "secure-mlops-model-approval"),
            moto,
            &twin,
        )
        .env("PIPELINE_NAME", PIPELINE)
        .env("MODEL_PACKAGE_GROUPS", "churn")
        .env("ALERT_TOPIC_ARN", &inbox.topic_arn),
    )
    .await;
    let deploy = Harness::start(
        env(
            Config::new(
                bins::path("stackset-deploy"),
                "secure-mlops-stackset-deploy",
            ),
            moto,
            &twin,
        )
        .env(
            "TEMPLATE_URL",
            "https://secure-mlops-artifacts.s3.amazonaws.com/stacksets/model-endpoint.yaml",
        )
        .env(
            "ADMINISTRATION_ROLE_ARN",
            "arn:aws:iam::123456789012:role/AWSCloudFormationStackSetAdministrationRole",
        )
        .env("STAGING_TARGETS", org.ou("Staging"))
        .env("PROD_TARGETS", org.ou("Production"))
        .env("STAGING_REGIONS", "us-east-1")
        .env("PROD_REGIONS", PROD_REGIONS.join(",")),
    )
    .await;
    twin.register_lambda("secure-mlops-stackset-deploy", deploy.endpoint());
    let detective = Harness::start(
        env(
            Config::new(
                bins::path("detective-control"),
                "secure-mlops-detective-control",
            ),
            moto,
            &twin,
        )
        .env("ALERT_TOPIC_ARN", &inbox.topic_arn)
        .env("SECURITY_HUB", "true"),
    )
    .await;
    let sm = twin.sagemaker(&config);
    let cp = twin.codepipeline(&config);
    deployment::create_pipeline(
        &cp,
        "secure-mlops-stackset-deploy",
        "secure-mlops-artifacts",
        true,
    )
    .await;
    story.record(
        "start the deployment bed (pipeline from the template)",
        "-",
        true,
        format!(
            "{} staging + {} prod accounts prepared",
            staging_accounts.len(),
            prod_accounts.len()
        ),
        t.elapsed(),
    );

    // Cross-account read access to the model artifacts for every target account.
    let t = Instant::now();
    let accounts: Vec<String> = staging_accounts
        .iter()
        .chain(&prod_accounts)
        .cloned()
        .collect();
    let props = json!({"BucketName": "secure-mlops-models", "KmsKeyArn": key_arn, "AccountIds": accounts.join(","), "Prefix": "churn/"});
    let event = request(
        "Create",
        &access.response_url("grant"),
        "Custom::CrossAccountModelAccess",
        "ModelAccess",
        props.clone(),
        None,
        None,
    );
    access.invoke_async(&event);
    let body = access
        .wait_for_response("grant", Duration::from_secs(30))
        .await
        .first()
        .map(|p| p.body.clone())
        .unwrap_or_default();
    let policy = s3
        .get_bucket_policy()
        .bucket("secure-mlops-models")
        .send()
        .await
        .ok()
        .and_then(|p| p.policy)
        .unwrap_or_default();
    let sid = body["PhysicalResourceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    story.record(
        "Custom::CrossAccountModelAccess Create",
        "cross-account-access",
        body["Status"] == "SUCCESS" && policy.contains(&sid) && !sid.is_empty(),
        format!(
            "{} accounts may read s3://secure-mlops-models/churn/* and decrypt; Sid {sid}",
            accounts.len()
        ),
        t.elapsed(),
    );

    // A model is registered and approved: the deployment starts by itself.
    let t = Instant::now();
    let _ = sm
        .create_model_package_group()
        .model_package_group_name("churn")
        .send()
        .await;
    let version = deployment::register_version(
        &sm,
        "churn",
        "s3://secure-mlops-models/churn/1/model.tar.gz",
        ModelApprovalStatus::Approved,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = router.received("secure-mlops-model-approval").await;
    let mut answers = Vec::new();
    for e in &events {
        answers.push(invoke(&approval, e).await);
    }
    let started: Vec<&Value> = answers
        .iter()
        .filter(|a| a["action"] == "started")
        .collect();
    let execution = started
        .first()
        .and_then(|a| a["executionId"].as_str())
        .unwrap_or_default()
        .to_owned();
    story.record(
        "register + approve churn/1 -> pipeline started",
        "model-approval",
        started.len() == 1 && started[0]["version"] == version.as_str(),
        format!("{} events, 1 start: execution {execution}", events.len()),
        t.elapsed(),
    );

    let t = Instant::now();
    let at_gate = deployment::settle(&cp, &execution, Duration::from_secs(60))
        .await
        .is_none();
    let staging = cfn_instances(&config, "secure-mlops-churn-staging").await;
    story.record(
        "DeployStaging: stack set -> staging OU accounts",
        "stackset-deploy",
        at_gate && staging == staging_accounts.len(),
        format!(
            "{staging} endpoints (staging OU resolved to ACTIVE accounts); waiting for approval"
        ),
        t.elapsed(),
    );

    let t = Instant::now();
    let dup = match events
        .iter()
        .find(|e| e["detail"]["ModelApprovalStatus"] == "Approved")
    {
        Some(e) => invoke(&approval, e).await,
        None => json!({}),
    };
    let executions = twin.lock().cp.executions.len();
    story.record(
        "the same approval event again -> nothing new",
        "model-approval",
        dup["action"] == "none" && executions == 1,
        dup["reason"].as_str().unwrap_or("?").to_owned(),
        t.elapsed(),
    );

    let t = Instant::now();
    if let Some(token) = deployment::approval_token(&cp).await {
        deployment::approve(&cp, &token, true).await;
    }
    let status = deployment::settle(&cp, &execution, Duration::from_secs(60)).await;
    let prod = cfn_instances(&config, "secure-mlops-churn-prod").await;
    story.record(
        "approve production -> DeployProduction",
        "stackset-deploy",
        status.as_ref().map(|s| s.as_str()) == Some("Succeeded")
            && prod == prod_accounts.len() * PROD_REGIONS.len(),
        format!(
            "{prod} endpoints ({} accounts x {} regions); pipeline {:?}",
            prod_accounts.len(),
            PROD_REGIONS.len(),
            status
        ),
        t.elapsed(),
    );

    // Security: a training job without VPC appears.
    let t = Instant::now();
    let _ = sm
        .create_training_job()
        .training_job_name("quick-experiment")
        .role_arn("arn:aws:iam::123456789012:role/SageMakerExecution")
        .algorithm_specification(
            AlgorithmSpecification::builder()
                .training_image(
                    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                )
                .training_input_mode(TrainingInputMode::File)
                .build(),
        )
        .resource_config(
            ResourceConfig::builder()
                .instance_type(TrainingInstanceType::MlM5Xlarge)
                .instance_count(1)
                .volume_size_in_gb(30)
                .build(),
        )
        .output_data_config(
            OutputDataConfig::builder()
                .s3_output_path("s3://secure-mlops-models/experiments/")
                .build(),
        )
        .stopping_condition(
            StoppingCondition::builder()
                .max_runtime_in_seconds(3600)
                .build(),
        )
        .send()
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut handled = Vec::new();
    for e in router.received("secure-mlops-detective-control").await {
        handled.push(invoke(&detective, &e).await);
    }
    let status = sm
        .describe_training_job()
        .training_job_name("quick-experiment")
        .send()
        .await
        .ok()
        .and_then(|d| d.training_job_status().map(|s| s.as_str().to_owned()))
        .unwrap_or_default();
    let alerts = inbox.alerts(1, Duration::from_secs(5)).await;
    let alert = alerts
        .iter()
        .find(|a| a.body["resourceName"] == "quick-experiment");
    story.record(
        "training job without VPC -> stopped + alert",
        "detective-control",
        matches!(status.as_str(), "Stopping" | "Stopped") && alert.is_some(),
        format!(
            "job {status}; {} finding(s) in Security Hub",
            inbox.findings().await.len()
        ),
        t.elapsed(),
    );
    if let Some(a) = alert {
        println!("\n    ┌ alert as the security team receives it (SNS, KMS-encrypted topic)");
        println!("    │ Subject: {}", a.subject);
        for line in serde_json::to_string_pretty(&a.body)
            .unwrap_or_default()
            .lines()
        {
            println!("    │ {line}");
        }
        println!("    └\n");
    }

    for (name, h) in [
        ("cross-account-access", &access),
        ("model-approval", &approval),
        ("stackset-deploy", &deploy),
        ("detective-control", &detective),
    ] {
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

    // Teardown: the grant goes; the bucket is back to no policy at all.
    let t = Instant::now();
    let event = request(
        "Delete",
        &access.response_url("revoke"),
        "Custom::CrossAccountModelAccess",
        "ModelAccess",
        props,
        Some(&sid),
        None,
    );
    access.invoke_async(&event);
    let body = access
        .wait_for_response("revoke", Duration::from_secs(30))
        .await
        .first()
        .map(|p| p.body.clone())
        .unwrap_or_default();
    let left = s3
        .get_bucket_policy()
        .bucket("secure-mlops-models")
        .send()
        .await
        .ok()
        .and_then(|p| p.policy);
    story.record(
        "Custom::CrossAccountModelAccess Delete",
        "cross-account-access",
        body["Status"] == "SUCCESS" && left.is_none(),
        "the bucket has no policy again; the key policy has only its own statements".into(),
        t.elapsed(),
    );
}

async fn cfn_instances(config: &aws_config::SdkConfig, stack_set: &str) -> usize {
    aws_sdk_cloudformation::Client::new(config)
        .list_stack_instances()
        .stack_set_name(stack_set)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .len()
}
