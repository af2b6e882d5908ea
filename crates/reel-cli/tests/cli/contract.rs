//! The command-line contract kept everywhere: results from timestamps, this run's
//! figures, honest errors (one line, its cause, exit 2 for every bad value), files
//! left alone by a run that never started, pipes that close, and output that reads
//! well.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const MEGAMIND: &str = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";
const MODEL: &str = "yolov8n-random/yolov8n_random.safetensors";

fn reel_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("REEL_CACHE_DIR", dir.join("cache"))
        .output()
        .expect("the reel binary runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn model() -> String {
    let data = std::env::var_os("REEL_SHARED_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        std::path::PathBuf::from,
    );
    data.join(MODEL).display().to_string()
}

fn ffmpeg(args: &[&str]) {
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg {args:?}");
}

/// 150 frames of one picture, then 150 of another five seconds later: a cut at
/// frame 150, whose time is 10 s, not 150/30.
fn vfr_video(dir: &Path) -> String {
    let path = dir.join("vfr.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=30,trim=end_frame=150",
        "-f",
        "lavfi",
        "-i",
        "smptebars=size=160x120:rate=30,trim=end_frame=150",
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1,setpts='if(gte(N,150),PTS+5/TB,PTS)'[v]",
        "-map",
        "[v]",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        path.to_str().unwrap(),
    ]);
    path.display().to_string()
}

#[test]
fn scene_times_are_the_frames_own_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let v = vfr_video(dir.path());
    let lines = dir.path().join("vfr.jsonl");
    let l = lines.to_str().unwrap();
    // The in-process decoder (in a libav build), then the ffmpeg child.
    for envs in [&[][..], &[("REEL_FFMPEG", "/usr/bin/ffmpeg")][..]] {
        let args = ["analyze", v.as_str(), "--no-cache", "--json", "--out", l];
        let out = reel_with(dir.path(), &args, envs, None);
        assert!(out.status.success(), "{}", stderr(&out));
        let s = json(&out);
        assert_eq!(s["cuts"], serde_json::json!([150]), "{envs:?}");
        let scenes = s["scenes"].as_array().unwrap();
        assert!(
            (scenes[1]["start_s"].as_f64().unwrap() - 10.0).abs() < 1e-3,
            "{envs:?} {}: {scenes:?}",
            s["decoder"]
        );
        assert!((scenes[0]["end_s"].as_f64().unwrap() - 10.0).abs() < 1e-3);
        let text = std::fs::read_to_string(&lines).unwrap();
        let row: Value = serde_json::from_str(text.lines().nth(150).unwrap()).unwrap();
        assert_eq!(row["frame"], 150);
        assert!((row["pts"].as_f64().unwrap() - 10.0).abs() < 1e-3, "{row}");
    }
    // The human summary gives the same time as a timecode.
    let out = reel_in(dir.path(), &["analyze", &v, "--no-cache"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("150 (00:00:10.000)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    if !Path::new(MEGAMIND).exists() {
        crate::oracle::missing(&format!("{MEGAMIND} (Debian package opencv-doc)"));
        return;
    }
    let s = json(&reel_in(
        dir.path(),
        &["analyze", MEGAMIND, "--no-cache", "--json"],
    ));
    let start = s["scenes"][1]["start_s"].as_f64().unwrap();
    // PySceneDetect puts Megamind's second scene at 4.129 s, frame 98's own time.
    assert!((start - 4.129).abs() < 0.001, "{start}");
}

#[test]
fn a_cache_hit_reports_this_run() {
    let dir = tempfile::tempdir().unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=30:duration=2",
        "-pix_fmt",
        "yuv420p",
        dir.path().join("clip.mp4").to_str().unwrap(),
    ]);
    let first = json(&reel_in(dir.path(), &["analyze", "clip.mp4", "--json"]));
    assert_eq!(first["cache"], "miss");
    let abs = dir.path().join("clip.mp4").display().to_string();
    let hit = json(&reel_in(dir.path(), &["analyze", &abs, "--json"]));
    assert_eq!(hit["cache"], "hit");
    assert_eq!(
        hit["input"],
        abs.as_str(),
        "this run's spelling of the input"
    );
    assert_eq!(hit["pool"]["peak_bytes"], 0, "this run used no pool");
    assert!(
        hit["pool"]["budget_bytes"].as_u64().unwrap() > 0,
        "this run's budget"
    );
    let wall = hit["wall_s"].as_f64().unwrap();
    assert!(wall < first["wall_s"].as_f64().unwrap());
    // The rate is this run's: its frames over its own time.
    let rate = hit["frames_analyzed"].as_f64().unwrap() / wall;
    assert!(
        (hit["fps"].as_f64().unwrap() / rate - 1.0).abs() < 1e-6,
        "{hit}"
    );
    assert_eq!(hit["cuts"], first["cuts"]);
    let human = reel_in(dir.path(), &["analyze", "clip.mp4"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("cache: hit"), "{human}");
    // One entry, said so.
    let stats = reel_in(dir.path(), &["cache", "stats"]);
    let stats = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.contains("1 entry "), "{stats}");
}

#[test]
fn plugin_listings_name_each_plugin_once_and_formats_one_way() {
    let dir = tempfile::tempdir().unwrap();
    let out = reel_in(dir.path(), &["plugins", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let v = json(&out);
    let n = v["plugins"].as_array().unwrap().len();
    assert!(n > 0);
    assert_eq!(
        text.matches("\"name\"").count(),
        n,
        "one name per plugin:\n{text}"
    );
    assert!(!text.contains("gray8"), "one spelling of each format");
    let info = reel_in(dir.path(), &["plugins", "info", "motion"]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("gray"));
    // Plugin counters are an object.
    let out = reel_in(
        dir.path(),
        &[
            "analyze",
            "synthetic:scenes?frames=40&scenes=1",
            "--plugin",
            "motion",
            "--json",
        ],
    );
    let c = &json(&out)["plugins"][0]["counters"];
    assert!(c.is_object() && c["frames"] == 40, "{c}");
}

#[test]
fn failures_name_their_cause_and_the_json_summary_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = "synthetic:scenes?frames=60&scenes=2";
    let out = reel_in(
        dir.path(),
        &["analyze", input, "--out", "/dev/full", "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains("No space left on device"), "{e}");
    let s = json(&out);
    assert!(
        s["error"].as_str().unwrap().contains("No space left"),
        "{s}"
    );
    // A budget too small for one frame is said before anything starts.
    let out = reel_in(
        dir.path(),
        &[
            "analyze",
            input,
            "--size",
            "640x360",
            "--max-memory",
            "1000",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("smaller than one 640x360") && e.contains("--max-memory"),
        "{e}"
    );
}

#[test]
fn a_run_that_fails_before_its_first_result_leaves_outputs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let keep = ["keep.jsonl", "keep.json", "keep.mp4"].map(|n| dir.path().join(n));
    for k in &keep {
        std::fs::write(k, "precious\n").unwrap();
    }
    let [k, ks, kv] = keep.each_ref().map(|k| k.to_str().unwrap());
    let outs = ["--out", k, "--summary", ks, "--out-video", kv];
    let hub = dir.path().join("hub");
    // Hugging Face's client reads its cache and endpoint from these.
    let offline = [
        ("HF_HOME", hub.to_str().unwrap()),
        ("HF_ENDPOINT", "http://127.0.0.1:9"),
    ];
    let synthetic = "synthetic:scenes?frames=30&scenes=1";
    for args in [
        vec!["analyze", "missing.mp4"],
        vec!["detect", synthetic, "--model", "/nowhere.safetensors"],
        // A named model that cannot be fetched.
        vec!["detect", synthetic, "--model", "yolov8n"],
    ] {
        let args = [&args[..], &outs[..]].concat();
        let out = reel_with(dir.path(), &args, &offline, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        for k in &keep {
            assert_eq!(
                std::fs::read_to_string(k).unwrap(),
                "precious\n",
                "{args:?}: {}",
                k.display()
            );
        }
    }
    // A run that completes with no result at all still leaves its (empty) file.
    let empty = dir.path().join("empty.jsonl");
    let m = model();
    let out = reel_in(
        dir.path(),
        &[
            "detect",
            "synthetic:scenes?frames=20&scenes=1",
            "--model",
            &m,
            "--imgsz",
            "160",
            "--every",
            "100",
            "--out",
            empty.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&empty).unwrap().lines().count(), 1);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    for args in [
        vec![
            "analyze",
            "synthetic:scenes?frames=20000&scenes=3",
            "--out",
            "-",
        ],
        vec!["system"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reel"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 1];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("error"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // A reader gone before the first byte: every write fails, whatever prints it
    // (JSON, a table, result lines, a summary).
    let dir = tempfile::tempdir().unwrap();
    let clip = h264(dir.path(), "c.mp4", 10, "64x48");
    let s = "synthetic:scenes?frames=20&scenes=1";
    for args in [
        vec!["probe", &clip],
        vec!["probe", &clip, "--json"],
        vec!["system", "--json"],
        vec!["plugins", "list", "--json"],
        vec!["cache", "stats", "--json"],
        vec!["analyze", s, "--json"],
        vec!["analyze", s, "--summary", "-"],
        vec!["analyze", s],
        vec!["analyze", &clip, "--hwaccel", "videotoolbox", "--out", "-"],
        vec!["analyze", &clip, "--hwaccel", "videotoolbox", "--json"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_reel"))
            .current_dir(dir.path())
            .args(&args)
            .env_remove("RUST_LOG")
            .env("REEL_CACHE_DIR", dir.path().join("cache"))
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {e}");
        assert!(
            !e.contains("error") && !e.contains("Broken pipe"),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn every_bad_option_value_is_a_usage_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    let v = "synthetic:scenes?frames=30&scenes=1";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["detect", v, "--model", &m, "--conf", "1.5"], "--conf"),
        (
            vec!["detect", v, "--model", &m, "--imgsz", "500"],
            "--imgsz",
        ),
        (
            vec!["detect", v, "--model", &m, "--classes", "persn"],
            "--classes",
        ),
        (vec!["detect", v, "--model", &m, "--iou", "-1"], "--iou"),
        (vec!["detect", v, "--model", &m, "--batch", "0"], "--batch"),
        (vec!["detect", v, "--model", &m, "--every", "0"], "--every"),
        (
            vec![
                "detect",
                v,
                "--model",
                &m,
                "--imgsz",
                "160",
                "--classes",
                "0,99",
            ],
            "--classes",
        ),
        (vec!["analyze", v, "--sample-fps", "0"], "--sample-fps"),
        (
            vec!["analyze", v, "--min-scene-len", "0"],
            "--min-scene-len",
        ),
        (vec!["analyze", v, "--every", "0"], "--every"),
        (vec!["analyze", v, "--threshold", "-3"], "--threshold"),
        (vec!["analyze", v, "--start", "2", "--end", "1"], "--end"),
        (vec!["analyze", v, "--start", "1", "--end", "1"], "--end"),
        (
            vec!["detect", v, "--model", &m, "--start", "0:03", "--end", "2"],
            "--end",
        ),
        (vec!["batch", v, "--start", "2", "--end", "1"], "--end"),
    ];
    for (args, flag) in cases {
        let out = reel_in(dir.path(), &args);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(flag), "{args:?}: {e}");
        assert!(!e.contains("batch_size"), "no internal key: {e}");
    }
    // `-1` is the value of --iou, refused for its range, not taken for a flag.
    let out = reel_in(dir.path(), &["detect", v, "--model", &m, "--iou", "-1"]);
    assert!(stderr(&out).contains("from 0 to 1"), "{}", stderr(&out));
}

#[test]
fn errors_are_one_line_naming_the_input_once() {
    let dir = tempfile::tempdir().unwrap();
    let v = "synthetic:scenes?frames=30&scenes=1";
    let out = reel_in(dir.path(), &["analyze", v, "--plugin", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end().lines().count(),
        1,
        "{}",
        stderr(&out)
    );
    let out = reel_in(dir.path(), &["analyze", v, "--plugin", "pixelate:block="]);
    assert!(
        !stderr(&out).contains('^'),
        "no caret block: {}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("config = {"), "no internal wrapper");
    let out = reel_in(dir.path(), &["analyze", "nope.mp4"]);
    let e = stderr(&out);
    assert_eq!(e.matches("nope.mp4").count(), 1, "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    // An input whose own error names it.
    let bad = "synthetic:scenes?frames=30&scenes=2";
    let out = reel_in(dir.path(), &["analyze", bad]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert_eq!(e.matches(bad).count(), 1, "{e}");
}

#[test]
fn logs_have_no_colour_codes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    // The detector's batch is lowered to what the budget holds: a warning.
    let m = model();
    let out = Command::new(env!("CARGO_BIN_EXE_reel"))
        .current_dir(dir.path())
        .args([
            "detect",
            "synthetic:scenes?width=320&height=240&frames=20&scenes=1",
            "--model",
            &m,
        ])
        .args(["--imgsz", "160", "--batch", "64", "--max-memory", "4MB"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("lowering the batch"), "{e}");
    assert!(!e.contains('\u{1b}'), "{e:?}");
}

#[test]
fn help_names_only_commands_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let help = String::from_utf8_lossy(&reel_in(dir.path(), &["--help"]).stdout).into_owned();
    // What reel says it is, above the usage line.
    let about = help.split("Usage:").next().unwrap();
    for word in ["live", "batch", "split"] {
        if about.contains(word) {
            let out = reel_in(dir.path(), &[word, "--help"]);
            assert!(
                out.status.success(),
                "--help names `{word}`, which is not a command"
            );
        }
    }
}

#[test]
fn system_tells_the_build_and_the_settings_and_refuses_a_broken_reel_toml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("reel.toml"),
        "workers = 3\nplugin_dirs = [\"mine\"]\n",
    )
    .unwrap();
    let v = json(&reel_in(dir.path(), &["system", "--json"]));
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["features"].is_array());
    assert_eq!(v["settings"]["workers"], 3);
    let human = String::from_utf8_lossy(&reel_in(dir.path(), &["system"]).stdout).into_owned();
    assert!(
        human.contains("reel.toml over the profile") && human.contains("workers 3"),
        "{human}"
    );
    // plugins list searches reel.toml's folders too.
    let v = json(&reel_in(dir.path(), &["plugins", "list", "--json"]));
    let searched: Vec<&str> = v["search_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(
        searched.iter().any(|p| p.ends_with("/mine")),
        "{searched:?}"
    );
    std::fs::write(dir.path().join("reel.toml"), "workers = \"many\"\n").unwrap();
    let out = reel_in(dir.path(), &["system"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("reel.toml"), "{}", stderr(&out));
}

#[test]
fn human_output_reads_well() {
    let dir = tempfile::tempdir().unwrap();
    let out = reel_in(
        dir.path(),
        &[
            "analyze",
            "synthetic:scenes?frames=40&scenes=1",
            "--no-cache",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("cuts: none"), "{text}");
    let out = reel_in(dir.path(), &["cache", "stats"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("500 MB") && text.contains("30 days"),
        "{text}"
    );
    assert!(text.contains("0 entries"), "{text}");
    // Rates to three figures: `time: 0.27 s, 148 frames/s`.
    let rate = text_of_rate(&reel_in(
        dir.path(),
        &[
            "analyze",
            "synthetic:scenes?frames=40&scenes=1",
            "--no-cache",
        ],
    ));
    let digits = rate.chars().filter(char::is_ascii_digit).count();
    assert!(digits <= 3 || !rate.contains('.'), "{rate}");
    // A size in the unit reel.toml gave it.
    for (written, shown) in [("2GiB", "2 GiB"), ("750MB", "750 MB")] {
        let toml = format!("[cache]\nmax_size = \"{written}\"\n");
        std::fs::write(dir.path().join("reel.toml"), toml).unwrap();
        let out = reel_in(dir.path(), &["cache", "stats"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains(&format!("of a {shown} budget")), "{text}");
    }
}

/// The frames-per-second figure of a human summary's time line.
fn text_of_rate(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("time: ")).unwrap();
    let before = line.split(" frames/s").next().unwrap();
    before.rsplit(' ').next().unwrap().to_string()
}

/// Runs `reel` in `dir` with `envs` set and `stdin` as its standard input.
fn reel_with(dir: &Path, args: &[&str], envs: &[(&str, &str)], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reel"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("REEL_CACHE_DIR", dir.join("cache"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    match stdin {
        Some(p) => cmd.stdin(std::fs::File::open(p).unwrap()),
        None => cmd.stdin(Stdio::null()),
    };
    cmd.output().expect("the reel binary runs")
}

/// `frames` frames of testsrc2 at 30 fps, H.264 in `name`.
fn h264(dir: &Path, name: &str, frames: u32, size: &str) -> String {
    let path = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={size}:rate=30"),
        "-frames:v",
        &frames.to_string(),
        "-c:v",
        "libx264",
        "-g",
        "30",
        "-pix_fmt",
        "yuv420p",
        path.to_str().unwrap(),
    ]);
    path.display().to_string()
}

#[test]
fn sampled_runs_report_the_videos_total() {
    let dir = tempfile::tempdir().unwrap();
    let input = h264(dir.path(), "540.mp4", 540, "160x120");
    // The in-process decoder (in a libav build), then the ffmpeg child (an ffmpeg
    // program named sends every input to it).
    for envs in [&[][..], &[("REEL_FFMPEG", "/usr/bin/ffmpeg")][..]] {
        let args = ["analyze", input.as_str(), "--every", "7", "--no-cache"];
        let out = reel_with(dir.path(), &[&args[..], &["--json"]].concat(), envs, None);
        assert!(out.status.success(), "{}", stderr(&out));
        let s = json(&out);
        assert_eq!(s["frames_analyzed"], 78, "{s}");
        assert_eq!(s["frames_decoded"], 540, "{envs:?} {}: {s}", s["decoder"]);
        if !envs.is_empty() {
            assert!(s["decoder"].as_str().unwrap().starts_with("ffmpeg"), "{s}");
        }
        let out = reel_with(dir.path(), &args, envs, None);
        let human = String::from_utf8_lossy(&out.stdout);
        assert!(human.contains("78 of 540 frames"), "{human}");
        // A window late in the video: its 30 frames, reached by a seek (in
        // process, only the frames from the keyframe before it are decoded).
        let args = ["analyze", input.as_str(), "--no-cache", "--json"];
        let window = ["--start", "15", "--end", "16"];
        let out = reel_with(dir.path(), &[&args[..], &window].concat(), envs, None);
        assert!(out.status.success(), "{}", stderr(&out));
        let s = json(&out);
        assert_eq!(s["frames_analyzed"], 30, "{s}");
        assert_eq!(s["scenes"][0]["start_frame"], 450, "{s}");
        if s["decoder"].as_str().unwrap().starts_with("libav") {
            assert!(s["frames_decoded"].as_u64().unwrap() < 100, "{s}");
        }
    }
}

#[test]
fn keep_going_decodes_past_corrupt_frames_and_counts_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = h264(dir.path(), "good.mkv", 300, "320x240");
    let mut bytes = std::fs::read(&good).unwrap();
    let n = bytes.len();
    // Garbage over a few spots in the middle of the stream.
    for spot in (n / 2..n / 2 + 8000).step_by(1000) {
        for (i, b) in bytes[spot..spot + 200].iter_mut().enumerate() {
            *b = (i * 37 + 11) as u8;
        }
    }
    let bad = dir.path().join("bad.mkv");
    std::fs::write(&bad, &bytes).unwrap();
    let bad = bad.to_str().unwrap();
    // The ffmpeg child, whose decoder reports each error.
    let child = [("REEL_FFMPEG", "/usr/bin/ffmpeg")];
    // Without --keep-going, each decoder stops at the first damaged frame, and the
    // error says what failed, where, naming the input once.
    for envs in [&child[..], &[][..]] {
        let strict = reel_with(dir.path(), &["analyze", bad, "--json"], envs, None);
        let e = stderr(&strict);
        assert_eq!(strict.status.code(), Some(1), "{envs:?}: {e}");
        let s = json(&strict);
        let stopped = s["frames_analyzed"].as_u64().unwrap();
        assert!(stopped < 300, "{envs:?} {}: {stopped}", s["decoder"]);
        assert!(e.contains("corrupt video after frame"), "{e}");
        assert_eq!(e.matches("bad.mkv").count(), 1, "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            s["error"].as_str().unwrap().contains("corrupt video"),
            "{s}"
        );
    }

    let args = ["analyze", bad, "--keep-going", "--no-cache"];
    let out = reel_with(dir.path(), &[&args[..], &["--json"]].concat(), &child, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = json(&out);
    assert_eq!(s["frames_analyzed"], 300, "{s}");
    assert!(s["decode_errors"].as_u64().unwrap() > 0, "{s}");
    let out = reel_with(dir.path(), &args, &child, None);
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("decoding errors passed over"), "{human}");
    // detect takes it too, and the in-process decoder goes on as well, counting
    // what it passed over; libav's own messages stay off stderr.
    let out = reel_with(dir.path(), &[&args[..], &["--json"]].concat(), &[], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = json(&out);
    assert_eq!(s["frames_analyzed"], 300);
    assert!(s["decode_errors"].as_u64().unwrap() > 0, "{s}");
    assert!(!stderr(&out).contains(" @ 0x"), "{}", stderr(&out));
    let m = model();
    if Path::new(&m).is_file() {
        let out = reel_with(
            dir.path(),
            &[
                "detect",
                bad,
                "--model",
                &m,
                "--keep-going",
                "--imgsz",
                "160",
                // Every frame is decoded, one in 30 detected: the model's cost
                // stays small while the decoder passes over the same damage.
                "--every",
                "30",
                "--json",
            ],
            &child,
            None,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let s = json(&out);
        assert_eq!(s["frames"], 10, "{s}");
        assert_eq!(s["frames_decoded"], 300, "{s}");
        assert!(s["decode_errors"].as_u64().unwrap() > 0, "{s}");
    }
}

#[test]
fn dash_as_input_is_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = h264(dir.path(), "in.mp4", 60, "160x120");
    let out = reel_with(
        dir.path(),
        &["analyze", "-", "--json"],
        &[],
        Some(Path::new(&mp4)),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let s = json(&out);
    assert_eq!(s["frames_analyzed"], 60, "{s}");
    assert_eq!(s["input"], "-", "{s}");
    // A Y4M stream too.
    let y4m = dir.path().join("in.y4m");
    ffmpeg(&["-i", &mp4, "-pix_fmt", "yuv420p", y4m.to_str().unwrap()]);
    let out = reel_with(dir.path(), &["analyze", "-", "--json"], &[], Some(&y4m));
    assert!(out.status.success(), "{}", stderr(&out));
    let s = json(&out);
    assert_eq!(s["frames_analyzed"], 60, "{s}");
    assert!(s["decoder"].as_str().unwrap().starts_with("y4m"), "{s}");
    // `-` is standard output for --summary: the JSON once, nothing else with it.
    let out = reel_with(dir.path(), &["analyze", &mp4, "--summary", "-"], &[], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["frames_analyzed"], 60);
    let out = reel_with(
        dir.path(),
        &["analyze", &mp4, "--summary", "-", "--json"],
        &[],
        None,
    );
    assert_eq!(json(&out)["frames_analyzed"], 60, "printed once");
    // And for --out: the lines alone.
    let out = reel_with(dir.path(), &["analyze", &mp4, "--out", "-"], &[], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 60, "{text}");
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
    for also in ["--json", "--summary"] {
        let mut args = vec!["analyze", &mp4, "--out", "-", also];
        if also == "--summary" {
            args.push("-");
        }
        let out = reel_with(dir.path(), &args, &[], None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("standard output"), "{}", stderr(&out));
    }
    // Nothing on standard input says so.
    let out = reel_with(dir.path(), &["analyze", "-"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("standard input is empty"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn image_sequences_take_a_frame_rate() {
    let dir = tempfile::tempdir().unwrap();
    let seq = dir.path().join("seq");
    std::fs::create_dir(&seq).unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=10",
        "-frames:v",
        "20",
        seq.join("f%03d.png").to_str().unwrap(),
    ]);
    let seq = seq.to_str().unwrap();
    let out = reel_in(dir.path(), &["analyze", seq, "--image-fps", "10", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = json(&out);
    assert_eq!(s["video"]["fps"], 10.0, "{s}");
    assert!(
        (s["video"]["duration_s"].as_f64().unwrap() - 2.0).abs() < 1e-6,
        "{s}"
    );
    let out = reel_in(dir.path(), &["analyze", seq, "--image-fps", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--image-fps"), "{}", stderr(&out));
}

#[test]
fn network_failures_name_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let out = reel_in(dir.path(), &["analyze", "http://nonexistent.invalid/x.mp4"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("host not found") && !e.contains("not a video"),
        "{e}"
    );

    // A server that ignores Range (Python's http.server answers every request
    // with the whole file), and an MP4 whose index comes after its data.
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    // Large enough that the reader cannot keep it all while it looks for the index.
    h264(&www, "x.mp4", 300, "320x240");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/x.mp4");
    let mut ready = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = reel_in(dir.path(), &["analyze", &url]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(ready, "the HTTP server did not start");
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("range requests") && e.lines().count() == 1,
        "{e}"
    );
}

#[test]
fn probe_lists_every_stream_and_marks_a_header_count_as_an_estimate() {
    let dir = tempfile::tempdir().unwrap();
    // Video, stereo audio and subtitles in one Matroska file.
    let srt = dir.path().join("s.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nhello\n").unwrap();
    let mkv = dir.path().join("av.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-i",
        srt.to_str().unwrap(),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:s",
        "-ac",
        "2",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-c:s",
        "srt",
        "-metadata:s:a:0",
        "language=eng",
        mkv.to_str().unwrap(),
    ]);
    let mkv = mkv.to_str().unwrap();
    let s = json(&reel_in(dir.path(), &["probe", mkv, "--json"]));
    let kinds: Vec<&str> = s["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["video", "audio", "subtitle"], "{s}");
    assert_eq!(s["streams"][1]["codec"], "aac", "{s}");
    assert_eq!(s["streams"][1]["channels"], 2, "{s}");
    assert_eq!(s["streams"][1]["language"], "eng", "{s}");
    let out = reel_in(dir.path(), &["probe", mkv]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains("audio aac, 2 channels (eng)") && human.contains("subtitle subrip"),
        "{human}"
    );

    // An AVI whose headers claim 444 frames where the stream holds 50.
    let avi = dir.path().join("h.avi");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-frames:v",
        "50",
        "-c:v",
        "mpeg4",
        avi.to_str().unwrap(),
    ]);
    let mut b = std::fs::read(&avi).unwrap();
    let at = |b: &[u8], tag: &[u8]| b.windows(4).position(|w| w == tag).unwrap();
    let avih = at(&b, b"avih") + 8 + 16;
    b[avih..avih + 4].copy_from_slice(&444u32.to_le_bytes());
    let strh = at(&b, b"strh") + 8 + 32;
    b[strh..strh + 4].copy_from_slice(&444u32.to_le_bytes());
    std::fs::write(&avi, &b).unwrap();
    let avi = avi.to_str().unwrap();
    let s = json(&reel_in(dir.path(), &["probe", avi, "--json"]));
    assert_eq!(s["frames"], 444, "{s}");
    assert_eq!(s["frames_estimated"], true, "{s}");
    let out = reel_in(dir.path(), &["probe", avi]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("444 (the header's estimate"), "{human}");
    let s = json(&reel_in(
        dir.path(),
        &["probe", avi, "--json", "--count-frames"],
    ));
    assert_eq!(s["frames_counted"], 50, "{s}");
    assert_eq!(s["frames_estimated"], false, "{s}");
}

#[test]
fn detect_takes_a_window_of_time() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("d.jsonl");
    let m = model();
    let out = reel_in(
        dir.path(),
        &[
            "detect",
            "synthetic:scenes?width=160&height=120&frames=60&scenes=1",
            "--model",
            &m,
            "--imgsz",
            "160",
            "--start",
            "1",
            "--end",
            "0:01.2",
            "--out",
            lines.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&lines).unwrap();
    let frames: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["frame"]
                .as_u64()
                .unwrap()
        })
        .collect();
    // 30 fps: frames 30 to 35, with the video's own numbers.
    assert_eq!(frames, (30..36).collect::<Vec<_>>());
    assert_eq!(json(&out)["frames"], 6);
}
