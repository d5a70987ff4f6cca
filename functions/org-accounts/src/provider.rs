//! The `Custom::OrgAccounts` provider: Create and Update look the accounts up; Delete is a no-op.

use shared::Error;
use shared::cfn::{Ctx, Done, Provider, ProviderResult};

use crate::properties::{Properties, RoleArn};
use shared::organizations::{Organizations, resolve};

pub struct OrgAccounts {
    config: aws_config::SdkConfig,
    organizations: Organizations,
    sts: aws_sdk_sts::Client,
}

impl OrgAccounts {
    /// The provider with its clients, built once per cold start.
    pub fn new(config: &aws_config::SdkConfig) -> Result<Self, Error> {
        Ok(OrgAccounts {
            config: config.clone(),
            organizations: Organizations::new(
                shared::client!(aws_sdk_organizations, config),
                "OrganizationalUnitIds",
            ),
            sts: shared::client!(aws_sdk_sts, config),
        })
    }

    /// An Organizations adapter acting as `role` (one AssumeRole per request).
    async fn assume(&self, role: &RoleArn) -> Result<Organizations, Error> {
        let config = shared::aws::assume(
            &self.config,
            &self.sts,
            &role.0,
            "secure-mlops-org-accounts",
            None,
        )
        .await
        .map_err(|e| Error::other(format!("AssumeRoleArn {}: {e}", role.0)))?;
        Ok(Organizations::new(
            shared::client!(aws_sdk_organizations, &config),
            "OrganizationalUnitIds",
        ))
    }

    async fn lookup(&self, props: Properties) -> ProviderResult<()> {
        if props.organizational_unit_ids.is_empty() {
            return Err(Error::invalid(
                "OrganizationalUnitIds: give at least one OU id (ou-…) or the root id (r-…)",
            ));
        }
        let exclude: Vec<String> = props
            .exclude_account_ids
            .iter()
            .map(|a| a.0.clone())
            .collect();
        let parents = &props.organizational_unit_ids;
        let ids = match &props.assume_role_arn {
            None => resolve(&self.organizations, parents, props.recursive, &exclude).await?,
            Some(role) => {
                let assumed = self.assume(role).await?;
                resolve(&assumed, parents, props.recursive, &exclude).await?
            }
        };
        tracing::info!(
            accounts = ids.len(),
            parents = parents.len(),
            "resolved accounts"
        );
        if ids.is_empty() && !props.allow_empty {
            let list: Vec<&str> = parents.iter().map(|p| p.as_str()).collect();
            return Err(Error::invalid(format!(
                "OrganizationalUnitIds: {} contain no ACTIVE account (after ExcludeAccountIds); \
                 set AllowEmpty to \"true\" to accept an empty list",
                list.join(", ")
            )));
        }
        Ok(Done::new(physical_id(&props))
            .with("AccountIds", ids.join(","))
            .with("AccountCount", ids.len().to_string())
            .into())
    }
}

/// Deterministic from the sorted inputs: the same query always has the same id, a different query
/// a different one (so changing the OUs is a replacement, which is harmless: Delete is a no-op).
pub fn physical_id(props: &Properties) -> String {
    let mut parents: Vec<&str> = props
        .organizational_unit_ids
        .iter()
        .map(|p| p.as_str())
        .collect();
    parents.sort_unstable();
    parents.dedup();
    let mut exclude: Vec<&str> = props
        .exclude_account_ids
        .iter()
        .map(|a| a.0.as_str())
        .collect();
    exclude.sort_unstable();
    exclude.dedup();
    let canonical = format!(
        "parents={}|recursive={}|exclude={}|role={}|allow_empty={}",
        parents.join(","),
        props.recursive,
        exclude.join(","),
        props.assume_role_arn.as_ref().map_or("", |r| r.0.as_str()),
        props.allow_empty
    );
    format!("org-accounts-{}", shared::ids::sha256_hex(&canonical, 8))
}

impl Provider for OrgAccounts {
    type Properties = Properties;
    type State = ();

    async fn create(&self, _ctx: &Ctx<'_>, props: Properties) -> ProviderResult<()> {
        self.lookup(props).await
    }

    async fn update(
        &self,
        _ctx: &Ctx<'_>,
        _physical_id: &str,
        props: Properties,
        _old: Option<Properties>,
    ) -> ProviderResult<()> {
        self.lookup(props).await
    }

    async fn delete(
        &self,
        _ctx: &Ctx<'_>,
        physical_id: &str,
        _props: Option<Properties>,
    ) -> ProviderResult<()> {
        // Nothing was created: a lookup has nothing to tear down.
        Ok(Done::new(physical_id).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: serde_json::Value) -> Properties {
        shared::cfn::props::parse(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn physical_id_ignores_order_and_duplicates_but_not_content() {
        let a = physical_id(&props(
            json!({"OrganizationalUnitIds": "ou-abcd-11111111,ou-abcd-22222222"}),
        ));
        let b = physical_id(&props(
            json!({"OrganizationalUnitIds": ["ou-abcd-22222222", "ou-abcd-11111111", "ou-abcd-22222222"]}),
        ));
        let c = physical_id(&props(json!({"OrganizationalUnitIds": "ou-abcd-11111111"})));
        let d = physical_id(&props(
            json!({"OrganizationalUnitIds": "ou-abcd-11111111", "Recursive": "false"}),
        ));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(c, d);
        assert!(a.starts_with("org-accounts-") && a.len() == "org-accounts-".len() + 16);
    }
}
