//! Pictures to the model's input: letterbox to the model size (aspect kept, grey
//! 114 padding, OpenCV's `INTER_LINEAR` resize bit for bit, the geometry exactly
//! as ultralytics computes it: the same bytes as ultralytics' `LetterBox`), RGB,
//! /255, planar CHW f32, into pooled buffers.

use reel_ops::cv_linear::CvLinear;
use reel_ops::letterbox::{Letterbox, letterbox_rgb};
use reel_ops::tensor::rgb_to_chw_f32;
use reel_pool::{FramePool, PooledBuf};

use crate::InferError;

/// The grey ultralytics pads letterboxed pictures with.
pub const PAD_VALUE: u8 = 114;

/// A packed RGB24 picture, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    /// `3 * width * height` bytes, rows packed.
    pub data: &'a [u8],
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Letterboxes pictures into model inputs. Keeps its resizer's tables and its RGB
/// scratch between calls: once it has seen a source size, preprocessing another
/// picture of that size allocates nothing.
#[derive(Debug)]
pub struct Preprocessor {
    size: u32,
    resizer: CvLinear,
    rgb: Vec<u8>,
}

impl Preprocessor {
    /// For a square model input of `size` pixels.
    pub fn new(size: u32) -> Self {
        Self {
            size,
            resizer: CvLinear::new(),
            rgb: vec![0; 3 * size as usize * size as usize],
        }
    }

    /// The model input's side.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Floats one picture takes: `3 * size * size`.
    pub fn floats_per_image(&self) -> usize {
        3 * self.size as usize * self.size as usize
    }

    /// Letterboxes `img` into `dst` (at least [`floats_per_image`](Self::floats_per_image)
    /// floats: the R plane, then G, then B) and returns where the picture landed.
    pub fn image_into(
        &mut self,
        img: &ImageRef<'_>,
        dst: &mut [f32],
    ) -> Result<Letterbox, InferError> {
        let s = self.size;
        let lb = letterbox_rgb(
            &mut self.resizer,
            img.data,
            img.width,
            img.height,
            &mut self.rgb,
            s,
            s,
            PAD_VALUE,
        )?;
        rgb_to_chw_f32(&self.rgb, s, s, dst)?;
        Ok(lb)
    }

    /// Letterboxes a batch into one buffer from `pool` (`[n, 3, size, size]` f32),
    /// the geometry of each picture going to `boxes` (cleared first). The pool not
    /// having the room is an out-of-memory error: a smaller batch may fit.
    pub fn batch_into(
        &mut self,
        pool: &FramePool,
        images: &[ImageRef<'_>],
        boxes: &mut Vec<Letterbox>,
    ) -> Result<PooledBuf, InferError> {
        let per = self.floats_per_image();
        let bytes = images.len() * per * std::mem::size_of::<f32>();
        let mut buf = pool
            .try_acquire(bytes)
            .map_err(|e| InferError::OutOfMemory {
                batch: images.len(),
                message: format!("no {bytes}-byte input buffer: {e}"),
            })?;
        boxes.clear();
        let floats = buf.as_f32_mut();
        for (img, dst) in images.iter().zip(floats.chunks_exact_mut(per)) {
            boxes.push(self.image_into(img, dst)?);
        }
        Ok(buf)
    }
}
