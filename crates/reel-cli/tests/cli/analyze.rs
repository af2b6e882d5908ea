//! `reel analyze` and `reel demo` end to end: cuts against the truth, the output
//! files, the cache, interruption, bad input and flat memory.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::reel;

const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

/// `reel` with a private cache directory.
fn reel_cached(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .env_remove("RUST_LOG")
        .output()
        .expect("the reel binary runs")
}

fn json(out: &Output) -> Value {
    assert!(out.status.code().is_some(), "reel was killed: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn cuts(v: &Value) -> Vec<u64> {
    v["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect()
}

/// Concatenates `len` frames of each lavfi source at `size` and 25 fps into an
/// H.264 file; the true cuts are the segments' first frames.
pub(crate) fn concat_video(
    dir: &Path,
    name: &str,
    size: &str,
    segments: &[(&str, u64)],
) -> (PathBuf, Vec<u64>) {
    let path = dir.join(name);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"]);
    for (src, len) in segments {
        let sep = if src.contains('=') { ":" } else { "=" };
        cmd.args(["-f", "lavfi", "-i"]).arg(format!(
            "{src}{sep}size={size}:rate=25,trim=end_frame={len}"
        ));
    }
    let inputs: String = (0..segments.len()).map(|i| format!("[{i}]")).collect();
    cmd.args(["-filter_complex"])
        .arg(format!(
            "{inputs}concat=n={}:v=1:a=0,format=yuv420p",
            segments.len()
        ))
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"])
        .arg(&path);
    assert!(cmd.status().unwrap().success(), "ffmpeg made {name}");
    let mut cuts = Vec::new();
    let mut at = 0;
    for (_, len) in &segments[..segments.len() - 1] {
        at += len;
        cuts.push(at);
    }
    (path, cuts)
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn synthetic_cuts_equal_the_truth() {
    for seed in [1, 7, 42] {
        let uri = format!("synthetic:scenes?width=320&height=180&frames=400&scenes=6&seed={seed}");
        let truth = reel_decode::synthetic::ground_truth(&uri).unwrap();
        let out = reel(&["analyze", &uri, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let v = json(&out);
        assert_eq!(cuts(&v), truth.cuts, "seed {seed}");
        assert_eq!(v["frames_analyzed"], 400);
        assert_eq!(v["cache"], "off");
        assert_eq!(v["scenes"].as_array().unwrap().len(), truth.cuts.len() + 1);
    }
}

#[test]
fn cuts_of_ffmpeg_made_videos_equal_the_truth_and_the_outputs_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, u64)]);
    let cases: [Case; 2] = [
        (
            "a.mp4",
            "320x240",
            &[
                ("testsrc2", 40),
                ("smptebars", 55),
                ("mandelbrot", 30),
                ("rgbtestsrc", 45),
            ],
        ),
        (
            "b.mp4",
            "640x360",
            &[
                ("cellauto=rule=110:seed=1", 35),
                ("testsrc", 50),
                ("colorspectrum", 40),
            ],
        ),
    ];
    for (name, size, segments) in cases {
        let (path, truth) = concat_video(dir.path(), name, size, segments);
        let frames_out = dir.path().join(format!("{name}.jsonl"));
        let summary = dir.path().join(format!("{name}.json"));
        let out = reel(&[
            "analyze",
            path.to_str().unwrap(),
            "--no-cache",
            "--json",
            "--out",
            frames_out.to_str().unwrap(),
            "--summary",
            summary.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let v = json(&out);
        assert_eq!(cuts(&v), truth, "{name}");
        let total: u64 = segments.iter().map(|s| s.1).sum();
        assert_eq!(v["frames_analyzed"], total);
        assert_eq!(v["frames_decoded"], total);
        assert_eq!(v["video"]["codec"], "h264");
        assert_eq!(v["video"]["frames"], total);
        for key in ["wall_s", "fps", "peak_rss_bytes"] {
            assert!(v[key].as_f64().unwrap() > 0.0, "{key}");
        }
        assert!(v["pool"]["peak_bytes"].as_u64().unwrap() > 0);
        assert!(
            v["pool"]["budget_bytes"].as_u64().unwrap()
                >= v["pool"]["peak_bytes"].as_u64().unwrap()
        );
        let scenes = v["scenes"].as_array().unwrap();
        assert_eq!(scenes[0]["start_frame"], 0);
        assert_eq!(scenes.last().unwrap()["end_frame"], total - 1);
        let saved: Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        assert_eq!(saved, v);

        let rows = lines(&frames_out);
        assert_eq!(rows.len() as u64, total);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row["frame"], i as u64);
            for key in ["pts", "brightness", "sharpness"] {
                assert!(row[key].is_number(), "{key} in {row}");
            }
            assert_eq!(row["content_delta"].is_null(), i == 0);
            assert_eq!(row["motion"].is_null(), i == 0);
        }
        assert!((rows[25]["pts"].as_f64().unwrap() - 1.0).abs() < 1e-6);
        for &c in &truth {
            assert!(rows[c as usize]["content_delta"].as_f64().unwrap() > 27.0);
        }
    }
}

#[test]
fn a_static_camera_has_no_cuts() {
    if !Path::new(VTEST).exists() {
        crate::oracle::missing(&format!("{VTEST} (Debian package opencv-doc)"));
        return;
    }
    let out = reel(&["analyze", VTEST, "--no-cache", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(cuts(&v), Vec::<u64>::new());
    assert_eq!(v["scenes"].as_array().unwrap().len(), 1);
    assert!(v["frames_analyzed"].as_u64().unwrap() > 700);
}

#[test]
fn adaptive_detector_and_sampling() {
    let uri = "synthetic:scenes?width=320&height=180&frames=300&scenes=4&seed=5";
    let truth = reel_decode::synthetic::ground_truth(uri).unwrap();
    let out = reel(&["analyze", uri, "--detector", "adaptive", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["detector"], "adaptive");
    assert_eq!(cuts(&v), truth.cuts);

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.jsonl");
    let out = reel(&[
        "analyze",
        uri,
        "--every",
        "3",
        "--json",
        "--out",
        f.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["frames_analyzed"], 100);
    let rows = lines(&f);
    assert_eq!(rows.len(), 100);
    assert_eq!(rows[1]["frame"], 3);
}

#[test]
fn the_cache_answers_unchanged_files_and_not_changed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (path, truth) = concat_video(
        dir.path(),
        "c.mp4",
        "320x240",
        &[("testsrc2", 30), ("smptebars", 30)],
    );
    let p = path.to_str().unwrap();
    let run = |out_name: &str, extra: &[&str]| {
        let f = dir.path().join(out_name);
        let mut args = vec!["analyze", p, "--json", "--out", f.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = reel_cached(&cache, &args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        (json(&out), std::fs::read(&f).unwrap())
    };
    let (first, lines1) = run("1.jsonl", &[]);
    assert_eq!(first["cache"], "miss");
    assert_eq!(cuts(&first), truth);
    let (second, lines2) = run("2.jsonl", &[]);
    assert_eq!(second["cache"], "hit");
    assert_eq!(lines1, lines2);
    assert_eq!(cuts(&second), truth);
    assert_eq!(second["frames_analyzed"], first["frames_analyzed"]);
    // Other options are another entry.
    let (other, _) = run("3.jsonl", &["--threshold", "40"]);
    assert_eq!(other["cache"], "miss");
    let (off, lines4) = run("4.jsonl", &["--no-cache"]);
    assert_eq!(off["cache"], "off");
    assert_eq!(lines4, lines1);

    // A changed file is analysed again.
    let (_, _) = concat_video(
        dir.path(),
        "c.mp4",
        "320x240",
        &[("testsrc2", 20), ("rgbtestsrc", 40)],
    );
    let (changed, _) = run("5.jsonl", &[]);
    assert_eq!(changed["cache"], "miss");
    assert_eq!(cuts(&changed), vec![20]);
    let (again, _) = run("6.jsonl", &[]);
    assert_eq!(again["cache"], "hit");
    assert_eq!(cuts(&again), vec![20]);

    let stats = reel_cached(&cache, &["cache", "stats", "--json"]);
    assert_eq!(json(&stats)["entries"], 2);
}

/// Starts `reel analyze` and waits until its frame file has `n` lines.
fn start_and_wait(args: &[&str], out: &Path, cache: &Path, n: usize) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--cache-dir")
        .arg(cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let have = std::fs::File::open(out)
            .map(|f| std::io::BufReader::new(f).lines().count())
            .unwrap_or(0);
        if have >= n {
            return child;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "reel ended before writing {n} lines"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn sigint_stops_flushes_and_prints_the_partial_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.jsonl");
    let child = start_and_wait(
        &[
            "analyze",
            "synthetic:scenes?width=320&height=180&frames=1000000&scenes=2000",
            "--json",
        ],
        &out,
        &dir.path().join("cache"),
        30,
    );
    signal(&child, "-INT");
    let result = child.wait_with_output().unwrap();
    assert_eq!(result.status.code(), Some(1), "{result:?}");
    let v = json(&result);
    assert_eq!(v["interrupted"], true);
    let rows = lines(&out);
    assert!(rows.len() >= 30);
    assert_eq!(v["frames_analyzed"], rows.len() as u64);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn a_run_killed_mid_way_leaves_no_cache_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (path, truth) = concat_video(
        dir.path(),
        "k.mp4",
        "320x240",
        &[("testsrc2", 600), ("smptebars", 600)],
    );
    let out = dir.path().join("f.jsonl");
    let mut child = start_and_wait(&["analyze", path.to_str().unwrap()], &out, &cache, 20);
    signal(&child, "-KILL");
    let _ = child.wait().unwrap();
    let stats = reel_cached(&cache, &["cache", "stats", "--json"]);
    assert_eq!(json(&stats)["entries"], 0);
    // The next run analyses, completes and stores.
    let again = reel_cached(&cache, &["analyze", path.to_str().unwrap(), "--json"]);
    let v = json(&again);
    assert_eq!(v["cache"], "miss");
    assert_eq!(cuts(&v), truth);
    let stats = reel_cached(&cache, &["cache", "stats", "--json"]);
    assert_eq!(json(&stats)["entries"], 1);
}

#[test]
fn bad_inputs_are_one_error_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "this is not a video\n").unwrap();
    let missing = dir.path().join("missing.mp4");
    for path in [&text, &missing] {
        let p = path.to_str().unwrap();
        let out = reel(&["analyze", p, "--no-cache"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(p), "{stderr}");
    }
    let out = reel(&[
        "analyze",
        "synthetic:scenes",
        "--every",
        "2",
        "--sample-fps",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = reel(&["analyze", "synthetic:scenes", "--size", "0x10"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn memory_is_flat_whatever_the_length() {
    // One minute and ten minutes of 30 fps video.
    let run = |frames: u32| {
        let uri =
            format!("synthetic:scenes?width=160&height=90&fps=30&frames={frames}&scenes=4&seed=2");
        // No cache: a cached summary would report another process's pool.
        let out = reel(&["analyze", &uri, "--size", "64x36", "--json", "--no-cache"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        json(&out)
    };
    let short = run(1800);
    let long = run(18000);
    assert_eq!(long["frames_analyzed"], 18000);
    // The frames in flight are bounded by the queues; whether the source holds one
    // more decoded frame while it waits for room depends on scheduling, so the
    // peaks may differ by one frame (64x36 RGB: a 7168-byte size class), never more.
    let (ps, pl) = (
        short["pool"]["peak_bytes"].as_u64().unwrap(),
        long["pool"]["peak_bytes"].as_u64().unwrap(),
    );
    assert!(ps.abs_diff(pl) <= 7168, "pool peak {ps} vs {pl}");
    let (a, b) = (
        short["peak_rss_bytes"].as_f64().unwrap(),
        long["peak_rss_bytes"].as_f64().unwrap(),
    );
    assert!((b - a).abs() / a < 0.10, "peak RSS {a} vs {b}");
}

#[test]
fn memory_is_flat_whatever_the_length_of_a_decoded_file() {
    // Twenty seconds and ten times as long of 30 fps H.264, through whichever decoder the
    // build has (in process with the libav feature, whose reference frames and
    // threads live in reel's own memory).
    let dir = tempfile::tempdir().unwrap();
    let run = |seconds: u32| {
        let path = dir.path().join(format!("{seconds}s.mp4"));
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size=160x120:rate=30:duration={seconds}"))
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "60"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let out = reel(&["analyze", path.to_str().unwrap(), "--json", "--no-cache"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        json(&out)
    };
    let short = run(20);
    let long = run(200);
    assert_eq!(long["frames_analyzed"], 6000);
    assert_eq!(short["decoder"], long["decoder"]);
    let (ps, pl) = (
        short["pool"]["peak_bytes"].as_u64().unwrap(),
        long["pool"]["peak_bytes"].as_u64().unwrap(),
    );
    // Whether the queues ever fill up depends on how fast the decoder runs ahead of
    // the analysis, so the two peaks need not be equal; neither may pass what two
    // quality-mode edges of 4 frames and the 3 frames in hand hold (a frame in its
    // page-rounded pool size class).
    let size = &long["analysis_size"];
    let frame_bytes = size[0].as_u64().unwrap() * size[1].as_u64().unwrap() * 3;
    let class = frame_bytes.div_ceil(4096) * 4096;
    for peak in [ps, pl] {
        assert!(
            peak <= 11 * class,
            "pool peak {ps} and {pl}, frames of {class}"
        );
    }
    let (a, b) = (
        short["peak_rss_bytes"].as_f64().unwrap(),
        long["peak_rss_bytes"].as_f64().unwrap(),
    );
    assert!(
        (b - a).abs() / a < 0.10,
        "peak RSS {a} vs {b} ({})",
        long["decoder"]
    );
}

#[test]
fn plugins_run_after_the_analysis() {
    let plugins = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins");
    assert!(plugins.is_dir(), "run `cargo xtask build-plugins` first");
    let out = reel(&[
        "analyze",
        "synthetic:scenes?width=320&height=180&frames=120&scenes=2&seed=4",
        "--plugin-dir",
        plugins.to_str().unwrap(),
        "--plugin",
        "motion",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    let p = &v["plugins"][0];
    assert_eq!(p["plugin"], "motion");
    assert_eq!(p["processed"], 120);
    assert_eq!(p["errors"], 0);
}

#[test]
fn the_demo_finds_the_true_cuts() {
    let out = reel(&["demo", "--json", "--no-plugins"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["cuts_match"], true);
    assert_eq!(v["summary"]["cuts"], v["true_cuts"]);
    assert!(!v["true_cuts"].as_array().unwrap().is_empty());
    assert!(v["summary"]["peak_rss_bytes"].as_u64().unwrap() > 0);

    let out = reel(&[
        "demo",
        "--input",
        "synthetic:scenes?frames=60&scenes=2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(
        v["plugins_run"],
        serde_json::json!(["motion", "pixelate", "overlay"])
    );
    assert_eq!(v["summary"]["plugins"].as_array().unwrap().len(), 3);

    let out = reel(&["demo", "--input", "clip.mp4"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_window_gives_the_lines_of_a_full_run_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (video, _) = concat_video(
        d,
        "w.mp4",
        "160x120",
        &[("testsrc2", 100), ("mandelbrot", 100)],
    );
    let video = video.to_str().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out_path = d.join(name);
        let mut args = vec![
            "analyze",
            video,
            "--no-cache",
            "--out",
            out_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = reel(&args);
        assert!(out.status.success(), "{out:?}");
        lines(&out_path)
    };
    let full = run("full.jsonl", &[]);
    assert_eq!(full.len(), 200);
    for (extra, from, to) in [
        (
            &["--start", "2.5", "--end", "00:00:06"][..],
            63usize,
            150usize,
        ),
        (&["--start", "0:05"][..], 125, 200),
    ] {
        let window = run("w.jsonl", extra);
        let want = &full[from..to];
        assert_eq!(window.len(), want.len(), "{extra:?}");
        for (i, (a, b)) in window.iter().zip(want).enumerate() {
            assert_eq!(a["frame"], b["frame"], "{extra:?}");
            assert_eq!(a["pts"], b["pts"]);
            assert_eq!(a["brightness"], b["brightness"]);
            assert_eq!(a["sharpness"], b["sharpness"]);
            // The first frame of a window has no predecessor to differ from.
            if i > 0 {
                assert_eq!(a, b, "{extra:?}");
            }
        }
    }
    // A time that is not one is a usage error naming the flag.
    let out = reel(&["analyze", video, "--start", "1:75"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--start"));
}
