//! Bilinear resizing of 8-bit pixels with OpenCV's arithmetic, bit for bit:
//! what `cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)` returns for a
//! `uint8` picture, which is what ultralytics letterboxes with.
//!
//! OpenCV's INTER_LINEAR on `u8` is fixed point:
//! - source coordinates `f = (d + 0.5) * (1 / (dst / src)) - 0.5` computed in
//!   double precision and rounded to `f32`; the tap is `floor(f)` and the weights
//!   `round((1 - frac) * 2048)` and `round(frac * 2048)` (11 bits);
//! - horizontally, a tap left of the picture or on its last column is clamped
//!   with its weight (the pixel is taken whole); vertically only the rows are
//!   clamped, the weights stay those of the unclamped coordinate;
//! - the horizontal pass sums in 32 bits exactly; the vertical pass is the one
//!   OpenCV's vector code performs: each row's sum shifted right by 4, multiplied
//!   by its weight keeping the high 16 bits, the two added, then `(v + 2) >> 2`
//!   saturated to 0..=255.
//!
//! [`CvLinear`] keeps its coefficient tables and two rows of horizontal sums, and
//! reuses their memory, so resizing a stream of pictures allocates nothing once it
//! has seen the largest.

use crate::{OpsError, check_len};

/// Weight scale: 11 bits.
const COEF_SCALE: f32 = 2048.0;

/// Coefficients of one axis.
#[derive(Debug, Clone, Default, PartialEq)]
struct Axis {
    src: usize,
    dst: usize,
    /// The first tap of each destination coordinate (clamped for x, not for y).
    ofs: Vec<i64>,
    /// The two weights of each destination coordinate.
    w: Vec<[i32; 2]>,
}

impl Axis {
    #[cfg(test)]
    fn new(src: usize, dst: usize, clamp: bool) -> Self {
        let mut a = Self::default();
        a.set(src, dst, clamp);
        a
    }

    /// The coefficients of `src` → `dst` (the tables' memory is reused: once
    /// they have held the longest axis, this allocates nothing).
    fn set(&mut self, src: usize, dst: usize, clamp: bool) {
        let scale = 1.0 / (dst as f64 / src as f64);
        self.src = src;
        self.dst = dst;
        self.ofs.clear();
        self.w.clear();
        for d in 0..dst {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if clamp && s < 0 {
                s = 0;
                frac = 0.0;
            }
            if clamp && s >= src as i64 - 1 {
                s = src as i64 - 1;
                frac = 0.0;
            }
            let round = |v: f32| (v * COEF_SCALE).round_ties_even() as i32;
            self.ofs.push(s);
            self.w.push([round(1.0 - frac), round(frac)]);
        }
    }
}

/// OpenCV's `INTER_LINEAR` resize of 8-bit pictures of `channels` interleaved
/// channels. Keeps its tables for the last sizes and its row buffers.
#[derive(Debug, Clone, Default)]
pub struct CvLinear {
    channels: usize,
    x: Axis,
    y: Axis,
    /// Horizontal sums of two source rows, and which rows they are.
    rows: [Vec<i32>; 2],
    held: [Option<usize>; 2],
}

impl CvLinear {
    /// A resizer; its tables are made at the first resize of each size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resizes `src` (`sw` × `sh` pixels of `channels` bytes, rows `src_stride`
    /// bytes apart) into `dst` (`dw` × `dh`, rows `dst_stride` apart), as
    /// `cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR)` does.
    #[allow(clippy::too_many_arguments)]
    pub fn resize(
        &mut self,
        channels: usize,
        src: &[u8],
        (sw, sh, src_stride): (usize, usize, usize),
        dst: &mut [u8],
        (dw, dh, dst_stride): (usize, usize, usize),
    ) -> Result<(), OpsError> {
        if channels == 0 || sw == 0 || sh == 0 || dw == 0 || dh == 0 {
            return Err(OpsError::Resize(format!(
                "cannot resize {sw}x{sh} to {dw}x{dh} with {channels} channels"
            )));
        }
        if src_stride < sw * channels || dst_stride < dw * channels {
            return Err(OpsError::Resize(format!(
                "row strides {src_stride} and {dst_stride} are shorter than the rows"
            )));
        }
        check_len((sh - 1) * src_stride + sw * channels, src.len())?;
        check_len((dh - 1) * dst_stride + dw * channels, dst.len())?;
        if self.channels != channels || (self.x.src, self.x.dst) != (sw, dw) {
            self.x.set(sw, dw, true);
            self.channels = channels;
            for r in &mut self.rows {
                r.clear();
                r.resize(dw * channels, 0);
            }
            self.held = [None, None];
        }
        if (self.y.src, self.y.dst) != (sh, dh) {
            self.y.set(sh, dh, false);
        }
        // A new picture: the rows held are of the last one.
        self.held = [None, None];
        let last = sh as i64 - 1;
        for dy in 0..dh {
            let s0 = self.y.ofs[dy].clamp(0, last) as usize;
            let s1 = (self.y.ofs[dy] + 1).clamp(0, last) as usize;
            let i0 = self.row(src, src_stride, s0, None);
            let i1 = self.row(src, src_stride, s1, Some(i0));
            let [b0, b1] = self.y.w[dy];
            let (r0, r1) = (&self.rows[i0], &self.rows[i1]);
            let out = &mut dst[dy * dst_stride..][..dw * channels];
            vertical(out, r0, r1, b0, b1);
        }
        Ok(())
    }

    /// The index of the row buffer holding the horizontal sums of source row
    /// `s`, computing them into a buffer other than `keep` if needed.
    fn row(&mut self, src: &[u8], stride: usize, s: usize, keep: Option<usize>) -> usize {
        if let Some(i) = self.held.iter().position(|&h| h == Some(s)) {
            return i;
        }
        let i = match keep {
            Some(k) => 1 - k,
            // Replace the row the next output row is least likely to need: the
            // lower-numbered one.
            None => match self.held {
                [Some(a), Some(b)] => usize::from(a > b),
                [None, _] => 0,
                _ => 1,
            },
        };
        let row = &src[s * stride..][..self.x.src * self.channels];
        horizontal(&mut self.rows[i], row, &self.x, self.channels);
        self.held[i] = Some(s);
        i
    }
}

/// The horizontal pass of one row: exact 32-bit sums at scale 2048.
fn horizontal(out: &mut [i32], row: &[u8], x: &Axis, cn: usize) {
    let last = x.src - 1;
    for (o, (&s, &[a0, a1])) in out.chunks_exact_mut(cn).zip(x.ofs.iter().zip(&x.w)) {
        // `s` is in 0..=last (clamped when the tables were made).
        let s0 = s as usize * cn;
        let s1 = (s as usize + 1).min(last) * cn;
        for (c, v) in o.iter_mut().enumerate() {
            *v = i32::from(row[s0 + c]) * a0 + i32::from(row[s1 + c]) * a1;
        }
    }
}

/// The vertical pass, as OpenCV's vector code computes it.
fn vertical(out: &mut [u8], r0: &[i32], r1: &[i32], b0: i32, b1: i32) {
    for ((o, &a), &b) in out.iter_mut().zip(r0).zip(r1) {
        let t = (((a >> 4) * b0) >> 16) + (((b >> 4) * b1) >> 16);
        *o = ((t + 2) >> 2).clamp(0, 255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_11_bit_and_clamped_as_opencv_does() {
        // Upscaling 2 -> 4: f = -0.25, 0.25, 0.75, 1.25.
        let x = Axis::new(2, 4, true);
        assert_eq!(x.ofs, [0, 0, 0, 1]);
        assert_eq!(x.w, [[2048, 0], [1536, 512], [512, 1536], [2048, 0]]);
        // Vertically the weights of the unclamped coordinate stay.
        let y = Axis::new(2, 4, false);
        assert_eq!(y.ofs, [-1, 0, 0, 1]);
        assert_eq!(y.w, [[512, 1536], [1536, 512], [512, 1536], [1536, 512]]);
    }

    #[test]
    fn the_same_size_is_a_copy_and_a_constant_stays_constant() {
        let mut r = CvLinear::new();
        let src: Vec<u8> = (0..5 * 3 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let mut dst = vec![0u8; src.len()];
        r.resize(3, &src, (5, 3, 15), &mut dst, (5, 3, 15)).unwrap();
        assert_eq!(dst, src);
        let grey = vec![200u8; 7 * 5];
        let mut out = vec![0u8; 13 * 11];
        r.resize(1, &grey, (7, 5, 7), &mut out, (13, 11, 13))
            .unwrap();
        assert!(out.iter().all(|&v| v == 200), "{out:?}");
    }

    #[test]
    fn refuses_empty_sizes_and_short_buffers() {
        let mut r = CvLinear::new();
        assert!(
            r.resize(3, &[0; 3], (1, 1, 3), &mut [0; 3], (0, 1, 3))
                .is_err()
        );
        assert!(
            r.resize(3, &[0; 5], (2, 1, 6), &mut [0; 3], (1, 1, 3))
                .is_err()
        );
    }
}
