//! Letterbox and tensor layout against the reference YOLO input: `messi5.jpg`
//! letterboxed to 640x640 by ultralytics (OpenCV `INTER_LINEAR`, pad 114), RGB, /255.

use std::path::{Path, PathBuf};
use std::process::Command;

use reel_ops::letterbox::{Letterbox, letterbox_rgb};
use reel_ops::resize::{Filter, Resizer};
use reel_ops::tensor::rgb_to_chw_f32;

use crate::util::ffmpeg;

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
        println!("note: skipped, needs {} and {MESSI}", fixture.display());
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
    let mut resizer = Resizer::new(Filter::Bilinear);
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
            println!(
                "note: skipped, needs python3 with OpenCV (pip install opencv-python-headless)"
            );
            return;
        }
    };
    let diffs = diff_levels(&rgb, &reference);
    let max = diffs.iter().cloned().fold(0f32, f32::max);
    let exact = diffs.iter().filter(|&&d| d < 1e-3).count() as f32 / diffs.len() as f32;
    println!(
        "messi5 letterbox vs reference (OpenCV decode): max {max:.3} levels, {:.2}% equal",
        exact * 100.0
    );
    assert!(max <= 1.0 + 1e-3, "max difference {max} levels");
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
