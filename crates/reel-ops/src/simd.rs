//! Runtime choice of instruction set for the pixel loops.
//!
//! The hot loops are written as plain, branch-free Rust that the compiler
//! vectorises. Built for the baseline x86-64 target that means SSE2 only, so each
//! is also compiled a second time with AVX2 enabled (an `*_avx2` twin carrying
//! `#[target_feature(enable = "avx2")]`) and [`avx2`] picks the twin at run time.
//! On other architectures the twin is an ordinary function and never chosen.

/// Set by tests to run the baseline twins on a CPU that has AVX2.
#[cfg(test)]
pub(crate) static BASELINE_ONLY: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether this CPU runs AVX2 (checked once, then cached by the standard library).
#[inline]
pub(crate) fn avx2() -> bool {
    #[cfg(test)]
    if BASELINE_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    {
        false
    }
}

/// Defines `$name` running `$body` (an expression over the arguments), dispatching
/// to a twin compiled with AVX2 when the CPU has it. Generic parameters are passed
/// in brackets: `multiversion!(fn name[P: Packed, const N: bool](a: &[u8]) -> u64 { … })`.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident [$($gen:tt)*] ($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty $body:block
        avx2 = $avx2:ident, generic = [$($garg:tt)*]
    ) => {
        $(#[$meta])*
        $vis fn $name<$($gen)*>($($arg: $ty),*) -> $ret {
            if $crate::simd::avx2() {
                // SAFETY: the CPU supports AVX2, the only feature the twin enables.
                unsafe { $avx2::<$($garg)*>($($arg),*) }
            } else {
                $body
            }
        }

        #[cfg_attr(any(target_arch = "x86", target_arch = "x86_64"), target_feature(enable = "avx2"))]
        unsafe fn $avx2<$($gen)*>($($arg: $ty),*) -> $ret $body
    };
}

pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use reel_frame::PixelFormat;

    use super::BASELINE_ONLY;
    use crate::convert::convert;
    use crate::measure::{MeasureConfig, Measurer};
    use crate::resize::{Filter, Resizer};
    use crate::scene::{HsvDelta, Weights};

    /// Every vectorised operation on two textured frames, as bytes and scores.
    fn run_all() -> (Vec<Vec<u8>>, Vec<String>) {
        let (w, h) = (173u32, 61u32);
        let mut state = 7u32;
        let frames: Vec<Vec<u8>> = (0..2)
            .map(|_| {
                (0..w * h * 3)
                    .map(|i| {
                        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        ((i / 3 % w) as u8).wrapping_add((state >> 24) as u8 / 4)
                    })
                    .collect()
            })
            .collect();
        let mut bytes = Vec::new();
        for to in [
            PixelFormat::Yuv420p,
            PixelFormat::Nv12,
            PixelFormat::Gray8,
            PixelFormat::Bgr24,
        ] {
            let mut out = vec![0u8; to.frame_size(w, h).unwrap()];
            convert(&frames[0], PixelFormat::Rgb24, &mut out, to, w, h).unwrap();
            let mut back = vec![0u8; (w * h * 3) as usize];
            convert(&out, to, &mut back, PixelFormat::Rgb24, w, h).unwrap();
            bytes.extend([out, back]);
        }
        for filter in [Filter::Nearest, Filter::Bilinear, Filter::Area] {
            let mut r = Resizer::new(filter);
            for (dw, dh) in [(64u32, 23u32), (300, 100)] {
                let mut out = vec![0u8; (dw * dh * 3) as usize];
                r.resize(&frames[0], w, h, &mut out, dw, dh, PixelFormat::Rgb24)
                    .unwrap();
                bytes.push(out);
            }
        }
        let mut scores = Vec::new();
        for weights in [Weights::default(), Weights::LUMA_ONLY] {
            let mut d = HsvDelta::new(weights);
            for f in &frames {
                scores.push(format!(
                    "{:?}",
                    d.push(f, PixelFormat::Rgb24, w, h).unwrap()
                ));
            }
        }
        for format in [PixelFormat::Rgb24, PixelFormat::Gray8] {
            let mut m = Measurer::new(MeasureConfig::all());
            for f in &frames {
                let mut input = vec![0u8; format.frame_size(w, h).unwrap()];
                convert(f, PixelFormat::Rgb24, &mut input, format, w, h).unwrap();
                scores.push(format!("{:?}", m.measure(&input, format, w, h).unwrap()));
            }
        }
        (bytes, scores)
    }

    #[test]
    fn baseline_and_avx2_twins_agree() {
        let fast = run_all();
        BASELINE_ONLY.store(true, Ordering::Relaxed);
        let baseline = run_all();
        BASELINE_ONLY.store(false, Ordering::Relaxed);
        assert_eq!(fast.1, baseline.1);
        assert!(fast.0 == baseline.0, "bytes differ between the twins");
    }
}
