//! The binary tensor extension of the Open Inference Protocol, which tritonclient uses by
//! default: the body is a JSON header of `Inference-Header-Content-Length` bytes followed by the
//! raw tensors, little-endian, in input order, each input saying its size in
//! `parameters.binary_data_size`. `BYTES` elements are a 4-byte little-endian length and the
//! bytes. Answers use the same layout for the outputs asked for in binary.

use berth_core::TensorData;
use serde_json::Value;

/// The header that carries the JSON part's length.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn fixed<const N: usize>(
    bytes: &[u8],
    datatype: &str,
    f: impl Fn([u8; N]) -> Value,
) -> Result<Vec<Value>, String> {
    if !bytes.len().is_multiple_of(N) {
        return Err(format!(
            "{} bytes is not a whole number of {datatype} values ({N} bytes each)",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect())
}

/// The values of a raw tensor of `datatype`, as JSON (NaN as null).
pub fn decode(datatype: &str, bytes: &[u8]) -> Result<Vec<Value>, String> {
    match datatype {
        "FP32" => fixed::<4>(bytes, datatype, |b| {
            number(f64::from(f32::from_le_bytes(b)))
        }),
        "FP64" => fixed::<8>(bytes, datatype, |b| number(f64::from_le_bytes(b))),
        "INT8" => fixed::<1>(bytes, datatype, |b| Value::from(i8::from_le_bytes(b))),
        "INT16" => fixed::<2>(bytes, datatype, |b| Value::from(i16::from_le_bytes(b))),
        "INT32" => fixed::<4>(bytes, datatype, |b| Value::from(i32::from_le_bytes(b))),
        "INT64" => fixed::<8>(bytes, datatype, |b| Value::from(i64::from_le_bytes(b))),
        "UINT8" => fixed::<1>(bytes, datatype, |b| Value::from(b[0])),
        "UINT16" => fixed::<2>(bytes, datatype, |b| Value::from(u16::from_le_bytes(b))),
        "UINT32" => fixed::<4>(bytes, datatype, |b| Value::from(u32::from_le_bytes(b))),
        "UINT64" => fixed::<8>(bytes, datatype, |b| Value::from(u64::from_le_bytes(b))),
        "BOOL" => fixed::<1>(bytes, datatype, |b| Value::Bool(b[0] != 0)),
        "BYTES" => {
            let mut values = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                let (len, tail) = rest
                    .split_at_checked(4)
                    .ok_or("a BYTES element is cut short in its length")?;
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let (text, tail) = tail
                    .split_at_checked(len)
                    .ok_or("a BYTES element is shorter than its length says")?;
                let text =
                    std::str::from_utf8(text).map_err(|_| "a BYTES element is not UTF-8 text")?;
                values.push(Value::String(text.to_string()));
                rest = tail;
            }
            Ok(values)
        }
        other => Err(format!("datatype {other} is not supported in binary form")),
    }
}

/// A tensor's values raw, little-endian.
pub fn encode(data: &TensorData) -> Vec<u8> {
    match data {
        TensorData::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        TensorData::Int32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Int64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Fp32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Fp64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Bytes(v) => v
            .iter()
            .flat_map(|s| (s.len() as u32).to_le_bytes().into_iter().chain(s.bytes()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips() {
        let f = TensorData::Fp32(vec![1.5, -2.0, f32::NAN]);
        assert_eq!(
            decode("FP32", &encode(&f)).unwrap(),
            vec![json!(1.5), json!(-2.0), Value::Null]
        );
        let i = TensorData::Int64(vec![7, -1]);
        assert_eq!(
            decode("INT64", &encode(&i)).unwrap(),
            vec![json!(7), json!(-1)]
        );
        let b = TensorData::Bytes(vec!["basic".into(), String::new(), "é".into()]);
        assert_eq!(
            decode("BYTES", &encode(&b)).unwrap(),
            vec![json!("basic"), json!(""), json!("é")]
        );
        assert_eq!(
            decode("BOOL", &[1, 0]).unwrap(),
            vec![json!(true), json!(false)]
        );
    }

    #[test]
    fn damaged_data_is_an_error() {
        assert!(
            decode("FP32", &[0, 0, 0])
                .unwrap_err()
                .contains("whole number of FP32")
        );
        assert!(
            decode("BYTES", &[9, 0, 0, 0, b'a'])
                .unwrap_err()
                .contains("shorter than its length")
        );
        assert!(decode("BYTES", &[1, 0]).unwrap_err().contains("cut short"));
        assert!(decode("FP16", &[0, 0]).unwrap_err().contains("FP16"));
    }
}
