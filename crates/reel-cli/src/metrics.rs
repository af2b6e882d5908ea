//! `--metrics-addr HOST:PORT`: a small HTTP server on its own thread that serves a
//! running job's figures — `/metrics` in the Prometheus text exposition format and
//! `/stats` as JSON (for `reel live`, the same object as a `--stats` line); any
//! other path is 404. The command's loop publishes [`Figures`] (the pipeline's
//! [`Snapshot`], the pool's and the memory monitor's figures, the live source's)
//! every tick; the server renders the latest on each request and stops when the
//! job's command drops it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use reel_host::job::RunningJob;
use reel_host::live::LiveSummary;
use reel_pool::{PoolStats, PressureLevel};
use reel_sched::{BUCKET_BOUNDS, Percentiles, QueuePolicy, Snapshot};

/// The `--metrics-addr` option, shared by the commands that run a job.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Serve the run's figures over HTTP at this address while it runs:
    /// /metrics (Prometheus) and /stats (JSON).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
}

impl MetricsArgs {
    /// Starts the server when the option is given; a busy or unusable address is
    /// an error naming it, before the run starts.
    pub fn start(&self) -> anyhow::Result<Option<MetricsServer>> {
        self.metrics_addr
            .as_deref()
            .map(MetricsServer::start)
            .transpose()
    }
}

/// One `--stats` line of `reel live` (and its `/stats` answer).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatsLine {
    /// Seconds since the start.
    pub t_s: f64,
    /// Frames out per second over the last whole second.
    pub fps_now: f64,
    /// Frames dropped, whatever the reason.
    pub dropped: u64,
    /// Frames in the pipeline now.
    pub in_flight: u64,
    /// Bytes of the frame pool in use now.
    pub pool_bytes: u64,
    /// The live figures.
    #[serde(flatten)]
    pub live: LiveSummary,
}

/// A live job's side of the figures.
#[derive(Debug, Clone)]
pub struct LiveFigures {
    /// The `--stats` line for now.
    pub line: StatsLine,
    /// Whether the input is connected now.
    pub up: bool,
}

/// What the server shows: one consistent picture of the running job.
#[derive(Debug, Clone)]
pub struct Figures {
    /// The pipeline's figures.
    pub snapshot: Snapshot,
    /// The frame pool's.
    pub pool: PoolStats,
    /// The memory monitor's level now.
    pub pressure: PressureLevel,
    /// A live job's figures.
    pub live: Option<LiveFigures>,
}

impl Figures {
    /// The job's figures now (`None` for a job answered by the cache).
    pub fn of(
        job: &RunningJob,
        resources: &reel_host::job::Resources,
        live: Option<LiveFigures>,
    ) -> Option<Self> {
        Some(Self {
            snapshot: consistent_snapshot(job)?,
            pool: resources.pool().stats(),
            pressure: resources.monitor().level(),
            live,
        })
    }
}

/// A snapshot whose frame counts agree with each other: the counters are written
/// by several threads, so a snapshot is taken again (a few times at most) until two
/// in a row read the same counts.
pub fn consistent_snapshot(job: &RunningJob) -> Option<Snapshot> {
    let key = |s: &Snapshot| {
        (
            s.frames_in,
            s.frames_skipped,
            s.frames_out,
            s.dropped,
            s.discarded,
            s.in_flight,
        )
    };
    let mut last = job.metrics()?;
    for _ in 0..8 {
        let now = job.metrics()?;
        if key(&now) == key(&last) {
            return Some(now);
        }
        last = now;
    }
    Some(last)
}

/// The HTTP server; it stops when dropped.
pub struct MetricsServer {
    addr: String,
    figures: Arc<Mutex<Option<Figures>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and starts serving (`/metrics` holds the build info alone
    /// until figures are published).
    pub fn start(addr: &str) -> anyhow::Result<Self> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: cannot listen there: {e}"))?;
        let figures: Arc<Mutex<Option<Figures>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let figures = Arc::clone(&figures);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("reel-metrics".into())
                .spawn(move || serve(&server, &figures, &stop))
                .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: starting the server: {e}"))?
        };
        tracing::info!(addr, "serving /metrics and /stats");
        Ok(Self {
            addr: addr.to_string(),
            figures,
            stop,
            thread: Some(thread),
        })
    }

    /// Makes `figures` what the next requests see.
    pub fn publish(&self, figures: Figures) {
        *self.figures.lock().unwrap_or_else(PoisonError::into_inner) = Some(figures);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::warn!(addr = %self.addr, "the metrics server's thread panicked");
        }
    }
}

/// Answers requests until `stop` is set.
fn serve(server: &tiny_http::Server, figures: &Mutex<Option<Figures>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let request = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "the metrics server stopped");
                return;
            }
        };
        let current = figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let path = request.url().split('?').next().unwrap_or("");
        let (status, body, content_type) = match path {
            "/metrics" => (
                200,
                prometheus_text(current.as_ref()),
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            "/stats" => match stats_json(current.as_ref()) {
                Ok(body) => (200, body, "application/json"),
                Err(e) => (500, format!("encoding the figures: {e}\n"), "text/plain"),
            },
            _ => (404, "not found\n".to_string(), "text/plain"),
        };
        let mut response = tiny_http::Response::from_string(body).with_status_code(status);
        if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
        {
            response.add_header(h);
        }
        if let Err(e) = request.respond(response) {
            tracing::debug!(error = %e, "answering a metrics request");
        }
    }
}

/// `/stats` for a job that is not live: the snapshot's figures, in base units.
#[derive(serde::Serialize)]
struct JobStats<'a> {
    t_s: f64,
    frames_in: u64,
    frames_out: u64,
    dropped: u64,
    discarded: u64,
    in_flight: u64,
    fps_out: f64,
    latency_s: Quantiles,
    quality: f64,
    pool: PoolJson,
    memory_pressure: &'static str,
    stages: Vec<StageJson<'a>>,
    edges: Vec<EdgeJson<'a>>,
}

#[derive(serde::Serialize)]
struct Quantiles {
    count: u64,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl From<&Percentiles> for Quantiles {
    fn from(p: &Percentiles) -> Self {
        Self {
            count: p.count,
            p50: p.p50.as_secs_f64(),
            p95: p.p95.as_secs_f64(),
            p99: p.p99.as_secs_f64(),
            max: p.max.as_secs_f64(),
        }
    }
}

#[derive(serde::Serialize)]
struct PoolJson {
    bytes_in_use: u64,
    peak_bytes: u64,
    budget_bytes: u64,
}

#[derive(serde::Serialize)]
struct StageJson<'a> {
    name: &'a str,
    frames_in: u64,
    frames_out: u64,
    errors: u64,
    workers: usize,
    busy_s: f64,
    service_s: Quantiles,
}

#[derive(serde::Serialize)]
struct EdgeJson<'a> {
    to: &'a str,
    depth: usize,
    capacity: usize,
    dropped: u64,
}

/// `/stats`: a live job's `--stats` line, or the job's figures.
fn stats_json(figures: Option<&Figures>) -> serde_json::Result<String> {
    let Some(f) = figures else {
        return Ok("{}".into());
    };
    if let Some(live) = &f.live {
        return serde_json::to_string(&live.line);
    }
    let s = &f.snapshot;
    serde_json::to_string(&JobStats {
        t_s: s.elapsed.as_secs_f64(),
        frames_in: s.frames_in + s.frames_skipped,
        frames_out: s.frames_out,
        dropped: s.dropped + s.frames_skipped,
        discarded: s.discarded,
        in_flight: s.in_flight,
        fps_out: s.fps_out,
        latency_s: (&s.latency).into(),
        quality: f64::from(s.quality.unwrap_or(1.0)),
        pool: PoolJson {
            bytes_in_use: bytes(f.pool.bytes_in_use),
            peak_bytes: bytes(f.pool.peak_bytes),
            budget_bytes: bytes(f.pool.budget_bytes),
        },
        memory_pressure: f.pressure.as_str(),
        stages: s
            .stages
            .iter()
            .map(|st| StageJson {
                name: &st.name,
                frames_in: st.frames_in,
                frames_out: st.frames_out,
                errors: st.errors,
                workers: st.workers,
                busy_s: st.busy.as_secs_f64(),
                service_s: (&st.service).into(),
            })
            .collect(),
        edges: s
            .edges
            .iter()
            .map(|e| EdgeJson {
                to: &e.to,
                depth: e.depth,
                capacity: e.capacity,
                dropped: e.dropped,
            })
            .collect(),
    })
}

fn bytes(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Why an edge's policy drops frames: `stale` when it waits a while first
/// (balanced), `queue` when it makes room at once (the same split as the live
/// summary's).
fn drop_reason(policy: QueuePolicy) -> &'static str {
    match policy {
        QueuePolicy::BlockFor(_) => "stale",
        _ => "queue",
    }
}

/// Writes Prometheus text exposition, one family at a time.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }

    /// One histogram series: cumulative buckets, `+Inf`, sum and count.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], p: &Percentiles) {
        let bucket = format!("{name}_bucket");
        for (count, bound) in p.buckets.iter().zip(BUCKET_BOUNDS) {
            let le = number(bound.as_secs_f64());
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, *count as f64);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        self.sample(&bucket, &l, p.count as f64);
        self.sample(&format!("{name}_sum"), labels, p.sum.as_secs_f64());
        self.sample(&format!("{name}_count"), labels, p.count as f64);
    }
}

/// A sample value as the exposition format writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A label value with `\`, `"` and line feeds escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `/metrics`: every figure, prefixed `reel_`, in base units.
fn prometheus_text(figures: Option<&Figures>) -> String {
    let mut out = Exposition(String::new());
    let features = reel_host::system::build_features().join(",");
    out.family(
        "reel_build_info",
        "gauge",
        "The version of reel and the features it was built with.",
    );
    out.sample(
        "reel_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("features", &features),
        ],
        1.0,
    );
    let Some(f) = figures else {
        return out.0;
    };
    let s = &f.snapshot;
    out.family(
        "reel_frames_in_total",
        "counter",
        "Frames read from the input.",
    );
    out.sample(
        "reel_frames_in_total",
        &[],
        (s.frames_in + s.frames_skipped) as f64,
    );
    out.family(
        "reel_frames_out_total",
        "counter",
        "Frames the sink consumed.",
    );
    out.sample("reel_frames_out_total", &[], s.frames_out as f64);
    out.family(
        "reel_frames_dropped_total",
        "counter",
        "Frames let go, by edge (the queue in front of a stage or the sink; source: \
         left out while behind) and reason.",
    );
    out.sample(
        "reel_frames_dropped_total",
        &[("edge", "source"), ("reason", "skip")],
        s.frames_skipped as f64,
    );
    for e in &s.edges {
        out.sample(
            "reel_frames_dropped_total",
            &[("edge", &e.to), ("reason", drop_reason(e.policy))],
            e.dropped as f64,
        );
    }
    out.family(
        "reel_frames_discarded_total",
        "counter",
        "Frames thrown away because the run was stopped.",
    );
    out.sample("reel_frames_discarded_total", &[], s.discarded as f64);
    out.family(
        "reel_frames_in_flight",
        "gauge",
        "Frames in the pipeline now (in = out + dropped + discarded + in flight).",
    );
    out.sample("reel_frames_in_flight", &[], s.in_flight as f64);

    out.family(
        "reel_queue_depth",
        "gauge",
        "Frames waiting in an edge's queue now.",
    );
    for e in &s.edges {
        out.sample("reel_queue_depth", &[("edge", &e.to)], e.depth as f64);
    }
    out.family(
        "reel_queue_capacity",
        "gauge",
        "The capacity of an edge's queue, in frames.",
    );
    for e in &s.edges {
        out.sample("reel_queue_capacity", &[("edge", &e.to)], e.capacity as f64);
    }

    // One family per figure of a stage, one sample per stage.
    type StageFigure = fn(&reel_sched::StageSnapshot) -> f64;
    let stage_families: [(&str, &str, &str, StageFigure); 5] = [
        (
            "reel_stage_workers",
            "gauge",
            "Workers of a stage now.",
            |st| st.workers as f64,
        ),
        (
            "reel_stage_frames_in_total",
            "counter",
            "Frames a stage received.",
            |st| st.frames_in as f64,
        ),
        (
            "reel_stage_frames_out_total",
            "counter",
            "Frames a stage emitted.",
            |st| st.frames_out as f64,
        ),
        (
            "reel_stage_errors_total",
            "counter",
            "Errors a stage reported.",
            |st| st.errors as f64,
        ),
        (
            "reel_stage_busy_seconds_total",
            "counter",
            "Time spent in a stage's calls, summed over its workers.",
            |st| st.busy.as_secs_f64(),
        ),
    ];
    for (name, kind, help, figure) in stage_families {
        out.family(name, kind, help);
        for st in &s.stages {
            out.sample(name, &[("stage", &st.name)], figure(st));
        }
    }
    out.family(
        "reel_stage_service_seconds",
        "histogram",
        "How long one call of a stage takes.",
    );
    for st in &s.stages {
        out.histogram(
            "reel_stage_service_seconds",
            &[("stage", &st.name)],
            &st.service,
        );
    }
    out.family(
        "reel_latency_seconds",
        "histogram",
        "End-to-end latency: from a frame's capture (or arrival) to the end of its \
         consumption by the sink.",
    );
    out.histogram("reel_latency_seconds", &[], &s.latency);

    out.family(
        "reel_quality_scale",
        "gauge",
        "The processing scale of adaptive quality (1 without it).",
    );
    out.sample(
        "reel_quality_scale",
        &[],
        f64::from(s.quality.unwrap_or(1.0)),
    );
    out.family(
        "reel_pool_in_use_bytes",
        "gauge",
        "Bytes of the frame pool in use now.",
    );
    out.sample("reel_pool_in_use_bytes", &[], f.pool.bytes_in_use as f64);
    out.family(
        "reel_pool_peak_bytes",
        "gauge",
        "The most bytes of the frame pool ever in use at once.",
    );
    out.sample("reel_pool_peak_bytes", &[], f.pool.peak_bytes as f64);
    out.family(
        "reel_pool_budget_bytes",
        "gauge",
        "The frame pool's byte budget.",
    );
    out.sample("reel_pool_budget_bytes", &[], f.pool.budget_bytes as f64);
    out.family(
        "reel_memory_pressure_level",
        "gauge",
        "Memory pressure: 0 normal, 1 warning, 2 critical, 3 emergency.",
    );
    out.sample(
        "reel_memory_pressure_level",
        &[],
        f64::from(match f.pressure {
            PressureLevel::Normal => 0u8,
            PressureLevel::Warning => 1,
            PressureLevel::Critical => 2,
            PressureLevel::Emergency => 3,
        }),
    );

    if let Some(live) = &f.live {
        let l = &live.line.live;
        out.family(
            "reel_source_up",
            "gauge",
            "Whether the live input is connected now.",
        );
        out.sample("reel_source_up", &[], if live.up { 1.0 } else { 0.0 });
        out.family(
            "reel_source_reconnects_total",
            "counter",
            "Connections made again after one was lost.",
        );
        out.sample("reel_source_reconnects_total", &[], l.reconnects as f64);
        out.family(
            "reel_source_failed_connects_total",
            "counter",
            "Connection attempts that failed.",
        );
        out.sample(
            "reel_source_failed_connects_total",
            &[],
            l.failed_connects as f64,
        );
        out.family(
            "reel_source_stalls_total",
            "counter",
            "Times the input went silent past the stall timeout.",
        );
        out.sample("reel_source_stalls_total", &[], l.stalls as f64);
        if let Some(lag) = l.stream_lag_s {
            out.family(
                "reel_stream_lag_seconds",
                "gauge",
                "Now minus the stream's own clock at the last frame out.",
            );
            out.sample("reel_stream_lag_seconds", &[], lag);
        }
    }
    out.0
}
