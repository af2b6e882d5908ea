//! YOLOv8n at 640 on the CPU: reel's CPU engine against ONNX Runtime (python3's
//! `onnxruntime`, the fixture's ONNX export, and a batch-8 copy of it made with
//! the `onnx` package into the report's folder), on the same number of threads,
//! interleaved round by round in the same run: median latency at batch 1,
//! throughput at batch 8, CPU time per image, the five slowest layers, and the
//! fraction of the machine's multiply-add peak reached. GFLOP/s count the
//! network's multiply-adds as direct convolutions (what either engine must
//! compute); the fractions of the peak count what the kernels execute (fewer
//! for reel's Winograd layers, so that a fraction stays below 1; ONNX Runtime's
//! convolutions are direct). Prints a table and writes
//! `target/reel-bench/infer.json`.
//!
//! `REEL_BENCH_RUNS` (rounds, default 10), `REEL_BENCH_THREADS` (default 2),
//! `REEL_BENCH_OUT` (the report's path); `REEL_CPU_KERNELS` picks the kernels.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench: a failure is a failed run"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use candle_core::{DType, Device};
use reel_infer::YoloV8;
use reel_infer::cpu::{self, Network, Runner};
use reel_infer::weights::Weights;
use serde_json::{Value, json};

fn data() -> PathBuf {
    std::env::var_os("REEL_SHARED_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    )
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU seconds this process has used (all threads), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

struct Ort {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
    info: Value,
}

impl Ort {
    fn start(onnx: &Path, threads: usize, input: &Path, work: &Path) -> Result<Self, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ort_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(onnx)
            .arg(threads.to_string())
            .arg(input)
            .arg(work)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        let info = serde_json::from_str(&line)
            .map_err(|_| "onnxruntime did not start (pip install onnxruntime numpy onnx)")?;
        Ok(Self { child, out, info })
    }

    /// (milliseconds of each run, CPU seconds of all).
    fn time(&mut self, what: &str, n: usize) -> (Vec<f64>, f64) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{what} {n}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        let ms = v["ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        (ms, v["cpu_s"].as_f64().unwrap())
    }
}

impl Drop for Ort {
    fn drop(&mut self) {
        if let Some(mut s) = self.child.stdin.take() {
            let _ = writeln!(s, "quit");
        }
        let _ = self.child.wait();
    }
}

/// Times `n` runs of a batch: (milliseconds of each, CPU seconds of all).
fn time_reel(
    runner: &mut Runner,
    net: &Network,
    x: &[f32],
    batch: usize,
    out: &mut [f32],
    n: usize,
) -> (Vec<f64>, f64) {
    let c0 = cpu_seconds();
    let ms = (0..n)
        .map(|_| {
            let t = Instant::now();
            runner.run(net, x, batch, 640, 640, out).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    (ms, cpu_seconds() - c0)
}

fn main() {
    let dir = data().join("yolov8n-random");
    let weights = dir.join("yolov8n_random.safetensors");
    let onnx = dir.join("yolov8n_random.onnx");
    let input = dir.join("input_messi5_640.f32");
    let rounds = env_usize("REEL_BENCH_RUNS", 10);
    let threads = env_usize("REEL_BENCH_THREADS", 2);
    let out_path = std::env::var_os("REEL_BENCH_OUT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/reel-bench/infer.json"),
        PathBuf::from,
    );
    let work = out_path.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&work).unwrap();

    let set = cpu::kernel_set().unwrap();
    let w = Weights::open(&weights, &Device::Cpu, DType::F32).expect("the fixture weights");
    let model = YoloV8::load(&w, None).unwrap();
    let net = model
        .build_cpu_network(if set == cpu::KernelSet::Candle {
            cpu::KernelSet::best()
        } else {
            set
        })
        .unwrap();
    let set = net.kernel_set();
    let x1: Vec<f32> = std::fs::read(&input)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut x8 = Vec::with_capacity(8 * x1.len());
    for _ in 0..8 {
        x8.extend_from_slice(&x1);
    }
    let per = net.rows() * Network::anchors(640, 640);
    let mut out = vec![0f32; 8 * per];
    let mut runner = Runner::new(threads);
    let macs = net.macs(640, 640) as f64;
    let executed = net.executed_macs(640, 640) as f64;

    let load_before = load_average();
    let peak_before = cpu::fma_peak_gflops(set, threads, 0.5).unwrap();
    let mut ort = match Ort::start(&onnx, threads, &input, &work) {
        Ok(o) => Some(o),
        Err(e) => {
            println!("onnxruntime: skipped ({e})");
            None
        }
    };
    // Warm-up: plans the buffers of both batch sizes.
    time_reel(&mut runner, &net, &x1, 1, &mut out, 2);
    time_reel(&mut runner, &net, &x8, 8, &mut out, 1);

    let (mut r1, mut r8, mut o1, mut o8) = (vec![], vec![], vec![], vec![]);
    let (mut r1_cpu, mut r8_cpu, mut o1_cpu, mut o8_cpu) = (0.0, 0.0, 0.0, 0.0);
    let mut layers: Vec<(String, f64, u64, u64)> = Vec::new();
    let per_round = 3;
    for _ in 0..rounds {
        let (ms, c) = time_reel(&mut runner, &net, &x1, 1, &mut out, per_round);
        r1.extend(ms);
        r1_cpu += c;
        for (i, l) in runner.layer_times(&net).into_iter().enumerate() {
            if layers.len() <= i {
                layers.push((l.name.clone(), 0.0, l.macs, l.executed_macs));
            }
            layers[i].1 += l.time.as_secs_f64() * 1e3 / rounds as f64;
        }
        if let Some(o) = &mut ort {
            let (ms, c) = o.time("b1", per_round);
            o1.extend(ms);
            o1_cpu += c;
        }
        let (ms, c) = time_reel(&mut runner, &net, &x8, 8, &mut out, 1);
        r8.extend(ms);
        r8_cpu += c;
        if let Some(o) = &mut ort {
            let (ms, c) = o.time("b8", 1);
            o8.extend(ms);
            o8_cpu += c;
        }
    }
    let peak = peak_before.max(cpu::fma_peak_gflops(set, threads, 0.5).unwrap());
    let load_after = load_average();

    let (b1, b8) = (median(&r1), median(&r8));
    let gflops = |ms: f64, images: f64| 2.0 * macs * images / (ms * 1e-3) / 1e9;
    // Fraction of the peak from the multiply-adds reel's kernels execute.
    let reel_peak = |ms: f64, images: f64| gflops(ms, images) * executed / macs / peak;
    let mut slowest: Vec<&(String, f64, u64, u64)> = layers.iter().collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let slowest: Vec<Value> = slowest
        .iter()
        .take(5)
        .map(|(name, ms, m, e)| {
            let g = |macs: u64| {
                if *ms > 0.0 {
                    2.0 * macs as f64 / (ms * 1e-3) / 1e9
                } else {
                    0.0
                }
            };
            json!({
                "layer": name,
                "ms": ms,
                "gmacs": *m as f64 / 1e9,
                "executed_gmacs": *e as f64 / 1e9,
                "gflops": g(*m),
                "fma_peak_fraction": g(*e) / peak,
            })
        })
        .collect();
    let reel = json!({
        "kernels": set.name(),
        "batch1_ms": b1,
        "batch1_ms_runs": r1,
        "batch8_ms": b8,
        "batch8_ms_runs": r8,
        "batch8_img_per_s": 8e3 / b8,
        "cpu_ms_per_image_batch1": r1_cpu * 1e3 / r1.len() as f64,
        "cpu_ms_per_image_batch8": r8_cpu * 1e3 / (8 * r8.len()) as f64,
        "gflops_batch1": gflops(b1, 1.0),
        "gflops_batch8": gflops(b8, 8.0),
        "executed_gmacs_per_image": executed / 1e9,
        "fma_peak_fraction_batch1": reel_peak(b1, 1.0),
        "fma_peak_fraction_batch8": reel_peak(b8, 8.0),
    });
    println!(
        "yolov8n 640x640, CPU, {threads} threads, {rounds} rounds, {set} kernels; multiply-add peak {peak:.0} GFLOP/s; load {load_before:.2} -> {load_after:.2}"
    );
    println!(
        "{:<14}{:>12}{:>14}{:>14}{:>14}{:>12}{:>12}",
        "", "b1 ms", "b1 cpu ms/img", "b8 img/s", "b8 cpu ms/img", "b1 peak", "b8 peak"
    );
    println!(
        "{:<14}{:>12.1}{:>14.1}{:>14.1}{:>14.1}{:>11.0}%{:>11.0}%",
        "reel",
        b1,
        reel["cpu_ms_per_image_batch1"].as_f64().unwrap(),
        8e3 / b8,
        reel["cpu_ms_per_image_batch8"].as_f64().unwrap(),
        100.0 * reel_peak(b1, 1.0),
        100.0 * reel_peak(b8, 8.0)
    );
    let mut report = json!({
        "model": "yolov8n (fixture, random weights)",
        "imgsz": 640,
        "threads": threads,
        "rounds": rounds,
        "gmacs_per_image": macs / 1e9,
        "fma_peak_gflops": peak,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "reel": reel,
        "slowest_layers_batch1": slowest,
        "layers_batch1": layers
            .iter()
            .map(|(name, ms, m, e)| {
                json!({"layer": name, "ms": ms, "gmacs": *m as f64 / 1e9, "executed_gmacs": *e as f64 / 1e9})
            })
            .collect::<Vec<_>>(),
    });
    if let Some(o) = &ort {
        let (ob1, ob8) = (median(&o1), median(&o8));
        let ort_json = json!({
            "version": o.info["version"],
            "batch8_how": o.info["batch8"],
            "batch1_ms": ob1,
            "batch1_ms_runs": o1,
            "batch8_ms": ob8,
            "batch8_ms_runs": o8,
            "batch8_img_per_s": 8e3 / ob8,
            "cpu_ms_per_image_batch1": o1_cpu * 1e3 / o1.len() as f64,
            "cpu_ms_per_image_batch8": o8_cpu * 1e3 / (8 * o8.len()) as f64,
            "fma_peak_fraction_batch1": gflops(ob1, 1.0) / peak,
            "fma_peak_fraction_batch8": gflops(ob8, 8.0) / peak,
        });
        println!(
            "{:<14}{:>12.1}{:>14.1}{:>14.1}{:>14.1}{:>11.0}%{:>11.0}%",
            "onnxruntime",
            ob1,
            ort_json["cpu_ms_per_image_batch1"].as_f64().unwrap(),
            8e3 / ob8,
            ort_json["cpu_ms_per_image_batch8"].as_f64().unwrap(),
            100.0 * gflops(ob1, 1.0) / peak,
            100.0 * gflops(ob8, 8.0) / peak
        );
        println!(
            "reel / ort: batch 1 latency {:.2}x, batch 8 throughput {:.2}x ({})",
            b1 / ob1,
            ob8 / b8,
            o.info["batch8"].as_str().unwrap_or("?")
        );
        report["onnxruntime"] = ort_json;
        report["latency_ratio_batch1"] = json!(b1 / ob1);
        report["throughput_ratio_batch8"] = json!(ob8 / b8);
    }
    println!("slowest layers at batch 1:");
    for l in report["slowest_layers_batch1"].as_array().unwrap() {
        println!(
            "  {:<22}{:>7.2} ms {:>7.1} GFLOP/s (as direct) {:>5.0}% of peak",
            l["layer"].as_str().unwrap(),
            l["ms"].as_f64().unwrap(),
            l["gflops"].as_f64().unwrap(),
            100.0 * l["fma_peak_fraction"].as_f64().unwrap()
        );
    }
    drop(ort);
    std::fs::write(
        &out_path,
        serde_json::to_string_pretty(&report).unwrap() + "\n",
    )
    .unwrap();
    println!("report: {}", out_path.display());
}
