//! `reel analyze`: scene cuts and per-frame measurements of a video, streamed as
//! JSON lines, with a summary; answered from the analysis cache when the file is
//! unchanged. With `--model`, the same pass also detects objects; with `--plugin`,
//! plugins see every frame; with `--out-video`, the processed frames are encoded.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use reel_decode::HwAccel;
use reel_host::config::Config;
use reel_host::job::{JobIo, PluginRequest, Resources, VideoOut};
use reel_host::plugins::{Catalog, SearchPath};
use reel_sched::Mode;

use crate::cmd::analysis_args::AnalysisArgs;
use crate::cmd::decode_args::DecodeArgs;
use crate::cmd::model_args::ModelArgs;
use crate::cmd::plugin_args::PluginArgs;
use crate::cmd::values;
use crate::output::{self, Context};

/// Arguments of `reel analyze`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reel analyze talk.mp4 --out frames.jsonl --summary summary.json\n  \
    reel analyze match.mkv --every 2 --size 320x180 --json\n  \
    reel analyze film.mp4 --scenes-csv scenes.csv --edl scenes.edl\n  \
    reel analyze phone.mp4 --start 1:30 --end 2:00.5 --out frames.jsonl\n  \
    reel analyze street.mp4 --model yolov8n --out frames.jsonl\n  \
    reel analyze synthetic:scenes?frames=300 --detector adaptive"
)]
pub struct Args {
    /// The video: a file, a URL, a .y4m file, an image sequence or a synthetic: URI.
    input: String,
    #[command(flatten)]
    analysis: AnalysisArgs,
    /// Also detect objects with this YOLOv8 model (yolov8n … yolov8x, or a
    /// .safetensors file): each frame's line gets its detections.
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    #[command(flatten)]
    model_args: ModelArgs,
    /// Write one JSON line per analysed frame here.
    #[arg(long, value_name = "FRAMES.jsonl")]
    out: Option<PathBuf>,
    /// Write the summary JSON here.
    #[arg(long, value_name = "SUMMARY.json")]
    summary: Option<PathBuf>,
    /// Write the scene list here as CSV, in the columns of PySceneDetect's
    /// `list-scenes` (`-`: standard output).
    #[arg(long, value_name = "SCENES.csv")]
    scenes_csv: Option<PathBuf>,
    /// Write the scenes here as a CMX 3600 edit decision list, one event per scene
    /// (`-`: standard output).
    #[arg(long, value_name = "SCENES.edl")]
    edl: Option<PathBuf>,
    /// Encode the processed frames (after the plugins) into this video file.
    #[arg(long, value_name = "PATH")]
    out_video: Option<PathBuf>,
    #[command(flatten)]
    plugins: PluginArgs,
    #[command(flatten)]
    metrics: crate::metrics::MetricsArgs,
    #[command(flatten)]
    decode: DecodeArgs,
    /// Byte budget of the frame pool, e.g. 256MiB (default: the level's).
    #[arg(long, value_name = "BYTES", value_parser = values::bytes)]
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

/// Runs `reel analyze`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut flags = Config {
        pool_budget: args.max_memory,
        batch_size: args.model_args.batch,
        ..Config::default()
    };
    args.analysis.flags(&mut flags);
    if args.no_cache {
        flags.cache.enabled = Some(false);
    }
    let settings = ctx.settings(flags)?;

    let analysis = args.analysis.request(&settings);
    let model = args
        .model
        .as_deref()
        .map(|m| args.model_args.request(m, settings.batch_size));
    let plugins = plugin_requests(&args.plugins, &settings.plugin_dirs)?;
    let mut spec = reel_host::jobs::analyze(args.input.clone(), analysis, model, plugins);
    spec = reel_host::jobs::with_settings(spec, &settings, Mode::Quality);
    spec.decode.hwaccel = args.hwaccel;
    args.decode.apply(&mut spec.decode);
    spec.decode.sampling = args.analysis.sampling()?;
    spec.video_out = args.out_video.clone().map(VideoOut::new);

    let cache = output::open_cache(&settings);
    let streams = [
        ("--out", args.out.as_deref()),
        ("--scenes-csv", args.scenes_csv.as_deref()),
        ("--edl", args.edl.as_deref()),
    ];
    output::check_stdout(&streams, args.summary.as_deref(), args.json)?;
    output::refuse_clobbering(
        &[
            ("--out", args.out.as_deref()),
            ("--summary", args.summary.as_deref()),
            ("--out-video", args.out_video.as_deref()),
            ("--scenes-csv", args.scenes_csv.as_deref()),
            ("--edl", args.edl.as_deref()),
        ],
        &[std::path::Path::new(&args.input)],
        cache.as_ref(),
    )?;
    let server = args.metrics.start()?;
    let resources = Resources::new(settings.pool_budget_bytes, cache);
    let lines = output::create_output(args.out.as_deref())?;
    let cancel = output::cancel_on_ctrlc("analysis");
    let bar = output::progress_bar(ctx, None, "analyze");
    let io = JobIo {
        lines,
        cancel: Some(cancel),
    };
    let doing = format!("analysing {}", args.input);
    let (summary, failure) = output::run_job(spec, &resources, io, &bar, server.as_ref())
        .with_context(|| doing.clone())?;
    // The server stops with the job.
    drop(server);
    if failure.is_none() && !summary.interrupted {
        output::finish_output(args.out.as_deref(), summary.frames)?;
    }
    crate::scenes::write_exports(args.scenes_csv.as_deref(), args.edl.as_deref(), &summary)?;
    let stdout_taken = streams
        .iter()
        .any(|(_, p)| *p == Some(std::path::Path::new("-")));
    output::report_job(
        ctx,
        args.json,
        stdout_taken,
        args.summary.as_deref(),
        &summary,
    )?;
    output::job_exit(failure, summary.interrupted, &doing)
}

/// The `--plugin` stages, loaded, in order.
pub fn plugin_requests(
    args: &PluginArgs,
    config_dirs: &[PathBuf],
) -> anyhow::Result<Vec<PluginRequest>> {
    if args.plugins.is_empty() {
        return Ok(Vec::new());
    }
    let mut dirs = args.dirs.dirs.clone();
    dirs.extend(config_dirs.iter().cloned());
    let catalog = Catalog::discover(SearchPath::standard(&dirs));
    args.plugins
        .iter()
        .map(|spec| {
            let plugin = catalog
                .resolve(&spec.target)
                .with_context(|| format!("starting plugin {}", spec.display_name()))?;
            Ok(PluginRequest {
                plugin,
                config: spec.config.clone(),
                on_error: args.errors,
            })
        })
        .collect()
}
