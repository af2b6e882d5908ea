//! `reel analyze`: scene cuts and per-frame measurements of a video, streamed as
//! JSON lines, with a summary; answered from the analysis cache when the file is
//! unchanged.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use reel_decode::HwAccel;
use reel_host::analyze::{self, AnalyzeError, AnalyzeOptions, AnalyzeSummary, Detector};
use reel_host::cache::Cache;
use reel_host::config::{Config, FrameSize, parse_bytes};
use reel_host::plugins::{Catalog, PluginStage, SearchPath};

use crate::cmd::plugin_args::PluginArgs;
use crate::output::{self, Context};

/// Arguments of `reel analyze`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reel analyze talk.mp4 --out frames.jsonl --summary summary.json\n  \
    reel analyze match.mkv --every 2 --size 320x180 --json\n  \
    reel analyze synthetic:scenes?frames=300 --detector adaptive"
)]
pub struct Args {
    /// The video: a file, a URL, a .y4m file, an image sequence or a synthetic: URI.
    input: String,
    /// Analyse one frame in N.
    #[arg(long, value_name = "N", conflicts_with = "sample_fps")]
    every: Option<u32>,
    /// Analyse at most F frames per second of video.
    #[arg(long, value_name = "F")]
    sample_fps: Option<f64>,
    /// Analysis size (default: the scene detector's usual reduced size).
    #[arg(long, value_name = "WxH")]
    size: Option<FrameSize>,
    /// Content detector threshold (default 27).
    #[arg(long, value_name = "T")]
    threshold: Option<f64>,
    /// Shortest scene, in frames (default 15).
    #[arg(long, value_name = "N")]
    min_scene_len: Option<u32>,
    /// Scene detector: content (HSV delta) or adaptive (ratio to the rolling mean).
    #[arg(long, value_name = "KIND", default_value = "content", value_parser = parse_detector)]
    detector: Detector,
    /// Write one JSON line per analysed frame here.
    #[arg(long, value_name = "FRAMES.jsonl")]
    out: Option<PathBuf>,
    /// Write the summary JSON here.
    #[arg(long, value_name = "SUMMARY.json")]
    summary: Option<PathBuf>,
    #[command(flatten)]
    plugins: PluginArgs,
    /// Byte budget of the frame pool, e.g. 256MiB (default: the level's).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_memory: Option<u64>,
    /// Hardware decoding: auto, none, cuda, vaapi or videotoolbox.
    #[arg(long, value_name = "KIND", default_value = "auto")]
    hwaccel: HwAccel,
    /// Neither read nor store results in the analysis cache.
    #[arg(long)]
    no_cache: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_detector(s: &str) -> Result<Detector, String> {
    match s {
        "content" => Ok(Detector::Content),
        "adaptive" => Ok(Detector::Adaptive),
        _ => Err(format!("unknown detector `{s}` (content or adaptive)")),
    }
}

/// Runs `reel analyze`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut flags = Config {
        pool_budget: args.max_memory,
        ..Config::default()
    };
    flags.analyze.size = args.size;
    flags.analyze.threshold = args.threshold;
    flags.analyze.min_scene_len = args.min_scene_len;
    if args.no_cache {
        flags.cache.enabled = Some(false);
    }
    let settings = ctx.settings(flags)?;

    let mut opts = AnalyzeOptions::new(args.input.clone());
    opts.size = settings.analyze.size.map(|s| (s.width, s.height));
    opts.every = args.every.unwrap_or(1);
    opts.sample_fps = args.sample_fps;
    opts.detector = args.detector;
    opts.threshold = settings.analyze.threshold;
    opts.min_scene_len = settings.analyze.min_scene_len;
    opts.hwaccel = args.hwaccel;
    opts.pool_budget_bytes = settings.pool_budget_bytes;

    let plugins = plugin_stages(&args.plugins, &settings.plugin_dirs)?;
    let cache = match (&settings.cache.dir, settings.cache.enabled) {
        (Some(dir), true) => match Cache::open(dir) {
            Ok(c) => Some(c.with_policy(settings.cache.policy())),
            Err(e) => {
                tracing::warn!("analysis cache unavailable, analysing without it: {e}");
                None
            }
        },
        _ => None,
    };
    let out = output::create_output(args.out.as_deref())?;
    let cancel = output::cancel_on_ctrlc("analysis");
    let bar = output::progress_bar(ctx, None, "analyze");
    let mut progress = |snapshot: &reel_sched::Snapshot, expected: Option<u64>| {
        output::show_frames(&bar, snapshot, expected);
    };
    let io = analyze::JobIo {
        out,
        cache: cache.as_ref(),
        plugins,
        progress: Some(&mut progress),
        cancel: cancel.clone(),
    };
    let result = analyze::run(&opts, io);
    bar.finish_and_clear();
    let (summary, failure) = match result {
        Ok(summary) => (summary, None),
        Err(AnalyzeError::Pipeline {
            partial, message, ..
        }) => (*partial, Some(message)),
        Err(e) => return Err(e).with_context(|| format!("analysing {}", args.input)),
    };
    report(ctx, &args, &summary)?;
    output::job_exit(
        failure,
        summary.interrupted,
        &format!("analysing {}", args.input),
    )
}

/// Loads the `--plugin` stages.
pub fn plugin_stages(
    args: &PluginArgs,
    config_dirs: &[PathBuf],
) -> anyhow::Result<Vec<PluginStage>> {
    if args.plugins.is_empty() {
        return Ok(Vec::new());
    }
    let mut dirs = args.dirs.dirs.clone();
    dirs.extend(config_dirs.iter().cloned());
    let catalog = Catalog::discover(SearchPath::standard(&dirs));
    args.plugins
        .iter()
        .map(|spec| {
            let plugin = catalog.resolve(&spec.target)?;
            PluginStage::new(&plugin, &spec.config, args.errors)
                .with_context(|| format!("starting plugin {}", spec.display_name()))
        })
        .collect()
}

/// Writes the summary where asked and prints it.
fn report(ctx: &Context, args: &Args, summary: &AnalyzeSummary) -> anyhow::Result<()> {
    output::write_summary(args.summary.as_deref(), summary)?;
    if args.json {
        return output::print_json(summary);
    }
    if ctx.quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let v = &summary.video;
    writeln!(
        out,
        "{}: {}x{} {} at {:.3} fps (decoder: {}), analysed {} of {} frames at {}x{}",
        summary.input,
        v.width,
        v.height,
        v.codec,
        v.fps,
        summary.decoder,
        summary.frames_analyzed,
        summary.frames_decoded,
        summary.analysis_size[0],
        summary.analysis_size[1]
    )?;
    writeln!(
        out,
        "scenes: {} (cuts at frames {})",
        summary.scenes.len(),
        list(&summary.cuts)
    )?;
    writeln!(
        out,
        "time: {:.2} s, {:.1} frames/s; cache: {}",
        summary.wall_s,
        summary.fps,
        match summary.cache {
            analyze::CacheStatus::Hit => "hit",
            analyze::CacheStatus::Miss => "miss",
            analyze::CacheStatus::Off => "off",
        }
    )?;
    writeln!(
        out,
        "memory: peak RSS {}, pool peak {} of {} ({} hits, {} misses)",
        summary
            .peak_rss_bytes
            .map_or_else(|| "unknown".to_string(), output::bytes),
        output::bytes(summary.pool.peak_bytes),
        output::bytes(summary.pool.budget_bytes),
        summary.pool.hits,
        summary.pool.misses
    )?;
    for p in &summary.plugins {
        writeln!(
            out,
            "plugin {}: {} frames, {} errors, {} panics{}",
            p.plugin,
            p.processed,
            p.errors,
            p.panics,
            if p.disabled { ", disabled" } else { "" }
        )?;
    }
    Ok(())
}

/// `1, 2, 3`, or `none`.
pub fn list(values: &[u64]) -> String {
    if values.is_empty() {
        "none".to_string()
    } else {
        values
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
