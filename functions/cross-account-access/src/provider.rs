//! The `Custom::CrossAccountModelAccess` provider: writes its own statements into the bucket policy and
//! the key policy, and removes exactly those on Update (when the bucket or key changes) and Delete.

use aws_sdk_s3::error::ProvideErrorMetadata;
use shared::Error;
use shared::cfn::props::field;
use shared::cfn::{Ctx, Done, Provider, ProviderResult};
use shared::ids::{AccountId, BucketName, KmsKeyArn};
use shared::lock::Locks;
use std::time::Duration;
use tokio::time::Instant;
use tracing::info;

use crate::policy::{Grant, SID_PREFIX, apply, holds};
use crate::properties::Properties;

pub struct CrossAccountAccess {
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    org: aws_sdk_organizations::Client,
    locks: Option<Locks>,
}

/// The setting naming the DynamoDB table (partition key `id`) that serialises policy edits.
pub const LOCK_TABLE_SETTING: &str = "POLICY_LOCK_TABLE";

/// How long an edit waits for another request's edit of the same policy.
const LOCK_WAIT: Duration = Duration::from_secs(20);
/// Edits whose read-back does not show them are written again this many times in all.
const WRITE_ATTEMPTS: u32 = 3;

/// A policy document several grants share: read-modify-write only under its lock.
#[derive(Clone, Copy)]
enum Document<'a> {
    Bucket(&'a BucketName),
    Key(&'a KmsKeyArn),
}

impl std::fmt::Display for Document<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Document::Bucket(b) => write!(f, "bucket {b}"),
            Document::Key(k) => write!(f, "key {k}"),
        }
    }
}

/// The Sid (and physical id) of one resource: stable for its stack and logical id, unique per bucket.
pub fn sid_for(stack_id: &str, logical_id: &str) -> String {
    let hex = shared::ids::sha256_hex(&format!("{stack_id}|{logical_id}"), 8);
    format!("{SID_PREFIX}{hex}")
}

impl CrossAccountAccess {
    /// The provider with its clients, built once per cold start. Edits of one policy take turns
    /// through a lease lock in the table `POLICY_LOCK_TABLE` names (see `shared::lock`); without it
    /// every request is answered FAILED saying so (never a failed cold start: CloudFormation must hear
    /// back).
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(shared::aws::custom_endpoint("S3"))
            .interceptor(shared::xray::Segments)
            .build();
        let locks = shared::settings::from_env()
            .get(LOCK_TABLE_SETTING)
            .map(|table| {
                Locks::new(
                    shared::client!(aws_sdk_dynamodb, sdk),
                    table,
                    shared::lock::DEFAULT_LEASE,
                )
            });
        Ok(CrossAccountAccess {
            s3: aws_sdk_s3::Client::from_conf(s3),
            kms: shared::client!(aws_sdk_kms, sdk),
            org: shared::client!(aws_sdk_organizations, sdk),
            locks,
        })
    }

    async fn read(&self, doc: Document<'_>) -> Result<Option<String>, Error> {
        match doc {
            Document::Bucket(bucket) => match self
                .s3
                .get_bucket_policy()
                .bucket(bucket.as_str())
                .send()
                .await
            {
                Ok(out) => Ok(out.policy),
                Err(e) if e.code() == Some("NoSuchBucketPolicy") => Ok(None),
                Err(e) => Err(Error::aws("s3:GetBucketPolicy", e)),
            },
            Document::Key(key) => Ok(self
                .kms
                .get_key_policy()
                .key_id(key.as_str())
                .policy_name("default")
                .send()
                .await
                .map_err(|e| Error::aws("kms:GetKeyPolicy", e))?
                .policy),
        }
    }

    /// Writes `policy`; `None` removes the bucket policy (a key always keeps one).
    async fn write(&self, doc: Document<'_>, policy: Option<String>) -> Result<(), Error> {
        match (doc, policy) {
            (Document::Bucket(bucket), Some(policy)) => self
                .s3
                .put_bucket_policy()
                .bucket(bucket.as_str())
                .policy(policy)
                .send()
                .await
                .map(drop)
                .map_err(|e| Error::aws("s3:PutBucketPolicy", e)),
            (Document::Bucket(bucket), None) => self
                .s3
                .delete_bucket_policy()
                .bucket(bucket.as_str())
                .send()
                .await
                .map(drop)
                .map_err(|e| Error::aws("s3:DeleteBucketPolicy", e)),
            (Document::Key(key), Some(policy)) => self
                .kms
                .put_key_policy()
                .key_id(key.as_str())
                .policy_name("default")
                .policy(policy)
                .send()
                .await
                .map(drop)
                .map_err(|e| Error::aws("kms:PutKeyPolicy", e)),
            (Document::Key(key), None) => Err(Error::other(format!(
                "refusing to leave key {key} without a key policy: it had no statement but this resource's"
            ))),
        }
    }

    /// Replaces this grant's statements in `doc` (`statements` empty: removes them), under the
    /// document's lock, and reads it back until the statements are there (or gone).
    async fn edit(
        &self,
        doc: Document<'_>,
        sid: &str,
        statements: Vec<serde_json::Value>,
    ) -> Result<(), Error> {
        let lock = match doc {
            Document::Bucket(b) => format!("s3-bucket-policy/{b}"),
            Document::Key(k) => format!("kms-key-policy/{k}"),
        };
        let Some(locks) = &self.locks else {
            return Err(Error::invalid(format!(
                "{LOCK_TABLE_SETTING} is not set: the function needs its DynamoDB lock table to edit \
                 shared policies safely (deploy it with infra/template.yaml, which sets it)"
            )));
        };
        let until = Instant::now() + LOCK_WAIT;
        locks
            .with(&lock, until, async {
                for attempt in 1..=WRITE_ATTEMPTS {
                    let current = self.read(doc).await?;
                    let next = apply(&doc.to_string(), current.as_deref(), sid, statements.clone())?;
                    if next != current {
                        self.write(doc, next).await?;
                    }
                    let after = self.read(doc).await?;
                    if holds(after.as_deref(), sid, &statements) {
                        return Ok(());
                    }
                    tracing::warn!(%doc, attempt, "the policy read back does not show this edit; writing again");
                }
                Err(Error::other(format!(
                    "the {doc} policy did not show this resource's statements after {WRITE_ATTEMPTS} \
                     writes (another tool may be rewriting it); retry"
                )))
            })
            .await
    }

    async fn grant(&self, sid: &str, props: &Properties) -> Result<(), Error> {
        let grant = Grant {
            sid: sid.to_owned(),
            partition: props.partition().to_owned(),
            principals: props.principals(),
            vpce: props.vpce(),
            org_id: self.organization(&props.account_ids).await?,
        };
        self.edit(
            Document::Bucket(&props.bucket_name),
            sid,
            grant.bucket_statements(props.bucket_name.as_str(), &props.folder()),
        )
        .await?;
        if let Err(e) = self
            .edit(
                Document::Key(&props.kms_key_arn),
                sid,
                grant.key_statements(props.bucket_name.as_str(), &props.folder(), props.region()),
            )
            .await
        {
            // Leave nothing half-done: undo the bucket statement now, and report the Sid as what a
            // failed Create made, so that CloudFormation's Delete revokes whatever the undo missed.
            if let Err(undo) = self
                .edit(Document::Bucket(&props.bucket_name), sid, vec![])
                .await
            {
                tracing::warn!(error = %undo, "could not undo the bucket statement after the key failed; CloudFormation's Delete will");
            }
            return Err(Error::partial(sid, e));
        }
        info!(sid, accounts = grant.principals.len(), bucket = %props.bucket_name, key = %props.kms_key_arn, "granted");
        Ok(())
    }

    /// The organization the grant is bound to (`aws:PrincipalOrgID`), once every account of
    /// `accounts` is known to be one of its members; `None` when this account is in no organization
    /// (the statements then name the accounts only).
    async fn organization(&self, accounts: &[AccountId]) -> Result<Option<String>, Error> {
        let org = match self.org.describe_organization().send().await {
            Ok(out) => out.organization.and_then(|o| o.id).unwrap_or_default(),
            Err(e) if e.code() == Some("AWSOrganizationsNotInUseException") => {
                tracing::warn!("this account is in no organization: grants are not bound to one");
                return Ok(None);
            }
            Err(e) => return Err(Error::aws("organizations:DescribeOrganization", e)),
        };
        let pages: Vec<_> = self
            .org
            .list_accounts()
            .into_paginator()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| Error::aws("organizations:ListAccounts", e))?;
        let members: std::collections::HashSet<&str> = pages
            .iter()
            .flat_map(|p| p.accounts())
            .filter_map(|a| a.id())
            .collect();
        let outside: Vec<&str> = accounts
            .iter()
            .map(|a| a.as_str())
            .filter(|a| !members.contains(a))
            .collect();
        if !outside.is_empty() {
            return Err(Error::invalid(format!(
                "AccountIds: {} {} not in organization {org}; a grant may name only accounts of \
                 the organization",
                outside.join(", "),
                if outside.len() == 1 { "is" } else { "are" }
            )));
        }
        Ok(Some(org))
    }

    /// Removes this resource's statements from a bucket; a bucket that no longer exists has none.
    async fn revoke_bucket(&self, sid: &str, bucket: &BucketName) -> Result<(), Error> {
        match self.edit(Document::Bucket(bucket), sid, vec![]).await {
            Err(e) if e.code() == Some("NoSuchBucket") => {
                info!(%bucket, "bucket is gone");
                Ok(())
            }
            other => other,
        }
    }

    /// Removes this resource's statement from a key; a key gone or pending deletion has none.
    async fn revoke_key(&self, sid: &str, key: &KmsKeyArn) -> Result<(), Error> {
        match self.edit(Document::Key(key), sid, vec![]).await {
            Err(e) if e.is_not_found() || e.code() == Some("KMSInvalidStateException") => {
                info!(%key, "key is gone or pending deletion");
                Ok(())
            }
            other => other,
        }
    }
}

fn done(sid: &str) -> Done {
    Done::new(sid)
        .with("BucketPolicySid", sid)
        .with("KeyPolicySid", sid)
}

impl Provider for CrossAccountAccess {
    type Properties = Properties;
    type State = ();

    async fn create(&self, ctx: &Ctx<'_>, props: Properties) -> ProviderResult<()> {
        let sid = sid_for(&ctx.request.stack_id, &ctx.request.logical_resource_id);
        self.grant(&sid, &props).await?;
        Ok(done(&sid).into())
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        physical_id: &str,
        props: Properties,
        old: Option<Properties>,
    ) -> ProviderResult<()> {
        let sid = if physical_id.starts_with(SID_PREFIX) {
            physical_id.to_owned()
        } else {
            sid_for(&ctx.request.stack_id, &ctx.request.logical_resource_id)
        };
        // Same physical id whatever changes: a moved grant is revoked where it was, here and now.
        if let Some(old) = &old {
            if old.bucket_name != props.bucket_name {
                self.revoke_bucket(&sid, &old.bucket_name).await?;
            }
            if old.kms_key_arn != props.kms_key_arn {
                self.revoke_key(&sid, &old.kms_key_arn).await?;
            }
        }
        self.grant(&sid, &props).await?;
        Ok(done(&sid).into())
    }

    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        physical_id: &str,
        props: Option<Properties>,
    ) -> ProviderResult<()> {
        // Properties that no longer parse as a whole: the two this needs, read one by one.
        let raw = &ctx.request.resource_properties;
        let (bucket, key) = match props {
            Some(p) => (Some(p.bucket_name), Some(p.kms_key_arn)),
            None => (
                field::<BucketName>(raw, "BucketName"),
                field::<KmsKeyArn>(raw, "KmsKeyArn"),
            ),
        };
        match &bucket {
            Some(bucket) => self.revoke_bucket(physical_id, bucket).await?,
            None => tracing::warn!(
                sid = physical_id,
                "BucketName unreadable: no bucket statement revoked"
            ),
        }
        match &key {
            Some(key) => self.revoke_key(physical_id, key).await?,
            None => tracing::warn!(
                sid = physical_id,
                "KmsKeyArn unreadable: no key statement revoked"
            ),
        }
        info!(sid = physical_id, "revoked");
        Ok(done(physical_id).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_stable_and_distinct() {
        let a = sid_for("arn:aws:cloudformation:us-east-1:1:stack/s/1", "Access");
        assert_eq!(
            a,
            sid_for("arn:aws:cloudformation:us-east-1:1:stack/s/1", "Access")
        );
        assert_ne!(
            a,
            sid_for("arn:aws:cloudformation:us-east-1:1:stack/s/1", "Access2")
        );
        assert!(a.starts_with(SID_PREFIX) && a.len() == SID_PREFIX.len() + 16);
        assert!(
            a.bytes().all(|b| b.is_ascii_alphanumeric()),
            "S3 and KMS accept it as a Sid"
        );
    }
}
