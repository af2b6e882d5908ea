//! `reel cache stats|prune|clear`: look at and trim the analysis cache.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use reel_host::cache::{self, Cache, CacheError, PruneReport};
use reel_host::config::{CacheConfig, CacheSettings, Config, parse_age, parse_bytes};
use serde::Serialize;

use crate::output::{self, Context};

/// Arguments of `reel cache`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  reel cache stats --json\n  \
    reel cache prune --max-size 200MB --max-age 7d\n  \
    REEL_CACHE_DIR=/tmp/reel-cache reel cache clear")]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Entries, sizes and limits of the cache.
    Stats {
        /// Print the machine-readable summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Remove entries unused for longer than the age limit, then the least recently
    /// used until the rest fit the size budget (limits from reel.toml unless given).
    Prune {
        /// Size budget, e.g. 500MB or 2GiB [default: 500MB].
        #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
        max_size: Option<u64>,
        /// Age limit since last use, e.g. 30d or 12h [default: 30d].
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        max_age: Option<Duration>,
        /// Print the machine-readable summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Remove every entry (and a damaged cache database).
    Clear {
        /// Print the machine-readable summary on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// `reel cache stats --json`.
#[derive(Debug, Serialize)]
struct StatsJson {
    dir: PathBuf,
    db_path: PathBuf,
    enabled: bool,
    entries: u64,
    stored_bytes: u64,
    frames_raw_bytes: u64,
    frame_lines: u64,
    hits: u64,
    file_bytes: u64,
    oldest_access_unix_s: Option<u64>,
    newest_access_unix_s: Option<u64>,
    max_bytes: u64,
    max_age_s: u64,
}

/// `reel cache clear --json`.
#[derive(Debug, Serialize)]
struct ClearJson {
    dir: PathBuf,
    removed_entries: u64,
    removed_bytes: u64,
    /// The database was damaged (or of a newer format) and its files were deleted.
    removed_database: bool,
}

/// `reel cache prune --json`.
#[derive(Debug, Serialize)]
struct PruneJson {
    dir: PathBuf,
    removed_entries: u64,
    #[serde(flatten)]
    report: PruneReport,
    max_bytes: u64,
    max_age_s: u64,
}

/// Runs `reel cache`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let flags = match &args.action {
        Action::Prune {
            max_size, max_age, ..
        } => Config {
            cache: CacheConfig {
                max_size: *max_size,
                max_age: *max_age,
                ..CacheConfig::default()
            },
            ..Config::default()
        },
        _ => Config::default(),
    };
    let settings = ctx.settings(flags)?.cache;
    let dir = settings.dir.clone().context(
        "no cache directory: no home directory was found; give --cache-dir or REEL_CACHE_DIR",
    )?;
    match args.action {
        Action::Stats { json } => stats(ctx, &settings, &dir, json),
        Action::Prune { json, .. } => prune(ctx, &settings, &dir, json),
        Action::Clear { json } => clear(ctx, &dir, json),
    }
}

fn open(dir: &Path) -> anyhow::Result<Cache> {
    Cache::open(dir).map_err(|e| match e {
        CacheError::Corrupt { path, source } => anyhow::Error::new(source).context(format!(
            "cache database {} is damaged; `reel cache clear` deletes it",
            path.display()
        )),
        e => e.into(),
    })
}

fn stats(
    ctx: &Context,
    settings: &CacheSettings,
    dir: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let s = open(dir)?.stats()?;
    if json {
        output::print_json(&StatsJson {
            dir: s.dir,
            db_path: s.db_path,
            enabled: settings.enabled,
            entries: s.entries,
            stored_bytes: s.stored_bytes,
            frames_raw_bytes: s.frames_raw_bytes,
            frame_lines: s.frame_lines,
            hits: s.hits,
            file_bytes: s.file_bytes,
            oldest_access_unix_s: s.oldest_access.map(unix_s),
            newest_access_unix_s: s.newest_access.map(unix_s),
            max_bytes: settings.max_bytes,
            max_age_s: settings.max_age_s,
        })?;
    } else if !ctx.quiet {
        println!("cache:    {}", s.db_path.display());
        if !settings.enabled {
            println!("          (disabled in reel.toml)");
        }
        println!(
            "entries:  {} ({} served)",
            output::count(s.entries, "entry", "entries"),
            output::count(s.hits, "hit", "hits")
        );
        println!(
            "size:     {} of a {} budget ({} of frame lines before compression)",
            output::bytes(s.stored_bytes),
            output::bytes(settings.max_bytes),
            output::bytes(s.frames_raw_bytes)
        );
        println!("on disk:  {}", output::bytes(s.file_bytes));
        if let (Some(oldest), Some(newest)) = (s.oldest_access, s.newest_access) {
            println!(
                "used:     least recently {} ago, most recently {} ago",
                age(oldest),
                age(newest)
            );
        }
        println!(
            "max age:  {} unused",
            output::duration(Duration::from_secs(settings.max_age_s))
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn prune(
    ctx: &Context,
    settings: &CacheSettings,
    dir: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = open(dir)?.prune(settings.policy())?;
    if json {
        output::print_json(&PruneJson {
            dir: dir.to_path_buf(),
            removed_entries: report.removed_entries(),
            report,
            max_bytes: settings.max_bytes,
            max_age_s: settings.max_age_s,
        })?;
    } else if !ctx.quiet {
        println!(
            "removed {} ({} unused too long, {} over the size budget), {}; {} left, {}",
            output::count(report.removed_entries(), "entry", "entries"),
            report.removed_by_age,
            report.removed_by_size,
            output::bytes(report.removed_bytes),
            output::count(report.remaining_entries, "entry", "entries"),
            output::bytes(report.remaining_bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn clear(ctx: &Context, dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let outcome = Cache::open(dir).and_then(|c| c.clear());
    let summary = match outcome {
        Ok(cleared) => ClearJson {
            dir: dir.to_path_buf(),
            removed_entries: cleared.removed_entries,
            removed_bytes: cleared.removed_bytes,
            removed_database: false,
        },
        // Whatever is wrong with the database (damaged pages, a dropped table, a
        // newer format), clearing it always works: its files are deleted.
        Err(e) => {
            tracing::warn!("{e}; deleting the database");
            let freed = cache::remove_database(dir)
                .with_context(|| format!("deleting the cache database in {}", dir.display()))?;
            // A fresh, empty database in its place.
            if let Err(e) = Cache::open(dir) {
                tracing::warn!("could not recreate the cache database: {e}");
            }
            ClearJson {
                dir: dir.to_path_buf(),
                removed_entries: 0,
                removed_bytes: freed,
                removed_database: true,
            }
        }
    };
    if json {
        output::print_json(&summary)?;
    } else if !ctx.quiet {
        if summary.removed_database {
            println!(
                "deleted the damaged cache database in {} ({})",
                dir.display(),
                output::bytes(summary.removed_bytes)
            );
        } else {
            println!(
                "removed {} ({})",
                output::count(summary.removed_entries, "entry", "entries"),
                output::bytes(summary.removed_bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn unix_s(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How long ago `t` was, to a sensible precision.
fn age(t: SystemTime) -> String {
    let d = SystemTime::now().duration_since(t).unwrap_or_default();
    let s = d.as_secs();
    let rounded = match s {
        0..3600 => s,
        3600..86_400 => s / 60 * 60,
        _ => s / 3600 * 3600,
    };
    output::duration(Duration::from_secs(rounded))
}
