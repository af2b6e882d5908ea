//! Faults and hostile inputs: nothing hangs, nothing crashes, nothing is lost or
//! destroyed.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn reel_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("REEL_CACHE_DIR", dir.join("cache"))
        .output()
        .expect("the reel binary runs")
}

/// Runs `reel` with a deadline: a run that hangs is killed and fails the test.
fn reel_within(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reel"))
        .current_dir(dir)
        .args(args)
        .env("REEL_CACHE_DIR", dir.join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("reel {args:?} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins")
}

fn clip(dir: &Path) -> PathBuf {
    let path = dir.join("clip.mp4");
    let st = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc2=size=160x120:rate=30:duration=3")
        .args(["-pix_fmt", "yuv420p"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    path
}

#[test]
fn a_truncated_plugin_library_is_refused_and_the_others_load() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("plugins");
    std::fs::create_dir(&bad).unwrap();
    let real = std::fs::read(plugins_dir().join("libreel_plugin_motion.so")).unwrap();
    std::fs::write(bad.join("libreel_plugin_broken.so"), &real[..100_000]).unwrap();
    let d = bad.to_str().unwrap();
    let out = reel_in(
        dir.path(),
        &["plugins", "list", "--plugin-dir", d, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let broken = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["path"]
                .as_str()
                .unwrap()
                .ends_with("libreel_plugin_broken.so")
        })
        .unwrap()
        .clone();
    assert_eq!(broken["status"], "refused");
    assert!(
        broken["error"].as_str().unwrap().contains("truncated"),
        "{broken}"
    );
    let out = reel_in(
        dir.path(),
        &[
            "analyze",
            "synthetic:scenes?frames=30&scenes=1",
            "--plugin-dir",
            d,
            "--plugin",
            "overlay",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = reel_in(
        dir.path(),
        &[
            "demo",
            "--json",
            "--input",
            "synthetic:scenes?width=160&height=90&frames=60&scenes=2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn settings_files_must_be_small_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let limit = Duration::from_secs(20);
    let out = reel_within(
        dir.path(),
        &["--config", fifo.to_str().unwrap(), "system"],
        limit,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    let out = reel_within(
        dir.path(),
        &[
            "analyze",
            "synthetic:scenes?frames=30&scenes=1",
            "--plugin",
            "motion:@/dev/zero",
        ],
        limit,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    let big = dir.path().join("big.toml");
    std::fs::write(&big, format!("# {}\n", "x".repeat(2 << 20))).unwrap();
    let out = reel_within(
        dir.path(),
        &["--config", big.to_str().unwrap(), "system"],
        limit,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
}

/// Runs `reel args` in a shell where files may not grow past `blocks` × 512 bytes
/// (a full disk, as far as the file is concerned).
fn with_file_size_limit(dir: &Path, blocks: u32, args: &[&str]) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    Command::new("sh")
        .current_dir(dir)
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec '{}' {}",
            env!("CARGO_BIN_EXE_reel"),
            quoted.join(" ")
        ))
        .env("REEL_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap()
}

fn assert_whole_lines(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a half line stayed"
    );
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
    text.lines().count()
}

#[test]
fn a_full_disk_leaves_only_whole_lines_and_a_full_cache_is_only_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let v = clip(dir.path());
    let v = v.to_str().unwrap();
    let frames = dir.path().join("frames.jsonl");
    let f = frames.to_str().unwrap();
    // The lines stop at the limit; the file holds whole lines only.
    let out = with_file_size_limit(dir.path(), 8, &["analyze", v, "--no-cache", "--out", f]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let n = assert_whole_lines(&frames);
    assert!(n > 0 && n < 90, "{n} lines");
    // A cache hit written to the same full disk: the same.
    let out = reel_in(dir.path(), &["analyze", v, "--json"]);
    assert_eq!(json(&out)["cache"], "miss");
    let out = with_file_size_limit(dir.path(), 8, &["analyze", v, "--out", f]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(assert_whole_lines(&frames) < 90);
    // A cache that cannot grow: the run succeeds, with every line, and says why
    // nothing was stored.
    let all = dir.path().join("all.jsonl");
    let out = with_file_size_limit(
        dir.path(),
        64,
        &[
            "--cache-dir",
            "small-cache",
            "analyze",
            v,
            "--json",
            "--out",
            all.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["cache"], "miss");
    assert!(
        stderr(&out).contains("could not be stored in the cache"),
        "{}",
        stderr(&out)
    );
    assert_eq!(assert_whole_lines(&all), 90);
}

fn sql(db: &Path, statement: &str) {
    let st = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
        .arg(db)
        .arg(statement)
        .status()
        .unwrap();
    assert!(st.success(), "{statement}");
}

#[test]
fn an_edited_or_damaged_cache_is_never_served_and_clear_always_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let v = clip(dir.path());
    let v = v.to_str().unwrap();
    let db = dir.path().join("cache/cache.sqlite3");
    let first = json(&reel_in(dir.path(), &["analyze", v, "--json"]));
    assert_eq!(first["cache"], "miss");
    assert_eq!(
        json(&reel_in(dir.path(), &["analyze", v, "--json"]))["cache"],
        "hit"
    );
    // One byte of the summary edited: a miss, the entry dropped, the right result.
    sql(
        &db,
        "UPDATE entries SET summary = replace(summary, '\"frames\":90', '\"frames\":91');",
    );
    let again = json(&reel_in(dir.path(), &["analyze", v, "--json"]));
    assert_eq!(again["cache"], "miss");
    assert_eq!(again["frames"], 90);
    // Pages zeroed: analyze runs without the cache, with one warning, and stores
    // nothing; clear recovers.
    assert_eq!(
        json(&reel_in(dir.path(), &["analyze", v, "--json"]))["cache"],
        "hit"
    );
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 4096, "{} bytes", bytes.len());
    bytes[4096..].fill(0);
    std::fs::write(&db, &bytes).unwrap();
    let out = reel_in(dir.path(), &["analyze", v, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["frames"], 90);
    assert_eq!(json(&out)["cache"], "off");
    assert_eq!(stderr(&out).matches("WARN").count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    let out = reel_in(dir.path(), &["cache", "clear"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        json(&reel_in(dir.path(), &["analyze", v, "--json"]))["cache"],
        "miss"
    );
    // A dropped table: analyze runs without the cache (a warning), clear recovers.
    sql(&db, "DROP TABLE frames;");
    let out = reel_in(dir.path(), &["analyze", v, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["frames"], 90);
    let out = reel_in(dir.path(), &["cache", "clear"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        json(&reel_in(dir.path(), &["analyze", v, "--json"]))["cache"],
        "miss"
    );
    assert_eq!(
        json(&reel_in(dir.path(), &["analyze", v, "--json"]))["cache"],
        "hit"
    );
}

#[test]
fn an_output_that_is_the_input_or_the_cache_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = clip(dir.path());
    let before = std::fs::read(&v).unwrap();
    let vs = v.to_str().unwrap();
    // Warm the cache so that its database exists.
    assert!(
        reel_in(dir.path(), &["analyze", vs, "--json"])
            .status
            .success()
    );
    let db = dir.path().join("cache/cache.sqlite3");
    let dbs = db.to_str().unwrap();
    for args in [
        vec!["analyze", vs, "--out", vs],
        vec!["analyze", "clip.mp4", "--summary", "./clip.mp4"],
        vec!["analyze", vs, "--no-cache", "--out-video", vs],
        vec!["analyze", vs, "--out", dbs],
    ] {
        let out = reel_in(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("would destroy"), "{}", stderr(&out));
    }
    assert_eq!(std::fs::read(&v).unwrap(), before, "the input is untouched");
    assert_eq!(
        json(&reel_in(dir.path(), &["analyze", vs, "--json"]))["cache"],
        "hit"
    );
}
