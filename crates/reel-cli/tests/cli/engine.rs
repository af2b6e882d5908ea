//! One engine under every command: analysis, detection and plugins in one decode
//! pass, the processed video out, and `reel.toml`'s mode and workers at work.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The YOLOv8n fixture beside the project (`../shared/data`), or where
/// `REEL_SHARED_DATA` says.
fn model() -> String {
    let data = std::env::var_os("REEL_SHARED_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    let p = data.join("yolov8n-random/yolov8n_random.safetensors");
    assert!(p.is_file(), "missing reference fixture {}", p.display());
    p.display().to_string()
}

/// Two scenes, moving shapes.
const VIDEO: &str = "synthetic:scenes?width=320&height=240&fps=30&frames=60&scenes=2&seed=5";

fn reel(args: &[&str], config: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reel"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the reel binary runs");
    assert!(
        out.status.success(),
        "reel {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn plugin_dir() -> String {
    reel_plugins_dir().display().to_string()
}

/// Where `cargo xtask build-plugins --fixtures` puts the test fixtures.
fn reel_plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugin-fixtures")
}

#[test]
fn analysis_with_a_model_is_one_pass_giving_both_results() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    let (a, b, c) = (
        dir.path().join("a.jsonl"),
        dir.path().join("b.jsonl"),
        dir.path().join("c.jsonl"),
    );
    let detect_flags = ["--device", "cpu", "--imgsz", "320", "--conf", "0.5"];
    let plain = json(&reel(
        &[
            "analyze",
            VIDEO,
            "--no-cache",
            "--json",
            "--out",
            a.to_str().unwrap(),
        ],
        None,
    ));
    let mut args = vec!["analyze", VIDEO, "--json", "--model", &m];
    args.extend(detect_flags);
    args.extend(["--out", b.to_str().unwrap()]);
    let both = json(&reel(&args, None));
    let mut args = vec!["detect", VIDEO, "--json", "--model", &m];
    args.extend(detect_flags);
    args.extend(["--out", c.to_str().unwrap()]);
    let detected = json(&reel(&args, None));

    assert_eq!(both["cuts"], plain["cuts"]);
    assert_eq!(plain["cuts"].as_array().unwrap().len(), 1, "{plain}");
    // One decode: every frame decoded once and analysed, detected and written once.
    assert_eq!(both["frames_decoded"], 60);
    assert_eq!(both["frames_analyzed"], 60);
    assert_eq!(both["frames"], 60);
    assert_eq!(both["detections"], detected["detections"]);
    assert_eq!(both["counts"], detected["counts"]);
    let (b, c) = (lines(&b), lines(&c));
    assert_eq!(b.len(), 60);
    assert_eq!(c.len(), 60);
    let mut boxes = 0;
    for (x, y) in b.iter().zip(&c) {
        assert_eq!(x["frame"], y["frame"]);
        assert_eq!(x["detections"], y["detections"], "frame {}", x["frame"]);
        boxes += x["detections"].as_array().unwrap().len();
        // The measurements sit beside the detections.
        assert!(x["brightness"].as_f64().is_some());
    }
    assert!(boxes > 0, "the model found something to compare");
    // The analysis alone has no detections key.
    assert!(lines(&a)[0].get("detections").is_none());
}

/// The frames of a video file as packed RGB, decoded by ffmpeg.
fn rgb_frames(path: &Path, width: usize, height: usize) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success());
    out.stdout
        .chunks_exact(width * height * 3)
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn the_overlay_draws_the_models_boxes_into_the_video_out_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    let (dets, drawn, plain) = (
        dir.path().join("d.jsonl"),
        dir.path().join("drawn.mp4"),
        dir.path().join("plain.mp4"),
    );
    let base = [
        "detect",
        VIDEO,
        "--model",
        &m,
        "--device",
        "cpu",
        "--imgsz",
        "320",
        "--conf",
        "0.9",
        "--max-det",
        "2",
        "--quiet",
    ];
    let mut args = base.to_vec();
    args.extend([
        "--plugin",
        "overlay:labels=false,thickness=2,color=[255,0,255]",
        "--out",
        dets.to_str().unwrap(),
        "--out-video",
        drawn.to_str().unwrap(),
    ]);
    reel(&args, None);
    let mut args = base.to_vec();
    args.extend(["--out-video", plain.to_str().unwrap()]);
    reel(&args, None);

    let (w, h) = (320usize, 240usize);
    let (drawn, plain) = (rgb_frames(&drawn, w, h), rgb_frames(&plain, w, h));
    let dets = lines(&dets);
    assert_eq!((drawn.len(), plain.len(), dets.len()), (60, 60, 60));
    let (mut near, mut far) = ((0u64, 0u64), (0u64, 0u64));
    let mut edge = (0u64, 0u64);
    for ((d, p), line) in drawn.iter().zip(&plain).zip(&dets) {
        let boxes: Vec<[f64; 4]> = line["detections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let b = x["box"].as_array().unwrap();
                [0, 1, 2, 3].map(|i| b[i].as_f64().unwrap())
            })
            .collect();
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
                let dist = boxes
                    .iter()
                    .map(|b| {
                        // Distance from the pixel to the box's outline.
                        let inside = fx >= b[0] && fx <= b[2] && fy >= b[1] && fy <= b[3];
                        let dx = (b[0] - fx).max(fx - b[2]).max(0.0);
                        let dy = (b[1] - fy).max(fy - b[3]).max(0.0);
                        if inside {
                            (fx - b[0]).min(b[2] - fx).min(fy - b[1]).min(b[3] - fy)
                        } else {
                            dx.max(dy)
                        }
                    })
                    .fold(f64::INFINITY, f64::min);
                let i = (y * w + x) * 3;
                let diff: u64 = (0..3).map(|c| u64::from(d[i + c].abs_diff(p[i + c]))).sum();
                let slot = if dist <= 1.5 {
                    &mut edge
                } else if dist <= 16.0 {
                    &mut near
                } else {
                    &mut far
                };
                slot.0 += diff;
                slot.1 += 3;
            }
        }
    }
    let mean = |(sum, n): (u64, u64)| sum as f64 / n.max(1) as f64;
    eprintln!(
        "mean difference: on the outlines {:.1}, near them {:.2}, elsewhere {:.2}",
        mean(edge),
        mean(near),
        mean(far)
    );
    assert!(edge.1 > 0, "the model found boxes to draw");
    assert!(mean(edge) > 40.0, "the outlines were drawn");
    assert!(mean(far) < 1.5, "nothing changed away from the boxes");
}

#[test]
fn the_mode_and_workers_of_reel_toml_change_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let video = "synthetic:scenes?width=160&height=120&fps=30&frames=120&scenes=2&seed=1";
    let plugins = plugin_dir();
    // A plugin slower than the source: 20 ms a frame.
    let slow = [
        "--plugin-dir",
        &plugins,
        "--plugin",
        "faulty:sleep_ms=20",
        "--json",
    ];
    let mut args = vec!["analyze", video];
    args.extend(slow);

    let quality = json(&reel(&args, None));
    assert_eq!(quality["mode"], "quality");
    assert_eq!(quality["dropped"], 0);
    assert_eq!(quality["frames"], 120);

    let realtime = dir.path().join("realtime.toml");
    std::fs::write(&realtime, "mode = \"realtime\"\n").unwrap();
    let rt = json(&reel(&args, Some(&realtime)));
    assert_eq!(rt["mode"], "realtime");
    let dropped = rt["dropped"].as_u64().unwrap();
    let frames = rt["frames"].as_u64().unwrap();
    assert!(dropped > 0, "the newest frame wins: {rt}");
    assert_eq!(frames + dropped, rt["frames_decoded"].as_u64().unwrap());
    assert_eq!(rt["cache"], "off", "a lossy run is never cached");

    // Workers bound the parallel stages (stateless plugins).
    let stage = |v: &Value| {
        v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "plugin:pixelate")
            .cloned()
            .unwrap()
    };
    let pixelate = ["--plugin", "pixelate:whole_frame=true", "--json"];
    let mut args = vec!["analyze", video];
    args.extend(pixelate);
    for n in [1, 3] {
        let toml = dir.path().join(format!("w{n}.toml"));
        std::fs::write(&toml, format!("workers = {n}\n")).unwrap();
        let v = json(&reel(&args, Some(&toml)));
        let s = stage(&v);
        assert_eq!(s["max_workers"], n, "{s}");
        assert!(s["peak_workers"].as_u64().unwrap() <= n, "{s}");
        assert_eq!(v["frames"], 120);
    }
}
