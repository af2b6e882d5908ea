//! `reel detect`: YOLOv8 object detection on every (or every Nth) frame of a video,
//! streamed as JSON lines, with a summary of what was found. Plugins run after the
//! model and see its detections; `--out-video` encodes what they made of the frames.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use reel_decode::{HwAccel, Sampling};
use reel_host::config::Config;
use reel_host::job::{JobIo, Resources, VideoOut};
use reel_sched::Mode;

use crate::cmd::analyze::plugin_requests;
use crate::cmd::decode_args::DecodeArgs;
use crate::cmd::model_args::ModelArgs;
use crate::cmd::plugin_args::PluginArgs;
use crate::cmd::values;
use crate::output::{self, Context};

/// Arguments of `reel detect`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reel detect street.mp4 --model yolov8n --out dets.jsonl\n  \
    reel detect match.mkv --model ./yolov8s.safetensors --classes person,car --json\n  \
    reel detect cam.mp4 --model yolov8m --device cuda:0 --batch 16 --every 5\n  \
    reel detect long.mp4 --model yolov8n --start 00:10:00 --end 00:12:30.5\n  \
    reel detect street.mp4 --model yolov8n --plugin 'pixelate:labels=[\"person\"]' --out-video hidden.mp4\n\n\
    Named models come from the Hugging Face hub (lmz/candle-yolo-v8) through its cache\n\
    ($HF_HOME/hub, else ~/.cache/huggingface/hub); without a network, pass a local\n\
    .safetensors file (ultralytics' own tensor names or the candle hub's)."
)]
pub struct Args {
    /// The video: a file, a URL, a .y4m file, an image sequence or a synthetic: URI.
    input: String,
    /// yolov8n, yolov8s, yolov8m, yolov8l, yolov8x, or the path of a .safetensors file.
    #[arg(long, value_name = "MODEL")]
    model: String,
    #[command(flatten)]
    model_args: ModelArgs,
    /// Detect in one frame in N.
    #[arg(long, value_name = "N", value_parser = values::at_least_one::<u32>, allow_negative_numbers = true)]
    every: Option<u32>,
    /// Start at this time (seconds like 12.5, or [HH:]MM:SS[.s]); frames keep the
    /// video's own indices and times.
    #[arg(long, value_name = "TIME", value_parser = values::time)]
    start: Option<f64>,
    /// Stop before the first frame at or after this time (as --start).
    #[arg(long, value_name = "TIME", value_parser = values::time)]
    end: Option<f64>,
    /// Write one JSON line per frame here.
    #[arg(long, value_name = "DETS.jsonl")]
    out: Option<PathBuf>,
    /// Write the summary JSON here.
    #[arg(long, value_name = "S.json")]
    summary: Option<PathBuf>,
    /// Encode the processed frames (after the plugins) into this video file.
    #[arg(long, value_name = "PATH")]
    out_video: Option<PathBuf>,
    #[command(flatten)]
    plugins: PluginArgs,
    #[command(flatten)]
    metrics: crate::metrics::MetricsArgs,
    #[command(flatten)]
    decode: DecodeArgs,
    /// Byte budget of the frame pool, e.g. 512MiB (default: the level's).
    #[arg(long, value_name = "BYTES", value_parser = values::bytes)]
    max_memory: Option<u64>,
    /// Hardware decoding: auto, none, cuda, vaapi or videotoolbox.
    #[arg(long, value_name = "KIND", default_value = "auto")]
    hwaccel: HwAccel,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `reel detect`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let flags = Config {
        pool_budget: args.max_memory,
        batch_size: args.model_args.batch,
        ..Config::default()
    };
    let settings = ctx.settings(flags)?;

    let detection = args.model_args.request(&args.model, settings.batch_size);
    let plugins = plugin_requests(&args.plugins, &settings.plugin_dirs)?;
    let mut spec = reel_host::jobs::detect(args.input.clone(), detection, plugins);
    spec = reel_host::jobs::with_settings(spec, &settings, Mode::Quality);
    spec.decode.hwaccel = args.hwaccel;
    args.decode.apply(&mut spec.decode);
    values::window(args.start, args.end)?;
    spec.decode.sampling = Sampling {
        every: args.every.unwrap_or(1),
        ..Sampling::all()
    }
    .between(args.start, args.end);
    spec.video_out = args.out_video.clone().map(VideoOut::new);

    output::check_stdout(
        &[("--out", args.out.as_deref())],
        args.summary.as_deref(),
        args.json,
    )?;
    output::refuse_clobbering(
        &[
            ("--out", args.out.as_deref()),
            ("--summary", args.summary.as_deref()),
            ("--out-video", args.out_video.as_deref()),
        ],
        &[
            std::path::Path::new(&args.input),
            std::path::Path::new(&args.model),
        ],
        None,
    )?;
    let server = args.metrics.start()?;
    let resources = Resources::new(settings.pool_budget_bytes, None);
    let lines = output::create_output(args.out.as_deref())?;
    let cancel = output::cancel_on_ctrlc("detection");
    let bar = output::progress_bar(ctx, None, "detect");
    let io = JobIo {
        lines,
        cancel: Some(cancel),
    };
    let doing = format!("detecting objects in {}", args.input);
    let (summary, failure) = output::run_job(spec, &resources, io, &bar, server.as_ref())
        .with_context(|| doing.clone())?;
    // The server stops with the job.
    drop(server);
    if failure.is_none() && !summary.interrupted {
        output::finish_output(args.out.as_deref(), summary.frames)?;
    }
    output::report_job(
        ctx,
        args.json,
        args.out.as_deref() == Some(std::path::Path::new("-")),
        args.summary.as_deref(),
        &summary,
    )?;
    output::job_exit(failure, summary.interrupted, &doing)
}
