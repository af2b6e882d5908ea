//! `cargo xtask bench batch`: many short videos, one after another or side by
//! side, four ways, in the same run:
//!
//! - `reel batch DIR --jobs auto` (one process, one pool budget for every job);
//! - a shell loop of `reel analyze`, one video at a time;
//! - `reel analyze` under `xargs -P <cores>`;
//! - PySceneDetect under `xargs -P <cores>` (when installed).
//!
//! Each is timed as a whole (wall clock, process start included) and its peak
//! resident memory is the largest of its processes (`wait4`'s figure for the
//! outer process, which covers every descendant it waited for). The batch's
//! memory is held against its pool's peak (within its budget by construction)
//! plus, per job, what one `reel analyze` of the loop held beyond its own pool
//! (its decoder and the rest of a process).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use serde_json::Value;

use crate::pyscenedetect;
use crate::video::{self, MIN_SCENE_LEN};

/// The bench's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the JSON report goes.
    pub out: PathBuf,
    /// How many videos.
    pub videos: usize,
    /// Measure the debug build (as the tests build it) instead of a release build.
    pub debug: bool,
    /// Leave PySceneDetect out even when it is installed.
    pub skip_pyscenedetect: bool,
}

/// The videos' size.
const SIZE: (u32, u32) = (640, 360);

/// One program's figures.
#[derive(Debug, Serialize)]
struct Contender {
    /// What ran.
    name: &'static str,
    /// The command line (`REEL` is the binary, `DIR` the videos, `OUT` the outputs).
    command: String,
    /// Wall-clock seconds, process starts included.
    wall_s: f64,
    /// Videos per minute of wall-clock time.
    videos_per_min: f64,
    /// Frames per second of wall-clock time (the videos' frames).
    fps: f64,
    /// The largest resident set of its processes, in bytes.
    peak_rss_bytes: u64,
}

/// The report.
#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    /// Videos, their size and total frames.
    videos: usize,
    width: u32,
    height: u32,
    frames: u64,
    /// The build measured (`release` or `debug`).
    profile: &'static str,
    /// Processes run at once by the parallel contenders (`--jobs auto` and
    /// `xargs -P`): the machine's cores.
    cores: usize,
    cpu: Option<String>,
    load_average_before: Option<f64>,
    load_average_after: Option<f64>,
    reel_commit: Option<String>,
    pyscenedetect: Option<pyscenedetect::Versions>,
    contenders: Vec<Contender>,
    /// `reel batch`'s throughput over the loop's (target: at least 1.5).
    batch_speedup_over_loop: f64,
    /// The batch's frame pool budget and its peak use.
    pool_budget_bytes: u64,
    pool_peak_bytes: u64,
    /// Jobs the batch ran at once, at most.
    batch_jobs: u64,
    /// The most one `reel analyze` of the loop held beyond its pool's peak.
    per_process_overhead_bytes: u64,
    /// The pool's peak plus that overhead per job: the batch's peak RSS target
    /// (tighter than the budget, which the pool may never fill).
    rss_bound_bytes: u64,
    /// The pool's budget plus that overhead per job: what the batch promises.
    rss_budget_bound_bytes: u64,
    /// Whether the batch met both targets.
    speedup_target_met: bool,
    rss_target_met: bool,
}

/// Runs the bench, prints its table and writes its report.
pub fn run(opts: &Options) -> Result<()> {
    let dir = crate::target_dir().join("tmp/reel-bench-batch");
    let made = video::mixed(&dir.join("made"), "batch", opts.videos, SIZE, 6)?;
    let corpus = dir.join("videos");
    let _ = std::fs::remove_dir_all(&corpus);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let mut frames = 0u64;
    for v in &made {
        let name = v.path.file_name().context("a video without a name")?;
        std::fs::copy(&v.path, corpus.join(name))
            .with_context(|| format!("copying {}", v.path.display()))?;
        frames += video::count_frames(&v.path)?;
    }
    let bin = if opts.debug {
        let mut build = crate::cargo();
        build.args(["build", "-p", "reel-cli", "--bin", "reel"]);
        crate::with_libav(&mut build);
        crate::step("cargo build -p reel-cli", build)?;
        crate::target_dir().join("debug/reel")
    } else {
        crate::reel::build_release()?
    };
    let pysd = pyscenedetect::versions_for_bench(opts.skip_pyscenedetect);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = crate::bench::load_average();
    let out = |name: &str| -> Result<PathBuf> {
        let d = dir.join("out").join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        Ok(d)
    };
    // Every video in the page cache before the first contender.
    for v in &made {
        std::fs::read(&v.path).with_context(|| format!("reading {}", v.path.display()))?;
    }
    let mut contenders = Vec::new();
    let contender = |name, command: String, m: &Measured| Contender {
        name,
        command,
        wall_s: m.seconds,
        videos_per_min: made.len() as f64 * 60.0 / m.seconds,
        fps: frames as f64 / m.seconds,
        peak_rss_bytes: m.peak_rss_bytes,
    };

    eprintln!("xtask: reel batch --jobs auto over {} videos …", made.len());
    let batch_out = out("batch")?;
    let mut cmd = Command::new(&bin);
    cmd.arg("batch")
        .arg(&corpus)
        .args(["--jobs", "auto", "--no-cache", "--json", "--out-dir"])
        .arg(&batch_out);
    let batch = measure(cmd, &dir.join("batch"))?;
    ensure!(batch.code == Some(0), "reel batch failed: {}", batch.stderr);
    let summary: Value =
        serde_json::from_slice(&batch.stdout).context("reading reel batch's summary")?;
    contenders.push(contender(
        "reel batch",
        "REEL batch DIR --jobs auto --no-cache --json --out-dir OUT".into(),
        &batch,
    ));

    eprintln!("xtask: a shell loop of reel analyze …");
    let loop_out = out("loop")?;
    const LOOP: &str = "for f in \"$1\"/*.mp4; do n=$(basename \"$f\" .mp4); \
         \"$0\" analyze \"$f\" --no-cache --quiet --out \"$2/$n.frames.jsonl\" \
         --summary \"$2/$n.summary.json\" || exit 1; done";
    let mut cmd = Command::new("sh");
    cmd.args(["-c", LOOP]).arg(&bin).arg(&corpus).arg(&loop_out);
    let shell_loop = measure(cmd, &dir.join("loop"))?;
    ensure!(
        shell_loop.code == Some(0),
        "the loop of reel analyze failed: {}",
        shell_loop.stderr
    );
    contenders.push(contender(
        "shell loop of reel analyze",
        format!("sh -c '{LOOP}' REEL DIR OUT"),
        &shell_loop,
    ));

    eprintln!("xtask: reel analyze under xargs -P {cores} …");
    let xargs_out = out("xargs-reel")?;
    let xargs_reel = format!(
        "find \"$1\" -name '*.mp4' -print0 | xargs -0 -n 1 -P {cores} sh -c \
         'n=$(basename \"$2\" .mp4); exec \"$0\" analyze \"$2\" --no-cache --quiet \
         --out \"$1/$n.frames.jsonl\" --summary \"$1/$n.summary.json\"' \"$0\" \"$2\""
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &xargs_reel])
        .arg(&bin)
        .arg(&corpus)
        .arg(&xargs_out);
    let m = measure(cmd, &dir.join("xargs-reel"))?;
    ensure!(
        m.code == Some(0),
        "reel analyze under xargs failed: {}",
        m.stderr
    );
    contenders.push(contender(
        "reel analyze under xargs -P",
        format!("sh -c '{xargs_reel}' REEL DIR OUT"),
        &m,
    ));

    if pysd.is_some() {
        eprintln!("xtask: PySceneDetect under xargs -P {cores} …");
        let pysd_out = out("pyscenedetect")?;
        let xargs_pysd = format!(
            "find \"$0\" -name '*.mp4' -print0 | xargs -0 -P {cores} -I{{}} \
             python3 -m scenedetect -q -i {{}} -o \"$1\" -m {MIN_SCENE_LEN} \
             detect-content list-scenes"
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &xargs_pysd]).arg(&corpus).arg(&pysd_out);
        let m = measure(cmd, &dir.join("pyscenedetect"))?;
        ensure!(
            m.code == Some(0),
            "PySceneDetect under xargs failed: {}",
            m.stderr
        );
        contenders.push(contender(
            "PySceneDetect under xargs -P",
            format!("sh -c '{xargs_pysd}' DIR OUT"),
            &m,
        ));
    }

    // What one reel analyze held beyond its pool: its decoder and the process.
    let mut overhead = 0u64;
    for entry in std::fs::read_dir(&loop_out)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(".summary.json") {
            let s: Value = serde_json::from_slice(&std::fs::read(&path)?)
                .with_context(|| format!("reading {}", path.display()))?;
            let rss = s["peak_rss_bytes"].as_u64().unwrap_or(0);
            let pool = s["pool"]["peak_bytes"].as_u64().unwrap_or(0);
            overhead = overhead.max(rss.saturating_sub(pool));
        }
    }
    let budget = summary["pool"]["budget_bytes"].as_u64().unwrap_or(0);
    let jobs = summary["jobs"].as_u64().unwrap_or(1);
    let pool_peak = summary["pool"]["peak_bytes"].as_u64().unwrap_or(0);
    let bound = pool_peak + jobs * overhead;
    let speedup = contenders[0].videos_per_min / contenders[1].videos_per_min;
    let report = Report {
        bench: "batch",
        videos: made.len(),
        width: SIZE.0,
        height: SIZE.1,
        frames,
        profile: if opts.debug { "debug" } else { "release" },
        cores,
        cpu: crate::bench::cpu_model(),
        load_average_before: load_before,
        load_average_after: crate::bench::load_average(),
        reel_commit: crate::bench::git_commit(),
        pyscenedetect: pysd,
        batch_speedup_over_loop: speedup,
        pool_budget_bytes: budget,
        pool_peak_bytes: pool_peak,
        batch_jobs: jobs,
        per_process_overhead_bytes: overhead,
        rss_bound_bytes: bound,
        rss_budget_bound_bytes: budget + jobs * overhead,
        speedup_target_met: speedup >= 1.5,
        rss_target_met: contenders[0].peak_rss_bytes <= bound,
        contenders,
    };
    print!("{}", table(&report));
    crate::bench::write_json(&opts.out, &report)?;
    println!("report: {}", opts.out.display());
    Ok(())
}

fn table(r: &Report) -> String {
    let mut s = format!(
        "{} videos {}x{}, {} frames, {} build, {} cores (load {:.2} → {:.2})\n",
        r.videos,
        r.width,
        r.height,
        r.frames,
        r.profile,
        r.cores,
        r.load_average_before.unwrap_or(f64::NAN),
        r.load_average_after.unwrap_or(f64::NAN)
    );
    s += &format!(
        "{:<30} {:>9} {:>11} {:>9} {:>12}\n",
        "", "wall s", "videos/min", "fps", "peak RSS MiB"
    );
    for c in &r.contenders {
        s += &format!(
            "{:<30} {:>9.2} {:>11.1} {:>9.0} {:>12.1}\n",
            c.name,
            c.wall_s,
            c.videos_per_min,
            c.fps,
            c.peak_rss_bytes as f64 / f64::from(1 << 20)
        );
    }
    s += &format!(
        "batch over loop: {:.2}x (target 1.5: {}); batch peak RSS within the pool's peak {:.1} MiB \
         (budget {:.1} MiB) + {} x {:.1} MiB = {:.1} MiB: {}\n",
        r.batch_speedup_over_loop,
        if r.speedup_target_met {
            "met"
        } else {
            "missed"
        },
        r.pool_peak_bytes as f64 / f64::from(1 << 20),
        r.pool_budget_bytes as f64 / f64::from(1 << 20),
        r.batch_jobs,
        r.per_process_overhead_bytes as f64 / f64::from(1 << 20),
        r.rss_bound_bytes as f64 / f64::from(1 << 20),
        if r.rss_target_met { "yes" } else { "no" }
    );
    s
}

/// A finished command: wall time, exit code, peak RSS of its processes, output.
struct Measured {
    seconds: f64,
    code: Option<i32>,
    peak_rss_bytes: u64,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `cmd` with its output in `prefix.stdout` and `prefix.stderr`, waiting with
/// `wait4` for the peak resident set of it and its waited-for descendants.
fn measure(mut cmd: Command, prefix: &Path) -> Result<Measured> {
    let stdout_path = prefix.with_extension("stdout");
    let stderr_path = prefix.with_extension("stderr");
    cmd.stdin(Stdio::null())
        .stdout(
            File::create(&stdout_path)
                .with_context(|| format!("creating {}", stdout_path.display()))?,
        )
        .stderr(
            File::create(&stderr_path)
                .with_context(|| format!("creating {}", stderr_path.display()))?,
        );
    let start = Instant::now();
    let child = cmd.spawn().context("starting the command measured")?;
    let pid = libc::pid_t::try_from(child.id()).context("a process id out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, valid when zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet waited for (`child` is never
        // waited on); `status` and `usage` are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            bail!("waiting for process {pid}: {e}");
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    drop(child);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(Measured {
        seconds,
        code,
        // Linux reports kibibytes.
        peak_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        stdout: std::fs::read(&stdout_path)
            .with_context(|| format!("reading {}", stdout_path.display()))?,
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    })
}
