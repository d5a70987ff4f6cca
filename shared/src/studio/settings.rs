//! Studio settings written as CloudFormation writes them (`AWS::SageMaker::Domain` / `UserProfile`
//! properties: PascalCase, every scalar possibly a string) read into the SDK's own types
//! (`UserSettings`, `DomainSettings`, `DefaultSpaceSettings`, …) through the SDK's schema — the model
//! SageMaker's JSON protocol is generated from — so every field SageMaker accepts is accepted, with the
//! SDK's types, and nothing else:
//!
//! - a property name the SDK's model does not have is an error naming its path (a typo never
//!   disappears silently);
//! - CloudFormation's strings become numbers and booleans where the model says so;
//! - what we check ourselves ([`check`]): role ARNs, security group ids, lifecycle configuration ARNs
//!   and instance types, before any SageMaker call; everything else (enum values, ranges, images) is
//!   SageMaker's to validate, and its error reaches CloudFormation's `Reason`.

use aws_smithy_schema::Schema;
use aws_smithy_schema::serde::{SerdeError, ShapeDeserializer};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::{BigDecimal, BigInteger, Blob, DateTime, Document};
use serde_json::Value;

use crate::Error;
use crate::ids::{RoleArn, SecurityGroupId};

/// Reads `value` (the property `property`) as the SDK type `deserialize` builds. Errors name the path
/// (`DefaultUserSettings.JupyterLabAppSettings.DefaultResourceSpec.InstanceType`).
pub fn read<T>(
    property: &str,
    value: &Value,
    deserialize: fn(&mut dyn ShapeDeserializer) -> Result<T, SerdeError>,
) -> Result<T, Error> {
    check(property, value)?;
    let mut reader = Reader {
        value,
        path: property.to_owned(),
        problem: None,
    };
    let out = deserialize(&mut reader);
    match (out, reader.problem) {
        (Ok(v), None) => Ok(v),
        (_, Some(problem)) => Err(Error::invalid(problem)),
        (Err(e), None) => Err(Error::invalid(format!("{property}: {e}"))),
    }
}

/// `UserSettings` (the property `property`, `None`: empty) with `role` as its `ExecutionRole` and
/// `groups` as its `SecurityGroups` where it names none of its own — how the typed shortcuts
/// (`DefaultExecutionRoleArn`, `ExecutionRoleArn`, `SecurityGroupIds`) join CloudFormation's shape.
pub fn user_settings(
    property: &str,
    value: Option<&Value>,
    role: Option<&str>,
    groups: &[String],
) -> Result<aws_sdk_sagemaker::types::UserSettings, Error> {
    let mut v = value
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let Some(obj) = v.as_object_mut() else {
        return Err(Error::invalid(format!("{property}: expected an object")));
    };
    if let Some(role) = role
        && obj.get("ExecutionRole").is_none_or(Value::is_null)
    {
        obj.insert("ExecutionRole".into(), Value::String(role.to_owned()));
    }
    if !groups.is_empty() && obj.get("SecurityGroups").is_none_or(Value::is_null) {
        let groups = groups.iter().cloned().map(Value::String).collect();
        obj.insert("SecurityGroups".into(), Value::Array(groups));
    }
    read(
        property,
        &v,
        aws_sdk_sagemaker::types::UserSettings::deserialize,
    )
}

/// What we validate ourselves, by property name anywhere in the tree: `ExecutionRole` and `…RoleArn`
/// (IAM role ARNs), `SecurityGroups` / `SecurityGroupIds` (security group ids), `LifecycleConfigArns`
/// and `LifecycleConfigArn` (Studio lifecycle configuration ARNs), `InstanceType`
/// (`ml.<family>.<size>` or `system`).
pub fn check(path: &str, value: &Value) -> Result<(), Error> {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let here = format!("{path}.{key}");
                if v.is_null() {
                    continue;
                }
                match key.as_str() {
                    "ExecutionRole" | "DomainExecutionRoleArn" => role(&here, v)?,
                    k if k.ends_with("RoleArn") => role(&here, v)?,
                    "SecurityGroups" | "SecurityGroupIds" => {
                        for (i, sg) in items(&here, v)?.iter().enumerate() {
                            text(&format!("{here}[{i}]"), sg)?
                                .parse::<SecurityGroupId>()
                                .map_err(|e| Error::invalid(format!("{here}[{i}]: {e}")))?;
                        }
                    }
                    "LifecycleConfigArns" => {
                        for (i, arn) in items(&here, v)?.iter().enumerate() {
                            lifecycle_config(&format!("{here}[{i}]"), arn)?;
                        }
                    }
                    "LifecycleConfigArn" => lifecycle_config(&here, v)?,
                    "InstanceType" => instance_type(&here, v)?,
                    _ => check(&here, v)?,
                }
            }
            Ok(())
        }
        Value::Array(list) => list
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check(&format!("{path}[{i}]"), v)),
        _ => Ok(()),
    }
}

fn text<'v>(path: &str, v: &'v Value) -> Result<&'v str, Error> {
    v.as_str()
        .ok_or_else(|| Error::invalid(format!("{path}: expected a string, got {v}")))
}

/// A list, or CloudFormation's comma-separated string for one.
fn items(path: &str, v: &Value) -> Result<Vec<Value>, Error> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect()),
        other => Err(Error::invalid(format!(
            "{path}: expected a list, got {other}"
        ))),
    }
}

fn role(path: &str, v: &Value) -> Result<(), Error> {
    text(path, v)?
        .parse::<RoleArn>()
        .map(drop)
        .map_err(|e| Error::invalid(format!("{path}: {e}")))
}

/// `arn:<partition>:sagemaker:<region>:<account>:studio-lifecycle-config/<name>` (name: letters,
/// digits and single hyphens, up to 63), as SageMaker's `CreateStudioLifecycleConfig` returns it.
fn lifecycle_config(path: &str, v: &Value) -> Result<(), Error> {
    let arn = text(path, v)?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sagemaker"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("studio-lifecycle-config/")
            .is_some_and(|name| {
                (1..=63).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !name.starts_with('-')
                    && !name.ends_with('-')
            });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{path}: `{arn}` is not a Studio lifecycle configuration ARN \
             (arn:aws:sagemaker:<region>:<account>:studio-lifecycle-config/<name>)"
        )))
    }
}

fn instance_type(path: &str, v: &Value) -> Result<(), Error> {
    let t = text(path, v)?;
    let parts: Vec<&str> = t.split('.').collect();
    let ok = t == "system"
        || (parts.len() == 3
            && parts[0] == "ml"
            && parts[1..].iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            }));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{path}: `{t}` is not a SageMaker app instance type (ml.<family>.<size>, e.g. ml.t3.medium, or system)"
        )))
    }
}

/// A [`ShapeDeserializer`] over a JSON value: members by their model names, strings accepted for
/// numbers and booleans (CloudFormation sends every scalar as a string), unknown members refused.
struct Reader<'v> {
    value: &'v Value,
    path: String,
    /// The first problem, with its path (a `SerdeError` has no place for one).
    problem: Option<String>,
}

impl Reader<'_> {
    fn fail(&mut self, message: String) -> SerdeError {
        let m = format!("{}: {message}", self.path);
        if self.problem.is_none() {
            self.problem = Some(m.clone());
        }
        SerdeError::custom(m)
    }

    fn number(&mut self, kind: &str) -> Result<f64, SerdeError> {
        match self.value {
            Value::Number(n) => n.as_f64().ok_or_else(|| self.fail(format!("not a {kind}"))),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| self.fail(format!("expected a {kind}, got `{s}`"))),
            other => {
                let m = format!("expected a {kind}, got {other}");
                Err(self.fail(m))
            }
        }
    }

    fn whole(&mut self, kind: &str, min: f64, max: f64) -> Result<i64, SerdeError> {
        let n = self.number(kind)?;
        if n.fract() != 0.0 || n < min || n > max {
            return Err(self.fail(format!("{n} is not a {kind}")));
        }
        Ok(n as i64)
    }

    /// Runs `f` on a child reader, keeping its problem.
    fn child<R>(
        &mut self,
        value: &Value,
        path: String,
        f: impl FnOnce(&mut Reader<'_>) -> Result<R, SerdeError>,
    ) -> Result<R, SerdeError> {
        let mut child = Reader {
            value,
            path,
            problem: None,
        };
        let out = f(&mut child);
        if self.problem.is_none() {
            self.problem = child.problem;
        }
        out
    }
}

impl ShapeDeserializer for Reader<'_> {
    fn read_struct(
        &mut self,
        schema: &Schema<'_>,
        state: &mut dyn FnMut(&Schema<'_>, &mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
    ) -> Result<(), SerdeError> {
        let Value::Object(map) = self.value else {
            let m = format!("expected an object, got {}", self.value);
            return Err(self.fail(m));
        };
        for (key, v) in map {
            let Some(member) = schema.member_schema(key) else {
                let known: Vec<&str> = schema
                    .members()
                    .iter()
                    .filter_map(|m| m.member_name())
                    .collect();
                let m = format!(
                    "unknown property `{key}` (this object has: {})",
                    known.join(", ")
                );
                let mut at = Reader {
                    value: v,
                    path: self.path.clone(),
                    problem: None,
                };
                let e = at.fail(m);
                self.problem.get_or_insert(at.problem.unwrap_or_default());
                return Err(e);
            };
            let path = format!("{}.{key}", self.path);
            self.child(v, path, |r| state(member, r))?;
        }
        Ok(())
    }

    fn read_list(
        &mut self,
        _schema: &Schema<'_>,
        state: &mut dyn FnMut(&mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
    ) -> Result<(), SerdeError> {
        // A list, or CloudFormation's comma-separated string for one.
        let list = match items(&self.path, self.value) {
            Ok(list) => list,
            Err(_) => {
                let m = format!("expected a list, got {}", self.value);
                return Err(self.fail(m));
            }
        };
        for (i, v) in list.iter().enumerate() {
            let path = format!("{}[{i}]", self.path);
            self.child(v, path, |r| state(r))?;
        }
        Ok(())
    }

    fn read_map(
        &mut self,
        _schema: &Schema<'_>,
        state: &mut dyn FnMut(String, &mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
    ) -> Result<(), SerdeError> {
        let Value::Object(map) = self.value else {
            let m = format!("expected an object, got {}", self.value);
            return Err(self.fail(m));
        };
        for (key, v) in map {
            let path = format!("{}.{key}", self.path);
            self.child(v, path, |r| state(key.clone(), r))?;
        }
        Ok(())
    }

    fn read_boolean(&mut self, _schema: &Schema<'_>) -> Result<bool, SerdeError> {
        match self.value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            other => {
                let m = format!("expected true or false, got {other}");
                Err(self.fail(m))
            }
        }
    }

    fn read_byte(&mut self, _schema: &Schema<'_>) -> Result<i8, SerdeError> {
        self.whole("byte", i8::MIN as f64, i8::MAX as f64)
            .map(|n| n as i8)
    }

    fn read_short(&mut self, _schema: &Schema<'_>) -> Result<i16, SerdeError> {
        self.whole("short integer", i16::MIN as f64, i16::MAX as f64)
            .map(|n| n as i16)
    }

    fn read_integer(&mut self, _schema: &Schema<'_>) -> Result<i32, SerdeError> {
        self.whole("whole number", i32::MIN as f64, i32::MAX as f64)
            .map(|n| n as i32)
    }

    fn read_long(&mut self, _schema: &Schema<'_>) -> Result<i64, SerdeError> {
        self.whole("whole number", -9.0e15, 9.0e15)
    }

    fn read_float(&mut self, _schema: &Schema<'_>) -> Result<f32, SerdeError> {
        self.number("number").map(|n| n as f32)
    }

    fn read_double(&mut self, _schema: &Schema<'_>) -> Result<f64, SerdeError> {
        self.number("number")
    }

    fn read_big_integer(&mut self, _schema: &Schema<'_>) -> Result<BigInteger, SerdeError> {
        Err(self.fail("big integers are not read from properties".into()))
    }

    fn read_big_decimal(&mut self, _schema: &Schema<'_>) -> Result<BigDecimal, SerdeError> {
        Err(self.fail("big decimals are not read from properties".into()))
    }

    fn read_string(&mut self, _schema: &Schema<'_>) -> Result<String, SerdeError> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            // A number or boolean where the model has a string: its text, as CloudFormation would.
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => {
                let m = format!("expected a string, got {other}");
                Err(self.fail(m))
            }
        }
    }

    fn read_blob(&mut self, _schema: &Schema<'_>) -> Result<Blob, SerdeError> {
        Err(self.fail("binary values are not read from properties".into()))
    }

    fn read_timestamp(&mut self, _schema: &Schema<'_>) -> Result<DateTime, SerdeError> {
        let text = self.value.as_str().unwrap_or_default().to_owned();
        DateTime::from_str(&text, Format::DateTime)
            .map_err(|_| self.fail(format!("expected an RFC 3339 time, got `{text}`")))
    }

    fn read_document(&mut self, _schema: &Schema<'_>) -> Result<Document, SerdeError> {
        Err(self.fail("free-form documents are not read from properties".into()))
    }

    fn is_null(&self) -> bool {
        self.value.is_null()
    }

    fn container_size(&self) -> Option<usize> {
        match self.value {
            Value::Array(a) => Some(a.len()),
            Value::Object(m) => Some(m.len()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sagemaker::types::{
        AppInstanceType, DefaultSpaceSettings, DomainSettings, UserSettings,
    };
    use serde_json::json;

    #[test]
    fn cloudformation_shapes_become_the_sdks_types() {
        let v = json!({
            "ExecutionRole": "arn:aws:iam::123456789012:role/Studio",
            "SecurityGroups": ["sg-0a1b2c3d"],
            "JupyterLabAppSettings": {
                "DefaultResourceSpec": {"InstanceType": "ml.t3.medium",
                    "LifecycleConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:studio-lifecycle-config/idle"},
                "LifecycleConfigArns": ["arn:aws:sagemaker:us-east-1:123456789012:studio-lifecycle-config/idle"],
                "CustomImages": [{"AppImageConfigName": "conda", "ImageName": "team-image", "ImageVersionNumber": "3"}],
                "AppLifecycleManagement": {"IdleSettings": {"LifecycleManagement": "ENABLED", "IdleTimeoutInMinutes": "60"}}
            },
            "SpaceStorageSettings": {"DefaultEbsStorageSettings": {"DefaultEbsVolumeSizeInGb": "5", "MaximumEbsVolumeSizeInGb": 100}},
            "StudioWebPortal": "ENABLED",
            "CustomPosixUserConfig": {"Uid": "200001", "Gid": "1001"}
        });
        let s = read("DefaultUserSettings", &v, UserSettings::deserialize).unwrap();
        let lab = s.jupyter_lab_app_settings().unwrap();
        assert_eq!(
            lab.default_resource_spec().unwrap().instance_type(),
            Some(&AppInstanceType::MlT3Medium)
        );
        assert_eq!(lab.custom_images()[0].image_version_number(), Some(3));
        let idle = lab
            .app_lifecycle_management()
            .unwrap()
            .idle_settings()
            .unwrap();
        assert_eq!(idle.idle_timeout_in_minutes(), Some(60));
        let ebs = s
            .space_storage_settings()
            .unwrap()
            .default_ebs_storage_settings()
            .unwrap();
        assert_eq!(ebs.default_ebs_volume_size_in_gb(), Some(5));
        assert_eq!(s.custom_posix_user_config().unwrap().uid(), Some(200001));
        let d = read(
            "DomainSettings",
            &json!({"SecurityGroupIds": "sg-0a1b2c3d,sg-1a1b2c3d", "DockerSettings": {"EnableDockerAccess": "ENABLED"}}),
            DomainSettings::deserialize,
        )
        .unwrap();
        assert_eq!(d.security_group_ids().len(), 2);
        let space = read(
            "DefaultSpaceSettings",
            &json!({"ExecutionRole": "arn:aws:iam::123456789012:role/Studio"}),
            DefaultSpaceSettings::deserialize,
        )
        .unwrap();
        assert!(space.execution_role().is_some());
    }

    #[test]
    fn errors_name_the_path() {
        let e = |v: Value| {
            read("DefaultUserSettings", &v, UserSettings::deserialize)
                .unwrap_err()
                .to_string()
        };
        let typo = e(json!({"JupyterLabAppSetings": {}}));
        assert!(
            typo.contains("DefaultUserSettings: unknown property `JupyterLabAppSetings`")
                && typo.contains("JupyterLabAppSettings"),
            "{typo}"
        );
        let deep = e(
            json!({"JupyterLabAppSettings": {"DefaultResourceSpec": {"InstanceTyp": "ml.t3.medium"}}}),
        );
        assert!(
            deep.contains("DefaultUserSettings.JupyterLabAppSettings.DefaultResourceSpec: unknown property `InstanceTyp`"),
            "{deep}"
        );
        let lcc = e(
            json!({"JupyterLabAppSettings": {"LifecycleConfigArns": ["arn:aws:sagemaker:us-east-1:123456789012:lifecycle/x"]}}),
        );
        assert!(
            lcc.contains("DefaultUserSettings.JupyterLabAppSettings.LifecycleConfigArns[0]")
                && lcc.contains("not a Studio lifecycle configuration ARN"),
            "{lcc}"
        );
        assert!(
            e(json!({"ExecutionRole": "Studio"})).contains("DefaultUserSettings.ExecutionRole")
        );
        assert!(e(json!({"SecurityGroups": ["default"]})).contains("SecurityGroups[0]"));
        let size = e(
            json!({"SpaceStorageSettings": {"DefaultEbsStorageSettings": {"DefaultEbsVolumeSizeInGb": "five"}}}),
        );
        assert!(
            size.contains("DefaultEbsStorageSettings.DefaultEbsVolumeSizeInGb: expected a whole number, got `five`"),
            "{size}"
        );
        let t = e(
            json!({"KernelGatewayAppSettings": {"DefaultResourceSpec": {"InstanceType": "t3.medium"}}}),
        );
        assert!(t.contains("InstanceType: `t3.medium`"), "{t}");
    }
}
