//! Source-side skipping in a running pipeline (choosing frames by number or time
//! is the decoder's sampling, tested in reel-decode).

use std::sync::Arc;

use reel_sched::{Pipeline, Skip, StageSpec};

use crate::common::{Collect, Frames, Pass, pool};

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
