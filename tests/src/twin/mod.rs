//! A local twin of the parts of SageMaker and CodePipeline our functions call, for what moto lacks.
//!
//! It speaks the real wire protocol (awsJson1_1: `POST /` with `X-Amz-Target: SageMaker.<Op>` or
//! `CodePipeline_20150709.<Op>`, `AWS242ServiceCatalogService.<Op>`), so the functions' real SDK
//! clients reach it through `AWS_ENDPOINT_URL_SAGEMAKER` / `_CODEPIPELINE` / `_SERVICE_CATALOG` while
//! every other service goes to moto. Its Service Catalog is SageMaker's side of it only: the portfolio
//! SageMaker Projects shares with the account.
//!
//! Fidelity rules (each has a test in `tests/tests/twin_*.rs` naming the AWS behaviour it reproduces):
//! resources move through their documented states after configurable durations; AWS's conflict rules
//! and error codes apply; `CreateDomain`/`DeleteDomain` have their EFS and security-group side effects in
//! moto; model-package changes are sent to moto's EventBridge as `SageMaker Model Package State Change`
//! events. Each account has its own SageMaker (the caller's account is the one moto knows its access key
//! for: a key from `AssumeRole` belongs to the role's account), and its CloudTrail events go to that
//! account's default bus. With `AWS_ENDPOINT_URL_STS` pointed at it, the twin fronts moto's STS and
//! refuses `AssumeRole` of a role that does not exist (`AccessDenied`), as AWS does.
//!
//! Control API (JSON, for tests): `POST /twin/durations` `{"domain.create": 0.5, …}` (seconds;
//! `latency.<Operation>` delays every call of an operation),
//! `POST /twin/faults` `{"operation": "DescribeDomain", "kind": "throttle"|"server", "count": N}`,
//! `POST /twin/outcomes` `{"domain.create": "Failed", "domain.delete": "Delete_Failed"}` (next only),
//! `POST /twin/lambdas` `{"name": "fn", "endpoint": "http://127.0.0.1:PORT"}`, `GET /twin/calls`,
//! `POST /twin/reset`.

pub mod codepipeline;
pub mod moto_side;
pub mod sagemaker;
mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// An AWS error as the awsJson1_1 protocol carries it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFound", message)
    }
    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new("ResourceInUse", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [
                ("x-amzn-ErrorType", self.code),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            json!({"__type": self.code, "message": self.message}).to_string(),
        )
            .into_response()
    }
}

pub type ApiResult = Result<Value, ApiError>;

/// Records a call and applies what a test asked for it (latency, an injected fault); `Some` is the
/// fault's answer.
async fn admit(world: &Shared, service: &str, operation: &str, params: &Value) -> Option<Response> {
    let (fault, latency) = {
        let mut w = world.lock().expect("twin state");
        w.calls.push(Call {
            service: service.to_owned(),
            operation: operation.to_owned(),
            params: params.clone(),
        });
        let latency = w.durations.get(&format!("latency.{operation}")).copied();
        (
            w.faults.get_mut(operation).and_then(|q| q.pop_front()),
            latency,
        )
    };
    if let Some(latency) = latency {
        {
            let mut w = world.lock().expect("twin state");
            let f = w.in_flight.entry(operation.to_owned()).or_default();
            f.0 += 1;
            f.1 = f.1.max(f.0);
        }
        tokio::time::sleep(latency).await;
        if let Some(f) = world
            .lock()
            .expect("twin state")
            .in_flight
            .get_mut(operation)
        {
            f.0 -= 1;
        }
    }
    match fault {
        Some(Fault::Throttle) => {
            return Some(ApiError::new("ThrottlingException", "Rate exceeded").into_response());
        }
        Some(Fault::AccessDenied) => {
            return Some(
                ApiError::new(
                    "AccessDeniedException",
                    "User is not authorized to perform this operation because no identity-based policy allows it",
                )
                .into_response(),
            );
        }
        Some(Fault::Server) => {
            let mut e = ApiError::new(
                "InternalFailure",
                "We encountered an internal error. Please try again.",
            );
            e.status = StatusCode::INTERNAL_SERVER_ERROR;
            return Some(e.into_response());
        }
        None => {}
    }
    None
}

/// sagemaker-runtime `InvokeEndpoint` (`POST /endpoints/{name}/invocations`): the twin runs no
/// model; it answers 200 with a JSON body naming the endpoint, unless a test injected a fault
/// (`inject("InvokeEndpoint", …)`).
async fn invoke_endpoint(
    State(world): State<Shared>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let params = json!({"EndpointName": name, "Body": String::from_utf8_lossy(&body)});
    if let Some(refused) = admit(&world, "sagemaker", "InvokeEndpoint", &params).await {
        return refused;
    }
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({"endpoint": name, "predictions": [0.5]}).to_string(),
    )
        .into_response()
}

/// CloudWatch in the Smithy RPC v2 CBOR protocol the SDK speaks (moto speaks only the query one):
/// `DescribeAlarms` is answered from moto's alarms, asked as the caller (its signed headers), so each
/// account sees its own. The only CloudWatch call the functions make.
async fn cloudwatch(
    State(world): State<Shared>,
    Path(op): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cbor = |status: StatusCode, value: ciborium::Value| {
        let mut out = Vec::new();
        let _ = ciborium::into_writer(&value, &mut out);
        (
            status,
            [
                ("content-type", "application/cbor"),
                ("smithy-protocol", "rpc-v2-cbor"),
            ],
            out,
        )
            .into_response()
    };
    let error = |code: &str, message: &str| {
        cbor(
            StatusCode::BAD_REQUEST,
            ciborium::Value::Map(vec![
                ("__type".into(), code.into()),
                ("message".into(), message.into()),
            ]),
        )
    };
    if op != "DescribeAlarms" {
        return error(
            "UnknownOperationException",
            &format!("the twin's CloudWatch answers DescribeAlarms only, not {op}"),
        );
    }
    let request: ciborium::Value = match ciborium::from_reader(&body[..]) {
        Ok(v) => v,
        Err(e) => return error("SerializationException", &e.to_string()),
    };
    let names: Vec<String> = request
        .as_map()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_text() == Some("AlarmNames"))
        .filter_map(|(_, v)| v.as_array())
        .flatten()
        .filter_map(|n| n.as_text().map(str::to_owned))
        .collect();
    let moto = world.lock().expect("twin state").moto.clone();
    let forwarded: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k == "authorization" || k.starts_with("x-amz-")
        })
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    let Some(states) = (match moto {
        Some(m) => moto_side::alarm_states(&m, &forwarded, &names).await,
        None => None,
    }) else {
        return error("InternalFailure", "moto did not answer DescribeAlarms");
    };
    let alarms = states
        .into_iter()
        .map(|(name, state)| {
            ciborium::Value::Map(vec![
                ("AlarmName".into(), name.into()),
                ("StateValue".into(), state.into()),
            ])
        })
        .collect();
    cbor(
        StatusCode::OK,
        ciborium::Value::Map(vec![(
            "MetricAlarms".into(),
            ciborium::Value::Array(alarms),
        )]),
    )
}

/// One call as the twin saw it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub params: Value,
}

/// Fault injected into the next calls of an operation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    Throttle,
    Server,
    /// `AccessDeniedException` (HTTP 400): the caller's role may not make the call.
    AccessDenied,
}

/// Everything the twin knows. One lock: requests are tiny and tests are small.
pub struct World {
    pub durations: HashMap<String, Duration>,
    pub outcomes: HashMap<String, String>,
    pub faults: HashMap<String, VecDeque<Fault>>,
    pub calls: Vec<Call>,
    /// Calls of each operation being answered right now, and the most seen at once.
    pub in_flight: HashMap<String, (usize, usize)>,
    pub lambdas: HashMap<String, String>,
    pub moto: Option<String>,
    /// SageMaker of the account being answered (the default account between calls).
    pub sm: sagemaker::SageMaker,
    /// SageMaker of every other account that called (member accounts of an organization).
    pub accounts: HashMap<String, sagemaker::SageMaker>,
    /// Access key id → account, as moto answered (`AssumeRole` keys belong to the role's account).
    pub keys: HashMap<String, String>,
    pub cp: codepipeline::CodePipeline,
}

impl World {
    fn new(moto: Option<String>) -> Self {
        World {
            durations: HashMap::new(),
            outcomes: HashMap::new(),
            faults: HashMap::new(),
            calls: Vec::new(),
            in_flight: HashMap::new(),
            lambdas: HashMap::new(),
            moto,
            sm: Default::default(),
            accounts: HashMap::new(),
            keys: HashMap::new(),
            cp: Default::default(),
        }
    }

    /// How long the transition `key` (e.g. "domain.create") takes; default 200 ms.
    pub fn duration(&self, key: &str) -> Duration {
        self.durations
            .get(key)
            .copied()
            .unwrap_or(Duration::from_millis(200))
    }

    /// `f` with `account`'s SageMaker as `self.sm` (each account sees only its own resources).
    pub fn as_account<R>(&mut self, account: &str, f: impl FnOnce(&mut World) -> R) -> R {
        if account == self.sm.account {
            return f(self);
        }
        let theirs = self
            .accounts
            .remove(account)
            .unwrap_or_else(|| sagemaker::SageMaker::of(account));
        let home = std::mem::replace(&mut self.sm, theirs);
        let out = f(self);
        let theirs = std::mem::replace(&mut self.sm, home);
        self.accounts.insert(account.to_owned(), theirs);
        out
    }

    /// The forced outcome of the next transition `key`, if a test asked for one.
    pub fn take_outcome(&mut self, key: &str) -> Option<String> {
        self.outcomes.remove(key)
    }
}

pub type Shared = Arc<Mutex<World>>;

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A running twin, stopped on drop.
pub struct Twin {
    pub endpoint: String,
    pub world: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Twin {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Twin {
    /// Serves on 127.0.0.1:`port` (0 = any free port). `moto` receives the side effects (EFS, EC2,
    /// EventBridge); without it they are skipped.
    pub async fn start(port: u16, moto: Option<String>) -> std::io::Result<Twin> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let world: Shared = Arc::new(Mutex::new(World::new(moto)));
        let router = Router::new()
            .route("/", post(dispatch))
            .route("/twin/durations", post(set_durations))
            .route("/twin/outcomes", post(set_outcomes))
            .route("/twin/faults", post(set_fault))
            .route("/twin/lambdas", post(set_lambda))
            .route("/twin/calls", get(get_calls))
            .route("/twin/reset", post(reset))
            .route("/endpoints/{name}/invocations", post(invoke_endpoint))
            .route(
                "/service/GraniteServiceVersion20100801/operation/{op}",
                post(cloudwatch),
            )
            .with_state(Arc::clone(&world));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Twin {
            endpoint,
            world,
            server,
        })
    }

    pub fn set_duration(&self, key: &str, seconds: f64) {
        self.lock()
            .durations
            .insert(key.to_owned(), Duration::from_secs_f64(seconds));
    }

    pub fn set_outcome(&self, key: &str, status: &str) {
        self.lock()
            .outcomes
            .insert(key.to_owned(), status.to_owned());
    }

    pub fn inject(&self, operation: &str, fault: Fault, count: usize) {
        self.lock()
            .faults
            .entry(operation.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(fault, count));
    }

    /// Lambda invoke actions of pipelines go to `endpoint` (a harness) for `name`.
    pub fn register_lambda(&self, name: &str, endpoint: &str) {
        self.lock()
            .lambdas
            .insert(name.to_owned(), endpoint.to_owned());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The most calls of `operation` the twin was answering at the same time (calls overlap only
    /// when the operation has a `latency.<Operation>` duration).
    pub fn max_in_flight(&self, operation: &str) -> usize {
        self.lock().in_flight.get(operation).map_or(0, |f| f.1)
    }

    /// The operations called, in order.
    pub fn operations(&self) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .map(|c| c.operation.clone())
            .collect()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("twin state")
    }

    /// A SageMaker client of `config` (credentials, region) that talks to the twin.
    pub fn sagemaker(&self, config: &aws_config::SdkConfig) -> aws_sdk_sagemaker::Client {
        aws_sdk_sagemaker::Client::from_conf(
            aws_sdk_sagemaker::config::Builder::from(config)
                .endpoint_url(&self.endpoint)
                .build(),
        )
    }

    /// A CodePipeline client of `config` that talks to the twin.
    pub fn codepipeline(&self, config: &aws_config::SdkConfig) -> aws_sdk_codepipeline::Client {
        aws_sdk_codepipeline::Client::from_conf(
            aws_sdk_codepipeline::config::Builder::from(config)
                .endpoint_url(&self.endpoint)
                .build(),
        )
    }
}

async fn dispatch(State(world): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if target.is_empty() && form_field(&body, "Action").is_some() {
        return sts(&world, &headers, body).await;
    }
    let Some((service, operation)) = target.split_once('.') else {
        return ApiError::new("UnknownOperationException", "missing X-Amz-Target").into_response();
    };
    let params: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return ApiError::new("SerializationException", e.to_string()).into_response();
            }
        }
    };
    let service_name = match service {
        "SageMaker" => "sagemaker",
        "CodePipeline_20150709" => "codepipeline",
        "AWS242ServiceCatalogService" => "servicecatalog",
        other => {
            return ApiError::new(
                "UnknownOperationException",
                format!("unknown service {other}"),
            )
            .into_response();
        }
    };
    if let Some(refused) = admit(&world, service_name, operation, &params).await {
        return refused;
    }
    let result = match service_name {
        "sagemaker" => {
            let account = caller_account(&world, &headers).await;
            sagemaker::handle(&world, &account, operation, &params).await
        }
        "servicecatalog" => {
            let account = caller_account(&world, &headers).await;
            let mut w = world.lock().expect("twin state");
            w.as_account(&account, |w| {
                sagemaker::service_catalog(w, operation, &params)
            })
        }
        _ => codepipeline::handle(&world, operation, &params).await,
    };
    match result {
        Ok(v) => (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The access key id of a SigV4-signed request (`Credential=<key>/…` of its Authorization header).
fn access_key(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').next().map(str::to_owned)
}

/// The account a request is made in: the account moto knows its access key for (asked once per key);
/// the default account without moto or a key.
async fn caller_account(world: &Shared, headers: &HeaderMap) -> String {
    let Some(key) = access_key(headers) else {
        return ACCOUNT.to_owned();
    };
    let moto = {
        let w = world.lock().expect("twin state");
        if let Some(account) = w.keys.get(&key) {
            return account.clone();
        }
        w.moto.clone()
    };
    let account = match moto {
        Some(m) => moto_side::account_of(&m, &key).await,
        None => None,
    }
    .unwrap_or_else(|| ACCOUNT.to_owned());
    world
        .lock()
        .expect("twin state")
        .keys
        .insert(key, account.clone());
    account
}

/// A field of a form-encoded (AWS Query protocol) body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body).ok()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// STS in front of moto (`AWS_ENDPOINT_URL_STS` pointed at the twin). Moto lets anyone assume any role,
/// existing or not; AWS answers `AccessDenied` (HTTP 403) when the role does not exist — "User … is not
/// authorized to perform: sts:AssumeRole on resource …" (STS API reference, AssumeRole, Errors; IAM
/// User Guide, "Troubleshooting IAM roles": the role must exist and trust the caller). Every other call,
/// and an `AssumeRole` of a role that exists, is moto's answer.
async fn sts(world: &Shared, headers: &HeaderMap, body: Bytes) -> Response {
    let Some(moto) = world.lock().expect("twin state").moto.clone() else {
        return ApiError::new("InternalFailure", "the twin's STS needs moto").into_response();
    };
    let action = form_field(&body, "Action").unwrap_or_default();
    let params = json!({"Action": action, "RoleArn": form_field(&body, "RoleArn")});
    if let Some(refused) = admit(world, "sts", &action, &params).await {
        return refused;
    }
    if action == "AssumeRole" {
        let role_arn = form_field(&body, "RoleArn").unwrap_or_default();
        let account = role_arn.split(':').nth(4).unwrap_or_default().to_owned();
        let name = role_arn.rsplit('/').next().unwrap_or_default().to_owned();
        if !moto_side::role_exists(&moto, &account, &name).await {
            let message = format!(
                "User: arn:aws:sts::{ACCOUNT}:assumed-role/caller is not authorized to perform: \
                 sts:AssumeRole on resource: {role_arn}"
            );
            return (
                StatusCode::FORBIDDEN,
                [("content-type", "text/xml")],
                format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                     <Message>{message}</Message></Error><RequestId>twin</RequestId></ErrorResponse>"
                ),
            )
                .into_response();
        }
    }
    let mut forwarded = reqwest::Client::new().post(format!("{moto}/")).body(body);
    for (k, v) in headers {
        let k = k.as_str();
        if k == "authorization" || k == "content-type" || k.starts_with("x-amz-") {
            forwarded = forwarded.header(k, v.as_bytes());
        }
    }
    match forwarded.send().await {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::OK);
            let text = r.text().await.unwrap_or_default();
            (status, [("content-type", "text/xml")], text).into_response()
        }
        Err(e) => ApiError::new("InternalFailure", e.to_string()).into_response(),
    }
}

async fn set_durations(
    State(world): State<Shared>,
    body: axum::Json<HashMap<String, f64>>,
) -> StatusCode {
    let mut w = world.lock().expect("twin state");
    for (k, v) in body.0 {
        w.durations.insert(k, Duration::from_secs_f64(v));
    }
    StatusCode::NO_CONTENT
}

async fn set_outcomes(
    State(world): State<Shared>,
    body: axum::Json<HashMap<String, String>>,
) -> StatusCode {
    world.lock().expect("twin state").outcomes.extend(body.0);
    StatusCode::NO_CONTENT
}

async fn set_fault(
    State(world): State<Shared>,
    body: axum::Json<Value>,
) -> Result<StatusCode, ApiError> {
    let op = body["operation"]
        .as_str()
        .ok_or_else(|| ApiError::validation("operation"))?;
    let fault = match body["kind"].as_str() {
        Some("throttle") => Fault::Throttle,
        Some("server") => Fault::Server,
        Some("access-denied") => Fault::AccessDenied,
        _ => {
            return Err(ApiError::validation(
                "kind: throttle, server or access-denied",
            ));
        }
    };
    let count = body["count"].as_u64().unwrap_or(1) as usize;
    world
        .lock()
        .expect("twin state")
        .faults
        .entry(op.to_owned())
        .or_default()
        .extend(std::iter::repeat_n(fault, count));
    Ok(StatusCode::NO_CONTENT)
}

async fn set_lambda(
    State(world): State<Shared>,
    body: axum::Json<Value>,
) -> Result<StatusCode, ApiError> {
    let (Some(name), Some(endpoint)) = (body["name"].as_str(), body["endpoint"].as_str()) else {
        return Err(ApiError::validation("name and endpoint are required"));
    };
    world
        .lock()
        .expect("twin state")
        .lambdas
        .insert(name.to_owned(), endpoint.to_owned());
    Ok(StatusCode::NO_CONTENT)
}

async fn get_calls(State(world): State<Shared>) -> axum::Json<Vec<Call>> {
    axum::Json(world.lock().expect("twin state").calls.clone())
}

async fn reset(State(world): State<Shared>) -> StatusCode {
    let mut w = world.lock().expect("twin state");
    let moto = w.moto.take();
    *w = World::new(moto);
    StatusCode::NO_CONTENT
}
