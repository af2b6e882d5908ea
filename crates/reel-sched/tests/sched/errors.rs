//! Error policies, fatal errors, panics and failing sources and sinks: the pipeline
//! stops (or goes on) as the policy says, names the stage and the frame, and gives
//! every buffer back.

use std::sync::atomic::Ordering;

use reel_sched::{At, ErrorPolicy, Pipeline, PipelineError, StageSpec};

use crate::common::{Collect, Failing, Frames, Pass, pool};

/// The error and its causes, as the command line prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[test]
fn a_failing_stage_stops_the_pipeline_naming_itself_and_the_frame() {
    for parallel in [false, true] {
        let pool = pool();
        let (sink, seen) = Collect::new();
        let detect = if parallel {
            StageSpec::parallel("detect", |_| {
                Ok(Box::new(Failing::new("detect", |i| i == 7)))
            })
            .workers(2, 2)
        } else {
            StageSpec::sequential(Failing::new("detect", |i| i == 7))
        };
        let report = Pipeline::new(Frames::new(&pool, u64::MAX), sink)
            .stage(StageSpec::sequential(Pass::new("before")))
            .stage(detect)
            .stage(StageSpec::sequential(Pass::new("after")))
            .run();
        let e = report.error().expect("the pipeline failed");
        assert_eq!(e.stage(), Some("detect"));
        assert_eq!(e.frame(), Some(7));
        assert_eq!(
            chain(e),
            "stage `detect` failed on frame 7: cannot handle frame 7"
        );
        // Only frames before the failure reached the sink (those still in flight were
        // discarded), and the sink was finished to flush them.
        let got = seen.indices();
        assert!(got.len() <= 7);
        assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>());
        assert!(seen.finished.load(Ordering::Relaxed));
        assert_eq!(report.metrics.stage("detect").unwrap().errors, 1);
        assert_eq!(pool.stats().bytes_in_use, 0, "parallel: {parallel}");
    }
}

#[test]
fn skip_policy_loses_only_the_failing_frames() {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, 30), sink)
        .stage(
            StageSpec::sequential(Failing::new("flaky", |i| i % 3 == 0))
                .on_error(ErrorPolicy::Skip),
        )
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    let expected: Vec<u64> = (0..30).filter(|i| i % 3 != 0).collect();
    assert_eq!(seen.indices(), expected);
    assert_eq!(report.metrics.stages[0].errors, 10);
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn disabled_stage_passes_frames_through_untouched() {
    for parallel in [false, true] {
        let pool = pool();
        let (sink, seen) = Collect::new();
        let broken = if parallel {
            StageSpec::parallel("broken", |_| {
                Ok(Box::new(Failing::new("broken", |i| i < 100)))
            })
            .workers(1, 1)
        } else {
            StageSpec::sequential(Failing::new("broken", |i| i < 100))
        };
        let report = Pipeline::new(Frames::new(&pool, 20), sink)
            .stage(broken.on_error(ErrorPolicy::DisableAfter(3)))
            .run();
        assert!(report.is_completed(), "{:?}", report.outcome);
        let s = &report.metrics.stages[0];
        assert!(s.disabled);
        assert_eq!(s.errors, 3);
        // The first three failed and were lost; the rest passed unmarked.
        let frames = seen.frames.lock().unwrap().clone();
        assert_eq!(
            frames.iter().map(|f| f.0).collect::<Vec<_>>(),
            (3..20).collect::<Vec<_>>()
        );
        assert!(
            frames.iter().all(|f| f.2 == f.0 as u8),
            "a disabled stage touched a frame"
        );
        assert_eq!(pool.stats().bytes_in_use, 0);
    }
}

#[test]
fn a_fatal_error_stops_whatever_the_policy() {
    let pool = pool();
    let (sink, _) = Collect::new();
    let mut stage = Failing::new("writer", |i| i == 4);
    stage.fatal = true;
    let report = Pipeline::new(Frames::new(&pool, u64::MAX), sink)
        .stage(StageSpec::sequential(stage).on_error(ErrorPolicy::Skip))
        .run();
    let e = report.error().expect("the pipeline failed");
    assert!(matches!(
        e,
        PipelineError::Stage {
            at: At::Frame(4),
            ..
        }
    ));
    assert_eq!(e.stage(), Some("writer"));
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn a_panicking_stage_is_reported_not_propagated() {
    for parallel in [false, true] {
        let pool = pool();
        let (sink, _) = Collect::new();
        let make = || {
            let mut s = Failing::new("plugin", |i| i == 2);
            s.panic = true;
            s
        };
        let spec = if parallel {
            StageSpec::parallel("plugin", move |_| Ok(Box::new(make()))).workers(2, 2)
        } else {
            StageSpec::sequential(make())
        };
        let report = Pipeline::new(Frames::new(&pool, u64::MAX), sink)
            .stage(spec)
            .run();
        let e = report.error().expect("the pipeline failed");
        assert_eq!(
            e.to_string(),
            "stage `plugin` panicked on frame 2: the test stage panicked on frame 2"
        );
        assert_eq!(pool.stats().bytes_in_use, 0);
    }
}

#[test]
fn a_source_error_ends_the_stream_after_the_frames_it_delivered() {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let mut source = Frames::new(&pool, 100);
    source.fail_at = Some(5);
    let report = Pipeline::new(source, sink)
        .stage(StageSpec::sequential(Pass::new("a")))
        .run();
    let e = report.error().expect("the pipeline failed");
    assert_eq!(
        chain(e),
        "source `test frames` failed after 5 frames: the test source broke"
    );
    assert_eq!(
        seen.indices(),
        [0, 1, 2, 3, 4],
        "frames before the error went through"
    );
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn a_sink_error_stops_the_pipeline() {
    let pool = pool();
    let (mut sink, seen) = Collect::new();
    sink.fail_at = Some(3);
    let report = Pipeline::new(Frames::new(&pool, u64::MAX), sink)
        .stage(StageSpec::sequential(Pass::new("a")))
        .run();
    let e = report.error().expect("the pipeline failed");
    assert_eq!(
        chain(e),
        "stage `sink` failed on frame 3: the test sink is full"
    );
    assert_eq!(seen.indices(), [0, 1, 2]);
    assert!(
        !seen.finished.load(Ordering::Relaxed),
        "a failed sink is not finished"
    );
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn a_factory_that_cannot_make_workers_fails_the_start() {
    let pool = pool();
    let (sink, _) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, u64::MAX), sink)
        .stage(StageSpec::parallel("model", |_| {
            Err("weights not found".into())
        }))
        .run();
    let e = report.error().expect("the pipeline failed");
    assert_eq!(chain(e), "could not start stage `model`: weights not found");
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn a_flush_error_is_reported_as_such() {
    struct BadFlush;
    impl reel_sched::Stage for BadFlush {
        fn name(&self) -> &str {
            "bad flush"
        }
        fn process(
            &mut self,
            frame: reel_frame::Frame,
            out: &mut dyn reel_sched::Emit,
        ) -> Result<(), reel_sched::StageError> {
            out.emit(frame);
            Ok(())
        }
        fn flush(&mut self, _: &mut dyn reel_sched::Emit) -> Result<(), reel_sched::StageError> {
            Err(reel_sched::StageError::new("could not write the trailer"))
        }
    }
    let pool = pool();
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, 4), sink)
        .stage(StageSpec::sequential(BadFlush))
        .run();
    let e = report.error().expect("the pipeline failed");
    assert_eq!(e.at(), Some(At::Flush));
    assert_eq!(
        chain(e),
        "stage `bad flush` failed while flushing: could not write the trailer"
    );
    // The failure discards what was still queued for the sink.
    let got = seen.indices();
    assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>());
    assert_eq!(report.metrics.stages[0].frames_out, 4);
    assert_eq!(pool.stats().bytes_in_use, 0);
}
