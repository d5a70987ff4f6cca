//! Shared library of every secure-mlops Lambda:
//!
//! - [`cfn`]: the CloudFormation custom-resource framework (a provider trait and `serve`);
//! - [`event`]: the same for event-driven functions (a handler trait and `serve`);
//! - [`aws`]: the SDK configuration (endpoint overrides) and acting as another account's role;
//! - [`Error`] and [`error::not_found`]: the one error type, and the one rule for "it does not exist";
//! - [`logging`]: structured JSON logs; [`metrics`]: CloudWatch metrics as EMF log lines; [`settings`]: environment variables, read once and named in errors;
//! - [`http`]: the process's one HTTP client (every SDK client and the response PUT); [`tls`]: its
//!   rustls stack and trust store;
//! - [`ids`]: validated account, OU and role ids; [`instances`]: instance types with local storage;
//! - [`deploy`]: names shared by the deployment functions and templates;
//! - features: [`organizations`] (OU → ACTIVE accounts), [`studio`] (Studio teardown), [`lock`]
//!   (lease locks for read-modify-write of shared policies), `registry` (the latest Approved model).

pub mod aws;
pub mod cfn;
pub mod deploy;
pub mod error;
pub mod event;
pub mod http;
pub mod ids;
pub mod instances;
#[cfg(feature = "lock")]
pub mod lock;
pub mod logging;
pub mod metrics;
#[cfg(feature = "organizations")]
pub mod organizations;
pub mod settings;
#[cfg(feature = "studio")]
pub mod studio;
pub mod tls;
pub mod xray;

pub use error::Error;

/// What a function's `main` returns when the Lambda runtime itself fails.
pub type RuntimeError = lambda_runtime::Error;
