//! The one lifecycle of a Studio resource (a domain, a user profile): wait for `InService` after a
//! create or update, tear down step by step on delete, and discard a half-made resource that went
//! `Failed`. Each provider says only what differs (how to describe, what lives inside, how to delete)
//! by implementing [`Resource`] for a small handle; the state rules are here, once.

use std::future::Future;

use aws_sdk_sagemaker::Client;

use super::ensure_owned;
use crate::Error;
use crate::cfn::Request;

/// A Studio resource's status, as SageMaker spells it for domains and user profiles alike
/// (`DomainStatus`, `UserProfileStatus`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    InService,
    Updating,
    Failed,
    Deleting,
    DeleteFailed,
    /// Anything else SageMaker reports (`Update_Failed`, or a status newer than this code).
    Other(String),
}

impl Status {
    /// From SageMaker's spelling (the SDK enums' `as_str()`).
    pub fn of(status: &str) -> Status {
        match status {
            "Pending" => Status::Pending,
            "InService" => Status::InService,
            "Updating" => Status::Updating,
            "Failed" => Status::Failed,
            "Deleting" => Status::Deleting,
            "Delete_Failed" => Status::DeleteFailed,
            other => Status::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Pending => "Pending",
            Status::InService => "InService",
            Status::Updating => "Updating",
            Status::Failed => "Failed",
            Status::Deleting => "Deleting",
            Status::DeleteFailed => "Delete_Failed",
            Status::Other(s) => s,
        }
    }
}

/// What the lifecycle reads from a description.
pub struct Facts<'a> {
    pub arn: &'a str,
    /// `None` while SageMaker reports no status yet (treated as still being made).
    pub status: Option<Status>,
    pub failure_reason: Option<&'a str>,
}

/// One Studio resource, as its provider knows how to reach it.
pub trait Resource: Sync {
    /// What `Describe…` returns.
    type Description: Send + Sync;

    /// How errors and logs name it, e.g. "domain d-…" or "user profile alice of domain d-…".
    fn label(&self) -> String;

    fn client(&self) -> &Client;

    /// The resource as it is now; `None` when it does not exist.
    fn describe(&self) -> impl Future<Output = Result<Option<Self::Description>, Error>> + Send;

    fn facts(description: &Self::Description) -> Facts<'_>;

    /// Starts deleting what lives inside (apps, spaces, profiles); how many are still there.
    fn delete_contents(&self) -> impl Future<Output = Result<usize, Error>> + Send;

    /// Starts deleting the resource itself. `failed`: it is a half-made resource of ours that went
    /// `Failed` and never served anyone (nothing in it is kept).
    fn delete(&self, failed: bool) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Where a step left things.
#[derive(Debug)]
pub enum Step<T> {
    /// Finished, with what was found.
    Done(T),
    /// Still on its way: poll again.
    Again,
}

/// The resource's description once its owner tag is verified for this request; `None` when it is
/// gone. A resource this stack's resource did not make is an error (see [`ensure_owned`]).
pub async fn owned<R: Resource>(
    resource: &R,
    request: &Request,
) -> Result<Option<R::Description>, Error> {
    let Some(description) = resource.describe().await? else {
        return Ok(None);
    };
    let arn = R::facts(&description).arn;
    ensure_owned(resource.client(), arn, request, &resource.label()).await?;
    Ok(Some(description))
}

/// The error of an Update whose resource was deleted outside CloudFormation.
pub fn deleted_outside(label: &str) -> Error {
    Error::other(format!(
        "{label} no longer exists: it was deleted outside CloudFormation; remove the resource from \
         the template, deploy, then add it back to create a new one"
    ))
}

/// One look while waiting for `InService`. Any other settled status is an error with SageMaker's
/// reason; when the resource is a `replacement` that went `Failed`, it is discarded on the way (the
/// failed Update keeps the old physical id, so CloudFormation would never delete it).
pub async fn wait<R: Resource>(
    resource: &R,
    replacement: bool,
) -> Result<Step<R::Description>, Error> {
    let label = resource.label();
    let Some(description) = resource.describe().await? else {
        return Err(Error::other(format!(
            "{label} disappeared while waiting for it to be InService (deleted outside CloudFormation?)"
        )));
    };
    let facts = R::facts(&description);
    match facts.status {
        Some(Status::InService) => Ok(Step::Done(description)),
        None | Some(Status::Pending | Status::Updating) => Ok(Step::Again),
        Some(status) => {
            let mut reason = format!(
                "SageMaker {label} is {}: {}",
                status.as_str(),
                facts.failure_reason.unwrap_or("no failure reason given")
            );
            if replacement && status == Status::Failed {
                reason.push_str(&discard(resource).await);
            }
            Err(Error::other(reason))
        }
    }
}

/// Starts deleting a half-made resource of ours that went `Failed`. Returns what to add to the
/// Reason.
pub async fn discard<R: Resource>(resource: &R) -> String {
    let label = resource.label();
    match resource.delete(true).await {
        Ok(()) => {
            tracing::info!(resource = %label, "deleting a failed resource");
            format!("; the failed {label} is being deleted")
        }
        Err(err) => {
            tracing::warn!(resource = %label, error = %err, "could not delete a failed resource");
            format!(
                "; the failed {label} could not be deleted ({err}): delete it in the SageMaker console"
            )
        }
    }
}

/// One teardown step: what lives inside first, then the resource. Repeated on every poll until the
/// resource is gone, so a retried or continued Delete picks up where reality is.
pub async fn teardown<R: Resource>(resource: &R) -> Result<Step<()>, Error> {
    if resource.delete_contents().await? > 0 {
        return Ok(Step::Again);
    }
    let Some(description) = resource.describe().await? else {
        return Ok(Step::Done(()));
    };
    let facts = R::facts(&description);
    let label = resource.label();
    match facts.status {
        Some(Status::Deleting) => Ok(Step::Again),
        Some(Status::DeleteFailed) => Err(Error::other(format!(
            "SageMaker could not delete {label} (Delete_Failed): {}",
            facts.failure_reason.unwrap_or("no failure reason given")
        ))),
        _ => {
            match resource.delete(false).await {
                Ok(()) => tracing::info!(resource = %label, "deleting"),
                // Something appeared meanwhile (a user started an app): the next step deletes it.
                Err(err) if err.code() == Some("ResourceInUse") => {
                    tracing::info!(resource = %label, error = %err, "in use: retrying on the next step");
                }
                Err(err) => return Err(err),
            }
            Ok(Step::Again)
        }
    }
}

#[cfg(test)]
mod tests {
    //! The state rules against a fake resource (no AWS): the providers' harness tests cover the same
    //! flows against the twin.
    use std::sync::Mutex;

    use super::*;

    /// A resource whose describe returns `status` (`None`: gone) and whose deletions are recorded.
    struct Fake {
        client: Client,
        status: Option<&'static str>,
        contents: usize,
        delete_error: Option<&'static str>,
        deletes: Mutex<Vec<bool>>,
    }

    fn fake(status: Option<&'static str>) -> Fake {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        Fake {
            client: Client::new(&config),
            status,
            contents: 0,
            delete_error: None,
            deletes: Mutex::new(vec![]),
        }
    }

    impl Resource for Fake {
        type Description = &'static str;
        fn label(&self) -> String {
            "domain d-fake".into()
        }
        fn client(&self) -> &Client {
            &self.client
        }
        async fn describe(&self) -> Result<Option<&'static str>, Error> {
            Ok(self.status)
        }
        fn facts(status: &&'static str) -> Facts<'static> {
            Facts {
                arn: "arn:aws:sagemaker:us-east-1:123456789012:domain/d-fake",
                status: (!status.is_empty()).then(|| Status::of(status)),
                failure_reason: Some("the reason"),
            }
        }
        async fn delete_contents(&self) -> Result<usize, Error> {
            Ok(self.contents)
        }
        async fn delete(&self, failed: bool) -> Result<(), Error> {
            self.deletes.lock().unwrap().push(failed);
            match self.delete_error {
                Some(code) => Err(Error::Aws {
                    operation: "sagemaker:DeleteDomain",
                    code: Some(code.into()),
                    message: format!("{code}: no"),
                }),
                None => Ok(()),
            }
        }
    }

    #[tokio::test]
    async fn waiting_ends_in_service_goes_on_while_made_and_fails_otherwise() {
        assert!(matches!(
            wait(&fake(Some("InService")), false).await,
            Ok(Step::Done(_))
        ));
        for status in ["Pending", "Updating", ""] {
            assert!(matches!(
                wait(&fake(Some(status)), false).await,
                Ok(Step::Again)
            ));
        }
        let failed = fake(Some("Update_Failed"));
        let err = wait(&failed, true).await.unwrap_err().to_string();
        assert_eq!(err, "SageMaker domain d-fake is Update_Failed: the reason");
        assert!(
            failed.deletes.lock().unwrap().is_empty(),
            "only Failed is discarded"
        );
        let gone = wait(&fake(None), false).await.unwrap_err().to_string();
        assert!(gone.contains("disappeared"), "{gone}");
    }

    #[tokio::test]
    async fn only_a_failed_replacement_is_discarded() {
        let kept = fake(Some("Failed"));
        assert!(wait(&kept, false).await.is_err());
        assert!(kept.deletes.lock().unwrap().is_empty());
        let replacement = fake(Some("Failed"));
        let err = wait(&replacement, true).await.unwrap_err().to_string();
        assert!(
            err.ends_with("; the failed domain d-fake is being deleted"),
            "{err}"
        );
        assert_eq!(*replacement.deletes.lock().unwrap(), [true]);
    }

    #[tokio::test]
    async fn teardown_empties_first_then_deletes_once_and_waits_until_gone() {
        let full = Fake {
            contents: 2,
            ..fake(Some("InService"))
        };
        assert!(matches!(teardown(&full).await, Ok(Step::Again)));
        assert!(full.deletes.lock().unwrap().is_empty());
        let empty = fake(Some("InService"));
        assert!(matches!(teardown(&empty).await, Ok(Step::Again)));
        assert_eq!(*empty.deletes.lock().unwrap(), [false]);
        let deleting = fake(Some("Deleting"));
        assert!(matches!(teardown(&deleting).await, Ok(Step::Again)));
        assert!(deleting.deletes.lock().unwrap().is_empty());
        assert!(matches!(teardown(&fake(None)).await, Ok(Step::Done(()))));
        let stuck = teardown(&fake(Some("Delete_Failed")))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            stuck,
            "SageMaker could not delete domain d-fake (Delete_Failed): the reason"
        );
    }

    #[tokio::test]
    async fn teardown_retries_in_use_and_fails_on_anything_else() {
        let busy = Fake {
            delete_error: Some("ResourceInUse"),
            ..fake(Some("InService"))
        };
        assert!(matches!(teardown(&busy).await, Ok(Step::Again)));
        let denied = Fake {
            delete_error: Some("AccessDeniedException"),
            ..fake(Some("InService"))
        };
        assert!(teardown(&denied).await.is_err());
    }

    #[test]
    fn statuses_read_as_sagemaker_spells_them() {
        for s in [
            "Pending",
            "InService",
            "Updating",
            "Failed",
            "Deleting",
            "Delete_Failed",
            "Update_Failed",
        ] {
            assert_eq!(Status::of(s).as_str(), s);
        }
        assert_eq!(Status::of("Delete_Failed"), Status::DeleteFailed);
        assert_eq!(
            Status::of("Update_Failed"),
            Status::Other("Update_Failed".into())
        );
    }
}
