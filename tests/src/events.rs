//! Routes events in the emulator exactly as the SAM template wires them: every EventBridge rule of the
//! template (`AWS::Events::Rule` with function targets, and `EventBridgeRule` / `CloudWatchEvent`
//! events of `AWS::Serverless::Function`) becomes a moto rule with the template's own pattern, whose
//! target is an SQS queue per function. Tests then read what each function would have received — so the
//! template's patterns are what gets tested, never a copy in test code.
//!
//! Intrinsics in patterns: `!Ref` of a parameter resolves to its default (a `CommaDelimitedList` to a
//! list), `!Split [",", …]` to a list.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;

/// One rule of the template: which function receives which pattern.
#[derive(Clone, Debug)]
pub struct Route {
    pub rule: String,
    /// The function's `FunctionName` (`${Parameter}`s resolved to their defaults), or its logical id.
    pub function: String,
    pub pattern: Value,
}

fn to_json(y: &Yaml, params: &BTreeMap<String, Value>) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => json!(b),
        Yaml::Number(n) => serde_json::to_value(n).map_err(|e| e.to_string())?,
        Yaml::String(s) => json!(s),
        Yaml::Sequence(items) => Value::Array(
            items
                .iter()
                .map(|i| to_json(i, params))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = k.as_str().ok_or("non-string key")?.to_owned();
                // Long-form intrinsics: {"Ref": X}, {"Fn::Split": [..]}
                if key == "Ref" || key == "Fn::Split" || key == "Fn::GetAtt" {
                    return intrinsic(&key, v, params);
                }
                out.insert(key, to_json(v, params)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(t) => {
            let name = match t.tag.to_string().trim_start_matches('!') {
                "Ref" => "Ref",
                "Split" => "Fn::Split",
                "GetAtt" => "Fn::GetAtt",
                other => {
                    return Err(format!(
                        "unsupported intrinsic !{other} in an event pattern"
                    ));
                }
            };
            return intrinsic(name, &t.value, params);
        }
    })
}

fn intrinsic(name: &str, v: &Yaml, params: &BTreeMap<String, Value>) -> Result<Value, String> {
    match name {
        "Ref" => {
            let p = v.as_str().ok_or("!Ref needs a name")?;
            params
                .get(p)
                .cloned()
                .ok_or_else(|| format!("!Ref {p}: not a parameter with a default"))
        }
        "Fn::GetAtt" => Ok(json!({"GetAtt": to_json(v, params)?})),
        _ => {
            let parts = to_json(v, params)?;
            let sep = parts[0].as_str().ok_or("!Split separator")?;
            let text = parts[1].as_str().ok_or("!Split of a non-string")?;
            Ok(json!(text.split(sep).collect::<Vec<_>>()))
        }
    }
}

/// The template's EventBridge rules, with every parameter at its default.
pub fn routes(template: &Path) -> Result<Vec<Route>, String> {
    routes_with(template, &[])
}

/// The template's EventBridge rules, with some parameters given values (as `sam deploy` would).
pub fn routes_with(template: &Path, given: &[(&str, Value)]) -> Result<Vec<Route>, String> {
    let text =
        std::fs::read_to_string(template).map_err(|e| format!("{}: {e}", template.display()))?;
    let doc: Yaml = serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())?;
    let mut params = BTreeMap::new();
    if let Some(m) = doc["Parameters"].as_mapping() {
        for (k, v) in m {
            let (Some(name), Some(default)) = (k.as_str(), v.get("Default")) else {
                continue;
            };
            let default = match default {
                Yaml::String(s) if v["Type"].as_str() == Some("CommaDelimitedList") => {
                    json!(s.split(',').map(str::trim).collect::<Vec<_>>())
                }
                other => to_json(other, &BTreeMap::new())?,
            };
            params.insert(name.to_owned(), default);
        }
    }
    for (name, value) in given {
        params.insert((*name).to_owned(), value.clone());
    }
    let resources = doc["Resources"].as_mapping().ok_or("no Resources")?;
    // `FunctionName: !Sub "${ProjectName}-x"` resolves with the parameters' defaults.
    let function_name = |logical: &str| -> String {
        let mut name = doc["Resources"][logical]["Properties"]["FunctionName"]
            .as_str()
            .unwrap_or(logical)
            .to_owned();
        for (param, value) in &params {
            if let Some(v) = value.as_str() {
                name = name.replace(&format!("${{{param}}}"), v);
            }
        }
        name
    };
    let mut routes = Vec::new();
    for (id, res) in resources {
        let id = id.as_str().unwrap_or_default();
        match res["Type"].as_str() {
            Some("AWS::Serverless::Function") => {
                for (event_id, event) in res["Properties"]["Events"]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                {
                    if matches!(
                        event["Type"].as_str(),
                        Some("EventBridgeRule" | "CloudWatchEvent")
                    ) {
                        routes.push(Route {
                            rule: format!("{id}{}", event_id.as_str().unwrap_or_default()),
                            function: function_name(id),
                            pattern: to_json(&event["Properties"]["Pattern"], &params)?,
                        });
                    }
                }
            }
            Some("AWS::Events::Rule") if !res["Properties"]["EventPattern"].is_null() => {
                let pattern = to_json(&res["Properties"]["EventPattern"], &params)?;
                for target in res["Properties"]["Targets"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    let arn = to_json(&target["Arn"], &params)?;
                    let logical = arn["GetAtt"]
                        .as_str()
                        .map(|s| s.split('.').next().unwrap_or(s).to_owned())
                        .or_else(|| arn["GetAtt"][0].as_str().map(str::to_owned));
                    if let Some(logical) = logical {
                        routes.push(Route {
                            rule: id.to_owned(),
                            function: function_name(&logical),
                            pattern: pattern.clone(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(routes)
}

async fn call(moto: &str, target: &str, version: &str, body: Value) -> Value {
    let service = if target.starts_with("AWSEvents") {
        "events"
    } else {
        "sqs"
    };
    let resp = reqwest::Client::new()
        .post(format!("{moto}/"))
        .header("X-Amz-Target", target)
        .header("Content-Type", format!("application/x-amz-json-{version}"))
        .header("Authorization", format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"))
        .body(body.to_string())
        .send()
        .await
        .expect("moto reachable");
    serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null)
}

/// The template's rules installed in moto: one SQS queue per function receives its events.
pub struct Router {
    moto: String,
    queues: BTreeMap<String, String>,
}

impl Router {
    pub async fn install(moto: &str, routes: &[Route]) -> Router {
        let mut queues = BTreeMap::new();
        for route in routes {
            if !queues.contains_key(&route.function) {
                let q = call(
                    moto,
                    "AmazonSQS.CreateQueue",
                    "1.0",
                    json!({"QueueName": format!("events-{}", route.function)}),
                )
                .await;
                queues.insert(
                    route.function.clone(),
                    q["QueueUrl"].as_str().unwrap_or_default().to_owned(),
                );
            }
            let url = &queues[&route.function];
            let attrs = call(
                moto,
                "AmazonSQS.GetQueueAttributes",
                "1.0",
                json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}),
            )
            .await;
            let arn = attrs["Attributes"]["QueueArn"].clone();
            call(moto, "AWSEvents.PutRule", "1.1", json!({"Name": route.rule, "EventPattern": route.pattern.to_string(), "State": "ENABLED"})).await;
            call(
                moto,
                "AWSEvents.PutTargets",
                "1.1",
                json!({"Rule": route.rule, "Targets": [{"Id": route.function, "Arn": arn}]}),
            )
            .await;
        }
        Router {
            moto: moto.to_owned(),
            queues,
        }
    }

    /// Events delivered to `function` so far (removed from its queue).
    pub async fn received(&self, function: &str) -> Vec<Value> {
        let Some(url) = self.queues.get(function) else {
            return vec![];
        };
        let mut out = Vec::new();
        loop {
            let r = call(
                &self.moto,
                "AmazonSQS.ReceiveMessage",
                "1.0",
                json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}),
            )
            .await;
            let messages = r["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(
                    serde_json::from_str(m["Body"].as_str().unwrap_or("null"))
                        .unwrap_or(Value::Null),
                );
                call(
                    &self.moto,
                    "AmazonSQS.DeleteMessage",
                    "1.0",
                    json!({"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]}),
                )
                .await;
            }
        }
    }
}

/// Model package groups the tests and the demo deploy the project's template with.
pub const TEST_GROUPS: [&str; 1] = ["churn"];

/// The rules of the project's own `infra/template.yaml`, with the parameters the tests deploy it with.
pub fn project_routes() -> Vec<Route> {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    routes_with(
        &template,
        &[
            ("ModelPackageGroups", json!(TEST_GROUPS)),
            // `!Ref ArtifactsBucket`: the test beds' artifacts bucket.
            (
                "ArtifactsBucket",
                json!(crate::deployment::ARTIFACTS_BUCKET),
            ),
        ],
    )
    .unwrap_or_else(|e| panic!("infra/template.yaml: {e}"))
}
