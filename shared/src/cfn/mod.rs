//! CloudFormation custom resources, done right once.
//!
//! A provider implements [`Provider`]: `create` / `update` / `delete` on typed properties (and `poll`
//! for long operations). [`serve`] owns the CloudFormation contract:
//!
//! 0. **Authentic requests only** (see [`origin`]): a request whose `StackId` is not a stack of this
//!    function's own account and region, or whose `ResponseURL` is not CloudFormation's response bucket
//!    of that region, is refused before any provider call and answered with nothing but a Lambda
//!    error. Continuations carry the original request and pass the same check, and are **sealed**
//!    (see [`seal`]): one whose HMAC (a KMS key only the function may use) does not verify is refused
//!    the same way, so nobody else can hand the function a state to act on.
//! 1. **Exactly one response per request.** Provider errors and panics become FAILED with a readable
//!    `Reason`; a provider call that would run into the Lambda deadline is cut off in time to respond.
//! 2. **Typed, validated properties** (see [`props`]); `ServiceToken` and `ServiceTimeout` are always
//!    accepted. The framework parses them and calls their [`props::Validate`] rules: a Create or Update
//!    that fails either is answered FAILED before any provider call, naming the property.
//! 3. **Response size and shape**: the body never exceeds 4,096 bytes (oversize `Data` → FAILED saying
//!    so), `Reason` is capped, `NoEcho` is supported, the PUT is retried with jittered backoff.
//! 4. **Physical ids.** A failed Create is answered with a marker id derived from the RequestId; the
//!    Delete CloudFormation sends afterwards is answered SUCCESS without calling the provider — unless
//!    the Create made something before it failed: a long operation's state ([`Provider::physical_id`])
//!    or an [`Error::partial`] names it, the FAILED answer carries that id, and the Delete cleans it. An Update
//!    that returns a *different* physical id is a **replacement**: CloudFormation then sends a Delete for
//!    the old id during cleanup, so the provider must create the new resource before returning.
//! 5. **Long operations.** A provider returns [`Outcome::InProgress`] with its state; the framework calls
//!    [`Provider::poll`] while the invocation has time, then re-invokes its own function asynchronously
//!    with a sealed [`Continuation`] (Lambda `Invoke`, `InvocationType=Event`). The final invocation
//!    responds.
//!    The whole operation is bounded by the resource's `ServiceTimeout` (default 3600 s) minus a margin.
//! 6. **Idempotency** is the provider's job, and the rule is simple: Lambda retries asynchronous
//!    invocations and CloudFormation may resend a request, so `create` must first look for the resource
//!    it would make (by name and/or a tag carrying the stack id and logical id) and adopt it; `delete` of
//!    something already gone is SUCCESS; `poll` must tolerate being called twice with the same state.
//! 7. **No secrets in logs**: the `ResponseURL` and the properties are never logged; logs carry the
//!    RequestId, LogicalResourceId, request type and outcome.

pub mod origin;
pub mod props;
pub mod request;
pub mod response;
mod runner;
pub mod seal;

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use request::{Continuation, Request, RequestType};
pub use runner::{Runner, is_custom_resource, serve};

/// The wait before the next poll of a long operation: `SECURE_MLOPS_POLL_BASE_MS` (default 2000 ms)
/// growing by half with each poll, at most 20 s. Tests set a small base.
pub fn poll_interval(polls: u32) -> Duration {
    let base = std::env::var("SECURE_MLOPS_POLL_BASE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(2000);
    let ms = base as f64 * 1.5f64.powi(polls.min(20) as i32);
    Duration::from_millis(ms.min(20_000.0) as u64)
}

/// What [`serve`] returns when the Lambda runtime itself fails.
pub type RuntimeError = lambda_runtime::Error;

use crate::Error;

/// What a provider's call returns.
#[derive(Debug)]
pub enum Outcome<S> {
    /// Finished: respond SUCCESS.
    Done(Done),
    /// Not finished yet: call [`Provider::poll`] with `state` after `poll_after`.
    InProgress { state: S, poll_after: Duration },
}

/// A successful result: the physical id and the `Data` attributes for `!GetAtt`.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub physical_id: String,
    pub data: Map<String, Value>,
    /// Mask `Data` in `!GetAtt` output and events (CloudFormation `NoEcho`).
    pub no_echo: bool,
}

impl Done {
    pub fn new(physical_id: impl Into<String>) -> Self {
        Done {
            physical_id: physical_id.into(),
            data: Map::new(),
            no_echo: false,
        }
    }

    /// Adds a `Data` attribute.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }

    pub fn no_echo(mut self) -> Self {
        self.no_echo = true;
        self
    }
}

impl<S> From<Done> for Outcome<S> {
    fn from(done: Done) -> Self {
        Outcome::Done(done)
    }
}

/// What the provider sees of the request.
pub struct Ctx<'a> {
    pub request: &'a Request,
    /// 1 for the first invocation, +1 for each continuation.
    pub attempt: u32,
}

pub type ProviderResult<S> = Result<Outcome<S>, Error>;

/// A custom resource. See the module docs for the contract the framework keeps around it.
pub trait Provider: Send + Sync + 'static {
    /// The resource's properties; parse with `#[serde(rename_all = "PascalCase", deny_unknown_fields)]`;
    /// rules across fields go in their [`props::Validate`] implementation, which the framework calls.
    type Properties: DeserializeOwned + props::Validate + Send + Sync;
    /// State carried between polls and across continuations. `()` for providers that finish at once.
    type State: Serialize + DeserializeOwned + Send;

    fn create(
        &self,
        ctx: &Ctx<'_>,
        props: Self::Properties,
    ) -> impl Future<Output = ProviderResult<Self::State>> + Send;

    /// `old` is `None` when the previous properties are absent or no longer parse.
    /// Returning a physical id different from `physical_id` replaces the resource.
    fn update(
        &self,
        ctx: &Ctx<'_>,
        physical_id: &str,
        props: Self::Properties,
        old: Option<Self::Properties>,
    ) -> impl Future<Output = ProviderResult<Self::State>> + Send;

    /// `props` is `None` when the properties no longer parse (a later version tightened validation):
    /// the provider still deletes what `physical_id` names, reading single properties with
    /// [`props::field`] where it needs them, and never ends DELETE_FAILED just for that.
    fn delete(
        &self,
        ctx: &Ctx<'_>,
        physical_id: &str,
        props: Option<Self::Properties>,
    ) -> impl Future<Output = ProviderResult<Self::State>> + Send;

    /// The physical id a long operation's state already stands for (e.g. the resource it created).
    /// When a Create then fails, the FAILED response carries it instead of the failed-Create marker,
    /// so that CloudFormation's Delete cleans the resource up.
    fn physical_id(state: &Self::State) -> Option<String> {
        let _ = state;
        None
    }

    /// Continues a long operation. Only called after the provider returned [`Outcome::InProgress`].
    fn poll(
        &self,
        ctx: &Ctx<'_>,
        state: Self::State,
    ) -> impl Future<Output = ProviderResult<Self::State>> + Send {
        let _ = (ctx, state);
        async {
            Err(Error::other(
                "internal error: the provider returned InProgress but does not implement poll",
            ))
        }
    }
}
