//! `reel detect`: YOLOv8 object detection on every (or every Nth) frame of a video,
//! streamed as JSON lines, with a summary of what was found.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use reel_decode::HwAccel;
use reel_host::config::{Config, parse_bytes};
use reel_host::detect::{self, DetectError, DetectIo, DetectOptions, DetectSummary};
use reel_infer::{DeviceSpec, Precision};

use crate::output::{self, Context};

/// Arguments of `reel detect`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reel detect street.mp4 --model yolov8n --out dets.jsonl\n  \
    reel detect match.mkv --model ./yolov8s.safetensors --classes person,car --json\n  \
    reel detect cam.mp4 --model yolov8m --device cuda:0 --batch 16 --every 5\n\n\
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
    /// Where the model runs: auto, cpu, cuda, cuda:N or metal.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    device: DeviceSpec,
    /// Precision: f32, or f16/bf16 on GPUs.
    #[arg(long, value_name = "P", default_value = "f32", value_parser = parse_precision)]
    precision: Precision,
    /// Frames per inference batch (default: the level's).
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
    /// The longest a partial batch waits for more frames, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    batch_wait_ms: u64,
    /// Detect in one frame in N.
    #[arg(long, value_name = "N")]
    every: Option<u32>,
    /// Confidence threshold.
    #[arg(long, value_name = "C", default_value_t = 0.25)]
    conf: f32,
    /// IoU threshold of the non-maximum suppression.
    #[arg(long, value_name = "T", default_value_t = 0.45)]
    iou: f32,
    /// Model input size in pixels (a multiple of 32).
    #[arg(long, value_name = "PX", default_value_t = 640)]
    imgsz: u32,
    /// Keep only these classes: COCO names or numbers, comma-separated.
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    classes: Vec<String>,
    /// At most this many detections per frame.
    #[arg(long, value_name = "N", default_value_t = 300)]
    max_det: usize,
    /// Write one JSON line per frame here.
    #[arg(long, value_name = "DETS.jsonl")]
    out: Option<PathBuf>,
    /// Write the summary JSON here.
    #[arg(long, value_name = "S.json")]
    summary: Option<PathBuf>,
    /// Byte budget of the frame pool, e.g. 512MiB (default: the level's).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_memory: Option<u64>,
    /// Hardware decoding: auto, none, cuda, vaapi or videotoolbox.
    #[arg(long, value_name = "KIND", default_value = "auto")]
    hwaccel: HwAccel,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_device(s: &str) -> Result<DeviceSpec, String> {
    s.parse().map_err(|e: reel_infer::InferError| e.to_string())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|e: reel_infer::InferError| e.to_string())
}

/// Runs `reel detect`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let flags = Config {
        pool_budget: args.max_memory,
        batch_size: args.batch,
        ..Config::default()
    };
    let settings = ctx.settings(flags)?;

    let mut opts = DetectOptions::new(args.input.clone(), args.model.clone());
    opts.device = args.device;
    opts.precision = args.precision;
    opts.batch = settings.batch_size;
    opts.batch_wait = Duration::from_millis(args.batch_wait_ms);
    opts.every = args.every.unwrap_or(1);
    opts.imgsz = args.imgsz;
    opts.conf = args.conf;
    opts.iou = args.iou;
    opts.classes = args.classes.clone();
    opts.max_det = args.max_det;
    opts.hwaccel = args.hwaccel;
    opts.pool_budget_bytes = settings.pool_budget_bytes;

    let out = output::create_output(args.out.as_deref())?;
    let cancel = output::cancel_on_ctrlc("detection");
    let bar = output::progress_bar(ctx, None, "detect");
    let mut progress = |snapshot: &reel_sched::Snapshot, expected: Option<u64>| {
        output::show_frames(&bar, snapshot, expected);
    };
    let io = DetectIo {
        out,
        models: None,
        progress: Some(&mut progress),
        cancel: cancel.clone(),
    };
    let result = detect::run(&opts, io);
    bar.finish_and_clear();
    let (summary, failure) = match result {
        Ok(summary) => (summary, None),
        Err(DetectError::Pipeline {
            partial, message, ..
        }) => (*partial, Some(message)),
        Err(e) => {
            return Err(e).with_context(|| format!("detecting objects in {}", args.input));
        }
    };
    report(ctx, &args, &summary)?;
    output::job_exit(
        failure,
        summary.interrupted,
        &format!("detecting objects in {}", args.input),
    )
}

/// Writes the summary where asked and prints it.
fn report(ctx: &Context, args: &Args, summary: &DetectSummary) -> anyhow::Result<()> {
    output::write_summary(args.summary.as_deref(), summary)?;
    if args.json {
        return output::print_json(summary);
    }
    if ctx.quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let v = &summary.video;
    let m = &summary.model;
    writeln!(
        out,
        "{}: {}x{} {} at {:.3} fps; {} frames of {} decoded",
        summary.input, v.width, v.height, v.codec, v.fps, summary.frames, summary.frames_decoded
    )?;
    writeln!(
        out,
        "model: {} ({}, {} classes) at {}px on {} in {}",
        m.name, m.variant, m.classes, m.imgsz, summary.device, m.precision
    )?;
    let mut counts: Vec<(&String, &u64)> = summary.counts.iter().collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = counts
        .iter()
        .take(10)
        .map(|(label, n)| format!("{label} {n}"))
        .collect();
    writeln!(
        out,
        "detections: {}{}{}",
        summary.detections,
        if shown.is_empty() { "" } else { " — " },
        shown.join(", ")
    )?;
    let b = &summary.batch;
    writeln!(
        out,
        "batches: {} of up to {}{}",
        b.batches,
        b.requested,
        if b.oom_splits > 0 {
            format!(
                "; {} split for lack of memory, ceiling lowered to {}",
                b.oom_splits, b.ceiling
            )
        } else {
            String::new()
        }
    )?;
    writeln!(
        out,
        "time: {:.2} s, {:.2} frames/s",
        summary.wall_s, summary.fps
    )?;
    writeln!(
        out,
        "memory: peak RSS {}, frame pool peak {} of {}, input pool peak {}",
        summary
            .peak_rss_bytes
            .map_or_else(|| "unknown".to_string(), output::bytes),
        output::bytes(summary.pool.peak_bytes),
        output::bytes(summary.pool.budget_bytes),
        output::bytes(summary.input_pool.peak_bytes),
    )?;
    Ok(())
}
