//! Reading tabular files in chunks of rows, mapped onto a model's feature columns: what batch
//! scoring streams, and what registration scores to profile a model's outputs on its reference
//! data.
//!
//! Columns are matched by name when the model records its feature names (extra columns are
//! ignored); otherwise the file must hold exactly the model's number of feature columns, in
//! order. An `id` column, when present, is carried through to the output. Empty fields, JSON
//! `null` and Parquet nulls are missing values (`NaN`); booleans are 0 and 1; anything else that
//! is not a number is an error naming the row and column.

mod error;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float32Array, RecordBatch};
use arrow_schema::DataType;
use berth_core::FeatureMatrix;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde_json::Value;

pub use error::TableError;

/// The file types berth reads, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Csv,
    JsonLines,
    Parquet,
}

impl InputFormat {
    pub fn from_path(path: &Path) -> Result<Self, TableError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(InputFormat::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(InputFormat::JsonLines),
            Some("parquet" | "pq") => Ok(InputFormat::Parquet),
            _ => Err(TableError::Format {
                path: path.to_path_buf(),
                expected: ".csv, .jsonl (JSON lines) or .parquet",
            }),
        }
    }
}

/// What the model needs from a file: its feature names (if known) and count.
#[derive(Debug, Clone)]
pub struct Features<'a> {
    pub names: Option<&'a [String]>,
    pub count: usize,
    /// Name of the column carried through as the row id, if the file has it.
    pub id_column: &'a str,
}

/// Rows `first_row..first_row + features.rows()` of a file (0-based), with their ids.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub first_row: usize,
    pub ids: Option<Vec<String>>,
    pub features: FeatureMatrix,
    /// Rows left out because a value could not be read (with [`TableReader::skip_bad_rows`]).
    pub rejected: Vec<RejectedRow>,
}

/// A row left out: where, and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// 1-based row of the file (the header not counted).
    pub row: usize,
    pub column: String,
    pub expected: &'static str,
    pub got: String,
}

impl RejectedRow {
    fn of(e: TableError) -> Result<Self, TableError> {
        match e {
            TableError::Value {
                row,
                column,
                expected,
                got,
                ..
            } => Ok(Self {
                row,
                column,
                expected,
                got,
            }),
            other => Err(other),
        }
    }
}

/// Where each feature (and the id) comes from in the file's columns.
#[derive(Debug, Clone)]
struct ColumnPlan {
    feature_columns: Vec<usize>,
    id_column: Option<usize>,
    names: Vec<String>,
}

impl ColumnPlan {
    fn new(path: &Path, columns: &[String], features: &Features<'_>) -> Result<Self, TableError> {
        let id_column = columns.iter().position(|c| c == features.id_column);
        let feature_columns = match features.names {
            Some(names) => {
                let mut found = Vec::with_capacity(names.len());
                let mut missing = Vec::new();
                for name in names {
                    match columns.iter().position(|c| c == name) {
                        Some(i) => found.push(i),
                        None => missing.push(name.clone()),
                    }
                }
                if !missing.is_empty() {
                    return Err(TableError::MissingColumns {
                        path: path.to_path_buf(),
                        missing,
                        present: columns.to_vec(),
                    });
                }
                found
            }
            None => {
                let candidates: Vec<usize> = (0..columns.len())
                    .filter(|&i| Some(i) != id_column)
                    .collect();
                if candidates.len() != features.count {
                    return Err(TableError::ColumnCount {
                        path: path.to_path_buf(),
                        expected: features.count,
                        got: candidates.len(),
                        columns: columns.to_vec(),
                    });
                }
                candidates
            }
        };
        Ok(Self {
            feature_columns,
            id_column,
            names: columns.to_vec(),
        })
    }
}

enum Reader {
    Csv(csv::Reader<File>),
    JsonLines {
        lines: std::io::Lines<BufReader<File>>,
        /// Set from the first line when lines are arrays (positional) rather than objects.
        positional: bool,
        pending: Option<(usize, Value)>,
    },
    Parquet {
        batches: ParquetRecordBatchReader,
        /// Rows of the current record batch not yet handed out.
        current: Option<(RecordBatch, usize)>,
    },
}

/// Streams a file's rows in chunks of at most `chunk_rows`.
pub struct TableReader {
    path: PathBuf,
    reader: Reader,
    plan: ColumnPlan,
    /// Rows handed out so far.
    next_row: usize,
    chunk_rows: usize,
    /// Physical line of the next JSON line (for messages; blank lines are skipped).
    line_no: usize,
    /// Leave rows with an unreadable value out (reported in [`Chunk::rejected`]) instead of
    /// failing.
    skip_bad_rows: bool,
}

fn open(path: &Path) -> Result<File, TableError> {
    File::open(path).map_err(|e| TableError::io(path, e))
}

/// A text field as a feature value.
fn parse_text(v: &str) -> Option<f32> {
    let v = v.trim();
    match v {
        "" => Some(f32::NAN),
        "true" | "True" | "TRUE" => Some(1.0),
        "false" | "False" | "FALSE" => Some(0.0),
        _ => v.parse::<f32>().ok(),
    }
}

fn parse_json(v: &Value) -> Option<f32> {
    match v {
        Value::Null => Some(f32::NAN),
        Value::Bool(b) => Some(f32::from(u8::from(*b))),
        Value::Number(n) => n.as_f64().map(|x| x as f32),
        _ => None,
    }
}

fn json_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A file's columns as they are, in Arrow batches of at most `rows` rows: what a feature spec
/// reads. Parquet keeps its column types; a CSV file's columns are text (an empty field is
/// null), which the spec reads as numbers or categories field by field.
pub fn record_batches(
    path: &Path,
    rows: usize,
) -> Result<Box<dyn Iterator<Item = Result<RecordBatch, TableError>> + Send>, TableError> {
    let rows = rows.max(1);
    match InputFormat::from_path(path)? {
        InputFormat::Parquet => {
            let reader = ParquetRecordBatchReaderBuilder::try_new(open(path)?)
                .and_then(|b| b.with_batch_size(rows).build())
                .map_err(|e| TableError::read(path, e))?;
            let path = path.to_path_buf();
            Ok(Box::new(
                reader.map(move |b| b.map_err(|e| TableError::read(&path, e))),
            ))
        }
        InputFormat::Csv => Ok(Box::new(CsvBatches::open(path, rows)?)),
        InputFormat::JsonLines => Err(TableError::Format {
            path: path.to_path_buf(),
            expected: ".parquet or .csv (a feature spec reads those)",
        }),
    }
}

/// A CSV file as Arrow batches of text columns.
struct CsvBatches {
    path: PathBuf,
    reader: csv::Reader<File>,
    schema: arrow_schema::SchemaRef,
    rows: usize,
    record: csv::StringRecord,
    done: bool,
}

impl CsvBatches {
    fn open(path: &Path, rows: usize) -> Result<Self, TableError> {
        let mut reader = csv::Reader::from_reader(open(path)?);
        let header = reader.headers().map_err(|e| TableError::read(path, e))?;
        let fields: Vec<arrow_schema::Field> = header
            .iter()
            .map(|name| arrow_schema::Field::new(name.trim(), DataType::Utf8, true))
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            schema: std::sync::Arc::new(arrow_schema::Schema::new(fields)),
            rows,
            record: csv::StringRecord::new(),
            done: false,
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, TableError> {
        let width = self.schema.fields().len();
        let mut columns: Vec<arrow_array::builder::StringBuilder> = (0..width)
            .map(|_| arrow_array::builder::StringBuilder::new())
            .collect();
        let mut taken = 0;
        while taken < self.rows {
            let more = self
                .reader
                .read_record(&mut self.record)
                .map_err(|e| TableError::read(&self.path, e))?;
            if !more {
                self.done = true;
                break;
            }
            for (column, value) in columns.iter_mut().zip(self.record.iter()) {
                match value.trim() {
                    "" => column.append_null(),
                    v => column.append_value(v),
                }
            }
            taken += 1;
        }
        if taken == 0 {
            return Ok(None);
        }
        let arrays: Vec<arrow_array::ArrayRef> = columns
            .iter_mut()
            .map(|c| std::sync::Arc::new(c.finish()) as arrow_array::ArrayRef)
            .collect();
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map(Some)
            .map_err(|e| TableError::read(&self.path, e))
    }
}

impl Iterator for CsvBatches {
    type Item = Result<RecordBatch, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_batch();
        if matches!(next, Err(_) | Ok(None)) {
            self.done = true;
        }
        next.transpose()
    }
}

/// A batch's `column` as text (numbers by their digits, null as empty), when it has it: the
/// row ids carried from input to output.
pub fn id_texts(batch: &RecordBatch, column: &str) -> Option<Vec<String>> {
    let array = batch.column_by_name(column)?;
    let text = arrow_cast::cast(array, &DataType::Utf8).ok()?;
    let text = text.as_any().downcast_ref::<arrow_array::StringArray>()?;
    Some(
        (0..text.len())
            .map(|i| {
                if text.is_null(i) {
                    String::new()
                } else {
                    text.value(i).to_string()
                }
            })
            .collect(),
    )
}

impl TableReader {
    /// Opens `path` (format by extension) and plans its columns for `features`.
    pub fn open(
        path: &Path,
        features: &Features<'_>,
        chunk_rows: usize,
    ) -> Result<Self, TableError> {
        let chunk_rows = chunk_rows.max(1);
        let (reader, columns, line_no) = match InputFormat::from_path(path)? {
            InputFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(false)
                    .from_reader(open(path)?);
                let header = reader.headers().map_err(|e| TableError::read(path, e))?;
                let columns: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
                (Reader::Csv(reader), columns, 0)
            }
            InputFormat::JsonLines => Self::open_json_lines(path, features)?,
            InputFormat::Parquet => {
                let builder =
                    ParquetRecordBatchReaderBuilder::try_new(open(path)?).map_err(|e| {
                        TableError::read(path, format!("not a readable Parquet file: {e}"))
                    })?;
                let schema = builder.schema().clone();
                let columns: Vec<String> =
                    schema.fields().iter().map(|f| f.name().clone()).collect();
                let plan = ColumnPlan::new(path, &columns, features)?;
                for &i in &plan.feature_columns {
                    let field = schema.field(i);
                    if !(field.data_type().is_numeric() || field.data_type() == &DataType::Boolean)
                    {
                        return Err(TableError::read(
                            path,
                            format!(
                                "column '{}' has type {}, but the model needs numbers there",
                                field.name(),
                                field.data_type()
                            ),
                        ));
                    }
                }
                let mut wanted = plan.feature_columns.clone();
                wanted.extend(plan.id_column);
                let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
                let batches = builder
                    .with_batch_size(chunk_rows)
                    .with_projection(mask)
                    .build()
                    .map_err(|e| TableError::read(path, e))?;
                (
                    Reader::Parquet {
                        batches,
                        current: None,
                    },
                    columns,
                    0,
                )
            }
        };
        let plan = ColumnPlan::new(path, &columns, features)?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            plan,
            next_row: 0,
            chunk_rows,
            line_no,
            skip_bad_rows: false,
        })
    }

    /// Leaves rows with a value that cannot be read out of the chunks, reporting each in
    /// [`Chunk::rejected`], instead of failing at the first.
    pub fn skip_bad_rows(self) -> Self {
        Self {
            skip_bad_rows: true,
            ..self
        }
    }

    fn open_json_lines(
        path: &Path,
        features: &Features<'_>,
    ) -> Result<(Reader, Vec<String>, usize), TableError> {
        let mut lines = BufReader::new(open(path)?).lines();
        let mut line_no = 0;
        // The first non-blank line decides: objects (named) or arrays (positional).
        let first = loop {
            match lines.next() {
                None => break None,
                Some(line) => {
                    line_no += 1;
                    let line = line.map_err(|e| TableError::io(path, e))?;
                    if !line.trim().is_empty() {
                        let value: Value = serde_json::from_str(&line).map_err(|e| {
                            TableError::read(path, format!("line {line_no}: invalid JSON: {e}"))
                        })?;
                        break Some(value);
                    }
                }
            }
        };
        let (columns, positional) = match &first {
            Some(Value::Object(map)) => {
                let Some(names) = features.names else {
                    return Err(TableError::read(
                        path,
                        "the model records no feature names, so JSON objects cannot be matched to \
                         its columns; write each row as a JSON array in model order, or use CSV",
                    ));
                };
                let mut columns = names.to_vec();
                if map.contains_key(features.id_column)
                    && !columns.iter().any(|c| c == features.id_column)
                {
                    columns.push(features.id_column.to_string());
                }
                (columns, false)
            }
            Some(Value::Array(items)) => (
                (0..items.len()).map(|i| format!("column {i}")).collect(),
                true,
            ),
            Some(other) => {
                return Err(TableError::read(
                    path,
                    format!(
                        "line {line_no}: expected a JSON object or array per line, got {other}"
                    ),
                ));
            }
            None => (
                features.names.map(<[String]>::to_vec).unwrap_or_default(),
                false,
            ),
        };
        let pending = first.map(|v| (line_no, v));
        Ok((
            Reader::JsonLines {
                lines,
                positional,
                pending,
            },
            columns,
            line_no,
        ))
    }

    /// The next chunk of rows, or `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, TableError> {
        let first_row = self.next_row;
        let width = self.plan.feature_columns.len();
        let mut values = Vec::with_capacity(self.chunk_rows * width);
        let mut ids: Vec<String> = Vec::new();
        let mut rejected = Vec::new();
        // Rows read from the file, rejected ones included (they keep their numbers).
        let mut read = 0;
        let rows = match &mut self.reader {
            Reader::Csv(reader) => {
                let mut record = csv::StringRecord::new();
                let mut rows = 0;
                while rows < self.chunk_rows {
                    let more = reader
                        .read_record(&mut record)
                        .map_err(|e| TableError::read(&self.path, e))?;
                    if !more {
                        break;
                    }
                    let row = first_row + read + 1;
                    read += 1;
                    let start = values.len();
                    let mut bad = None;
                    for &c in &self.plan.feature_columns {
                        let field = record.get(c).unwrap_or("");
                        match parse_text(field) {
                            Some(x) => values.push(x),
                            None => {
                                bad = Some(TableError::Value {
                                    path: self.path.clone(),
                                    row,
                                    column: self.plan.names[c].to_string(),
                                    expected: "a number",
                                    got: format!("{field:?}"),
                                });
                                break;
                            }
                        }
                    }
                    if let Some(e) = bad {
                        values.truncate(start);
                        if !self.skip_bad_rows {
                            return Err(e);
                        }
                        rejected.push(RejectedRow::of(e)?);
                        continue;
                    }
                    if let Some(c) = self.plan.id_column {
                        ids.push(record.get(c).unwrap_or("").to_string());
                    }
                    rows += 1;
                }
                rows
            }
            Reader::JsonLines { .. } => {
                self.json_rows(first_row, &mut values, &mut ids, &mut rejected, &mut read)?
            }
            Reader::Parquet { .. } => {
                let rows = self.parquet_rows(&mut values, &mut ids)?;
                read = rows;
                rows
            }
        };
        if read == 0 {
            return Ok(None);
        }
        self.next_row += read;
        let features =
            FeatureMatrix::new(rows, width, values).map_err(|e| TableError::read(&self.path, e))?;
        Ok(Some(Chunk {
            first_row,
            ids: self.plan.id_column.map(|_| ids),
            features,
            rejected,
        }))
    }

    fn json_rows(
        &mut self,
        first_row: usize,
        values: &mut Vec<f32>,
        ids: &mut Vec<String>,
        rejected: &mut Vec<RejectedRow>,
        read: &mut usize,
    ) -> Result<usize, TableError> {
        let Reader::JsonLines {
            lines,
            positional,
            pending,
        } = &mut self.reader
        else {
            return Ok(0);
        };
        let mut rows = 0;
        while rows < self.chunk_rows {
            let (line_no, value) = match pending.take() {
                Some(p) => p,
                None => match lines.next() {
                    None => break,
                    Some(line) => {
                        self.line_no += 1;
                        let line = line.map_err(|e| TableError::io(&self.path, e))?;
                        if line.trim().is_empty() {
                            continue;
                        }
                        let value = serde_json::from_str(&line).map_err(|e| {
                            TableError::read(
                                &self.path,
                                format!("line {}: invalid JSON: {e}", self.line_no),
                            )
                        })?;
                        (self.line_no, value)
                    }
                },
            };
            let row = first_row + *read + 1;
            *read += 1;
            let bad = |column: &str, expected, got: String| TableError::Value {
                path: self.path.clone(),
                row,
                column: column.to_string(),
                expected,
                got,
            };
            let start = values.len();
            let outcome: Result<Option<String>, TableError> = 'row: {
                match (&value, *positional) {
                    (Value::Object(map), false) => {
                        for &c in &self.plan.feature_columns {
                            let name = &self.plan.names[c];
                            let v = map.get(name).unwrap_or(&Value::Null);
                            match parse_json(v) {
                                Some(x) => values.push(x),
                                None => {
                                    break 'row Err(bad(name, "a number or null", v.to_string()));
                                }
                            }
                        }
                        Ok(self.plan.id_column.map(|c| {
                            map.get(&self.plan.names[c])
                                .map(json_id)
                                .unwrap_or_default()
                        }))
                    }
                    (Value::Array(items), true) => {
                        if items.len() != self.plan.names.len() {
                            return Err(TableError::read(
                                &self.path,
                                format!(
                                    "line {line_no}: expected {} values, got {}",
                                    self.plan.names.len(),
                                    items.len()
                                ),
                            ));
                        }
                        for &c in &self.plan.feature_columns {
                            let v = &items[c];
                            match parse_json(v) {
                                Some(x) => values.push(x),
                                None => {
                                    break 'row Err(bad(
                                        &self.plan.names[c],
                                        "a number or null",
                                        v.to_string(),
                                    ));
                                }
                            }
                        }
                        Ok(self.plan.id_column.map(|c| json_id(&items[c])))
                    }
                    (other, positional) => {
                        let expected = if positional {
                            "a JSON array"
                        } else {
                            "a JSON object"
                        };
                        return Err(TableError::read(
                            &self.path,
                            format!(
                                "line {line_no}: expected {expected} like the first line, got {other}"
                            ),
                        ));
                    }
                }
            };
            match outcome {
                Ok(id) => ids.extend(id),
                Err(e) => {
                    values.truncate(start);
                    if !self.skip_bad_rows {
                        return Err(e);
                    }
                    rejected.push(RejectedRow::of(e)?);
                    continue;
                }
            }
            rows += 1;
        }
        Ok(rows)
    }

    fn parquet_rows(
        &mut self,
        values: &mut Vec<f32>,
        ids: &mut Vec<String>,
    ) -> Result<usize, TableError> {
        let Reader::Parquet { batches, current } = &mut self.reader else {
            return Ok(0);
        };
        let mut rows = 0;
        while rows < self.chunk_rows {
            let (batch, offset) = match current.take() {
                Some(c) => c,
                None => match batches.next() {
                    None => break,
                    Some(batch) => (batch.map_err(|e| TableError::read(&self.path, e))?, 0),
                },
            };
            let take = (batch.num_rows() - offset).min(self.chunk_rows - rows);
            let slice = batch.slice(offset, take);
            let mut columns = Vec::with_capacity(self.plan.feature_columns.len());
            for &c in &self.plan.feature_columns {
                let name = &self.plan.names[c];
                let array = slice.column_by_name(name).ok_or_else(|| {
                    TableError::read(&self.path, format!("column '{name}' vanished"))
                })?;
                let cast = arrow_cast::cast(array, &DataType::Float32)
                    .map_err(|e| TableError::read(&self.path, format!("column '{name}': {e}")))?;
                let floats = cast
                    .as_any()
                    .downcast_ref::<Float32Array>()
                    .ok_or_else(|| {
                        TableError::read(&self.path, format!("column '{name}' is not numeric"))
                    })?
                    .clone();
                columns.push(floats);
            }
            for r in 0..take {
                for col in &columns {
                    values.push(if col.is_null(r) {
                        f32::NAN
                    } else {
                        col.value(r)
                    });
                }
            }
            if let Some(c) = self.plan.id_column {
                let name = &self.plan.names[c];
                if let Some(array) = slice.column_by_name(name) {
                    let text = arrow_cast::cast(array, &DataType::Utf8).map_err(|e| {
                        TableError::read(&self.path, format!("column '{name}': {e}"))
                    })?;
                    let text = text
                        .as_any()
                        .downcast_ref::<arrow_array::StringArray>()
                        .ok_or_else(|| {
                            TableError::read(
                                &self.path,
                                format!("column '{name}' cannot be read as text"),
                            )
                        })?;
                    ids.extend((0..take).map(|r| {
                        if text.is_null(r) {
                            String::new()
                        } else {
                            text.value(r).to_string()
                        }
                    }));
                }
            }
            rows += take;
            if offset + take < batch.num_rows() {
                *current = Some((batch, offset + take));
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn read_all(
        path: &Path,
        features: &Features<'_>,
        chunk: usize,
    ) -> Result<Vec<Chunk>, TableError> {
        let mut r = TableReader::open(path, features, chunk)?;
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk()? {
            out.push(c);
        }
        Ok(out)
    }

    #[test]
    fn csv_columns_are_matched_by_name_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "a.csv",
            "id,b,extra,a\nx,1,9,2\ny,,9,true\nz,3.5,9,-1\n",
        );
        let n = names(&["a", "b"]);
        let f = Features {
            names: Some(&n),
            count: 2,
            id_column: "id",
        };
        let chunks = read_all(&path, &f, 2).unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].features.row(0), &[2.0, 1.0]);
        assert_eq!(chunks[0].features.row(1)[0], 1.0);
        assert!(chunks[0].features.row(1)[1].is_nan());
        assert_eq!(chunks[1].first_row, 2);
        assert_eq!(chunks[1].ids.as_deref(), Some(&["z".to_string()][..]));
    }

    #[test]
    fn bad_values_name_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.csv", "a,b\n1,2\n3,abc\n");
        let f = Features {
            names: None,
            count: 2,
            id_column: "id",
        };
        let err = read_all(&path, &f, 10).unwrap_err().to_string();
        assert!(
            err.contains("row 2, column 'b': expected a number, got \"abc\""),
            "{err}"
        );
    }

    #[test]
    fn missing_columns_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.csv", "a,c\n1,2\n");
        let n = names(&["a", "b", "d"]);
        let f = Features {
            names: Some(&n),
            count: 3,
            id_column: "id",
        };
        let err = read_all(&path, &f, 10).unwrap_err().to_string();
        assert!(err.contains("not in the file: b, d"), "{err}");
    }

    #[test]
    fn without_names_the_column_count_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.csv", "id,a,b,c\n1,2,3,4\n");
        let f = Features {
            names: None,
            count: 2,
            id_column: "id",
        };
        let err = read_all(&path, &f, 10).unwrap_err().to_string();
        assert!(err.contains("exactly 2 feature columns"), "{err}");
    }

    #[test]
    fn json_lines_objects_and_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let n = names(&["a", "b"]);
        let f = Features {
            names: Some(&n),
            count: 2,
            id_column: "id",
        };
        let path = write(
            dir.path(),
            "a.jsonl",
            "{\"id\": 7, \"b\": 1, \"a\": null}\n\n{\"a\": 2, \"b\": false, \"id\": \"q\"}\n",
        );
        let chunks = read_all(&path, &f, 10).unwrap();
        assert!(chunks[0].features.row(0)[0].is_nan());
        assert_eq!(chunks[0].features.row(1), &[2.0, 0.0]);
        assert_eq!(
            chunks[0].ids.as_deref(),
            Some(&["7".to_string(), "q".to_string()][..])
        );

        let f = Features {
            names: None,
            count: 2,
            id_column: "id",
        };
        let path = write(dir.path(), "b.jsonl", "[1, 2]\n[3, \"x\"]\n");
        let err = read_all(&path, &f, 10).unwrap_err().to_string();
        assert!(err.contains("row 2, column 'column 1'"), "{err}");

        let path = write(dir.path(), "c.jsonl", "{\"a\": 1, \"b\": 2}\nnot json\n");
        let n = names(&["a", "b"]);
        let f = Features {
            names: Some(&n),
            count: 2,
            id_column: "id",
        };
        let err = read_all(&path, &f, 10).unwrap_err().to_string();
        assert!(err.contains("line 2: invalid JSON"), "{err}");
    }

    #[test]
    fn unknown_extensions_are_refused() {
        let f = Features {
            names: None,
            count: 1,
            id_column: "id",
        };
        let err = TableReader::open(Path::new("rows.xlsx"), &f, 10)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(".csv, .jsonl"), "{err}");
    }
}
