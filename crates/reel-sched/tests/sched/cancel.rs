//! Cancellation: draining, aborting, the drain deadline, dropping the handle. In
//! every ending the report is complete and every buffer is back in the pool.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reel_sched::{Mode, Outcome, Pipeline, RunState, StageSpec};

use crate::common::{Batch, Collect, Frames, Gate, Pass, eventually, pool};

#[test]
fn cancel_drains_the_frames_in_flight() {
    for parallel in [false, true] {
        let pool = pool();
        let (sink, seen) = Collect::new();
        let middle = if parallel {
            StageSpec::parallel("middle", |_| Ok(Box::new(Pass::new("middle").jitter(1))))
                .workers(3, 3)
        } else {
            StageSpec::sequential(Pass::new("middle").jitter(1))
        };
        let pipeline = Pipeline::new(Frames::new(&pool, u64::MAX), sink)
            .mode(Mode::Quality)
            .stage(StageSpec::sequential(Pass::new("first")))
            .stage(middle)
            .stage(StageSpec::sequential(Batch::new(4)));
        let token = pipeline.cancel_token();
        let handle = pipeline.spawn();
        eventually("frames reached the sink", || seen.len() >= 20);
        token.cancel();
        assert!(token.is_cancelled());
        assert_ne!(handle.metrics().state, RunState::Running);
        let report = handle.join();
        assert!(
            matches!(report.outcome, Outcome::Cancelled),
            "{:?}",
            report.outcome
        );
        let m = &report.metrics;
        // Drained: everything that entered came out, in order, flushed batches included.
        assert_eq!(m.frames_out, m.frames_in);
        assert_eq!((m.dropped, m.discarded, m.in_flight), (0, 0, 0));
        assert_eq!(seen.indices(), (0..m.frames_in).collect::<Vec<_>>());
        assert!(seen.finished.load(Ordering::Relaxed));
        assert_eq!(pool.stats().bytes_in_use, 0);
    }
}

#[test]
fn abort_discards_what_is_queued_and_returns_every_buffer() {
    for parallel in [false, true] {
        let pool = pool();
        let (sink, seen) = Collect::new();
        let slow = if parallel {
            StageSpec::parallel("slow", |_| Ok(Box::new(Pass::new("slow").jitter(3)))).workers(2, 2)
        } else {
            StageSpec::sequential(Pass::new("slow").jitter(3))
        };
        let handle = Pipeline::new(Frames::new(&pool, u64::MAX), sink)
            .mode(Mode::Batch)
            .stage(slow)
            // Holds frames inside the stage: they must come back too.
            .stage(StageSpec::sequential(Batch::new(1000)))
            .spawn();
        eventually("the batch stage holds frames", || {
            handle.metrics().stages[1].frames_in >= 10
        });
        handle.abort();
        let report = handle.join();
        assert!(
            matches!(report.outcome, Outcome::Cancelled),
            "{:?}",
            report.outcome
        );
        let m = &report.metrics;
        assert_eq!(m.frames_out, 0, "the batch never filled");
        assert!(m.discarded > 0);
        assert!(
            seen.finished.load(Ordering::Relaxed),
            "the sink is finished on abort"
        );
        assert_eq!(pool.stats().bytes_in_use, 0, "parallel: {parallel}");
    }
}

#[test]
fn a_drain_that_takes_too_long_is_cut_short() {
    let pool = pool();
    let (sink, _) = Collect::new();
    let release = Arc::new(Gate::default());
    // Opens the gate however the test ends, so that a failure cannot hang it.
    let _release_on_exit = OpenOnDrop(Arc::clone(&release));
    let r2 = Arc::clone(&release);
    // The stage waits for the gate on every frame but the first: no drain can finish.
    let stuck = Pass::new("stuck").hook(move |i| {
        if i > 0 {
            r2.wait();
        }
    });
    let handle = Pipeline::new(Frames::new(&pool, u64::MAX), sink)
        .stage(StageSpec::sequential(stuck))
        .drain_timeout(Duration::ZERO)
        .spawn();
    eventually("the stage is stuck", || {
        handle.metrics().stages[0].frames_in >= 2
    });
    handle.cancel();
    eventually("the drain deadline passed", || {
        handle.metrics().state == RunState::Stopping
    });
    // The stuck call returns; the pipeline is discarding, so nothing more is drained.
    release.open();
    let report = handle.join();
    assert!(
        matches!(report.outcome, Outcome::Cancelled),
        "{:?}",
        report.outcome
    );
    let m = &report.metrics;
    assert_eq!(m.state, RunState::Ended);
    assert!(m.discarded > 0, "queued frames were discarded");
    assert_eq!(m.frames_in, m.frames_out + m.discarded);
    assert_eq!(pool.stats().bytes_in_use, 0);
}

struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

#[test]
fn dropping_the_handle_stops_the_pipeline() {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let handle = Pipeline::new(Frames::new(&pool, u64::MAX), sink)
        .stage(StageSpec::sequential(Pass::new("a").jitter(1)))
        .spawn();
    eventually("frames flow", || seen.len() > 3);
    drop(handle);
    assert!(seen.finished.load(Ordering::Relaxed));
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn a_pipeline_cancelled_before_it_runs_reads_nothing() {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let pipeline =
        Pipeline::new(Frames::new(&pool, 10), sink).stage(StageSpec::sequential(Pass::new("a")));
    pipeline.cancel_token().cancel();
    let report = pipeline.run();
    assert!(report.is_cancelled(), "{:?}", report.outcome);
    assert_eq!(report.metrics.frames_in, 0);
    assert_eq!(seen.len(), 0);
    assert_eq!(pool.stats().bytes_in_use, 0);
}

/// A sink that keeps what it saw in itself: the report hands it back.
#[derive(Default)]
struct Keep {
    indices: Vec<u64>,
    finished: bool,
}

impl reel_sched::Sink for Keep {
    fn consume(&mut self, frame: reel_frame::Frame) -> Result<(), reel_sched::StageError> {
        self.indices.push(frame.index);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), reel_sched::StageError> {
        self.finished = true;
        Ok(())
    }
}

#[test]
fn the_report_hands_the_sink_back_in_every_ending() {
    let pool = pool();
    // Completed.
    let report = Pipeline::new(Frames::new(&pool, 12), Keep::default())
        .stage(StageSpec::sequential(Pass::new("a")))
        .run();
    assert!(report.is_completed());
    assert_eq!(report.sink.indices, (0..12).collect::<Vec<_>>());
    assert!(report.sink.finished);
    // Failed in a stage: the sink is back, finished with what it had.
    let report = Pipeline::new(Frames::new(&pool, 50), Keep::default())
        .stage(StageSpec::sequential(crate::common::Failing::new(
            "bad",
            |i| i == 5,
        )))
        .run();
    assert!(report.error().is_some());
    // What was queued when the stage failed is discarded; what got through is in
    // order, and nothing after the failing frame.
    let got = &report.sink.indices;
    assert_eq!(*got, (0..got.len() as u64).collect::<Vec<_>>());
    assert!(got.len() <= 5, "{got:?}");
    // Cancelled before it ran.
    let pipeline = Pipeline::new(Frames::new(&pool, u64::MAX), Keep::default());
    pipeline.cancel_token().cancel();
    let report = pipeline.spawn().join();
    assert!(report.is_cancelled());
    assert!(report.sink.indices.is_empty());
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn one_outside_token_stops_every_pipeline_attached_to_it() {
    let pool = pool();
    let token = reel_sched::CancelToken::new();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            Pipeline::new(Frames::new(&pool, u64::MAX), Keep::default())
                .stage(StageSpec::sequential(Pass::new("a")))
                .cancel_on(&token)
                .spawn()
        })
        .collect();
    eventually("both pipelines run", || {
        handles.iter().all(|h| h.metrics().frames_out >= 5)
    });
    assert!(!token.is_cancelled());
    token.cancel();
    for handle in handles {
        let report = handle.join();
        assert!(report.is_cancelled(), "{:?}", report.outcome);
        let m = &report.metrics;
        assert_eq!(m.frames_out, m.frames_in, "drained, nothing lost");
        assert_eq!(report.sink.indices.len() as u64, m.frames_out);
    }
    // A pipeline attached later starts cancelled and reads nothing.
    let report = Pipeline::new(Frames::new(&pool, u64::MAX), Keep::default())
        .cancel_on(&token)
        .run();
    assert!(report.is_cancelled());
    assert_eq!(report.metrics.frames_in, 0);
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn aborting_an_outside_token_discards() {
    let pool = pool();
    let token = reel_sched::CancelToken::new();
    let handle = Pipeline::new(Frames::new(&pool, u64::MAX), Keep::default())
        .mode(Mode::Batch)
        .stage(StageSpec::sequential(Batch::new(1000)))
        .cancel_on(&token)
        .spawn();
    eventually("the batch stage holds frames", || {
        handle.metrics().stages[0].frames_in >= 10
    });
    token.abort();
    assert!(token.is_aborted());
    let report = handle.join();
    assert!(report.is_cancelled());
    assert_eq!(report.metrics.frames_out, 0, "the batch never filled");
    assert!(report.sink.indices.is_empty());
    assert_eq!(pool.stats().bytes_in_use, 0);
}
