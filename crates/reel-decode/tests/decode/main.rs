//! Tests of the decoders through their public API, against real files made by the
//! tests and against oracles the project did not write.
// Tests may unwrap, helpers included.
#![allow(clippy::unwrap_used)]

mod alloc;
mod bad_input;
mod encode;
mod ffmpeg;
mod fixtures;
mod images;
#[cfg(feature = "libav")]
mod libav;
mod synthetic;
mod y4m;
