//! Bringing a decoded picture to the format and size the caller asked for, with the
//! frame operations of `reel-ops`, for the readers that decode in process.

use reel_frame::PixelFormat;
use reel_ops::OpsError;
use reel_ops::convert::convert;
use reel_ops::resize::{Filter, Resizer};

/// Converts and resizes pictures, keeping its scratch and filter tables between
/// calls: no allocation per frame once the sizes are steady.
#[derive(Debug)]
pub(crate) struct Shaper {
    resizer: Resizer,
    scratch: Vec<u8>,
}

impl Shaper {
    pub(crate) fn new() -> Self {
        Self {
            // Area averaging when shrinking (what analysis wants), bilinear when
            // enlarging.
            resizer: Resizer::new(Filter::Area),
            scratch: Vec::new(),
        }
    }

    /// `src` (`from` at `src_size`) into `dst` (`to` at `dst_size`): resized in the
    /// source format, then converted.
    pub(crate) fn shape(
        &mut self,
        src: &[u8],
        from: PixelFormat,
        src_size: (u32, u32),
        dst: &mut [u8],
        to: PixelFormat,
        dst_size: (u32, u32),
    ) -> Result<(), OpsError> {
        let (sw, sh) = src_size;
        let (dw, dh) = dst_size;
        match (src_size == dst_size, from == to) {
            (true, true) => {
                let n = dst.len().min(src.len());
                dst[..n].copy_from_slice(&src[..n]);
                Ok(())
            }
            (true, false) => convert(src, from, dst, to, dw, dh),
            (false, true) => self.resizer.resize(src, sw, sh, dst, dw, dh, from),
            (false, false) => {
                let len = from.frame_size(dw, dh).ok_or(OpsError::BadSize {
                    format: from,
                    width: dw,
                    height: dh,
                })?;
                self.scratch.resize(len, 0);
                self.resizer
                    .resize(src, sw, sh, &mut self.scratch, dw, dh, from)?;
                convert(&self.scratch, from, dst, to, dw, dh)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_and_resizes() {
        let mut s = Shaper::new();
        // A 4x2 red RGB picture to 2x1 gray.
        let src: Vec<u8> = [255u8, 0, 0].repeat(8);
        let mut dst = [0u8; 2];
        s.shape(
            &src,
            PixelFormat::Rgb24,
            (4, 2),
            &mut dst,
            PixelFormat::Gray8,
            (2, 1),
        )
        .unwrap();
        // Full-range luma of pure red: 0.299 * 255.
        assert!(dst.iter().all(|&g| (75..=77).contains(&g)), "{dst:?}");
        let mut same = vec![0u8; 24];
        s.shape(
            &src,
            PixelFormat::Rgb24,
            (4, 2),
            &mut same,
            PixelFormat::Rgb24,
            (4, 2),
        )
        .unwrap();
        assert_eq!(same, src);
    }
}
