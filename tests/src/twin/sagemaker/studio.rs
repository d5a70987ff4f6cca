//! Studio: domains, user profiles, spaces, apps — their states, conflicts and teardown order.

use super::*;

pub(super) fn handle(w: &mut World, op: &str, p: &Value) -> Option<ApiResult> {
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
            check_instance_types(p, "")
                .and_then(|_| profile(w, p))
                .and_then(|r| {
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

pub(super) fn domain<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let id = s(p, "DomainId")?;
    w.sm.domains
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found(format!("Cannot find Domain with id {id}")))
}

pub(super) fn require_in_service(r: &Resource, what: &str) -> Result<(), ApiError> {
    if r.status == "InService" {
        Ok(())
    } else {
        Err(ApiError::in_use(format!(
            "{what} [{}] is in status {}: the operation needs InService",
            r.arn, r.status
        )))
    }
}

/// SageMaker's enum constraint on app instance types, anywhere in a request's settings: "1 validation
/// error detected: Value '…' at '<camelCase path>' failed to satisfy constraint: Member must satisfy
/// enum value set: […]" (the `AppInstanceType` values of the API model).
pub(super) fn check_instance_types(v: &Value, path: &str) -> Result<(), ApiError> {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let mut camel = k.clone();
                if let Some(first) = camel.get_mut(0..1) {
                    first.make_ascii_lowercase();
                }
                let here = if path.is_empty() {
                    camel
                } else {
                    format!("{path}.{camel}")
                };
                if k == "InstanceType"
                    && let Some(t) = v.as_str()
                    && !aws_sdk_sagemaker::types::AppInstanceType::values().contains(&t)
                {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{t}' at '{here}' failed to satisfy \
                         constraint: Member must satisfy enum value set: [{}]",
                        aws_sdk_sagemaker::types::AppInstanceType::values().join(", ")
                    )));
                }
                check_instance_types(v, &here)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_instance_types(v, path)),
        _ => Ok(()),
    }
}

pub(super) fn create_domain(w: &mut World, p: &Value) -> ApiResult {
    for f in ["DomainName", "AuthMode", "VpcId"] {
        s(p, f)?;
    }
    check_instance_types(p, "")?;
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
    let domain_arn = w.sm.arn(&format!("domain/{id}"));
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

pub(super) fn update_domain(w: &mut World, p: &Value) -> ApiResult {
    let after = w.duration("domain.update");
    let outcome = w.take_outcome("domain.update");
    check_instance_types(p, "")?;
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

pub(super) fn delete_domain(w: &mut World, p: &Value) -> ApiResult {
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

pub(super) fn profile<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let key = (
        s(p, "DomainId")?.to_owned(),
        s(p, "UserProfileName")?.to_owned(),
    );
    w.sm.profiles
        .get_mut(&key)
        .ok_or_else(|| ApiError::not_found(format!("User profile {} does not exist", key.1)))
}

pub(super) fn create_user_profile(w: &mut World, p: &Value) -> ApiResult {
    check_instance_types(p, "")?;
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
    let profile_arn = w.sm.arn(&format!("user-profile/{domain_id}/{name}"));
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

pub(super) fn delete_user_profile(w: &mut World, p: &Value) -> ApiResult {
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

pub(super) fn space<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let key = (s(p, "DomainId")?.to_owned(), s(p, "SpaceName")?.to_owned());
    w.sm.spaces
        .get_mut(&key)
        .ok_or_else(|| ApiError::not_found(format!("Space {} does not exist", key.1)))
}

pub(super) fn create_space(w: &mut World, p: &Value) -> ApiResult {
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
    let space_arn = w.sm.arn(&format!("space/{domain_id}/{name}"));
    let mut body = fields(p);
    body["SpaceArn"] = json!(space_arn);
    let mut r = Resource::new(space_arn.clone(), body, "Pending");
    r.transition("Pending", w.duration("space.create"), "InService");
    w.sm.store_tags(&space_arn, p);
    w.sm.spaces.insert(key, r);
    Ok(json!({"SpaceArn": space_arn}))
}

pub(super) fn delete_space(w: &mut World, p: &Value) -> ApiResult {
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

pub(super) fn app_key(p: &Value) -> Result<AppKey, ApiError> {
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

pub(super) fn create_app(w: &mut World, p: &Value) -> ApiResult {
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
    let app_arn = w.sm.arn(&format!(
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

pub(super) fn delete_app(w: &mut World, p: &Value) -> ApiResult {
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
