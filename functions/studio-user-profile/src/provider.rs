//! The `Custom::StudioUserProfile` provider. Physical id = the profile ARN
//! (`arn:…:user-profile/<domain>/<name>`).

use aws_sdk_sagemaker::operation::describe_user_profile::DescribeUserProfileOutput;
use aws_sdk_sagemaker::types::UserProfileStatus;
use serde::{Deserialize, Serialize};
use shared::Error;
use shared::cfn::{Ctx, Done, Outcome, Provider, ProviderResult, RequestType, poll_interval};
use shared::studio::lifecycle::{self, Facts, Resource, Status, Step};
use shared::studio::{
    Scope, delete_apps, delete_spaces, is_owned, shared_spaces_owned, sync_tags, tags_with_owner,
};

use crate::properties::Properties;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "Phase")]
pub enum State {
    Waiting {
        domain_id: String,
        name: String,
        arn: String,
        polls: u32,
    },
    Deleting {
        domain_id: String,
        name: String,
        polls: u32,
    },
}

pub struct StudioUserProfile {
    sm: aws_sdk_sagemaker::Client,
}

/// (domain id, profile name) from a profile ARN.
fn parse_arn(arn: &str) -> Option<(String, String)> {
    let path = arn.split_once(":user-profile/")?.1;
    let (domain, name) = path.split_once('/')?;
    Some((domain.to_owned(), name.to_owned()))
}

impl StudioUserProfile {
    /// The provider with its clients, built once per cold start.
    pub fn new(config: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(StudioUserProfile {
            sm: shared::client!(aws_sdk_sagemaker, config),
        })
    }

    /// One profile as the shared Studio lifecycle reaches it.
    fn profile<'a>(&'a self, domain: &'a str, name: &'a str) -> Profile<'a> {
        Profile {
            sm: &self.sm,
            domain,
            name,
        }
    }

    async fn create_profile(&self, ctx: &Ctx<'_>, props: &Properties) -> ProviderResult<State> {
        let (domain, name) = (props.domain_id.as_str(), props.user_profile_name.as_str());
        let profile = self.profile(domain, name);
        if let Some(existing) = profile.describe().await? {
            let arn = existing.user_profile_arn().unwrap_or_default();
            let owned = is_owned(&self.sm, arn, ctx.request).await?;
            if owned && existing.status() == Some(&UserProfileStatus::Failed) {
                // Never adopted: an earlier attempt's profile that failed holds the name.
                return Err(Error::other(format!(
                    "user profile {name} of domain {domain} was left Failed by an earlier attempt{}; retry",
                    lifecycle::discard(&profile).await
                )));
            }
            if owned
                && !matches!(
                    existing.status(),
                    Some(UserProfileStatus::Deleting | UserProfileStatus::DeleteFailed)
                )
            {
                tracing::info!(
                    domain,
                    name,
                    "adopting the profile a previous attempt created"
                );
                return self
                    .wait(ctx, domain.to_owned(), name.to_owned(), arn.to_owned(), 0)
                    .await;
            }
            return Err(Error::invalid(format!(
                "UserProfileName: {name} already exists in domain {domain} and was not created by this \
                 resource; choose another name"
            )));
        }
        let created = self
            .sm
            .create_user_profile()
            .domain_id(domain)
            .user_profile_name(name)
            .user_settings(props.settings()?)
            .set_single_sign_on_user_identifier(props.single_sign_on_user_identifier.clone())
            .set_single_sign_on_user_value(props.single_sign_on_user_value.clone())
            .set_tags(Some(tags_with_owner(&props.tags, ctx.request)))
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:CreateUserProfile", e))?;
        let arn = created.user_profile_arn().unwrap_or_default().to_owned();
        Ok(Outcome::InProgress {
            state: State::Waiting {
                domain_id: domain.to_owned(),
                name: name.to_owned(),
                arn,
                polls: 0,
            },
            poll_after: poll_interval(0),
        })
    }

    async fn wait(
        &self,
        ctx: &Ctx<'_>,
        domain_id: String,
        name: String,
        arn: String,
        polls: u32,
    ) -> ProviderResult<State> {
        // Waiting for another profile than the physical id names: a replacement.
        let replacement = ctx.request.request_type == RequestType::Update
            && ctx
                .request
                .physical_resource_id
                .as_deref()
                .and_then(parse_arn)
                != Some((domain_id.clone(), name.clone()));
        let profile = self.profile(&domain_id, &name);
        let Step::Done(p) = lifecycle::wait(&profile, replacement).await? else {
            return Ok(Outcome::InProgress {
                state: State::Waiting {
                    domain_id,
                    name,
                    arn,
                    polls: polls + 1,
                },
                poll_after: poll_interval(polls + 1),
            });
        };
        let arn = p.user_profile_arn().unwrap_or_default();
        Ok(Done::new(arn)
            .with("UserProfileArn", arn)
            .with("UserProfileName", name.as_str())
            .with("DomainId", domain_id.as_str())
            .with(
                "HomeEfsFileSystemUid",
                p.home_efs_file_system_uid().unwrap_or_default(),
            )
            .into())
    }

    /// One teardown step (see [`lifecycle::teardown`]).
    async fn teardown(&self, domain_id: String, name: String, polls: u32) -> ProviderResult<State> {
        match lifecycle::teardown(&self.profile(&domain_id, &name)).await? {
            Step::Done(()) => Ok(Done::new(name.as_str()).into()),
            Step::Again => Ok(Outcome::InProgress {
                state: State::Deleting {
                    domain_id,
                    name,
                    polls: polls + 1,
                },
                poll_after: poll_interval(polls + 1),
            }),
        }
    }
}

/// One user profile, as [`lifecycle`] sees it.
struct Profile<'a> {
    sm: &'a aws_sdk_sagemaker::Client,
    domain: &'a str,
    name: &'a str,
}

impl Resource for Profile<'_> {
    type Description = DescribeUserProfileOutput;

    fn label(&self) -> String {
        format!("user profile {} of domain {}", self.name, self.domain)
    }

    fn client(&self) -> &aws_sdk_sagemaker::Client {
        self.sm
    }

    async fn describe(&self) -> Result<Option<DescribeUserProfileOutput>, Error> {
        let result = self
            .sm
            .describe_user_profile()
            .domain_id(self.domain)
            .user_profile_name(self.name)
            .send()
            .await;
        shared::error::found("sagemaker:DescribeUserProfile", result)
    }

    fn facts(p: &DescribeUserProfileOutput) -> Facts<'_> {
        Facts {
            arn: p.user_profile_arn().unwrap_or_default(),
            status: p.status().map(|s| Status::of(s.as_str())),
            failure_reason: p.failure_reason(),
        }
    }

    /// The user's apps (and those of its private spaces), then its private spaces.
    async fn delete_contents(&self) -> Result<usize, Error> {
        let user = Scope::User(self.name);
        let apps = delete_apps(self.sm, self.domain, user).await?;
        if apps > 0 {
            return Ok(apps);
        }
        delete_spaces(self.sm, self.domain, user).await
    }

    /// Shared spaces the user owns hold other users' work: a profile that owns one is not deleted.
    async fn delete(&self, failed: bool) -> Result<(), Error> {
        if !failed {
            let shared = shared_spaces_owned(self.sm, self.domain, self.name).await?;
            if !shared.is_empty() {
                return Err(Error::other(format!(
                    "user profile {} owns shared space(s) {}: they hold other users' work and are \
                     not deleted automatically; delete them or give them another owner, then retry",
                    self.name,
                    shared.join(", ")
                )));
            }
        }
        self.sm
            .delete_user_profile()
            .domain_id(self.domain)
            .user_profile_name(self.name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::aws("sagemaker:DeleteUserProfile", e))
    }
}

impl Provider for StudioUserProfile {
    type Properties = Properties;
    type State = State;

    async fn create(&self, ctx: &Ctx<'_>, props: Properties) -> ProviderResult<State> {
        self.create_profile(ctx, &props).await
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        physical_id: &str,
        props: Properties,
        old: Option<Properties>,
    ) -> ProviderResult<State> {
        let replace = old
            .as_ref()
            .map(|o| props.replacement_fields(o))
            .unwrap_or_default();
        if replace == ["SingleSignOnUserValue"] {
            return Err(Error::invalid(
                "SingleSignOnUserValue cannot change in place and a replacement needs a new UserProfileName \
                 (the old profile still holds the name until CloudFormation deletes it)",
            ));
        }
        // The profile this resource stands for is its physical id, whatever the old properties say
        // (they may be missing or no longer parse): naming another profile is a replacement.
        let (domain, name) = (props.domain_id.as_str(), props.user_profile_name.as_str());
        let current = parse_arn(physical_id);
        let renamed = current
            .as_ref()
            .is_none_or(|(d, n)| d != domain || n != name);
        if !replace.is_empty() || renamed {
            tracing::info!(fields = ?replace, renamed, "replacing the user profile");
            return self.create_profile(ctx, &props).await;
        }
        let profile = self.profile(domain, name);
        if lifecycle::owned(&profile, ctx.request).await?.is_none() {
            return Err(lifecycle::deleted_outside(&profile.label()));
        }
        self.sm
            .update_user_profile()
            .domain_id(domain)
            .user_profile_name(name)
            .user_settings(props.settings()?)
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:UpdateUserProfile", e))?;
        let old_tags = old.map(|o| o.tags).unwrap_or_default();
        sync_tags(&self.sm, physical_id, &old_tags, &props.tags).await?;
        self.wait(
            ctx,
            domain.to_owned(),
            name.to_owned(),
            physical_id.to_owned(),
            0,
        )
        .await
    }

    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        physical_id: &str,
        _props: Option<Properties>,
    ) -> ProviderResult<State> {
        let Some((domain_id, name)) = parse_arn(physical_id) else {
            tracing::info!(physical_id, "not a user profile ARN: nothing to delete");
            return Ok(Done::new(physical_id).into());
        };
        if lifecycle::owned(&self.profile(&domain_id, &name), ctx.request)
            .await?
            .is_none()
        {
            tracing::info!(physical_id, "the user profile is already gone");
            return Ok(Done::new(physical_id).into());
        }
        self.teardown(domain_id, name, 0).await
    }

    async fn poll(&self, ctx: &Ctx<'_>, state: State) -> ProviderResult<State> {
        match state {
            State::Waiting {
                domain_id,
                name,
                arn,
                polls,
            } => self.wait(ctx, domain_id, name, arn, polls).await,
            State::Deleting {
                domain_id,
                name,
                polls,
            } => self.teardown(domain_id, name, polls).await,
        }
    }

    fn physical_id(state: &State) -> Option<String> {
        match state {
            State::Waiting { arn, .. } if !arn.is_empty() => Some(arn.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_parse() {
        assert_eq!(
            parse_arn("arn:aws:sagemaker:us-east-1:123456789012:user-profile/d-abc/alice"),
            Some(("d-abc".into(), "alice".into()))
        );
        assert_eq!(parse_arn("secure-mlops-failed-create-x"), None);
    }
}
