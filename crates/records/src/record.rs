//! What serving hands over for each prediction: [`PredictionRecord`], the role the answering
//! version played, and how a record becomes the line of JSON the store keeps.
//!
//! A record carries its inputs and outputs as serving already holds them ([`RecordColumns`]:
//! the validated matrix and the output tensors, shared, not copied), so handing one over costs
//! a few pointer copies on the request path. The recorder's writer encodes it off the request
//! path, straight from those values: into the store's binary segment form ([`encode_record`],
//! raw values, column names once per batch) or, for the spool, as a line of JSON
//! ([`encode_line`]). Both read back as the same `berth_store::PredictionRow`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_core::{FeatureMatrix, Field, FieldType, NamedTensor, TensorData};
use berth_store::{Entries, PredictionBatch, RecordBuilder, RecordHead, StoreError};
use chrono::{DateTime, Utc};
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::redaction::Redactor;

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

/// A record's inputs or outputs: columns by name, one value per request row.
#[derive(Debug, Clone)]
pub enum RecordColumns {
    /// JSON values: `{name: [value per row, ...]}`.
    Json(Columns),
    /// Validated rows in signature order, named and typed by `fields`: a category is a code
    /// into its field's values, a missing value is NaN.
    Matrix {
        rows: Arc<FeatureMatrix>,
        fields: Arc<[Field]>,
    },
    /// A model's output tensors: row `r` of each is its `r`-th slice along the first axis.
    Tensors(Arc<[NamedTensor]>),
}

impl RecordColumns {
    /// The same columns as JSON values (what redaction rewrites).
    pub fn to_json(&self) -> Columns {
        match self {
            RecordColumns::Json(columns) => columns.clone(),
            other => match serde_json::to_value(other) {
                Ok(Value::Object(map)) => map
                    .into_iter()
                    .map(|(name, values)| match values {
                        Value::Array(values) => (name, values),
                        single => (name, vec![single]),
                    })
                    .collect(),
                _ => Columns::new(),
            },
        }
    }
}

impl From<Columns> for RecordColumns {
    fn from(columns: Columns) -> Self {
        RecordColumns::Json(columns)
    }
}

/// One prediction, as serving saw it. Inputs are redacted by the recorder's policy before the
/// record is written anywhere.
#[derive(Debug, Clone)]
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
    pub protocol: &'static str,
    /// Rows in the request.
    pub rows: usize,
    /// From request to answer.
    pub latency: Duration,
    pub inputs: RecordColumns,
    pub outputs: RecordColumns,
}

impl PredictionRecord {
    /// A new prediction id: a UUIDv7 string, so ids sort by creation time.
    pub fn new_id() -> String {
        berth_core::prediction_id().to_string()
    }
}

/// `record`'s inputs as they may be written: redacted by `redactor` (as JSON values) unless it
/// keeps everything.
fn redacted_inputs<'r>(
    record: &'r PredictionRecord,
    redactor: &Redactor,
) -> std::borrow::Cow<'r, RecordColumns> {
    if redactor.keeps_everything() {
        std::borrow::Cow::Borrowed(&record.inputs)
    } else {
        let mut columns = record.inputs.to_json();
        redactor.apply(&mut columns);
        std::borrow::Cow::Owned(RecordColumns::Json(columns))
    }
}

/// Writes `record` as one line of JSON (a `berth_store::PredictionRow`, no newline) to `out`,
/// its inputs redacted by `redactor`.
pub(crate) fn encode_line(
    record: &PredictionRecord,
    redactor: &Redactor,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let inputs = redacted_inputs(record, redactor);
    serde_json::to_writer(
        out,
        &Line {
            record,
            inputs: &inputs,
        },
    )
}

/// Adds `record` to `batch` with sequence number `seq`, its inputs redacted by `redactor`.
pub(crate) fn encode_record(
    record: &PredictionRecord,
    seq: u64,
    redactor: &Redactor,
    batch: &mut PredictionBatch,
) -> Result<(), StoreError> {
    let head = RecordHead {
        id: &record.id,
        time_ms: record.time.timestamp_millis(),
        endpoint: &record.endpoint,
        model: &record.model,
        version: record.version,
        role: record.role.as_str(),
        protocol: record.protocol,
        rows: record.rows as u64,
        latency_us: u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX),
    };
    let mut builder = batch.record(seq, &head);
    write_columns(&mut builder, &redacted_inputs(record, redactor));
    write_columns(&mut builder, &record.outputs);
    builder.finish()
}

/// One section of a record (its inputs or its outputs) into `builder`, typed as
/// [`RecordColumns`]'s JSON form types it.
fn write_columns(builder: &mut RecordBuilder<'_>, columns: &RecordColumns) {
    match columns {
        RecordColumns::Json(columns) => {
            builder.columns(columns.keys().map(String::as_str));
            for values in columns.values() {
                builder.json(values);
            }
        }
        RecordColumns::Matrix { rows, fields } => {
            builder.columns(fields.iter().map(|f| f.name.as_str()));
            let n = rows.rows();
            for (column, field) in fields.iter().enumerate() {
                let cells = rows
                    .iter_rows()
                    .map(move |row| row.get(column).copied().unwrap_or(f32::NAN));
                match &field.field_type {
                    FieldType::Category { values } => builder.strs(
                        Entries::Scalars,
                        n,
                        cells.map(|x| {
                            (!x.is_nan())
                                .then(|| values.get(x as usize).map(String::as_str))
                                .flatten()
                        }),
                    ),
                    FieldType::Bool => builder.bools(
                        Entries::Scalars,
                        n,
                        cells.map(|x| (!x.is_nan()).then_some(x != 0.0)),
                    ),
                    _ => builder.floats(Entries::Scalars, n, cells),
                }
            }
        }
        RecordColumns::Tensors(tensors) => {
            builder.columns(tensors.iter().map(|t| t.name.as_str()));
            for tensor in tensors.iter() {
                write_tensor(builder, tensor);
            }
        }
    }
}

/// An output tensor as a column: a value per row for a column of scalars, else an array per
/// row (as [`TensorRows`] writes it in JSON, which it falls back to when the data is short).
fn write_tensor(builder: &mut RecordBuilder<'_>, named: &NamedTensor) {
    let tensor = &named.tensor;
    let rows = tensor.shape().first().copied().unwrap_or(0);
    let width = tensor.row_width();
    let entries = if width == 1 && tensor.shape().len() <= 2 {
        Entries::Scalars
    } else {
        Entries::Arrays(width)
    };
    let Some(n) = rows
        .checked_mul(width)
        .filter(|&n| n <= tensor.data().len())
    else {
        builder.json(&TensorRows(named));
        return;
    };
    match tensor.data() {
        TensorData::Fp32(v) => builder.floats(entries, rows, v[..n].iter().copied()),
        TensorData::Fp64(v) => builder.floats(entries, rows, v[..n].iter().copied()),
        TensorData::Int32(v) => builder.i64s(entries, rows, v[..n].iter().map(|&x| i64::from(x))),
        TensorData::Int64(v) => builder.i64s(entries, rows, v[..n].iter().copied()),
        TensorData::Bool(v) => builder.bools(entries, rows, v[..n].iter().map(|&x| Some(x))),
        TensorData::Bytes(v) => {
            builder.strs(entries, rows, v[..n].iter().map(|s| Some(s.as_str())))
        }
    }
}

/// A record as its stored row, with its inputs as given.
struct Line<'a> {
    record: &'a PredictionRecord,
    inputs: &'a RecordColumns,
}

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut row = serializer.serialize_struct("PredictionRow", 11)?;
        row.serialize_field("id", &r.id)?;
        row.serialize_field("time_ms", &r.time.timestamp_millis())?;
        row.serialize_field("endpoint", &r.endpoint)?;
        row.serialize_field("model", &r.model)?;
        row.serialize_field("version", &r.version)?;
        row.serialize_field("role", r.role.as_str())?;
        row.serialize_field("protocol", &r.protocol)?;
        row.serialize_field("rows", &r.rows)?;
        row.serialize_field(
            "latency_us",
            &u64::try_from(r.latency.as_micros()).unwrap_or(u64::MAX),
        )?;
        row.serialize_field("inputs", self.inputs)?;
        row.serialize_field("outputs", &r.outputs)?;
        row.end()
    }
}

impl Serialize for RecordColumns {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RecordColumns::Json(columns) => columns.serialize(serializer),
            RecordColumns::Matrix { rows, fields } => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (column, field) in fields.iter().enumerate() {
                    map.serialize_entry(
                        &field.name,
                        &MatrixColumn {
                            rows,
                            column,
                            field_type: &field.field_type,
                        },
                    )?;
                }
                map.end()
            }
            RecordColumns::Tensors(tensors) => {
                let mut map = serializer.serialize_map(Some(tensors.len()))?;
                for tensor in tensors.iter() {
                    map.serialize_entry(&tensor.name, &TensorRows(tensor))?;
                }
                map.end()
            }
        }
    }
}

/// One column of a validated matrix, a value per row, as the signature types it: categories
/// by value, booleans as booleans, missing values as null.
struct MatrixColumn<'a> {
    rows: &'a FeatureMatrix,
    column: usize,
    field_type: &'a FieldType,
}

impl Serialize for MatrixColumn<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.rows.rows()))?;
        for row in self.rows.iter_rows() {
            let x = row.get(self.column).copied().unwrap_or(f32::NAN);
            if x.is_nan() {
                seq.serialize_element(&())?;
                continue;
            }
            match self.field_type {
                FieldType::Category { values } => {
                    seq.serialize_element(&values.get(x as usize))?;
                }
                FieldType::Bool => seq.serialize_element(&(x != 0.0))?,
                _ => seq.serialize_element(&Number::F32(x))?,
            }
        }
        seq.end()
    }
}

/// A float as JSON has it (an `f32` in its shortest form: `25.85`, which reads back as the
/// same `f32`, not `25.850000381469727`); non-finite values are null.
enum Number {
    F32(f32),
    F64(f64),
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Number::F32(x) if x.is_finite() => serializer.serialize_f32(x),
            Number::F64(x) if x.is_finite() => serializer.serialize_f64(x),
            _ => serializer.serialize_unit(),
        }
    }
}

/// An output tensor's rows: a value per row for a column of scalars, else an array per row.
struct TensorRows<'a>(&'a NamedTensor);

impl Serialize for TensorRows<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let tensor = &self.0.tensor;
        let rows = tensor.shape().first().copied().unwrap_or(0);
        let width = tensor.row_width();
        let scalar_rows = width == 1 && tensor.shape().len() <= 2;
        let mut seq = serializer.serialize_seq(Some(rows))?;
        for r in 0..rows {
            let cells = r * width..(r + 1) * width;
            if scalar_rows {
                seq.serialize_element(&Cell(tensor.data(), r))?;
            } else {
                seq.serialize_element(&Cells(tensor.data(), cells))?;
            }
        }
        seq.end()
    }
}

/// Cells `.1` of a tensor's data, as an array.
struct Cells<'a>(&'a TensorData, std::ops::Range<usize>);

impl Serialize for Cells<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.1.clone().map(|i| Cell(self.0, i)))
    }
}

/// Cell `.1` of a tensor's data.
struct Cell<'a>(&'a TensorData, usize);

impl Serialize for Cell<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let i = self.1;
        match self.0 {
            TensorData::Bool(v) => v.get(i).serialize(serializer),
            TensorData::Int32(v) => v.get(i).serialize(serializer),
            TensorData::Int64(v) => v.get(i).serialize(serializer),
            TensorData::Fp32(v) => v.get(i).map(|x| Number::F32(*x)).serialize(serializer),
            TensorData::Fp64(v) => v.get(i).map(|x| Number::F64(*x)).serialize(serializer),
            TensorData::Bytes(v) => v.get(i).serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::{OutputRole, Tensor};
    use berth_store::PredictionRow;
    use serde_json::json;

    use crate::redaction::RedactionPolicy;

    fn record(inputs: RecordColumns, outputs: RecordColumns) -> PredictionRecord {
        PredictionRecord {
            id: PredictionRecord::new_id(),
            time: "2026-01-02T03:04:05.678Z".parse().expect("time"),
            endpoint: "churn".into(),
            model: "churn".into(),
            version: 4,
            role: Role::Canary,
            protocol: "v2",
            rows: 2,
            latency: Duration::from_micros(1234),
            inputs,
            outputs,
        }
    }

    /// The record as the store returns it, the same whether it went through the spool (a
    /// line of JSON) or straight into a segment.
    fn line(record: &PredictionRecord, policy: &RedactionPolicy) -> PredictionRow {
        let mut out = Vec::new();
        let redactor = policy.redactor().expect("redactor");
        encode_line(record, &redactor, &mut out).expect("encode");
        assert!(!out.contains(&b'\n'));
        let from_line: PredictionRow = serde_json::from_slice(&out).expect("a stored row");
        let mut batch = PredictionBatch::new();
        encode_record(record, 1, &redactor, &mut batch).expect("encode");
        let mut replayed = PredictionBatch::new();
        replayed.push_line(2, &out).expect("replayed");
        assert_eq!(batch.rows().expect("rows"), vec![from_line.clone()]);
        assert_eq!(replayed.rows().expect("rows"), vec![from_line.clone()]);
        from_line
    }

    #[test]
    fn a_record_becomes_its_row() {
        let record = record(
            [("tenure".to_string(), vec![json!(3), json!(null)])]
                .into_iter()
                .collect::<Columns>()
                .into(),
            [("p".to_string(), vec![json!(0.5), json!(0.25)])]
                .into_iter()
                .collect::<Columns>()
                .into(),
        );
        let row = line(&record, &RedactionPolicy::default());
        assert_eq!(row.id, record.id);
        assert_eq!(row.time_ms, record.time.timestamp_millis());
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

    #[test]
    fn matrix_rows_and_tensors_are_written_as_the_signature_and_outputs_name_them() {
        let fields: Arc<[Field]> = vec![
            Field::new(
                "tenure",
                FieldType::Number {
                    min: None,
                    max: None,
                },
            ),
            Field::new(
                "plan",
                FieldType::Category {
                    values: vec!["basic".into(), "pro".into()],
                },
            ),
            Field::new("active", FieldType::Bool),
        ]
        .into();
        let rows =
            FeatureMatrix::new(2, 3, vec![1.5, 1.0, 1.0, f32::NAN, 0.0, 0.0]).expect("matrix");
        let tensor = |name: &str, shape: Vec<usize>, data| NamedTensor {
            name: name.into(),
            role: OutputRole::Other,
            tensor: Tensor::new(shape, data).expect("tensor"),
        };
        let outputs: Arc<[NamedTensor]> = vec![
            tensor("label", vec![2], TensorData::Int64(vec![1, 0])),
            tensor(
                "probabilities",
                vec![2, 2],
                TensorData::Fp32(vec![0.25, 0.75, 1.0, f32::NAN]),
            ),
        ]
        .into();
        let record = record(
            RecordColumns::Matrix {
                rows: Arc::new(rows),
                fields,
            },
            RecordColumns::Tensors(outputs),
        );
        let row = line(&record, &RedactionPolicy::default());
        assert_eq!(
            row.inputs,
            json!({"tenure": [1.5, null], "plan": ["pro", "basic"], "active": [true, false]})
        );
        assert_eq!(
            row.outputs,
            json!({"label": [1, 0], "probabilities": [[0.25, 0.75], [1.0, null]]})
        );
        // Redaction applies to matrix inputs as to JSON ones.
        let policy: RedactionPolicy =
            serde_json::from_value(json!({"fields": {"plan": "drop"}})).expect("policy");
        let redacted = line(&record, &policy);
        assert_eq!(
            redacted.inputs,
            json!({"tenure": [1.5, null], "active": [true, false]})
        );
    }
}
