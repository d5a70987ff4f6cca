//! `Custom::OrgAccounts` properties and the formats they accept.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use shared::cfn::props::de;
pub use shared::ids::{AccountId, RoleArn};

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

fn yes() -> bool {
    true
}

fn is_lower_alnum(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// An organization root (`r-abcd`) or organizational unit (`ou-abcd-12345678`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ParentId {
    Root(String),
    Ou(String),
}

impl ParentId {
    pub fn as_str(&self) -> &str {
        match self {
            ParentId::Root(id) | ParentId::Ou(id) => id,
        }
    }
}

impl fmt::Display for ParentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ParentId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            "not an OU id (ou-xxxx-xxxxxxxx, lowercase letters and digits) or root id (r-xxxx)"
                .to_owned()
        };
        if let Some(rest) = s.strip_prefix("ou-") {
            let (root, unit) = rest.split_once('-').ok_or_else(bad)?;
            let ok = (4..=32).contains(&root.len())
                && (8..=32).contains(&unit.len())
                && is_lower_alnum(root)
                && is_lower_alnum(unit);
            return ok.then(|| ParentId::Ou(s.to_owned())).ok_or_else(bad);
        }
        if let Some(root) = s.strip_prefix("r-") {
            let ok = (4..=32).contains(&root.len()) && is_lower_alnum(root);
            return ok.then(|| ParentId::Root(s.to_owned())).ok_or_else(bad);
        }
        Err(bad())
    }
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

    #[test]
    fn id_formats() {
        for ok in ["ou-abcd-12345678", "ou-a1b2c3d4e5-zz99yy88xx", "r-0a1b"] {
            assert!(ok.parse::<ParentId>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ou-",
            "ou-abc-12345678",
            "ou-abcd-1234",
            "OU-abcd-12345678",
            "r-AB12",
            "123456789012",
        ] {
            assert!(bad.parse::<ParentId>().is_err(), "{bad}");
        }
    }
}
