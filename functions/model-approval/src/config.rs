//! Settings from the environment (set by the SAM template), read once per cold start.

use shared::Error;
use shared::settings::Settings;

#[derive(Clone, Debug)]
pub struct Config {
    pub pipeline_name: String,
    pub groups: Vec<String>,
    pub stack_set_prefix: String,
    pub alert_topic_arn: Option<String>,
    /// The endpoint template object (bucket, key): writing it redeploys what runs.
    pub template: Option<(String, String)>,
}

impl Config {
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let env = Settings::new(get);
        let groups = env.list("MODEL_PACKAGE_GROUPS");
        if groups.is_empty() {
            return Err(Error::invalid(
                "MODEL_PACKAGE_GROUPS is not set: the comma-separated model package groups to deploy",
            ));
        }
        Ok(Config {
            pipeline_name: env.required("PIPELINE_NAME", "the deployment pipeline's name")?,
            groups,
            stack_set_prefix: shared::deploy::stack_set_prefix(env.get("STACK_SET_PREFIX"))?,
            alert_topic_arn: env.get("ALERT_TOPIC_ARN"),
            template: env.get("TEMPLATE_BUCKET").map(|bucket| {
                let key = env
                    .get("TEMPLATE_KEY")
                    .unwrap_or_else(|| "stacksets/model-endpoint.yaml".into());
                (bucket, key)
            }),
        })
    }
}
