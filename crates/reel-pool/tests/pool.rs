//! Behaviour of the pool under threads, panics, waits and memory pressure, and the
//! proof that a steady stream of acquire/release cycles allocates nothing.

#![allow(clippy::unwrap_used)] // tests unwrap what they set up themselves

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use reel_pool::monitor::{MemoryProbe, MemorySample, MonitorConfig};
use reel_pool::{FramePool, MemoryMonitor, PoolConfig, PoolError, PressureLevel, size_class};

/// Counts heap allocations made by the current thread, so tests running in parallel
/// in this binary do not disturb each other's counts.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator; the counter is a const-initialised
// thread-local that never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const MIB: usize = 1 << 20;

#[test]
fn steady_state_acquire_release_allocates_nothing() {
    let pool = FramePool::with_budget(64 * MIB);
    let sizes = [1920 * 1080 * 3, 640 * 640 * 3 * 4, 4096];
    // The counter sees the pool's own allocations: a first acquire allocates.
    let before = allocations();
    drop(pool.acquire(sizes[0]).unwrap());
    assert!(allocations() > before, "the counting allocator counts");
    // Warm-up: every size class has a free buffer and every list has capacity.
    for _ in 0..4 {
        let held: Vec<_> = sizes.iter().map(|&s| pool.acquire(s).unwrap()).collect();
        drop(held);
    }
    let before = allocations();
    for i in 0..3000 {
        let mut buf = pool.acquire(sizes[i % sizes.len()]).unwrap();
        buf[0] = i as u8;
        drop(buf);
    }
    let mut a = pool.acquire(sizes[0]).unwrap();
    let b = pool.acquire(sizes[1]).unwrap();
    a[1] = b[1];
    drop((a, b));
    let _ = pool.stats();
    assert_eq!(
        allocations() - before,
        0,
        "acquire/release allocated in steady state"
    );
}

#[test]
fn buffers_come_back_when_threads_panic() {
    let pool = FramePool::with_budget(16 * MIB);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let pool = pool.clone();
            thread::spawn(move || {
                let _a = pool.acquire(MIB).unwrap();
                let _b = pool.acquire(MIB / 2).unwrap();
                if i % 2 == 0 {
                    panic!("worker {i} fails while holding buffers");
                }
            })
        })
        .collect();
    let panicked = handles
        .into_iter()
        .map(|h| h.join())
        .filter(Result::is_err)
        .count();
    assert_eq!(panicked, 2);
    let s = pool.stats();
    assert_eq!(s.bytes_in_use, 0);
    assert_eq!(s.buffers_in_use, 0);
}

#[test]
fn buffers_come_back_when_holders_are_dropped_mid_way() {
    let pool = FramePool::with_budget(8 * MIB);
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    let producer = {
        let pool = pool.clone();
        thread::spawn(move || {
            for _ in 0..64 {
                let buf = pool.acquire(MIB / 4).unwrap();
                if tx.send(buf).is_err() {
                    return; // the consumer went away mid-stream
                }
            }
        })
    };
    // The consumer takes a few and walks away with the rest still queued.
    for _ in 0..5 {
        drop(rx.recv().unwrap());
    }
    drop(rx);
    producer.join().unwrap();
    assert_eq!(pool.stats().bytes_in_use, 0);
}

#[test]
fn a_waiting_acquire_wakes_when_a_buffer_returns() {
    let pool = FramePool::with_budget(2 * MIB);
    let held = pool.acquire(2 * MIB).unwrap();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || pool.acquire(MIB).map(|b| b.len()))
    };
    // Wait (without timing) until the waiter is blocked in the pool.
    while pool.stats().waits == 0 {
        thread::yield_now();
    }
    drop(held);
    assert_eq!(waiter.join().unwrap(), Ok(MIB));
    let s = pool.stats();
    assert_eq!(s.waits, 1);
    assert!(s.wait_time > Duration::ZERO);
    assert_eq!(s.bytes_in_use, 0);
}

/// A probe that reports whatever used percentage the test sets.
struct Dial(Arc<Mutex<VecDeque<f64>>>);

impl MemoryProbe for Dial {
    fn sample(&mut self) -> MemorySample {
        let pct = self.0.lock().unwrap().pop_front().unwrap_or(10.0);
        MemorySample {
            total_bytes: 1 << 34,
            available_bytes: ((1u64 << 34) as f64 * (1.0 - pct / 100.0)) as u64,
            process_rss_bytes: 1 << 26,
        }
    }
}

#[test]
fn the_pool_follows_the_monitor() {
    let readings = Arc::new(Mutex::new(VecDeque::from([10.0, 92.0, 10.0])));
    let monitor = MemoryMonitor::manual_with_probe(
        MonitorConfig {
            cooldown: std::time::Duration::ZERO,
            ..MonitorConfig::default()
        },
        Box::new(Dial(Arc::clone(&readings))),
    );
    let pool = FramePool::with_budget(16 * MIB);
    let _sub = pool.follow(&monitor);
    drop(pool.acquire(4 * MIB).unwrap());
    assert_eq!(pool.stats().bytes_allocated, 4 * MIB);

    assert_eq!(monitor.poll(Instant::now()), PressureLevel::Critical);
    let s = pool.stats();
    assert_eq!(s.effective_budget_bytes, 8 * MIB);
    assert_eq!(s.bytes_allocated, 0, "idle buffers released under pressure");

    assert_eq!(monitor.poll(Instant::now()), PressureLevel::Normal);
    assert_eq!(pool.stats().effective_budget_bytes, 16 * MIB);
}

/// One thread's script: the sizes it acquires and how many it holds at once.
fn thread_script() -> impl Strategy<Value = (Vec<usize>, usize)> {
    (prop::collection::vec(1usize..(3 * MIB), 1..40), 1usize..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_budget_is_never_exceeded(
        scripts in prop::collection::vec(thread_script(), 2..6),
        budget_mib in 6usize..24,
        critical_every in 0usize..5,
    ) {
        let budget = budget_mib * MIB;
        let hard = budget + 4 * MIB;
        let pool = FramePool::new(PoolConfig::with_budget(budget).hard_limit(hard));
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let pool = pool.clone();
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut worst = 0;
                while !done.load(Ordering::Relaxed) {
                    worst = worst.max(pool.stats().bytes_allocated);
                    thread::yield_now();
                }
                worst
            })
        };
        thread::scope(|s| {
            for (sizes, hold) in &scripts {
                let pool = pool.clone();
                s.spawn(move || {
                    let mut held = VecDeque::new();
                    for (i, &len) in sizes.iter().enumerate() {
                        let priority = if critical_every > 0 && i % critical_every == 0 {
                            reel_pool::Priority::Critical
                        } else {
                            reel_pool::Priority::Normal
                        };
                        // Threads that hold buffers while asking for more can starve
                        // each other (as stages would): when a request is not served
                        // soon, give back everything held and ask again.
                        let buf = loop {
                            match pool.acquire_with(len, priority, Some(Duration::from_millis(2))) {
                                Ok(buf) => break buf,
                                Err(PoolError::Timeout { .. }) => held.clear(),
                                Err(e) => panic!("{e}"),
                            }
                        };
                        held.push_back(buf);
                        if held.len() >= *hold {
                            held.pop_front();
                        }
                    }
                });
            }
        });
        done.store(true, Ordering::Relaxed);
        let worst = watcher.join().unwrap();
        let s = pool.stats();
        prop_assert!(worst <= hard, "saw {worst} allocated, hard limit {hard}");
        prop_assert!(s.peak_bytes <= hard, "peak {} over hard limit {hard}", s.peak_bytes);
        if critical_every == 0 {
            prop_assert!(s.peak_bytes <= budget, "peak {} over budget {budget}", s.peak_bytes);
        }
        prop_assert_eq!(s.bytes_in_use, 0);
        prop_assert!(s.bytes_allocated <= budget);
        // Every class that was ever requested fits the budget.
        prop_assert!(scripts.iter().flat_map(|(v, _)| v).all(|&l| size_class(l).unwrap() <= budget));
    }
}
