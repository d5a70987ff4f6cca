//! `cfn-probe` — a custom resource whose behaviour is chosen by its properties, to prove the framework's
//! guarantees through the real runtime: errors, panics, overruns, oversize Data, long operations.
//! Test infrastructure only; never deployed.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::Error;
use shared::cfn::props::de;
use shared::cfn::{Ctx, Done, Outcome, Provider, ProviderResult};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Properties {
    /// ok | fail | panic | sleep | big | long
    mode: String,
    /// sleep: how long; long: the interval between polls.
    #[serde(default, deserialize_with = "de::number")]
    seconds: f64,
    /// long: how many polls until done.
    #[serde(default, deserialize_with = "de::number")]
    polls: u32,
    /// big: size of the Data value.
    #[serde(default, deserialize_with = "de::number")]
    bytes: usize,
    /// Make one AWS call (sts:GetCallerIdentity) in every operation.
    #[serde(default, deserialize_with = "de::bool")]
    call_aws: bool,
    /// Answer with NoEcho.
    #[serde(default, deserialize_with = "de::bool")]
    secret: bool,
}

/// One rule across fields, to show that the framework applies it before any provider call.
impl shared::cfn::props::Validate for Properties {
    fn validate(&self) -> Result<(), Error> {
        if self.mode == "long" && self.polls == 0 {
            return Err(Error::invalid(
                "Polls: a long operation needs at least one poll (Mode: long)",
            ));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct State {
    remaining: u32,
    done_polls: u32,
    interval: f64,
    physical_id: String,
}

struct Probe {
    sts: aws_sdk_sts::Client,
}

impl Probe {
    async fn run(
        &self,
        ctx: &Ctx<'_>,
        physical_id: String,
        p: Properties,
    ) -> ProviderResult<State> {
        if p.call_aws {
            self.sts
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| Error::aws("sts:GetCallerIdentity", e))?;
        }
        let done = Done::new(physical_id.clone()).with("Attempt", ctx.attempt.to_string());
        match p.mode.as_str() {
            "ok" if p.secret => Ok(done.with("Secret", "hunter2-do-not-log").no_echo().into()),
            "ok" => Ok(done.into()),
            "fail" => Err(Error::other("the probe failed as asked")),
            "panic" => panic!("the probe panicked as asked"),
            "sleep" => {
                tokio::time::sleep(Duration::from_secs_f64(p.seconds)).await;
                Ok(done.into())
            }
            "big" => Ok(done.with("Big", "x".repeat(p.bytes)).into()),
            "long" => Ok(Outcome::InProgress {
                state: State {
                    remaining: p.polls,
                    done_polls: 0,
                    interval: p.seconds,
                    physical_id,
                },
                poll_after: Duration::from_secs_f64(p.seconds),
            }),
            other => Err(Error::invalid(format!(
                "Mode: unknown mode \"{other}\" (ok, fail, panic, sleep, big, long)"
            ))),
        }
    }
}

impl Provider for Probe {
    type Properties = Properties;
    type State = State;

    async fn create(&self, ctx: &Ctx<'_>, props: Properties) -> ProviderResult<State> {
        let id = format!("probe-{}", ctx.request.logical_resource_id);
        self.run(ctx, id, props).await
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        id: &str,
        props: Properties,
        _old: Option<Properties>,
    ) -> ProviderResult<State> {
        self.run(ctx, id.to_owned(), props).await
    }

    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        id: &str,
        props: Option<Properties>,
    ) -> ProviderResult<State> {
        // Properties that no longer parse: delete as "ok" would.
        let props = props.unwrap_or_else(|| Properties {
            mode: "ok".into(),
            ..Properties::default()
        });
        self.run(ctx, id.to_owned(), props).await
    }

    async fn poll(&self, ctx: &Ctx<'_>, mut state: State) -> ProviderResult<State> {
        state.remaining = state.remaining.saturating_sub(1);
        state.done_polls += 1;
        if state.remaining == 0 {
            return Ok(Done::new(state.physical_id)
                .with("Polls", state.done_polls.to_string())
                .with("Attempt", ctx.attempt.to_string())
                .into());
        }
        let poll_after = Duration::from_secs_f64(state.interval);
        Ok(Outcome::InProgress { state, poll_after })
    }
}

#[tokio::main]
async fn main() -> Result<(), shared::RuntimeError> {
    shared::cfn::serve(|sdk| {
        Ok(Probe {
            sts: aws_sdk_sts::Client::new(sdk),
        })
    })
    .await
}
