//! Settings from the environment (set by the SAM template), read once per cold start.

use shared::Error;
use shared::ids::{AccountId, ParentId, RoleArn};
use shared::settings::Settings;

use crate::job::Job;

/// Where one stage deploys and how big its endpoint is.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: String,
    pub accounts: Vec<AccountId>,
    /// OU or root ids, resolved to their ACTIVE accounts at each deployment.
    pub parents: Vec<ParentId>,
    pub regions: Vec<String>,
    pub instance_type: String,
    pub instance_count: u32,
    /// The pipeline stage and action (`<stage>/<action>`) that deploys this stage: a job of any other
    /// action is refused.
    pub action: (String, String),
}

/// After staging deploys: invoke every staging endpoint through the smoke-test role the endpoint
/// template creates (trusting `principal_arn`, this function's role), then watch its rollback alarms
/// for `bake` before the stage succeeds.
#[derive(Clone, Debug, PartialEq)]
pub struct SmokeTest {
    pub principal_arn: String,
    pub role_path: String,
    pub bake: std::time::Duration,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The pipelines whose jobs this function runs.
    pub pipelines: Vec<String>,
    /// The model package groups that may be deployed.
    pub groups: Vec<String>,
    pub project: String,
    pub stack_set_prefix: String,
    pub template_url: String,
    pub administration_role_arn: RoleArn,
    pub execution_role_name: String,
    pub stages: Vec<Stage>,
    /// The staging checks after a deployment (`None`: `SMOKE_TEST=off`).
    pub smoke: Option<SmokeTest>,
    pub max_concurrent_percentage: i32,
    pub failure_tolerance_percentage: i32,
    pub region_concurrency: String,
    /// The stack whose `Custom::EndpointRetirement` this function serves (`APPLICATION_STACK_ID`, the
    /// template's own stack); requests of any other stack are refused. `None`: retirement is off.
    pub application_stack: Option<String>,
    /// The wait before a failed instance deletion is tried again (`RETIRE_RETRY_SECONDS`): endpoint
    /// network interfaces take minutes to be released, and a stack holding a security group that one
    /// still uses fails to delete until then.
    pub retire_retry: std::time::Duration,
}

impl Config {
    /// The deployment stage a job belongs to — only when it is a job of a configured pipeline and of
    /// one of the configured deploy actions. The refusal names what the job is.
    pub fn stage_of(&self, job: &Job) -> Result<&Stage, Error> {
        let refused = |why: String| {
            Error::invalid(format!(
                "refused job {}: it belongs to pipeline \"{}\", stage \"{}\", action \"{}\" ({}); {why}",
                job.id, job.pipeline, job.stage, job.action, job.action_type
            ))
        };
        if !self.pipelines.contains(&job.pipeline) {
            return Err(refused(format!(
                "this function deploys for {} only (PIPELINE_NAMES)",
                self.pipelines.join(", ")
            )));
        }
        if job.action_type != "Invoke/AWS/Lambda" {
            return Err(refused("not a Lambda invoke action".into()));
        }
        self.stages
            .iter()
            .find(|s| s.action.0 == job.stage && s.action.1 == job.action)
            .ok_or_else(|| {
                refused(format!(
                    "the deploy actions are {} (STAGING_ACTION, PROD_ACTION)",
                    self.stages
                        .iter()
                        .map(|s| format!("{}/{}", s.action.0, s.action.1))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// The URL of one version of the endpoint template.
    pub fn template_url(&self, version: &str) -> String {
        format!(
            "{}?versionId={}",
            self.template_url,
            percent_encoding::utf8_percent_encode(version, percent_encoding::NON_ALPHANUMERIC)
        )
    }

    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let env = Settings::new(get);
        let default_region = env.get("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
        let mut stages = Vec::new();
        for (name, prefix, count, action) in [
            ("staging", "STAGING", 1, "DeployStaging/StagingEndpoints"),
            ("prod", "PROD", 2, "DeployProduction/ProductionEndpoints"),
        ] {
            let key = format!("{prefix}_ACTION");
            let action = env.get(&key).unwrap_or_else(|| action.into());
            let action = match action.split_once('/') {
                Some((s, a)) if !s.is_empty() && !a.is_empty() && !a.contains('/') => {
                    (s.to_owned(), a.to_owned())
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "{key}={action}: expected <pipeline stage name>/<action name>"
                    )));
                }
            };
            let targets = env.list(&format!("{prefix}_TARGETS"));
            if targets.is_empty() {
                return Err(Error::invalid(format!(
                    "{prefix}_TARGETS is not set: the {name} account ids or OU ids (comma-separated)"
                )));
            }
            let (mut accounts, mut parents) = (Vec::new(), Vec::new());
            for t in targets {
                if let Ok(a) = t.parse::<AccountId>() {
                    accounts.push(a);
                } else {
                    parents.push(t.parse::<ParentId>().map_err(|e| {
                        Error::invalid(format!(
                            "{prefix}_TARGETS: \"{t}\" is neither a 12-digit account id nor an OU/root id ({e})"
                        ))
                    })?);
                }
            }
            let mut regions = env.list(&format!("{prefix}_REGIONS"));
            if regions.is_empty() {
                regions.push(default_region.clone());
            }
            stages.push(Stage {
                name: name.into(),
                accounts,
                parents,
                regions,
                instance_type: env
                    .get(&format!("{prefix}_INSTANCE_TYPE"))
                    .unwrap_or_else(|| "ml.m5.large".into()),
                instance_count: env.number(&format!("{prefix}_INSTANCE_COUNT"), count, 1..=100)?
                    as u32,
                action,
            });
        }
        let pipelines = env.list("PIPELINE_NAMES");
        if pipelines.is_empty() {
            return Err(Error::invalid(
                "PIPELINE_NAMES is not set: the deployment pipeline(s) whose jobs this function runs (comma-separated)",
            ));
        }
        let groups = env.list("MODEL_PACKAGE_GROUPS");
        if groups.is_empty() {
            return Err(Error::invalid(
                "MODEL_PACKAGE_GROUPS is not set: the comma-separated model package groups that may be deployed",
            ));
        }
        let template_url = env.required(
            "TEMPLATE_URL",
            "the S3 URL of infra/stacksets/model-endpoint.yaml",
        )?;
        if !template_url.starts_with("https://") || template_url.contains(['?', '#']) {
            return Err(Error::invalid(format!(
                "TEMPLATE_URL={template_url}: expected the https URL of the template object, without a query (the version comes from the pipeline)"
            )));
        }
        let administration_role_arn = env
            .required(
                "ADMINISTRATION_ROLE_ARN",
                "the stack set administration role ARN",
            )?
            .parse::<RoleArn>()
            .map_err(|e| Error::invalid(format!("ADMINISTRATION_ROLE_ARN: {e}")))?;
        let smoke = match env.choice("SMOKE_TEST", "on", &["on", "off"])? {
            "off" => None,
            _ => Some(SmokeTest {
                principal_arn: env.required(
                    "SMOKE_PRINCIPAL_ARN",
                    "the ARN of this function's role, which the staging smoke-test roles trust (or SMOKE_TEST=off)",
                )?,
                role_path: env
                    .get("SMOKE_ROLE_PATH")
                    .unwrap_or_else(|| "secure-mlops-smoke".into()),
                bake: std::time::Duration::from_secs(env.number("BAKE_SECONDS", 900, 0..=86_400)?),
            }),
        };
        Ok(Config {
            smoke,
            pipelines,
            groups,
            project: env
                .get("PROJECT_NAME")
                .unwrap_or_else(|| "secure-mlops".into()),
            stack_set_prefix: shared::deploy::stack_set_prefix(env.get("STACK_SET_PREFIX"))?,
            template_url,
            administration_role_arn,
            execution_role_name: env
                .get("EXECUTION_ROLE_NAME")
                .unwrap_or_else(|| "AWSCloudFormationStackSetExecutionRole".into()),
            stages,
            max_concurrent_percentage: env.number("MAX_CONCURRENT_PERCENTAGE", 100, 1..=100)?
                as i32,
            failure_tolerance_percentage: env.number("FAILURE_TOLERANCE_PERCENTAGE", 0, 0..=100)?
                as i32,
            region_concurrency: env
                .choice(
                    "REGION_CONCURRENCY",
                    "SEQUENTIAL",
                    &["SEQUENTIAL", "PARALLEL"],
                )?
                .to_owned(),
            application_stack: env.get("APPLICATION_STACK_ID"),
            retire_retry: std::time::Duration::from_secs(env.number(
                "RETIRE_RETRY_SECONDS",
                120,
                0..=900,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let mut env: HashMap<String, String> = [
            ("STAGING_TARGETS", "111111111111"),
            ("PROD_TARGETS", "222222222222,ou-ab12-abcdefgh"),
            (
                "ADMINISTRATION_ROLE_ARN",
                "arn:aws:iam::123456789012:role/Admin",
            ),
            (
                "TEMPLATE_URL",
                "https://artifacts.s3.amazonaws.com/model-endpoint.yaml",
            ),
            ("AWS_REGION", "eu-west-1"),
            ("PIPELINE_NAMES", "p"),
            ("MODEL_PACKAGE_GROUPS", "churn"),
            (
                "SMOKE_PRINCIPAL_ARN",
                "arn:aws:iam::123456789012:role/deploy",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            env.insert(k.to_string(), v.to_string());
        }
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_and_targets() {
        let c = config(&[]).unwrap();
        let prod = &c.stages[1];
        assert_eq!(prod.name, "prod");
        assert_eq!(prod.accounts, [AccountId("222222222222".into())]);
        assert_eq!(prod.parents.len(), 1);
        assert_eq!(prod.regions, ["eu-west-1"]);
        assert_eq!(prod.instance_count, 2);
        assert_eq!(c.stages[0].instance_count, 1);
        assert_eq!(c.failure_tolerance_percentage, 0);
        assert_eq!(
            c.template_url("a+b/c"),
            "https://artifacts.s3.amazonaws.com/model-endpoint.yaml?versionId=a%2Bb%2Fc"
        );
    }

    #[test]
    fn only_jobs_of_the_configured_pipeline_and_actions_have_a_stage() {
        let c = config(&[]).unwrap();
        let job = |pipeline: &str, stage: &str, action: &str, kind: &str| Job {
            id: "j".into(),
            pipeline: pipeline.into(),
            stage: stage.into(),
            action: action.into(),
            action_type: kind.into(),
            ..Job::default()
        };
        let lambda = "Invoke/AWS/Lambda";
        assert_eq!(
            c.stage_of(&job("p", "DeployProduction", "ProductionEndpoints", lambda))
                .unwrap()
                .name,
            "prod"
        );
        for (j, expected) in [
            (
                job("other", "DeployProduction", "ProductionEndpoints", lambda),
                "PIPELINE_NAMES",
            ),
            (
                job("p", "DeployProduction", "StagingEndpoints", lambda),
                "STAGING_ACTION",
            ),
            (
                job("p", "DeployStaging", "StagingEndpoints", "Build/Custom/X"),
                "not a Lambda",
            ),
        ] {
            let e = c.stage_of(&j).unwrap_err().to_string();
            assert!(e.contains(expected) && e.contains("refused job j"), "{e}");
        }
    }

    #[test]
    fn wrong_values_name_the_variable() {
        let e = config(&[("STAGING_TARGETS", "1111,ou-x")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("STAGING_TARGETS"), "{e}");
        let e = config(&[("PROD_INSTANCE_COUNT", "zero")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("PROD_INSTANCE_COUNT"), "{e}");
        for (key, value) in [
            ("PIPELINE_NAMES", ""),
            ("MODEL_PACKAGE_GROUPS", " "),
            ("STAGING_ACTION", "DeployStaging"),
            (
                "TEMPLATE_URL",
                "https://b.s3.amazonaws.com/t.yaml?versionId=1",
            ),
        ] {
            let e = config(&[(key, value)]).unwrap_err().to_string();
            assert!(e.starts_with(key), "{e}");
        }
        let e = config(&[("REGION_CONCURRENCY", "sideways")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("REGION_CONCURRENCY"), "{e}");
    }
}
