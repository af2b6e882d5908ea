//! `reel probe`: what an input holds (size, rate, frames, codec, rotation, decoder).

use std::process::ExitCode;

use serde::Serialize;

use reel_decode::ffmpeg::StreamEntry;
use reel_decode::{DecodeOptions, HwAccel, VideoInfo};

use crate::output::{self, Context};

/// Arguments of `reel probe`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reel probe clip.mp4\n  reel probe clip.mp4 --json --count-frames\n  reel probe 'synthetic:scenes?frames=300&scenes=4' --json"
)]
pub struct Args {
    /// A video file, URL, `.y4m` file, image directory or pattern (`img%04d.png`),
    /// or a `synthetic:` URI.
    input: String,

    /// Print the machine-readable report on stdout.
    #[arg(long)]
    json: bool,

    /// Count the frames by decoding the whole stream (exact, and as slow as a
    /// decode).
    #[arg(long)]
    count_frames: bool,
}

/// The JSON report: the probe, and the counted frames when asked for.
#[derive(Debug, Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    info: &'a VideoInfo,
    display_width: u32,
    display_height: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    frames_counted: Option<u64>,
    /// `frames` comes from the container's header, not from counting: an estimate
    /// (an AVI's header may count frames the stream does not hold).
    frames_estimated: bool,
    /// Every stream of the container: video, audio, subtitles, ….
    streams: Vec<StreamEntry>,
}

/// Runs `reel probe`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    // What the decoder would use here: probing itself never needs the hardware.
    let mut opts = DecodeOptions::default().with_hwaccel(HwAccel::None);
    let settings = ctx.settings(reel_host::config::Config::default())?;
    if let Ok(t) = std::time::Duration::try_from_secs_f64(settings.network_timeout_s) {
        opts.limits.network_timeout = t;
    }
    let info = reel_decode::probe(&args.input, &opts)?;
    let frames_counted = if args.count_frames {
        Some(count(&args.input, &opts)?)
    } else {
        None
    };
    let (display_width, display_height) = info.display_size();
    let streams = streams(&info, &opts);
    let frames_estimated = frames_counted.is_none() && info.frames.is_some() && !streams.is_empty();
    if args.json {
        output::print_json(&Report {
            info: &info,
            display_width,
            display_height,
            frames_counted,
            frames_estimated,
            streams,
        })?;
    } else if !ctx.quiet {
        print_human(&info, frames_counted, frames_estimated, &streams);
    }
    Ok(ExitCode::SUCCESS)
}

/// The container's streams, for inputs in a container (none for `synthetic:`, Y4M
/// and image sequences, which hold one video stream and count it exactly).
fn streams(info: &VideoInfo, opts: &DecodeOptions) -> Vec<StreamEntry> {
    if !matches!(info.decoder.backend, "ffmpeg" | "libav") {
        return Vec::new();
    }
    match reel_decode::ffmpeg::streams(&info.input, &opts.tools) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "the container's streams could not be listed");
            Vec::new()
        }
    }
}

/// Decodes the whole input (at the smallest size that keeps it cheap) and counts.
fn count(input: &str, opts: &DecodeOptions) -> anyhow::Result<u64> {
    if reel_decode::synthetic::is_synthetic(input) {
        return Ok(reel_decode::synthetic::SyntheticSpec::parse(input)?.frames);
    }
    let pool = reel_pool::FramePool::with_budget(reel_host::job::DEFAULT_POOL_BUDGET as usize);
    let small = opts
        .clone()
        .with_format(reel_frame::PixelFormat::Gray8)
        .with_size(16, 16);
    let mut src = reel_decode::open(input, &small, &pool)?;
    let mut n = 0u64;
    while let Some(frame) = src.read_frame() {
        frame?;
        n += 1;
    }
    Ok(n)
}

fn print_human(info: &VideoInfo, counted: Option<u64>, estimated: bool, streams: &[StreamEntry]) {
    println!("input:        {}", info.input);
    if let Some(c) = &info.container {
        println!("container:    {c}");
    }
    println!("codec:        {} ({})", info.codec, info.pixel_format);
    let (dw, dh) = info.display_size();
    if info.rotation == 0 {
        println!("size:         {}x{}", info.width, info.height);
    } else {
        println!(
            "size:         {}x{} stored, {dw}x{dh} shown (rotated {}°)",
            info.width, info.height, info.rotation
        );
    }
    let vfr = if info.variable_frame_rate {
        " (variable)"
    } else {
        ""
    };
    println!("frame rate:   {:.3} fps{vfr}", info.fps);
    match (info.frames, counted) {
        (_, Some(n)) => println!("frames:       {n} (counted)"),
        (Some(n), None) if estimated => {
            println!("frames:       {n} (the header's estimate; --count-frames counts them)");
        }
        (Some(n), None) => println!("frames:       {n}"),
        (None, None) => println!("frames:       unknown (--count-frames counts them)"),
    }
    if let Some(d) = info.duration_s {
        println!("duration:     {d:.3} s");
    }
    if let Some(b) = info.bit_rate {
        println!("bit rate:     {} kb/s", b / 1000);
    }
    println!(
        "decoder:      {} {}",
        info.decoder.backend, info.decoder.name
    );
    for s in streams.iter().filter(|s| s.kind != "video") {
        let mut line = format!("stream {}:     {}", s.index, s.kind);
        if let Some(c) = &s.codec {
            line.push_str(&format!(" {c}"));
        }
        if let Some(ch) = s.channels {
            line.push_str(&format!(", {ch} channels"));
        }
        if let Some(l) = &s.language {
            line.push_str(&format!(" ({l})"));
        }
        println!("{line}");
    }
}
