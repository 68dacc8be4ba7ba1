//! Batch scoring of berth: tabular files in, predictions out.
//!
//! A [`berth_tables::TableReader`] streams a CSV, JSON-lines or Parquet file in chunks of rows, mapping
//! its columns onto the model's features by name; [`score::score_file`] runs each chunk through a
//! [`berth_runtime::Model`] and a [`sink::TableWriter`] writes the predictions, so memory stays
//! bounded by the chunk size whatever the file size.

pub mod error;
pub mod job;
pub mod schedule;
pub mod score;
pub mod sink;

pub use error::BatchError;
pub use job::{
    ScoredChunk, ScoringVersion, Shard, count_rows, input_files, is_data, matches, score_files,
    shard_of,
};
pub use schedule::{BadRows, Schedule, ScoreJob};
pub use score::{OnError, ScoreOptions, ScoreSummary, score_file};
