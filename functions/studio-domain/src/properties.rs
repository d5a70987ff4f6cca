//! `Custom::StudioDomain` properties.

use aws_sdk_sagemaker::types::{
    AppSecurityGroupManagement, DefaultSpaceSettings, DomainSettings, DomainSettingsForUpdate,
    TagPropagation, UserSettings,
};
use serde::Deserialize;
use serde_json::Value;
use shared::Error;
use shared::cfn::props::{Tag, check_tags, de};
use shared::ids::{KmsKey, RoleArn, SageMakerName, SecurityGroupId, SubnetId, VpcId};
use shared::studio::settings::read;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Properties {
    pub domain_name: SageMakerName,
    pub vpc_id: VpcId,
    #[serde(deserialize_with = "de::list")]
    pub subnet_ids: Vec<SubnetId>,
    /// The users' execution role; or give it as `DefaultUserSettings.ExecutionRole`, as
    /// `AWS::SageMaker::Domain` does.
    #[serde(default)]
    pub default_execution_role_arn: Option<RoleArn>,
    #[serde(default)]
    pub auth_mode: AuthMode,
    #[serde(default)]
    pub app_network_access_type: NetworkAccess,
    #[serde(default, deserialize_with = "de::list")]
    pub security_group_ids: Vec<SecurityGroupId>,
    #[serde(default)]
    pub kms_key_id: Option<KmsKey>,
    #[serde(default)]
    pub home_efs_file_system: Retention,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// `AWS::SageMaker::Domain`'s settings, in its shapes (read into the SDK's types: every field
    /// `CreateDomain` / `UpdateDomain` take).
    #[serde(default)]
    pub default_user_settings: Option<Value>,
    #[serde(default)]
    pub default_space_settings: Option<Value>,
    #[serde(default)]
    pub domain_settings: Option<Value>,
    #[serde(default)]
    pub app_security_group_management: Option<SecurityGroupManagement>,
    #[serde(default)]
    pub tag_propagation: Option<Switch>,
    /// SageMaker Projects: SageMaker's Service Catalog portfolio enabled in the account and the
    /// domain's execution roles associated with it (undone on Delete as far as this domain did it).
    #[serde(default, deserialize_with = "de::bool")]
    pub enable_projects: bool,
}

/// Who manages the security groups between apps of a `VpcOnly` domain (`Service` for RStudio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SecurityGroupManagement {
    Service,
    Customer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Switch {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum AuthMode {
    #[default]
    #[serde(rename = "IAM")]
    Iam,
    #[serde(rename = "SSO")]
    Sso,
}

/// `VpcOnly` by default: Studio traffic stays in the customer's VPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum NetworkAccess {
    #[default]
    VpcOnly,
    PublicInternetOnly,
}

/// What happens to the home EFS file system (the users' data) when the domain is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
pub enum Retention {
    #[default]
    Retain,
    Delete,
}

impl Properties {
    /// The users' default settings as SageMaker takes them: `DefaultUserSettings` with the execution
    /// role and app security groups of `DefaultExecutionRoleArn` / `SecurityGroupIds` when it names
    /// none of its own.
    pub fn user_settings(&self) -> Result<UserSettings, Error> {
        let groups: Vec<String> = self
            .security_group_ids
            .iter()
            .map(|s| s.0.clone())
            .collect();
        shared::studio::settings::user_settings(
            "DefaultUserSettings",
            self.default_user_settings.as_ref(),
            self.default_execution_role_arn.as_ref().map(|r| r.as_str()),
            &groups,
        )
    }

    pub fn space_settings(&self) -> Result<Option<DefaultSpaceSettings>, Error> {
        self.default_space_settings
            .as_ref()
            .map(|v| read("DefaultSpaceSettings", v, DefaultSpaceSettings::deserialize))
            .transpose()
    }

    pub fn domain_settings(&self) -> Result<Option<DomainSettings>, Error> {
        self.domain_settings
            .as_ref()
            .map(|v| read("DomainSettings", v, DomainSettings::deserialize))
            .transpose()
    }

    /// `DomainSettings` as `UpdateDomain` takes them (its RStudio member has another name there).
    pub fn domain_settings_for_update(&self) -> Result<Option<DomainSettingsForUpdate>, Error> {
        let Some(Value::Object(map)) = &self.domain_settings else {
            return Ok(None);
        };
        let mut map = map.clone();
        if let Some(rstudio) = map.remove("RStudioServerProDomainSettings") {
            map.insert("RStudioServerProDomainSettingsForUpdate".into(), rstudio);
        }
        read(
            "DomainSettings",
            &Value::Object(map),
            DomainSettingsForUpdate::deserialize,
        )
        .map(Some)
    }

    pub fn app_security_group_management(&self) -> Option<AppSecurityGroupManagement> {
        self.app_security_group_management.map(|m| match m {
            SecurityGroupManagement::Service => AppSecurityGroupManagement::Service,
            SecurityGroupManagement::Customer => AppSecurityGroupManagement::Customer,
        })
    }

    pub fn tag_propagation(&self) -> Option<TagPropagation> {
        self.tag_propagation.map(|t| match t {
            Switch::Enabled => TagPropagation::Enabled,
            Switch::Disabled => TagPropagation::Disabled,
        })
    }

    /// The execution roles Projects are enabled for: the users' and the spaces' defaults.
    pub fn execution_roles(&self) -> Result<Vec<String>, Error> {
        let mut roles: Vec<String> = self
            .user_settings()?
            .execution_role()
            .map(str::to_owned)
            .into_iter()
            .collect();
        if let Some(role) = self
            .space_settings()?
            .and_then(|s| s.execution_role().map(str::to_owned))
            && !roles.contains(&role)
        {
            roles.push(role);
        }
        Ok(roles)
    }

    /// Whether an update changes anything `UpdateDomain` sets.
    pub fn updates_sagemaker(&self, old: &Properties) -> bool {
        old.default_execution_role_arn != self.default_execution_role_arn
            || old.security_group_ids != self.security_group_ids
            || old.subnet_ids != self.subnet_ids
            || old.app_network_access_type != self.app_network_access_type
            || old.default_user_settings != self.default_user_settings
            || old.default_space_settings != self.default_space_settings
            || old.domain_settings != self.domain_settings
            || old.app_security_group_management != self.app_security_group_management
            || old.tag_propagation != self.tag_propagation
    }

    /// What the domain these properties ask for cannot change in place.
    pub fn identity(&self) -> Identity {
        Identity {
            domain_name: self.domain_name.as_str().to_owned(),
            vpc_id: self.vpc_id.as_str().to_owned(),
            auth_mode: match self.auth_mode {
                AuthMode::Iam => "IAM",
                AuthMode::Sso => "SSO",
            }
            .to_owned(),
            kms_key_id: self.kms_key_id.as_ref().map(|k| k.0.clone()),
        }
    }
}

/// Cross-field rules, checked by the framework after parsing, before any AWS call.
impl shared::cfn::props::Validate for Properties {
    fn validate(&self) -> Result<(), shared::Error> {
        if self.subnet_ids.is_empty() {
            return Err(shared::Error::invalid(
                "SubnetIds: give at least one subnet id of the VPC",
            ));
        }
        // Every setting reads (and passes our checks) before any SageMaker call.
        let users = self.user_settings()?;
        self.space_settings()?;
        self.domain_settings()?;
        self.domain_settings_for_update()?;
        if users.execution_role().is_none() {
            return Err(shared::Error::invalid(
                "DefaultExecutionRoleArn: give the users' execution role (or DefaultUserSettings.ExecutionRole)",
            ));
        }
        if let (Some(role), Some(inner)) = (
            &self.default_execution_role_arn,
            self.default_user_settings
                .as_ref()
                .and_then(|s| s["ExecutionRole"].as_str()),
        ) && role.as_str() != inner
        {
            return Err(shared::Error::invalid(format!(
                "DefaultExecutionRoleArn ({}) and DefaultUserSettings.ExecutionRole ({inner}) differ: give one",
                role.as_str()
            )));
        }
        if self.app_network_access_type == NetworkAccess::VpcOnly
            && users.security_groups().is_empty()
        {
            return Err(shared::Error::invalid(
                "SecurityGroupIds: a VpcOnly domain needs at least one security group for its apps \
                 (or DefaultUserSettings.SecurityGroups, or AppNetworkAccessType PublicInternetOnly)",
            ));
        }
        check_tags(&self.tags)
    }
}

/// The settings SageMaker cannot update in place (`UpdateDomain` has no field for them): a domain
/// with other values is another domain. Compared against the properties to decide a replacement, and
/// against an existing domain before adopting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub domain_name: String,
    pub vpc_id: String,
    /// `IAM` or `SSO`, as SageMaker spells it.
    pub auth_mode: String,
    pub kms_key_id: Option<String>,
}

impl Identity {
    /// The property names whose values differ.
    pub fn differences(&self, other: &Identity) -> Vec<&'static str> {
        [
            ("DomainName", self.domain_name != other.domain_name),
            ("VpcId", self.vpc_id != other.vpc_id),
            ("AuthMode", self.auth_mode != other.auth_mode),
            ("KmsKeyId", self.kms_key_id != other.kms_key_id),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
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

    fn base() -> serde_json::Value {
        json!({"DomainName": "studio", "VpcId": "vpc-0a1b2c3d", "SubnetIds": "subnet-0a1b2c3d,subnet-1a1b2c3d",
               "DefaultExecutionRoleArn": "arn:aws:iam::123456789012:role/Exec", "SecurityGroupIds": ["sg-0a1b2c3d"]})
    }

    #[test]
    fn defaults_are_secure_and_data_preserving() {
        let p = parse(base()).unwrap();
        assert_eq!(p.auth_mode, AuthMode::Iam);
        assert_eq!(p.app_network_access_type, NetworkAccess::VpcOnly);
        assert_eq!(p.home_efs_file_system, Retention::Retain);
        assert_eq!(p.subnet_ids.len(), 2);
    }

    #[test]
    fn errors_name_the_property() {
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base();
            b[k] = v;
            parse(b).unwrap_err()
        };
        assert!(with("VpcId", json!("vpc-XYZ")).contains("VpcId"));
        assert!(with("SubnetIds", json!("")).contains("SubnetIds"));
        assert!(with("HomeEfsFileSystem", json!("Destroy")).contains("HomeEfsFileSystem"));
        assert!(with("AuthMode", json!("iam")).contains("AuthMode"));
        assert!(with("SecurityGroupIds", json!([])).contains("VpcOnly"));
        assert!(with("Tags", json!([{"Key": "aws:x", "Value": "y"}])).contains("reserved"));
        assert!(with("DomainName", json!("bad_name")).contains("DomainName"));
        let mut typo = base();
        typo["HomeEFS"] = json!("Delete");
        assert!(parse(typo).unwrap_err().contains("unknown field `HomeEFS`"));
    }

    #[test]
    fn settings_in_cloudformations_shapes_are_checked_before_any_call() {
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base();
            b[k] = v;
            parse(b)
        };
        let lcc = "arn:aws:sagemaker:us-east-1:123456789012:studio-lifecycle-config/idle-shutdown";
        let p = with(
            "DefaultUserSettings",
            json!({"JupyterLabAppSettings": {"LifecycleConfigArns": [lcc],
                "DefaultResourceSpec": {"InstanceType": "ml.t3.medium", "LifecycleConfigArn": lcc}}}),
        )
        .unwrap();
        let users = p.user_settings().unwrap();
        assert_eq!(
            users.execution_role(),
            Some("arn:aws:iam::123456789012:role/Exec"),
            "DefaultExecutionRoleArn fills it"
        );
        assert_eq!(users.security_groups(), ["sg-0a1b2c3d"]);
        let e = with(
            "DefaultUserSettings",
            json!({"JupyterLabAppSettings": {"LifecycleConfigArns": ["arn:aws:sagemaker:us-east-1:123456789012:app/x"]}}),
        )
        .unwrap_err();
        assert!(
            e.contains("DefaultUserSettings.JupyterLabAppSettings.LifecycleConfigArns[0]"),
            "{e}"
        );
        let e = with("DomainSettings", json!({"DockerSetings": {}})).unwrap_err();
        assert!(
            e.contains("DomainSettings: unknown property `DockerSetings`"),
            "{e}"
        );
        let e = with("DefaultSpaceSettings", json!({"ExecutionRole": "exec"})).unwrap_err();
        assert!(e.contains("DefaultSpaceSettings.ExecutionRole"), "{e}");
        // The role as AWS::SageMaker::Domain gives it, and not both ways differently.
        let mut native = base();
        native
            .as_object_mut()
            .unwrap()
            .remove("DefaultExecutionRoleArn");
        native["DefaultUserSettings"] =
            json!({"ExecutionRole": "arn:aws:iam::123456789012:role/Native"});
        assert!(parse(native.clone()).is_ok());
        native
            .as_object_mut()
            .unwrap()
            .remove("DefaultUserSettings");
        assert!(
            parse(native)
                .unwrap_err()
                .contains("DefaultExecutionRoleArn")
        );
        let e = with(
            "DefaultUserSettings",
            json!({"ExecutionRole": "arn:aws:iam::123456789012:role/Other"}),
        )
        .unwrap_err();
        assert!(e.contains("differ"), "{e}");
        let e = with("AppSecurityGroupManagement", json!("Nobody")).unwrap_err();
        assert!(e.contains("AppSecurityGroupManagement"), "{e}");
    }

    #[test]
    fn replacement_is_decided_by_the_fields_sagemaker_cannot_update() {
        let old = parse(base()).unwrap();
        let mut new = old.clone();
        new.subnet_ids.pop();
        new.app_network_access_type = NetworkAccess::PublicInternetOnly;
        new.home_efs_file_system = Retention::Delete;
        assert!(new.identity().differences(&old.identity()).is_empty());
        new.vpc_id = "vpc-9a1b2c3d".parse().unwrap();
        new.kms_key_id = Some("alias/studio".parse().unwrap());
        assert_eq!(
            new.identity().differences(&old.identity()),
            ["VpcId", "KmsKeyId"]
        );
    }
}
