//! A quality-mode pipeline of no-op stages allocates nothing per frame once warm.
//!
//! Its own test binary: the counting allocator is global (a pipeline runs on many
//! threads) and no other test may allocate while it counts.
//!
//! What may still allocate in the window is bounded by the number of threads, not
//! frames: the first time a thread blocks on a channel, crossbeam records it in that
//! channel's list of waiting threads, allocated then (and grown when more threads
//! wait on the shared abort channel at once than ever before). Which thread first
//! blocks when depends on scheduling, so the test allows those few and nothing more:
//! one allocation per frame would be twenty thousand.

#![allow(clippy::unwrap_used)] // tests unwrap what they set up themselves

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;
use reel_sched::{BoxError, Emit, Mode, Pipeline, Sink, Source, Stage, StageError, StageSpec};

/// Counts heap allocations made by every thread.
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every call to the system allocator; the counter is a static atomic.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

const WARM_UP: u64 = 2_000;
const WINDOW: u64 = 20_000;
/// Seven threads (source, two sequential stages, a manager and its two workers, the
/// sink): each may register once, late, in a channel's list of waiters, and the
/// shared abort channel's list may double twice as more threads wait at once.
const ONE_TIME: u64 = 7 + 2;

/// Frames from a pool; reads the allocation counter when frame `WARM_UP` and frame
/// `WARM_UP + WINDOW` are made.
struct Frames {
    pool: FramePool,
    next: u64,
    marks: Arc<[AtomicU64; 2]>,
}

impl Source for Frames {
    fn name(&self) -> &str {
        "frames"
    }

    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
        let i = self.next;
        if i == WARM_UP + WINDOW + 1_000 {
            return None;
        }
        self.next += 1;
        if i == WARM_UP {
            self.marks[0].store(ALLOCATIONS.load(Ordering::SeqCst), Ordering::SeqCst);
        } else if i == WARM_UP + WINDOW {
            self.marks[1].store(ALLOCATIONS.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        let buf = match self.pool.acquire(64) {
            Ok(buf) => buf,
            Err(e) => return Some(Err(e.into())),
        };
        Some(Frame::new(buf, PixelFormat::Gray8, 8, 8, i, i as f64 / 30.0).map_err(Into::into))
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

struct Count(u64);

impl Sink for Count {
    fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
        self.0 += frame.index & 1;
        Ok(())
    }
}

#[test]
fn a_steady_quality_pipeline_allocates_nothing_per_frame() {
    let pool = FramePool::with_budget(1 << 20);
    let marks: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let source = Frames {
        pool: pool.clone(),
        next: 0,
        marks: Arc::clone(&marks),
    };
    let pipeline = Pipeline::new(source, Count(0))
        .mode(Mode::Quality)
        .stage(StageSpec::sequential(Nop))
        .stage(StageSpec::parallel("nop parallel", |_| Ok(Box::new(Nop))).workers(2, 2))
        .stage(StageSpec::sequential(Nop));
    // The pool itself allocates a buffer whenever the frames in flight reach a new
    // high; give it every buffer the pipeline can hold, so that only the pipeline's
    // own allocations are counted.
    pool.prewarm(pipeline.in_flight_bound(), 64).unwrap();
    let report = pipeline.run();
    assert!(report.is_completed(), "{:?}", report.outcome);
    assert_eq!(report.metrics.frames_out, WARM_UP + WINDOW + 1_000);
    let (start, end) = (
        marks[0].load(Ordering::SeqCst),
        marks[1].load(Ordering::SeqCst),
    );
    assert!(start > 0, "the counting allocator counts");
    let allocations = end - start;
    println!("{allocations} allocations over {WINDOW} frames in steady state");
    assert!(
        allocations <= ONE_TIME,
        "{allocations} allocations over {WINDOW} frames in steady state"
    );
    assert_eq!(pool.stats().bytes_in_use, 0);
}
