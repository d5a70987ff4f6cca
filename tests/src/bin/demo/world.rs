//! The demo's world: the emulated accounts as a platform team has them before installing
//! secure-mlops (organization, VPC, model bucket and key, target-account prerequisites, the model
//! registry and the deployment pipeline), the seven functions under the Lambda harness, and an
//! inventory of everything the story may create, to prove the teardown leaves nothing behind.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use testbed::cfn::request;
use testbed::deployment;
use testbed::events::Router;
use testbed::fixture::Fixture;
use testbed::harness::{CfnPut, Harness};
use testbed::org::SeededOrg;
use testbed::twin::moto_side::{ec2, efs, studio_network};

pub const MODEL_BUCKET: &str = "secure-mlops-models";
pub use testbed::deployment::ARTIFACTS_BUCKET;
pub const PROD_REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
pub const STACK_SETS: [&str; 2] = ["secure-mlops--churn-staging", "secure-mlops--churn-prod"];

pub struct World {
    /// Moto, the twin, the project's stack deployed into them (alert topic and inbox, tables).
    pub fx: Fixture,
    pub config: SdkConfig,
    pub org: SeededOrg,
    pub router: Router,
    pub key_arn: String,
    pub studio_props: Value,
    pub staging_accounts: Vec<String>,
    pub prod_accounts: Vec<String>,
    pub sm: aws_sdk_sagemaker::Client,
    pub cp: aws_sdk_codepipeline::Client,
    pub s3: aws_sdk_s3::Client,
    pub org_fn: Harness,
    pub access_fn: Harness,
    pub domain_fn: Harness,
    pub profile_fn: Harness,
    pub approval_fn: Harness,
    pub deploy_fn: Harness,
    pub detective_fn: Harness,
}

impl World {
    pub async fn prepare(mut fx: Fixture) -> Result<World, String> {
        let config = fx.config.clone();
        let org = testbed::org::seed(&config).await;
        fx.stack = deployment::targets(
            fx.stack.clone(),
            org.ou("Staging"),
            &[org.ou("Production")],
            &PROD_REGIONS,
        );
        let (moto, twin) = (&fx.moto, &fx.twin);
        for key in [
            "domain.create",
            "domain.delete",
            "profile.create",
            "profile.delete",
            "app.create",
            "app.delete",
        ] {
            twin.set_duration(key, 1.0);
        }
        twin.set_duration("pipeline.continuation", 0.2);
        twin.set_duration("job", 300.0);
        let s3 = moto.s3().await;
        let _ = s3.create_bucket().bucket(MODEL_BUCKET).send().await;
        deployment::publish_template(&s3, ARTIFACTS_BUCKET).await;
        let router = fx.router().await;
        let key_arn = aws_sdk_kms::Client::new(&config)
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
        let studio_props = studio_domain_props(&moto.endpoint).await;
        let sm = twin.sagemaker(&config);
        let cp = twin.codepipeline(&config);
        let _ = sm
            .create_model_package_group()
            .model_package_group_name("churn")
            .send()
            .await;

        // Every function as the template configures it; the Studio ones poll faster than on AWS.
        let function = |logical: &str| fx.function(logical);
        let org_fn = Harness::start(function("OrgAccountsFunction")).await;
        let access_fn = Harness::start(function("CrossAccountAccessFunction")).await;
        let domain_fn = Harness::start(
            function("StudioDomainFunction").env("SECURE_MLOPS_POLL_BASE_MS", "250"),
        )
        .await;
        let profile_fn = Harness::start(
            function("StudioUserProfileFunction").env("SECURE_MLOPS_POLL_BASE_MS", "250"),
        )
        .await;
        let approval_fn = Harness::start(function("ModelApprovalFunction")).await;
        let deploy_fn = Harness::start(deployment::stackset_deploy(&fx)).await;
        twin.register_lambda("secure-mlops-stackset-deploy", deploy_fn.endpoint());
        let detective_fn = Harness::start(function("DetectiveControlFunction")).await;
        deployment::create_pipeline(&cp, "secure-mlops-stackset-deploy", ARTIFACTS_BUCKET, true)
            .await;
        Ok(World {
            fx,
            config,
            org,
            router,
            key_arn,
            studio_props,
            staging_accounts,
            prod_accounts,
            sm,
            cp,
            s3,
            org_fn,
            access_fn,
            domain_fn,
            profile_fn,
            approval_fn,
            deploy_fn,
            detective_fn,
        })
    }

    /// Stops the functions, then the emulator.
    pub async fn stop(self) {
        let moto = {
            let world = self;
            world.fx.moto
        }; // the rest of the world, every function process with it, is gone here
        moto.stop().await;
    }

    /// The seven functions, by name.
    pub fn functions(&self) -> [(&'static str, &Harness); 7] {
        [
            ("org-accounts", &self.org_fn),
            ("cross-account-access", &self.access_fn),
            ("studio-domain", &self.domain_fn),
            ("studio-user-profile", &self.profile_fn),
            ("model-approval", &self.approval_fn),
            ("stackset-deploy", &self.deploy_fn),
            ("detective-control", &self.detective_fn),
        ]
    }

    /// Sends a CloudFormation request as CloudFormation does (asynchronous invoke) and waits for the
    /// one response on its ResponseURL.
    pub async fn cfn(
        &self,
        h: &Harness,
        key: &str,
        kind: &str,
        resource_type: &str,
        props: Value,
        physical: Option<&str>,
    ) -> Value {
        h.invoke_async(&request(
            kind,
            &h.response_url(key),
            resource_type,
            "Resource",
            props,
            physical,
            None,
        ));
        let responses: Vec<CfnPut> = h.wait_for_response(key, Duration::from_secs(60)).await;
        match responses.as_slice() {
            [one] => one.body.clone(),
            [] => json!({"Status": "NO RESPONSE"}),
            many => json!({"Status": format!("{} RESPONSES", many.len())}),
        }
    }

    /// What the story may create, as names: what must be back to its first state after the teardown.
    pub async fn inventory(&self) -> BTreeMap<&'static str, Vec<String>> {
        let mut out = BTreeMap::new();
        let domains = self
            .sm
            .list_domains()
            .send()
            .await
            .map(|d| {
                d.domains()
                    .iter()
                    .map(|d| {
                        format!(
                            "{} {}",
                            d.domain_id().unwrap_or_default(),
                            d.status().map(|s| s.as_str()).unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_else(|e| vec![format!("error: {e}")]);
        out.insert("Studio domains", domains);
        let profiles = self
            .sm
            .list_user_profiles()
            .send()
            .await
            .map(|p| {
                p.user_profiles()
                    .iter()
                    .map(|p| p.user_profile_name().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_else(|e| vec![format!("error: {e}")]);
        out.insert("Studio user profiles", profiles);
        let apps = self
            .sm
            .list_apps()
            .send()
            .await
            .map(|a| {
                a.apps()
                    .iter()
                    .filter(|a| a.status().map(|s| s.as_str()) != Some("Deleted"))
                    .map(|a| a.app_name().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_else(|e| vec![format!("error: {e}")]);
        out.insert("Studio apps", apps);
        let m = &self.fx.moto.endpoint;
        let file_systems = efs(m, reqwest::Method::GET, "file-systems", None)
            .await
            .and_then(|v| v["FileSystems"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f["FileSystemId"].as_str().map(str::to_owned))
            .collect();
        out.insert("EFS file systems", file_systems);
        let groups = ec2(m, &[("Action", "DescribeSecurityGroups")])
            .await
            .map(|x| {
                x.split("<groupId>")
                    .skip(1)
                    .filter_map(|s| s.split('<').next().map(str::to_owned))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default();
        out.insert("security groups", groups);
        let policy = self
            .s3
            .get_bucket_policy()
            .bucket(MODEL_BUCKET)
            .send()
            .await
            .ok()
            .and_then(|p| p.policy)
            .map(|p| vec![p])
            .unwrap_or_default();
        out.insert("model bucket policy", policy);
        let key_policy = aws_sdk_kms::Client::new(&self.config)
            .get_key_policy()
            .key_id(&self.key_arn)
            .send()
            .await
            .ok()
            .and_then(|p| p.policy)
            .map(|p| vec![p])
            .unwrap_or_default();
        out.insert("model key policy", key_policy);
        let cfn = aws_sdk_cloudformation::Client::new(&self.config);
        let stack_sets = cfn
            .list_stack_sets()
            .status(aws_sdk_cloudformation::types::StackSetStatus::Active)
            .send()
            .await
            .map(|s| {
                s.summaries()
                    .iter()
                    .filter(|s| s.status().map(|s| s.as_str()) == Some("ACTIVE"))
                    .filter_map(|s| s.stack_set_name().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        out.insert("stack sets", stack_sets);
        let mut endpoints = Vec::new();
        for (account, region) in [
            self.staging_accounts.first().map(|a| (a, "us-east-1")),
            self.prod_accounts.last().map(|a| (a, "eu-west-1")),
        ]
        .into_iter()
        .flatten()
        {
            let sm = deployment::sagemaker_in(&self.config, account, region).await;
            if let Ok(list) = sm.list_endpoints().send().await {
                endpoints.extend(list.endpoints().iter().map(|e| {
                    format!(
                        "{account}/{region}/{}",
                        e.endpoint_name().unwrap_or_default()
                    )
                }));
            }
        }
        out.insert("endpoints (a staging and a prod account)", endpoints);
        out
    }
}

/// A VPC with two subnets and a security group for Studio apps: a VPC-only domain's properties.
async fn studio_domain_props(m: &str) -> Value {
    let (vpc, subnets, sg) = studio_network(m, 9, "studio-apps").await;
    json!({"DomainName": "demo-studio", "VpcId": vpc, "SubnetIds": subnets, "SecurityGroupIds": [sg],
           "DefaultExecutionRoleArn": "arn:aws:iam::123456789012:role/StudioExecution",
           "AppNetworkAccessType": "VpcOnly"})
}
