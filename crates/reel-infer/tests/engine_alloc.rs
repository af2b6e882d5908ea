//! The CPU engine's forward pass allocates nothing, and touches no new page, once
//! its buffers are planned: on every thread, at batch 1 and at batch 8. (A test
//! binary of its own: the counter is global, so nothing else may run beside it.)
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use candle_core::{DType, Device};
use reel_infer::YoloV8;
use reel_infer::cpu::{KernelSet, Network, Runner};
use reel_infer::weights::Weights;

/// Counts the allocations of every thread while `COUNTING` is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn weights_path() -> PathBuf {
    let data = std::env::var_os("REEL_SHARED_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    let p = data.join("yolov8n-random/yolov8n_random.safetensors");
    assert!(p.is_file(), "missing reference fixture {}", p.display());
    p
}

/// Minor page faults of this process so far (`/proc/self/stat`).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.split_whitespace().nth(7).unwrap().parse().unwrap()
}

#[test]
fn a_forward_pass_allocates_nothing_in_steady_state() {
    let w = Weights::open(&weights_path(), &Device::Cpu, DType::F32).unwrap();
    let model = YoloV8::load(&w, None).unwrap();
    let net = model.build_cpu_network(KernelSet::best()).unwrap();
    let (h, w) = (320, 256);
    let per = net.rows() * Network::anchors(h, w);
    let x: Vec<f32> = (0..8 * 3 * h * w)
        .map(|i| (i % 255) as f32 / 255.0)
        .collect();
    let mut out = vec![0f32; 8 * per];
    let mut runner = Runner::new(2);
    // The first passes plan the buffers (one workspace at batch 1, two at 8).
    for batch in [1, 8, 1, 8] {
        runner.run(&net, &x, batch, h, w, &mut out).unwrap();
    }
    let faults = minor_faults();
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for batch in [1, 1, 8, 3, 1, 8] {
        runner.run(&net, &x, batch, h, w, &mut out).unwrap();
    }
    COUNTING.store(false, Ordering::SeqCst);
    let n = ALLOCATIONS.load(Ordering::SeqCst);
    let faults = minor_faults() - faults;
    println!("steady state: {n} allocations, {faults} minor page faults in six forward passes");
    assert_eq!(n, 0, "{n} allocations in six steady-state forward passes");
    assert_eq!(
        faults, 0,
        "{faults} page faults in six steady-state forward passes"
    );
    assert!(out[..per].iter().all(|v| v.is_finite()));
}
