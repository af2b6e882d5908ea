//! What a pipeline is made of: its mode, the queue and error policies, source-side
//! skipping, and the specification of each stage.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::stage::{BoxError, Stage};

/// What a pipeline does when a stage is slower than its input. The mode picks the
/// [`QueuePolicy`] and capacity of every edge; a stage can override its own input edge
/// with [`StageSpec::queue`] and [`StageSpec::capacity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Never drop a frame: every queue blocks (lossless back-pressure up to the
    /// source), with short queues.
    #[default]
    Quality,
    /// Never drop a frame, with deeper queues to smooth uneven stages for throughput.
    Batch,
    /// Keep latency bounded: one frame per queue, and the newest frame wins (the
    /// oldest queued frame is dropped).
    Realtime,
    /// Block while a frame is younger than [`BALANCED_DEADLINE`] (from its capture
    /// time), then drop the oldest queued frame: lossless while the pipeline keeps
    /// up, bounded latency when it cannot.
    Balanced,
}

/// How old a frame may grow, waiting for room in a [`Mode::Balanced`] queue, before
/// the queue drops instead.
pub const BALANCED_DEADLINE: Duration = Duration::from_millis(100);

impl Mode {
    /// The policy of every edge in this mode.
    pub fn queue_policy(self) -> QueuePolicy {
        match self {
            Mode::Quality | Mode::Batch => QueuePolicy::Block,
            Mode::Realtime => QueuePolicy::DropOldest,
            Mode::Balanced => QueuePolicy::BlockFor(BALANCED_DEADLINE),
        }
    }

    /// The capacity, in frames, of every edge in this mode.
    pub fn queue_capacity(self) -> usize {
        match self {
            Mode::Quality => 4,
            Mode::Batch => 16,
            Mode::Realtime => 1,
            Mode::Balanced => 2,
        }
    }

    /// The mode's name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Quality => "quality",
            Mode::Batch => "batch",
            Mode::Realtime => "realtime",
            Mode::Balanced => "balanced",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "quality" => Ok(Mode::Quality),
            "batch" => Ok(Mode::Batch),
            "realtime" => Ok(Mode::Realtime),
            "balanced" => Ok(Mode::Balanced),
            _ => Err(UnknownMode(s.to_string())),
        }
    }
}

/// A mode name that is not one of `quality`, `batch`, `realtime`, `balanced`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode `{0}` (expected quality, batch, realtime or balanced)")]
pub struct UnknownMode(pub String);

/// What an edge does with a frame that arrives while its queue is full. Every drop is
/// counted on the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Wait for room: lossless back-pressure.
    Block,
    /// Drop the oldest queued frame to make room: the newest frame wins.
    DropOldest,
    /// Drop the arriving frame.
    DropNewest,
    /// Wait for room until the arriving frame is this old (counted from its capture
    /// time, `frame.meta.captured_at`), then drop the oldest queued frame. A frame
    /// already that old does not wait.
    BlockFor(Duration),
}

impl QueuePolicy {
    /// Whether the policy can ever drop a frame.
    pub fn is_lossless(self) -> bool {
        matches!(self, QueuePolicy::Block)
    }
}

/// What a stage's failure on one frame does to the pipeline. An error made with
/// [`StageError::fatal`](crate::StageError::fatal) stops the pipeline whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// The first error stops the pipeline.
    #[default]
    Fail,
    /// The frame is lost (frames the stage emitted before failing go on); the pipeline
    /// goes on.
    Skip,
    /// Like [`Skip`](ErrorPolicy::Skip), until the stage has failed this many times;
    /// then the stage is disabled: later frames pass through it untouched.
    DisableAfter(u32),
}

impl fmt::Display for ErrorPolicy {
    /// As [`FromStr`](std::str::FromStr) reads it: `fail`, `skip`, `disable=N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorPolicy::Fail => f.write_str("fail"),
            ErrorPolicy::Skip => f.write_str("skip"),
            ErrorPolicy::DisableAfter(n) => write!(f, "disable={n}"),
        }
    }
}

impl std::str::FromStr for ErrorPolicy {
    type Err = UnknownErrorPolicy;

    /// `fail`, `skip`, `disable=N` (N ≥ 1), or `disable` (after 10 failures).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail" => Ok(ErrorPolicy::Fail),
            "skip" => Ok(ErrorPolicy::Skip),
            "disable" => Ok(ErrorPolicy::DisableAfter(10)),
            _ => match s.strip_prefix("disable=").map(str::parse::<u32>) {
                Some(Ok(n)) if n > 0 => Ok(ErrorPolicy::DisableAfter(n)),
                _ => Err(UnknownErrorPolicy(s.to_string())),
            },
        }
    }
}

/// An error policy that is not `fail`, `skip`, `disable` or `disable=N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an error policy (expected skip, fail, disable or disable=N with N ≥ 1)")]
pub struct UnknownErrorPolicy(pub String);

/// Frames the source side leaves out before they enter the pipeline, decided while
/// it runs. Skipped frames are counted apart from drops, and keep their place in the
/// frame indices. (Choosing frames by number or time is the source's own business:
/// a decoder samples where it costs least.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Skip {
    /// Every frame enters.
    #[default]
    None,
    /// Frames are skipped while the pipeline is behind: while more frames are in it
    /// than its stages' workers and the sink can work on at once, so that some are
    /// waiting in queues.
    Adaptive,
}

/// Builds one instance of a parallel stage for the worker numbered by its argument.
pub type StageFactory = Arc<dyn Fn(usize) -> Result<Box<dyn Stage>, BoxError> + Send + Sync>;

pub(crate) enum Kind {
    Sequential(Box<dyn Stage>),
    Parallel {
        name: Arc<str>,
        factory: StageFactory,
        min_workers: usize,
        max_workers: usize,
    },
}

/// One stage of a pipeline: the stage itself (or a factory of workers), its error
/// policy, and optionally its own input queue's policy and capacity.
///
/// A sequential stage runs one instance on one thread and sees every frame in order:
/// stateful stages are sequential. A parallel stage runs between `min` and `max`
/// workers, each with its own instance, pulling frames from one queue (the first free
/// worker takes the next frame); their outputs are put back in frame order.
pub struct StageSpec {
    pub(crate) kind: Kind,
    pub(crate) on_error: ErrorPolicy,
    pub(crate) queue: Option<QueuePolicy>,
    pub(crate) capacity: Option<usize>,
}

impl StageSpec {
    /// A stage that runs on one thread and sees every frame in order.
    pub fn sequential(stage: impl Stage + 'static) -> Self {
        Self::with_kind(Kind::Sequential(Box::new(stage)))
    }

    /// A stage run by several workers, each an instance made by `factory` (called with
    /// the worker's number). By default as many workers as the machine has cores; see
    /// [`workers`](StageSpec::workers).
    ///
    /// Each input's outputs are released in input order, so the stage must emit a
    /// frame's results from the call that received it: frames held back across calls
    /// and emitted by [`tick`](Stage::tick) or [`flush`](Stage::flush) are placed after
    /// every frame dispatched before that call.
    pub fn parallel<F>(name: impl Into<Arc<str>>, factory: F) -> Self
    where
        F: Fn(usize) -> Result<Box<dyn Stage>, BoxError> + Send + Sync + 'static,
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_kind(Kind::Parallel {
            name: name.into(),
            factory: Arc::new(factory),
            min_workers: cores,
            max_workers: cores,
        })
    }

    fn with_kind(kind: Kind) -> Self {
        Self {
            kind,
            on_error: ErrorPolicy::Fail,
            queue: None,
            capacity: None,
        }
    }

    /// For a parallel stage: start with `min` workers and add one per scaling period,
    /// up to `max`, while the input queue stays full and every worker is busy; remove
    /// one per period while they idle. `min == max` fixes the count. Both are at least
    /// one. No effect on a sequential stage.
    pub fn workers(mut self, min: usize, max: usize) -> Self {
        if let Kind::Parallel {
            min_workers,
            max_workers,
            ..
        } = &mut self.kind
        {
            *min_workers = min.max(1);
            *max_workers = max.max(*min_workers);
        }
        self
    }

    /// What a failure on one frame does (default [`ErrorPolicy::Fail`]).
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.on_error = policy;
        self
    }

    /// Overrides the mode's policy for this stage's input queue.
    pub fn queue(mut self, policy: QueuePolicy) -> Self {
        self.queue = Some(policy);
        self
    }

    /// Overrides the mode's capacity (in frames, at least one) of this stage's input
    /// queue.
    pub fn capacity(mut self, frames: usize) -> Self {
        self.capacity = Some(frames.max(1));
        self
    }

    /// The number of frames the stage can hold at once as the engine counts them:
    /// one for a sequential stage, its reorder window for a parallel one.
    pub(crate) fn holding(&self) -> usize {
        match &self.kind {
            Kind::Sequential(_) => 1,
            Kind::Parallel { max_workers, .. } => reorder_window(*max_workers),
        }
    }

    pub(crate) fn name(&self) -> Arc<str> {
        match &self.kind {
            Kind::Sequential(stage) => stage.name().into(),
            Kind::Parallel { name, .. } => name.clone(),
        }
    }
}

impl fmt::Debug for StageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StageSpec");
        d.field("name", &self.name());
        if let Kind::Parallel {
            min_workers,
            max_workers,
            ..
        } = &self.kind
        {
            d.field("workers", &(min_workers, max_workers));
        }
        d.field("on_error", &self.on_error)
            .field("queue", &self.queue)
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// How many inputs a parallel stage may have dispatched but not yet released
/// downstream: enough for every worker to start the next frame while one is slow.
pub(crate) fn reorder_window(max_workers: usize) -> usize {
    max_workers.saturating_mul(2).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_policies_parse_and_print() {
        assert_eq!("skip".parse::<ErrorPolicy>(), Ok(ErrorPolicy::Skip));
        assert_eq!("fail".parse::<ErrorPolicy>(), Ok(ErrorPolicy::Fail));
        assert_eq!(
            "disable=3".parse::<ErrorPolicy>(),
            Ok(ErrorPolicy::DisableAfter(3))
        );
        assert_eq!(
            "disable".parse::<ErrorPolicy>(),
            Ok(ErrorPolicy::DisableAfter(10))
        );
        for bad in ["disable=0", "disable=x", "ignore", ""] {
            assert!(bad.parse::<ErrorPolicy>().is_err(), "{bad}");
        }
        for p in [
            ErrorPolicy::Skip,
            ErrorPolicy::Fail,
            ErrorPolicy::DisableAfter(4),
        ] {
            assert_eq!(p.to_string().parse::<ErrorPolicy>(), Ok(p));
        }
    }
}
