//! The CodePipeline subset our deployment uses, with a runner that really executes the stages:
//! Lambda invoke actions are invoked (through the Lambda harness registered for the function) with a
//! real `CodePipeline.job` event; `PutJobSuccessResult` with a `continuationToken` re-invokes after a
//! delay, without one completes the action with its output variables; `PutJobFailureResult` fails the
//! execution; manual approvals wait for `PutApprovalResult`. Pipeline variables (`#{variables.X}`) and
//! action output variables (`#{Namespace.X}`) are resolved in action configurations.
//!
//! Execution modes, as "How pipeline executions work" (CodePipeline User Guide) defines them:
//! SUPERSEDED (the default) and QUEUED lock each stage while one execution is in it, and a later
//! execution waits at the stage's entrance; in SUPERSEDED mode a newer waiting execution supersedes an
//! older one waiting at the same stage (status `Superseded`), in QUEUED mode they enter in the order they
//! queued; PARALLEL executions never wait for each other. QUEUED and PARALLEL need pipeline type V2.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use super::{ACCOUNT, ApiError, ApiResult, REGION, Shared, now_secs};

pub enum JobResult {
    Success {
        continuation_token: Option<String>,
        output_variables: Map<String, Value>,
    },
    Failure(String),
}

#[derive(Clone, Debug, Default)]
pub struct ActionState {
    pub name: String,
    pub status: String,
    pub summary: Option<String>,
    pub token: Option<String>,
    pub error: Option<String>,
    pub invocations: u32,
    pub updated: f64,
}

#[derive(Clone, Debug, Default)]
pub struct StageState {
    pub name: String,
    pub status: String,
    pub actions: Vec<ActionState>,
}

#[derive(Clone, Debug)]
pub struct Execution {
    pub id: String,
    pub pipeline: String,
    /// The pipeline's execution mode when the execution started.
    pub mode: String,
    pub version: u64,
    pub status: String,
    pub summary: Option<String>,
    pub variables: Vec<(String, String)>,
    pub outputs: HashMap<String, Map<String, Value>>,
    pub artifacts: HashMap<String, Value>,
    pub stages: Vec<StageState>,
    pub started: f64,
    pub updated: f64,
}

/// Executions waiting to enter one stage, oldest first, each with the channel that lets it in.
pub type Waiting = Vec<(String, oneshot::Sender<bool>)>;

/// A manual approval waiting for `PutApprovalResult`.
pub struct Approval {
    pub pipeline: String,
    pub stage: String,
    pub action: String,
    pub execution: String,
    pub reply: oneshot::Sender<(bool, String)>,
}

#[derive(Default)]
pub struct CodePipeline {
    pub pipelines: BTreeMap<String, (Value, f64)>,
    pub executions: Vec<Execution>,
    pub tokens: HashMap<(String, String), String>,
    pub jobs: HashMap<String, oneshot::Sender<JobResult>>,
    /// `GetJobDetails` of every job handed out (kept after the job completes, as CodePipeline does).
    pub job_details: HashMap<String, Value>,
    /// Pending manual approvals by token.
    pub approvals: HashMap<String, Approval>,
    /// (pipeline, stage index) → the execution in that stage (SUPERSEDED and QUEUED modes).
    pub locks: HashMap<(String, usize), String>,
    /// Executions waiting to enter a locked stage, oldest first; told `true` when they enter, `false`
    /// when superseded.
    pub waiting: HashMap<(String, usize), Waiting>,
    seq: u64,
}

impl CodePipeline {
    fn uuid(&mut self) -> String {
        self.seq += 1;
        format!(
            "{:08x}-{:04x}-4{:03x}-8000-{:012x}",
            (now_secs() as u64) & 0xffff_ffff,
            self.seq & 0xffff,
            self.seq & 0xfff,
            (now_secs() * 1e6) as u64 & 0xffff_ffff_ffff
        )
    }

    /// The declaration and creation time of pipeline `name`, or CodePipeline's not-found error.
    fn pipeline(&self, name: &str) -> Result<&(Value, f64), ApiError> {
        self.pipelines
            .get(name)
            .ok_or_else(|| missing_pipeline(name))
    }

    /// The token of the approval execution `execution` waits at (what its SNS notification carries).
    pub fn approval_token(&self, execution: &str) -> Option<String> {
        self.approvals
            .iter()
            .find(|(_, a)| a.execution == execution)
            .map(|(token, _)| token.clone())
    }

    fn execution(&mut self, id: &str) -> Option<&mut Execution> {
        self.executions.iter_mut().find(|e| e.id == id)
    }
}

fn not_found(what: &'static str, message: String) -> ApiError {
    ApiError::new(what, message)
}

fn s<'a>(p: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    p[field]
        .as_str()
        .ok_or_else(|| ApiError::validation(format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null")))
}

pub async fn handle(world: &Shared, op: &str, p: &Value) -> ApiResult {
    match op {
        "CreatePipeline" => {
            let mut w = world.lock().expect("twin state");
            let decl = p["pipeline"].clone();
            let name = s(&decl, "name")?.to_owned();
            if w.cp.pipelines.contains_key(&name) {
                return Err(ApiError::new(
                    "PipelineNameInUseException",
                    format!("Pipeline name {name} is already in use"),
                ));
            }
            let mode = decl["executionMode"]
                .as_str()
                .unwrap_or("SUPERSEDED")
                .to_owned();
            if !["SUPERSEDED", "QUEUED", "PARALLEL"].contains(&mode.as_str()) {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{mode}' at 'pipeline.executionMode' failed to satisfy constraint: Member must satisfy enum value set: [QUEUED, SUPERSEDED, PARALLEL]"
                )));
            }
            if mode != "SUPERSEDED" && decl["pipelineType"].as_str() != Some("V2") {
                return Err(ApiError::new(
                    "InvalidStructureException",
                    format!("Execution mode {mode} requires pipeline type V2"),
                ));
            }
            let mut decl = decl;
            decl["version"] = json!(1);
            decl["executionMode"] = json!(mode);
            w.cp.pipelines.insert(name, (decl.clone(), now_secs()));
            Ok(json!({"pipeline": decl}))
        }
        "GetPipeline" => {
            let w = world.lock().expect("twin state");
            let name = s(p, "name")?;
            let (decl, created) = w.cp.pipeline(name)?;
            Ok(json!({"pipeline": decl, "metadata": {
                "pipelineArn": format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:{name}"),
                "created": created, "updated": created}}))
        }
        "StartPipelineExecution" => start(world, p),
        "GetPipelineExecution" => {
            let w = world.lock().expect("twin state");
            let id = s(p, "pipelineExecutionId")?;
            let e =
                w.cp.executions
                    .iter()
                    .find(|e| e.id == id && p["pipelineName"] == e.pipeline.as_str())
                    .ok_or_else(|| {
                        not_found(
                            "PipelineExecutionNotFoundException",
                            format!("Pipeline execution {id} not found"),
                        )
                    })?;
            let mut out = json!({
                "pipelineName": e.pipeline, "pipelineVersion": e.version, "pipelineExecutionId": e.id,
                "status": e.status, "executionMode": e.mode, "executionType": "STANDARD",
                "trigger": {"triggerType": "StartPipelineExecution"},
                "variables": e.variables.iter().map(|(n, v)| json!({"name": n, "resolvedValue": v})).collect::<Vec<_>>(),
            });
            if let Some(summary) = &e.summary {
                out["statusSummary"] = json!(summary);
            }
            Ok(json!({"pipelineExecution": out}))
        }
        "ListPipelineExecutions" => {
            let w = world.lock().expect("twin state");
            let name = s(p, "pipelineName")?;
            w.cp.pipeline(name)?;
            let items: Vec<Value> = w
                .cp
                .executions
                .iter()
                .rev()
                .filter(|e| e.pipeline == name)
                .map(|e| json!({"pipelineExecutionId": e.id, "status": e.status, "startTime": e.started,
                    "lastUpdateTime": e.updated, "trigger": {"triggerType": "StartPipelineExecution"}}))
                .collect();
            Ok(json!({"pipelineExecutionSummaries": items}))
        }
        "GetPipelineState" => state(world, p),
        "GetJobDetails" => {
            let w = world.lock().expect("twin state");
            let id = s(p, "jobId")?;
            // The API reference's pattern for job ids.
            let groups: Vec<usize> = id.split('-').map(str::len).collect();
            if groups != [8, 4, 4, 4, 12]
                || !id
                    .bytes()
                    .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{id}' at 'jobId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}"
                )));
            }
            let details = w.cp.job_details.get(id).ok_or_else(|| {
                ApiError::new("JobNotFoundException", format!("Job {id} not found"))
            })?;
            Ok(json!({"jobDetails": details}))
        }
        "PutJobSuccessResult" | "PutJobFailureResult" => {
            let mut w = world.lock().expect("twin state");
            let id = s(p, "jobId")?.to_owned();
            let tx = w.cp.jobs.remove(&id).ok_or_else(|| {
                ApiError::new(
                    "JobNotFoundException",
                    format!("Job {id} not found or already completed"),
                )
            })?;
            let result = if op == "PutJobSuccessResult" {
                JobResult::Success {
                    continuation_token: p["continuationToken"].as_str().map(str::to_owned),
                    output_variables: p["outputVariables"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                }
            } else {
                JobResult::Failure(
                    p["failureDetails"]["message"]
                        .as_str()
                        .unwrap_or("failed")
                        .to_owned(),
                )
            };
            let _ = tx.send(result);
            Ok(json!({}))
        }
        "PutApprovalResult" => {
            let mut w = world.lock().expect("twin state");
            let token = s(p, "token")?.to_owned();
            let (pipeline, stage, action) = (
                s(p, "pipelineName")?,
                s(p, "stageName")?,
                s(p, "actionName")?,
            );
            let Some(Approval {
                pipeline: pl,
                stage: st,
                action: ac,
                ..
            }) = w.cp.approvals.get(&token)
            else {
                return Err(ApiError::new(
                    "InvalidApprovalTokenException",
                    format!("The approval token {token} is not valid"),
                ));
            };
            if (pl.as_str(), st.as_str(), ac.as_str()) != (pipeline, stage, action) {
                return Err(ApiError::new(
                    "InvalidApprovalTokenException",
                    "The token does not belong to this action",
                ));
            }
            let approved = match p["result"]["status"].as_str() {
                Some("Approved") => true,
                Some("Rejected") => false,
                _ => {
                    return Err(ApiError::validation(
                        "result.status must be Approved or Rejected",
                    ));
                }
            };
            let summary = p["result"]["summary"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(a) = w.cp.approvals.remove(&token) {
                let _ = a.reply.send((approved, summary));
            }
            Ok(json!({"approvedAt": now_secs()}))
        }
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("the CodePipeline twin does not implement {other}"),
        )),
    }
}

fn missing_pipeline(name: &str) -> ApiError {
    not_found(
        "PipelineNotFoundException",
        format!("Account '{ACCOUNT}' does not have a pipeline with name '{name}'"),
    )
}

fn start(world: &Shared, p: &Value) -> ApiResult {
    let mut w = world.lock().expect("twin state");
    let name = s(p, "name")?.to_owned();
    let (decl, _) = w.cp.pipeline(&name)?.clone();
    if let Some(token) = p["clientRequestToken"].as_str()
        && let Some(id) = w.cp.tokens.get(&(name.clone(), token.to_owned()))
    {
        return Ok(json!({"pipelineExecutionId": id}));
    }
    let declared: Vec<(String, Option<String>)> = decl["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            Some((
                v["name"].as_str()?.to_owned(),
                v["defaultValue"].as_str().map(str::to_owned),
            ))
        })
        .collect();
    let mut variables = Vec::new();
    for given in p["variables"].as_array().into_iter().flatten() {
        let n = given["name"].as_str().unwrap_or_default();
        if !declared.iter().any(|(d, _)| d == n) {
            return Err(ApiError::validation(format!(
                "Variable {n} is not declared in pipeline {name}"
            )));
        }
        variables.push((
            n.to_owned(),
            given["value"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    for (n, default) in &declared {
        if !variables.iter().any(|(v, _)| v == n) {
            match default {
                Some(d) => variables.push((n.clone(), d.clone())),
                None => {
                    return Err(ApiError::validation(format!(
                        "Variable {n} has no default value and was not given"
                    )));
                }
            }
        }
    }
    let id = w.cp.uuid();
    if let Some(token) = p["clientRequestToken"].as_str() {
        w.cp.tokens
            .insert((name.clone(), token.to_owned()), id.clone());
    }
    let stages = decl["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|st| StageState {
            name: st["name"].as_str().unwrap_or_default().to_owned(),
            status: String::new(),
            actions: st["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| ActionState {
                    name: a["name"].as_str().unwrap_or_default().to_owned(),
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    let now = now_secs();
    w.cp.executions.push(Execution {
        id: id.clone(),
        mode: decl["executionMode"]
            .as_str()
            .unwrap_or("SUPERSEDED")
            .to_owned(),
        pipeline: name,
        version: decl["version"].as_u64().unwrap_or(1),
        status: "InProgress".into(),
        summary: None,
        variables,
        outputs: HashMap::new(),
        artifacts: HashMap::new(),
        stages,
        started: now,
        updated: now,
    });
    tokio::spawn(run(world.clone(), id.clone(), decl));
    Ok(json!({"pipelineExecutionId": id}))
}

fn state(world: &Shared, p: &Value) -> ApiResult {
    let w = world.lock().expect("twin state");
    let name = s(p, "name")?;
    let (decl, created) = w.cp.pipeline(name)?;
    let mut stages = Vec::new();
    for (i, st) in decl["stages"].as_array().into_iter().flatten().enumerate() {
        let latest =
            w.cp.executions
                .iter()
                .rev()
                .filter(|e| e.pipeline == name)
                .find(|e| e.stages.get(i).is_some_and(|s| !s.status.is_empty()));
        let mut stage = json!({"stageName": st["name"], "actionStates": []});
        if let Some(e) = latest {
            let ss = &e.stages[i];
            stage["latestExecution"] = json!({"pipelineExecutionId": e.id, "status": ss.status});
            stage["actionStates"] = ss
                .actions
                .iter()
                .map(|a| {
                    let mut latest = json!({"status": if a.status.is_empty() { "InProgress" } else { &a.status }, "lastStatusChange": a.updated});
                    if let Some(t) = &a.token {
                        latest["token"] = json!(t);
                    }
                    if let Some(s) = &a.summary {
                        latest["summary"] = json!(s);
                    }
                    if let Some(e) = &a.error {
                        latest["errorDetails"] = json!({"code": "JobFailed", "message": e});
                    }
                    json!({"actionName": a.name, "latestExecution": latest})
                })
                .filter(|a| a["latestExecution"]["lastStatusChange"].as_f64().unwrap_or(0.0) > 0.0)
                .collect();
        }
        stages.push(stage);
    }
    Ok(
        json!({"pipelineName": name, "pipelineVersion": decl["version"], "stageStates": stages,
              "created": created, "updated": created}),
    )
}

/// Updates one action's state (and the stage's) of an execution.
fn set_action(
    world: &Shared,
    exec: &str,
    stage: usize,
    action: usize,
    f: impl FnOnce(&mut ActionState),
) {
    let mut w = world.lock().expect("twin state");
    if let Some(e) = w.cp.execution(exec) {
        e.updated = now_secs();
        if let Some(st) = e.stages.get_mut(stage) {
            if st.status.is_empty() {
                st.status = "InProgress".into();
            }
            if let Some(a) = st.actions.get_mut(action) {
                a.updated = now_secs();
                f(a);
            }
        }
    }
}

fn finish(world: &Shared, exec: &str, stage: Option<usize>, status: &str, summary: Option<String>) {
    let mut w = world.lock().expect("twin state");
    if let Some(e) = w.cp.execution(exec) {
        if let Some(st) = stage.and_then(|i| e.stages.get_mut(i)) {
            st.status = status.to_owned();
        }
        e.status = status.to_owned();
        e.summary = summary;
        e.updated = now_secs();
    }
}

/// Replaces `#{variables.X}`, `#{Namespace.X}` and `#{codepipeline.PipelineExecutionId}` in `text`.
fn resolve(world: &Shared, exec: &str, text: &str) -> Result<String, String> {
    let w = world.lock().expect("twin state");
    let e =
        w.cp.executions
            .iter()
            .find(|e| e.id == exec)
            .ok_or("execution gone")?;
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("unterminated variable in {text}"))?
            + start;
        let reference = &rest[start + 2..end];
        let (ns, var) = reference
            .split_once('.')
            .ok_or_else(|| format!("malformed variable #{{{reference}}}"))?;
        let value = if ns == "codepipeline" && var == "PipelineExecutionId" {
            Some(e.id.clone())
        } else if ns == "variables" {
            e.variables
                .iter()
                .find(|(n, _)| n == var)
                .map(|(_, v)| v.clone())
        } else {
            e.outputs
                .get(ns)
                .and_then(|m| m.get(var))
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        out.push_str(&value.ok_or_else(|| format!("Unable to resolve variable #{{{reference}}}"))?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

async fn run(world: Shared, exec: String, decl: Value) {
    let stages = decl["stages"].as_array().cloned().unwrap_or_default();
    let mode = decl["executionMode"]
        .as_str()
        .unwrap_or("SUPERSEDED")
        .to_owned();
    let pipeline = decl["name"].as_str().unwrap_or_default().to_owned();
    for (si, stage) in stages.iter().enumerate() {
        if mode != "PARALLEL" && !enter(&world, &pipeline, si, &exec, &mode).await {
            finish(
                &world,
                &exec,
                None,
                "Superseded",
                Some("superseded by a more recent execution".into()),
            );
            return;
        }
        let mut actions: Vec<(usize, Value)> = stage["actions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .collect();
        actions.sort_by_key(|(_, a)| a["runOrder"].as_u64().unwrap_or(1));
        for (ai, action) in actions {
            set_action(&world, &exec, si, ai, |a| a.status = "InProgress".into());
            match run_action(&world, &exec, si, ai, &action).await {
                Ok(summary) => set_action(&world, &exec, si, ai, |a| {
                    a.status = "Succeeded".into();
                    a.summary = summary;
                }),
                Err(message) => {
                    set_action(&world, &exec, si, ai, |a| {
                        a.status = "Failed".into();
                        a.error = Some(message.clone());
                    });
                    finish(&world, &exec, Some(si), "Failed", Some(message));
                    leave(&world, &pipeline, si);
                    return;
                }
            }
        }
        {
            let mut w = world.lock().expect("twin state");
            if let Some(st) = w.cp.execution(&exec).and_then(|e| e.stages.get_mut(si)) {
                st.status = "Succeeded".into();
            }
        }
        if mode != "PARALLEL" {
            leave(&world, &pipeline, si);
        }
    }
    finish(&world, &exec, None, "Succeeded", None);
}

/// Waits until `exec` may enter stage `si` (the stage is free, or handed over); `false` when a more
/// recent execution superseded it while it waited (SUPERSEDED mode).
async fn enter(world: &Shared, pipeline: &str, si: usize, exec: &str, mode: &str) -> bool {
    let key = (pipeline.to_owned(), si);
    let rx = {
        let mut w = world.lock().expect("twin state");
        if let std::collections::hash_map::Entry::Vacant(free) = w.cp.locks.entry(key.clone()) {
            free.insert(exec.to_owned());
            return true;
        }
        let (tx, rx) = oneshot::channel();
        let queue = w.cp.waiting.entry(key).or_default();
        if mode == "SUPERSEDED" {
            // Rule 3: a waiting execution is superseded by a more recent one.
            for (_, older) in queue.drain(..) {
                let _ = older.send(false);
            }
        }
        queue.push((exec.to_owned(), tx));
        rx
    };
    rx.await.unwrap_or(false)
}

/// `exec` leaves stage `si`: the next waiting execution (the only one in SUPERSEDED mode, the oldest
/// in QUEUED mode) enters it.
fn leave(world: &Shared, pipeline: &str, si: usize) {
    let key = (pipeline.to_owned(), si);
    let mut w = world.lock().expect("twin state");
    w.cp.locks.remove(&key);
    let next =
        w.cp.waiting
            .get_mut(&key)
            .filter(|q| !q.is_empty())
            .map(|q| q.remove(0));
    if let Some((id, tx)) = next {
        w.cp.locks.insert(key, id);
        let _ = tx.send(true);
    }
}

async fn run_action(
    world: &Shared,
    exec: &str,
    si: usize,
    ai: usize,
    action: &Value,
) -> Result<Option<String>, String> {
    let category = action["actionTypeId"]["category"]
        .as_str()
        .unwrap_or_default();
    let provider = action["actionTypeId"]["provider"]
        .as_str()
        .unwrap_or_default();
    let mut config = Map::new();
    for (k, v) in action["configuration"].as_object().into_iter().flatten() {
        let value = match v.as_str() {
            Some(text) => json!(resolve(world, exec, text)?),
            None => v.clone(),
        };
        config.insert(k.clone(), value);
    }
    match (category, provider) {
        ("Source", "S3") => {
            // The S3 source action reads a versioned object and exposes `VersionId` and `ETag`
            // (CodePipeline's action reference: the bucket must have versioning enabled).
            let text = |k: &str| config.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            let (bucket, key) = (text("S3Bucket").to_owned(), text("S3ObjectKey").to_owned());
            let moto = world.lock().expect("twin state").moto.clone();
            let head = match moto {
                Some(m) => super::moto_side::s3_head(&m, &bucket, &key).await,
                None => None,
            };
            let (version, etag) = match head {
                None => return Err(format!("The object s3://{bucket}/{key} could not be read")),
                Some((None, _)) => {
                    return Err(format!(
                        "Bucket {bucket} must have versioning enabled to be used as a source"
                    ));
                }
                Some((Some(v), etag)) => (v, etag),
            };
            let location =
                json!({"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}});
            let mut w = world.lock().expect("twin state");
            if let Some(e) = w.cp.execution(exec) {
                for out in action["outputArtifacts"].as_array().into_iter().flatten() {
                    if let Some(n) = out["name"].as_str() {
                        e.artifacts.insert(n.to_owned(), location.clone());
                    }
                }
                if let Some(ns) = action["namespace"].as_str() {
                    let mut vars = Map::new();
                    vars.insert("VersionId".into(), json!(version));
                    vars.insert("ETag".into(), json!(etag));
                    e.outputs.insert(ns.to_owned(), vars);
                }
            }
            Ok(None)
        }
        ("Invoke", "Lambda") => invoke(world, exec, si, ai, action, config).await,
        ("Approval", "Manual") => {
            let (tx, rx) = oneshot::channel();
            let token = {
                let mut w = world.lock().expect("twin state");
                let token = w.cp.uuid();
                let pipeline =
                    w.cp.execution(exec)
                        .map(|e| e.pipeline.clone())
                        .unwrap_or_default();
                let stage =
                    w.cp.execution(exec)
                        .and_then(|e| e.stages.get(si))
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                let name = action["name"].as_str().unwrap_or_default().to_owned();
                w.cp.approvals.insert(
                    token.clone(),
                    Approval {
                        pipeline,
                        stage,
                        action: name,
                        execution: exec.to_owned(),
                        reply: tx,
                    },
                );
                token
            };
            set_action(world, exec, si, ai, |a| a.token = Some(token));
            match rx.await {
                Ok((true, summary)) => Ok(Some(summary)),
                Ok((false, summary)) => Err(format!("Rejected: {summary}")),
                Err(_) => Err("approval abandoned".into()),
            }
        }
        other => Err(format!(
            "the CodePipeline twin does not run {other:?} actions"
        )),
    }
}

/// Where a job runs: what `GetJobDetails` reports as its `pipelineContext` and `actionTypeId`.
pub struct JobContext<'a> {
    pub pipeline: &'a str,
    pub execution: &'a str,
    pub stage: &'a str,
    pub action: &'a str,
    pub action_type: &'a Value,
}

/// Hands out a job of `context` with `data` (the event's `data`) as CodePipeline does before it invokes
/// a Lambda action: `GetJobDetails` knows it from now on, and the receiver gets its result.
pub fn hand_out(
    world: &Shared,
    context: &JobContext<'_>,
    data: &Value,
) -> (String, oneshot::Receiver<JobResult>) {
    let (tx, rx) = oneshot::channel();
    let mut w = world.lock().expect("twin state");
    let job_id = w.cp.uuid();
    w.cp.jobs.insert(job_id.clone(), tx);
    let mut details = data.clone();
    details["actionTypeId"] = context.action_type.clone();
    details["pipelineContext"] = json!({
        "pipelineName": context.pipeline,
        "pipelineArn": format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:{}", context.pipeline),
        "pipelineExecutionId": context.execution,
        "stage": {"name": context.stage},
        "action": {"name": context.action, "actionExecutionId": job_id},
    });
    w.cp.job_details.insert(
        job_id.clone(),
        json!({"id": job_id, "accountId": ACCOUNT, "data": details}),
    );
    (job_id, rx)
}

async fn invoke(
    world: &Shared,
    exec: &str,
    si: usize,
    ai: usize,
    action: &Value,
    config: Map<String, Value>,
) -> Result<Option<String>, String> {
    let function = config
        .get("FunctionName")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let (endpoint, delay, timeout) = {
        let w = world.lock().expect("twin state");
        (
            w.lambdas.get(&function).cloned(),
            w.duration("pipeline.continuation"),
            w.durations
                .get("pipeline.job_timeout")
                .copied()
                .unwrap_or(Duration::from_secs(120)),
        )
    };
    let endpoint =
        endpoint.ok_or_else(|| format!("function {function} is not registered with the twin"))?;
    let inputs: Vec<Value> = {
        let w = world.lock().expect("twin state");
        let e = w.cp.executions.iter().find(|e| e.id == exec);
        action["inputArtifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| {
                let name = i["name"].as_str()?;
                let loc = e?.artifacts.get(name)?.clone();
                Some(json!({"name": name, "location": loc, "revision": null}))
            })
            .collect()
    };
    let mut continuation: Option<String> = None;
    loop {
        let mut data = json!({
            "actionConfiguration": {"configuration": config},
            "inputArtifacts": inputs,
            "outputArtifacts": [],
            "artifactCredentials": {"accessKeyId": "testing", "secretAccessKey": "testing", "sessionToken": "testing"},
        });
        if let Some(token) = &continuation {
            data["continuationToken"] = json!(token);
        }
        let (pipeline, stage) = {
            let mut w = world.lock().expect("twin state");
            w.cp.execution(exec)
                .map(|e| {
                    (
                        e.pipeline.clone(),
                        e.stages.get(si).map(|s| s.name.clone()).unwrap_or_default(),
                    )
                })
                .unwrap_or_default()
        };
        let context = JobContext {
            pipeline: &pipeline,
            execution: exec,
            stage: &stage,
            action: action["name"].as_str().unwrap_or_default(),
            action_type: &action["actionTypeId"],
        };
        let (job_id, rx) = hand_out(world, &context, &data);
        let event = json!({"CodePipeline.job": {"id": job_id, "accountId": ACCOUNT, "data": data}});
        set_action(world, exec, si, ai, |a| a.invocations += 1);
        let sent = reqwest::Client::new()
            .post(format!(
                "{endpoint}/2015-03-31/functions/{function}/invocations"
            ))
            .header("X-Amz-Invocation-Type", "Event")
            .body(event.to_string())
            .send()
            .await;
        if let Err(e) = sent {
            return Err(format!("could not invoke {function}: {e}"));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(JobResult::Success {
                continuation_token: Some(token),
                ..
            })) => {
                continuation = Some(token);
                tokio::time::sleep(delay).await;
            }
            Ok(Ok(JobResult::Success {
                output_variables, ..
            })) => {
                if let Some(ns) = action["namespace"].as_str() {
                    let mut w = world.lock().expect("twin state");
                    if let Some(e) = w.cp.execution(exec) {
                        e.outputs.insert(ns.to_owned(), output_variables);
                    }
                }
                return Ok(None);
            }
            Ok(Ok(JobResult::Failure(message))) => return Err(message),
            Ok(Err(_)) | Err(_) => {
                world.lock().expect("twin state").cp.jobs.remove(&job_id);
                return Err(format!(
                    "The action timed out: {function} did not report a job result"
                ));
            }
        }
    }
}
