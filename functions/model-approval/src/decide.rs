//! The rule, free of AWS: desired state is the latest Approved version of the group. Events only say
//! "look again" — they arrive late, twice and out of order, so none of their fields decide anything.

/// What the registry, the staging stack set and the pipeline say now.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The latest Approved version of the group.
    pub latest_approved: Option<String>,
    /// The version the staging stack set was last asked to run.
    pub deployed: Option<String>,
    /// Every staging stack instance is up to date with it (no failed or stopped operation since): it
    /// really runs. A deployment that failed leaves this `false`, so the next event retries it.
    pub settled: bool,
    /// Versions of pipeline executions still in progress.
    pub in_flight: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Start the pipeline for this version (`retry`: its last deployment did not complete).
    Deploy {
        version: String,
        rollback: bool,
        retry: bool,
    },
    /// Nothing to do, and why.
    Nothing(String),
    /// The deployed version is no longer approved and no approved version remains: alert, touch nothing.
    Alert(String),
}

pub fn decide(o: &Observed) -> Decision {
    match (&o.latest_approved, &o.deployed) {
        (None, None) => {
            Decision::Nothing("no approved version in the group; nothing is deployed".into())
        }
        (None, Some(deployed)) => Decision::Alert(format!(
            "{deployed} is deployed to staging but no version of its group is Approved any more; \
             nothing was changed — approve a version to deploy it, or remove the deployment"
        )),
        (Some(latest), Some(deployed)) if latest == deployed && o.settled => {
            Decision::Nothing(format!("{latest} is already deployed to staging"))
        }
        (Some(latest), _) if o.in_flight.contains(latest) => Decision::Nothing(format!(
            "a pipeline execution for {latest} is already in progress"
        )),
        (Some(latest), deployed) => Decision::Deploy {
            version: latest.clone(),
            // The deployed version is newer than the latest approved: it was rejected.
            rollback: deployed
                .as_deref()
                .is_some_and(|d| version_number(d) > version_number(latest)),
            retry: deployed.as_deref() == Some(latest.as_str()),
        },
    }
}

/// The version number at the end of a model package ARN (0 when there is none).
fn version_number(arn: &str) -> u64 {
    arn.rsplit('/')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/";

    fn v(n: u32) -> Option<String> {
        Some(format!("{V}{n}"))
    }

    fn o(latest: Option<String>, deployed: Option<String>, in_flight: &[u32]) -> Observed {
        Observed {
            latest_approved: latest,
            deployed,
            settled: true,
            in_flight: in_flight.iter().map(|n| format!("{V}{n}")).collect(),
        }
    }

    #[test]
    fn first_approval_deploys() {
        assert_eq!(
            decide(&o(v(1), None, &[])),
            Decision::Deploy {
                version: format!("{V}1"),
                rollback: false,
                retry: false
            }
        );
    }

    #[test]
    fn a_deployment_that_did_not_complete_is_retried() {
        let failed = Observed {
            settled: false,
            ..o(v(2), v(2), &[])
        };
        assert_eq!(
            decide(&failed),
            Decision::Deploy {
                version: format!("{V}2"),
                rollback: false,
                retry: true
            }
        );
        let retrying = Observed {
            settled: false,
            ..o(v(2), v(2), &[2])
        };
        assert!(matches!(decide(&retrying), Decision::Nothing(_)));
    }

    #[test]
    fn what_runs_or_is_on_its_way_is_not_deployed_again() {
        assert!(matches!(decide(&o(v(2), v(2), &[])), Decision::Nothing(_)));
        assert!(matches!(decide(&o(v(2), v(1), &[2])), Decision::Nothing(_)));
        assert!(matches!(
            decide(&o(v(2), v(1), &[1])),
            Decision::Deploy { .. }
        ));
    }

    #[test]
    fn rejecting_the_deployed_version_rolls_back_to_the_newest_approved() {
        assert_eq!(
            decide(&o(v(1), v(2), &[])),
            Decision::Deploy {
                version: format!("{V}1"),
                rollback: true,
                retry: false
            }
        );
    }

    #[test]
    fn nothing_approved_left_alerts_and_touches_nothing() {
        assert!(matches!(decide(&o(None, v(2), &[])), Decision::Alert(_)));
        assert!(matches!(decide(&o(None, None, &[])), Decision::Nothing(_)));
    }
}
