//! The local test bed: everything needed to prove Lambda behaviour without AWS.
//!
//! - [`harness`]: runs a real function binary under a local Lambda Runtime API, with a Lambda `Invoke`
//!   endpoint (for the framework's self-re-invocation), a CloudFormation `ResponseURL` receiver and a
//!   recorder for AWS calls that should not happen.
//! - [`moto`]: the local AWS emulator (moto server from the project venv) on a free 127.0.0.1 port.
//! - [`cfn`]: CloudFormation custom-resource request builders.
//! - [`org`]: a seeded AWS Organizations tree in the emulator.
//! - [`calls`]: the AWS calls each function makes (through the harness), for the IAM check.

pub mod alerts;
pub mod bins;
pub mod calls;
pub mod cfn;
pub mod cloudtrail;
pub mod deployment;
pub mod events;
pub mod harness;
pub mod moto;
pub mod org;
pub mod twin;
