//! `cross-account-access` (`Custom::CrossAccountModelAccess`) through the harness: the real binary
//! against moto's S3 and KMS. Policies are read back after Create, Update and Delete; statements the
//! resource did not write stay byte-for-byte as they were.

use std::time::Duration;

use serde_json::{Value, json};
use testbed::cfn::request;
use testbed::fixture::Fixture;
use testbed::harness::{CfnPut, Config, Harness};

const TYPE: &str = "Custom::CrossAccountModelAccess";
const STAGING: &str = "111111111111";
const PROD: &str = "222222222222";
const OTHER: &str = "333333333333";

/// Written by the bucket's owner, not by us: must survive every request untouched.
const FOREIGN_ALLOW: &str = r#"{"Sid":"DataEngineeringWrites","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/DataEngineering"},"Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::models/*"}"#;
const FOREIGN_DENY: &str = r#"{"Sid":"NoBucketDeletion","Effect":"Deny","Principal":"*","Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::models"}"#;

struct Bed {
    h: Harness,
    config: aws_config::SdkConfig,
    /// How `h` was started: another sandbox of the same function runs requests in parallel.
    function: Config,
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    key_arn: String,
    _fx: Fixture,
}

async fn bed() -> Bed {
    let fx = Fixture::start().await;
    let config = fx.config.clone();
    let s3 = fx.moto.s3().await;
    let kms = aws_sdk_kms::Client::new(&config);
    for bucket in ["models", "bare"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let key_arn = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap();
    let function = fx.function("CrossAccountAccessFunction");
    let h = Harness::start(function.clone()).await;
    Bed {
        h,
        config: config.clone(),
        function,
        s3,
        kms,
        key_arn,
        _fx: fx,
    }
}

impl Bed {
    async fn send(
        &self,
        key: &str,
        kind: &str,
        props: Value,
        physical: Option<&str>,
        old: Option<Value>,
    ) -> Value {
        let event = request(
            kind,
            &self.h.response_url(key),
            TYPE,
            "ModelAccess",
            props,
            physical,
            old,
        );
        self.h.invoke_async(&event);
        let r: Vec<CfnPut> = self.h.wait_for_response(key, Duration::from_secs(30)).await;
        assert_eq!(r.len(), 1, "exactly one response: {r:#?}");
        r[0].body.clone()
    }

    async fn bucket_policy(&self, bucket: &str) -> Option<String> {
        self.s3
            .get_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .ok()
            .and_then(|o| o.policy)
    }

    async fn key_policy(&self) -> String {
        self.kms
            .get_key_policy()
            .key_id(&self.key_arn)
            .policy_name("default")
            .send()
            .await
            .unwrap()
            .policy
            .unwrap()
    }

    /// Gives the bucket `models` a policy of the owner's own statements; returns its text.
    async fn with_foreign_policy(&self) -> String {
        let original =
            format!(r#"{{"Version":"2012-10-17","Statement":[{FOREIGN_ALLOW},{FOREIGN_DENY}]}}"#);
        self.s3
            .put_bucket_policy()
            .bucket("models")
            .policy(&original)
            .send()
            .await
            .unwrap();
        original
    }

    fn props(&self, bucket: &str, accounts: &[&str]) -> Value {
        json!({"BucketName": bucket, "KmsKeyArn": self.key_arn, "AccountIds": accounts.join(","), "Prefix": "churn/"})
    }
}

fn statements(policy: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(policy).unwrap()["Statement"]
        .as_array()
        .unwrap()
        .clone()
}

fn principals(statement: &Value) -> Vec<String> {
    statement["Principal"]["AWS"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn grants_follow_the_accounts_and_leave_foreign_statements_alone() {
    let bed = bed().await;
    let original = bed.with_foreign_policy().await;
    let original_key = bed.key_policy().await;

    // Create: staging only.
    let body = bed
        .send("c", "Create", bed.props("models", &[STAGING]), None, None)
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let sid = body["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SecureMlopsModelRead"));
    assert_eq!(body["Data"]["BucketPolicySid"], sid.as_str());
    assert_eq!(body["Data"]["KeyPolicySid"], sid.as_str());
    let policy = bed.bucket_policy("models").await.unwrap();
    assert!(
        policy.starts_with(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{FOREIGN_ALLOW},{FOREIGN_DENY},"#
        )),
        "foreign statements first, byte for byte: {policy}"
    );
    let s = statements(&policy);
    assert_eq!(s.len(), 4);
    assert_eq!(s[2]["Sid"], sid.as_str());
    assert_eq!(s[2]["Action"], "s3:GetObject");
    assert_eq!(s[2]["Resource"], "arn:aws:s3:::models/churn/*");
    assert_eq!(principals(&s[2]), [format!("arn:aws:iam::{STAGING}:root")]);
    assert_eq!(s[3]["Sid"], format!("{sid}List"));
    assert_eq!(s[3]["Action"], "s3:ListBucket");
    assert_eq!(
        s[3]["Condition"]["StringLike"]["s3:prefix"],
        json!(["churn/*"])
    );
    let key = bed.key_policy().await;
    let k = statements(&key);
    assert_eq!(k.len(), statements(&original_key).len() + 1);
    assert_eq!(k.last().unwrap()["Action"], "kms:Decrypt");
    assert_eq!(
        k.last().unwrap()["Condition"]["StringEquals"]["kms:ViaService"],
        "s3.us-east-1.amazonaws.com",
        "the key is usable only through S3"
    );
    assert_eq!(
        k.last().unwrap()["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"],
        json!(["arn:aws:s3:::models/churn/*", "arn:aws:s3:::models"])
    );
    for (before, after) in statements(&original_key).iter().zip(&k) {
        assert_eq!(
            before.to_string(),
            after.to_string(),
            "the key's own statements are unchanged"
        );
    }

    // Update: production added.
    let body = bed
        .send(
            "u1",
            "Update",
            bed.props("models", &[STAGING, PROD]),
            Some(&sid),
            Some(bed.props("models", &[STAGING])),
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], sid.as_str(), "updated in place");
    let s = statements(&bed.bucket_policy("models").await.unwrap());
    assert_eq!(s.len(), 4);
    assert_eq!(
        principals(&s[2]),
        [
            format!("arn:aws:iam::{STAGING}:root"),
            format!("arn:aws:iam::{PROD}:root")
        ]
    );
    let policy = bed.bucket_policy("models").await.unwrap();
    assert!(
        policy.contains(&format!("[{FOREIGN_ALLOW},{FOREIGN_DENY},")),
        "{policy}"
    );

    // Update: staging removed, another account added.
    bed.send(
        "u2",
        "Update",
        bed.props("models", &[PROD, OTHER]),
        Some(&sid),
        Some(bed.props("models", &[STAGING, PROD])),
    )
    .await;
    let s = statements(&bed.bucket_policy("models").await.unwrap());
    assert_eq!(
        principals(&s[2]),
        [
            format!("arn:aws:iam::{PROD}:root"),
            format!("arn:aws:iam::{OTHER}:root")
        ]
    );
    let k = statements(&bed.key_policy().await);
    assert_eq!(principals(k.last().unwrap()), principals(&s[2]));

    // Delete: both policies exactly as they were.
    let body = bed
        .send(
            "d",
            "Delete",
            bed.props("models", &[PROD, OTHER]),
            Some(&sid),
            None,
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(bed.bucket_policy("models").await.unwrap(), original);
    assert_eq!(
        statements(&bed.key_policy().await),
        statements(&original_key)
    );
    assert!(
        !bed.h.metric("Responses", "SUCCESS").is_empty(),
        "{:#?}",
        bed.h.metrics()
    );
}

#[tokio::test]
async fn a_bucket_without_policy_gets_one_and_loses_it_again() {
    let bed = bed().await;
    assert_eq!(bed.bucket_policy("bare").await, None);
    let props = json!({"BucketName": "bare", "KmsKeyArn": bed.key_arn, "AccountIds": [STAGING], "PrincipalRoleName": "ModelReader"});
    let body = bed.send("c", "Create", props.clone(), None, None).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let s = statements(&bed.bucket_policy("bare").await.unwrap());
    assert_eq!(
        principals(&s[0]),
        [format!("arn:aws:iam::{STAGING}:role/ModelReader")]
    );
    assert_eq!(
        s[0]["Resource"], "arn:aws:s3:::bare/*",
        "no Prefix: the whole bucket"
    );
    assert!(s[1].get("Condition").is_none());
    let sid = body["PhysicalResourceId"].as_str().unwrap();
    let body = bed.send("d", "Delete", props, Some(sid), None).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(
        bed.bucket_policy("bare").await,
        None,
        "the policy it created is removed"
    );
}

#[tokio::test]
async fn moving_the_grant_to_another_bucket_revokes_it_where_it_was() {
    let bed = bed().await;
    let body = bed
        .send("c", "Create", bed.props("models", &[STAGING]), None, None)
        .await;
    let sid = body["PhysicalResourceId"].as_str().unwrap().to_owned();
    let body = bed
        .send(
            "u",
            "Update",
            bed.props("bare", &[STAGING]),
            Some(&sid),
            Some(bed.props("models", &[STAGING])),
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], sid.as_str());
    assert_eq!(bed.bucket_policy("models").await, None);
    assert_eq!(
        statements(&bed.bucket_policy("bare").await.unwrap()).len(),
        2
    );
}

#[tokio::test]
async fn bad_input_fails_with_the_property_named_and_changes_nothing() {
    let bed = bed().await;
    let body = bed
        .send(
            "c1",
            "Create",
            json!({"BucketName": "models", "KmsKeyArn": "alias/models", "AccountIds": [STAGING]}),
            None,
            None,
        )
        .await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().contains("KmsKeyArn"),
        "{body}"
    );
    let body = bed
        .send("c2", "Create", json!({"BucketName": "missing-bucket", "KmsKeyArn": bed.key_arn, "AccountIds": [STAGING]}), None, None)
        .await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().contains("NoSuchBucket"),
        "{body}"
    );
    let body = bed
        .send(
            "c3",
            "Create",
            json!({"BucketName": "models", "KmsKeyArn": bed.key_arn, "AccountIds": ""}),
            None,
            None,
        )
        .await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().starts_with("AccountIds"),
        "{body}"
    );
    assert_eq!(bed.bucket_policy("models").await, None);
}

/// With `SourceVpceIds`, the grant is limited to the endpoints and they join the bucket's
/// deny-unless-VPC-endpoint statement; Delete takes out exactly what was added.
#[tokio::test]
async fn vpc_endpoints_join_the_deny_statement_and_leave_it_again() {
    let bed = bed().await;
    // (moto enforces a Deny without its Condition, so this one denies reads only, not policy edits.)
    let deny = r#"{"Sid":"OnlyThroughEndpoints","Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::models/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0aaaaaaaaaaaaaaaa"}}}"#;
    let original = format!(r#"{{"Version":"2012-10-17","Statement":[{deny}]}}"#);
    bed.s3
        .put_bucket_policy()
        .bucket("models")
        .policy(&original)
        .send()
        .await
        .unwrap();
    let mut props = bed.props("models", &[STAGING]);
    props["SourceVpceIds"] = json!(["vpce-0bbbbbbbbbbbbbbbb"]);
    let body = bed.send("c", "Create", props.clone(), None, None).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let s = statements(&bed.bucket_policy("models").await.unwrap());
    assert_eq!(
        s[0]["Condition"]["StringNotEquals"]["aws:SourceVpce"],
        json!(["vpce-0aaaaaaaaaaaaaaaa", "vpce-0bbbbbbbbbbbbbbbb"])
    );
    assert_eq!(
        s[1]["Condition"]["StringEquals"]["aws:sourceVpce"],
        json!(["vpce-0bbbbbbbbbbbbbbbb"])
    );
    let sid = body["PhysicalResourceId"].as_str().unwrap();
    let body = bed.send("d", "Delete", props, Some(sid), None).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let after = bed.bucket_policy("models").await.unwrap();
    assert_eq!(statements(&after), statements(&original));
}

/// `Prefix: models` is the folder `models/`: a grant never reaches `models-private/…`, and a prefix
/// with a wildcard or a policy variable is refused before any policy is touched.
#[tokio::test]
async fn a_prefix_grants_its_folder_only() {
    let bed = bed().await;
    let props = json!({"BucketName": "bare", "KmsKeyArn": bed.key_arn, "AccountIds": [STAGING], "Prefix": "models"});
    let body = bed.send("c", "Create", props.clone(), None, None).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let s = statements(&bed.bucket_policy("bare").await.unwrap());
    assert_eq!(s[0]["Resource"], "arn:aws:s3:::bare/models/*");
    assert_eq!(
        s[1]["Condition"]["StringLike"]["s3:prefix"],
        json!(["models/*"])
    );
    let sid = body["PhysicalResourceId"].as_str().unwrap();
    bed.send("d", "Delete", props, Some(sid), None).await;

    for (key, prefix) in [("var", "${aws:username}/"), ("wild", "models*")] {
        let props = json!({"BucketName": "bare", "KmsKeyArn": bed.key_arn, "AccountIds": [STAGING], "Prefix": prefix});
        let body = bed.send(key, "Create", props, None, None).await;
        assert_eq!(body["Status"], "FAILED", "{body}");
        assert!(
            body["Reason"].as_str().unwrap().starts_with("Prefix"),
            "{body}"
        );
        assert_eq!(bed.bucket_policy("bare").await, None, "nothing written");
    }
}

/// Sends `kind` for the grant `logical_id` through `h` and waits for its one response.
async fn send_via(
    h: &Harness,
    key: String,
    kind: &str,
    logical_id: &str,
    props: Value,
    physical: Option<&str>,
) -> Value {
    let event = request(
        kind,
        &h.response_url(&key),
        TYPE,
        logical_id,
        props,
        physical,
        None,
    );
    h.invoke_async(&event);
    let r = h.wait_for_response(&key, Duration::from_secs(60)).await;
    assert_eq!(r.len(), 1, "exactly one response: {r:#?}");
    r[0].body.clone()
}

/// Two grants on the same bucket and key, created and then deleted at the same time by two sandboxes
/// of the function (two resources without DependsOn): the edits take turns through the lock table,
/// so both grants are there after Create and the original policies are back after Delete — every
/// round. Without the lock one grant vanished in every round of 5 tried.
#[tokio::test]
async fn parallel_grants_on_one_bucket_never_lose_each_other() {
    let bed = bed().await;
    let second = Harness::start(bed.function.clone()).await;
    let original = bed.with_foreign_policy().await;
    let original_key = statements(&bed.key_policy().await);
    let (a, b) = (
        bed.props("models", &[STAGING]),
        bed.props("models", &[PROD]),
    );
    for round in 0..10 {
        let (ca, cb) = tokio::join!(
            send_via(
                &bed.h,
                format!("ca{round}"),
                "Create",
                "GrantA",
                a.clone(),
                None
            ),
            send_via(
                &second,
                format!("cb{round}"),
                "Create",
                "GrantB",
                b.clone(),
                None
            ),
        );
        assert_eq!(ca["Status"], "SUCCESS", "{ca}");
        assert_eq!(cb["Status"], "SUCCESS", "{cb}");
        let (sa, sb) = (
            ca["PhysicalResourceId"].as_str().unwrap().to_owned(),
            cb["PhysicalResourceId"].as_str().unwrap().to_owned(),
        );
        let policy = bed.bucket_policy("models").await.unwrap();
        let key = bed.key_policy().await;
        for sid in [&sa, &sb] {
            assert!(
                statements(&policy).iter().any(|s| s["Sid"] == sid.as_str()),
                "round {round}: bucket grant {sid} lost: {policy}"
            );
            assert!(
                statements(&key).iter().any(|s| s["Sid"] == sid.as_str()),
                "round {round}: key grant {sid} lost"
            );
        }
        let (da, db) = tokio::join!(
            send_via(
                &bed.h,
                format!("da{round}"),
                "Delete",
                "GrantA",
                a.clone(),
                Some(&sa)
            ),
            send_via(
                &second,
                format!("db{round}"),
                "Delete",
                "GrantB",
                b.clone(),
                Some(&sb)
            ),
        );
        assert_eq!(da["Status"], "SUCCESS", "{da}");
        assert_eq!(db["Status"], "SUCCESS", "{db}");
        assert_eq!(
            bed.bucket_policy("models").await.unwrap(),
            original,
            "round {round}: the bucket policy is the original text again"
        );
        assert_eq!(
            statements(&bed.key_policy().await),
            original_key,
            "round {round}: the key policy is the original again"
        );
    }
    let waited = bed
        .h
        .logs()
        .iter()
        .chain(second.logs().iter())
        .filter(|l| l.contains("lock acquired after waiting"))
        .count();
    println!("10 rounds of parallel create + delete: {waited} edits waited for the other's lock");
}

/// Without its lock table the function answers FAILED saying what is missing (never an init error
/// that would leave CloudFormation waiting), and touches no policy.
#[tokio::test]
async fn without_the_lock_table_a_grant_fails_clearly() {
    let bed = bed().await;
    let h = Harness::start(bed.function.clone().env("POLICY_LOCK_TABLE", "")).await;
    let body = send_via(
        &h,
        "c".into(),
        "Create",
        "GrantA",
        bed.props("bare", &[STAGING]),
        None,
    )
    .await;
    assert_eq!(body["Status"], "FAILED", "{body}");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .starts_with("POLICY_LOCK_TABLE is not set"),
        "{body}"
    );
    assert_eq!(bed.bucket_policy("bare").await, None);
}

/// A Create whose key write fails after the bucket statement was written leaves nothing behind: the
/// bucket statement is undone, and the FAILED answer carries the Sid (not the failed-Create marker) so
/// that CloudFormation's Delete reaches the provider and revokes whatever an undo could have missed.
#[tokio::test]
async fn a_grant_whose_key_write_fails_leaves_nothing_after_cloudformations_delete() {
    let bed = bed().await;
    let original = bed.with_foreign_policy().await;
    let missing_key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000";
    let props = json!({"BucketName": "models", "KmsKeyArn": missing_key, "AccountIds": [STAGING]});
    let body = bed.send("c", "Create", props.clone(), None, None).await;
    assert_eq!(body["Status"], "FAILED", "{body}");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("kms:GetKeyPolicy"),
        "{body}"
    );
    let sid = body["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(
        sid.starts_with("SecureMlopsModelRead"),
        "the Sid, not the marker: {sid}"
    );
    assert_eq!(
        bed.bucket_policy("models").await.unwrap(),
        original,
        "undone at once"
    );
    let body = bed.send("d", "Delete", props, Some(&sid), None).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(bed.bucket_policy("models").await.unwrap(), original);
}

/// In an organization, every statement carries `aws:PrincipalOrgID`, and a grant naming an account
/// outside the organization fails naming it before any policy is touched.
#[tokio::test]
async fn grants_are_bound_to_the_organization_and_refuse_outsiders() {
    let bed = bed().await;
    let org = testbed::org::seed(&bed.config).await;
    let org_id = aws_sdk_organizations::Client::new(&bed.config)
        .describe_organization()
        .send()
        .await
        .unwrap()
        .organization
        .unwrap()
        .id
        .unwrap();
    let members = org.expected(&["Staging"], true);
    assert!(!members.is_empty());
    let props = json!({"BucketName": "bare", "KmsKeyArn": bed.key_arn, "AccountIds": members});
    let body = bed.send("c", "Create", props.clone(), None, None).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let bucket = statements(&bed.bucket_policy("bare").await.unwrap());
    let key = statements(&bed.key_policy().await);
    let sid = body["PhysicalResourceId"].as_str().unwrap();
    for s in bucket.iter().chain(key.iter().filter(|s| s["Sid"] == sid)) {
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
            org_id.as_str(),
            "{s}"
        );
    }
    bed.send("d", "Delete", props, Some(sid), None).await;

    let mut with_outsiders = members.clone();
    with_outsiders.extend([STAGING.to_owned(), PROD.to_owned()]);
    let props =
        json!({"BucketName": "bare", "KmsKeyArn": bed.key_arn, "AccountIds": with_outsiders});
    let body = bed.send("o", "Create", props, None, None).await;
    assert_eq!(body["Status"], "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with("AccountIds:")
            && reason.contains(&format!(
                "{STAGING}, {PROD} are not in organization {org_id}"
            )),
        "{reason}"
    );
    assert_eq!(bed.bucket_policy("bare").await, None, "nothing written");
}
