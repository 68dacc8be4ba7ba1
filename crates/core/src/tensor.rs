//! Typed tensors: element types, shapes with variable dimensions, and owned tensor data.
//!
//! The element types mirror the Open Inference Protocol's datatypes so that a tensor can be
//! described to any client without translation tables elsewhere.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The type of one tensor element, named as the Open Inference Protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ElementType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bf16,
    /// Variable-length bytes; UTF-8 text in practice.
    Bytes,
}

impl ElementType {
    /// The protocol name, e.g. `FP32`.
    pub fn as_str(self) -> &'static str {
        match self {
            ElementType::Bool => "BOOL",
            ElementType::Uint8 => "UINT8",
            ElementType::Uint16 => "UINT16",
            ElementType::Uint32 => "UINT32",
            ElementType::Uint64 => "UINT64",
            ElementType::Int8 => "INT8",
            ElementType::Int16 => "INT16",
            ElementType::Int32 => "INT32",
            ElementType::Int64 => "INT64",
            ElementType::Fp16 => "FP16",
            ElementType::Fp32 => "FP32",
            ElementType::Fp64 => "FP64",
            ElementType::Bf16 => "BF16",
            ElementType::Bytes => "BYTES",
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dimension of a tensor shape: a fixed size or one that varies per call (`-1` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    Fixed(usize),
    Variable,
}

impl Dim {
    /// The protocol form: the size, or `-1` when variable.
    pub fn as_i64(self) -> i64 {
        match self {
            Dim::Fixed(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Dim::Variable => -1,
        }
    }

    /// Reads the protocol form: any negative number is a variable dimension.
    pub fn from_i64(n: i64) -> Self {
        usize::try_from(n).map_or(Dim::Variable, Dim::Fixed)
    }
}

impl Serialize for Dim {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.as_i64())
    }
}

impl<'de> Deserialize<'de> for Dim {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(Dim::from_i64)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_i64())
    }
}

/// Name, element type and shape of a model input or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    #[serde(rename = "datatype")]
    pub element_type: ElementType,
    pub shape: Vec<Dim>,
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}[", self.name, self.element_type)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The values of a tensor, flat and row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
    Bytes(Vec<String>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::Bool(v) => v.len(),
            TensorData::Int32(v) => v.len(),
            TensorData::Int64(v) => v.len(),
            TensorData::Fp32(v) => v.len(),
            TensorData::Fp64(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn element_type(&self) -> ElementType {
        match self {
            TensorData::Bool(_) => ElementType::Bool,
            TensorData::Int32(_) => ElementType::Int32,
            TensorData::Int64(_) => ElementType::Int64,
            TensorData::Fp32(_) => ElementType::Fp32,
            TensorData::Fp64(_) => ElementType::Fp64,
            TensorData::Bytes(_) => ElementType::Bytes,
        }
    }

    /// No values, of the same element type.
    pub fn empty_like(&self) -> TensorData {
        match self {
            TensorData::Bool(_) => TensorData::Bool(Vec::new()),
            TensorData::Int32(_) => TensorData::Int32(Vec::new()),
            TensorData::Int64(_) => TensorData::Int64(Vec::new()),
            TensorData::Fp32(_) => TensorData::Fp32(Vec::new()),
            TensorData::Fp64(_) => TensorData::Fp64(Vec::new()),
            TensorData::Bytes(_) => TensorData::Bytes(Vec::new()),
        }
    }

    /// Appends `other`'s values; false (and nothing appended) when its element type differs.
    pub fn extend_from(&mut self, other: &TensorData) -> bool {
        match (self, other) {
            (TensorData::Bool(a), TensorData::Bool(b)) => a.extend_from_slice(b),
            (TensorData::Int32(a), TensorData::Int32(b)) => a.extend_from_slice(b),
            (TensorData::Int64(a), TensorData::Int64(b)) => a.extend_from_slice(b),
            (TensorData::Fp32(a), TensorData::Fp32(b)) => a.extend_from_slice(b),
            (TensorData::Fp64(a), TensorData::Fp64(b)) => a.extend_from_slice(b),
            (TensorData::Bytes(a), TensorData::Bytes(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
    }

    /// Element `i` as `f64`, for numeric data; `None` for text or out of range.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        match self {
            TensorData::Bool(v) => v.get(i).map(|&b| f64::from(u8::from(b))),
            TensorData::Int32(v) => v.get(i).map(|&x| f64::from(x)),
            // Class labels and counts: exact below 2^53, which is all a model emits.
            TensorData::Int64(v) => v.get(i).map(|&x| x as f64),
            TensorData::Fp32(v) => v.get(i).map(|&x| f64::from(x)),
            TensorData::Fp64(v) => v.get(i).copied(),
            TensorData::Bytes(_) => None,
        }
    }
}

/// Data that does not fill the shape it claims.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("tensor of shape {shape:?} needs {expected} values, got {got}")]
pub struct TensorError {
    pub shape: Vec<usize>,
    pub expected: usize,
    pub got: usize,
}

/// A concrete tensor: a shape and exactly as many values as the shape holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Self, TensorError> {
        let expected = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        match expected {
            Some(expected) if expected == data.len() => Ok(Self { shape, data }),
            expected => Err(TensorError {
                shape,
                expected: expected.unwrap_or(usize::MAX),
                got: data.len(),
            }),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &TensorData {
        &self.data
    }

    pub fn element_type(&self) -> ElementType {
        self.data.element_type()
    }

    pub fn into_parts(self) -> (Vec<usize>, TensorData) {
        (self.shape, self.data)
    }

    /// Number of values per row: the product of all dimensions after the first.
    pub fn row_width(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Rows `start..end` (along the first dimension) as a new tensor; `None` when the range
    /// is out of bounds or the tensor has no rows dimension.
    pub fn slice_rows(&self, start: usize, end: usize) -> Option<Tensor> {
        let rows = *self.shape.first()?;
        if start > end || end > rows {
            return None;
        }
        let w = self.row_width();
        let (a, b) = (start * w, end * w);
        let data = match &self.data {
            TensorData::Bool(v) => TensorData::Bool(v[a..b].to_vec()),
            TensorData::Int32(v) => TensorData::Int32(v[a..b].to_vec()),
            TensorData::Int64(v) => TensorData::Int64(v[a..b].to_vec()),
            TensorData::Fp32(v) => TensorData::Fp32(v[a..b].to_vec()),
            TensorData::Fp64(v) => TensorData::Fp64(v[a..b].to_vec()),
            TensorData::Bytes(v) => TensorData::Bytes(v[a..b].to_vec()),
        };
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Some(Tensor { shape, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_checks_its_shape() {
        assert!(Tensor::new(vec![2, 2], TensorData::Fp32(vec![0.0; 4])).is_ok());
        let err = Tensor::new(vec![2, 3], TensorData::Int64(vec![1; 4])).unwrap_err();
        assert_eq!((err.expected, err.got), (6, 4));
        let overflow = Tensor::new(vec![usize::MAX, 2], TensorData::Bool(vec![]));
        assert!(overflow.is_err());
    }

    #[test]
    fn dims_round_trip_through_the_protocol_form() {
        assert_eq!(Dim::from_i64(-1), Dim::Variable);
        assert_eq!(Dim::from_i64(23), Dim::Fixed(23));
        assert_eq!(Dim::Variable.as_i64(), -1);
        let spec = TensorSpec {
            name: "input".into(),
            element_type: ElementType::Fp32,
            shape: vec![Dim::Variable, Dim::Fixed(23)],
        };
        assert_eq!(spec.to_string(), "input: FP32[-1, 23]");
    }

    #[test]
    fn slicing_rows_keeps_the_row_shape() {
        let t = Tensor::new(vec![3, 2], TensorData::Int64(vec![0, 1, 2, 3, 4, 5])).unwrap();
        let s = t.slice_rows(1, 3).unwrap();
        assert_eq!(s.shape(), &[2, 2]);
        assert_eq!(s.data(), &TensorData::Int64(vec![2, 3, 4, 5]));
        assert_eq!(t.slice_rows(3, 3).unwrap().shape(), &[0, 2]);
        assert!(t.slice_rows(2, 4).is_none());
        assert!(t.slice_rows(2, 1).is_none());
    }

    #[test]
    fn row_width_multiplies_trailing_dims() {
        let t = Tensor::new(vec![3, 2, 2], TensorData::Fp64(vec![0.0; 12])).unwrap();
        assert_eq!(t.row_width(), 4);
    }
}
