//! The security team's side, in the emulator: a KMS-encrypted SNS topic (as the template creates it) with
//! an SQS queue subscribed, so tests and the demo read every alert back as it was published — subject and
//! JSON body — and the Security Hub findings the control upserted.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use serde_json::Value;

/// One alert as a subscriber receives it.
#[derive(Clone, Debug)]
pub struct Alert {
    pub subject: String,
    pub body: Value,
}

pub struct Inbox {
    pub topic_arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
    hub: aws_sdk_securityhub::Client,
}

impl Inbox {
    /// Creates the key, the encrypted topic and the subscribed queue; enables Security Hub.
    pub async fn create(config: &SdkConfig, name: &str) -> Inbox {
        Inbox::make(config, name, true).await
    }

    /// A plain topic without a subscriber (nothing to read back): for measurements, where moto's
    /// delivery to a queue and its KMS work would be part of every `Publish` timed.
    pub async fn unread(config: &SdkConfig, name: &str) -> Inbox {
        Inbox::make(config, name, false).await
    }

    async fn make(config: &SdkConfig, name: &str, subscribed: bool) -> Inbox {
        let kms = aws_sdk_kms::Client::new(config);
        let key = kms
            .create_key()
            .description("alerts")
            .send()
            .await
            .expect("CreateKey");
        let key_id = key
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .unwrap_or_default();
        let sns = aws_sdk_sns::Client::new(config);
        let topic_arn = sns
            .create_topic()
            .name(name)
            .set_attributes(subscribed.then(|| [("KmsMasterKeyId".to_owned(), key_id)].into()))
            .send()
            .await
            .expect("CreateTopic")
            .topic_arn
            .unwrap_or_default();
        let sqs = aws_sdk_sqs::Client::new(config);
        let hub = aws_sdk_securityhub::Client::new(config);
        let _ = hub.enable_security_hub().send().await;
        if !subscribed {
            return Inbox {
                topic_arn,
                queue_url: String::new(),
                sqs,
                hub,
            };
        }
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{name}-inbox"))
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .unwrap_or_default();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .unwrap_or_default();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("Subscribe");
        Inbox {
            topic_arn,
            queue_url,
            sqs,
            hub,
        }
    }

    /// Alerts published since the last call (waits up to `within` for at least `at_least`).
    pub async fn alerts(&self, at_least: usize, within: Duration) -> Vec<Alert> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        if self.queue_url.is_empty() {
            return out;
        }
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("ReceiveMessage");
            let messages = got.messages.unwrap_or_default();
            for m in &messages {
                let envelope: Value =
                    serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null);
                out.push(Alert {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                    body: serde_json::from_str(envelope["Message"].as_str().unwrap_or("null"))
                        .unwrap_or(Value::Null),
                });
                if let Some(handle) = m.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
            if messages.is_empty() && (out.len() >= at_least || Instant::now() >= deadline) {
                return out;
            }
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Every Security Hub finding, as JSON-ish tuples (id, record state, compliance status).
    pub async fn findings(&self) -> Vec<(String, String, String)> {
        let out = self.hub.get_findings().send().await.expect("GetFindings");
        out.findings()
            .iter()
            .map(|f| {
                (
                    f.id().unwrap_or_default().to_owned(),
                    f.record_state()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    f.compliance()
                        .and_then(|c| c.status())
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}
