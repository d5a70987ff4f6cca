//! The EventBridge event `SageMaker Model Package State Change`: only its group matters (the state is
//! read from the registry), but it must be what it says it is.

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
        let e = parse(&json!({"id": "e", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {"ModelPackageGroupName": "x"}})).unwrap_err().to_string();
        assert!(e.contains("expected source aws.sagemaker"), "{e}");
    }
}
