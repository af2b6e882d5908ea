//! `reel demo`: the embedded default. Generates a synthetic video with known
//! scene cuts in-process, analyses it (through the sample plugins when they are
//! built), and prints what was found next to the truth. Needs nothing but reel.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use reel_host::config::Config;
use reel_host::job::{AnalysisRequest, JobIo, JobSummary, PluginRequest, Resources};
use reel_host::plugins::{Catalog, SearchPath};
use reel_sched::{ErrorPolicy, Mode};
use serde::Serialize;

use crate::output::{self, Context, list};

/// The synthetic video the demo analyses unless told otherwise.
pub const DEFAULT_INPUT: &str =
    "synthetic:scenes?width=640&height=360&fps=30&frames=900&scenes=6&seed=7&objects=2";

/// The sample plugins the demo runs when it finds them, with their configuration.
const PLUGINS: [(&str, &str); 3] = [
    ("motion", "{}"),
    ("pixelate", "{\"labels\":[\"motion\"],\"block\":8}"),
    ("overlay", "{}"),
];

/// Arguments of `reel demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  reel demo\n  reel demo --json\n  \
    reel demo --input 'synthetic:scenes?frames=3000&scenes=12&seed=3'")]
pub struct Args {
    /// The synthetic video to generate and analyse.
    #[arg(long, value_name = "URI", default_value = DEFAULT_INPUT)]
    input: String,
    /// Run the analysis alone, without the sample plugins.
    #[arg(long)]
    no_plugins: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What the demo found, against the truth.
#[derive(Debug, Serialize)]
struct DemoReport {
    /// The true cuts of the synthetic video.
    true_cuts: Vec<u64>,
    /// Whether the cuts found are exactly the true ones.
    cuts_match: bool,
    /// Plugins that ran.
    plugins_run: Vec<String>,
    /// Sample plugins that were not found (build them with `cargo xtask build-plugins`).
    plugins_missing: Vec<String>,
    /// The analysis summary.
    summary: JobSummary,
}

/// Runs `reel demo`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if !args.input.starts_with("synthetic:") {
        anyhow::bail!(
            "the demo generates its own video: --input must be a synthetic: URI, not {}",
            args.input
        );
    }
    let truth = reel_decode::synthetic::ground_truth(&args.input)
        .with_context(|| format!("reading {}", args.input))?;
    let settings = ctx.settings(Config::default())?;

    let mut plugins = Vec::new();
    let mut plugins_run = Vec::new();
    let mut plugins_missing = Vec::new();
    if !args.no_plugins {
        let catalog = Catalog::discover(SearchPath::standard(&settings.plugin_dirs));
        for (name, config) in PLUGINS {
            match catalog.find(name) {
                Ok(plugin) => {
                    plugins.push(PluginRequest {
                        plugin,
                        config: config.to_string(),
                        on_error: ErrorPolicy::Fail,
                    });
                    plugins_run.push(name.to_string());
                }
                Err(e) => {
                    tracing::info!("sample plugin {name} not used: {e}");
                    plugins_missing.push(name.to_string());
                }
            }
        }
    }

    let mut spec = reel_host::jobs::analyze(
        args.input.clone(),
        AnalysisRequest::default(),
        None,
        plugins,
    );
    spec = reel_host::jobs::with_settings(spec, &settings, Mode::Quality);
    let resources = Resources::new(settings.pool_budget_bytes, None);
    let bar = output::progress_bar(ctx, Some(truth.frames), "demo");
    let (summary, failure) = output::run_job(spec, &resources, JobIo::default(), &bar, None)
        .with_context(|| format!("analysing {}", args.input))?;
    if let Some(message) = failure {
        anyhow::bail!("analysing {}: {message}", args.input);
    }
    let cuts = summary
        .analysis
        .as_ref()
        .map(|a| a.cuts.clone())
        .unwrap_or_default();

    let report = DemoReport {
        cuts_match: cuts == truth.cuts,
        true_cuts: truth.cuts,
        plugins_run,
        plugins_missing,
        summary,
    };
    if args.json {
        output::print_json(&report)?;
    } else {
        print_human(&report)?;
    }
    Ok(if report.cuts_match {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_human(r: &DemoReport) -> anyhow::Result<()> {
    let s = &r.summary;
    let (size, cuts) = s
        .analysis
        .as_ref()
        .map_or(([0, 0], &[][..]), |a| (a.analysis_size, &a.cuts[..]));
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "reel demo: {} frames of {}x{} synthetic video, {} scenes, analysed at {}x{}",
        s.frames,
        s.video.width,
        s.video.height,
        r.true_cuts.len() + 1,
        size[0],
        size[1]
    )?;
    writeln!(out, "  true cuts:  {}", list(&r.true_cuts))?;
    writeln!(
        out,
        "  cuts found: {}  ({})",
        list(cuts),
        if r.cuts_match { "exact" } else { "MISMATCH" }
    )?;
    writeln!(
        out,
        "  speed: {} frames/s ({:.2} s)",
        output::rate(s.fps),
        s.wall_s
    )?;
    writeln!(
        out,
        "  memory: peak RSS {}, frame pool peak {} of {} budget, {} hits / {} misses",
        s.peak_rss_bytes
            .map_or_else(|| "unknown".to_string(), output::bytes),
        output::bytes(s.pool.peak_bytes),
        output::bytes(s.pool.budget_bytes),
        s.pool.hits,
        s.pool.misses
    )?;
    for p in &s.plugins {
        let counters = p
            .counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(
            out,
            "  plugin {}: {} frames, {:.3} s busy {}",
            p.plugin, p.processed, p.busy_s, counters
        )?;
    }
    if !r.plugins_missing.is_empty() {
        writeln!(
            out,
            "  sample plugins not found ({}): build them with `cargo xtask build-plugins`",
            r.plugins_missing.join(", ")
        )?;
    }
    Ok(())
}
