//! `Custom::StudioUserProfile` properties.

use serde::Deserialize;
use shared::cfn::props::{Tag, check_tags, de};
use shared::ids::{DomainId, RoleArn, SageMakerName, SecurityGroupId};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Properties {
    pub domain_id: DomainId,
    pub user_profile_name: SageMakerName,
    /// Defaults to the domain's execution role.
    #[serde(default)]
    pub execution_role_arn: Option<RoleArn>,
    #[serde(default, deserialize_with = "de::list")]
    pub security_group_ids: Vec<SecurityGroupId>,
    /// SSO domains only: `UserName`.
    #[serde(default)]
    pub single_sign_on_user_identifier: Option<String>,
    #[serde(default)]
    pub single_sign_on_user_value: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// `AWS::SageMaker::UserProfile`'s `UserSettings`, in its shape (read into the SDK's type: every
    /// field `CreateUserProfile` / `UpdateUserProfile` take); `ExecutionRoleArn` and
    /// `SecurityGroupIds` fill its `ExecutionRole` and `SecurityGroups` when it names none.
    #[serde(default)]
    pub user_settings: Option<serde_json::Value>,
}

impl Properties {
    /// The profile's settings as SageMaker takes them.
    pub fn settings(&self) -> Result<aws_sdk_sagemaker::types::UserSettings, shared::Error> {
        let groups: Vec<String> = self
            .security_group_ids
            .iter()
            .map(|s| s.0.clone())
            .collect();
        shared::studio::settings::user_settings(
            "UserSettings",
            self.user_settings.as_ref(),
            self.execution_role_arn.as_ref().map(|r| r.0.as_str()),
            &groups,
        )
    }

    /// Fields that cannot change in place (the profile is replaced: a new physical id).
    pub fn replacement_fields(&self, old: &Properties) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.domain_id != old.domain_id {
            changed.push("DomainId");
        }
        if self.user_profile_name != old.user_profile_name {
            changed.push("UserProfileName");
        }
        if self.single_sign_on_user_value != old.single_sign_on_user_value
            || self.single_sign_on_user_identifier != old.single_sign_on_user_identifier
        {
            changed.push("SingleSignOnUserValue");
        }
        changed
    }
}

/// Cross-field rules, checked by the framework after parsing, before any AWS call.
impl shared::cfn::props::Validate for Properties {
    fn validate(&self) -> Result<(), shared::Error> {
        match (
            &self.single_sign_on_user_identifier,
            &self.single_sign_on_user_value,
        ) {
            (Some(id), Some(_)) if id != "UserName" => Err(shared::Error::invalid(
                "SingleSignOnUserIdentifier: the only valid value is \"UserName\"",
            )),
            (Some(_), None) | (None, Some(_)) => Err(shared::Error::invalid(
                "SingleSignOnUserIdentifier and SingleSignOnUserValue go together (SSO domains only)",
            )),
            _ => {
                self.settings()?;
                check_tags(&self.tags)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::cfn::props::Validate;

    fn parse(v: serde_json::Value) -> Result<Properties, String> {
        shared::cfn::props::parse::<Properties>(v.as_object().unwrap())
            .map_err(|e| e.to_string())
            .and_then(|p| p.validate().map(|_| p).map_err(|e| e.to_string()))
    }

    #[test]
    fn validates_and_names_properties() {
        let ok = parse(json!({"DomainId": "d-abcdefghij12", "UserProfileName": "alice"})).unwrap();
        assert!(ok.execution_role_arn.is_none());
        let e = parse(json!({"DomainId": "d-1", "UserProfileName": "alice"})).unwrap_err();
        assert!(
            e.contains("DomainId") && e.contains("d-xxxxxxxxxxxx"),
            "{e}"
        );
        let e = parse(json!({"DomainId": "d-abcdefghij12", "UserProfileName": "alice", "SingleSignOnUserValue": "a"})).unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let e = parse(json!({"DomainId": "d-abcdefghij12"})).unwrap_err();
        assert!(e.contains("missing field `UserProfileName`"), "{e}");
    }
}
