//! A short run of the fuzzer over every target, as part of the test suite: two
//! seconds a target through the real binary (a worker process per target), which
//! must find no crash. `cargo xtask fuzz` is the long run.

use std::process::Command;

#[test]
fn every_target_runs_two_seconds_without_a_crash() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-short");
    let report = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_reel-fuzz"))
        .arg("--seconds")
        .arg("2")
        .arg("--out")
        .arg(&report)
        .arg("--crashes")
        .arg(dir.join("crashes"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the fuzzer found a crash:\n{text}");
    // Every target ran, and ran many inputs.
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let targets = report["targets"]
        .as_array()
        .ok_or("no targets in the report")?;
    assert!(targets.len() >= 8, "{report}");
    for t in targets {
        assert!(t["executions"].as_u64().unwrap_or(0) > 10, "{t}");
    }
    Ok(())
}
