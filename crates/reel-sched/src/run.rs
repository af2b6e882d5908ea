//! Building and running a pipeline: the builder, the threads (source, stages, sink,
//! supervisor) and the handle that watches and stops them.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use reel_frame::Frame;

use crate::control::{CancelToken, Control, Never};
use crate::edge::{EdgeTx, Recv, recv};
use crate::metrics::{EdgeCounters, Metrics, Snapshot, StageCounters};
use crate::outcome::{At, Outcome, PipelineError, Report};
use crate::parallel::{self, ParallelStage};
use crate::quality::QualityController;
use crate::runner::{Runner, panic_message};
use crate::skip::Skipper;
use crate::spec::{Kind, Mode, QueuePolicy, Skip, StageSpec};
use crate::stage::{Sink, Source};

/// How long a cancelled pipeline may drain before what is left is discarded, unless
/// set with [`Pipeline::drain_timeout`].
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a parallel stage may gain or lose a worker, unless set with
/// [`Pipeline::scaling_period`].
pub const DEFAULT_SCALING_PERIOD: Duration = Duration::from_millis(500);

/// The longest the supervisor sleeps between checks of the drain deadline.
const SUPERVISOR_TICK: Duration = Duration::from_millis(50);

/// What every pipeline thread shares.
pub(crate) struct Shared {
    pub(crate) control: Arc<Control>,
    pub(crate) metrics: Metrics,
}

impl Shared {
    fn snapshot(&self) -> Snapshot {
        self.metrics.snapshot(self.control.state())
    }
}

/// A source, stages and a sink connected by bounded queues, each stage on its own
/// thread(s).
///
/// Frames flow from the [`Source`] through the stages, in order, to the [`Sink`]. The
/// [`Mode`] decides what happens when a stage is slower than its input: `Quality` and
/// `Batch` block (back-pressure reaches the source, no frame is ever dropped);
/// `Realtime` and `Balanced` drop, counting every drop. At the end of the stream each
/// stage is flushed in order, then the sink is finished.
///
/// ```
/// use reel_frame::{Frame, PixelFormat};
/// use reel_pool::FramePool;
/// use reel_sched::{BoxError, Emit, Mode, Pipeline, Sink, Source, Stage, StageError, StageSpec};
///
/// /// Ten gray 4x4 frames.
/// struct Frames { pool: FramePool, next: u64 }
///
/// impl Source for Frames {
///     fn name(&self) -> &str { "frames" }
///     fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
///         if self.next == 10 {
///             return None;
///         }
///         self.next += 1;
///         Some(gray(&self.pool, self.next - 1))
///     }
/// }
///
/// fn gray(pool: &FramePool, index: u64) -> Result<Frame, BoxError> {
///     let buf = pool.acquire(16)?;
///     Ok(Frame::new(buf, PixelFormat::Gray8, 4, 4, index, index as f64 / 30.0)?)
/// }
///
/// /// Inverts every pixel.
/// struct Invert;
///
/// impl Stage for Invert {
///     fn name(&self) -> &str { "invert" }
///     fn process(&mut self, mut frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
///         frame.data_mut().iter_mut().for_each(|p| *p = 255 - *p);
///         out.emit(frame);
///         Ok(())
///     }
/// }
///
/// /// Collects frame indices.
/// struct Indices(std::sync::Arc<std::sync::Mutex<Vec<u64>>>);
///
/// impl Sink for Indices {
///     fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
///         self.0.lock().unwrap().push(frame.index);
///         Ok(())
///     }
/// }
///
/// let pool = FramePool::with_budget(1 << 20);
/// let seen = std::sync::Arc::default();
/// let report = Pipeline::new(Frames { pool: pool.clone(), next: 0 }, Indices(std::sync::Arc::clone(&seen)))
///     .mode(Mode::Quality)
///     .stage(StageSpec::sequential(Invert))
///     .stage(StageSpec::parallel("invert again", |_| Ok(Box::new(Invert))).workers(2, 2))
///     .run();
///
/// assert!(report.is_completed());
/// assert_eq!(report.metrics.frames_out, 10);
/// assert_eq!(*seen.lock().unwrap(), (0..10).collect::<Vec<_>>());
/// assert_eq!(pool.stats().bytes_in_use, 0);
/// ```
pub struct Pipeline {
    source: Box<dyn Source>,
    sink: Box<dyn Sink>,
    stages: Vec<StageSpec>,
    mode: Mode,
    skip: Skip,
    sink_queue: Option<QueuePolicy>,
    sink_capacity: Option<usize>,
    controller: Option<QualityController>,
    scaling_period: Duration,
    control: Arc<Control>,
}

impl Pipeline {
    /// A pipeline from `source` straight to `sink`, in [`Mode::Quality`]; add stages
    /// with [`stage`](Pipeline::stage).
    ///
    /// Every error the sink returns stops the pipeline; the sink is finished in every
    /// ending except its own failure, so that it can flush what it has.
    pub fn new(source: impl Source + 'static, sink: impl Sink + 'static) -> Self {
        Self {
            source: Box::new(source),
            sink: Box::new(sink),
            stages: Vec::new(),
            mode: Mode::Quality,
            skip: Skip::None,
            sink_queue: None,
            sink_capacity: None,
            controller: None,
            scaling_period: DEFAULT_SCALING_PERIOD,
            control: Arc::new(Control::new(DEFAULT_DRAIN_TIMEOUT)),
        }
    }

    /// Sets the mode, which picks every queue's policy and capacity.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Appends a stage.
    pub fn stage(mut self, spec: StageSpec) -> Self {
        self.stages.push(spec);
        self
    }

    /// Leaves frames out at the source (default [`Skip::None`]).
    pub fn skip(mut self, skip: Skip) -> Self {
        self.skip = skip;
        self
    }

    /// Overrides the mode's policy for the sink's input queue.
    pub fn sink_queue(mut self, policy: QueuePolicy) -> Self {
        self.sink_queue = Some(policy);
        self
    }

    /// Overrides the mode's capacity of the sink's input queue (at least one).
    pub fn sink_capacity(mut self, frames: usize) -> Self {
        self.sink_capacity = Some(frames.max(1));
        self
    }

    /// Attaches an adaptive quality controller, fed with the frames out ten times per
    /// window of its configuration.
    pub fn adaptive_quality(mut self, controller: QualityController) -> Self {
        self.controller = Some(controller);
        self
    }

    /// How often a parallel stage may gain or lose one worker (default
    /// [`DEFAULT_SCALING_PERIOD`]).
    pub fn scaling_period(mut self, period: Duration) -> Self {
        self.scaling_period = period.max(Duration::from_millis(1));
        self
    }

    /// How long a [cancelled](CancelToken::cancel) pipeline may drain (default
    /// [`DEFAULT_DRAIN_TIMEOUT`]).
    pub fn drain_timeout(self, timeout: Duration) -> Self {
        self.control.set_drain_timeout(timeout);
        self
    }

    /// A token that stops the pipeline, available before it runs (for a Ctrl-C
    /// handler installed before [`run`](Pipeline::run)).
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken(Arc::clone(&self.control))
    }

    /// The most frames that can be in flight at once (see
    /// [`Snapshot::in_flight`]) when every stage emits at most one frame per input:
    /// the queues' capacities, one frame per sequential stage, each parallel stage's
    /// reorder window, and one each in the hands of the source and the sink.
    pub fn in_flight_bound(&self) -> usize {
        let edges: usize = (0..=self.stages.len()).map(|i| self.edge(i).1).sum();
        let stages: usize = self.stages.iter().map(StageSpec::holding).sum();
        edges + stages + 2
    }

    /// The policy and capacity of edge `i` (in front of stage `i`, or the sink).
    fn edge(&self, i: usize) -> (QueuePolicy, usize) {
        let (queue, capacity) = match self.stages.get(i) {
            Some(s) => (s.queue, s.capacity),
            None => (self.sink_queue, self.sink_capacity),
        };
        (
            queue.unwrap_or(self.mode.queue_policy()),
            capacity.unwrap_or(self.mode.queue_capacity()).max(1),
        )
    }

    /// Runs the pipeline to its end on new threads, returning at once.
    ///
    /// Errors while starting (a factory that cannot make a parallel stage's first
    /// workers, a thread the system refuses) stop the pipeline at once, and
    /// [`join`](PipelineHandle::join) reports them like any other failure.
    pub fn spawn(self) -> PipelineHandle {
        let supervisor = self.start();
        let shared = Arc::clone(&supervisor.sh);
        // `Builder::spawn` consumes its closure even when it fails: the supervisor
        // waits in a slot the thread takes it from, so that a refusal leaves it here.
        let slot = Arc::new(Mutex::new(Some(supervisor)));
        let theirs = Arc::clone(&slot);
        let spawned = thread::Builder::new()
            .name("reel-supervisor".into())
            .spawn(move || lock(&theirs).take().map(Supervisor::run));
        let ending = match spawned {
            Ok(handle) => Ending::Thread(handle),
            Err(e) => {
                shared.control.fail(PipelineError::Thread(e));
                match lock(&slot).take() {
                    Some(sup) => Ending::Inline(Box::new(sup)),
                    None => Ending::Gone,
                }
            }
        };
        PipelineHandle {
            shared,
            ending: Some(ending),
        }
    }

    /// Runs the pipeline to its end on the calling thread's watch, and reports.
    pub fn run(self) -> Report {
        self.start().run()
    }

    /// Starts every thread but the supervisor.
    fn start(self) -> Supervisor {
        let edges_cfg: Vec<(QueuePolicy, usize)> =
            (0..=self.stages.len()).map(|i| self.edge(i)).collect();
        let Pipeline {
            source,
            sink,
            stages,
            skip,
            controller,
            scaling_period,
            control,
            ..
        } = self;

        let mut txs = Vec::with_capacity(edges_cfg.len());
        let mut rxs = Vec::with_capacity(edges_cfg.len());
        let mut edges = Vec::with_capacity(edges_cfg.len());
        for (i, &(policy, capacity)) in edges_cfg.iter().enumerate() {
            let (tx, rx) = crossbeam_channel::bounded(capacity);
            let to = stages
                .get(i)
                .map_or_else(|| Arc::from("sink"), StageSpec::name);
            edges.push(EdgeCounters {
                to,
                policy,
                capacity,
                dropped: Default::default(),
                rx: rx.clone(),
            });
            txs.push(EdgeTx::new(tx, rx.clone(), policy, i));
            rxs.push(rx);
        }
        let counters = stages
            .iter()
            .map(|s| StageCounters::new(s.name(), matches!(s.kind, Kind::Parallel { .. })))
            .collect();
        let knob = controller.as_ref().map(|c| c.knob().clone());
        let sh = Arc::new(Shared {
            control,
            metrics: Metrics::new(counters, edges, knob),
        });
        let (exit_tx, exit_rx) = crossbeam_channel::bounded::<Never>(0);
        let mut sup = Supervisor {
            sh: Arc::clone(&sh),
            exit: exit_rx,
            threads: Vec::new(),
            controller,
        };
        tracing::debug!(
            stages = stages.len(),
            source = source.name(),
            "pipeline starting"
        );

        // Consumers first, so that every queue has its reader before frames arrive.
        let mut rxs = rxs.into_iter();
        let mut txs = txs.into_iter();
        let source_tx = txs.next();
        let mut stage_io: Vec<(Receiver<Frame>, EdgeTx)> = Vec::with_capacity(stages.len());
        for tx in txs {
            if let Some(rx) = rxs.next() {
                stage_io.push((rx, tx));
            }
        }
        if let Some(rx) = rxs.next() {
            let sh2 = Arc::clone(&sh);
            sup.spawn("reel-sink".into(), "sink".into(), &exit_tx, move || {
                sink_thread(sink, &rx, &sh2);
            });
        }
        for (index, (spec, (rx, tx))) in stages.into_iter().zip(stage_io).enumerate().rev() {
            let name = spec.name();
            let sh2 = Arc::clone(&sh);
            let on_error = spec.on_error;
            match spec.kind {
                Kind::Sequential(stage) => {
                    sh.metrics.stages[index].set_workers(1);
                    let runner = Runner::new(stage, name.clone(), on_error, index);
                    sup.spawn(format!("reel-{name}"), name, &exit_tx, move || {
                        sequential_thread(runner, &rx, &tx, &sh2);
                    });
                }
                Kind::Parallel {
                    factory,
                    min_workers,
                    max_workers,
                    ..
                } => {
                    let spec = ParallelStage {
                        index,
                        name: name.clone(),
                        factory,
                        min_workers,
                        max_workers,
                        on_error,
                        scaling_period,
                    };
                    let exit = exit_tx.clone();
                    sup.spawn(format!("reel-{name}"), name, &exit_tx, move || {
                        parallel::run(spec, rx, tx, sh2, exit);
                    });
                }
            }
        }
        if let Some(tx) = source_tx {
            let sh2 = Arc::clone(&sh);
            sup.spawn("reel-source".into(), "source".into(), &exit_tx, move || {
                source_thread(source, skip, &tx, &sh2);
            });
        }
        sup
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("source", &self.source.name())
            .field("stages", &self.stages)
            .field("mode", &self.mode)
            .field("skip", &self.skip)
            .finish_non_exhaustive()
    }
}

/// Spawns a pipeline thread holding a clone of `exit` until it ends. The name comes
/// from stage names, which plugins choose: NUL bytes (which the system refuses) are
/// replaced.
pub(crate) fn spawn_thread(
    name: String,
    exit: Sender<Never>,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let name = name.replace('\0', "?");
    thread::Builder::new().name(name).spawn(move || {
        let _exit = exit;
        f();
    })
}

/// Watches a running pipeline: enforces the drain deadline, feeds the quality
/// controller, and once every thread has ended, sweeps the queues and reports.
pub(crate) struct Supervisor {
    sh: Arc<Shared>,
    /// Disconnects when every pipeline thread has ended.
    exit: Receiver<Never>,
    threads: Vec<(Arc<str>, JoinHandle<()>)>,
    controller: Option<QualityController>,
}

impl Supervisor {
    fn spawn(
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

    fn run(mut self) -> Report {
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
        Report { outcome, metrics }
    }
}

enum Ending {
    Thread(JoinHandle<Option<Report>>),
    /// The supervisor thread could not start: `join` supervises on its own thread.
    Inline(Box<Supervisor>),
    /// The supervisor was lost (cannot happen: a thread that failed to start never
    /// took it).
    Gone,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running pipeline. Dropping it without [`join`](PipelineHandle::join) aborts the
/// pipeline and waits for its threads, so that every frame goes back to its pool.
pub struct PipelineHandle {
    shared: Arc<Shared>,
    ending: Option<Ending>,
}

impl PipelineHandle {
    /// The metrics now.
    pub fn metrics(&self) -> Snapshot {
        self.shared.snapshot()
    }

    /// A token that stops the pipeline from another thread.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken(Arc::clone(&self.shared.control))
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
            Some(Ending::Inline(_) | Ending::Gone) | None => false,
        }
    }

    /// Waits for the pipeline to end and reports, whatever the ending.
    pub fn join(mut self) -> Report {
        self.wait()
    }

    fn wait(&mut self) -> Report {
        let crashed = |message: String| Report {
            outcome: Outcome::Failed(PipelineError::Crashed {
                thread: "supervisor".into(),
                message,
            }),
            metrics: self.shared.snapshot(),
        };
        match self.ending.take() {
            Some(Ending::Thread(handle)) => match handle.join() {
                Ok(Some(report)) => report,
                Ok(None) => crashed("started without its state".into()),
                Err(panic) => crashed(panic_message(&*panic)),
            },
            Some(Ending::Inline(sup)) => sup.run(),
            Some(Ending::Gone) => crashed("could not start".into()),
            None => Report {
                outcome: Outcome::Cancelled,
                metrics: self.shared.snapshot(),
            },
        }
    }
}

impl Drop for PipelineHandle {
    fn drop(&mut self) {
        if self.ending.is_some() {
            self.shared.control.abort();
            let _ = self.wait();
        }
    }
}

impl std::fmt::Debug for PipelineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// Reads the source until its end (or an error, or a cancellation), skipping frames
/// as asked.
fn source_thread(mut source: Box<dyn Source>, skip: Skip, out: &EdgeTx, sh: &Shared) {
    let mut skipper = Skipper::new(skip);
    let mut read = 0u64;
    loop {
        if !sh.control.is_running() {
            sh.control.mark_interrupted();
            break;
        }
        let next = catch_unwind(AssertUnwindSafe(|| source.next_frame()))
            .unwrap_or_else(|panic| Some(Err(panic_message(&*panic).into())));
        let mut frame = match next {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(source_error)) => {
                sh.control.record(PipelineError::Source {
                    name: source.name().to_string(),
                    frames: read,
                    source: source_error,
                });
                break;
            }
        };
        read += 1;
        if frame.meta.captured_at.is_none() {
            frame.meta.captured_at = Some(Instant::now());
        }
        let behind = || sh.metrics.in_flight_now() > sh.metrics.capacity_now();
        if !skipper.keep(frame.pts, behind) {
            sh.metrics.skipped();
            continue;
        }
        sh.metrics.entered();
        if out.send(frame, sh).is_err() {
            break;
        }
    }
}

/// Runs a sequential stage until its input ends (or the pipeline stops).
fn sequential_thread(mut runner: Runner, input: &Receiver<Frame>, out: &EdgeTx, sh: &Shared) {
    let mut buf: Vec<Frame> = Vec::with_capacity(4);
    loop {
        let timeout = runner.tick_interval(sh);
        let (step, last) = match recv(input, sh, timeout) {
            Recv::Item(frame) => (runner.process(frame, &mut buf, sh), false),
            Recv::Timeout => (runner.tick(&mut buf, sh), false),
            Recv::Closed => (runner.flush(&mut buf, sh), true),
            Recv::Stop => {
                sh.control.mark_interrupted();
                break;
            }
        };
        if let Err(e) = step {
            sh.control.fail(e);
            break;
        }
        if forward(&mut buf, out, sh).is_err() || last {
            break;
        }
    }
    if !buf.is_empty() {
        sh.metrics.discarded(buf.len() as u64);
        buf.clear();
    }
}

/// Sends a call's outputs downstream, in order.
fn forward(buf: &mut Vec<Frame>, out: &EdgeTx, sh: &Shared) -> Result<(), ()> {
    let mut frames = buf.drain(..);
    while let Some(frame) = frames.next() {
        if out.send(frame, sh).is_err() {
            let rest = frames.count() as u64;
            sh.metrics.discarded(rest);
            return Err(());
        }
    }
    Ok(())
}

/// Feeds the sink until its input ends (or the pipeline stops), then finishes it.
fn sink_thread(mut sink: Box<dyn Sink>, input: &Receiver<Frame>, sh: &Shared) {
    let name: Arc<str> = Arc::from("sink");
    let failed = |at: At, res: Result<Result<(), _>, Box<dyn std::any::Any + Send>>| match res {
        Ok(Ok(())) => None,
        Ok(Err(source)) => Some(PipelineError::Stage {
            stage: name.clone(),
            at,
            source,
        }),
        Err(panic) => Some(PipelineError::Panicked {
            stage: name.clone(),
            at,
            message: panic_message(&*panic),
        }),
    };
    loop {
        match recv(input, sh, None) {
            Recv::Item(frame) => {
                let at = At::Frame(frame.index);
                let captured_at = frame.meta.captured_at;
                let res = catch_unwind(AssertUnwindSafe(|| sink.consume(frame)));
                if let Some(e) = failed(at, res) {
                    sh.metrics.in_flight(-1);
                    sh.control.fail(e);
                    return;
                }
                sh.metrics.delivered(captured_at);
            }
            Recv::Closed => break,
            Recv::Stop => {
                sh.control.mark_interrupted();
                break;
            }
            Recv::Timeout => {}
        }
    }
    let res = catch_unwind(AssertUnwindSafe(|| sink.finish()));
    if let Some(e) = failed(At::Flush, res) {
        sh.control.fail(e);
    }
}
