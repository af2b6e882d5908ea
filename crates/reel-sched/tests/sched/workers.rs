//! Dynamic workers: a parallel stage grows while its queue stays full and its
//! workers busy, and shrinks when they idle, one step per period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reel_sched::{Mode, Pipeline, StageSpec};

use crate::common::{Collect, Frames, Pass, eventually, pool};

#[test]
fn workers_grow_under_load_and_shrink_when_idle() {
    let pool = pool();
    // The source produces while `flowing`, and otherwise waits (the stage idles).
    let flowing = Arc::new(AtomicBool::new(true));
    let done = Arc::new(AtomicBool::new(false));
    // Ends the stream however the test ends, so that a failure cannot hang it.
    let _end_on_exit = SetOnDrop(Arc::clone(&done));
    let (f2, d2) = (Arc::clone(&flowing), Arc::clone(&done));
    let mut source = Frames::new(&pool, u64::MAX).before(move |_| {
        while !f2.load(Ordering::SeqCst) && !d2.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let ended = Arc::clone(&done);
    // Ends the stream once `done` is set.
    source.n = u64::MAX;
    let source = EndWhen {
        inner: source,
        done: ended,
    };

    let made = Arc::new(AtomicUsize::new(0));
    let m2 = Arc::clone(&made);
    let (sink, seen) = Collect::new();
    let handle = Pipeline::new(source, sink)
        .mode(Mode::Quality)
        .scaling_period(Duration::from_millis(40))
        .stage(
            StageSpec::parallel("busy", move |_| {
                m2.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new(Pass::new("busy").hook(|_| {
                    std::thread::sleep(Duration::from_millis(2));
                })))
            })
            .workers(1, 3),
        )
        .spawn();

    let workers = || handle.metrics().stages[0].workers;
    eventually("the stage grew to three workers", || workers() == 3);
    flowing.store(false, Ordering::SeqCst);
    eventually("the stage shrank to one worker", || workers() == 1);
    done.store(true, Ordering::SeqCst);
    let report = handle.join();

    assert!(report.is_completed(), "{:?}", report.outcome);
    let m = &report.metrics;
    assert_eq!(m.stages[0].peak_workers, 3);
    assert!(
        made.load(Ordering::SeqCst) >= 3,
        "one instance per worker started"
    );
    assert_eq!((m.frames_out, m.dropped), (m.frames_in, 0));
    assert_eq!(seen.indices(), (0..m.frames_in).collect::<Vec<_>>());
    assert_eq!(pool.stats().bytes_in_use, 0);
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Wraps a source, ending the stream when `done` is set.
struct EndWhen {
    inner: Frames,
    done: Arc<AtomicBool>,
}

impl reel_sched::Source for EndWhen {
    fn name(&self) -> &str {
        "until done"
    }

    fn next_frame(&mut self) -> Option<Result<reel_frame::Frame, reel_sched::BoxError>> {
        if self.done.load(Ordering::SeqCst) {
            return None;
        }
        self.inner.next_frame()
    }
}

#[test]
fn a_fixed_worker_count_does_not_change() {
    let pool = pool();
    let (sink, _) = Collect::new();
    let report = Pipeline::new(Frames::new(&pool, 200), sink)
        .scaling_period(Duration::from_millis(1))
        .stage(
            StageSpec::parallel("fixed", |_| Ok(Box::new(Pass::new("fixed").jitter(1))))
                .workers(2, 2),
        )
        .run();
    assert!(report.is_completed());
    assert_eq!(report.metrics.stages[0].peak_workers, 2);
    assert_eq!(pool.stats().bytes_in_use, 0);
}
