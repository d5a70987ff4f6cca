//! SageMaker Studio ownership and teardown, shared by `studio-domain` and `studio-user-profile`;
//! their common lifecycle (wait, teardown, discard) is [`lifecycle`].
//!
//! Each function here is one *step*: it looks at what exists now, starts the deletions that are not
//! started yet (all at once: N apps take about one app's deletion time, not N), and reports how many
//! resources are still on their way out. Callers repeat the step on every poll until nothing remains,
//! so a retried or continued request simply picks up where reality is.

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    AppStatus, SharingType, SpaceDetails, SpaceStatus, UserProfileStatus,
};
use futures_util::StreamExt;
use futures_util::stream;

pub mod lifecycle;
pub mod settings;

use crate::Error;
use crate::cfn::Request;
use crate::cfn::props::Tag;

/// Tag that marks a Studio resource as made by one stack's logical resource (idempotent Create).
pub const OWNER_TAG: &str = "secure-mlops:owner";

/// The owner tag's value for a request: `<StackId>/<LogicalResourceId>`.
pub fn owner(request: &Request) -> String {
    format!("{}/{}", request.stack_id, request.logical_resource_id)
}

fn sm_tag(key: &str, value: &str) -> aws_sdk_sagemaker::types::Tag {
    aws_sdk_sagemaker::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
}

/// The tags to create a resource with: the user's plus our owner tag.
pub fn tags_with_owner(tags: &[Tag], request: &Request) -> Vec<aws_sdk_sagemaker::types::Tag> {
    tags.iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .chain([(OWNER_TAG, owner(request).as_str())])
        .map(|(k, v)| {
            aws_sdk_sagemaker::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect()
}

/// True when the resource at `arn` carries our owner tag for `request`.
pub async fn is_owned(sm: &Client, arn: &str, request: &Request) -> Result<bool, Error> {
    let owner = owner(request);
    let tags = sm
        .list_tags()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| Error::aws("sagemaker:ListTags", e))?;
    Ok(tags
        .tags()
        .iter()
        .any(|t| t.key() == Some(OWNER_TAG) && t.value() == Some(owner.as_str())))
}

/// Refuses to update or delete a resource that this request's stack resource did not make: `arn` must
/// carry our owner tag with this request's value (`<StackId>/<LogicalResourceId>`). `what` names the
/// resource in the error (e.g. "domain d-abc").
pub async fn ensure_owned(
    sm: &Client,
    arn: &str,
    request: &Request,
    what: &str,
) -> Result<(), Error> {
    if is_owned(sm, arn, request).await? {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{what} does not carry the tag {OWNER_TAG}={}: it was not made by this stack's resource {}, so \
         it is neither updated nor deleted (if it must leave the stack, remove the resource with \
         DeletionPolicy: Retain)",
        owner(request),
        request.logical_resource_id
    )))
}

/// Brings the user tags of `arn` from `old` to `new` (our owner tag is left alone).
pub async fn sync_tags(sm: &Client, arn: &str, old: &[Tag], new: &[Tag]) -> Result<(), Error> {
    if old == new {
        return Ok(());
    }
    let removed: Vec<String> = old
        .iter()
        .filter(|t| !new.iter().any(|n| n.key == t.key))
        .map(|t| t.key.clone())
        .collect();
    if !removed.is_empty() {
        sm.delete_tags()
            .resource_arn(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:DeleteTags", e))?;
    }
    let added: Vec<_> = new.iter().map(|t| sm_tag(&t.key, &t.value)).collect();
    if !added.is_empty() {
        sm.add_tags()
            .resource_arn(arn)
            .set_tags(Some(added))
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:AddTags", e))?;
    }
    Ok(())
}

/// Deletions one step keeps in flight at once. A small domain's N apps still take about one
/// deletion's time (N ≤ this), and a domain with hundreds of users does not run into SageMaker's
/// request rate (what is left waits for a free slot, not for the SDK's throttling retries).
pub const MAX_CONCURRENT_DELETES: usize = 16;

/// Runs `calls` with at most [`MAX_CONCURRENT_DELETES`] in flight; results in completion order.
async fn bounded<F: std::future::Future>(calls: Vec<F>) -> Vec<F::Output> {
    stream::iter(calls)
        .buffer_unordered(MAX_CONCURRENT_DELETES)
        .collect()
        .await
}

/// Whose apps or spaces a step covers.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Everything in the domain.
    Domain,
    /// One user's own apps / the private spaces it owns.
    User(&'a str),
}

fn tolerate_gone<E, R>(
    operation: &'static str,
    result: Result<
        R,
        aws_sdk_sagemaker::error::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >,
) -> Result<(), Error>
where
    E: aws_sdk_sagemaker::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(err) => {
            let err = Error::aws(operation, err);
            // Already gone, or already being deleted / blocked for a moment: the next step sees it.
            if err.is_not_found() || err.code() == Some("ResourceInUse") {
                tracing::info!(error = %err, "retrying on the next step");
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

/// Starts deleting the apps in `scope` (user apps, and the apps of the spaces in scope) that are not
/// deleted or deleting yet. Returns how many apps are not `Deleted` yet.
pub async fn delete_apps(sm: &Client, domain: &str, scope: Scope<'_>) -> Result<usize, Error> {
    let spaces: Vec<String> = match scope {
        Scope::Domain => vec![],
        Scope::User(user) => private_spaces(sm, domain, user)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect(),
    };
    let pages: Vec<_> = sm
        .list_apps()
        .domain_id_equals(domain)
        .into_paginator()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| Error::aws("sagemaker:ListApps", e))?;
    let apps: Vec<_> = pages
        .iter()
        .flat_map(|p| p.apps())
        .filter(|a| match scope {
            Scope::Domain => true,
            Scope::User(user) => {
                a.user_profile_name() == Some(user)
                    || a.space_name()
                        .is_some_and(|s| spaces.iter().any(|x| x == s))
            }
        })
        .filter(|a| a.status() != Some(&AppStatus::Deleted))
        .collect();
    let to_delete: Vec<_> = apps
        .iter()
        .filter(|a| a.status() != Some(&AppStatus::Deleting))
        .map(|a| {
            sm.delete_app()
                .domain_id(domain)
                .set_user_profile_name(a.user_profile_name().map(str::to_owned))
                .set_space_name(a.space_name().map(str::to_owned))
                .set_app_type(a.app_type().cloned())
                .set_app_name(a.app_name().map(str::to_owned))
                .send()
        })
        .collect();
    if !to_delete.is_empty() {
        tracing::info!(domain, apps = to_delete.len(), "deleting apps");
    }
    for result in bounded(to_delete).await {
        tolerate_gone("sagemaker:DeleteApp", result)?;
    }
    Ok(apps.len())
}

/// Every space of the domain (all pages).
async fn list_spaces(sm: &Client, domain: &str) -> Result<Vec<SpaceDetails>, Error> {
    let pages: Vec<_> = sm
        .list_spaces()
        .domain_id_equals(domain)
        .into_paginator()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| Error::aws("sagemaker:ListSpaces", e))?;
    Ok(pages.iter().flat_map(|p| p.spaces()).cloned().collect())
}

/// The spaces `user` owns, with their sharing type.
async fn owned_spaces(
    sm: &Client,
    domain: &str,
    user: &str,
) -> Result<Vec<(String, Option<SharingType>)>, Error> {
    Ok(list_spaces(sm, domain)
        .await?
        .iter()
        .filter(|s| {
            s.ownership_settings_summary()
                .and_then(|o| o.owner_user_profile_name())
                == Some(user)
        })
        .filter_map(|s| {
            Some((
                s.space_name()?.to_owned(),
                s.space_sharing_settings_summary()
                    .and_then(|x| x.sharing_type())
                    .cloned(),
            ))
        })
        .collect())
}

/// Private spaces (or spaces without sharing settings) owned by `user`.
async fn private_spaces(
    sm: &Client,
    domain: &str,
    user: &str,
) -> Result<Vec<(String, Option<SharingType>)>, Error> {
    Ok(owned_spaces(sm, domain, user)
        .await?
        .into_iter()
        .filter(|(_, t)| t.as_ref().is_none_or(|t| *t == SharingType::Private))
        .collect())
}

/// Shared spaces `user` owns: they hold other people's work, so we never delete them for a user.
pub async fn shared_spaces_owned(
    sm: &Client,
    domain: &str,
    user: &str,
) -> Result<Vec<String>, Error> {
    Ok(owned_spaces(sm, domain, user)
        .await?
        .into_iter()
        .filter(|(_, t)| *t == Some(SharingType::Shared))
        .map(|(n, _)| n)
        .collect())
}

/// Starts deleting the spaces in `scope` (call once their apps are gone). Returns how many remain.
pub async fn delete_spaces(sm: &Client, domain: &str, scope: Scope<'_>) -> Result<usize, Error> {
    let names: Vec<String> = match scope {
        Scope::User(user) => private_spaces(sm, domain, user)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect(),
        Scope::Domain => list_spaces(sm, domain)
            .await?
            .iter()
            .filter(|s| s.status() != Some(&SpaceStatus::Deleting))
            .filter_map(|s| s.space_name().map(str::to_owned))
            .collect(),
    };
    let calls: Vec<_> = names
        .iter()
        .map(|n| sm.delete_space().domain_id(domain).space_name(n).send())
        .collect();
    for result in bounded(calls).await {
        tolerate_gone("sagemaker:DeleteSpace", result)?;
    }
    // Count what is still listed (Deleting included).
    let left = list_spaces(sm, domain)
        .await?
        .iter()
        .filter(|s| match scope {
            Scope::Domain => true,
            Scope::User(_) => s.space_name().is_some_and(|x| names.iter().any(|n| n == x)),
        })
        .count();
    Ok(left)
}

/// Starts deleting every user profile of the domain. Returns how many remain.
pub async fn delete_profiles(sm: &Client, domain: &str) -> Result<usize, Error> {
    let pages: Vec<_> = sm
        .list_user_profiles()
        .domain_id_equals(domain)
        .into_paginator()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| Error::aws("sagemaker:ListUserProfiles", e))?;
    let profiles: Vec<_> = pages.iter().flat_map(|p| p.user_profiles()).collect();
    if let Some(failed) = profiles
        .iter()
        .find(|p| p.status() == Some(&UserProfileStatus::DeleteFailed))
    {
        return Err(Error::other(format!(
            "user profile {} of domain {domain} is Delete_Failed; see it in the SageMaker console",
            failed.user_profile_name().unwrap_or("?")
        )));
    }
    let calls: Vec<_> = profiles
        .iter()
        .filter(|p| p.status() != Some(&UserProfileStatus::Deleting))
        .filter_map(|p| p.user_profile_name())
        .map(|n| {
            sm.delete_user_profile()
                .domain_id(domain)
                .user_profile_name(n)
                .send()
        })
        .collect();
    for result in bounded(calls).await {
        tolerate_gone("sagemaker:DeleteUserProfile", result)?;
    }
    Ok(profiles.len())
}
