//! Always-on metrics: atomic counters written by the pipeline's threads and
//! histograms behind uncontended locks, read at any time as a [`Snapshot`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use hdrhistogram::Histogram;
use reel_frame::Frame;

use crate::control::RunState;
use crate::spec::QueuePolicy;
use crate::stage::QualityKnob;

/// The longest duration a histogram tells apart (longer ones count as this).
const HISTOGRAM_MAX_NS: u64 = 3_600 * 1_000_000_000;

/// The upper bounds of the buckets a [`Percentiles`] counts durations into: from
/// 1 ms to 10 s, for exporting the distribution as a cumulative histogram.
pub const BUCKET_BOUNDS: [Duration; 13] = [
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_micros(2_500_000),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// A duration histogram in nanoseconds, 1 % precision, up to an hour, with the
/// exact sum of what it recorded. Recording never allocates; the lock is only
/// contended while a snapshot reads it.
pub(crate) struct Histo(Mutex<(Histogram<u64>, u128)>);

impl Histo {
    pub(crate) fn new() -> Self {
        let h = Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 2)
            .expect("constant histogram bounds are valid");
        Self(Mutex::new((h, 0)))
    }

    pub(crate) fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        g.0.saturating_record(ns);
        g.1 = g.1.saturating_add(d.as_nanos());
    }

    pub(crate) fn percentiles(&self) -> Percentiles {
        let g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (h, sum) = (&g.0, g.1);
        if h.is_empty() {
            return Percentiles::default();
        }
        let at = |q: f64| Duration::from_nanos(h.value_at_quantile(q));
        let mut buckets = [0; BUCKET_BOUNDS.len()];
        for v in h.iter_recorded() {
            let value = v.value_iterated_to();
            let n = v.count_at_value();
            for (b, bound) in buckets.iter_mut().zip(BUCKET_BOUNDS) {
                if u128::from(value) <= bound.as_nanos() {
                    *b += n;
                }
            }
        }
        Percentiles {
            count: h.len(),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: Duration::from_nanos(h.max()),
            sum: Duration::from_nanos(u64::try_from(sum).unwrap_or(u64::MAX)),
            buckets,
        }
    }
}

/// A distribution of durations (1 % precision).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// How many durations were recorded.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The longest.
    pub max: Duration,
    /// The sum of every duration recorded.
    pub sum: Duration,
    /// How many durations were at most each of [`BUCKET_BOUNDS`] (cumulative, so
    /// never decreasing along the array; a value within 1 % below a bound may
    /// count in the next).
    pub buckets: [u64; BUCKET_BOUNDS.len()],
}

/// Counters of one stage. Each lives on its own cache line so that stages on
/// different threads do not slow each other down.
#[repr(align(64))]
pub(crate) struct StageCounters {
    pub(crate) name: Arc<str>,
    pub(crate) parallel: bool,
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
    pub(crate) workers: AtomicUsize,
    pub(crate) peak_workers: AtomicUsize,
    pub(crate) disabled: AtomicBool,
    pub(crate) service: Histo,
}

impl StageCounters {
    pub(crate) fn new(name: Arc<str>, parallel: bool) -> Self {
        Self {
            name,
            parallel,
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            workers: AtomicUsize::new(0),
            peak_workers: AtomicUsize::new(0),
            disabled: AtomicBool::new(false),
            service: Histo::new(),
        }
    }

    /// Records one call's service time.
    pub(crate) fn served(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(ns, Ordering::Relaxed);
        self.service.record(d);
    }

    pub(crate) fn set_workers(&self, n: usize) {
        self.workers.store(n, Ordering::Relaxed);
        self.peak_workers.fetch_max(n, Ordering::Relaxed);
    }
}

/// Counters of one edge (the queue in front of a stage or the sink).
#[repr(align(64))]
pub(crate) struct EdgeCounters {
    pub(crate) to: Arc<str>,
    pub(crate) policy: QueuePolicy,
    pub(crate) capacity: usize,
    pub(crate) dropped: AtomicU64,
    /// A receiving end kept for reading the depth, and for sweeping what is left in
    /// the queue once every thread has stopped.
    pub(crate) rx: Receiver<Frame>,
}

#[repr(align(64))]
#[derive(Default)]
struct SourceSide {
    frames_in: AtomicU64,
    skipped: AtomicU64,
}

#[repr(align(64))]
#[derive(Default)]
struct SinkSide {
    frames_out: AtomicU64,
}

#[repr(align(64))]
#[derive(Default)]
struct Flight {
    now: AtomicI64,
    max: AtomicI64,
    discarded: AtomicU64,
}

/// Everything a pipeline measures.
pub(crate) struct Metrics {
    started: Instant,
    finished: OnceLock<Instant>,
    source: SourceSide,
    sink: SinkSide,
    flight: Flight,
    latency: Histo,
    pub(crate) stages: Vec<StageCounters>,
    pub(crate) edges: Vec<EdgeCounters>,
    quality: Option<QualityKnob>,
}

impl Metrics {
    pub(crate) fn new(
        stages: Vec<StageCounters>,
        edges: Vec<EdgeCounters>,
        quality: Option<QualityKnob>,
    ) -> Self {
        Self {
            started: Instant::now(),
            finished: OnceLock::new(),
            source: SourceSide::default(),
            sink: SinkSide::default(),
            flight: Flight::default(),
            latency: Histo::new(),
            stages,
            edges,
            quality,
        }
    }

    /// Changes the count of frames in flight by `n`.
    pub(crate) fn in_flight(&self, n: i64) {
        match n.signum() {
            1 => {
                let now = self.flight.now.fetch_add(n, Ordering::Relaxed) + n;
                self.flight.max.fetch_max(now, Ordering::Relaxed);
            }
            -1 => {
                self.flight.now.fetch_sub(-n, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    pub(crate) fn in_flight_now(&self) -> i64 {
        self.flight.now.load(Ordering::Relaxed)
    }

    /// A frame entered the pipeline.
    pub(crate) fn entered(&self) {
        self.source.frames_in.fetch_add(1, Ordering::Relaxed);
        self.in_flight(1);
    }

    /// The source-side skip policy left a frame out.
    pub(crate) fn skipped(&self) {
        self.source.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// An edge's policy dropped a frame.
    pub(crate) fn dropped(&self, edge: usize) {
        if let Some(e) = self.edges.get(edge) {
            e.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.in_flight(-1);
    }

    /// A frame was thrown away because the pipeline stopped.
    pub(crate) fn discarded(&self, n: u64) {
        if n > 0 {
            self.flight.discarded.fetch_add(n, Ordering::Relaxed);
            self.in_flight(-i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The sink consumed a frame captured at `captured_at`.
    pub(crate) fn delivered(&self, captured_at: Option<Instant>) {
        if let Some(t) = captured_at {
            self.latency.record(t.elapsed());
        }
        self.sink.frames_out.fetch_add(1, Ordering::Relaxed);
        self.in_flight(-1);
    }

    pub(crate) fn frames_out(&self) -> u64 {
        self.sink.frames_out.load(Ordering::Relaxed)
    }

    /// Workers across all stages now, plus one for the sink: how many frames the
    /// pipeline can work on at once.
    pub(crate) fn capacity_now(&self) -> i64 {
        let workers: usize = self
            .stages
            .iter()
            .map(|s| s.workers.load(Ordering::Relaxed))
            .sum();
        i64::try_from(workers + 1).unwrap_or(i64::MAX)
    }

    pub(crate) fn finish(&self) {
        let _ = self.finished.set(Instant::now());
    }

    pub(crate) fn snapshot(&self, state: RunState) -> Snapshot {
        let end = self.finished.get().copied().unwrap_or_else(Instant::now);
        let elapsed = end.saturating_duration_since(self.started);
        let frames_out = self.frames_out();
        let edges: Vec<EdgeSnapshot> = self
            .edges
            .iter()
            .map(|e| EdgeSnapshot {
                to: e.to.clone(),
                policy: e.policy,
                capacity: e.capacity,
                depth: e.rx.len(),
                dropped: e.dropped.load(Ordering::Relaxed),
            })
            .collect();
        let stages = self
            .stages
            .iter()
            .zip(&edges)
            .map(|(s, input)| StageSnapshot {
                name: s.name.clone(),
                parallel: s.parallel,
                frames_in: s.frames_in.load(Ordering::Relaxed),
                frames_out: s.frames_out.load(Ordering::Relaxed),
                errors: s.errors.load(Ordering::Relaxed),
                dropped: input.dropped,
                queue_depth: input.depth,
                queue_capacity: input.capacity,
                busy: Duration::from_nanos(s.busy_ns.load(Ordering::Relaxed)),
                workers: s.workers.load(Ordering::Relaxed),
                peak_workers: s.peak_workers.load(Ordering::Relaxed),
                disabled: s.disabled.load(Ordering::Relaxed),
                service: s.service.percentiles(),
            })
            .collect();
        let secs = elapsed.as_secs_f64();
        Snapshot {
            state: if self.finished.get().is_some() {
                RunState::Ended
            } else {
                state
            },
            elapsed,
            frames_in: self.source.frames_in.load(Ordering::Relaxed),
            frames_skipped: self.source.skipped.load(Ordering::Relaxed),
            frames_out,
            dropped: edges.iter().map(|e| e.dropped).sum(),
            discarded: self.flight.discarded.load(Ordering::Relaxed),
            in_flight: u64::try_from(self.flight.now.load(Ordering::Relaxed)).unwrap_or(0),
            max_in_flight: u64::try_from(self.flight.max.load(Ordering::Relaxed)).unwrap_or(0),
            fps_out: if secs > 0.0 {
                frames_out as f64 / secs
            } else {
                0.0
            },
            latency: self.latency.percentiles(),
            quality: self.quality.as_ref().map(QualityKnob::get),
            stages,
            edges,
        }
    }
}

/// A picture of a pipeline's metrics, cheap enough to take several times a second
/// for a progress bar.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Where the pipeline is in its life.
    pub state: RunState,
    /// Time since the pipeline started (until it ended, once it has).
    pub elapsed: Duration,
    /// Frames that entered the pipeline (read from the source and not skipped).
    pub frames_in: u64,
    /// Frames read from the source but left out by its [`Skip`](crate::Skip) policy.
    pub frames_skipped: u64,
    /// Frames the sink consumed.
    pub frames_out: u64,
    /// Frames dropped by queue policies, over all edges.
    pub dropped: u64,
    /// Frames thrown away because the pipeline was aborted or failed.
    pub discarded: u64,
    /// Frames in the pipeline now: queued, being processed or being consumed (frames a
    /// stage holds back between calls are not counted).
    pub in_flight: u64,
    /// The most frames ever in flight at once.
    pub max_in_flight: u64,
    /// Frames consumed per second, on average since the start.
    pub fps_out: f64,
    /// End-to-end latency: from a frame's capture time (`frame.meta.captured_at`, set
    /// by the pipeline when the source leaves it unset) to the end of its
    /// consumption by the sink.
    pub latency: Percentiles,
    /// The quality factor, when an adaptive quality controller is attached.
    pub quality: Option<f32>,
    /// Per stage, in pipeline order.
    pub stages: Vec<StageSnapshot>,
    /// Per edge: one in front of each stage, in order, then the sink's.
    pub edges: Vec<EdgeSnapshot>,
}

impl Snapshot {
    /// The stage with this name, if any.
    pub fn stage(&self, name: &str) -> Option<&StageSnapshot> {
        self.stages.iter().find(|s| &*s.name == name)
    }

    /// Dropped frames as a fraction of the frames that entered (0 when none did).
    pub fn drop_rate(&self) -> f64 {
        if self.frames_in == 0 {
            0.0
        } else {
            self.dropped as f64 / self.frames_in as f64
        }
    }
}

/// One stage's metrics.
#[derive(Debug, Clone)]
pub struct StageSnapshot {
    /// The stage's name.
    pub name: Arc<str>,
    /// Whether it runs parallel workers.
    pub parallel: bool,
    /// Frames it received.
    pub frames_in: u64,
    /// Frames it emitted (including from ticks and flushes).
    pub frames_out: u64,
    /// Errors it reported (skipped or not).
    pub errors: u64,
    /// Frames its input queue's policy dropped.
    pub dropped: u64,
    /// Frames waiting in its input queue now.
    pub queue_depth: usize,
    /// Its input queue's capacity.
    pub queue_capacity: usize,
    /// Time spent in its calls, summed over workers.
    pub busy: Duration,
    /// Workers now.
    pub workers: usize,
    /// The most workers it ever had at once.
    pub peak_workers: usize,
    /// Whether its error policy disabled it (frames now pass through untouched).
    pub disabled: bool,
    /// How long one call to `process` takes.
    pub service: Percentiles,
}

/// One edge's metrics.
#[derive(Debug, Clone)]
pub struct EdgeSnapshot {
    /// The stage the edge feeds (`sink` for the last).
    pub to: Arc<str>,
    /// Its policy.
    pub policy: QueuePolicy,
    /// Its capacity in frames.
    pub capacity: usize,
    /// Frames queued now.
    pub depth: usize,
    /// Frames its policy dropped.
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_into_cumulative_buckets_with_their_exact_sum() {
        let h = Histo::new();
        for ms in [0.5, 3.0, 3.0, 40.0, 2_000.0, 20_000.0] {
            h.record(Duration::from_secs_f64(ms / 1e3));
        }
        let p = h.percentiles();
        assert_eq!(p.count, 6);
        assert_eq!(p.sum, Duration::from_micros(22_046_500));
        // 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10 s.
        assert_eq!(p.buckets, [1, 1, 3, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5]);
        assert_eq!(Histo::new().percentiles().buckets, [0; BUCKET_BOUNDS.len()]);
    }
}
