//! The scheduler's tests: real pipelines (threads, bounded queues) over frames from a
//! real pool. No test asserts a duration: slow stages sleep or wait on gates, and the
//! tests check counts, order and invariants.

#![allow(clippy::unwrap_used)] // tests unwrap what they set up themselves

mod cancel;
mod common;
mod errors;
mod modes;
mod order;
mod quality;
mod skip;
mod workers;
