//! The SageMaker subset our functions call, with AWS's states, conflict rules and error codes.
//!
//! Error codes follow the API reference of each operation: `ResourceNotFound` where the reference
//! lists it (Describe/Delete of domains, user profiles, spaces, apps; Describe/Stop of jobs),
//! `ValidationException` where it lists none (models, endpoint configs, notebook instances, model
//! packages), with the message shapes AWS returns.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::store::{GONE, Resource, page, tick_all};
use super::{ACCOUNT, ApiError, ApiResult, REGION, Shared, World, moto_side, now_secs};

/// Side effects performed after the lock is released (they call moto).
#[derive(Debug, Clone)]
pub enum Effect {
    CreateHome {
        domain_id: String,
        domain_arn: String,
        vpc_id: String,
        subnets: Vec<String>,
        kms_key_id: Option<String>,
    },
    DeleteHome {
        file_system_id: String,
    },
    Event {
        detail_type: String,
        detail: Value,
        resources: Vec<String>,
    },
}

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

#[derive(Default)]
pub struct SageMaker {
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
    pub effects: Vec<Effect>,
    seq: u64,
}

pub fn arn(path: &str) -> String {
    format!("arn:aws:sagemaker:{REGION}:{ACCOUNT}:{path}")
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
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/DataScientist/data-scientist"),
                "accountId": ACCOUNT,
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
            "recipientAccountId": ACCOUNT,
        });
        if let Some(e) = error {
            detail["errorCode"] = json!(e.code);
            detail["errorMessage"] = json!(e.message);
        }
        self.seq += 1;
        self.effects.push(Effect::Event {
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

/// Handles one SageMaker operation, then performs its side effects in moto.
pub async fn handle(world: &Shared, op: &str, p: &Value) -> ApiResult {
    let (result, effects) = {
        let mut w = world.lock().expect("twin state");
        w.sm.tick();
        let result = operation(&mut w, op, p);
        if CLOUDTRAIL_EVENTS.contains(&op) {
            let (ok, err) = match &result {
                Ok(v) => (Some(v.clone()), None),
                Err(e) => (None, Some(e.clone())),
            };
            w.sm.cloudtrail(op, p, ok.as_ref(), err.as_ref());
        }
        let effects = std::mem::take(&mut w.sm.effects);
        (result, effects)
    };
    for effect in effects {
        moto_side::apply(world, effect).await;
    }
    result
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
    if let Some(result) = studio(w, op, p) {
        return result;
    }
    if let Some(result) = jobs(w, op, p) {
        return result;
    }
    if let Some(result) = hosting(w, op, p) {
        return result;
    }
    if let Some(result) = registry(w, op, p) {
        return result;
    }
    match op {
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

// ------------------------------------------------------------------------------------ Studio

fn studio(w: &mut World, op: &str, p: &Value) -> Option<ApiResult> {
    Some(match op {
        "CreateDomain" => create_domain(w, p),
        "DescribeDomain" => domain(w, p).map(|d| d.describe("Status")),
        "ListDomains" => {
            let items = w.sm.domains.values().map(|d| {
                let full = d.describe("Status");
                json!({"DomainArn": d.arn, "DomainId": full["DomainId"], "DomainName": full["DomainName"],
                       "Status": d.status, "CreationTime": d.created, "LastModifiedTime": d.modified, "Url": full["Url"]})
            });
            page(items.collect(), p, "Domains", 100)
        }
        "UpdateDomain" => update_domain(w, p),
        "DeleteDomain" => delete_domain(w, p),
        "CreateUserProfile" => create_user_profile(w, p),
        "DescribeUserProfile" => profile(w, p).map(|r| r.describe("Status")),
        "UpdateUserProfile" => {
            let after = w.duration("profile.update");
            profile(w, p).and_then(|r| {
                require_in_service(r, "UserProfile")?;
                if let Some(settings) = p.get("UserSettings") {
                    r.body["UserSettings"] = settings.clone();
                }
                r.transition("Updating", after, "InService");
                Ok(json!({"UserProfileArn": r.arn}))
            })
        }
        "DeleteUserProfile" => delete_user_profile(w, p),
        "ListUserProfiles" => {
            let domain = p["DomainIdEquals"].as_str();
            let contains = p["UserProfileNameContains"].as_str().unwrap_or("");
            let items = w
                .sm
                .profiles
                .iter()
                .filter(|((d, n), _)| domain.is_none_or(|x| x == d) && n.contains(contains))
                .map(|((d, n), r)| json!({"DomainId": d, "UserProfileName": n, "Status": r.status,
                                          "CreationTime": r.created, "LastModifiedTime": r.modified}));
            page(items.collect(), p, "UserProfiles", 10)
        }
        "CreateSpace" => create_space(w, p),
        "DescribeSpace" => space(w, p).map(|r| r.describe("Status")),
        "DeleteSpace" => delete_space(w, p),
        "ListSpaces" => {
            let domain = p["DomainIdEquals"].as_str();
            let items = w
                .sm
                .spaces
                .iter()
                .filter(|((d, _), _)| domain.is_none_or(|x| x == d))
                .map(|((d, n), r)| {
                    let mut item = json!({"DomainId": d, "SpaceName": n, "Status": r.status,
                                          "CreationTime": r.created, "LastModifiedTime": r.modified});
                    if let Some(owner) = r.body["OwnershipSettings"]["OwnerUserProfileName"].as_str() {
                        item["OwnershipSettingsSummary"] = json!({"OwnerUserProfileName": owner});
                    }
                    item
                });
            page(items.collect(), p, "Spaces", 10)
        }
        "CreateApp" => create_app(w, p),
        "DescribeApp" => {
            let key = app_key(p);
            key.and_then(|k| {
                w.sm.apps
                    .get(&k)
                    .map(|r| r.describe("Status"))
                    .ok_or_else(|| {
                        ApiError::not_found(format!("App with name {} does not exist", k.3))
                    })
            })
        }
        "DeleteApp" => delete_app(w, p),
        "ListApps" => {
            let domain = p["DomainIdEquals"].as_str();
            let user = p["UserProfileNameEquals"]
                .as_str()
                .map(|u| format!("user/{u}"));
            let space = p["SpaceNameEquals"].as_str().map(|u| format!("space/{u}"));
            let items = w
                .sm
                .apps
                .iter()
                .filter(|((d, owner, _, _), _)| {
                    domain.is_none_or(|x| x == d)
                        && user.as_ref().is_none_or(|u| u == owner)
                        && space.as_ref().is_none_or(|u| u == owner)
                })
                .map(|(_, r)| {
                    let full = r.describe("Status");
                    let mut item = json!({"DomainId": full["DomainId"], "AppType": full["AppType"],
                        "AppName": full["AppName"], "Status": r.status, "CreationTime": r.created});
                    for f in ["UserProfileName", "SpaceName", "ResourceSpec"] {
                        if !full[f].is_null() {
                            item[f] = full[f].clone();
                        }
                    }
                    item
                });
            page(items.collect(), p, "Apps", 10)
        }
        _ => return None,
    })
}

fn domain<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let id = s(p, "DomainId")?;
    w.sm.domains
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found(format!("Cannot find Domain with id {id}")))
}

fn require_in_service(r: &Resource, what: &str) -> Result<(), ApiError> {
    if r.status == "InService" {
        Ok(())
    } else {
        Err(ApiError::in_use(format!(
            "{what} [{}] is in status {}: the operation needs InService",
            r.arn, r.status
        )))
    }
}

fn create_domain(w: &mut World, p: &Value) -> ApiResult {
    for f in ["DomainName", "AuthMode", "VpcId"] {
        s(p, f)?;
    }
    let subnets: Vec<String> = p["SubnetIds"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if subnets.is_empty() {
        return Err(ApiError::validation(
            "1 validation error detected: Value null at 'subnetIds' failed to satisfy constraint: \
             Member must not be null",
        ));
    }
    let id = w.sm.id("d-");
    let domain_arn = arn(&format!("domain/{id}"));
    let mut body = fields(p);
    body["DomainId"] = json!(id);
    body["DomainArn"] = json!(domain_arn);
    body["Url"] = json!(format!("https://{id}.studio.{REGION}.sagemaker.aws"));
    if body["AppNetworkAccessType"].is_null() {
        body["AppNetworkAccessType"] = json!("PublicInternetOnly");
    }
    let mut r = Resource::new(domain_arn.clone(), body, "Pending");
    let after = w.duration("domain.create");
    match w.take_outcome("domain.create").as_deref() {
        Some("Failed") => {
            r.transition("Pending", after, "Failed");
            r.failure_reason = Some("The twin was told to fail this domain's creation".into());
        }
        _ => r.transition("Pending", after, "InService"),
    }
    w.sm.store_tags(&domain_arn, p);
    w.sm.domains.insert(id.clone(), r);
    w.sm.effects.push(Effect::CreateHome {
        domain_id: id.clone(),
        domain_arn: domain_arn.clone(),
        vpc_id: s(p, "VpcId")?.to_owned(),
        subnets,
        kms_key_id: p["KmsKeyId"].as_str().map(str::to_owned),
    });
    Ok(
        json!({"DomainArn": domain_arn, "DomainId": id, "Url": format!("https://{id}.studio.{REGION}.sagemaker.aws")}),
    )
}

fn update_domain(w: &mut World, p: &Value) -> ApiResult {
    let after = w.duration("domain.update");
    let outcome = w.take_outcome("domain.update");
    let d = domain(w, p)?;
    require_in_service(d, "Domain")?;
    for (k, v) in p.as_object().into_iter().flatten() {
        match k.as_str() {
            "DomainId" => {}
            "DomainSettingsForUpdate" => d.body["DomainSettings"] = v.clone(),
            _ => d.body[k] = v.clone(),
        }
    }
    let then = if outcome.as_deref() == Some("Update_Failed") {
        d.failure_reason = Some("The twin was told to fail this update".into());
        "Update_Failed"
    } else {
        "InService"
    };
    d.transition("Updating", after, then);
    Ok(json!({"DomainArn": d.arn}))
}

fn delete_domain(w: &mut World, p: &Value) -> ApiResult {
    let id = s(p, "DomainId")?.to_owned();
    let after = w.duration("domain.delete");
    let outcome = w.take_outcome("domain.delete");
    let has_profiles = w.sm.profiles.keys().any(|(d, _)| *d == id);
    let has_spaces = w.sm.spaces.keys().any(|(d, _)| *d == id);
    let d = domain(w, p)?;
    if d.status == "Deleting" {
        return Ok(json!({}));
    }
    if has_profiles || has_spaces {
        return Err(ApiError::in_use(format!(
            "Unable to delete Domain [{}] because UserProfile(s) or Space(s) are associated with it",
            d.arn
        )));
    }
    d.body["_Retention"] = p["RetentionPolicy"]["HomeEfsFileSystem"]
        .as_str()
        .map_or(json!("Retain"), |v| json!(v));
    if outcome.as_deref() == Some("Delete_Failed") {
        d.failure_reason = Some("The twin was told to fail this deletion".into());
        d.transition("Deleting", after, "Delete_Failed");
    } else {
        d.transition("Deleting", after, GONE);
    }
    Ok(json!({}))
}

fn profile<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let key = (
        s(p, "DomainId")?.to_owned(),
        s(p, "UserProfileName")?.to_owned(),
    );
    w.sm.profiles
        .get_mut(&key)
        .ok_or_else(|| ApiError::not_found(format!("User profile {} does not exist", key.1)))
}

fn create_user_profile(w: &mut World, p: &Value) -> ApiResult {
    let domain_id = s(p, "DomainId")?.to_owned();
    let name = s(p, "UserProfileName")?.to_owned();
    let d = domain(w, p)?;
    if d.status == "Deleting" {
        return Err(ApiError::in_use(format!(
            "Domain [{}] is being deleted",
            d.arn
        )));
    }
    let key = (domain_id.clone(), name.clone());
    if w.sm.profiles.contains_key(&key) {
        return Err(ApiError::in_use(format!(
            "User profile {name} already exists in Domain {domain_id}"
        )));
    }
    let profile_arn = arn(&format!("user-profile/{domain_id}/{name}"));
    let mut body = fields(p);
    body["UserProfileArn"] = json!(profile_arn);
    body["HomeEfsFileSystemUid"] = json!(format!("{}", 200_000 + w.sm.profiles.len() + 1));
    let mut r = Resource::new(profile_arn.clone(), body, "Pending");
    let after = w.duration("profile.create");
    match w.take_outcome("profile.create").as_deref() {
        Some("Failed") => {
            r.failure_reason = Some("The twin was told to fail this user profile".into());
            r.transition("Pending", after, "Failed");
        }
        _ => r.transition("Pending", after, "InService"),
    }
    w.sm.store_tags(&profile_arn, p);
    w.sm.profiles.insert(key, r);
    Ok(json!({"UserProfileArn": profile_arn}))
}

fn delete_user_profile(w: &mut World, p: &Value) -> ApiResult {
    let domain_id = s(p, "DomainId")?.to_owned();
    let name = s(p, "UserProfileName")?.to_owned();
    let owner = format!("user/{name}");
    let has_apps =
        w.sm.apps
            .iter()
            .any(|((d, o, _, _), r)| *d == domain_id && *o == owner && r.status != "Deleted");
    let owns_spaces = w.sm.spaces.iter().any(|((d, _), r)| {
        *d == domain_id && r.body["OwnershipSettings"]["OwnerUserProfileName"] == name.as_str()
    });
    let after = w.duration("profile.delete");
    let outcome = w.take_outcome("profile.delete");
    let r = profile(w, p)?;
    if r.status == "Deleting" {
        return Ok(json!({}));
    }
    if has_apps {
        return Err(ApiError::in_use(format!(
            "Unable to delete UserProfile [{}] because App(s) are associated with it.",
            r.arn
        )));
    }
    if owns_spaces {
        return Err(ApiError::in_use(format!(
            "Unable to delete UserProfile [{}] because Space(s) are associated with it.",
            r.arn
        )));
    }
    if outcome.as_deref() == Some("Delete_Failed") {
        r.failure_reason = Some("The twin was told to fail this deletion".into());
        r.transition("Deleting", after, "Delete_Failed");
    } else {
        r.transition("Deleting", after, GONE);
    }
    Ok(json!({}))
}

fn space<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let key = (s(p, "DomainId")?.to_owned(), s(p, "SpaceName")?.to_owned());
    w.sm.spaces
        .get_mut(&key)
        .ok_or_else(|| ApiError::not_found(format!("Space {} does not exist", key.1)))
}

fn create_space(w: &mut World, p: &Value) -> ApiResult {
    let domain_id = s(p, "DomainId")?.to_owned();
    let name = s(p, "SpaceName")?.to_owned();
    domain(w, p)?;
    if let Some(owner) = p["OwnershipSettings"]["OwnerUserProfileName"].as_str()
        && !w
            .sm
            .profiles
            .contains_key(&(domain_id.clone(), owner.to_owned()))
    {
        return Err(ApiError::not_found(format!(
            "User profile {owner} does not exist"
        )));
    }
    let key = (domain_id.clone(), name.clone());
    if w.sm.spaces.contains_key(&key) {
        return Err(ApiError::in_use(format!(
            "Space {name} already exists in Domain {domain_id}"
        )));
    }
    let space_arn = arn(&format!("space/{domain_id}/{name}"));
    let mut body = fields(p);
    body["SpaceArn"] = json!(space_arn);
    let mut r = Resource::new(space_arn.clone(), body, "Pending");
    r.transition("Pending", w.duration("space.create"), "InService");
    w.sm.store_tags(&space_arn, p);
    w.sm.spaces.insert(key, r);
    Ok(json!({"SpaceArn": space_arn}))
}

fn delete_space(w: &mut World, p: &Value) -> ApiResult {
    let domain_id = s(p, "DomainId")?.to_owned();
    let owner = format!("space/{}", s(p, "SpaceName")?);
    let has_apps =
        w.sm.apps
            .iter()
            .any(|((d, o, _, _), r)| *d == domain_id && *o == owner && r.status != "Deleted");
    let after = w.duration("space.delete");
    let r = space(w, p)?;
    if r.status == "Deleting" {
        return Ok(json!({}));
    }
    if has_apps {
        return Err(ApiError::in_use(format!(
            "Unable to delete Space [{}] because App(s) are associated with it.",
            r.arn
        )));
    }
    r.transition("Deleting", after, GONE);
    Ok(json!({}))
}

fn app_key(p: &Value) -> Result<AppKey, ApiError> {
    let owner = match (p["UserProfileName"].as_str(), p["SpaceName"].as_str()) {
        (Some(u), None) => format!("user/{u}"),
        (None, Some(sp)) => format!("space/{sp}"),
        _ => {
            return Err(ApiError::validation(
                "Exactly one of UserProfileName or SpaceName must be provided",
            ));
        }
    };
    Ok((
        s(p, "DomainId")?.to_owned(),
        owner,
        s(p, "AppType")?.to_owned(),
        s(p, "AppName")?.to_owned(),
    ))
}

fn create_app(w: &mut World, p: &Value) -> ApiResult {
    let key = app_key(p)?;
    domain(w, p)?;
    let (domain_id, owner) = (key.0.clone(), key.1.clone());
    let owner_exists = match owner.split_once('/') {
        Some(("user", u)) => {
            w.sm.profiles
                .contains_key(&(domain_id.clone(), u.to_owned()))
        }
        Some((_, sp)) => {
            w.sm.spaces
                .contains_key(&(domain_id.clone(), sp.to_owned()))
        }
        None => false,
    };
    if !owner_exists {
        return Err(ApiError::not_found(format!(
            "{owner} does not exist in Domain {domain_id}"
        )));
    }
    if w.sm.apps.get(&key).is_some_and(|a| a.status != "Deleted") {
        return Err(ApiError::in_use(format!("App {} already exists", key.3)));
    }
    let app_arn = arn(&format!(
        "app/{domain_id}/{}/{}/{}",
        owner.rsplit('/').next().unwrap_or(""),
        key.2.to_lowercase(),
        key.3
    ));
    let mut body = fields(p);
    body["AppArn"] = json!(app_arn);
    let mut r = Resource::new(app_arn.clone(), body, "Pending");
    r.transition("Pending", w.duration("app.create"), "InService");
    w.sm.store_tags(&app_arn, p);
    w.sm.apps.insert(key, r);
    Ok(json!({"AppArn": app_arn}))
}

fn delete_app(w: &mut World, p: &Value) -> ApiResult {
    let key = app_key(p)?;
    let after = w.duration("app.delete");
    let Some(r) = w.sm.apps.get_mut(&key) else {
        return Err(ApiError::not_found(format!(
            "App with name {} does not exist",
            key.3
        )));
    };
    match r.status.as_str() {
        "Deleted" => Err(ApiError::not_found(format!(
            "App [{}] does not exist (it is already Deleted)",
            r.arn
        ))),
        "Deleting" => Ok(json!({})),
        _ => {
            r.transition("Deleting", after, "Deleted");
            Ok(json!({}))
        }
    }
}

// -------------------------------------------------------------------------------------- jobs

fn jobs(w: &mut World, op: &str, p: &Value) -> Option<ApiResult> {
    for kind in JOB_KINDS {
        let result = if op == format!("Create{}", kind.prefix) {
            create_job(w, kind, p)
        } else if op == format!("Describe{}", kind.prefix) {
            job(w, kind, p).map(|r| r.describe(&format!("{}Status", kind.prefix)))
        } else if op == format!("Stop{}", kind.prefix) {
            stop_job(w, kind, p)
        } else if op == format!("List{}s", kind.prefix) {
            list_jobs(w, kind, p)
        } else {
            continue;
        };
        return Some(result);
    }
    None
}

fn job<'a>(w: &'a mut World, kind: JobKind, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let name = s(p, &format!("{}Name", kind.prefix))?;
    w.sm.jobs
        .get_mut(&(kind.prefix, name.to_owned()))
        .ok_or_else(|| ApiError::not_found("Requested resource not found."))
}

fn create_job(w: &mut World, kind: JobKind, p: &Value) -> ApiResult {
    let name = s(p, &format!("{}Name", kind.prefix))?.to_owned();
    let job_arn = arn(&format!("{}/{}", kind.arn_type, name.to_lowercase()));
    if w.sm.jobs.contains_key(&(kind.prefix, name.clone())) {
        return Err(ApiError::in_use(format!(
            "{} names must be unique within an AWS account and region, and a {} with this name \
             already exists ({job_arn})",
            capitalize(kind.label),
            kind.label
        )));
    }
    let mut body = fields(p);
    body[format!("{}Arn", kind.prefix)] = json!(job_arn);
    let after = w
        .durations
        .get(&format!("job.{}", kind.arn_type))
        .copied()
        .unwrap_or_else(|| w.duration("job"));
    let mut r = Resource::new(job_arn.clone(), body, "InProgress");
    match w.take_outcome("job").as_deref() {
        Some("Failed") => {
            r.failure_reason = Some("AlgorithmError: the twin was told to fail this job".into());
            r.transition("InProgress", after, "Failed");
        }
        _ => r.transition("InProgress", after, "Completed"),
    }
    w.sm.store_tags(&job_arn, p);
    w.sm.jobs.insert((kind.prefix, name), r);
    Ok(json!({ format!("{}Arn", kind.prefix): job_arn }))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn stop_job(w: &mut World, kind: JobKind, p: &Value) -> ApiResult {
    let after = w.duration("job.stop");
    let r = job(w, kind, p)?;
    match r.status.as_str() {
        "InProgress" => {
            r.transition("Stopping", after, "Stopped");
            Ok(json!({}))
        }
        "Stopping" => Ok(json!({})),
        status => Err(ApiError::validation(format!(
            "The request was rejected because the {} is in status {status}.",
            kind.label
        ))),
    }
}

fn list_jobs(w: &mut World, kind: JobKind, p: &Value) -> ApiResult {
    let status = p["StatusEquals"].as_str();
    let after = p["CreationTimeAfter"].as_f64();
    let contains = p["NameContains"].as_str().unwrap_or("");
    let mut items: Vec<(f64, Value)> =
        w.sm.jobs
            .iter()
            .filter(|((k, n), r)| {
                *k == kind.prefix
                    && status.is_none_or(|s| s == r.status)
                    && after.is_none_or(|t| r.created > t)
                    && n.contains(contains)
            })
            .map(|((_, n), r)| {
                let mut item = json!({
                    format!("{}Name", kind.prefix): n,
                    format!("{}Arn", kind.prefix): r.arn,
                    format!("{}Status", kind.prefix): r.status,
                    "CreationTime": r.created,
                    "LastModifiedTime": r.modified,
                });
                if kind.prefix == "HyperParameterTuningJob" {
                    let strategy = &r.body["HyperParameterTuningJobConfig"]["Strategy"];
                    item["Strategy"] = if strategy.is_null() {
                        json!("Bayesian")
                    } else {
                        strategy.clone()
                    };
                    item["TrainingJobStatusCounters"] = json!({});
                    item["ObjectiveStatusCounters"] = json!({});
                }
                (r.created, item)
            })
            .collect();
    items.sort_by(|a, b| b.0.total_cmp(&a.0)); // default: CreationTime, Descending
    if p["SortOrder"] == "Ascending" {
        items.reverse();
    }
    page(
        items.into_iter().map(|(_, v)| v).collect(),
        p,
        &format!("{}Summaries", kind.prefix),
        10,
    )
}

// ------------------------------------------------------------------- notebooks, models, configs

fn hosting(w: &mut World, op: &str, p: &Value) -> Option<ApiResult> {
    Some(match op {
        "CreateNotebookInstance" => create_notebook(w, p),
        "DescribeNotebookInstance" => notebook(w, p).map(|r| r.describe("NotebookInstanceStatus")),
        "StopNotebookInstance" => {
            let after = w.duration("notebook.stop");
            notebook(w, p).and_then(|r| {
                notebook_transition(r, &["InService"], "Stopping")?;
                r.transition("Stopping", after, "Stopped");
                Ok(json!({}))
            })
        }
        "StartNotebookInstance" => {
            let after = w.duration("notebook.create");
            notebook(w, p).and_then(|r| {
                notebook_transition(r, &["Stopped", "Failed"], "Pending")?;
                r.transition("Pending", after, "InService");
                Ok(json!({}))
            })
        }
        "UpdateNotebookInstance" => {
            let after = w.duration("notebook.update");
            notebook(w, p).and_then(|r| {
                notebook_transition(r, &["Stopped"], "Updating")?;
                for (k, v) in p.as_object().into_iter().flatten() {
                    r.body[k] = v.clone();
                }
                r.transition("Updating", after, "Stopped");
                Ok(json!({}))
            })
        }
        "DeleteNotebookInstance" => {
            let after = w.duration("notebook.delete");
            notebook(w, p).and_then(|r| {
                notebook_transition(r, &["Stopped", "Failed"], "Deleting")?;
                r.transition("Deleting", after, GONE);
                Ok(json!({}))
            })
        }
        "ListNotebookInstances" => {
            let status = p["StatusEquals"].as_str();
            let items = w
                .sm
                .notebooks
                .values()
                .filter(|r| status.is_none_or(|s| s == r.status))
                .map(|r| json!({"NotebookInstanceName": r.body["NotebookInstanceName"], "NotebookInstanceArn": r.arn,
                    "NotebookInstanceStatus": r.status, "CreationTime": r.created, "LastModifiedTime": r.modified,
                    "InstanceType": r.body["InstanceType"]}));
            page(items.collect(), p, "NotebookInstances", 10)
        }
        "CreateModel" => create_simple(w, p, "Model", "model", "model"),
        "DescribeModel" => simple(w, p, "Model", "model").map(|r| r.describe("_Status")),
        "DeleteModel" => delete_simple(w, p, "Model", "model"),
        "ListModels" => list_simple(w, p, "Model", "Models"),
        "CreateEndpointConfig" => create_simple(
            w,
            p,
            "EndpointConfig",
            "endpoint-config",
            "endpoint configuration",
        ),
        "DescribeEndpointConfig" => {
            simple(w, p, "EndpointConfig", "endpoint configuration").map(|r| r.describe("_Status"))
        }
        "DeleteEndpointConfig" => delete_simple(w, p, "EndpointConfig", "endpoint configuration"),
        "ListEndpointConfigs" => list_simple(w, p, "EndpointConfig", "EndpointConfigs"),
        "CreateEndpoint" => create_endpoint(w, p),
        "DescribeEndpoint" => endpoint(w, p).map(|r| r.describe("EndpointStatus")),
        "UpdateEndpoint" => update_endpoint(w, p),
        "DeleteEndpoint" => {
            let name = match endpoint(w, p) {
                Ok(_) => s(p, "EndpointName").map(str::to_owned),
                Err(e) => Err(e),
            };
            name.map(|n| {
                w.sm.endpoints.remove(&n);
                json!({})
            })
        }
        "ListEndpoints" => {
            let contains = p["NameContains"].as_str().unwrap_or("");
            let status = p["StatusEquals"].as_str();
            let items =
                w.sm.endpoints
                    .iter()
                    .filter(|(n, r)| n.contains(contains) && status.is_none_or(|s| s == r.status))
                    .map(|(n, r)| {
                        json!({"EndpointName": n, "EndpointArn": r.arn, "EndpointStatus": r.status,
                    "CreationTime": r.created, "LastModifiedTime": r.modified})
                    })
                    .collect();
            page(items, p, "Endpoints", 10)
        }
        _ => return None,
    })
}

fn notebook<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let name = s(p, "NotebookInstanceName")?;
    w.sm.notebooks
        .get_mut(name)
        .ok_or_else(|| ApiError::validation("RecordNotFound"))
}

/// SageMaker's message for a notebook state change that is not allowed from the current status.
fn notebook_transition(r: &Resource, allowed: &[&str], to: &str) -> Result<(), ApiError> {
    if allowed.contains(&r.status.as_str()) {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "Status ({}) not in ([{}]). Unable to transition to ({to}) for Notebook Instance ({}).",
        r.status,
        allowed.join(", "),
        r.arn
    )))
}

fn create_notebook(w: &mut World, p: &Value) -> ApiResult {
    let name = s(p, "NotebookInstanceName")?.to_owned();
    s(p, "InstanceType")?;
    s(p, "RoleArn")?;
    let nb_arn = arn(&format!("notebook-instance/{}", name.to_lowercase()));
    if w.sm.notebooks.contains_key(&name) {
        return Err(ApiError::validation(format!(
            "Cannot create a duplicate Notebook Instance ({nb_arn})"
        )));
    }
    let mut body = fields(p);
    body["NotebookInstanceArn"] = json!(nb_arn);
    // AWS's defaults: internet access and root access are enabled unless disabled.
    for (field, default) in [
        ("DirectInternetAccess", "Enabled"),
        ("RootAccess", "Enabled"),
    ] {
        if body[field].is_null() {
            body[field] = json!(default);
        }
    }
    body["Url"] = json!(format!("{name}.notebook.{REGION}.sagemaker.aws"));
    let mut r = Resource::new(nb_arn.clone(), body, "Pending");
    r.transition("Pending", w.duration("notebook.create"), "InService");
    w.sm.store_tags(&nb_arn, p);
    w.sm.notebooks.insert(name, r);
    Ok(json!({"NotebookInstanceArn": nb_arn}))
}

/// The endpoint `EndpointName` names ("Could not find endpoint" otherwise, as SageMaker says).
fn endpoint<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let name = s(p, "EndpointName")?.to_owned();
    let res_arn = arn(&format!("endpoint/{}", name.to_lowercase()));
    w.sm.endpoints
        .get_mut(&name)
        .ok_or_else(|| ApiError::validation(format!("Could not find endpoint \"{res_arn}\".")))
}

/// The endpoint config `EndpointConfigName` names must exist for an endpoint to use it.
fn known_config(w: &mut World, p: &Value) -> Result<String, ApiError> {
    let config = s(p, "EndpointConfigName")?.to_owned();
    if !w.sm.endpoint_configs.contains_key(&config) {
        return Err(ApiError::validation(format!(
            "Could not find endpoint configuration \"{}\".",
            arn(&format!("endpoint-config/{}", config.to_lowercase()))
        )));
    }
    Ok(config)
}

/// CreateEndpoint: `Creating`, then `InService` (after `endpoint.create`).
fn create_endpoint(w: &mut World, p: &Value) -> ApiResult {
    let name = s(p, "EndpointName")?.to_owned();
    let config = known_config(w, p)?;
    let res_arn = arn(&format!("endpoint/{}", name.to_lowercase()));
    if w.sm.endpoints.contains_key(&name) {
        return Err(ApiError::validation(format!(
            "Cannot create already existing endpoint \"{res_arn}\"."
        )));
    }
    let body = json!({"EndpointName": name, "EndpointArn": res_arn, "EndpointConfigName": config});
    w.sm.store_tags(&res_arn, p);
    let mut r = Resource::new(res_arn.clone(), body, "Creating");
    r.transition("Creating", w.duration("endpoint.create"), "InService");
    w.sm.endpoints.insert(name, r);
    Ok(json!({"EndpointArn": res_arn}))
}

/// UpdateEndpoint: only an `InService` endpoint, to an existing config; `Updating`, then `InService`.
fn update_endpoint(w: &mut World, p: &Value) -> ApiResult {
    let config = known_config(w, p)?;
    let after = w.duration("endpoint.update");
    let r = endpoint(w, p)?;
    if r.status != "InService" {
        return Err(ApiError::validation(format!(
            "Cannot update in-progress endpoint \"{}\".",
            r.arn
        )));
    }
    r.body["EndpointConfigName"] = json!(config);
    r.transition("Updating", after, "InService");
    Ok(json!({"EndpointArn": r.arn}))
}

fn simple_map<'a>(w: &'a mut World, prefix: &str) -> &'a mut BTreeMap<String, Resource> {
    if prefix == "Model" {
        &mut w.sm.models
    } else {
        &mut w.sm.endpoint_configs
    }
}

fn simple<'a>(
    w: &'a mut World,
    p: &Value,
    prefix: &str,
    label: &str,
) -> Result<&'a mut Resource, ApiError> {
    let name = s(p, &format!("{prefix}Name"))?.to_owned();
    simple_map(w, prefix).get_mut(&name).ok_or_else(|| {
        let arn_type = if prefix == "Model" {
            "model"
        } else {
            "endpoint-config"
        };
        ApiError::validation(format!(
            "Could not find {label} \"{}\".",
            arn(&format!("{arn_type}/{}", name.to_lowercase()))
        ))
    })
}

fn create_simple(w: &mut World, p: &Value, prefix: &str, arn_type: &str, label: &str) -> ApiResult {
    let name = s(p, &format!("{prefix}Name"))?.to_owned();
    let res_arn = arn(&format!("{arn_type}/{}", name.to_lowercase()));
    if simple_map(w, prefix).contains_key(&name) {
        return Err(ApiError::validation(format!(
            "Cannot create already existing {label} \"{res_arn}\"."
        )));
    }
    let mut body = fields(p);
    body[format!("{prefix}Arn")] = json!(res_arn);
    w.sm.store_tags(&res_arn, p);
    simple_map(w, prefix).insert(name, Resource::new(res_arn.clone(), body, ""));
    Ok(json!({ format!("{prefix}Arn"): res_arn }))
}

fn delete_simple(w: &mut World, p: &Value, prefix: &str, label: &str) -> ApiResult {
    simple(w, p, prefix, label)?;
    let name = s(p, &format!("{prefix}Name"))?.to_owned();
    simple_map(w, prefix).remove(&name);
    Ok(json!({}))
}

fn list_simple(w: &mut World, p: &Value, prefix: &str, key: &str) -> ApiResult {
    let after = p["CreationTimeAfter"].as_f64();
    let contains = p["NameContains"].as_str().unwrap_or("");
    let items = simple_map(w, prefix)
        .iter()
        .filter(|(n, r)| after.is_none_or(|t| r.created > t) && n.contains(contains))
        .map(|(n, r)| json!({ format!("{prefix}Name"): n, format!("{prefix}Arn"): r.arn, "CreationTime": r.created }))
        .collect();
    page(items, p, key, 10)
}

// --------------------------------------------------------------------------- model registry

fn registry(w: &mut World, op: &str, p: &Value) -> Option<ApiResult> {
    Some(match op {
        "CreateModelPackageGroup" => {
            let name = match s(p, "ModelPackageGroupName") {
                Ok(n) => n.to_owned(),
                Err(e) => return Some(Err(e)),
            };
            let group_arn = arn(&format!("model-package-group/{}", name.to_lowercase()));
            if w.sm.groups.contains_key(&name) {
                return Some(Err(ApiError::validation(format!(
                    "Model Package Group already exists: {group_arn}"
                ))));
            }
            let mut body = fields(p);
            body["ModelPackageGroupArn"] = json!(group_arn);
            w.sm.store_tags(&group_arn, p);
            w.sm.groups
                .insert(name, Resource::new(group_arn.clone(), body, "Completed"));
            Ok(json!({"ModelPackageGroupArn": group_arn}))
        }
        "DescribeModelPackageGroup" => {
            let name = p["ModelPackageGroupName"].as_str().unwrap_or_default();
            w.sm.groups
                .get(name)
                .map(|g| g.describe("ModelPackageGroupStatus"))
                .ok_or_else(|| {
                    ApiError::validation(format!("ModelPackageGroup {name} does not exist."))
                })
        }
        "CreateModelPackage" => create_package(w, p),
        "DescribeModelPackage" => package_key(w, p["ModelPackageName"].as_str())
            .map(|k| w.sm.packages[&k].describe("ModelPackageStatus")),
        "UpdateModelPackage" => {
            let key = match package_key(w, p["ModelPackageArn"].as_str()) {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            let Some(pkg) = w.sm.packages.get_mut(&key) else {
                return Some(Err(ApiError::validation("ModelPackage does not exist.")));
            };
            for f in [
                "ModelApprovalStatus",
                "ApprovalDescription",
                "CustomerMetadataProperties",
            ] {
                if !p[f].is_null() {
                    pkg.body[f] = p[f].clone();
                }
            }
            pkg.modified = now_secs();
            let snapshot = pkg.clone();
            w.sm.package_event(&snapshot);
            Ok(json!({"ModelPackageArn": snapshot.arn}))
        }
        "ListModelPackages" => list_packages(w, p),
        _ => return None,
    })
}

fn package_key(w: &World, name: Option<&str>) -> Result<(String, u64), ApiError> {
    let name = name.unwrap_or_default();
    w.sm.packages
        .iter()
        // Versioned packages are addressed by ARN (their name is the group's).
        .find(|(_, r)| r.arn == name)
        .map(|(k, _)| k.clone())
        .ok_or_else(|| ApiError::validation(format!("ModelPackage {name} does not exist.")))
}

fn create_package(w: &mut World, p: &Value) -> ApiResult {
    let group = s(p, "ModelPackageGroupName")?.to_owned();
    if !w.sm.groups.contains_key(&group) {
        return Err(ApiError::validation(format!(
            "Model Package Group {group} does not exist."
        )));
    }
    let version = w.sm.packages.keys().filter(|(g, _)| *g == group).count() as u64 + 1;
    let pkg_arn = arn(&format!("model-package/{}/{version}", group.to_lowercase()));
    let mut body = fields(p);
    body["ModelPackageName"] = json!(group);
    body["ModelPackageVersion"] = json!(version);
    body["ModelPackageArn"] = json!(pkg_arn);
    if body["ModelApprovalStatus"].is_null() {
        body["ModelApprovalStatus"] = json!("PendingManualApproval");
    }
    let r = Resource::new(pkg_arn.clone(), body, "Completed");
    w.sm.store_tags(&pkg_arn, p);
    w.sm.package_event(&r);
    w.sm.packages.insert((group, version), r);
    Ok(json!({"ModelPackageArn": pkg_arn}))
}

fn list_packages(w: &mut World, p: &Value) -> ApiResult {
    let group = p["ModelPackageGroupName"].as_str();
    let status = p["ModelApprovalStatus"].as_str();
    let mut items: Vec<&Resource> =
        w.sm.packages
            .iter()
            .filter(|((g, _), r)| {
                group.is_none_or(|x| x == g)
                    && status.is_none_or(|s| r.body["ModelApprovalStatus"] == s)
            })
            .map(|(_, r)| r)
            .collect();
    // SortBy CreationTime (default) or Name; SortOrder Ascending (default) or Descending.
    if p["SortBy"] == "Name" {
        items.sort_by(|a, b| a.arn.cmp(&b.arn));
    } else {
        items.sort_by(|a, b| {
            a.created.total_cmp(&b.created).then(
                a.body["ModelPackageVersion"]
                    .as_u64()
                    .cmp(&b.body["ModelPackageVersion"].as_u64()),
            )
        });
    }
    if p["SortOrder"] == "Descending" {
        items.reverse();
    }
    let summaries = items
        .into_iter()
        .map(|r| {
            let mut item = json!({"ModelPackageArn": r.arn, "CreationTime": r.created, "ModelPackageStatus": r.status});
            for f in ["ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion", "ModelPackageDescription", "ModelApprovalStatus"] {
                if !r.body[f].is_null() {
                    item[f] = r.body[f].clone();
                }
            }
            item
        })
        .collect();
    page(summaries, p, "ModelPackageSummaryList", 10)
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
