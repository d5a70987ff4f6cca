//! A SAM template "deployed" locally: its parameters (defaults, or what a test gives as `sam deploy
//! --parameter-overrides` would), the physical names of its resources (as CloudFormation would name
//! them, or what the test bed made), and CloudFormation's intrinsic functions resolved against them.
//!
//! Tests, the demo and the bench start every function from the template's own `Environment`
//! ([`Stack::function`]); only the endpoints are the test bed's. A variable added to the template
//! reaches the function without touching test code, and a variable the template forgets is missed by
//! the tests too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;

use crate::harness::Config;

/// The account and region of every local stack.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The project's template.
pub fn project_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")
}

#[derive(Clone)]
pub struct Stack {
    doc: Yaml,
    params: BTreeMap<String, Value>,
    /// `Logical` (what `!Ref` gives) or `Logical.Attribute` (what `!GetAtt` gives) → value.
    physical: BTreeMap<String, String>,
}

impl Stack {
    /// The template at `path` with every parameter at its default.
    pub fn load(path: &Path) -> Result<Stack, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Stack::parse(&text)
    }

    /// A template's text with every parameter at its default.
    pub fn parse(text: &str) -> Result<Stack, String> {
        let doc: Yaml = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let mut params = BTreeMap::new();
        for (k, v) in doc["Parameters"].as_mapping().into_iter().flatten() {
            let (Some(name), Some(default)) = (k.as_str(), v.get("Default")) else {
                continue;
            };
            let text = scalar(default).ok_or_else(|| format!("parameter {name}: default"))?;
            let list = v["Type"]
                .as_str()
                .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"));
            let value = if list {
                let items: Vec<&str> = text.split(',').map(str::trim).collect();
                json!(if text.is_empty() { vec![] } else { items })
            } else {
                json!(text)
            };
            params.insert(name.to_owned(), value);
        }
        Ok(Stack {
            doc,
            params,
            physical: BTreeMap::new(),
        })
    }

    /// `infra/template.yaml` as the test bed deploys it: the model package groups of
    /// [`crate::events::TEST_GROUPS`], the artifacts bucket of [`crate::deployment`].
    pub fn project() -> Stack {
        let text = std::fs::read_to_string(project_template()).expect("infra/template.yaml");
        Stack::project_text(&text)
    }

    /// [`Stack::project`] of a template text (e.g. the project's, edited by a test).
    pub fn project_text(text: &str) -> Stack {
        Stack::parse(text)
            .unwrap_or_else(|e| panic!("infra/template.yaml: {e}"))
            .parameter("ModelPackageGroups", json!(crate::events::TEST_GROUPS))
            .resource("ArtifactsBucket", crate::deployment::ARTIFACTS_BUCKET)
    }

    /// Gives a parameter a value (a JSON array for list parameters).
    pub fn parameter(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.params.insert(name.to_owned(), value.into());
        self
    }

    /// Gives a resource (`Logical`) or one of its attributes (`Logical.Attribute`) the value the
    /// test bed made for it.
    pub fn resource(mut self, key: &str, value: impl Into<String>) -> Self {
        self.physical.insert(key.to_owned(), value.into());
        self
    }

    /// The stack's name (from its id).
    pub fn name(&self) -> &str {
        crate::cfn::STACK_ID.split('/').nth(1).unwrap_or("stack")
    }

    /// What `!Ref logical` gives.
    pub fn physical(&self, logical: &str) -> String {
        match self.reference(logical) {
            Ok(Some(Value::String(s))) => s,
            other => panic!("!Ref {logical}: {other:?}"),
        }
    }

    /// The `FunctionName` of a function resource.
    pub fn function_name(&self, logical: &str) -> String {
        self.physical(logical)
    }

    /// The function's `Environment.Variables` over those of `Globals.Function` (SAM merges them, the
    /// function's winning), resolved (a variable whose value is `AWS::NoValue` is left out).
    pub fn environment(&self, logical: &str) -> Result<Vec<(String, String)>, String> {
        let own = &self.resource_doc(logical)?["Properties"]["Environment"]["Variables"];
        let global = &self.doc["Globals"]["Function"]["Environment"]["Variables"];
        let mut vars: Vec<(&Yaml, &Yaml)> = Vec::new();
        for (k, v) in [global, own]
            .into_iter()
            .filter_map(Yaml::as_mapping)
            .flatten()
        {
            vars.retain(|(known, _)| *known != k);
            vars.push((k, v));
        }
        let mut out = Vec::new();
        for (k, v) in vars {
            let key = k.as_str().ok_or("non-string variable name")?;
            let value = self
                .resolve(v)
                .map_err(|e| format!("{logical}: {key}: {e}"))?;
            match value {
                None => {}
                Some(Value::String(s)) => out.push((key.to_owned(), s)),
                Some(other) => out.push((key.to_owned(), other.to_string())),
            }
        }
        Ok(out)
    }

    /// The harness configuration of the function resource `logical`: its binary (named by its logical
    /// id, as the Makefile's `build-%Function` does: [`binary_of`]), its name and its environment, from
    /// the template.
    pub fn function(&self, logical: &str) -> Config {
        let res = self.resource_doc(logical).unwrap_or_else(|e| panic!("{e}"));
        let binary = binary_of(logical);
        let binary = binary.as_str();
        let env = self
            .environment(logical)
            .unwrap_or_else(|e| panic!("infra/template.yaml: {e}"));
        let config = env.iter().fold(
            Config::new(crate::bins::path(binary), &self.function_name(logical)),
            |config, (k, v)| config.env(k, v.as_str()),
        );
        // The function's `Timeout` (or the Globals'), as Lambda applies it.
        let timeout = [
            &res["Properties"]["Timeout"],
            &self.doc["Globals"]["Function"]["Timeout"],
        ]
        .into_iter()
        .find_map(|t| match self.resolve(t) {
            Ok(Some(Value::Number(n))) => n.as_u64(),
            Ok(Some(Value::String(s))) => s.parse().ok(),
            _ => None,
        });
        match timeout {
            Some(seconds) => config.timeout(std::time::Duration::from_secs(seconds)),
            None => config,
        }
    }

    /// The stack's EventBridge rules (see [`crate::events`]).
    pub fn routes(&self) -> Vec<crate::events::Route> {
        crate::events::routes_of(self).unwrap_or_else(|e| panic!("template: {e}"))
    }

    /// The raw YAML of a resource.
    pub fn resource_doc(&self, logical: &str) -> Result<&Yaml, String> {
        let res = &self.doc["Resources"][logical];
        if res.is_null() {
            return Err(format!("no resource {logical} in the template"));
        }
        Ok(res)
    }

    /// The template's resources: (logical id, YAML).
    pub fn resources(&self) -> impl Iterator<Item = (&str, &Yaml)> {
        self.doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
    }

    /// A value with its intrinsic functions resolved; `None` for `AWS::NoValue`.
    pub fn resolve(&self, y: &Yaml) -> Result<Option<Value>, String> {
        Ok(Some(match y {
            Yaml::Null => Value::Null,
            Yaml::Bool(b) => json!(b),
            Yaml::Number(n) => serde_json::to_value(n).map_err(|e| e.to_string())?,
            Yaml::String(s) => json!(s),
            Yaml::Sequence(items) => {
                let mut out = Vec::new();
                for i in items {
                    out.extend(self.resolve(i)?);
                }
                Value::Array(out)
            }
            Yaml::Mapping(m) => {
                if m.len() == 1
                    && let Some((k, v)) = m.iter().next()
                    && let Some(name) = k.as_str()
                    && (name == "Ref" || name.starts_with("Fn::") || name == "Condition")
                {
                    return self.intrinsic(name.trim_start_matches("Fn::"), v);
                }
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    let key = k.as_str().ok_or("non-string key")?.to_owned();
                    if let Some(v) = self.resolve(v)? {
                        out.insert(key, v);
                    }
                }
                Value::Object(out)
            }
            Yaml::Tagged(t) => {
                return self.intrinsic(t.tag.to_string().trim_start_matches('!'), &t.value);
            }
        }))
    }

    fn text(&self, y: &Yaml) -> Result<String, String> {
        match self.resolve(y)? {
            Some(Value::String(s)) => Ok(s),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::Bool(b)) => Ok(b.to_string()),
            other => Err(format!("expected text, got {other:?}")),
        }
    }

    fn intrinsic(&self, name: &str, v: &Yaml) -> Result<Option<Value>, String> {
        let arg = |i: usize| &v[i];
        Ok(Some(match name {
            "Ref" => return self.reference(v.as_str().ok_or("!Ref needs a name")?),
            "GetAtt" => {
                let (logical, attribute) = match v {
                    Yaml::String(s) => s.split_once('.').ok_or("!GetAtt needs X.Attribute")?,
                    _ => (
                        arg(0).as_str().ok_or("!GetAtt")?,
                        arg(1).as_str().ok_or("!GetAtt")?,
                    ),
                };
                json!(self.attribute(logical, attribute)?)
            }
            "Sub" => {
                let (text, vars) = match v {
                    Yaml::String(s) => (s.as_str(), None),
                    _ => (arg(0).as_str().ok_or("!Sub")?, Some(arg(1))),
                };
                json!(self.sub(text, vars)?)
            }
            "Join" => {
                let sep = arg(0).as_str().ok_or("!Join separator")?;
                let items = match self.resolve(arg(1))? {
                    Some(Value::Array(items)) => items,
                    other => return Err(format!("!Join of {other:?}")),
                };
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect();
                json!(parts.join(sep))
            }
            "Split" => {
                let sep = arg(0).as_str().ok_or("!Split separator")?;
                json!(self.text(arg(1))?.split(sep).collect::<Vec<_>>())
            }
            "Select" => {
                let index: usize = self.text(arg(0))?.parse().map_err(|_| "!Select index")?;
                match self.resolve(arg(1))? {
                    Some(Value::Array(items)) => items.get(index).cloned().ok_or("!Select")?,
                    other => return Err(format!("!Select of {other:?}")),
                }
            }
            "If" => {
                let condition = arg(0).as_str().ok_or("!If condition")?;
                let branch = if self.condition(condition)? { 1 } else { 2 };
                return self.resolve(arg(branch));
            }
            "Equals" | "Not" | "And" | "Or" | "Condition" => json!(self.truth(name, v)?),
            other => return Err(format!("unsupported intrinsic {other}")),
        }))
    }

    /// The value of a condition of the template's `Conditions`.
    pub fn condition(&self, name: &str) -> Result<bool, String> {
        let c = &self.doc["Conditions"][name];
        if c.is_null() {
            return Err(format!("no condition {name}"));
        }
        match self.resolve(c)? {
            Some(Value::Bool(b)) => Ok(b),
            other => Err(format!("condition {name} is {other:?}")),
        }
    }

    fn truth(&self, name: &str, v: &Yaml) -> Result<bool, String> {
        let boolean = |y: &Yaml| match self.resolve(y)? {
            Some(Value::Bool(b)) => Ok(b),
            other => Err(format!("!{name} of {other:?}")),
        };
        let items = || v.as_sequence().map(Vec::as_slice).unwrap_or_default();
        match name {
            "Equals" => Ok(self.resolve(&v[0])? == self.resolve(&v[1])?),
            "Not" => Ok(!boolean(&v[0])?),
            "And" => items().iter().try_fold(true, |a, y| Ok(a && boolean(y)?)),
            "Or" => items().iter().try_fold(false, |a, y| Ok(a || boolean(y)?)),
            _ => self.condition(v.as_str().ok_or("!Condition needs a name")?),
        }
    }

    fn sub(&self, text: &str, vars: Option<&Yaml>) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').ok_or("!Sub: unclosed ${")? + start;
            let name = &rest[start + 2..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if let Some(v) = vars.map(|m| &m[name]).filter(|v| !v.is_null()) {
                out.push_str(&self.text(v)?);
            } else if let Some((logical, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(logical, attribute)?);
            } else {
                match self.reference(name)? {
                    Some(Value::String(s)) => out.push_str(&s),
                    other => return Err(format!("!Sub ${{{name}}}: {other:?}")),
                }
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn reference(&self, name: &str) -> Result<Option<Value>, String> {
        let pseudo = match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => Some(REGION.to_owned()),
            "AWS::AccountId" => Some(ACCOUNT.to_owned()),
            "AWS::Partition" => Some("aws".to_owned()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_owned()),
            "AWS::StackId" => Some(crate::cfn::STACK_ID.to_owned()),
            "AWS::StackName" => Some(self.name().to_owned()),
            _ => None,
        };
        if let Some(value) = pseudo.or_else(|| self.physical.get(name).cloned()) {
            return Ok(Some(json!(value)));
        }
        if let Some(value) = self.params.get(name) {
            return Ok(Some(value.clone()));
        }
        if !self.doc["Parameters"][name].is_null() {
            return Err(format!(
                "parameter {name} has no default: give it with Stack::parameter"
            ));
        }
        let res = self.resource_doc(name)?;
        let given = self.named(name)?;
        Ok(Some(json!(
            match res["Type"].as_str().unwrap_or_default() {
                "AWS::SNS::Topic" => format!("arn:aws:sns:{REGION}:{ACCOUNT}:{given}"),
                "AWS::SQS::Queue" =>
                    format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{given}"),
                _ => given,
            }
        )))
    }

    /// The resource's name: its `…Name` property when the template sets one, else what
    /// CloudFormation generates (`<stack>-<LogicalId>`, without the random suffix).
    fn named(&self, logical: &str) -> Result<String, String> {
        let props = &self.resource_doc(logical)?["Properties"];
        for key in [
            "FunctionName",
            "TopicName",
            "TableName",
            "QueueName",
            "BucketName",
            "RoleName",
            "Name",
        ] {
            if !props[key].is_null() {
                return self.text(&props[key]);
            }
        }
        Ok(format!("{}-{logical}", self.name()))
    }

    fn attribute(&self, logical: &str, attribute: &str) -> Result<String, String> {
        if let Some(value) = self.physical.get(&format!("{logical}.{attribute}")) {
            return Ok(value.clone());
        }
        let kind = self.resource_doc(logical)?["Type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = match self.reference(logical)? {
            Some(Value::String(s)) => s,
            other => return Err(format!("!Ref {logical}: {other:?}")),
        };
        Ok(match (kind.as_str(), attribute) {
            ("AWS::IAM::Role", "Arn") => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => {
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
            }
            ("AWS::SQS::Queue", "Arn") => {
                let queue = name.rsplit('/').next().unwrap_or_default();
                format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}")
            }
            ("AWS::DynamoDB::Table", "Arn") => {
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
            }
            ("AWS::SNS::Topic", "TopicArn") => name,
            ("AWS::S3::Bucket", "Arn") => format!("arn:aws:s3:::{name}"),
            ("AWS::S3::Bucket", "RegionalDomainName") => {
                format!("{name}.s3.{REGION}.amazonaws.com")
            }
            ("AWS::KMS::Key", "Arn") => format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}"),
            _ => {
                return Err(format!(
                    "!GetAtt {logical}.{attribute} ({kind}): give it with Stack::resource"
                ));
            }
        })
    }
}

/// A parameter default as text (YAML may read `30` or `true` as a number or a boolean).
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The crate and binary of a function's logical id, as the Makefile's `build-%Function` rule spells it
/// for `sam build`: `OrgAccountsFunction` → `org-accounts`.
pub fn binary_of(logical: &str) -> String {
    let id = logical.strip_suffix("Function").unwrap_or(logical);
    let mut out = String::new();
    for (i, c) in id.char_indices() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  ProjectName: {Type: String, Default: demo}
  Groups: {Type: CommaDelimitedList, Default: "a, b"}
  Regions: {Type: CommaDelimitedList, Default: ""}
  Count: {Type: Number, Default: 2}
Conditions:
  HasRegions: !Not [!Equals [!Join ["", !Ref Regions], ""]]
Globals:
  Function:
    Environment:
      Variables: {SHARED: !Ref ProjectName, COUNT: overridden}
Resources:
  Topic: {Type: AWS::SNS::Topic, Properties: {TopicName: !Sub "${ProjectName}-alerts"}}
  Table: {Type: AWS::DynamoDB::Table}
  Role: {Type: AWS::IAM::Role, Properties: {RoleName: r}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "${ProjectName}-fn"
      Environment:
        Variables:
          TOPIC: !Ref Topic
          TABLE: !Ref Table
          GROUPS: !Join [",", !Ref Groups]
          REGIONS: !If [HasRegions, !Join [",", !Ref Regions], !Ref "AWS::Region"]
          COUNT: !Ref Count
          ROLE: !GetAtt Role.Arn
          LITERAL: !Sub "${!kept}/${AWS::AccountId}"
          GONE: !Ref AWS::NoValue
"#;

    #[test]
    fn intrinsics_resolve_as_cloudformation_does() {
        let stack = Stack::parse(TEMPLATE).unwrap();
        let env: BTreeMap<_, _> = stack.environment("Fn").unwrap().into_iter().collect();
        assert_eq!(
            env["TOPIC"],
            "arn:aws:sns:us-east-1:123456789012:demo-alerts"
        );
        assert_eq!(env["TABLE"], format!("{}-Table", stack.name()));
        assert_eq!(env["GROUPS"], "a,b");
        assert_eq!(env["REGIONS"], "us-east-1");
        assert_eq!(env["COUNT"], "2");
        assert_eq!(env["ROLE"], "arn:aws:iam::123456789012:role/r");
        assert_eq!(env["LITERAL"], "${kept}/123456789012");
        assert!(!env.contains_key("GONE"));
        assert_eq!(env["SHARED"], "demo", "Globals reach every function");
        let given = stack
            .parameter("Regions", json!(["eu-west-1", "us-east-1"]))
            .parameter("ProjectName", "other")
            .resource("Table", "made-by-the-test");
        let env: BTreeMap<_, _> = given.environment("Fn").unwrap().into_iter().collect();
        assert_eq!(env["REGIONS"], "eu-west-1,us-east-1");
        assert_eq!(
            env["TOPIC"],
            "arn:aws:sns:us-east-1:123456789012:other-alerts"
        );
        assert_eq!(env["TABLE"], "made-by-the-test");
        assert_eq!(given.function_name("Fn"), "other-fn");
    }

    #[test]
    fn what_cannot_be_resolved_is_named() {
        let bad = TEMPLATE.replace("!GetAtt Role.Arn", "!GetAtt Table.StreamArn");
        let err = Stack::parse(&bad).unwrap().environment("Fn").unwrap_err();
        assert!(err.contains("Fn: ROLE: !GetAtt Table.StreamArn"), "{err}");
    }

    #[test]
    fn every_function_of_the_project_resolves() {
        let stack = Stack::project()
            .parameter("StagingTargets", json!(["ou-ab12-staging1"]))
            .parameter("ProdTargets", json!(["ou-ab12-product1"]));
        let functions: Vec<&str> = stack
            .resources()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(functions.len(), 7, "{functions:?}");
        for id in functions {
            stack.environment(id).unwrap_or_else(|e| panic!("{e}"));
            // Its binary, name and timeout come from the template too.
            let config = stack.function(id);
            let timeout = stack.resource_doc(id).unwrap()["Properties"]["Timeout"]
                .as_u64()
                .unwrap_or_else(|| panic!("{id} sets its Timeout"));
            assert_eq!(
                config.timeout,
                std::time::Duration::from_secs(timeout),
                "{id}"
            );
        }
    }
}
