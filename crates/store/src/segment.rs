//! The binary form of a prediction segment (migration 8's `data` column): the names of the
//! records' columns once per segment, each record's values raw.
//!
//! A single-row record of 23 features took about 850 bytes as a line of JSON, most of them
//! the names of its columns and floats printed as text. Here it takes about 177, and writing
//! it is copying the values; SQLite's cost of a segment (copies, WAL checksums, page writes)
//! goes with its bytes. Readers get the same [`PredictionRow`]s as from JSON lines: a float
//! column reads back as the shortest decimal of its `f32`, as JSON wrote it.
//!
//! A [`PredictionBatch`] is what a writer hands to
//! [`MetadataStore::insert_predictions`](crate::MetadataStore::insert_predictions): records
//! built with [`PredictionBatch::record`] (serving's recorder, from the values it holds) or
//! [`PredictionBatch::push_row`] / [`PredictionBatch::push_line`] (replay, tools, tests).
//!
//! # Layout
//! Integers are LEB128 varints (signed ones zigzag) unless noted; a string is its byte length
//! and its UTF-8 bytes.
//!
//! ```text
//! segment := "BRS1" count schema* count string* count (length record)*
//! schema  := count string*                     the names of a record's columns, in order
//! record  := id time_ms model version role protocol rows latency_us inputs outputs
//! id      := 1 uuid(16 bytes)                  a canonical lowercase UUID string
//!          | 0 string
//! model, role, protocol := index into the segment's strings
//! columns := 0 string                          any JSON value, as text
//!          | 1+schema_index column*            one column per name of the schema
//! column  := kind [width] [count] value*       width if kind & 0x80 (entries are arrays);
//!                                              count unless kind & 0x40 (count = rows)
//!          | JSON string                       a column that is any JSON value
//! ```
//!
//! Values by kind: `F32` 4 bytes LE (not finite: null), `F64` 8 bytes LE (likewise), `I64` a
//! signed varint, `BOOL` one byte (0, 1; 2 is null), `STR` a varint of length + 1 and the
//! bytes (0 is null).

use std::ops::Range;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::StoreError;
use crate::predictions::PredictionRow;

const MAGIC: &[u8; 4] = b"BRS1";

const F32: u8 = 1;
const F64: u8 = 2;
const I64: u8 = 3;
const BOOL: u8 = 4;
const STR: u8 = 5;
const JSON: u8 = 6;
/// Set on a kind whose entries are arrays of `width` values.
const ARRAYS: u8 = 0x80;
/// Set on a kind whose count is the record's rows (and so not written).
const ROWS: u8 = 0x40;
/// The most entries a column of empty arrays may have.
const MAX_EMPTY_ENTRIES: usize = 1 << 24;

/// Records on their way into the store, in increasing sequence order, with the column names
/// they refer to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredictionBatch {
    schemas: Vec<Box<[String]>>,
    /// Models, roles and protocols, which records name by index.
    strings: Vec<String>,
    /// The endpoints of the records (a batch holds one or a few).
    endpoints: Vec<String>,
    /// Every record's bytes, one after the other.
    data: Vec<u8>,
    pub(crate) records: Vec<EncodedRecord>,
}

/// One record of a batch: its writer's sequence number, the fields segments are filed by (its
/// endpoint as an index into the batch's), and its bytes (which refer to the batch's schemas).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedRecord {
    pub seq: u64,
    pub id: String,
    pub time_ms: i64,
    pub endpoint: usize,
    /// Where its bytes are in the batch's `data`.
    bytes: Range<usize>,
}

/// The fields of a record other than its inputs and outputs.
#[derive(Debug, Clone, Copy)]
pub struct RecordHead<'a> {
    pub id: &'a str,
    pub time_ms: i64,
    pub endpoint: &'a str,
    pub model: &'a str,
    pub version: i64,
    pub role: &'a str,
    pub protocol: &'a str,
    pub rows: u64,
    pub latency_us: u64,
}

/// A float type a column can hold: `f32` or `f64`, stored as its little-endian bytes.
pub trait Float: Copy {
    #[doc(hidden)]
    const KIND: u8;
    #[doc(hidden)]
    const BYTES: usize;
    #[doc(hidden)]
    fn put(self, out: &mut Vec<u8>);
}

impl Float for f32 {
    const KIND: u8 = F32;
    const BYTES: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Float for f64 {
    const KIND: u8 = F64;
    const BYTES: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// How a column's entries are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    /// One value per entry.
    Scalars,
    /// An array of this many values per entry.
    Arrays(usize),
}

impl PredictionBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Empties the batch, keeping its buffers: a writer that reuses one batch does not ask the
    /// allocator for (and the kernel to clear) a few hundred kilobytes per write.
    pub fn clear(&mut self) {
        self.schemas.clear();
        self.strings.clear();
        self.endpoints.clear();
        self.data.clear();
        self.records.clear();
    }

    /// Starts the record with sequence number `seq`: give its inputs, then its outputs, each as
    /// [`RecordBuilder::columns`] and one call per column, then [`RecordBuilder::finish`].
    pub fn record(&mut self, seq: u64, head: &RecordHead<'_>) -> RecordBuilder<'_> {
        let start = self.data.len();
        let (model, role, protocol) = (
            intern(&mut self.strings, head.model),
            intern(&mut self.strings, head.role),
            intern(&mut self.strings, head.protocol),
        );
        let endpoint = intern(&mut self.endpoints, head.endpoint);
        let bytes = &mut self.data;
        put_id(bytes, head.id);
        put_signed(bytes, head.time_ms);
        put_varint(bytes, model as u64);
        put_signed(bytes, head.version);
        put_varint(bytes, role as u64);
        put_varint(bytes, protocol as u64);
        put_varint(bytes, head.rows);
        put_varint(bytes, head.latency_us);
        RecordBuilder {
            record: EncodedRecord {
                seq,
                id: head.id.to_string(),
                time_ms: head.time_ms,
                endpoint,
                bytes: start..start,
            },
            rows: head.rows,
            batch: self,
            sections: 0,
            columns_left: 0,
            problem: None,
        }
    }

    /// Adds `row` with sequence number `seq`; its inputs and outputs are kept as JSON.
    pub fn push_row(&mut self, seq: u64, row: &PredictionRow) -> Result<(), StoreError> {
        let head = RecordHead {
            id: &row.id,
            time_ms: row.time_ms,
            endpoint: &row.endpoint,
            model: &row.model,
            version: row.version,
            role: &row.role,
            protocol: &row.protocol,
            rows: u64::try_from(row.rows).unwrap_or(0),
            latency_us: u64::try_from(row.latency_us).unwrap_or(0),
        };
        let mut record = self.record(seq, &head);
        for value in [&row.inputs, &row.outputs] {
            match value {
                Value::Object(columns) => {
                    record.columns(columns.keys().map(String::as_str));
                    for column in columns.values() {
                        record.json(column);
                    }
                }
                other => record.whole(other),
            }
        }
        record.finish()
    }

    /// Adds a record read back as a line of JSON (a [`PredictionRow`]) with sequence number
    /// `seq`.
    pub fn push_line(&mut self, seq: u64, line: &[u8]) -> Result<(), StoreError> {
        let row: PredictionRow = serde_json::from_slice(line).map_err(|e| StoreError::Invalid {
            field: "prediction record".into(),
            expected: "a JSON prediction row".into(),
            got: e.to_string(),
        })?;
        self.push_row(seq, &row)
    }

    /// The batch's records, read back as the store will return them.
    pub fn rows(&self) -> Result<Vec<PredictionRow>, StoreError> {
        let tables = Tables {
            schemas: self.schemas.iter().map(|s| s.to_vec()).collect(),
            strings: self.strings.clone(),
        };
        self.records
            .iter()
            .map(|r| {
                let mut row = Reader {
                    data: self.data.get(r.bytes.clone()).unwrap_or_default(),
                    pos: 0,
                }
                .row(&tables)?;
                row.endpoint = self.endpoint(r).to_string();
                Ok(row)
            })
            .collect()
    }

    /// The endpoint of `record` (of this batch).
    pub(crate) fn endpoint(&self, record: &EncodedRecord) -> &str {
        self.endpoints
            .get(record.endpoint)
            .map_or("", String::as_str)
    }

    /// The index of the schema with these names, added if new.
    fn schema<'n>(&mut self, names: impl Iterator<Item = &'n str> + Clone) -> usize {
        let known = self
            .schemas
            .iter()
            .position(|s| s.iter().map(String::as_str).eq(names.clone()));
        known.unwrap_or_else(|| {
            self.schemas.push(names.map(str::to_string).collect());
            self.schemas.len() - 1
        })
    }

    /// The segment holding `records` (of this batch).
    pub(crate) fn segment(&self, records: &[&EncodedRecord]) -> Vec<u8> {
        let len = records.iter().map(|r| r.bytes.len() + 3).sum::<usize>();
        let mut out = Vec::with_capacity(len + 256);
        out.extend_from_slice(MAGIC);
        put_varint(&mut out, self.schemas.len() as u64);
        for schema in &self.schemas {
            put_varint(&mut out, schema.len() as u64);
            for name in schema.iter() {
                put_str(&mut out, name);
            }
        }
        put_varint(&mut out, self.strings.len() as u64);
        for string in &self.strings {
            put_str(&mut out, string);
        }
        put_varint(&mut out, records.len() as u64);
        for r in records {
            let bytes = self.data.get(r.bytes.clone()).unwrap_or_default();
            put_varint(&mut out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        out
    }
}

/// The index of `value` in `list`, added if new (lists of a few entries: searched from the
/// most recent).
fn intern(list: &mut Vec<String>, value: &str) -> usize {
    match list.iter().rposition(|v| v == value) {
        Some(known) => known,
        None => {
            list.push(value.to_string());
            list.len() - 1
        }
    }
}

/// A record being written into a [`PredictionBatch`]. Errors (a column too many or too few, a
/// count that does not match its values) surface at [`RecordBuilder::finish`].
pub struct RecordBuilder<'b> {
    batch: &'b mut PredictionBatch,
    record: EncodedRecord,
    /// The record's rows: a column of as many entries does not write its count.
    rows: u64,
    /// Sections begun: 1 while writing inputs, 2 while writing outputs.
    sections: u8,
    columns_left: usize,
    problem: Option<String>,
}

impl RecordBuilder<'_> {
    /// Begins the next section (inputs, then outputs) with columns of these names; one call per
    /// column follows, in the same order.
    pub fn columns<'n>(&mut self, names: impl Iterator<Item = &'n str> + Clone) {
        self.begin_section();
        let index = self.batch.schema(names.clone());
        self.columns_left = names.count();
        put_varint(&mut self.batch.data, index as u64 + 1);
    }

    /// The next section is `value`, whatever its shape, kept as JSON.
    pub fn whole(&mut self, value: &Value) {
        self.begin_section();
        put_varint(&mut self.batch.data, 0);
        self.put_json(value);
    }

    fn begin_section(&mut self) {
        if self.columns_left != 0 {
            self.fail(format!("{} columns missing", self.columns_left));
        }
        self.sections += 1;
        if self.sections > 2 {
            self.fail("more than two sections (inputs, outputs)".into());
        }
    }

    fn fail(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }

    /// Writes a column's kind, width and count; `values` is how many values follow.
    fn column_head(&mut self, kind: u8, entries: Entries, count: usize, values: usize) {
        if self.columns_left == 0 {
            self.fail("a column more than its section names".into());
        }
        self.columns_left = self.columns_left.saturating_sub(1);
        let implicit = if count as u64 == self.rows { ROWS } else { 0 };
        let matches = match entries {
            Entries::Scalars => {
                self.batch.data.push(kind | implicit);
                values == count
            }
            Entries::Arrays(width) => {
                self.batch.data.push(kind | ARRAYS | implicit);
                put_varint(&mut self.batch.data, width as u64);
                count.checked_mul(width) == Some(values)
            }
        };
        if !matches {
            self.fail(format!("{values} values for {count} entries"));
        }
        if implicit == 0 {
            put_varint(&mut self.batch.data, count as u64);
        }
    }

    /// A column of `f32`s or `f64`s (a value that is not finite reads back as null).
    pub fn floats<T: Float>(
        &mut self,
        entries: Entries,
        count: usize,
        values: impl ExactSizeIterator<Item = T>,
    ) {
        self.column_head(T::KIND, entries, count, values.len());
        let bytes = &mut self.batch.data;
        bytes.reserve(values.len() * T::BYTES);
        for x in values {
            x.put(bytes);
        }
    }

    /// A column of integers.
    pub fn i64s(
        &mut self,
        entries: Entries,
        count: usize,
        values: impl ExactSizeIterator<Item = i64>,
    ) {
        self.column_head(I64, entries, count, values.len());
        for x in values {
            put_signed(&mut self.batch.data, x);
        }
    }

    /// A column of booleans or nulls.
    pub fn bools(
        &mut self,
        entries: Entries,
        count: usize,
        values: impl ExactSizeIterator<Item = Option<bool>>,
    ) {
        self.column_head(BOOL, entries, count, values.len());
        for x in values {
            self.batch.data.push(match x {
                Some(false) => 0,
                Some(true) => 1,
                None => 2,
            });
        }
    }

    /// A column of strings or nulls.
    pub fn strs<'s>(
        &mut self,
        entries: Entries,
        count: usize,
        values: impl ExactSizeIterator<Item = Option<&'s str>>,
    ) {
        self.column_head(STR, entries, count, values.len());
        let bytes = &mut self.batch.data;
        for x in values {
            match x {
                Some(s) => {
                    put_varint(bytes, s.len() as u64 + 1);
                    bytes.extend_from_slice(s.as_bytes());
                }
                None => bytes.push(0),
            }
        }
    }

    /// A column that is any JSON value (`value` as serde writes it).
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) {
        if self.columns_left == 0 {
            self.fail("a column more than its section names".into());
        }
        self.columns_left = self.columns_left.saturating_sub(1);
        self.batch.data.push(JSON);
        self.put_json(value);
    }

    fn put_json<T: Serialize + ?Sized>(&mut self, value: &T) {
        match serde_json::to_vec(value) {
            Ok(text) => {
                put_varint(&mut self.batch.data, text.len() as u64);
                self.batch.data.extend_from_slice(&text);
            }
            Err(e) => self.fail(format!("a value JSON cannot hold: {e}")),
        }
    }

    /// Adds the record to the batch.
    pub fn finish(mut self) -> Result<(), StoreError> {
        if self.sections != 2 {
            self.fail(format!(
                "{} sections (expected inputs and outputs)",
                self.sections
            ));
        }
        if self.columns_left != 0 {
            self.fail(format!("{} columns missing", self.columns_left));
        }
        let start = self.record.bytes.start;
        if let Some(problem) = self.problem {
            self.batch.data.truncate(start);
            return Err(StoreError::Invalid {
                field: format!("prediction record {}", self.record.id),
                expected: "inputs and outputs, one column per name".into(),
                got: problem,
            });
        }
        self.record.bytes = start..self.batch.data.len();
        self.batch.records.push(self.record);
        Ok(())
    }
}

/// The records of a segment's `data`.
pub(crate) fn decode(data: &[u8]) -> Result<Vec<PredictionRow>, StoreError> {
    let mut r = Reader { data, pos: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(r.damaged("an unknown format"));
    }
    let schemas = (0..r.count()?)
        .map(|_| (0..r.count()?).map(|_| r.string()).collect())
        .collect::<Result<Vec<Vec<String>>, _>>()?;
    let strings = (0..r.count()?)
        .map(|_| r.string())
        .collect::<Result<Vec<String>, _>>()?;
    let tables = Tables { schemas, strings };
    let records = r.count()?;
    let mut rows = Vec::with_capacity(records);
    for _ in 0..records {
        let len = r.count()?;
        let mut record = Reader {
            data: r.take(len)?,
            pos: 0,
        };
        rows.push(record.row(&tables)?);
    }
    Ok(rows)
}

/// What a segment's records refer to by index.
struct Tables {
    schemas: Vec<Vec<String>>,
    strings: Vec<String>,
}

impl Tables {
    fn string(&self, reader: &Reader<'_>, index: u64) -> Result<String, StoreError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.strings.get(i))
            .cloned()
            .ok_or_else(|| reader.damaged("an unknown string"))
    }
}

/// Reads a segment's bytes.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn damaged(&self, what: &str) -> StoreError {
        StoreError::Database {
            doing: "reading a prediction segment".into(),
            problem: format!("{what} at byte {}", self.pos),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.damaged("the data ends early"))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.damaged("a number too long"))
    }

    fn signed(&mut self) -> Result<i64, StoreError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A count or a length: a varint that must fit what is left.
    fn count(&mut self) -> Result<usize, StoreError> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.data.len() - self.pos)
            .ok_or_else(|| self.damaged("a count larger than the data"))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let len = self.count()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.damaged("text that is not UTF-8"))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn row(&mut self, tables: &Tables) -> Result<PredictionRow, StoreError> {
        let id = match self.byte()? {
            0 => self.string()?,
            1 => uuid_text(&self.array()?),
            _ => return Err(self.damaged("an unknown id form")),
        };
        let time_ms = self.signed()?;
        let model = self.varint()?;
        let model = tables.string(self, model)?;
        let version = self.signed()?;
        let role = self.varint()?;
        let role = tables.string(self, role)?;
        let protocol = self.varint()?;
        let protocol = tables.string(self, protocol)?;
        let rows = self.varint()?;
        let latency_us = self.varint()?;
        Ok(PredictionRow {
            id,
            time_ms,
            endpoint: String::new(),
            model,
            version,
            role,
            protocol,
            rows: i64::try_from(rows).unwrap_or(i64::MAX),
            latency_us: i64::try_from(latency_us).unwrap_or(i64::MAX),
            inputs: self.section(&tables.schemas, rows)?,
            outputs: self.section(&tables.schemas, rows)?,
        })
    }

    fn json(&mut self) -> Result<Value, StoreError> {
        let len = self.count()?;
        serde_json::from_slice(self.take(len)?)
            .map_err(|_| self.damaged("JSON that does not parse"))
    }

    fn section(&mut self, schemas: &[Vec<String>], rows: u64) -> Result<Value, StoreError> {
        let tag = self.count()?;
        let Some(index) = tag.checked_sub(1) else {
            return self.json();
        };
        let names = schemas
            .get(index)
            .ok_or_else(|| self.damaged("an unknown schema"))?;
        let mut columns = Map::new();
        for name in names {
            columns.insert(name.clone(), self.column(rows)?);
        }
        Ok(Value::Object(columns))
    }

    fn column(&mut self, rows: u64) -> Result<Value, StoreError> {
        let kind = self.byte()?;
        if kind == JSON {
            return self.json();
        }
        let width = if kind & ARRAYS != 0 {
            Some(self.count()?)
        } else {
            None
        };
        let count = if kind & ROWS != 0 {
            rows
        } else {
            self.varint()?
        };
        // Entries of no values take no bytes: their count is bounded apart.
        let bound = if width == Some(0) {
            MAX_EMPTY_ENTRIES
        } else {
            self.data.len() - self.pos
        };
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| n <= bound)
            .ok_or_else(|| self.damaged("a count larger than the data"))?;
        let kind = kind & !(ARRAYS | ROWS);
        let mut entries = Vec::with_capacity(count.min(self.data.len() - self.pos));
        for _ in 0..count {
            entries.push(match width {
                None => self.value(kind)?,
                Some(width) => Value::Array(
                    (0..width)
                        .map(|_| self.value(kind))
                        .collect::<Result<_, _>>()?,
                ),
            });
        }
        Ok(Value::Array(entries))
    }

    fn value(&mut self, kind: u8) -> Result<Value, StoreError> {
        Ok(match kind {
            F32 => f32_value(f32::from_le_bytes(self.array()?)),
            F64 => {
                let x = f64::from_le_bytes(self.array()?);
                if x.is_finite() {
                    Value::from(x)
                } else {
                    Value::Null
                }
            }
            I64 => Value::from(self.signed()?),
            BOOL => match self.byte()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => Value::Null,
            },
            STR => match self.count()? {
                0 => Value::Null,
                n => {
                    let bytes = self.take(n - 1)?;
                    Value::String(
                        std::str::from_utf8(bytes)
                            .map_err(|_| self.damaged("text that is not UTF-8"))?
                            .to_string(),
                    )
                }
            },
            _ => return Err(self.damaged("an unknown column kind")),
        })
    }
}

/// An `f32` as a line of JSON has it: the decimal serde_json writes for it (`25.85`, not
/// `25.850000381469727`) read back; null when it is not finite.
fn f32_value(x: f32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    serde_json::to_string(&x)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

/// A canonical UUID string (lowercase, hyphenated: what reads back as the same text) as its
/// 16 bytes.
fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let uuid = uuid::Uuid::try_parse(id).ok()?;
    (uuid_text(uuid.as_bytes()) == id).then(|| *uuid.as_bytes())
}

/// The canonical text of a UUID's 16 bytes.
fn uuid_text(bytes: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*bytes).hyphenated().to_string()
}

fn put_id(out: &mut Vec<u8>, id: &str) {
    match uuid_bytes(id) {
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(&bytes);
        }
        None => {
            out.push(0);
            put_str(out, id);
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn row(inputs: Value, outputs: Value) -> PredictionRow {
        PredictionRow {
            id: "0193-a".into(),
            time_ms: 1_700_000_000_123,
            endpoint: "churn".into(),
            model: "churn".into(),
            version: -3,
            role: "canary".into(),
            protocol: "v2".into(),
            rows: 2,
            latency_us: 812,
            inputs,
            outputs,
        }
    }

    /// Decodes the batch's records as one segment, endpoints filled in as readers do; the
    /// same as the batch's own reading.
    fn read_back(batch: &PredictionBatch) -> Vec<PredictionRow> {
        let records: Vec<&EncodedRecord> = batch.records.iter().collect();
        let mut rows = decode(&batch.segment(&records)).expect("decode");
        for (row, r) in rows.iter_mut().zip(&batch.records) {
            row.endpoint = batch.endpoint(r).to_string();
        }
        assert_eq!(rows, batch.rows().expect("rows"));
        rows
    }

    #[test]
    fn json_rows_read_back_as_they_were() {
        let mut batch = PredictionBatch::new();
        let a = row(
            json!({"age": [31, null], "plan": ["pro", "basic"], "x": {"nested": true}}),
            json!({"label": [1, 0], "probabilities": [[0.25, 0.75], [0.5, 0.5]]}),
        );
        let b = row(json!("not columns"), json!(null));
        batch.push_row(1, &a).expect("a");
        batch.push_row(2, &b).expect("b");
        batch
            .push_line(3, &serde_json::to_vec(&a).expect("line"))
            .expect("line");
        assert_eq!(read_back(&batch), vec![a.clone(), b, a]);
        assert_eq!(
            batch.schemas.len(),
            2,
            "one schema per distinct list of names"
        );
    }

    /// A record `r1` of `rows` rows.
    fn head(rows: u64) -> RecordHead<'static> {
        RecordHead {
            id: "r1",
            time_ms: 5,
            endpoint: "e",
            model: "m",
            version: 2,
            role: "primary",
            protocol: "v2",
            rows,
            latency_us: 90,
        }
    }

    #[test]
    fn typed_columns_read_back_as_json_would_have_them() {
        let mut batch = PredictionBatch::new();
        let head = head(2);
        let mut r = batch.record(7, &head);
        r.columns(["f", "d", "i", "b", "s"].into_iter());
        r.floats(Entries::Scalars, 2, [25.85f32, f32::NAN].into_iter());
        r.floats(
            Entries::Arrays(2),
            2,
            [0.1, 0.2, f64::INFINITY, -1.5].into_iter(),
        );
        r.i64s(Entries::Scalars, 2, [-4i64, 1 << 40].into_iter());
        r.bools(Entries::Scalars, 2, [Some(true), None].into_iter());
        r.strs(Entries::Scalars, 2, [Some("pro"), None].into_iter());
        r.columns(["p"].into_iter());
        r.floats(Entries::Arrays(0), 2, std::iter::empty::<f32>());
        r.finish().expect("finish");
        let rows = read_back(&batch);
        assert_eq!(
            rows[0].inputs,
            json!({"f": [25.85, null], "d": [[0.1, 0.2], [null, -1.5]], "i": [-4, 1_i64 << 40],
                   "b": [true, null], "s": ["pro", null]})
        );
        assert_eq!(rows[0].outputs, json!({"p": [[], []]}));
        assert_eq!(
            (rows[0].id.as_str(), rows[0].version, rows[0].latency_us),
            ("r1", 2, 90)
        );
    }

    #[test]
    fn a_record_that_does_not_match_its_names_is_refused() {
        let head = head(1);
        let mut batch = PredictionBatch::new();
        let mut r = batch.record(1, &head);
        r.columns(["a", "b"].into_iter());
        r.floats(Entries::Scalars, 1, [1.0f32].into_iter());
        r.columns(["p"].into_iter());
        r.floats(Entries::Scalars, 1, [1.0f32].into_iter());
        let err = r.finish().expect_err("a column missing");
        assert!(err.to_string().contains("1 columns missing"), "{err}");

        let mut r = batch.record(2, &head);
        r.columns(["a"].into_iter());
        r.floats(Entries::Scalars, 2, [1.0f32].into_iter());
        r.whole(&Value::Null);
        let err = r.finish().expect_err("count");
        assert!(err.to_string().contains("1 values for 2 entries"), "{err}");
        assert!(batch.is_empty());
    }

    #[test]
    fn damaged_segments_are_errors_not_panics() {
        let mut batch = PredictionBatch::new();
        batch
            .push_row(1, &row(json!({"a": [1.5]}), json!({"p": [0.5]})))
            .expect("row");
        let records: Vec<&EncodedRecord> = batch.records.iter().collect();
        let data = batch.segment(&records);
        for cut in 0..data.len() {
            assert!(decode(&data[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"XXXX").is_err());
    }

    #[test]
    fn canonical_uuids_are_kept_as_16_bytes_and_other_ids_as_text() {
        let id = "0193a3c4-5e6f-7a8b-9cde-f0123456789a";
        let bytes = uuid_bytes(id).expect("canonical");
        assert_eq!(uuid_text(&bytes), id);
        for other in [
            "0193A3C4-5E6F-7A8B-9CDE-F0123456789A",
            "0193a3c45e6f7a8b9cdef0123456789a",
            "0193a3c4-5e6f-7a8b-9cde-f0123456789",
            "0193a3c4-5e6f-7a8b-9cde_f0123456789a",
            "r1",
        ] {
            assert!(uuid_bytes(other).is_none(), "{other}");
        }
        let mut batch = PredictionBatch::new();
        let mut upper = row(json!({"a": [1]}), json!({"p": [0.5]}));
        upper.id = "0193A3C4-5E6F-7A8B-9CDE-F0123456789A".into();
        let mut lower = upper.clone();
        lower.id = id.into();
        batch.push_row(1, &upper).expect("upper");
        batch.push_row(2, &lower).expect("lower");
        assert_eq!(read_back(&batch), vec![upper, lower]);
    }

    proptest! {
        #[test]
        fn any_uuid_reads_back_as_itself(bytes in any::<[u8; 16]>()) {
            let text = uuid_text(&bytes);
            prop_assert_eq!(uuid_bytes(&text), Some(bytes));
        }

        #[test]
        fn floats_read_back_as_their_shortest_json(x in any::<f32>()) {
            let json: Value = serde_json::from_str(
                &serde_json::to_string(&if x.is_finite() { Some(x) } else { None }).expect("json"),
            ).expect("parse");
            prop_assert_eq!(f32_value(x), json);
        }

        #[test]
        fn any_bytes_decode_to_an_error_or_rows(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&data);
            let _ = decode(&with_magic);
        }
    }
}
