//! Names shared by the deployment functions (`model-approval`, `stackset-deploy`) and the templates:
//! one stack set per model package group and stage, and the endpoint it deploys.

/// The deployment stages, in pipeline order.
pub const STAGES: [&str; 2] = ["staging", "prod"];

/// `<prefix>--<group>-<stage>`: the stack set of one model package group and stage. A project name
/// holds no `--` (see [`check_project`]), so the first `--` ends it: the IAM resource
/// `stackset/<project>--*` matches this project's stack sets only, never those of a project whose name
/// extends this one (`secure-mlops` and `secure-mlops-prod`).
pub fn stack_set_name(prefix: &str, group: &str, stage: &str) -> String {
    format!("{prefix}--{group}-{stage}")
}

/// The tag on every stack set a project creates; an existing stack set without it is never touched.
pub const PROJECT_TAG: &str = "secure-mlops:project";

/// `STACK_SET_PREFIX` (default `secure-mlops`), checked with [`check_project`].
pub fn stack_set_prefix(value: Option<String>) -> Result<String, crate::Error> {
    let prefix = value.unwrap_or_else(|| "secure-mlops".into());
    check_project("STACK_SET_PREFIX", &prefix)?;
    Ok(prefix)
}

/// A project name (or stack-set prefix) as the template allows it: lowercase letters, digits and single
/// hyphens, starting with a letter, not ending with a hyphen, at most 31 characters.
pub fn check_project(key: &str, name: &str) -> Result<(), crate::Error> {
    let ok = name.len() <= 31
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(crate::Error::invalid(format!(
            "{key}={name}: expected lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen (at most 31 characters)"
        )))
    }
}

/// `<project>-<group>-<stage>`: the SageMaker endpoint a stack set deploys (at most 63 characters).
pub fn endpoint_name(project: &str, group: &str, stage: &str) -> String {
    let mut name = format!("{project}-{group}-{stage}");
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// The newest Approved version of `group`: the deployment's desired state, as `model-approval` decides
/// it and `stackset-deploy` enforces it.
#[cfg(feature = "registry")]
pub async fn latest_approved(
    sagemaker: &aws_sdk_sagemaker::Client,
    group: &str,
) -> Result<Option<String>, crate::Error> {
    use aws_sdk_sagemaker::types::{ModelApprovalStatus, ModelPackageSortBy, SortOrder};
    let out = sagemaker
        .list_model_packages()
        .model_package_group_name(group)
        .model_approval_status(ModelApprovalStatus::Approved)
        .sort_by(ModelPackageSortBy::CreationTime)
        .sort_order(SortOrder::Descending)
        .max_results(1)
        .send()
        .await
        .map_err(|e| crate::Error::aws("sagemaker:ListModelPackages", e))?;
    Ok(out
        .model_package_summary_list()
        .first()
        .and_then(|s| s.model_package_arn())
        .map(str::to_owned))
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
        assert_eq!(
            stack_set_name("sm", "churn", "staging"),
            "sm--churn-staging"
        );
        assert!(check_project("P", "secure-mlops-prod").is_ok());
        for bad in [
            "secure--mlops",
            "secure-mlops-",
            "Secure",
            "9lives",
            &"a".repeat(32),
        ] {
            assert!(check_project("P", bad).is_err(), "{bad}");
        }
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
