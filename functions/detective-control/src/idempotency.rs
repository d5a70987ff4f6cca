//! "Handled already?" — the DynamoDB ledger (`IDEMPOTENCY_TABLE`). Without a table every delivery is
//! handled and every sweep alerts.
//!
//! - **Events**, in two phases as Powertools' idempotency utility does: a record `IN_PROGRESS` is written
//!   before acting, with a short expiry (`IN_PROGRESS_SECONDS`, shorter than Lambda's first retry of an
//!   asynchronous event), and marked `COMPLETED` once the alert is out. A second delivery of a completed
//!   event does nothing; one that arrives while another invocation works on it fails, so Lambda retries it
//!   later; one that arrives after a crash (the record in progress has expired) acts and alerts.
//! - **Resources**: the last state alerted per resource (`resource#<arn>` → status and outcome), so a
//!   sweep retries a failed stop every time and alerts once per change of state, not once per sweep.
//!
//! Every record expires after `IDEMPOTENCY_TTL_HOURS` (DynamoDB TTL on `expiresAt`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use shared::Error;

pub struct Idempotency {
    client: aws_sdk_dynamodb::Client,
    table: Option<String>,
    ttl: Duration,
    in_progress: Duration,
}

/// What a claim found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours to handle.
    Acquired,
    /// Handled and alerted already.
    Completed,
    /// Another invocation is handling it now (its record has not expired).
    InProgress,
}

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl Idempotency {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: Option<String>,
        ttl: Duration,
        in_progress: Duration,
    ) -> Self {
        Idempotency {
            client,
            table,
            ttl,
            in_progress,
        }
    }

    /// Claims `key` for this invocation: a new key, an expired record, or a record left in progress by
    /// an invocation that did not finish (crash, timeout) are ours.
    pub async fn claim(&self, key: &str) -> Result<Claim, Error> {
        let Some(table) = &self.table else {
            return Ok(Claim::Acquired);
        };
        let now = epoch();
        let result = self
            .client
            .put_item()
            .table_name(table)
            .item("id", AttributeValue::S(key.to_owned()))
            .item("status", AttributeValue::S(IN_PROGRESS.into()))
            .item("expiresAt", n(now + self.ttl.as_secs()))
            .item("inProgressUntil", n(now + self.in_progress.as_secs()))
            .condition_expression(
                "attribute_not_exists(id) OR expiresAt < :now OR (#s = :in_progress AND inProgressUntil < :now)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c)) => {
                    let status = c
                        .item()
                        .and_then(|i| i.get("status"))
                        .and_then(|v| v.as_s().ok())
                        .map(String::as_str);
                    Ok(if status == Some(IN_PROGRESS) {
                        Claim::InProgress
                    } else {
                        Claim::Completed
                    })
                }
                _ => Err(Error::aws("dynamodb:PutItem", e)),
            },
        }
    }

    /// Marks a claimed key handled (the alert is out). A failure is logged: the record then expires as
    /// in progress, and a later delivery would alert a second time rather than never.
    pub async fn complete(&self, key: &str) {
        let Some(table) = &self.table else { return };
        let result = self
            .client
            .update_item()
            .table_name(table)
            .key("id", AttributeValue::S(key.to_owned()))
            .update_expression("SET #s = :completed REMOVE inProgressUntil")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":completed", AttributeValue::S(COMPLETED.into()))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(key, error = %Error::aws("dynamodb:UpdateItem", e), "could not mark the event handled; a redelivery after the in-progress expiry would alert again");
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
            tracing::warn!(key, error = %Error::aws("dynamodb:DeleteItem", e), "could not release the idempotency record; a retry of this event is skipped until it expires");
        }
    }

    /// The state last alerted for the resource `arn` (`None`: never, or no table).
    pub async fn last_state(&self, arn: &str) -> Result<Option<String>, Error> {
        let Some(table) = &self.table else {
            return Ok(None);
        };
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("id", AttributeValue::S(format!("resource#{arn}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("dynamodb:GetItem", e))?;
        let item = out.item();
        let live = item
            .and_then(|i| i.get("expiresAt"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|t| t >= epoch());
        Ok(item
            .filter(|_| live)
            .and_then(|i| i.get("state"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    /// Records the state just alerted for `arn`.
    pub async fn record_state(&self, arn: &str, state: &str) {
        let Some(table) = &self.table else { return };
        let result = self
            .client
            .put_item()
            .table_name(table)
            .item("id", AttributeValue::S(format!("resource#{arn}")))
            .item("state", AttributeValue::S(state.to_owned()))
            .item("expiresAt", n(epoch() + self.ttl.as_secs()))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(arn, error = %Error::aws("dynamodb:PutItem", e), "could not record the resource's alerted state; the next sweep may alert it again");
        }
    }
}
