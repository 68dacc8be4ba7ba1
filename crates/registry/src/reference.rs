//! The profiles a version keeps of its reference data: the data's own columns, and the model's
//! outputs on it (scored at registration), the baselines input drift and prediction drift are
//! measured against.

use std::path::Path;

use berth_core::Signature;
use berth_features::Pipeline;
use berth_monitor::{DriftConfig, ReferenceProfile};
use berth_runtime::Model;
use berth_tables::{Features, TableReader};
use bytes::Bytes;
use serde_json::Value;

use crate::RegistryError;

/// Rows scored at once when profiling the outputs.
const CHUNK_ROWS: usize = 8192;

/// The reference profiles of a version, as stored (JSON).
pub(crate) struct ReferenceProfiles {
    pub inputs: Value,
    /// `None` when the model could not score the data as it is (logged).
    pub outputs: Option<Value>,
    /// The names of the profiled columns, inputs then outputs.
    pub columns: Vec<String>,
}

/// Profiles reference data (`name` says Parquet or CSV) and `model`'s predictions on it. A
/// version with a feature spec (`features`) scores the raw data through it; otherwise the
/// outputs are profiled only when the data holds every input of `signature` as the model takes
/// it (numbers; categories as codes): raw training data with categories as text still gets its
/// input profile, and the reason its outputs are not profiled is logged.
pub(crate) fn profile_reference(
    name: &str,
    bytes: &Bytes,
    model: &dyn Model,
    signature: &Signature,
    features: Option<&Pipeline>,
) -> Result<ReferenceProfiles, RegistryError> {
    let invalid = |e: String| RegistryError::Invalid(format!("reference data {name}: {e}"));
    let extension = if name.to_ascii_lowercase().ends_with(".csv") {
        ".csv"
    } else {
        ".parquet"
    };
    // The readers want a file (Parquet is read column by column, by seeking).
    let mut file = tempfile::Builder::new()
        .suffix(extension)
        .tempfile()
        .map_err(|e| invalid(format!("cannot stage it: {e}")))?;
    std::io::Write::write_all(&mut file, bytes)
        .map_err(|e| invalid(format!("cannot stage it: {e}")))?;
    let inputs = ReferenceProfile::from_file(file.path()).map_err(|e| invalid(e.to_string()))?;
    let outputs = match features {
        Some(pipeline) => profile_outputs_through(file.path(), model, pipeline),
        None => profile_outputs(file.path(), model, signature),
    };
    let outputs = match outputs {
        Ok(outputs) => Some(outputs),
        Err(e) => {
            tracing::warn!(
                "reference data {name}: the model cannot score it as it is ({e}); its outputs are \
                 not profiled, so this version has no prediction drift"
            );
            None
        }
    };
    let json = |p: &ReferenceProfile| serde_json::to_value(p).map_err(|e| invalid(e.to_string()));
    let columns = inputs
        .columns
        .iter()
        .chain(outputs.iter().flat_map(|o| &o.columns))
        .map(|c| c.name.clone())
        .collect();
    Ok(ReferenceProfiles {
        inputs: json(&inputs)?,
        outputs: outputs.as_ref().map(json).transpose()?,
        columns,
    })
}

fn profile_outputs(
    path: &Path,
    model: &dyn Model,
    signature: &Signature,
) -> Result<ReferenceProfile, String> {
    let names: Vec<String> = signature.inputs.iter().map(|f| f.name.clone()).collect();
    let features = Features {
        names: Some(&names),
        count: names.len(),
        id_column: "",
    };
    let mut reader =
        TableReader::open(path, &features, CHUNK_ROWS).map_err(|e| strip(e.to_string(), path))?;
    let mut batches = Vec::new();
    while let Some(chunk) = reader
        .next_chunk()
        .map_err(|e| strip(e.to_string(), path))?
    {
        batches.push(model.predict(&chunk.features).map_err(|e| e.to_string())?);
    }
    if batches.is_empty() {
        return Err("it has no rows".into());
    }
    Ok(ReferenceProfile::from_outputs(&batches))
}

/// The outputs of `model` on raw data turned into its columns by `pipeline`.
fn profile_outputs_through(
    path: &Path,
    model: &dyn Model,
    pipeline: &Pipeline,
) -> Result<ReferenceProfile, String> {
    let mut batches = Vec::new();
    for batch in
        berth_tables::record_batches(path, CHUNK_ROWS).map_err(|e| strip(e.to_string(), path))?
    {
        let batch = batch.map_err(|e| strip(e.to_string(), path))?;
        let matrix = pipeline.apply(&batch).map_err(|e| e.to_string())?;
        batches.push(model.predict(&matrix).map_err(|e| e.to_string())?);
    }
    if batches.is_empty() {
        return Err("it has no rows".into());
    }
    Ok(ReferenceProfile::from_outputs(&batches))
}

/// A reader's message without the staging file's temporary path (the caller names the data).
fn strip(message: String, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message
        .strip_prefix(&prefix)
        .map_or(message.clone(), str::to_string)
}

/// Drift settings name only columns that are profiled, and need reference data to apply to.
pub(crate) fn check_drift_columns(
    drift: &DriftConfig,
    profiles: Option<&ReferenceProfiles>,
) -> Result<(), RegistryError> {
    let Some(profiles) = profiles else {
        return Err(RegistryError::Invalid(
            "drift settings are given without reference data to compare with (--reference, or \
             reference_base64 in the API)"
                .into(),
        ));
    };
    let unknown: Vec<&str> = drift
        .columns
        .keys()
        .filter(|name| !profiles.columns.contains(name))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let known: Vec<&str> = profiles
        .columns
        .iter()
        .take(30)
        .map(String::as_str)
        .collect();
    Err(RegistryError::Invalid(format!(
        "drift settings: columns: expected columns of the reference data or outputs ({}{}), got {}",
        known.join(", "),
        if profiles.columns.len() > known.len() {
            ", ..."
        } else {
            ""
        },
        unknown.join(", ")
    )))
}
