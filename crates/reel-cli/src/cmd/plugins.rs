//! `reel plugins list|info`: the plugins in the search path, and what each does.

use std::process::ExitCode;

use anyhow::Context as _;
use reel_host::plugins::{Catalog, INTERFACE_VERSION, PluginDescription, PluginSpec, SearchPath};
use serde::Serialize;

use super::plugin_args::{PluginDirs, parse_plugin_spec};
use crate::output::{self, Context};

/// Arguments of `reel plugins`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the plugins in the search path, and those refused.
    #[command(
        after_help = "Examples:\n  reel plugins list\n  reel plugins list --json --plugin-dir ./my-plugins"
    )]
    List {
        /// Print the machine-readable list on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dirs: PluginDirs,
    },
    /// Describe one plugin; with a configuration, also check that the plugin
    /// accepts it.
    #[command(
        after_help = "Examples:\n  reel plugins info motion\n  reel plugins info 'pixelate:block=8,labels=[\"face\"]' --json"
    )]
    Info {
        /// A plugin name or library path, optionally with `:CONFIG`.
        #[arg(value_name = "NAME[:CONFIG]", value_parser = parse_plugin_spec)]
        spec: PluginSpec,
        /// Print the machine-readable description on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dirs: PluginDirs,
    },
}

/// One library in the list: its description when it loaded (which names it),
/// else the name its file gives.
#[derive(Debug, Serialize)]
struct Listed {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    path: String,
    origin: &'static str,
    /// `ok`, `refused` or `shadowed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shadowed_by: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    plugin: Option<PluginDescription>,
}

#[derive(Debug, Serialize)]
struct ListReport {
    interface_version: &'static str,
    search_path: Vec<SearchDirReport>,
    plugins: Vec<Listed>,
}

#[derive(Debug, Serialize)]
struct SearchDirReport {
    path: String,
    origin: &'static str,
    exists: bool,
}

#[derive(Debug, Serialize)]
struct InfoReport<'a> {
    #[serde(flatten)]
    plugin: &'a PluginDescription,
    path: String,
    /// Whether the configuration given was accepted (absent when none was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    config_ok: Option<bool>,
}

/// Runs `reel plugins`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::List { json, dirs } => list(ctx, json, &dirs),
        Command::Info { spec, json, dirs } => info(ctx, &spec, json, &dirs),
    }
}

/// The search path: `--plugin-dir` first, then `reel.toml`'s `plugin_dirs`, then
/// the standard folders (as every command that runs plugins searches).
fn search_path(ctx: &Context, dirs: &PluginDirs) -> anyhow::Result<SearchPath> {
    let settings = ctx.settings(reel_host::config::Config::default())?;
    let mut all = dirs.dirs.clone();
    all.extend(settings.plugin_dirs);
    Ok(SearchPath::standard(&all))
}

fn list(ctx: &Context, json: bool, dirs: &PluginDirs) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::discover(search_path(ctx, dirs)?);
    let report = ListReport {
        interface_version: INTERFACE_VERSION,
        search_path: catalog
            .search_path()
            .dirs()
            .iter()
            .map(|d| SearchDirReport {
                path: d.path.display().to_string(),
                origin: d.origin.as_str(),
                exists: d.path.is_dir(),
            })
            .collect(),
        plugins: catalog
            .entries()
            .iter()
            .map(|e| {
                let (status, error, plugin) = match (&e.plugin, &e.shadowed_by) {
                    (Err(err), _) => ("refused", Some(err.to_string()), None),
                    (Ok(p), Some(_)) => ("shadowed", None, Some(p.description().clone())),
                    (Ok(p), None) => ("ok", None, Some(p.description().clone())),
                };
                Listed {
                    name: plugin.is_none().then(|| e.name()),
                    path: e.path.display().to_string(),
                    origin: e.origin.as_str(),
                    status,
                    error,
                    shadowed_by: e.shadowed_by.as_ref().map(|p| p.display().to_string()),
                    plugin,
                }
            })
            .collect(),
    };
    if json {
        output::print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    if report.plugins.is_empty() {
        println!("no plugins found (interface {INTERFACE_VERSION})");
    } else {
        println!(
            "{:<16} {:<9} {:<10} DESCRIPTION",
            "NAME", "VERSION", "STATUS"
        );
        for p in &report.plugins {
            let (version, text) = match (&p.plugin, &p.error) {
                (Some(d), _) => (d.version.as_str(), d.description.clone()),
                (None, Some(e)) => ("-", e.clone()),
                (None, None) => ("-", String::new()),
            };
            let name = p
                .plugin
                .as_ref()
                .map(|d| d.name.as_str())
                .or(p.name.as_deref())
                .unwrap_or("?");
            println!("{name:<16} {version:<9} {:<10} {text}", p.status);
        }
    }
    println!();
    println!("search path (interface {INTERFACE_VERSION}):");
    for d in &report.search_path {
        let missing = if d.exists { "" } else { " (missing)" };
        println!("  {}  [{}]{missing}", d.path, d.origin);
    }
    Ok(ExitCode::SUCCESS)
}

fn info(
    ctx: &Context,
    spec: &PluginSpec,
    json: bool,
    dirs: &PluginDirs,
) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::discover(search_path(ctx, dirs)?);
    let plugin = catalog.resolve(&spec.target)?;
    let config_given = spec.config != "{}";
    let config_ok = if config_given {
        plugin
            .create_processor(&spec.config)
            .with_context(|| format!("checking the configuration {}", spec.config))?;
        Some(true)
    } else {
        None
    };
    let d = plugin.description();
    if json {
        output::print_json(&InfoReport {
            plugin: d,
            path: plugin.path().display().to_string(),
            config_ok,
        })?;
    } else if !ctx.quiet {
        let names = |v: &[&str]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        println!("name:        {}", d.name);
        println!("version:     {}", d.version);
        println!("description: {}", d.description);
        println!("interface:   {}", d.interface_version);
        println!("consumes:    {}", names(&d.consumes));
        println!("produces:    {}", names(&d.produces));
        let formats: Vec<&str> = d.formats.iter().map(|f| f.name()).collect();
        println!("formats:     {}", names(&formats));
        println!(
            "frames:      {}",
            if d.stateless {
                "each on its own (several processors may run at once)"
            } else {
                "in order, through one processor"
            }
        );
        println!("path:        {}", plugin.path().display());
        if config_given {
            println!("config:      accepted");
        }
    }
    Ok(ExitCode::SUCCESS)
}
