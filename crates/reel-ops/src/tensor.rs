//! Tensor layout: packed pixels to the planar floats models take.

use reel_frame::PixelFormat;

use crate::{OpsError, check_len, frame_len};

/// `v / 255` for every byte, computed once (a division, as the reference
/// preprocessing does, so the floats are bit-identical to it).
static UNIT: [f32; 256] = {
    let mut lut = [0f32; 256];
    let mut i = 0;
    while i < 256 {
        lut[i] = i as f32 / 255.0;
        i += 1;
    }
    lut
};

/// Packed RGB24 HWC u8 -> planar CHW f32 scaled by 1/255 (what YOLO expects).
/// `dst` holds at least `3 * width * height` floats: the R plane, then G, then B.
pub fn rgb_to_chw_f32(
    src: &[u8],
    width: u32,
    height: u32,
    dst: &mut [f32],
) -> Result<(), OpsError> {
    let len = frame_len(PixelFormat::Rgb24, width, height)?;
    check_len(len, src.len())?;
    check_len(len, dst.len())?;
    let n = len / 3;
    let (r, rest) = dst[..len].split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for (((px, r), g), b) in src[..len].chunks_exact(3).zip(r).zip(g).zip(b) {
        *r = UNIT[usize::from(px[0])];
        *g = UNIT[usize::from(px[1])];
        *b = UNIT[usize::from(px[2])];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_in_rgb_order_scaled() {
        let src = [0u8, 128, 255, 51, 102, 153];
        let mut dst = [9f32; 6];
        rgb_to_chw_f32(&src, 2, 1, &mut dst).unwrap();
        assert_eq!(dst, [0.0, 0.2, 128.0 / 255.0, 0.4, 1.0, 0.6]);
        assert_eq!(
            rgb_to_chw_f32(&src, 2, 1, &mut dst[..5]),
            Err(OpsError::BufferSize { needed: 6, got: 5 })
        );
    }
}
