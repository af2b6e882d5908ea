//! Running a batch: the plan (names over the whole list, this shard's share),
//! done inputs skipped, the rest probed concurrently and ordered longest first,
//! `jobs` workers taking the next input as soon as they are free, each input
//! attempted up to `retries + 1` times with a growing wait between attempts, its
//! outputs renamed into place when whole and its manifest line appended.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reel_decode::DecodeOptions;
use reel_sched::CancelToken;
use serde::{Deserialize, Serialize};

use super::BatchError;
use super::layout::{self, BatchInput, InputStatus, Layout, Manifest, ManifestRecord};
use super::shard::{self, Shard, ShardBy, ShardSource};
use crate::job::{CacheStatus, JobError, JobIo, JobSpec, JobSummary, PoolSummary, Resources};

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Inputs processed at once.
    pub jobs: usize,
    /// Attempts after the first for an input that fails.
    pub retries: u32,
    /// The wait before the first retry; it doubles for each one after.
    pub retry_delay: Duration,
    /// An attempt that delivers no frame for this long is stopped, and fails.
    pub stall_timeout: Duration,
    /// This worker's shard.
    pub shard: Shard,
    /// Where the shard came from.
    pub shard_source: ShardSource,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            jobs: 1,
            retries: 2,
            retry_delay: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(120),
            shard: Shard::ALL,
            shard_source: ShardSource::None,
        }
    }
}

/// The batch's figures as it runs, for a progress bar (every field can be read
/// at any time from another thread).
#[derive(Debug, Default)]
pub struct BatchProgress {
    /// Inputs in this shard.
    pub total: AtomicU64,
    /// Inputs done in this run.
    pub done: AtomicU64,
    /// Inputs found done by an earlier run.
    pub skipped: AtomicU64,
    /// Inputs whose every attempt failed.
    pub failed: AtomicU64,
    /// Attempts under way.
    pub running: AtomicU64,
    /// Result lines written so far, over every job.
    pub frames: AtomicU64,
    /// Attempts that failed and were tried again.
    pub retries: AtomicU64,
}

impl BatchProgress {
    /// Inputs finished (done, skipped or failed).
    pub fn finished(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
            + self.skipped.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
    }
}

/// One attempt at an input, as a [`Runner`] sees it.
#[derive(Debug)]
pub struct Attempt<'a> {
    /// 1 for the first attempt.
    pub number: u32,
    /// The batch's cancel token: a runner stops when it is cancelled.
    pub cancel: &'a CancelToken,
    /// An attempt that delivers no frame for this long must stop and fail.
    pub stall_timeout: Duration,
    frames: &'a AtomicU64,
}

impl Attempt<'_> {
    /// Counts `n` more result lines in the batch's progress.
    pub fn add_frames(&self, n: u64) {
        self.frames.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why an attempt did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// It failed; another attempt may succeed (a decoder that died, a stall, a
    /// file still being written).
    Failed(String),
    /// It failed in a way no attempt can change (options the input cannot take).
    Permanent(String),
    /// The batch was cancelled.
    Interrupted,
    /// The outputs could not be written: the worker itself cannot go on.
    Output(String),
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Failed(m) | AttemptError::Permanent(m) | AttemptError::Output(m) => {
                f.write_str(m)
            }
            AttemptError::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// Runs one attempt at one input: writes its result lines to `frames` (a
/// temporary file the batch renames when the attempt succeeds) and returns its
/// summary.
pub trait Runner: Sync {
    /// One attempt at `input`.
    fn run(
        &self,
        input: &BatchInput,
        frames: &Path,
        attempt: &Attempt<'_>,
    ) -> Result<JobSummary, AttemptError>;
}

/// The runner of a batch in one process: each input is `template` with its input
/// changed, started on the shared `resources` (one pool, one model manager, one
/// cache for every job).
#[derive(Debug)]
pub struct InProcess<'r> {
    template: JobSpec,
    resources: &'r Resources,
}

impl<'r> InProcess<'r> {
    /// Jobs made from `template`, run on `resources`.
    pub fn new(template: JobSpec, resources: &'r Resources) -> Self {
        Self {
            template,
            resources,
        }
    }
}

impl InProcess<'_> {
    /// The resources the jobs run on.
    pub fn resources(&self) -> &Resources {
        self.resources
    }
}

impl Runner for InProcess<'_> {
    fn run(
        &self,
        input: &BatchInput,
        frames: &Path,
        attempt: &Attempt<'_>,
    ) -> Result<JobSummary, AttemptError> {
        let mut spec = self.template.clone();
        spec.input = input.path.display().to_string();
        let file = std::fs::File::create(frames)
            .map_err(|e| AttemptError::Output(format!("creating {}: {e}", frames.display())))?;
        let io = JobIo {
            lines: Some(Box::new(file)),
            cancel: Some(attempt.cancel.clone()),
        };
        let job = crate::job::start(spec, self.resources, io).map_err(|e| match e {
            JobError::Options(m) => AttemptError::Permanent(m),
            other => AttemptError::Failed(other.to_string()),
        })?;
        let mut counted = 0;
        let mut moved = Instant::now();
        let mut stalled = false;
        while !job.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            if let Some(m) = job.metrics()
                && m.frames_out != counted
            {
                attempt.add_frames(m.frames_out.saturating_sub(counted));
                counted = m.frames_out;
                moved = Instant::now();
            }
            if !stalled && moved.elapsed() >= attempt.stall_timeout {
                stalled = true;
                job.cancel();
            }
        }
        let result = job.join();
        if stalled {
            return Err(AttemptError::Failed(format!(
                "stalled: no frame for {} s",
                attempt.stall_timeout.as_secs_f64()
            )));
        }
        match result {
            Ok(summary) => {
                attempt.add_frames(summary.frames.saturating_sub(counted));
                if summary.interrupted {
                    return Err(AttemptError::Interrupted);
                }
                Ok(summary)
            }
            Err(e) => Err(AttemptError::Failed(e.to_string())),
        }
    }
}

/// An input that failed, in the batch summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The canonical path.
    pub input: String,
    /// The last attempt's error.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
}

/// What a batch (one shard of it) did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchReport {
    /// The output folder.
    pub out_dir: String,
    /// This worker's shard, `K/N`.
    pub shard: String,
    /// Where the shard came from.
    pub shard_source: ShardSource,
    /// Inputs in the whole list, before sharding.
    pub inputs_total: u64,
    /// Inputs in this shard.
    pub inputs: u64,
    /// Inputs done in this run.
    pub done: u64,
    /// Inputs found done by an earlier run.
    pub skipped: u64,
    /// Inputs whose every attempt failed.
    pub failed: u64,
    /// Inputs left because the batch was interrupted.
    pub not_run: u64,
    /// Done inputs the analysis cache answered.
    pub cache_hits: u64,
    /// Attempts that failed and were tried again.
    pub retries: u64,
    /// Inputs processed at once, at most.
    pub jobs: usize,
    /// The most attempts that were under way at once.
    pub peak_running: usize,
    /// Result lines written.
    pub frames: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Result lines per second of wall-clock time.
    pub fps: f64,
    /// Inputs done per minute of wall-clock time.
    pub videos_per_min: f64,
    /// Peak resident set of this process, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The one frame pool every job of the batch took its frames from (absent when
    /// each input ran in its own process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSummary>,
    /// True when the batch was stopped before the end.
    pub interrupted: bool,
    /// The inputs that failed.
    pub failures: Vec<Failure>,
}

/// This shard's inputs among `all` (the whole list: sorted, canonical, without
/// duplicates), each with its output name (names are chosen over the whole list,
/// so every shard names an input the same way).
pub fn plan(all: &[PathBuf], shard: Shard, by: ShardBy) -> Vec<BatchInput> {
    let named = layout::names(all);
    let mine: std::collections::HashSet<PathBuf> =
        shard::select(all, shard, by).into_iter().collect();
    named
        .into_iter()
        .filter(|i| mine.contains(&i.path))
        .collect()
}

/// Runs `inputs` (a [`plan`]) into `layout` with `runner`, `opts.jobs` at a time,
/// updating `progress` as it goes, until done or `cancel` is cancelled (inputs
/// under way are then stopped and left to a rerun). Failed inputs are recorded in
/// the manifest and the report; an error is only what stops the worker itself
/// (the folder or the manifest cannot be written). `inputs_total` is the whole
/// list's length, for the report.
pub fn run(
    inputs: Vec<BatchInput>,
    inputs_total: u64,
    layout: &Layout,
    runner: &dyn Runner,
    opts: &BatchOptions,
    progress: &BatchProgress,
    cancel: &CancelToken,
) -> Result<BatchReport, BatchError> {
    let started = Instant::now();
    let shard_label = opts.shard.to_string();
    progress.total.store(inputs.len() as u64, Ordering::Relaxed);
    let manifest = Mutex::new(Manifest::open(&layout.manifest(opts.shard))?);
    let (done, todo): (Vec<BatchInput>, Vec<BatchInput>) =
        inputs.iter().cloned().partition(|i| layout.is_done(i));
    progress.skipped.store(done.len() as u64, Ordering::Relaxed);
    let host = hostname();
    recover_lines(
        &mut lock(&manifest),
        layout,
        &done,
        &shard_label,
        &host,
        &layout.manifest(opts.shard),
    )?;
    let queue = Mutex::new(VecDeque::from(longest_first(todo, opts.jobs.max(2))));
    let state = Shared {
        layout,
        runner,
        opts,
        progress,
        cancel,
        manifest: &manifest,
        shard: &shard_label,
        host: &host,
        running: AtomicUsize::new(0),
        peak_running: AtomicUsize::new(0),
        failures: Mutex::new(Vec::new()),
        cache_hits: AtomicU64::new(0),
        fatal: Mutex::new(None),
    };
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    if cancel.is_cancelled() || lock(&state.fatal).is_some() {
                        return;
                    }
                    let Some(input) = lock(&queue).pop_front() else {
                        return;
                    };
                    if let Err(e) = state.process(&input) {
                        lock(&state.fatal).get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = lock(&state.fatal).take() {
        return Err(e);
    }
    let not_run = lock(&queue).len() as u64;
    let wall_s = started.elapsed().as_secs_f64();
    let done_now = progress.done.load(Ordering::Relaxed);
    let frames = progress.frames.load(Ordering::Relaxed);
    let mut failures = std::mem::take(&mut *lock(&state.failures));
    failures.sort_by(|a, b| a.input.cmp(&b.input));
    let report = BatchReport {
        out_dir: layout.dir().display().to_string(),
        shard: shard_label.clone(),
        shard_source: opts.shard_source,
        inputs_total,
        inputs: inputs.len() as u64,
        done: done_now,
        skipped: progress.skipped.load(Ordering::Relaxed),
        failed: progress.failed.load(Ordering::Relaxed),
        not_run: not_run + (inputs.len() as u64).saturating_sub(progress.finished() + not_run),
        cache_hits: state.cache_hits.load(Ordering::Relaxed),
        retries: progress.retries.load(Ordering::Relaxed),
        jobs: opts.jobs.max(1),
        peak_running: state.peak_running.load(Ordering::Relaxed),
        frames,
        wall_s,
        fps: if wall_s > 0.0 {
            frames as f64 / wall_s
        } else {
            0.0
        },
        videos_per_min: if wall_s > 0.0 {
            done_now as f64 * 60.0 / wall_s
        } else {
            0.0
        },
        peak_rss_bytes: reel_pool::peak_rss_bytes(),
        pool: None,
        interrupted: cancel.is_cancelled(),
        failures,
    };
    Ok(report)
}

/// Writes the shard's batch summary into the folder (whole, under a temporary
/// name first).
pub fn write_report(layout: &Layout, shard: Shard, report: &BatchReport) -> Result<(), BatchError> {
    let path = layout.batch_summary(shard);
    let mut text = serde_json::to_vec_pretty(report)
        .map_err(|e| BatchError::io(&path, "writing", std::io::Error::other(e)))?;
    text.push(b'\n');
    Layout::write_whole(&path, &text)
}

struct Shared<'a> {
    layout: &'a Layout,
    runner: &'a dyn Runner,
    opts: &'a BatchOptions,
    progress: &'a BatchProgress,
    cancel: &'a CancelToken,
    manifest: &'a Mutex<Manifest>,
    shard: &'a str,
    host: &'a str,
    running: AtomicUsize,
    peak_running: AtomicUsize,
    failures: Mutex<Vec<Failure>>,
    cache_hits: AtomicU64,
    fatal: Mutex<Option<BatchError>>,
}

impl Shared<'_> {
    /// Every attempt at one input, then its outputs and its manifest line.
    fn process(&self, input: &BatchInput) -> Result<(), BatchError> {
        let started = Instant::now();
        let frames_path = self.layout.frames(&input.name);
        let summary_path = self.layout.summary(&input.name);
        let part = Layout::part(&frames_path);
        // Not done (or changed since): the old summary goes first, so that the
        // folder never says done for what is being redone.
        remove_if_there(&summary_path)?;
        let mut last_error = String::new();
        let mut attempts = 0;
        // A FIFO, a device or a socket could block a reader for ever (a probe
        // included, which no stall timeout covers): refused, not attempted.
        let refused = not_a_file(&input.path);
        let tries = match &refused {
            Some(why) => {
                last_error.clone_from(why);
                attempts = 1;
                0
            }
            None => self.opts.retries.saturating_add(1),
        };
        for number in 1..=tries {
            if self.cancel.is_cancelled() {
                remove_if_there(&part)?;
                return Ok(());
            }
            attempts = number;
            let attempt = Attempt {
                number,
                cancel: self.cancel,
                stall_timeout: self.opts.stall_timeout,
                frames: &self.progress.frames,
            };
            let now = self.running.fetch_add(1, Ordering::Relaxed) + 1;
            self.peak_running.fetch_max(now, Ordering::Relaxed);
            self.progress.running.fetch_add(1, Ordering::Relaxed);
            let result = self.runner.run(input, &part, &attempt);
            self.running.fetch_sub(1, Ordering::Relaxed);
            self.progress.running.fetch_sub(1, Ordering::Relaxed);
            match result {
                Ok(summary) => {
                    std::fs::rename(&part, &frames_path)
                        .map_err(|e| BatchError::io(&frames_path, "renaming into", e))?;
                    let mut text = serde_json::to_vec_pretty(&summary).map_err(|e| {
                        BatchError::io(&summary_path, "writing", std::io::Error::other(e))
                    })?;
                    text.push(b'\n');
                    Layout::write_whole(&summary_path, &text)?;
                    if summary.cache == CacheStatus::Hit {
                        self.cache_hits.fetch_add(1, Ordering::Relaxed);
                    }
                    self.record(ManifestRecord {
                        input: input.path.display().to_string(),
                        name: input.name.clone(),
                        status: InputStatus::Done,
                        error: None,
                        attempts,
                        wall_s: started.elapsed().as_secs_f64(),
                        frames: summary.frames,
                        cache: Some(cache_name(summary.cache).to_string()),
                        shard: self.shard.to_string(),
                        host: self.host.to_string(),
                        finished_at: unix_now(),
                    })?;
                    self.progress.done.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(AttemptError::Interrupted) => {
                    remove_if_there(&part)?;
                    return Ok(());
                }
                Err(AttemptError::Output(m)) => {
                    remove_if_there(&part)?;
                    return Err(BatchError::io(
                        self.layout.dir(),
                        "writing the outputs in",
                        std::io::Error::other(m),
                    ));
                }
                Err(AttemptError::Permanent(m)) => {
                    last_error = m;
                    break;
                }
                Err(AttemptError::Failed(m)) => {
                    last_error = m;
                    if number <= self.opts.retries {
                        let wait = self
                            .opts
                            .retry_delay
                            .saturating_mul(1 << (number - 1).min(5))
                            .min(Duration::from_secs(60));
                        tracing::warn!(
                            "{}: attempt {number} failed: {last_error}; retrying in {:.1} s",
                            input.path.display(),
                            wait.as_secs_f64()
                        );
                        self.progress.retries.fetch_add(1, Ordering::Relaxed);
                        if !self.wait(wait) {
                            remove_if_there(&part)?;
                            return Ok(());
                        }
                    }
                }
            }
        }
        remove_if_there(&part)?;
        remove_if_there(&frames_path)?;
        tracing::warn!("{}: failed: {last_error}", input.path.display());
        self.record(ManifestRecord {
            input: input.path.display().to_string(),
            name: input.name.clone(),
            status: InputStatus::Failed,
            error: Some(last_error.clone()),
            attempts,
            wall_s: started.elapsed().as_secs_f64(),
            frames: 0,
            cache: None,
            shard: self.shard.to_string(),
            host: self.host.to_string(),
            finished_at: unix_now(),
        })?;
        lock(&self.failures).push(Failure {
            input: input.path.display().to_string(),
            error: last_error,
            attempts,
        });
        self.progress.failed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn record(&self, record: ManifestRecord) -> Result<(), BatchError> {
        lock(self.manifest).append(&record)
    }

    /// Waits `d` unless the batch is cancelled first (then false).
    fn wait(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.cancel.is_cancelled() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        !self.cancel.is_cancelled()
    }
}

/// Appends a done line for each input of `done` that the shard's manifest (at
/// `path`) does not record as done: a worker killed between writing an input's
/// summary and appending its line leaves it done with no line, and a rerun skips
/// it, so the line is made here from the summary (one attempt, the summary's wall
/// time, frames and cache status).
fn recover_lines(
    manifest: &mut Manifest,
    layout: &Layout,
    done: &[BatchInput],
    shard: &str,
    host: &str,
    path: &Path,
) -> Result<(), BatchError> {
    if done.is_empty() {
        return Ok(());
    }
    let recorded: std::collections::HashSet<String> = layout::read_manifest(path)?
        .into_iter()
        .filter(|r| r.status == InputStatus::Done)
        .map(|r| r.input)
        .collect();
    #[derive(Deserialize)]
    struct Done {
        #[serde(default)]
        frames: u64,
        #[serde(default)]
        wall_s: f64,
        #[serde(default)]
        cache: Option<String>,
    }
    for input in done {
        let name = input.path.display().to_string();
        if recorded.contains(&name) {
            continue;
        }
        let summary_path = layout.summary(&input.name);
        let summary: Done = std::fs::read(&summary_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Done {
                frames: 0,
                wall_s: 0.0,
                cache: None,
            });
        let finished_at = std::fs::metadata(&summary_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(unix_now, |d| d.as_secs_f64());
        tracing::info!("{name}: done by an earlier run that left no manifest line; recording it");
        manifest.append(&ManifestRecord {
            input: name,
            name: input.name.clone(),
            status: InputStatus::Done,
            error: None,
            attempts: 1,
            wall_s: summary.wall_s,
            frames: summary.frames,
            cache: summary.cache,
            shard: shard.to_string(),
            host: host.to_string(),
            finished_at,
        })?;
    }
    Ok(())
}

/// `todo` ordered by the work each holds (frames × pixels, from probes made
/// `threads` at a time), the largest first; inputs that cannot be probed go last.
fn longest_first(todo: Vec<BatchInput>, threads: usize) -> Vec<BatchInput> {
    let next = AtomicUsize::new(0);
    let weights: Vec<AtomicU64> = todo.iter().map(|_| AtomicU64::new(0)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, 8).min(todo.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = todo.get(i) else { return };
                    weights[i].store(work_of(&input.path), Ordering::Relaxed);
                }
            });
        }
    });
    let mut weighted: Vec<(u64, BatchInput)> = todo
        .into_iter()
        .zip(weights)
        .map(|(input, w)| (w.into_inner(), input))
        .collect();
    weighted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.path.cmp(&b.1.path)));
    weighted.into_iter().map(|(_, i)| i).collect()
}

/// Why `path` is not a file a batch reads (a FIFO, a socket, a device, a
/// directory), or `None` for a regular file, or a missing one (attempted: it may
/// appear before a retry).
fn not_a_file(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return None;
    }
    let kind = if meta.is_dir() {
        "a directory"
    } else {
        special_kind(&meta.file_type())
    };
    Some(format!(
        "{}: not a regular file but {kind}: a batch reads video files",
        path.display()
    ))
}

#[cfg(unix)]
fn special_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Frames × pixels of `path`, from its probe (0 when it cannot be probed, and
/// without a probe when it is no regular file).
fn work_of(path: &Path) -> u64 {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return 0;
    }
    let Ok(info) = reel_decode::probe(&path.display().to_string(), &DecodeOptions::default())
    else {
        return 0;
    };
    let frames = info.frames.unwrap_or_else(|| {
        info.duration_s
            .map(|d| d * info.fps)
            .filter(|n| n.is_finite() && *n > 0.0)
            .map_or(1, |n| n as u64)
    });
    frames.max(1) * u64::from(info.width.max(1)) * u64::from(info.height.max(1))
}

fn cache_name(c: CacheStatus) -> &'static str {
    match c {
        CacheStatus::Hit => "hit",
        CacheStatus::Miss => "miss",
        CacheStatus::Off => "off",
    }
}

fn remove_if_there(path: &Path) -> Result<(), BatchError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BatchError::io(path, "removing", e)),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name (for the manifest), or empty.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runner that must not be called: every input is done already.
    struct Untouched;

    impl Runner for Untouched {
        fn run(
            &self,
            input: &BatchInput,
            _frames: &Path,
            _attempt: &Attempt<'_>,
        ) -> Result<JobSummary, AttemptError> {
            panic!("{} is done and was run again", input.path.display())
        }
    }

    #[test]
    fn a_done_input_without_its_manifest_line_gets_one_from_its_summary() {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("a.mp4");
        std::fs::write(&video, b"video").unwrap();
        let layout = Layout::create(&dir.path().join("out")).unwrap();
        let input = BatchInput {
            path: video.clone(),
            name: "a".into(),
        };
        // What a worker killed after the summary and before the line leaves.
        std::fs::write(layout.frames("a"), b"{\"frame\":0}\n").unwrap();
        let summary = serde_json::json!({
            "input": video.display().to_string(),
            "frames": 7,
            "wall_s": 0.25,
            "cache": "miss",
        });
        std::fs::write(layout.summary("a"), summary.to_string()).unwrap();
        let opts = BatchOptions::default();
        for _ in 0..2 {
            let report = run(
                vec![input.clone()],
                1,
                &layout,
                &Untouched,
                &opts,
                &BatchProgress::default(),
                &CancelToken::new(),
            )
            .unwrap();
            assert_eq!((report.skipped, report.done), (1, 0));
            let lines = layout::read_manifest(&layout.manifest(Shard::ALL)).unwrap();
            assert_eq!(lines.len(), 1, "one line, not one per rerun: {lines:?}");
            let line = &lines[0];
            assert_eq!(line.status, InputStatus::Done);
            assert_eq!((line.frames, line.wall_s), (7, 0.25));
            assert_eq!(line.cache.as_deref(), Some("miss"));
            assert_eq!(line.input, video.display().to_string());
        }
    }
}
