//! The analysis cache through its public API, on real files and a real database:
//! hits, misses after a file changes, pruning, damage, and several processes at once.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers, like the tests, fail by panicking"
)]

mod basics;
mod processes;
mod prune;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reel_host::cache::{Cache, Clock, Entry};

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starts at a fixed date (2026-01-01).
    fn new() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(1_767_225_600_000)))
    }

    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst) as u64)
    }
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A file of `len` bytes of a pattern seeded by `seed`.
fn make_file(dir: &Path, name: &str, len: usize, seed: u8) -> PathBuf {
    let path = dir.join(name);
    let data: Vec<u8> = (0..len)
        .map(|i| ((i * 131 + seed as usize * 7) % 251) as u8)
        .collect();
    File::create(&path).unwrap().write_all(&data).unwrap();
    path
}

/// Frame lines that say who wrote them, so a mix of two writers shows.
fn lines(tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"frame":{i},"pts":{:.3},"tag":"{tag}","content_delta":{:.4},"motion":{:.4}}}"#,
                i as f64 / 30.0,
                (i * 7 % 100) as f64 / 3.0,
                (i * 13 % 50) as f64 / 7.0
            )
        })
        .collect()
}

fn summary(tag: &str, n: usize) -> String {
    format!(r#"{{"tag":"{tag}","frames_analyzed":{n},"cuts":[3,9]}}"#)
}

/// Checks that an entry is whole and from one writer: the summary's tag and line
/// count match every line. Returns the tag.
fn check_whole(entry: &Entry) -> Result<String, String> {
    let summary: serde_json::Value =
        serde_json::from_str(entry.summary()).map_err(|e| format!("summary: {e}"))?;
    let tag = summary["tag"].as_str().ok_or("no tag")?.to_string();
    let n = summary["frames_analyzed"].as_u64().ok_or("no count")?;
    if entry.frame_lines() != n {
        return Err(format!(
            "{} lines recorded, summary says {n}",
            entry.frame_lines()
        ));
    }
    let mut count = 0u64;
    for (i, line) in entry.frames().map_err(|e| e.to_string())?.enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("line {i}: {e}: {line}"))?;
        if v["frame"].as_u64() != Some(i as u64) || v["tag"].as_str() != Some(&tag) {
            return Err(format!("line {i} is not from {tag}: {line}"));
        }
        count += 1;
    }
    if count != n {
        return Err(format!("{count} lines, summary says {n}"));
    }
    Ok(tag)
}

fn open(dir: &Path) -> Cache {
    Cache::open(dir).unwrap()
}
