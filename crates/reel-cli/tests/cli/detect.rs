//! `reel detect` end to end with the reference fixture model at a small size: the
//! JSON lines, the summary, the class filter, and every kind of bad model.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The YOLOv8n fixture beside the project (`../shared/data`), or where
/// `REEL_SHARED_DATA` says.
fn model() -> PathBuf {
    let data = std::env::var_os("REEL_SHARED_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    let p = data.join("yolov8n-random/yolov8n_random.safetensors");
    assert!(p.is_file(), "missing reference fixture {}", p.display());
    p
}

const VIDEO: &str = "synthetic:scenes?width=320&height=240&frames=20&scenes=1&seed=3";

fn detect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .arg("detect")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the reel binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn lines_and_summary_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (dets, summary) = (dir.path().join("d.jsonl"), dir.path().join("s.json"));
    let m = model();
    let out = detect(&[
        VIDEO,
        "--model",
        m.to_str().unwrap(),
        "--device",
        "cpu",
        "--imgsz",
        "320",
        "--batch",
        "4",
        "--out",
        dets.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(printed, s);
    assert_eq!(s["frames"], 20);
    assert_eq!(s["frames_decoded"], 20);
    assert_eq!(s["device"], "cpu");
    assert_eq!(s["model"]["variant"], "yolov8n");
    assert_eq!(s["batch"]["requested"], 4);
    assert_eq!(s["batch"]["oom_splits"], 0);
    assert!(s["batch"]["batches"].as_u64().unwrap() >= 5);
    assert!(s["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(s["pool"]["peak_bytes"].as_u64().unwrap() > 0);

    let text = std::fs::read_to_string(&dets).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["frame"], i as u64);
        let pts = line["pts"].as_f64().unwrap();
        assert!((pts - i as f64 / 30.0).abs() < 1e-3, "{pts}");
        for d in line["detections"].as_array().unwrap() {
            let label = d["label"].as_str().unwrap();
            let id = d["class_id"].as_u64().unwrap();
            assert!(id < 80);
            let conf = d["conf"].as_f64().unwrap();
            assert!(conf > 0.25 && conf <= 1.0, "{conf}");
            let b: Vec<f64> = d["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(b.len(), 4);
            assert!(b[0] >= 0.0 && b[0] <= b[2] && b[2] <= 320.0, "{b:?}");
            assert!(b[1] >= 0.0 && b[1] <= b[3] && b[3] <= 240.0, "{b:?}");
            *counts.entry(label.to_string()).or_default() += 1;
        }
    }
    let total: u64 = counts.values().sum();
    assert!(total > 0);
    assert_eq!(s["detections"], total);
    let from_summary: BTreeMap<String, u64> = serde_json::from_value(s["counts"].clone()).unwrap();
    assert_eq!(from_summary, counts);
}

#[test]
fn every_and_classes_filter() {
    let m = model();
    let out = detect(&[
        VIDEO,
        "--model",
        m.to_str().unwrap(),
        "--device",
        "cpu",
        "--imgsz",
        "256",
        "--every",
        "4",
        "--classes",
        "person,car",
        "--conf",
        "0.1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["frames"], 5);
    let counts = s["counts"].as_object().unwrap();
    assert!(
        counts.keys().all(|k| k == "person" || k == "car"),
        "{counts:?}"
    );
    let out = detect(&[
        VIDEO,
        "--model",
        m.to_str().unwrap(),
        "--classes",
        "unicorn",
    ]);
    // A value out of range is a usage error (the command-line contract).
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`unicorn` is not a COCO class name"),
        "{}",
        stderr(&out)
    );
}

/// The fixture with one tensor's shape changed in the header (same size, so the
/// data stays valid): the file loads as safetensors but not as YOLOv8n.
fn doctored(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(model()).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["model.22.cv3.0.1.conv.weight"]["shape"] = serde_json::json!([80, 720, 1, 1]);
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    let p = dir.join("doctored.safetensors");
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn bad_models_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = doctored(dir.path());
    let out = detect(&[VIDEO, "--model", bad.to_str().unwrap(), "--imgsz", "320"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.starts_with("error: ")
            && e.contains("`model.22.cv3.0.1.conv.weight`")
            && e.contains("[80, 720, 1, 1]")
            && e.contains("[80, 80, 3, 3]"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");

    let missing = dir.path().join("absent.safetensors");
    let out = detect(&[VIDEO, "--model", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("absent.safetensors"),
        "{}",
        stderr(&out)
    );

    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a model").unwrap();
    let out = detect(&[VIDEO, "--model", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("junk.safetensors"),
        "{}",
        stderr(&out)
    );

    let out = detect(&[VIDEO, "--model", "yolov9q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown model `yolov9q`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn offline_a_named_model_says_how_to_pass_a_file() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(["detect", VIDEO, "--model", "yolov8n"])
        .env_remove("RUST_LOG")
        .env("HF_HOME", home.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("`yolov8n`") && e.contains("--model PATH/yolov8n.safetensors"),
        "{e}"
    );
}

#[test]
fn bad_input_and_options() {
    let m = model();
    let m = m.to_str().unwrap();
    let out = detect(&["/no/such/video.mp4", "--model", m]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/no/such/video.mp4"),
        "{}",
        stderr(&out)
    );
    let out = detect(&[VIDEO, "--model", m, "--imgsz", "300"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("multiple of 32"), "{}", stderr(&out));
    let out = detect(&[VIDEO, "--model", m, "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    let out = detect(&[VIDEO, "--model", m, "--device", "cuda:0"]);
    if !cfg!(feature = "cuda") {
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("no CUDA support"), "{}", stderr(&out));
    }
}
