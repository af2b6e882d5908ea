//! `reel-sched` moves frames from a source through stages to a sink over bounded
//! queues, and decides what happens when a stage is slower than its input: block
//! (quality and batch modes never drop a frame) or drop (real-time modes keep latency
//! bounded instead of queueing).
//!
//! It owns the [`Stage`], [`Source`] and [`Sink`] traits that every processing step
//! implements, the threads and channels that connect them, the drop policies, the
//! adaptive quality controller and the metrics. It knows nothing of video formats,
//! decoders, candle or plugins: a stage is a trait object that takes a `Frame`.
#![deny(missing_docs)]

mod stage;

pub use stage::{BoxError, Emit, QualityKnob, Sink, Source, Stage, StageError};
