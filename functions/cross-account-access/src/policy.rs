//! Resource policies edited without disturbing anyone else's statements: the statements this resource
//! owns (by Sid) are replaced in place or appended; every other statement is kept as it was, in its
//! place, key order included. Pure: the S3 and KMS adapters only read and write the text.

use serde_json::{Map, Value, json};
use shared::Error;

/// The grant one `Custom::CrossAccountModelAccess` makes.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    /// The Sid of its statements (the bucket's list statement adds `List`).
    pub sid: String,
    pub partition: String,
    /// Principal ARNs, sorted and unique.
    pub principals: Vec<String>,
}

impl Grant {
    /// `s3:GetObject` on the prefix, and `s3:ListBucket` limited to it.
    pub fn bucket_statements(&self, bucket: &str, prefix: &str) -> Vec<Value> {
        let objects = format!("arn:{}:s3:::{bucket}/{prefix}*", self.partition);
        let mut list = json!({
            "Sid": format!("{}List", self.sid),
            "Effect": "Allow",
            "Principal": {"AWS": self.principals},
            "Action": "s3:ListBucket",
            "Resource": format!("arn:{}:s3:::{bucket}", self.partition),
        });
        if !prefix.is_empty() {
            list["Condition"] = json!({"StringLike": {"s3:prefix": [format!("{prefix}*")]}});
        }
        vec![
            json!({
                "Sid": self.sid,
                "Effect": "Allow",
                "Principal": {"AWS": self.principals},
                "Action": "s3:GetObject",
                "Resource": objects,
            }),
            list,
        ]
    }

    /// `kms:Decrypt` and `kms:DescribeKey` on the key (in a key policy, `Resource: "*"` is the key).
    pub fn key_statements(&self) -> Vec<Value> {
        vec![json!({
            "Sid": self.sid,
            "Effect": "Allow",
            "Principal": {"AWS": self.principals},
            "Action": ["kms:Decrypt", "kms:DescribeKey"],
            "Resource": "*",
        })]
    }
}

fn owned(statement: &Value, sid: &str) -> bool {
    statement
        .get("Sid")
        .and_then(Value::as_str)
        .is_some_and(|s| s == sid || s.strip_prefix(sid) == Some("List"))
}

/// The policy `text` with the statements owned by `sid` replaced by `ours` (an empty `ours` removes
/// them). `None` in: the resource has no policy. `None` out: no statement is left (delete the policy).
pub fn apply(
    what: &str,
    text: Option<&str>,
    sid: &str,
    ours: Vec<Value>,
) -> Result<Option<String>, Error> {
    let mut policy: Map<String, Value> = match text {
        None => {
            let mut m = Map::new();
            m.insert("Version".into(), json!("2012-10-17"));
            m
        }
        Some(t) => serde_json::from_str(t).map_err(|e| {
            Error::invalid(format!(
                "the existing {what} policy is not valid JSON ({e}); it was left unchanged — fix it first"
            ))
        })?,
    };
    let statements = match policy.remove("Statement") {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(one @ Value::Object(_)) => vec![one],
        Some(_) => {
            return Err(Error::invalid(format!(
                "the existing {what} policy's Statement is neither a list nor an object; it was left unchanged — fix it first"
            )));
        }
    };
    if let Some(bad) = statements.iter().find(|s| !s.is_object()) {
        return Err(Error::invalid(format!(
            "the existing {what} policy has a statement that is not an object ({bad}); it was left unchanged — fix it first"
        )));
    }
    let mut ours = ours.into_iter();
    let mut out = Vec::with_capacity(statements.len() + 2);
    for statement in statements {
        if owned(&statement, sid) {
            // Ours: replaced where it stood (or dropped when there is nothing left to grant).
            out.extend(ours.next());
        } else {
            out.push(statement);
        }
    }
    out.extend(ours);
    if out.is_empty() {
        return Ok(None);
    }
    policy.insert("Statement".into(), Value::Array(out));
    Ok(Some(Value::Object(policy).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(accounts: &[&str]) -> Grant {
        Grant {
            sid: "SecureMlopsModelRead0123456789".into(),
            partition: "aws".into(),
            principals: accounts
                .iter()
                .map(|a| format!("arn:aws:iam::{a}:root"))
                .collect(),
        }
    }

    const FOREIGN: &str = r#"{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::models","arn:aws:s3:::models/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#;

    fn policy_with_foreign() -> String {
        format!(r#"{{"Version":"2012-10-17","Id":"models","Statement":[{FOREIGN}]}}"#)
    }

    #[test]
    fn create_appends_and_keeps_the_foreign_statement_byte_for_byte() {
        let g = grant(&["111111111111"]);
        let out = apply(
            "bucket",
            Some(&policy_with_foreign()),
            &g.sid,
            g.bucket_statements("models", "churn/"),
        )
        .unwrap()
        .unwrap();
        assert!(
            out.starts_with(&format!(
                r#"{{"Version":"2012-10-17","Id":"models","Statement":[{FOREIGN},"#
            )),
            "{out}"
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Statement"][1]["Resource"], "arn:aws:s3:::models/churn/*");
        assert_eq!(
            v["Statement"][2]["Condition"]["StringLike"]["s3:prefix"][0],
            "churn/*"
        );
    }

    #[test]
    fn update_replaces_in_place_and_delete_restores_the_original() {
        let g1 = grant(&["111111111111"]);
        let g2 = grant(&["111111111111", "222222222222"]);
        let original = policy_with_foreign();
        let created = apply(
            "bucket",
            Some(&original),
            &g1.sid,
            g1.bucket_statements("models", ""),
        )
        .unwrap()
        .unwrap();
        let updated = apply(
            "bucket",
            Some(&created),
            &g2.sid,
            g2.bucket_statements("models", ""),
        )
        .unwrap()
        .unwrap();
        let v: Value = serde_json::from_str(&updated).unwrap();
        assert_eq!(v["Statement"].as_array().unwrap().len(), 3);
        assert_eq!(
            v["Statement"][1]["Principal"]["AWS"][1],
            "arn:aws:iam::222222222222:root"
        );
        assert!(
            v["Statement"][2].get("Condition").is_none(),
            "whole bucket: no prefix condition"
        );
        let deleted = apply("bucket", Some(&updated), &g2.sid, vec![])
            .unwrap()
            .unwrap();
        assert_eq!(deleted, original);
    }

    #[test]
    fn no_policy_in_and_out() {
        let g = grant(&["111111111111"]);
        let created = apply("bucket", None, &g.sid, g.bucket_statements("b", ""))
            .unwrap()
            .unwrap();
        assert_eq!(
            apply("bucket", Some(&created), &g.sid, vec![]).unwrap(),
            None
        );
    }

    #[test]
    fn other_grants_with_a_similar_sid_are_not_ours() {
        let g = grant(&["111111111111"]);
        let other = format!(
            r#"{{"Statement":[{{"Sid":"{}9","Effect":"Allow"}},{{"Sid":"{}Listing","Effect":"Allow"}}]}}"#,
            g.sid, g.sid
        );
        let out = apply("key", Some(&other), &g.sid, vec![]).unwrap().unwrap();
        assert_eq!(out, other);
    }

    #[test]
    fn malformed_policies_are_refused_and_named() {
        for bad in ["{not json", r#"{"Statement": 5}"#, r#"{"Statement": [1]}"#] {
            let e = apply("bucket", Some(bad), "S", vec![])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("existing bucket policy") && e.contains("left unchanged"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_single_statement_object_is_accepted() {
        let out = apply(
            "key",
            Some(&format!(r#"{{"Statement":{FOREIGN}}}"#)),
            "S",
            vec![json!({"Sid": "S"})],
        )
        .unwrap()
        .unwrap();
        assert_eq!(out, format!(r#"{{"Statement":[{FOREIGN},{{"Sid":"S"}}]}}"#));
    }
}
