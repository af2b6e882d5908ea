//! `reel-pool` owns every frame buffer in the engine and the memory monitor that
//! watches the machine.
//!
//! A [`FramePool`] hands out [`PooledBuf`]s under a byte budget: when the budget is
//! spent, [`FramePool::acquire`] waits for a buffer to come back, and that wait is the
//! engine's back-pressure. Buffers go back to the pool when their guard is dropped, on
//! any thread, so nothing can leak. Free buffers are kept per size class and reused, so
//! a steady stream of frames costs no heap allocation at all.
//!
//! The [`monitor::MemoryMonitor`] samples system memory and this process's resident set
//! on a background thread and tells subscribers (the pool among them) when the
//! pressure level changes; the pool then releases idle buffers and shrinks its
//! effective budget until the pressure passes.
//!
//! This crate is the bottom layer: it knows nothing of pixels, video, stages or
//! models. Bytes in, bytes out.
#![deny(missing_docs)]

mod class;
pub mod monitor;
mod pool;
mod rss;

pub use class::size_class;
pub use monitor::{MemoryMonitor, PressureLevel};
pub use pool::{BUFFER_ALIGN, FramePool, PoolConfig, PoolError, PoolStats, PooledBuf, Priority};
pub use rss::{current_rss_bytes, peak_rss_bytes};
