//! The one error type providers and adapters return. Its `Display` is what CloudFormation shows as the
//! `Reason` (or what lands in a log line / DLQ record), so every variant must read well on its own.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: the message names the field and what is expected.
    #[error("{0}")]
    Invalid(String),
    /// A call to an AWS API failed (after the SDK's own retries).
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        code: Option<String>,
        message: String,
    },
    /// Anything else, already phrased for a human.
    #[error("{0}")]
    Other(String),
    /// A custom-resource Create that failed after it made something: CloudFormation gets this
    /// physical id with the FAILED answer, so its Delete cleans up what was made.
    #[error("{source}")]
    Partial {
        physical_id: String,
        source: Box<Error>,
    },
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    pub fn other(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }

    /// Wraps an SDK error with the operation name, keeping AWS's error code and message.
    pub fn aws<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().map(str::to_owned);
        let message = match (err.code(), err.message()) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            (Some(code), None) => code.to_owned(),
            _ => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        };
        Error::Aws {
            operation,
            code,
            message,
        }
    }

    /// `self`, marked as having made the resource `physical_id` before it failed.
    pub fn partial(physical_id: impl Into<String>, source: Error) -> Self {
        Error::Partial {
            physical_id: physical_id.into(),
            source: Box::new(source),
        }
    }

    /// The physical id of what a failed Create made, when it made something.
    pub fn made(&self) -> Option<&str> {
        match self {
            Error::Partial { physical_id, .. } => Some(physical_id),
            _ => None,
        }
    }

    /// AWS's error code, when this is an AWS error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            Error::Partial { source, .. } => source.code(),
            _ => None,
        }
    }

    /// Whether AWS said that what the call names does not exist (see [`not_found`]).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Aws { code, message, .. } => not_found(code.as_deref(), message),
            Error::Partial { source, .. } => source.is_not_found(),
            _ => false,
        }
    }
}

/// The one rule for "it does not exist", however the service words it: an error code that ends in
/// `NotFound` (`ResourceNotFound`, `FileSystemNotFound`, `InvalidGroup.NotFound`) or
/// `NotFoundException` (`StackSetNotFoundException`, KMS's `NotFoundException`,
/// `ParentNotFoundException`), or — SageMaker answers a missing model or job with a plain
/// `ValidationException` — a validation error saying "Could not find …", "… does not exist",
/// "… not found" or `RecordNotFound`.
pub fn not_found(code: Option<&str>, message: &str) -> bool {
    if let Some(code) = code
        && (code.ends_with("NotFound") || code.ends_with("NotFoundException"))
    {
        return true;
    }
    if !matches!(code, None | Some("ValidationException")) {
        return false;
    }
    let lower = message.to_ascii_lowercase();
    [
        "could not find",
        "does not exist",
        "not found",
        "recordnotfound",
    ]
    .iter()
    .any(|words| lower.contains(words))
}

/// The answer of a read (`Describe…`, `Get…`): `Ok(None)` when what it names does not exist, else the
/// output or the error with the operation's name.
pub fn found<T, E, R>(
    operation: &'static str,
    result: Result<T, SdkError<E, R>>,
) -> Result<Option<T>, Error>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let err = Error::aws(operation, e);
            if err.is_not_found() {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// How an error is reported to the Lambda runtime (and from there to a DLQ record / the logs).
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(err: Error) -> Self {
        let mut inner = &err;
        while let Error::Partial { source, .. } = inner {
            inner = source;
        }
        let error_type = match inner {
            Error::Invalid(_) => "InvalidInput",
            Error::Aws { .. } => "AwsError",
            Error::Other(_) | Error::Partial { .. } => "Error",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::not_found;

    #[test]
    fn every_services_way_of_saying_not_found() {
        for code in [
            "ResourceNotFound",
            "FileSystemNotFound",
            "InvalidGroup.NotFound",
            "StackSetNotFoundException",
            "NotFoundException",
            "ParentNotFoundException",
        ] {
            assert!(not_found(Some(code), "whatever"), "{code}");
        }
        for msg in [
            "Could not find model \"arn:aws:sagemaker:us-east-1:1:model/m\".",
            "Requested resource not found",
            "Training job j does not exist",
            "RecordNotFound",
        ] {
            assert!(not_found(Some("ValidationException"), msg), "{msg}");
        }
        // Another code that mentions a missing thing is not "the resource is gone".
        assert!(!not_found(
            Some("AccessDeniedException"),
            "role does not exist"
        ));
        assert!(!not_found(Some("ResourceInUse"), "in use"));
        assert!(!not_found(
            Some("ValidationException"),
            "Cannot stop a job in state Stopped"
        ));
    }
}
