//! `batch`: many inputs through one engine. Every input is one job (the same
//! [`JobSpec`](crate::job::JobSpec) template, its input changed) started on the
//! one [`Resources`](crate::job::Resources) of the process, `jobs` at a time, so
//! that the whole batch stays inside one pool budget and loads each model once.
//!
//! Around the jobs: the inputs expanded and canonicalised ([`inputs`]), this
//! worker's share of them ([`shard`]: `K/N` from a flag or the scheduler's
//! environment), the output folder ([`layout`]: each output written under a
//! temporary name and renamed when whole, the summary last, a manifest line per
//! finished input), and the run itself ([`run`]): done inputs skipped, the rest
//! probed concurrently and started longest first, each retried with backoff when
//! it fails, watched for stalls, its failure recorded while the others go on.

pub mod inputs;
pub mod layout;
pub mod run;
pub mod shard;

use std::path::{Path, PathBuf};

pub use layout::{BatchInput, InputStatus, Layout, ManifestRecord};
pub use run::{
    Attempt, AttemptError, BatchOptions, BatchProgress, BatchReport, Failure, InProcess, Runner,
    plan, run, write_report,
};
pub use shard::{Shard, ShardBy, ShardSource};

/// Why a batch could not run (a failed input is not an error: it is recorded).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// An input item could not be expanded.
    #[error("{item}: {message}")]
    Inputs {
        /// The item as given.
        item: String,
        /// What is wrong with it.
        message: String,
    },
    /// The shard asked for, or found in the environment, does not exist.
    #[error("{0}")]
    Shard(String),
    /// The output folder or the manifest could not be written.
    #[error("{doing} {}: {source}", path.display())]
    Io {
        /// What was being done.
        doing: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl BatchError {
    fn io(path: &Path, doing: &'static str, source: std::io::Error) -> Self {
        BatchError::Io {
            doing,
            path: path.to_path_buf(),
            source,
        }
    }
}
