//! The traits every processing step implements.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reel_frame::Frame;

/// Any error, boxed, as sources and stages report them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a stage failed on a frame. What happens next is the stage's error policy's
/// decision, unless the error is [fatal](StageError::fatal).
#[derive(Debug)]
pub struct StageError {
    source: BoxError,
    fatal: bool,
}

impl StageError {
    /// An error the stage's policy may skip or count.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self {
            source: error.into(),
            fatal: false,
        }
    }

    /// An error that stops the pipeline whatever the policy (for example an output
    /// file that can no longer be written).
    pub fn fatal(error: impl Into<BoxError>) -> Self {
        Self {
            source: error.into(),
            fatal: true,
        }
    }

    /// Whether the error stops the pipeline whatever the policy.
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }

    /// The underlying error.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }

    /// Gives up the underlying error.
    pub fn into_inner(self) -> BoxError {
        self.source
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl std::error::Error for StageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

/// Where a stage puts its output frames.
pub trait Emit {
    /// Passes `frame` downstream.
    fn emit(&mut self, frame: Frame);
}

impl Emit for Vec<Frame> {
    fn emit(&mut self, frame: Frame) {
        self.push(frame);
    }
}

/// One processing step. A stage takes a frame and emits zero, one or more frames;
/// it may keep state between frames (then it must run sequentially).
pub trait Stage: Send {
    /// The stage's name, for metrics and error messages.
    fn name(&self) -> &str;

    /// Processes one frame, emitting what goes downstream. A frame that is neither
    /// emitted nor kept is dropped (its buffer goes back to the pool).
    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError>;

    /// Called once at the end of the stream, after the last frame: emit anything
    /// held back.
    fn flush(&mut self, _out: &mut dyn Emit) -> Result<(), StageError> {
        Ok(())
    }

    /// For stages that hold frames back (batching): the longest they may wait for the
    /// next frame before [`tick`](Stage::tick) is called. `None`: never.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called when no frame arrived within [`tick_interval`](Stage::tick_interval).
    fn tick(&mut self, _out: &mut dyn Emit) -> Result<(), StageError> {
        Ok(())
    }
}

impl<S: Stage + ?Sized> Stage for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        (**self).process(frame, out)
    }

    fn flush(&mut self, out: &mut dyn Emit) -> Result<(), StageError> {
        (**self).flush(out)
    }

    fn tick_interval(&self) -> Option<Duration> {
        (**self).tick_interval()
    }

    fn tick(&mut self, out: &mut dyn Emit) -> Result<(), StageError> {
        (**self).tick(out)
    }
}

/// Where frames come from (a decoder, a camera, a generator).
pub trait Source: Send {
    /// A short description for messages (the input's path or URI).
    fn name(&self) -> &str;

    /// The next frame, `None` at the end of the stream, or the error that ended it.
    /// Frames delivered before an error stay valid.
    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>>;
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
        (**self).next_frame()
    }
}

/// Where frames end (a results writer, an encoder, a display).
pub trait Sink: Send {
    /// Consumes one frame, in stream order.
    fn consume(&mut self, frame: Frame) -> Result<(), StageError>;

    /// Called once after the last frame.
    fn finish(&mut self) -> Result<(), StageError> {
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
        (**self).consume(frame)
    }

    fn finish(&mut self) -> Result<(), StageError> {
        (**self).finish()
    }
}

/// A sink that drops every frame (its buffer goes back to the pool): for pipelines
/// whose stages write their own results, and for measuring.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl Sink for NullSink {
    fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
        drop(frame);
        Ok(())
    }
}

/// A quality factor shared between the controller that sets it and the stages or
/// sources that read it (for example the scale at which frames are decoded). Reads
/// and writes are lock-free; clones share the same value.
#[derive(Clone)]
pub struct QualityKnob(Arc<AtomicU32>);

impl QualityKnob {
    /// A knob set to `value` (clamped to 0..=1).
    pub fn new(value: f32) -> Self {
        Self(Arc::new(AtomicU32::new(clamp_unit(value).to_bits())))
    }

    /// The factor now, in 0..=1.
    pub fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Sets the factor (clamped to 0..=1).
    pub fn set(&self, value: f32) {
        self.0.store(clamp_unit(value).to_bits(), Ordering::Relaxed);
    }
}

impl Default for QualityKnob {
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl fmt::Debug for QualityKnob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("QualityKnob").field(&self.get()).finish()
    }
}

/// Clamps to 0..=1; NaN counts as full quality.
fn clamp_unit(value: f32) -> f32 {
    if value.is_nan() {
        1.0
    } else {
        value.clamp(0.0, 1.0)
    }
}
