//! `cargo xtask bench live`: a 30 fps paced `synthetic:` source through one stage
//! costing 0.5×, 1×, 2× and 4× the frame interval (in proportion to the frame's
//! area, so that a lower processing scale costs less), in each mode with adaptive
//! quality at 30 fps, and the same load through a plain unbounded queue as the
//! baseline. Reports latency (arrival to sink) in frame intervals, the drop rate,
//! the final scale and the slope of `stream_lag_s`, as JSON in
//! `target/reel-bench/live.json` (or `REEL_BENCH_OUT`). `REEL_BENCH_SECONDS` sets
//! each run's length (default 20).
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark: a failure ends it"
)]

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reel_decode::DecodeOptions;
use reel_frame::{Frame, PixelFormat};
use reel_host::live::{LiveSource, LiveSpec, LiveStats, LiveSummary};
use reel_pool::FramePool;
use reel_sched::{
    CancelToken, Emit, Mode, Pipeline, QualityConfig, QualityController, QualityKnob, Sink, Source,
    Stage, StageError, StageSpec,
};
use serde_json::{Value, json};

const FPS: f64 = 30.0;
const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;
const LOADS: [f64; 4] = [0.5, 1.0, 2.0, 4.0];

/// Records each frame's lag behind the stream's clock, and drops it.
struct LagSink(LiveStats);

impl Sink for LagSink {
    fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
        self.0.delivered(frame.pts);
        Ok(())
    }
}

/// Sleeps `load` frame intervals for a whole frame, in proportion to its area.
struct Cost(f64);

impl Cost {
    fn of(&self, frame: &Frame) -> Duration {
        let area = f64::from(frame.width() * frame.height()) / f64::from(WIDTH * HEIGHT);
        Duration::from_secs_f64(self.0 / FPS * area)
    }
}

impl Stage for Cost {
    fn name(&self) -> &str {
        "cost"
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        std::thread::sleep(self.of(&frame));
        out.emit(frame);
        Ok(())
    }
}

fn input() -> String {
    format!("synthetic:scenes?width={WIDTH}&height={HEIGHT}&fps={FPS}&frames=10000000&scenes=4")
}

/// Least-squares slope of `(t, v)` points.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mt, mv) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (t, v)| (a + t / n, b + v / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (t, v)| {
        (a + (t - mt) * (v - mv), b + (t - mt) * (t - mt))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

fn engine(mode: Mode, load: f64, seconds: f64) -> Value {
    let pool = FramePool::with_budget(256 << 20);
    let knob = QualityKnob::new(1.0);
    let opts = DecodeOptions::default()
        .with_format(PixelFormat::Rgb24)
        .with_scale(knob.clone());
    let cancel = CancelToken::new();
    let stats = LiveStats::default();
    let spec = LiveSpec {
        duration: Some(Duration::from_secs_f64(seconds)),
        ..LiveSpec::default()
    };
    let source =
        LiveSource::new(&input(), opts, &pool, spec, stats.clone(), cancel.clone()).unwrap();
    let handle = Pipeline::new(source, LagSink(stats.clone()))
        .mode(mode)
        .stage(StageSpec::sequential(Cost(load)))
        .adaptive_quality(QualityController::new(
            QualityConfig::new(FPS),
            knob.clone(),
        ))
        .cancel_on(&cancel)
        .spawn();
    let begun = Instant::now();
    let mut lag = Vec::new();
    while !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(l) = stats.stream_lag_s() {
            lag.push((begun.elapsed().as_secs_f64(), l));
        }
    }
    let report = handle.join();
    let live = LiveSummary::of(&report.metrics, &stats);
    let interval_ms = 1000.0 / FPS;
    json!({
        "mode": mode.name(),
        "load": load,
        "frames_in": live.frames_in,
        "frames_out": live.frames_out,
        "latency_intervals": {
            "p50": live.latency_ms.p50 / interval_ms,
            "p99": live.latency_ms.p99 / interval_ms,
            "max": live.latency_ms.max / interval_ms,
        },
        "drop_rate": live.drop_rate,
        "final_scale": knob.get(),
        "lag_slope_ms_per_s": slope(&lag) * 1000.0,
        "lag_slope_second_half_ms_per_s": slope(&lag[lag.len() / 2..]) * 1000.0,
    })
}

/// The same paced frames and load through one unbounded queue and one thread.
fn unbounded(load: f64, seconds: f64) -> Value {
    let pool = FramePool::with_budget(4 << 30);
    let opts = DecodeOptions::default().with_format(PixelFormat::Rgb24);
    let spec = LiveSpec {
        duration: Some(Duration::from_secs_f64(seconds)),
        ..LiveSpec::default()
    };
    let stats = LiveStats::default();
    let mut source =
        LiveSource::new(&input(), opts, &pool, spec, stats, CancelToken::new()).unwrap();
    let (tx, rx) = mpsc::channel::<Frame>();
    let worker = std::thread::spawn(move || {
        let cost = Cost(load);
        let begun = Instant::now();
        let mut latency = Vec::new();
        let mut lag = Vec::new();
        let mut epoch = None;
        for frame in rx {
            std::thread::sleep(cost.of(&frame));
            let now = Instant::now();
            if let Some(t) = frame.meta.captured_at {
                latency.push(now.duration_since(t).as_secs_f64());
                let e = *epoch.get_or_insert(t - Duration::from_secs_f64(frame.pts));
                lag.push((
                    begun.elapsed().as_secs_f64(),
                    now.duration_since(e).as_secs_f64() - frame.pts,
                ));
            }
        }
        (latency, lag)
    });
    let mut frames_in = 0u64;
    while let Some(Ok(frame)) = source.next_frame() {
        frames_in += 1;
        tx.send(frame).unwrap();
    }
    drop(tx);
    let (mut latency, lag) = worker.join().unwrap();
    latency.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latency
            .get(((latency.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
            * FPS
    };
    json!({
        "mode": "unbounded queue",
        "load": load,
        "frames_in": frames_in,
        "frames_out": latency.len(),
        "latency_intervals": { "p50": at(0.5), "p99": at(0.99), "max": at(1.0) },
        "drop_rate": 0.0,
        "final_scale": 1.0,
        "lag_slope_ms_per_s": slope(&lag) * 1000.0,
        "lag_slope_second_half_ms_per_s": slope(&lag[lag.len() / 2..]) * 1000.0,
    })
}

fn main() {
    let seconds: f64 = std::env::var("REEL_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let mut runs = Vec::new();
    for load in LOADS {
        for mode in [Mode::Realtime, Mode::Balanced, Mode::Quality] {
            let r = engine(mode, load, seconds);
            println!("{r}");
            runs.push(r);
        }
        let r = unbounded(load, seconds);
        println!("{r}");
        runs.push(r);
    }
    let realtime_2x = runs
        .iter()
        .find(|r| r["mode"] == "realtime" && r["load"] == 2.0)
        .cloned()
        .unwrap_or(Value::Null);
    let report = json!({
        "fps": FPS,
        "frame": [WIDTH, HEIGHT],
        "seconds_per_run": seconds,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "targets": {
            "realtime_p99_at_2x_intervals": realtime_2x["latency_intervals"]["p99"],
            "realtime_p99_at_2x_within_3": realtime_2x["latency_intervals"]["p99"].as_f64().is_some_and(|v| v <= 3.0),
            // Over the run's second half: once the quality has settled.
            "realtime_lag_slope_at_2x_ms_per_s": realtime_2x["lag_slope_second_half_ms_per_s"],
            "realtime_lag_slope_within_1ms_per_s": realtime_2x["lag_slope_second_half_ms_per_s"].as_f64().is_some_and(|v| v.abs() <= 1.0),
        },
        "runs": runs,
    });
    let out = std::env::var_os("REEL_BENCH_OUT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/reel-bench/live.json"),
        Into::into,
    );
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    println!("report: {}", out.display());
}
