//! Settings from the environment (set by the SAM template), read once per cold start.

use shared::Error;

#[derive(Clone, Debug)]
pub struct Config {
    pub pipeline_name: String,
    pub groups: Vec<String>,
    pub stack_set_prefix: String,
    pub alert_topic_arn: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let pipeline_name = var("PIPELINE_NAME").ok_or_else(|| {
            Error::invalid("PIPELINE_NAME is not set: the deployment pipeline's name")
        })?;
        let groups: Vec<String> = var("MODEL_PACKAGE_GROUPS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        if groups.is_empty() {
            return Err(Error::invalid(
                "MODEL_PACKAGE_GROUPS is not set: the comma-separated model package groups to deploy",
            ));
        }
        Ok(Config {
            pipeline_name,
            groups,
            stack_set_prefix: var("STACK_SET_PREFIX").unwrap_or_else(|| "secure-mlops".into()),
            alert_topic_arn: var("ALERT_TOPIC_ARN"),
        })
    }
}
