//! Serialised read-modify-write of a shared document (a bucket policy, a key policy): a lease lock per
//! document in a DynamoDB table, so that two requests editing the same policy at once (two resources
//! without `DependsOn`, two stacks) take turns instead of one silently overwriting the other.
//!
//! - **Acquire**: a conditional `PutItem` of `{id, owner, leaseUntilMs, expiresAt}` that succeeds when
//!   no item exists or its lease has passed; otherwise wait (jittered) and try again until `until`.
//! - **Release**: a `DeleteItem` conditional on our owner token (a lock whose lease we outlived and
//!   someone else took is left to them).
//! - **Crash**: a holder that dies keeps the lock only until its lease passes ([`DEFAULT_LEASE`]);
//!   `expiresAt` (epoch seconds) lets DynamoDB's TTL remove stale items.
//!
//! Table: partition key `id` (string), TTL on `expiresAt`.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use tokio::time::Instant;

use crate::Error;

/// How long a holder may keep a lock before others may take it: far longer than one policy edit
/// (a few hundred ms), short enough that a crashed holder blocks others only briefly.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The table and lease. Build once per cold start.
#[derive(Clone)]
pub struct Locks {
    client: aws_sdk_dynamodb::Client,
    table: String,
    lease: Duration,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Locks {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        lease: Duration,
    ) -> Self {
        Locks {
            client,
            table: table.into(),
            lease,
        }
    }

    /// Runs `work` while holding the lock named `key`, waiting for it until `until`. The lock is
    /// released whether `work` succeeds or fails.
    pub async fn with<T, F>(&self, key: &str, until: Instant, work: F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        let owner = self.acquire(key, until).await?;
        let result = work.await;
        self.release(key, &owner).await;
        result
    }

    async fn acquire(&self, key: &str, until: Instant) -> Result<String, Error> {
        let owner = format!("{:016x}{:016x}", rand::random::<u64>(), epoch_ms());
        let mut waits = 0u32;
        loop {
            let now = epoch_ms();
            let lease_until = now + self.lease.as_millis() as u64;
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("id", AttributeValue::S(key.to_owned()))
                .item("owner", AttributeValue::S(owner.clone()))
                .item("leaseUntilMs", AttributeValue::N(lease_until.to_string()))
                .item(
                    "expiresAt",
                    AttributeValue::N((lease_until / 1000 + 3600).to_string()),
                )
                .condition_expression("attribute_not_exists(id) OR leaseUntilMs < :now")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await;
            match result {
                Ok(_) => {
                    if waits > 0 {
                        tracing::info!(lock = key, waits, "lock acquired after waiting");
                    }
                    return Ok(owner);
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(Error::aws("dynamodb:PutItem (lock)", e)),
            }
            // Held by someone else: wait 50–150 ms, growing, at most ~1 s.
            let base = 50u64 << waits.min(4);
            let delay = Duration::from_millis(base + rand::random::<u64>() % (base * 2 + 1));
            if Instant::now() + delay >= until {
                return Err(Error::other(format!(
                    "{key} is being edited by another request and did not become free in time; \
                     retry (a crashed editor frees it within {} s)",
                    self.lease.as_secs()
                )));
            }
            waits += 1;
            tokio::time::sleep(delay).await;
        }
    }

    async fn release(&self, key: &str, owner: &str) {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_owned()))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
            .send()
            .await;
        if let Err(e) = result {
            // Taken over after our lease passed, or a failed call: the lease frees it either way.
            tracing::warn!(lock = key, error = %Error::aws("dynamodb:DeleteItem (lock)", e), "lock not released; its lease frees it");
        }
    }
}
