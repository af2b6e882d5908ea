//! Watching a running pipeline: the supervisor thread (drain deadline, quality
//! controller, the final sweep and report) and the handle its owner holds.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::control::{CancelToken, Never};
use crate::metrics::Snapshot;
use crate::outcome::{Outcome, PipelineError, Report};
use crate::quality::QualityController;
use crate::shared::{Shared, lock, panic_message, spawn_thread};
use crate::stage::Sink;

/// The longest the supervisor sleeps between checks of the drain deadline.
const SUPERVISOR_TICK: std::time::Duration = std::time::Duration::from_millis(50);

/// Watches a running pipeline: enforces the drain deadline, feeds the quality
/// controller, and once every thread has ended, sweeps the queues and reports.
pub(crate) struct Supervisor<K> {
    pub(crate) sh: Arc<Shared>,
    /// Disconnects when every pipeline thread has ended.
    pub(crate) exit: Receiver<Never>,
    pub(crate) threads: Vec<(Arc<str>, JoinHandle<()>)>,
    pub(crate) controller: Option<QualityController>,
    /// The sink, between runs of its thread: it comes back here in every ending.
    pub(crate) sink: Arc<Mutex<Option<K>>>,
}

impl<K: Sink> Supervisor<K> {
    /// Starts a pipeline thread, unless the pipeline is already stopping.
    pub(crate) fn spawn(
        &mut self,
        thread: String,
        role: Arc<str>,
        exit: &Sender<Never>,
        f: impl FnOnce() + Send + 'static,
    ) {
        if self.sh.control.is_discarding() {
            return;
        }
        match spawn_thread(thread, exit.clone(), f) {
            Ok(handle) => self.threads.push((role, handle)),
            Err(e) => self.sh.control.fail(PipelineError::Thread(e)),
        }
    }

    pub(crate) fn run(mut self) -> Report<K> {
        let period = self
            .controller
            .as_ref()
            .map_or(SUPERVISOR_TICK, |c| c.period().min(SUPERVISOR_TICK));
        let mut next_update = Instant::now() + period;
        loop {
            match self.exit.recv_timeout(period) {
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) | Ok(_) => {}
            }
            let now = Instant::now();
            let control = &self.sh.control;
            if let Some(deadline) = control.drain_deadline()
                && now >= deadline
                && !control.is_discarding()
            {
                tracing::warn!("the pipeline did not drain in time; discarding what is left");
                control.mark_interrupted();
                control.discard();
            }
            if let Some(c) = &mut self.controller
                && now >= next_update
            {
                c.update(self.sh.metrics.frames_out());
                next_update = now + period;
            }
        }
        for (role, handle) in self.threads.drain(..) {
            if let Err(panic) = handle.join() {
                self.sh.control.fail(PipelineError::Crashed {
                    thread: role.to_string(),
                    message: panic_message(&*panic),
                });
            }
        }
        // Every thread has ended: whatever is still queued was cut off.
        let mut left = 0u64;
        for edge in &self.sh.metrics.edges {
            while let Ok(frame) = edge.rx.try_recv() {
                drop(frame);
                left += 1;
            }
        }
        if left > 0 {
            self.sh.metrics.discarded(left);
            self.sh.control.mark_interrupted();
        }
        self.sh.metrics.finish();
        let control = &self.sh.control;
        let outcome = match control.take_error() {
            Some(e) => Outcome::Failed(e),
            None if control.interrupted() => Outcome::Cancelled,
            None => Outcome::Completed,
        };
        let metrics = self.sh.snapshot();
        tracing::debug!(
            ?outcome,
            frames_in = metrics.frames_in,
            frames_out = metrics.frames_out,
            dropped = metrics.dropped,
            "pipeline ended"
        );
        // The sink thread puts the sink back whatever happens (and a sink thread
        // that never started never took it).
        let sink = lock(&self.sink)
            .take()
            .expect("the sink is back in its slot once every thread has ended");
        Report {
            outcome,
            metrics,
            sink,
        }
    }
}

pub(crate) enum Ending<K> {
    Thread(JoinHandle<Option<Report<K>>>),
    /// The supervisor thread could not start: `join` supervises on its own thread.
    Inline(Box<Supervisor<K>>),
}

/// A running pipeline. Dropping it without [`join`](PipelineHandle::join) aborts the
/// pipeline and waits for its threads, so that every frame goes back to its pool.
pub struct PipelineHandle<K: Sink> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ending: Option<Ending<K>>,
}

impl<K: Sink + 'static> PipelineHandle<K> {
    /// Runs `supervisor` on a thread of its own (or, if the system refuses one, on
    /// the thread that joins).
    pub(crate) fn supervise(supervisor: Supervisor<K>) -> Self {
        let shared = Arc::clone(&supervisor.sh);
        // `Builder::spawn` consumes its closure even when it fails: the supervisor
        // waits in a slot the thread takes it from, so that a refusal leaves it here.
        let slot = Arc::new(Mutex::new(Some(supervisor)));
        let theirs = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("reel-supervisor".into())
            .spawn(move || lock(&theirs).take().map(Supervisor::run));
        let ending = match spawned {
            Ok(handle) => Ending::Thread(handle),
            Err(e) => {
                shared.control.fail(PipelineError::Thread(e));
                let sup = lock(&slot)
                    .take()
                    .expect("a thread that failed to start never took the supervisor");
                Ending::Inline(Box::new(sup))
            }
        };
        PipelineHandle {
            shared,
            ending: Some(ending),
        }
    }
}

impl<K: Sink> PipelineHandle<K> {
    /// The metrics now.
    pub fn metrics(&self) -> Snapshot {
        self.shared.snapshot()
    }

    /// A token that stops this pipeline from another thread.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken::of(&self.shared.control)
    }

    /// Stops reading the source and drains; see [`CancelToken::cancel`].
    pub fn cancel(&self) {
        self.shared.control.drain();
    }

    /// Stops now; see [`CancelToken::abort`].
    pub fn abort(&self) {
        self.shared.control.abort();
    }

    /// Whether the pipeline has ended (then [`join`](PipelineHandle::join) returns at
    /// once).
    pub fn is_finished(&self) -> bool {
        match &self.ending {
            Some(Ending::Thread(h)) => h.is_finished(),
            Some(Ending::Inline(_)) | None => false,
        }
    }

    /// Waits for the pipeline to end and reports, whatever the ending; the report
    /// hands the sink back.
    pub fn join(mut self) -> Report<K> {
        match self.wait() {
            Some(report) => report,
            None => unreachable!("a handle is joined once"),
        }
    }

    fn wait(&mut self) -> Option<Report<K>> {
        match self.ending.take()? {
            Ending::Thread(handle) => match handle.join() {
                Ok(Some(report)) => Some(report),
                // The supervisor's own code does not panic, and its thread always
                // finds it in the slot; were either to happen, the pipeline's state
                // (and the sink) would be lost with it.
                Ok(None) => panic!("the supervisor thread started without its state"),
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Ending::Inline(sup) => Some(sup.run()),
        }
    }
}

impl<K: Sink> Drop for PipelineHandle<K> {
    fn drop(&mut self) {
        if self.ending.is_some() {
            self.shared.control.abort();
            let _ = self.wait();
        }
    }
}

impl<K: Sink> std::fmt::Debug for PipelineHandle<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
