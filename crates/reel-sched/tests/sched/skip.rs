//! Source-side skipping in a running pipeline.

use std::sync::Arc;

use reel_sched::{Pipeline, Skip, StageSpec};

use crate::common::{Collect, Frames, Pass, pool};

fn run(skip: Skip, n: u64) -> (Vec<u64>, reel_sched::Snapshot) {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, n), sink)
        .stage(StageSpec::sequential(Pass::new("a")))
        .skip(skip)
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    assert_eq!(pool.stats().bytes_in_use, 0);
    (seen.indices(), report.metrics)
}

#[test]
fn every_nth_frame() {
    let (got, m) = run(Skip::EveryNth(4), 18);
    assert_eq!(got, [0, 4, 8, 12, 16]);
    assert_eq!((m.frames_in, m.frames_skipped, m.frames_out), (5, 13, 5));
}

#[test]
fn target_sampling_rate() {
    // The test frames are 30 fps of pts: 7.5 fps keeps one in four.
    let (got, m) = run(Skip::Rate(7.5), 18);
    assert_eq!(got, [0, 4, 8, 12, 16]);
    assert_eq!(m.frames_skipped, 13);
}

#[test]
fn adaptive_skips_while_the_pipeline_is_behind() {
    let pool = pool();
    let source = Frames::new(&pool, 10);
    let ended = Arc::clone(&source.ended);
    // The stage holds frame 0 until the source has read all ten: from the moment more
    // frames are in the pipeline than the stage and the sink can work on (two), the
    // rest are skipped.
    let held = Pass::new("held").hook(move |i| {
        if i == 0 {
            ended.wait();
        }
    });
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(source, sink)
        .stage(StageSpec::sequential(held))
        .skip(Skip::Adaptive)
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    assert_eq!(seen.indices(), [0, 1, 2]);
    let m = &report.metrics;
    assert_eq!((m.frames_in, m.frames_skipped, m.dropped), (3, 7, 0));
    assert_eq!(pool.stats().bytes_in_use, 0);
}
