//! A parallel stage: a manager thread that hands each frame from the input queue to
//! the first free worker, puts the workers' outputs back in input order through a
//! bounded reorder window, and adds or removes workers as the load asks.
//!
//! The manager takes a frame from the input queue only when a worker is free, so
//! frames wait in the queue (where the edge's policy can drop them) rather than in
//! the stage. Every dispatched frame gets a sequence number; a worker returns the
//! frames it emitted for it and then `Done`, and the manager releases sequence numbers
//! downstream in order. Frames a worker emits outside a call for a frame (ticks,
//! flushes) get a fresh sequence number, after everything dispatched before.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use reel_frame::Frame;

use crate::control::Never;
use crate::edge::{EdgeTx, Recv, Stopped, recv, send_internal};
use crate::outcome::PipelineError;
use crate::runner::Runner;
use crate::scaling::{Scaler, Step};
use crate::shared::{Shared, panic_message, spawn_thread};
use crate::spec::{ErrorPolicy, StageFactory, reorder_window};

/// What a parallel stage needs to run.
pub(crate) struct ParallelStage {
    pub(crate) index: usize,
    pub(crate) name: Arc<str>,
    pub(crate) factory: StageFactory,
    pub(crate) min_workers: usize,
    pub(crate) max_workers: usize,
    pub(crate) on_error: ErrorPolicy,
    pub(crate) scaling_period: Duration,
}

/// From a worker to the manager. `seq` is `None` for frames emitted by a tick or a
/// flush. A call's last output carries `done`, so that the common one-in, one-out
/// call costs one message; a call with no output sends `Done`.
#[allow(
    clippy::large_enum_variant,
    reason = "boxing the frame would allocate per frame; the channel's slots are allocated once"
)]
enum FromWorker {
    Output {
        worker: usize,
        seq: Option<u64>,
        frame: Frame,
        done: bool,
    },
    Done {
        worker: usize,
        seq: Option<u64>,
    },
    Exited {
        worker: usize,
    },
}

struct Worker {
    /// `None` once the worker is told to finish (it flushes and exits).
    jobs: Option<Sender<(u64, Frame)>>,
    exited: bool,
}

struct Slot {
    frames: Vec<Frame>,
    done: bool,
}

struct Manager {
    spec: ParallelStage,
    sh: Arc<Shared>,
    exit: Sender<Never>,
    results_tx: Option<Sender<FromWorker>>,
    workers: Vec<Worker>,
    handles: Vec<JoinHandle<()>>,
    /// Workers waiting for a frame.
    idle: Vec<usize>,
    /// Workers that take frames (not told to finish).
    active: usize,
    /// Workers not yet exited.
    live: usize,
    /// The most workers the factory could make (lowered when it fails).
    max_workers: usize,
    /// Outputs awaiting release; the front is sequence number `head`.
    slots: VecDeque<Slot>,
    spare: Vec<Vec<Frame>>,
    head: u64,
    next: u64,
    /// Per worker, the slot its tick or flush outputs go to.
    extra: Vec<Option<u64>>,
}

/// Runs a parallel stage until its input ends (or the pipeline stops).
pub(crate) fn run(
    spec: ParallelStage,
    input: Receiver<Frame>,
    out: EdgeTx,
    sh: Arc<Shared>,
    exit: Sender<Never>,
) {
    let window = reorder_window(spec.max_workers);
    let (results_tx, results_rx) = crossbeam_channel::bounded(window * 4 + 8);
    let max_workers = spec.max_workers;
    let mut m = Manager {
        spec,
        sh,
        exit,
        results_tx: Some(results_tx),
        workers: Vec::with_capacity(max_workers),
        handles: Vec::with_capacity(max_workers),
        idle: Vec::with_capacity(max_workers),
        active: 0,
        live: 0,
        max_workers,
        slots: VecDeque::with_capacity(window + max_workers),
        // Every slot the window and the workers' extras can need, each with room for
        // a few outputs, so that a steady stream allocates nothing.
        spare: (0..window + max_workers)
            .map(|_| Vec::with_capacity(4))
            .collect(),
        head: 0,
        next: 0,
        extra: Vec::with_capacity(max_workers),
    };
    for _ in 0..m.spec.min_workers {
        if let Err(e) = m.grow() {
            m.sh.control.fail(e);
            break;
        }
    }
    m.run(&input, &out, &results_rx, window as u64);
    m.teardown(&results_rx);
}

enum Event {
    Input(Result<Frame, crossbeam_channel::RecvError>),
    Worker(Result<FromWorker, crossbeam_channel::RecvError>),
    Stop,
    Tick,
}

impl Manager {
    fn run(
        &mut self,
        input: &Receiver<Frame>,
        out: &EdgeTx,
        results: &Receiver<FromWorker>,
        window: u64,
    ) {
        let never = crossbeam_channel::never::<Frame>();
        let scaling = self.spec.min_workers < self.spec.max_workers;
        let mut scaler = Scaler::new(self.spec.scaling_period, Instant::now());
        let mut input_open = true;
        loop {
            if self.release(out).is_err() || self.sh.control.is_discarding() {
                self.sh.control.mark_interrupted();
                return;
            }
            if !input_open && self.live == 0 && self.slots.is_empty() {
                return;
            }
            let take = input_open && !self.idle.is_empty() && self.next - self.head < window;
            let from = if take { input } else { &never };
            let event = if scaling && input_open {
                select! {
                    recv(results) -> msg => Event::Worker(msg),
                    recv(from) -> frame => Event::Input(frame),
                    recv(self.sh.control.abort_rx) -> _ => Event::Stop,
                    default(scaler.sample_every()) => Event::Tick,
                }
            } else {
                select! {
                    recv(results) -> msg => Event::Worker(msg),
                    recv(from) -> frame => Event::Input(frame),
                    recv(self.sh.control.abort_rx) -> _ => Event::Stop,
                }
            };
            match event {
                Event::Input(Ok(frame)) => self.dispatch(frame),
                Event::Input(Err(_)) => {
                    input_open = false;
                    self.finish_all();
                }
                Event::Worker(Ok(msg)) => self.handle(msg),
                // Every worker has exited and the manager holds no sender any more.
                Event::Worker(Err(_)) => self.live = 0,
                Event::Stop => {
                    self.sh.control.mark_interrupted();
                    return;
                }
                Event::Tick => {}
            }
            if scaling && input_open {
                let now = Instant::now();
                let busy = self.active.saturating_sub(self.idle.len());
                let saturated = self.idle.is_empty() && !input.is_empty();
                scaler.observe(now, busy, saturated);
                match scaler.decide(now, self.active, self.spec.min_workers, self.max_workers) {
                    Some(Step::Grow) => {
                        if let Err(e) = self.grow() {
                            tracing::warn!(stage = %self.spec.name, error = %e, "could not add a worker");
                            self.max_workers = self.active;
                        }
                    }
                    Some(Step::Shrink) => self.retire_one(),
                    None => {}
                }
            }
        }
    }

    /// Starts one more worker.
    fn grow(&mut self) -> Result<(), PipelineError> {
        let id = self.workers.len();
        let name = self.spec.name.clone();
        let factory = Arc::clone(&self.spec.factory);
        let stage = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| factory(id))) {
            Ok(Ok(stage)) => stage,
            Ok(Err(source)) => {
                return Err(PipelineError::Start {
                    stage: name,
                    source,
                });
            }
            Err(panic) => {
                return Err(PipelineError::Start {
                    stage: name,
                    source: panic_message(&*panic).into(),
                });
            }
        };
        let Some(results) = self.results_tx.clone() else {
            return Ok(());
        };
        let runner = Runner::new(stage, name.clone(), self.spec.on_error, self.spec.index);
        let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(1);
        let sh = Arc::clone(&self.sh);
        let handle = spawn_thread(format!("reel-{name}-{id}"), self.exit.clone(), move || {
            work(id, runner, &jobs_rx, &results, &sh);
        })
        .map_err(PipelineError::Thread)?;
        self.workers.push(Worker {
            jobs: Some(jobs_tx),
            exited: false,
        });
        self.handles.push(handle);
        self.extra.push(None);
        self.idle.push(id);
        self.active += 1;
        self.live += 1;
        self.sh.metrics.stages[self.spec.index].set_workers(self.active);
        tracing::debug!(stage = %name, workers = self.active, "worker added");
        Ok(())
    }

    /// Tells an idle worker to finish.
    fn retire_one(&mut self) {
        if self.active <= self.spec.min_workers {
            return;
        }
        if let Some(id) = self.idle.pop() {
            self.workers[id].jobs = None;
            self.active -= 1;
            self.sh.metrics.stages[self.spec.index].set_workers(self.active);
            tracing::debug!(stage = %self.spec.name, workers = self.active, "worker removed");
        }
    }

    /// The input ended: every worker flushes and exits.
    fn finish_all(&mut self) {
        for w in &mut self.workers {
            w.jobs = None;
        }
        self.idle.clear();
        self.results_tx = None;
    }

    fn dispatch(&mut self, frame: Frame) {
        let seq = self.next;
        self.next += 1;
        let frames = self.spare.pop().unwrap_or_default();
        self.slots.push_back(Slot {
            frames,
            done: false,
        });
        let sent = match self.idle.pop() {
            Some(id) => match &self.workers[id].jobs {
                Some(jobs) => jobs.try_send((seq, frame)).map_err(|e| e.into_inner().1),
                None => Err(frame),
            },
            None => Err(frame),
        };
        if let Err(frame) = sent {
            // Unreachable while the bookkeeping holds: only idle workers, whose job
            // queue is empty, are given frames.
            drop(frame);
            self.sh.metrics.discarded(1);
            if let Some(slot) = self.slot(seq) {
                slot.done = true;
            }
        }
    }

    fn slot(&mut self, seq: u64) -> Option<&mut Slot> {
        let i = usize::try_from(seq.checked_sub(self.head)?).ok()?;
        self.slots.get_mut(i)
    }

    /// The slot a worker's tick or flush outputs go to, opened on first use.
    fn extra_slot(&mut self, worker: usize) -> u64 {
        if let Some(seq) = self.extra[worker] {
            return seq;
        }
        let seq = self.next;
        self.next += 1;
        let frames = self.spare.pop().unwrap_or_default();
        self.slots.push_back(Slot {
            frames,
            done: false,
        });
        self.extra[worker] = Some(seq);
        seq
    }

    fn handle(&mut self, msg: FromWorker) {
        match msg {
            FromWorker::Output {
                worker,
                seq,
                frame,
                done,
            } => {
                let slot_seq = seq.unwrap_or_else(|| self.extra_slot(worker));
                match self.slot(slot_seq) {
                    Some(slot) => slot.frames.push(frame),
                    None => {
                        drop(frame);
                        self.sh.metrics.discarded(1);
                    }
                }
                if done {
                    self.handle(FromWorker::Done { worker, seq });
                }
            }
            FromWorker::Done { worker, seq } => {
                let seq = match seq {
                    Some(seq) => {
                        if self.workers[worker].jobs.is_some() {
                            self.idle.push(worker);
                        }
                        Some(seq)
                    }
                    None => self.extra[worker].take(),
                };
                if let Some(slot) = seq.and_then(|s| self.slot(s)) {
                    slot.done = true;
                }
            }
            FromWorker::Exited { worker } => {
                let w = &mut self.workers[worker];
                if !w.exited {
                    w.exited = true;
                    self.live -= 1;
                }
                self.idle.retain(|&i| i != worker);
                if let Some(slot) = self.extra[worker].take().and_then(|s| self.slot(s)) {
                    slot.done = true;
                }
            }
        }
    }

    /// Sends every completed slot at the front downstream, in order.
    fn release(&mut self, out: &EdgeTx) -> Result<(), Stopped> {
        while self.slots.front().is_some_and(|s| s.done) {
            let Some(mut slot) = self.slots.pop_front() else {
                break;
            };
            self.head += 1;
            let mut frames = slot.frames.drain(..);
            while let Some(frame) = frames.next() {
                if out.send(frame, &self.sh).is_err() {
                    let rest = frames.count();
                    self.sh.metrics.discarded(rest as u64);
                    return Err(Stopped);
                }
            }
            drop(frames);
            self.spare.push(slot.frames);
        }
        Ok(())
    }

    /// Stops every worker, waits for them, and discards whatever is left.
    fn teardown(mut self, results: &Receiver<FromWorker>) {
        self.finish_all();
        let mut left = 0u64;
        // Workers may be blocked handing results over: keep taking them until every
        // worker has exited (they all hold a sender; the manager no longer does).
        while let Ok(msg) = results.recv() {
            if let FromWorker::Output { frame, .. } = msg {
                drop(frame);
                left += 1;
            }
        }
        for handle in self.handles.drain(..) {
            if let Err(panic) = handle.join() {
                self.sh.control.fail(PipelineError::Crashed {
                    thread: format!("{} worker", self.spec.name),
                    message: panic_message(&*panic),
                });
            }
        }
        for slot in self.slots.drain(..) {
            left += slot.frames.len() as u64;
        }
        if left > 0 {
            self.sh.metrics.discarded(left);
            self.sh.control.mark_interrupted();
        }
    }
}

/// A worker: processes the frames it is given, ticks when idle for the stage's tick
/// interval, flushes when told to finish.
fn work(
    id: usize,
    mut runner: Runner,
    jobs: &Receiver<(u64, Frame)>,
    results: &Sender<FromWorker>,
    sh: &Shared,
) {
    let mut buf = Vec::with_capacity(4);
    loop {
        let timeout = runner.tick_interval(sh);
        let (seq, step, last) = match recv(jobs, sh, timeout) {
            Recv::Item((seq, frame)) => (Some(seq), runner.process(frame, &mut buf, sh), false),
            Recv::Timeout => (None, runner.tick(&mut buf, sh), false),
            Recv::Closed => (None, runner.flush(&mut buf, sh), true),
            Recv::Stop => break,
        };
        if let Err(e) = step {
            sh.control.fail(e);
            break;
        }
        if (seq.is_some() || !buf.is_empty()) && hand_over(id, seq, &mut buf, results, sh).is_err()
        {
            break;
        }
        if last {
            break;
        }
    }
    if !buf.is_empty() {
        sh.metrics.discarded(buf.len() as u64);
        buf.clear();
    }
    // The manager may be gone already (when the pipeline is stopping): nothing to do.
    let _ = send_internal(results, FromWorker::Exited { worker: id }, sh);
}

/// Sends a call's outputs, the last one marked done (or `Done` alone if none).
fn hand_over(
    worker: usize,
    seq: Option<u64>,
    buf: &mut Vec<Frame>,
    results: &Sender<FromWorker>,
    sh: &Shared,
) -> Result<(), Stopped> {
    if buf.is_empty() {
        return send_internal(results, FromWorker::Done { worker, seq }, sh).map_err(|_| Stopped);
    }
    let mut frames = buf.drain(..);
    while let Some(frame) = frames.next() {
        let done = frames.len() == 0;
        let msg = FromWorker::Output {
            worker,
            seq,
            frame,
            done,
        };
        if let Err(msg) = send_internal(results, msg, sh) {
            drop(msg);
            let lost = 1 + frames.count() as u64;
            sh.metrics.discarded(lost);
            return Err(Stopped);
        }
    }
    Ok(())
}
