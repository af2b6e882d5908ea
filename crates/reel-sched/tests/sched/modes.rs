//! What each mode and queue policy does when a stage is slower than its input.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reel_sched::{Mode, Pipeline, QueuePolicy, StageSpec};

use crate::common::{Collect, Frames, Gate, Pass, eventually, pool};

#[test]
fn quality_mode_never_drops_a_frame() {
    for parallel in [false, true] {
        let pool = pool();
        let (sink, seen) = Collect::new();
        let slow = if parallel {
            StageSpec::parallel("slow", |_| Ok(Box::new(Pass::new("slow").jitter(2)))).workers(2, 2)
        } else {
            StageSpec::sequential(Pass::new("slow").jitter(2))
        };
        let source = Frames::new(&pool, 200);
        let peak = Arc::clone(&source.peak_buffers);
        let pipeline = Pipeline::new(source, sink)
            .mode(Mode::Quality)
            .stage(StageSpec::sequential(Pass::new("fast")))
            .stage(slow);
        let bound = pipeline.in_flight_bound();
        let report = pipeline.run();
        assert!(report.is_completed(), "{:?}", report.outcome);
        let m = &report.metrics;
        assert_eq!((m.frames_in, m.frames_out, m.dropped), (200, 200, 0));
        assert_eq!(seen.indices(), (0..200).collect::<Vec<_>>());
        // Back-pressure bounds quality mode too: the source waits, frames never pile up.
        assert!(peak.load(Ordering::Relaxed) <= bound);
        assert!(m.max_in_flight as usize <= bound);
        assert_eq!(pool.stats().bytes_in_use, 0);
    }
}

/// A stage three times slower than its source, in logical time: the source makes
/// three frames for each frame the stage starts, and the stage finishes its `k`th
/// call only once the source has made `3(k + 1)` frames (or ended).
fn lockstep_realtime(workers: Option<usize>) {
    const N: u64 = 300;
    let pool = pool();
    let made = Arc::new(AtomicU64::new(0));
    let started = Arc::new(AtomicU64::new(0));
    let source = Frames::new(&pool, N);
    let ended = Arc::clone(&source.ended);
    let peak = Arc::clone(&source.peak_buffers);
    let (m2, s2) = (Arc::clone(&made), Arc::clone(&started));
    let source = source.before(move |i| {
        m2.store(i, Ordering::SeqCst);
        eventually("the slow stage started its share", || {
            s2.load(Ordering::SeqCst) >= i / 3
        });
    });
    let slow = move || {
        let (made, started, ended) = (Arc::clone(&made), Arc::clone(&started), Arc::clone(&ended));
        Pass::new("slow").hook(move |_| {
            let k = started.fetch_add(1, Ordering::SeqCst);
            eventually("the source made three frames per call", || {
                made.load(Ordering::SeqCst) >= 3 * (k + 1) || ended.is_open()
            });
        })
    };
    let slow = match workers {
        None => StageSpec::sequential(slow()),
        Some(n) => StageSpec::parallel("slow", move |_| Ok(Box::new(slow()))).workers(n, n),
    };
    let (sink, seen) = Collect::new();
    let pipeline = Pipeline::new(source, sink)
        .mode(Mode::Realtime)
        .stage(StageSpec::sequential(Pass::new("fast")))
        .stage(slow);
    let bound = pipeline.in_flight_bound();
    let report = pipeline.run();

    assert!(report.is_completed(), "{:?}", report.outcome);
    let m = &report.metrics;
    assert_eq!(m.frames_in, N);
    assert_eq!(
        m.frames_in,
        m.frames_out + m.dropped,
        "every frame is delivered or dropped"
    );
    assert_eq!(m.discarded, 0);
    assert_eq!(m.dropped, m.edges.iter().map(|e| e.dropped).sum::<u64>());
    // The stage handles at most a third of the frames, plus what is in flight at the end.
    assert!(m.dropped >= N / 2, "dropped only {}", m.dropped);
    assert!(
        m.max_in_flight as usize <= bound,
        "{} in flight > {bound}",
        m.max_in_flight
    );
    let peak = peak.load(Ordering::Relaxed);
    assert!(peak <= bound, "{peak} buffers in use > {bound}");
    // Drops keep the newest: the last frame always gets through, and order holds.
    let got = seen.indices();
    assert_eq!(got.last(), Some(&(N - 1)));
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn realtime_mode_bounds_frames_in_flight_and_accounts_for_each() {
    lockstep_realtime(None);
}

#[test]
fn realtime_mode_with_parallel_workers() {
    lockstep_realtime(Some(2));
}

/// Runs ten frames into a stage that holds frame 0 until the source has sent all ten
/// (or 20 s have passed), through an input queue of two with `policy`; returns what
/// reached the sink.
fn overflow(policy: QueuePolicy) -> (Vec<u64>, u64) {
    overflow_aged(policy, None)
}

fn overflow_aged(policy: QueuePolicy, age: Option<Duration>) -> (Vec<u64>, u64) {
    let pool = pool();
    let first_taken = Arc::new(Gate::default());
    let mut source = Frames::new(&pool, 10);
    source.age = age;
    let ended = Arc::clone(&source.ended);
    let taken = Arc::clone(&first_taken);
    let source = source.before(move |i| {
        if i == 1 {
            taken.wait();
        }
    });
    let held = Pass::new("held").hook(move |i| {
        if i == 0 {
            first_taken.open();
            ended.wait_at_most(Duration::from_secs(20));
        }
    });
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(source, sink)
        .mode(Mode::Quality)
        .stage(StageSpec::sequential(held).queue(policy).capacity(2))
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    let m = &report.metrics;
    assert_eq!(m.frames_in, m.frames_out + m.dropped);
    assert_eq!(
        m.stages[0].dropped, m.dropped,
        "drops are counted on the stage's edge"
    );
    assert_eq!(pool.stats().bytes_in_use, 0);
    (seen.indices(), m.dropped)
}

#[test]
fn drop_newest_keeps_the_queued_frames() {
    assert_eq!(overflow(QueuePolicy::DropNewest), (vec![0, 1, 2], 7));
}

#[test]
fn drop_oldest_keeps_the_newest_frames() {
    assert_eq!(overflow(QueuePolicy::DropOldest), (vec![0, 8, 9], 7));
}

#[test]
fn block_for_a_deadline_then_drops_the_oldest() {
    let wait = Duration::from_millis(1);
    assert_eq!(overflow(QueuePolicy::BlockFor(wait)), (vec![0, 8, 9], 7));
}

#[test]
fn block_for_counts_the_frame_age_from_its_capture() {
    // Frames captured a minute ago are past a 30 s deadline: they never wait (had
    // they waited 30 s each, the held stage would have let frames 1 and 2 through).
    let policy = QueuePolicy::BlockFor(Duration::from_secs(30));
    let aged = overflow_aged(policy, Some(Duration::from_secs(60)));
    assert_eq!(aged, (vec![0, 8, 9], 7));
}

#[test]
fn modes_pick_policies() {
    assert_eq!(Mode::Quality.queue_policy(), QueuePolicy::Block);
    assert_eq!(Mode::Batch.queue_policy(), QueuePolicy::Block);
    assert_eq!(Mode::Realtime.queue_policy(), QueuePolicy::DropOldest);
    assert_eq!(Mode::Realtime.queue_capacity(), 1);
    assert!(matches!(
        Mode::Balanced.queue_policy(),
        QueuePolicy::BlockFor(_)
    ));
    assert!(Mode::Batch.queue_capacity() > Mode::Quality.queue_capacity());
    for m in [Mode::Quality, Mode::Batch, Mode::Realtime, Mode::Balanced] {
        assert_eq!(m.name().parse::<Mode>(), Ok(m));
    }
    assert!("fast".parse::<Mode>().is_err());
}
