//! Reading Parquet and CSV files one column at a time.
//!
//! Parquet columns are read on demand with a projection, so only the columns being compared
//! are in memory: numeric types (integers, floats, decimals) as `f64`, booleans, strings and
//! dictionaries of strings as category counts (dictionaries counted by key, without building a
//! string per row); other types are listed with no kind and skipped. A CSV file has no types, so
//! it is read in two passes over all columns at once: the first decides each column's kind
//! (numeric when every non-empty field parses as a number) unless the caller gives the kinds to
//! expect (the reference's), the second parses; a field that does not fit its column's kind is
//! counted as rejected. Empty fields, NaN and nulls are missing.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, DictionaryArray, StringArray};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::{CategoryCounts, ColumnData, ColumnKind, MonitorError};

/// Rows per record batch when reading Parquet.
const BATCH_ROWS: usize = 64 * 1024;
/// Most values reserved up front for a column, from the row count a file claims.
const MAX_RESERVED: u64 = 1 << 24;

/// A column of a file: its name, the kind berth reads it as (`None`: a type berth does not
/// profile), and the file's own type name.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub kind: Option<ColumnKind>,
    pub type_name: String,
}

/// A column as read: its values and how many fields did not fit its kind.
#[derive(Debug, Clone)]
pub struct ReadColumn {
    pub data: ColumnData,
    pub rejected: u64,
}

enum Source {
    Parquet,
    /// Every column, parsed at open; each is taken once.
    Csv(HashMap<String, Mutex<Option<ReadColumn>>>),
}

/// An open Parquet or CSV file (chosen by extension).
pub struct Table {
    path: PathBuf,
    columns: Vec<ColumnInfo>,
    rows: u64,
    source: Source,
}

fn open_file(path: &Path) -> Result<File, MonitorError> {
    File::open(path).map_err(|source| MonitorError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parquet_kind(data_type: &DataType) -> Option<ColumnKind> {
    match data_type {
        DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Some(ColumnKind::Categorical)
        }
        DataType::Dictionary(_, value) => parquet_kind(value),
        t if t.is_numeric() => Some(ColumnKind::Numeric),
        _ => None,
    }
}

impl Table {
    /// Opens `path`. For CSV, `kinds` (by column name) overrides type inference, so a current
    /// file is parsed as its reference was; Parquet files carry their own types.
    pub fn open(
        path: &Path,
        kinds: Option<&HashMap<String, ColumnKind>>,
    ) -> Result<Table, MonitorError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("parquet" | "pq") => Self::open_parquet(path),
            Some("csv") => Self::open_csv(path, kinds),
            _ => Err(MonitorError::Format {
                path: path.to_path_buf(),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn columns(&self) -> &[ColumnInfo] {
        &self.columns
    }

    /// Rows of the file (CSV: data lines).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn open_parquet(path: &Path) -> Result<Table, MonitorError> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(open_file(path)?)
            .map_err(|e| MonitorError::read(path, format!("not a readable Parquet file: {e}")))?;
        let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let columns = builder
            .schema()
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                kind: parquet_kind(f.data_type()),
                type_name: f.data_type().to_string(),
            })
            .collect();
        Ok(Table {
            path: path.to_path_buf(),
            columns,
            rows,
            source: Source::Parquet,
        })
    }

    /// Reads column `name` as `kind`.
    pub fn read(&self, name: &str, kind: ColumnKind) -> Result<ReadColumn, MonitorError> {
        match &self.source {
            Source::Parquet => self.read_parquet(name, kind),
            Source::Csv(columns) => {
                let taken = columns
                    .get(name)
                    .and_then(|slot| slot.lock().ok().and_then(|mut c| c.take()));
                taken.ok_or_else(|| {
                    MonitorError::read(&self.path, format!("no column '{name}' left to read"))
                })
            }
        }
    }

    fn read_parquet(&self, name: &str, kind: ColumnKind) -> Result<ReadColumn, MonitorError> {
        let path = &self.path;
        let index = self
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| MonitorError::read(path, format!("no column '{name}'")))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(open_file(path)?)
            .map_err(|e| MonitorError::read(path, e))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| MonitorError::read(path, e))?;
        // Trusted only up to a bound: a corrupt footer must not reserve the machine's memory.
        let capacity = usize::try_from(self.rows.min(MAX_RESERVED)).unwrap_or(0);
        let mut accumulator = Accumulator::new(kind, capacity);
        for batch in reader {
            let batch = batch.map_err(|e| MonitorError::read(path, e))?;
            let array = batch.column(0);
            accumulator
                .push_array(array)
                .map_err(|e| MonitorError::read(path, format!("column '{name}': {e}")))?;
        }
        Ok(accumulator.finish())
    }

    fn open_csv(
        path: &Path,
        kinds: Option<&HashMap<String, ColumnKind>>,
    ) -> Result<Table, MonitorError> {
        let reader = || -> Result<csv::Reader<File>, MonitorError> {
            Ok(csv::ReaderBuilder::new().from_reader(open_file(path)?))
        };
        let csv_error = |e: csv::Error| MonitorError::read(path, e);
        let mut first = reader()?;
        let names: Vec<String> = first
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let given = |name: &str| kinds.and_then(|k| k.get(name).copied());
        let mut numeric: Vec<bool> = vec![true; names.len()];
        if names.iter().any(|n| given(n).is_none()) {
            let mut record = csv::StringRecord::new();
            while first.read_record(&mut record).map_err(csv_error)? {
                for (i, field) in record.iter().enumerate().take(names.len()) {
                    if numeric[i] && parse_number(field).is_none() {
                        numeric[i] = false;
                    }
                }
            }
        }
        let kinds_now: Vec<ColumnKind> = names
            .iter()
            .zip(&numeric)
            .map(|(name, &numeric)| {
                given(name).unwrap_or(if numeric {
                    ColumnKind::Numeric
                } else {
                    ColumnKind::Categorical
                })
            })
            .collect();
        let mut accumulators: Vec<Accumulator> = kinds_now
            .iter()
            .map(|&kind| Accumulator::new(kind, 0))
            .collect();
        let mut second = reader()?;
        let mut record = csv::StringRecord::new();
        let mut rows = 0u64;
        while second.read_record(&mut record).map_err(csv_error)? {
            rows += 1;
            for (acc, field) in accumulators.iter_mut().zip(record.iter()) {
                acc.push_text(Some(field));
            }
        }
        let columns = names
            .iter()
            .zip(&kinds_now)
            .map(|(name, &kind)| ColumnInfo {
                name: name.clone(),
                kind: Some(kind),
                type_name: match kind {
                    ColumnKind::Numeric => "number".into(),
                    ColumnKind::Categorical => "text".into(),
                },
            })
            .collect();
        let data = names
            .into_iter()
            .zip(accumulators)
            .map(|(name, acc)| (name, Mutex::new(Some(acc.finish()))))
            .collect();
        Ok(Table {
            path: path.to_path_buf(),
            columns,
            rows,
            source: Source::Csv(data),
        })
    }
}

/// A text field as a number; `Some(NaN)` when empty (missing), `None` when not a number.
fn parse_number(field: &str) -> Option<f64> {
    let field = field.trim();
    if field.is_empty() {
        Some(f64::NAN)
    } else {
        field.parse::<f64>().ok()
    }
}

/// Builds one column of a kind from arrays or text fields.
struct Accumulator {
    data: ColumnData,
    rejected: u64,
}

impl Accumulator {
    fn new(kind: ColumnKind, capacity: usize) -> Self {
        let data = match kind {
            ColumnKind::Numeric => ColumnData::Numeric(Vec::with_capacity(capacity)),
            ColumnKind::Categorical => ColumnData::Categorical(CategoryCounts::default()),
        };
        Self { data, rejected: 0 }
    }

    fn push_text(&mut self, field: Option<&str>) {
        match &mut self.data {
            ColumnData::Numeric(values) => match field.map(parse_number) {
                None => values.push(f64::NAN),
                Some(Some(x)) => values.push(x),
                Some(None) => self.rejected += 1,
            },
            ColumnData::Categorical(counts) => match field.map(str::trim) {
                None | Some("") => counts.missing += 1,
                Some(v) => counts.add(v, 1),
            },
        }
    }

    fn push_array(&mut self, array: &ArrayRef) -> Result<(), arrow_schema::ArrowError> {
        match &mut self.data {
            ColumnData::Numeric(values) => {
                if matches!(
                    array.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ) {
                    return self.push_strings(array);
                }
                let cast = arrow_cast::cast(array, &DataType::Float64)?;
                let floats = cast.as_primitive::<arrow_array::types::Float64Type>();
                values.extend(floats.iter().map(|v| v.unwrap_or(f64::NAN)));
                Ok(())
            }
            ColumnData::Categorical(counts) => {
                if let DataType::Dictionary(key, _) = array.data_type() {
                    let counted = match key.as_ref() {
                        DataType::Int8 => count_dictionary::<Int8Type>(array, counts),
                        DataType::Int16 => count_dictionary::<Int16Type>(array, counts),
                        DataType::Int32 => count_dictionary::<Int32Type>(array, counts),
                        DataType::Int64 => count_dictionary::<Int64Type>(array, counts),
                        DataType::UInt8 => count_dictionary::<UInt8Type>(array, counts),
                        DataType::UInt16 => count_dictionary::<UInt16Type>(array, counts),
                        DataType::UInt32 => count_dictionary::<UInt32Type>(array, counts),
                        DataType::UInt64 => count_dictionary::<UInt64Type>(array, counts),
                        _ => None,
                    };
                    if let Some(result) = counted {
                        return result;
                    }
                }
                self.push_strings(array)
            }
        }
    }

    fn push_strings(&mut self, array: &ArrayRef) -> Result<(), arrow_schema::ArrowError> {
        let text = arrow_cast::cast(array, &DataType::Utf8)?;
        let strings: &StringArray = text.as_string::<i32>();
        for value in strings.iter() {
            self.push_text(value);
        }
        Ok(())
    }

    fn finish(self) -> ReadColumn {
        ReadColumn {
            data: self.data,
            rejected: self.rejected,
        }
    }
}

/// Counts a dictionary array by key, then names each key once; `None` if `array` is not a
/// dictionary with keys `K`.
fn count_dictionary<K: arrow_array::types::ArrowDictionaryKeyType>(
    array: &ArrayRef,
    counts: &mut CategoryCounts,
) -> Option<Result<(), arrow_schema::ArrowError>> {
    let dictionary: &DictionaryArray<K> = array.as_any().downcast_ref()?;
    let values = match arrow_cast::cast(dictionary.values(), &DataType::Utf8) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    let names: &StringArray = values.as_string::<i32>();
    let mut per_key = vec![0u64; names.len()];
    for key in dictionary.keys_iter() {
        match key.and_then(|k| per_key.get_mut(k)) {
            Some(c) => *c += 1,
            None => counts.missing += 1,
        }
    }
    for (i, n) in per_key.into_iter().enumerate() {
        if n == 0 {
            continue;
        }
        match names.is_valid(i).then(|| names.value(i).trim()) {
            Some(name) if !name.is_empty() => counts.add(name, n),
            _ => counts.missing += n,
        }
    }
    Some(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_kinds_are_inferred_and_missing_fields_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "x,c\n1.5,a\n,b\n2,\n").unwrap();
        let table = Table::open(&path, None).unwrap();
        let kinds: Vec<_> = table.columns().iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![Some(ColumnKind::Numeric), Some(ColumnKind::Categorical)]
        );
        let ColumnData::Numeric(x) = table.read("x", ColumnKind::Numeric).unwrap().data else {
            panic!("numeric")
        };
        assert_eq!((x.len(), x[0], x[1].is_nan()), (3, 1.5, true));
        let ColumnData::Categorical(c) = table.read("c", ColumnKind::Categorical).unwrap().data
        else {
            panic!("categorical")
        };
        assert_eq!((c.counts.len(), c.missing), (2, 1));
    }

    #[test]
    fn csv_fields_that_do_not_fit_the_given_kind_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "x\n1\noops\n3\n").unwrap();
        let kinds = HashMap::from([("x".to_string(), ColumnKind::Numeric)]);
        let table = Table::open(&path, Some(&kinds)).unwrap();
        let read = table.read("x", ColumnKind::Numeric).unwrap();
        assert_eq!(read.rejected, 1);
        assert!(matches!(read.data, ColumnData::Numeric(v) if v == vec![1.0, 3.0]));
    }

    #[test]
    fn unknown_extensions_and_missing_files_are_errors() {
        assert!(matches!(
            Table::open(Path::new("x.xlsx"), None),
            Err(MonitorError::Format { .. })
        ));
        assert!(matches!(
            Table::open(Path::new("/nonexistent/x.parquet"), None),
            Err(MonitorError::Io { .. })
        ));
    }
}
