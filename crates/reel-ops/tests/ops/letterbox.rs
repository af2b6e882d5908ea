//! Letterbox and tensor layout against the reference YOLO input: `messi5.jpg`
//! letterboxed to 640x640 by ultralytics (OpenCV `INTER_LINEAR`, pad 114), RGB, /255.

use std::path::{Path, PathBuf};
use std::process::Command;

use reel_ops::cv_linear::CvLinear;
use reel_ops::letterbox::{Letterbox, letterbox_rgb};
use reel_ops::tensor::rgb_to_chw_f32;

use crate::util::{ffmpeg, python};

const MESSI: &str = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg";

fn shared_data() -> PathBuf {
    match std::env::var_os("REEL_SHARED_DATA") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    }
}

/// The reference input as floats.
fn reference() -> Option<Vec<f32>> {
    let fixture = shared_data().join("yolov8n-random/input_messi5_640.f32");
    if !fixture.exists() || !Path::new(MESSI).exists() {
        crate::oracle::missing(&format!(
            "{} and {MESSI} (Debian package opencv-doc)",
            fixture.display()
        ));
        return None;
    }
    let floats: Vec<f32> = std::fs::read(&fixture)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(floats.len(), 3 * 640 * 640);
    Some(floats)
}

/// Letterboxes a decoded messi5.jpg (548x342 RGB24) and lays it out as the model's
/// input; returns per-element differences from `reference`, in 8-bit levels.
fn diff_levels(rgb: &[u8], reference: &[f32]) -> Vec<f32> {
    assert_eq!(rgb.len(), 548 * 342 * 3);
    let mut resizer = CvLinear::new();
    let mut boxed = vec![0u8; 640 * 640 * 3];
    let lb = letterbox_rgb(&mut resizer, rgb, 548, 342, &mut boxed, 640, 640, 114).unwrap();
    assert_eq!(lb, Letterbox::compute(548, 342, 640, 640));
    assert_eq!(
        (lb.new_w, lb.new_h, lb.top, lb.bottom()),
        (640, 399, 120, 121)
    );
    let mut tensor = vec![0f32; 3 * 640 * 640];
    rgb_to_chw_f32(&boxed, 640, 640, &mut tensor).unwrap();
    // Padding rows are exactly 114/255 in every plane, in both.
    let pad = 114.0 / 255.0;
    for (a, b) in tensor
        .chunks_exact(640 * 640)
        .zip(reference.chunks_exact(640 * 640))
    {
        for row in (0..120).chain(519..640) {
            let (a, b) = (&a[row * 640..][..640], &b[row * 640..][..640]);
            assert!(a.iter().chain(b).all(|&v| v == pad), "row {row}");
        }
    }
    tensor
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs() * 255.0)
        .collect()
}

#[test]
fn letterbox_of_the_same_pixels_matches_the_reference_input() {
    // Decoded by OpenCV, as the reference was: then only the resize can differ.
    let Some(reference) = reference() else { return };
    let decode = format!(
        "import cv2, sys; im = cv2.imread({MESSI:?}); \
         sys.stdout.buffer.write(cv2.cvtColor(im, cv2.COLOR_BGR2RGB).tobytes())"
    );
    let out = Command::new("python3").args(["-c", &decode]).output();
    let rgb = match out {
        Ok(out) if out.status.success() => out.stdout,
        _ => {
            crate::oracle::missing("python3 with OpenCV (pip install opencv-python-headless)");
            return;
        }
    };
    let diffs = diff_levels(&rgb, &reference);
    let max = diffs.iter().cloned().fold(0f32, f32::max);
    println!("messi5 letterbox vs reference (OpenCV decode): max {max:.3} levels");
    // The same pixels letterboxed the same way: the same floats, exactly.
    assert_eq!(max, 0.0, "max difference {max} levels");
}

#[test]
fn letterbox_of_ffmpegs_decode_is_close_to_the_reference_input() {
    let Some(reference) = reference() else { return };
    // ffmpeg's JPEG decoder differs from libjpeg's by 1.5 levels on average (more at
    // colour edges), so this bound is loose; the test above is the tight one.
    let rgb = ffmpeg(
        &["-i", MESSI, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        &[],
    );
    let diffs = diff_levels(&rgb, &reference);
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    let within_3 = diffs.iter().filter(|&&d| d <= 3.0 + 1e-3).count() as f32 / diffs.len() as f32;
    println!(
        "messi5 letterbox vs reference (ffmpeg decode): mean {mean:.3} levels, {:.2}% within 3",
        within_3 * 100.0
    );
    assert!(mean < 1.0, "mean difference {mean} levels");
    assert!(within_3 > 0.95, "only {within_3} within 3 levels");
}

/// ultralytics' `LetterBox` (center, scale up, grey 114) with OpenCV, for every
/// case of the input: `u32` count, then per case `u32` source width, height,
/// target width, height and the packed RGB pixels; out: the letterboxed pixels.
const ULTRALYTICS_LETTERBOX: &str = r#"
import sys, struct
import numpy as np, cv2
data = sys.stdin.buffer.read()
n, = struct.unpack_from("<I", data, 0); at = 4
out = []
for _ in range(n):
    w, h, tw, th = struct.unpack_from("<4I", data, at); at += 16
    img = np.frombuffer(data, np.uint8, w * h * 3, at).reshape(h, w, 3); at += w * h * 3
    r = min(th / h, tw / w)
    new_unpad = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (tw - new_unpad[0]) / 2, (th - new_unpad[1]) / 2
    if (w, h) != new_unpad:
        img = cv2.resize(img, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    assert img.shape == (th, tw, 3), img.shape
    out.append(img.tobytes())
sys.stdout.buffer.write(b"".join(out))
"#;

#[test]
fn letterbox_is_byte_for_byte_ultralytics_over_random_sizes() {
    // Sources smaller (upscaling) and larger (downscaling) than the targets, odd
    // and even, wide and tall, with noise (every pixel different from its
    // neighbours: any difference of rounding shows).
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut cases = Vec::new();
    for i in 0..64u64 {
        let (tw, th) = [(640, 640), (320, 320), (256, 320)][(i % 3) as usize];
        let (w, h) = if i % 2 == 0 {
            // Upscale: both sides under the target.
            (9 + next() % (tw - 9), 7 + next() % (th - 7))
        } else {
            // Downscale: at least one side over the target.
            (tw + 1 + next() % 1400, 5 + next() % 1200)
        };
        let (w, h) = if i % 4 == 3 { (h, w) } else { (w, h) };
        let pixels: Vec<u8> = (0..w * h * 3).map(|_| (next() >> 24) as u8).collect();
        cases.push((w as u32, h as u32, tw as u32, th as u32, pixels));
    }
    let mut input = (cases.len() as u32).to_le_bytes().to_vec();
    for (w, h, tw, th, px) in &cases {
        for v in [w, h, tw, th] {
            input.extend_from_slice(&v.to_le_bytes());
        }
        input.extend_from_slice(px);
    }
    // `python` reports a missing oracle itself.
    let Some(reference) = python(&["cv2", "numpy"], ULTRALYTICS_LETTERBOX, &input) else {
        return;
    };
    let mut resizer = CvLinear::new();
    let mut at = 0;
    let (mut up, mut down) = (0, 0);
    for (w, h, tw, th, px) in &cases {
        let n = (*tw * *th * 3) as usize;
        let mut ours = vec![0u8; n];
        let lb = letterbox_rgb(&mut resizer, px, *w, *h, &mut ours, *tw, *th, 114).unwrap();
        let theirs = &reference[at..at + n];
        at += n;
        let differ = ours.iter().zip(theirs).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ, 0,
            "{w}x{h} into {tw}x{th} (resized to {}x{}): {differ} bytes differ from ultralytics'",
            lb.new_w, lb.new_h
        );
        if lb.scale > 1.0 { up += 1 } else { down += 1 }
    }
    assert_eq!(at, reference.len());
    println!(
        "letterbox: {} random sizes ({up} upscaled, {down} downscaled) byte for byte ultralytics'",
        cases.len()
    );
    assert!(up >= 20 && down >= 20, "{up} up, {down} down");
}
