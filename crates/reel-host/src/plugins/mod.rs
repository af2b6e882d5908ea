//! Plugins: finding shared libraries in the search path, loading them through
//! `abi_stable`'s checked loading, and running them as scheduler stages.
//!
//! This is the only place in reel that loads shared libraries. A library is
//! loaded once and never unloaded (the processors it created may still be alive,
//! and `abi_stable` keeps it mapped). A plugin is refused, with a message naming
//! it and both interface versions, when it was built against an incompatible
//! version of `reel-plugin-api`; panics inside a plugin are caught on its side of
//! the boundary and come back as errors, which the [`PluginStage`] counts and
//! turns into the stage's error for the pipeline's error policy. A crash at the machine level (a
//! segfault) in a plugin cannot be contained in-process and ends the program.

mod catalog;
mod check;
mod error;
mod load;
mod search;
mod spec;
mod stage;

pub use catalog::{Catalog, Entry};
pub use error::Error;
pub use load::{LoadedPlugin, PluginDescription, load};
pub use reel_plugin_api::INTERFACE_VERSION;
pub use search::{Origin, SearchDir, SearchPath, plugin_name_from_file};
pub use spec::{DEFAULT_ERROR_POLICY, PluginSpec, PluginTarget};
pub use stage::{PluginReport, PluginStage, PluginStats, StatsHandle};
