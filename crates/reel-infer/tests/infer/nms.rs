//! Postprocessing against hand-computed cases.

use reel_frame::{BBox, Label};
use reel_infer::PostConfig;
use reel_infer::postprocess::{Candidate, candidates, nms, to_detections};
use reel_ops::letterbox::Letterbox;

fn cand(x1: f32, y1: f32, x2: f32, y2: f32, conf: f32, class_id: u32) -> Candidate {
    Candidate {
        bbox: BBox::new(x1, y1, x2, y2),
        conf,
        class_id,
    }
}

#[test]
fn suppression_is_per_class_and_best_first() {
    let mut c = vec![
        // Two boxes of class 0 overlapping by IoU 81/119 = 0.68: the weaker goes.
        cand(0.0, 0.0, 10.0, 10.0, 0.8, 0),
        cand(1.0, 1.0, 11.0, 11.0, 0.9, 0),
        // The same place in class 1 stays.
        cand(0.0, 0.0, 10.0, 10.0, 0.7, 1),
        // Overlap 50/150 = 0.33 with the best: under 0.45, stays.
        cand(6.0, 1.0, 16.0, 11.0, 0.6, 0),
    ];
    nms(&mut c, 0.45, 300);
    let kept: Vec<(f32, u32)> = c.iter().map(|c| (c.conf, c.class_id)).collect();
    assert_eq!(kept, [(0.9, 0), (0.7, 1), (0.6, 0)]);
}

#[test]
fn nan_scores_neither_panic_nor_survive() {
    let mut c = vec![
        cand(0.0, 0.0, 10.0, 10.0, f32::NAN, 0),
        cand(0.0, 0.0, 10.0, 10.0, 0.5, 0),
        cand(50.0, 50.0, 60.0, 60.0, f32::NAN, 2),
        cand(20.0, 20.0, 30.0, 30.0, 0.4, 0),
    ];
    nms(&mut c, 0.45, 300);
    let kept: Vec<f32> = c.iter().map(|c| c.conf).collect();
    assert_eq!(kept, [0.5, 0.4]);
}

#[test]
fn max_det_keeps_the_best() {
    let mut c: Vec<Candidate> = (0..10)
        .map(|i| {
            cand(
                i as f32 * 20.0,
                0.0,
                i as f32 * 20.0 + 10.0,
                10.0,
                i as f32 / 10.0,
                0,
            )
        })
        .collect();
    nms(&mut c, 0.45, 3);
    let kept: Vec<f32> = c.iter().map(|c| c.conf).collect();
    assert_eq!(kept, [0.9, 0.8, 0.7]);
}

/// Output rows for 3 anchors and 2 classes: `[cx, cy, w, h, s0, s1]` per anchor.
fn output(anchors: &[[f32; 6]]) -> Vec<f32> {
    let n = anchors.len();
    let mut out = vec![0f32; 6 * n];
    for (a, v) in anchors.iter().enumerate() {
        for (r, x) in v.iter().enumerate() {
            out[r * n + a] = *x;
        }
    }
    out
}

#[test]
fn candidates_take_each_anchors_best_class_above_the_threshold() {
    let out = output(&[
        [100.0, 200.0, 20.0, 40.0, 0.3, 0.9],
        [50.0, 50.0, 10.0, 10.0, 0.2, 0.1],
        [10.0, 10.0, 4.0, 4.0, f32::NAN, 0.6],
        [5.0, 5.0, 2.0, 2.0, f32::NAN, f32::NAN],
    ]);
    let cfg = PostConfig::default();
    let mut c = Vec::new();
    candidates(&out, 4, &cfg, &mut c);
    assert_eq!(
        c,
        [
            cand(90.0, 180.0, 110.0, 220.0, 0.9, 1),
            cand(8.0, 8.0, 12.0, 12.0, 0.6, 1),
        ]
    );
    // A class filter drops anchors whose best class is not wanted.
    let cfg = PostConfig {
        classes: Some(vec![0]),
        ..PostConfig::default()
    };
    candidates(&out, 4, &cfg, &mut c);
    assert!(c.is_empty());
}

#[test]
fn boxes_map_back_to_the_source_and_are_clamped() {
    // 1280x720 into 640x640: scale 0.5, 640x360, 140 rows of padding on top.
    let lb = Letterbox::compute(1280, 720, 640, 640);
    assert_eq!((lb.new_h, lb.top), (360, 140));
    let c = [
        // (100, 240)-(200, 340) -> x/0.5, (y-140)/0.5 = (200, 200)-(400, 400).
        cand(100.0, 240.0, 200.0, 340.0, 0.9, 0),
        // Reaching into the padding and past the right edge: clamped.
        cand(600.0, 100.0, 700.0, 200.0, 0.8, 80),
    ];
    let labels = [Label::new("person")];
    let d = to_detections(&c, &lb, 1280, 720, &labels);
    assert_eq!(d[0].bbox, BBox::new(200.0, 200.0, 400.0, 400.0));
    assert_eq!(d[0].label.as_str(), "person");
    assert_eq!(d[1].bbox, BBox::new(1200.0, 0.0, 1280.0, 120.0));
    assert_eq!(d[1].label.as_str(), "class80");
}
