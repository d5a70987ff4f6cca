//! `Custom::StudioDomain` properties.

use serde::Deserialize;
use shared::cfn::props::{Tag, check_tags, de};
use shared::ids::{KmsKey, RoleArn, SageMakerName, SecurityGroupId, SubnetId, VpcId};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Properties {
    pub domain_name: SageMakerName,
    pub vpc_id: VpcId,
    #[serde(deserialize_with = "de::list")]
    pub subnet_ids: Vec<SubnetId>,
    pub default_execution_role_arn: RoleArn,
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
        if self.app_network_access_type == NetworkAccess::VpcOnly
            && self.security_group_ids.is_empty()
        {
            return Err(shared::Error::invalid(
                "SecurityGroupIds: a VpcOnly domain needs at least one security group for its apps \
                 (or set AppNetworkAccessType to PublicInternetOnly)",
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
