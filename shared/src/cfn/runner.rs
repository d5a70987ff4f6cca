//! The part of the framework that runs one invocation: decode, call the provider under a deadline with
//! panics caught, poll or hand over, respond exactly once.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use futures_util::FutureExt;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::Instrument;

use super::origin::Verifier;
use super::request::{CONTINUATION_KEY, Continuation, Request, RequestType};
use super::response::{Reply, Responder, render};
use super::seal::{Refusal, Seal, Sealed};
use super::{Ctx, Outcome, Provider, props};
use crate::Error;
use crate::metrics::{self, Metric};

/// The reason given when a provider call runs into the invocation's deadline.
const OVERRUN: &str = "the operation did not finish before the Lambda function's timeout; it was \
                       stopped so that CloudFormation gets an answer (raise the function timeout or retry)";

/// Why a provider call failed, and what a failed Create had already made (its physical id).
struct Failure {
    reason: String,
    made: Option<String>,
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure { reason, made: None }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure {
            made: err.made().map(str::to_owned),
            reason: err.to_string(),
        }
    }
}

/// Default overall limit of one request (CloudFormation's own default for custom resources).
const DEFAULT_SERVICE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Runs the provider `new` builds (once per cold start, from the SDK configuration) as a Lambda
/// function until the runtime stops: the whole of a custom-resource function's `main`. Constructors
/// should not fail on settings (a failed cold start leaves CloudFormation waiting): report a bad
/// setting in the answer to each request instead.
pub async fn serve<P: Provider>(
    new: impl FnOnce(&aws_config::SdkConfig) -> Result<P, Error>,
) -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let sdk = crate::aws::config().await;
    let provider = new(&sdk)
        .inspect_err(|e| tracing::error!(error = %e, "the provider could not be built"))?;
    let runner = Arc::new(Runner::new(provider, &sdk));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let runner = Arc::clone(&runner);
        let invocation = crate::event::Invocation::of(&event);
        async move { runner.handle_invocation(event.payload, &invocation).await }
    }))
    .await
}

/// Handles invocations for one provider. Public so that tests can drive it without the runtime.
pub struct Runner<P> {
    provider: P,
    responder: Responder,
    lambda: aws_sdk_lambda::Client,
    verifier: Verifier,
    seal: Seal,
}

/// The time an invocation keeps for itself to respond or hand over, out of what it has left.
fn reserve(left: Duration) -> Duration {
    (left / 4).clamp(Duration::from_millis(500), Duration::from_secs(10))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// A refusal of `what` (a request, a continuation): one log line with the request's context and
/// `why` (never the ResponseURL), and the Lambda error `<what> refused: <reason>`.
fn refused(request: &Request, what: &str, why: &str, reason: String) -> Error {
    tracing::error!(
        request_id = %request.request_id,
        logical_resource_id = %request.logical_resource_id,
        request_type = %request.request_type,
        %reason,
        "{what} refused: {why}"
    );
    Error::invalid(format!("{what} refused: {reason}"))
}

enum Decoded {
    Fresh(Box<Request>),
    /// A continuation as sent (its seal not yet verified).
    Continued(Box<Continuation>, Sealed),
    /// Not valid, but with enough to answer CloudFormation FAILED.
    Malformed(String, Box<Request>),
    /// Nothing to answer: the reason goes to Lambda (retry / dead-letter queue) and the logs.
    Unusable(String),
}

/// Whether an event is for the custom-resource framework: a CloudFormation request (it has a
/// `RequestType`) or one of the framework's continuations. Only a routing hint: [`Runner::handle`]
/// still verifies the request.
pub fn is_custom_resource(payload: &Value) -> bool {
    payload.get("RequestType").is_some() || payload.get(CONTINUATION_KEY).is_some()
}

fn decode(payload: Value) -> Decoded {
    if let Some(cont) = payload.get(CONTINUATION_KEY) {
        let sealed = match serde_json::from_value::<Sealed>(cont.clone()) {
            Ok(sealed) => sealed,
            Err(e) => {
                return Decoded::Unusable(format!(
                    "malformed continuation: {e} (a continuation is sealed by the function itself: \
                     {{\"Body\": <text>, \"Mac\": <hex>}})"
                ));
            }
        };
        return match serde_json::from_str::<Continuation>(&sealed.body) {
            Ok(c) => Decoded::Continued(Box::new(c), sealed),
            Err(e) => Decoded::Unusable(format!("malformed continuation: Body: {e}")),
        };
    }
    match serde_path_to_error::deserialize::<_, Request>(payload.clone()) {
        Ok(request) => Decoded::Fresh(Box::new(request)),
        Err(err) => {
            let path = err.path().to_string();
            let detail = if path == "." {
                err.inner().to_string()
            } else {
                format!("{path}: {}", err.inner())
            };
            match salvage(&payload) {
                Some(request) => Decoded::Malformed(
                    format!("malformed CloudFormation request: {detail}"),
                    Box::new(request),
                ),
                None => Decoded::Unusable(format!(
                    "the event is neither a CloudFormation custom-resource request nor a \
                     continuation ({detail})"
                )),
            }
        }
    }
}

/// Recovers enough of a malformed request to answer it FAILED rather than leave the stack waiting.
fn salvage(payload: &Value) -> Option<Request> {
    let field = |k: &str| payload.get(k)?.as_str().map(str::to_owned);
    Some(Request {
        request_type: match field("RequestType")?.as_str() {
            "Update" => RequestType::Update,
            "Delete" => RequestType::Delete,
            _ => RequestType::Create,
        },
        response_url: field("ResponseURL")?,
        stack_id: field("StackId")?,
        request_id: field("RequestId")?,
        logical_resource_id: field("LogicalResourceId")?,
        resource_type: field("ResourceType").unwrap_or_default(),
        physical_resource_id: field("PhysicalResourceId"),
        resource_properties: Default::default(),
        old_resource_properties: None,
        service_token: None,
    })
}

impl<P: Provider> Runner<P> {
    /// The runner of `provider`, with its clients built from `sdk` (once per cold start).
    pub fn new(provider: P, sdk: &aws_config::SdkConfig) -> Self {
        Runner {
            provider,
            responder: Responder::new(),
            lambda: crate::client!(aws_sdk_lambda, sdk),
            verifier: Verifier::from_env(),
            seal: Seal::from_env(sdk),
        }
    }

    /// Refuses a request that is not CloudFormation's for a stack of this function's account and
    /// region (see [`super::origin`]): a Lambda error and a log line with the reason, no provider call,
    /// no PUT.
    fn authenticate(&self, request: &Request, function: &str) -> Result<(), Error> {
        self.verifier
            .verify(function, &request.stack_id, &request.response_url)
            .map_err(|reason| {
                refused(
                    request,
                    "request",
                    "not a CloudFormation request of this function's account and region",
                    reason,
                )
            })
    }

    /// Accepts a continuation only when its seal verifies (see [`super::seal`]); a Lambda error and a
    /// log line otherwise, with no provider call and no PUT.
    async fn unseal(&self, request: &Request, sealed: &Sealed) -> Result<(), Error> {
        match self.seal.verify(sealed).await {
            Ok(()) => Ok(()),
            Err(Refusal::Forged(reason)) => Err(refused(
                request,
                "continuation",
                "not sealed by this function",
                reason,
            )),
            Err(Refusal::Unverified(err)) => {
                tracing::error!(
                    request_id = %request.request_id,
                    error = %err,
                    "continuation not verified (Lambda retries it)"
                );
                Err(err)
            }
        }
    }

    /// [`Runner::handle`] for a Lambda invocation: for a function that serves custom resources besides
    /// other events (route the payloads [`is_custom_resource`] says are ours here).
    pub async fn handle_invocation(
        &self,
        payload: Value,
        invocation: &crate::event::Invocation,
    ) -> Result<Value, Error> {
        self.handle(
            payload,
            invocation.deadline_instant(),
            &invocation.function_arn,
        )
        .await
    }

    /// Handles one invocation: a CloudFormation request or one of our own continuations. Returns an
    /// error (so Lambda retries / dead-letters the event) only when no response could be delivered.
    pub async fn handle(
        &self,
        payload: Value,
        deadline: Instant,
        function: &str,
    ) -> Result<Value, Error> {
        let (request, state, attempt, started_at_ms) = match decode(payload) {
            Decoded::Fresh(request) => (*request, None, 1, now_ms()),
            Decoded::Continued(c, sealed) => {
                // The request it carries is checked first (no KMS call for a foreign one), then the
                // seal: the state is acted on only when this function made it.
                self.authenticate(&c.request, function)?;
                self.unseal(&c.request, &sealed).await?;
                (
                    c.request,
                    Some((c.state, Duration::from_millis(c.poll_after_ms))),
                    c.attempt,
                    c.started_at_ms,
                )
            }
            Decoded::Malformed(reason, request) => {
                self.authenticate(&request, function)?;
                tracing::error!(request_id = %request.request_id, %reason, "malformed request");
                return self
                    .respond(&request, Reply::failed(reason), deadline)
                    .await;
            }
            Decoded::Unusable(reason) => {
                tracing::error!(%reason, "unusable event");
                return Err(Error::invalid(reason));
            }
        };
        self.authenticate(&request, function)?;
        let span = tracing::info_span!(
            "custom_resource",
            request_id = %request.request_id,
            logical_resource_id = %request.logical_resource_id,
            request_type = %request.request_type,
            resource_type = %request.resource_type,
            attempt,
        );
        async {
            let reply = self
                .process(&request, state, attempt, started_at_ms, deadline, function)
                .await;
            match reply {
                Some(reply) => self.respond(&request, reply, deadline).await,
                None => Ok(json!({"Status": "IN_PROGRESS", "Attempt": attempt})),
            }
        }
        .instrument(span)
        .await
    }

    /// Runs the provider. `None` means the request was handed over to a continuation.
    async fn process(
        &self,
        request: &Request,
        state: Option<(Value, Duration)>,
        attempt: u32,
        started_at_ms: u64,
        deadline: Instant,
        function: &str,
    ) -> Option<Reply> {
        if request.is_delete_after_failed_create() {
            tracing::info!("Delete of a resource whose Create failed: nothing to do");
            return Some(Reply::Success {
                physical_id: request.failure_physical_id(),
                data: Default::default(),
                no_echo: false,
            });
        }
        let budget_end = deadline - reserve(deadline.saturating_duration_since(Instant::now()));
        let service_timeout = request
            .service_timeout_secs()
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_SERVICE_TIMEOUT);
        let margin = (service_timeout / 10).min(Duration::from_secs(60));
        let overall_end_ms = started_at_ms + (service_timeout - margin).as_millis() as u64;
        let overall_end =
            Instant::now() + Duration::from_millis(overall_end_ms.saturating_sub(now_ms()));

        let ctx = Ctx { request, attempt };
        // What the operation's state stands for, should a Create fail after it made something.
        let mut made: Option<String> = None;
        // A continuation polls at least once, whatever its wait: were a wait longer than one
        // invocation's budget (a short function timeout) handed over again, no poll would ever run.
        let mut resumed = state.is_some();
        let mut outcome = match state {
            // A continuation resumes where the previous invocation stopped: waiting to poll.
            Some((state, poll_after)) => match serde_json::from_value(state) {
                Ok(state) => Ok(Outcome::InProgress { state, poll_after }),
                Err(e) => Err(Failure::from(format!(
                    "internal error: unreadable continuation state: {e}"
                ))),
            },
            None => self.start(&ctx, budget_end).await,
        };
        loop {
            match outcome {
                Err(Failure {
                    reason,
                    made: partial,
                }) => {
                    let physical_id = partial
                        .or(made)
                        .filter(|_| request.request_type == RequestType::Create);
                    return Some(Reply::Failed {
                        reason,
                        physical_id,
                    });
                }
                Ok(Outcome::Done(done)) => {
                    // A Delete always answers with the id it was given (CloudFormation matches on it).
                    let physical_id = match (&request.request_type, &request.physical_resource_id) {
                        (RequestType::Delete, Some(id)) => id.clone(),
                        _ => done.physical_id,
                    };
                    return Some(Reply::Success {
                        physical_id,
                        data: done.data,
                        no_echo: done.no_echo,
                    });
                }
                Ok(Outcome::InProgress { state, poll_after }) => {
                    made = P::physical_id(&state).or(made);
                    let next = Instant::now() + poll_after;
                    if next >= overall_end {
                        let physical_id =
                            made.filter(|_| request.request_type == RequestType::Create);
                        return Some(Reply::Failed {
                            physical_id,
                            reason: format!(
                                "the {} did not finish within {} s (ServiceTimeout {} s minus a {} s margin); \
                             it was still in progress after {} invocation(s). Check the resource in the \
                             console, then retry, or raise ServiceTimeout (at most 3600)",
                                request.request_type,
                                (service_timeout - margin).as_secs(),
                                service_timeout.as_secs(),
                                margin.as_secs(),
                                attempt
                            ),
                        });
                    }
                    let saved = serde_json::to_value(&state);
                    let first_wait_here = std::mem::take(&mut resumed);
                    if next >= budget_end && !first_wait_here {
                        return self
                            .hand_over(request, saved, poll_after, attempt, started_at_ms, function)
                            .await;
                    }
                    // A continuation's first wait leaves at least half its budget to the poll.
                    let until = if first_wait_here {
                        next.min(
                            Instant::now()
                                + budget_end.saturating_duration_since(Instant::now()) / 2,
                        )
                    } else {
                        next
                    };
                    tokio::time::sleep_until(until).await;
                    outcome = self
                        .guarded(budget_end, self.provider.poll(&ctx, state))
                        .await;
                    // A poll cut off by the deadline (a slow or throttled call) is repeated by a
                    // continuation from the state before it, instead of failing the resource.
                    if matches!(&outcome, Err(f) if f.reason == OVERRUN) {
                        tracing::warn!(
                            "a poll ran into the deadline; continuing in a new invocation"
                        );
                        return self
                            .hand_over(
                                request,
                                saved,
                                Duration::ZERO,
                                attempt,
                                started_at_ms,
                                function,
                            )
                            .await;
                    }
                }
            }
        }
    }

    async fn start(
        &self,
        ctx: &Ctx<'_>,
        budget_end: Instant,
    ) -> Result<Outcome<P::State>, Failure> {
        let request = ctx.request;
        let physical_id = request.physical_resource_id.as_deref().unwrap_or_default();
        let parsed = props::parse::<P::Properties>(&request.resource_properties);
        // Create and Update: the properties' own cross-field rules, before any provider call.
        let valid = || props::parse_valid::<P::Properties>(&request.resource_properties);
        match request.request_type {
            RequestType::Create => {
                let props = valid()?;
                self.guarded(budget_end, self.provider.create(ctx, props))
                    .await
            }
            RequestType::Update => {
                let props = valid()?;
                let old = request.old_resource_properties.as_ref().and_then(|old| {
                    props::parse(old)
                        .inspect_err(|e| tracing::warn!(error = %e, "previous properties do not parse; updating without them"))
                        .ok()
                });
                self.guarded(
                    budget_end,
                    self.provider.update(ctx, physical_id, props, old),
                )
                .await
            }
            // A Delete never fails only because its properties no longer parse.
            RequestType::Delete => {
                let props = parsed
                    .inspect_err(|e| {
                        tracing::warn!(error = %e, "properties do not parse; deleting with what can be read")
                    })
                    .ok();
                self.guarded(budget_end, self.provider.delete(ctx, physical_id, props))
                    .await
            }
        }
    }

    /// Runs a provider future until `budget_end`, turning errors, panics and overruns into reasons.
    async fn guarded(
        &self,
        budget_end: Instant,
        fut: impl Future<Output = Result<Outcome<P::State>, Error>>,
    ) -> Result<Outcome<P::State>, Failure> {
        match tokio::time::timeout_at(budget_end, AssertUnwindSafe(fut).catch_unwind()).await {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(err))) => Err(err.into()),
            Ok(Err(panic)) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(panic = %msg, "provider panicked");
                Err(format!("internal error: the provider panicked: {msg}").into())
            }
            Err(_) => Err(OVERRUN.to_owned().into()),
        }
    }

    /// Re-invokes this function asynchronously with the provider's state. `None` on success (the
    /// continuation will respond); a FAILED reply if the hand-over itself failed.
    async fn hand_over(
        &self,
        request: &Request,
        state: Result<Value, serde_json::Error>,
        poll_after: Duration,
        attempt: u32,
        started_at_ms: u64,
        function: &str,
    ) -> Option<Reply> {
        let state = match state {
            Ok(state) => state,
            Err(e) => {
                return Some(Reply::failed(format!(
                    "internal error: state not serializable: {e}"
                )));
            }
        };
        let function = if function.is_empty() {
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default()
        } else {
            function.to_owned()
        };
        let continuation = Continuation {
            request: request.clone(),
            state,
            attempt: attempt + 1,
            started_at_ms,
            poll_after_ms: poll_after.as_millis() as u64,
        };
        let sealed = match self.seal.seal(&continuation).await {
            Ok(sealed) => sealed,
            Err(reason) => {
                tracing::error!(%reason, "could not seal the continuation");
                return Some(Reply::failed(format!(
                    "the operation is still in progress but could not be continued: {reason}"
                )));
            }
        };
        let payload = match serde_json::to_vec(&json!({ CONTINUATION_KEY: sealed })) {
            Ok(payload) => payload,
            Err(e) => return Some(Reply::failed(format!("internal error: {e}"))),
        };
        let result = self
            .lambda
            .invoke()
            .function_name(&function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::info!(
                    next_attempt = attempt + 1,
                    "still in progress; handed over to a continuation"
                );
                None
            }
            Err(err) => {
                let err = Error::aws("lambda:Invoke (continuation)", err);
                tracing::error!(error = %err, "could not hand over");
                Some(Reply::failed(format!(
                    "the operation is still in progress but could not be continued: {err}; \
                     the function needs lambda:InvokeFunction on itself"
                )))
            }
        }
    }

    async fn respond(
        &self,
        request: &Request,
        reply: Reply,
        deadline: Instant,
    ) -> Result<Value, Error> {
        let (reply, body) = render(request, reply);
        let (status, reason, physical_id) = match &reply {
            Reply::Success { physical_id, .. } => ("SUCCESS", None, physical_id.as_str()),
            Reply::Failed {
                reason,
                physical_id,
            } => (
                "FAILED",
                Some(reason.as_str()),
                physical_id.as_deref().unwrap_or_default(),
            ),
        };
        let send_by = deadline - Duration::from_millis(50);
        match self
            .responder
            .send(&request.response_url, body, send_by)
            .await
        {
            Ok(attempts) => {
                tracing::info!(
                    status,
                    physical_resource_id = physical_id,
                    reason,
                    put_attempts = attempts,
                    "responded to CloudFormation"
                );
                metrics::emit(
                    status,
                    &[
                        Metric::count("Responses"),
                        Metric::count_of("PutAttempts", attempts as usize),
                    ],
                    &[
                        ("ResourceType", request.resource_type.as_str()),
                        ("RequestType", request.request_type.as_str()),
                    ],
                );
                Ok(json!({"Status": status, "PhysicalResourceId": physical_id}))
            }
            Err(err) => {
                tracing::error!(status, error = %err, "response not delivered");
                metrics::emit(
                    "NotDelivered",
                    &[Metric::count("Responses")],
                    &[("ResourceType", request.resource_type.as_str())],
                );
                Err(err)
            }
        }
    }
}
