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
    /// `--timeout DURATION`: the network inputs' connect and read timeout.
    pub network_timeout: Option<std::time::Duration>,
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
        if flags.network_timeout.is_none() {
            flags.network_timeout = self.network_timeout;
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
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour codes only for a person at a terminal, never in a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// A panic is a bug, but the user still gets one `error:` line and exit status 1,
/// never a backtrace. The one panic that is not a bug, printing to a pipe whose
/// reader has gone (`reel probe x | head -1`), ends the program quietly.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error: {msg}{at}");
        std::process::exit(1);
    }));
}

/// Writes `value` as pretty JSON on stdout, followed by a newline. The text is
/// made first and written whole, so that a failed write is the `io::Error` itself
/// (a reader that has gone, `reel probe x --json | head -1`, ends the program
/// quietly; serde's own error would hide it).
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(value).context("encoding JSON")?;
    text.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&text)
        .and_then(|()| out.flush())
        .context("writing JSON to stdout")?;
    Ok(())
}

/// A size for a person, in the unit it was most likely written in: a whole number
/// of decimal units stays decimal (`500 MB`, what `500MB` in reel.toml means),
/// anything else is binary to one decimal (`1.5 GiB`).
pub fn bytes(n: u64) -> String {
    const DECIMAL: [(u64, &str); 4] = [
        (1_000_000_000_000, "TB"),
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1_000, "kB"),
    ];
    const BINARY: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let binary_whole = (1..BINARY.len())
        .rev()
        .find(|&k| n > 0 && n.is_multiple_of(1u64 << (10 * k)));
    if binary_whole.is_none()
        && let Some((unit, name)) = DECIMAL
            .iter()
            .find(|(unit, _)| n >= *unit && n.is_multiple_of(*unit))
    {
        return format!("{} {name}", n / unit);
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < BINARY.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", BINARY[unit])
    } else {
        format!("{v:.1} {}", BINARY[unit])
    }
}

/// `n` and the noun, in the singular for one: `1 entry`, `3 entries`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration for a person, in whole units from the largest: `30 days`,
/// `1 day 12 hours`, `90 seconds` is `1 minute 30 seconds`; at most two units.
pub fn duration(d: std::time::Duration) -> String {
    const UNITS: [(u64, &str, &str); 5] = [
        (7 * 86_400, "week", "weeks"),
        (86_400, "day", "days"),
        (3_600, "hour", "hours"),
        (60, "minute", "minutes"),
        (1, "second", "seconds"),
    ];
    let mut left = d.as_secs();
    let mut parts = Vec::new();
    for (size, one, many) in UNITS {
        // Weeks only when the whole is a number of weeks: `14 days`, not `2 weeks`
        // … unless it is.
        if size == 7 * 86_400 && !left.is_multiple_of(size) {
            continue;
        }
        if left >= size && parts.len() < 2 {
            parts.push(count(left / size, one, many));
            left %= size;
        }
    }
    if parts.is_empty() {
        "0 seconds".to_string()
    } else {
        parts.join(" ")
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

/// The `--out` destination, or `None` when the command was given none: `-` is
/// standard output; a file is created (emptying what was there) only when the
/// first line is written, so that a run that fails before its first result leaves
/// an existing file as it was.
pub fn create_output(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<Box<dyn Write + Send>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    if path == std::path::Path::new("-") {
        return Ok(Some(Box::new(Stdout)));
    }
    Ok(Some(Box::new(LazyFile::new(path.to_path_buf()))))
}

/// A refusal to do what was asked, found before starting (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Refuses an output that is the same file as an input or as the cache's database
/// (compared by file identity, not by spelling): writing it would destroy what
/// the run reads.
pub fn refuse_clobbering(
    outputs: &[(&str, Option<&std::path::Path>)],
    inputs: &[&std::path::Path],
    cache: Option<&reel_host::cache::Cache>,
) -> anyhow::Result<()> {
    let mut protected: Vec<(String, std::path::PathBuf)> = inputs
        .iter()
        .map(|p| (format!("the input {}", p.display()), p.to_path_buf()))
        .collect();
    if let Some(c) = cache {
        for suffix in ["", "-wal", "-shm"] {
            let mut db = c.db_path().as_os_str().to_owned();
            db.push(suffix);
            protected.push(("the analysis cache's database".into(), db.into()));
        }
    }
    for (flag, out) in outputs {
        let Some(out) = out else { continue };
        if *out == std::path::Path::new("-") {
            continue;
        }
        for (what, p) in &protected {
            if same_file(out, p) {
                return Err(UsageError(format!(
                    "{flag} {} is {what}: writing it would destroy it",
                    out.display()
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// Whether `a` and `b` are the same existing file.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        ma.dev() == mb.dev() && ma.ino() == mb.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (ma, mb);
        matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    }
}

/// After a run that completed without a single result line, the `--out` file is
/// still made (empty), as a run with results would have made it.
pub fn finish_output(path: Option<&std::path::Path>, lines: u64) -> anyhow::Result<()> {
    match path {
        Some(p) if lines == 0 && p != std::path::Path::new("-") => {
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Standard output for result lines: when its reader goes away (`reel analyze x
/// --out - | head`), the program ends quietly, as a pipe's writer does.
struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        quiet_on_broken_pipe(std::io::stdout().lock().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        quiet_on_broken_pipe(std::io::stdout().lock().flush())
    }
}

fn quiet_on_broken_pipe<T>(r: std::io::Result<T>) -> std::io::Result<T> {
    if let Err(e) = &r
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
    r
}

/// A file created on its first write. Each flush ends a whole line: when a write
/// fails (a full disk), the file is cut back to what the last flush left, so that
/// no half line stays in it.
struct LazyFile {
    path: PathBuf,
    file: Option<std::fs::File>,
    /// Bytes written since the file was made.
    written: u64,
    /// Bytes written at the last flush: whole lines.
    whole: u64,
}

impl LazyFile {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            written: 0,
            whole: 0,
        }
    }
}

impl Write for LazyFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = std::fs::File::create(&self.path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("creating {}: {e}", self.path.display()))
                })?;
                self.file.insert(f)
            }
        };
        match file.write(buf) {
            Ok(n) => {
                self.written += n as u64;
                Ok(n)
            }
            Err(e) => {
                // Whatever part of the line got out is taken back.
                if file.set_len(self.whole).is_ok() {
                    use std::io::Seek;
                    let _ = file.seek(std::io::SeekFrom::Start(self.whole));
                    self.written = self.whole;
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(f) = &mut self.file {
            f.flush()?;
        }
        self.whole = self.written;
        Ok(())
    }
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
        // Stopping never waits on an input that does not move: the decoders and
        // probes are killed (their children, in their own process group, never
        // see the terminal's Ctrl-C), and what they delivered drains.
        reel_decode::stop_inputs();
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
    metrics: Option<&crate::metrics::MetricsServer>,
) -> anyhow::Result<(reel_host::job::JobSummary, Option<String>)> {
    let mut spec = spec;
    let given = spec.input.clone();
    let spooled = spool_stdin(&given)?;
    if let Some(path) = &spooled {
        spec.input = path.display().to_string();
        // A new file each time: nothing to find again.
        spec.use_cache = false;
    }
    let job = reel_host::job::start(spec, resources, io)?;
    let expected = job.expected_frames();
    while !job.is_finished() {
        if let Some(snapshot) = job.metrics() {
            show_frames(bar, &snapshot, expected);
        }
        if let Some(server) = metrics
            && let Some(figures) = crate::metrics::Figures::of(&job, resources, None)
        {
            server.publish(figures);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    bar.finish_and_clear();
    let (mut summary, failure) = match job.join() {
        Ok(summary) => (summary, None),
        Err(reel_host::job::JobError::Failed {
            partial, message, ..
        }) => (*partial, Some(message)),
        Err(e) => return Err(e.into()),
    };
    summary.input = given;
    Ok((summary, failure))
}

/// An input of `-` is standard input, copied whole into a temporary file first:
/// the probe and the decoder each read the input, and containers such as MP4 need
/// to seek. The file is named for what it holds (`.y4m`, `.png`, `.jpg`) so that
/// the right reader takes it, and is removed when the returned path drops.
/// Any other input is left as it is (`None`).
fn spool_stdin(input: &str) -> anyhow::Result<Option<tempfile::TempPath>> {
    use std::io::Read as _;
    if input != "-" {
        return Ok(None);
    }
    let mut stdin = std::io::stdin().lock();
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match stdin.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow::Error::new(e).context("reading standard input")),
        }
    }
    if got == 0 {
        anyhow::bail!("standard input is empty: nothing to decode");
    }
    let head = &head[..got];
    let suffix = if head.starts_with(b"YUV4MPEG2") {
        ".y4m"
    } else if head.starts_with(b"\x89PNG") {
        ".png"
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        ".jpg"
    } else {
        ""
    };
    let mut file = tempfile::Builder::new()
        .prefix("reel-stdin-")
        .suffix(suffix)
        .tempfile()
        .context("making a temporary file for standard input")?;
    file.write_all(head)
        .and_then(|()| std::io::copy(&mut stdin, &mut file).map(|_| ()))
        .and_then(|()| file.flush())
        .context("copying standard input into a temporary file")?;
    Ok(Some(file.into_temp_path()))
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

/// Standard output carries one thing: one stream of results (`--out -`,
/// `--scenes-csv -`, `--edl -`: each of `streams`, a flag and its path) or the
/// summary as JSON (`--json`, `--summary -`, which say the same and print it
/// once); two of them mixed there could not be read. Refused before the run starts.
pub fn check_stdout(
    streams: &[(&str, Option<&std::path::Path>)],
    summary: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let dash = |p: Option<&std::path::Path>| p == Some(std::path::Path::new("-"));
    let mut writers: Vec<&str> = streams
        .iter()
        .filter(|(_, p)| dash(*p))
        .map(|(flag, _)| *flag)
        .collect();
    if json {
        writers.push("--json");
    } else if dash(summary) {
        writers.push("--summary");
    }
    if let [first, second, ..] = writers[..] {
        let named = |f: &str| {
            if f == "--json" {
                f.to_string()
            } else {
                format!("{f} -")
            }
        };
        return Err(UsageError(format!(
            "{} and {} would both write to standard output: give one of them a file",
            named(first),
            named(second)
        ))
        .into());
    }
    Ok(())
}

/// Reports a finished job: the summary file (`--summary PATH`), then on standard
/// output the summary as JSON (`--json` or `--summary -`, once), or the human
/// summary unless `--quiet` or standard output carries a stream of results
/// (`stdout_taken`) or JSON.
pub fn report_job(
    ctx: &Context,
    json: bool,
    stdout_taken: bool,
    summary_path: Option<&std::path::Path>,
    summary: &reel_host::job::JobSummary,
) -> anyhow::Result<()> {
    let dash = std::path::Path::new("-");
    if json || summary_path == Some(dash) {
        write_summary(summary_path.filter(|p| *p != dash), summary)?;
        return print_json(summary);
    }
    write_summary(summary_path, summary)?;
    if ctx.quiet || stdout_taken {
        return Ok(());
    }
    print_summary(summary)
}

/// Writes a job's summary as pretty JSON to `path`, when one was asked for.
pub fn write_summary<T: serde::Serialize>(
    path: Option<&std::path::Path>,
    summary: &T,
) -> anyhow::Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    if path == std::path::Path::new("-") {
        return print_json(summary);
    }
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
        // The message as the cause of what was being done, so that the error's line
        // names the input once.
        return Err(anyhow::Error::msg(message).context(doing.to_string()));
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
    if s.decode_errors > 0 {
        writeln!(
            out,
            "decoding errors passed over (--keep-going): {}",
            s.decode_errors
        )?;
    }
    if s.dropped > 0 || s.skipped > 0 {
        writeln!(
            out,
            "mode {}: {} frames dropped, {} skipped to keep up",
            s.mode, s.dropped, s.skipped
        )?;
    }
    if let Some(a) = &s.analysis {
        let cuts = if a.cuts.is_empty() {
            "cuts: none".to_string()
        } else {
            let at: Vec<String> = a
                .scenes
                .iter()
                .skip(1)
                .map(|sc| format!("{} ({})", sc.start_frame, timecode(sc.start_s)))
                .collect();
            format!("cuts at frames {}", at.join(", "))
        };
        writeln!(out, "scenes: {}; {cuts}", a.scenes.len())?;
        if a.scenes.len() > 1 {
            write_scene_table(&mut out, &a.scenes)?;
        }
    }
    if let Some(d) = &s.detection {
        let m = &d.model;
        let engine = match d.threads {
            Some(t) => format!(
                "{} kernels, {}",
                d.kernels,
                count(t as u64, "thread", "threads")
            ),
            None => d.kernels.clone(),
        };
        writeln!(
            out,
            "model: {} ({}, {} classes) at {}px on {} in {} ({engine})",
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
        "time: {:.2} s, {} frames/s; cache: {}",
        s.wall_s,
        rate(s.fps),
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

/// An error and its causes as one line: `context: cause: cause`, each part once
/// (a cause that repeats what an outer part said is left out, and `analysing x.mp4:
/// x.mp4: no such file` names the input once) with every part's own line breaks
/// folded.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let mut text = cause
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        let named = parts
            .last()
            .and_then(|prev| prev.split_whitespace().last())
            .map(str::to_string);
        if let Some(input) = named {
            if let Some(rest) = text.strip_prefix(&format!("{input}: ")) {
                text = rest.to_string();
            } else if text.contains(&format!("`{input}`")) || text.contains(&format!(" {input}: "))
            {
                // The cause names the input itself (`invalid input `x`: …`): the
                // context that named it is said again by it, and goes.
                parts.pop();
            }
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// Whether `e` is an option value out of range, or stages that cannot work
/// together as asked (exit status 2, like the parser's own errors).
pub fn is_usage_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<UsageError>()
            || matches!(
                c.downcast_ref::<reel_host::job::JobError>(),
                Some(reel_host::job::JobError::Options(_))
            )
    })
}

/// The most scenes the human summary lists; `--scenes-csv` has them all.
const SCENES_SHOWN: usize = 50;

/// The scene list for a person: each scene's frames (0-based, the last one
/// inclusive) and its start, end and length as `HH:MM:SS.mmm` timecodes.
fn write_scene_table(out: &mut dyn Write, scenes: &[reel_host::job::Scene]) -> std::io::Result<()> {
    writeln!(
        out,
        "  scene  frames          start         end           length"
    )?;
    for (i, sc) in scenes.iter().take(SCENES_SHOWN).enumerate() {
        let frames = format!("{}-{}", sc.start_frame, sc.end_frame);
        writeln!(
            out,
            "  {:>5}  {frames:<14}  {}  {}  {}",
            i + 1,
            timecode(sc.start_s),
            timecode(sc.end_s),
            timecode(sc.end_s - sc.start_s)
        )?;
    }
    if scenes.len() > SCENES_SHOWN {
        writeln!(
            out,
            "  … {} more (--scenes-csv lists them all)",
            scenes.len() - SCENES_SHOWN
        )?;
    }
    Ok(())
}

/// A rate for a person: three significant figures (`1040`, `38.6`, `0.74`).
pub fn rate(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// Seconds as `HH:MM:SS.mmm`, the timecode PySceneDetect prints.
pub fn timecode(s: f64) -> String {
    let ms = (s.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_unit_they_were_written_in() {
        assert_eq!(bytes(500_000_000), "500 MB");
        assert_eq!(bytes(1 << 30), "1 GiB");
        assert_eq!(bytes(1_610_612_736), "1.5 GiB");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(2 * 1024 * 1024), "2 MiB");
    }

    #[test]
    fn durations_and_counts_read_well() {
        use std::time::Duration;
        assert_eq!(duration(Duration::from_secs(30 * 86_400)), "30 days");
        assert_eq!(duration(Duration::from_secs(14 * 86_400)), "2 weeks");
        assert_eq!(
            duration(Duration::from_secs(86_400 + 12 * 3600)),
            "1 day 12 hours"
        );
        assert_eq!(duration(Duration::from_secs(90)), "1 minute 30 seconds");
        assert_eq!(duration(Duration::ZERO), "0 seconds");
        assert_eq!(count(1, "entry", "entries"), "1 entry");
        assert_eq!(count(0, "entry", "entries"), "0 entries");
        assert_eq!(rate(1035.04), "1035");
        assert_eq!(rate(38.64), "38.6");
        assert_eq!(rate(0.741), "0.74");
        assert_eq!(timecode(4.129), "00:00:04.129");
        assert_eq!(timecode(3725.5), "01:02:05.500");
    }
}
