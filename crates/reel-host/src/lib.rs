//! `reel-host` is the job engine: every command is a job description
//! ([`job::JobSpec`]) run over resources every job of the process shares
//! ([`job::Resources`]: one frame pool, the models, the cache). It also loads
//! plugins, keeps the results cache, reads the configuration file, and profiles
//! the machine to choose defaults.
//!
//! It is the only crate that knows all the others; it knows nothing of the command
//! line, terminals or progress bars, which belong to `reel-cli`.
#![deny(missing_docs)]

pub mod batch;
pub mod cache;
pub mod config;
pub mod job;
pub mod jobs;
pub mod live;
pub mod plugins;
mod sinks;
mod stages;
pub mod system;
