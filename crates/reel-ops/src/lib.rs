//! `reel-ops` owns the pixel operations reel performs on frames: colour conversion
//! between the [`PixelFormat`](reel_frame::PixelFormat)s, resizing (and OpenCV's
//! `INTER_LINEAR` bit for bit, [`cv_linear`]), the YOLO-style letterbox, the HWC-to-CHW tensor layout, and the frame analysers (scene cuts,
//! motion, brightness, sharpness, black frames).
//!
//! Everything here works on plain byte slices or [`Frame`](reel_frame::Frame)s and
//! reuses its own scratch, so a steady stream of frames costs no heap allocation.
//! The crate knows nothing of decoders, stages, queues, models or output formats:
//! decoders and inference call the frame operations, and the host wraps the
//! analysers into stages.
#![deny(missing_docs)]

pub mod analyze;
pub mod convert;
pub mod cv_linear;
pub mod letterbox;
pub mod measure;
pub mod resize;
pub mod scene;
pub mod tensor;

mod simd;

use reel_frame::PixelFormat;

/// Why a frame operation could not run.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum OpsError {
    /// The operation does not handle this pair of formats.
    #[error("cannot convert {from} to {to}")]
    Unsupported {
        /// Source format.
        from: PixelFormat,
        /// Target format.
        to: PixelFormat,
    },
    /// A buffer is shorter than the size and format need.
    #[error("buffer too small: {needed} bytes needed, {got} given")]
    BufferSize {
        /// Bytes (or elements, for tensors) the operation needs.
        needed: usize,
        /// Bytes (or elements) the buffer has.
        got: usize,
    },
    /// Zero or overflowing dimensions.
    #[error("{width}x{height} is not a valid size for {format}")]
    BadSize {
        /// Format involved.
        format: PixelFormat,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Two frames that must have the same size do not.
    #[error("size mismatch: source is {}x{}, destination {}x{}", src.0, src.1, dst.0, dst.1)]
    SizeMismatch {
        /// Source width and height.
        src: (u32, u32),
        /// Destination width and height.
        dst: (u32, u32),
    },
    /// The resize cannot be done as asked.
    #[error("resize: {0}")]
    Resize(String),
}

/// Bytes of a `width` x `height` frame of `format`, or [`OpsError::BadSize`].
pub(crate) fn frame_len(format: PixelFormat, width: u32, height: u32) -> Result<usize, OpsError> {
    format
        .frame_size(width, height)
        .filter(|_| width > 0 && height > 0)
        .ok_or(OpsError::BadSize {
            format,
            width,
            height,
        })
}

/// Checks that a buffer of `got` bytes holds at least `needed`.
pub(crate) fn check_len(needed: usize, got: usize) -> Result<(), OpsError> {
    if got < needed {
        Err(OpsError::BufferSize { needed, got })
    } else {
        Ok(())
    }
}
