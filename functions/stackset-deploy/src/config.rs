//! Settings from the environment (set by the SAM template), read once per cold start.

use shared::Error;
use shared::ids::{AccountId, ParentId, RoleArn};
use shared::settings::Settings;

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
}

#[derive(Clone, Debug)]
pub struct Config {
    pub project: String,
    pub stack_set_prefix: String,
    pub template_url: String,
    pub administration_role_arn: RoleArn,
    pub execution_role_name: String,
    pub stages: Vec<Stage>,
    pub max_concurrent_percentage: i32,
    pub failure_tolerance_percentage: i32,
    pub region_concurrency: String,
}

impl Config {
    pub fn stage(&self, name: &str) -> Result<&Stage, Error> {
        self.stages.iter().find(|s| s.name == name).ok_or_else(|| {
            Error::invalid(format!(
                "UserParameters.Stage \"{name}\": expected one of {}",
                self.stages
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let env = Settings::new(get);
        let default_region = env.get("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
        let mut stages = Vec::new();
        for (name, prefix, count) in [("staging", "STAGING", 1), ("prod", "PROD", 2)] {
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
            });
        }
        let administration_role_arn = env
            .required(
                "ADMINISTRATION_ROLE_ARN",
                "the stack set administration role ARN",
            )?
            .parse::<RoleArn>()
            .map_err(|e| Error::invalid(format!("ADMINISTRATION_ROLE_ARN: {e}")))?;
        Ok(Config {
            project: env
                .get("PROJECT_NAME")
                .unwrap_or_else(|| "secure-mlops".into()),
            stack_set_prefix: env
                .get("STACK_SET_PREFIX")
                .unwrap_or_else(|| "secure-mlops".into()),
            template_url: env.required(
                "TEMPLATE_URL",
                "the S3 URL of infra/stacksets/model-endpoint.yaml",
            )?,
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
        let prod = c.stage("prod").unwrap();
        assert_eq!(prod.accounts, [AccountId("222222222222".into())]);
        assert_eq!(prod.parents.len(), 1);
        assert_eq!(prod.regions, ["eu-west-1"]);
        assert_eq!(prod.instance_count, 2);
        assert_eq!(c.stage("staging").unwrap().instance_count, 1);
        assert_eq!(c.failure_tolerance_percentage, 0);
        assert!(
            c.stage("qa")
                .unwrap_err()
                .to_string()
                .contains("staging, prod")
        );
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
        let e = config(&[("REGION_CONCURRENCY", "sideways")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("REGION_CONCURRENCY"), "{e}");
    }
}
