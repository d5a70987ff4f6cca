//! Names shared by the deployment functions (`model-approval`, `stackset-deploy`) and the templates:
//! one stack set per model package group and stage, and the endpoint it deploys.

/// The deployment stages, in pipeline order.
pub const STAGES: [&str; 2] = ["staging", "prod"];

/// `<prefix>-<group>-<stage>`: the stack set of one model package group and stage.
pub fn stack_set_name(prefix: &str, group: &str, stage: &str) -> String {
    format!("{prefix}-{group}-{stage}")
}

/// `<project>-<group>-<stage>`: the SageMaker endpoint a stack set deploys (at most 63 characters).
pub fn endpoint_name(project: &str, group: &str, stage: &str) -> String {
    let mut name = format!("{project}-{group}-{stage}");
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// The stack-set parameter that records which model package version a stack set runs.
pub const MODEL_PACKAGE_PARAMETER: &str = "ModelPackageArn";

/// The model package group of a versioned model package ARN
/// (`arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>`).
pub fn group_of(model_package_arn: &str) -> Option<&str> {
    let resource = model_package_arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.split('/');
    (parts.next()? == "model-package").then_some(())?;
    let group = parts.next()?;
    parts.next()?.parse::<u64>().ok()?;
    Some(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(stack_set_name("sm", "churn", "staging"), "sm-churn-staging");
        assert_eq!(endpoint_name("p", &"g".repeat(70), "prod").len(), 63);
        assert_eq!(
            group_of("arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"),
            Some("churn")
        );
        assert_eq!(
            group_of("arn:aws:sagemaker:us-east-1:123456789012:model-package/churn"),
            None
        );
        assert_eq!(group_of("nonsense"), None);
    }
}
