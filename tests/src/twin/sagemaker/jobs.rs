//! Training, processing, transform and tuning jobs: create, stop, list (by status and time).

use super::*;

pub(super) fn handle(w: &mut World, op: &str, p: &Value) -> Option<ApiResult> {
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

pub(super) fn job<'a>(
    w: &'a mut World,
    kind: JobKind,
    p: &Value,
) -> Result<&'a mut Resource, ApiError> {
    let name = s(p, &format!("{}Name", kind.prefix))?;
    w.sm.jobs
        .get_mut(&(kind.prefix, name.to_owned()))
        .ok_or_else(|| ApiError::not_found("Requested resource not found."))
}

pub(super) fn create_job(w: &mut World, kind: JobKind, p: &Value) -> ApiResult {
    let name = s(p, &format!("{}Name", kind.prefix))?.to_owned();
    let job_arn =
        w.sm.arn(&format!("{}/{}", kind.arn_type, name.to_lowercase()));
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

pub(super) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

pub(super) fn stop_job(w: &mut World, kind: JobKind, p: &Value) -> ApiResult {
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

pub(super) fn list_jobs(w: &mut World, kind: JobKind, p: &Value) -> ApiResult {
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
