//! `reel-fuzz`: runs the fuzz targets for a given time each and reports.
//!
//! Each target runs in a worker process (this program again, with `--worker`), so
//! that an input which aborts the process (an allocation past the memory bound
//! that cannot fail softly) or hangs it (stopped by a watchdog) is recorded and the
//! target goes on in a new worker for the rest of its time.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use reel_fuzz::engine::{self, Bounds, Stats};
use reel_fuzz::targets::{self, Target};
use serde::Serialize;

const USAGE: &str = "\
usage: reel-fuzz [--seconds N] [--target NAME] [--out FILE] [--crashes DIR] [--seed N]
       reel-fuzz --list

Runs each fuzz target (or the one named) for N seconds (default 10), prints the
executions, executions per second and crashes of each, writes the same as JSON to
FILE (default target/fuzz/report.json) and each crashing input, with its message
beside it (.txt), under DIR (default target/fuzz/crashes). Exits 1 when any target
crashed, 2 on a usage error.

example: reel-fuzz --seconds 60 --target y4m
";

/// A run that has not ended after this long is a hang: its input is saved and the
/// worker stopped.
const HANG: Duration = Duration::from_secs(20);

struct Options {
    seconds: f64,
    target: Option<String>,
    out: PathBuf,
    crashes: PathBuf,
    seed: u64,
    worker: bool,
}

fn usage_error(message: &str) -> ! {
    eprint!("reel-fuzz: {message}\n\n{USAGE}");
    std::process::exit(2);
}

fn parse_args() -> Options {
    let mut opts = Options {
        seconds: 10.0,
        target: None,
        out: PathBuf::from("target/fuzz/report.json"),
        crashes: PathBuf::from("target/fuzz/crashes"),
        seed: 0x5eed,
        worker: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .unwrap_or_else(|| usage_error(&format!("{flag} needs a value")))
        };
        match a.as_str() {
            "--seconds" => {
                let v = value("--seconds");
                opts.seconds = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .unwrap_or_else(|| {
                        usage_error(&format!("--seconds: {v:?} is not a positive number"))
                    });
            }
            "--target" => {
                let v = value("--target");
                if targets::by_name(&v).is_none() {
                    let names: Vec<&str> = targets::all().iter().map(|t| t.name).collect();
                    usage_error(&format!(
                        "--target: no target {v:?} (there are {})",
                        names.join(", ")
                    ));
                }
                opts.target = Some(v);
            }
            "--out" => opts.out = PathBuf::from(value("--out")),
            "--crashes" => opts.crashes = PathBuf::from(value("--crashes")),
            "--seed" => {
                let v = value("--seed");
                opts.seed = v.parse().unwrap_or_else(|_| {
                    usage_error(&format!("--seed: {v:?} is not a whole number"))
                });
            }
            "--worker" => opts.worker = true,
            "--list" => {
                for t in targets::all() {
                    println!("{:<14} {}", t.name, t.about);
                }
                std::process::exit(0);
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => usage_error(&format!("unknown argument {other:?}")),
        }
    }
    opts
}

fn main() -> ExitCode {
    let opts = parse_args();
    if opts.worker {
        return worker(&opts);
    }
    match supervise(&opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("reel-fuzz: {e}");
            ExitCode::from(1)
        }
    }
}

/// The progress file of a worker on `target`: its executions so far.
fn progress_file(crashes: &Path, target: &str) -> PathBuf {
    crashes.join(format!(".{target}.progress"))
}

/// Fuzzes one target in this process and prints its [`Stats`] as JSON.
fn worker(opts: &Options) -> ExitCode {
    let Some(target) = opts.target.as_deref().and_then(targets::by_name) else {
        usage_error("--worker needs --target");
    };
    let progress = progress_file(&opts.crashes, target.name);
    // The watchdog: writes the progress and stops a run that hangs.
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let _ = std::fs::write(&progress, engine::executions().to_string());
            if engine::running_for().is_some_and(|d| d > HANG) {
                engine::save_current("hang", &format!("still running after {} s", HANG.as_secs()));
                let _ = std::fs::write(&progress, engine::executions().to_string());
                std::process::exit(3);
            }
        }
    });
    let result = engine::fuzz(
        &target,
        Duration::from_secs_f64(opts.seconds),
        opts.seed,
        &Bounds::default(),
        &opts.crashes,
    );
    targets::remove_scratch();
    match result {
        Ok(stats) => {
            println!("{}", serde_json::to_string(&stats).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("reel-fuzz: {}: {e}", target.name);
            ExitCode::from(1)
        }
    }
}

/// A crash as the report gives it.
#[derive(Debug, Serialize)]
struct CrashReport {
    kind: String,
    message: String,
    file: PathBuf,
    count: u64,
}

/// One target's figures in the report.
#[derive(Debug, Serialize)]
struct TargetReport {
    target: String,
    executions: u64,
    seconds: f64,
    execs_per_s: f64,
    corpus: usize,
    /// Workers started after one ended abnormally.
    restarts: u32,
    crashes: Vec<CrashReport>,
}

#[derive(Debug, Serialize)]
struct Report {
    seconds_per_target: f64,
    build: &'static str,
    memory_bound_bytes: usize,
    slow_bound_ms: u64,
    hang_bound_ms: u64,
    targets: Vec<TargetReport>,
    crashes: usize,
}

/// Runs every chosen target in workers, prints and writes the report; whether no
/// target crashed.
fn supervise(opts: &Options) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    std::fs::create_dir_all(&opts.crashes)
        .map_err(|e| format!("creating {}: {e}", opts.crashes.display()))?;
    let chosen: Vec<Target> = match &opts.target {
        Some(name) => targets::by_name(name).into_iter().collect(),
        None => targets::all(),
    };
    let mut reports = Vec::new();
    println!(
        "{:<14} {:>11} {:>9} {:>7}",
        "target", "executions", "execs/s", "crashes"
    );
    for target in chosen {
        let report = run_target(&exe, opts, &target)?;
        println!(
            "{:<14} {:>11} {:>9.0} {:>7}",
            report.target,
            report.executions,
            report.execs_per_s,
            report.crashes.len()
        );
        for c in &report.crashes {
            println!(
                "  crash ({}, {}x): {}\n    input: {}",
                c.kind,
                c.count,
                c.message,
                c.file.display()
            );
        }
        reports.push(report);
    }
    let bounds = Bounds::default();
    let crashes = reports.iter().map(|r| r.crashes.len()).sum();
    let report = Report {
        seconds_per_target: opts.seconds,
        build: if cfg!(debug_assertions) {
            "debug (overflow checks on)"
        } else {
            "release"
        },
        memory_bound_bytes: bounds.memory_bytes,
        slow_bound_ms: bounds.slow.as_millis() as u64,
        hang_bound_ms: HANG.as_millis() as u64,
        targets: reports,
        crashes,
    };
    if let Some(dir) = opts.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&opts.out, json + "\n")
        .map_err(|e| format!("writing {}: {e}", opts.out.display()))?;
    println!("report: {}", opts.out.display());
    Ok(crashes == 0)
}

/// Fuzzes `target` for the whole time, in as many workers as it takes.
fn run_target(exe: &Path, opts: &Options, target: &Target) -> Result<TargetReport, String> {
    let started = Instant::now();
    let budget = Duration::from_secs_f64(opts.seconds);
    let mut report = TargetReport {
        target: target.name.to_string(),
        executions: 0,
        seconds: 0.0,
        execs_per_s: 0.0,
        corpus: 0,
        restarts: 0,
        crashes: Vec::new(),
    };
    let progress = progress_file(&opts.crashes, target.name);
    clear_crashes(&opts.crashes, target.name);
    let mut seed = opts.seed;
    loop {
        let left = budget.saturating_sub(started.elapsed());
        let _ = std::fs::remove_file(&progress);
        let out = Command::new(exe)
            .args(["--worker", "--target", target.name, "--seconds"])
            .arg(format!("{:.3}", left.as_secs_f64().max(0.001)))
            .arg("--crashes")
            .arg(&opts.crashes)
            .args(["--seed", &seed.to_string()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("starting a worker for {}: {e}", target.name))?;
        let stats: Option<Stats> = out
            .status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten();
        match stats {
            Some(stats) => {
                report.executions += stats.executions;
                report.corpus = stats.corpus;
                for c in stats.crashes {
                    merge(
                        &mut report.crashes,
                        CrashReport {
                            kind: kind_of(&c.fault),
                            message: c.message,
                            file: c.file,
                            count: c.count,
                        },
                    );
                }
                break;
            }
            None => {
                // The worker died on an input: the file it saved says which.
                report.restarts += 1;
                report.executions += std::fs::read_to_string(&progress)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                let stderr = String::from_utf8_lossy(&out.stderr);
                let (kind, key) = if out.status.code() == Some(3) {
                    ("hang", "hang")
                } else {
                    ("memory", "memory")
                };
                let file = engine::crash_path(&opts.crashes, target.name, key);
                let message = std::fs::read_to_string(file.with_extension("txt"))
                    .map(|m| m.trim().to_string())
                    .unwrap_or_else(|_| {
                        format!(
                            "{}: the worker ended ({}) without saving its input: {}",
                            target.name,
                            out.status,
                            stderr.trim().lines().last().unwrap_or("")
                        )
                    });
                merge(
                    &mut report.crashes,
                    CrashReport {
                        kind: kind.to_string(),
                        message,
                        file,
                        count: 1,
                    },
                );
                seed = seed.wrapping_add(1);
                if started.elapsed() >= budget || report.restarts > 50 {
                    break;
                }
            }
        }
    }
    let _ = std::fs::remove_file(&progress);
    report.seconds = started.elapsed().as_secs_f64();
    report.execs_per_s = report.executions as f64 / report.seconds.max(1e-9);
    Ok(report)
}

/// Removes the crashes a previous run saved for `target`: the report names only
/// this run's.
fn clear_crashes(dir: &Path, target: &str) {
    let prefix = format!("{target}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn kind_of(fault: &engine::Fault) -> String {
    match fault {
        engine::Fault::Panic { .. } => "panic",
        engine::Fault::Memory { .. } => "memory",
        engine::Fault::Slow { .. } => "slow",
    }
    .to_string()
}

/// Adds `crash` to `list`, counting it with one saved in the same file.
fn merge(list: &mut Vec<CrashReport>, crash: CrashReport) {
    match list.iter_mut().find(|c| c.file == crash.file) {
        Some(c) => c.count += crash.count,
        None => list.push(crash),
    }
}
