//! Integration tests of `reel-ops` against programs it did not write: ffmpeg's
//! swscale for colour conversion, `fast_image_resize` for resizing, the reference
//! YOLO preprocessing fixture, and (in `scene`) PySceneDetect; plus the allocation
//! counts of the per-frame operations.

// Helpers here are test code too, like the `#[test]` functions clippy.toml exempts.
#![allow(clippy::unwrap_used)]

mod alloc;
mod convert;
mod letterbox;
#[path = "../../../../tests/support/oracle.rs"]
mod oracle;
mod resize;
mod scene;
mod util;
