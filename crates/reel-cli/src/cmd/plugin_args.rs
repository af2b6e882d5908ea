//! The plugin options commands share: `--plugin NAME[:CONFIG]` (repeatable),
//! `--plugin-dir DIR` and `--plugin-errors POLICY`.

use std::path::PathBuf;

use reel_host::plugins::PluginSpec;
use reel_sched::ErrorPolicy;

/// Parses a `--plugin NAME[:CONFIG]` value (clap value parser).
pub fn parse_plugin_spec(s: &str) -> Result<PluginSpec, String> {
    s.parse()
        .map_err(|e: reel_host::plugins::Error| e.to_string())
}

/// Parses a `--plugin-errors` value (clap value parser).
pub fn parse_error_policy(s: &str) -> Result<ErrorPolicy, String> {
    s.parse()
        .map_err(|e: reel_sched::UnknownErrorPolicy| e.to_string())
}

/// Where plugins are searched for.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginDirs {
    /// Also search this folder for plugins, before the standard ones (repeatable).
    #[arg(long = "plugin-dir", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

/// The plugin options of commands that process video.
/// The commands that process video (`analyze`, `live`) flatten these in.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginArgs {
    /// Run a plugin on every frame, in the order given: NAME or a library path,
    /// then optionally `:` and a configuration (JSON, TOML `key=value,…`, or
    /// `@FILE`).
    #[arg(long = "plugin", value_name = "NAME[:CONFIG]", value_parser = parse_plugin_spec)]
    pub plugins: Vec<PluginSpec>,

    /// What a plugin's failure on a frame does: skip (the frame goes on),
    /// disable=N (skip, and disable the plugin after N failures), fail (the run
    /// fails).
    #[arg(
        long = "plugin-errors",
        value_name = "POLICY",
        default_value = "disable=10",
        value_parser = parse_error_policy
    )]
    pub errors: ErrorPolicy,

    #[command(flatten)]
    pub dirs: PluginDirs,
}
