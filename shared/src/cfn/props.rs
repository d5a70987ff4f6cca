//! Typed resource properties.
//!
//! CloudFormation sends every scalar as a string (`"true"`, `"5"`) and a list either as a JSON list or,
//! after `!Join`, as one comma-separated string. Declare properties as a struct with
//! `#[serde(rename_all = "PascalCase", deny_unknown_fields)]` and use the deserializers in [`de`] for
//! booleans, numbers and lists; formats are checked by the field types' `FromStr`. Parse errors name the
//! property (`OrganizationalUnitIds[2]: …`) so the `Reason` tells the user what to fix.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// Rules across a resource's fields (one property requires another, a value fits another's range): the
/// framework checks them after parsing and before any provider call on Create and Update, so a bad
/// template fails with the property named and nothing made. A Delete never fails for them. Properties
/// without such rules implement it empty (`impl Validate for Properties {}`).
pub trait Validate {
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// [`parse`], then [`Validate::validate`].
pub fn parse_valid<T: DeserializeOwned + Validate>(
    properties: &Map<String, Value>,
) -> Result<T, Error> {
    let props: T = parse(properties)?;
    props.validate()?;
    Ok(props)
}

/// Properties CloudFormation itself adds or that the framework handles; always accepted.
pub const FRAMEWORK_PROPERTIES: [&str; 2] = ["ServiceToken", "ServiceTimeout"];

/// Parses resource properties into `T`, ignoring [`FRAMEWORK_PROPERTIES`].
pub fn parse<T: DeserializeOwned>(properties: &Map<String, Value>) -> Result<T, Error> {
    let mut own = properties.clone();
    for key in FRAMEWORK_PROPERTIES {
        own.remove(key);
    }
    serde_path_to_error::deserialize(Value::Object(own)).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        if path == "." || path.is_empty() {
            Error::invalid(format!("invalid properties: {inner}"))
        } else {
            Error::invalid(format!("invalid property {path}: {inner}"))
        }
    })
}

/// One property read on its own, for a Delete whose properties as a whole no longer parse (a later
/// version tightened validation): `None` when it is absent or not a valid `T`.
pub fn field<T: DeserializeOwned>(properties: &Map<String, Value>, key: &str) -> Option<T> {
    serde_json::from_value(properties.get(key)?.clone()).ok()
}

/// A resource tag as CloudFormation templates write it: `{Key: …, Value: …}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Rejects tag keys AWS or this project reserve (`aws:`, `secure-mlops:`), naming the property.
pub fn check_tags(tags: &[Tag]) -> Result<(), Error> {
    match tags
        .iter()
        .find(|t| t.key.starts_with("aws:") || t.key.starts_with("secure-mlops:"))
    {
        Some(tag) => Err(Error::invalid(format!(
            "Tags: the key \"{}\" is reserved (aws: and secure-mlops: prefixes)",
            tag.key
        ))),
        None => Ok(()),
    }
}

/// Deserializers for CloudFormation's stringly-typed values. Use with `deserialize_with`.
pub mod de {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// `true`/`false` as a JSON boolean or the strings "true"/"false" (any case).
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            other => Err(D::Error::custom(format!(
                "expected true or false, got {other}"
            ))),
        }
    }

    /// A number, from a JSON number or its string form.
    pub fn number<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: Display,
    {
        let text = match Value::deserialize(d)? {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s,
            other => return Err(D::Error::custom(format!("expected a number, got {other}"))),
        };
        text.trim()
            .parse()
            .map_err(|e| D::Error::custom(format!("expected a number, got \"{text}\": {e}")))
    }

    /// A list from a JSON list of strings or a comma-separated string; items are trimmed, empty items
    /// dropped, and each is parsed with `FromStr` (whose error names the item).
    pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: Display,
    {
        let items: Vec<String> = match Value::deserialize(d)? {
            Value::String(s) => s.split(',').map(str::to_owned).collect(),
            Value::Array(values) => values
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(D::Error::custom(format!(
                        "expected a list of strings, found the item {other}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(D::Error::custom(format!(
                    "expected a list or a comma-separated string, got {other}"
                )));
            }
        };
        items
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, s)| {
                s.parse()
                    .map_err(|e| D::Error::custom(format!("item {i} (\"{s}\"): {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    #[allow(dead_code)] // only parsed
    struct Props {
        names: Vec<String>,
        #[serde(default, deserialize_with = "de::bool")]
        flag: bool,
        #[serde(default, deserialize_with = "de::number")]
        count: u32,
        #[serde(default, deserialize_with = "de::list")]
        ids: Vec<u16>,
    }

    fn props(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn strings_become_types_and_framework_keys_are_accepted() {
        let p: Props = parse(&props(json!({
            "ServiceToken": "arn:aws:lambda:…", "ServiceTimeout": "60",
            "Names": ["a"], "Flag": "TRUE", "Count": "5", "Ids": "1, 2,,3"
        })))
        .unwrap();
        assert!(p.flag);
        assert_eq!(p.count, 5);
        assert_eq!(p.ids, vec![1, 2, 3]);
        let p: Props = parse(&props(json!({"Names": [], "Ids": ["4", 5]}))).unwrap();
        assert_eq!(p.ids, vec![4, 5]);
    }

    #[test]
    fn errors_name_the_property() {
        let err = |v| parse::<Props>(&props(v)).unwrap_err().to_string();
        assert!(err(json!({})).contains("missing field `Names`"));
        let typo = err(json!({"Names": [], "Flagg": "true"}));
        assert!(
            typo.contains("unknown field `Flagg`") && typo.contains("`Flag`"),
            "{typo}"
        );
        let bad = err(json!({"Names": [], "Flag": "yes"}));
        assert!(
            bad.contains("Flag") && bad.contains("expected true or false"),
            "{bad}"
        );
        let bad = err(json!({"Names": [], "Count": "five"}));
        assert!(bad.contains("Count") && bad.contains("\"five\""), "{bad}");
        let bad = err(json!({"Names": [], "Ids": "1,x"}));
        assert!(
            bad.contains("Ids") && bad.contains("item 1 (\"x\")"),
            "{bad}"
        );
    }
}
