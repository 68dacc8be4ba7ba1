//! Model backends of berth.
//!
//! One batch-first [`Model`] trait — a [`FeatureMatrix`] in, named typed outputs out — and the
//! backends behind it:
//! - [`onnx`]: ONNX graphs through ONNX Runtime, loaded at run time (`load-dynamic`);
//! - [`trees`]: XGBoost JSON and LightGBM text models through berth's own flat tree evaluator.
//!
//! [`load`] detects the format from the file's content and returns a ready model; every failure
//! names the file and the problem.

pub mod error;
pub mod onnx;
pub mod trees;

use std::path::Path;

pub use berth_core::{FeatureMatrix, ModelFormat, ModelInfo, NamedTensor};
pub use error::{LoadError, PredictError};

/// A loaded model that scores batches of rows.
pub trait Model: Send + Sync {
    /// What the model takes and gives, read from the artifact.
    fn info(&self) -> &ModelInfo;

    /// Scores every row of `batch`; each output's first dimension is `batch.rows()`.
    fn predict(&self, batch: &FeatureMatrix) -> Result<Vec<NamedTensor>, PredictError>;
}

/// Options that apply when loading any model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Threads ONNX Runtime may use inside one run (its intra-op pool). Tree models use the
    /// rayon pool of the process instead.
    pub onnx_intra_threads: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            onnx_intra_threads: 1,
        }
    }
}

/// Guesses a model file's format from its first bytes (and, for ONNX, its extension).
pub fn detect_format(path: &Path, bytes: &[u8]) -> Option<ModelFormat> {
    let head = &bytes[..bytes.len().min(4096)];
    let text_start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &head[i..]);
    match text_start {
        Some(t) if t.starts_with(b"{") => return Some(ModelFormat::XgboostJson),
        Some(t) if t.starts_with(b"tree\n") || t.starts_with(b"tree\r\n") => {
            return Some(ModelFormat::LightgbmText);
        }
        _ => {}
    }
    let onnx_extension = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx") || e.eq_ignore_ascii_case("ort"));
    // A serialized ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    if onnx_extension || bytes.first() == Some(&0x08) {
        return Some(ModelFormat::Onnx);
    }
    None
}

/// Loads the model in `path`, whatever its supported format.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Box<dyn Model>, LoadError> {
    let bytes = std::fs::read(path)
        .map_err(|e| LoadError::new(path, format!("cannot read the file: {e}")))?;
    load_bytes(path, &bytes, options)
}

/// Loads a model from bytes already read; `path` names it in errors and guides detection.
pub fn load_bytes(
    path: &Path,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<Box<dyn Model>, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::new(path, "the file is empty"));
    }
    match detect_format(path, bytes) {
        Some(ModelFormat::XgboostJson) => {
            Ok(Box::new(trees::TreeModel::from_xgboost_json(path, bytes)?))
        }
        Some(ModelFormat::LightgbmText) => {
            Ok(Box::new(trees::TreeModel::from_lightgbm_text(path, bytes)?))
        }
        Some(ModelFormat::Onnx) => Ok(Box::new(onnx::OnnxModel::from_bytes(path, bytes, options)?)),
        None => Err(LoadError::new(
            path,
            "not a model file berth can read: expected an ONNX model (.onnx), an XGBoost JSON model \
             (starts with '{') or a LightGBM text model (starts with 'tree')",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_detected_by_content() {
        let p = Path::new("model.bin");
        assert_eq!(
            detect_format(p, b"  {\"learner\":{}}"),
            Some(ModelFormat::XgboostJson)
        );
        assert_eq!(
            detect_format(p, b"tree\nversion=v4\n"),
            Some(ModelFormat::LightgbmText)
        );
        assert_eq!(
            detect_format(p, &[0x08, 0x07, 0x12]),
            Some(ModelFormat::Onnx)
        );
        assert_eq!(
            detect_format(Path::new("m.onnx"), b"garbage"),
            Some(ModelFormat::Onnx)
        );
        assert_eq!(detect_format(p, b"garbage"), None);
    }

    #[test]
    fn unreadable_files_name_the_path() {
        let err = load(
            Path::new("/nonexistent/model.onnx"),
            &LoadOptions::default(),
        )
        .err()
        .expect("a missing file cannot load");
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/model.onnx"), "{msg}");
        assert!(msg.contains("cannot read"), "{msg}");
    }

    #[test]
    fn garbage_is_not_a_model() {
        let err = load_bytes(Path::new("x.bin"), b"hello world", &LoadOptions::default())
            .err()
            .expect("garbage cannot load");
        assert!(err.to_string().contains("not a model file"), "{err}");
        let err = load_bytes(Path::new("x.bin"), b"", &LoadOptions::default())
            .err()
            .expect("empty cannot load");
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
