//! Runtime choice of instruction set for the pixel loops.
//!
//! The hot loops are written as plain, branch-free Rust that the compiler
//! vectorises. Built for the baseline x86-64 target that means SSE2 only, so each
//! is also compiled a second time with AVX2 enabled (an `*_avx2` twin carrying
//! `#[target_feature(enable = "avx2")]`) and [`avx2`] picks the twin at run time.
//! On other architectures the twin is an ordinary function and never chosen.

/// Whether this CPU runs AVX2 (checked once, then cached by the standard library).
#[inline]
pub(crate) fn avx2() -> bool {
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
