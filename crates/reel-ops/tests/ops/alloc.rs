//! The per-frame operations allocate nothing once warmed up.
//!
//! A counting global allocator counts the allocations made on the current thread,
//! so tests running beside each other do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use reel_frame::PixelFormat;
use reel_ops::convert::convert;
use reel_ops::letterbox::letterbox_rgb;
use reel_ops::resize::{Filter, Resizer};
use reel_ops::tensor::rgb_to_chw_f32;

use crate::util::textured_rgb;

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

/// Allocations `f` makes on this thread.
pub fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 100]))) >= 1);
}

#[test]
fn convert_allocates_nothing() {
    let (w, h) = (320u32, 180u32);
    let rgb = textured_rgb(w, h);
    let mut bufs: Vec<Vec<u8>> = PixelFormat::ALL
        .iter()
        .map(|f| vec![0u8; f.frame_size(w, h).unwrap()])
        .collect();
    for (i, from) in PixelFormat::ALL.into_iter().enumerate() {
        convert(&rgb, PixelFormat::Rgb24, &mut bufs[i], from, w, h).unwrap();
    }
    for (i, from) in PixelFormat::ALL.into_iter().enumerate() {
        for (j, to) in PixelFormat::ALL.into_iter().enumerate() {
            if i == j {
                continue;
            }
            let (src, dst) = if i < j {
                let (a, b) = bufs.split_at_mut(j);
                (&a[i], &mut b[0])
            } else {
                let (a, b) = bufs.split_at_mut(i);
                (&b[0], &mut a[j])
            };
            let n = allocations(|| convert(src, from, dst, to, w, h).unwrap());
            assert_eq!(n, 0, "{from} -> {to}");
        }
    }
}

#[test]
fn resize_and_letterbox_allocate_nothing_once_warm() {
    let (sw, sh) = (1280u32, 720u32);
    for filter in [Filter::Nearest, Filter::Bilinear, Filter::Area] {
        let mut r = Resizer::new(filter);
        for format in PixelFormat::ALL {
            let src = vec![77u8; format.frame_size(sw, sh).unwrap()];
            let mut dst = vec![0u8; format.frame_size(320, 180).unwrap()];
            // First call builds the tables and scratch; later calls reuse them.
            r.resize(&src, sw, sh, &mut dst, 320, 180, format).unwrap();
            for _ in 0..3 {
                let n = allocations(|| r.resize(&src, sw, sh, &mut dst, 320, 180, format).unwrap());
                assert_eq!(n, 0, "{filter:?} {format}");
            }
        }
        let rgb = textured_rgb(sw, sh);
        let mut boxed = vec![0u8; 640 * 640 * 3];
        let mut tensor = vec![0f32; 640 * 640 * 3];
        letterbox_rgb(&mut r, &rgb, sw, sh, &mut boxed, 640, 640, 114).unwrap();
        for _ in 0..3 {
            let n = allocations(|| {
                letterbox_rgb(&mut r, &rgb, sw, sh, &mut boxed, 640, 640, 114).unwrap();
                rgb_to_chw_f32(&boxed, 640, 640, &mut tensor).unwrap();
            });
            assert_eq!(n, 0, "{filter:?} letterbox");
        }
    }
}

#[test]
fn alternating_sizes_stay_within_the_table_cache() {
    // Two source sizes into one target: four axis tables, all kept.
    let mut r = Resizer::new(Filter::Area);
    let a = vec![1u8; 1280 * 720 * 3];
    let b = vec![1u8; 1920 * 1080 * 3];
    let mut dst = vec![0u8; 320 * 180 * 3];
    r.resize(&a, 1280, 720, &mut dst, 320, 180, PixelFormat::Rgb24)
        .unwrap();
    r.resize(&b, 1920, 1080, &mut dst, 320, 180, PixelFormat::Rgb24)
        .unwrap();
    let n = allocations(|| {
        for _ in 0..3 {
            r.resize(&a, 1280, 720, &mut dst, 320, 180, PixelFormat::Rgb24)
                .unwrap();
            r.resize(&b, 1920, 1080, &mut dst, 320, 180, PixelFormat::Rgb24)
                .unwrap();
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn analysers_allocate_nothing_per_frame() {
    use reel_ops::analyze::{AnalyzeConfig, Analyzer, SceneConfig};
    use reel_ops::measure::MeasureConfig;
    use reel_ops::scene::AdaptiveConfig;

    let (w, h) = (320u32, 180u32);
    let frames: Vec<Vec<u8>> = (0..4)
        .map(|i| textured_rgb(w + i, h)[..(w * h * 3) as usize].to_vec())
        .collect();
    let configs = [
        AnalyzeConfig {
            scenes: Some(SceneConfig::default()),
            measure: MeasureConfig::all(),
        },
        AnalyzeConfig {
            scenes: Some(SceneConfig::Adaptive(AdaptiveConfig::default())),
            measure: MeasureConfig::all(),
        },
        AnalyzeConfig {
            scenes: None,
            measure: MeasureConfig {
                brightness: true,
                ..MeasureConfig::default()
            },
        },
    ];
    for config in configs {
        for format in [PixelFormat::Bgr24, PixelFormat::Gray8, PixelFormat::Yuv420p] {
            let inputs: Vec<Vec<u8>> = frames
                .iter()
                .map(|f| {
                    let mut out = vec![0u8; format.frame_size(w, h).unwrap()];
                    convert(f, PixelFormat::Rgb24, &mut out, format, w, h).unwrap();
                    out
                })
                .collect();
            let mut a = Analyzer::new(config);
            // The first frames size the planes and fill the adaptive window.
            for (i, f) in inputs.iter().enumerate() {
                a.analyze(i as u64, f, format, w, h).unwrap();
            }
            let n = allocations(|| {
                for i in 4..40u64 {
                    let r = a.analyze(i, &inputs[i as usize % 4], format, w, h).unwrap();
                    std::hint::black_box(r);
                }
            });
            assert_eq!(n, 0, "{config:?} on {format}");
        }
    }
}
