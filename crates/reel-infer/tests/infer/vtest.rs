//! End to end against ultralytics' own `predict`: frames 0, 100, …, 700 of
//! vtest.avi, the fixture's random-weight YOLOv8n with its class biases lowered
//! (`tests/fixtures/make_vtest_reference.py` made the reference detections,
//! `tests/fixtures/vtest_reference.json`), square letterbox at 640, conf 0.25,
//! iou 0.45. The frames are decoded by OpenCV as ultralytics decoded them (the
//! test checks they are the same bytes); the letterbox, the network, the
//! confidence filter, NMS and the mapping back are reel's. The detections must be
//! the same sets: same class, IoU >= 0.9, confidence within 0.02.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use reel_frame::Detection;
use reel_infer::{DetectConfig, Detector, ImageRef, LoadedModel, PostConfig, Precision};
use serde_json::Value;

use crate::{fixture_tensors, load_net};

const VIDEO: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

/// Decodes `frames` of the video with OpenCV: (BGR bytes, their SHA-256) each.
const DECODE: &str = r#"
import sys, hashlib, cv2
want = [int(a) for a in sys.argv[2:]]
cap = cv2.VideoCapture(sys.argv[1]); i = 0
while i <= want[-1]:
    ok, f = cap.read()
    assert ok, i
    if i in want:
        b = f.tobytes()
        sys.stdout.buffer.write(hashlib.sha256(b).hexdigest().encode() + b"\n" + b)
    i += 1
"#;

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

#[test]
fn detections_on_vtest_match_ultralytics_predict() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vtest_reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let frames = reference["frames"].as_array().unwrap();
    let indices: Vec<String> = frames.iter().map(|f| f["frame"].to_string()).collect();
    let decoded = if Path::new(VIDEO).is_file() {
        Command::new("python3")
            .args(["-c", DECODE, VIDEO])
            .args(&indices)
            .output()
            .ok()
            .filter(|o| o.status.success())
    } else {
        None
    };
    let Some(decoded) = decoded else {
        crate::oracle::missing(&format!(
            "{VIDEO} (Debian opencv-doc) and python3 with cv2 (pip install opencv-python-headless)"
        ));
        return;
    };

    // The model of the reference: the fixture with its class biases shifted.
    let shift = reference["cls_bias_shift"].as_f64().unwrap();
    let mut t = fixture_tensors();
    for i in 0..3 {
        let name = format!("model.22.cv3.{i}.2.bias");
        let b = (&t[&name] + shift).unwrap();
        t.insert(name, b);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vtest_model.safetensors");
    candle_core::safetensors::save(&t, &path).unwrap();
    let net = load_net(&path).unwrap();
    let model = Arc::new(LoadedModel {
        labels: LoadedModel::labels_for(net.num_classes()),
        net,
        name: "vtest".into(),
        path,
        device: "cpu".into(),
        precision: Precision::F32,
    });
    let config = DetectConfig {
        imgsz: 640,
        post: PostConfig {
            conf: 0.25,
            iou: 0.45,
            ..PostConfig::default()
        },
    };
    let detector = Detector::with_threads(model, config, 8, 2).unwrap();

    let (w, h) = (768usize, 576usize);
    let mut rest = &decoded.stdout[..];
    let mut pictures = Vec::new();
    for f in frames {
        let (hash, after) = rest.split_at(64);
        assert_eq!(
            std::str::from_utf8(hash).unwrap(),
            f["bgr_sha256"].as_str().unwrap(),
            "frame {}: OpenCV here decodes other pixels than the reference's",
            f["frame"]
        );
        let (bgr, after) = after[1..].split_at(w * h * 3);
        rest = after;
        let rgb: Vec<u8> = bgr
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        pictures.push(rgb);
    }
    let images: Vec<ImageRef<'_>> = pictures
        .iter()
        .map(|p| ImageRef {
            data: p,
            width: w as u32,
            height: h as u32,
        })
        .collect();
    let found: Vec<Vec<Detection>> = detector.detect(&images).unwrap();

    let (mut total, mut worst_iou, mut worst_conf) = (0, 1f32, 0f32);
    for (f, ours) in frames.iter().zip(&found) {
        let theirs = f["detections"].as_array().unwrap();
        let mut used = vec![false; ours.len()];
        for d in theirs {
            let class = d["class_id"].as_u64().unwrap() as u32;
            let conf = d["conf"].as_f64().unwrap() as f32;
            let b: Vec<f32> = d["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let b = [b[0], b[1], b[2], b[3]];
            let best = ours
                .iter()
                .enumerate()
                .filter(|(i, o)| !used[*i] && o.class_id == class)
                .map(|(i, o)| {
                    (
                        i,
                        iou(&b, &[o.bbox.x1, o.bbox.y1, o.bbox.x2, o.bbox.y2]),
                        (o.conf - conf).abs(),
                    )
                })
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((i, iou, dc)) = best.filter(|&(_, iou, dc)| iou >= 0.9 && dc <= 0.02) else {
                panic!(
                    "frame {}: ultralytics' {d} has no match among reel's {ours:?}",
                    f["frame"]
                );
            };
            used[i] = true;
            worst_iou = worst_iou.min(iou);
            worst_conf = worst_conf.max(dc);
        }
        assert_eq!(
            ours.len(),
            theirs.len(),
            "frame {}: reel found {} detections, ultralytics {}",
            f["frame"],
            ours.len(),
            theirs.len()
        );
        total += theirs.len();
    }
    println!(
        "vtest.avi: {total} detections in {} frames matched ultralytics' predict (worst IoU {worst_iou:.5}, worst |Δconf| {worst_conf:.2e})",
        frames.len()
    );
    assert!(total >= 50, "only {total} reference detections");
}
