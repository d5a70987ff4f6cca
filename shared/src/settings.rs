//! Function settings from environment variables — read once per cold start — with errors that name the
//! variable and what it accepts. Values are trimmed; an empty value counts as unset. Any lookup can stand
//! in for the environment (tests).

use std::ops::RangeInclusive;

use crate::Error;

pub struct Settings<F> {
    get: F,
}

/// The process environment.
pub fn from_env() -> Settings<impl Fn(&str) -> Option<String>> {
    Settings::new(|k: &str| std::env::var(k).ok())
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn new(get: F) -> Self {
        Settings { get }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        (self.get)(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// `what` says what the variable holds, for the error when it is missing.
    pub fn required(&self, key: &str, what: &str) -> Result<String, Error> {
        self.get(key)
            .ok_or_else(|| Error::invalid(format!("{key} is not set: {what}")))
    }

    /// A comma-separated list (empty when unset).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn number(
        &self,
        key: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, Error> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{key}={v}: expected a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ))
                }),
        }
    }

    /// One of `allowed` (case-insensitive), returned as listed there.
    pub fn choice(
        &self,
        key: &str,
        default: &'static str,
        allowed: &[&'static str],
    ) -> Result<&'static str, Error> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(&v))
                .copied()
                .ok_or_else(|| {
                    Error::invalid(format!("{key}={v}: expected one of {}", allowed.join(", ")))
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        pairs: &'static [(&'static str, &'static str)],
    ) -> Settings<impl Fn(&str) -> Option<String>> {
        Settings::new(move |k: &str| {
            pairs
                .iter()
                .find(|(x, _)| *x == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn values_lists_numbers_and_choices() {
        let s = settings(&[
            ("A", "  x "),
            ("E", " "),
            ("L", "a, b,,c"),
            ("N", "7"),
            ("C", "Alert"),
        ]);
        assert_eq!(s.get("A").as_deref(), Some("x"));
        assert_eq!(s.get("E"), None);
        assert_eq!(s.list("L"), ["a", "b", "c"]);
        assert_eq!(s.number("N", 1, 1..=10).unwrap(), 7);
        assert_eq!(s.number("missing", 3, 1..=10).unwrap(), 3);
        assert!(
            s.number("N", 1, 1..=5)
                .unwrap_err()
                .to_string()
                .starts_with("N=7: expected a whole number from 1 to 5")
        );
        assert_eq!(
            s.choice("C", "enforce", &["enforce", "alert"]).unwrap(),
            "alert"
        );
        assert!(
            s.required("E", "the thing")
                .unwrap_err()
                .to_string()
                .contains("E is not set: the thing")
        );
    }
}
