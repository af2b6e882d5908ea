//! Frames per second through three no-op stages: a reel pipeline (quality mode, with
//! sequential stages, and with a parallel middle stage) against a bare chain of
//! crossbeam channels with one thread per stage. The difference is what the engine's
//! policies, metrics, error handling and reordering cost per frame.

use std::thread;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_channel::{Receiver, Sender, bounded};
use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;
use reel_sched::{BoxError, Emit, Mode, NullSink, Pipeline, Source, Stage, StageError, StageSpec};

const FRAMES: u64 = 20_000;
/// Same as quality mode's queues.
const CAPACITY: usize = 4;

fn make_frame(pool: &FramePool, i: u64) -> Frame {
    let buf = pool.acquire(64).expect("the pool has room");
    Frame::new(buf, PixelFormat::Gray8, 8, 8, i, i as f64 / 30.0).expect("64 bytes for 8x8")
}

struct Frames {
    pool: FramePool,
    next: u64,
}

impl Source for Frames {
    fn name(&self) -> &str {
        "frames"
    }

    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
        if self.next == FRAMES {
            return None;
        }
        self.next += 1;
        Some(Ok(make_frame(&self.pool, self.next - 1)))
    }
}

struct Nop;

impl Stage for Nop {
    fn name(&self) -> &str {
        "nop"
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        out.emit(frame);
        Ok(())
    }
}

/// Source thread → three relay threads → sink thread, over bounded channels.
fn crossbeam_chain(pool: &FramePool) {
    let (tx0, mut rx): (Sender<Frame>, Receiver<Frame>) = bounded(CAPACITY);
    let mut handles = Vec::new();
    let pool = pool.clone();
    handles.push(thread::spawn(move || {
        for i in 0..FRAMES {
            tx0.send(make_frame(&pool, i)).expect("relay alive");
        }
    }));
    for _ in 0..3 {
        let (tx, next_rx) = bounded(CAPACITY);
        let input = std::mem::replace(&mut rx, next_rx);
        handles.push(thread::spawn(move || {
            for frame in input {
                tx.send(frame).expect("next relay alive");
            }
        }));
    }
    handles.push(thread::spawn(move || {
        let mut n = 0u64;
        for frame in rx {
            n += frame.index & 1;
        }
        std::hint::black_box(n);
    }));
    for h in handles {
        h.join().expect("no thread panics");
    }
}

fn pipeline(pool: &FramePool, parallel: bool) {
    let middle = if parallel {
        StageSpec::parallel("nop", |_| Ok(Box::new(Nop))).workers(2, 2)
    } else {
        StageSpec::sequential(Nop)
    };
    let report = Pipeline::new(
        Frames {
            pool: pool.clone(),
            next: 0,
        },
        NullSink,
    )
    .mode(Mode::Quality)
    .stage(StageSpec::sequential(Nop))
    .stage(middle)
    .stage(StageSpec::sequential(Nop))
    .run();
    assert_eq!(report.metrics.frames_out, FRAMES);
}

fn bench(c: &mut Criterion) {
    let pool = FramePool::with_budget(16 << 20);
    pool.prewarm(64, 64).expect("prewarm");
    let mut g = c.benchmark_group("three_noop_stages");
    g.throughput(Throughput::Elements(FRAMES));
    g.sample_size(20);
    g.bench_function("crossbeam_chain", |b| b.iter(|| crossbeam_chain(&pool)));
    g.bench_function("pipeline_sequential", |b| b.iter(|| pipeline(&pool, false)));
    g.bench_function("pipeline_parallel_middle", |b| {
        b.iter(|| pipeline(&pool, true))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
