//! The SageMaker subset our functions call, with AWS's states, conflict rules and error codes.
//!
//! Error codes follow the API reference of each operation: `ResourceNotFound` where the reference
//! lists it (Describe/Delete of domains, user profiles, spaces, apps; Describe/Stop of jobs),
//! `ValidationException` where it lists none (models, endpoint configs, notebook instances, model
//! packages), with the message shapes AWS returns.

mod hosting;
mod jobs;
mod registry;
mod studio;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::moto_side::{self, Effect};
use super::store::{GONE, Resource, page, tick_all};
use super::{ACCOUNT, ApiError, ApiResult, REGION, Shared, World, now_secs};

/// (domain id, owner "user/NAME" or "space/NAME", app type, app name)
type AppKey = (String, String, String, String);

/// A job kind: its field prefix (`TrainingJob` → `TrainingJobName`, …) and ARN resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct JobKind {
    pub prefix: &'static str,
    pub arn_type: &'static str,
    pub label: &'static str,
}

pub const JOB_KINDS: [JobKind; 4] = [
    JobKind {
        prefix: "TrainingJob",
        arn_type: "training-job",
        label: "training job",
    },
    JobKind {
        prefix: "ProcessingJob",
        arn_type: "processing-job",
        label: "processing job",
    },
    JobKind {
        prefix: "TransformJob",
        arn_type: "transform-job",
        label: "transform job",
    },
    JobKind {
        prefix: "HyperParameterTuningJob",
        arn_type: "hyper-parameter-tuning-job",
        label: "hyper parameter tuning job",
    },
];

pub struct SageMaker {
    /// The account whose SageMaker this is (its ARNs, its CloudTrail records, its event bus).
    pub account: String,
    pub domains: BTreeMap<String, Resource>,
    pub profiles: BTreeMap<(String, String), Resource>,
    pub spaces: BTreeMap<(String, String), Resource>,
    pub apps: BTreeMap<AppKey, Resource>,
    pub jobs: BTreeMap<(&'static str, String), Resource>,
    pub notebooks: BTreeMap<String, Resource>,
    pub models: BTreeMap<String, Resource>,
    pub endpoint_configs: BTreeMap<String, Resource>,
    pub endpoints: BTreeMap<String, Resource>,
    pub groups: BTreeMap<String, Resource>,
    pub packages: BTreeMap<(String, u64), Resource>,
    pub tags: HashMap<String, Vec<Value>>,
    /// SageMaker's Service Catalog portfolio (Projects) enabled in this account, and the principals
    /// associated with it.
    pub projects: bool,
    pub portfolio_principals: std::collections::BTreeSet<String>,
    pub effects: Vec<Effect>,
    seq: u64,
}

impl Default for SageMaker {
    fn default() -> Self {
        SageMaker::of(ACCOUNT)
    }
}

fn s<'a>(p: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    p[field].as_str().filter(|v| !v.is_empty()).ok_or_else(|| {
        let mut camel = field.to_owned();
        if let Some(first) = camel.get_mut(0..1) {
            first.make_ascii_lowercase();
        }
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{camel}' failed to satisfy constraint: \
             Member must not be null"
        ))
    })
}

/// The request's own fields, minus `Tags` (kept separately, as SageMaker does).
fn fields(p: &Value) -> Value {
    let mut body = p.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.remove("Tags");
    }
    body
}

impl SageMaker {
    /// An account's SageMaker, empty.
    pub fn of(account: &str) -> Self {
        SageMaker {
            account: account.to_owned(),
            domains: Default::default(),
            profiles: Default::default(),
            spaces: Default::default(),
            apps: Default::default(),
            jobs: Default::default(),
            notebooks: Default::default(),
            models: Default::default(),
            endpoint_configs: Default::default(),
            endpoints: Default::default(),
            groups: Default::default(),
            packages: Default::default(),
            tags: Default::default(),
            projects: false,
            portfolio_principals: Default::default(),
            effects: Default::default(),
            seq: 0,
        }
    }

    pub fn arn(&self, path: &str) -> String {
        format!("arn:aws:sagemaker:{REGION}:{}:{path}", self.account)
    }

    fn id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        let t = (now_secs() * 1000.0) as u64;
        let raw = format!("{:x}{:06x}", t & 0xff_ffff, self.seq);
        let mut id: String = raw.chars().rev().take(12).collect();
        while id.len() < 12 {
            id.push('0');
        }
        format!("{prefix}{id}")
    }

    fn tick(&mut self) {
        let now = Instant::now();
        for gone in tick_all(&mut self.domains, now) {
            if gone.body["_Retention"] == "Delete"
                && let Some(fs) = gone.body["HomeEfsFileSystemId"].as_str()
            {
                self.effects.push(Effect::DeleteHome {
                    file_system_id: fs.to_owned(),
                });
            }
        }
        tick_all(&mut self.profiles, now);
        tick_all(&mut self.spaces, now);
        tick_all(&mut self.apps, now);
        tick_all(&mut self.jobs, now);
        tick_all(&mut self.notebooks, now);
        tick_all(&mut self.endpoints, now);
    }

    fn store_tags(&mut self, arn: &str, p: &Value) {
        if let Some(tags) = p["Tags"].as_array() {
            self.tags.insert(arn.to_owned(), tags.clone());
        }
    }

    fn cloudtrail(
        &mut self,
        event_name: &str,
        request: &Value,
        response: Option<&Value>,
        error: Option<&ApiError>,
    ) {
        let mut detail = json!({
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:data-scientist",
                "arn": format!("arn:aws:sts::{}:assumed-role/DataScientist/data-scientist", self.account),
                "accountId": self.account,
            },
            "eventTime": iso8601(now_secs()),
            "eventSource": "sagemaker.amazonaws.com",
            "eventName": event_name,
            "awsRegion": REGION,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-sdk-rust",
            "requestParameters": camel(request),
            "responseElements": response.map(camel).unwrap_or(Value::Null),
            "requestID": format!("{:08x}-twin", self.seq),
            "eventID": format!("{:08x}-0000-4000-8000-{:012x}", self.seq, (now_secs() * 1000.0) as u64),
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": self.account,
        });
        if let Some(e) = error {
            detail["errorCode"] = json!(e.code);
            detail["errorMessage"] = json!(e.message);
        }
        self.seq += 1;
        self.effects.push(Effect::Event {
            account: self.account.clone(),
            detail_type: "AWS API Call via CloudTrail".into(),
            detail,
            resources: vec![],
        });
    }

    fn package_event(&mut self, pkg: &Resource) {
        let mut detail = pkg.describe("ModelPackageStatus");
        detail["CreationTime"] = json!(iso8601(pkg.created));
        detail["LastModifiedTime"] = json!(iso8601(pkg.modified));
        self.effects.push(Effect::Event {
            account: self.account.clone(),
            detail_type: "SageMaker Model Package State Change".into(),
            detail,
            resources: vec![pkg.arn.clone()],
        });
    }
}

/// CloudTrail records request parameters with camelCase member names.
pub fn camel(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| {
                    let mut key = k.clone();
                    if let Some(first) = key.get_mut(0..1) {
                        first.make_ascii_lowercase();
                    }
                    (key, camel(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(camel).collect()),
        other => other.clone(),
    }
}

/// `2026-11-23T11:15:39Z` from seconds since the epoch.
pub fn iso8601(secs: f64) -> String {
    let t = secs as i64;
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Handles one SageMaker operation of `account`, then performs its side effects in moto.
pub async fn handle(world: &Shared, account: &str, op: &str, p: &Value) -> ApiResult {
    let (result, effects) = {
        let mut w = world.lock().expect("twin state");
        w.as_account(account, |w| answer(w, op, p))
    };
    for effect in effects {
        moto_side::apply(world, effect).await;
    }
    result
}

/// One operation on the current account's SageMaker (`w.sm`): its result and side effects.
fn answer(w: &mut World, op: &str, p: &Value) -> (ApiResult, Vec<Effect>) {
    {
        w.sm.tick();
        let result = operation(w, op, p);
        if CLOUDTRAIL_EVENTS.contains(&op) {
            let (ok, err) = match &result {
                Ok(v) => (Some(v.clone()), None),
                Err(e) => (None, Some(e.clone())),
            };
            w.sm.cloudtrail(op, p, ok.as_ref(), err.as_ref());
        }
        let effects = std::mem::take(&mut w.sm.effects);
        (result, effects)
    }
}

/// The calls the detective controls watch; each emits its CloudTrail event (also when it fails).
pub const CLOUDTRAIL_EVENTS: [&str; 12] = [
    "CreateTrainingJob",
    "CreateProcessingJob",
    "CreateTransformJob",
    "CreateHyperParameterTuningJob",
    "CreateModel",
    "CreateNotebookInstance",
    "UpdateNotebookInstance",
    "CreateEndpointConfig",
    "CreateEndpoint",
    "UpdateEndpoint",
    "CreateDomain",
    "UpdateDomain",
];

fn operation(w: &mut World, op: &str, p: &Value) -> ApiResult {
    if let Some(result) = studio::handle(w, op, p) {
        return result;
    }
    if let Some(result) = jobs::handle(w, op, p) {
        return result;
    }
    if let Some(result) = hosting::handle(w, op, p) {
        return result;
    }
    if let Some(result) = registry::handle(w, op, p) {
        return result;
    }
    match op {
        // SageMaker Projects: the account's switch for SageMaker's Service Catalog portfolio.
        "GetSagemakerServicecatalogPortfolioStatus" => {
            Ok(json!({"Status": if w.sm.projects { "Enabled" } else { "Disabled" }}))
        }
        "EnableSagemakerServicecatalogPortfolio" => {
            w.sm.projects = true;
            Ok(json!({}))
        }
        "DisableSagemakerServicecatalogPortfolio" => {
            w.sm.projects = false;
            Ok(json!({}))
        }
        "AddTags" => {
            let arn = s(p, "ResourceArn")?.to_owned();
            let tags = w.sm.tags.entry(arn).or_default();
            for tag in p["Tags"].as_array().cloned().unwrap_or_default() {
                tags.retain(|t| t["Key"] != tag["Key"]);
                tags.push(tag);
            }
            Ok(json!({"Tags": tags.clone()}))
        }
        "ListTags" => {
            let tags =
                w.sm.tags
                    .get(s(p, "ResourceArn")?)
                    .cloned()
                    .unwrap_or_default();
            page(tags, p, "Tags", 50)
        }
        "DeleteTags" => {
            let keys: Vec<Value> = p["TagKeys"].as_array().cloned().unwrap_or_default();
            if let Some(tags) = w.sm.tags.get_mut(s(p, "ResourceArn")?) {
                tags.retain(|t| !keys.contains(&t["Key"]));
            }
            Ok(json!({}))
        }
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("the SageMaker twin does not implement {other}"),
        )),
    }
}

/// The portfolio SageMaker shares with an account once Projects are enabled (an imported share,
/// provider "Amazon SageMaker", as `ListAcceptedPortfolioShares` shows it).
pub const PROJECTS_PORTFOLIO: &str = "port-sagemaker0001";

/// Service Catalog, as far as SageMaker Projects use it: the accepted share of SageMaker's portfolio
/// (present only while `EnableSagemakerServicecatalogPortfolio` holds) and its principals.
pub fn service_catalog(w: &mut World, op: &str, p: &Value) -> ApiResult {
    let portfolio = |p: &Value| -> Result<(), ApiError> {
        match p["PortfolioId"].as_str() {
            Some(PROJECTS_PORTFOLIO) if w.sm.projects => Ok(()),
            other => Err(ApiError::new(
                "ResourceNotFoundException",
                format!("Portfolio {} not found", other.unwrap_or_default()),
            )),
        }
    };
    match op {
        "ListAcceptedPortfolioShares" => {
            let shares = if w.sm.projects {
                vec![json!({"Id": PROJECTS_PORTFOLIO,
                    "ARN": format!("arn:aws:catalog:{REGION}:{}:portfolio/{PROJECTS_PORTFOLIO}", w.sm.account),
                    "DisplayName": "Amazon SageMaker Solutions and ML Ops products",
                    "ProviderName": "Amazon SageMaker"})]
            } else {
                vec![]
            };
            Ok(json!({"PortfolioDetails": shares}))
        }
        "AssociatePrincipalWithPortfolio" => {
            portfolio(p)?;
            let arn = s(p, "PrincipalARN")?.to_owned();
            w.sm.portfolio_principals.insert(arn);
            Ok(json!({}))
        }
        "DisassociatePrincipalFromPortfolio" => {
            portfolio(p)?;
            let arn = s(p, "PrincipalARN")?.to_owned();
            w.sm.portfolio_principals.remove(&arn);
            Ok(json!({}))
        }
        "ListPrincipalsForPortfolio" => {
            portfolio(p)?;
            let principals: Vec<Value> =
                w.sm.portfolio_principals
                    .iter()
                    .map(|a| json!({"PrincipalARN": a, "PrincipalType": "IAM"}))
                    .collect();
            Ok(json!({"Principals": principals}))
        }
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("the twin's Service Catalog does not implement {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_432_539.0), "2026-11-23T11:15:39Z");
    }

    #[test]
    fn cloudtrail_parameters_are_camel_case() {
        let v =
            camel(&json!({"TrainingJobName": "j", "VpcConfig": {"SecurityGroupIds": ["sg-1"]}}));
        assert_eq!(
            v,
            json!({"trainingJobName": "j", "vpcConfig": {"securityGroupIds": ["sg-1"]}})
        );
    }
}
