//! Test videos made with ffmpeg's lavfi sources (once per test run, in a temp dir),
//! and the oracles: ffmpeg's `framemd5` and ffprobe's counts and timestamps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use reel_frame::Frame;
use tempfile::TempDir;

/// vtest.avi from Debian's opencv-doc.
pub const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

struct Dir {
    dir: TempDir,
    made: Mutex<HashMap<String, PathBuf>>,
}

fn dir() -> &'static Dir {
    static DIR: OnceLock<Dir> = OnceLock::new();
    DIR.get_or_init(|| Dir {
        dir: tempfile::tempdir().unwrap(),
        made: Mutex::new(HashMap::new()),
    })
}

/// A scratch directory for one test.
pub fn scratch() -> TempDir {
    tempfile::tempdir().unwrap()
}

/// Runs ffmpeg with `args` (quietly), panicking with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The file `name` in the shared directory, made once by `ffmpeg <args…> <path>`.
#[rustfmt::skip]
pub fn video(name: &str, args: &[&str]) -> PathBuf {
    let d = dir();
    let mut made = d.made.lock().unwrap();
    if let Some(p) = made.get(name) {
        return p.clone();
    }
    let path = d.dir.path().join(name);
    let mut all: Vec<&str> = args.to_vec();
    let p = path.to_str().unwrap().to_string();
    all.push(&p);
    ffmpeg(&all);
    made.insert(name.to_string(), path.clone());
    path
}

/// 2 s of testsrc2, 320x240 at 25 fps, H.264 in MP4 (50 frames, B-frames).
#[rustfmt::skip]
pub fn testsrc_mp4() -> PathBuf {
    video(
        "testsrc2.mp4",
        &[
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
            "-c:v", "libx264", "-preset", "veryfast", "-g", "12", "-pix_fmt", "yuv420p",
        ],
    )
}

/// 1.2 s of mandelbrot, 256x192 at 25 fps, MPEG-4 part 2 in AVI.
#[rustfmt::skip]
pub fn mandelbrot_avi() -> PathBuf {
    video(
        "mandelbrot.avi",
        &[
            "-f", "lavfi", "-i", "mandelbrot=size=256x192:rate=25",
            "-t", "1.2", "-c:v", "mpeg4", "-q:v", "4",
        ],
    )
}

/// 1 s of testsrc at an odd size (161x97), FFV1 in Matroska (4:2:0, so the chroma
/// planes round up).
#[rustfmt::skip]
pub fn odd_mkv() -> PathBuf {
    video(
        "odd.mkv",
        &[
            "-f", "lavfi", "-i", "testsrc=size=161x97:rate=30:duration=1",
            "-c:v", "ffv1", "-pix_fmt", "yuv420p",
        ],
    )
}

/// 1 s of testsrc, 160x120 at 24 fps, VP9 in WebM.
#[rustfmt::skip]
pub fn vp9_webm() -> PathBuf {
    video(
        "vp9.webm",
        &[
            "-f", "lavfi", "-i", "testsrc=size=160x120:rate=24:duration=1",
            "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k",
        ],
    )
}

/// 1 s of smptebars at 30000/1001 fps, MJPEG in MOV (full-range yuvj420p).
#[rustfmt::skip]
pub fn mjpeg_mov() -> PathBuf {
    video(
        "mjpeg.mov",
        &[
            "-f", "lavfi", "-i", "smptebars=size=192x108:rate=30000/1001:duration=1",
            "-c:v", "mjpeg", "-q:v", "3",
        ],
    )
}

/// Variable frame rate: 60 frames of testsrc2 whose intervals grow (33 ms to 80 ms),
/// H.264 in Matroska with millisecond timestamps.
#[rustfmt::skip]
pub fn vfr_mkv() -> PathBuf {
    video(
        "vfr.mkv",
        &[
            "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30",
            "-frames:v", "60",
            "-vf", "settb=1/1000,setpts='(N/30+0.4*(N/30)*(N/30))/TB'",
            "-fps_mode", "vfr", "-enc_time_base", "1/1000",
            "-c:v", "libx264", "-preset", "veryfast", "-g", "15",
        ],
    )
}

/// 4 s of testsrc2 at 25 fps with a keyframe every second, H.264 in MP4 with the
/// index at the front (so that a truncated copy still opens).
#[rustfmt::skip]
pub fn faststart_mp4() -> PathBuf {
    video(
        "faststart.mp4",
        &[
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
            "-c:v", "libx264", "-preset", "veryfast", "-g", "25",
            "-movflags", "+faststart",
        ],
    )
}

/// [`testsrc_mp4`] with a rotation of 90 degrees in its metadata, made in `dir`.
pub fn rotated_mp4(dir: &Path) -> PathBuf {
    let rotated = dir.join("rot.mp4");
    ffmpeg(&[
        "-i",
        testsrc_mp4().to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().unwrap(),
    ]);
    rotated
}

/// MD5s of ffmpeg's own frames (`-f framemd5`), rgb24 after `vf` (if any).
pub fn framemd5(path: &Path, vf: Option<&str>) -> Vec<String> {
    framemd5_as(path, vf, "rgb24")
}

/// MD5s of ffmpeg's own frames in `pix_fmt` after `vf` (if any).
pub fn framemd5_as(path: &Path, vf: Option<&str>, pix_fmt: &str) -> Vec<String> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0"]);
    if let Some(vf) = vf {
        cmd.args(["-vf", vf]);
    }
    let out = cmd
        .args(["-pix_fmt", pix_fmt, "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

/// MD5s of ffmpeg's first `frames` rgb24 frames.
pub fn framemd5_limited(path: &Path, frames: u32) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-frames:v", &frames.to_string()])
        .args(["-pix_fmt", "rgb24", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

/// ffprobe's count of decoded frames.
pub fn ffprobe_count(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// ffprobe's presentation times of every frame, from the stream's start.
pub fn ffprobe_times(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=start_time:frame=pts_time",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let start: f64 = v["streams"][0]["start_time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["pts_time"].as_str().unwrap().parse::<f64>().unwrap() - start)
        .collect()
}

/// MD5 of a frame's bytes, as framemd5 prints it.
pub fn md5(frame: &Frame) -> String {
    format!("{:x}", md5::compute(frame.data()))
}
