//! Preprocessing a batch allocates nothing once its buffers exist.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use reel_infer::ImageRef;
use reel_infer::preprocess::Preprocessor;
use reel_pool::FramePool;

/// Counts the allocations of the thread that asks.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn batch_preprocessing_reuses_its_buffers() {
    // Two sources of different sizes, as a batch of four.
    let a = vec![90u8; 3 * 640 * 360];
    let b: Vec<u8> = (0..3 * 300 * 500).map(|i| (i % 251) as u8).collect();
    let wide = ImageRef {
        data: &a,
        width: 640,
        height: 360,
    };
    let tall = ImageRef {
        data: &b,
        width: 300,
        height: 500,
    };
    let images = [wide, tall, wide, tall];
    let pool = FramePool::with_budget(32 << 20);
    let mut prep = Preprocessor::new(320);
    let mut boxes = Vec::with_capacity(8);
    // The first batches build the resizer's tables and the pool's buffer.
    for _ in 0..2 {
        drop(prep.batch_into(&pool, &images, &mut boxes).unwrap());
    }
    let before = allocations();
    for _ in 0..5 {
        let buf = prep.batch_into(&pool, &images, &mut boxes).unwrap();
        assert_eq!(boxes.len(), 4);
        drop(buf);
    }
    let n = allocations() - before;
    assert_eq!(n, 0, "{n} allocations in five steady-state batches");
    // And the content is right: the padding of the first picture is 114 grey.
    let buf = prep.batch_into(&pool, &images, &mut boxes).unwrap();
    assert_eq!(buf.as_f32()[0], 114.0 / 255.0);
}
