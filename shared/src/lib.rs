//! Shared library of every secure-mlops Lambda: the CloudFormation custom-resource framework
//! ([`cfn`]), AWS configuration ([`aws`]), the error type ([`Error`]) and logging ([`logging`]).

pub mod aws;
pub mod cfn;
pub mod deploy;
mod error;
pub mod ids;
pub mod instances;
#[cfg(feature = "lock")]
pub mod lock;
pub mod logging;
#[cfg(feature = "organizations")]
pub mod organizations;
pub mod settings;
#[cfg(feature = "studio")]
pub mod studio;

pub use error::Error;
