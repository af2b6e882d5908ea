//! Colour conversion between every pair of [`PixelFormat`]s.
//!
//! RGB and YUV meet through BT.601 with limited ("TV") range, the default of
//! ffmpeg's swscale: `Y` in 16..=235, `U`/`V` in 16..=240. YUV read as RGB can also
//! use BT.709 or BT.2020 ([`convert_with_matrix`]), and full-range YUV is first
//! compressed to limited range ([`full_to_limited_range`]). A YUV or grey picture
//! can be turned (rotated by quarter turns, mirrored) as it is written
//! ([`convert_to`] with an [`Orientation`]): no separate pass. `Gray8` is full-range luma
//! (`0.299 R + 0.587 G + 0.114 B`), as ffmpeg's `gray`. Chroma is subsampled by
//! averaging each 2x2 block (edge pixels repeat on odd sizes) and upsampled by
//! repeating each sample over its block. All arithmetic is 16-bit fixed point.

use reel_frame::{Frame, PixelFormat};

use crate::{OpsError, check_len, frame_len};

/// Fixed-point precision of the conversion coefficients.
const SHIFT: u32 = 16;
const HALF: i32 = 1 << (SHIFT - 1);

const KR: f64 = 0.299;
const KB: f64 = 0.114;
const KG: f64 = 1.0 - KR - KB;
/// Limited-range scale of luma and chroma.
const Y_SCALE: f64 = 219.0 / 255.0;
const C_SCALE: f64 = 224.0 / 255.0;

/// `x` in 16-bit fixed point, rounded to nearest.
const fn fix(x: f64) -> i32 {
    let scaled = x * (1 << SHIFT) as f64;
    if scaled >= 0.0 {
        (scaled + 0.5) as i32
    } else {
        -((-scaled + 0.5) as i32)
    }
}

// RGB -> limited-range YUV.
const Y_R: i32 = fix(KR * Y_SCALE);
const Y_G: i32 = fix(KG * Y_SCALE);
const Y_B: i32 = fix(KB * Y_SCALE);
const U_R: i32 = fix(-KR / (2.0 * (1.0 - KB)) * C_SCALE);
const U_G: i32 = fix(-KG / (2.0 * (1.0 - KB)) * C_SCALE);
const U_B: i32 = fix(0.5 * C_SCALE);
const V_R: i32 = fix(0.5 * C_SCALE);
const V_G: i32 = fix(-KG / (2.0 * (1.0 - KR)) * C_SCALE);
const V_B: i32 = fix(-KB / (2.0 * (1.0 - KR)) * C_SCALE);

// Limited-range YUV -> RGB.
const RGB_Y: i32 = fix(1.0 / Y_SCALE);

/// The colour matrix a YUV picture was encoded with, which decides how it reads as
/// RGB. Streams that say nothing are BT.601, as swscale reads them by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matrix {
    /// ITU-R BT.601 (standard-definition video, JPEG, and the default).
    #[default]
    Bt601,
    /// ITU-R BT.709 (high-definition video).
    Bt709,
    /// ITU-R BT.2020, non-constant luminance (ultra-high-definition and HDR video;
    /// the transfer function is left as it is, as swscale leaves it).
    Bt2020,
}

/// The chroma coefficients of limited-range YUV -> RGB for one matrix.
#[derive(Clone, Copy)]
struct ToRgb {
    r_v: i32,
    g_u: i32,
    g_v: i32,
    b_u: i32,
}

const fn to_rgb(kr: f64, kb: f64) -> ToRgb {
    let kg = 1.0 - kr - kb;
    ToRgb {
        r_v: fix(2.0 * (1.0 - kr) / C_SCALE),
        g_u: fix(-2.0 * (1.0 - kb) * kb / kg / C_SCALE),
        g_v: fix(-2.0 * (1.0 - kr) * kr / kg / C_SCALE),
        b_u: fix(2.0 * (1.0 - kb) / C_SCALE),
    }
}

const BT601_TO_RGB: ToRgb = to_rgb(KR, KB);
const BT709_TO_RGB: ToRgb = to_rgb(0.2126, 0.0722);
const BT2020_TO_RGB: ToRgb = to_rgb(0.2627, 0.0593);

impl Matrix {
    fn to_rgb(self) -> ToRgb {
        match self {
            Matrix::Bt601 => BT601_TO_RGB,
            Matrix::Bt709 => BT709_TO_RGB,
            Matrix::Bt2020 => BT2020_TO_RGB,
        }
    }
}

// RGB -> full-range gray. The three sum to exactly 1 << SHIFT.
const GRAY_R: i32 = fix(KR);
const GRAY_G: i32 = fix(KG);
const GRAY_B: i32 = (1 << SHIFT) - GRAY_R - GRAY_G;

/// Limited-range luma to full-range gray.
static Y_TO_GRAY: [u8; 256] = {
    let mut lut = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let v = (i as f64 - 16.0) / Y_SCALE;
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

/// Full-range gray to limited-range luma.
static GRAY_TO_Y: [u8; 256] = {
    let mut lut = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        lut[i] = (16.0 + i as f64 * Y_SCALE + 0.5) as u8;
        i += 1;
    }
    lut
};

#[inline(always)]
fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Limited-range luma of one RGB pixel.
#[inline(always)]
fn limited_luma(r: u8, g: u8, b: u8) -> u8 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    ((Y_R * r + Y_G * g + Y_B * b + (16 << SHIFT) + HALF) >> SHIFT) as u8
}

/// Full-range gray of one RGB pixel.
#[inline(always)]
pub(crate) fn gray(r: u8, g: u8, b: u8) -> u8 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    ((GRAY_R * r + GRAY_G * g + GRAY_B * b + HALF) >> SHIFT) as u8
}

/// The layout of a packed RGB format.
pub(crate) trait Packed {
    /// Bytes per pixel.
    const BPP: usize;
    /// Byte offsets of red, green and blue in a pixel.
    const R: usize;
    const G: usize;
    const B: usize;
    /// Whether byte 3 is alpha.
    const ALPHA: bool;
}

pub(crate) struct Rgb;
pub(crate) struct Bgr;
pub(crate) struct Rgba;

impl Packed for Rgb {
    const BPP: usize = 3;
    const R: usize = 0;
    const G: usize = 1;
    const B: usize = 2;
    const ALPHA: bool = false;
}

impl Packed for Bgr {
    const BPP: usize = 3;
    const R: usize = 2;
    const G: usize = 1;
    const B: usize = 0;
    const ALPHA: bool = false;
}

impl Packed for Rgba {
    const BPP: usize = 4;
    const R: usize = 0;
    const G: usize = 1;
    const B: usize = 2;
    const ALPHA: bool = true;
}

/// What a format is, for choosing a conversion.
#[derive(Clone, Copy)]
enum Class {
    Packed(Order),
    Gray,
    Yuv { nv12: bool },
}

#[derive(Clone, Copy)]
enum Order {
    Rgb,
    Bgr,
    Rgba,
}

fn class(format: PixelFormat) -> Class {
    match format {
        PixelFormat::Rgb24 => Class::Packed(Order::Rgb),
        PixelFormat::Bgr24 => Class::Packed(Order::Bgr),
        PixelFormat::Rgba => Class::Packed(Order::Rgba),
        PixelFormat::Gray8 => Class::Gray,
        PixelFormat::Yuv420p => Class::Yuv { nv12: false },
        PixelFormat::Nv12 => Class::Yuv { nv12: true },
    }
}

/// Runs `$body` with `$t` bound to the layout type of `$order`.
macro_rules! with_order {
    ($order:expr, $t:ident => $body:expr) => {
        match $order {
            Order::Rgb => {
                type $t = Rgb;
                $body
            }
            Order::Bgr => {
                type $t = Bgr;
                $body
            }
            Order::Rgba => {
                type $t = Rgba;
                $body
            }
        }
    };
}

/// How a picture is turned on its way into the frame: the rotations by quarter
/// turns and the mirrorings a display matrix asks for. The flips are applied in the
/// source's own axes, then the transposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Orientation {
    /// Mirror left to right.
    pub flip_x: bool,
    /// Mirror top to bottom.
    pub flip_y: bool,
    /// Swap rows and columns (after the flips): a `w` x `h` picture becomes `h` x `w`.
    pub transpose: bool,
}

impl Orientation {
    /// Left as it is.
    pub const IDENTITY: Self = Self {
        flip_x: false,
        flip_y: false,
        transpose: false,
    };
    /// A quarter turn clockwise (ffmpeg's `transpose=clock`).
    pub const CLOCKWISE: Self = Self {
        flip_x: false,
        flip_y: true,
        transpose: true,
    };
    /// A half turn (ffmpeg's `hflip,vflip`).
    pub const HALF_TURN: Self = Self {
        flip_x: true,
        flip_y: true,
        transpose: false,
    };
    /// A quarter turn counter-clockwise (ffmpeg's `transpose=cclock`).
    pub const COUNTER_CLOCKWISE: Self = Self {
        flip_x: true,
        flip_y: false,
        transpose: true,
    };

    /// Whether it leaves the picture as it is.
    pub fn is_identity(self) -> bool {
        self == Self::IDENTITY
    }

    /// The size of a `width` x `height` picture once turned.
    pub fn output_size(self, width: u32, height: u32) -> (u32, u32) {
        if self.transpose {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// Where pixel `(x, y)` of a `w` x `h` plane lands in the turned plane, as an
    /// index into its rows.
    #[inline(always)]
    fn index(self, x: usize, y: usize, w: usize, h: usize) -> usize {
        let fx = if self.flip_x { w - 1 - x } else { x };
        let fy = if self.flip_y { h - 1 - y } else { y };
        if self.transpose {
            fy + fx * h
        } else {
            fx + fy * w
        }
    }
}

/// How [`convert_to`] reads and writes a picture, beyond the two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conversion {
    /// The matrix YUV sources were encoded with, for RGB outputs.
    pub matrix: Matrix,
    /// How the picture is turned as it is written.
    pub orientation: Orientation,
}

/// Converts a `width` x `height` picture from `src_format` to `dst_format`.
///
/// `src` and `dst` are tightly packed as [`PixelFormat::planes`] describes and must
/// hold at least a whole frame each (extra bytes are left alone). RGB<->YUV uses
/// BT.601 limited range, what ffmpeg's swscale uses by default. Allocates nothing.
pub fn convert(
    src: &[u8],
    src_format: PixelFormat,
    dst: &mut [u8],
    dst_format: PixelFormat,
    width: u32,
    height: u32,
) -> Result<(), OpsError> {
    convert_with_matrix(
        src,
        src_format,
        dst,
        dst_format,
        width,
        height,
        Matrix::Bt601,
    )
}

/// [`convert`], reading YUV sources as encoded with `matrix` when they become RGB
/// (everything else is as [`convert`] does it). Allocates nothing.
pub fn convert_with_matrix(
    src: &[u8],
    src_format: PixelFormat,
    dst: &mut [u8],
    dst_format: PixelFormat,
    width: u32,
    height: u32,
    matrix: Matrix,
) -> Result<(), OpsError> {
    let how = Conversion {
        matrix,
        ..Conversion::default()
    };
    convert_to(src, src_format, dst, dst_format, width, height, how)
}

/// [`convert`] with the matrix and orientation of `how`: `src` is the `width` x
/// `height` picture, `dst` the picture turned (its size is
/// [`Orientation::output_size`]). Turning takes a YUV or grey source (anything
/// else is [`OpsError::Unsupported`]) and happens as each pixel is written.
/// Allocates nothing.
pub fn convert_to(
    src: &[u8],
    src_format: PixelFormat,
    dst: &mut [u8],
    dst_format: PixelFormat,
    width: u32,
    height: u32,
    how: Conversion,
) -> Result<(), OpsError> {
    let matrix = how.matrix;
    if !how.orientation.is_identity() {
        return convert_turned(src, src_format, dst, dst_format, width, height, how);
    }
    let src_len = frame_len(src_format, width, height)?;
    let dst_len = frame_len(dst_format, width, height)?;
    check_len(src_len, src.len())?;
    check_len(dst_len, dst.len())?;
    let (src, dst) = (&src[..src_len], &mut dst[..dst_len]);
    let (w, h) = (width as usize, height as usize);
    if src_format == dst_format {
        dst.copy_from_slice(src);
        return Ok(());
    }
    match (class(src_format), class(dst_format)) {
        (Class::Packed(s), Class::Packed(d)) => {
            with_order!(s, S => with_order!(d, D => shuffle::<S, D>(src, dst)))
        }
        (Class::Packed(s), Class::Gray) => with_order!(s, S => packed_to_gray::<S>(src, dst)),
        (Class::Gray, Class::Packed(d)) => with_order!(d, D => gray_to_packed::<D>(src, dst)),
        (Class::Packed(s), Class::Yuv { nv12 }) => with_order!(s, S => if nv12 {
            packed_to_yuv::<S, true>(src, w, h, dst)
        } else {
            packed_to_yuv::<S, false>(src, w, h, dst)
        }),
        (Class::Yuv { nv12 }, Class::Packed(d)) => {
            let c = matrix.to_rgb();
            with_order!(d, D => if nv12 {
                yuv_to_packed::<D, true>(src, w, h, dst, c)
            } else {
                yuv_to_packed::<D, false>(src, w, h, dst, c)
            })
        }
        (Class::Yuv { .. }, Class::Gray) => {
            for (g, &y) in dst.iter_mut().zip(&src[..w * h]) {
                *g = Y_TO_GRAY[usize::from(y)];
            }
        }
        (Class::Gray, Class::Yuv { .. }) => {
            let (luma, chroma) = dst.split_at_mut(w * h);
            for (y, &g) in luma.iter_mut().zip(src) {
                *y = GRAY_TO_Y[usize::from(g)];
            }
            chroma.fill(128);
        }
        (Class::Yuv { nv12: from_nv12 }, Class::Yuv { .. }) => {
            let (src_luma, src_chroma) = src.split_at(w * h);
            let (dst_luma, dst_chroma) = dst.split_at_mut(w * h);
            dst_luma.copy_from_slice(src_luma);
            let n = src_chroma.len() / 2;
            if from_nv12 {
                let (u, v) = dst_chroma.split_at_mut(n);
                for ((uv, u), v) in src_chroma.chunks_exact(2).zip(u).zip(v) {
                    *u = uv[0];
                    *v = uv[1];
                }
            } else {
                let (u, v) = src_chroma.split_at(n);
                for ((uv, &u), &v) in dst_chroma.chunks_exact_mut(2).zip(u).zip(v) {
                    uv[0] = u;
                    uv[1] = v;
                }
            }
        }
        (Class::Gray, Class::Gray) => dst.copy_from_slice(src),
    }
    Ok(())
}

/// [`convert_to`] with a turn: each pixel converted as the unturned conversion
/// converts it and written where the orientation puts it.
fn convert_turned(
    src: &[u8],
    src_format: PixelFormat,
    dst: &mut [u8],
    dst_format: PixelFormat,
    width: u32,
    height: u32,
    how: Conversion,
) -> Result<(), OpsError> {
    let o = how.orientation;
    let (ow, oh) = o.output_size(width, height);
    let src_len = frame_len(src_format, width, height)?;
    let dst_len = frame_len(dst_format, ow, oh)?;
    check_len(src_len, src.len())?;
    check_len(dst_len, dst.len())?;
    let (src, dst) = (&src[..src_len], &mut dst[..dst_len]);
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (luma, chroma) = src.split_at(w * h);
    // The chroma of source pixel (x, y), for YUV sources.
    let from_nv12 = match class(src_format) {
        Class::Yuv { nv12 } => Some(nv12),
        Class::Gray => None,
        Class::Packed(_) => {
            return Err(OpsError::Unsupported {
                from: src_format,
                to: dst_format,
            });
        }
    };
    let uv = |cx: usize, cy: usize| -> (u8, u8) {
        match from_nv12 {
            Some(true) => (chroma[2 * (cy * cw + cx)], chroma[2 * (cy * cw + cx) + 1]),
            Some(false) => (chroma[cy * cw + cx], chroma[cw * ch + cy * cw + cx]),
            None => (128, 128),
        }
    };
    match class(dst_format) {
        Class::Packed(d) => with_order!(d, D => {
            let c = how.matrix.to_rgb();
            for y in 0..h {
                for x in 0..w {
                    let v = luma[y * w + x];
                    let px = if from_nv12.is_some() {
                        let (u, v2) = uv(x / 2, y / 2);
                        let (u, v2) = (i32::from(u) - 128, i32::from(v2) - 128);
                        rgb_of(v, c.r_v * v2, c.g_u * u + c.g_v * v2, c.b_u * u)
                    } else {
                        (v, v, v)
                    };
                    let at = o.index(x, y, w, h) * D::BPP;
                    put::<D>(&mut dst[at..at + D::BPP], px);
                }
            }
        }),
        Class::Gray => {
            for y in 0..h {
                for x in 0..w {
                    let v = luma[y * w + x];
                    dst[o.index(x, y, w, h)] = if from_nv12.is_some() {
                        Y_TO_GRAY[usize::from(v)]
                    } else {
                        v
                    };
                }
            }
        }
        Class::Yuv { nv12 } => {
            let (dst_luma, dst_chroma) = dst.split_at_mut(w * h);
            for y in 0..h {
                for x in 0..w {
                    let v = luma[y * w + x];
                    dst_luma[o.index(x, y, w, h)] = if from_nv12.is_some() {
                        v
                    } else {
                        GRAY_TO_Y[usize::from(v)]
                    };
                }
            }
            let n = cw * ch;
            for cy in 0..ch {
                for cx in 0..cw {
                    let (u, v) = uv(cx, cy);
                    let at = o.index(cx, cy, cw, ch);
                    if nv12 {
                        dst_chroma[2 * at] = u;
                        dst_chroma[2 * at + 1] = v;
                    } else {
                        dst_chroma[at] = u;
                        dst_chroma[n + at] = v;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Full-range ("PC", JPEG) luma to limited range: `16 + Y * 219 / 255`, rounded.
static FULL_TO_LIMITED_Y: [u8; 256] = {
    let mut lut = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        lut[i] = (16.0 + i as f64 * Y_SCALE + 0.5) as u8;
        i += 1;
    }
    lut
};

/// Full-range chroma to limited range: `128 + (C - 128) * 224 / 255`, rounded half
/// away from 128 (so the mapping is symmetric around grey).
static FULL_TO_LIMITED_C: [u8; 256] = {
    let mut lut = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let d = (i as f64 - 128.0) * C_SCALE;
        let r = if d >= 0.0 {
            (d + 0.5) as i32
        } else {
            -((-d + 0.5) as i32)
        };
        lut[i] = (128 + r) as u8;
        i += 1;
    }
    lut
};

/// Rewrites a full-range ("PC" or JPEG range, as `yuvj420p` and `color_range=pc`
/// streams carry) YUV picture in place as the limited range every other conversion
/// here expects: luma `0..=255` to `16..=235`, chroma `0..=255` to `16..=240`, each
/// through one table. `buf` is tightly packed as [`PixelFormat::planes`] describes
/// for `format`, which must be [`PixelFormat::Yuv420p`] or [`PixelFormat::Nv12`]
/// (anything else is [`OpsError::Unsupported`]). Allocates nothing.
pub fn full_to_limited_range(
    buf: &mut [u8],
    format: PixelFormat,
    width: u32,
    height: u32,
) -> Result<(), OpsError> {
    if !matches!(format, PixelFormat::Yuv420p | PixelFormat::Nv12) {
        return Err(OpsError::Unsupported {
            from: format,
            to: format,
        });
    }
    let len = frame_len(format, width, height)?;
    check_len(len, buf.len())?;
    let luma = width as usize * height as usize;
    let (y, c) = buf[..len].split_at_mut(luma);
    for v in y {
        *v = FULL_TO_LIMITED_Y[usize::from(*v)];
    }
    for v in c {
        *v = FULL_TO_LIMITED_C[usize::from(*v)];
    }
    Ok(())
}

/// Converts `src` into `dst`, which must have the same size; `dst` takes `src`'s
/// index and pts (its metadata is left alone). Allocates nothing.
pub fn convert_frame(src: &Frame, dst: &mut Frame) -> Result<(), OpsError> {
    if (src.width(), src.height()) != (dst.width(), dst.height()) {
        return Err(OpsError::SizeMismatch {
            src: (src.width(), src.height()),
            dst: (dst.width(), dst.height()),
        });
    }
    let (width, height, dst_format) = (dst.width(), dst.height(), dst.format());
    convert(
        src.data(),
        src.format(),
        dst.data_mut(),
        dst_format,
        width,
        height,
    )?;
    dst.index = src.index;
    dst.pts = src.pts;
    Ok(())
}

crate::simd::multiversion! {
    fn shuffle[S: Packed, D: Packed](src: &[u8], dst: &mut [u8]) -> () {
    for (d, s) in dst.chunks_exact_mut(D::BPP).zip(src.chunks_exact(S::BPP)) {
        let (r, g, b) = (s[S::R], s[S::G], s[S::B]);
        d[D::R] = r;
        d[D::G] = g;
        d[D::B] = b;
        if D::ALPHA {
            d[3] = if S::ALPHA { s[3] } else { 255 };
        }
    }
}
    avx2 = shuffle_avx2, generic = [S, D]
}

crate::simd::multiversion! {
    fn packed_to_gray[S: Packed](src: &[u8], dst: &mut [u8]) -> () {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(S::BPP)) {
        *d = gray(s[S::R], s[S::G], s[S::B]);
    }
}
    avx2 = packed_to_gray_avx2, generic = [S]
}

fn gray_to_packed<D: Packed>(src: &[u8], dst: &mut [u8]) {
    for (d, &g) in dst.chunks_exact_mut(D::BPP).zip(src) {
        d[D::R] = g;
        d[D::G] = g;
        d[D::B] = g;
        if D::ALPHA {
            d[3] = 255;
        }
    }
}

/// Chroma of the sums of four RGB pixels.
#[inline(always)]
fn chroma4(r: i32, g: i32, b: i32) -> (u8, u8) {
    const ROUND: i32 = (128 << (SHIFT + 2)) + (1 << (SHIFT + 1));
    let u = (U_R * r + U_G * g + U_B * b + ROUND) >> (SHIFT + 2);
    let v = (V_R * r + V_G * g + V_B * b + ROUND) >> (SHIFT + 2);
    (clamp_u8(u), clamp_u8(v))
}

crate::simd::multiversion! {
    fn packed_to_yuv[S: Packed, const NV12: bool](src: &[u8], w: usize, h: usize, dst: &mut [u8]) -> () {
    let stride = w * S::BPP;
    let cw = w.div_ceil(2);
    let (luma, chroma) = dst.split_at_mut(w * h);
    for (yrow, srow) in luma.chunks_exact_mut(w).zip(src.chunks_exact(stride)) {
        for (y, p) in yrow.iter_mut().zip(srow.chunks_exact(S::BPP)) {
            *y = limited_luma(p[S::R], p[S::G], p[S::B]);
        }
    }
    // Planar chroma: U rows then V rows; NV12: one interleaved row per chroma row.
    let (u_plane, v_plane) = if NV12 {
        (chroma, &mut [][..])
    } else {
        let n = chroma.len() / 2;
        chroma.split_at_mut(n)
    };
    for (cy, pair) in src.chunks(2 * stride).enumerate() {
        let top = &pair[..stride];
        // The last row repeats on odd heights.
        let bottom = pair.get(stride..2 * stride).unwrap_or(top);
        let mut block = |cx: usize, x0: usize, x1: usize| {
            let (a, b) = (&top[x0..x0 + S::BPP], &top[x1..x1 + S::BPP]);
            let (c, d) = (&bottom[x0..x0 + S::BPP], &bottom[x1..x1 + S::BPP]);
            let sum =
                |i: usize| i32::from(a[i]) + i32::from(b[i]) + i32::from(c[i]) + i32::from(d[i]);
            let (u, v) = chroma4(sum(S::R), sum(S::G), sum(S::B));
            if NV12 {
                let row = &mut u_plane[cy * 2 * cw..(cy + 1) * 2 * cw];
                row[2 * cx] = u;
                row[2 * cx + 1] = v;
            } else {
                u_plane[cy * cw + cx] = u;
                v_plane[cy * cw + cx] = v;
            }
        };
        for cx in 0..w / 2 {
            let x0 = 2 * cx * S::BPP;
            block(cx, x0, x0 + S::BPP);
        }
        if w % 2 == 1 {
            // The last column repeats on odd widths.
            let x0 = (w - 1) * S::BPP;
            block(w / 2, x0, x0);
        }
    }
}
    avx2 = packed_to_yuv_avx2, generic = [S, NV12]
}

/// One RGB pixel from luma and the chroma terms of its block.
#[inline(always)]
fn rgb_of(y: u8, r_term: i32, g_term: i32, b_term: i32) -> (u8, u8, u8) {
    let y = RGB_Y * (i32::from(y) - 16) + HALF;
    (
        clamp_u8((y + r_term) >> SHIFT),
        clamp_u8((y + g_term) >> SHIFT),
        clamp_u8((y + b_term) >> SHIFT),
    )
}

#[inline(always)]
fn put<D: Packed>(d: &mut [u8], (r, g, b): (u8, u8, u8)) {
    d[D::R] = r;
    d[D::G] = g;
    d[D::B] = b;
    if D::ALPHA {
        d[3] = 255;
    }
}

crate::simd::multiversion! {
    fn yuv_to_packed[D: Packed, const NV12: bool](src: &[u8], w: usize, h: usize, dst: &mut [u8], c: ToRgb) -> () {
    let stride = w * D::BPP;
    let cw = w.div_ceil(2);
    let (luma, chroma) = src.split_at(w * h);
    let (u_plane, v_plane) = if NV12 {
        (chroma, &[][..])
    } else {
        chroma.split_at(chroma.len() / 2)
    };
    for (y, (yrow, drow)) in luma
        .chunks_exact(w)
        .zip(dst.chunks_exact_mut(stride))
        .enumerate()
    {
        let cy = y / 2;
        let terms = |cx: usize| {
            let (u, v) = if NV12 {
                (
                    u_plane[cy * 2 * cw + 2 * cx],
                    u_plane[cy * 2 * cw + 2 * cx + 1],
                )
            } else {
                (u_plane[cy * cw + cx], v_plane[cy * cw + cx])
            };
            let (u, v) = (i32::from(u) - 128, i32::from(v) - 128);
            (c.r_v * v, c.g_u * u + c.g_v * v, c.b_u * u)
        };
        for (cx, (ys, ds)) in yrow
            .chunks_exact(2)
            .zip(drow.chunks_exact_mut(2 * D::BPP))
            .enumerate()
        {
            let (rt, gt, bt) = terms(cx);
            let (d0, d1) = ds.split_at_mut(D::BPP);
            put::<D>(d0, rgb_of(ys[0], rt, gt, bt));
            put::<D>(d1, rgb_of(ys[1], rt, gt, bt));
        }
        if w % 2 == 1 {
            let (rt, gt, bt) = terms(w / 2);
            put::<D>(
                &mut drow[(w - 1) * D::BPP..],
                rgb_of(yrow[w - 1], rt, gt, bt),
            );
        }
    }
}
    avx2 = yuv_to_packed_avx2, generic = [D, NV12]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_range_is_compressed_to_limited_range() {
        // 2x2 yuv420p: four luma samples, one U, one V.
        let mut buf = [0u8, 255, 128, 1, 0, 255];
        full_to_limited_range(&mut buf, PixelFormat::Yuv420p, 2, 2).unwrap();
        assert_eq!(buf, [16, 235, 126, 17, 16, 240]);
        let mut grey = [9u8, 9, 9, 9, 128, 128];
        full_to_limited_range(&mut grey, PixelFormat::Nv12, 2, 2).unwrap();
        assert_eq!(&grey[4..], &[128, 128]);
        // Every table is monotonic and stays inside the limited range.
        for i in 0..255 {
            assert!(FULL_TO_LIMITED_Y[i] <= FULL_TO_LIMITED_Y[i + 1]);
            assert!(FULL_TO_LIMITED_C[i] <= FULL_TO_LIMITED_C[i + 1]);
        }
        assert!(full_to_limited_range(&mut [0u8; 12], PixelFormat::Rgb24, 2, 2).is_err());
        assert!(full_to_limited_range(&mut [0u8; 5], PixelFormat::Yuv420p, 2, 2).is_err());
    }

    /// `plane` (`w` x `h`, `bpp` bytes a pixel) turned by `o`, one pixel at a time
    /// from the output's side: the definition the conversion must meet.
    fn turn_plane(plane: &[u8], w: usize, h: usize, bpp: usize, o: Orientation) -> Vec<u8> {
        let (ow, oh) = if o.transpose { (h, w) } else { (w, h) };
        let mut out = vec![0u8; plane.len()];
        for oy in 0..oh {
            for ox in 0..ow {
                let (fx, fy) = if o.transpose { (oy, ox) } else { (ox, oy) };
                let x = if o.flip_x { w - 1 - fx } else { fx };
                let y = if o.flip_y { h - 1 - fy } else { fy };
                out[(oy * ow + ox) * bpp..][..bpp]
                    .copy_from_slice(&plane[(y * w + x) * bpp..][..bpp]);
            }
        }
        out
    }

    #[test]
    fn turning_as_it_writes_is_converting_then_turning() {
        // The quarter turns on a 3x2 grey picture, by hand.
        let grey = [1u8, 2, 3, 4, 5, 6];
        let mut out = [0u8; 6];
        let turn = |o, out: &mut [u8]| {
            let how = Conversion {
                orientation: o,
                ..Conversion::default()
            };
            convert_to(
                &grey,
                PixelFormat::Gray8,
                out,
                PixelFormat::Gray8,
                3,
                2,
                how,
            )
            .unwrap();
        };
        turn(Orientation::CLOCKWISE, &mut out);
        assert_eq!(out, [4, 1, 5, 2, 6, 3]);
        turn(Orientation::COUNTER_CLOCKWISE, &mut out);
        assert_eq!(out, [3, 6, 2, 5, 1, 4]);
        turn(Orientation::HALF_TURN, &mut out);
        assert_eq!(out, [6, 5, 4, 3, 2, 1]);
        // Every orientation, from YUV and grey into every format, odd sizes
        // included: the same pixels as the unturned conversion, turned.
        let (w, h) = (7usize, 5usize);
        for from in [PixelFormat::Yuv420p, PixelFormat::Nv12, PixelFormat::Gray8] {
            let len = from.frame_size(w as u32, h as u32).unwrap();
            let src: Vec<u8> = (0..len).map(|i| (i * 37 % 223 + 16) as u8).collect();
            for to in PixelFormat::ALL {
                let mut plain = vec![0u8; to.frame_size(w as u32, h as u32).unwrap()];
                convert(&src, from, &mut plain, to, w as u32, h as u32).unwrap();
                for bits in 0..8u8 {
                    let o = Orientation {
                        flip_x: bits & 1 != 0,
                        flip_y: bits & 2 != 0,
                        transpose: bits & 4 != 0,
                    };
                    let how = Conversion {
                        matrix: Matrix::Bt709,
                        orientation: o,
                    };
                    let mut plain = plain.clone();
                    convert_with_matrix(
                        &src,
                        from,
                        &mut plain,
                        to,
                        w as u32,
                        h as u32,
                        Matrix::Bt709,
                    )
                    .unwrap();
                    let mut turned = vec![0u8; plain.len()];
                    convert_to(&src, from, &mut turned, to, w as u32, h as u32, how).unwrap();
                    let planes = to.planes(w as u32, h as u32);
                    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                    let mut want = Vec::new();
                    for (i, p) in planes.iter().enumerate() {
                        let bytes = &plain[p.offset..p.offset + p.len()];
                        want.extend(match (to, i) {
                            (PixelFormat::Nv12, 1) => turn_plane(bytes, cw, ch, 2, o),
                            (_, 0) => {
                                let bpp = to.bytes_per_pixel().unwrap_or(1);
                                turn_plane(bytes, w, h, bpp, o)
                            }
                            _ => turn_plane(bytes, cw, ch, 1, o),
                        });
                    }
                    assert_eq!(turned, want, "{from} -> {to}, {o:?}");
                }
            }
        }
        // Packed sources are not turned.
        let how = Conversion {
            orientation: Orientation::CLOCKWISE,
            ..Conversion::default()
        };
        assert!(
            convert_to(
                &[0; 18],
                PixelFormat::Rgb24,
                &mut [0; 6],
                PixelFormat::Gray8,
                3,
                2,
                how
            )
            .is_err()
        );
    }

    #[test]
    fn the_three_matrices_differ_on_colour_and_agree_on_grey() {
        // Limited-range saturated red in each matrix's own terms reads differently;
        // grey (neutral chroma) reads the same.
        let mut rgb = [[0u8; 12]; 3];
        let mut grey = [[0u8; 12]; 3];
        for (i, m) in [Matrix::Bt601, Matrix::Bt709, Matrix::Bt2020]
            .into_iter()
            .enumerate()
        {
            convert_with_matrix(
                &[81, 81, 81, 81, 90, 240],
                PixelFormat::Yuv420p,
                &mut rgb[i],
                PixelFormat::Rgb24,
                2,
                2,
                m,
            )
            .unwrap();
            convert_with_matrix(
                &[126, 126, 126, 126, 128, 128],
                PixelFormat::Yuv420p,
                &mut grey[i],
                PixelFormat::Rgb24,
                2,
                2,
                m,
            )
            .unwrap();
        }
        assert!(
            rgb[0][0] >= 254 && rgb[0][1] <= 1 && rgb[0][2] <= 1,
            "{:?}",
            rgb[0]
        );
        assert_ne!(rgb[0], rgb[1]);
        assert_ne!(rgb[1], rgb[2]);
        assert_eq!(grey[0], grey[1]);
        assert_eq!(grey[1], grey[2]);
    }

    #[test]
    fn coefficients_are_bt601_limited_range() {
        // White, black and the primaries land where BT.601 puts them.
        let mut yuv = [0u8; 6];
        for (rgb, want) in [
            ([255u8, 255, 255], [235u8, 128, 128]),
            ([0, 0, 0], [16, 128, 128]),
            ([255, 0, 0], [81, 90, 240]),
            ([0, 255, 0], [145, 54, 34]),
            ([0, 0, 255], [41, 240, 110]),
        ] {
            let src: Vec<u8> = rgb.repeat(4);
            convert(
                &src,
                PixelFormat::Rgb24,
                &mut yuv,
                PixelFormat::Yuv420p,
                2,
                2,
            )
            .unwrap();
            assert_eq!([yuv[0], yuv[4], yuv[5]], want, "rgb {rgb:?}");
        }
        assert_eq!(GRAY_R + GRAY_G + GRAY_B, 1 << SHIFT);
        assert_eq!(Y_TO_GRAY[16], 0);
        assert_eq!(Y_TO_GRAY[235], 255);
        assert_eq!(GRAY_TO_Y[255], 235);
    }

    #[test]
    fn every_pair_round_trips_on_grey_levels() {
        // Grey survives every path (chroma is neutral), within the rounding of the
        // limited range.
        let (w, h) = (5u32, 3u32);
        for from in PixelFormat::ALL {
            for to in PixelFormat::ALL {
                let mut gray: Vec<u8> = (0..w * h).map(|i| (i * 17) as u8).collect();
                gray[0] = 0;
                gray[1] = 255;
                let mut a = vec![0u8; from.frame_size(w, h).unwrap()];
                let mut b = vec![0u8; to.frame_size(w, h).unwrap()];
                let mut back_to_gray = vec![0u8; gray.len()];
                convert(&gray, PixelFormat::Gray8, &mut a, from, w, h).unwrap();
                convert(&a, from, &mut b, to, w, h).unwrap();
                convert(&b, to, &mut back_to_gray, PixelFormat::Gray8, w, h).unwrap();
                for (x, y) in gray.iter().zip(&back_to_gray) {
                    assert!(x.abs_diff(*y) <= 1, "{from} -> {to}: {x} became {y}");
                }
            }
        }
    }

    #[test]
    fn rejects_short_buffers_and_empty_sizes() {
        let mut dst = [0u8; 10];
        assert_eq!(
            convert(
                &[0; 12],
                PixelFormat::Rgb24,
                &mut dst,
                PixelFormat::Gray8,
                2,
                2
            ),
            Ok(())
        );
        assert_eq!(
            convert(
                &[0; 11],
                PixelFormat::Rgb24,
                &mut dst,
                PixelFormat::Gray8,
                2,
                2
            ),
            Err(OpsError::BufferSize {
                needed: 12,
                got: 11
            })
        );
        assert_eq!(
            convert(
                &[0; 12],
                PixelFormat::Rgb24,
                &mut dst[..3],
                PixelFormat::Gray8,
                2,
                2
            ),
            Err(OpsError::BufferSize { needed: 4, got: 3 })
        );
        assert!(matches!(
            convert(&[], PixelFormat::Rgb24, &mut dst, PixelFormat::Gray8, 0, 2),
            Err(OpsError::BadSize { .. })
        ));
    }

    #[test]
    fn packed_orders_and_alpha() {
        let rgb = [1u8, 2, 3, 4, 5, 6];
        let mut bgr = [0u8; 6];
        let mut rgba = [0u8; 8];
        convert(&rgb, PixelFormat::Rgb24, &mut bgr, PixelFormat::Bgr24, 2, 1).unwrap();
        assert_eq!(bgr, [3, 2, 1, 6, 5, 4]);
        convert(&bgr, PixelFormat::Bgr24, &mut rgba, PixelFormat::Rgba, 2, 1).unwrap();
        assert_eq!(rgba, [1, 2, 3, 255, 4, 5, 6, 255]);
    }
}
