//! What can go wrong finding, loading, configuring and running a plugin.

use std::path::PathBuf;

/// A plugin problem. Every message names the plugin (and its file when known).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No plugin of that name in the search path.
    #[error("no plugin named `{name}` in the search path ({})", list(searched))]
    NotFound {
        /// The name asked for.
        name: String,
        /// The folders searched.
        searched: Vec<PathBuf>,
    },
    /// The shared library could not be opened or has no reel root module.
    #[error("plugin `{plugin}` ({}): cannot load the library: {message}", path.display())]
    Open {
        /// The plugin (from its file name).
        plugin: String,
        /// Its file.
        path: PathBuf,
        /// What the loader said.
        message: String,
    },
    /// Built against an interface version this reel does not provide.
    #[error(
        "plugin `{plugin}` ({}) was built against reel plugin interface {plugin_version}, \
         but this reel provides interface {host_version}; rebuild the plugin against \
         reel-plugin-api {host_version}",
        path.display()
    )]
    Incompatible {
        /// The plugin (from its file name).
        plugin: String,
        /// Its file.
        path: PathBuf,
        /// The interface version the plugin was built against.
        plugin_version: String,
        /// The interface version of this reel.
        host_version: String,
    },
    /// Same version, but the types do not match (the plugin was built against a
    /// modified interface crate).
    #[error(
        "plugin `{plugin}` ({}) declares reel plugin interface {plugin_version} but its \
         types do not match interface {host_version}: {detail}",
        path.display()
    )]
    Layout {
        /// The plugin (from its file name).
        plugin: String,
        /// Its file.
        path: PathBuf,
        /// The interface version the plugin declares.
        plugin_version: String,
        /// The interface version of this reel.
        host_version: String,
        /// The first lines of the layout checker's report.
        detail: String,
    },
    /// The plugin's own code failed while describing itself or creating a
    /// processor (a panic included).
    #[error("plugin `{plugin}`: {what}: {message}")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// What it was doing.
        what: &'static str,
        /// Its error.
        message: String,
    },
    /// A `--plugin` value or an error policy that does not parse.
    #[error("{0}")]
    Spec(String),
    /// A frame the plugin does not accept.
    #[error("plugin `{plugin}` does not accept {format} frames (it accepts {accepted})")]
    UnsupportedFormat {
        /// The plugin.
        plugin: String,
        /// The frame's format.
        format: String,
        /// The formats it accepts.
        accepted: String,
    },
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no folder".to_string();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
