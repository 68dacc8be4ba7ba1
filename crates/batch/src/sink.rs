//! Writing predictions as CSV or JSON lines: the row id, then one column per output value.
//!
//! Output columns are named as [`berth_core::output_columns`] names them (`label`, `p_0, ...`,
//! `value`). A file is written under a temporary name and renamed when complete (removed when
//! the run fails), so a failed run never leaves a partial file that looks finished.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use berth_core::{NamedTensor, TensorData, json_at, output_columns};

use berth_tables::TableError;

use crate::BatchError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    JsonLines,
}

impl OutputFormat {
    pub fn from_path(path: &Path) -> Result<Self, BatchError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(OutputFormat::Csv),
            Some("jsonl" | "ndjson") => Ok(OutputFormat::JsonLines),
            _ => Err(TableError::Format {
                path: path.to_path_buf(),
                expected: ".csv or .jsonl",
            }
            .into()),
        }
    }
}

/// Where the rows go: a file (written whole or not at all) or standard output.
enum Target {
    File { partial: PathBuf, done: PathBuf },
    Stdout,
}

/// Writes prediction rows; call [`TableWriter::finish`] to complete the file.
pub struct TableWriter {
    out: Box<dyn Write>,
    format: OutputFormat,
    target: Target,
    header_written: bool,
    id_column: String,
    /// When set, every row also gets `version` (this text) and a new `prediction_id`.
    stamp: Option<String>,
}

impl TableWriter {
    /// Writes to `path` (format by extension), or CSV on standard output when `None`.
    pub fn create(path: Option<&Path>, id_column: &str) -> Result<Self, BatchError> {
        let (out, format, target): (Box<dyn Write>, _, _) = match path {
            Some(path) => {
                let format = OutputFormat::from_path(path)?;
                let mut partial = path.as_os_str().to_owned();
                partial.push(".partial");
                let partial = PathBuf::from(partial);
                let file = File::create(&partial).map_err(|e| TableError::io(&partial, e))?;
                (
                    Box::new(BufWriter::new(file)),
                    format,
                    Target::File {
                        partial,
                        done: path.to_path_buf(),
                    },
                )
            }
            None => (
                Box::new(BufWriter::new(std::io::stdout().lock())),
                OutputFormat::Csv,
                Target::Stdout,
            ),
        };
        Ok(Self {
            out,
            format,
            target,
            header_written: false,
            id_column: id_column.to_string(),
            stamp: None,
        })
    }

    /// Adds a `version` column (`version`, e.g. `churn/3`) and a `prediction_id` column (a new
    /// UUIDv7 per row) after the outputs.
    pub fn stamped(self, version: &str) -> Self {
        Self {
            stamp: Some(version.to_string()),
            ..self
        }
    }

    fn path(&self) -> PathBuf {
        match &self.target {
            Target::File { partial, .. } => partial.clone(),
            Target::Stdout => PathBuf::from("<stdout>"),
        }
    }

    /// Writes one chunk's predictions; `ids` (if any) has one entry per row.
    pub fn write(
        &mut self,
        ids: Option<&[String]>,
        outputs: &[NamedTensor],
        rows: usize,
    ) -> Result<(), BatchError> {
        let columns = output_columns(outputs);
        let io = |e: std::io::Error, path: PathBuf| TableError::io(path, e);
        match self.format {
            OutputFormat::Csv => {
                let mut line = String::new();
                if !self.header_written {
                    let mut header: Vec<String> =
                        ids.map(|_| self.id_column.clone()).into_iter().collect();
                    header.extend(columns.iter().flat_map(|(_, names)| names.iter().cloned()));
                    if self.stamp.is_some() {
                        header.extend(["version".to_string(), "prediction_id".to_string()]);
                    }
                    writeln!(self.out, "{}", header.join(",")).map_err(|e| io(e, self.path()))?;
                    self.header_written = true;
                }
                let version = self.stamp.as_deref().map(csv_escape);
                let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
                for r in 0..rows {
                    line.clear();
                    if let Some(ids) = ids {
                        push_csv(&mut line, &ids[r]);
                        line.push(',');
                    }
                    for (i, names) in &columns {
                        let data = outputs[*i].tensor.data();
                        for k in 0..names.len() {
                            push_cell(&mut line, data, r * names.len() + k);
                            line.push(',');
                        }
                    }
                    if let Some(version) = &version {
                        line.push_str(version);
                        line.push(',');
                        line.push_str(
                            berth_core::prediction_id()
                                .hyphenated()
                                .encode_lower(&mut uuid),
                        );
                        line.push(',');
                    }
                    line.pop();
                    line.push('\n');
                    self.out
                        .write_all(line.as_bytes())
                        .map_err(|e| io(e, self.path()))?;
                }
            }
            OutputFormat::JsonLines => {
                for r in 0..rows {
                    let mut object = serde_json::Map::new();
                    if let Some(ids) = ids {
                        object.insert(
                            self.id_column.clone(),
                            serde_json::Value::String(ids[r].clone()),
                        );
                    }
                    for (i, names) in &columns {
                        let data = outputs[*i].tensor.data();
                        for (k, name) in names.iter().enumerate() {
                            object.insert(name.clone(), json_at(data, r * names.len() + k));
                        }
                    }
                    if let Some(version) = &self.stamp {
                        object.insert("version".into(), version.clone().into());
                        object.insert(
                            "prediction_id".into(),
                            berth_core::prediction_id().to_string().into(),
                        );
                    }
                    writeln!(self.out, "{}", serde_json::Value::Object(object))
                        .map_err(|e| io(e, self.path()))?;
                }
            }
        }
        Ok(())
    }

    /// Gives up: a file being written is removed (a failed run leaves no output behind).
    pub fn abandon(self) {
        let Self { out, target, .. } = self;
        drop(out);
        if let Target::File { partial, .. } = &target {
            let _ = std::fs::remove_file(partial);
        }
    }

    /// Flushes and, for a file, moves it to its final name.
    pub fn finish(mut self) -> Result<(), BatchError> {
        self.out
            .flush()
            .map_err(|e| TableError::io(self.path(), e))?;
        drop(self.out);
        if let Target::File { partial, done } = &self.target {
            std::fs::rename(partial, done).map_err(|e| TableError::io(done, e))?;
        }
        Ok(())
    }
}

/// Appends value `i` of `data` as a CSV cell, as [`berth_core::text_at`] writes it, without a new string.
fn push_cell(line: &mut String, data: &TensorData, i: usize) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = match data {
        TensorData::Bool(v) => write!(line, "{}", v[i]),
        TensorData::Int32(v) => write!(line, "{}", v[i]),
        TensorData::Int64(v) => write!(line, "{}", v[i]),
        TensorData::Fp32(v) => write!(line, "{}", v[i]),
        TensorData::Fp64(v) => write!(line, "{}", v[i]),
        TensorData::Bytes(v) => {
            push_csv(line, &v[i]);
            Ok(())
        }
    };
}

/// Appends `v` as a CSV cell: quoted when it holds a comma, a quote or a line break.
fn push_csv(line: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&v.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(v);
    }
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break.
pub(crate) fn csv_escape(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}
