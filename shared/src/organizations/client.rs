//! Adapter: [`Directory`] on the AWS Organizations API. Every list call is paginated to the end.

use crate::Error;
use aws_sdk_organizations::Client;
use aws_sdk_organizations::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_organizations::types::{AccountState, AccountStatus};

use super::directory::{Account, Directory};
use crate::ids::ParentId;

pub struct Organizations {
    client: Client,
    /// How the caller's user names the OU ids (a property, a setting), for error messages.
    input: &'static str,
}

impl Organizations {
    /// `input` names where the OU ids come from, as the caller's user knows it (the property
    /// `OrganizationalUnitIds`, the setting `STAGING_TARGETS`, …): errors say what to fix there.
    pub fn new(client: Client, input: &'static str) -> Self {
        Organizations { client, input }
    }

    /// Adds what to do about the errors users actually hit.
    fn explain(&self, err: Error) -> Error {
        match err.code() {
            Some("AccessDeniedException") => Error::other(format!(
                "{err} — the function's role (or the role it assumes) needs organizations:ListRoots, \
                 organizations:DescribeOrganizationalUnit, organizations:ListOrganizationalUnitsForParent \
                 and organizations:ListAccountsForParent in the management or a delegated administrator account"
            )),
            Some("AWSOrganizationsNotInUseException") => Error::other(format!(
                "{err} — this account is not in an organization: read {} through a role in the \
                 organization's management or delegated administrator account",
                self.input
            )),
            _ => err,
        }
    }

    fn not_found(&self, parent: &str) -> Error {
        Error::invalid(format!(
            "{}: {parent} does not exist or is not visible to this account; \
             check the id in the AWS Organizations console",
            self.input
        ))
    }

    /// A failed list call under `parent`: a parent that vanished is named, anything else explained.
    fn listing_error<E, R>(
        &self,
        parent: &str,
        operation: &'static str,
        err: SdkError<E, R>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let err = Error::aws(operation, err);
        if err.is_not_found() {
            self.not_found(parent)
        } else {
            self.explain(err)
        }
    }
}

/// ACTIVE by the account's `State` (current API) or, from older endpoints, its `Status`.
fn is_active(account: &aws_sdk_organizations::types::Account) -> bool {
    match (account.state(), account.status()) {
        (Some(state), _) => *state == AccountState::Active,
        (None, Some(status)) => *status == AccountStatus::Active,
        (None, None) => false,
    }
}

impl Directory for Organizations {
    async fn ensure_exists(&self, parent: &ParentId) -> Result<(), Error> {
        match parent {
            ParentId::Ou(id) => {
                let result = self
                    .client
                    .describe_organizational_unit()
                    .organizational_unit_id(id)
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(()),
                    Err(e)
                        if crate::error::not_found(e.code(), e.message().unwrap_or_default()) =>
                    {
                        Err(self.not_found(id))
                    }
                    Err(e) => {
                        Err(self.explain(Error::aws("organizations:DescribeOrganizationalUnit", e)))
                    }
                }
            }
            ParentId::Root(id) => {
                let roots: Vec<_> = self
                    .client
                    .list_roots()
                    .into_paginator()
                    .send()
                    .collect::<Result<_, _>>()
                    .await
                    .map_err(|e| self.explain(Error::aws("organizations:ListRoots", e)))?;
                if roots
                    .iter()
                    .flat_map(|page| page.roots())
                    .any(|r| r.id() == Some(id.as_str()))
                {
                    Ok(())
                } else {
                    Err(self.not_found(id))
                }
            }
        }
    }

    async fn child_ous(&self, parent: &str) -> Result<Vec<String>, Error> {
        let ous: Vec<_> = self
            .client
            .list_organizational_units_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| {
                self.listing_error(parent, "organizations:ListOrganizationalUnitsForParent", e)
            })?;
        Ok(ous
            .iter()
            .flat_map(|page| page.organizational_units())
            .filter_map(|ou| ou.id().map(str::to_owned))
            .collect())
    }

    async fn accounts(&self, parent: &str) -> Result<Vec<Account>, Error> {
        let accounts: Vec<_> = self
            .client
            .list_accounts_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| self.listing_error(parent, "organizations:ListAccountsForParent", e))?;
        Ok(accounts
            .iter()
            .flat_map(|page| page.accounts())
            .filter_map(|a| {
                Some(Account {
                    id: a.id()?.to_owned(),
                    active: is_active(a),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_organizations::operation::describe_organizational_unit::DescribeOrganizationalUnitError;
    use aws_sdk_organizations::operation::list_accounts_for_parent::{
        ListAccountsForParentError, ListAccountsForParentOutput,
    };
    use aws_sdk_organizations::types::Account as SdkAccount;
    use aws_sdk_organizations::types::error::{
        AccessDeniedException, OrganizationalUnitNotFoundException, TooManyRequestsException,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    /// Errors as they come off the wire: with AWS's code and message in the metadata.
    fn meta(code: &str, message: &str) -> aws_sdk_organizations::error::ErrorMetadata {
        aws_sdk_organizations::error::ErrorMetadata::builder()
            .code(code)
            .message(message)
            .build()
    }

    fn account(id: &str, state: AccountState) -> SdkAccount {
        SdkAccount::builder().id(id).state(state).build()
    }

    #[tokio::test]
    async fn lists_every_page_and_keeps_state() {
        let page1 = mock!(Client::list_accounts_for_parent)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                ListAccountsForParentOutput::builder()
                    .accounts(account("111111111111", AccountState::Active))
                    .accounts(account("222222222222", AccountState::Suspended))
                    .next_token("t1")
                    .build()
            });
        let page2 = mock!(Client::list_accounts_for_parent)
            .match_requests(|r| r.next_token() == Some("t1"))
            .then_output(|| {
                ListAccountsForParentOutput::builder()
                    .accounts(account("333333333333", AccountState::Active))
                    .accounts(
                        SdkAccount::builder()
                            .id("444444444444")
                            .status(AccountStatus::Active)
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_organizations, RuleMode::MatchAny, [&page1, &page2]);
        let got = Organizations::new(client, "OrganizationalUnitIds")
            .accounts("ou-x")
            .await
            .unwrap();
        let active: Vec<_> = got
            .iter()
            .filter(|a| a.active)
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(active, ["111111111111", "333333333333", "444444444444"]);
        assert_eq!(got.len(), 4);
        assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn unknown_ou_is_named() {
        let rule = mock!(Client::describe_organizational_unit).then_error(|| {
            DescribeOrganizationalUnitError::OrganizationalUnitNotFoundException(
                OrganizationalUnitNotFoundException::builder()
                    .message("not found")
                    // As AWS answers: the error code travels with the error.
                    .meta(
                        aws_smithy_types::error::ErrorMetadata::builder()
                            .code("OrganizationalUnitNotFoundException")
                            .message("not found")
                            .build(),
                    )
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_organizations, [&rule]);
        let err = Organizations::new(client, "STAGING_TARGETS")
            .ensure_exists(&ParentId::Ou("ou-abcd-12345678".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)));
        assert!(
            err.to_string()
                .starts_with("STAGING_TARGETS: ou-abcd-12345678"),
            "the caller's own input is named: {err}"
        );
    }

    #[tokio::test]
    async fn access_denied_says_which_permissions() {
        let rule = mock!(Client::list_accounts_for_parent).then_error(|| {
            ListAccountsForParentError::AccessDeniedException(
                AccessDeniedException::builder()
                    .message("no")
                    .meta(meta("AccessDeniedException", "no"))
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_organizations, [&rule]);
        let err = Organizations::new(client, "OrganizationalUnitIds")
            .accounts("r-abcd")
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "organizations:ListAccountsForParent failed: AccessDeniedException: no — "
            ) && msg.contains("organizations:DescribeOrganizationalUnit"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn throttling_that_outlasts_retries_is_reported_with_the_operation() {
        let rule = mock!(Client::list_accounts_for_parent).then_error(|| {
            ListAccountsForParentError::TooManyRequestsException(
                TooManyRequestsException::builder()
                    .message("slow down")
                    .meta(meta("TooManyRequestsException", "slow down"))
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_organizations, [&rule]);
        let err = Organizations::new(client, "OrganizationalUnitIds")
            .accounts("r-abcd")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "organizations:ListAccountsForParent failed: TooManyRequestsException: slow down"
        );
    }
}
