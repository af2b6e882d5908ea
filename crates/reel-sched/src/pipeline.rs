//! Building a pipeline: the builder, and the start of its threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Receiver;
use reel_frame::Frame;

use crate::control::{CancelToken, Control, Never};
use crate::edge::EdgeTx;
use crate::metrics::{EdgeCounters, Metrics, StageCounters};
use crate::outcome::Report;
use crate::parallel::{self, ParallelStage};
use crate::quality::QualityController;
use crate::runner::Runner;
use crate::shared::Shared;
use crate::spec::{Kind, Mode, QueuePolicy, Skip, StageSpec};
use crate::stage::{Sink, Source};
use crate::supervisor::{PipelineHandle, Supervisor};
use crate::threads::{sequential_thread, sink_thread, source_thread};

/// How long a cancelled pipeline may drain before what is left is discarded, unless
/// set with [`Pipeline::drain_timeout`].
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a parallel stage may gain or lose a worker, unless set with
/// [`Pipeline::scaling_period`].
pub const DEFAULT_SCALING_PERIOD: Duration = Duration::from_millis(500);

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
pub struct Pipeline<K: Sink> {
    source: Box<dyn Source>,
    sink: K,
    stages: Vec<StageSpec>,
    mode: Mode,
    skip: Skip,
    sink_queue: Option<QueuePolicy>,
    sink_capacity: Option<usize>,
    controller: Option<QualityController>,
    scaling_period: Duration,
    control: Arc<Control>,
}

impl<K: Sink + 'static> Pipeline<K> {
    /// A pipeline from `source` straight to `sink`, in [`Mode::Quality`]; add stages
    /// with [`stage`](Pipeline::stage).
    ///
    /// Every error the sink returns stops the pipeline; the sink is finished in every
    /// ending except its own failure, so that it can flush what it has, and the
    /// [`Report`] hands it back: whatever it gathered is its owner's again, with no
    /// shared state on the side.
    pub fn new(source: impl Source + 'static, sink: K) -> Self {
        Self {
            source: Box::new(source),
            sink,
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

    /// A token that stops this pipeline, available before it runs (for a Ctrl-C
    /// handler installed before [`run`](Pipeline::run)).
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken::of(&self.control)
    }

    /// Makes `token` stop this pipeline too (as well as any other attached to it); a
    /// token already cancelled stops it as soon as it starts.
    pub fn cancel_on(self, token: &CancelToken) -> Self {
        token.attach(&self.control);
        self
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
    pub fn spawn(self) -> PipelineHandle<K> {
        PipelineHandle::supervise(self.start())
    }

    /// Runs the pipeline to its end on the calling thread's watch, and reports.
    pub fn run(self) -> Report<K> {
        self.start().run()
    }

    /// Starts every thread but the supervisor.
    fn start(self) -> Supervisor<K> {
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
            sink: Arc::new(Mutex::new(Some(sink))),
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
            let slot = Arc::clone(&sup.sink);
            sup.spawn("reel-sink".into(), "sink".into(), &exit_tx, move || {
                sink_thread(&slot, &rx, &sh2);
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

impl<K: Sink> std::fmt::Debug for Pipeline<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("source", &self.source.name())
            .field("stages", &self.stages)
            .field("mode", &self.mode)
            .field("skip", &self.skip)
            .finish_non_exhaustive()
    }
}
