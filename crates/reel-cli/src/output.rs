//! What every command shares for talking to the user: logging, JSON on stdout,
//! human-readable sizes, and the panic hook that keeps backtraces off the terminal.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use reel_host::config::{Config, Environment, Settings};

/// Settings every command sees: the global flags.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// No progress bars, no human summary.
    pub quiet: bool,
    /// `--config PATH`: the settings file, instead of the one looked up.
    pub config: Option<PathBuf>,
    /// `--cache-dir DIR` or `REEL_CACHE_DIR`.
    pub cache_dir: Option<PathBuf>,
}

impl Context {
    /// The effective settings: the command's own `flags` over the global flags over
    /// `reel.toml` over the system profile's defaults.
    pub fn settings(&self, mut flags: Config) -> anyhow::Result<Settings> {
        let env = Environment::detect();
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let file = Config::load(self.config.as_deref(), &cwd, &env)?;
        if flags.cache.dir.is_none() {
            flags.cache.dir.clone_from(&self.cache_dir);
        }
        flags.validate("flags")?;
        Ok(file.resolve(&flags, &env))
    }
}

/// Logs go to stderr through `tracing`; `RUST_LOG` overrides the verbosity flags.
pub fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// A panic is a bug, but the user still gets one `error:` line and exit status 1,
/// never a backtrace.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error: {msg}{at}");
        std::process::exit(1);
    }));
}

/// Writes `value` as pretty JSON on stdout, followed by a newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer_pretty(&mut out, value).context("writing JSON to stdout")?;
    writeln!(out).context("writing JSON to stdout")?;
    Ok(())
}

/// `1.5 GiB`-style sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A progress bar on stderr, shown only when stdout is a terminal and `--quiet` was
/// not given; otherwise a hidden bar that costs nothing. `total` is the number of
/// items when known (then the bar shows a rate and an ETA), else a spinner counts.
pub fn progress_bar(ctx: &Context, total: Option<u64>, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if ctx.quiet || !std::io::stdout().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(n) => (
            indicatif::ProgressBar::new(n),
            "{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
        ),
        None => (
            indicatif::ProgressBar::new_spinner(),
            "{prefix} {spinner} {pos} {per_sec}",
        ),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(10));
    bar.set_prefix(what.to_string());
    bar
}

/// The `--out` file, buffered, or `None` when the command was given none.
pub fn create_output(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<Box<dyn Write + Send>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Some(Box::new(std::io::BufWriter::new(file))))
}

/// A token that Ctrl-C cancels (the job drains and keeps what it found); a second
/// Ctrl-C aborts (what is queued is dropped, the results so far are still written).
pub fn cancel_on_ctrlc(what: &str) -> reel_sched::CancelToken {
    let token = reel_sched::CancelToken::new();
    let on_signal = token.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        if on_signal.is_cancelled() {
            on_signal.abort();
        } else {
            on_signal.cancel();
        }
    }) {
        tracing::warn!("Ctrl-C will not stop the {what} cleanly: {e}");
    }
    token
}

/// The analysis cache the settings call for, if it can be opened (a cache that
/// cannot is a warning: the job runs without it).
pub fn open_cache(settings: &Settings) -> Option<reel_host::cache::Cache> {
    let (Some(dir), true) = (&settings.cache.dir, settings.cache.enabled) else {
        return None;
    };
    match reel_host::cache::Cache::open(dir) {
        Ok(c) => Some(c.with_policy(settings.cache.policy())),
        Err(e) => {
            tracing::warn!("analysis cache unavailable, analysing without it: {e}");
            None
        }
    }
}

/// Starts `spec` on `resources`, draws its progress on `bar` while it runs, and
/// joins it: the summary, and the failure's message when the pipeline failed
/// mid-stream (its summary is then the partial one). Errors before the first
/// frame are errors.
pub fn run_job(
    spec: reel_host::job::JobSpec,
    resources: &reel_host::job::Resources,
    io: reel_host::job::JobIo,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<(reel_host::job::JobSummary, Option<String>)> {
    let job = reel_host::job::start(spec, resources, io)?;
    let expected = job.expected_frames();
    while !job.is_finished() {
        if let Some(snapshot) = job.metrics() {
            show_frames(bar, &snapshot, expected);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    bar.finish_and_clear();
    match job.join() {
        Ok(summary) => Ok((summary, None)),
        Err(reel_host::job::JobError::Failed {
            partial, message, ..
        }) => Ok((*partial, Some(message))),
        Err(e) => Err(e.into()),
    }
}

/// Moves a frames progress bar on from a pipeline snapshot; the bar gets its length
/// and an ETA once the number of frames to expect is known.
pub fn show_frames(
    bar: &indicatif::ProgressBar,
    snapshot: &reel_sched::Snapshot,
    expected: Option<u64>,
) {
    if let Some(n) = expected
        && bar.length() != Some(n)
    {
        bar.set_length(n);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} frames {per_sec} ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
    }
    bar.set_position(snapshot.frames_out);
}

/// Writes a job's summary as pretty JSON to `path`, when one was asked for.
pub fn write_summary<T: serde::Serialize>(
    path: Option<&std::path::Path>,
    summary: &T,
) -> anyhow::Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let text = serde_json::to_string_pretty(summary).context("encoding the summary")?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("writing the summary to {}", path.display()))
}

/// How a job that has printed its summary ends: an error when the pipeline failed
/// (`failure`, reported as `doing: message`), exit status 1 when it was interrupted.
pub fn job_exit(
    failure: Option<String>,
    interrupted: bool,
    doing: &str,
) -> anyhow::Result<std::process::ExitCode> {
    if let Some(message) = failure {
        anyhow::bail!("{doing}: {message}");
    }
    if interrupted {
        eprintln!("error: interrupted; the results above are partial");
        return Ok(std::process::ExitCode::from(1));
    }
    Ok(std::process::ExitCode::SUCCESS)
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

/// Prints a job's summary for a person: the video, then what each stage found,
/// then time and memory.
pub fn print_summary(s: &reel_host::job::JobSummary) -> anyhow::Result<()> {
    use reel_host::job::CacheStatus;
    let mut out = std::io::stdout().lock();
    let v = &s.video;
    write!(
        out,
        "{}: {}x{} {} at {:.3} fps (decoder: {}); {} of {} frames",
        s.input, v.width, v.height, v.codec, v.fps, s.decoder, s.frames, s.frames_decoded
    )?;
    if let Some(a) = &s.analysis {
        write!(
            out,
            " analysed at {}x{}",
            a.analysis_size[0], a.analysis_size[1]
        )?;
    }
    writeln!(out)?;
    if s.dropped > 0 || s.skipped > 0 {
        writeln!(
            out,
            "mode {}: {} frames dropped, {} skipped to keep up",
            s.mode, s.dropped, s.skipped
        )?;
    }
    if let Some(a) = &s.analysis {
        writeln!(
            out,
            "scenes: {} (cuts at frames {})",
            a.scenes.len(),
            list(&a.cuts)
        )?;
    }
    if let Some(d) = &s.detection {
        let m = &d.model;
        writeln!(
            out,
            "model: {} ({}, {} classes) at {}px on {} in {}",
            m.name, m.variant, m.classes, m.imgsz, d.device, m.precision
        )?;
        let mut counts: Vec<(&String, &u64)> = d.counts.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = counts
            .iter()
            .take(10)
            .map(|(label, n)| format!("{label} {n}"))
            .collect();
        writeln!(
            out,
            "detections: {}{}{}",
            d.detections,
            if shown.is_empty() { "" } else { " — " },
            shown.join(", ")
        )?;
        let b = &d.batch;
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
    }
    for p in &s.plugins {
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
    if let Some(path) = &s.video_out {
        writeln!(out, "video: {path}")?;
    }
    writeln!(
        out,
        "time: {:.2} s, {:.1} frames/s; cache: {}",
        s.wall_s,
        s.fps,
        match s.cache {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Off => "off",
        }
    )?;
    writeln!(
        out,
        "memory: peak RSS {}, pool peak {} of {} ({} hits, {} misses)",
        s.peak_rss_bytes
            .map_or_else(|| "unknown".to_string(), bytes),
        bytes(s.pool.peak_bytes),
        bytes(s.pool.budget_bytes),
        s.pool.hits,
        s.pool.misses
    )?;
    Ok(())
}
