//! A sweep that runs out of time hands the rest to a new invocation of this function (asynchronous
//! `Invoke` of its own name, as Lambda sets it in `AWS_LAMBDA_FUNCTION_NAME`).

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;
use shared::Error;

pub struct Continuation {
    client: aws_sdk_lambda::Client,
    function: Option<String>,
}

impl Continuation {
    pub fn new(client: aws_sdk_lambda::Client, function: Option<String>) -> Self {
        Continuation { client, function }
    }

    /// Sends `event` to a new invocation; without a function name (outside Lambda) it is an error,
    /// so the sweep fails loudly instead of stopping half way in silence.
    pub async fn send(&self, event: &Value) -> Result<(), Error> {
        let function = self.function.as_deref().ok_or_else(|| {
            Error::invalid("AWS_LAMBDA_FUNCTION_NAME is not set: the sweep cannot continue in a new invocation")
        })?;
        self.client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(event.to_string()))
            .send()
            .await
            .map(drop)
            .map_err(|e| Error::aws("lambda:Invoke", e))
    }
}
