//! The run state every pipeline thread watches: running, draining (the source has
//! stopped, frames in flight go on) or discarding (everything stops now), the first
//! fatal error, and the cancel token that moves between them.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
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
        self.discard();
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

/// Stops pipelines from any thread (a Ctrl-C handler, a timer, a stage, another
/// job). Clones share the same token.
///
/// A token made with [`CancelToken::new`] belongs to no pipeline until one is
/// attached to it with [`Pipeline::cancel_on`](crate::Pipeline::cancel_on): one
/// token can stop every pipeline of a process, and a pipeline attached to a token
/// that was already cancelled starts cancelled. [`Pipeline::cancel_token`]
/// (crate::Pipeline::cancel_token) gives a token attached to that pipeline alone.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<TokenInner>);

#[derive(Default)]
struct TokenInner {
    /// `NONE`, `CANCEL` or `ABORT`: the strongest request made so far.
    request: AtomicU8,
    /// The pipelines this token stops; dead ones are pruned as others attach.
    pipelines: Mutex<Vec<Weak<Control>>>,
}

const NONE: u8 = 0;
const CANCEL: u8 = 1;
const ABORT: u8 = 2;

impl CancelToken {
    /// A token attached to no pipeline yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token attached to `control` alone.
    pub(crate) fn of(control: &Arc<Control>) -> Self {
        let token = Self::new();
        token.attach(control);
        token
    }

    /// Makes this token stop the pipeline of `control`, applying at once what was
    /// already asked of it.
    pub(crate) fn attach(&self, control: &Arc<Control>) {
        let mut pipelines = lock(&self.0.pipelines);
        pipelines.retain(|p| p.strong_count() > 0);
        pipelines.push(Arc::downgrade(control));
        // Under the lock: a request made concurrently either sees this pipeline in
        // the list or is seen here.
        apply(self.0.request.load(Ordering::Acquire), control);
    }

    fn request(&self, what: u8) {
        let pipelines = lock(&self.0.pipelines);
        self.0.request.fetch_max(what, Ordering::AcqRel);
        for control in pipelines.iter().filter_map(Weak::upgrade) {
            apply(what, &control);
        }
    }

    /// Stops reading the source. Frames already in the pipeline go on to the sink and
    /// every stage is flushed, if that ends within the pipeline's
    /// [drain timeout](crate::Pipeline::drain_timeout); whatever is left then is
    /// discarded as by [`abort`](CancelToken::abort). The report says `Cancelled`.
    pub fn cancel(&self) {
        self.request(CANCEL);
    }

    /// Stops now: queued frames are discarded, no stage is flushed, calls under way
    /// finish (they are never interrupted), and the sink is finished with what it has.
    pub fn abort(&self) {
        self.request(ABORT);
    }

    /// Whether [`cancel`](CancelToken::cancel) or [`abort`](CancelToken::abort) was
    /// called.
    pub fn is_cancelled(&self) -> bool {
        self.0.request.load(Ordering::Acquire) != NONE
    }

    /// Whether [`abort`](CancelToken::abort) was called.
    pub fn is_aborted(&self) -> bool {
        self.0.request.load(Ordering::Acquire) == ABORT
    }
}

fn apply(request: u8, control: &Control) {
    match request {
        CANCEL => control.drain(),
        ABORT => control.abort(),
        _ => {}
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .field("aborted", &self.is_aborted())
            .finish()
    }
}
