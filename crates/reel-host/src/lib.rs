//! `reel-host` composes the layers below it into running jobs: it builds pipelines
//! from options, loads plugins, keeps the results cache, reads the configuration
//! file, and profiles the machine to choose defaults.
//!
//! It is the only crate that knows all the others; it knows nothing of the command
//! line, terminals or progress bars, which belong to `reel-cli`.
#![deny(missing_docs)]

pub mod analyze;
pub mod cache;
pub mod config;
pub mod detect;
mod job;
mod lines;
pub mod plugins;
pub mod system;
