//! Names and references: `churn`, `churn/3`, `churn@champion`.

use std::fmt;
use std::str::FromStr;

use crate::RegistryError;

const MAX_NAME: usize = 128;

/// Checks a model, alias or endpoint name: 1-128 characters, letters, digits, `.`, `_`, `-`,
/// starting with a letter or digit.
pub fn check_name(kind: &str, name: &str) -> Result<(), RegistryError> {
    let bad = |why: &str| {
        Err(RegistryError::Invalid(format!(
            "invalid {kind} name {name:?}: {why}; use letters, digits, '.', '_' and '-', starting with a letter or digit"
        )))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME {
        return bad("it is longer than 128 characters");
    }
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return bad("it must start with a letter or digit");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!("{c:?} is not allowed"));
    }
    Ok(())
}

/// An alias name: a name that is not a number (numbers are versions).
pub fn check_alias(alias: &str) -> Result<(), RegistryError> {
    check_name("alias", alias)?;
    if alias.chars().all(|c| c.is_ascii_digit()) {
        return Err(RegistryError::Invalid(format!(
            "invalid alias name {alias:?}: an alias cannot be a number (that would read as a version)"
        )));
    }
    Ok(())
}

/// Which version of a model a reference means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Latest,
    Version(i64),
    Alias(String),
}

/// `NAME`, `NAME/VERSION` or `NAME@ALIAS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub model: String,
    pub selector: Selector,
}

impl FromStr for ModelRef {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (model, selector) = if let Some((m, alias)) = s.split_once('@') {
            check_alias(alias)?;
            (m, Selector::Alias(alias.to_string()))
        } else if let Some((m, v)) = s.split_once('/') {
            let version = v.parse::<i64>().ok().filter(|v| *v >= 1).ok_or_else(|| {
                RegistryError::Invalid(format!(
                    "invalid version {v:?} in {s:?}: expected a number from 1"
                ))
            })?;
            (m, Selector::Version(version))
        } else {
            (s, Selector::Latest)
        };
        check_name("model", model)?;
        Ok(ModelRef {
            model: model.to_string(),
            selector,
        })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Selector::Latest => write!(f, "{}", self.model),
            Selector::Version(v) => write!(f, "{}/{v}", self.model),
            Selector::Alias(a) => write!(f, "{}@{a}", self.model),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let r: ModelRef = "churn@champion".parse().unwrap();
        assert_eq!(r.selector, Selector::Alias("champion".into()));
        let r: ModelRef = "churn/3".parse().unwrap();
        assert_eq!(
            (r.model.as_str(), r.selector),
            ("churn", Selector::Version(3))
        );
        assert_eq!(
            "churn".parse::<ModelRef>().unwrap().selector,
            Selector::Latest
        );
        assert_eq!(
            "churn@champion".parse::<ModelRef>().unwrap().to_string(),
            "churn@champion"
        );
    }

    #[test]
    fn bad_references_say_why() {
        for (input, why) in [
            ("churn/0", "expected a number from 1"),
            ("churn/x", "expected a number from 1"),
            ("churn@7", "cannot be a number"),
            ("ch urn", "' ' is not allowed"),
            ("-churn", "must start with a letter or digit"),
            ("", "it is empty"),
        ] {
            let err = input.parse::<ModelRef>().unwrap_err().to_string();
            assert!(err.contains(why), "{input}: {err}");
        }
    }
}
