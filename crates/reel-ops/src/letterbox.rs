//! The letterbox YOLO models expect: resize keeping the aspect ratio, then pad to
//! the model's size, with the geometry computed exactly as ultralytics does, so that
//! boxes map back to the same source pixels. With [`CvLinear`] as the resizer the
//! letterboxed picture is byte for byte ultralytics' (OpenCV's `INTER_LINEAR`,
//! grey padding).

use reel_frame::{BBox, PixelFormat};

use crate::cv_linear::CvLinear;
use crate::resize::{PlaneMut, PlaneRef, Resizer};
use crate::{OpsError, check_len, frame_len};

/// What a letterbox resizes the picture with: [`CvLinear`] for ultralytics'
/// pixels exactly, or a [`Resizer`] and its filter.
pub trait LetterboxResize {
    /// Resizes packed RGB24 `src` (`sw` × `sh`, rows packed) into `dst`, whose
    /// first byte is the first pixel of a `dw` × `dh` area with rows `dst_stride`
    /// bytes apart.
    #[allow(clippy::too_many_arguments)]
    fn resize_rgb(
        &mut self,
        src: &[u8],
        sw: usize,
        sh: usize,
        dst: &mut [u8],
        dw: usize,
        dh: usize,
        dst_stride: usize,
    ) -> Result<(), OpsError>;
}

impl LetterboxResize for CvLinear {
    fn resize_rgb(
        &mut self,
        src: &[u8],
        sw: usize,
        sh: usize,
        dst: &mut [u8],
        dw: usize,
        dh: usize,
        dst_stride: usize,
    ) -> Result<(), OpsError> {
        self.resize(3, src, (sw, sh, 3 * sw), dst, (dw, dh, dst_stride))
    }
}

impl LetterboxResize for Resizer {
    fn resize_rgb(
        &mut self,
        src: &[u8],
        sw: usize,
        sh: usize,
        dst: &mut [u8],
        dw: usize,
        dh: usize,
        dst_stride: usize,
    ) -> Result<(), OpsError> {
        self.resize_plane(
            3,
            PlaneRef {
                data: src,
                width: sw,
                height: sh,
                stride: sw * 3,
            },
            PlaneMut {
                data: dst,
                width: dw,
                height: dh,
                stride: dst_stride,
            },
        )
    }
}

/// Where a source picture lands inside a letterboxed target.
///
/// Geometry the ultralytics way: `r = min(tw/w, th/h)`; `new = (max(round(w*r), 1),
/// max(round(h*r), 1))`; `dw, dh = (tw-new_w)/2, (th-new_h)/2`; `left = round(dw-0.1)`,
/// `top = round(dh-0.1)` (rounding half to even, as Python does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// Source pixels to target pixels.
    pub scale: f32,
    /// Width of the resized picture inside the target.
    pub new_w: u32,
    /// Height of the resized picture inside the target.
    pub new_h: u32,
    /// Padding columns on the left.
    pub left: u32,
    /// Padding rows on top.
    pub top: u32,
    /// Width of the target.
    pub target_w: u32,
    /// Height of the target.
    pub target_h: u32,
}

impl Letterbox {
    /// The geometry of fitting `src_w` x `src_h` into `target_w` x `target_h`. A zero
    /// size gives an empty picture (scale 0) in the middle of the target.
    pub fn compute(src_w: u32, src_h: u32, target_w: u32, target_h: u32) -> Self {
        let (w, h) = (f64::from(src_w), f64::from(src_h));
        let (tw, th) = (f64::from(target_w), f64::from(target_h));
        let r = if src_w == 0 || src_h == 0 {
            0.0
        } else {
            (tw / w).min(th / h)
        };
        // At least one pixel, as ultralytics keeps thin pictures.
        let side = |v: f64, t: u32| {
            if r == 0.0 {
                0
            } else {
                ((v * r).round_ties_even() as u32).clamp(1, t.max(1))
            }
        };
        let (new_w, new_h) = (side(w, target_w), side(h, target_h));
        let pad = |total: u32, inner: u32| {
            let d = f64::from(total - inner) / 2.0;
            (d - 0.1).round_ties_even().max(0.0) as u32
        };
        Self {
            scale: r as f32,
            new_w,
            new_h,
            left: pad(target_w, new_w),
            top: pad(target_h, new_h),
            target_w,
            target_h,
        }
    }

    /// Padding columns on the right.
    pub fn right(&self) -> u32 {
        self.target_w - self.new_w - self.left
    }

    /// Padding rows at the bottom.
    pub fn bottom(&self) -> u32 {
        self.target_h - self.new_h - self.top
    }

    /// A box in letterboxed pixels back to source pixels (clamped to the source):
    /// subtract the padding, divide by the scale.
    pub fn map_back(&self, b: BBox, src_w: u32, src_h: u32) -> BBox {
        if self.scale <= 0.0 {
            return BBox::default();
        }
        let (left, top) = (self.left as f32, self.top as f32);
        BBox::new(b.x1 - left, b.y1 - top, b.x2 - left, b.y2 - top)
            .scale(1.0 / self.scale, 1.0 / self.scale)
            .clamp_to(src_w as f32, src_h as f32)
    }

    /// A box in source pixels to letterboxed pixels (the inverse of
    /// [`map_back`](Self::map_back), without clamping).
    pub fn map_forward(&self, b: BBox) -> BBox {
        let (left, top) = (self.left as f32, self.top as f32);
        let s = b.scale(self.scale, self.scale);
        BBox::new(s.x1 + left, s.y1 + top, s.x2 + left, s.y2 + top)
    }
}

/// Resizes an RGB24 picture keeping its aspect ratio and pads it with `pad` (114 for
/// YOLO) into a `target_w` x `target_h` RGB24 target, returning the geometry. The
/// resize is `resizer`'s ([`CvLinear`]: ultralytics' pixels exactly); nothing is
/// allocated once the resizer has seen these sizes.
#[allow(clippy::too_many_arguments)]
pub fn letterbox_rgb(
    resizer: &mut impl LetterboxResize,
    src: &[u8],
    src_w: u32,
    src_h: u32,
    dst: &mut [u8],
    target_w: u32,
    target_h: u32,
    pad: u8,
) -> Result<Letterbox, OpsError> {
    check_len(frame_len(PixelFormat::Rgb24, src_w, src_h)?, src.len())?;
    let dst_len = frame_len(PixelFormat::Rgb24, target_w, target_h)?;
    check_len(dst_len, dst.len())?;
    let lb = Letterbox::compute(src_w, src_h, target_w, target_h);
    if lb.new_w == 0 || lb.new_h == 0 {
        return Err(OpsError::Resize(format!(
            "{src_w}x{src_h} shrinks to nothing in {target_w}x{target_h}"
        )));
    }
    let dst = &mut dst[..dst_len];
    let stride = target_w as usize * 3;
    let (top, new_h) = (lb.top as usize, lb.new_h as usize);
    let (left, new_w) = (lb.left as usize * 3, lb.new_w as usize * 3);
    dst[..top * stride].fill(pad);
    dst[(top + new_h) * stride..].fill(pad);
    for row in dst[top * stride..(top + new_h) * stride].chunks_exact_mut(stride) {
        row[..left].fill(pad);
        row[left + new_w..].fill(pad);
    }
    resizer.resize_rgb(
        src,
        src_w as usize,
        src_h as usize,
        &mut dst[top * stride + left..],
        lb.new_w as usize,
        new_h,
        stride,
    )?;
    Ok(lb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_of_the_reference_fixture() {
        // messi5.jpg, 548x342, into 640x640: ratio 1.16788, 640x399, 120 top, 121 bottom.
        let lb = Letterbox::compute(548, 342, 640, 640);
        assert!((lb.scale - 1.167_883_2).abs() < 1e-6);
        assert_eq!((lb.new_w, lb.new_h), (640, 399));
        assert_eq!((lb.left, lb.right(), lb.top, lb.bottom()), (0, 0, 120, 121));
    }

    #[test]
    fn geometry_of_common_video_sizes() {
        let lb = Letterbox::compute(1920, 1080, 640, 640);
        assert_eq!(
            (lb.new_w, lb.new_h, lb.top, lb.bottom()),
            (640, 360, 140, 140)
        );
        let lb = Letterbox::compute(768, 576, 640, 640);
        assert_eq!(
            (lb.new_w, lb.new_h, lb.top, lb.bottom()),
            (640, 480, 80, 80)
        );
        // Portrait: padding goes left and right; an odd remainder puts the extra
        // column on the right.
        let lb = Letterbox::compute(341, 640, 640, 640);
        assert_eq!((lb.new_w, lb.left, lb.right()), (341, 149, 150));
        // Python rounds halves to even: 3 * 0.5 = 1.5 -> 2, 5 * 0.5 = 2.5 -> 2.
        let lb = Letterbox::compute(10, 5, 5, 5);
        assert_eq!((lb.new_w, lb.new_h), (5, 2));
        // A thin picture keeps one pixel, as ultralytics keeps it.
        let lb = Letterbox::compute(2000, 1, 640, 640);
        assert_eq!((lb.new_w, lb.new_h, lb.top), (640, 1, 319));
    }

    #[test]
    fn map_back_inverts_the_letterbox_and_clamps() {
        let lb = Letterbox::compute(548, 342, 640, 640);
        let src = BBox::new(10.0, 20.0, 300.0, 200.0);
        let back = lb.map_back(lb.map_forward(src), 548, 342);
        for (a, b) in [
            (back.x1, src.x1),
            (back.y1, src.y1),
            (back.x2, src.x2),
            (back.y2, src.y2),
        ] {
            assert!((a - b).abs() < 1e-3, "{back:?} vs {src:?}");
        }
        // A box reaching into the padding is clamped to the picture.
        let b = lb.map_back(BBox::new(-5.0, 100.0, 700.0, 600.0), 548, 342);
        assert_eq!(b.x1, 0.0);
        assert_eq!(b.x2, 548.0);
        assert_eq!(b.y1, 0.0);
        assert_eq!(b.y2, 342.0);
        // Hand-computed: (200-0)/1.16788 = 171.25, (320-120)/1.16788 = 171.25.
        let b = lb.map_back(BBox::new(200.0, 320.0, 201.0, 321.0), 548, 342);
        assert!(
            (b.x1 - 171.25).abs() < 1e-2 && (b.y1 - 171.25).abs() < 1e-2,
            "{b:?}"
        );
    }

    #[test]
    fn pads_and_places_the_picture() {
        let mut r = Resizer::default();
        // 4x2 white into 4x4: scale 1, rows 1..3 white, rows 0 and 3 padding.
        let src = [255u8; 4 * 2 * 3];
        let mut dst = [0u8; 4 * 4 * 3];
        let lb = letterbox_rgb(&mut r, &src, 4, 2, &mut dst, 4, 4, 114).unwrap();
        assert_eq!((lb.top, lb.new_h), (1, 2));
        assert!(dst[..12].iter().all(|&v| v == 114));
        assert!(dst[12..36].iter().all(|&v| v == 255));
        assert!(dst[36..].iter().all(|&v| v == 114));
    }
}
