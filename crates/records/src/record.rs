//! What serving hands over for each prediction: [`PredictionRecord`], and the role the
//! answering version played.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_store::PredictionRow;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Values by name, as columns: `{field: [value per row, ...]}`.
pub type Columns = BTreeMap<String, Vec<Value>>;

/// The part a version played in answering a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The endpoint's primary version answered.
    Primary,
    /// The canary answered (its share of the traffic).
    Canary,
    /// A shadow ran on a copy of the request; its answer was not sent.
    Shadow,
    /// A fallback answered because the chosen version could not.
    Fallback,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Canary => "canary",
            Role::Shadow => "shadow",
            Role::Fallback => "fallback",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One prediction, as serving saw it. Inputs are redacted by the recorder's policy before the
/// record is queued or written anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRecord {
    /// Unique per prediction; [`PredictionRecord::new_id`] makes a UUIDv7 (time-ordered).
    pub id: String,
    /// When the request arrived.
    pub time: DateTime<Utc>,
    pub endpoint: String,
    pub model: String,
    pub version: i64,
    pub role: Role,
    /// The protocol of the request: `v1`, `v2`, `mlflow`, `grpc`, ...
    pub protocol: String,
    /// Rows in the request.
    pub rows: usize,
    /// From request to answer.
    pub latency: Duration,
    /// Input columns: `{field: [values...]}`.
    pub inputs: Columns,
    /// Output columns: `{name: [values...]}`.
    pub outputs: Columns,
}

impl PredictionRecord {
    /// A new prediction id: a UUIDv7 string, so ids sort by creation time.
    pub fn new_id() -> String {
        berth_core::prediction_id().to_string()
    }

    /// The row stored for this record (its inputs as they are: redact first).
    pub(crate) fn into_row(self) -> PredictionRow {
        PredictionRow {
            id: self.id,
            time_ms: self.time.timestamp_millis(),
            endpoint: self.endpoint,
            model: self.model,
            version: self.version,
            role: self.role.as_str().to_string(),
            protocol: self.protocol,
            rows: i64::try_from(self.rows).unwrap_or(i64::MAX),
            latency_us: i64::try_from(self.latency.as_micros()).unwrap_or(i64::MAX),
            inputs: columns_json(self.inputs),
            outputs: columns_json(self.outputs),
        }
    }
}

fn columns_json(columns: Columns) -> Value {
    Value::Object(
        columns
            .into_iter()
            .map(|(name, values)| (name, Value::Array(values)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_becomes_its_row() {
        let time: DateTime<Utc> = "2026-01-02T03:04:05.678Z".parse().expect("time");
        let record = PredictionRecord {
            id: PredictionRecord::new_id(),
            time,
            endpoint: "churn".into(),
            model: "churn".into(),
            version: 4,
            role: Role::Canary,
            protocol: "v2".into(),
            rows: 2,
            latency: Duration::from_micros(1234),
            inputs: [("tenure".to_string(), vec![json!(3), json!(null)])].into(),
            outputs: [("p".to_string(), vec![json!(0.5), json!(0.25)])].into(),
        };
        let row = record.clone().into_row();
        assert_eq!(row.id, record.id);
        assert_eq!(row.time_ms, time.timestamp_millis());
        assert_eq!(row.role, "canary");
        assert_eq!((row.rows, row.latency_us), (2, 1234));
        assert_eq!(row.inputs, json!({"tenure": [3, null]}));
        assert_eq!(row.outputs, json!({"p": [0.5, 0.25]}));
        assert_eq!(
            uuid::Uuid::parse_str(&row.id)
                .expect("uuid")
                .get_version_num(),
            7
        );
    }
}
