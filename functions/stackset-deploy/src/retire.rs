//! `Custom::EndpointRetirement`: removes the endpoint stack sets of model package groups that are no
//! longer deployed — opt-in, and only what this project's pipelines made.
//!
//! - **Update** that drops groups from `ModelPackageGroups`: with `RetireRemovedGroups: true`, each
//!   dropped group's stack sets (`<project>--<group>-staging`, `-prod`) lose their stack instances
//!   (the endpoints' stacks in every target account and region), then are deleted — and so are those
//!   of groups an earlier update removed while retirement was off (every project stack set whose group
//!   is not configured). Without it they are kept, and the resource's `Kept` attribute and a log line
//!   say which.
//! - **Delete** (the application stack goes): with `RetireOnDelete: true`, the same for every group
//!   and every leftover; otherwise kept.
//! - Only a stack set tagged `secure-mlops:project=<project>` is touched; one without the tag is
//!   reported under `Skipped` and left alone. A group still in this function's `MODEL_PACKAGE_GROUPS` is
//!   never retired by an Update (the function and the resource disagree: the Update fails).
//! - Only the application stack (`APPLICATION_STACK_ID`) may ask: the framework already refuses stacks
//!   of other accounts and regions, this refuses the account's other stacks.
//! - A failed instance deletion (typically a security group still held by an endpoint's network
//!   interface while SageMaker releases it) is tried again after `RETIRE_RETRY_SECONDS`, up to
//!   [`MAX_FAILED_ROUNDS`] times, then fails with each account's reason. Waits are carried by the
//!   framework's continuations.
//!
//! `Retired`, `Kept` and `Skipped` (comma-separated stack-set names) report what was done.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::Error;
use shared::cfn::props::de;
use shared::cfn::{Ctx, Done, Outcome, Provider, ProviderResult, poll_interval};
use shared::deploy::{PROJECT_TAG, stack_set_name};
use tracing::{info, warn};

use crate::aws::Started;
use crate::handler::Handler;
use crate::job::operation_id;

/// How many failed deletion rounds of one stack set are waited out before the retirement fails.
pub const MAX_FAILED_ROUNDS: u32 = 5;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Properties {
    /// The deployed groups (the template's `ModelPackageGroups`): a list or a comma-separated string.
    #[serde(deserialize_with = "de::list")]
    pub model_package_groups: Vec<String>,
    /// Retire the stack sets of groups an Update removes (default false: keep them).
    #[serde(default, deserialize_with = "de::bool")]
    pub retire_removed_groups: bool,
    /// Retire every group's stack sets when the resource is deleted (default false: keep them).
    #[serde(default, deserialize_with = "de::bool")]
    pub retire_on_delete: bool,
}

/// No rules across fields.
impl shared::cfn::props::Validate for Properties {}

/// A retirement in progress: the stack sets still to go, the current one's deletion operation.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pending: Vec<String>,
    operation: Option<String>,
    /// Deletion rounds of the current stack set (each names its own operation).
    round: u32,
    failed_rounds: u32,
    polls: u32,
    retired: Vec<String>,
    skipped: Vec<String>,
}

pub struct Retirement {
    handler: Arc<Handler>,
}

/// The next batch of one deletion: the accounts of the first instance's region, and every region whose
/// accounts are exactly those (so `accounts × regions` names existing instances only).
fn batch(instances: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let accounts_in = |region: &str| {
        let mut a: Vec<String> = instances
            .iter()
            .filter(|(_, r)| r == region)
            .map(|(a, _)| a.clone())
            .collect();
        a.sort();
        a.dedup();
        a
    };
    let Some((_, first)) = instances.first() else {
        return (Vec::new(), Vec::new());
    };
    let accounts = accounts_in(first);
    let mut regions: Vec<String> = instances.iter().map(|(_, r)| r.clone()).collect();
    regions.sort();
    regions.dedup();
    regions.retain(|r| accounts_in(r) == accounts);
    (accounts, regions)
}

impl Retirement {
    pub fn new(handler: Arc<Handler>) -> Self {
        Retirement { handler }
    }

    fn physical_id(&self) -> String {
        format!(
            "{}-endpoint-retirement",
            self.handler.config.stack_set_prefix
        )
    }

    /// Only the application stack may create, change or delete this resource.
    fn check_stack(&self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let stack = &ctx.request.stack_id;
        match &self.handler.config.application_stack {
            Some(own) if own == stack => Ok(()),
            Some(_) => Err(Error::invalid(format!(
                "refused: {stack} is not this function's application stack (APPLICATION_STACK_ID); \
                 only that stack's Custom::EndpointRetirement may retire endpoints"
            ))),
            None => Err(Error::invalid(
                "refused: APPLICATION_STACK_ID is not set, so this function serves no \
                 Custom::EndpointRetirement (set it to the application stack's id)",
            )),
        }
    }

    fn stack_sets(&self, groups: &[String]) -> Vec<String> {
        let prefix = &self.handler.config.stack_set_prefix;
        groups
            .iter()
            .flat_map(|g| {
                self.handler
                    .config
                    .stages
                    .iter()
                    .map(move |s| stack_set_name(prefix, g, &s.name))
            })
            .collect()
    }

    /// The stack sets of `groups` that exist and are this project's: they are kept, and said so.
    async fn keep(&self, groups: &[String], why: &str) -> ProviderResult<State> {
        let mut kept = Vec::new();
        for name in self.stack_sets(groups) {
            if self.handler.aws.stack_set_project(&name).await?.flatten()
                == Some(self.handler.config.stack_set_prefix.clone())
            {
                kept.push(name);
            }
        }
        if !kept.is_empty() {
            warn!(kept = %kept.join(","), "endpoint stack sets kept: {why}");
        }
        Ok(Done::new(self.physical_id())
            .with("Retired", "")
            .with("Kept", kept.join(","))
            .with("Skipped", "")
            .into())
    }

    /// Groups that still have stack sets of this project but are not in `keep`: groups kept by an
    /// earlier update (before retirement was switched on) are retired too, whatever the difference
    /// between this update's properties. Their stack sets still pass the tag check one by one.
    async fn leftovers(&self, keep: &[String]) -> Result<Vec<String>, Error> {
        let prefix = format!("{}--", self.handler.config.stack_set_prefix);
        let mut groups: Vec<String> = Vec::new();
        for name in self.handler.aws.stack_sets_named(&prefix).await? {
            let rest = &name[prefix.len()..];
            for stage in &self.handler.config.stages {
                if let Some(group) = rest.strip_suffix(&format!("-{}", stage.name))
                    && !group.is_empty()
                    && !keep.iter().any(|k| k == group)
                    && !groups.iter().any(|g| g == group)
                {
                    groups.push(group.to_owned());
                }
            }
        }
        Ok(groups)
    }

    fn retire(&self, groups: &[String]) -> ProviderResult<State> {
        let pending = self.stack_sets(groups);
        info!(stack_sets = %pending.join(","), "retiring endpoint stack sets");
        Ok(Outcome::InProgress {
            state: State {
                pending,
                ..State::default()
            },
            poll_after: Duration::ZERO,
        })
    }
}

impl Provider for Retirement {
    type Properties = Properties;
    type State = State;

    async fn create(&self, ctx: &Ctx<'_>, _props: Properties) -> ProviderResult<State> {
        self.check_stack(ctx)?;
        Ok(Done::new(self.physical_id())
            .with("Retired", "")
            .with("Kept", "")
            .with("Skipped", "")
            .into())
    }

    async fn update(
        &self,
        ctx: &Ctx<'_>,
        _physical_id: &str,
        props: Properties,
        old: Option<Properties>,
    ) -> ProviderResult<State> {
        self.check_stack(ctx)?;
        let removed: Vec<String> = old
            .map(|o| o.model_package_groups)
            .unwrap_or_default()
            .into_iter()
            .filter(|g| !props.model_package_groups.contains(g))
            .collect();
        let configured = &self.handler.config.groups;
        if let Some(g) = removed.iter().find(|g| configured.contains(g)) {
            return Err(Error::invalid(format!(
                "ModelPackageGroups: \"{g}\" was removed here but this function still deploys it \
                 (MODEL_PACKAGE_GROUPS: {}); nothing retired. Pass the same groups to both",
                configured.join(", ")
            )));
        }
        if props.retire_removed_groups {
            // The removed groups, and those an earlier update kept (none of the configured ones).
            let keep: Vec<String> = props
                .model_package_groups
                .iter()
                .chain(configured)
                .cloned()
                .collect();
            let mut groups = removed;
            for group in self.leftovers(&keep).await? {
                if !groups.contains(&group) {
                    groups.push(group);
                }
            }
            if groups.is_empty() {
                return self.keep(&[], "").await;
            }
            self.retire(&groups)
        } else if removed.is_empty() {
            self.keep(&[], "").await
        } else {
            self.keep(
                &removed,
                "their groups left ModelPackageGroups (set RetireRemovedGroups=true to remove them)",
            )
            .await
        }
    }

    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        physical_id: &str,
        props: Option<Properties>,
    ) -> ProviderResult<State> {
        self.check_stack(ctx)?;
        let Some(props) = props else {
            warn!("properties do not parse: endpoint stack sets kept");
            return Ok(Done::new(physical_id).into());
        };
        if props.retire_on_delete {
            let mut groups = props.model_package_groups.clone();
            for group in self.leftovers(&groups).await? {
                groups.push(group);
            }
            self.retire(&groups)
        } else {
            self.keep(
                &props.model_package_groups,
                "the application stack is deleted (set RetireEndpointsOnDelete=true to remove them)",
            )
            .await
        }
    }

    async fn poll(&self, ctx: &Ctx<'_>, mut state: State) -> ProviderResult<State> {
        let aws = &self.handler.aws;
        let project = &self.handler.config.stack_set_prefix;
        state.polls += 1;
        loop {
            let Some(name) = state.pending.first().cloned() else {
                info!(retired = %state.retired.join(","), skipped = %state.skipped.join(","), "retirement done");
                return Ok(Done::new(self.physical_id())
                    .with("Retired", state.retired.join(","))
                    .with("Kept", "")
                    .with("Skipped", state.skipped.join(","))
                    .into());
            };
            let wait = |state: State, after: Duration| {
                Ok(Outcome::InProgress {
                    state,
                    poll_after: after,
                })
            };
            if let Some(op) = state.operation.clone() {
                match aws.operation_status(&name, &op).await?.as_str() {
                    "SUCCEEDED" => {
                        state.operation = None;
                        state.round += 1;
                        continue;
                    }
                    "FAILED" | "STOPPED" => {
                        let reasons = aws.failures(&name, &op).await?.join("; ");
                        state.failed_rounds += 1;
                        if state.failed_rounds >= MAX_FAILED_ROUNDS {
                            return Err(Error::other(format!(
                                "retiring {name}: deleting its stack instances failed {} times; last: {reasons}. \
                                 Retired so far: {}",
                                state.failed_rounds,
                                if state.retired.is_empty() {
                                    "none".into()
                                } else {
                                    state.retired.join(",")
                                }
                            )));
                        }
                        warn!(stack_set = %name, %reasons, round = state.round, "instance deletion failed; trying again after the wait");
                        state.operation = None;
                        state.round += 1;
                        let after = self.handler.config.retire_retry;
                        return wait(state, after);
                    }
                    _ => {
                        let after = poll_interval(state.polls);
                        return wait(state, after);
                    }
                }
            }
            if state.round == 0 {
                let owner = aws.stack_set_project(&name).await?;
                let why = match owner {
                    None => Some("absent"),
                    Some(Some(ref p)) if p == project => None,
                    Some(_) => Some("not tagged for this project: left alone"),
                };
                if let Some(why) = why {
                    if owner.is_some() {
                        warn!(stack_set = %name, tag = PROJECT_TAG, "{why}");
                    }
                    state.skipped.push(format!("{name} ({why})"));
                    state.pending.remove(0);
                    continue;
                }
            }
            let instances = match aws.instances(&name).await {
                Ok(i) => i,
                Err(e) if e.is_not_found() => Vec::new(),
                Err(e) => return Err(e),
            };
            if instances.is_empty() {
                if !aws.delete_stack_set(&name).await? {
                    let after = poll_interval(state.polls);
                    return wait(state, after);
                }
                info!(stack_set = %name, "stack set retired");
                state.retired.push(name);
                state.pending.remove(0);
                (state.round, state.failed_rounds) = (0, 0);
                continue;
            }
            let (accounts, regions) = batch(&instances);
            let id = operation_id(
                "retire",
                &format!("{}-{}", ctx.request.request_id, state.round),
            );
            info!(stack_set = %name, accounts = %accounts.join(","), regions = %regions.join(","), "deleting stack instances");
            if let Started::Operation(op) = aws
                .delete_instances(&name, &accounts, &regions, &id)
                .await?
            {
                state.operation = Some(op);
            }
            let after = poll_interval(state.polls);
            return wait(state, after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, r)| (a.to_string(), r.to_string()))
            .collect()
    }

    #[test]
    fn a_batch_names_existing_instances_only() {
        let i = pairs(&[
            ("1", "us-east-1"),
            ("2", "us-east-1"),
            ("1", "eu-west-1"),
            ("2", "eu-west-1"),
            ("3", "ap-south-1"),
        ]);
        assert_eq!(
            batch(&i),
            (
                vec!["1".into(), "2".into()],
                vec!["eu-west-1".into(), "us-east-1".into()]
            )
        );
        let rest = pairs(&[("3", "ap-south-1")]);
        assert_eq!(batch(&rest), (vec!["3".into()], vec!["ap-south-1".into()]));
        assert_eq!(batch(&[]), (vec![], vec![]));
    }

    #[test]
    fn properties_take_cloudformation_strings() {
        let p: Properties = shared::cfn::props::parse(
            serde_json::json!({"ModelPackageGroups": "churn,ranking", "RetireRemovedGroups": "true"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(p.model_package_groups, ["churn", "ranking"]);
        assert!(p.retire_removed_groups && !p.retire_on_delete);
        let e = shared::cfn::props::parse::<Properties>(
            serde_json::json!({"ModelPackageGroups": ["churn"], "RetireOnDelete": "yes"})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("RetireOnDelete"), "{e}");
    }

    /// Deletion failures moto cannot produce (its operations always succeed), with aws-smithy-mocks.
    mod mocked {
        use std::sync::Arc;

        use aws_sdk_cloudformation::operation::delete_stack_instances::DeleteStackInstancesOutput;
        use aws_sdk_cloudformation::operation::delete_stack_set::DeleteStackSetOutput;
        use aws_sdk_cloudformation::operation::describe_stack_set_operation::DescribeStackSetOperationOutput;
        use aws_sdk_cloudformation::operation::list_stack_instances::ListStackInstancesOutput;
        use aws_sdk_cloudformation::operation::list_stack_set_operation_results::ListStackSetOperationResultsOutput;
        use aws_sdk_cloudformation::types::{
            StackInstanceSummary, StackSetOperation, StackSetOperationResultStatus,
            StackSetOperationResultSummary, StackSetOperationStatus,
        };
        use aws_smithy_mocks::{Rule, mock};
        use shared::cfn::Request;

        use super::super::*;
        use crate::handler::mocked::handler;

        const NAME: &str = "secure-mlops--ranking-staging";

        fn request() -> Request {
            serde_json::from_value(serde_json::json!({
                "RequestType": "Update", "ResponseURL": "https://example.invalid/r",
                "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/app/1",
                "RequestId": "5b1d7a40-0000-41ef-8000-0a1b2c3d4e5f", "LogicalResourceId": "R",
                "ResourceType": "Custom::EndpointRetirement", "PhysicalResourceId": "p",
                "ResourceProperties": {"ModelPackageGroups": "churn"}
            }))
            .unwrap()
        }

        fn status(s: StackSetOperationStatus) -> Rule {
            mock!(aws_sdk_cloudformation::Client::describe_stack_set_operation).then_output(
                move || {
                    DescribeStackSetOperationOutput::builder()
                        .stack_set_operation(StackSetOperation::builder().status(s.clone()).build())
                        .build()
                },
            )
        }

        fn in_use() -> Rule {
            mock!(aws_sdk_cloudformation::Client::list_stack_set_operation_results).then_output(
                || {
                    ListStackSetOperationResultsOutput::builder()
                        .summaries(
                            StackSetOperationResultSummary::builder()
                                .account("222222222222")
                                .region("us-east-1")
                                .status(StackSetOperationResultStatus::Failed)
                                .status_reason("resource sg-0a1b has a dependent object")
                                .build(),
                        )
                        .build()
                },
            )
        }

        fn instances(n: usize) -> Rule {
            mock!(aws_sdk_cloudformation::Client::list_stack_instances).then_output(move || {
                let mut out = ListStackInstancesOutput::builder();
                for _ in 0..n {
                    out = out.summaries(
                        StackInstanceSummary::builder()
                            .account("222222222222")
                            .region("us-east-1")
                            .build(),
                    );
                }
                out.build()
            })
        }

        fn state(operation: Option<&str>, failed_rounds: u32) -> State {
            State {
                pending: vec![NAME.into()],
                operation: operation.map(str::to_owned),
                round: failed_rounds + u32::from(operation.is_some()),
                failed_rounds,
                ..State::default()
            }
        }

        fn retirement(cfn: &[&Rule]) -> Retirement {
            Retirement::new(Arc::new(handler(cfn, &[], &[])))
        }

        #[tokio::test]
        async fn a_failed_deletion_waits_for_the_network_interfaces_then_deletes_again() {
            let request = request();
            let ctx = Ctx {
                request: &request,
                attempt: 1,
            };
            let (failed, results) = (status(StackSetOperationStatus::Failed), in_use());
            let r = retirement(&[&failed, &results]);
            let Ok(Outcome::InProgress { state, poll_after }) =
                r.poll(&ctx, state(Some("op-1"), 0)).await
            else {
                panic!("a failed round is waited out");
            };
            assert_eq!(
                poll_after,
                Duration::from_secs(120),
                "RETIRE_RETRY_SECONDS default"
            );
            assert_eq!((state.failed_rounds, state.operation.as_deref()), (1, None));

            // The next round deletes the remaining instances under a new operation id.
            let (list, delete) = (
                instances(1),
                mock!(aws_sdk_cloudformation::Client::delete_stack_instances)
                    .match_requests(|r| {
                        r.operation_id().is_some_and(|id| id.ends_with("-2"))
                            && r.retain_stacks() == Some(false)
                    })
                    .then_output(|| {
                        DeleteStackInstancesOutput::builder()
                            .operation_id("op-2")
                            .build()
                    }),
            );
            let r = retirement(&[&list, &delete]);
            let Ok(Outcome::InProgress { state, .. }) = r.poll(&ctx, state).await else {
                panic!("deleting again");
            };
            assert_eq!(state.operation.as_deref(), Some("op-2"));

            // It succeeds: no instance is left, the stack set goes.
            let (ok, none, gone) = (
                status(StackSetOperationStatus::Succeeded),
                instances(0),
                mock!(aws_sdk_cloudformation::Client::delete_stack_set)
                    .match_requests(|r| r.stack_set_name() == Some(NAME))
                    .then_output(|| DeleteStackSetOutput::builder().build()),
            );
            let r = retirement(&[&ok, &none, &gone]);
            let Ok(Outcome::Done(done)) = r.poll(&ctx, state).await else {
                panic!("retired");
            };
            assert_eq!(done.data["Retired"], NAME);
            assert_eq!(gone.num_calls(), 1);
        }

        #[tokio::test]
        async fn deletion_that_keeps_failing_ends_with_each_accounts_reason() {
            let request = request();
            let ctx = Ctx {
                request: &request,
                attempt: 1,
            };
            let (failed, results) = (status(StackSetOperationStatus::Failed), in_use());
            let r = retirement(&[&failed, &results]);
            let err = r
                .poll(&ctx, state(Some("op-5"), MAX_FAILED_ROUNDS - 1))
                .await
                .expect_err("gives up");
            let msg = err.to_string();
            assert!(msg.contains("failed 5 times"), "{msg}");
            assert!(
                msg.contains(
                    "222222222222/us-east-1: FAILED - resource sg-0a1b has a dependent object"
                ),
                "{msg}"
            );
        }

        /// A deployment holds the stack set (`OperationInProgressException`): the retirement waits for
        /// it and asks again, instead of failing or skipping the stack set.
        #[tokio::test]
        async fn a_stack_set_busy_with_a_deployment_is_waited_for() {
            let request = request();
            let ctx = Ctx {
                request: &request,
                attempt: 1,
            };
            let (tagged, list) = (crate::handler::mocked::exists(), instances(1));
            let busy = mock!(aws_sdk_cloudformation::Client::delete_stack_instances).then_error(|| {
                aws_sdk_cloudformation::operation::delete_stack_instances::DeleteStackInstancesError::generic(
                    aws_smithy_types::error::ErrorMetadata::builder()
                        .code("OperationInProgressException")
                        .message("Another Operation on StackSet is in progress")
                        .build(),
                )
            });
            let r = retirement(&[&tagged, &list, &busy]);
            let Ok(Outcome::InProgress { state, poll_after }) = r.poll(&ctx, state(None, 0)).await
            else {
                panic!("waits for the running operation");
            };
            assert_eq!((state.operation.as_deref(), state.pending.len()), (None, 1));
            assert!(poll_after > Duration::ZERO);
            assert_eq!(busy.num_calls(), 1);
        }

        #[tokio::test]
        async fn a_stack_set_without_the_project_tag_is_left_alone() {
            let request = request();
            let ctx = Ctx {
                request: &request,
                attempt: 1,
            };
            let untagged = crate::handler::mocked::exists_as(None);
            let list = instances(1);
            let r = retirement(&[&untagged, &list]);
            let Ok(Outcome::Done(done)) = r.poll(&ctx, state(None, 0)).await else {
                panic!("done");
            };
            assert_eq!(done.data["Retired"], "");
            assert!(
                done.data["Skipped"]
                    .as_str()
                    .unwrap()
                    .contains("not tagged for this project")
            );
            assert_eq!(list.num_calls(), 0, "nothing listed, nothing deleted");
        }
    }
}
