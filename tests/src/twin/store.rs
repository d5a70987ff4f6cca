//! Resources with lazily applied, timed state transitions, and list pagination.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{ApiError, now_secs};

/// Marks a transition that removes the resource.
pub const GONE: &str = "__gone__";

#[derive(Clone, Debug)]
pub struct Resource {
    pub arn: String,
    /// The Describe body, without the status (added by [`Resource::describe`]).
    pub body: Value,
    pub status: String,
    pub next: Option<(Instant, String)>,
    pub failure_reason: Option<String>,
    pub created: f64,
    pub modified: f64,
}

impl Resource {
    pub fn new(arn: String, body: Value, status: &str) -> Self {
        let now = now_secs();
        Resource {
            arn,
            body,
            status: status.to_owned(),
            next: None,
            failure_reason: None,
            created: now,
            modified: now,
        }
    }

    /// Moves to `status` now and to `then` after `after`.
    pub fn transition(&mut self, status: &str, after: Duration, then: &str) {
        self.status = status.to_owned();
        self.modified = now_secs();
        self.next = Some((Instant::now() + after, then.to_owned()));
    }

    /// Applies a due transition. Returns true when the resource is gone.
    pub fn tick(&mut self, now: Instant) -> bool {
        if let Some((at, to)) = &self.next
            && *at <= now
        {
            if to == GONE {
                return true;
            }
            self.status = to.clone();
            self.modified = now_secs();
            self.next = None;
        }
        false
    }

    /// True while a transition is scheduled.
    pub fn busy(&self) -> bool {
        self.next.is_some()
    }

    /// The Describe body with status, times and failure reason under the given field names.
    pub fn describe(&self, status_field: &str) -> Value {
        let mut out = self.body.clone();
        out[status_field] = json!(self.status);
        out["CreationTime"] = json!(self.created);
        out["LastModifiedTime"] = json!(self.modified);
        if let Some(reason) = &self.failure_reason {
            out["FailureReason"] = json!(reason);
        }
        out
    }
}

/// Applies due transitions to every resource of a map, dropping the gone ones; returns those.
pub fn tick_all<K: Clone + Ord>(
    map: &mut std::collections::BTreeMap<K, Resource>,
    now: Instant,
) -> Vec<Resource> {
    let gone: Vec<K> = map
        .iter_mut()
        .filter_map(|(k, r)| r.tick(now).then(|| k.clone()))
        .collect();
    gone.into_iter().filter_map(|k| map.remove(&k)).collect()
}

/// One page of `items` by `MaxResults` / `NextToken` (the token is the offset).
pub fn page(
    items: Vec<Value>,
    params: &Value,
    key: &str,
    default_max: usize,
) -> Result<Value, ApiError> {
    let max = params["MaxResults"]
        .as_u64()
        .map(|m| m as usize)
        .unwrap_or(default_max);
    if max == 0 || max > 100 {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{max}' at 'maxResults' failed to satisfy constraint: \
             Member must have value less than or equal to 100"
        )));
    }
    let start = match params["NextToken"].as_str() {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::validation("Invalid pagination token"))?,
        None => 0,
    };
    let end = (start + max).min(items.len());
    let mut out = json!({ key: items.get(start..end).unwrap_or_default() });
    if end < items.len() {
        out["NextToken"] = json!(end.to_string());
    }
    Ok(out)
}
