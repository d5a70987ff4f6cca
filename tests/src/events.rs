//! Routes events in the emulator exactly as the SAM template wires them: every EventBridge rule of the
//! template (`AWS::Events::Rule` with function targets, and `EventBridgeRule` / `CloudWatchEvent`
//! events of `AWS::Serverless::Function`) becomes a moto rule with the template's own pattern, whose
//! target is an SQS queue per function. Tests then read what each function would have received — so the
//! template's patterns are what gets tested, never a copy in test code.
//!
//! Intrinsics in patterns resolve as the stack is deployed ([`crate::stack::Stack`]): a
//! `CommaDelimitedList` parameter to a list, `!Split [",", …]` to a list.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;

use crate::stack::Stack;

/// One rule of the template: which function receives which pattern.
#[derive(Clone, Debug)]
pub struct Route {
    pub rule: String,
    /// The function's `FunctionName` (`${Parameter}`s resolved to their defaults), or its logical id.
    pub function: String,
    pub pattern: Value,
    /// The event bus of the rule (`EventBusName`), when not the default one.
    pub bus: Option<String>,
}

/// The template's EventBridge rules, with every parameter at its default.
pub fn routes(template: &Path) -> Result<Vec<Route>, String> {
    routes_of(&Stack::load(template)?)
}

/// The EventBridge rules of a stack (its parameters and resources resolved as deployed).
pub fn routes_of(stack: &Stack) -> Result<Vec<Route>, String> {
    let pattern = |y: &Yaml| stack.resolve(y).map(Option::unwrap_or_default);
    let mut routes = Vec::new();
    for (id, res) in stack.resources() {
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
                            function: stack.function_name(id),
                            pattern: pattern(&event["Properties"]["Pattern"])?,
                            bus: None,
                        });
                    }
                }
            }
            Some("AWS::Events::Rule") if !res["Properties"]["EventPattern"].is_null() => {
                // A rule behind a condition exists only when the stack's parameters make it true.
                if let Some(condition) = res["Condition"].as_str()
                    && !stack.condition(condition)?
                {
                    continue;
                }
                let rule_pattern = pattern(&res["Properties"]["EventPattern"])?;
                let bus = match stack.resolve(&res["Properties"]["EventBusName"])? {
                    Some(Value::String(name)) if name != "default" => Some(name),
                    _ => None,
                };
                for target in res["Properties"]["Targets"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    // `!GetAtt Function.Arn` (or its long form): the function's logical id.
                    let logical = match &target["Arn"] {
                        Yaml::Tagged(t) => t.value.as_str().and_then(|s| s.split('.').next()),
                        arn => arn["Fn::GetAtt"][0].as_str(),
                    };
                    if let Some(logical) = logical {
                        routes.push(Route {
                            rule: id.to_owned(),
                            function: stack.function_name(logical),
                            pattern: rule_pattern.clone(),
                            bus: bus.clone(),
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
    call_as(moto, None, target, version, body).await
}

/// A JSON-protocol call to moto, in `account` when given (moto's `x-moto-account-id`).
pub async fn call_as(
    moto: &str,
    account: Option<&str>,
    target: &str,
    version: &str,
    body: Value,
) -> Value {
    let service = if target.starts_with("AWSEvents") {
        "events"
    } else {
        "sqs"
    };
    let mut request = reqwest::Client::new().post(format!("{moto}/"));
    if let Some(account) = account {
        request = request.header("x-moto-account-id", account);
    }
    let resp = request
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
            let bus = route.bus.as_deref().unwrap_or("default");
            if bus != "default" {
                call(
                    moto,
                    "AWSEvents.CreateEventBus",
                    "1.1",
                    json!({"Name": bus}),
                )
                .await;
            }
            call(moto, "AWSEvents.PutRule", "1.1", json!({"Name": route.rule, "EventBusName": bus, "EventPattern": route.pattern.to_string(), "State": "ENABLED"})).await;
            call(
                moto,
                "AWSEvents.PutTargets",
                "1.1",
                json!({"Rule": route.rule, "EventBusName": bus, "Targets": [{"Id": route.function, "Arn": arn}]}),
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

/// The rules of the project's own `infra/template.yaml`, as the test bed deploys it.
pub fn project_routes() -> Vec<Route> {
    routes_of(&Stack::project()).unwrap_or_else(|e| panic!("infra/template.yaml: {e}"))
}
