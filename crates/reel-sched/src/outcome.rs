//! How a pipeline ended: the error that stopped it, if any, and the final report.

use std::fmt;
use std::sync::Arc;

use crate::metrics::Snapshot;
use crate::stage::{BoxError, StageError};

/// Where in the stream a stage (or the sink) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// While processing the frame with this index.
    Frame(u64),
    /// In a [`tick`](crate::Stage::tick), between frames.
    Tick,
    /// While flushing at the end of the stream.
    Flush,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Frame(i) => write!(f, "on frame {i}"),
            At::Tick => f.write_str("on a tick"),
            At::Flush => f.write_str("while flushing"),
        }
    }
}

/// Why a pipeline stopped before the end of its stream.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A stage (or the sink, named `sink`) returned an error its policy does not
    /// skip, or a fatal one.
    #[error("stage `{stage}` failed {at}")]
    Stage {
        /// The stage's name.
        stage: Arc<str>,
        /// Where in the stream.
        at: At,
        /// What the stage reported.
        #[source]
        source: StageError,
    },
    /// A stage (or the sink) panicked.
    #[error("stage `{stage}` panicked {at}: {message}")]
    Panicked {
        /// The stage's name.
        stage: Arc<str>,
        /// Where in the stream.
        at: At,
        /// The panic's message.
        message: String,
    },
    /// The source reported an error (or panicked). Frames it delivered before went
    /// through the pipeline.
    #[error("source `{name}` failed after {frames} frames")]
    Source {
        /// The source's name.
        name: String,
        /// Frames it delivered before failing.
        frames: u64,
        /// What it reported.
        #[source]
        source: BoxError,
    },
    /// A parallel stage's factory could not make its first workers.
    #[error("could not start stage `{stage}`")]
    Start {
        /// The stage's name.
        stage: Arc<str>,
        /// What the factory reported.
        #[source]
        source: BoxError,
    },
    /// The operating system refused a thread.
    #[error("could not start a pipeline thread")]
    Thread(#[source] std::io::Error),
    /// One of the pipeline's own threads panicked outside any stage's code (a bug in
    /// the engine).
    #[error("pipeline thread `{thread}` panicked: {message}")]
    Crashed {
        /// Which thread.
        thread: String,
        /// The panic's message.
        message: String,
    },
}

impl PipelineError {
    /// The name of the stage that failed (`sink` for the sink), if a stage failed.
    pub fn stage(&self) -> Option<&str> {
        match self {
            PipelineError::Stage { stage, .. }
            | PipelineError::Panicked { stage, .. }
            | PipelineError::Start { stage, .. } => Some(stage),
            PipelineError::Source { .. }
            | PipelineError::Thread(_)
            | PipelineError::Crashed { .. } => None,
        }
    }

    /// Where in the stream the stage failed, if a stage failed while running.
    pub fn at(&self) -> Option<At> {
        match self {
            PipelineError::Stage { at, .. } | PipelineError::Panicked { at, .. } => Some(*at),
            _ => None,
        }
    }

    /// The index of the frame a stage failed on, if it failed on one.
    pub fn frame(&self) -> Option<u64> {
        match self.at() {
            Some(At::Frame(i)) => Some(i),
            _ => None,
        }
    }
}

/// How a pipeline ended.
#[derive(Debug)]
pub enum Outcome {
    /// The source reached its end and every frame went through.
    Completed,
    /// [`cancel`](crate::CancelToken::cancel) or [`abort`](crate::CancelToken::abort)
    /// stopped it before the end of its stream.
    Cancelled,
    /// An error stopped it: the first one.
    Failed(PipelineError),
}

/// What a finished pipeline reports, whatever the ending: the outcome, the final
/// metrics (so a command can still print a partial summary) and the sink, handed
/// back with whatever it gathered.
#[derive(Debug)]
pub struct Report<K> {
    /// How it ended.
    pub outcome: Outcome,
    /// The metrics at the end.
    pub metrics: Snapshot,
    /// The pipeline's sink, finished (unless it failed itself).
    pub sink: K,
}

impl<K> Report<K> {
    /// Whether the whole stream went through.
    pub fn is_completed(&self) -> bool {
        matches!(self.outcome, Outcome::Completed)
    }

    /// Whether a cancellation stopped it.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.outcome, Outcome::Cancelled)
    }

    /// The error that stopped it, if one did.
    pub fn error(&self) -> Option<&PipelineError> {
        match &self.outcome {
            Outcome::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The metrics when it completed or was cancelled; the error when it failed.
    pub fn into_result(self) -> Result<Snapshot, PipelineError> {
        match self.outcome {
            Outcome::Failed(e) => Err(e),
            Outcome::Completed | Outcome::Cancelled => Ok(self.metrics),
        }
    }
}
