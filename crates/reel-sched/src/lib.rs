//! `reel-sched` moves frames from a source through stages to a sink over bounded
//! queues, and decides what happens when a stage is slower than its input: block
//! (quality and batch modes never drop a frame) or drop (real-time modes keep latency
//! bounded instead of queueing).
//!
//! It owns the [`Stage`], [`Source`] and [`Sink`] traits that every processing step
//! implements, the threads and channels that connect them ([`Pipeline`]), the queue
//! and error policies, parallel stages with their reorder window and dynamic workers,
//! source-side skipping, the adaptive [`QualityController`] and the metrics
//! ([`Snapshot`]). It knows nothing of video formats, decoders, candle or plugins: a
//! stage is a trait object that takes a `Frame`.
//!
//! Every pooled buffer a pipeline holds goes back to its pool in every ending
//! (completed, cancelled, failed) before [`PipelineHandle::join`] returns. In steady
//! state, moving a frame through a pipeline allocates nothing.
//!
//! See [`Pipeline`] for an example.
#![deny(missing_docs)]

mod control;
mod edge;
mod metrics;
mod outcome;
mod parallel;
mod pipeline;
mod quality;
mod runner;
mod scaling;
mod shared;
mod skip;
mod spec;
mod stage;
mod supervisor;
mod threads;

pub use control::{CancelToken, RunState};
pub use metrics::{BUCKET_BOUNDS, EdgeSnapshot, Percentiles, Snapshot, StageSnapshot};
pub use outcome::{At, Outcome, PipelineError, Report};
pub use pipeline::{DEFAULT_DRAIN_TIMEOUT, DEFAULT_SCALING_PERIOD, Pipeline};
pub use quality::{
    Clock, ManualClock, QualityChange, QualityConfig, QualityController, SystemClock,
};
pub use spec::{
    BALANCED_DEADLINE, ErrorPolicy, Mode, QueuePolicy, Skip, StageFactory, StageSpec,
    UnknownErrorPolicy, UnknownMode,
};
pub use stage::{BoxError, Emit, NullSink, QualityKnob, Sink, Source, Stage, StageError};
pub use supervisor::PipelineHandle;
