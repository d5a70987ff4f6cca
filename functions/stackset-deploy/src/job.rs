//! The CodePipeline job event of a Lambda invoke action, and this action's `UserParameters`:
//! `{"Stage": "staging"|"prod", "ModelPackageArn": "#{variables.ModelPackageArn}",
//!   "ExecutionId": "#{codepipeline.PipelineExecutionId}"}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::Error;

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "CodePipeline.job")]
    job: RawJob,
}

#[derive(Debug, Deserialize)]
struct RawJob {
    id: String,
    #[serde(default)]
    data: Value,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Params {
    pub stage: String,
    pub model_package_arn: String,
    pub execution_id: String,
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
}

/// The job id (always, when the event has one) and the rest (which may be wrong).
pub struct Job {
    pub id: String,
    pub params: Result<Params, Error>,
    pub progress: Option<Result<Progress, Error>>,
}

pub fn parse(payload: &Value) -> Result<Job, Error> {
    let event: Event = serde_path_to_error::deserialize(payload).map_err(|e| {
        Error::invalid(format!(
            "not a CodePipeline job event: field `{}`: {}",
            e.path(),
            e.inner()
        ))
    })?;
    let data = &event.job.data;
    let params = match data["actionConfiguration"]["configuration"]["UserParameters"].as_str() {
        None => Err(Error::invalid(
            "UserParameters missing: configure the action with {\"Stage\": \"staging\"|\"prod\", \"ModelPackageArn\": \"#{variables.ModelPackageArn}\", \"ExecutionId\": \"#{codepipeline.PipelineExecutionId}\"}",
        )),
        Some(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize::<_, Params>(&mut de).map_err(|e| {
                Error::invalid(format!("UserParameters: `{}`: {}", e.path(), e.inner()))
            })
        }
    };
    let progress = data["continuationToken"].as_str().map(|t| {
        serde_json::from_str(t)
            .map_err(|e| Error::invalid(format!("continuation token is not this action's: {e}")))
    });
    Ok(Job {
        id: event.job.id,
        params,
        progress,
    })
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

    fn event(params: &str, token: Option<&str>) -> Value {
        let mut data = json!({"actionConfiguration": {"configuration": {"FunctionName": "f", "UserParameters": params}}});
        if let Some(t) = token {
            data["continuationToken"] = json!(t);
        }
        json!({"CodePipeline.job": {"id": "job-1", "accountId": "123456789012", "data": data}})
    }

    #[test]
    fn parses_params_and_progress() {
        let job = parse(&event(
            r#"{"Stage": "staging", "ModelPackageArn": "arn:m/1", "ExecutionId": "e-1"}"#,
            Some(r#"{"phase": "update", "operation_id": "staging-e-1"}"#),
        ))
        .unwrap();
        assert_eq!(job.id, "job-1");
        assert_eq!(job.params.unwrap().stage, "staging");
        assert_eq!(
            job.progress.unwrap().unwrap(),
            Progress::Update {
                operation_id: "staging-e-1".into()
            }
        );
    }

    #[test]
    fn bad_parameters_still_give_the_job_id() {
        let job = parse(&event(r#"{"Stage": "staging"}"#, None)).unwrap();
        assert_eq!(job.id, "job-1");
        let e = job.params.unwrap_err().to_string();
        assert!(e.contains("ModelPackageArn"), "{e}");
        assert!(parse(&json!({"hello": 1})).is_err());
    }

    #[test]
    fn operation_ids_are_deterministic_and_valid() {
        assert_eq!(operation_id("prod", "0f1e-22"), "prod-0f1e-22");
        assert_eq!(operation_id("prod", "a_b"), "prod-a-b");
        assert_eq!(operation_id("prod", &"x".repeat(300)).len(), 128);
    }
}
