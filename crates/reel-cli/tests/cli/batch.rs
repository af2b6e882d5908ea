//! `reel batch` end to end over small corpora (160x120 clips of varied lengths with
//! truncated, empty and non-video files): a bad input is recorded while the others
//! go on (in process and each in its own child with `--isolate process`); shards
//! cover every input once whatever the list's order, picked by a flag or each
//! scheduler's variables; a rerun skips what is done and the cache answers a fresh
//! folder byte for byte; SIGKILL at random points leaves nothing partial under a
//! final name; a failed first attempt is retried; four jobs share one pool budget;
//! an input whose frames stop coming is stopped at the stall timeout.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

fn batch(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_reel"))
        .current_dir(dir)
        .arg("batch")
        .args(args)
        .args(["--out-dir", "out", "--retries", "0", "--json", "--no-cache"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let summary = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), summary)
}

#[test]
fn isolated_inputs_fail_alone_and_a_rerun_skips_the_done_ones() {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("ffmpeg")
        .current_dir(dir.path())
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .args([
            "testsrc2=size=160x120:rate=25:duration=2",
            "-c:v",
            "libx264",
        ])
        .arg("good.mp4")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(dir.path().join("bad.mp4"), b"not a video").unwrap();

    let (code, s) = batch(dir.path(), &["good.mp4", "bad.mp4", "--isolate", "process"]);
    assert_eq!(code, Some(3), "some inputs failed: {s}");
    assert_eq!(
        (s["done"].as_u64(), s["failed"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert!(
        s["failures"][0]["input"]
            .as_str()
            .unwrap()
            .ends_with("bad.mp4"),
        "{s}"
    );
    let out = dir.path().join("out");
    let lines = std::fs::read_to_string(out.join("good.frames.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 50);
    assert!(out.join("good.summary.json").is_file());
    assert!(!out.join("bad.summary.json").exists());
    let manifest = std::fs::read_to_string(out.join("manifest.jsonl")).unwrap();
    let statuses: Vec<String> = manifest
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["status"].to_string())
        .collect();
    assert_eq!(statuses.len(), 2, "{manifest}");
    assert!(statuses.contains(&"\"done\"".to_string()), "{manifest}");
    assert!(statuses.contains(&"\"failed\"".to_string()), "{manifest}");

    let (code, s) = batch(dir.path(), &["good.mp4", "bad.mp4", "--isolate", "process"]);
    assert_eq!(code, Some(3), "{s}");
    assert_eq!(
        (s["skipped"].as_u64(), s["failed"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("good.frames.jsonl")).unwrap(),
        lines,
        "a skipped input's outputs are left as they were"
    );

    // Only the good input: every input of the shard done is exit 0.
    let (code, s) = batch(dir.path(), &["good.mp4"]);
    assert_eq!(code, Some(0), "{s}");
}

/// The environment variables through which a scheduler hands a worker its shard:
/// left out of every run here unless a test sets them.
const SCHEDULER_VARS: &[&str] = &[
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "JOB_COMPLETION_INDEX",
    "AWS_BATCH_JOB_ARRAY_INDEX",
];

/// The good videos of [`corpus`]: name, seconds at 25 fps (so frames = 25 × s).
const GOOD: &[(&str, f64)] = &[
    ("a.mp4", 0.4),
    ("b.mp4", 0.8),
    ("c.mkv", 1.2),
    ("d.mp4", 2.0),
    ("e.mp4", 1.6),
];

/// The bad inputs of [`corpus`]: a truncated video, an empty file, a text file.
const BAD: &[&str] = &["truncated.mp4", "empty.mp4", "notes.mp4"];

/// A folder `in/` of small videos of varied lengths (160x120) and bad inputs, and
/// the cache folder `cache/` beside it.
fn corpus() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut cmd = Command::new("ffmpeg");
    cmd.current_dir(&input)
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x120:rate=25:duration=2");
    for (name, seconds) in GOOD {
        cmd.args(["-t", &seconds.to_string(), "-c:v", "libx264", "-g", "10"])
            .arg(name);
    }
    assert!(cmd.status().unwrap().success());
    let whole = std::fs::read(input.join("d.mp4")).unwrap();
    std::fs::write(input.join("truncated.mp4"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(input.join("empty.mp4"), b"").unwrap();
    std::fs::write(input.join("notes.mp4"), b"a list of things, not a video\n").unwrap();
    dir
}

/// Every input of [`corpus`], canonical, sorted.
fn all_inputs(dir: &Path) -> Vec<String> {
    let root = std::fs::canonicalize(dir.join("in")).unwrap();
    let mut all: Vec<String> = GOOD
        .iter()
        .map(|(n, _)| *n)
        .chain(BAD.iter().copied())
        .map(|n| root.join(n).display().to_string())
        .collect();
    all.sort();
    all
}

/// `reel batch ARGS… --json` in `dir` with the cache in `dir/cache` and `env`
/// set (no scheduler variable from outside): its exit status, its summary.
fn batch_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let out = command(dir, args, env).output().unwrap();
    let summary = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), summary)
}

fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reel"));
    cmd.current_dir(dir)
        .arg("batch")
        .args(args)
        .arg("--json")
        .env_remove("RUST_LOG")
        .env("REEL_CACHE_DIR", dir.join("cache"))
        .stdin(Stdio::null());
    for v in SCHEDULER_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The records of every manifest in `out`.
fn manifest_records(out: &Path) -> Vec<Value> {
    let mut records = Vec::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("manifest") && name.ends_with(".jsonl") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{name} ends in a cut line"
            );
            for line in text.lines() {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{name}: a line that is not whole ({e}): {line}"));
                records.push(v);
            }
        }
    }
    records
}

/// The inputs the manifest records of `out` name, sorted (duplicates kept).
fn recorded_inputs(out: &Path) -> Vec<String> {
    let mut inputs: Vec<String> = manifest_records(out)
        .iter()
        .map(|r| r["input"].as_str().unwrap().to_string())
        .collect();
    inputs.sort();
    inputs
}

/// The final-named frames files of `out`: name → bytes.
fn frames_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.starts_with('.') && n.ends_with(".frames.jsonl")
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn shards_cover_every_input_exactly_once_whatever_the_list_order() {
    let dir = corpus();
    let all = all_inputs(dir.path());
    for by in ["hash", "size"] {
        let out = format!("out-{by}");
        let mut total = 0;
        for k in 0..3usize {
            // Each worker is given the list in another order.
            let mut list = all.clone();
            list.rotate_left(k * 3 % all.len());
            if k % 2 == 1 {
                list.reverse();
            }
            let list_path = dir.path().join(format!("list-{by}-{k}.txt"));
            std::fs::write(&list_path, list.join("\n")).unwrap();
            let shard = format!("{k}/3");
            let (code, s) = batch_in(
                dir.path(),
                &[
                    "--inputs-from",
                    list_path.to_str().unwrap(),
                    "--shard",
                    &shard,
                    "--shard-by",
                    by,
                    "--out-dir",
                    &out,
                    "--retries",
                    "0",
                    "--no-cache",
                ],
                &[],
            );
            assert_eq!(s["shard"], shard.as_str(), "{s}");
            assert_eq!(s["inputs_total"], all.len(), "{s}");
            let failed = s["failed"].as_u64().unwrap();
            assert_eq!(code, Some(if failed > 0 { 3 } else { 0 }), "{s}");
            assert_eq!(
                s["done"].as_u64().unwrap() + failed,
                s["inputs"].as_u64().unwrap(),
                "{s}"
            );
            total += s["inputs"].as_u64().unwrap();
        }
        assert_eq!(total, all.len() as u64, "{by}: the shards' sizes add up");
        let out = dir.path().join(&out);
        assert_eq!(
            recorded_inputs(&out),
            all,
            "{by}: every input recorded once, by one shard"
        );
        let merged = Command::new(env!("CARGO_BIN_EXE_reel"))
            .args(["batch", "merge", out.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        assert!(merged.status.success());
        let m: Value = serde_json::from_slice(&merged.stdout).unwrap();
        assert_eq!(
            (
                m["inputs"].as_u64(),
                m["done"].as_u64(),
                m["failed"].as_u64()
            ),
            (
                Some(all.len() as u64),
                Some(GOOD.len() as u64),
                Some(BAD.len() as u64)
            ),
            "{by}: {m}"
        );
        let frames: u64 = GOOD.iter().map(|(_, s)| (s * 25.0).round() as u64).sum();
        assert_eq!(m["frames"], frames, "{by}: {m}");
        for bad in BAD {
            let failure = m["failures"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["input"].as_str().unwrap().ends_with(bad))
                .unwrap_or_else(|| panic!("{bad} is not among the failures: {m}"));
            assert!(
                failure["error"].as_str().unwrap().contains(bad),
                "the error names the input: {failure}"
            );
        }
    }
}

#[test]
fn a_rerun_is_all_skips_and_a_fresh_folder_all_cache_hits_byte_for_byte() {
    let dir = corpus();
    let run = |out: &str| {
        batch_in(
            dir.path(),
            &["in", "--out-dir", out, "--retries", "0", "--jobs", "2"],
            &[],
        )
    };
    let (code, first) = run("out");
    assert_eq!(code, Some(3), "{first}");
    assert_eq!(first["done"], GOOD.len(), "{first}");
    assert_eq!(first["cache_hits"], 0, "{first}");
    let out = dir.path().join("out");
    let written = frames_files(&out);
    assert_eq!(written.len(), GOOD.len());

    let (code, again) = run("out");
    assert_eq!(code, Some(3), "the bad inputs fail again: {again}");
    assert_eq!(
        (again["done"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(GOOD.len() as u64)),
        "{again}"
    );
    assert_eq!(frames_files(&out), written, "skipped outputs are untouched");

    let (code, fresh) = run("fresh");
    assert_eq!(code, Some(3), "{fresh}");
    assert_eq!(
        (fresh["done"].as_u64(), fresh["cache_hits"].as_u64()),
        (Some(GOOD.len() as u64), Some(GOOD.len() as u64)),
        "every good input comes from the cache: {fresh}"
    );
    assert_eq!(
        frames_files(&dir.path().join("fresh")),
        written,
        "the cache gives the same lines, byte for byte"
    );
}

/// What a reader may see in `out` at any moment: final names hold whole outputs
/// only (each frames file as the reference run wrote it, each summary whole JSON
/// of its input), and every manifest line is whole.
fn nothing_partial(out: &Path, reference: &BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in frames_files(out) {
        assert_eq!(
            Some(&bytes),
            reference.get(&name),
            "{name} under its final name differs from a whole run's"
        );
    }
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".summary.json") && !name.starts_with('.') {
            let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name} is not whole: {e}"));
            assert!(v["input"].is_string(), "{name}: {v}");
            let stem = name.trim_end_matches(".summary.json");
            assert!(
                out.join(format!("{stem}.frames.jsonl")).is_file(),
                "{name} is there before its frames"
            );
        }
    }
    manifest_records(out);
}

#[test]
fn sigkill_at_random_points_leaves_nothing_partial_and_a_rerun_completes() {
    let dir = corpus();
    // More inputs, so that most of a run is spent on them rather than starting.
    for copy in 1..4 {
        for (name, _) in GOOD {
            std::fs::copy(
                dir.path().join("in").join(name),
                dir.path().join("in").join(format!("copy{copy}-{name}")),
            )
            .unwrap();
        }
    }
    let good = 4 * GOOD.len();
    let args = |out: &'static str| {
        [
            "in",
            "--out-dir",
            out,
            "--retries",
            "0",
            "--jobs",
            "2",
            "--no-cache",
        ]
    };
    let begun = Instant::now();
    let (code, s) = batch_in(dir.path(), &args("reference"), &[]);
    // How long a whole run takes here: the kills fall anywhere within it.
    let whole = begun.elapsed();
    assert_eq!(code, Some(3), "{s}");
    let reference = frames_files(&dir.path().join("reference"));
    assert_eq!(reference.len(), good);

    // Seeded: the same kill points on every run of the test. Each round starts
    // from an empty folder, is killed twice (the second time while resuming),
    // and then run to its end.
    let mut rng = fastrand::Rng::with_seed(16);
    for round in 0..3 {
        let name: &'static str = ["out-0", "out-1", "out-2"][round];
        let out = dir.path().join(name);
        for kill in 0..2 {
            let mut child = command(dir.path(), &args(name), &[])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(whole.mul_f64(rng.f64()));
            child.kill().unwrap();
            child.wait().unwrap();
            if out.is_dir() {
                nothing_partial(&out, &reference);
            }
            eprintln!(
                "round {round}, kill {kill}: {} of {} frames files",
                frames_files(&out).len(),
                good
            );
        }
        let (code, s) = batch_in(dir.path(), &args(name), &[]);
        assert_eq!(code, Some(3), "{s}");
        assert_eq!(
            s["done"].as_u64().unwrap() + s["skipped"].as_u64().unwrap(),
            good as u64,
            "{s}"
        );
        nothing_partial(&out, &reference);
        assert_eq!(frames_files(&out), reference, "the rerun completes the set");
        let status = Command::new(env!("CARGO_BIN_EXE_reel"))
            .args(["batch", "status", out.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let st: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(
            (st["done"].as_u64(), st["failed"].as_u64()),
            (Some(good as u64), Some(BAD.len() as u64)),
            "every input is in the manifest: {st}"
        );
        assert_eq!(st["partial_files"], 0, "{st}");
    }
}

#[test]
fn a_failure_on_the_first_attempt_is_retried() {
    let dir = corpus();
    // The input is missing at the first attempt and put in place (whole, by a
    // rename) once that attempt has failed; the waits before the retries (1, 2, 4,
    // 8 s) leave time to do so.
    let late = dir.path().join("in/late.mp4");
    let mut child = command(
        dir.path(),
        &[
            late.to_str().unwrap(),
            "--out-dir",
            "out",
            "--retries",
            "4",
            "--retry-delay",
            "1",
            "--no-cache",
        ],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("attempt 1 failed") {
            let part = dir.path().join("in/.late.part");
            std::fs::copy(dir.path().join("in/b.mp4"), &part).unwrap();
            std::fs::rename(&part, &late).unwrap();
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    let s: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {said}{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{s}\n{said}");
    assert_eq!(
        (s["done"].as_u64(), s["failed"].as_u64()),
        (Some(1), Some(0)),
        "{s}"
    );
    assert!(s["retries"].as_u64().unwrap() >= 1, "{s}");
    let records = manifest_records(&dir.path().join("out"));
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["status"], "done");
    assert!(records[0]["attempts"].as_u64().unwrap() >= 2, "{records:?}");
    assert_eq!(records[0]["frames"], 20);
}

#[test]
fn four_jobs_hold_no_more_than_the_one_pool_budget() {
    let dir = corpus();
    // More inputs than jobs: copies of the good videos under other names.
    for (name, _) in GOOD {
        std::fs::copy(
            dir.path().join("in").join(name),
            dir.path().join("in").join(format!("copy-{name}")),
        )
        .unwrap();
    }
    let budget: u64 = 2 << 20;
    let (code, s) = batch_in(
        dir.path(),
        &[
            "in",
            "--out-dir",
            "out",
            "--jobs",
            "4",
            "--retries",
            "0",
            "--max-memory",
            &budget.to_string(),
            "--no-cache",
        ],
        &[],
    );
    assert_eq!(code, Some(3), "{s}");
    assert_eq!(s["done"], 2 * GOOD.len(), "{s}");
    assert_eq!(s["jobs"], 4, "{s}");
    let peak_running = s["peak_running"].as_u64().unwrap();
    assert!((1..=4).contains(&peak_running), "{s}");
    let pool = &s["pool"];
    assert_eq!(
        pool["budget_bytes"], budget,
        "one budget for the batch: {s}"
    );
    let peak = pool["peak_bytes"].as_u64().unwrap();
    assert!(
        peak > 0 && peak <= budget,
        "the pool's peak within its budget: {s}"
    );
    // Every job reports the one pool: the batch's budget, not a share of it.
    let out = dir.path().join("out");
    for (name, _) in GOOD {
        let stem = Path::new(name).file_stem().unwrap().to_string_lossy();
        let summary: Value = serde_json::from_slice(
            &std::fs::read(out.join(format!("{stem}.summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["pool"]["budget_bytes"], budget, "{summary}");
        assert!(summary["pool"]["peak_bytes"].as_u64().unwrap() <= budget);
    }
}

/// A scheduler's case: the output folder, extra flags, the variables set, the
/// shard they pick (of 3), the source the summary names.
type Case<'a> = (
    &'a str,
    &'a [&'a str],
    &'a [(&'a str, &'a str)],
    usize,
    &'a str,
);

#[test]
fn each_schedulers_variables_pick_the_shard() {
    let dir = corpus();
    let common = ["in", "--retries", "0", "--no-cache"];
    let shard_of = |out: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args: Vec<&str> = common.to_vec();
        args.extend(["--out-dir", out]);
        args.extend(extra);
        let (_, s) = batch_in(dir.path(), &args, env);
        (s, recorded_inputs(&dir.path().join(out)))
    };
    let by_flag: Vec<Vec<String>> = (0..3)
        .map(|k| shard_of(&format!("flag-{k}"), &["--shard", &format!("{k}/3")], &[]).1)
        .collect();
    let cases: &[Case] = &[
        (
            "slurm",
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            1,
            "slurm",
        ),
        (
            "slurm-from-1",
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            2,
            "slurm",
        ),
        (
            "kubernetes",
            &["--shard-count", "3"],
            &[("JOB_COMPLETION_INDEX", "2")],
            2,
            "kubernetes",
        ),
        (
            "aws",
            &["--shard-count", "3"],
            &[("AWS_BATCH_JOB_ARRAY_INDEX", "0")],
            0,
            "aws_batch",
        ),
    ];
    for (out, extra, env, k, source) in cases {
        let (s, inputs) = shard_of(out, extra, env);
        assert_eq!(s["shard"], format!("{k}/3"), "{out}: {s}");
        assert_eq!(s["shard_source"], *source, "{out}: {s}");
        assert_eq!(
            inputs, by_flag[*k],
            "{out}: the same inputs as --shard {k}/3"
        );
    }
    // An index without a count is a usage error that says what to add.
    let out = command(dir.path(), &common, &[("JOB_COMPLETION_INDEX", "1")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--shard-count"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_fifo_among_the_inputs_is_refused_at_once_and_the_others_go_on() {
    let dir = corpus();
    let fifo = dir.path().join("in/pipe.mp4");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    // Nothing ever writes to it: reading it would wait for ever.
    let (code, s) = batch_in(
        dir.path(),
        &["in", "--out-dir", "out", "--retries", "0", "--no-cache"],
        &[],
    );
    assert_eq!(code, Some(3), "{s}");
    assert_eq!(s["done"], GOOD.len(), "{s}");
    let failure = s["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["input"].as_str().unwrap().ends_with("pipe.mp4"))
        .unwrap_or_else(|| panic!("the FIFO is not among the failures: {s}"));
    let error = failure["error"].as_str().unwrap();
    assert!(
        error.contains("pipe.mp4") && error.contains("FIFO"),
        "{failure}"
    );
}

#[test]
fn an_input_that_stops_moving_is_stopped_as_stalled() {
    let dir = corpus();
    // A plugin that takes 5 s over each frame of one input: no frame reaches the
    // lines for longer than the stall timeout.
    let slow = dir.path().join("slow");
    std::fs::create_dir_all(&slow).unwrap();
    std::fs::copy(dir.path().join("in/a.mp4"), slow.join("a.mp4")).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugin-fixtures");
    let (code, s) = batch_in(
        dir.path(),
        &[
            "slow",
            "--out-dir",
            "out",
            "--retries",
            "0",
            "--no-cache",
            "--stall-timeout",
            "1",
            "--plugin-dir",
            fixtures.to_str().unwrap(),
            "--plugin",
            r#"faulty:{"sleep_ms":5000}"#,
        ],
        &[],
    );
    assert_eq!(code, Some(3), "{s}");
    assert_eq!(
        (s["done"].as_u64(), s["failed"].as_u64()),
        (Some(0), Some(1)),
        "{s}"
    );
    let error = s["failures"][0]["error"].as_str().unwrap();
    assert!(error.contains("stalled"), "{s}");
    assert!(!dir.path().join("out/a.summary.json").exists());
}
