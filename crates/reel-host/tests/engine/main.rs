//! The job engine through its public API: jobs described, started on shared
//! resources, watched, cancelled and joined, on real (synthetic) video.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers, like the tests, fail by panicking"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reel_host::job::{self, AnalysisRequest, JobIo, JobSpec, Resources};
use reel_pool::monitor::{MemoryProbe, MemorySample};
use reel_sched::CancelToken;

const GIB: u64 = 1 << 30;

/// Memory readings the test sets: 16 GiB in all, `available` of it free.
#[derive(Clone)]
struct Readings(Arc<AtomicU64>);

impl Readings {
    fn new() -> Self {
        Self(Arc::new(AtomicU64::new(12 * GIB)))
    }

    fn set_used_percent(&self, used: u64) {
        self.0
            .store(16 * GIB * (100 - used) / 100, Ordering::SeqCst);
    }
}

impl MemoryProbe for Readings {
    fn sample(&mut self) -> MemorySample {
        MemorySample {
            total_bytes: 16 * GIB,
            available_bytes: self.0.load(Ordering::SeqCst),
            process_rss_bytes: 0,
        }
    }
}

/// An analysis of `frames` synthetic 640x360 frames, analysed at full size (so
/// that each frame weighs 675 KiB in the pool).
fn analysis(frames: u32, seed: u32) -> JobSpec {
    let input = format!(
        "synthetic:scenes?width=640&height=360&fps=30&frames={frames}&scenes=3&seed={seed}"
    );
    let request = AnalysisRequest {
        size: Some((640, 360)),
        ..AnalysisRequest::default()
    };
    reel_host::jobs::analyze(input, request, None, Vec::new())
}

#[test]
fn two_jobs_on_one_resources_stay_inside_its_budget_together() {
    let frame = 640 * 360 * 3;
    let budget = 6 * frame as u64;
    let resources = Resources::with_probe(budget, None, Box::new(Readings::new()));
    let a = job::start(analysis(240, 1), &resources, JobIo::default()).unwrap();
    let b = job::start(analysis(240, 2), &resources, JobIo::default()).unwrap();
    // Both run at once: each has delivered frames while the other is still going.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut overlapped = false;
    while !(a.is_finished() && b.is_finished()) && Instant::now() < deadline {
        let (ma, mb) = (a.metrics().unwrap(), b.metrics().unwrap());
        overlapped |=
            ma.frames_out > 0 && mb.frames_out > 0 && !a.is_finished() && !b.is_finished();
        let in_use = resources.pool().stats().bytes_in_use as u64;
        assert!(in_use <= budget, "{in_use} bytes in use, budget {budget}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (sa, sb) = (a.join().unwrap(), b.join().unwrap());
    assert!(overlapped, "the two jobs ran at the same time");
    assert_eq!((sa.frames, sb.frames), (240, 240));
    let stats = resources.pool().stats();
    assert!(
        stats.peak_bytes as u64 <= budget,
        "peak {} over the budget {budget}",
        stats.peak_bytes
    );
    // The budget was the limit: the two together needed all of it.
    assert!(stats.peak_bytes as u64 > budget / 2, "{stats:?}");
    assert_eq!(stats.bytes_in_use, 0);
    // Both summaries report the one pool.
    assert_eq!(sa.pool.budget_bytes, budget);
    assert_eq!(sb.pool.budget_bytes, budget);
}

#[test]
fn the_pool_shrinks_under_critical_pressure_and_recovers() {
    let budget = 64 << 20;
    let readings = Readings::new();
    let resources = Resources::with_probe(budget, None, Box::new(readings.clone()));
    let effective = || resources.pool().stats().effective_budget_bytes as u64;
    assert_eq!(effective(), budget);
    let now = Instant::now();
    readings.set_used_percent(92);
    resources.monitor().poll(now);
    assert_eq!(
        effective(),
        budget / 2,
        "critical pressure halves the budget"
    );
    readings.set_used_percent(97);
    resources.monitor().poll(now + Duration::from_millis(10));
    assert_eq!(effective(), budget / 4, "emergency: a quarter");
    // Back to normal once the monitor's cooldown has passed.
    readings.set_used_percent(40);
    resources.monitor().poll(now + Duration::from_secs(10));
    assert_eq!(effective(), budget);
}

#[test]
fn a_job_is_refused_before_it_starts_when_one_frame_exceeds_the_budget() {
    let resources = Resources::with_probe(100_000, None, Box::new(Readings::new()));
    let e = job::start(analysis(60, 1), &resources, JobIo::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("smaller than one 640x360") && msg.contains("--max-memory"),
        "{msg}"
    );
}

#[test]
fn an_outside_token_cancels_every_job_attached_to_it() {
    let resources = Resources::with_probe(64 << 20, None, Box::new(Readings::new()));
    let token = CancelToken::new();
    let io = || JobIo {
        lines: None,
        cancel: Some(token.clone()),
    };
    let jobs = [
        job::start(analysis(100_000, 1), &resources, io()).unwrap(),
        job::start(analysis(100_000, 2), &resources, io()).unwrap(),
    ];
    while jobs.iter().any(|j| j.metrics().unwrap().frames_out < 3) {
        std::thread::sleep(Duration::from_millis(5));
    }
    token.cancel();
    for j in jobs {
        let s = j.join().unwrap();
        assert!(s.interrupted);
        assert!(s.frames >= 3 && s.frames < 100_000);
    }
    assert_eq!(resources.pool().stats().bytes_in_use, 0);
}

mod live;
