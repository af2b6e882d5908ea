//! The model's raw output to detections: confidence filter, class-aware
//! non-maximum suppression (NaN-safe), boxes mapped back to the source picture's
//! pixels and clamped to it.

use std::cmp::Ordering;

use reel_frame::{BBox, Detection, Label};
use reel_ops::letterbox::Letterbox;

/// Candidates kept for suppression at most (ultralytics' `max_nms`).
const MAX_NMS: usize = 30_000;

/// What to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct PostConfig {
    /// Keep detections scoring above this.
    pub conf: f32,
    /// Suppress a box overlapping a better one of its class by more than this IoU.
    pub iou: f32,
    /// Keep only these classes (`None`: all).
    pub classes: Option<Vec<u32>>,
    /// Keep at most this many per picture, best first.
    pub max_det: usize,
}

impl Default for PostConfig {
    fn default() -> Self {
        Self {
            conf: 0.25,
            iou: 0.45,
            classes: None,
            max_det: 300,
        }
    }
}

/// A detection before suppression, in model-input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The box.
    pub bbox: BBox,
    /// Its score.
    pub conf: f32,
    /// Its class.
    pub class_id: u32,
}

/// Candidates from one picture's output, `rows = 4 + classes` rows of `anchors`
/// values (`[cx, cy, w, h, scores…]` per anchor, as the model returns them): each
/// anchor's best class (NaN scores never win), kept when it scores above `conf` and
/// its class is wanted.
pub fn candidates(out: &[f32], anchors: usize, cfg: &PostConfig, into: &mut Vec<Candidate>) {
    into.clear();
    if anchors == 0 || out.len() < 5 * anchors {
        return;
    }
    let nc = out.len() / anchors - 4;
    for a in 0..anchors {
        let mut best = f32::NEG_INFINITY;
        let mut class = usize::MAX;
        for c in 0..nc {
            let s = out[(4 + c) * anchors + a];
            if s > best {
                best = s;
                class = c;
            }
        }
        // `>` is false for NaN: an anchor whose scores are all NaN is dropped here.
        if class == usize::MAX || best <= cfg.conf {
            continue;
        }
        let class_id = class as u32;
        if let Some(keep) = &cfg.classes
            && !keep.contains(&class_id)
        {
            continue;
        }
        let (cx, cy, w, h) = (
            out[a],
            out[anchors + a],
            out[2 * anchors + a],
            out[3 * anchors + a],
        );
        into.push(Candidate {
            bbox: BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0),
            conf: best,
            class_id,
        });
    }
}

/// Class-aware greedy non-maximum suppression in place: best score first (NaN
/// scores are dropped, the sort never panics), a box goes when it overlaps a kept
/// box of the same class by more than `iou`; at most `max_det` stay.
pub fn nms(cands: &mut Vec<Candidate>, iou: f32, max_det: usize) {
    cands.retain(|c| !c.conf.is_nan());
    cands.sort_by(|a, b| b.conf.total_cmp(&a.conf));
    cands.truncate(MAX_NMS);
    let mut kept = 0;
    for i in 0..cands.len() {
        if kept == max_det {
            break;
        }
        let c = cands[i];
        let suppressed = cands[..kept]
            .iter()
            .any(|k| k.class_id == c.class_id && k.bbox.iou(&c.bbox) > iou);
        if !suppressed {
            cands[kept] = c;
            kept += 1;
        }
    }
    cands.truncate(kept);
}

/// Kept candidates as detections in the source picture's pixels (`src_w` x
/// `src_h`), clamped to it; labels from `labels` (`class{N}` past its end).
pub fn to_detections(
    cands: &[Candidate],
    lb: &Letterbox,
    src_w: u32,
    src_h: u32,
    labels: &[Label],
) -> Vec<Detection> {
    cands
        .iter()
        .map(|c| Detection {
            class_id: c.class_id,
            label: labels
                .get(c.class_id as usize)
                .cloned()
                .unwrap_or_else(|| Label::new(&format!("class{}", c.class_id))),
            conf: c.conf,
            bbox: lb.map_back(c.bbox, src_w, src_h),
        })
        .collect()
}

/// Orders detections best first (NaN last), for callers merging lists.
pub fn by_confidence(a: &Detection, b: &Detection) -> Ordering {
    b.conf.total_cmp(&a.conf)
}
