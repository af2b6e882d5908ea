//! Shared helpers: running ffmpeg on raw bytes, and test pictures.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Runs `ffmpeg` with `args`, feeding `input` on stdin, and returns its stdout.
/// Panics with ffmpeg's message if it fails (ffmpeg is a test dependency).
pub fn ffmpeg(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg must be installed to run these tests");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // ffmpeg may stop reading early when it has what it needs.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Converts raw `from` pixels to raw `to` pixels with ffmpeg's swscale.
pub fn ffmpeg_convert(src: &[u8], from: &str, to: &str, w: u32, h: u32) -> Vec<u8> {
    let size = format!("{w}x{h}");
    ffmpeg(
        &[
            "-f", "rawvideo", "-pix_fmt", from, "-s", &size, "-i", "-", "-f", "rawvideo",
            "-pix_fmt", to, "-",
        ],
        src,
    )
}

/// A smooth RGB24 picture (low-frequency waves per channel), where chroma
/// subsampling and filter details matter little.
pub fn smooth_rgb(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f64, y as f64);
            let r = 128.0 + 120.0 * (fx / 23.0).sin() * (fy / 31.0).cos();
            let g = 128.0 + 120.0 * ((fx + fy) / 37.0).cos();
            let b = 128.0 + 120.0 * (fy / 19.0).sin();
            v.extend([r as u8, g as u8, b as u8]);
        }
    }
    v
}

/// A detailed RGB24 picture: a deterministic pseudo-random texture over a gradient.
pub fn textured_rgb(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3u32 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let base = (x * 255 / w + y * 97 / h + c * 60) % 256;
                v.push(((base + (state % 64)) % 256) as u8);
            }
        }
    }
    v
}

/// Largest absolute difference between two byte slices of the same length.
pub fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// Mean absolute difference between two byte slices of the same length.
pub fn mean_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

/// Width and height of the first video stream of `path`.
pub fn probe_size(path: &Path) -> (u32, u32) {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe must be installed to run these tests");
    let text = String::from_utf8_lossy(&probe.stdout);
    let mut dims = text.trim().split(',').map(|v| v.parse::<u32>().unwrap());
    (dims.next().unwrap(), dims.next().unwrap())
}

/// Reads `w` x `h` BGR24 frames from `child`'s stdout into `each` until it ends.
fn stream_frames(mut child: Child, w: u32, h: u32, mut each: impl FnMut(u64, &[u8])) -> u64 {
    let mut out = child.stdout.take().unwrap();
    let mut frame = vec![0u8; (w * h * 3) as usize];
    let mut n = 0;
    while out.read_exact(&mut frame).is_ok() {
        each(n, &frame);
        n += 1;
    }
    assert!(child.wait().unwrap().success());
    n
}

/// Decodes every frame of `path` to packed BGR24 with ffmpeg and hands them to
/// `each` one at a time; returns the count.
pub fn decode_bgr(path: &Path, each: impl FnMut(u64, &[u8])) -> u64 {
    let (w, h) = probe_size(path);
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(path)
        .args([
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "bgr24",
            "-",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg must be installed to run these tests");
    stream_frames(child, w, h, each)
}

/// The same with OpenCV's `VideoCapture` (as PySceneDetect decodes), if python3
/// has it; `None` otherwise.
pub fn decode_bgr_opencv(path: &Path, each: impl FnMut(u64, &[u8])) -> Option<u64> {
    python(&["cv2"], "pass", &[])?;
    let (w, h) = probe_size(path);
    let script = format!(
        "import sys, cv2\ncap = cv2.VideoCapture({:?})\nwhile True:\n    ok, f = cap.read()\n    if not ok: break\n    sys.stdout.buffer.write(f.tobytes())",
        path.to_string_lossy()
    );
    let child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    Some(stream_frames(child, w, h, each))
}

/// Runs `python3 -c script` with `input` on stdin if python3 can import every
/// module in `modules`; `None` otherwise (see [`crate::oracle::missing`]).
pub fn python(modules: &[&str], script: &str, input: &[u8]) -> Option<Vec<u8>> {
    let check = format!("import {}", modules.join(", "));
    let available = Command::new("python3")
        .args(["-c", &check])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        crate::oracle::missing(&format!(
            "python3 with {} (pip install scenedetect opencv-python-headless)",
            modules.join(", ")
        ));
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "python3 script failed");
    Some(out.stdout)
}
