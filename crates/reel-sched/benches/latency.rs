//! End-to-end latency with one stage twice as slow as a 30 fps live source, in
//! realtime, balanced and quality mode.
//!
//! The source keeps a camera's schedule: frame `i` is captured at `i / 30` s whether
//! or not the pipeline took the previous one (a frame the source could not hand over
//! in time is late by the time it enters, and the latency shows it). The stage takes
//! `2 / 30` s per frame. Prints a table and writes `target/reel-bench/sched-latency.json`.
//!
//! `cargo bench -p reel-sched --bench latency` runs the full measurement (150 frames,
//! about 25 s); without `--bench` (as `cargo test --benches` runs it) a short one.

use std::time::{Duration, Instant};

use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;
use reel_sched::{BoxError, Emit, Mode, NullSink, Pipeline, Source, Stage, StageError, StageSpec};

struct Camera {
    pool: FramePool,
    start: Instant,
    interval: Duration,
    next: u64,
    frames: u64,
}

impl Source for Camera {
    fn name(&self) -> &str {
        "paced camera"
    }

    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
        if self.next == self.frames {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let due = self.start + self.interval * u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let make = || -> Result<Frame, BoxError> {
            let buf = self.pool.acquire(64 * 64)?;
            let mut f = Frame::new(buf, PixelFormat::Gray8, 64, 64, i, i as f64 / 30.0)?;
            f.meta.captured_at = Some(due);
            Ok(f)
        };
        Some(make())
    }
}

struct Slow(Duration);

impl Stage for Slow {
    fn name(&self) -> &str {
        "slow"
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        std::thread::sleep(self.0);
        out.emit(frame);
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (frames, fps) = if full { (150, 30.0) } else { (20, 300.0) };
    let interval = Duration::from_secs_f64(1.0 / fps);
    let mut rows = Vec::new();
    println!(
        "{frames} frames at {fps} fps, one stage taking {:.1} ms per frame",
        ms(interval * 2)
    );
    println!(
        "{:<10} {:>6} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "mode", "in", "out", "dropped", "p50 ms", "p95 ms", "p99 ms", "max ms", "fps out"
    );
    for mode in [Mode::Realtime, Mode::Balanced, Mode::Quality] {
        let pool = FramePool::with_budget(64 << 20);
        let source = Camera {
            pool: pool.clone(),
            start: Instant::now(),
            interval,
            next: 0,
            frames,
        };
        let report = Pipeline::new(source, NullSink)
            .mode(mode)
            .stage(StageSpec::sequential(Slow(interval * 2)))
            .run();
        assert!(report.is_completed(), "{:?}", report.outcome);
        let m = report.metrics;
        assert_eq!(pool.stats().bytes_in_use, 0);
        println!(
            "{:<10} {:>6} {:>6} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7.1}",
            mode.name(),
            m.frames_in,
            m.frames_out,
            m.dropped,
            ms(m.latency.p50),
            ms(m.latency.p95),
            ms(m.latency.p99),
            ms(m.latency.max),
            m.fps_out
        );
        rows.push(serde_json::json!({
            "mode": mode.name(),
            "frames_in": m.frames_in,
            "frames_out": m.frames_out,
            "dropped": m.dropped,
            "latency_ms": {
                "p50": ms(m.latency.p50),
                "p95": ms(m.latency.p95),
                "p99": ms(m.latency.p99),
                "max": ms(m.latency.max),
            },
            "fps_out": m.fps_out,
            "wall_s": m.elapsed.as_secs_f64(),
        }));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/reel-bench");
    let json = serde_json::json!({
        "bench": "sched-latency",
        "source_fps": fps,
        "stage_ms": ms(interval * 2),
        "frames": frames,
        "full": full,
        "modes": rows,
    });
    let written = std::fs::create_dir_all(&out).and_then(|()| {
        std::fs::write(
            out.join("sched-latency.json"),
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        )
    });
    match written {
        Ok(()) => println!("wrote {}", out.join("sched-latency.json").display()),
        Err(e) => eprintln!("could not write the report: {e}"),
    }
}
