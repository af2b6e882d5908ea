//! Acquire + release of frame-sized buffers from the pool, against allocating a fresh
//! zeroed `Vec` each time, on one thread and on two.

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reel_pool::FramePool;

const CASES: [(&str, usize); 2] = [
    ("rgb24_1080p", 1920 * 1080 * 3),
    ("f32_640x640x3", 640 * 640 * 3 * 4),
];

/// Runs `f` `iters` times on each of `threads` threads at once.
fn on_threads(threads: usize, iters: u64, f: impl Fn() + Sync) -> std::time::Duration {
    let barrier = Barrier::new(threads);
    let start = std::time::Instant::now();
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    f();
                }
            });
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    for (name, len) in CASES {
        for threads in [1usize, 2] {
            let mut g = c.benchmark_group(format!("{name}/{threads}t"));
            g.throughput(Throughput::Elements(threads as u64));
            let pool = FramePool::with_budget(len * 8);
            pool.prewarm(threads, len).expect("prewarm");
            g.bench_function("pool_acquire_release", |b| {
                b.iter_custom(|iters| {
                    on_threads(threads, iters, || {
                        let mut buf = pool.acquire(len).expect("acquire");
                        buf[0] = 1;
                        black_box(&buf);
                    })
                })
            });
            g.bench_function("vec_zeroed", |b| {
                b.iter_custom(|iters| {
                    on_threads(threads, iters, || {
                        let mut v = vec![0u8; len];
                        v[0] = 1;
                        black_box(&v);
                    })
                })
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
