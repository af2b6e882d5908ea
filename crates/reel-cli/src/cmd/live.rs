//! `reel live`: a camera, a network stream, or a file or `synthetic:` source paced
//! at its own rate, processed as it arrives with bounded latency: the analysis,
//! a model and plugins over the job engine, with reconnects, adaptive quality, one
//! stats line a second and a summary of what was kept, dropped and how late.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reel_host::config::Config;
use reel_host::job::{JobError, JobIo, Resources, VideoOut};
use reel_host::live::{LiveSpec, LiveSummary, Reconnect};
use reel_sched::{Mode, Skip};

use crate::cmd::analysis_args::AnalysisArgs;
use crate::cmd::analyze::plugin_requests;
use crate::cmd::model_args::ModelArgs;
use crate::cmd::plugin_args::PluginArgs;
use crate::cmd::values;
use crate::metrics::StatsLine;
use crate::output::{self, Context, UsageError};

/// Arguments of `reel live`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reel live rtsp://camera.local/stream --model yolov8n --out dets.jsonl\n  \
    reel live tcp://127.0.0.1:9000 --stats stats.jsonl --duration 60\n  \
    reel live clip.mp4 --loop --mode balanced --max-staleness 0.2 --json\n  \
    reel live synthetic:width=320,height=240,fps=30 --target-fps 30 --sink out.mp4\n  \
    ffmpeg -re -i clip.mp4 -f mpegts - | reel live -\n\n\
    Network inputs (rtsp over TCP, rtmp, http/HLS, udp, tcp, srt) are read through\n\
    ffmpeg and connected again with backoff when they drop; files and synthetic:\n\
    sources are paced at their own frame rate; - is a stream on standard input.\n\
    With no --model and no --plugin, the analysis runs."
)]
pub struct Args {
    /// The stream: a URL, a file, a synthetic: URI, a device, or - (standard input).
    input: String,
    /// Detect objects with this model: yolov8n … yolov8x or a .safetensors path.
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    #[command(flatten)]
    model_args: ModelArgs,
    #[command(flatten)]
    plugins: PluginArgs,
    /// Run the analysis (scene cuts, measurements) too, before the model.
    #[arg(long)]
    analyze: bool,
    #[command(flatten)]
    analysis: AnalysisArgs,
    /// realtime (the newest frame wins), balanced (a frame may wait up to
    /// --max-staleness), or quality (every frame; latency grows).
    #[arg(long, value_name = "MODE", default_value = "realtime")]
    mode: Mode,
    /// Hold this output rate by lowering the processing scale (and raise it back
    /// when there is headroom).
    #[arg(long, value_name = "F", value_parser = values::positive, allow_negative_numbers = true)]
    target_fps: Option<f64>,
    /// In balanced mode, the most a frame may wait in a queue (seconds, or 200ms).
    #[arg(long, value_name = "S", value_parser = duration)]
    max_staleness: Option<Duration>,
    /// Stop after this long (seconds, or 1m); the run then completes.
    #[arg(long, value_name = "S", value_parser = duration)]
    duration: Option<Duration>,
    /// Start a file again at its end.
    #[arg(long = "loop")]
    loop_input: bool,
    /// Leave frames out at the source while the pipeline is behind.
    #[arg(long)]
    skip_behind: bool,
    /// Failed connection attempts in a row before giving up (default: never).
    #[arg(long, value_name = "N")]
    max_reconnects: Option<u32>,
    /// A stream silent this long is stalled and connected again (default: off).
    #[arg(long, value_name = "S", value_parser = duration)]
    stall_timeout: Option<Duration>,
    /// Report the same picture repeated this long as a frozen source.
    #[arg(long, value_name = "S", value_parser = duration, default_value = "5s")]
    frozen_after: Duration,
    /// Where the processed frames go: null, or a file (encoded with ffmpeg).
    #[arg(long, value_name = "null|FILE", default_value = "null")]
    sink: String,
    /// Write one JSON line per frame here (- for standard output).
    #[arg(long, value_name = "RESULTS.jsonl")]
    out: Option<PathBuf>,
    /// Write the live figures here, one JSON line a second.
    #[arg(long, value_name = "STATS.jsonl")]
    stats: Option<PathBuf>,
    /// Byte budget of the frame pool, e.g. 512MiB (default: the level's).
    #[arg(long, value_name = "BYTES", value_parser = values::bytes)]
    max_memory: Option<u64>,
    #[command(flatten)]
    metrics: crate::metrics::MetricsArgs,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// A duration: seconds (`2.5`) or with a unit (`500ms`, `1m`).
fn duration(s: &str) -> Result<Duration, String> {
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("`{s}` is not a duration")),
        Err(_) => reel_host::config::parse_age(s)
            .map_err(|_| format!("`{s}` is not a duration like 2.5, 500ms or 1m"))?,
    };
    if d.is_zero() {
        return Err("the duration must be longer than zero".into());
    }
    Ok(d)
}

/// Runs `reel live`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut flags = Config {
        pool_budget: args.max_memory,
        batch_size: args.model_args.batch,
        ..Config::default()
    };
    args.analysis.flags(&mut flags);
    let settings = ctx.settings(flags)?;
    if args.max_staleness.is_some() && args.mode != Mode::Balanced {
        return Err(UsageError("--max-staleness applies to --mode balanced only".into()).into());
    }
    if args.mode == Mode::Batch {
        return Err(
            UsageError("reel live runs in realtime, balanced or quality mode".into()).into(),
        );
    }
    let video_out = match args.sink.as_str() {
        "null" => None,
        path => Some(PathBuf::from(path)),
    };
    output::check_stdout(&[("--out", args.out.as_deref())], None, args.json)?;
    output::refuse_clobbering(
        &[
            ("--out", args.out.as_deref()),
            ("--stats", args.stats.as_deref()),
            ("--sink", video_out.as_deref()),
        ],
        &[std::path::Path::new(&args.input)],
        None,
    )?;

    // A stream on standard input is read where it flows, never spooled.
    let input = if args.input == "-" {
        format!("/proc/{}/fd/0", std::process::id())
    } else {
        args.input.clone()
    };
    let plugins = plugin_requests(&args.plugins, &settings.plugin_dirs)?;
    let mut stages = Vec::new();
    if args.analyze || (args.model.is_none() && plugins.is_empty()) {
        stages.push(reel_host::job::StageRequest::Analysis(
            args.analysis.request(&settings),
        ));
    }
    if let Some(model) = &args.model {
        // Live frames do not wait for a batch to fill: one at a time unless asked.
        let mut d = args
            .model_args
            .request(model, args.model_args.batch.unwrap_or(1));
        d.batch_wait = d.batch_wait.min(Duration::from_millis(20));
        stages.push(reel_host::job::StageRequest::Detection(d));
    }
    stages.extend(
        plugins
            .into_iter()
            .map(reel_host::job::StageRequest::Plugin),
    );
    let mut spec = reel_host::job::JobSpec::new(input);
    spec.stages = stages;
    spec = reel_host::jobs::with_settings(spec, &settings, args.mode);
    spec.mode = args.mode;
    spec.use_cache = false;
    spec.target_fps = args.target_fps;
    spec.skip = if args.skip_behind {
        Skip::Adaptive
    } else {
        Skip::None
    };
    spec.video_out = video_out.map(VideoOut::new);
    spec.live = Some(LiveSpec {
        loop_input: args.loop_input,
        duration: args.duration,
        max_staleness: args.max_staleness,
        reconnect: Reconnect {
            max_attempts: args.max_reconnects,
            ..Reconnect::default()
        },
        stall_timeout: args.stall_timeout,
        frozen_after: Some(args.frozen_after),
    });

    let server = args.metrics.start()?;
    let resources = Resources::new(settings.pool_budget_bytes, None);
    let lines = output::create_output(args.out.as_deref())?;
    let mut stats = match &args.stats {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let cancel = output::cancel_on_ctrlc("live run");
    let bar = output::progress_bar(ctx, None, "live");
    let doing = format!("reading {} live", args.input);
    let job = reel_host::job::start(
        spec,
        &resources,
        JobIo {
            lines,
            cancel: Some(cancel),
        },
    )
    .with_context(|| doing.clone())?;

    let begun = Instant::now();
    let mut next_line = begun + Duration::from_secs(1);
    let mut last_out = (begun, 0u64);
    let mut fps_now = 0.0;
    while !job.is_finished() {
        if let Some(snapshot) = crate::metrics::consistent_snapshot(&job) {
            output::show_frames(&bar, &snapshot, None);
            if let Some(source) = job.live_stats() {
                let now = Instant::now();
                let live = LiveSummary::of(&snapshot, &source);
                let line_due = now >= next_line;
                if line_due {
                    let secs = now.duration_since(last_out.0).as_secs_f64();
                    fps_now = live.frames_out.saturating_sub(last_out.1) as f64 / secs.max(1e-9);
                    last_out = (now, live.frames_out);
                    next_line += Duration::from_secs(1);
                }
                let pool = resources.pool().stats();
                let line = StatsLine {
                    t_s: now.duration_since(begun).as_secs_f64(),
                    fps_now,
                    dropped: live.dropped(),
                    in_flight: snapshot.in_flight,
                    pool_bytes: pool.bytes_in_use as u64,
                    live,
                };
                if line_due && let Some(out) = stats.as_mut() {
                    let mut text = serde_json::to_vec(&line).context("encoding a stats line")?;
                    text.push(b'\n');
                    out.write_all(&text)
                        .and_then(|()| out.flush())
                        .context("writing a stats line")?;
                }
                if let Some(server) = &server {
                    server.publish(crate::metrics::Figures {
                        snapshot,
                        pool,
                        pressure: resources.monitor().level(),
                        live: Some(crate::metrics::LiveFigures {
                            line,
                            up: source.connected(),
                        }),
                    });
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The server stops with the job.
    drop(server);
    bar.finish_and_clear();
    let (mut summary, failure) = match job.join() {
        Ok(summary) => (summary, None),
        Err(JobError::Failed {
            partial, message, ..
        }) => (*partial, Some(message)),
        Err(e) => return Err(anyhow::Error::new(e).context(doing)),
    };
    summary.input.clone_from(&args.input);
    output::report_job(
        ctx,
        args.json,
        args.out.as_deref() == Some(std::path::Path::new("-")),
        None,
        &summary,
    )?;
    if !args.json && !ctx.quiet && args.out.as_deref() != Some(std::path::Path::new("-")) {
        print_live(&summary)?;
    }
    output::job_exit(failure, summary.interrupted, &doing)
}

/// The live figures for a person, after the job's summary.
fn print_live(s: &reel_host::job::JobSummary) -> anyhow::Result<()> {
    let Some(l) = &s.live else {
        return Ok(());
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "live: {} frames in, {} out, {} dropped ({} queue, {} stale, {} skipped); {} fps out",
        l.frames_in,
        l.frames_out,
        l.dropped(),
        l.dropped_by.queue,
        l.dropped_by.stale,
        l.dropped_by.skip,
        output::rate(l.fps_out)
    )?;
    writeln!(
        out,
        "latency (arrival to sink): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; stream lag {}; quality {:.2}",
        l.latency_ms.p50,
        l.latency_ms.p99,
        l.latency_ms.max,
        l.stream_lag_s
            .map_or_else(|| "unknown".to_string(), |v| format!("{v:.3} s")),
        l.quality
    )?;
    writeln!(
        out,
        "reconnects: {}, stalls: {}, frozen: {}",
        l.reconnects, l.stalls, l.frozen
    )?;
    Ok(())
}
