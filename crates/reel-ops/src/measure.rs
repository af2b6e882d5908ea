//! Per-frame measurements on luma: motion, brightness, sharpness, black frames.
//!
//! Luma is full-range BT.601 (`0.299 R + 0.587 G + 0.114 B`, 0..=255, ffmpeg's
//! `gray`) whatever the frame's format: taken as is from `Gray8`, expanded from the
//! limited-range Y plane of `Yuv420p`/`Nv12`, computed from packed RGB. Only the
//! measurements asked for are computed, and the luma plane is built only when a
//! measurement needs it in memory.
//!
//! * motion: mean absolute luma difference against the previous measured frame
//!   (`None` for the first);
//! * brightness: mean luma;
//! * sharpness: variance of the 3x3 Laplacian of luma (`[0 1 0; 1 -4 1; 0 1 0]`,
//!   borders reflected as OpenCV's `BORDER_REFLECT_101`), i.e.
//!   `cv2.Laplacian(gray, cv2.CV_64F).var()`, the usual blur measure;
//! * black: the fraction of pixels at or below a luma threshold, and whether it
//!   reaches a ratio, as ffmpeg's `blackdetect` judges pictures (defaults 0.10 of
//!   the range, i.e. luma <= 25, and 98 %).

use reel_frame::PixelFormat;

use crate::convert::{Bgr, Packed, Rgb, Rgba, gray};
use crate::{OpsError, check_len, frame_len};

/// Limited-range luma to full range, computed directly (checks the table).
#[cfg(test)]
fn y_to_gray(y: u8) -> u8 {
    let v = (f64::from(y) - 16.0) * 255.0 / 219.0;
    v.round().clamp(0.0, 255.0) as u8
}

static Y_TO_GRAY: [u8; 256] = {
    let mut lut = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let v = (i as f64 - 16.0) * 255.0 / 219.0;
        lut[i] = if v <= 0.0 {
            0
        } else if v >= 255.0 {
            255
        } else {
            (v + 0.5) as u8
        };
        i += 1;
    }
    lut
};

/// How black frames are judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlackConfig {
    /// A pixel is black at or below this luma (25: ffmpeg's 0.10 of the range).
    pub pixel_threshold: u8,
    /// A frame is black when at least this fraction of its pixels is (0.98).
    pub ratio: f64,
}

impl Default for BlackConfig {
    fn default() -> Self {
        Self {
            pixel_threshold: 25,
            ratio: 0.98,
        }
    }
}

/// Which measurements to make.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeasureConfig {
    /// Mean absolute luma difference against the previous frame.
    pub motion: bool,
    /// Mean luma.
    pub brightness: bool,
    /// Variance of the Laplacian of luma.
    pub sharpness: bool,
    /// Black-frame detection, with its thresholds.
    pub black: Option<BlackConfig>,
}

impl MeasureConfig {
    /// Every measurement, with default black thresholds.
    pub fn all() -> Self {
        Self {
            motion: true,
            brightness: true,
            sharpness: true,
            black: Some(BlackConfig::default()),
        }
    }

    /// Whether nothing is asked for.
    pub fn is_empty(&self) -> bool {
        !self.motion && !self.brightness && !self.sharpness && self.black.is_none()
    }
}

/// The measurements of one frame; `None` where not asked for (or, for motion, on
/// the first frame).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measurements {
    /// Mean absolute luma difference against the previous frame, 0..=255.
    pub motion: Option<f64>,
    /// Mean luma, 0..=255.
    pub brightness: Option<f64>,
    /// Variance of the Laplacian of luma.
    pub sharpness: Option<f64>,
    /// Fraction of black pixels, 0..=1.
    pub black_ratio: Option<f64>,
    /// Whether the frame is black.
    pub black: Option<bool>,
}

/// Makes the [`Measurements`] of a stream of frames. Keeps two luma planes
/// (allocated at the first frame, reused after): no allocation per frame.
#[derive(Debug, Clone)]
pub struct Measurer {
    config: MeasureConfig,
    /// This frame's luma, when it had to be built.
    cur: Vec<u8>,
    /// The previous frame's luma (for motion).
    prev: Vec<u8>,
    prev_size: Option<(u32, u32)>,
}

impl Measurer {
    /// A measurer making what `config` asks for.
    pub fn new(config: MeasureConfig) -> Self {
        Self {
            config,
            cur: Vec::new(),
            prev: Vec::new(),
            prev_size: None,
        }
    }

    /// What it measures.
    pub fn config(&self) -> &MeasureConfig {
        &self.config
    }

    /// Forgets the previous frame: the next has no motion value.
    pub fn reset(&mut self) {
        self.prev_size = None;
    }

    /// Measures the next frame (any format).
    pub fn measure(
        &mut self,
        frame: &[u8],
        format: PixelFormat,
        width: u32,
        height: u32,
    ) -> Result<Measurements, OpsError> {
        let c = self.config;
        let mut out = Measurements::default();
        if c.is_empty() {
            return Ok(out);
        }
        check_len(frame_len(format, width, height)?, frame.len())?;
        let (w, h) = (width as usize, height as usize);
        let n = w * h;
        let needs_plane = c.motion || c.sharpness;
        let luma: &[u8] = match format {
            PixelFormat::Gray8 => &frame[..n],
            _ if !needs_plane => {
                // Brightness and black need only sums: no plane.
                let (sum, dark) = luma_sums(frame, format, n, c.black.map(|b| b.pixel_threshold));
                fill_sums(&mut out, c, sum, dark, n);
                return Ok(out);
            }
            _ => {
                if self.cur.len() < n {
                    self.cur.resize(n, 0);
                }
                build_luma(frame, format, &mut self.cur[..n]);
                &self.cur[..n]
            }
        };
        if c.brightness || c.black.is_some() {
            let threshold = c.black.map(|b| b.pixel_threshold);
            let (sum, dark) = luma_sums(luma, PixelFormat::Gray8, n, threshold);
            fill_sums(&mut out, c, sum, dark, n);
        }
        if c.sharpness {
            out.sharpness = Some(laplacian_variance(luma, w, h));
        }
        if c.motion {
            let same_size = self.prev_size == Some((width, height));
            if same_size {
                out.motion = Some(sum_abs_diff(luma, &self.prev[..n]) as f64 / n as f64);
            }
            // Keep this frame's luma for the next one.
            if format == PixelFormat::Gray8 {
                if self.prev.len() < n {
                    self.prev.resize(n, 0);
                }
                self.prev[..n].copy_from_slice(luma);
            } else {
                std::mem::swap(&mut self.prev, &mut self.cur);
            }
            self.prev_size = Some((width, height));
        }
        Ok(out)
    }
}

fn fill_sums(out: &mut Measurements, c: MeasureConfig, sum: u64, dark: u64, n: usize) {
    if c.brightness {
        out.brightness = Some(sum as f64 / n as f64);
    }
    if let Some(b) = c.black {
        let ratio = dark as f64 / n as f64;
        out.black_ratio = Some(ratio);
        out.black = Some(ratio >= b.ratio);
    }
}

crate::simd::multiversion! {
    /// Writes the full-range luma of `frame` into `dst` (`n` pixels).
    fn build_luma[](frame: &[u8], format: PixelFormat, dst: &mut [u8]) -> () {
    fn packed<P: Packed>(src: &[u8], dst: &mut [u8]) {
        for (d, p) in dst.iter_mut().zip(src.chunks_exact(P::BPP)) {
            *d = gray(p[P::R], p[P::G], p[P::B]);
        }
    }
    match format {
        PixelFormat::Gray8 => dst.copy_from_slice(&frame[..dst.len()]),
        PixelFormat::Yuv420p | PixelFormat::Nv12 => {
            for (d, &y) in dst.iter_mut().zip(frame) {
                *d = Y_TO_GRAY[usize::from(y)];
            }
        }
        PixelFormat::Rgb24 => packed::<Rgb>(frame, dst),
        PixelFormat::Bgr24 => packed::<Bgr>(frame, dst),
        PixelFormat::Rgba => packed::<Rgba>(frame, dst),
    }
}
    avx2 = build_luma_avx2, generic = []
}

crate::simd::multiversion! {
    /// Sum of the luma of `n` pixels and the count at or below `threshold`, without
    /// building a plane.
    fn luma_sums[](frame: &[u8], format: PixelFormat, n: usize, threshold: Option<u8>) -> (u64, u64) {
    fn run(values: impl Iterator<Item = u8>, threshold: Option<u8>) -> (u64, u64) {
        let t = threshold.unwrap_or(0);
        let count = threshold.is_some();
        let (mut sum, mut dark) = (0u64, 0u64);
        // Per block of 2^16 pixels the sums fit 32 bits and vectorise.
        let mut block_sum = 0u32;
        let mut block_dark = 0u32;
        for (i, v) in values.enumerate() {
            block_sum += u32::from(v);
            if count {
                block_dark += u32::from(v <= t);
            }
            if i & 0xffff == 0xffff {
                sum += u64::from(block_sum);
                dark += u64::from(block_dark);
                block_sum = 0;
                block_dark = 0;
            }
        }
        (sum + u64::from(block_sum), dark + u64::from(block_dark))
    }
    fn packed<P: Packed>(src: &[u8], t: Option<u8>) -> (u64, u64) {
        run(
            src.chunks_exact(P::BPP)
                .map(|p| gray(p[P::R], p[P::G], p[P::B])),
            t,
        )
    }
    match format {
        PixelFormat::Gray8 => gray_sums(&frame[..n], threshold),
        PixelFormat::Yuv420p | PixelFormat::Nv12 => run(
            frame[..n].iter().map(|&y| Y_TO_GRAY[usize::from(y)]),
            threshold,
        ),
        PixelFormat::Rgb24 => packed::<Rgb>(frame, threshold),
        PixelFormat::Bgr24 => packed::<Bgr>(frame, threshold),
        PixelFormat::Rgba => packed::<Rgba>(frame, threshold),
    }
}
    avx2 = luma_sums_avx2, generic = []
}

crate::simd::multiversion! {
    /// [`luma_sums`] of a luma plane, in blocks the compiler vectorises.
    fn gray_sums[](luma: &[u8], threshold: Option<u8>) -> (u64, u64) {
    let (mut sum, mut dark) = (0u64, 0u64);
    for block in luma.chunks(1 << 16) {
        sum += u64::from(block.iter().map(|&v| u32::from(v)).sum::<u32>());
        if let Some(t) = threshold {
            dark += u64::from(block.iter().map(|&v| u32::from(v <= t)).sum::<u32>());
        }
    }
    (sum, dark)
}
    avx2 = gray_sums_avx2, generic = []
}

crate::simd::multiversion! {
    /// Sum of absolute differences of two planes.
    fn sum_abs_diff[](a: &[u8], b: &[u8]) -> u64 {
    let mut total = 0u64;
    for (a, b) in a.chunks(1 << 16).zip(b.chunks(1 << 16)) {
        total += u64::from(
            a.iter()
                .zip(b)
                .map(|(&x, &y)| u32::from(x.abs_diff(y)))
                .sum::<u32>(),
        );
    }
    total
}
    avx2 = sum_abs_diff_avx2, generic = []
}

crate::simd::multiversion! {
    /// Variance of the 4-neighbour Laplacian over the plane, borders reflected
    /// (`BORDER_REFLECT_101`): computed exactly in integers, then divided.
    fn laplacian_variance[](luma: &[u8], w: usize, h: usize) -> f64 {
    // Reflect-101 of index -1 and `len`: 1 and len - 2 (or 0 for a length of 1).
    let before = |len: usize| usize::from(len > 1);
    let after = |len: usize| len.saturating_sub(2).min(len - 1);
    let row = |y: usize| &luma[y * w..(y + 1) * w];
    let (mut sum, mut sum_sq) = (0i64, 0u64);
    for y in 0..h {
        let up = row(if y == 0 { before(h) } else { y - 1 });
        let down = row(if y + 1 == h { after(h) } else { y + 1 });
        let mid = row(y);
        let lap = |x: usize, left: usize, right: usize| {
            i32::from(up[x]) + i32::from(down[x]) + i32::from(mid[left]) + i32::from(mid[right])
                - 4 * i32::from(mid[x])
        };
        // Edge columns.
        let first = lap(0, before(w), if w > 1 { 1 } else { 0 });
        let mut row_sum = i64::from(first);
        let mut row_sq = (first * first) as u64;
        if w > 1 {
            let last = lap(w - 1, w - 2, after(w));
            row_sum += i64::from(last);
            row_sq += (last * last) as u64;
        }
        // Interior: a straight loop over aligned windows the compiler vectorises.
        if w > 2 {
            let (mut s, mut q) = (0i32, 0u32);
            for ((((&u, &d), &l), &c), &r) in up[1..w - 1]
                .iter()
                .zip(&down[1..w - 1])
                .zip(&mid[..w - 2])
                .zip(&mid[1..w - 1])
                .zip(&mid[2..])
            {
                let v =
                    i32::from(u) + i32::from(d) + i32::from(l) + i32::from(r) - 4 * i32::from(c);
                s += v;
                q += (v * v) as u32;
            }
            row_sum += i64::from(s);
            row_sq += u64::from(q);
        }
        sum += row_sum;
        sum_sq += row_sq;
    }
    let n = (w * h) as i128;
    // n * sum_sq - sum^2 is exact; the variance is it over n^2.
    let numerator = n * i128::from(sum_sq) - i128::from(sum) * i128::from(sum);
    numerator as f64 / (n * n) as f64
}
    avx2 = laplacian_variance_avx2, generic = []
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_table_agrees_with_the_formula() {
        for y in 0..=255u8 {
            assert_eq!(Y_TO_GRAY[usize::from(y)], y_to_gray(y));
        }
    }

    fn measure(
        m: &mut Measurer,
        frame: &[u8],
        format: PixelFormat,
        w: u32,
        h: u32,
    ) -> Measurements {
        m.measure(frame, format, w, h).unwrap()
    }

    #[test]
    fn brightness_and_black_of_flat_frames() {
        let mut m = Measurer::new(MeasureConfig {
            brightness: true,
            black: Some(BlackConfig::default()),
            ..MeasureConfig::default()
        });
        let grey = [100u8; 64];
        let r = measure(&mut m, &grey, PixelFormat::Gray8, 8, 8);
        assert_eq!(r.brightness, Some(100.0));
        assert_eq!((r.black_ratio, r.black), (Some(0.0), Some(false)));
        // Y = 16 is black in limited range: luma 0.
        let mut yuv = vec![16u8; 64 + 32];
        yuv[64..].fill(128);
        let r = measure(&mut m, &yuv, PixelFormat::Yuv420p, 8, 8);
        assert_eq!((r.brightness, r.black), (Some(0.0), Some(true)));
        // One bright pixel in 64: 63/64 >= 0.98, still black; two: 62/64 is not.
        yuv[0] = 235;
        let r = measure(&mut m, &yuv, PixelFormat::Yuv420p, 8, 8);
        assert_eq!((r.black_ratio, r.black), (Some(63.0 / 64.0), Some(true)));
        yuv[1] = 235;
        let r = measure(&mut m, &yuv, PixelFormat::Yuv420p, 8, 8);
        assert_eq!((r.black_ratio, r.black), (Some(62.0 / 64.0), Some(false)));
        // RGB: white is 255.
        let white = [255u8; 8 * 8 * 3];
        let r = measure(&mut m, &white, PixelFormat::Rgb24, 8, 8);
        assert_eq!(r.brightness, Some(255.0));
        assert_eq!((r.motion, r.sharpness), (None, None));
    }

    #[test]
    fn motion_against_the_previous_frame() {
        let mut m = Measurer::new(MeasureConfig {
            motion: true,
            ..MeasureConfig::default()
        });
        let a = [10u8; 16];
        let mut b = [10u8; 16];
        b[..4].fill(50);
        for format in [PixelFormat::Gray8, PixelFormat::Rgb24] {
            m.reset();
            let (fa, fb): (Vec<u8>, Vec<u8>) = if format == PixelFormat::Gray8 {
                (a.to_vec(), b.to_vec())
            } else {
                (
                    a.iter().flat_map(|&v| [v; 3]).collect(),
                    b.iter().flat_map(|&v| [v; 3]).collect(),
                )
            };
            assert_eq!(measure(&mut m, &fa, format, 4, 4).motion, None);
            assert_eq!(
                measure(&mut m, &fb, format, 4, 4).motion,
                Some(40.0 * 4.0 / 16.0)
            );
            assert_eq!(measure(&mut m, &fb, format, 4, 4).motion, Some(0.0));
            // A new size starts over.
            assert_eq!(
                measure(&mut m, &fb[..fb.len() / 2], format, 4, 2).motion,
                None
            );
        }
    }

    #[test]
    fn laplacian_variance_by_hand() {
        // Flat: 0. A single pixel of 4 in the middle of 3x3: the Laplacian is -16
        // there and 8 at its four neighbours (the reflected border shows them the
        // centre twice), 0 at the corners: sum 16, sum of squares 512, over 9.
        assert_eq!(laplacian_variance(&[7; 9], 3, 3), 0.0);
        let mut p = [0u8; 9];
        p[4] = 4;
        let want = 512.0 / 9.0 - (16.0f64 / 9.0).powi(2);
        assert!((laplacian_variance(&p, 3, 3) - want).abs() < 1e-12);
        // One row [0, 9]: Laplacian [18, -18], variance 324. One pixel: 0.
        assert_eq!(laplacian_variance(&[0, 9], 2, 1), 324.0);
        assert_eq!(laplacian_variance(&[0, 9], 1, 2), 324.0);
        assert_eq!(laplacian_variance(&[5], 1, 1), 0.0);
    }

    #[test]
    fn nothing_asked_nothing_done() {
        let mut m = Measurer::new(MeasureConfig::default());
        assert_eq!(
            m.measure(&[], PixelFormat::Gray8, 4, 4),
            Ok(Measurements::default())
        );
    }
}
