//! Sealed continuations: only this function can hand a long operation's state to itself.
//!
//! A continuation carries the provider's state (e.g. "deleting domain d-…, its home EFS fs-…, data
//! retention `Delete`"), and the next invocation acts on it. Anyone allowed `lambda:InvokeFunction`
//! could otherwise send a state of their own and have the function delete what it never made. So the
//! framework seals each continuation with an HMAC KMS key (`CONTINUATION_KEY_ARN`, the template's
//! `ContinuationKey`) that only the function's role may use (`kms:GenerateMac` / `kms:VerifyMac`),
//! and refuses any continuation whose seal KMS does not verify: no provider call, no response.
//!
//! The MAC covers SHA-256 of the function's name and the continuation's exact JSON text (KMS takes at
//! most 4,096 bytes; a continuation with its request can be larger), so a continuation of one of our
//! functions is no good to another. A replay of a genuine continuation is what Lambda's own retries
//! already do (providers' polls are idempotent) and ends with the operation's `ServiceTimeout`, which
//! the sealed `StartedAtMs` fixes. Without the setting, the function neither hands over nor accepts a
//! continuation: a long operation then fails with a reason naming the setting.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::request::Continuation;
use crate::Error;
use crate::ids::hex;

/// The environment variable with the ARN of the HMAC KMS key that seals continuations.
pub const KEY_SETTING: &str = "CONTINUATION_KEY_ARN";

/// A continuation as it travels in the Lambda payload: its JSON text and the MAC over it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Sealed {
    pub body: String,
    /// HMAC-SHA-256 (KMS), hex.
    pub mac: String,
}

/// Why a continuation was not accepted.
pub enum Refusal {
    /// Not made by this function (or changed since): refuse it.
    Forged(String),
    /// KMS could not answer (throttling, an outage, a missing permission): Lambda retries the event.
    Unverified(Error),
}

pub struct Seal {
    kms: aws_sdk_kms::Client,
    key: Option<String>,
    function: String,
}

impl Seal {
    /// The key from `CONTINUATION_KEY_ARN`; the function's name from Lambda's environment.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Seal {
        Seal {
            kms: crate::client!(aws_sdk_kms, sdk),
            key: std::env::var(KEY_SETTING).ok().filter(|k| !k.is_empty()),
            function: std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        }
    }

    /// What KMS MACs: SHA-256 of a label, the function's name and the continuation's text.
    fn message(&self, body: &str) -> Blob {
        let mut digest = Sha256::new();
        for part in ["secure-mlops continuation v1", &self.function, body] {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part.as_bytes());
        }
        Blob::new(digest.finalize().to_vec())
    }

    /// Seals `continuation` for this function's next invocation.
    pub async fn seal(&self, continuation: &Continuation) -> Result<Sealed, String> {
        let key = self.key.as_deref().ok_or_else(|| {
            format!("{KEY_SETTING} is not set, so this function cannot seal a continuation (the template sets it to its ContinuationKey)")
        })?;
        let body = serde_json::to_string(continuation)
            .map_err(|e| format!("internal error: state not serializable: {e}"))?;
        let out = self
            .kms
            .generate_mac()
            .key_id(key)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(self.message(&body))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "{}; the function needs kms:GenerateMac on {KEY_SETTING}",
                    Error::aws("kms:GenerateMac (continuation)", e)
                )
            })?;
        let mac = out
            .mac()
            .map(|m| hex(m.as_ref()))
            .ok_or("kms:GenerateMac answered without a MAC")?;
        Ok(Sealed { body, mac })
    }

    /// Accepts `sealed` only when KMS verifies its MAC with this function's key.
    pub async fn verify(&self, sealed: &Sealed) -> Result<(), Refusal> {
        let key = self.key.as_deref().ok_or_else(|| {
            Refusal::Forged(format!(
                "{KEY_SETTING} is not set, so this function accepts no continuation"
            ))
        })?;
        let mac = unhex(&sealed.mac)
            .ok_or_else(|| Refusal::Forged("its seal (Mac) is not a hex MAC".to_owned()))?;
        let verified = self
            .kms
            .verify_mac()
            .key_id(key)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(self.message(&sealed.body))
            .mac(Blob::new(mac))
            .send()
            .await;
        match verified {
            Ok(out) if out.mac_valid() => Ok(()),
            Ok(_) => Err(Refusal::Forged("KMS did not verify its seal".to_owned())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_kms_invalid_mac_exception()) =>
            {
                Err(Refusal::Forged(
                    "its seal does not verify: it was not made by this function, or was changed"
                        .to_owned(),
                ))
            }
            Err(e) => Err(Refusal::Unverified(Error::aws(
                "kms:VerifyMac (continuation)",
                e,
            ))),
        }
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_what_is_not_hex() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex("0001abff").as_deref(), Some(&bytes[..]));
        for bad in ["", "0", "zz", "0g", "é1"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
    }

    fn with(kms: aws_sdk_kms::Client) -> Seal {
        Seal {
            kms,
            key: Some("arn:aws:kms:us-east-1:123456789012:key/k".to_owned()),
            function: "studio-domain".to_owned(),
        }
    }

    fn sealed() -> Sealed {
        Sealed {
            body: "{}".to_owned(),
            mac: "ab".repeat(32),
        }
    }

    /// What the emulator cannot do: throttle. A VerifyMac that KMS could not answer is not a forgery:
    /// the event goes back to Lambda, which retries it.
    #[tokio::test]
    async fn a_throttled_verification_is_retried_not_refused() {
        use aws_sdk_kms::operation::verify_mac::VerifyMacError;
        use aws_smithy_mocks::{mock, mock_client};
        let throttled = mock!(aws_sdk_kms::Client::verify_mac).then_error(|| {
            VerifyMacError::generic(
                aws_sdk_kms::error::ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let seal = with(mock_client!(aws_sdk_kms, [&throttled]));
        match seal.verify(&sealed()).await {
            Err(Refusal::Unverified(e)) => {
                assert_eq!(e.code(), Some("ThrottlingException"));
                assert!(e.to_string().contains("kms:VerifyMac"), "{e}");
            }
            Err(Refusal::Forged(r)) => panic!("a throttled call is no forgery: {r}"),
            Ok(()) => panic!("accepted without a verified seal"),
        }
    }

    #[tokio::test]
    async fn a_bad_mac_is_a_forgery_and_a_missing_permission_names_it() {
        use aws_sdk_kms::operation::generate_mac::GenerateMacError;
        use aws_sdk_kms::operation::verify_mac::VerifyMacError;
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        let invalid = mock!(aws_sdk_kms::Client::verify_mac).then_error(|| {
            VerifyMacError::KmsInvalidMacException(
                aws_sdk_kms::types::error::KmsInvalidMacException::builder().build(),
            )
        });
        let denied = mock!(aws_sdk_kms::Client::generate_mac).then_error(|| {
            GenerateMacError::generic(
                aws_sdk_kms::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform kms:GenerateMac")
                    .build(),
            )
        });
        let seal = with(mock_client!(
            aws_sdk_kms,
            RuleMode::MatchAny,
            [&invalid, &denied]
        ));
        assert!(matches!(
            seal.verify(&sealed()).await,
            Err(Refusal::Forged(r)) if r.contains("does not verify")
        ));
        let continuation: Continuation = serde_json::from_value(serde_json::json!({
            "Request": {"RequestType": "Create", "ResponseURL": "https://example.invalid",
                "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
                "RequestId": "r", "LogicalResourceId": "Domain"},
            "State": {}, "Attempt": 1, "StartedAtMs": 0
        }))
        .unwrap();
        let reason = seal.seal(&continuation).await.err().unwrap_or_default();
        assert!(
            reason.contains("AccessDeniedException")
                && reason.contains("needs kms:GenerateMac on CONTINUATION_KEY_ARN"),
            "{reason}"
        );
    }

    #[test]
    fn the_message_binds_the_function_and_the_exact_text() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let seal = |function: &str| Seal {
            kms: crate::client!(aws_sdk_kms, &config),
            key: None,
            function: function.to_owned(),
        };
        let a = seal("studio-domain").message("{\"State\":1}");
        assert_eq!(a.as_ref().len(), 32);
        assert_eq!(a, seal("studio-domain").message("{\"State\":1}"));
        assert_ne!(a, seal("studio-user-profile").message("{\"State\":1}"));
        assert_ne!(a, seal("studio-domain").message("{\"State\": 1}"));
        // Lengths are part of the message: moving text between the parts changes it.
        assert_ne!(seal("ab").message("c"), seal("a").message("bc"));
    }
}
