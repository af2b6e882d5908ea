//! Frame order through sequential and parallel stages, with stages that emit one,
//! several or no frames per input.

use proptest::prelude::*;
use reel_sched::{Mode, Pipeline, StageSpec};

use crate::common::{Batch, Collect, Evens, Frames, Pass, Split, pool};

#[test]
fn parallel_workers_keep_frame_order() {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, 300), sink)
        .stage(StageSpec::sequential(Pass::new("first")))
        .stage(
            StageSpec::parallel("jittery", |_| Ok(Box::new(Pass::new("jittery").jitter(2))))
                .workers(4, 4),
        )
        .stage(StageSpec::sequential(Pass::new("last")))
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    assert_eq!(seen.indices(), (0..300).collect::<Vec<_>>());
    let m = &report.metrics;
    assert_eq!((m.frames_in, m.frames_out, m.dropped), (300, 300, 0));
    assert_eq!(m.stage("jittery").unwrap().peak_workers, 4);
    assert!(seen.finished.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn stages_may_emit_several_frames_or_none() {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, 100), sink)
        .stage(StageSpec::parallel("split", |_| Ok(Box::new(Split))).workers(3, 3))
        .stage(StageSpec::parallel("evens", |_| Ok(Box::new(Evens))).workers(2, 2))
        .stage(StageSpec::sequential(Pass::new("after").jitter(1)))
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    let expected: Vec<(u64, bool)> = (0..100)
        .filter(|i| i % 2 == 0)
        .flat_map(|i| [(i, false), (i, true)])
        .collect();
    let got: Vec<(u64, bool)> = seen
        .frames
        .lock()
        .unwrap()
        .iter()
        .map(|f| (f.0, f.1))
        .collect();
    assert_eq!(got, expected);
    let split = report.metrics.stage("split").unwrap();
    assert_eq!((split.frames_in, split.frames_out), (100, 200));
    let evens = report.metrics.stage("evens").unwrap();
    assert_eq!((evens.frames_in, evens.frames_out), (200, 100));
    assert_eq!(report.metrics.in_flight, 0);
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn batching_stage_is_flushed_at_the_end_in_order() {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, 23), sink)
        .stage(StageSpec::sequential(Batch::new(5)))
        .stage(StageSpec::sequential(Batch::new(7)))
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    assert_eq!(seen.indices(), (0..23).collect::<Vec<_>>());
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn batching_stage_ticks_when_frames_stop_coming() {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let sink_seen = std::sync::Arc::clone(&seen);
    // The source makes frame 3 only once the first three reached the sink: only a
    // tick can release them from a batch of ten.
    let source = Frames::new(&pool, 6).before(move |i| {
        if i == 3 {
            crate::common::eventually("the tick released three frames", || sink_seen.len() == 3);
        }
    });
    let mut batch = Batch::new(10);
    batch.tick = Some(std::time::Duration::from_millis(5));
    let report = Pipeline::new(source, sink)
        .stage(StageSpec::sequential(batch))
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    assert_eq!(seen.indices(), (0..6).collect::<Vec<_>>());
    assert_eq!(pool.stats().bytes_in_use, 0);
}

/// What a stage in a generated pipeline does.
#[derive(Debug, Clone, Copy)]
enum Op {
    Pass,
    Split,
    Evens,
}

fn spec(op: Op, workers: Option<usize>, capacity: usize) -> StageSpec {
    let make = move || -> Box<dyn reel_sched::Stage> {
        match op {
            Op::Pass => Box::new(Pass::new("pass").jitter(1)),
            Op::Split => Box::new(Split),
            Op::Evens => Box::new(Evens),
        }
    };
    let s = match workers {
        None => StageSpec::sequential(make()),
        Some(n) => StageSpec::parallel("par", move |_| Ok(make())).workers(n, n),
    };
    s.capacity(capacity)
}

fn expected(n: u64, ops: &[Op]) -> Vec<(u64, bool)> {
    let mut frames: Vec<(u64, bool)> = (0..n).map(|i| (i, false)).collect();
    for op in ops {
        frames = frames
            .into_iter()
            .flat_map(|(i, copy)| match op {
                Op::Pass => vec![(i, copy)],
                Op::Split => vec![(i, copy), (i, true)],
                Op::Evens if i % 2 == 0 => vec![(i, copy)],
                Op::Evens => vec![],
            })
            .collect();
    }
    frames
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Pass), Just(Op::Split), Just(Op::Evens)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any lossless pipeline delivers exactly what its stages make, in order.
    #[test]
    fn lossless_pipelines_deliver_everything_in_order(
        n in 0u64..60,
        stages in proptest::collection::vec((op(), proptest::option::of(1usize..4), 1usize..4), 0..4),
        batch in any::<bool>(),
    ) {
        let pool = pool();
        let (sink, seen) = Collect::new();
        let mut p = Pipeline::new(Frames::new(&pool, n), sink)
            .mode(if batch { Mode::Batch } else { Mode::Quality });
        for &(op, workers, capacity) in &stages {
            p = p.stage(spec(op, workers, capacity));
        }
        let report = p.run();
        prop_assert!(report.is_completed(), "{:?}", report.outcome);
        let ops: Vec<Op> = stages.iter().map(|s| s.0).collect();
        let got: Vec<(u64, bool)> =
            seen.frames.lock().unwrap().iter().map(|f| (f.0, f.1)).collect();
        prop_assert_eq!(got, expected(n, &ops));
        prop_assert_eq!(report.metrics.frames_in, n);
        prop_assert_eq!(report.metrics.dropped, 0);
        prop_assert_eq!(pool.stats().bytes_in_use, 0);
    }
}

#[test]
fn parallel_batching_workers_deliver_every_frame() {
    // Frames held across calls are released with the call that emits them, so their
    // order is not frame order (documented on `StageSpec::parallel`), but none is lost
    // or repeated, whether a batch fills, a tick or the final flush releases it.
    let pool = pool();
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, 101), sink)
        .stage(StageSpec::sequential(Pass::new("pace").jitter(1)))
        .stage(
            StageSpec::parallel("batch", |_| {
                let mut b = Batch::new(4);
                b.tick = Some(std::time::Duration::from_millis(2));
                Ok(Box::new(b))
            })
            .workers(3, 3),
        )
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    let mut got = seen.indices();
    got.sort_unstable();
    assert_eq!(got, (0..101).collect::<Vec<_>>());
    let batch = report.metrics.stage("batch").unwrap();
    assert_eq!((batch.frames_in, batch.frames_out), (101, 101));
    assert_eq!(report.metrics.in_flight, 0);
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn stage_names_are_free_text() {
    let pool = pool();
    let (sink, seen) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, 5), sink)
        .stage(StageSpec::sequential(Pass::new("a name\0with a NUL")))
        .stage(
            StageSpec::parallel("ünïcödé \0 too", |_| Ok(Box::new(Pass::new("p")))).workers(1, 1),
        )
        .run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    assert_eq!(seen.len(), 5);
    assert_eq!(&*report.metrics.stages[0].name, "a name\0with a NUL");
}
