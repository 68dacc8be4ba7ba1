//! The redaction policy: per input field keep it, drop it, or replace each value with a keyed
//! hash (HMAC-SHA256 with a secret key), applied before a record is queued, spooled or stored.
//!
//! A keyed hash keeps equal values equal (so counts, joins and drift on a category still work)
//! without storing the value, and without the key nobody can test guesses against it. Missing
//! values (`null`) stay `null`. Strings are hashed as their UTF-8 bytes, other values as their
//! JSON text; the result is `hmac-sha256:` followed by 64 hex digits.
//!
//! ```yaml
//! redaction:
//!   default: keep          # keep | drop | hash, for fields not listed
//!   key_env: BERTH_RECORDS_KEY
//!   fields:
//!     email: hash
//!     free_text: drop
//! ```

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::RecordsError;
use crate::record::Columns;

/// What happens to one input field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldAction {
    /// Stored as it came.
    #[default]
    Keep,
    /// Not stored at all (the column is absent from the record).
    Drop,
    /// Each value replaced by its HMAC-SHA256 under the policy's key.
    Hash,
}

/// A secret; never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// Per-field redaction of inputs (serde-configurable; the default keeps everything).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionPolicy {
    /// For fields not listed in `fields`.
    pub default: FieldAction,
    /// By input field name.
    pub fields: BTreeMap<String, FieldAction>,
    /// The key of `hash`, given inline (prefer `key_env`, which keeps it out of files).
    pub key: Option<SecretKey>,
    /// The name of an environment variable holding the key of `hash`.
    pub key_env: Option<String>,
}

/// A policy checked and ready to apply: its key resolved.
#[derive(Clone)]
pub(crate) struct Redactor {
    policy: RedactionPolicy,
    mac: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RedactionPolicy {
    /// Whether any field (or the default) asks for a hash.
    fn hashes(&self) -> bool {
        self.default == FieldAction::Hash || self.fields.values().any(|a| *a == FieldAction::Hash)
    }

    fn action(&self, field: &str) -> FieldAction {
        self.fields.get(field).copied().unwrap_or(self.default)
    }

    /// Checks the policy and resolves its key: `hash` anywhere needs a non-empty key.
    pub(crate) fn redactor(&self) -> Result<Redactor, RecordsError> {
        let key = match (&self.key, &self.key_env) {
            (Some(_), Some(_)) => {
                return Err(RecordsError::Config(
                    "redaction: give the hash key either inline (`key`) or by variable (`key_env`), not both".into(),
                ));
            }
            (Some(SecretKey(k)), None) => Some(k.clone()),
            (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                RecordsError::Config(format!(
                    "redaction: environment variable {var} (key_env) is not set"
                ))
            })?),
            (None, None) => None,
        };
        let mac = match key {
            Some(k) if k.is_empty() => {
                return Err(RecordsError::Config(
                    "redaction: the hash key is empty".into(),
                ));
            }
            Some(k) => Some(
                Hmac::<Sha256>::new_from_slice(k.as_bytes())
                    .map_err(|e| RecordsError::Config(format!("redaction: hash key: {e}")))?,
            ),
            None if self.hashes() => {
                return Err(RecordsError::Config(
                    "redaction: a field is set to `hash` but no key is given (`key_env` or `key`)"
                        .into(),
                ));
            }
            None => None,
        };
        Ok(Redactor {
            policy: self.clone(),
            mac,
        })
    }
}

impl Redactor {
    /// Whether the policy leaves every field as it is.
    pub(crate) fn keeps_everything(&self) -> bool {
        self.policy.default == FieldAction::Keep
            && self.policy.fields.values().all(|a| *a == FieldAction::Keep)
    }

    /// Applies the policy to a record's input columns.
    pub(crate) fn apply(&self, inputs: &mut Columns) {
        if self.keeps_everything() {
            return;
        }
        inputs.retain(|field, _| self.policy.action(field) != FieldAction::Drop);
        let Some(mac) = &self.mac else { return };
        for (field, values) in inputs.iter_mut() {
            if self.policy.action(field) == FieldAction::Hash {
                for value in values.iter_mut() {
                    if !value.is_null() {
                        *value = Value::String(keyed_hash(mac, value));
                    }
                }
            }
        }
    }
}

fn keyed_hash(mac: &Hmac<Sha256>, value: &Value) -> String {
    let mut mac = mac.clone();
    match value {
        Value::String(s) => mac.update(s.as_bytes()),
        other => mac.update(other.to_string().as_bytes()),
    }
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns() -> Columns {
        [
            (
                "email".to_string(),
                vec![json!("a@x.io"), json!(null), json!("a@x.io")],
            ),
            (
                "notes".to_string(),
                vec![json!("secret"), json!("x"), json!("y")],
            ),
            ("tenure".to_string(), vec![json!(3), json!(4), json!(5)]),
        ]
        .into()
    }

    #[test]
    fn the_default_keeps_everything() {
        let redactor = RedactionPolicy::default().redactor().expect("policy");
        let mut inputs = columns();
        redactor.apply(&mut inputs);
        assert_eq!(inputs, columns());
    }

    #[test]
    fn fields_are_kept_dropped_or_hashed_as_configured() {
        let policy: RedactionPolicy = serde_json::from_value(json!({
            "fields": {"email": "hash", "notes": "drop"},
            "key": "k3y"
        }))
        .expect("policy");
        let mut inputs = columns();
        policy.redactor().expect("redactor").apply(&mut inputs);
        assert!(!inputs.contains_key("notes"));
        assert_eq!(inputs["tenure"], columns()["tenure"]);
        let email = &inputs["email"];
        // The HMAC-SHA256 of the string's bytes (not of its JSON text) under the key.
        let expected = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"k3y").expect("key");
            mac.update(b"a@x.io");
            format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
        };
        assert_eq!(email[0], json!(expected));
        assert_eq!(email[1], json!(null), "missing stays missing");
        assert_eq!(email[0], email[2], "equal values hash equal");
        assert!(!email[0].to_string().contains("a@x.io"));

        let other_key: RedactionPolicy = serde_json::from_value(json!({
            "fields": {"email": "hash"}, "key": "another"
        }))
        .expect("policy");
        let mut again = columns();
        other_key.redactor().expect("redactor").apply(&mut again);
        assert_ne!(again["email"][0], email[0], "the key changes the hash");
    }

    #[test]
    fn a_drop_default_keeps_only_listed_fields() {
        let policy: RedactionPolicy =
            serde_json::from_value(json!({"default": "drop", "fields": {"tenure": "keep"}}))
                .expect("policy");
        let mut inputs = columns();
        policy.redactor().expect("redactor").apply(&mut inputs);
        assert_eq!(inputs.keys().collect::<Vec<_>>(), vec!["tenure"]);
    }

    #[test]
    fn hashing_without_a_key_is_a_configuration_error() {
        let policy: RedactionPolicy =
            serde_json::from_value(json!({"fields": {"email": "hash"}})).expect("policy");
        let err = policy.redactor().expect_err("no key");
        assert!(err.to_string().contains("no key"), "{err}");
        let policy: RedactionPolicy = serde_json::from_value(
            json!({"fields": {"email": "hash"}, "key_env": "BERTH_TEST_SURELY_UNSET_VARIABLE"}),
        )
        .expect("policy");
        assert!(policy.redactor().is_err());
        assert!(
            serde_json::from_value::<RedactionPolicy>(json!({"fields": {"a": "blur"}})).is_err()
        );
    }

    #[test]
    fn the_key_is_never_printed() {
        let policy = RedactionPolicy {
            key: Some(SecretKey::new("hunter2")),
            ..RedactionPolicy::default()
        };
        assert!(!format!("{policy:?}").contains("hunter2"));
    }
}
