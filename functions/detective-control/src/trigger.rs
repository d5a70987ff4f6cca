//! What invoked the function: an EventBridge event carrying a CloudTrail record of a SageMaker call, or
//! the schedule's `Scheduled Event` (a sweep). Parsing never panics: a payload that is not an EventBridge
//! event is an error naming the field, so Lambda's retries end in the dead-letter queue with that reason.

use serde::Deserialize;
use serde_json::Value;
use shared::Error;

use crate::resource::Place;

/// The daily schedule's rule name ends with this: its sweeps look at every model and endpoint config.
pub const FULL_SWEEP_RULE_SUFFIX: &str = "-full-sweep";

/// A sweep that ran out of time goes on in a new invocation with this event (the function invokes
/// itself; anyone else sending it only starts a sweep).
pub const CONTINUATION_SOURCE: &str = "secure-mlops.detective-control";
pub const CONTINUATION_TYPE: &str = "Sweep Continuation";

/// The event that continues sweep `event_id` in `place` after the candidate `after` (`<arn
/// type>/<name>`), or starts it there (`None`: a member account's sweep in organization-wide mode).
pub fn continuation(
    event_id: &str,
    time: Option<&str>,
    place: &Place,
    full: bool,
    after: Option<&str>,
) -> Value {
    serde_json::json!({"version": "0", "id": event_id, "source": CONTINUATION_SOURCE,
        "detail-type": CONTINUATION_TYPE, "time": time, "account": place.account, "region": place.region,
        "resources": [], "detail": {"full": full, "after": after}})
}

/// An EventBridge event, as Lambda receives it from a rule target.
#[derive(Debug, Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    resources: Value,
    #[serde(default)]
    detail: Value,
}

/// The parts of a CloudTrail record the control uses. Every field but the id and name may be missing
/// or `null`.
#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventID")]
    event_id: String,
    #[serde(rename = "eventName")]
    event_name: String,
    #[serde(rename = "eventSource", default)]
    event_source: Option<String>,
    #[serde(rename = "eventTime", default)]
    event_time: Option<String>,
    #[serde(rename = "awsRegion", default)]
    region: Option<String>,
    #[serde(rename = "recipientAccountId", default)]
    account: Option<String>,
    #[serde(rename = "userIdentity", default)]
    user_identity: Option<UserIdentity>,
    #[serde(rename = "sourceIPAddress", default)]
    source_ip: Option<String>,
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
    #[serde(rename = "errorMessage", default)]
    error_message: Option<String>,
    #[serde(rename = "requestParameters", default)]
    request: Option<Value>,
    #[serde(rename = "responseElements", default)]
    response: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct UserIdentity {
    #[serde(default)]
    arn: Option<String>,
    #[serde(rename = "principalId", default)]
    principal_id: Option<String>,
}

/// A SageMaker API call recorded by CloudTrail.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiCall {
    pub event_id: String,
    pub event_name: String,
    pub event_time: Option<String>,
    pub place: Place,
    /// `userIdentity.arn` (or its principal id when there is no ARN).
    pub principal: Option<String>,
    pub source_ip: Option<String>,
    /// Set when the call failed: nothing was created or changed.
    pub error: Option<String>,
    pub request: Value,
    pub response: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    Call(Box<ApiCall>),
    Sweep {
        event_id: String,
        /// The schedule's time (RFC 3339), when it has one.
        time: Option<String>,
        place: Place,
        /// Every model and endpoint config, not only those created within the lookback (the daily
        /// schedule, rule `<ProjectName>-full-sweep`).
        full: bool,
        /// The last candidate (`<arn type>/<name>`) an earlier invocation of this sweep handled.
        after: Option<String>,
        /// The schedule's own event (not a continuation): it starts the sweep of every member account.
        fan_out: bool,
    },
    /// An event this function does not handle (another source or type): logged and ignored.
    Other(String),
}

/// Parses an invocation payload.
pub fn parse(payload: &Value) -> Result<Trigger, Error> {
    let envelope: Envelope = serde_path_to_error::deserialize(payload).map_err(|e| {
        Error::invalid(format!(
            "the payload is not an EventBridge event: field `{}`: {} (expected `id`, `detail-type`, `source`, `detail`)",
            e.path(),
            e.inner()
        ))
    })?;
    let place = |region: Option<String>, account: Option<String>, arn_hint: Option<&str>| Place {
        partition: arn_hint
            .and_then(|arn| arn.split(':').nth(1))
            .filter(|p| p.starts_with("aws"))
            .unwrap_or("aws")
            .to_owned(),
        region: region.or(envelope.region.clone()).unwrap_or_default(),
        account: account.or(envelope.account.clone()).unwrap_or_default(),
    };
    match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        ("aws.events" | "aws.scheduler", "Scheduled Event") => Ok(Trigger::Sweep {
            event_id: envelope.id.clone(),
            time: envelope.time.clone(),
            place: place(None, None, None),
            full: envelope
                .resources
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|r| r.ends_with(FULL_SWEEP_RULE_SUFFIX)),
            after: None,
            fan_out: true,
        }),
        (CONTINUATION_SOURCE, CONTINUATION_TYPE) => Ok(Trigger::Sweep {
            event_id: envelope.id.clone(),
            time: envelope.time.clone(),
            place: place(None, None, None),
            full: envelope.detail["full"].as_bool().unwrap_or(false),
            after: envelope.detail["after"].as_str().map(str::to_owned),
            fan_out: false,
        }),
        ("aws.sagemaker", "AWS API Call via CloudTrail") => {
            let record: Record =
                serde_path_to_error::deserialize(&envelope.detail).map_err(|e| {
                    Error::invalid(format!(
                        "event {}: `detail` is not a CloudTrail record: field `detail.{}`: {}",
                        envelope.id,
                        e.path(),
                        e.inner()
                    ))
                })?;
            if let Some(source) = record.event_source.as_deref()
                && source != "sagemaker.amazonaws.com"
            {
                return Ok(Trigger::Other(format!(
                    "event {}: eventSource {source} is not SageMaker",
                    envelope.id
                )));
            }
            let identity = record.user_identity.unwrap_or_default();
            let place = place(record.region, record.account, identity.arn.as_deref());
            Ok(Trigger::Call(Box::new(ApiCall {
                event_id: record.event_id,
                event_name: record.event_name,
                event_time: record.event_time.or(envelope.time),
                place,
                principal: identity.arn.or(identity.principal_id),
                source_ip: record.source_ip,
                error: record.error_code.map(|code| match record.error_message {
                    Some(m) => format!("{code}: {m}"),
                    None => code,
                }),
                request: record.request.unwrap_or(Value::Null),
                response: record.response.unwrap_or(Value::Null),
            })))
        }
        (source, detail_type) => Ok(Trigger::Other(format!(
            "event {}: `{detail_type}` from `{source}` is neither a SageMaker CloudTrail record nor a scheduled sweep",
            envelope.id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(detail: Value) -> Value {
        json!({"version": "0", "id": "e-1", "detail-type": "AWS API Call via CloudTrail",
               "source": "aws.sagemaker", "account": "111122223333", "time": "2026-11-23T10:00:00Z",
               "region": "eu-west-1", "resources": [], "detail": detail})
    }

    #[test]
    fn a_record_with_nulls_everywhere_but_id_and_name_parses() {
        let t = parse(&call(json!({"eventID": "x", "eventName": "CreateModel",
            "userIdentity": null, "requestParameters": null, "responseElements": null,
            "awsRegion": null, "errorCode": null})))
        .unwrap();
        let Trigger::Call(c) = t else { panic!("{t:?}") };
        assert_eq!(c.place.region, "eu-west-1", "falls back to the envelope");
        assert_eq!(c.place.account, "111122223333");
        assert_eq!(c.request, Value::Null);
        assert_eq!(c.error, None);
        assert_eq!(c.event_time.as_deref(), Some("2026-11-23T10:00:00Z"));
    }

    #[test]
    fn failed_calls_keep_their_error() {
        let Trigger::Call(c) = parse(&call(json!({"eventID": "x", "eventName": "CreateModel",
            "errorCode": "ValidationException", "errorMessage": "bad"})))
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.error.as_deref(), Some("ValidationException: bad"));
    }

    #[test]
    fn partition_comes_from_the_principal() {
        let Trigger::Call(c) = parse(&call(json!({"eventID": "x", "eventName": "CreateModel",
            "userIdentity": {"arn": "arn:aws-us-gov:sts::1:assumed-role/r/s"}})))
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.place.partition, "aws-us-gov");
        assert_eq!(
            c.principal.as_deref(),
            Some("arn:aws-us-gov:sts::1:assumed-role/r/s")
        );
    }

    #[test]
    fn schedule_and_foreign_events() {
        let t = parse(
            &json!({"id": "s-1", "detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-11-23T10:00:00Z", "region": "eu-west-1", "account": "1", "detail": {}}),
        )
        .unwrap();
        assert!(
            matches!(t, Trigger::Sweep { ref event_id, full: false, after: None, .. } if event_id == "s-1")
        );
        // The daily rule (`…-full-sweep`) sweeps everything; a continuation goes on after its cursor.
        let t = parse(&json!({"id": "s-2", "detail-type": "Scheduled Event", "source": "aws.events",
            "resources": ["arn:aws:events:eu-west-1:1:rule/secure-mlops-full-sweep"], "detail": {}}))
        .unwrap();
        assert!(matches!(t, Trigger::Sweep { full: true, .. }));
        let place = Place {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "1".into(),
        };
        let next = continuation(
            "s-2",
            Some("2026-11-23T10:00:00Z"),
            &place,
            true,
            Some("model/m-1"),
        );
        let t = parse(&next).unwrap();
        assert!(
            matches!(t, Trigger::Sweep { ref event_id, full: true, after: Some(ref a), .. }
                if event_id == "s-2" && a == "model/m-1")
        );
        let t = parse(
            &json!({"id": "o", "detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
        )
        .unwrap();
        assert!(matches!(t, Trigger::Other(_)));
    }

    #[test]
    fn malformed_payloads_name_the_field() {
        let e = parse(&json!({"hello": "world"})).unwrap_err().to_string();
        assert!(e.contains("not an EventBridge event"), "{e}");
        let e = parse(&call(json!({"eventName": "CreateModel"})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("eventID"), "{e}");
        let e = parse(&call(json!({"eventID": 5, "eventName": "CreateModel"})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("detail.eventID"), "{e}");
        assert!(parse(&json!([1, 2])).is_err());
    }
}
