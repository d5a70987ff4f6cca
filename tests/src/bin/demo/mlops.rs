//! Steps 2, 4, 5 and their teardown: cross-account model access, the gated model deployment
//! (registry → pipeline → staging → approval → production), the detective control; then the grant's
//! Delete and the endpoint stack sets removed as an operator removes them.

use std::time::{Duration, Instant};

use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, ModelApprovalStatus, OutputDataConfig, ResourceConfig,
    StoppingCondition, TrainingInputMode, TrainingInstanceType,
};
use serde_json::{Value, json};
use testbed::deployment;
use testbed::harness::{Harness, Invoked};

use crate::world::{MODEL_BUCKET, PROD_REGIONS, STACK_SETS, World};
use crate::{Story, physical};

const ACCESS: &str = "Custom::CrossAccountModelAccess";

async fn invoke(h: &Harness, event: &Value) -> Value {
    match h.invoke(event).await {
        Invoked::Response(v) => v,
        other => json!({"error": format!("{other:?}")}),
    }
}

pub struct Grant {
    props: Value,
    sid: String,
}

/// Step 2: read access to the model artifacts (bucket prefix + key) for every target account.
pub async fn grant(story: &mut Story, w: &World) -> Grant {
    let t = Instant::now();
    let accounts: Vec<String> = w
        .staging_accounts
        .iter()
        .chain(&w.prod_accounts)
        .cloned()
        .collect();
    let props = json!({"BucketName": MODEL_BUCKET, "KmsKeyArn": w.key_arn,
                       "AccountIds": accounts.join(","), "Prefix": "churn/"});
    let body = w
        .cfn(&w.access_fn, "grant", "Create", ACCESS, props.clone(), None)
        .await;
    let policy =
        w.s3.get_bucket_policy()
            .bucket(MODEL_BUCKET)
            .send()
            .await
            .ok()
            .and_then(|p| p.policy)
            .unwrap_or_default();
    let sid = physical(&body);
    story.record(
        "(2) Custom::CrossAccountModelAccess Create",
        "cross-account-access",
        body["Status"] == "SUCCESS" && policy.contains(&sid) && !sid.is_empty(),
        format!(
            "{} accounts may read s3://{MODEL_BUCKET}/churn/* and decrypt; Sid {sid}",
            accounts.len()
        ),
        t.elapsed(),
    );
    Grant { props, sid }
}

/// Step 4: a model version is registered and approved: the deployment starts by itself.
pub async fn deploy(story: &mut Story, w: &World) {
    let t = Instant::now();
    let version = deployment::register_version(
        &w.sm,
        "churn",
        &format!("s3://{MODEL_BUCKET}/churn/1/model.tar.gz"),
        ModelApprovalStatus::Approved,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = w.router.received("secure-mlops-model-approval").await;
    let mut answers = Vec::new();
    for e in &events {
        answers.push(invoke(&w.approval_fn, e).await);
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
        "(4) register + approve churn/1 -> pipeline started",
        "model-approval",
        started.len() == 1 && started[0]["version"] == version.as_str(),
        format!("{} events, 1 start: execution {execution}", events.len()),
        t.elapsed(),
    );

    let t = Instant::now();
    let at_gate = deployment::settle(&w.cp, &execution, Duration::from_secs(60))
        .await
        .is_none();
    let staging = cfn_instances(&w.config, STACK_SETS[0]).await;
    story.record(
        "   DeployStaging: stack set -> staging OU accounts",
        "stackset-deploy",
        at_gate && staging == w.staging_accounts.len(),
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
        Some(e) => invoke(&w.approval_fn, e).await,
        None => json!({}),
    };
    let executions = w.fx.twin.lock().cp.executions.len();
    story.record(
        "   the same approval event again -> nothing new",
        "model-approval",
        dup["action"] == "none" && executions == 1,
        dup["reason"].as_str().unwrap_or("?").to_owned(),
        t.elapsed(),
    );

    let t = Instant::now();
    if let Some(token) = deployment::approval_token(&w.cp).await {
        deployment::approve(&w.cp, &token, true).await;
    }
    let status = deployment::settle(&w.cp, &execution, Duration::from_secs(60)).await;
    let prod = cfn_instances(&w.config, STACK_SETS[1]).await;
    story.record(
        "   approve production -> DeployProduction",
        "stackset-deploy",
        status.as_ref().map(|s| s.as_str()) == Some("Succeeded")
            && prod == w.prod_accounts.len() * PROD_REGIONS.len(),
        format!(
            "{prod} endpoints ({} accounts x {} regions); pipeline {:?}",
            w.prod_accounts.len(),
            PROD_REGIONS.len(),
            status
        ),
        t.elapsed(),
    );
}

/// Step 5: a training job without VPC appears: stopped, and the security team is alerted.
pub async fn detective(story: &mut Story, w: &World) {
    let t = Instant::now();
    let _ =
        w.sm.create_training_job()
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
                    .instance_count(2)
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
    for e in w.router.received("secure-mlops-detective-control").await {
        handled.push(invoke(&w.detective_fn, &e).await);
    }
    let status =
        w.sm.describe_training_job()
            .training_job_name("quick-experiment")
            .send()
            .await
            .ok()
            .and_then(|d| d.training_job_status().map(|s| s.as_str().to_owned()))
            .unwrap_or_default();
    let alerts = w.fx.inbox.alerts(1, Duration::from_secs(5)).await;
    let alert = alerts
        .iter()
        .find(|a| a.body["resourceName"] == "quick-experiment");
    story.record(
        "(5) training job without VPC -> stopped + alert",
        "detective-control",
        matches!(status.as_str(), "Stopping" | "Stopped") && alert.is_some(),
        format!(
            "job {status}; {} finding(s) in Security Hub",
            w.fx.inbox.findings().await.len()
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
}

/// Step 6: the grant goes: the bucket policy and the key policy are as they were.
pub async fn revoke(story: &mut Story, w: &World, grant: Grant) {
    let t = Instant::now();
    let body = w
        .cfn(
            &w.access_fn,
            "revoke",
            "Delete",
            ACCESS,
            grant.props,
            Some(&grant.sid),
        )
        .await;
    let left =
        w.s3.get_bucket_policy()
            .bucket(MODEL_BUCKET)
            .send()
            .await
            .ok()
            .and_then(|p| p.policy);
    story.record(
        "   Custom::CrossAccountModelAccess Delete",
        "cross-account-access",
        body["Status"] == "SUCCESS" && left.is_none(),
        "the bucket has no policy again; the key policy has only its own statements".into(),
        t.elapsed(),
    );
}

/// Step 6: the endpoint stack sets, removed as the README's teardown says: instances (and their stacks'
/// endpoints) first, then the stack set.
pub async fn remove_stack_sets(story: &mut Story, w: &World) {
    let cfn = aws_sdk_cloudformation::Client::new(&w.config);
    for (name, accounts, regions) in [
        (STACK_SETS[0], &w.staging_accounts, &["us-east-1"][..]),
        (STACK_SETS[1], &w.prod_accounts, &PROD_REGIONS[..]),
    ] {
        let t = Instant::now();
        let deleted = cfn
            .delete_stack_instances()
            .stack_set_name(name)
            .set_accounts(Some(accounts.clone()))
            .set_regions(Some(regions.iter().map(|r| r.to_string()).collect()))
            .retain_stacks(false)
            .send()
            .await;
        let mut left = usize::MAX;
        for _ in 0..100 {
            left = cfn_instances(&w.config, name).await;
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let removed = cfn.delete_stack_set().stack_set_name(name).send().await;
        story.record(
            &format!("   operator: delete stack set {name}"),
            "-",
            deleted.is_ok() && left == 0 && removed.is_ok(),
            match (&deleted, &removed) {
                (Ok(_), Ok(_)) => format!(
                    "{} instances and their endpoints deleted",
                    accounts.len() * regions.len()
                ),
                (Err(e), _) => format!("DeleteStackInstances: {e:?}"),
                (_, Err(e)) => format!("DeleteStackSet: {e:?}"),
            },
            t.elapsed(),
        );
    }
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
