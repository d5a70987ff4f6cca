//! SageMaker Projects for a domain (`EnableProjects: true`): SageMaker's Service Catalog portfolio
//! enabled in the account and the domain's execution roles associated with it, as the reference
//! solution's custom resource does — and undone (on Delete, or `EnableProjects: false`) only as far as
//! this domain did it and no other domain of ours still needs it.
//!
//! What a domain did is kept in its own tags, so a retried request and the Delete find it:
//! - `secure-mlops:projects-roles`: the execution roles it needs associated (space-separated);
//! - `secure-mlops:projects-associated`: those it associated (they were not associated before);
//! - `secure-mlops:projects-enabled`: `true` when it enabled the portfolio.
//!
//! Releasing hands what another domain of the account still needs (its `projects-roles`, or Projects
//! at all) over to that domain's tags instead of undoing it.

use aws_sdk_sagemaker::types::{SagemakerServicecatalogStatus, Tag};
use aws_sdk_servicecatalog::types::PrincipalType;
use shared::Error;

const ROLES: &str = "secure-mlops:projects-roles";
const ASSOCIATED: &str = "secure-mlops:projects-associated";
const ENABLED: &str = "secure-mlops:projects-enabled";
/// The provider name of the portfolio SageMaker shares with the account.
const PROVIDER: &str = "Amazon SageMaker";
/// SageMaker's limit on a tag value.
const TAG_MAX: usize = 256;

pub struct Projects<'a> {
    pub sm: &'a aws_sdk_sagemaker::Client,
    pub sc: &'a aws_sdk_servicecatalog::Client,
}

/// A tag's value split into role ARNs.
fn roles_of(tags: &[Tag], key: &str) -> Vec<String> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

impl Projects<'_> {
    async fn tags(&self, arn: &str) -> Result<Vec<Tag>, Error> {
        Ok(self
            .sm
            .list_tags()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:ListTags", e))?
            .tags()
            .to_vec())
    }

    async fn portfolio(&self) -> Result<Option<String>, Error> {
        let out = self
            .sc
            .list_accepted_portfolio_shares()
            .send()
            .await
            .map_err(|e| Error::aws("servicecatalog:ListAcceptedPortfolioShares", e))?;
        Ok(out
            .portfolio_details()
            .iter()
            .find(|p| p.provider_name() == Some(PROVIDER))
            .and_then(|p| p.id().map(str::to_owned)))
    }

    /// Enables Projects for the domain `arn` whose users and spaces run as `roles`.
    pub async fn enable(&self, arn: &str, roles: &[String]) -> Result<(), Error> {
        let joined = roles.join(" ");
        if joined.len() > TAG_MAX {
            return Err(Error::invalid(format!(
                "EnableProjects: the execution roles ({joined}) are too long to record in a tag ({TAG_MAX} characters)"
            )));
        }
        let before = self.tags(arn).await?;
        let status = self
            .sm
            .get_sagemaker_servicecatalog_portfolio_status()
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:GetSagemakerServicecatalogPortfolioStatus", e))?;
        let mut enabled_here = roles_of(&before, ENABLED) == ["true"];
        if status.status() != Some(&SagemakerServicecatalogStatus::Enabled) {
            self.sm
                .enable_sagemaker_servicecatalog_portfolio()
                .send()
                .await
                .map_err(|e| Error::aws("sagemaker:EnableSagemakerServicecatalogPortfolio", e))?;
            enabled_here = true;
            tracing::info!("SageMaker Projects enabled in the account");
        }
        let id = self.portfolio().await?.ok_or_else(|| {
            Error::other("SageMaker's Service Catalog portfolio is not shared with the account after enabling Projects; retry")
        })?;
        let present: Vec<String> = self
            .sc
            .list_principals_for_portfolio()
            .portfolio_id(&id)
            .send()
            .await
            .map_err(|e| Error::aws("servicecatalog:ListPrincipalsForPortfolio", e))?
            .principals()
            .iter()
            .filter_map(|p| p.principal_arn().map(str::to_owned))
            .collect();
        let mut associated = roles_of(&before, ASSOCIATED);
        for role in roles.iter().filter(|r| !present.contains(r)) {
            self.sc
                .associate_principal_with_portfolio()
                .portfolio_id(&id)
                .principal_arn(role)
                .principal_type(PrincipalType::Iam)
                .send()
                .await
                .map_err(|e| Error::aws("servicecatalog:AssociatePrincipalWithPortfolio", e))?;
            associated.push(role.clone());
        }
        associated.dedup();
        let mut record = vec![tag(ROLES, &joined), tag(ASSOCIATED, &associated.join(" "))];
        if enabled_here {
            record.push(tag(ENABLED, "true"));
        }
        self.sm
            .add_tags()
            .resource_arn(arn)
            .set_tags(Some(record))
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:AddTags", e))?;
        Ok(())
    }

    /// Undoes what the domain `arn` did for Projects, handing over what another domain of the account
    /// still needs. A domain that did nothing for Projects costs one `ListTags`.
    pub async fn release(&self, arn: &str) -> Result<(), Error> {
        let tags = self.tags(arn).await?;
        let associated = roles_of(&tags, ASSOCIATED);
        let enabled = roles_of(&tags, ENABLED) == ["true"];
        if associated.is_empty() && !enabled {
            return Ok(());
        }
        // The other domains of the account that use Projects, with what they need.
        let mut others: Vec<(String, Vec<Tag>)> = Vec::new();
        // Every page: an account may have more domains than one page holds.
        let domains: Vec<_> = self
            .sm
            .list_domains()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| Error::aws("sagemaker:ListDomains", e))?;
        for d in &domains {
            let Some(other) = d.domain_arn().filter(|a| *a != arn) else {
                continue;
            };
            let other_tags = self.tags(other).await?;
            // Only domains a stack of ours made and that use Projects (tags only we write).
            let ours = other_tags
                .iter()
                .any(|t| t.key() == Some(shared::studio::OWNER_TAG));
            if ours && other_tags.iter().any(|t| t.key() == Some(ROLES)) {
                others.push((other.to_owned(), other_tags));
            }
        }
        let portfolio = self.portfolio().await?;
        for role in &associated {
            if let Some((heir, heir_tags)) = others
                .iter()
                .find(|(_, t)| roles_of(t, ROLES).contains(role))
            {
                let mut theirs = roles_of(heir_tags, ASSOCIATED);
                theirs.push(role.clone());
                self.sm
                    .add_tags()
                    .resource_arn(heir)
                    .tags(tag(ASSOCIATED, &theirs.join(" ")))
                    .send()
                    .await
                    .map_err(|e| Error::aws("sagemaker:AddTags", e))?;
                tracing::info!(role, heir, "role still needed for Projects: handed over");
            } else if let Some(id) = &portfolio {
                self.sc
                    .disassociate_principal_from_portfolio()
                    .portfolio_id(id)
                    .principal_arn(role)
                    .send()
                    .await
                    .map_err(|e| {
                        Error::aws("servicecatalog:DisassociatePrincipalFromPortfolio", e)
                    })?;
            }
        }
        if enabled {
            if let Some((heir, _)) = others.first() {
                self.sm
                    .add_tags()
                    .resource_arn(heir)
                    .tags(tag(ENABLED, "true"))
                    .send()
                    .await
                    .map_err(|e| Error::aws("sagemaker:AddTags", e))?;
                tracing::info!(heir, "Projects still used by another domain: handed over");
            } else {
                self.sm
                    .disable_sagemaker_servicecatalog_portfolio()
                    .send()
                    .await
                    .map_err(|e| {
                        Error::aws("sagemaker:DisableSagemakerServicecatalogPortfolio", e)
                    })?;
                tracing::info!("SageMaker Projects disabled again: this domain enabled them");
            }
        }
        self.sm
            .delete_tags()
            .resource_arn(arn)
            .tag_keys(ROLES)
            .tag_keys(ASSOCIATED)
            .tag_keys(ENABLED)
            .send()
            .await
            .map_err(|e| Error::aws("sagemaker:DeleteTags", e))?;
        Ok(())
    }
}
