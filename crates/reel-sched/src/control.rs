//! The run state every pipeline thread watches: running, draining (the source has
//! stopped, frames in flight go on) or discarding (everything stops now), the first
//! fatal error, and the cancel token that moves between them.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::outcome::PipelineError;

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const DISCARDING: u8 = 2;

/// A message that is never sent: the abort channel only ever disconnects.
pub(crate) enum Never {}

pub(crate) struct Control {
    state: AtomicU8,
    /// Dropped when the pipeline starts discarding: every thread blocked on a queue
    /// selects on `abort_rx` too, and wakes up.
    abort_tx: Mutex<Option<Sender<Never>>>,
    pub(crate) abort_rx: Receiver<Never>,
    drain_timeout: Mutex<Duration>,
    drain_deadline: Mutex<Option<Instant>>,
    cancel_requested: AtomicBool,
    /// Some work was cut short: the source stopped before its end, or frames were
    /// discarded.
    interrupted: AtomicBool,
    error: Mutex<Option<PipelineError>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a plain assignment: a poisoned lock holds a
    // consistent value.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Control {
    pub(crate) fn new(drain_timeout: Duration) -> Self {
        // Capacity one, not zero: waiting on a zero-capacity channel in a `select!`
        // allocates on every wait, an array channel never does.
        let (tx, rx) = crossbeam_channel::bounded(1);
        Self {
            state: AtomicU8::new(RUNNING),
            abort_tx: Mutex::new(Some(tx)),
            abort_rx: rx,
            drain_timeout: Mutex::new(drain_timeout),
            drain_deadline: Mutex::new(None),
            cancel_requested: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    pub(crate) fn set_drain_timeout(&self, timeout: Duration) {
        *lock(&self.drain_timeout) = timeout;
    }

    pub(crate) fn state(&self) -> RunState {
        match self.state.load(Ordering::Acquire) {
            RUNNING => RunState::Running,
            DRAINING => RunState::Draining,
            _ => RunState::Stopping,
        }
    }

    /// Whether the source may read another frame.
    pub(crate) fn is_running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    /// Whether every thread must stop now, dropping what it holds.
    pub(crate) fn is_discarding(&self) -> bool {
        self.state.load(Ordering::Acquire) == DISCARDING
    }

    /// Stops the source; frames in flight go on until `drain_timeout` has passed.
    pub(crate) fn drain(&self) {
        self.cancel_requested.store(true, Ordering::Release);
        if self
            .state
            .compare_exchange(RUNNING, DRAINING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let timeout = *lock(&self.drain_timeout);
            *lock(&self.drain_deadline) = Instant::now().checked_add(timeout);
            tracing::debug!(?timeout, "pipeline draining");
        }
    }

    /// Stops everything now.
    pub(crate) fn discard(&self) {
        if self.state.swap(DISCARDING, Ordering::AcqRel) != DISCARDING {
            tracing::debug!("pipeline discarding");
        }
        // Dropping the sender disconnects the channel: every `select!` on it wakes.
        lock(&self.abort_tx).take();
    }

    pub(crate) fn abort(&self) {
        self.cancel_requested.store(true, Ordering::Release);
        self.discard();
    }

    pub(crate) fn cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::Acquire)
    }

    pub(crate) fn drain_deadline(&self) -> Option<Instant> {
        *lock(&self.drain_deadline)
    }

    pub(crate) fn mark_interrupted(&self) {
        self.interrupted.store(true, Ordering::Release);
    }

    pub(crate) fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Acquire)
    }

    /// Records `error` if it is the first, and stops everything.
    pub(crate) fn fail(&self, error: PipelineError) {
        self.record(error);
        self.discard();
    }

    /// Records `error` if it is the first, leaving the pipeline to drain (the source
    /// failed: what it delivered before still goes through).
    pub(crate) fn record(&self, error: PipelineError) {
        let mut slot = lock(&self.error);
        if slot.is_none() {
            tracing::debug!(error = %error, "pipeline error");
            *slot = Some(error);
        } else {
            tracing::debug!(error = %error, "later pipeline error ignored");
        }
    }

    pub(crate) fn take_error(&self) -> Option<PipelineError> {
        lock(&self.error).take()
    }
}

/// Where a pipeline is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunState {
    /// Reading the source.
    #[default]
    Running,
    /// Cancelled: the source has stopped; frames in flight go on to the sink.
    Draining,
    /// Aborted, failed, or drained for too long: everything stops, queued frames are
    /// discarded.
    Stopping,
    /// Every thread has ended.
    Ended,
}

/// Stops a pipeline from any thread (a Ctrl-C handler, a timer, a stage). Clones
/// share the same pipeline.
#[derive(Clone)]
pub struct CancelToken(pub(crate) Arc<Control>);

impl CancelToken {
    /// Stops reading the source. Frames already in the pipeline go on to the sink and
    /// every stage is flushed, if that ends within the pipeline's
    /// [drain timeout](crate::Pipeline::drain_timeout); whatever is left then is
    /// discarded as by [`abort`](CancelToken::abort). The report says `Cancelled`.
    pub fn cancel(&self) {
        self.0.drain();
    }

    /// Stops now: queued frames are discarded, no stage is flushed, calls under way
    /// finish (they are never interrupted), and the sink is finished with what it has.
    pub fn abort(&self) {
        self.0.abort();
    }

    /// Whether [`cancel`](CancelToken::cancel) or [`abort`](CancelToken::abort) was
    /// called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancel_requested()
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
