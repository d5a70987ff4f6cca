//! AWS identifiers used in resource properties, validated before any AWS call. Each parses from a
//! string (`FromStr`, and serde via `try_from = "String"`) with an error that says what is expected.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first `bytes` bytes of SHA-256 of `text`, in hex: a stable, short id derived from `text`
/// (client request tokens, statement ids, physical ids).
pub fn sha256_hex(text: &str, bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    hex(&digest[..bytes.min(digest.len())])
}

fn lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn lower_alnum(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $check:expr, $expected:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(pub String);

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(format!("\"{s}\" is not {}", $expected))
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A 12-digit AWS account id.
    AccountId,
    |s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()),
    "an AWS account id (12 digits)"
);

id_type!(
    /// An IAM role ARN: `arn:<partition>:iam::<account>:role/<path/name>`.
    RoleArn,
    |s| {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "iam"
            && parts[3].is_empty()
            && AccountId::from_str(parts[4]).is_ok()
            && parts[5].strip_prefix("role/").is_some_and(|n| !n.is_empty())
    },
    "an IAM role ARN (arn:aws:iam::123456789012:role/Name)"
);

id_type!(
    /// A VPC id (`vpc-` + 8 or 17 hex digits).
    VpcId,
    |s| s.strip_prefix("vpc-").is_some_and(|h| (8..=17).contains(&h.len()) && lower_hex(h)),
    "a VPC id (vpc-0123456789abcdef0)"
);

id_type!(
    /// A subnet id (`subnet-` + hex).
    SubnetId,
    |s| s.strip_prefix("subnet-").is_some_and(|h| (8..=17).contains(&h.len()) && lower_hex(h)),
    "a subnet id (subnet-0123456789abcdef0)"
);

id_type!(
    /// A security group id (`sg-` + hex).
    SecurityGroupId,
    |s| s.strip_prefix("sg-").is_some_and(|h| (8..=17).contains(&h.len()) && lower_hex(h)),
    "a security group id (sg-0123456789abcdef0)"
);

id_type!(
    /// A SageMaker domain id (`d-` + 12 lowercase letters or digits).
    DomainId,
    |s| s.strip_prefix("d-").is_some_and(|h| h.len() == 12 && lower_alnum(h)),
    "a SageMaker domain id (d-xxxxxxxxxxxx)"
);

id_type!(
    /// A SageMaker resource name: letters, digits and hyphens, 1-63 characters, starting and ending
    /// with a letter or digit (domain, user profile and space names).
    SageMakerName,
    |s| {
        (1..=63).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    },
    "a valid name (1-63 letters, digits or hyphens; starts and ends with a letter or digit)"
);

id_type!(
    /// A KMS key: key id (UUID), key ARN, alias name (`alias/…`) or alias ARN.
    KmsKey,
    |s| {
        let uuid = |k: &str| k.len() == 36 && k.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        uuid(s)
            || s.strip_prefix("alias/").is_some_and(|a| !a.is_empty())
            || (s.starts_with("arn:aws") && s.contains(":kms:") && (s.contains(":key/") || s.contains(":alias/")))
    },
    "a KMS key id, key ARN, alias/name or alias ARN"
);

id_type!(
    /// A VPC endpoint id (`vpce-` + 8 or 17 hex digits).
    VpceId,
    |s| s.strip_prefix("vpce-").is_some_and(|h| (8..=17).contains(&h.len()) && lower_hex(h)),
    "a VPC endpoint id (vpce-0123456789abcdef0)"
);

id_type!(
    /// A KMS key ARN (`arn:<partition>:kms:<region>:<account>:key/<key id>`) — not an alias: key
    /// policies belong to keys.
    KmsKeyArn,
    |s| {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "kms"
            && !parts[3].is_empty()
            && parts[4].len() == 12
            && parts[5].strip_prefix("key/").is_some_and(|k| !k.is_empty() && !k.contains('/'))
    },
    "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>; aliases are not accepted)"
);

id_type!(
    /// An S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a
    /// letter or digit.
    BucketName,
    |s| {
        (3..=63).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    },
    "an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)"
);

id_type!(
    /// An IAM role name (1-64 of letters, digits and `+=,.@_-`).
    RoleName,
    |s| (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b)),
    "an IAM role name (1-64 letters, digits and +=,.@_-)"
);

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
                && lower_alnum(root)
                && lower_alnum(unit);
            return ok.then(|| ParentId::Ou(s.to_owned())).ok_or_else(bad);
        }
        if let Some(root) = s.strip_prefix("r-") {
            let ok = (4..=32).contains(&root.len()) && lower_alnum(root);
            return ok.then(|| ParentId::Root(s.to_owned())).ok_or_else(bad);
        }
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(
            "arn:aws:iam::123456789012:role/a/b"
                .parse::<RoleArn>()
                .is_ok()
        );
        assert!("arn:aws:iam::12345:role/a".parse::<RoleArn>().is_err());
        assert!("vpc-0a1b2c3d".parse::<VpcId>().is_ok());
        assert!("vpc-0A1B2C3D".parse::<VpcId>().is_err());
        assert!("subnet-0123456789abcdef0".parse::<SubnetId>().is_ok());
        assert!("sg-12".parse::<SecurityGroupId>().is_err());
        assert!("d-abcdefghij12".parse::<DomainId>().is_ok());
        assert!("d-abc".parse::<DomainId>().is_err());
        assert!("team-a".parse::<SageMakerName>().is_ok());
        assert!("-team".parse::<SageMakerName>().is_err());
        assert!("team_a".parse::<SageMakerName>().is_err());
        assert!("alias/ml".parse::<KmsKey>().is_ok());
        assert!(
            "1234abcd-12ab-34cd-56ef-1234567890ab"
                .parse::<KmsKey>()
                .is_ok()
        );
        assert!("nope".parse::<KmsKey>().is_err());
        let e = "x".parse::<AccountId>().unwrap_err();
        assert_eq!(e, "\"x\" is not an AWS account id (12 digits)");
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
