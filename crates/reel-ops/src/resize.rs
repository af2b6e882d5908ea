//! Resizing 8-bit pictures of any [`PixelFormat`], and reading a decoder's pictures
//! in other layouts ([`Layout`]: 4:2:2 and 4:4:4 chroma, NV21, 9- to 16-bit samples)
//! into those formats in the same pass.
//!
//! A [`Resizer`] is a separable fixed-point convolution: a vertical pass (every
//! output row is a weighted sum of whole source rows, a loop the compiler turns into
//! SIMD) into a scratch image, then a horizontal pass. The filter weights of each
//! axis depend only on the sizes, so the resizer keeps them, with its scratch,
//! between calls: resizing a stream of frames of the same sizes allocates nothing
//! after the first frame.
//!
//! (`fast_image_resize` computes the same kind of tables on every call, which costs
//! hundreds of small allocations per frame; it serves as the oracle and the baseline
//! of this module's tests and bench.)

use reel_frame::PixelFormat;

use crate::{OpsError, check_len, frame_len};

/// The resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Filter {
    /// The source pixel under each output pixel's centre: `floor((o + 0.5) * in / out)`.
    Nearest,
    /// Linear interpolation between the two nearest source pixels on each axis, with
    /// a fixed 2x2 footprint whatever the scale: OpenCV's `INTER_LINEAR`, which YOLO
    /// preprocessing uses. Aliases when shrinking by more than 2.
    #[default]
    Bilinear,
    /// When shrinking, the average of the source area under each output pixel
    /// (OpenCV's `INTER_AREA`): the filter for analysis at a reduced size. When
    /// enlarging, the same as [`Filter::Bilinear`].
    Area,
}

/// Fixed-point precision of the filter weights.
const PREC: u32 = 14;
const ONE: i32 = 1 << PREC;
const ROUND: i32 = ONE / 2;

/// Axis tables kept: width and height of the luma and the chroma planes.
const CACHED_AXES: usize = 6;

/// The filter weights of one axis for one pair of sizes.
#[derive(Debug, Default, Clone)]
struct Axis {
    /// `(in_size, out_size)` the table is for.
    key: Option<(u32, u32)>,
    /// Taps per output pixel (the same for all; unused taps weigh zero).
    window: usize,
    /// First source index of each output pixel's window.
    starts: Vec<u32>,
    /// `window` weights per output pixel, summing to `ONE`.
    weights: Vec<i16>,
    /// The same weights in 8 bits (summing to 256), for the area filter when
    /// shrinking: sums of at most 255 x 256 fit 16-bit lanes, twice as many per
    /// instruction as 32-bit ones. Empty for the other filters.
    weights8: Vec<u8>,
    /// Scratch for one output pixel's weights before quantisation.
    taps: Vec<f64>,
}

impl Axis {
    fn build(&mut self, filter: Filter, in_size: u32, out_size: u32) {
        let scale = f64::from(in_size) / f64::from(out_size);
        let filter = match filter {
            Filter::Area if scale <= 1.0 => Filter::Bilinear,
            f => f,
        };
        // Source pixels under output pixel `o`, for the area filter, in exact
        // integers: output `o` covers [o * in, (o + 1) * in) in units of 1/out.
        let (n_in, n_out) = (in_size as usize, out_size as usize);
        let area_span = |o: usize| (o * n_in / n_out, ((o + 1) * n_in).div_ceil(n_out));
        let window = match filter {
            Filter::Nearest => 1,
            Filter::Bilinear => 2,
            Filter::Area => (0..n_out)
                .map(|o| {
                    let (first, end) = area_span(o);
                    end - first
                })
                .max()
                .unwrap_or(1),
        }
        .min(n_in);
        self.key = Some((in_size, out_size));
        self.window = window;
        self.starts.clear();
        self.weights.clear();
        self.weights8.clear();
        let narrow = filter == Filter::Area && scale >= 2.0;
        let last = in_size as usize - 1;
        for o in 0..out_size as usize {
            // Source index of the first tap, and the taps' weights in `self.taps`.
            self.taps.clear();
            let first = match filter {
                Filter::Nearest => {
                    // floor((o + 0.5) * in / out), exactly.
                    self.taps.push(1.0);
                    let centre =
                        (2 * o as u64 + 1) * u64::from(in_size) / (2 * u64::from(out_size));
                    (centre as usize).min(last)
                }
                Filter::Bilinear => {
                    let centre = (o as f64 + 0.5) * scale - 0.5;
                    let x0 = centre.floor();
                    let frac = centre - x0;
                    let i0 = (x0.max(0.0) as usize).min(last);
                    let i1 = ((x0 + 1.0).max(0.0) as usize).min(last);
                    if i0 == i1 {
                        self.taps.push(1.0);
                    } else {
                        self.taps.extend([1.0 - frac, frac]);
                    }
                    i0
                }
                Filter::Area => {
                    let (first, end) = area_span(o);
                    for i in first..end {
                        let overlap =
                            ((i + 1) * n_out).min((o + 1) * n_in) - (i * n_out).max(o * n_in);
                        self.taps.push(overlap as f64);
                    }
                    first
                }
            };
            // Place the taps in a window that stays inside the source.
            let start = first.min(in_size as usize - window);
            let offset = first - start;
            let base = self.weights.len();
            self.weights.resize(base + window, 0);
            let total: f64 = self.taps.iter().sum();
            let slot = &mut self.weights[base..base + window];
            let mut sum = 0i32;
            let mut largest = offset;
            for (i, &t) in self.taps.iter().enumerate().take(window - offset) {
                let w = (t / total * f64::from(ONE)).round() as i16;
                slot[offset + i] = w;
                sum += i32::from(w);
                if w > slot[largest] {
                    largest = offset + i;
                }
            }
            // Rounding may leave the sum off by a little: the largest tap absorbs it.
            slot[largest] += (ONE - sum) as i16;
            self.starts.push(start as u32);
            if narrow {
                let base8 = self.weights8.len();
                self.weights8.resize(base8 + window, 0);
                let slot8 = &mut self.weights8[base8..base8 + window];
                let mut sum8 = 0u32;
                for (i, &t) in self.taps.iter().enumerate().take(window - offset) {
                    let w = (t / total * 256.0).round() as u8;
                    slot8[offset + i] = w;
                    sum8 += u32::from(w);
                }
                // The largest tap absorbs the rounding, as above (shrinking by 2 or
                // more, no tap weighs over 128). Over a long window (a large
                // reduction) the taps' rounding adds up to more than one tap can
                // absorb: there each weight is the step between the rounded running
                // sums, which adds up to 256 exactly and keeps every tap within one
                // of its share.
                if sum8.abs_diff(256) <= 2 {
                    slot8[largest] = (256 + u32::from(slot8[largest]) - sum8) as u8;
                } else {
                    let mut running = 0.0;
                    let mut edge = 0u32;
                    for (i, &t) in self.taps.iter().enumerate().take(window - offset) {
                        running += t / total;
                        let next = ((running * 256.0).round() as u32).clamp(edge, 256);
                        slot8[offset + i] = (next - edge) as u8;
                        edge = next;
                    }
                    if let Some(last) = slot8[offset..].iter_mut().rev().find(|w| **w > 0) {
                        *last = (u32::from(*last) + 256 - edge) as u8;
                    }
                }
            }
        }
    }
}

/// Resizes pictures, keeping its filter tables and scratch between calls: no
/// allocation per frame in steady state.
#[derive(Debug, Clone)]
pub struct Resizer {
    filter: Filter,
    axes: [Axis; CACHED_AXES],
    next_slot: usize,
    /// The vertical pass's output when a horizontal pass follows.
    scratch: Vec<u8>,
    /// One row of accumulators for the vertical pass.
    acc: Sums,
}

impl Default for Resizer {
    fn default() -> Self {
        Self::new(Filter::default())
    }
}

/// One plane of a picture held by someone else (a decoder's frame): its bytes, from
/// its first pixel, and the bytes from one row's start to the next.
#[derive(Debug, Clone, Copy)]
pub struct StridedPlane<'a> {
    /// The plane's bytes, from its first pixel.
    pub data: &'a [u8],
    /// Bytes from the start of one row to the start of the next.
    pub stride: usize,
}

/// How a decoder's picture is laid out, for [`Resizer::resize_layout`]: which of
/// reel's 8-bit formats its planes become and how they differ from that format's.
///
/// The planes are those of [`format`](Self::format) in number and order (Y, U, V
/// for planar YUV; Y, then interleaved chroma for semi-planar), but the source's
/// chroma planes may be subsampled less than 4:2:0 (4:2:2, 4:4:4: the resize takes
/// them to the output's 4:2:0 sizes), its samples may be wider than 8 bits (two
/// little-endian bytes, reduced to 8 bits with rounding in the resize's first pass),
/// and semi-planar chroma may be V first (NV21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The 8-bit format the resize writes.
    pub format: PixelFormat,
    /// log2 of the source chroma's subsampling, across and down: `(1, 1)` for
    /// 4:2:0, `(1, 0)` for 4:2:2, `(0, 0)` for 4:4:4. Ignored without chroma.
    pub chroma_shift: (u8, u8),
    /// Bytes per sample: 1, or 2 (little-endian).
    pub sample_bytes: u8,
    /// Low bits dropped to reach 8 bits: 2 for 10-bit samples, 4 for 12-bit, 8 for
    /// 16-bit ones and for P010's 10 bits held in the top of 16. At most 8; 0 with
    /// one-byte samples.
    pub shift: u8,
    /// Semi-planar chroma is stored V first (NV21): the output is swapped to U first.
    pub swap_uv: bool,
}

/// A source plane's width and height in pixels, and samples per pixel.
type PlaneShape = (usize, usize, usize);

impl Layout {
    /// `format` itself, 8-bit, as [`PixelFormat::planes`] describes it.
    pub const fn of(format: PixelFormat) -> Self {
        Self {
            format,
            chroma_shift: (1, 1),
            sample_bytes: 1,
            shift: 0,
            swap_uv: false,
        }
    }

    /// The same layout with chroma subsampled by `1 << x` across and `1 << y` down.
    pub const fn with_chroma_shift(mut self, x: u8, y: u8) -> Self {
        self.chroma_shift = (x, y);
        self
    }

    /// The same layout with two-byte little-endian samples of which the low `shift`
    /// bits are dropped.
    pub const fn with_wide_samples(mut self, shift: u8) -> Self {
        self.sample_bytes = 2;
        self.shift = shift;
        self
    }

    /// The same layout with V before U in semi-planar chroma.
    pub const fn with_swapped_chroma(mut self) -> Self {
        self.swap_uv = true;
        self
    }

    /// Size in samples, and samples per pixel, of each source plane of a
    /// `width` x `height` picture; `None` for a layout this module cannot read.
    fn source_planes(&self, width: usize, height: usize) -> Option<([PlaneShape; 3], usize)> {
        if !matches!((self.sample_bytes, self.shift), (1, 0) | (2, 1..=8)) {
            return None;
        }
        let (sx, sy) = (
            u32::from(self.chroma_shift.0),
            u32::from(self.chroma_shift.1),
        );
        if sx > 1 || sy > 1 {
            return None;
        }
        let chroma = (width.div_ceil(1 << sx), height.div_ceil(1 << sy));
        let luma = (width, height, 1);
        Some(match self.format {
            PixelFormat::Gray8 => ([luma, (0, 0, 0), (0, 0, 0)], 1),
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => {
                ([(width, height, 3), (0, 0, 0), (0, 0, 0)], 1)
            }
            PixelFormat::Rgba => ([(width, height, 4), (0, 0, 0), (0, 0, 0)], 1),
            PixelFormat::Yuv420p => ([luma, (chroma.0, chroma.1, 1), (chroma.0, chroma.1, 1)], 3),
            PixelFormat::Nv12 => ([luma, (chroma.0, chroma.1, 2), (0, 0, 0)], 2),
        })
    }
}

/// One row of sums for the vertical pass: 32-bit for the 14-bit weights, 16-bit
/// for the 8-bit ones.
#[derive(Debug, Clone, Default)]
struct Sums {
    wide: Vec<i32>,
    narrow: Vec<u16>,
}

/// A plane to read: bytes, width and height in pixels, bytes per row.
#[derive(Clone, Copy)]
pub(crate) struct PlaneRef<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

/// A plane to write: bytes from its first pixel, size in pixels, bytes per row.
pub(crate) struct PlaneMut<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl Resizer {
    /// A resizer with `filter`.
    pub fn new(filter: Filter) -> Self {
        Self {
            filter,
            axes: Default::default(),
            next_slot: 0,
            scratch: Vec::new(),
            acc: Sums::default(),
        }
    }

    /// The filter this resizer applies.
    pub fn filter(&self) -> Filter {
        self.filter
    }

    /// Resizes a `src_w` x `src_h` picture into `dst_w` x `dst_h`, both in `format`
    /// and tightly packed as [`PixelFormat::planes`] describes. Each plane is
    /// resized on its own (chroma planes at their own sizes).
    #[allow(clippy::too_many_arguments)]
    pub fn resize(
        &mut self,
        src: &[u8],
        src_w: u32,
        src_h: u32,
        dst: &mut [u8],
        dst_w: u32,
        dst_h: u32,
        format: PixelFormat,
    ) -> Result<(), OpsError> {
        check_len(frame_len(format, src_w, src_h)?, src.len())?;
        check_len(frame_len(format, dst_w, dst_h)?, dst.len())?;
        let mut planes = [StridedPlane {
            data: &[],
            stride: 0,
        }; 3];
        let src_planes = format.planes(src_w, src_h);
        for (view, p) in planes.iter_mut().zip(src_planes.iter()) {
            *view = StridedPlane {
                data: &src[p.offset..p.offset + p.len()],
                stride: p.stride,
            };
        }
        self.resize_strided(
            &planes[..src_planes.len()],
            src_w,
            src_h,
            dst,
            dst_w,
            dst_h,
            format,
        )
    }

    /// Like [`resize`](Self::resize), but the source planes live apart, each with its
    /// own row length in bytes (`stride`, at least the plane's packed row): a
    /// decoder's picture, read where it lies without first copying it into one
    /// packed buffer. `src` holds one entry per plane of `format`, in
    /// [`PixelFormat::planes`] order; `dst` is tightly packed.
    #[allow(clippy::too_many_arguments)]
    pub fn resize_strided(
        &mut self,
        src: &[StridedPlane<'_>],
        src_w: u32,
        src_h: u32,
        dst: &mut [u8],
        dst_w: u32,
        dst_h: u32,
        format: PixelFormat,
    ) -> Result<(), OpsError> {
        self.resize_layout(src, src_w, src_h, dst, dst_w, dst_h, Layout::of(format))
    }

    /// Resizes a picture laid out as `layout` says, its planes living apart (as in
    /// [`resize_strided`](Self::resize_strided)), into `dst` tightly packed in
    /// `layout.format` at `dst_w` x `dst_h`. Chroma subsampled less than the output's
    /// is resized to the output's chroma size like any other plane, wide samples are
    /// reduced to 8 bits in the vertical pass (`(sum + half) >> shift`, so a plain
    /// rounding shift when the height stays), and NV21 chroma is written U first.
    #[allow(clippy::too_many_arguments)]
    pub fn resize_layout(
        &mut self,
        src: &[StridedPlane<'_>],
        src_w: u32,
        src_h: u32,
        dst: &mut [u8],
        dst_w: u32,
        dst_h: u32,
        layout: Layout,
    ) -> Result<(), OpsError> {
        let format = layout.format;
        frame_len(format, src_w, src_h)?;
        check_len(frame_len(format, dst_w, dst_h)?, dst.len())?;
        let Some((src_planes, n)) = layout.source_planes(src_w as usize, src_h as usize) else {
            return Err(OpsError::Resize(format!(
                "an unsupported layout of {}: {layout:?}",
                format.name()
            )));
        };
        let dst_planes = format.planes(dst_w, dst_h);
        if src.len() != n {
            return Err(OpsError::Resize(format!(
                "{} has {n} planes, {} were given",
                format.name(),
                src.len()
            )));
        }
        let bytes = usize::from(layout.sample_bytes);
        for ((&(width, height, channels), dp), plane) in
            src_planes.iter().zip(dst_planes.iter()).zip(src)
        {
            let src = PlaneRef {
                data: plane.data,
                width,
                height,
                stride: plane.stride,
            };
            let out = &mut dst[dp.offset..dp.offset + dp.len()];
            let plane_out = PlaneMut {
                data: &mut *out,
                width: dp.stride / channels,
                height: dp.rows,
                stride: dp.stride,
            };
            self.resize_samples(channels, bytes, u32::from(layout.shift), src, plane_out)?;
            if layout.swap_uv && channels == 2 {
                // The output chroma is small: swapping it costs little next to the
                // resize.
                for uv in out.chunks_exact_mut(2) {
                    uv.swap(0, 1);
                }
            }
        }
        Ok(())
    }

    /// Resizes one plane of `channels` interleaved bytes per pixel. `dst` may be a
    /// region of a larger picture (its stride longer than its width).
    pub(crate) fn resize_plane(
        &mut self,
        channels: usize,
        src: PlaneRef<'_>,
        dst: PlaneMut<'_>,
    ) -> Result<(), OpsError> {
        self.resize_samples(channels, 1, 0, src, dst)
    }

    /// Resizes one plane of `channels` interleaved samples per pixel, each `bytes`
    /// wide (1, or 2 little-endian, of which the low `shift` bits are dropped), into
    /// an 8-bit plane.
    fn resize_samples(
        &mut self,
        channels: usize,
        bytes: usize,
        shift: u32,
        src: PlaneRef<'_>,
        dst: PlaneMut<'_>,
    ) -> Result<(), OpsError> {
        let fits = |len: usize, width: usize, height: usize, stride: usize, bytes: usize| {
            width > 0
                && height > 0
                && stride >= width * channels * bytes
                && (height - 1) * stride + width * channels * bytes <= len
        };
        let src_fits = fits(src.data.len(), src.width, src.height, src.stride, bytes);
        if !src_fits || !fits(dst.data.len(), dst.width, dst.height, dst.stride, 1) {
            let (w, h) = if src_fits {
                (dst.width, dst.height)
            } else {
                (src.width, src.height)
            };
            return Err(OpsError::Resize(format!(
                "a {w}x{h} plane does not fit its buffer"
            )));
        }
        if bytes == 2 {
            return match channels {
                1 => {
                    self.plane_wide::<1>(shift, src, dst);
                    Ok(())
                }
                2 => {
                    self.plane_wide::<2>(shift, src, dst);
                    Ok(())
                }
                3 => {
                    self.plane_wide::<3>(shift, src, dst);
                    Ok(())
                }
                4 => {
                    self.plane_wide::<4>(shift, src, dst);
                    Ok(())
                }
                n => Err(OpsError::Resize(format!(
                    "{n} samples per pixel is not supported"
                ))),
            };
        }
        match channels {
            1 => self.plane::<1>(src, dst),
            2 => self.plane::<2>(src, dst),
            3 => self.plane::<3>(src, dst),
            4 => self.plane::<4>(src, dst),
            n => {
                return Err(OpsError::Resize(format!(
                    "{n} bytes per pixel is not supported"
                )));
            }
        }
        Ok(())
    }

    /// [`plane`](Self::plane) for two-byte samples: the vertical pass (a rounding
    /// shift when the height stays) reduces them to 8 bits, into `dst` when the
    /// width stays, else into the scratch the horizontal pass reads.
    fn plane_wide<const C: usize>(&mut self, shift: u32, src: PlaneRef<'_>, dst: PlaneMut<'_>) {
        let x = (src.width != dst.width).then(|| self.axis(src.width, dst.width, None));
        let y = (src.height != dst.height).then(|| self.axis(src.height, dst.height, x));
        let axis = y.map(|y| &self.axes[y]);
        match x {
            None => vertical_wide(axis, src, dst, C, shift, &mut self.acc),
            Some(x) => {
                let row = src.width * C;
                let len = row * dst.height;
                if self.scratch.len() < len {
                    self.scratch.resize(len, 0);
                }
                let mid = PlaneMut {
                    data: &mut self.scratch[..len],
                    width: src.width,
                    height: dst.height,
                    stride: row,
                };
                vertical_wide(axis, src, mid, C, shift, &mut self.acc);
                let mid = PlaneRef {
                    data: &self.scratch[..len],
                    width: src.width,
                    height: dst.height,
                    stride: row,
                };
                horizontal::<C>(&self.axes[x], mid, dst);
            }
        }
    }

    /// The cached table for `in_size -> out_size`, built if missing, never evicting
    /// slot `keep`.
    fn axis(&mut self, in_size: usize, out_size: usize, keep: Option<usize>) -> usize {
        let key = Some((in_size as u32, out_size as u32));
        if let Some(i) = self.axes.iter().position(|a| a.key == key) {
            return i;
        }
        let mut slot = self.next_slot % CACHED_AXES;
        if Some(slot) == keep {
            slot = (slot + 1) % CACHED_AXES;
        }
        self.next_slot = slot + 1;
        self.axes[slot].build(self.filter, in_size as u32, out_size as u32);
        slot
    }

    fn plane<const C: usize>(&mut self, src: PlaneRef<'_>, dst: PlaneMut<'_>) {
        let x = (src.width != dst.width).then(|| self.axis(src.width, dst.width, None));
        let y = (src.height != dst.height).then(|| self.axis(src.height, dst.height, x));
        match (x, y) {
            (None, None) => {
                let row = src.width * C;
                for r in 0..src.height {
                    dst.data[r * dst.stride..][..row]
                        .copy_from_slice(&src.data[r * src.stride..][..row]);
                }
            }
            (None, Some(y)) => {
                vertical(&self.axes[y], src, dst, C, &mut self.acc);
            }
            (Some(x), None) => horizontal::<C>(&self.axes[x], src, dst),
            (Some(x), Some(y)) => {
                let row = src.width * C;
                let len = row * dst.height;
                if self.scratch.len() < len {
                    self.scratch.resize(len, 0);
                }
                let mid = PlaneMut {
                    data: &mut self.scratch[..len],
                    width: src.width,
                    height: dst.height,
                    stride: row,
                };
                vertical(&self.axes[y], src, mid, C, &mut self.acc);
                let mid = PlaneRef {
                    data: &self.scratch[..len],
                    width: src.width,
                    height: dst.height,
                    stride: row,
                };
                horizontal::<C>(&self.axes[x], mid, dst);
            }
        }
    }
}

crate::simd::multiversion! {
    /// Resamples the rows of `src` into the rows of `dst` (same width).
    fn vertical[](axis: &Axis, src: PlaneRef<'_>, dst: PlaneMut<'_>, channels: usize, acc: &mut Sums) -> () {
    let row = src.width * channels;
    let window = axis.window;
    let src_row = |i: usize| &src.data[i * src.stride..][..row];
    for (o, (&start, weights)) in axis
        .starts
        .iter()
        .zip(axis.weights.chunks_exact(window))
        .enumerate()
    {
        let start = start as usize;
        let out = &mut dst.data[o * dst.stride..][..row];
        match *weights {
            [_] => out.copy_from_slice(src_row(start)),
            [w0, w1] => {
                let (w0, w1) = (i32::from(w0), i32::from(w1));
                let (a, b) = (src_row(start), src_row(start + 1));
                for ((d, &a), &b) in out.iter_mut().zip(a).zip(b) {
                    *d = ((w0 * i32::from(a) + w1 * i32::from(b) + ROUND) >> PREC).min(255) as u8;
                }
            }
            _ if !axis.weights8.is_empty() => {
                // 8-bit weights, 16-bit sums (rounded, then the top byte), a whole
                // source row at a time: one sequential stream for the prefetcher,
                // the sums staying in the first-level cache.
                let w8 = &axis.weights8[o * window..][..window];
                if acc.narrow.len() < row {
                    acc.narrow.resize(row, 0);
                }
                let sums = &mut acc.narrow[..row];
                sums.fill(128);
                for (k, &w) in w8.iter().enumerate() {
                    if w == 0 {
                        continue;
                    }
                    let w = u16::from(w);
                    for (a, &v) in sums.iter_mut().zip(src_row(start + k)) {
                        *a = a.wrapping_add(w * u16::from(v));
                    }
                }
                for (d, &a) in out.iter_mut().zip(sums.iter()) {
                    *d = (a >> 8) as u8;
                }
            }
            _ => {
                if acc.wide.len() < row {
                    acc.wide.resize(row, 0);
                }
                let sums = &mut acc.wide[..row];
                sums.fill(ROUND);
                for (k, &w) in weights.iter().enumerate() {
                    if w == 0 {
                        continue;
                    }
                    let w = i32::from(w);
                    for (a, &s) in sums.iter_mut().zip(src_row(start + k)) {
                        *a += w * i32::from(s);
                    }
                }
                for (d, &a) in out.iter_mut().zip(sums.iter()) {
                    *d = (a >> PREC).min(255) as u8;
                }
            }
        }
    }
}
    avx2 = vertical_avx2, generic = []
}

crate::simd::multiversion! {
    /// Resamples the rows of two-byte samples of `src` into the 8-bit rows of `dst`
    /// (same width), dropping the low `shift` bits with rounding; without an axis
    /// (the same height) each row is only reduced.
    fn vertical_wide[](axis: Option<&Axis>, src: PlaneRef<'_>, dst: PlaneMut<'_>, channels: usize, shift: u32, acc: &mut Sums) -> () {
    let row = src.width * channels;
    let src_row = |i: usize| &src.data[i * src.stride..][..2 * row];
    let reduce = |out: &mut [u8], from: &[u8]| {
        let half = (1u32 << shift) >> 1;
        for (d, s) in out.iter_mut().zip(from.chunks_exact(2)) {
            let v = u32::from(u16::from_le_bytes([s[0], s[1]]));
            *d = ((v + half) >> shift).min(255) as u8;
        }
    };
    let Some(axis) = axis else {
        for r in 0..src.height {
            reduce(&mut dst.data[r * dst.stride..][..row], src_row(r));
        }
        return;
    };
    let window = axis.window;
    // Weights sum to 1 << PREC and samples are at most 16 bits: sums fit 31 bits.
    let total = PREC + shift;
    let round = (1i64 << total) >> 1;
    for (o, (&start, weights)) in axis
        .starts
        .iter()
        .zip(axis.weights.chunks_exact(window))
        .enumerate()
    {
        let start = start as usize;
        let out = &mut dst.data[o * dst.stride..][..row];
        if let [_] = *weights {
            reduce(out, src_row(start));
            continue;
        }
        if acc.wide.len() < row {
            acc.wide.resize(row, 0);
        }
        let sums = &mut acc.wide[..row];
        sums.fill(0);
        if !axis.weights8.is_empty() {
            // The 8-bit weights where the 8-bit pass takes them, so that a wide
            // picture resizes exactly as its top eight bits would.
            let total = 8 + shift;
            let round = (1u32 << total) >> 1;
            for (k, &w) in axis.weights8[o * window..][..window].iter().enumerate() {
                if w == 0 {
                    continue;
                }
                let (w, r) = (u32::from(w), src_row(start + k));
                for (a, v) in sums.iter_mut().zip(r.chunks_exact(2)) {
                    let v = u32::from(u16::from_le_bytes([v[0], v[1]]));
                    *a = (*a as u32).wrapping_add(w * v) as i32;
                }
            }
            for (d, &a) in out.iter_mut().zip(sums.iter()) {
                *d = ((a as u32 + round) >> total).min(255) as u8;
            }
            continue;
        }
        for (k, &w) in weights.iter().enumerate() {
            if w == 0 {
                continue;
            }
            let (w, r) = (w as u32, src_row(start + k));
            for (a, v) in sums.iter_mut().zip(r.chunks_exact(2)) {
                let v = u32::from(u16::from_le_bytes([v[0], v[1]]));
                *a = (*a as u32).wrapping_add(w * v) as i32;
            }
        }
        for (d, &a) in out.iter_mut().zip(sums.iter()) {
            *d = ((i64::from(a as u32) + round) >> total).min(255) as u8;
        }
    }
}
    avx2 = vertical_wide_avx2, generic = []
}

/// One row of a one-channel horizontal pass with `W` taps known at compile time, so
/// that each output pixel's dot product is unrolled.
#[inline(always)]
fn horizontal_row<const W: usize>(src: &[u8], dst: &mut [u8], starts: &[u32], weights: &[i16]) {
    for ((d, &start), w) in dst.iter_mut().zip(starts).zip(weights.chunks_exact(W)) {
        let start = start as usize;
        let (Some(taps), Ok(w)) = (src.get(start..start + W), <&[i16; W]>::try_from(w)) else {
            continue;
        };
        let mut acc = ROUND;
        for k in 0..W {
            acc += i32::from(w[k]) * i32::from(taps[k]);
        }
        *d = (acc >> PREC).min(255) as u8;
    }
}

/// The one-channel horizontal pass for the common window sizes; `false` for the
/// others, which take the general loop.
#[inline(always)]
fn horizontal_fixed(
    window: usize,
    src: &[u8],
    dst: &mut [u8],
    starts: &[u32],
    weights: &[i16],
) -> bool {
    match window {
        2 => horizontal_row::<2>(src, dst, starts, weights),
        3 => horizontal_row::<3>(src, dst, starts, weights),
        4 => horizontal_row::<4>(src, dst, starts, weights),
        5 => horizontal_row::<5>(src, dst, starts, weights),
        6 => horizontal_row::<6>(src, dst, starts, weights),
        7 => horizontal_row::<7>(src, dst, starts, weights),
        8 => horizontal_row::<8>(src, dst, starts, weights),
        9 => horizontal_row::<9>(src, dst, starts, weights),
        10 => horizontal_row::<10>(src, dst, starts, weights),
        _ => return false,
    }
    true
}

crate::simd::multiversion! {
    /// Resamples each row of `src` into the row of `dst` below it (same height).
    fn horizontal[const C: usize](axis: &Axis, src: PlaneRef<'_>, dst: PlaneMut<'_>) -> () {
    let window = axis.window;
    for r in 0..src.height {
        let src_row = &src.data[r * src.stride..][..src.width * C];
        let dst_row = &mut dst.data[r * dst.stride..][..dst.width * C];
        if C == 1 && horizontal_fixed(window, src_row, dst_row, &axis.starts, &axis.weights) {
            continue;
        }
        let pixels = dst_row
            .chunks_exact_mut(C)
            .zip(&axis.starts)
            .zip(axis.weights.chunks_exact(window));
        if window == 1 {
            for ((d, &start), _) in pixels {
                d.copy_from_slice(&src_row[start as usize * C..][..C]);
            }
            continue;
        }
        for ((d, &start), weights) in pixels {
            let taps = &src_row[start as usize * C..][..window * C];
            let mut acc = [ROUND; C];
            for (px, &w) in taps.chunks_exact(C).zip(weights) {
                let w = i32::from(w);
                for c in 0..C {
                    acc[c] += w * i32::from(px[c]);
                }
            }
            for c in 0..C {
                d[c] = (acc[c] >> PREC).min(255) as u8;
            }
        }
    }
}
    avx2 = horizontal_avx2, generic = [C]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(filter: Filter, in_size: u32, out_size: u32) -> Axis {
        let mut a = Axis::default();
        a.build(filter, in_size, out_size);
        a
    }

    #[test]
    fn strided_planes_resize_like_packed_ones() {
        // A 37x23 yuv420p picture (odd sides: chroma 19x12), its planes copied
        // into rows padded to 64 bytes, as a decoder lays them out.
        let (w, h) = (37u32, 23u32);
        let format = PixelFormat::Yuv420p;
        let len = format.frame_size(w, h).unwrap();
        let packed: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let planes = format.planes(w, h);
        let padded: Vec<Vec<u8>> = planes
            .iter()
            .map(|p| {
                let mut out = vec![0xAAu8; 64 * p.rows];
                for r in 0..p.rows {
                    out[r * 64..][..p.stride]
                        .copy_from_slice(&packed[p.offset + r * p.stride..][..p.stride]);
                }
                out
            })
            .collect();
        let strided: Vec<StridedPlane<'_>> = padded
            .iter()
            .map(|d| StridedPlane {
                data: d,
                stride: 64,
            })
            .collect();
        for (dw, dh) in [(12u32, 8u32), (37, 23), (50, 30)] {
            let out_len = format.frame_size(dw, dh).unwrap();
            let (mut a, mut b) = (vec![0u8; out_len], vec![1u8; out_len]);
            let mut r = Resizer::new(Filter::Area);
            r.resize(&packed, w, h, &mut a, dw, dh, format).unwrap();
            r.resize_strided(&strided, w, h, &mut b, dw, dh, format)
                .unwrap();
            assert_eq!(a, b, "{dw}x{dh}");
        }
        // Too few planes, or a plane shorter than its rows, is an error.
        let mut out = vec![0u8; format.frame_size(12, 8).unwrap()];
        let mut r = Resizer::new(Filter::Area);
        assert!(
            r.resize_strided(&strided[..2], w, h, &mut out, 12, 8, format)
                .is_err()
        );
        let short = [
            strided[0],
            StridedPlane {
                data: &padded[1][..64],
                stride: 64,
            },
            strided[2],
        ];
        assert!(
            r.resize_strided(&short, w, h, &mut out, 12, 8, format)
                .is_err()
        );
    }

    #[test]
    fn large_reductions_weigh_every_source_pixel_alike() {
        // 91 rows to 1 once made the taps' rounding (91 × 3) exceed what the
        // largest tap could absorb: a subtraction overflow.
        for (n_in, n_out) in [(91u32, 1u32), (1080, 9), (2160, 7), (91, 2), (720, 144)] {
            let a = table(Filter::Area, n_in, n_out);
            for o in 0..n_out as usize {
                let w = &a.weights8[o * a.window..][..a.window];
                let sum: u32 = w.iter().map(|&x| u32::from(x)).sum();
                assert_eq!(sum, 256, "{n_in}->{n_out}, output {o}");
                // A whole source pixel's share (the first and last taps may
                // cover part of one).
                let share = 256.0 * f64::from(n_out) / f64::from(n_in);
                let taps: Vec<u8> = w.iter().copied().filter(|&x| x > 0).collect();
                for &x in taps.iter().skip(1).take(taps.len().saturating_sub(2)) {
                    assert!(
                        (f64::from(x) - share).abs() <= 2.0,
                        "{n_in}->{n_out}: weight {x} for a share of {share:.2}"
                    );
                }
            }
        }
        let mut r = Resizer::new(Filter::Area);
        let column: Vec<u8> = (0..91).map(|i| (i * 2) as u8).collect();
        let mut out = [0u8; 1];
        r.resize(&column, 1, 91, &mut out, 1, 1, PixelFormat::Gray8)
            .unwrap();
        assert!(out[0].abs_diff(90) <= 1, "{}", out[0]);
    }

    /// The planes of a tightly packed picture, as strided views.
    fn views<'a>(buf: &'a [u8], planes: &[(usize, usize)]) -> Vec<StridedPlane<'a>> {
        let mut at = 0;
        planes
            .iter()
            .map(|&(stride, rows)| {
                let v = StridedPlane {
                    data: &buf[at..at + stride * rows],
                    stride,
                };
                at += stride * rows;
                v
            })
            .collect()
    }

    #[test]
    fn wide_samples_resize_as_their_top_eight_bits() {
        // A 10-bit picture (and P010's 10 bits in the top of 16) whose samples are
        // 8-bit ones times 4 resizes exactly as the 8-bit picture does, at every
        // size; odd low bits round to nearest.
        let (w, h) = (37u32, 23u32);
        let format = PixelFormat::Yuv420p;
        let len = format.frame_size(w, h).unwrap();
        let eight: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let ten: Vec<u8> = eight
            .iter()
            .flat_map(|&v| (u16::from(v) << 2).to_le_bytes())
            .collect();
        let p010: Vec<u8> = eight
            .iter()
            .flat_map(|&v| (u16::from(v) << 8).to_le_bytes())
            .collect();
        let (cw, ch) = (19usize, 12usize);
        let shape16 = [(74, 23), (2 * cw, ch), (2 * cw, ch)];
        for (dw, dh) in [(12u32, 8u32), (37, 23), (37, 9), (20, 23), (50, 30)] {
            let out_len = format.frame_size(dw, dh).unwrap();
            let mut r = Resizer::new(Filter::Area);
            let mut want = vec![0u8; out_len];
            r.resize(&eight, w, h, &mut want, dw, dh, format).unwrap();
            for (wide, shift) in [(&ten, 2u8), (&p010, 8)] {
                let mut got = vec![1u8; out_len];
                let layout = Layout::of(format).with_wide_samples(shift);
                r.resize_layout(&views(wide, &shape16), w, h, &mut got, dw, dh, layout)
                    .unwrap();
                assert_eq!(got, want, "{dw}x{dh}, shift {shift}");
            }
        }
        // Rounding of the dropped bits: 1021 -> 255, 1022 -> 255 (clamped), 6 -> 2, 5 -> 1.
        let src: Vec<u8> = [1021u16, 1022, 6, 5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut out = [0u8; 4];
        let layout = Layout::of(PixelFormat::Gray8).with_wide_samples(2);
        r_resize(&mut out, &src, layout);
        assert_eq!(out, [255, 255, 2, 1]);
        // A shift the layout cannot have is an error, not a wrong picture.
        let bad = Layout::of(PixelFormat::Gray8).with_wide_samples(9);
        let mut r = Resizer::new(Filter::Area);
        assert!(
            r.resize_layout(&views(&src, &[(8, 1)]), 4, 1, &mut out, 4, 1, bad)
                .is_err()
        );
    }

    fn r_resize(out: &mut [u8], src: &[u8], layout: Layout) {
        let mut r = Resizer::new(Filter::Area);
        r.resize_layout(&views(src, &[(8, 1)]), 4, 1, out, 4, 1, layout)
            .unwrap();
    }

    #[test]
    fn less_subsampled_chroma_becomes_the_outputs_4_2_0() {
        // 4:2:2 (chroma 2x4 of a 4x4 picture) and 4:4:4 (4x4) into 4:2:0 at the
        // same size: the luma is copied, chroma averaged over what each 4:2:0
        // sample covers.
        let luma: Vec<u8> = (0..16).collect();
        let u422: Vec<u8> = vec![10, 20, 30, 40, 50, 60, 70, 80];
        let v422: Vec<u8> = vec![100; 8];
        let mut buf = luma.clone();
        buf.extend(&u422);
        buf.extend(&v422);
        let mut out = vec![0u8; 24];
        let mut r = Resizer::new(Filter::Area);
        let layout = Layout::of(PixelFormat::Yuv420p).with_chroma_shift(1, 0);
        r.resize_layout(
            &views(&buf, &[(4, 4), (2, 4), (2, 4)]),
            4,
            4,
            &mut out,
            4,
            4,
            layout,
        )
        .unwrap();
        assert_eq!(&out[..16], &luma[..]);
        assert_eq!(&out[16..20], &[20, 30, 60, 70]);
        assert_eq!(&out[20..], &[100; 4]);
        let u444: Vec<u8> = (0..16).map(|i| i * 4).collect();
        let mut buf = luma.clone();
        buf.extend(&u444);
        buf.extend(vec![7u8; 16]);
        let layout = Layout::of(PixelFormat::Yuv420p).with_chroma_shift(0, 0);
        r.resize_layout(
            &views(&buf, &[(4, 4), (4, 4), (4, 4)]),
            4,
            4,
            &mut out,
            4,
            4,
            layout,
        )
        .unwrap();
        // Means of 2x2 blocks: (0+4+16+20)/4 = 10, (8+12+24+28)/4 = 18, ...
        assert_eq!(&out[16..20], &[10, 18, 42, 50]);
        assert_eq!(&out[20..], &[7; 4]);
    }

    #[test]
    fn nv21_chroma_is_written_u_first() {
        let (w, h) = (8u32, 4u32);
        let mut nv21 = vec![50u8; 32];
        let mut nv12 = nv21.clone();
        for i in 0..8u8 {
            nv21.extend([200 - i, 60 + i]);
            nv12.extend([60 + i, 200 - i]);
        }
        let shape = [(8, 4), (8, 2)];
        for (dw, dh) in [(8u32, 4u32), (4, 2)] {
            let len = PixelFormat::Nv12.frame_size(dw, dh).unwrap();
            let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
            let mut r = Resizer::new(Filter::Area);
            r.resize_layout(
                &views(&nv12, &shape),
                w,
                h,
                &mut a,
                dw,
                dh,
                Layout::of(PixelFormat::Nv12),
            )
            .unwrap();
            let layout = Layout::of(PixelFormat::Nv12).with_swapped_chroma();
            r.resize_layout(&views(&nv21, &shape), w, h, &mut b, dw, dh, layout)
                .unwrap();
            assert_eq!(a, b, "{dw}x{dh}");
        }
    }

    #[test]
    fn weights_sum_to_one_and_windows_stay_inside() {
        for filter in [Filter::Nearest, Filter::Bilinear, Filter::Area] {
            for (i, o) in [
                (1, 7),
                (7, 1),
                (10, 3),
                (1920, 320),
                (342, 399),
                (548, 640),
                (5, 5),
            ] {
                let a = table(filter, i, o);
                assert_eq!(a.starts.len(), o as usize);
                for (s, w) in a.starts.iter().zip(a.weights.chunks_exact(a.window)) {
                    assert!(*s as usize + a.window <= i as usize, "{filter:?} {i}->{o}");
                    assert_eq!(w.iter().map(|&w| i32::from(w)).sum::<i32>(), ONE);
                    assert!(w.iter().all(|&w| w >= 0));
                }
            }
        }
    }

    #[test]
    fn area_averages_whole_blocks() {
        // 4 -> 2 and 6 -> 2: each output pixel is the mean of its block.
        let mut r = Resizer::new(Filter::Area);
        let src = [10u8, 20, 30, 50];
        let mut dst = [0u8; 2];
        r.resize(&src, 4, 1, &mut dst, 2, 1, PixelFormat::Gray8)
            .unwrap();
        assert_eq!(dst, [15, 40]);
        let src = [0u8, 3, 6, 9, 12, 15];
        r.resize(&src, 1, 6, &mut dst, 1, 2, PixelFormat::Gray8)
            .unwrap();
        assert_eq!(dst, [3, 12]);
    }

    #[test]
    fn bilinear_interpolates_like_opencv() {
        // 2 -> 4 upscale: centres at -0.25, 0.25, 0.75, 1.25 of the source.
        let mut r = Resizer::new(Filter::Bilinear);
        let mut dst = [0u8; 4];
        r.resize(&[0, 200], 2, 1, &mut dst, 4, 1, PixelFormat::Gray8)
            .unwrap();
        assert_eq!(dst, [0, 50, 150, 200]);
    }

    #[test]
    fn nearest_picks_the_pixel_under_the_centre() {
        let mut r = Resizer::new(Filter::Nearest);
        let mut dst = [0u8; 2];
        r.resize(&[1, 2, 3, 4], 4, 1, &mut dst, 2, 1, PixelFormat::Gray8)
            .unwrap();
        assert_eq!(dst, [2, 4]);
    }

    #[test]
    fn planar_formats_resize_each_plane() {
        let mut r = Resizer::new(Filter::Area);
        let (w, h) = (8u32, 4u32);
        let mut src = vec![0u8; PixelFormat::Nv12.frame_size(w, h).unwrap()];
        src[..32].fill(100);
        for uv in src[32..].chunks_exact_mut(2) {
            uv[0] = 60;
            uv[1] = 200;
        }
        let mut dst = vec![0u8; PixelFormat::Nv12.frame_size(4, 2).unwrap()];
        r.resize(&src, w, h, &mut dst, 4, 2, PixelFormat::Nv12)
            .unwrap();
        assert_eq!(&dst[..8], &[100; 8]);
        assert_eq!(&dst[8..], &[60, 200, 60, 200]);
    }

    #[test]
    fn rejects_bad_sizes() {
        let mut r = Resizer::default();
        let mut dst = [0u8; 4];
        assert_eq!(
            r.resize(&[0; 3], 2, 2, &mut dst, 2, 2, PixelFormat::Gray8),
            Err(OpsError::BufferSize { needed: 4, got: 3 })
        );
        assert!(matches!(
            r.resize(&[0; 4], 2, 2, &mut dst, 0, 2, PixelFormat::Gray8),
            Err(OpsError::BadSize { .. })
        ));
    }
}
