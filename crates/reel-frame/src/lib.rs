//! `reel-frame` is the shared vocabulary every layer speaks: a [`Frame`] (a pooled
//! buffer of pixels with its size, format, index and time), the [`PixelFormat`]s and
//! their plane layouts, and the [`Detection`]s that stages attach to frames.
//!
//! It sits just above `reel-pool` (a frame owns a [`PooledBuf`]) and below
//! everything else. It knows nothing of how frames are decoded, scheduled or
//! analysed, and it performs no pixel operations beyond describing layouts.
#![deny(missing_docs)]

mod detection;
mod format;
mod metrics;

use std::time::Instant;

pub use detection::{BBox, Detection, Label};
pub use format::{PixelFormat, Plane, Planes, UnknownPixelFormat};
pub use metrics::{METRICS_CAPACITY, Metrics};
pub use reel_pool::PooledBuf;

/// Why a frame could not be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer is shorter than the format needs at this size.
    #[error("a {width}x{height} {format} frame needs {needed} bytes, the buffer has {got}")]
    BufferTooSmall {
        /// Format of the frame.
        format: PixelFormat,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bytes the layout needs.
        needed: usize,
        /// Bytes the buffer has.
        got: usize,
    },
    /// Zero or overflowing dimensions.
    #[error("{width}x{height} is not a valid frame size for {format}")]
    BadDimensions {
        /// Format of the frame.
        format: PixelFormat,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

/// What travels with a frame besides its pixels: results attached by stages and the
/// facts needed to report them.
#[derive(Debug, Clone, Default)]
pub struct FrameMeta {
    /// Objects found so far (by inference or plugins), in this frame's pixels until
    /// mapped back with [`FrameMeta::source_size`].
    pub detections: Vec<Detection>,
    /// Named measurements (analysis results), held without allocating.
    pub metrics: Metrics,
    /// When the source produced the frame, for end-to-end latency.
    pub captured_at: Option<Instant>,
    /// Size of the frame in the source before any scaling, when it differs from
    /// the frame's own size. Detections are reported in these pixels.
    pub source_size: Option<(u32, u32)>,
}

/// A decoded picture: a pooled buffer of pixels, its layout, its place in the
/// stream, and what stages have found in it.
///
/// A frame moves through the engine (it is never copied); dropping it returns the
/// buffer to its pool.
#[derive(Debug)]
pub struct Frame {
    buf: PooledBuf,
    format: PixelFormat,
    width: u32,
    height: u32,
    /// 0-based index of the frame in its source (counting frames that were skipped).
    pub index: u64,
    /// Presentation time in seconds from the start of the stream.
    pub pts: f64,
    /// Results and bookkeeping attached by stages.
    pub meta: FrameMeta,
}

impl Frame {
    /// Wraps `buf`, which must hold at least `format.frame_size(width, height)`
    /// bytes (its length is trimmed to exactly that).
    pub fn new(
        mut buf: PooledBuf,
        format: PixelFormat,
        width: u32,
        height: u32,
        index: u64,
        pts: f64,
    ) -> Result<Self, FrameError> {
        let needed = format
            .frame_size(width, height)
            .filter(|_| width > 0 && height > 0)
            .ok_or(FrameError::BadDimensions {
                format,
                width,
                height,
            })?;
        if buf.len() < needed {
            return Err(FrameError::BufferTooSmall {
                format,
                width,
                height,
                needed,
                got: buf.len(),
            });
        }
        buf.set_len(needed);
        Ok(Self {
            buf,
            format,
            width,
            height,
            index,
            pts,
            meta: FrameMeta::default(),
        })
    }

    /// Pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes per row of the first plane (rows are tightly packed).
    pub fn stride(&self) -> usize {
        self.format
            .planes(self.width, self.height)
            .get(0)
            .map_or(0, |p| p.stride)
    }

    /// The layout of the frame's planes.
    pub fn planes(&self) -> Planes {
        self.format.planes(self.width, self.height)
    }

    /// All the frame's bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf
    }

    /// All the frame's bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The bytes of plane `i` (0 for packed formats), or `None` if there is no such
    /// plane.
    pub fn plane(&self, i: usize) -> Option<&[u8]> {
        let p = self.planes().get(i)?;
        self.buf.get(p.offset..p.offset + p.len())
    }

    /// The bytes of plane `i`, writable.
    pub fn plane_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        let p = self.planes().get(i)?;
        self.buf.get_mut(p.offset..p.offset + p.len())
    }

    /// The size detections are reported in: the source's size if the frame was
    /// scaled, else the frame's own.
    pub fn source_size(&self) -> (u32, u32) {
        self.meta.source_size.unwrap_or((self.width, self.height))
    }

    /// The pooled buffer behind the frame.
    pub fn buffer(&self) -> &PooledBuf {
        &self.buf
    }

    /// Gives up the frame, keeping its buffer.
    pub fn into_buffer(self) -> PooledBuf {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reel_pool::FramePool;

    #[test]
    fn frame_checks_its_buffer() {
        let pool = FramePool::with_budget(1 << 20);
        let buf = pool.acquire(100).unwrap();
        let err = Frame::new(buf, PixelFormat::Rgb24, 10, 10, 0, 0.0).unwrap_err();
        assert!(matches!(
            err,
            FrameError::BufferTooSmall {
                needed: 300,
                got: 100,
                ..
            }
        ));
        let buf = pool.acquire(300).unwrap();
        assert!(matches!(
            Frame::new(buf, PixelFormat::Rgb24, 0, 10, 0, 0.0),
            Err(FrameError::BadDimensions { .. })
        ));
    }

    #[test]
    fn frame_trims_and_exposes_planes() {
        let pool = FramePool::with_budget(1 << 20);
        let buf = pool.acquire(10_000).unwrap();
        let mut f = Frame::new(buf, PixelFormat::Yuv420p, 4, 4, 7, 0.25).unwrap();
        assert_eq!(f.data().len(), 16 + 4 + 4);
        assert_eq!(f.plane(0).unwrap().len(), 16);
        assert_eq!(f.plane(2).unwrap().len(), 4);
        assert!(f.plane(3).is_none());
        f.plane_mut(1).unwrap().fill(9);
        assert_eq!(f.data()[16..20], [9, 9, 9, 9]);
        assert_eq!(f.stride(), 4);
        assert_eq!(f.source_size(), (4, 4));
        drop(f);
        assert_eq!(pool.stats().bytes_in_use, 0);
    }
}
