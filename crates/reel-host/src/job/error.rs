//! The one error type of every job.

use reel_decode::DecodeError;
use reel_infer::InferError;

use super::summary::JobSummary;
use crate::cache::CacheError;

/// Why a job could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input could not be opened or decoded, or the video out not written.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The model could not be had or loaded.
    #[error(transparent)]
    Model(#[from] InferError),
    /// A plugin could not be started.
    #[error(transparent)]
    Plugin(#[from] crate::plugins::Error),
    /// A live input could not be read.
    #[error(transparent)]
    Live(#[from] crate::live::LiveError),
    /// An option is out of range, or the stages cannot work together.
    #[error("{0}")]
    Options(String),
    /// The results cache failed.
    #[error("analysis cache: {0}")]
    Cache(#[from] CacheError),
    /// Writing the result lines failed.
    #[error("writing result lines: {0}")]
    Io(#[from] std::io::Error),
    /// The pipeline stopped on an error (decoding, a stage, or writing results).
    #[error("{input}: {message}")]
    Failed {
        /// The input.
        input: String,
        /// What went wrong, with the stage and frame, and its causes.
        message: String,
        /// What was found up to the error.
        partial: Box<JobSummary>,
    },
}

impl JobError {
    /// What was found before the job failed, when it failed mid-stream.
    pub fn partial(&self) -> Option<&JobSummary> {
        match self {
            JobError::Failed { partial, .. } => Some(partial),
            _ => None,
        }
    }
}
