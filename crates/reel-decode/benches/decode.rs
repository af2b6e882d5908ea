//! Decode throughput of reel's ffmpeg backend against ffmpeg alone on the same file.
//!
//! For a 720p and a 1080p H.264 file (testsrc2, made once with ffmpeg and kept in
//! the target directory), measures frames per second of
//! - `ffmpeg -i X -f rawvideo -pix_fmt rgb24 - > /dev/null` (and with
//!   `-vf scale=640:360`): the baseline, the decoder's own limit;
//! - reel: `reel_decode::open` with rgb24 at native size (and at 640x360), every frame
//!   read into a pooled buffer and dropped, through the ffmpeg child process and,
//!   when built with the `libav` feature, in process (`Backend::Libav`: reel-ops'
//!   area resize and conversion instead of swscale);
//!
//! and reports reel's rates as ratios of ffmpeg's. Runs are interleaved and the
//! median of `REEL_BENCH_RUNS` (default 3) is kept. The report is written as JSON to
//! `REEL_BENCH_OUT` (default `target/reel-bench/decode.json`) and printed.
//! `REEL_BENCH_SECONDS` sets the length of the test files (default 10).
//!
//! Run with `cargo bench -p reel-decode --bench decode`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use reel_decode::{Backend, DecodeOptions, HwAccel};
use reel_frame::PixelFormat;
use reel_pool::FramePool;
use serde_json::{Value, json};

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The test file `name`, made once: `seconds` of testsrc2 at `size`, 30 fps, H.264.
fn video(dir: &Path, name: &str, size: &str, seconds: u32) -> PathBuf {
    let path = dir.join(format!("{name}-{seconds}s.mp4"));
    if path.exists() {
        return path;
    }
    eprintln!("making {} …", path.display());
    let tmp = dir.join(format!("{name}-{seconds}s.tmp.mp4"));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=30:duration={seconds}"))
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .arg(&tmp)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not make {name}");
    std::fs::rename(&tmp, &path).expect("rename");
    path
}

/// Seconds for ffmpeg alone to decode `path` to rgb24 (after `vf`) into /dev/null.
fn ffmpeg_alone(path: &Path, vf: Option<&str>) -> f64 {
    let null = File::create("/dev/null").expect("/dev/null");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path);
    if let Some(vf) = vf {
        cmd.args(["-vf", vf]);
    }
    cmd.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdout(Stdio::from(null));
    let start = Instant::now();
    let status = cmd.status().expect("ffmpeg runs");
    assert!(status.success());
    start.elapsed().as_secs_f64()
}

/// Seconds for reel to deliver every frame of `path`, and the frame count.
fn reel(path: &Path, size: Option<(u32, u32)>, backend: Backend) -> (f64, u64, usize) {
    let pool = FramePool::with_budget(512 << 20);
    let mut opts = DecodeOptions::default()
        .with_hwaccel(HwAccel::None)
        .with_backend(backend)
        .with_format(PixelFormat::Rgb24);
    opts.size = size;
    let start = Instant::now();
    let mut src =
        reel_decode::open(path.to_str().expect("utf-8 path"), &opts, &pool).expect("open");
    let mut n = 0u64;
    while let Some(frame) = src.read_frame() {
        let frame = frame.expect("frame");
        std::hint::black_box(frame.data()[0]);
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    (secs, n, pool.stats().peak_bytes)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let runs = env_u32("REEL_BENCH_RUNS", 3).max(1);
    let seconds = env_u32("REEL_BENCH_SECONDS", 10).max(1);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reel-decode-bench");
    std::fs::create_dir_all(&dir).expect("bench directory");
    let out = std::env::var_os("REEL_BENCH_OUT").map_or_else(
        || {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .unwrap_or(Path::new("."))
                .join("reel-bench/decode.json")
        },
        PathBuf::from,
    );

    let files = [
        ("720p", video(&dir, "testsrc2-720p", "1280x720", seconds)),
        ("1080p", video(&dir, "testsrc2-1080p", "1920x1080", seconds)),
    ];
    let mut cases = Vec::new();
    println!(
        "{:<7} {:<10} {:>8} {:>10} {:>10} {:>7} {:>13} {:>13}",
        "file",
        "output",
        "frames",
        "ffmpeg fps",
        "reel fps",
        "ratio",
        "in-proc fps",
        "in-proc ratio"
    );
    for (label, path) in &files {
        let frames = reel(path, None, Backend::Ffmpeg).1;
        for (output, size, vf) in [
            ("native", None, None),
            ("640x360", Some((640, 360)), Some("scale=640:360")),
        ] {
            let (mut base, mut ours, mut inproc, mut peak) =
                (Vec::new(), Vec::new(), Vec::new(), 0);
            for _ in 0..runs {
                base.push(ffmpeg_alone(path, vf));
                let (secs, n, p) = reel(path, size, Backend::Ffmpeg);
                assert_eq!(n, frames, "every frame is delivered");
                ours.push(secs);
                peak = peak.max(p);
                if reel_decode::LIBAV {
                    let (secs, n, _) = reel(path, size, Backend::Libav);
                    assert_eq!(n, frames, "every frame is delivered in process");
                    inproc.push(secs);
                }
            }
            let base_fps = frames as f64 / median(base.clone());
            let reel_fps = frames as f64 / median(ours.clone());
            let ratio = reel_fps / base_fps;
            let inproc_fps = (!inproc.is_empty()).then(|| frames as f64 / median(inproc.clone()));
            let inproc_ratio = inproc_fps.map(|f| f / base_fps);
            let show = |v: Option<f64>, digits: usize| {
                v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
            };
            println!(
                "{label:<7} {output:<10} {frames:>8} {base_fps:>10.1} {reel_fps:>10.1} {ratio:>7.3} {:>13} {:>13}",
                show(inproc_fps, 1),
                show(inproc_ratio, 3)
            );
            cases.push(json!({
                "file": label,
                "output": output,
                "frames": frames,
                "ffmpeg_fps": base_fps,
                "reel_fps": reel_fps,
                "ratio": ratio,
                "ffmpeg_seconds": base,
                "reel_seconds": ours,
                "reel_in_process_fps": inproc_fps,
                "ratio_in_process": inproc_ratio,
                "reel_in_process_seconds": inproc,
                "pool_peak_bytes": peak,
            }));
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report: Value = json!({
        "bench": "decode",
        "baseline": "ffmpeg -i X [-vf scale=640:360] -f rawvideo -pix_fmt rgb24 - > /dev/null",
        "runs": runs,
        "file_seconds": seconds,
        "cores": cores,
        "ffmpeg": reel_decode::hw::HwReport::detect(&Default::default()).ffmpeg,
        "cases": cases,
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).expect("report directory");
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report).expect("json"))
        .expect("write report");
    println!("report: {}", out.display());
}
