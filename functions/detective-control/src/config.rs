//! Settings from the environment (set by the SAM template). Read once per cold start; a wrong value stops
//! the function at init with a message naming the variable and what it accepts.

use std::time::Duration;

use shared::Error;
use shared::ids::ParentId;
use shared::settings::Settings;

use crate::checks::{RULES, Rule};

/// What to do with a non-compliant resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Stop or delete it (never a domain), then alert.
    Enforce,
    /// Only alert.
    Alert,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub mode: Mode,
    pub rules: Vec<&'static Rule>,
    pub topic_arn: String,
    pub security_hub: bool,
    /// DynamoDB table that records handled events, so a duplicate delivery does nothing.
    pub idempotency_table: Option<String>,
    pub idempotency_ttl: Duration,
    /// How long an event's record stays "in progress" before a retry may act (after a crash).
    pub in_progress: Duration,
    /// The clock difference allowed between a CloudTrail event's time and SageMaker's creation time.
    pub creation_skew: Duration,
    /// The time a sweep keeps for itself: with less left it continues in a new invocation.
    pub sweep_reserve: Duration,
    /// How far back a sweep looks for new models and endpoint configs.
    pub sweep_lookback: Duration,
    /// Organization-wide mode: the member accounts the control acts in (none: this account only).
    pub organization: Option<Organization>,
}

/// Organization-wide mode (`MEMBER_OUS` set): the OUs whose ACTIVE accounts (nested OUs included) are
/// members, the role the control assumes in each, and the regions a sweep covers there.
#[derive(Clone, Debug, PartialEq)]
pub struct Organization {
    pub ous: Vec<ParentId>,
    pub role_name: String,
    pub regions: Vec<String>,
}

impl Config {
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let env = Settings::new(get);
        let mode = match env.choice("MODE", "enforce", &["enforce", "alert"])? {
            "alert" => Mode::Alert,
            _ => Mode::Enforce,
        };
        let ids = env.list("CHECKS");
        // `all` (or nothing) is every check but the opt-in ones; those run when named (`all,<id>`).
        let all = ids.is_empty() || ids.iter().any(|c| c.eq_ignore_ascii_case("all"));
        let rules = {
            let mut rules: Vec<&'static Rule> = if all {
                RULES.iter().filter(|r| !r.opt_in).collect()
            } else {
                Vec::new()
            };
            for id in ids.iter().filter(|c| !c.eq_ignore_ascii_case("all")) {
                let rule = Rule::by_id(id).ok_or_else(|| {
                    Error::invalid(format!(
                        "CHECKS: unknown check `{id}`; known checks: {} (or `all`)",
                        RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                if !rules.iter().any(|r| r.id == rule.id) {
                    rules.push(rule);
                }
            }
            // Keep the catalogue's order whatever the order of the list.
            rules.sort_by_key(|r| RULES.iter().position(|x| x.id == r.id));
            rules
        };
        Ok(Config {
            mode,
            rules,
            topic_arn: env.required(
                "ALERT_TOPIC_ARN",
                "the ARN of the SNS topic that receives alerts",
            )?,
            security_hub: env.choice("SECURITY_HUB", "false", &["true", "false"])? == "true",
            idempotency_table: env.get("IDEMPOTENCY_TABLE"),
            idempotency_ttl: Duration::from_secs(
                env.number("IDEMPOTENCY_TTL_HOURS", 24, 1..=8760)? * 3600,
            ),
            // Shorter than Lambda's first retry of an asynchronous event (about a minute).
            in_progress: Duration::from_secs(env.number("IN_PROGRESS_SECONDS", 30, 1..=900)?),
            creation_skew: Duration::from_secs(env.number(
                "CREATION_SKEW_SECONDS",
                120,
                0..=3600,
            )?),
            sweep_reserve: Duration::from_secs(env.number("SWEEP_RESERVE_SECONDS", 30, 1..=890)?),
            sweep_lookback: Duration::from_secs(
                env.number("SWEEP_LOOKBACK_MINUTES", 70, 1..=10080)? * 60,
            ),
            organization: organization(&env)?,
        })
    }
}

fn organization<F: Fn(&str) -> Option<String>>(
    env: &Settings<F>,
) -> Result<Option<Organization>, Error> {
    let ous = env.list("MEMBER_OUS");
    if ous.is_empty() {
        return Ok(None);
    }
    let ous = ous
        .iter()
        .map(|id| {
            id.parse::<ParentId>().map_err(|e| {
                Error::invalid(format!(
                    "MEMBER_OUS: `{id}`: {e} (expected OU ids ou-xxxx-yyyyyyyy or the root r-xxxx, comma-separated)"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let role_name = env.required(
        "MEMBER_ROLE_NAME",
        "the name of the responder role the member stack set creates in every member account",
    )?;
    let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if role_name.is_empty() || role_name.len() > 64 || !role_name.chars().all(valid) {
        return Err(Error::invalid(format!(
            "MEMBER_ROLE_NAME=`{role_name}`: not an IAM role name (1-64 of letters, digits and +=,.@_-)"
        )));
    }
    let mut regions = env.list("MEMBER_REGIONS");
    if regions.is_empty() {
        regions.extend(env.get("AWS_REGION"));
    }
    if regions.is_empty() {
        return Err(Error::invalid(
            "MEMBER_REGIONS: no region to sweep member accounts in (set MEMBER_REGIONS or AWS_REGION)",
        ));
    }
    Ok(Some(Organization {
        ous,
        role_name,
        regions,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_enforce_every_check_but_the_opt_in_ones() {
        let c = config(&[("ALERT_TOPIC_ARN", "arn:t")]).unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.rules.len(), RULES.iter().filter(|r| !r.opt_in).count());
        assert!(!c.rules.iter().any(|r| r.id == "model-private-registry"));
        // `all` plus an opt-in check: every check, in the catalogue's order.
        let c = config(&[
            ("ALERT_TOPIC_ARN", "arn:t"),
            ("CHECKS", "model-private-registry, all"),
        ])
        .unwrap();
        assert_eq!(c.rules.len(), RULES.len());
        assert_eq!(c.rules.last().map(|r| r.id), Some("model-private-registry"));
        assert!(!c.security_hub);
        assert_eq!(c.idempotency_ttl, Duration::from_secs(86_400));
        assert_eq!(c.sweep_lookback, Duration::from_secs(4_200));
    }

    #[test]
    fn checks_are_chosen_by_id_in_catalogue_order() {
        let c = config(&[
            ("ALERT_TOPIC_ARN", "t"),
            ("CHECKS", "volume-kms, vpc,vpc"),
            ("MODE", "Alert"),
        ])
        .unwrap();
        assert_eq!(
            c.rules.iter().map(|r| r.id).collect::<Vec<_>>(),
            ["vpc", "volume-kms"]
        );
        assert_eq!(c.mode, Mode::Alert);
    }

    #[test]
    fn organization_mode_is_opt_in_and_checked() {
        let c = config(&[("ALERT_TOPIC_ARN", "t"), ("AWS_REGION", "eu-west-1")]).unwrap();
        assert_eq!(c.organization, None, "single-account by default");
        let c = config(&[
            ("ALERT_TOPIC_ARN", "t"),
            ("AWS_REGION", "eu-west-1"),
            ("MEMBER_OUS", "ou-ab12-cdef3456, r-ab12"),
            ("MEMBER_ROLE_NAME", "secure-mlops-detective-responder"),
        ])
        .unwrap();
        let org = c.organization.unwrap();
        assert_eq!(org.ous.len(), 2);
        assert_eq!(
            org.regions,
            ["eu-west-1"],
            "the function's region by default"
        );
        let e = config(&[("ALERT_TOPIC_ARN", "t"), ("MEMBER_OUS", "ou-ab12-cdef3456")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("MEMBER_ROLE_NAME"), "{e}");
        let e = config(&[
            ("ALERT_TOPIC_ARN", "t"),
            ("MEMBER_OUS", "123456789012"),
            ("MEMBER_ROLE_NAME", "r"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("MEMBER_OUS: `123456789012`"), "{e}");
        let e = config(&[
            ("ALERT_TOPIC_ARN", "t"),
            ("MEMBER_OUS", "ou-ab12-cdef3456"),
            ("MEMBER_ROLE_NAME", "role/x"),
            ("MEMBER_REGIONS", "eu-west-1"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("MEMBER_ROLE_NAME=`role/x`"), "{e}");
    }

    #[test]
    fn wrong_values_name_the_variable() {
        let e = config(&[("ALERT_TOPIC_ARN", "t"), ("CHECKS", "vpc,vcp")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`vcp`") && e.contains("network-isolation"),
            "{e}"
        );
        let e = config(&[("ALERT_TOPIC_ARN", "t"), ("MODE", "stop")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("MODE=stop"), "{e}");
        let e = config(&[]).unwrap_err().to_string();
        assert!(e.contains("ALERT_TOPIC_ARN"), "{e}");
        let e = config(&[("ALERT_TOPIC_ARN", "t"), ("IDEMPOTENCY_TTL_HOURS", "0")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("IDEMPOTENCY_TTL_HOURS"), "{e}");
    }
}
