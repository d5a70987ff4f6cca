//! The `Custom::StudioDomain` provider. Creation and update end with a wait for `InService`; deletion
//! is a series of teardown steps (apps → spaces → user profiles → domain → leftovers), each repeated on
//! every poll until done. Long waits continue in a fresh invocation (the framework's continuation).

use aws_sdk_sagemaker::operation::describe_domain::DescribeDomainOutput;
use aws_sdk_sagemaker::types::{
    AppNetworkAccessType, AuthMode as SmAuthMode, DomainStatus, RetentionPolicy, RetentionType,
};
use serde::{Deserialize, Serialize};
use shared::Error;
use shared::cfn::props::field;
use shared::cfn::{Ctx, Done, Outcome, Provider, ProviderResult, RequestType, poll_interval};
use shared::ids::VpcId;
use shared::studio::lifecycle::{self, Facts, Resource, Status, Step};
use shared::studio::{
    Scope, delete_apps, delete_profiles, delete_spaces, is_owned, sync_tags, tags_with_owner,
};

use crate::network::{delete_home_efs, delete_nfs_groups};
use crate::projects::Projects;
use crate::properties::{AuthMode, Identity, NetworkAccess, Properties, Retention};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "Phase")]
pub enum State {
    /// Waiting for the domain to be InService (after create or update).
    Waiting { domain_id: String, polls: u32 },
    /// Tearing the domain down.
    Deleting {
        domain_id: String,
        vpc_id: String,
        retention: Retention,
        home_efs: Option<String>,
        polls: u32,
    },
}

pub struct StudioDomain {
    sm: aws_sdk_sagemaker::Client,
    sc: aws_sdk_servicecatalog::Client,
    ec2: aws_sdk_ec2::Client,
    efs: aws_sdk_efs::Client,
}

fn in_progress(state: State, polls: u32) -> ProviderResult<State> {
    Ok(Outcome::InProgress {
        state,
        poll_after: poll_interval(polls),
    })
}

impl StudioDomain {
    /// The provider with its clients, built once per cold start.
    pub fn new(config: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(StudioDomain {
            sm: shared::client!(aws_sdk_sagemaker, config),
            sc: shared::client!(aws_sdk_servicecatalog, config),
            ec2: shared::client!(aws_sdk_ec2, config),
            efs: shared::client!(aws_sdk_efs, config),
        })
    }

    /// A domain this resource already made that it may adopt, other than `except`: same name, our
    /// owner tag, not `Failed` / `Delete_Failed` / `Deleting`, and the same immutable settings
    /// ([`Identity`]) as asked for.
    async fn find_existing(
        &self,
        ctx: &Ctx<'_>,
        wanted: &Identity,
        except: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let name = wanted.domain_name.as_str();
        let pages: Vec<_> = self
            .sm
            .list_domains()
            .into_paginator()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| Error::aws("sagemaker:ListDomains", e))?;
        for d in pages.iter().flat_map(|p| p.domains()) {
            let (Some(id), Some(arn)) = (d.domain_id(), d.domain_arn()) else {
                continue;
            };
            if d.domain_name() != Some(name)
                || Some(id) == except
                || matches!(
                    d.status(),
                    Some(
                        DomainStatus::Deleting | DomainStatus::Failed | DomainStatus::DeleteFailed
                    )
                )
            {
                continue;
            }
            if !is_owned(&self.sm, arn, ctx.request).await? {
                continue;
            }
            let described = self
                .sm
                .describe_domain()
                .domain_id(id)
                .send()
                .await
                .map_err(|e| Error::aws("sagemaker:DescribeDomain", e))?;
            let differences = identity_of(&described).differences(wanted);
            if differences.is_empty() {
                return Ok(Some(id.to_owned()));
            }
            tracing::info!(
                domain_id = id,
                ?differences,
                "not adopting an owned domain with other immutable settings"
            );
        }
        Ok(None)
    }

    /// One domain as the shared Studio lifecycle reaches it (its home file system kept).
    fn projects(&self) -> Projects<'_> {
        Projects {
            sm: &self.sm,
            sc: &self.sc,
        }
    }

    fn domain<'a>(&'a self, id: &'a str) -> Domain<'a> {
        Domain {
            sm: &self.sm,
            id,
            retention: Retention::Retain,
        }
    }

    /// Creates the domain (or adopts the one a previous attempt made) and starts waiting for it.
    async fn create_domain(
        &self,
        ctx: &Ctx<'_>,
        props: &Properties,
        except: Option<&str>,
    ) -> ProviderResult<State> {
        if let Some(id) = self.find_existing(ctx, &props.identity(), except).await? {
            tracing::info!(domain_id = %id, "adopting the domain a previous attempt created");
            if props.enable_projects
                && let Some(d) = self.domain(&id).describe().await?
            {
                let arn = d.domain_arn().unwrap_or_default();
                self.projects()
                    .enable(arn, &props.execution_roles()?)
                    .await?;
            }
            return in_progress(
                State::Waiting {
                    domain_id: id,
                    polls: 0,
                },
                0,
            );
        }
        let tags = tags_with_owner(&props.tags, ctx.request);
        let out = self
            .sm
            .create_domain()
            .domain_name(props.domain_name.as_str())
            .auth_mode(match props.auth_mode {
                AuthMode::Iam => SmAuthMode::Iam,
                AuthMode::Sso => SmAuthMode::Sso,
            })
            .default_user_settings(props.user_settings()?)
            .set_default_space_settings(props.space_settings()?)
            .set_domain_settings(props.domain_settings()?)
            .set_app_security_group_management(props.app_security_group_management())
            .set_tag_propagation(props.tag_propagation())
            .vpc_id(props.vpc_id.as_str())
            .set_subnet_ids(Some(props.subnet_ids.iter().map(|s| s.0.clone()).collect()))
            .app_network_access_type(network(props.app_network_access_type))
            .set_kms_key_id(props.kms_key_id.as_ref().map(|k| k.0.clone()))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:CreateDomain", e))?;
        let id = out
            .domain_id()
            .map(str::to_owned)
            .or_else(|| {
                out.domain_arn()
                    .and_then(|a| a.rsplit('/').next())
                    .map(str::to_owned)
            })
            .ok_or_else(|| Error::other("sagemaker:CreateDomain returned no domain id"))?;
        if props.enable_projects
            && let Some(arn) = out.domain_arn()
        {
            self.projects()
                .enable(arn, &props.execution_roles()?)
                .await?;
        }
        tracing::info!(domain_id = %id, "domain created; waiting for InService");
        in_progress(
            State::Waiting {
                domain_id: id,
                polls: 0,
            },
            0,
        )
    }

    async fn wait(&self, ctx: &Ctx<'_>, domain_id: String, polls: u32) -> ProviderResult<State> {
        let replacement = is_replacement(ctx, &domain_id);
        let Step::Done(d) = lifecycle::wait(&self.domain(&domain_id), replacement).await? else {
            return in_progress(
                State::Waiting {
                    domain_id,
                    polls: polls + 1,
                },
                polls + 1,
            );
        };
        let mut done = Done::new(&domain_id)
            .with("DomainId", domain_id.as_str())
            .with("DomainArn", d.domain_arn().unwrap_or_default())
            .with("Url", d.url().unwrap_or_default())
            .with(
                "HomeEfsFileSystemId",
                d.home_efs_file_system_id().unwrap_or_default(),
            );
        if let Some(sg) = d.security_group_id_for_domain_boundary() {
            done = done.with("SecurityGroupIdForDomainBoundary", sg);
        }
        Ok(done.into())
    }

    /// One teardown step (see [`lifecycle::teardown`]); once the domain is gone, with
    /// `HomeEfsFileSystem: Delete`, what SageMaker leaves behind goes too.
    async fn teardown(&self, state: State) -> ProviderResult<State> {
        let State::Deleting {
            domain_id,
            vpc_id,
            retention,
            home_efs,
            polls,
        } = state
        else {
            return Err(Error::other(
                "internal error: teardown without a Deleting state",
            ));
        };
        let next = || {
            in_progress(
                State::Deleting {
                    domain_id: domain_id.clone(),
                    vpc_id: vpc_id.clone(),
                    retention,
                    home_efs: home_efs.clone(),
                    polls: polls + 1,
                },
                polls + 1,
            )
        };
        let domain = Domain {
            retention,
            ..self.domain(&domain_id)
        };
        if let Step::Again = lifecycle::teardown(&domain).await? {
            return next();
        }
        if retention == Retention::Delete
            && !self
                .delete_leftovers(&domain_id, &vpc_id, home_efs.as_deref())
                .await?
        {
            return next();
        }
        Ok(Done::new(domain_id.as_str()).into())
    }

    /// Deletes the home file system and the NFS security groups SageMaker leaves behind for a
    /// deleted domain; false while the file system is still on its way out.
    async fn delete_leftovers(
        &self,
        domain_id: &str,
        vpc_id: &str,
        home_efs: Option<&str>,
    ) -> Result<bool, Error> {
        if let Some(fs) = home_efs
            && !delete_home_efs(&self.efs, fs).await?
        {
            return Ok(false);
        }
        let groups = delete_nfs_groups(&self.ec2, vpc_id, domain_id).await?;
        tracing::info!(
            domain_id,
            security_groups = groups,
            "removed what SageMaker left behind"
        );
        Ok(true)
    }
}

/// One domain, as [`lifecycle`] sees it.
struct Domain<'a> {
    sm: &'a aws_sdk_sagemaker::Client,
    id: &'a str,
    /// What a (non-failed) deletion does with the home file system.
    retention: Retention,
}

impl Resource for Domain<'_> {
    type Description = DescribeDomainOutput;

    fn label(&self) -> String {
        format!("domain {}", self.id)
    }

    fn client(&self) -> &aws_sdk_sagemaker::Client {
        self.sm
    }

    async fn describe(&self) -> Result<Option<DescribeDomainOutput>, Error> {
        let result = self.sm.describe_domain().domain_id(self.id).send().await;
        shared::error::found("sagemaker:DescribeDomain", result)
    }

    fn facts(d: &DescribeDomainOutput) -> Facts<'_> {
        Facts {
            arn: d.domain_arn().unwrap_or_default(),
            status: d.status().map(|s| Status::of(s.as_str())),
            failure_reason: d.failure_reason(),
        }
    }

    /// Apps, then spaces, then user profiles.
    async fn delete_contents(&self) -> Result<usize, Error> {
        let apps = delete_apps(self.sm, self.id, Scope::Domain).await?;
        if apps > 0 {
            return Ok(apps);
        }
        let spaces = delete_spaces(self.sm, self.id, Scope::Domain).await?;
        if spaces > 0 {
            return Ok(spaces);
        }
        delete_profiles(self.sm, self.id).await
    }

    /// A failed domain never served anyone: its new, empty home file system goes with it.
    async fn delete(&self, failed: bool) -> Result<(), Error> {
        let home = match (failed, self.retention) {
            (false, Retention::Retain) => RetentionType::Retain,
            _ => RetentionType::Delete,
        };
        tracing::info!(domain_id = self.id, ?home, "deleting the domain");
        let policy = RetentionPolicy::builder()
            .home_efs_file_system(home)
            .build();
        self.sm
            .delete_domain()
            .domain_id(self.id)
            .retention_policy(policy)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::aws("sagemaker:DeleteDomain", e))
    }
}

/// The immutable settings of an existing domain.
fn identity_of(d: &DescribeDomainOutput) -> Identity {
    Identity {
        domain_name: d.domain_name().unwrap_or_default().to_owned(),
        vpc_id: d.vpc_id().unwrap_or_default().to_owned(),
        auth_mode: d
            .auth_mode()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        kms_key_id: d.kms_key_id().map(str::to_owned),
    }
}

/// True while an Update waits for a domain other than the one its physical id names.
fn is_replacement(ctx: &Ctx<'_>, domain_id: &str) -> bool {
    ctx.request.request_type == RequestType::Update
        && ctx.request.physical_resource_id.as_deref() != Some(domain_id)
}

fn network(access: NetworkAccess) -> AppNetworkAccessType {
    match access {
        NetworkAccess::VpcOnly => AppNetworkAccessType::VpcOnly,
        NetworkAccess::PublicInternetOnly => AppNetworkAccessType::PublicInternetOnly,
    }
}

impl Provider for StudioDomain {
    type Properties = Properties;
    type State = State;

    async fn create(&self, ctx: &Ctx<'_>, props: Properties) -> ProviderResult<State> {
        self.create_domain(ctx, &props, None).await
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        physical_id: &str,
        props: Properties,
        old: Option<Properties>,
    ) -> ProviderResult<State> {
        // Replacement is decided against the domain the physical id names, not against the old
        // properties: a rollback after a failed replacement then ends on the original domain.
        let handle = self.domain(physical_id);
        let Some(domain) = lifecycle::owned(&handle, ctx.request).await? else {
            return Err(lifecycle::deleted_outside(&handle.label()));
        };
        // Only what differs from the old properties too (when they parse): a value SageMaker spells
        // differently from the template (a KMS alias shown as a key ARN) is no reason to replace.
        let wanted = props.identity();
        let mut replace = identity_of(&domain).differences(&wanted);
        if let Some(old) = &old {
            let changed = old.identity().differences(&wanted);
            replace.retain(|f| changed.contains(f));
        }
        if !replace.is_empty() {
            tracing::info!(fields = ?replace, "replacing the domain: these fields cannot change in place");
            return self.create_domain(ctx, &props, Some(physical_id)).await;
        }
        if old.as_ref().is_none_or(|o| props.updates_sagemaker(o)) {
            self.sm
                .update_domain()
                .domain_id(physical_id)
                .default_user_settings(props.user_settings()?)
                .set_default_space_settings(props.space_settings()?)
                .set_domain_settings_for_update(props.domain_settings_for_update()?)
                .set_app_security_group_management(props.app_security_group_management())
                .set_tag_propagation(props.tag_propagation())
                .set_subnet_ids(Some(props.subnet_ids.iter().map(|s| s.0.clone()).collect()))
                .app_network_access_type(network(props.app_network_access_type))
                .send()
                .await
                .map_err(|e| Error::aws("sagemaker:UpdateDomain", e))?;
        }
        let arn = domain.domain_arn().unwrap_or_default();
        match (
            old.as_ref().is_some_and(|o| o.enable_projects),
            props.enable_projects,
        ) {
            (_, true) => {
                self.projects()
                    .enable(arn, &props.execution_roles()?)
                    .await?
            }
            (true, false) => self.projects().release(arn).await?,
            (false, false) => {}
        }
        let old_tags = old.map(|o| o.tags).unwrap_or_default();
        sync_tags(&self.sm, arn, &old_tags, &props.tags).await?;
        self.wait(ctx, physical_id.to_owned(), 0).await
    }

    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        physical_id: &str,
        props: Option<Properties>,
    ) -> ProviderResult<State> {
        if physical_id.parse::<shared::ids::DomainId>().is_err() {
            tracing::info!(physical_id, "not a domain id: nothing to delete");
            return Ok(Done::new(physical_id).into());
        }
        // A domain that is gone needs no owner check: the teardown finds it gone and only removes
        // what SageMaker left behind for it (per HomeEfsFileSystem).
        let domain = lifecycle::owned(&self.domain(physical_id), ctx.request).await?;
        // What the domain did for SageMaker Projects is undone first (it is recorded in its tags).
        if let Some(arn) = domain.as_ref().and_then(|d| d.domain_arn()) {
            self.projects().release(arn).await?;
        }
        // Properties that no longer parse: the VPC from SageMaker, the users' data kept unless
        // HomeEfsFileSystem still reads `Delete`.
        let raw = &ctx.request.resource_properties;
        let (vpc_id, retention) = match props {
            Some(p) => (p.vpc_id.0, p.home_efs_file_system),
            None => (
                domain
                    .as_ref()
                    .and_then(|d| d.vpc_id())
                    .map(str::to_owned)
                    .or_else(|| field::<VpcId>(raw, "VpcId").map(|v| v.0))
                    .unwrap_or_default(),
                field::<Retention>(raw, "HomeEfsFileSystem").unwrap_or_default(),
            ),
        };
        self.teardown(State::Deleting {
            domain_id: physical_id.to_owned(),
            vpc_id,
            retention,
            home_efs: domain
                .as_ref()
                .and_then(|d| d.home_efs_file_system_id())
                .map(str::to_owned),
            polls: 0,
        })
        .await
    }

    async fn poll(&self, ctx: &Ctx<'_>, state: State) -> ProviderResult<State> {
        match state {
            State::Waiting { domain_id, polls } => self.wait(ctx, domain_id, polls).await,
            deleting @ State::Deleting { .. } => self.teardown(deleting).await,
        }
    }

    fn physical_id(state: &State) -> Option<String> {
        match state {
            State::Waiting { domain_id, .. } | State::Deleting { domain_id, .. } => {
                Some(domain_id.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! States and errors checked against the SDK directly with `aws-smithy-mocks` (the harness tests
    //! cover the same flows against the twin).
    use aws_sdk_sagemaker::Client;
    use aws_sdk_sagemaker::error::ErrorMetadata;
    use aws_sdk_sagemaker::operation::delete_app::DeleteAppError;
    use aws_sdk_sagemaker::operation::describe_domain::DescribeDomainOutput;
    use aws_sdk_sagemaker::operation::list_apps::ListAppsOutput;
    use aws_sdk_sagemaker::types::{AppDetails, AppStatus, AppType};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use std::time::Duration;

    use super::*;

    fn provider(sm: Client) -> StudioDomain {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        StudioDomain {
            sm,
            sc: shared::client!(aws_sdk_servicecatalog, &config),
            ec2: shared::client!(aws_sdk_ec2, &config),
            efs: shared::client!(aws_sdk_efs, &config),
        }
    }

    #[tokio::test]
    async fn pending_then_failed_ends_with_sagemakers_reason() {
        let pending = mock!(Client::describe_domain)
            .sequence()
            .output(|| {
                DescribeDomainOutput::builder()
                    .status(DomainStatus::Pending)
                    .build()
            })
            .output(|| {
                DescribeDomainOutput::builder()
                    .status(DomainStatus::Failed)
                    .failure_reason("The subnet subnet-1 has no free IP addresses")
                    .build()
            })
            .build();
        let p = provider(mock_client!(
            aws_sdk_sagemaker,
            RuleMode::Sequential,
            [&pending]
        ));
        let request: shared::cfn::Request = serde_json::from_value(serde_json::json!({
            "RequestType": "Create", "ResponseURL": "https://example.invalid", "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
            "RequestId": "r", "LogicalResourceId": "Domain"}))
        .unwrap();
        let ctx = Ctx {
            request: &request,
            attempt: 1,
        };
        let first = p.wait(&ctx, "d-abcdefghij12".into(), 0).await.unwrap();
        let Outcome::InProgress {
            state: State::Waiting { polls, .. },
            poll_after,
        } = first
        else {
            panic!("expected to keep waiting");
        };
        assert_eq!(polls, 1);
        assert!(poll_after > Duration::ZERO);
        let err = p
            .wait(&ctx, "d-abcdefghij12".into(), polls)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "SageMaker domain d-abcdefghij12 is Failed: The subnet subnet-1 has no free IP addresses"
        );
    }

    #[tokio::test]
    async fn a_permission_error_while_deleting_apps_fails_instead_of_polling_forever() {
        let list = mock!(Client::list_apps).then_output(|| {
            ListAppsOutput::builder()
                .apps(
                    AppDetails::builder()
                        .domain_id("d-abcdefghij12")
                        .user_profile_name("u")
                        .app_type(AppType::JupyterServer)
                        .app_name("default")
                        .status(AppStatus::InService)
                        .build(),
                )
                .build()
        });
        let denied = mock!(Client::delete_app).then_error(|| {
            DeleteAppError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not allowed")
                    .build(),
            )
        });
        let p = provider(mock_client!(
            aws_sdk_sagemaker,
            RuleMode::MatchAny,
            [&list, &denied]
        ));
        let state = State::Deleting {
            domain_id: "d-abcdefghij12".into(),
            vpc_id: "vpc-0a1b2c3d".into(),
            retention: Retention::Retain,
            home_efs: None,
            polls: 0,
        };
        let err = p.teardown(state).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "sagemaker:DeleteApp failed: AccessDeniedException: not allowed"
        );
    }
}
