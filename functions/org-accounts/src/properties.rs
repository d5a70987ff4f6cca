//! `Custom::OrgAccounts` properties and the formats they accept.

use serde::Deserialize;
use shared::cfn::props::de;
pub use shared::ids::{AccountId, ParentId, RoleArn};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Properties {
    /// OU ids (`ou-…`) or a root id (`r-…`): a list or a comma-separated string.
    #[serde(deserialize_with = "de::list")]
    pub organizational_unit_ids: Vec<ParentId>,
    /// Include accounts of nested OUs (default true).
    #[serde(default = "yes", deserialize_with = "de::bool")]
    pub recursive: bool,
    /// Account ids to leave out of the result.
    #[serde(default, deserialize_with = "de::list")]
    pub exclude_account_ids: Vec<AccountId>,
    /// Role in the management or delegated-administrator account, assumed via STS.
    #[serde(default)]
    pub assume_role_arn: Option<RoleArn>,
    /// Succeed with an empty `AccountIds` when nothing matches (default false: that is an error).
    #[serde(default, deserialize_with = "de::bool")]
    pub allow_empty: bool,
}

/// No rules across fields.
impl shared::cfn::props::Validate for Properties {}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Properties, String> {
        shared::cfn::props::parse(v.as_object().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_lists_strings_and_defaults() {
        let p = parse(json!({"OrganizationalUnitIds": "ou-ab12-abcdefgh, r-ab12"})).unwrap();
        assert_eq!(
            p.organizational_unit_ids,
            vec![
                ParentId::Ou("ou-ab12-abcdefgh".into()),
                ParentId::Root("r-ab12".into())
            ]
        );
        assert!(p.recursive && !p.allow_empty && p.assume_role_arn.is_none());
        let p = parse(json!({
            "OrganizationalUnitIds": ["ou-ab12-abcdefgh"], "Recursive": "false",
            "ExcludeAccountIds": ["111111111111"],
            "AssumeRoleArn": "arn:aws:iam::222222222222:role/OrgReader",
            "ServiceToken": "arn:aws:lambda:us-east-1:1:function:f"
        }))
        .unwrap();
        assert!(!p.recursive);
        assert_eq!(
            p.exclude_account_ids,
            vec![AccountId("111111111111".into())]
        );
    }

    #[test]
    fn errors_name_the_property_and_the_format() {
        let e = parse(json!({})).unwrap_err();
        assert!(e.contains("missing field `OrganizationalUnitIds`"), "{e}");
        let e =
            parse(json!({"OrganizationalUnitIds": ["ou-ab12-abcdefgh", "ou-BAD"]})).unwrap_err();
        assert!(
            e.contains("OrganizationalUnitIds")
                && e.contains("\"ou-BAD\"")
                && e.contains("not an OU id"),
            "{e}"
        );
        let e = parse(json!({"OrganizationalUnitIds": "r-ab12", "Recursiv": "true"})).unwrap_err();
        assert!(e.contains("unknown field `Recursiv`"), "{e}");
        let e = parse(json!({"OrganizationalUnitIds": "r-ab12", "ExcludeAccountIds": "12345"}))
            .unwrap_err();
        assert!(
            e.contains("ExcludeAccountIds") && e.contains("12 digits"),
            "{e}"
        );
        let e = parse(json!({"OrganizationalUnitIds": "r-ab12", "AssumeRoleArn": "role/x"}))
            .unwrap_err();
        assert!(
            e.contains("AssumeRoleArn") && e.contains("IAM role ARN"),
            "{e}"
        );
        let e =
            parse(json!({"OrganizationalUnitIds": "r-ab12", "Recursive": "maybe"})).unwrap_err();
        assert!(
            e.contains("Recursive") && e.contains("true or false"),
            "{e}"
        );
    }
}
