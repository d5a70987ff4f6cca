//! The two events this function reacts to, each checked to be what it says it is: `SageMaker Model
//! Package State Change` (only its group matters: the state is read from the registry) and S3's
//! `Object Created` for the endpoint template (a new template version redeploys what runs).

use serde::Deserialize;
use serde_json::Value;
use shared::Error;

#[derive(Debug, Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    detail: Detail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Detail {
    model_package_group_name: String,
    #[serde(default)]
    model_package_arn: Option<String>,
    #[serde(default)]
    model_approval_status: Option<String>,
}

/// A registry change, as far as this function cares.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub event_id: String,
    pub group: String,
    pub package: Option<String>,
    pub status: Option<String>,
}

/// The endpoint template was written (S3 EventBridge notification `Object Created`).
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateWritten {
    pub event_id: String,
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    Registry(Change),
    Template(TemplateWritten),
}

#[derive(Debug, Deserialize)]
struct S3Envelope {
    id: String,
    detail: S3Detail,
}

#[derive(Debug, Deserialize)]
struct S3Detail {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Debug, Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct S3Object {
    key: String,
    #[serde(rename = "version-id", default)]
    version: Option<String>,
}

/// Which of the two events `payload` is; anything else is an error naming what it got.
pub fn trigger(payload: &Value) -> Result<Trigger, Error> {
    if payload["source"] == "aws.s3" && payload["detail-type"] == "Object Created" {
        let e: S3Envelope = serde_path_to_error::deserialize(payload).map_err(|err| {
            Error::invalid(format!(
                "not an S3 Object Created event: field `{}`: {}",
                err.path(),
                err.inner()
            ))
        })?;
        return Ok(Trigger::Template(TemplateWritten {
            event_id: e.id,
            bucket: e.detail.bucket.name,
            key: e.detail.object.key,
            version: e.detail.object.version,
        }));
    }
    parse(payload).map(Trigger::Registry)
}

pub fn parse(payload: &Value) -> Result<Change, Error> {
    let e: Envelope = serde_path_to_error::deserialize(payload).map_err(|err| {
        Error::invalid(format!(
            "not a SageMaker Model Package State Change event: field `{}`: {}",
            err.path(),
            err.inner()
        ))
    })?;
    if e.source != "aws.sagemaker" || e.detail_type != "SageMaker Model Package State Change" {
        return Err(Error::invalid(format!(
            "event {}: expected source aws.sagemaker and detail-type \"SageMaker Model Package State Change\", got {} / \"{}\"",
            e.id, e.source, e.detail_type
        )));
    }
    Ok(Change {
        event_id: e.id,
        group: e.detail.model_package_group_name,
        package: e.detail.model_package_arn,
        status: e.detail.model_approval_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_names_what_is_missing() {
        let c = parse(&json!({"id": "e", "detail-type": "SageMaker Model Package State Change", "source": "aws.sagemaker",
            "detail": {"ModelPackageGroupName": "churn", "ModelApprovalStatus": "Approved", "ModelPackageArn": "arn"}})).unwrap();
        assert_eq!(c.group, "churn");
        let e = parse(&json!({"id": "e", "detail-type": "SageMaker Model Package State Change", "source": "aws.sagemaker",
            "detail": {"ModelApprovalStatus": "Approved"}})).unwrap_err().to_string();
        assert!(
            e.contains("detail") && e.contains("ModelPackageGroupName"),
            "{e}"
        );
        let t = trigger(&json!({"id": "s", "detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "artifacts"}, "object": {"key": "stacksets/model-endpoint.yaml", "version-id": "v7"}}})).unwrap();
        assert_eq!(
            t,
            Trigger::Template(TemplateWritten {
                event_id: "s".into(),
                bucket: "artifacts".into(),
                key: "stacksets/model-endpoint.yaml".into(),
                version: Some("v7".into())
            })
        );
        let e = trigger(
            &json!({"id": "s", "detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing field `bucket`"), "{e}");
        let e = parse(&json!({"id": "e", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {"ModelPackageGroupName": "x"}})).unwrap_err().to_string();
        assert!(e.contains("expected source aws.sagemaker"), "{e}");
    }
}
