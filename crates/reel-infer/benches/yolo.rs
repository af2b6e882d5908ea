//! YOLOv8n at 640 on the CPU: latency at batch 1 and throughput at batch 8, for
//! reel and, when python3 has it, ONNX Runtime on the same model exported to ONNX
//! (the reference fixture beside the project). Prints a table and writes
//! `target/reel-bench/infer.json` (`REEL_BENCH_OUT` overrides, `REEL_BENCH_RUNS`
//! sets the timed runs, default 10).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench: a failure is a failed run"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use reel_infer::YoloV8;
use reel_infer::weights::Weights;

fn data() -> PathBuf {
    std::env::var_os("REEL_SHARED_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds of `runs` passes of `x`, after two warm-up passes.
fn time(net: &YoloV8, x: &Tensor, runs: usize) -> f64 {
    for _ in 0..2 {
        net.forward(x).unwrap();
    }
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                net.forward(x).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

const ORT: &str = r#"
import json, os, sys, time
import numpy as np
import onnxruntime as ort
path, runs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
inp = s.get_inputs()[0]
x = np.fromfile(sys.argv[4], dtype="<f4").reshape(1, 3, 640, 640)
def t(f):
    for _ in range(2): f()
    v = []
    for _ in range(runs):
        a = time.perf_counter(); f(); v.append((time.perf_counter() - a) * 1e3)
    v.sort(); return v[len(v) // 2]
b1 = t(lambda: s.run(None, {inp.name: x}))
fixed = isinstance(inp.shape[0], int)
if fixed:
    b8 = t(lambda: [s.run(None, {inp.name: x}) for _ in range(8)])
else:
    x8 = np.repeat(x, 8, axis=0)
    b8 = t(lambda: s.run(None, {inp.name: x8}))
print(json.dumps({"version": ort.__version__, "batch1_ms": b1, "batch8_ms": b8,
                  "batch8_as_8_single_runs": fixed, "threads": threads}))
"#;

fn main() {
    let dir = data().join("yolov8n-random");
    let weights = dir.join("yolov8n_random.safetensors");
    let onnx = dir.join("yolov8n_random.onnx");
    let input = dir.join("input_messi5_640.f32");
    let runs: usize = std::env::var("REEL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let w = Weights::open(&weights, &Device::Cpu, DType::F32).expect("the fixture weights");
    let net = YoloV8::load(&w, None).unwrap();
    let bytes = std::fs::read(&input).unwrap();
    let x: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let x1 = Tensor::from_vec(x, (1, 3, 640, 640), &Device::Cpu).unwrap();
    let x8 = x1.repeat((8, 1, 1, 1)).unwrap();
    let b1 = time(&net, &x1, runs);
    let b8 = time(&net, &x8, runs.div_ceil(2).max(3));
    let reel = serde_json::json!({
        "batch1_ms": b1,
        "batch8_ms": b8,
        "batch8_img_per_s": 8e3 / b8,
        "threads": threads,
    });
    println!("yolov8n 640x640, CPU, {threads} threads, median of {runs} runs");
    println!(
        "reel:          batch 1 {b1:8.1} ms   batch 8 {:6.1} img/s",
        8e3 / b8
    );

    let ort = Command::new("python3")
        .args(["-c", ORT])
        .arg(&onnx)
        .arg(runs.to_string())
        .arg(threads.to_string())
        .arg(&input)
        .output();
    let ort = match ort {
        Ok(out) if out.status.success() => {
            serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
        }
        Ok(out) => {
            println!(
                "onnxruntime:   skipped ({}); pip install onnxruntime numpy",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("failed")
            );
            None
        }
        Err(e) => {
            println!("onnxruntime:   skipped (python3: {e})");
            None
        }
    };
    let mut report = serde_json::json!({ "model": "yolov8n (fixture)", "imgsz": 640, "runs": runs, "reel": reel });
    if let Some(o) = ort {
        let (o1, o8) = (
            o["batch1_ms"].as_f64().unwrap(),
            o["batch8_ms"].as_f64().unwrap(),
        );
        println!(
            "onnxruntime:   batch 1 {o1:8.1} ms   batch 8 {:6.1} img/s",
            8e3 / o8
        );
        println!(
            "reel / ort:    batch 1 {:.1}x slower, batch 8 {:.1}x slower",
            b1 / o1,
            b8 / o8
        );
        report["onnxruntime"] = o;
        report["ratio_batch1"] = serde_json::json!(b1 / o1);
        report["ratio_batch8"] = serde_json::json!(b8 / o8);
    }
    let out = std::env::var_os("REEL_BENCH_OUT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/reel-bench/infer.json"),
        PathBuf::from,
    );
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    println!("report: {}", out.display());
}
