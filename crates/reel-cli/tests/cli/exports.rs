//! `reel analyze`'s scene exports end to end: the `--scenes-csv` file against
//! PySceneDetect's own `list-scenes` output for the same video, the `--edl` read
//! back against the summary's scenes, standard output, and the refusals and errors.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::analyze::concat_video;
use crate::reel;

/// Three scenes of 30, 40 and 30 frames, 160x120 at 25 fps.
const SEGMENTS: &[(&str, u64)] = &[("testsrc2", 30), ("smptebars", 40), ("mandelbrot", 30)];

/// Seconds as `HH:MM:SS.mmm`.
fn timecode(s: f64) -> String {
    let ms = (s * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn video(dir: &Path) -> (PathBuf, Vec<u64>) {
    concat_video(dir, "three.mp4", "160x120", SEGMENTS)
}

/// `reel analyze INPUT --no-cache --json EXTRA…`: its summary.
fn analyze(input: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["analyze", input.to_str().unwrap(), "--no-cache", "--json"];
    args.extend_from_slice(extra);
    let out = reel(&args);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// PySceneDetect's `list-scenes` CSV for `input`, or `None` (after the oracle
/// note) when it is not installed.
fn pyscenedetect_csv(input: &Path, dir: &Path) -> Option<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = Command::new(&python)
        .args(["-c", "import scenedetect, cv2"])
        .status()
        .is_ok_and(|s| s.success());
    if !importable {
        crate::oracle::missing("PySceneDetect (pip install scenedetect opencv-python-headless)");
        return None;
    }
    let name = format!("{}-pysd.csv", input.file_stem().unwrap().to_string_lossy());
    let out = Command::new(&python)
        .args(["-m", "scenedetect", "-q", "-i"])
        .arg(input)
        .arg("-o")
        .arg(dir)
        .args(["detect-content", "list-scenes", "-q", "-f", &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "PySceneDetect failed: {out:?}");
    Some(std::fs::read_to_string(dir.join(name)).unwrap())
}

#[test]
fn the_scene_csv_is_pyscenedetects_list_scenes() {
    let dir = tempfile::tempdir().unwrap();
    let (three, truth) = video(dir.path());
    let (one, _) = concat_video(dir.path(), "one.mp4", "160x120", &[("testsrc2", 50)]);
    for (input, cuts) in [(three, truth), (one, Vec::new())] {
        let csv = dir.path().join("reel.csv");
        let v = analyze(&input, &["--scenes-csv", csv.to_str().unwrap()]);
        let found: Vec<u64> = serde_json::from_value(v["cuts"].clone()).unwrap();
        assert_eq!(found, cuts, "{}", input.display());
        let ours = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(
            ours.lines().nth(1).unwrap(),
            "Scene Number,Start Frame,Start Timecode,Start Time (seconds),End Frame,\
             End Timecode,End Time (seconds),Length (frames),Length (timecode),Length (seconds)"
        );
        assert_eq!(ours.lines().count(), cuts.len() + 3);
        let Some(theirs) = pyscenedetect_csv(&input, dir.path()) else {
            return;
        };
        assert_eq!(ours, theirs, "{}", input.display());
    }
}

#[test]
fn the_edl_parses_back_to_the_summarys_scenes() {
    let dir = tempfile::tempdir().unwrap();
    let (input, truth) = video(dir.path());
    let edl = dir.path().join("three.edl");
    let v = analyze(&input, &["--edl", edl.to_str().unwrap()]);
    let text = std::fs::read_to_string(&edl).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("TITLE: three"));
    assert_eq!(lines.next(), Some("FCM: NON-DROP FRAME"));
    assert_eq!(lines.next(), Some(""));
    let fps = v["video"]["fps"].as_f64().unwrap();
    assert_eq!(fps, 25.0);
    // HH:MM:SS:FF to a frame number at 25 fps.
    let frame = |tc: &str| -> u64 {
        let p: Vec<u64> = tc.split(':').map(|x| x.parse().unwrap()).collect();
        assert_eq!(p.len(), 4, "{tc}");
        assert!(p[1] < 60 && p[2] < 60 && p[3] < 25, "{tc}");
        ((p[0] * 60 + p[1]) * 60 + p[2]) * 25 + p[3]
    };
    let scenes = v["scenes"].as_array().unwrap();
    assert_eq!(scenes.len(), truth.len() + 1);
    let events: Vec<&str> = lines.collect();
    assert_eq!(events.len(), scenes.len());
    for (i, (event, scene)) in events.iter().zip(scenes).enumerate() {
        let f: Vec<&str> = event.split_whitespace().collect();
        assert_eq!(f.len(), 8, "{event}");
        assert_eq!(f[0], format!("{:03}", i + 1));
        assert_eq!(&f[1..4], ["AX", "V", "C"], "{event}");
        let (src_in, src_out) = (frame(f[4]), frame(f[5]));
        assert_eq!(src_in, scene["start_frame"].as_u64().unwrap(), "{event}");
        // The out point is the frame after the scene's last.
        assert_eq!(src_out, scene["end_frame"].as_u64().unwrap() + 1, "{event}");
        assert_eq!((frame(f[6]), frame(f[7])), (src_in, src_out), "{event}");
    }

    // The human summary lists the scenes with their timecodes.
    let out = reel(&["analyze", input.to_str().unwrap(), "--no-cache"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let human = String::from_utf8(out.stdout).unwrap();
    for (i, scene) in scenes.iter().enumerate() {
        let (start, end) = (
            scene["start_s"].as_f64().unwrap(),
            scene["end_s"].as_f64().unwrap(),
        );
        let row = format!(
            "{:>5}  {:<14}  {}  {}  {}",
            i + 1,
            format!("{}-{}", scene["start_frame"], scene["end_frame"]),
            timecode(start),
            timecode(end),
            timecode(end - start)
        );
        assert!(human.contains(&row), "{row:?} in {human}");
    }
    assert!(human.contains("  scene  frames "), "{human}");
    assert!(
        human.contains("00:00:01.200  00:00:02.800  00:00:01.600"),
        "{human}"
    );

    // The same list on standard output, and nothing else there.
    let out = reel(&[
        "analyze",
        input.to_str().unwrap(),
        "--no-cache",
        "--edl",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
}

#[test]
fn exports_are_refused_where_they_would_clash_and_fail_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = video(dir.path());
    let input_s = input.to_str().unwrap();
    for (args, message) in [
        (
            &["--scenes-csv", "-", "--json"][..],
            "--scenes-csv - and --json would both write to standard output",
        ),
        (
            &["--out", "-", "--edl", "-"][..],
            "--out - and --edl - would both write to standard output",
        ),
        (&["--scenes-csv", input_s][..], "is the input"),
    ] {
        let mut all = vec!["analyze", input_s, "--no-cache"];
        all.extend_from_slice(args);
        let out = reel(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }

    let missing_dir = dir.path().join("no-such-dir").join("scenes.edl");
    let out = reel(&[
        "analyze",
        input_s,
        "--no-cache",
        "--edl",
        missing_dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: writing the edit decision list to {}",
            missing_dir.display()
        )),
        "{err}"
    );

    // A run that fails before its first result leaves an existing file alone.
    let csv = dir.path().join("kept.csv");
    std::fs::write(&csv, "earlier\n").unwrap();
    let gone = dir.path().join("gone.mp4");
    let out = reel(&[
        "analyze",
        gone.to_str().unwrap(),
        "--no-cache",
        "--scenes-csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "earlier\n");
}
