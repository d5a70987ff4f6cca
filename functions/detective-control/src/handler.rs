//! The function's flow: event → facts → failed checks → (claim) → stop/delete → alert. The only place
//! that ties the parts together; each returns a summary that is also logged.

use std::sync::Arc;
use std::time::SystemTime;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde_json::{Value, json};
use shared::Error;
use shared::metrics::{self, Metric};
use tracing::info;

use crate::alert::{Context, Report};
use crate::checks;
use crate::config::Config;
use crate::continuation::Continuation;
use crate::idempotency::{Claim, Idempotency};
use crate::members::{Members, Reach, Scope};
use crate::notify::Notifier;
use crate::resource::{Kind, Observed, Place, Resource};
use crate::respond::{self, Action, Taken};
use crate::sagemaker::Found;
use crate::trigger::{self, ApiCall, Trigger};

/// The fan-out stops starting member sweeps this long before the invocation's deadline (enough to
/// answer with the error that says so).
const FAN_OUT_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// One sweep run (or its continuation).
struct Sweep {
    event_id: String,
    time: Option<String>,
    place: Place,
    full: bool,
    /// The last candidate an earlier invocation of this sweep handled.
    after: Option<String>,
    /// The schedule's own sweep: in organization-wide mode it starts one in every member too.
    fan_out: bool,
}

pub struct Handler {
    pub config: Config,
    /// Where a sweep that runs out of time sends its continuation (this function, asynchronously).
    pub continuation: Continuation,
    /// SageMaker (and Security Hub) of this account.
    pub home: Reach,
    /// The member accounts of organization-wide mode (none in single-account mode).
    pub members: Members,
    pub notifier: Notifier,
    pub idempotency: Idempotency,
}

impl shared::event::Handler for Handler {
    fn new(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let config = Config::from_env()?;
        Ok(Handler {
            continuation: Continuation::new(
                shared::client!(aws_sdk_lambda, sdk),
                std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
            ),
            home: Reach::new(sdk, config.security_hub),
            members: Members::new(sdk, config.organization.clone(), config.security_hub),
            notifier: Notifier::new(shared::client!(aws_sdk_sns, sdk), config.topic_arn.clone()),
            idempotency: Idempotency::new(
                shared::client!(aws_sdk_dynamodb, sdk),
                config.idempotency_table.clone(),
                config.idempotency_ttl,
                config.in_progress,
            ),
            config,
        })
    }

    async fn handle(
        &self,
        event: Value,
        invocation: &shared::event::Invocation,
    ) -> Result<Value, Error> {
        // The account this function runs in, from the ARN Lambda invoked it by.
        let home = invocation
            .function_arn
            .split(':')
            .nth(4)
            .unwrap_or_default();
        self.handle_until(event, Some(invocation.deadline), home)
            .await
    }
}

impl Handler {
    /// One invocation without a deadline (tests).
    #[cfg(test)]
    pub async fn handle_now(&self, payload: Value) -> Result<Value, Error> {
        self.handle_until(payload, None, "123456789012").await
    }

    /// `deadline`: when the invocation ends (a sweep hands what is left to a new invocation before);
    /// `home`: the account the function runs in.
    pub async fn handle_until(
        &self,
        payload: Value,
        deadline: Option<SystemTime>,
        home: &str,
    ) -> Result<Value, Error> {
        match trigger::parse(&payload)? {
            Trigger::Other(why) => {
                info!(reason = %why, "ignored");
                Ok(json!({"ignored": why}))
            }
            Trigger::Call(call) => self.on_call(*call, home).await,
            Trigger::Sweep {
                event_id,
                time,
                place,
                full,
                after,
                fan_out,
            } => {
                let sweep = Sweep {
                    event_id,
                    time,
                    place,
                    full,
                    after,
                    fan_out,
                };
                self.sweep(sweep, deadline, home).await
            }
        }
    }

    /// The clients that act where `place` is, or why nothing is done there (`Err(Ok(answer))`) or it
    /// cannot be (`Err(Err(error))`, after the alert).
    async fn reach(
        &self,
        home: &str,
        place: &Place,
        what: &str,
    ) -> Result<Option<Arc<Reach>>, Result<Value, Error>> {
        match self.members.scope(home, place).await {
            Ok(Scope::Home) => Ok(None),
            Ok(Scope::Member(reach)) => Ok(Some(reach)),
            Ok(Scope::Outside(why)) => {
                info!(what, account = %place.account, reason = %why, "ignored: not an account this control watches");
                Err(Ok(json!({"ignored": why})))
            }
            Ok(Scope::Unreachable(why)) => Err(Err(self.unreachable(place, &why).await)),
            Err(e) => Err(Err(e)),
        }
    }

    /// A member account whose responder role cannot be assumed: one alert per account and region
    /// until it can be again (the state is kept with the alerted states), a metric every time, and an
    /// error so the event is retried and then kept in the dead-letter queue.
    async fn unreachable(&self, place: &Place, why: &str) -> Error {
        let key = format!("member#{}#{}", place.account, place.region);
        metrics::emit(
            "MemberUnreachable",
            &[Metric::count("MemberUnreachable")],
            &[],
        );
        if self
            .idempotency
            .last_state(&key)
            .await
            .ok()
            .flatten()
            .as_deref()
            != Some("unreachable")
        {
            let body = json!({
                "problem": "the detective control cannot act in a member account",
                "account": place.account,
                "region": place.region,
                "role": self.members.role_arn(place),
                "error": why,
                "fix": "redeploy the member stack set instance in this account (it creates the role), or remove the account from MEMBER_OUS; then redrive the detective-control dead-letter queue",
            });
            let subject = format!(
                "Detective control cannot reach account {} ({})",
                place.account, place.region
            );
            match self.notifier.publish(&subject, &body).await {
                Ok(()) => self.idempotency.record_state(&key, "unreachable").await,
                Err(e) => tracing::warn!(error = %e, "the unreachable-member alert failed"),
            }
        }
        Error::other(format!(
            "account {} ({}): {why}",
            place.account, place.region
        ))
    }

    async fn on_call(&self, call: ApiCall, home: &str) -> Result<Value, Error> {
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
        // A create is judged from its request first: a compliant one costs no AWS call.
        if !update {
            let requested = Observed::from_request(kind, &call.request);
            if checks::failed(kind, &requested, &self.config.rules).is_empty() {
                info!(event_id = %call.event_id, arn = %resource.arn, "compliant");
                return Ok(json!({"compliant": resource.arn}));
            }
        }
        let reach = match self.reach(home, &call.place, "event").await {
            Ok(reach) => reach,
            Err(answer) => return answer,
        };
        let reach: &Reach = reach.as_deref().unwrap_or(&self.home);
        let key = format!("event#{}", call.event_id);
        // What is acted on is described before it is judged (what is never acted on — domains,
        // monitoring job definitions — is judged from its request): the read and the claim do not
        // depend on each other, so they run together (one round trip instead of two).
        let described = update || kind.spec().action != Action::None;
        let (claim, found) = if described {
            let (claim, found) = tokio::join!(
                self.idempotency.claim(&key),
                reach.sagemaker.describe(kind, &resource.name)
            );
            (claim, Some(found))
        } else {
            (self.idempotency.claim(&key).await, None)
        };
        match claim? {
            Claim::Completed => {
                info!(key, arn = %resource.arn, "duplicate: handled already");
                return Ok(json!({"duplicate": call.event_id}));
            }
            Claim::InProgress => {
                // Lambda retries the event; by then the other invocation finished, or crashed and
                // its record expired.
                return Err(Error::other(format!(
                    "event {} is being handled by another invocation: retry later",
                    call.event_id
                )));
            }
            Claim::Acquired => {}
        }
        let examined = match found {
            Some(Err(e)) => Err(e),
            Some(Ok(found)) => {
                self.examine(reach, call, kind, update, resource, Some(found))
                    .await
            }
            None => {
                self.examine(reach, call, kind, update, resource, None)
                    .await
            }
        };
        match examined {
            Ok(answer) => {
                self.idempotency.complete(&key).await;
                Ok(answer)
            }
            Err(e) => {
                self.idempotency.release(&key).await;
                Err(e)
            }
        }
    }

    /// A claimed event: the resource as it is now — an update carries only what changed, and a late or
    /// retried create event must not touch a newer resource that took the name — then act and alert.
    /// `described`: the resource as SageMaker describes it (`Some(None)`: gone), or `None` for what is
    /// judged from its request.
    async fn examine(
        &self,
        reach: &Reach,
        call: ApiCall,
        kind: Kind,
        update: bool,
        resource: Resource,
        described: Option<Option<Found>>,
    ) -> Result<Value, Error> {
        let (resource, observed, status) = if let Some(found) = described {
            let found = match found {
                Some(f) => f,
                None => {
                    info!(event_id = %call.event_id, arn = %resource.arn, "skipped: the resource no longer exists");
                    return Ok(json!({"skipped": "the resource no longer exists"}));
                }
            };
            if !update && let Some(why) = self.newer_than_event(&found, call.event_time.as_deref())
            {
                info!(event_id = %call.event_id, arn = %found.resource.arn, reason = %why, "skipped: not the resource the event created");
                return Ok(json!({"skipped": why}));
            }
            (found.resource, found.observed, found.status)
        } else {
            (resource, Observed::from_request(kind, &call.request), None)
        };
        let failed = checks::failed(kind, &observed, &self.config.rules);
        if failed.is_empty() {
            info!(event_id = %call.event_id, arn = %resource.arn, "compliant as it is now");
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
        let summary = self
            .handle_one(reach, &context, resource, failed, status)
            .await?;
        Ok(json!({"findings": [summary]}))
    }

    /// Why `found` is not the resource an event of `event_time` created: it was created later than the
    /// event (beyond `CREATION_SKEW_SECONDS` of clock difference), so the name was reused since.
    fn newer_than_event(&self, found: &Found, event_time: Option<&str>) -> Option<String> {
        let event = DateTime::from_str(event_time?, Format::DateTime).ok()?;
        let created = found.created?;
        let skew = self.config.creation_skew.as_secs() as i64;
        (created.secs() > event.secs() + skew).then(|| {
            format!(
                "a newer resource has the name: {} was created at {}, after the event ({}, skew {skew} s)",
                found.resource.arn,
                created.fmt(Format::DateTime).unwrap_or_default(),
                event_time.unwrap_or_default()
            )
        })
    }

    async fn sweep(
        &self,
        sweep: Sweep,
        deadline: Option<SystemTime>,
        home: &str,
    ) -> Result<Value, Error> {
        let Sweep {
            event_id,
            time,
            place,
            full,
            after,
            fan_out,
        } = sweep;
        let reach = match self.reach(home, &place, "sweep").await {
            Ok(reach) => reach,
            Err(answer) => return answer,
        };
        if fan_out && reach.is_none() {
            self.fan_out(&event_id, time.as_deref(), &place, full, home, deadline)
                .await?;
        }
        let reach: &Reach = reach.as_deref().unwrap_or(&self.home);
        let at = time
            .as_deref()
            .and_then(|t| DateTime::from_str(t, Format::DateTime).ok())
            .unwrap_or_else(|| DateTime::from(SystemTime::now()));
        // The daily full sweep looks at every model and endpoint config, the hourly one at the new.
        let since = (!full)
            .then(|| DateTime::from_secs(at.secs() - self.config.sweep_lookback.as_secs() as i64));
        let context = Context {
            trigger: "sweep",
            event_id: event_id.clone(),
            event_name: if full { "FullSweep" } else { "ScheduledSweep" }.into(),
            event_time: at.fmt(Format::DateTime).ok(),
            principal: None,
            source_ip: None,
            place: place.clone(),
        };
        // In a stable order (`<arn type>/<name>`), so a continuation goes on after the last one
        // handled, whatever was deleted meanwhile.
        let mut candidates: Vec<(String, Kind, String)> = reach
            .sagemaker
            .sweep_candidates(since)
            .await?
            .into_iter()
            .map(|(kind, name)| (format!("{}/{name}", kind.arn_type()), kind, name))
            .filter(|(key, _, _)| after.as_ref().is_none_or(|a| key > a))
            .collect();
        candidates.sort();
        let (mut findings, mut errors) = (Vec::new(), Vec::new());
        for (i, (_, kind, name)) in candidates.iter().enumerate() {
            // At least one candidate per invocation, so a sweep always moves on.
            let out_of_time = i > 0
                && deadline.is_some_and(|d| {
                    d.duration_since(SystemTime::now()).unwrap_or_default()
                        < self.config.sweep_reserve
                });
            if out_of_time {
                let last = &candidates[i - 1].0;
                let next =
                    trigger::continuation(&event_id, time.as_deref(), &place, full, Some(last));
                self.continuation.send(&next).await?;
                info!(
                    event_id,
                    handled = i,
                    after = %last,
                    left = candidates.len() - i,
                    "sweep continues in a new invocation"
                );
                metrics::emit(
                    "SweepContinued",
                    &[
                        Metric::count_of("Examined", i),
                        Metric::count_of("SweepFindings", findings.len()),
                    ],
                    &[("Full", if full { "true" } else { "false" })],
                );
                return Ok(json!({"examined": i, "findings": findings, "continued": last}));
            }
            let found = match reach.sagemaker.describe(*kind, name).await {
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
            // A sweep acts on every non-compliant resource it finds (a stop that failed is tried
            // again) but alerts once per state of the resource, not once per sweep.
            match self
                .sweep_one(reach, &context, found.resource, failed, found.status)
                .await
            {
                Ok(Some(summary)) => findings.push(summary),
                Ok(None) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        let examined = candidates.len();
        info!(
            event_id,
            full,
            examined,
            findings = findings.len(),
            errors = errors.len(),
            "sweep done"
        );
        metrics::emit(
            if errors.is_empty() {
                "Swept"
            } else {
                "SweptWithErrors"
            },
            &[
                Metric::count_of("Examined", examined),
                Metric::count_of("SweepFindings", findings.len()),
                Metric::count_of("SweepErrors", errors.len()),
            ],
            &[("Full", if full { "true" } else { "false" })],
        );
        if !errors.is_empty() {
            // Lambda retries the sweep; what was alerted is not alerted twice.
            return Err(Error::other(format!(
                "sweep {event_id}: {} of {examined} resources could not be handled: {}",
                errors.len(),
                errors.join("; ")
            )));
        }
        Ok(json!({"examined": examined, "findings": findings}))
    }

    /// The schedule's sweep in organization-wide mode starts the same sweep in every member account and
    /// region, each in its own invocation of this function (asynchronous, so each has the function's
    /// whole time budget and continues on its own when it needs more).
    async fn fan_out(
        &self,
        event_id: &str,
        time: Option<&str>,
        place: &Place,
        full: bool,
        home: &str,
        deadline: Option<SystemTime>,
    ) -> Result<(), Error> {
        let accounts = self.members.accounts().await?;
        let total = accounts.iter().filter(|a| *a != home).count() * self.members.regions().len();
        let mut started = 0;
        for account in accounts.iter().filter(|a| *a != home) {
            for region in self.members.regions() {
                // Beyond some thousands of account × regions one invocation cannot start them all
                // (README "The sweep"): fail loudly rather than leave members unswept.
                let out_of_time = deadline.is_some_and(|d| {
                    d.duration_since(SystemTime::now()).unwrap_or_default() < FAN_OUT_MARGIN
                });
                if out_of_time {
                    return Err(Error::other(format!(
                        "sweep {event_id}: ran out of time after starting {started} of {total} member sweeps; raise the function's Timeout or split MemberOUs across stacks"
                    )));
                }
                let member = Place {
                    partition: place.partition.clone(),
                    region: region.clone(),
                    account: account.clone(),
                };
                let next = trigger::continuation(event_id, time, &member, full, None);
                self.continuation.send(&next).await?;
                started += 1;
            }
        }
        info!(
            event_id,
            accounts = accounts.len(),
            started,
            "sweep started in the member accounts"
        );
        metrics::emit(
            "FannedOut",
            &[Metric::count_of("MemberSweeps", started)],
            &[],
        );
        Ok(())
    }

    /// Acts and alerts (the event path, once its claim is ours); records the state alerted.
    async fn handle_one(
        &self,
        reach: &Reach,
        context: &Context,
        resource: Resource,
        failed: Vec<&'static checks::Rule>,
        status: Option<String>,
    ) -> Result<Value, Error> {
        let taken = self
            .respond(reach, &resource, &failed, status.as_deref())
            .await;
        self.alert(reach, context, resource, failed, taken, status)
            .await
    }

    /// The sweep path: acts, then alerts only when the resource's state (status and outcome) differs
    /// from the one last alerted; a resource no longer running that was alerted on before is left alone.
    async fn sweep_one(
        &self,
        reach: &Reach,
        context: &Context,
        resource: Resource,
        failed: Vec<&'static checks::Rule>,
        status: Option<String>,
    ) -> Result<Option<Value>, Error> {
        let last = self.idempotency.last_state(&resource.arn).await?;
        if last.is_some() && already(resource.kind, Action::Stop, status.as_deref()).is_some() {
            return Ok(None);
        }
        let taken = self
            .respond(reach, &resource, &failed, status.as_deref())
            .await;
        if last.as_deref() == Some(state(status.as_deref(), &taken).as_str()) {
            info!(arn = %resource.arn, result = ?taken.result, "state alerted already");
            return Ok(None);
        }
        self.alert(reach, context, resource, failed, taken, status)
            .await
            .map(Some)
    }

    async fn alert(
        &self,
        reach: &Reach,
        context: &Context,
        resource: Resource,
        failed: Vec<&'static checks::Rule>,
        taken: Taken,
        status: Option<String>,
    ) -> Result<Value, Error> {
        let report = Report {
            context,
            resource,
            failed,
            taken,
            mode: self.config.mode,
        };
        self.notifier.send(&report, reach.hub.as_ref()).await?;
        self.idempotency
            .record_state(
                &report.resource.arn,
                &state(status.as_deref(), &report.taken),
            )
            .await;
        let summary = json!({
            "arn": report.resource.arn,
            "checks": report.checks(),
            "action": report.taken.action,
            "result": report.taken.result,
            "detail": report.taken.detail,
        });
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let checks = report.checks().join(",");
        metrics::emit(
            &format!("{}-{}", text(&summary["action"]), text(&summary["result"])),
            &[Metric::count("Findings")],
            &[("Checks", checks.as_str()), ("Trigger", context.trigger)],
        );
        info!(
            event_id = %context.event_id,
            arn = %report.resource.arn,
            checks = ?report.checks(),
            action = ?report.taken.action,
            result = ?report.taken.result,
            detail = %report.taken.detail,
            "non-compliant resource handled"
        );
        Ok(summary)
    }

    async fn respond(
        &self,
        reach: &Reach,
        resource: &Resource,
        failed: &[&'static checks::Rule],
        status: Option<&str>,
    ) -> Taken {
        let (action, reason) = respond::plan(resource.kind, self.config.mode);
        if let Some(reason) = reason {
            return Taken::not_taken(reason);
        }
        if failed.iter().all(|r| r.alert_only) {
            return Taken::not_taken(
                "only alert-only checks failed (availability, not security): nothing is stopped or deleted for them",
            );
        }
        if let Some(taken) = already(resource.kind, action, status) {
            return taken;
        }
        if action == Action::Delete {
            // A model or endpoint config an endpoint uses is never deleted (SageMaker would leave the
            // endpoint serving on it); if that cannot be checked, nothing is deleted either.
            match reach.sagemaker.users(resource.kind, &resource.name).await {
                Ok(users) if !users.is_empty() => {
                    return Taken::not_taken(&format!(
                        "in use by endpoint {}: deleting it would leave the endpoint serving on what is gone; update the endpoint to a compliant {}, then delete this one",
                        users.join(", "),
                        resource.kind.label()
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    return Taken {
                        action,
                        result: respond::Effect::Failed,
                        detail: format!(
                            "not deleted: could not check which endpoints use it ({e})"
                        ),
                    };
                }
            }
        }
        reach.sagemaker.act(action, resource).await
    }
}

/// The state an alert reports: the outcome of the action (`failed`, `done`, `deferred`, …). A sweep
/// alerts again only when it changes.
fn state(_status: Option<&str>, taken: &Taken) -> String {
    serde_json::to_value(taken.result)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// When the current status is known (described), a stop that cannot apply is not attempted.
fn already(kind: Kind, action: Action, status: Option<&str>) -> Option<Taken> {
    let status = status?;
    let running = kind.spec().running;
    if running.is_empty() || running.contains(&status) {
        return None;
    }
    Some(Taken {
        action,
        result: respond::Effect::AlreadyInactive,
        detail: format!("not running (status {status})"),
    })
}

/// Error paths the emulator cannot produce, with aws-smithy-mocks.
#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_sagemaker::operation::describe_training_job::DescribeTrainingJobOutput;
    use aws_sdk_sagemaker::operation::stop_training_job::{
        StopTrainingJobError, StopTrainingJobOutput,
    };
    use aws_sdk_sagemaker::types::TrainingJobStatus;
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;
    use crate::config::Config;
    use crate::sagemaker::SageMaker;

    fn event() -> Value {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../events/detective-control/training-job-noncompliant.json"),
        )
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// `DescribeTrainingJob` of the fixture's job: running, created when the event says.
    fn running() -> Rule {
        mock!(aws_sdk_sagemaker::Client::describe_training_job).then_output(|| {
            DescribeTrainingJobOutput::builder()
                .training_job_name("churn-train-1")
                .training_job_arn(
                    "arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-train-1",
                )
                .training_job_status(TrainingJobStatus::InProgress)
                .creation_time(
                    DateTime::from_str("2026-11-23T10:01:00Z", Format::DateTime).unwrap(),
                )
                .build()
        })
    }

    fn handler(sm: &[&Rule], sns: &[&Rule], ddb: &[&Rule]) -> Handler {
        let config = Config::from_lookup(|k| {
            (k == "ALERT_TOPIC_ARN").then(|| "arn:aws:sns:us-east-1:123456789012:alerts".into())
        })
        .unwrap();
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        Handler {
            continuation: Continuation::new(
                aws_sdk_lambda::Client::from_conf(
                    aws_sdk_lambda::Config::builder()
                        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
                        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
                        .build(),
                ),
                None,
            ),
            home: Reach {
                sagemaker: SageMaker::new(mock_client!(aws_sdk_sagemaker, RuleMode::MatchAny, sm)),
                hub: None,
            },
            members: Members::new(&sdk, None, false),
            notifier: Notifier::new(
                mock_client!(aws_sdk_sns, RuleMode::MatchAny, sns),
                config.topic_arn.clone(),
            ),
            idempotency: Idempotency::new(
                mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, ddb),
                Some("idempotency".into()),
                config.idempotency_ttl,
                config.in_progress,
            ),
            config,
        }
    }

    #[tokio::test]
    async fn a_failed_alert_releases_the_claim_so_the_retry_alerts() {
        let claim = mock!(aws_sdk_dynamodb::Client::put_item)
            .then_output(|| PutItemOutput::builder().build());
        let release = mock!(aws_sdk_dynamodb::Client::delete_item)
            .then_output(|| DeleteItemOutput::builder().build());
        let stop = mock!(aws_sdk_sagemaker::Client::stop_training_job)
            .then_output(|| StopTrainingJobOutput::builder().build());
        let publish = mock!(aws_sdk_sns::Client::publish).then_error(|| {
            PublishError::generic(
                ErrorMetadata::builder()
                    .code("KMSAccessDenied")
                    .message("key policy")
                    .build(),
            )
        });
        let described = running();
        let h = handler(&[&stop, &described], &[&publish], &[&claim, &release]);
        let err = h.handle_now(event()).await.unwrap_err().to_string();
        assert!(err.starts_with("Publish failed: KMSAccessDenied"), "{err}");
        assert_eq!(release.num_calls(), 1);
        assert_eq!(stop.num_calls(), 1);
    }

    #[tokio::test]
    async fn access_denied_on_stop_is_reported_in_the_alert() {
        let claim = mock!(aws_sdk_dynamodb::Client::put_item)
            .then_output(|| PutItemOutput::builder().build());
        let stop = mock!(aws_sdk_sagemaker::Client::stop_training_job).then_error(|| {
            StopTrainingJobError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform: sagemaker:StopTrainingJob")
                    .build(),
            )
        });
        let publish = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                r.message()
                    .is_some_and(|m| m.contains("AccessDeniedException"))
                    && r.subject().is_some_and(|s| s.contains("STOP FAILED"))
            })
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let complete = mock!(aws_sdk_dynamodb::Client::update_item)
            .then_output(|| UpdateItemOutput::builder().build());
        let described = running();
        let h = handler(&[&stop, &described], &[&publish], &[&claim, &complete]);
        let out = h.handle_now(event()).await.unwrap();
        assert_eq!(out["findings"][0]["result"], "failed");
        assert_eq!(complete.num_calls(), 1, "the event is marked handled");
        assert_eq!(publish.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_claimed_event_stops_nothing_and_alerts_no_one() {
        let claimed = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let stop = mock!(aws_sdk_sagemaker::Client::stop_training_job)
            .then_output(|| StopTrainingJobOutput::builder().build());
        let publish =
            mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().build());
        let described = running();
        let h = handler(&[&stop, &described], &[&publish], &[&claimed]);
        let out = h.handle_now(event()).await.unwrap();
        assert!(out["duplicate"].is_string(), "{out}");
        assert_eq!(stop.num_calls(), 0);
        assert_eq!(publish.num_calls(), 0);
    }

    /// Another invocation holds the event (its record is in progress and not expired): this one acts
    /// on nothing and fails, so Lambda retries it later.
    #[tokio::test]
    async fn an_event_in_progress_elsewhere_is_retried_later() {
        let busy = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .item("status", AttributeValue::S("IN_PROGRESS".into()))
                    .build(),
            )
        });
        let stop = mock!(aws_sdk_sagemaker::Client::stop_training_job)
            .then_output(|| StopTrainingJobOutput::builder().build());
        let publish =
            mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().build());
        let described = running();
        let h = handler(&[&stop, &described], &[&publish], &[&busy]);
        let e = h.handle_now(event()).await.unwrap_err().to_string();
        assert!(e.contains("being handled by another invocation"), "{e}");
        assert_eq!((stop.num_calls(), publish.num_calls()), (0, 0));
    }
}
