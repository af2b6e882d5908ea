//! Ending in every state: Ctrl-C while running, while the decoder is stalled, while
//! waiting on a FIFO or a silent server; SIGKILL. Nothing hangs and no child
//! process outlives reel.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::child::{signal, summary};

/// How long a run may take to end once told to: far beyond what any ending needs,
/// short of the drain timeout (30 s) a stalled stage used to wait for.
const ENDS_WITHIN: Duration = Duration::from_secs(20);

fn start(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("REEL_CACHE_DIR", dir.join("cache"))
        // A named ffmpeg (its full path, not the default name): the video is
        // decoded by a child process, which these tests stop and look for, even in
        // a build that decodes in process.
        .env("REEL_FFMPEG", ffmpeg_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A process group of its own, as a shell gives a foreground job: the
        // terminal's Ctrl-C goes to the whole group.
        .process_group(0)
        .spawn()
        .unwrap()
}

/// The `ffmpeg` program on `PATH`.
fn ffmpeg_path() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("ffmpeg"))
        .find(|p| p.is_file())
        .expect("ffmpeg on PATH")
}

/// Waits for `child` to end within [`ENDS_WITHIN`].
fn finish(child: Child, what: &str) -> Output {
    crate::child::finish(child, ENDS_WITHIN, what)
}

/// The live processes whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{id}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: the fields after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) && fields[0] != "Z" {
            out.push(id);
        }
    }
    out
}

/// Whether process `pid` still exists (and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        == Some(false)
}

/// Waits until `check` holds; false when it has not within [`ENDS_WITHIN`].
fn eventually(check: impl FnMut() -> bool) -> bool {
    crate::child::eventually(ENDS_WITHIN, check)
}

/// The decoder child of `reel` (ffmpeg), once it has written a result line.
fn running_decoder(reel: &Child, lines: &Path) -> u32 {
    assert!(
        eventually(|| std::fs::metadata(lines).is_ok_and(|m| m.len() > 0)),
        "no result line"
    );
    let kids = children_of(reel.id());
    assert_eq!(kids.len(), 1, "one decoder child: {kids:?}");
    kids[0]
}

/// A 40-second video, long enough never to end by itself during a test.
fn long_clip(dir: &Path) -> PathBuf {
    let path = dir.join("long.mp4");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x120:rate=25:duration=40")
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    path
}

fn assert_interrupted(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s = summary(out);
    assert_eq!(s["interrupted"], true, "{s}");
    assert!(s["frames"].as_u64().unwrap() > 0, "{s}");
    assert!(
        !err.contains("source"),
        "an interruption, not a source failure: {err}"
    );
}

#[test]
fn ctrl_c_while_running_ends_with_a_partial_summary_and_no_children() {
    let dir = tempfile::tempdir().unwrap();
    let clip = long_clip(dir.path());
    let lines = dir.path().join("f.jsonl");
    let reel = start(
        dir.path(),
        &[
            "analyze",
            clip.to_str().unwrap(),
            "--no-cache",
            "--json",
            "--out",
            "f.jsonl",
        ],
    );
    let decoder = running_decoder(&reel, &lines);
    // Ctrl-C as a terminal sends it: to reel's process group, which the decoder
    // is not in (had it been, it would have died of it and failed the source).
    let group = format!("-{}", reel.id());
    let st = Command::new("kill").args(["-INT", "--", &group]).status();
    assert!(st.unwrap().success());
    let out = finish(reel, "after Ctrl-C");
    assert_interrupted(&out);
    assert!(!alive(decoder), "the decoder {decoder} outlived reel");
}

#[test]
fn ctrl_c_with_the_decoder_stalled_kills_it_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let clip = long_clip(dir.path());
    let lines = dir.path().join("f.jsonl");
    let reel = start(
        dir.path(),
        &[
            "analyze",
            clip.to_str().unwrap(),
            "--no-cache",
            "--json",
            "--out",
            "f.jsonl",
        ],
    );
    let decoder = running_decoder(&reel, &lines);
    signal(decoder, "STOP");
    signal(reel.id(), "INT");
    let out = finish(reel, "with the decoder stopped");
    assert_interrupted(&out);
    assert!(
        !alive(decoder),
        "the stalled decoder {decoder} outlived reel"
    );
}

#[test]
fn the_decoder_does_not_outlive_a_killed_reel() {
    let dir = tempfile::tempdir().unwrap();
    let clip = long_clip(dir.path());
    let lines = dir.path().join("f.jsonl");
    let reel = start(
        dir.path(),
        &[
            "analyze",
            clip.to_str().unwrap(),
            "--no-cache",
            "--json",
            "--out",
            "f.jsonl",
        ],
    );
    let decoder = running_decoder(&reel, &lines);
    signal(reel.id(), "KILL");
    let _ = finish(reel, "after SIGKILL");
    assert!(
        eventually(|| !alive(decoder)),
        "ffmpeg {decoder} outlived a killed reel"
    );
}

#[test]
fn a_fifo_nobody_writes_to_ends_on_ctrl_c_without_children() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["in.y4m", "in.mp4"] {
        let fifo = dir.path().join(name);
        let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(st.success());
        let reel = start(dir.path(), &["analyze", name, "--json"]);
        let pid = reel.id();
        // Waiting on the FIFO: in the probe (a child) or the reader.
        std::thread::sleep(Duration::from_millis(500));
        let kids = children_of(pid);
        signal(pid, "INT");
        let out = finish(reel, &format!("on the FIFO {name} after Ctrl-C"));
        assert_eq!(out.status.code(), Some(1), "{name}: {out:?}");
        for k in kids {
            assert!(eventually(|| !alive(k)), "{name}: child {k} outlived reel");
        }
    }
}

/// A server on 127.0.0.1 that accepts connections and never answers.
fn silent_server() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        let begun = Instant::now();
        while begun.elapsed() < ENDS_WITHIN * 2 {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (addr, h)
}

#[test]
fn a_silent_server_times_out_in_probe_and_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _server) = silent_server();
    let url = format!("http://{addr}/video.mp4");
    for args in [
        vec!["--timeout", "1s", "probe", url.as_str()],
        vec!["--timeout", "1s", "analyze", url.as_str(), "--json"],
    ] {
        let out = finish(
            start(dir.path(), &args),
            &format!("{args:?} on a silent server"),
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&url), "{args:?}: {err}");
    }
    // The timeout comes from reel.toml too.
    std::fs::write(dir.path().join("reel.toml"), "network_timeout = \"1s\"\n").unwrap();
    let out = finish(
        start(dir.path(), &["probe", &url]),
        "with reel.toml's timeout",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let bad = finish(
        start(dir.path(), &["--timeout", "0s", "probe", &url]),
        "bad timeout",
    );
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
}

#[test]
fn a_pattern_wider_than_a_file_name_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = finish(start(dir.path(), &["probe", "img%065536d.png"]), "probe");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("img%065536d.png") && !err.contains("panic"),
        "{err}"
    );
}

#[test]
fn a_synthetic_source_keeps_its_plan_small() {
    let dir = tempfile::tempdir().unwrap();
    // Refused before anything is planned.
    let out = finish(
        start(
            dir.path(),
            &["probe", "synthetic:?scenes=10000000&frames=200000000"],
        ),
        "probe",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 10000"));
    // The most scenes allowed, in a video too long to finish: the first frames come
    // with a small peak RSS.
    let lines = dir.path().join("f.jsonl");
    let reel = start(
        dir.path(),
        &[
            "analyze",
            "synthetic:?scenes=10000&frames=200000000&width=64&height=64",
            "--max-memory",
            "16MB",
            "--json",
            "--out",
            "f.jsonl",
        ],
    );
    assert!(
        eventually(|| std::fs::metadata(&lines).is_ok_and(|m| m.len() > 0)),
        "no first frame"
    );
    signal(reel.id(), "INT");
    let out = finish(reel, "after Ctrl-C");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let s = summary(&out);
    let rss = s["peak_rss_bytes"].as_u64().unwrap();
    assert!(rss < 150_000_000, "peak RSS {rss} with a 16 MB budget: {s}");
}
