//! `reel batch` end to end: a bad input is recorded while the others go on, each in
//! its own child process with `--isolate process`, and a rerun skips what is done.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::process::Command;

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
