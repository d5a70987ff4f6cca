//! The model registry: model package groups and versions, approval status.

use super::*;

pub(super) fn handle(w: &mut World, op: &str, p: &Value) -> Option<ApiResult> {
    Some(match op {
        "CreateModelPackageGroup" => {
            let name = match s(p, "ModelPackageGroupName") {
                Ok(n) => n.to_owned(),
                Err(e) => return Some(Err(e)),
            };
            let group_arn =
                w.sm.arn(&format!("model-package-group/{}", name.to_lowercase()));
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

pub(super) fn package_key(w: &World, name: Option<&str>) -> Result<(String, u64), ApiError> {
    let name = name.unwrap_or_default();
    w.sm.packages
        .iter()
        // Versioned packages are addressed by ARN (their name is the group's).
        .find(|(_, r)| r.arn == name)
        .map(|(k, _)| k.clone())
        .ok_or_else(|| ApiError::validation(format!("ModelPackage {name} does not exist.")))
}

pub(super) fn create_package(w: &mut World, p: &Value) -> ApiResult {
    let group = s(p, "ModelPackageGroupName")?.to_owned();
    if !w.sm.groups.contains_key(&group) {
        return Err(ApiError::validation(format!(
            "Model Package Group {group} does not exist."
        )));
    }
    let version = w.sm.packages.keys().filter(|(g, _)| *g == group).count() as u64 + 1;
    let pkg_arn =
        w.sm.arn(&format!("model-package/{}/{version}", group.to_lowercase()));
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

pub(super) fn list_packages(w: &mut World, p: &Value) -> ApiResult {
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
