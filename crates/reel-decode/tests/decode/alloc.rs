//! In steady state a frame costs no heap allocation on the thread that reads it: the
//! buffer comes from the pool and everything else is reused.
//!
//! A counting global allocator counts the allocations made on the current thread,
//! so tests running beside each other do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use reel_decode::{Backend, DecodeOptions, HwAccel, Sampling, VideoSource, open};
use reel_frame::PixelFormat;
use reel_pool::FramePool;

use crate::fixtures;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Reads `warm` frames, then counts the allocations of reading `n` more (each
/// dropped at once, so the pool recycles one buffer).
fn steady_state(src: &mut dyn VideoSource, warm: usize, n: usize) -> usize {
    for _ in 0..warm {
        drop(src.read_frame().unwrap().unwrap());
    }
    allocations(|| {
        for _ in 0..n {
            drop(src.read_frame().unwrap().unwrap());
        }
    })
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 100]))) >= 1);
}

#[test]
fn synthetic_frames_allocate_nothing() {
    let pool = FramePool::with_budget(64 << 20);
    for format in [PixelFormat::Rgb24, PixelFormat::Yuv420p] {
        let opts = DecodeOptions::default().with_format(format);
        let mut src = open("synthetic:?frames=120&scenes=1", &opts, &pool).unwrap();
        assert_eq!(steady_state(&mut *src, 3, 40), 0, "{format}");
    }
}

#[test]
fn y4m_frames_allocate_nothing() {
    let path = fixtures::video(
        "alloc.y4m",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=2",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let pool = FramePool::with_budget(64 << 20);
    // Straight into the buffer, and through conversion and resizing.
    for opts in [
        DecodeOptions::default().with_format(PixelFormat::Yuv420p),
        DecodeOptions::default().with_size(80, 60),
    ] {
        let opts = opts.with_backend(Backend::Native);
        let mut src = open(path.to_str().unwrap(), &opts, &pool).unwrap();
        assert_eq!(steady_state(&mut *src, 3, 30), 0);
    }
}

#[test]
fn ffmpeg_frames_allocate_nothing_on_the_reading_thread() {
    let path = fixtures::faststart_mp4();
    let pool = FramePool::with_budget(64 << 20);
    for sampling in [Sampling::all(), Sampling::every(3)] {
        let opts = DecodeOptions::default()
            .with_hwaccel(HwAccel::None)
            .with_sampling(sampling);
        let mut src = open(path.to_str().unwrap(), &opts, &pool).unwrap();
        assert_eq!(steady_state(&mut *src, 5, 25), 0, "{sampling:?}");
    }
}

#[cfg(feature = "libav")]
#[test]
fn in_process_frames_allocate_nothing_on_the_reading_thread() {
    let path = fixtures::faststart_mp4();
    let pool = FramePool::with_budget(64 << 20);
    for (sampling, size) in [
        (Sampling::all(), (64, 48)),
        (Sampling::every(3), (320, 240)),
    ] {
        let opts = DecodeOptions::default()
            .with_hwaccel(HwAccel::None)
            .with_backend(Backend::Libav)
            .with_size(size.0, size.1)
            .with_sampling(sampling);
        let mut src = open(path.to_str().unwrap(), &opts, &pool).unwrap();
        assert_eq!(src.info().decoder.backend, "libav");
        assert_eq!(steady_state(&mut *src, 5, 25), 0, "{sampling:?}");
    }
}
