//! Event-driven functions (EventBridge rules and schedules, CodePipeline jobs, their own
//! continuations): the framework's second entry, next to [`crate::cfn`] for custom resources.
//!
//! A function implements [`Handler`]: `new` builds it once per cold start — its configuration from the
//! environment, its SDK clients from the one SDK configuration — and `handle` answers one event.
//! [`serve`] does everything else, the same way for every function: JSON logging, the SDK
//! configuration (endpoint overrides included), an invalid configuration stopping the cold start with
//! one log line naming the setting, the runtime loop, an `Events` metric per event (`Outcome`
//! `Handled` or `Failed`, with its `Duration`), and errors mapped one way (a Lambda error with
//! the message: retried by Lambda, then kept by the on-failure destination).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::Error;

/// What the runtime says of one invocation, besides the event.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// When Lambda stops the invocation.
    pub deadline: SystemTime,
    /// The ARN the function was invoked by (its account and region).
    pub function_arn: String,
}

impl Invocation {
    /// From the runtime's context of one invocation.
    pub fn of<T>(event: &LambdaEvent<T>) -> Self {
        let deadline = match event.context.deadline {
            // Not under Lambda (no deadline given): behave as a 60-second invocation.
            0 => SystemTime::now() + Duration::from_secs(60),
            ms => UNIX_EPOCH + Duration::from_millis(ms),
        };
        Invocation {
            deadline,
            function_arn: event.context.invoked_function_arn.clone(),
        }
    }

    /// The deadline on tokio's clock.
    pub fn deadline_instant(&self) -> tokio::time::Instant {
        let left = self
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::time::Instant::now() + left
    }
}

/// One event-driven function.
pub trait Handler: Send + Sync + Sized + 'static {
    /// Built once per cold start from the environment and the SDK configuration. An error names the
    /// setting to fix.
    fn new(sdk: &aws_config::SdkConfig) -> Result<Self, Error>;

    /// Answers one event. An error fails the invocation (Lambda retries it, then dead-letters it).
    fn handle(
        &self,
        event: Value,
        invocation: &Invocation,
    ) -> impl Future<Output = Result<Value, Error>> + Send;
}

/// Runs the function built by `H::new` until the runtime stops. The whole of a `main`.
pub async fn serve<H: Handler>() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let sdk = crate::aws::config().await;
    let handler = Arc::new(
        H::new(&sdk).inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        let invocation = Invocation::of(&event);
        async move {
            let started = std::time::Instant::now();
            let result = handler.handle(event.payload, &invocation).await;
            let outcome = if result.is_ok() { "Handled" } else { "Failed" };
            crate::metrics::emit(
                outcome,
                &[
                    crate::metrics::Metric::count("Events"),
                    crate::metrics::Metric::millis("Duration", started.elapsed()),
                ],
                &[],
            );
            result
        }
    }))
    .await
}
