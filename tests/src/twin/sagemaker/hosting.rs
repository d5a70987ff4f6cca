//! Notebooks, models, endpoint configs and endpoints.

use super::*;

pub(super) fn handle(w: &mut World, op: &str, p: &Value) -> Option<ApiResult> {
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

pub(super) fn notebook<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let name = s(p, "NotebookInstanceName")?;
    w.sm.notebooks
        .get_mut(name)
        .ok_or_else(|| ApiError::validation("RecordNotFound"))
}

/// SageMaker's message for a notebook state change that is not allowed from the current status.
pub(super) fn notebook_transition(
    r: &Resource,
    allowed: &[&str],
    to: &str,
) -> Result<(), ApiError> {
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

pub(super) fn create_notebook(w: &mut World, p: &Value) -> ApiResult {
    let name = s(p, "NotebookInstanceName")?.to_owned();
    s(p, "InstanceType")?;
    s(p, "RoleArn")?;
    let nb_arn =
        w.sm.arn(&format!("notebook-instance/{}", name.to_lowercase()));
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
pub(super) fn endpoint<'a>(w: &'a mut World, p: &Value) -> Result<&'a mut Resource, ApiError> {
    let name = s(p, "EndpointName")?.to_owned();
    let res_arn = w.sm.arn(&format!("endpoint/{}", name.to_lowercase()));
    w.sm.endpoints
        .get_mut(&name)
        .ok_or_else(|| ApiError::validation(format!("Could not find endpoint \"{res_arn}\".")))
}

/// The endpoint config `EndpointConfigName` names must exist for an endpoint to use it.
pub(super) fn known_config(w: &mut World, p: &Value) -> Result<String, ApiError> {
    let config = s(p, "EndpointConfigName")?.to_owned();
    if !w.sm.endpoint_configs.contains_key(&config) {
        return Err(ApiError::validation(format!(
            "Could not find endpoint configuration \"{}\".",
            w.sm.arn(&format!("endpoint-config/{}", config.to_lowercase()))
        )));
    }
    Ok(config)
}

/// CreateEndpoint: `Creating`, then `InService` (after `endpoint.create`).
pub(super) fn create_endpoint(w: &mut World, p: &Value) -> ApiResult {
    let name = s(p, "EndpointName")?.to_owned();
    let config = known_config(w, p)?;
    let res_arn = w.sm.arn(&format!("endpoint/{}", name.to_lowercase()));
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
pub(super) fn update_endpoint(w: &mut World, p: &Value) -> ApiResult {
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

pub(super) fn simple_map<'a>(w: &'a mut World, prefix: &str) -> &'a mut BTreeMap<String, Resource> {
    if prefix == "Model" {
        &mut w.sm.models
    } else {
        &mut w.sm.endpoint_configs
    }
}

pub(super) fn simple<'a>(
    w: &'a mut World,
    p: &Value,
    prefix: &str,
    label: &str,
) -> Result<&'a mut Resource, ApiError> {
    let name = s(p, &format!("{prefix}Name"))?.to_owned();
    let arn_type = if prefix == "Model" {
        "model"
    } else {
        "endpoint-config"
    };
    let missing = w.sm.arn(&format!("{arn_type}/{}", name.to_lowercase()));
    simple_map(w, prefix)
        .get_mut(&name)
        .ok_or_else(|| ApiError::validation(format!("Could not find {label} \"{missing}\".")))
}

pub(super) fn create_simple(
    w: &mut World,
    p: &Value,
    prefix: &str,
    arn_type: &str,
    label: &str,
) -> ApiResult {
    let name = s(p, &format!("{prefix}Name"))?.to_owned();
    let res_arn = w.sm.arn(&format!("{arn_type}/{}", name.to_lowercase()));
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

pub(super) fn delete_simple(w: &mut World, p: &Value, prefix: &str, label: &str) -> ApiResult {
    simple(w, p, prefix, label)?;
    let name = s(p, &format!("{prefix}Name"))?.to_owned();
    simple_map(w, prefix).remove(&name);
    Ok(json!({}))
}

pub(super) fn list_simple(w: &mut World, p: &Value, prefix: &str, key: &str) -> ApiResult {
    let after = p["CreationTimeAfter"].as_f64();
    let contains = p["NameContains"].as_str().unwrap_or("");
    let items = simple_map(w, prefix)
        .iter()
        .filter(|(n, r)| after.is_none_or(|t| r.created > t) && n.contains(contains))
        .map(|(n, r)| json!({ format!("{prefix}Name"): n, format!("{prefix}Arn"): r.arn, "CreationTime": r.created }))
        .collect();
    page(items, p, key, 10)
}
