//! `Custom::CrossAccountModelAccess` properties.

use serde::Deserialize;
use shared::Error;
use shared::cfn::props::de;
use shared::ids::{AccountId, BucketName, KmsKeyArn, RoleName, VpceId};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Properties {
    /// The bucket holding the model artifacts.
    pub bucket_name: BucketName,
    /// The KMS key the artifacts are encrypted with.
    pub kms_key_arn: KmsKeyArn,
    /// Accounts that may read: a list or a comma-separated string (e.g. `!GetAtt Org.AccountIds`).
    #[serde(deserialize_with = "de::list")]
    pub account_ids: Vec<AccountId>,
    /// Key prefix the grant is limited to (default: the whole bucket).
    #[serde(default)]
    pub prefix: String,
    /// Role in each account that may read (default: the account itself, i.e. its IAM principals that
    /// their own policies allow).
    #[serde(default)]
    pub principal_role_name: Option<RoleName>,
    /// VPC endpoints the grant is limited to; also added to an existing deny-unless-VPC-endpoint
    /// statement of the bucket or key policy (and removed again when no longer needed).
    #[serde(default, deserialize_with = "de::list")]
    pub source_vpce_ids: Vec<VpceId>,
}

impl Properties {
    /// The folder the grant covers: the prefix with its trailing `/` (so `models` grants
    /// `models/…`, never `models-private/…`); empty for the whole bucket.
    pub fn folder(&self) -> String {
        match self.prefix.as_str() {
            "" => String::new(),
            p if p.ends_with('/') => p.to_owned(),
            p => format!("{p}/"),
        }
    }

    /// The partition of the key ARN (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &str {
        self.kms_key_arn.as_str().split(':').nth(1).unwrap_or("aws")
    }

    /// The region of the key ARN (the bucket's too: SSE-KMS needs a key of the bucket's region).
    pub fn region(&self) -> &str {
        self.kms_key_arn
            .as_str()
            .split(':')
            .nth(3)
            .unwrap_or_default()
    }

    /// The VPC endpoint ids, sorted and unique.
    pub fn vpce(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.source_vpce_ids.iter().map(|v| v.0.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The principals granted, sorted and unique.
    pub fn principals(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .account_ids
            .iter()
            .map(|a| match &self.principal_role_name {
                None => format!("arn:{}:iam::{a}:root", self.partition()),
                Some(role) => format!("arn:{}:iam::{a}:role/{role}", self.partition()),
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Cross-field rules, checked by the framework after parsing, before any AWS call.
impl shared::cfn::props::Validate for Properties {
    fn validate(&self) -> Result<(), Error> {
        if self.account_ids.is_empty() {
            return Err(Error::invalid(
                "AccountIds: give at least one 12-digit account id (a list or a comma-separated string)",
            ));
        }
        // Policy wildcards and policy variables (`${aws:username}`) would widen the grant.
        if self.prefix.starts_with('/') || self.prefix.contains(['*', '?', '$', '{', '}']) {
            return Err(Error::invalid(format!(
                "Prefix \"{}\": a folder such as \"models/churn/\" (no leading '/', no wildcards \
                 '*' '?', no policy variables '$' '{{' '}}')",
                self.prefix
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};
    use shared::cfn::props::Validate;

    fn parse(v: Value) -> Result<Properties, Error> {
        let map: Map<String, Value> = serde_json::from_value(v).unwrap();
        shared::cfn::props::parse(&map)
    }

    #[test]
    fn accepts_the_org_accounts_output_and_defaults() {
        let p = parse(json!({"ServiceToken": "arn", "BucketName": "models", "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k-1",
            "AccountIds": "222222222222,111111111111,111111111111"})).unwrap();
        p.validate().unwrap();
        assert_eq!(
            p.principals(),
            [
                "arn:aws:iam::111111111111:root",
                "arn:aws:iam::222222222222:root"
            ]
        );
        assert_eq!(p.prefix, "");
        assert_eq!(p.folder(), "");
    }

    #[test]
    fn a_prefix_names_a_folder_and_never_a_wildcard_or_variable() {
        let with = |prefix: &str| {
            parse(json!({"BucketName": "models", "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k",
                "AccountIds": ["111111111111"], "Prefix": prefix}))
            .unwrap()
        };
        assert_eq!(with("models").folder(), "models/");
        assert_eq!(with("models/churn/").folder(), "models/churn/");
        for bad in ["models*", "m?", "${aws:username}/", "models/$x", "/models"] {
            let e = with(bad).validate().unwrap_err().to_string();
            assert!(e.starts_with(&format!("Prefix \"{bad}\"")), "{e}");
        }
    }

    #[test]
    fn role_principals_in_the_keys_partition() {
        let p = parse(json!({"BucketName": "models", "KmsKeyArn": "arn:aws-cn:kms:cn-north-1:123456789012:key/k",
            "AccountIds": ["111111111111"], "PrincipalRoleName": "ModelReader"})).unwrap();
        assert_eq!(
            p.principals(),
            ["arn:aws-cn:iam::111111111111:role/ModelReader"]
        );
    }

    #[test]
    fn bad_values_name_the_property() {
        let e = parse(json!({"BucketName": "Models", "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k", "AccountIds": ["111111111111"]})).unwrap_err().to_string();
        assert!(e.contains("BucketName"), "{e}");
        let e = parse(json!({"BucketName": "models", "KmsKeyArn": "alias/models", "AccountIds": ["111111111111"]})).unwrap_err().to_string();
        assert!(
            e.contains("KmsKeyArn") && e.contains("aliases are not accepted"),
            "{e}"
        );
        let e = parse(json!({"BucketName": "models", "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k", "AccountIds": ["1111"]})).unwrap_err().to_string();
        assert!(e.contains("AccountIds"), "{e}");
        let p = parse(json!({"BucketName": "models", "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k", "AccountIds": [], "Prefix": "/x"})).unwrap();
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .starts_with("AccountIds")
        );
        let p = parse(json!({"BucketName": "models", "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k", "AccountIds": ["111111111111"], "Prefix": "/x"})).unwrap();
        assert!(p.validate().unwrap_err().to_string().starts_with("Prefix"));
    }
}
