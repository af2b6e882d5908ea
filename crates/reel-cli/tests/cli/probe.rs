use crate::reel;

const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

#[test]
fn probe_json_of_a_real_video() {
    let out = reel(&["probe", VTEST, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["width"], 768);
    assert_eq!(v["height"], 576);
    assert_eq!(v["display_width"], 768);
    assert_eq!(v["codec"], "msmpeg4v3");
    assert_eq!(v["rotation"], 0);
    assert!(v["fps"].as_f64().unwrap() > 0.0);
    assert!(v["frames"].as_u64().unwrap() > 0);
    assert!(v["duration_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["decoder"]["backend"], "ffmpeg");
    assert!(v.get("frames_counted").is_none());
}

#[test]
fn probe_counts_frames_when_asked() {
    let out = reel(&[
        "probe",
        "synthetic:scenes?frames=120&scenes=3",
        "--json",
        "--count-frames",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 120);
    assert_eq!(v["frames_counted"], 120);
    assert_eq!(v["decoder"]["backend"], "synthetic");

    let dir = tempfile::tempdir().unwrap();
    let y4m = dir.path().join("clip.y4m");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .args([
            "testsrc2=size=64x48:rate=10:duration=1",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&y4m)
        .status()
        .unwrap();
    assert!(status.success());
    let out = reel(&["probe", y4m.to_str().unwrap(), "--json", "--count-frames"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames_counted"], 10);
    assert_eq!(v["decoder"]["backend"], "y4m");
}

#[test]
fn probe_human_output() {
    let out = reel(&["probe", VTEST]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("size:         768x576"), "{text}");
    assert!(text.contains("decoder:      ffmpeg msmpeg4v3"), "{text}");
}

#[test]
fn bad_inputs_exit_1_with_one_error_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "not a video\n").unwrap();
    let empty = dir.path().join("empty.mkv");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.path().join("missing.mp4");
    for path in [&text, &empty, &missing] {
        let p = path.to_str().unwrap();
        let out = reel(&["probe", p]);
        assert_eq!(out.status.code(), Some(1), "{p}");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].starts_with("error: "), "{err}");
        assert!(lines[0].contains(p), "{err}");
        assert!(out.stdout.is_empty());
    }
    let out = reel(&["probe", "synthetic:?frames=5&scenes=3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot hold"));
    let out = reel(&["probe"]);
    assert_eq!(out.status.code(), Some(2));
}
