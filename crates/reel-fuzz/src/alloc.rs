//! The fuzzer's global allocator: the system's, counting the bytes live, with a
//! ceiling that an input's run may not pass.
//!
//! A parser that believes a header claiming a huge frame, table or tensor asks for
//! memory in proportion to the claim, not to the bytes it was given. The run of one
//! input may allocate at most its [`ceiling`](set_ceiling) beyond what was live when
//! it started; an allocation that would pass it is refused (null), so the machine
//! never gives the memory, and the refusal is remembered for the run's verdict.
//! Infallible allocations then abort the process: the supervisor in `main.rs`
//! sees that, and the input was saved before the refusal returned.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The counting allocator.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static CEILING: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The size of the first refused allocation since [`reset`] (0: none).
static REFUSED: AtomicUsize = AtomicUsize::new(0);
/// Set while the refusal hook runs, so that its own allocations pass.
static IN_HOOK: AtomicBool = AtomicBool::new(false);
/// What to do when an allocation is refused (save the input), set by the engine.
static HOOK: std::sync::OnceLock<fn(usize)> = std::sync::OnceLock::new();

impl Counting {
    /// Counts `size` more bytes; `false` (nothing counted) when that passes the
    /// ceiling.
    fn admit(size: usize) -> bool {
        let now = LIVE.fetch_add(size, Ordering::Relaxed).saturating_add(size);
        if now > CEILING.load(Ordering::Relaxed) && !IN_HOOK.load(Ordering::Relaxed) {
            LIVE.fetch_sub(size, Ordering::Relaxed);
            if REFUSED
                .compare_exchange(0, size.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
                && let Some(hook) = HOOK.get()
                && !IN_HOOK.swap(true, Ordering::Relaxed)
            {
                hook(size);
                IN_HOOK.store(false, Ordering::Relaxed);
            }
            return false;
        }
        PEAK.fetch_max(now, Ordering::Relaxed);
        true
    }
}

// SAFETY: every call is forwarded to the system allocator with the same layout;
// the counters are atomics and the refusal returns null, as the contract allows.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, forwarded.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !Self::admit(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `alloc` with `layout`; the caller vouches for
        // `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        match (p.is_null(), new_size > old) {
            (true, true) => {
                LIVE.fetch_sub(new_size - old, Ordering::Relaxed);
            }
            (false, false) => {
                LIVE.fetch_sub(old - new_size, Ordering::Relaxed);
            }
            _ => {}
        }
        p
    }
}

/// The bytes live now.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Starts a run: the peak is the bytes live now, no refusal, and at most
/// `budget` more bytes may be live before allocations are refused.
pub fn reset(budget: usize) {
    let now = live();
    PEAK.store(now, Ordering::Relaxed);
    REFUSED.store(0, Ordering::Relaxed);
    set_ceiling(now.saturating_add(budget));
}

/// Sets the most bytes that may be live (`usize::MAX`: no ceiling).
pub fn set_ceiling(bytes: usize) {
    CEILING.store(bytes, Ordering::Relaxed);
}

/// The most bytes live since [`reset`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// The size of the first allocation refused since [`reset`], if any.
pub fn refused() -> Option<usize> {
    match REFUSED.load(Ordering::Relaxed) {
        0 => None,
        n => Some(n),
    }
}

/// Sets what runs when an allocation is first refused (once per process).
pub fn on_refusal(hook: fn(usize)) {
    let _ = HOOK.set(hook);
}
