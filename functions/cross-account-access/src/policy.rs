//! Resource policies edited without disturbing anyone else's statements: the statements this resource
//! owns (by Sid) are replaced in place or appended; every other statement is kept as it was, in its
//! place, key order included. Pure: the S3 and KMS adapters only read and write the text.
//!
//! VPC endpoints: with `SourceVpceIds` the grant is conditioned on `aws:sourceVpce`, and the ids are added
//! to an existing deny-unless-VPC-endpoint statement (a `Deny` with `StringNotEquals[IfExists]` on
//! `aws:sourceVpce`). Which ids this resource added is recorded in an owned statement `<Sid>Vpce` — a
//! grant through exactly those endpoints, so it means what it says — and only those are removed again,
//! and only when no other grant in the policy still names them.

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
    /// VPC endpoints the grant is limited to (empty: any network path).
    pub vpce: Vec<String>,
    /// The organization every principal must belong to (`aws:PrincipalOrgID`); `None` outside one.
    pub org_id: Option<String>,
}

const VPCE_KEY: &str = "aws:sourcevpce";

/// The Sid every grant statement starts with (the rest is 16 hex digits of its stack and logical id).
pub const SID_PREFIX: &str = "SecureMlopsModelRead";

/// True for the VPC endpoint record of a grant other than `sid`.
fn is_record_of_another(statement: &Value, sid: &str) -> bool {
    let s = sid_of(statement);
    s.starts_with(SID_PREFIX) && s.ends_with("Vpce") && !owned(statement, sid)
}

impl Grant {
    /// The `StringEquals` conditions every statement of the grant carries: the organization of the
    /// principals and the VPC endpoints, where set.
    fn equals(&self) -> Map<String, Value> {
        let mut equals = Map::new();
        if let Some(org) = &self.org_id {
            equals.insert("aws:PrincipalOrgID".into(), json!(org));
        }
        if !self.vpce.is_empty() {
            equals.insert("aws:sourceVpce".into(), json!(self.vpce));
        }
        equals
    }

    /// `s3:GetObject` on the prefix, and `s3:ListBucket` limited to it (+ the endpoint marker).
    pub fn bucket_statements(&self, bucket: &str, prefix: &str) -> Vec<Value> {
        let objects = format!("arn:{}:s3:::{bucket}/{prefix}*", self.partition);
        let mut get = json!({
            "Sid": self.sid,
            "Effect": "Allow",
            "Principal": {"AWS": self.principals},
            "Action": "s3:GetObject",
            "Resource": objects,
        });
        let mut list = json!({
            "Sid": format!("{}List", self.sid),
            "Effect": "Allow",
            "Principal": {"AWS": self.principals},
            "Action": "s3:ListBucket",
            "Resource": format!("arn:{}:s3:::{bucket}", self.partition),
        });
        let mut list_condition = Map::new();
        if !prefix.is_empty() {
            list_condition.insert(
                "StringLike".into(),
                json!({"s3:prefix": [format!("{prefix}*")]}),
            );
        }
        let mut out = Vec::new();
        let equals = self.equals();
        if !equals.is_empty() {
            get["Condition"] = json!({"StringEquals": equals});
            list_condition.insert("StringEquals".into(), Value::Object(equals));
        }
        if !self.vpce.is_empty() {
            let mut marker = get.clone();
            marker["Sid"] = json!(format!("{}Vpce", self.sid));
            out.push(marker);
        }
        if !list_condition.is_empty() {
            list["Condition"] = Value::Object(list_condition);
        }
        out.insert(0, list);
        out.insert(0, get);
        out
    }

    /// `kms:Decrypt` on the key (in a key policy, `Resource: "*"` is the key), only as S3 of the key's
    /// `region` uses it to read objects of the bucket's `folder` (`kms:ViaService`, and the encryption
    /// context S3 sets: the object's ARN, or the bucket's ARN when S3 Bucket Keys are on). Reading an
    /// SSE-KMS object needs nothing more; the key cannot be used directly.
    pub fn key_statements(&self, bucket: &str, folder: &str, region: &str) -> Vec<Value> {
        let suffix = if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let bucket_arn = format!("arn:{}:s3:::{bucket}", self.partition);
        let mut equals = self.equals();
        equals.insert(
            "kms:ViaService".into(),
            json!(format!("s3.{region}.{suffix}")),
        );
        let grant = json!({
            "Sid": self.sid,
            "Effect": "Allow",
            "Principal": {"AWS": self.principals},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {
                "StringEquals": equals,
                "StringLike": {
                    "kms:EncryptionContext:aws:s3:arn": [format!("{bucket_arn}/{folder}*"), bucket_arn]
                },
            },
        });
        if self.vpce.is_empty() {
            return vec![grant];
        }
        let mut marker = grant.clone();
        marker["Sid"] = json!(format!("{}Vpce", self.sid));
        vec![grant, marker]
    }
}

fn sid_of(statement: &Value) -> &str {
    statement
        .get("Sid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The values of `aws:sourceVpce` under `operator` in a statement's condition (key case-insensitive).
fn vpce_values(statement: &Value, operators: &[&str]) -> Vec<String> {
    let Some(condition) = statement.get("Condition").and_then(Value::as_object) else {
        return Vec::new();
    };
    condition
        .iter()
        .filter(|(op, _)| operators.contains(&op.as_str()))
        .filter_map(|(_, keys)| keys.as_object())
        .flat_map(|keys| keys.iter())
        .filter(|(k, _)| k.to_ascii_lowercase() == VPCE_KEY)
        .flat_map(|(_, v)| match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

const ALLOW_OPS: [&str; 2] = ["StringEquals", "StringEqualsIfExists"];
const DENY_OPS: [&str; 2] = ["StringNotEquals", "StringNotEqualsIfExists"];

fn is_endpoint_deny(statement: &Value) -> bool {
    statement.get("Effect").and_then(Value::as_str) == Some("Deny")
        && !vpce_values(statement, &DENY_OPS).is_empty()
}

/// Replaces the endpoint list of a deny-unless-VPC-endpoint statement, keeping everything else.
fn set_deny_endpoints(statement: &mut Value, ids: &[String]) {
    let Some(condition) = statement
        .get_mut("Condition")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (op, keys) in condition.iter_mut() {
        if !DENY_OPS.contains(&op.as_str()) {
            continue;
        }
        if let Some(keys) = keys.as_object_mut() {
            for (k, v) in keys.iter_mut() {
                if k.to_ascii_lowercase() == VPCE_KEY {
                    // One endpoint is written as a string, the form such statements are usually
                    // written in (semantically the same as a one-element list).
                    *v = match ids {
                        [one] => json!(one),
                        _ => json!(ids),
                    };
                }
            }
        }
    }
}

fn owned(statement: &Value, sid: &str) -> bool {
    statement
        .get("Sid")
        .and_then(Value::as_str)
        .is_some_and(|s| s == sid || matches!(s.strip_prefix(sid), Some("List" | "Vpce")))
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
    let marker_sid = format!("{sid}Vpce");
    let previously_added: Vec<String> = statements
        .iter()
        .find(|s| sid_of(s) == marker_sid)
        .map(|m| vpce_values(m, &ALLOW_OPS))
        .unwrap_or_default();
    let (markers, ours): (Vec<Value>, Vec<Value>) =
        ours.into_iter().partition(|s| sid_of(s) == marker_sid);
    let mut marker = markers.into_iter().next();
    let wanted: Vec<String> = marker
        .as_ref()
        .map(|m| vpce_values(m, &ALLOW_OPS))
        .unwrap_or_default();
    let mut ours = ours.into_iter();
    let mut out = Vec::with_capacity(statements.len() + 3);
    for statement in statements {
        if owned(&statement, sid) {
            // Ours: replaced where it stood (or dropped when there is nothing left to grant).
            out.extend(ours.next());
        } else {
            out.push(statement);
        }
    }
    out.extend(ours);
    if let Some(deny) = out.iter().position(is_endpoint_deny) {
        // Endpoints other grants of this policy name stay whatever this resource did.
        let others: Vec<String> = out
            .iter()
            .filter(|s| !owned(s, sid) && s.get("Effect").and_then(Value::as_str) == Some("Allow"))
            .flat_map(|s| vpce_values(s, &ALLOW_OPS))
            .collect();
        // Endpoints our other grants added: whoever still needs one shares the record of it, so
        // the last grant to need it removes it.
        let added_by_us: Vec<String> = out
            .iter()
            .filter(|s| is_record_of_another(s, sid))
            .flat_map(|s| vpce_values(s, &ALLOW_OPS))
            .collect();
        let current = vpce_values(&out[deny], &DENY_OPS);
        let mut next = current.clone();
        for id in previously_added
            .iter()
            .filter(|id| !wanted.contains(id) && !others.contains(id))
        {
            if next.len() > 1 {
                next.retain(|x| x != id);
            }
        }
        let mut added: Vec<String> = previously_added
            .iter()
            .filter(|id| wanted.contains(id) && next.contains(id))
            .cloned()
            .collect();
        for id in &wanted {
            if !next.contains(id) {
                next.push(id.clone());
                added.push(id.clone());
            } else if added_by_us.contains(id) && !added.contains(id) {
                added.push(id.clone());
            }
        }
        if next != current {
            set_deny_endpoints(&mut out[deny], &next);
        }
        if let Some(m) = marker.as_mut().filter(|_| !added.is_empty()) {
            // Only the endpoint list changes: the marker keeps every other condition of the grant.
            m["Condition"]["StringEquals"]["aws:sourceVpce"] = json!(added);
            out.push(marker.take().unwrap_or_default());
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    policy.insert("Statement".into(), Value::Array(out));
    Ok(Some(Value::Object(policy).to_string()))
}

/// True when the policy `text` (as read back after writing) holds exactly the grant statements `ours`
/// of `sid` (none when `ours` is empty), compared as JSON whatever the service's formatting. The
/// VPC endpoint marker is left out: `apply` rewrites it.
pub fn holds(text: Option<&str>, sid: &str, ours: &[Value]) -> bool {
    let marker_sid = format!("{sid}Vpce");
    let grant = |s: &&Value| owned(s, sid) && sid_of(s) != marker_sid;
    let policy: Value = match text.map(serde_json::from_str) {
        None => Value::Null,
        Some(Ok(policy)) => policy,
        Some(Err(_)) => return false,
    };
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    statements
        .into_iter()
        .filter(grant)
        .eq(ours.iter().filter(grant))
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
            vpce: vec![],
            org_id: None,
        }
    }

    #[test]
    fn every_statement_names_the_organization_of_its_principals() {
        let g = Grant {
            org_id: Some("o-a1b2c3d4e5".into()),
            ..with_vpce(&["111111111111"], &["vpce-0bbbbbbbbbbbbbbbb"])
        };
        let mut all = g.bucket_statements("models", "churn/");
        all.extend(g.key_statements("models", "churn/", "us-east-1"));
        assert_eq!(all.len(), 5, "get, list, marker; key grant, marker");
        for s in &all {
            assert_eq!(
                s["Condition"]["StringEquals"]["aws:PrincipalOrgID"], "o-a1b2c3d4e5",
                "{s}"
            );
        }
        // The endpoint record written by `apply` keeps the organization condition.
        let deny = r#"{"Statement":[{"Sid":"D","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0aaaaaaaaaaaaaaaa"}}}]}"#;
        let out = apply(
            "bucket",
            Some(deny),
            &g.sid,
            g.bucket_statements("models", "churn/"),
        )
        .unwrap()
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        let marker = v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == format!("{}Vpce", g.sid))
            .unwrap();
        assert_eq!(
            marker["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
            "o-a1b2c3d4e5"
        );
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
        let created = granted(&original, &g1);
        let updated = granted(&created, &g2);
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

    /// `policy` with `g`'s bucket statements (whole bucket) applied.
    fn granted(policy: &str, g: &Grant) -> String {
        apply(
            "bucket",
            Some(policy),
            &g.sid,
            g.bucket_statements("models", ""),
        )
        .unwrap()
        .unwrap()
    }

    fn with_vpce(accounts: &[&str], vpce: &[&str]) -> Grant {
        Grant {
            vpce: vpce.iter().map(|v| v.to_string()).collect(),
            ..grant(accounts)
        }
    }

    const DENY: &str = r#"{"Sid":"OnlyThroughOurEndpoints","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::models","arn:aws:s3:::models/*"],"Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0aaaaaaaaaaaaaaaa"}}}"#;

    fn deny_list(policy: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(policy).unwrap();
        v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "OnlyThroughOurEndpoints")
            .map(|s| vpce_values(s, &DENY_OPS))
            .unwrap()
    }

    /// Two grants need the same endpoint, which the first one added: it stays while either needs it,
    /// the last one to go removes it, and the endpoint that was there before any grant stays.
    #[test]
    fn an_endpoint_added_by_one_grant_is_removed_by_the_last_grant_to_need_it() {
        let a = with_vpce(&["111111111111"], &["vpce-0bbbbbbbbbbbbbbbb"]);
        let b = Grant {
            sid: format!("{SID_PREFIX}fedcba9876543210"),
            ..with_vpce(&["222222222222"], &["vpce-0bbbbbbbbbbbbbbbb"])
        };
        let original = format!(r#"{{"Statement":[{DENY}]}}"#);
        let with_a = granted(&original, &a);
        let with_both = granted(&with_a, &b);
        let both = ["vpce-0aaaaaaaaaaaaaaaa", "vpce-0bbbbbbbbbbbbbbbb"];
        assert_eq!(deny_list(&with_both), both);
        // A goes first: B still needs the endpoint.
        let only_b = apply("bucket", Some(&with_both), &a.sid, vec![])
            .unwrap()
            .unwrap();
        assert_eq!(deny_list(&only_b), both);
        // B goes last: what the grants added goes with it, and nothing else.
        let none = apply("bucket", Some(&only_b), &b.sid, vec![])
            .unwrap()
            .unwrap();
        assert_eq!(deny_list(&none), ["vpce-0aaaaaaaaaaaaaaaa"]);
        assert_eq!(none, original);
        // The other order ends the same.
        let only_a = apply("bucket", Some(&with_both), &b.sid, vec![])
            .unwrap()
            .unwrap();
        assert_eq!(deny_list(&only_a), both);
        let none = apply("bucket", Some(&only_a), &a.sid, vec![])
            .unwrap()
            .unwrap();
        assert_eq!(none, original);
    }

    #[test]
    fn endpoints_join_the_deny_list_and_leave_it_when_no_longer_needed() {
        let original = format!(r#"{{"Version":"2012-10-17","Statement":[{DENY}]}}"#);
        let b = with_vpce(&["111111111111"], &["vpce-0bbbbbbbbbbbbbbbb"]);
        let created = apply(
            "bucket",
            Some(&original),
            &b.sid,
            b.bucket_statements("models", ""),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            deny_list(&created),
            ["vpce-0aaaaaaaaaaaaaaaa", "vpce-0bbbbbbbbbbbbbbbb"]
        );
        let v: Value = serde_json::from_str(&created).unwrap();
        assert_eq!(
            v["Statement"][1]["Condition"]["StringEquals"]["aws:sourceVpce"][0],
            "vpce-0bbbbbbbbbbbbbbbb"
        );
        assert_eq!(
            v["Statement"][3]["Sid"],
            format!("{}Vpce", b.sid),
            "the record of what was added"
        );

        // Update to another endpoint: the one this resource added goes, the bucket owner's stays.
        let c = with_vpce(&["111111111111"], &["vpce-0cccccccccccccccc"]);
        let updated = apply(
            "bucket",
            Some(&created),
            &c.sid,
            c.bucket_statements("models", ""),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            deny_list(&updated),
            ["vpce-0aaaaaaaaaaaaaaaa", "vpce-0cccccccccccccccc"]
        );

        // Delete: the policy is byte for byte what it was.
        let deleted = apply("bucket", Some(&updated), &c.sid, vec![])
            .unwrap()
            .unwrap();
        assert_eq!(deleted, original);
    }

    #[test]
    fn endpoints_that_were_there_or_that_others_need_are_never_removed() {
        let original = format!(r#"{{"Version":"2012-10-17","Statement":[{DENY}]}}"#);
        // Already in the deny list: nothing added, nothing recorded, nothing removed later.
        let a = with_vpce(&["111111111111"], &["vpce-0aaaaaaaaaaaaaaaa"]);
        let created = apply(
            "bucket",
            Some(&original),
            &a.sid,
            a.bucket_statements("models", ""),
        )
        .unwrap()
        .unwrap();
        assert_eq!(deny_list(&created), ["vpce-0aaaaaaaaaaaaaaaa"]);
        assert!(!created.contains(&format!("{}Vpce", a.sid)));
        assert_eq!(
            apply("bucket", Some(&created), &a.sid, vec![])
                .unwrap()
                .unwrap(),
            original
        );

        // Added by us, later also granted through by someone else's statement: kept on Delete.
        let b = with_vpce(&["111111111111"], &["vpce-0bbbbbbbbbbbbbbbb"]);
        let created = apply(
            "bucket",
            Some(&original),
            &b.sid,
            b.bucket_statements("models", ""),
        )
        .unwrap()
        .unwrap();
        let mut v: Value = serde_json::from_str(&created).unwrap();
        v["Statement"].as_array_mut().unwrap().push(json!({"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444444444444:root"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::models/*", "Condition": {"StringEquals": {"aws:sourceVpce": "vpce-0bbbbbbbbbbbbbbbb"}}}));
        let deleted = apply("bucket", Some(&v.to_string()), &b.sid, vec![])
            .unwrap()
            .unwrap();
        assert_eq!(
            deny_list(&deleted),
            ["vpce-0aaaaaaaaaaaaaaaa", "vpce-0bbbbbbbbbbbbbbbb"]
        );
    }

    #[test]
    fn key_grants_are_bound_to_s3_reading_the_folder() {
        let g = grant(&["111111111111"]);
        let s = g.key_statements("models", "churn/", "us-east-1");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0]["Action"], "kms:Decrypt");
        assert_eq!(
            s[0]["Condition"],
            json!({
                "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [
                    "arn:aws:s3:::models/churn/*", "arn:aws:s3:::models"
                ]}
            })
        );
        let mut cn = g.clone();
        cn.partition = "aws-cn".into();
        let s = cn.key_statements("models", "", "cn-north-1");
        assert_eq!(
            s[0]["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            s[0]["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"][0],
            "arn:aws-cn:s3:::models/*"
        );
    }

    #[test]
    fn key_grants_carry_the_endpoint_condition_too() {
        let g = with_vpce(&["111111111111"], &["vpce-0bbbbbbbbbbbbbbbb"]);
        let s = g.key_statements("models", "churn/", "eu-west-1");
        assert_eq!(
            s[0]["Condition"]["StringEquals"]["aws:sourceVpce"][0],
            "vpce-0bbbbbbbbbbbbbbbb"
        );
        assert_eq!(
            s[0]["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.eu-west-1.amazonaws.com"
        );
        // No deny statement in the key policy: the marker is not kept.
        let out = apply("key", Some(r#"{"Statement":[]}"#), &g.sid, s)
            .unwrap()
            .unwrap();
        assert!(!out.contains(&format!("{}Vpce", g.sid)), "{out}");
    }
}
