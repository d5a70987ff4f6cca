//! The response to a non-compliant resource: what to do per kind and mode, and how the outcome of the
//! stop/delete call reads (an already stopped or deleted resource is fine; a `Pending` notebook is left to
//! the next sweep; any other failure is reported in the alert).

use serde::Serialize;

use crate::config::Mode;
use crate::resource::Kind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Stop,
    Delete,
    None,
}

/// What the control does about a non-compliant `kind` in `mode`, with the reason when it does nothing.
pub fn plan(kind: Kind, mode: Mode) -> (Action, Option<&'static str>) {
    if mode == Mode::Alert {
        return (
            Action::None,
            Some("MODE is alert: the resource was left as it is"),
        );
    }
    let spec = kind.spec();
    (spec.action, spec.never)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// The call succeeded.
    Done,
    /// It was already stopped, finished or deleted.
    AlreadyInactive,
    /// It cannot be stopped yet (a `Pending` notebook): the next sweep stops it.
    Deferred,
    /// The call failed (e.g. AccessDenied): a human must act.
    Failed,
    /// Nothing was attempted (alert mode, domains).
    NotTaken,
}

/// What was done, for the alert and the logs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Taken {
    pub action: Action,
    pub result: Effect,
    pub detail: String,
}

impl Taken {
    pub fn not_taken(reason: &str) -> Taken {
        Taken {
            action: Action::None,
            result: Effect::NotTaken,
            detail: reason.to_owned(),
        }
    }

    pub fn done(action: Action) -> Taken {
        let detail = match action {
            Action::Stop => "stop requested",
            Action::Delete => "deleted",
            Action::None => "nothing to do",
        };
        Taken {
            action,
            result: Effect::Done,
            detail: detail.to_owned(),
        }
    }

    /// Reads a failed stop/delete call: SageMaker answers `ValidationException` both for a resource in
    /// the wrong state and for one that does not exist, so the message decides.
    pub fn from_error(kind: Kind, action: Action, code: Option<&str>, message: &str) -> Taken {
        let (result, detail) = if shared::error::not_found(code, message) {
            (Effect::AlreadyInactive, format!("already gone ({message})"))
        } else if code == Some("ValidationException")
            && kind == Kind::NotebookInstance
            && message.contains("(Pending)")
        {
            (
                Effect::Deferred,
                "the notebook is still Pending and cannot be stopped yet; the scheduled sweep stops it once it is InService".to_owned(),
            )
        } else if code == Some("ValidationException")
            && [
                "Stopped",
                "Stopping",
                "Completed",
                "Failed",
                "Deleting",
                "Updating",
            ]
            .iter()
            .any(|s| message.contains(s))
        {
            (Effect::AlreadyInactive, format!("not running ({message})"))
        } else {
            let code = code.unwrap_or("Error");
            (Effect::Failed, format!("{code}: {message}"))
        };
        Taken {
            action,
            result,
            detail,
        }
    }

    /// True when the resource no longer exists or can no longer run: its findings are archived.
    pub fn resolves(&self, kind: Kind) -> bool {
        matches!(self.result, Effect::Done | Effect::AlreadyInactive)
            && kind.spec().resolved_by_action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(plan(Kind::TrainingJob, Mode::Enforce).0, Action::Stop);
        assert_eq!(plan(Kind::Model, Mode::Enforce).0, Action::Delete);
        assert_eq!(plan(Kind::EndpointConfig, Mode::Enforce).0, Action::Delete);
        assert_eq!(plan(Kind::Domain, Mode::Enforce).0, Action::None);
        for kind in Kind::all() {
            assert_eq!(plan(kind, Mode::Alert).0, Action::None);
        }
    }

    #[test]
    fn errors_read_as_aws_words_them() {
        let t = Taken::from_error(
            Kind::TrainingJob,
            Action::Stop,
            Some("ValidationException"),
            "The request was rejected because the training job is in status Completed.",
        );
        assert_eq!(t.result, Effect::AlreadyInactive);
        let t = Taken::from_error(
            Kind::NotebookInstance,
            Action::Stop,
            Some("ValidationException"),
            "Status (Pending) not in ([InService]). Unable to transition to (Stopping) for Notebook Instance (arn).",
        );
        assert_eq!(t.result, Effect::Deferred);
        let t = Taken::from_error(
            Kind::Model,
            Action::Delete,
            Some("ValidationException"),
            "Could not find model \"arn\".",
        );
        assert_eq!(t.result, Effect::AlreadyInactive);
        let t = Taken::from_error(
            Kind::Model,
            Action::Delete,
            Some("AccessDeniedException"),
            "User is not authorized to perform: sagemaker:DeleteModel",
        );
        assert_eq!(t.result, Effect::Failed);
        assert!(t.detail.starts_with("AccessDeniedException: User"));
    }

    #[test]
    fn findings_resolve_when_the_resource_is_gone() {
        assert!(Taken::done(Action::Delete).resolves(Kind::Model));
        assert!(Taken::done(Action::Stop).resolves(Kind::TrainingJob));
        assert!(!Taken::done(Action::Stop).resolves(Kind::NotebookInstance));
        assert!(!Taken::not_taken("x").resolves(Kind::Model));
    }
}
