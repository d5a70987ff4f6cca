//! The alert a security team receives: a short subject (what, where, which rules) and a JSON body with
//! every fact needed to follow up. Pure: the SNS / Security Hub adapter only sends it.

use serde_json::{Value, json};

use crate::checks::Rule;
use crate::config::Mode;
use crate::resource::{Place, Resource};
use crate::respond::{Action, Effect, Taken};

/// Where a finding came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    /// `event` (a CloudTrail record) or `sweep` (the schedule).
    pub trigger: &'static str,
    pub event_id: String,
    pub event_name: String,
    pub event_time: Option<String>,
    pub principal: Option<String>,
    pub source_ip: Option<String>,
    pub place: Place,
}

/// One non-compliant resource and what was done about it.
#[derive(Clone, Debug)]
pub struct Report<'a> {
    pub context: &'a Context,
    pub resource: Resource,
    pub failed: Vec<&'static Rule>,
    pub taken: Taken,
    pub mode: Mode,
}

/// SNS subjects: ASCII, no line breaks, at most 100 characters.
const SUBJECT_MAX: usize = 100;

impl Report<'_> {
    fn verb(&self) -> &'static str {
        match (self.taken.result, self.taken.action) {
            (Effect::Done, Action::Delete) => "deleted",
            (Effect::Done, _) => "stopped",
            (Effect::AlreadyInactive, _) => "already inactive",
            (Effect::Deferred, _) => "stop deferred",
            (Effect::Failed, Action::Delete) => "DELETE FAILED",
            (Effect::Failed, _) => "STOP FAILED",
            (Effect::NotTaken, _) => "not compliant",
        }
    }

    pub fn checks(&self) -> Vec<&'static str> {
        self.failed.iter().map(|r| r.id).collect()
    }

    /// What happened to which resource; the account and region always fit (what is cut, when SNS's
    /// 100 characters are too few, is the end of the name and check list).
    pub fn subject(&self) -> String {
        let clean = |text: String| -> String {
            text.chars()
                .map(|c| {
                    if c.is_ascii() && !c.is_ascii_control() {
                        c
                    } else {
                        '?'
                    }
                })
                .collect()
        };
        let what = clean(format!(
            "SageMaker {} {}: {} [{}]",
            self.resource.kind.label(),
            self.verb(),
            self.resource.name,
            self.checks().join(", "),
        ));
        let place = clean(format!(
            " ({} {})",
            self.context.place.account, self.context.place.region,
        ));
        if what.len() + place.len() <= SUBJECT_MAX {
            format!("{what}{place}")
        } else {
            let keep = SUBJECT_MAX.saturating_sub(place.len() + 3);
            format!("{}...{place}", &what[..keep.min(what.len())])
        }
    }

    pub fn body(&self) -> Value {
        let c = self.context;
        json!({
            "source": "secure-mlops detective-control",
            "trigger": c.trigger,
            "account": c.place.account,
            "region": c.place.region,
            "resourceType": self.resource.kind.label(),
            "resourceName": self.resource.name,
            "resourceArn": self.resource.arn,
            "eventName": c.event_name,
            "eventId": c.event_id,
            "eventTime": c.event_time,
            "principal": c.principal,
            "sourceIp": c.source_ip,
            "failedChecks": self.failed.iter().map(|r| json!({
                "id": r.id,
                "requires": r.requires,
                "severity": r.severity.label(),
                "securityHubControl": r.control_for(self.resource.kind),
            })).collect::<Vec<_>>(),
            "mode": match self.mode { Mode::Enforce => "enforce", Mode::Alert => "alert" },
            "action": self.taken.action,
            "result": self.taken.result,
            "detail": self.taken.detail,
        })
    }

    /// Security Hub finding id: the same resource and check always give the same id, so a repeated
    /// event updates the finding instead of adding one.
    pub fn finding_id(&self, rule: &Rule) -> String {
        format!("{}/secure-mlops/{}", self.resource.arn, rule.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::RULES;
    use crate::resource::Kind;

    fn context() -> Context {
        Context {
            trigger: "event",
            event_id: "e-1".into(),
            event_name: "CreateTrainingJob".into(),
            event_time: Some("2026-11-23T10:00:00Z".into()),
            principal: Some("arn:aws:sts::111122223333:assumed-role/DS/alice".into()),
            source_ip: Some("198.51.100.7".into()),
            place: Place {
                partition: "aws".into(),
                region: "eu-west-1".into(),
                account: "111122223333".into(),
            },
        }
    }

    fn report<'a>(c: &'a Context, name: &str, taken: Taken) -> Report<'a> {
        Report {
            context: c,
            resource: Resource {
                kind: Kind::TrainingJob,
                name: name.into(),
                arn: format!("arn:aws:sagemaker:eu-west-1:111122223333:training-job/{name}"),
            },
            failed: vec![&RULES[0], &RULES[3]],
            taken,
            mode: Mode::Enforce,
        }
    }

    #[test]
    fn subject_says_what_where_and_which_rules() {
        let c = context();
        let r = report(&c, "churn-train", Taken::done(Action::Stop));
        assert_eq!(
            r.subject(),
            "SageMaker training job stopped: churn-train [vpc, volume-kms] (111122223333 eu-west-1)"
        );
    }

    #[test]
    fn subject_is_short_ascii_on_one_line() {
        let c = context();
        let r = report(
            &c,
            &format!("é\n{}", "x".repeat(200)),
            Taken::done(Action::Stop),
        );
        let s = r.subject();
        assert!(s.len() <= 100 && s.is_ascii() && !s.contains('\n'), "{s}");
        // The account and region always fit: what is cut is the name.
        assert!(s.ends_with("... (111122223333 eu-west-1)"), "{s}");
    }

    #[test]
    fn body_carries_every_fact() {
        let c = context();
        let b = report(&c, "j", Taken::done(Action::Stop)).body();
        assert_eq!(b["account"], "111122223333");
        assert_eq!(
            b["principal"],
            "arn:aws:sts::111122223333:assumed-role/DS/alice"
        );
        assert_eq!(b["sourceIp"], "198.51.100.7");
        assert_eq!(b["eventId"], "e-1");
        assert_eq!(b["failedChecks"][0]["id"], "vpc");
        assert_eq!(b["action"], "stop");
        assert_eq!(b["result"], "done");
    }
}
