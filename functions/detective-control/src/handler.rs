//! The function's flow: event → facts → failed checks → (claim) → stop/delete → alert. The only place
//! that ties the parts together; each returns a summary that is also logged.

use std::time::SystemTime;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde_json::{Value, json};
use shared::Error;
use tracing::info;

use crate::alert::{Context, Report};
use crate::checks;
use crate::config::Config;
use crate::idempotency::Idempotency;
use crate::notify::Notifier;
use crate::resource::{Kind, Observed, Place, Resource};
use crate::respond::{self, Action, Taken};
use crate::sagemaker::SageMaker;
use crate::trigger::{self, ApiCall, Trigger};

pub struct Handler {
    pub config: Config,
    pub sagemaker: SageMaker,
    pub notifier: Notifier,
    pub idempotency: Idempotency,
}

impl Handler {
    pub async fn handle(&self, payload: Value) -> Result<Value, Error> {
        match trigger::parse(&payload)? {
            Trigger::Other(why) => {
                info!(reason = %why, "ignored");
                Ok(json!({"ignored": why}))
            }
            Trigger::Call(call) => self.on_call(*call).await,
            Trigger::Sweep {
                event_id,
                time,
                place,
            } => self.sweep(event_id, time, place).await,
        }
    }

    async fn on_call(&self, call: ApiCall) -> Result<Value, Error> {
        if let Some(error) = &call.error {
            info!(event_id = %call.event_id, event_name = %call.event_name, error, "skipped: the call failed, nothing was created");
            return Ok(json!({"skipped": format!("the call failed ({error})")}));
        }
        let Some((kind, update)) = Kind::from_event_name(&call.event_name) else {
            info!(event_id = %call.event_id, event_name = %call.event_name, "ignored: not a watched call");
            return Ok(json!({"ignored": format!("{} is not a watched call", call.event_name)}));
        };
        let Some(resource) = Resource::from_call(kind, &call.request, &call.response, &call.place)
        else {
            return Err(Error::invalid(format!(
                "event {} ({}): requestParameters do not name the {} (expected a non-empty name member)",
                call.event_id,
                call.event_name,
                kind.label()
            )));
        };
        // An update carries only what changed: judge the resource as it is now.
        let (resource, observed, status) = if update {
            match self.sagemaker.describe(kind, &resource.name).await? {
                Some(f) => (f.resource, f.observed, f.status),
                None => {
                    info!(event_id = %call.event_id, arn = %resource.arn, "skipped: the resource no longer exists");
                    return Ok(json!({"skipped": "the resource no longer exists"}));
                }
            }
        } else {
            (resource, Observed::from_request(kind, &call.request), None)
        };
        let failed = checks::failed(kind, &observed, &self.config.rules);
        if failed.is_empty() {
            info!(event_id = %call.event_id, arn = %resource.arn, "compliant");
            return Ok(json!({"compliant": resource.arn}));
        }
        let context = Context {
            trigger: "event",
            event_id: call.event_id.clone(),
            event_name: call.event_name,
            event_time: call.event_time,
            principal: call.principal,
            source_ip: call.source_ip,
            place: call.place,
        };
        let key = format!("event#{}", call.event_id);
        match self.once(&key, &context, resource, failed, status).await? {
            Some(summary) => Ok(json!({"findings": [summary]})),
            None => Ok(json!({"duplicate": call.event_id})),
        }
    }

    async fn sweep(
        &self,
        event_id: String,
        time: Option<String>,
        place: Place,
    ) -> Result<Value, Error> {
        let at = time
            .as_deref()
            .and_then(|t| DateTime::from_str(t, Format::DateTime).ok())
            .unwrap_or_else(|| DateTime::from(SystemTime::now()));
        let since = DateTime::from_secs(at.secs() - self.config.sweep_lookback.as_secs() as i64);
        let context = Context {
            trigger: "sweep",
            event_id: event_id.clone(),
            event_name: "ScheduledSweep".into(),
            event_time: at.fmt(Format::DateTime).ok(),
            principal: None,
            source_ip: None,
            place,
        };
        let candidates = self.sagemaker.sweep_candidates(since).await?;
        let (mut findings, mut errors) = (Vec::new(), Vec::new());
        for (kind, name) in &candidates {
            let found = match self.sagemaker.describe(*kind, name).await {
                Ok(Some(f)) => f,
                Ok(None) => continue, // gone since it was listed
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let failed = checks::failed(*kind, &found.observed, &self.config.rules);
            if failed.is_empty() {
                continue;
            }
            // A sweep alerts once per resource and state (a Pending notebook alerts again when stopped).
            let key = format!(
                "sweep#{}#{}",
                found.resource.arn,
                found.status.as_deref().unwrap_or("-")
            );
            match self
                .once(&key, &context, found.resource, failed, found.status)
                .await
            {
                Ok(Some(summary)) => findings.push(summary),
                Ok(None) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        info!(
            event_id,
            examined = candidates.len(),
            findings = findings.len(),
            errors = errors.len(),
            "sweep done"
        );
        if !errors.is_empty() {
            // Lambda retries the sweep; what was handled is not handled twice.
            return Err(Error::other(format!(
                "sweep {event_id}: {} of {} resources could not be handled: {}",
                errors.len(),
                candidates.len(),
                errors.join("; ")
            )));
        }
        Ok(json!({"examined": candidates.len(), "findings": findings}))
    }

    /// Acts and alerts unless `key` was handled already (`None`). A failure to alert releases the claim
    /// so Lambda's retry tries again.
    async fn once(
        &self,
        key: &str,
        context: &Context,
        resource: Resource,
        failed: Vec<&'static checks::Rule>,
        status: Option<String>,
    ) -> Result<Option<Value>, Error> {
        if !self.idempotency.claim(key).await? {
            info!(key, arn = %resource.arn, "duplicate: handled already");
            return Ok(None);
        }
        let taken = self.respond(&resource, status.as_deref()).await;
        let report = Report {
            context,
            resource,
            failed,
            taken,
            mode: self.config.mode,
        };
        if let Err(e) = self.notifier.send(&report).await {
            self.idempotency.release(key).await;
            return Err(e);
        }
        let summary = json!({
            "arn": report.resource.arn,
            "checks": report.checks(),
            "action": report.taken.action,
            "result": report.taken.result,
            "detail": report.taken.detail,
        });
        info!(
            event_id = %context.event_id,
            arn = %report.resource.arn,
            checks = ?report.checks(),
            action = ?report.taken.action,
            result = ?report.taken.result,
            detail = %report.taken.detail,
            "non-compliant resource handled"
        );
        Ok(Some(summary))
    }

    async fn respond(&self, resource: &Resource, status: Option<&str>) -> Taken {
        let (action, reason) = respond::plan(resource.kind, self.config.mode);
        if let Some(reason) = reason {
            return Taken::not_taken(reason);
        }
        if let Some(taken) = already(resource.kind, action, status) {
            return taken;
        }
        self.sagemaker.act(action, resource).await
    }
}

/// When the current status is known (described), a stop that cannot apply is not attempted.
fn already(kind: Kind, action: Action, status: Option<&str>) -> Option<Taken> {
    let status = status?;
    let running = match kind {
        Kind::NotebookInstance => status == "InService" || status == "Pending",
        Kind::TrainingJob | Kind::ProcessingJob | Kind::TransformJob | Kind::TuningJob => {
            status == "InProgress"
        }
        _ => return None,
    };
    if running {
        return None;
    }
    Some(Taken {
        action,
        result: respond::Outcome::AlreadyInactive,
        detail: format!("not running (status {status})"),
    })
}
