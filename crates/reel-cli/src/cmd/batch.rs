//! `reel batch`: many videos through one engine, `--jobs` at a time over one frame
//! pool budget and one loaded model, resumable (done inputs are skipped), and
//! shardable across machines (`--shard K/N` or the scheduler's environment).
//! `reel batch status DIR` and `reel batch merge DIR` read a batch folder.
//!
//! Exit status: 0 every input of the shard is done; 3 the shard ran to its end
//! but some inputs failed (recorded in the manifest: rerunning will not help);
//! 1 this worker failed (interrupted, the folder unwritable…: run it again);
//! 2 a usage error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reel_decode::HwAccel;
use reel_host::batch::{
    self, Attempt, AttemptError, BatchInput, BatchOptions, BatchProgress, BatchReport, InProcess,
    InputStatus, Layout, ManifestRecord, Runner, Shard, ShardBy,
};
use reel_host::config::Config;
use reel_host::job::{JobIo, JobSpec, JobSummary, PoolSummary, Resources};
use reel_sched::Mode;
use serde::Serialize;

use crate::cmd::analysis_args::AnalysisArgs;
use crate::cmd::analyze::plugin_requests;
use crate::cmd::decode_args::DecodeArgs;
use crate::cmd::model_args::ModelArgs;
use crate::cmd::plugin_args::PluginArgs;
use crate::cmd::values;
use crate::output::{self, Context, UsageError};

/// Exit status of a shard that ran to its end with some inputs failed.
const SOME_INPUTS_FAILED: u8 = 3;

/// Arguments of `reel batch`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    args_override_self = true,
    after_help = "Examples:\n  reel batch footage/ --out-dir results --jobs auto\n  \
    find /data -name '*.mp4' | reel batch --inputs-from - --out-dir /shared/out --shard 2/8\n  \
    reel batch 'clips/*.mkv' --model yolov8n --out-dir dets --json\n  \
    reel batch status results\n  reel batch merge results --json\n\n\
    Exit status: 0 every input of the shard is done; 3 the shard ran to its end but some\n\
    inputs failed (see the manifest); 1 this worker failed (run it again: done inputs are\n\
    skipped); 2 a usage error. Under Slurm, Kubernetes Indexed Jobs or AWS Batch the shard\n\
    comes from SLURM_ARRAY_TASK_ID/COUNT, JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX\n\
    (with --shard-count N)."
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<BatchCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum BatchCommand {
    /// What a batch folder holds: inputs done and failed, per shard.
    Status(DirArgs),
    /// One combined summary of every shard's manifest.
    Merge(DirArgs),
}

#[derive(Debug, clap::Args)]
struct DirArgs {
    /// The batch's output folder.
    dir: PathBuf,
    /// Print as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// `--jobs N|auto`.
#[derive(Debug, Clone, Copy)]
enum Jobs {
    Auto,
    N(usize),
}

fn parse_jobs(s: &str) -> Result<Jobs, String> {
    if s == "auto" {
        return Ok(Jobs::Auto);
    }
    values::at_least_one::<usize>(s)
        .map(Jobs::N)
        .map_err(|e| format!("{e}, nor `auto`"))
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse().map_err(|e: batch::BatchError| e.to_string())
}

fn parse_shard_by(s: &str) -> Result<ShardBy, String> {
    s.parse().map_err(|e: batch::BatchError| e.to_string())
}

fn seconds(s: &str) -> Result<Duration, String> {
    values::positive(s).map(Duration::from_secs_f64)
}

fn parse_isolate(s: &str) -> Result<bool, String> {
    match s {
        "none" => Ok(false),
        "process" => Ok(true),
        _ => Err(format!("unknown isolation `{s}` (none or process)")),
    }
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Videos: files, directories (searched recursively for video files) or glob
    /// patterns.
    inputs: Vec<String>,
    /// Also read inputs from this file, one per line (`-`: standard input).
    #[arg(long, value_name = "LIST")]
    inputs_from: Option<PathBuf>,
    /// Inputs processed at once (auto: one per core).
    #[arg(long, value_name = "N|auto", default_value = "auto", value_parser = parse_jobs)]
    jobs: Jobs,
    /// Where the outputs, the manifest and the batch summary go.
    #[arg(long, value_name = "DIR", default_value = "reel-batch")]
    out_dir: PathBuf,
    /// Take shard K of N (0-based) of the inputs (default: from the scheduler's
    /// environment, else all).
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<Shard>,
    /// The number of shards, where the scheduler gives only an index
    /// (JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX); under Slurm it makes
    /// the task id the shard index as it is, so a task resubmitted alone keeps its
    /// share.
    #[arg(long, value_name = "N", value_parser = values::at_least_one::<u32>, allow_negative_numbers = true)]
    shard_count: Option<u32>,
    /// How inputs are split: hash (of the path: stable whatever the list) or size
    /// (balanced by bytes).
    #[arg(long, value_name = "hash|size", default_value = "hash", value_parser = parse_shard_by)]
    shard_by: ShardBy,
    /// Attempts after the first for an input that fails.
    #[arg(long, value_name = "N", default_value_t = 2)]
    retries: u32,
    /// Seconds before the first retry (doubling for each one after).
    #[arg(long, value_name = "S", default_value = "1", value_parser = seconds)]
    retry_delay: Duration,
    /// An input that delivers no frame for this many seconds is stopped (and
    /// retried).
    #[arg(long, value_name = "S", default_value = "120", value_parser = seconds)]
    stall_timeout: Duration,
    /// none: every input in this process; process: each in a child reel, so that
    /// even a crash takes only that input.
    #[arg(long, value_name = "none|process", default_value = "none", value_parser = parse_isolate, action = clap::ArgAction::Set)]
    isolate: bool,
    #[command(flatten)]
    analysis: AnalysisArgs,
    #[command(flatten)]
    decode: DecodeArgs,
    /// Detect objects with this YOLOv8 model instead of analysing (the detect job).
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    #[command(flatten)]
    model_args: ModelArgs,
    #[command(flatten)]
    plugins: PluginArgs,
    /// Byte budget of the one frame pool every job shares, e.g. 512MiB.
    #[arg(long, value_name = "BYTES", value_parser = values::bytes)]
    max_memory: Option<u64>,
    /// Hardware decoding: auto, none, cuda, vaapi or videotoolbox.
    #[arg(long, value_name = "KIND", default_value = "auto")]
    hwaccel: HwAccel,
    /// Neither read nor store results in the analysis cache.
    #[arg(long)]
    no_cache: bool,
    /// Print the batch summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Run this one input in process and write its lines and summary to the next
    /// two flags (what a parent batch asks of a child with --isolate process).
    #[arg(long, value_name = "INPUT", hide = true)]
    run_one: Option<String>,
    #[arg(long, value_name = "PATH", hide = true)]
    run_one_frames: Option<PathBuf>,
    #[arg(long, value_name = "PATH", hide = true)]
    run_one_summary: Option<PathBuf>,
}

/// Runs `reel batch`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(BatchCommand::Status(d)) => status(ctx, &d),
        Some(BatchCommand::Merge(d)) => merge(ctx, &d),
        None => run_batch(ctx, args.run),
    }
}

fn run_batch(ctx: &Context, args: RunArgs) -> anyhow::Result<ExitCode> {
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
    let plugins = plugin_requests(&args.plugins, &settings.plugin_dirs)?;
    let mut template = match &args.model {
        Some(m) => reel_host::jobs::detect(
            String::new(),
            args.model_args.request(m, settings.batch_size),
            plugins,
        ),
        None => reel_host::jobs::analyze(
            String::new(),
            args.analysis.request(&settings),
            None,
            plugins,
        ),
    };
    template = reel_host::jobs::with_settings(template, &settings, Mode::Quality);
    template.decode.hwaccel = args.hwaccel;
    args.decode.apply(&mut template.decode);
    template.decode.sampling = args.analysis.sampling()?;

    if let Some(input) = &args.run_one {
        return run_one(template, &settings, input, &args);
    }

    let cwd = std::env::current_dir().context("reading the current directory")?;
    let mut items = args.inputs.clone();
    if let Some(list) = &args.inputs_from {
        let text = if list == Path::new("-") {
            std::io::read_to_string(std::io::stdin()).context("reading the inputs from stdin")?
        } else {
            std::fs::read_to_string(list)
                .with_context(|| format!("--inputs-from {}", list.display()))?
        };
        items.extend(batch::inputs::read_list(&text));
    }
    if items.is_empty() {
        return Err(
            UsageError("no inputs: give files, folders, patterns or --inputs-from".into()).into(),
        );
    }
    let all = batch::inputs::expand(&items, &cwd).map_err(|e| UsageError(e.to_string()))?;
    let (shard, source) =
        batch::shard::resolve(args.shard, args.shard_count, |k| std::env::var(k).ok())
            .map_err(|e| UsageError(e.to_string()))?;
    let planned = batch::plan(&all, shard, args.shard_by);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = match args.jobs {
        Jobs::Auto => cores,
        Jobs::N(n) => n,
    }
    .clamp(1, planned.len().max(1));
    // Each job's parallel stages get their share of the cores.
    template.workers = (settings.workers / jobs).max(1);
    let layout = Layout::create(&args.out_dir)?;
    let opts = BatchOptions {
        jobs,
        retries: args.retries,
        retry_delay: args.retry_delay,
        stall_timeout: args.stall_timeout,
        shard,
        shard_source: source,
    };
    let cancel = output::cancel_on_ctrlc("batch");
    let progress = BatchProgress::default();
    let bar = output::progress_bar(ctx, Some(planned.len() as u64), "batch");
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} inputs, {msg}, ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let resources;
    let mut in_process = None;
    let child;
    let runner: &dyn Runner = if args.isolate {
        child = Child::new(settings.pool_budget_bytes / jobs as u64)?;
        &child
    } else {
        let cache = output::open_cache(&settings);
        resources = Resources::new(settings.pool_budget_bytes, cache);
        &*in_process.insert(InProcess::new(template, &resources))
    };
    let report = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            batch::run(
                planned,
                all.len() as u64,
                &layout,
                runner,
                &opts,
                &progress,
                &cancel,
            )
        });
        let started = Instant::now();
        while !worker.is_finished() {
            draw(&bar, &progress, started);
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
        worker
            .join()
            .unwrap_or_else(|_| Err(batch::BatchError::Shard("a batch worker panicked".into())))
    });
    let mut report = report?;
    if let Some(p) = &in_process {
        report.pool = Some(PoolSummary::of(p.resources().pool()));
    }
    batch::write_report(&layout, shard, &report)?;
    if args.json {
        output::print_json(&report)?;
    } else if !ctx.quiet {
        print_report(&report);
    }
    if report.interrupted || report.not_run > 0 {
        eprintln!("error: interrupted; rerun the same command to finish (done inputs are skipped)");
        return Ok(ExitCode::from(1));
    }
    if report.failed > 0 {
        eprintln!(
            "error: {} of {} inputs failed (see {})",
            report.failed,
            report.inputs,
            layout.manifest(shard).display()
        );
        return Ok(ExitCode::from(SOME_INPUTS_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The whole batch's progress: inputs finished of the total (the bar), result
/// lines per second, inputs under way and failed, ETA (the bar's template).
fn draw(bar: &indicatif::ProgressBar, p: &BatchProgress, started: Instant) {
    bar.set_position(p.finished());
    bar.set_message(progress_message(p, started.elapsed().as_secs_f64()));
}

/// The bar's message after `secs` seconds.
fn progress_message(p: &BatchProgress, secs: f64) -> String {
    format!(
        "{} frames/s, {} running, {} failed",
        output::rate(p.frames.load(Ordering::Relaxed) as f64 / secs.max(1e-3)),
        p.running.load(Ordering::Relaxed),
        p.failed.load(Ordering::Relaxed)
    )
}

fn print_report(r: &BatchReport) {
    println!(
        "batch {} (shard {}): {} inputs: {} done, {} already done, {} failed{}",
        r.out_dir,
        r.shard,
        r.inputs,
        r.done,
        r.skipped,
        r.failed,
        if r.not_run > 0 {
            format!(", {} not run", r.not_run)
        } else {
            String::new()
        }
    );
    for f in &r.failures {
        println!(
            "  failed: {} ({} attempts): {}",
            f.input, f.attempts, f.error
        );
    }
    println!(
        "time: {:.2} s, {} videos/min, {} frames/s; {} at once; peak RSS {}",
        r.wall_s,
        output::rate(r.videos_per_min),
        output::rate(r.fps),
        r.peak_running,
        r.peak_rss_bytes
            .map_or_else(|| "unknown".to_string(), output::bytes)
    );
}

/// What a child of `--isolate process` does: one input, in process, its lines and
/// summary where the parent said.
fn run_one(
    template: JobSpec,
    settings: &reel_host::config::Settings,
    input: &str,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let (Some(frames), Some(summary_path)) = (&args.run_one_frames, &args.run_one_summary) else {
        return Err(
            UsageError("--run-one needs --run-one-frames and --run-one-summary".into()).into(),
        );
    };
    let mut spec = template;
    spec.input = input.to_string();
    let resources = Resources::new(settings.pool_budget_bytes, output::open_cache(settings));
    let file =
        std::fs::File::create(frames).with_context(|| format!("creating {}", frames.display()))?;
    let io = JobIo {
        lines: Some(Box::new(file)),
        cancel: Some(output::cancel_on_ctrlc("job")),
    };
    let summary = reel_host::job::start(spec, &resources, io)
        .and_then(reel_host::job::RunningJob::join)
        .with_context(|| format!("analysing {input}"))?;
    output::write_summary(Some(summary_path), &summary)?;
    if summary.interrupted {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--isolate process`: each attempt is a child `reel` (this program, with this
/// command's own arguments and `--run-one INPUT`), watched for stalls through the
/// growth of its lines file, killed when it stalls or the batch is cancelled.
struct Child {
    exe: PathBuf,
    args: Vec<std::ffi::OsString>,
    budget: u64,
}

impl Child {
    fn new(budget: u64) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the reel program")?;
        Ok(Self {
            exe,
            args: std::env::args_os().skip(1).collect(),
            budget: budget.max(1 << 20),
        })
    }
}

impl Runner for Child {
    fn run(
        &self,
        input: &BatchInput,
        frames: &Path,
        attempt: &Attempt<'_>,
    ) -> Result<JobSummary, AttemptError> {
        let summary_path = frames.with_extension("summary.part");
        let _ = std::fs::remove_file(&summary_path);
        // Ours go before a `--`, after which everything is an input.
        let cut = self
            .args
            .iter()
            .position(|a| a == "--")
            .unwrap_or(self.args.len());
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.args(&self.args[..cut])
            .arg("--quiet")
            .arg("--run-one")
            .arg(&input.path)
            .arg("--run-one-frames")
            .arg(frames)
            .arg("--run-one-summary")
            .arg(&summary_path)
            .args(["--isolate", "none", "--jobs", "1", "--max-memory"])
            .arg(self.budget.to_string())
            .args(&self.args[cut..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| AttemptError::Output(format!("starting {}: {e}", self.exe.display())))?;
        let stderr = child.stderr.take();
        let said = std::thread::spawn(move || {
            stderr
                .map(std::io::read_to_string)
                .and_then(Result::ok)
                .unwrap_or_default()
        });
        let mut size = 0;
        let mut moved = Instant::now();
        let mut why = None;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(e) => {
                    why = Some(AttemptError::Failed(format!(
                        "waiting for the child reel: {e}"
                    )));
                    break None;
                }
            }
            if attempt.cancel.is_cancelled() {
                why = Some(AttemptError::Interrupted);
            } else if moved.elapsed() >= attempt.stall_timeout {
                why = Some(AttemptError::Failed(format!(
                    "stalled: no frame for {} s",
                    attempt.stall_timeout.as_secs_f64()
                )));
            }
            if why.is_some() {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            let now = std::fs::metadata(frames).map_or(0, |m| m.len());
            if now != size {
                size = now;
                moved = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = said.join().unwrap_or_default();
        if let Some(why) = why {
            return Err(why);
        }
        let status =
            status.ok_or_else(|| AttemptError::Failed("the child reel was lost".into()))?;
        if !status.success() {
            let message = stderr
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("error: "))
                .map(str::to_string);
            return Err(AttemptError::Failed(match (message, status.code()) {
                (Some(m), _) => m,
                (None, Some(c)) => format!("the child reel exited with status {c}"),
                (None, None) => {
                    use std::os::unix::process::ExitStatusExt;
                    format!(
                        "the child reel was killed by signal {}",
                        status.signal().unwrap_or(0)
                    )
                }
            }));
        }
        let text = std::fs::read_to_string(&summary_path)
            .map_err(|e| AttemptError::Failed(format!("the child reel left no summary: {e}")))?;
        let _ = std::fs::remove_file(&summary_path);
        let summary: JobSummary = serde_json::from_str(&text)
            .map_err(|e| AttemptError::Failed(format!("the child reel's summary: {e}")))?;
        attempt.add_frames(summary.frames);
        Ok(summary)
    }
}

/// What `status` and `merge` say of a batch folder.
#[derive(Debug, Serialize)]
struct Combined {
    dir: String,
    /// Inputs with a manifest line, each counted once (its latest line).
    inputs: u64,
    done: u64,
    failed: u64,
    /// Result lines of the done inputs.
    frames: u64,
    /// Seconds the inputs took, summed.
    input_s: f64,
    /// Temporary files left by killed runs.
    partial_files: u64,
    shards: Vec<serde_json::Value>,
    failures: Vec<ManifestRecord>,
    /// Every input's latest line (merge only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    records: Vec<ManifestRecord>,
}

fn combine(dir: &Path, with_records: bool) -> anyhow::Result<Combined> {
    let layout = Layout::open(dir)?;
    let mut latest: BTreeMap<String, ManifestRecord> = BTreeMap::new();
    for m in layout.manifests()? {
        for r in batch::layout::read_manifest(&m)? {
            // A done line wins over a failed one; else the later one.
            let keep = match latest.get(&r.input) {
                None => true,
                Some(old) => {
                    (r.status == InputStatus::Done && old.status != InputStatus::Done)
                        || (r.status == old.status && r.finished_at >= old.finished_at)
                }
            };
            if keep {
                latest.insert(r.input.clone(), r);
            }
        }
    }
    let mut shards = Vec::new();
    for s in layout.batch_summaries()? {
        let text =
            std::fs::read_to_string(&s).with_context(|| format!("reading {}", s.display()))?;
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            shards.push(v);
        }
    }
    let done: Vec<&ManifestRecord> = latest
        .values()
        .filter(|r| r.status == InputStatus::Done)
        .collect();
    Ok(Combined {
        dir: dir.display().to_string(),
        inputs: latest.len() as u64,
        done: done.len() as u64,
        failed: (latest.len() - done.len()) as u64,
        frames: done.iter().map(|r| r.frames).sum(),
        input_s: latest.values().map(|r| r.wall_s).sum(),
        partial_files: layout.parts()?.len() as u64,
        shards,
        failures: latest
            .values()
            .filter(|r| r.status == InputStatus::Failed)
            .cloned()
            .collect(),
        records: if with_records {
            latest.into_values().collect()
        } else {
            Vec::new()
        },
    })
}

fn status(ctx: &Context, d: &DirArgs) -> anyhow::Result<ExitCode> {
    let c = combine(&d.dir, false)?;
    if d.json {
        output::print_json(&c)?;
    } else if !ctx.quiet {
        println!(
            "{}: {} inputs recorded: {} done, {} failed; {} partial files",
            c.dir, c.inputs, c.done, c.failed, c.partial_files
        );
        for s in &c.shards {
            println!(
                "  shard {}: {} inputs, {} done, {} already done, {} failed, {} not run",
                s["shard"], s["inputs"], s["done"], s["skipped"], s["failed"], s["not_run"]
            );
        }
        for f in &c.failures {
            println!(
                "  failed: {}: {}",
                f.input,
                f.error.as_deref().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn merge(ctx: &Context, d: &DirArgs) -> anyhow::Result<ExitCode> {
    let c = combine(&d.dir, true)?;
    let path = d.dir.join("merged.json");
    let mut text = serde_json::to_vec_pretty(&c).context("encoding the merged summary")?;
    text.push(b'\n');
    Layout::write_whole(&path, &text)?;
    if d.json {
        output::print_json(&c)?;
    } else if !ctx.quiet {
        println!(
            "{}: {} inputs: {} done, {} failed, {} frames; written to {}",
            c.dir,
            c.inputs,
            c.done,
            c.failed,
            c.frames,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_message_gives_the_rate_those_running_and_the_failures() {
        let p = BatchProgress::default();
        p.frames.store(500, Ordering::Relaxed);
        p.running.store(3, Ordering::Relaxed);
        p.failed.store(2, Ordering::Relaxed);
        let m = progress_message(&p, 2.0);
        assert!(m.contains("frames/s, 3 running, 2 failed"), "{m}");
        assert!(m.starts_with(&output::rate(250.0)), "{m}");
    }
}
