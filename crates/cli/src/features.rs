//! `berth features fit` and `berth features apply`: fit a feature spec on Parquet or CSV data,
//! and turn such data into the model's training matrix with the fitted spec (the same compiled
//! pipeline that serving and batch scoring run).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arrow_array::{ArrayRef, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use berth_features::{FeatureSpec, Pipeline};
use clap::Subcommand;
use parquet::arrow::ArrowWriter;

use crate::UsageError;

/// Rows read from the data at once.
const BATCH_ROWS: usize = 8192;

#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Compute the parameters a spec leaves open (means, vocabularies, quantile edges, ...).
    Fit {
        /// The feature spec (YAML).
        spec: PathBuf,
        /// Training data (.parquet or .csv).
        data: PathBuf,
        /// Where to write the fitted spec (YAML).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Turn data into the model's columns with a fitted spec.
    Apply {
        /// The fitted feature spec (YAML).
        fitted: PathBuf,
        /// Data (.parquet or .csv).
        data: PathBuf,
        /// Where to write the matrix: .parquet (float32 columns) or .csv.
        #[arg(long, short)]
        output: PathBuf,
        /// Column carried from the data to the output, when present.
        #[arg(long, default_value = "id")]
        id_column: String,
    },
}

fn read_spec(path: &Path) -> Result<FeatureSpec, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "cannot read the feature spec {}: {e}",
            path.display()
        ))
    })?;
    FeatureSpec::from_yaml(&text)
        .map_err(|e| UsageError(format!("{}: not a feature spec: {e}", path.display())))
}

/// The batches of a Parquet or CSV file.
fn batches(path: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<RecordBatch>>> {
    let batches = berth_tables::record_batches(path, BATCH_ROWS)?;
    Ok(batches.map(|b| b.map_err(anyhow::Error::from)))
}

pub fn run(command: FeaturesCommand) -> anyhow::Result<()> {
    match command {
        FeaturesCommand::Fit { spec, data, output } => {
            let started = Instant::now();
            let spec = read_spec(&spec)?;
            let all: Vec<RecordBatch> = batches(&data)?.collect::<Result<_, _>>()?;
            let rows: usize = all.iter().map(RecordBatch::num_rows).sum();
            let fitted = berth_features::fit(&spec, &all)
                .map_err(|e| UsageError(format!("fitting on {}: {e}", data.display())))?;
            let text = fitted.to_yaml().context("writing the fitted spec")?;
            std::fs::write(&output, text)
                .with_context(|| format!("writing {}", output.display()))?;
            eprintln!(
                "fitted {} fields on {rows} rows in {:.2} s -> {}",
                fitted.fields.len(),
                started.elapsed().as_secs_f64(),
                output.display()
            );
        }
        FeaturesCommand::Apply {
            fitted,
            data,
            output,
            id_column,
        } => {
            let started = Instant::now();
            let pipeline = Pipeline::compile(&read_spec(&fitted)?)
                .map_err(|e| UsageError(format!("{}: {e}", fitted.display())))?;
            let mut sink = Sink::create(&output, &pipeline, &id_column)?;
            let mut rows = 0;
            for batch in batches(&data)? {
                let batch = batch?;
                let applied = pipeline
                    .apply_skipping(&batch)
                    .map_err(|e| UsageError(format!("{}: {e}", data.display())))?;
                if let Some(bad) = applied.bad.first() {
                    return Err(UsageError(format!(
                        "{}: row {}, field {}: expected {}, got {:?}",
                        data.display(),
                        rows + bad.row + 1,
                        bad.field,
                        bad.expected,
                        bad.got
                    ))
                    .into());
                }
                rows += applied.matrix.rows();
                sink.write(&batch, &applied.matrix)?;
            }
            sink.finish()?;
            eprintln!(
                "applied {} to {rows} rows ({} columns) in {:.2} s -> {}",
                fitted.display(),
                pipeline.output_names().len(),
                started.elapsed().as_secs_f64(),
                output.display()
            );
        }
    }
    Ok(())
}

/// Where the matrix goes: Parquet (an id column when the data has one, then float32 columns)
/// or CSV (the same columns, header first).
enum Sink {
    Parquet {
        writer: Box<ArrowWriter<File>>,
        schema: Arc<Schema>,
        id_column: String,
    },
    Csv {
        out: BufWriter<File>,
        id_column: String,
        header: Vec<String>,
        started: bool,
    },
}

impl Sink {
    fn create(path: &Path, pipeline: &Pipeline, id_column: &str) -> anyhow::Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => {
                let mut fields = vec![Field::new(id_column, DataType::Utf8, true)];
                fields.extend(
                    pipeline
                        .output_names()
                        .iter()
                        .map(|n| Field::new(n, DataType::Float32, false)),
                );
                let schema = Arc::new(Schema::new(fields));
                let writer = ArrowWriter::try_new(file, schema.clone(), None)
                    .map(Box::new)
                    .context("starting the Parquet output")?;
                Ok(Sink::Parquet {
                    writer,
                    schema,
                    id_column: id_column.to_string(),
                })
            }
            Some("csv") => Ok(Sink::Csv {
                out: BufWriter::new(file),
                id_column: id_column.to_string(),
                header: pipeline.output_names().to_vec(),
                started: false,
            }),
            _ => Err(UsageError(format!(
                "{}: expected a .parquet or .csv output",
                path.display()
            ))
            .into()),
        }
    }

    fn write(
        &mut self,
        batch: &RecordBatch,
        matrix: &berth_core::FeatureMatrix,
    ) -> anyhow::Result<()> {
        match self {
            Sink::Parquet {
                writer,
                schema,
                id_column,
            } => {
                let ids: ArrayRef = match berth_tables::id_texts(batch, id_column) {
                    Some(ids) => Arc::new(arrow_array::StringArray::from(ids)),
                    None => Arc::new(arrow_array::StringArray::new_null(matrix.rows())),
                };
                let mut columns = vec![ids];
                for c in 0..matrix.cols() {
                    let values: Float32Array = matrix.iter_rows().map(|row| row[c]).collect();
                    columns.push(Arc::new(values));
                }
                let out = RecordBatch::try_new(schema.clone(), columns)
                    .context("building the output batch")?;
                writer.write(&out).context("writing Parquet")?;
            }
            Sink::Csv {
                out,
                id_column,
                header,
                started,
            } => {
                let ids = berth_tables::id_texts(batch, id_column);
                if !*started {
                    if ids.is_some() {
                        write!(out, "{id_column},")?;
                    }
                    writeln!(out, "{}", header.join(","))?;
                    *started = true;
                }
                for (r, row) in matrix.iter_rows().enumerate() {
                    if let Some(ids) = &ids {
                        write!(out, "{},", ids[r])?;
                    }
                    let cells: Vec<String> = row.iter().map(|x| x.to_string()).collect();
                    writeln!(out, "{}", cells.join(","))?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Parquet { writer, .. } => {
                writer.close().context("finishing the Parquet output")?;
            }
            Sink::Csv { mut out, .. } => out.flush()?,
        }
        Ok(())
    }
}
