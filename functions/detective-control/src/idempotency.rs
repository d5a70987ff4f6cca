//! "Handled already?" — a DynamoDB record per event (or per sweep finding), written before acting with a
//! conditional put, so a second delivery of the same event stops nothing and alerts no one. Records expire
//! after `IDEMPOTENCY_TTL_HOURS` (DynamoDB TTL on `expiresAt`). Without a table every delivery is handled.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use shared::Error;

pub struct Idempotency {
    client: aws_sdk_dynamodb::Client,
    table: Option<String>,
    ttl: Duration,
}

fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Idempotency {
    pub fn new(client: aws_sdk_dynamodb::Client, table: Option<String>, ttl: Duration) -> Self {
        Idempotency { client, table, ttl }
    }

    /// True the first time `key` is claimed (or when its record has expired).
    pub async fn claim(&self, key: &str) -> Result<bool, Error> {
        let Some(table) = &self.table else {
            return Ok(true);
        };
        let now = epoch();
        let result = self
            .client
            .put_item()
            .table_name(table)
            .item("id", AttributeValue::S(key.to_owned()))
            .item(
                "expiresAt",
                AttributeValue::N((now + self.ttl.as_secs()).to_string()),
            )
            .condition_expression("attribute_not_exists(id) OR expiresAt < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::aws("PutItem", e)),
        }
    }

    /// Forgets a claim whose handling failed, so Lambda's retry handles the event again.
    pub async fn release(&self, key: &str) {
        let Some(table) = &self.table else { return };
        if let Err(e) = self
            .client
            .delete_item()
            .table_name(table)
            .key("id", AttributeValue::S(key.to_owned()))
            .send()
            .await
        {
            tracing::warn!(key, error = %Error::aws("DeleteItem", e), "could not release the idempotency record; a retry of this event will be skipped");
        }
    }
}
