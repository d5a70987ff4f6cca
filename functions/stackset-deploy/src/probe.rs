//! The staging checks after a deployment, made in each target account and region through the smoke-test
//! role the endpoint template creates there (`<path>/<endpoint name>`, trusting only this function's
//! role): invoke the endpoint with the model package's sample payload, and read the endpoint's two
//! rollback alarms. Answers per (account, region); no decisions here.

use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_sagemakerruntime::primitives::Blob;
use shared::Error;

pub struct Probe {
    pub config: aws_config::SdkConfig,
    pub sts: aws_sdk_sts::Client,
    /// The IAM path of the smoke-test roles (`secure-mlops-smoke`).
    pub role_path: String,
}

/// A sample request for a model: what to send and as what.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub content_type: String,
    pub body: String,
}

impl Probe {
    fn role(&self, account: &str, endpoint: &str) -> String {
        let partition = self
            .config
            .region()
            .map(|r| r.as_ref())
            .filter(|r| r.starts_with("cn-"))
            .map_or("aws", |_| "aws-cn");
        format!(
            "arn:{partition}:iam::{account}:role/{}/{endpoint}",
            self.role_path.trim_matches('/')
        )
    }

    async fn as_account(
        &self,
        account: &str,
        region: &str,
        endpoint: &str,
    ) -> Result<aws_config::SdkConfig, Error> {
        shared::aws::assume(
            &self.config,
            &self.sts,
            &self.role(account, endpoint),
            "secure-mlops-smoke-test",
            Some(region),
        )
        .await
    }

    /// Invokes the endpoint once with `sample`; `Err` holds what went wrong, for the job's message.
    pub async fn invoke(
        &self,
        account: &str,
        region: &str,
        endpoint: &str,
        sample: &Sample,
    ) -> Result<(), Error> {
        let config = self.as_account(account, region, endpoint).await?;
        shared::client!(aws_sdk_sagemakerruntime, &config)
            .invoke_endpoint()
            .endpoint_name(endpoint)
            .content_type(&sample.content_type)
            .body(Blob::new(sample.body.clone()))
            .send()
            .await
            .map(drop)
            .map_err(|e| Error::aws("sagemaker:InvokeEndpoint", e))
    }

    /// The endpoint's rollback alarms (`<endpoint>-5xx`, `<endpoint>-latency`) that are in ALARM.
    pub async fn alarms(
        &self,
        account: &str,
        region: &str,
        endpoint: &str,
    ) -> Result<Vec<String>, Error> {
        let config = self.as_account(account, region, endpoint).await?;
        let out = shared::client!(aws_sdk_cloudwatch, &config)
            .describe_alarms()
            .alarm_names(format!("{endpoint}-5xx"))
            .alarm_names(format!("{endpoint}-latency"))
            .send()
            .await
            .map_err(|e| Error::aws("cloudwatch:DescribeAlarms", e))?;
        Ok(out
            .metric_alarms()
            .iter()
            .filter(|a| a.state_value() == Some(&StateValue::Alarm))
            .filter_map(|a| a.alarm_name().map(str::to_owned))
            .collect())
    }
}
