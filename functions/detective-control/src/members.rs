//! Organization-wide mode: in which account an event or a sweep acts, and the clients that act there —
//! this account's own, or a member account's through the responder role the member stack set creates
//! there (`MEMBER_ROLE_NAME`).
//!
//! An event names its account (the CloudTrail record's `recipientAccountId`); anyone who may invoke the
//! function can name any account, so the account is acted in only when it is this one or an ACTIVE
//! account of the configured OUs (`MEMBER_OUS`, nested OUs included, re-read every 5 minutes) in a
//! configured region (`MEMBER_REGIONS`). Every resource is described before it is acted on, so a forged
//! event can at worst make the control look at a real resource.
//!
//! Role sessions last 15 minutes (the shortest STS allows) and are reused for 10.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use shared::Error;
use shared::organizations::{Organizations, resolve};

use crate::config::Organization;
use crate::resource::Place;
use crate::sagemaker::SageMaker;

/// How long the member accounts read from AWS Organizations are trusted.
const MEMBERSHIP_TTL: Duration = Duration::from_secs(300);
/// How long an assumed-role session is reused (it lasts 15 minutes).
const SESSION_TTL: Duration = Duration::from_secs(600);
/// The role session's name: member accounts' CloudTrail shows it on every call the control makes.
const SESSION_NAME: &str = "secure-mlops-detective-control";

/// What acts in one account: its SageMaker and, when findings are enabled, its Security Hub (a finding
/// is imported by the account it belongs to; the administrator account aggregates them).
pub struct Reach {
    pub sagemaker: SageMaker,
    pub hub: Option<aws_sdk_securityhub::Client>,
}

impl Reach {
    pub fn new(sdk: &SdkConfig, security_hub: bool) -> Reach {
        Reach {
            sagemaker: SageMaker::new(shared::client!(aws_sdk_sagemaker, sdk)),
            hub: security_hub.then(|| shared::client!(aws_sdk_securityhub, sdk)),
        }
    }
}

/// Where an event or a sweep acts.
pub enum Scope {
    /// This account.
    Home,
    /// A member account, through its responder role.
    Member(Arc<Reach>),
    /// Neither: nothing is done (the reason says why).
    Outside(String),
    /// A member account whose responder role cannot be assumed (the error says which and why).
    Unreachable(String),
}

/// Assumed-role clients by (account, region), with when they were made.
type Sessions = HashMap<(String, String), (Instant, Arc<Reach>)>;

struct Org {
    config: Organization,
    sdk: SdkConfig,
    sts: aws_sdk_sts::Client,
    directory: Organizations,
}

pub struct Members {
    org: Option<Org>,
    security_hub: bool,
    accounts: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
    sessions: Mutex<Sessions>,
}

impl Members {
    /// `org`: the organization-wide settings, or `None` for this account only.
    pub fn new(sdk: &SdkConfig, org: Option<Organization>, security_hub: bool) -> Members {
        Members {
            org: org.map(|config| Org {
                config,
                sdk: sdk.clone(),
                sts: shared::client!(aws_sdk_sts, sdk),
                directory: Organizations::new(
                    shared::client!(aws_sdk_organizations, sdk),
                    "MEMBER_OUS",
                ),
            }),
            security_hub,
            accounts: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The regions a sweep covers in every member account (none in single-account mode).
    pub fn regions(&self) -> &[String] {
        self.org.as_ref().map_or(&[], |o| &o.config.regions)
    }

    /// The ACTIVE accounts of the configured OUs, sorted (none in single-account mode).
    pub async fn accounts(&self) -> Result<Arc<Vec<String>>, Error> {
        let Some(org) = &self.org else {
            return Ok(Arc::new(Vec::new()));
        };
        if let Some((at, ids)) = self.accounts.lock().map_err(poisoned)?.as_ref()
            && at.elapsed() < MEMBERSHIP_TTL
        {
            return Ok(Arc::clone(ids));
        }
        let ids = Arc::new(resolve(&org.directory, &org.config.ous, true, &[]).await?);
        *self.accounts.lock().map_err(poisoned)? = Some((Instant::now(), Arc::clone(&ids)));
        Ok(ids)
    }

    /// Where work naming `place` acts; `home` is this function's account.
    pub async fn scope(&self, home: &str, place: &Place) -> Result<Scope, Error> {
        if place.account == home {
            return Ok(Scope::Home);
        }
        let Some(org) = &self.org else {
            return Ok(Scope::Outside(format!(
                "account {} is not this account ({home}); set MEMBER_OUS to watch an organization's accounts",
                place.account
            )));
        };
        if !org.config.regions.contains(&place.region) {
            return Ok(Scope::Outside(format!(
                "region `{}` of account {} is not one of MEMBER_REGIONS ({})",
                place.region,
                place.account,
                org.config.regions.join(", ")
            )));
        }
        if self
            .accounts()
            .await?
            .binary_search(&place.account)
            .is_err()
        {
            return Ok(Scope::Outside(format!(
                "account {} is not an ACTIVE account of MEMBER_OUS",
                place.account
            )));
        }
        let key = (place.account.clone(), place.region.clone());
        if let Some((at, reach)) = self.sessions.lock().map_err(poisoned)?.get(&key)
            && at.elapsed() < SESSION_TTL
        {
            return Ok(Scope::Member(Arc::clone(reach)));
        }
        let role = self.role_arn(place).unwrap_or_default();
        let config =
            match shared::aws::assume(&org.sdk, &org.sts, &role, SESSION_NAME, Some(&place.region))
                .await
            {
                Ok(config) => config,
                Err(e) => return Ok(Scope::Unreachable(e.to_string())),
            };
        let reach = Arc::new(Reach::new(&config, self.security_hub));
        self.sessions
            .lock()
            .map_err(poisoned)?
            .insert(key, (Instant::now(), Arc::clone(&reach)));
        Ok(Scope::Member(reach))
    }

    /// The responder role of `place`'s account.
    pub fn role_arn(&self, place: &Place) -> Option<String> {
        let org = self.org.as_ref()?;
        Some(format!(
            "arn:{}:iam::{}:role/{}",
            place.partition, place.account, org.config.role_name
        ))
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::other("member cache lock poisoned")
}
