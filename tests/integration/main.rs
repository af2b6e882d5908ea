//! The workspace integration tests: one binary, one module per concern.

mod frames;
mod plugins;
