//! The local test bed: everything needed to prove Lambda behaviour without AWS.
//!
//! - [`harness`]: runs a real function binary under a local Lambda Runtime API, with a Lambda `Invoke`
//!   endpoint (for the framework's self-re-invocation), a CloudFormation `ResponseURL` receiver and a
//!   recorder of every AWS call (passed on to moto or the twin).
//! - [`bins`]: where the built function binaries are.
//! - [`moto`]: the local AWS emulator (moto server from the project venv) on a free 127.0.0.1 port.
//! - [`twin`]: our SageMaker / CodePipeline / endpoint-runtime / CloudWatch twin, for what moto lacks.
//! - [`cfn`]: CloudFormation custom-resource request builders.
//! - [`org`]: a seeded AWS Organizations tree in the emulator.
//! - [`stack`]: the SAM template deployed locally: parameters, resource names, intrinsics resolved,
//!   and each function's harness configuration from the template's own `Environment`.
//! - [`fixture`]: the one test bed: moto, the twin and the project's stack deployed into them; every
//!   function starts from it.
//! - [`events`]: the template's EventBridge rules installed in moto, and what they deliver.
//! - [`cloudtrail`]: CloudTrail records replayed into the twin (the resource a record says was made).
//! - [`deployment`]: the template's deployment pipeline and stack-set targets, built in the twin.
//! - [`alerts`]: the alert topic's inbox (SNS → SQS) and Security Hub findings.
//! - [`sample`]: one sample event of `events/` through its function (the `try-event` binary).
//! - [`calls`]: the AWS calls each function makes (through the harness), for the IAM check.

pub mod alerts;
pub mod bins;
pub mod calls;
pub mod cfn;
pub mod cloudtrail;
pub mod deployment;
pub mod events;
pub mod fixture;
pub mod harness;
pub mod moto;
pub mod org;
pub mod organization;
pub mod sample;
pub mod stack;
pub mod twin;
