//! ONNX models through ONNX Runtime, loaded at run time.
//!
//! The `ort` crate is built with `load-dynamic`: no ONNX Runtime binary is downloaded at build
//! time. The shared library is found when the first ONNX model loads, in this order:
//! `ORT_DYLIB_PATH`; the `onnxruntime` Python package of the active virtualenv (`VIRTUAL_ENV`),
//! of a `.venv` in the current folder or above it, or of `python3` on the `PATH`
//! (`onnxruntime/capi/libonnxruntime.so*`); else loading fails with how to get it.
//!
//! A model's numeric graph inputs are fed from the columns of the feature matrix, in input
//! order (one `[N, k]` input, or several `[N, 1]` ones). Outputs are classified by role:
//! integer or string vectors are labels; `probabilities`-like float matrices and scikit-learn's
//! ZipMap (`seq(map(label, float))`) are probabilities, turned into a dense `[N, classes]` matrix;
//! other float tensors are scores.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use berth_core::{
    Dim, ElementType, FeatureMatrix, ModelFormat, ModelInfo, NamedTensor, OutputRole, OutputSpec,
    Task, Tensor, TensorData, TensorSpec,
};
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynMapValueType, DynValue, TensorElementType, TensorRef, ValueType};

use crate::{LoadError, LoadOptions, Model, PredictError};

/// Metadata key under which berth looks for comma-separated feature names.
pub const FEATURE_NAMES_KEY: &str = "feature_names";

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Where the ONNX Runtime library is, per the search order in the module doc.
pub fn find_library() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "ORT_DYLIB_PATH points to {}, which is not a file",
                p.display()
            ))
        };
    }
    let mut site_roots: Vec<PathBuf> = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        site_roots.push(PathBuf::from(venv));
    }
    if let Ok(cwd) = std::env::current_dir() {
        site_roots.extend(cwd.ancestors().map(|a| a.join(".venv")));
    }
    for root in &site_roots {
        if let Some(lib) = library_in_venv(root) {
            return Ok(lib);
        }
    }
    if let Some(lib) = library_from_python() {
        return Ok(lib);
    }
    Err(
        "ONNX Runtime was not found. Install it with `pip install onnxruntime==1.31.1` (in the \
         active virtualenv or ./.venv), or set ORT_DYLIB_PATH to the path of libonnxruntime.so"
            .into(),
    )
}

fn library_in_capi(capi: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(capi)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libonnxruntime.so")
                    || n == "libonnxruntime.dylib"
                    || n == "onnxruntime.dll"
            })
        })
        .collect();
    // Prefer the most specific name (libonnxruntime.so.1.31.1 over a bare symlink).
    candidates.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    candidates.into_iter().next()
}

fn library_in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    for entry in std::fs::read_dir(lib).ok()?.filter_map(Result::ok) {
        let capi = entry.path().join("site-packages/onnxruntime/capi");
        if let Some(found) = library_in_capi(&capi) {
            return Some(found);
        }
    }
    None
}

fn library_from_python() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    library_in_capi(&Path::new(dir.trim()).join("capi"))
}

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<&'static Environment, String> {
    ENVIRONMENT
        .get_or_init(|| {
            let lib = find_library()?;
            tracing::debug!(library = %lib.display(), "loading ONNX Runtime");
            let builder = ort::init_from(&lib)
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.display()))?;
            builder
                .with_name("berth")
                .with_telemetry(false)
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", lib.display()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// How one graph input is fed from the feature matrix.
#[derive(Debug, Clone)]
struct InputBinding {
    name: String,
    element_type: InputType,
    /// First feature column and number of columns this input takes.
    first_column: usize,
    width: usize,
    /// Whether the graph wants `[N]` instead of `[N, width]`.
    rank1: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputType {
    F32,
    F64,
    I64,
    I32,
}

/// How one graph output becomes a [`NamedTensor`].
#[derive(Debug, Clone)]
struct OutputBinding {
    name: String,
    role: OutputRole,
    /// scikit-learn's ZipMap: a sequence of maps, turned into a dense probability matrix.
    zipmap: Option<TensorElementType>,
}

/// An ONNX model: a small pool of sessions (ONNX Runtime runs are not re-entrant per session).
pub struct OnnxModel {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    inputs: Vec<InputBinding>,
    outputs: Vec<OutputBinding>,
    info: ModelInfo,
}

fn element_type(t: TensorElementType) -> Option<ElementType> {
    Some(match t {
        TensorElementType::Float32 => ElementType::Fp32,
        TensorElementType::Float64 => ElementType::Fp64,
        TensorElementType::Float16 => ElementType::Fp16,
        TensorElementType::Bfloat16 => ElementType::Bf16,
        TensorElementType::Int8 => ElementType::Int8,
        TensorElementType::Int16 => ElementType::Int16,
        TensorElementType::Int32 => ElementType::Int32,
        TensorElementType::Int64 => ElementType::Int64,
        TensorElementType::Uint8 => ElementType::Uint8,
        TensorElementType::Uint16 => ElementType::Uint16,
        TensorElementType::Uint32 => ElementType::Uint32,
        TensorElementType::Uint64 => ElementType::Uint64,
        TensorElementType::Bool => ElementType::Bool,
        TensorElementType::String => ElementType::Bytes,
        _ => return None,
    })
}

fn dims(shape: &[i64]) -> Vec<Dim> {
    shape.iter().map(|&d| Dim::from_i64(d)).collect()
}

impl OnnxModel {
    /// Loads an ONNX model from its bytes; `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8], options: &LoadOptions) -> Result<Self, LoadError> {
        let env = environment().map_err(|e| LoadError::new(path, e))?;
        let sessions = (0..1)
            .map(|_| new_session(env, bytes, options).map(Mutex::new))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| LoadError::new(path, e))?;
        let (inputs, outputs, info) = {
            let session = sessions[0]
                .lock()
                .map_err(|_| LoadError::new(path, "session lock poisoned"))?;
            describe(&session).map_err(|e| LoadError::new(path, e))?
        };
        let mut model = Self {
            sessions,
            next: AtomicUsize::new(0),
            inputs,
            outputs,
            info,
        };
        if model.info.task == (Task::Classification { classes: 0 }) {
            model
                .learn_class_count()
                .map_err(|e| LoadError::new(path, e))?;
        }
        Ok(model)
    }

    /// ZipMap outputs do not declare how many classes there are: score one row of zeros once
    /// and read it off the probabilities.
    fn learn_class_count(&mut self) -> Result<(), String> {
        let probe =
            FeatureMatrix::new(1, self.info.num_features, vec![0.0; self.info.num_features])
                .map_err(|e| e.to_string())?;
        let outputs = self
            .predict(&probe)
            .map_err(|e| format!("a trial run to learn the class count failed: {e}"))?;
        let classes = outputs
            .iter()
            .find(|o| o.role == OutputRole::Probabilities)
            .map(|o| o.tensor.row_width())
            .ok_or("a trial run gave no probabilities")?;
        self.info.task = Task::Classification { classes };
        for spec in &mut self.info.outputs {
            if spec.role == OutputRole::Probabilities {
                spec.tensor.shape = vec![Dim::Variable, Dim::Fixed(classes)];
            }
        }
        Ok(())
    }
}

fn new_session(env: &Environment, bytes: &[u8], options: &LoadOptions) -> Result<Session, String> {
    let builder = Session::builder(env).map_err(|e| e.to_string())?;
    let mut builder = builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| e.to_string())?
        .with_intra_threads(options.onnx_intra_threads.max(1))
        .map_err(|e| e.to_string())?
        .with_inter_threads(1)
        .map_err(|e| e.to_string())?;
    builder
        .commit_from_memory(bytes)
        .map_err(|e| format!("ONNX Runtime cannot load it: {e}"))
}

/// Reads the graph's inputs and outputs and decides how to bind them.
fn describe(
    session: &Session,
) -> Result<(Vec<InputBinding>, Vec<OutputBinding>, ModelInfo), String> {
    let mut inputs = Vec::new();
    let mut input_specs = Vec::new();
    let mut column = 0;
    for input in session.inputs() {
        let ValueType::Tensor { ty, shape, .. } = input.dtype() else {
            return Err(format!(
                "input '{}' is a {}, but berth feeds tensors only",
                input.name(),
                input.dtype()
            ));
        };
        let element_type = match ty {
            TensorElementType::Float32 => InputType::F32,
            TensorElementType::Float64 => InputType::F64,
            TensorElementType::Int64 => InputType::I64,
            TensorElementType::Int32 => InputType::I32,
            other => {
                return Err(format!(
                    "input '{}' has element type {other}; berth feeds numeric feature columns \
                     (float, double, int32, int64) only",
                    input.name()
                ));
            }
        };
        let (width, rank1) = match shape.len() {
            1 => (1, true),
            2 if shape[1] > 0 => (shape[1] as usize, false),
            2 => {
                return Err(format!(
                    "input '{}' has a variable number of columns ({:?}); berth needs a fixed width",
                    input.name(),
                    &shape[..]
                ));
            }
            _ => {
                return Err(format!(
                    "input '{}' has rank {} ({:?}); berth feeds [rows] or [rows, columns] inputs",
                    input.name(),
                    shape.len(),
                    &shape[..]
                ));
            }
        };
        input_specs.push(TensorSpec {
            name: input.name().to_string(),
            element_type: element_type_of(element_type),
            shape: dims(shape),
        });
        inputs.push(InputBinding {
            name: input.name().to_string(),
            element_type,
            first_column: column,
            width,
            rank1,
        });
        column += width;
    }
    if inputs.is_empty() {
        return Err("the graph has no inputs".into());
    }
    let num_features = column;

    let mut outputs = Vec::new();
    let mut output_specs = Vec::new();
    for output in session.outputs() {
        let name = output.name().to_string();
        let lower = name.to_ascii_lowercase();
        let (binding, spec) = match output.dtype() {
            ValueType::Tensor { ty, shape, .. } => {
                let et = element_type(*ty)
                    .ok_or_else(|| format!("output '{name}' has unsupported element type {ty}"))?;
                let role = match et {
                    ElementType::Int64 | ElementType::Int32 | ElementType::Bytes
                        if shape.len() <= 1 || lower.contains("label") =>
                    {
                        OutputRole::Label
                    }
                    ElementType::Fp32 | ElementType::Fp64 if lower.contains("prob") => {
                        OutputRole::Probabilities
                    }
                    ElementType::Fp32 | ElementType::Fp64 => OutputRole::Score,
                    _ => OutputRole::Other,
                };
                (
                    OutputBinding {
                        name: name.clone(),
                        role,
                        zipmap: None,
                    },
                    TensorSpec {
                        name,
                        element_type: et,
                        shape: dims(shape),
                    },
                )
            }
            ValueType::Sequence(inner) => match inner.as_ref() {
                ValueType::Map {
                    key,
                    value: TensorElementType::Float32,
                } if matches!(key, TensorElementType::Int64 | TensorElementType::String) => (
                    OutputBinding {
                        name: name.clone(),
                        role: OutputRole::Probabilities,
                        zipmap: Some(*key),
                    },
                    TensorSpec {
                        name,
                        element_type: ElementType::Fp32,
                        shape: vec![Dim::Variable, Dim::Variable],
                    },
                ),
                other => {
                    return Err(format!(
                        "output '{name}' is a sequence of {other}, which berth cannot read"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "output '{name}' is a {other}, which berth cannot read"
                ));
            }
        };
        output_specs.push(OutputSpec {
            tensor: spec,
            role: binding.role,
        });
        outputs.push(binding);
    }

    let has = |role| outputs.iter().any(|o| o.role == role);
    let task = if has(OutputRole::Label) && has(OutputRole::Probabilities) {
        let classes = output_specs
            .iter()
            .find(|o| o.role == OutputRole::Probabilities)
            .and_then(|o| match o.tensor.shape.get(1) {
                Some(Dim::Fixed(n)) => Some(*n),
                _ => None,
            });
        match classes {
            Some(classes) => Task::Classification { classes },
            // ZipMap does not declare the class count: known after the first run.
            None => Task::Classification { classes: 0 },
        }
    } else if let Some(score) = output_specs.iter().find(|o| o.role == OutputRole::Score) {
        let targets = match score.tensor.shape.get(1) {
            Some(Dim::Fixed(n)) => *n,
            _ => 1,
        };
        Task::Regression { targets }
    } else {
        Task::Other
    };

    let metadata_names = session
        .metadata()
        .ok()
        .and_then(|m| m.custom(FEATURE_NAMES_KEY))
        .map(|names| {
            names
                .split(',')
                .map(|n| n.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|names| names.len() == num_features);
    let feature_names = metadata_names.or_else(|| {
        inputs
            .iter()
            .all(|i| i.width == 1)
            .then(|| inputs.iter().map(|i| i.name.clone()).collect())
            .filter(|_: &Vec<String>| inputs.len() > 1)
    });

    let info = ModelInfo {
        format: ModelFormat::Onnx,
        task,
        num_features,
        feature_names,
        inputs: input_specs,
        outputs: output_specs,
    };
    Ok((inputs, outputs, info))
}

fn element_type_of(t: InputType) -> ElementType {
    match t {
        InputType::F32 => ElementType::Fp32,
        InputType::F64 => ElementType::Fp64,
        InputType::I64 => ElementType::Int64,
        InputType::I32 => ElementType::Int32,
    }
}

/// The columns `first..first + width` of every row, row-major.
fn columns(batch: &FeatureMatrix, first: usize, width: usize) -> Vec<f32> {
    if first == 0 && width == batch.cols() {
        return batch.values().to_vec();
    }
    let mut out = Vec::with_capacity(batch.rows() * width);
    for row in batch.iter_rows() {
        out.extend_from_slice(&row[first..first + width]);
    }
    out
}

fn to_integers<T: TryFrom<i64>>(input: &str, values: &[f32]) -> Result<Vec<T>, PredictError> {
    values
        .iter()
        .map(|&v| {
            if v.is_finite() && v.fract() == 0.0 {
                T::try_from(v as i64).ok()
            } else {
                None
            }
            .ok_or_else(|| PredictError::BadInput {
                input: input.to_string(),
                problem: format!("expected integers, got {v}"),
            })
        })
        .collect()
}

fn backend(e: impl std::fmt::Display) -> PredictError {
    PredictError::Backend(e.to_string())
}

fn tensor(shape: &[i64], data: TensorData) -> Result<Tensor, PredictError> {
    let shape = shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    Tensor::new(shape, data).map_err(backend)
}

/// Reads one output value into a tensor.
fn read_output(
    binding: &OutputBinding,
    value: &DynValue,
    rows: usize,
) -> Result<Tensor, PredictError> {
    if let Some(key) = binding.zipmap {
        return read_zipmap(value, key, rows);
    }
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err(backend(format!(
            "output '{}' is not a tensor",
            binding.name
        )));
    };
    match ty {
        TensorElementType::Float32 => {
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(backend)?;
            tensor(shape, TensorData::Fp32(data.to_vec()))
        }
        TensorElementType::Float64 => {
            let (shape, data) = value.try_extract_tensor::<f64>().map_err(backend)?;
            tensor(shape, TensorData::Fp64(data.to_vec()))
        }
        TensorElementType::Int64 => {
            let (shape, data) = value.try_extract_tensor::<i64>().map_err(backend)?;
            tensor(shape, TensorData::Int64(data.to_vec()))
        }
        TensorElementType::Int32 => {
            let (shape, data) = value.try_extract_tensor::<i32>().map_err(backend)?;
            tensor(shape, TensorData::Int32(data.to_vec()))
        }
        TensorElementType::Bool => {
            let (shape, data) = value.try_extract_tensor::<bool>().map_err(backend)?;
            tensor(shape, TensorData::Bool(data.to_vec()))
        }
        TensorElementType::String => {
            let (shape, data) = value.try_extract_strings().map_err(backend)?;
            tensor(shape, TensorData::Bytes(data))
        }
        other => Err(backend(format!(
            "output '{}' has element type {other}, which berth cannot read",
            binding.name
        ))),
    }
}

/// scikit-learn's ZipMap: one `{class: probability}` map per row, as a dense `[rows, classes]`
/// matrix with classes in ascending order (scikit-learn's `classes_` order).
fn read_zipmap(
    value: &DynValue,
    key: TensorElementType,
    rows: usize,
) -> Result<Tensor, PredictError> {
    let maps = value
        .try_extract_sequence::<DynMapValueType>()
        .map_err(backend)?;
    if maps.len() != rows {
        return Err(backend(format!(
            "ZipMap output has {} rows for {rows} inputs",
            maps.len()
        )));
    }
    let mut data = Vec::new();
    let mut classes = 0;
    for map in &maps {
        let row: Vec<f32> = match key {
            TensorElementType::Int64 => {
                let mut entries: Vec<(i64, f32)> = map
                    .try_extract_map::<i64, f32>()
                    .map_err(backend)?
                    .into_iter()
                    .collect();
                entries.sort_by_key(|(k, _)| *k);
                entries.into_iter().map(|(_, p)| p).collect()
            }
            _ => {
                let mut entries: Vec<(String, f32)> = map
                    .try_extract_map::<String, f32>()
                    .map_err(backend)?
                    .into_iter()
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                entries.into_iter().map(|(_, p)| p).collect()
            }
        };
        if classes == 0 {
            classes = row.len();
        } else if row.len() != classes {
            return Err(backend("ZipMap rows have different numbers of classes"));
        }
        data.extend(row);
    }
    Tensor::new(vec![rows, classes], TensorData::Fp32(data)).map_err(backend)
}

impl Model for OnnxModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict(&self, batch: &FeatureMatrix) -> Result<Vec<NamedTensor>, PredictError> {
        if batch.cols() != self.info.num_features {
            return Err(PredictError::FeatureCount {
                expected: self.info.num_features,
                got: batch.cols(),
            });
        }
        let rows = batch.rows();
        // Owned buffers for each input; the session borrows them for the run.
        enum Buffer {
            F32(Vec<f32>),
            F64(Vec<f64>),
            I64(Vec<i64>),
            I32(Vec<i32>),
        }
        let mut buffers = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            let cols = columns(batch, input.first_column, input.width);
            buffers.push(match input.element_type {
                InputType::F32 => Buffer::F32(cols),
                InputType::F64 => Buffer::F64(cols.iter().map(|&v| f64::from(v)).collect()),
                InputType::I64 => Buffer::I64(to_integers(&input.name, &cols)?),
                InputType::I32 => Buffer::I32(to_integers(&input.name, &cols)?),
            });
        }
        let mut values: Vec<(String, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(self.inputs.len());
        for (input, buffer) in self.inputs.iter().zip(&buffers) {
            let shape: Vec<i64> = if input.rank1 {
                vec![rows as i64]
            } else {
                vec![rows as i64, input.width as i64]
            };
            let value: ort::session::SessionInputValue<'_> = match buffer {
                Buffer::F32(v) => TensorRef::from_array_view((shape, v.as_slice()))
                    .map_err(backend)?
                    .into(),
                Buffer::F64(v) => TensorRef::from_array_view((shape, v.as_slice()))
                    .map_err(backend)?
                    .into(),
                Buffer::I64(v) => TensorRef::from_array_view((shape, v.as_slice()))
                    .map_err(backend)?
                    .into(),
                Buffer::I32(v) => TensorRef::from_array_view((shape, v.as_slice()))
                    .map_err(backend)?
                    .into(),
            };
            values.push((input.name.clone(), value));
        }
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        let mut session = self.sessions[slot]
            .lock()
            .map_err(|_| backend("an earlier run panicked inside ONNX Runtime"))?;
        let outputs = session.run(values).map_err(backend)?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for binding in &self.outputs {
            let value = outputs.get(&binding.name).ok_or_else(|| {
                backend(format!("output '{}' missing from the run", binding.name))
            })?;
            result.push(NamedTensor {
                name: binding.name.clone(),
                role: binding.role,
                tensor: read_output(binding, value, rows)?,
            });
        }
        Ok(result)
    }
}
