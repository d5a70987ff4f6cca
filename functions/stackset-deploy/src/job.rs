//! A CodePipeline job of this action, as CodePipeline itself describes it. The invocation payload is
//! trusted for nothing but the job id: pipeline, stage, action, execution, `UserParameters` and the
//! continuation token are read back with `GetJobDetails` (anyone allowed to invoke the function could
//! send a payload that says `prod`). This action's `UserParameters` are exactly
//! `{"ModelPackageArn": "…", "TemplateVersion": "…"}` (see the pipeline in `infra/template.yaml`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::Error;

/// What `GetJobDetails` says about a job (no AWS types).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Job {
    pub id: String,
    pub pipeline: String,
    pub pipeline_arn: String,
    /// The CodePipeline stage and action names.
    pub stage: String,
    pub action: String,
    pub execution_id: String,
    /// `category/owner/provider` of the action type, e.g. `Invoke/AWS/Lambda`.
    pub action_type: String,
    pub user_parameters: Option<String>,
    pub continuation_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Params {
    pub model_package_arn: String,
    /// The S3 version id of the endpoint template: the Source action's for staging, the one staging
    /// deployed (its output variable) for production.
    pub template_version: String,
}

/// Where a deployment is, carried in CodePipeline's continuation token between invocations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Progress {
    /// Another operation held the stack set: start again.
    Start,
    /// `UpdateStackSet` (or a retried call's operation) is running.
    Update { operation_id: String },
    /// `CreateStackInstances` is running.
    Instances { operation_id: String },
    /// Deployed and smoke-tested; the staging alarms must stay OK until `until` (epoch seconds).
    Bake {
        operation_id: String,
        until: u64,
        smoke: String,
    },
}

const USAGE: &str = "configure the action with {\"ModelPackageArn\": \"#{variables.ModelPackageArn}\", \"TemplateVersion\": \"#{Template.VersionId}\"} (production: the Staging namespace's outputs)";

/// The job id of a `CodePipeline.job` event — the only field of the payload this function uses. It
/// must look like CodePipeline's job ids (a UUID), so nothing else is ever sent to `GetJobDetails`.
pub fn id(payload: &Value) -> Result<String, Error> {
    let id = payload["CodePipeline.job"]["id"].as_str().ok_or_else(|| {
        Error::invalid("not a CodePipeline job event: field `CodePipeline.job.id` is missing")
    })?;
    let groups: Vec<&str> = id.split('-').collect();
    let uuid = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if !uuid {
        return Err(Error::invalid(format!(
            "CodePipeline.job.id \"{}\" is not a CodePipeline job id (a lowercase UUID)",
            id.chars().take(64).collect::<String>()
        )));
    }
    Ok(id.to_owned())
}

impl Job {
    /// `UserParameters`, strictly: one JSON object with exactly the two fields, nothing after it.
    pub fn params(&self) -> Result<Params, Error> {
        let text = self
            .user_parameters
            .as_deref()
            .ok_or_else(|| Error::invalid(format!("UserParameters missing: {USAGE}")))?;
        let mut de = serde_json::Deserializer::from_str(text);
        let params: Params = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            Error::invalid(format!(
                "UserParameters: `{}`: {}; {USAGE}",
                e.path(),
                e.inner()
            ))
        })?;
        de.end().map_err(|e| {
            Error::invalid(format!(
                "UserParameters: text after the JSON object ({e}); {USAGE}"
            ))
        })?;
        if params.template_version.is_empty() || params.template_version == "null" {
            return Err(Error::invalid(format!(
                "UserParameters.TemplateVersion \"{}\": the endpoint template has no S3 version (was the bucket versioned when it was written?); upload it again",
                params.template_version
            )));
        }
        Ok(params)
    }

    /// The continuation token, when this is a later invocation of the same action.
    pub fn progress(&self) -> Result<Option<Progress>, Error> {
        self.continuation_token
            .as_deref()
            .map(|t| {
                serde_json::from_str(t).map_err(|e| {
                    Error::invalid(format!("continuation token is not this action's: {e}"))
                })
            })
            .transpose()
    }

    /// (account, region) of the pipeline's ARN (`arn:<partition>:codepipeline:<region>:<account>:<name>`).
    pub fn pipeline_home(&self) -> Option<(&str, &str)> {
        arn_home(&self.pipeline_arn, "codepipeline")
    }
}

/// (account, region) of an ARN of `service`.
pub fn arn_home<'a>(arn: &'a str, service: &str) -> Option<(&'a str, &'a str)> {
    let mut parts = arn.splitn(6, ':');
    (parts.next()? == "arn").then_some(())?;
    parts.next()?;
    (parts.next()? == service).then_some(())?;
    let region = parts.next()?;
    let account = parts.next()?;
    (!region.is_empty() && account.len() == 12).then_some((account, region))
}

/// `<stage>-<execution id>`: the same pipeline execution and stage always use the same operation.
pub fn operation_id(stage: &str, execution_id: &str) -> String {
    let mut id: String = format!("{stage}-{execution_id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    id.truncate(128);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "0a1b2c3d-0000-4abc-8000-0123456789ab";

    fn job(params: &str, token: Option<&str>) -> Job {
        Job {
            id: ID.into(),
            user_parameters: Some(params.into()),
            continuation_token: token.map(str::to_owned),
            pipeline_arn: "arn:aws:codepipeline:us-east-1:123456789012:p".into(),
            ..Job::default()
        }
    }

    #[test]
    fn only_a_well_formed_job_id_is_taken_from_the_payload() {
        assert_eq!(id(&json!({"CodePipeline.job": {"id": ID}})).unwrap(), ID);
        for bad in [
            json!({"hello": 1}),
            json!({"CodePipeline.job": {"id": "job-1"}}),
            json!({"CodePipeline.job": {"id": "0A1B2C3D-0000-4ABC-8000-0123456789AB"}}),
            json!({"CodePipeline.job": {"id": format!("{ID}/../x")}}),
        ] {
            assert!(id(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_params_and_progress() {
        let j = job(
            r#"{"ModelPackageArn": "arn:m/1", "TemplateVersion": "v-1"}"#,
            Some(r#"{"phase": "update", "operation_id": "staging-e-1"}"#),
        );
        assert_eq!(j.params().unwrap().template_version, "v-1");
        assert_eq!(
            j.progress().unwrap(),
            Some(Progress::Update {
                operation_id: "staging-e-1".into()
            })
        );
        assert_eq!(j.pipeline_home(), Some(("123456789012", "us-east-1")));
    }

    #[test]
    fn parameters_are_strict() {
        for (text, expected) in [
            (r#"{"ModelPackageArn": "a"}"#, "TemplateVersion"),
            (
                r#"{"ModelPackageArn": "a", "TemplateVersion": "v", "Stage": "prod"}"#,
                "unknown field `Stage`",
            ),
            (
                r#"{"ModelPackageArn": "a", "TemplateVersion": "v"} {"Stage": "prod"}"#,
                "text after the JSON object",
            ),
            (
                r#"{"ModelPackageArn": "a", "TemplateVersion": "null"}"#,
                "has no S3 version",
            ),
        ] {
            let e = job(text, None).params().unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
        let e = Job::default().params().unwrap_err().to_string();
        assert!(e.contains("UserParameters missing"), "{e}");
    }

    #[test]
    fn operation_ids_are_deterministic_and_valid() {
        assert_eq!(operation_id("prod", "0f1e-22"), "prod-0f1e-22");
        assert_eq!(operation_id("prod", "a_b"), "prod-a-b");
        assert_eq!(operation_id("prod", &"x".repeat(300)).len(), 128);
    }
}
