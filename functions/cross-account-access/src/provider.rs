//! The `Custom::CrossAccountModelAccess` provider: writes its own statements into the bucket policy and
//! the key policy, and removes exactly those on Update (when the bucket or key changes) and Delete.

use aws_sdk_s3::error::ProvideErrorMetadata;
use sha2::{Digest, Sha256};
use shared::Error;
use shared::cfn::{Ctx, Done, Provider, ProviderResult};
use shared::ids::{BucketName, KmsKeyArn};
use tracing::info;

use crate::policy::{Grant, apply};
use crate::properties::Properties;

const SID_PREFIX: &str = "SecureMlopsModelRead";

pub struct CrossAccountAccess {
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
}

/// The Sid (and physical id) of one resource: stable for its stack and logical id, unique per bucket.
pub fn sid_for(stack_id: &str, logical_id: &str) -> String {
    let digest = Sha256::digest(format!("{stack_id}|{logical_id}").as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{SID_PREFIX}{hex}")
}

impl CrossAccountAccess {
    pub fn new(s3: aws_sdk_s3::Client, kms: aws_sdk_kms::Client) -> Self {
        CrossAccountAccess { s3, kms }
    }

    async fn bucket_policy(&self, bucket: &BucketName) -> Result<Option<String>, Error> {
        match self
            .s3
            .get_bucket_policy()
            .bucket(bucket.as_str())
            .send()
            .await
        {
            Ok(out) => Ok(out.policy),
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => Ok(None),
            Err(e) => Err(Error::aws("s3:GetBucketPolicy", e)),
        }
    }

    /// Replaces this grant's statements in the bucket policy (`statements` empty: removes them).
    async fn edit_bucket(
        &self,
        bucket: &BucketName,
        sid: &str,
        statements: Vec<serde_json::Value>,
    ) -> Result<(), Error> {
        let current = self.bucket_policy(bucket).await?;
        let removing = statements.is_empty();
        let next = apply(
            &format!("bucket {bucket}"),
            current.as_deref(),
            sid,
            statements,
        )?;
        if next == current {
            return Ok(());
        }
        match next {
            Some(policy) => self
                .s3
                .put_bucket_policy()
                .bucket(bucket.as_str())
                .policy(policy)
                .send()
                .await
                .map(drop)
                .map_err(|e| Error::aws("s3:PutBucketPolicy", e)),
            None if removing => self
                .s3
                .delete_bucket_policy()
                .bucket(bucket.as_str())
                .send()
                .await
                .map(drop)
                .map_err(|e| Error::aws("s3:DeleteBucketPolicy", e)),
            None => Ok(()),
        }
    }

    async fn edit_key(
        &self,
        key: &KmsKeyArn,
        sid: &str,
        statements: Vec<serde_json::Value>,
    ) -> Result<(), Error> {
        let current = self
            .kms
            .get_key_policy()
            .key_id(key.as_str())
            .policy_name("default")
            .send()
            .await
            .map_err(|e| Error::aws("kms:GetKeyPolicy", e))?
            .policy;
        let next = apply(&format!("key {key}"), current.as_deref(), sid, statements)?;
        if next == current {
            return Ok(());
        }
        let Some(policy) = next else {
            return Err(Error::other(format!(
                "refusing to leave key {key} without a key policy: it had no statement but this resource's"
            )));
        };
        self.kms
            .put_key_policy()
            .key_id(key.as_str())
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .map(drop)
            .map_err(|e| Error::aws("kms:PutKeyPolicy", e))
    }

    async fn grant(&self, sid: &str, props: &Properties) -> Result<(), Error> {
        props.check()?;
        let grant = Grant {
            sid: sid.to_owned(),
            partition: props.partition().to_owned(),
            principals: props.principals(),
            vpce: props.vpce(),
        };
        self.edit_bucket(
            &props.bucket_name,
            sid,
            grant.bucket_statements(props.bucket_name.as_str(), &props.prefix),
        )
        .await?;
        if let Err(e) = self
            .edit_key(&props.kms_key_arn, sid, grant.key_statements())
            .await
        {
            // Leave nothing half-done: CloudFormation will not call Delete for a failed Create.
            if let Err(undo) = self.edit_bucket(&props.bucket_name, sid, vec![]).await {
                tracing::warn!(error = %undo, "could not undo the bucket statement after the key failed");
            }
            return Err(e);
        }
        info!(sid, accounts = grant.principals.len(), bucket = %props.bucket_name, key = %props.kms_key_arn, "granted");
        Ok(())
    }

    /// Removes this resource's statements from a bucket; a bucket that no longer exists has none.
    async fn revoke_bucket(&self, sid: &str, bucket: &BucketName) -> Result<(), Error> {
        match self.edit_bucket(bucket, sid, vec![]).await {
            Err(e) if e.code() == Some("NoSuchBucket") => {
                info!(%bucket, "bucket is gone");
                Ok(())
            }
            other => other,
        }
    }

    /// Removes this resource's statement from a key; a key gone or pending deletion has none.
    async fn revoke_key(&self, sid: &str, key: &KmsKeyArn) -> Result<(), Error> {
        match self.edit_key(key, sid, vec![]).await {
            Err(e)
                if matches!(
                    e.code(),
                    Some("NotFoundException" | "KMSInvalidStateException")
                ) =>
            {
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
        props.check()?;
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
        _ctx: &Ctx<'_>,
        physical_id: &str,
        props: Properties,
    ) -> ProviderResult<()> {
        self.revoke_bucket(physical_id, &props.bucket_name).await?;
        self.revoke_key(physical_id, &props.kms_key_arn).await?;
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
