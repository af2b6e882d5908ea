//! `reel cache stats|prune|clear` and `reel.toml` through the binary. Entries are
//! put in with the library, stamped with chosen times, so ages are deterministic.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers, like the tests, fail by panicking"
)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reel_host::cache::{Cache, Clock, DB_FILE, FileIdentity, PrunePolicy};

const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug)]
struct FixedClock(SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// A scratch place: a cache directory, a working directory and an empty user
/// configuration directory, so nothing of this machine's user leaks in.
struct Scratch {
    root: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        for d in ["cache", "work", "xdg-config", "inputs"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        Self { root }
    }

    fn cache_dir(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// `reel` in the working directory with the cache directory in REEL_CACHE_DIR.
    fn reel(&self, args: &[&str]) -> Output {
        self.command(args)
            .env("REEL_CACHE_DIR", self.cache_dir())
            .output()
            .unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reel"));
        cmd.args(args)
            .current_dir(self.work())
            .env_remove("RUST_LOG")
            .env_remove("REEL_CACHE_DIR")
            .env("XDG_CONFIG_HOME", self.root.path().join("xdg-config"))
            .env("XDG_CACHE_HOME", self.root.path().join("xdg-cache"));
        cmd
    }

    /// Puts an entry of `lines` frame lines for a new input, last used at `when`.
    fn put_at(&self, name: &str, lines: usize, when: SystemTime) -> (FileIdentity, u64) {
        let input = self.root.path().join("inputs").join(name);
        std::fs::write(&input, name.repeat(100)).unwrap();
        let id = FileIdentity::of(&input).unwrap();
        // Seeding must not prune what the test is about to prune.
        let keep_all = PrunePolicy {
            max_bytes: u64::MAX,
            max_age: Duration::MAX,
        };
        let cache = Cache::open_with_clock(self.cache_dir(), Arc::new(FixedClock(when)))
            .unwrap()
            .with_policy(keep_all);
        let frames = (0..lines).map(|i| format!(r#"{{"frame":{i},"name":"{name}"}}"#));
        let out = cache.put(&id, "opts", r#"{"cuts":[]}"#, frames).unwrap();
        (id, out.stored_bytes)
    }

    fn has(&self, id: &FileIdentity) -> bool {
        Cache::open(self.cache_dir())
            .unwrap()
            .get(id, "opts")
            .unwrap()
            .is_some()
    }
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn stats_json_counts_the_entries() {
    let s = Scratch::new();
    let v = json(&s.reel(&["cache", "stats", "--json"]));
    assert_eq!(v["entries"], 0);
    assert_eq!(v["dir"], s.cache_dir().to_str().unwrap());
    assert_eq!(v["max_bytes"], 500_000_000);
    assert_eq!(v["max_age_s"], 30 * 86_400);
    assert_eq!(v["oldest_access_unix_s"], serde_json::Value::Null);

    let now = SystemTime::now();
    let (_, a) = s.put_at("a.mp4", 100, now - DAY);
    let (_, b) = s.put_at("b.mp4", 250, now);
    let v = json(&s.reel(&["cache", "stats", "--json"]));
    assert_eq!(v["entries"], 2);
    assert_eq!(v["frame_lines"], 350);
    assert_eq!(v["stored_bytes"], a + b);
    assert!(v["file_bytes"].as_u64().unwrap() > 0);
    let oldest = v["oldest_access_unix_s"].as_u64().unwrap();
    let newest = v["newest_access_unix_s"].as_u64().unwrap();
    assert_eq!(newest - oldest, 86_400);
}

#[test]
fn the_cache_dir_flag_wins_over_the_environment() {
    let s = Scratch::new();
    let other = s.root.path().join("other-cache");
    let out = s
        .command(&[
            "--cache-dir",
            other.to_str().unwrap(),
            "cache",
            "stats",
            "--json",
        ])
        .env("REEL_CACHE_DIR", s.cache_dir())
        .output()
        .unwrap();
    assert_eq!(json(&out)["dir"], other.to_str().unwrap());
    assert!(other.join(DB_FILE).is_file());

    // With neither, the XDG cache directory.
    let out = s.command(&["cache", "stats", "--json"]).output().unwrap();
    let xdg = s.root.path().join("xdg-cache").join("reel");
    assert_eq!(json(&out)["dir"], xdg.to_str().unwrap());
}

#[test]
fn prune_removes_entries_unused_for_longer_than_the_age_limit() {
    let s = Scratch::new();
    let now = SystemTime::now();
    let (old1, _) = s.put_at("old1.mp4", 10, now - 40 * DAY);
    let (old2, _) = s.put_at("old2.mp4", 10, now - 31 * DAY);
    let (recent, _) = s.put_at("recent.mp4", 10, now - 2 * DAY);

    let v = json(&s.reel(&["cache", "prune", "--json"]));
    assert_eq!(v["removed_by_age"], 2);
    assert_eq!(v["removed_by_size"], 0);
    assert_eq!(v["remaining_entries"], 1);
    assert!(!s.has(&old1) && !s.has(&old2) && s.has(&recent));

    // A shorter limit on the command line.
    let v = json(&s.reel(&["cache", "prune", "--max-age", "1d", "--json"]));
    assert_eq!(v["removed_by_age"], 0, "the get above just used it");
    assert_eq!(v["max_age_s"], 86_400);
}

#[test]
fn prune_to_a_size_removes_the_least_recently_used_first() {
    let s = Scratch::new();
    let now = SystemTime::now();
    let (a, _) = s.put_at("a.mp4", 500, now - Duration::from_secs(3 * 3600));
    let (b, _) = s.put_at("b.mp4", 500, now - Duration::from_secs(2 * 3600));
    let (c, c_bytes) = s.put_at("c.mp4", 500, now - Duration::from_secs(3600));

    let budget = c_bytes.to_string();
    let v = json(&s.reel(&["cache", "prune", "--max-size", &budget, "--json"]));
    assert_eq!(v["removed_by_size"], 2);
    assert_eq!(v["removed_entries"], 2);
    assert_eq!(v["remaining_bytes"], c_bytes);
    assert!(!s.has(&a) && !s.has(&b) && s.has(&c));
}

#[test]
fn limits_come_from_reel_toml_and_flags_override_them() {
    let s = Scratch::new();
    std::fs::write(
        s.work().join("reel.toml"),
        "[cache]\nmax_size = \"2 MB\"\nmax_age = \"7d\"\n",
    )
    .unwrap();
    let v = json(&s.reel(&["cache", "stats", "--json"]));
    assert_eq!(v["max_bytes"], 2_000_000);
    assert_eq!(v["max_age_s"], 7 * 86_400);

    let now = SystemTime::now();
    let (old, _) = s.put_at("old.mp4", 10, now - 8 * DAY);
    let v = json(&s.reel(&["cache", "prune", "--max-age", "10d", "--json"]));
    assert_eq!(v["removed_entries"], 0);
    let v = json(&s.reel(&["cache", "prune", "--json"]));
    assert_eq!(v["removed_by_age"], 1, "reel.toml's 7 days");
    assert!(!s.has(&old));

    // The cache directory too, relative to the file.
    std::fs::write(
        s.work().join("reel.toml"),
        "[cache]\ndir = \"here-cache\"\n",
    )
    .unwrap();
    let out = s.command(&["cache", "stats", "--json"]).output().unwrap();
    let expected = s.work().join("here-cache");
    assert_eq!(json(&out)["dir"], expected.to_str().unwrap());

    // --config names another file; the user's directory is searched last.
    let elsewhere = s.root.path().join("elsewhere.toml");
    std::fs::write(&elsewhere, "[cache]\nmax_size = 12345\n").unwrap();
    let path = elsewhere.to_str().unwrap();
    let v = json(&s.reel(&["--config", path, "cache", "stats", "--json"]));
    assert_eq!(v["max_bytes"], 12345);
    std::fs::remove_file(s.work().join("reel.toml")).unwrap();
    let user = s.root.path().join("xdg-config").join("reel");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("reel.toml"), "[cache]\nmax_size = \"3MB\"\n").unwrap();
    let v = json(&s.reel(&["cache", "stats", "--json"]));
    assert_eq!(v["max_bytes"], 3_000_000);
}

#[test]
fn a_bad_reel_toml_is_one_error_line_naming_the_key_and_the_file() {
    let s = Scratch::new();
    std::fs::write(
        s.work().join("reel.toml"),
        "level = \"balanced\"\n[cache]\nmax_sise = 1\n",
    )
    .unwrap();
    let out = s.reel(&["cache", "stats"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("max_sise") && err.contains("reel.toml:3"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let missing = s.root.path().join("missing.toml");
    let out = s.reel(&["--config", missing.to_str().unwrap(), "cache", "stats"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.toml"));
}

#[test]
fn clear_removes_everything() {
    let s = Scratch::new();
    let now = SystemTime::now();
    let (a, a_bytes) = s.put_at("a.mp4", 100, now);
    let (_, b_bytes) = s.put_at("b.mp4", 100, now);
    let v = json(&s.reel(&["cache", "clear", "--json"]));
    assert_eq!(v["removed_entries"], 2);
    assert_eq!(v["removed_bytes"], a_bytes + b_bytes);
    assert_eq!(v["removed_database"], false);
    assert!(!s.has(&a));
    assert_eq!(json(&s.reel(&["cache", "stats", "--json"]))["entries"], 0);
}

#[test]
fn a_damaged_database_is_reported_and_clear_deletes_it() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.cache_dir()).unwrap();
    std::fs::write(s.cache_dir().join(DB_FILE), vec![7u8; 10_000]).unwrap();
    let out = s.reel(&["cache", "stats", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("damaged") && err.contains("reel cache clear"),
        "{err}"
    );

    let v = json(&s.reel(&["cache", "clear", "--json"]));
    assert_eq!(v["removed_database"], true);
    assert_eq!(v["removed_bytes"], 10_000);
    assert_eq!(json(&s.reel(&["cache", "stats", "--json"]))["entries"], 0);
}

#[test]
fn human_output_and_usage_errors() {
    let s = Scratch::new();
    s.put_at("a.mp4", 10, SystemTime::now());
    let out = s.reel(&["cache", "stats"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("entries:  1"), "{text}");
    let out = s.reel(&["cache", "prune"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 0 entries"));
    // Quiet: nothing on stdout.
    let out = s.reel(&["--quiet", "cache", "clear"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());

    for args in [
        &["cache"][..],
        &["cache", "prune", "--max-size", "lots"],
        &["cache", "prune", "--max-age", "soon"],
        &["cache", "stats", "--bogus"],
    ] {
        assert_eq!(s.reel(args).status.code(), Some(2), "{args:?}");
    }
    let out = s.reel(&["cache", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples"));
}
