//! Batches give what single pictures give; a batch that runs out of memory is
//! split and completes with the same results.

use std::sync::Arc;
use std::time::Duration;

use reel_frame::{Detection, Frame, PixelFormat};
use reel_infer::{DetectConfig, DetectStage, Detector, ImageRef, PostConfig};
use reel_pool::FramePool;
use reel_sched::Stage;

use crate::{fixture_model, messi};

/// Eight different pictures made from the photograph: sizes, crops, flips.
pub fn pictures() -> Option<Vec<image::RgbImage>> {
    let m = messi()?;
    let f = image::imageops::FilterType::Triangle;
    Some(vec![
        m.clone(),
        image::imageops::resize(&m, 320, 200, f),
        image::imageops::crop_imm(&m, 100, 20, 300, 300).to_image(),
        image::imageops::flip_horizontal(&m),
        image::imageops::resize(&m, 200, 400, f),
        image::imageops::crop_imm(&m, 0, 0, 548, 100).to_image(),
        image::imageops::flip_vertical(&m),
        image::imageops::rotate90(&m),
    ])
}

fn refs(p: &[image::RgbImage]) -> Vec<ImageRef<'_>> {
    p.iter()
        .map(|i| ImageRef {
            data: i.as_raw(),
            width: i.width(),
            height: i.height(),
        })
        .collect()
}

fn detector(batch: usize) -> Detector {
    let config = DetectConfig {
        imgsz: 320,
        post: PostConfig::default(),
    };
    Detector::new(fixture_model(), config, batch).unwrap()
}

/// Same detections: classes exactly, scores and boxes to float rounding (a batch
/// may sum in another order than a single picture).
pub fn assert_same(a: &[Vec<Detection>], b: &[Vec<Detection>]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(
            x.len(),
            y.len(),
            "picture {i}: {} vs {} detections",
            x.len(),
            y.len()
        );
        for (d, e) in x.iter().zip(y) {
            assert_eq!(d.class_id, e.class_id, "picture {i}");
            assert_eq!(d.label, e.label);
            assert!(
                (d.conf - e.conf).abs() < 1e-5,
                "picture {i}: {d:?} vs {e:?}"
            );
            for (p, q) in [
                (d.bbox.x1, e.bbox.x1),
                (d.bbox.y1, e.bbox.y1),
                (d.bbox.x2, e.bbox.x2),
                (d.bbox.y2, e.bbox.y2),
            ] {
                assert!((p - q).abs() < 1e-3, "picture {i}: {d:?} vs {e:?}");
            }
        }
    }
}

fn one_by_one(d: &Detector, images: &[ImageRef<'_>]) -> Vec<Vec<Detection>> {
    images
        .iter()
        .map(|i| d.detect(std::slice::from_ref(i)).unwrap().remove(0))
        .collect()
}

#[test]
fn batch_of_8_equals_8_batches_of_1() {
    let Some(p) = pictures() else { return };
    let images = refs(&p);
    let d = detector(8);
    let single = one_by_one(&d, &images);
    let batched = d.detect(&images).unwrap();
    let found: usize = single.iter().map(Vec::len).sum();
    let exact = single == batched;
    println!(
        "batching: {found} detections in 8 pictures; batch 8 bit-identical to batch 1: {exact}"
    );
    assert!(
        found > 0,
        "the fixture model should find something at conf 0.25"
    );
    assert_same(&single, &batched);
    let r = d.stats().report();
    assert_eq!((r.batches, r.images, r.oom_splits), (9, 16, 0));
}

#[test]
fn an_out_of_memory_batch_is_split_and_completes() {
    let Some(p) = pictures() else { return };
    let images = refs(&p);
    let d = detector(8);
    let single = one_by_one(&d, &images);
    let before = d.stats().report();
    // Batches of more than 2 pictures fail to get their memory.
    d.fail_batches_larger_than(2);
    let got = d.detect_adaptive(&images).unwrap();
    assert_same(&single, &got);
    let r = d.stats().report();
    // 8 fails -> 4 + 4; each 4 fails -> 2 + 2: three splits, four batches of 2.
    assert_eq!(r.oom_splits, 3);
    assert_eq!(r.ceiling, 2);
    assert_eq!(r.batches - before.batches, 4);
    // The lowered ceiling holds for the rest of the run: no more failures.
    let again = d.detect_adaptive(&images).unwrap();
    assert_same(&single, &again);
    assert_eq!(d.stats().report().oom_splits, 3);
}

#[test]
fn the_stage_batches_frames_in_order_and_splits_on_memory_failure() {
    let Some(p) = pictures() else { return };
    let d = Arc::new(detector(8));
    let single = one_by_one(&d, &refs(&p));
    d.fail_batches_larger_than(3);
    let pool = FramePool::with_budget(64 << 20);
    let mut stage = DetectStage::new(Arc::clone(&d), Duration::from_secs(3600));
    let mut out: Vec<Frame> = Vec::new();
    for (i, img) in p.iter().enumerate() {
        let (w, h) = img.dimensions();
        let mut buf = pool.acquire(img.as_raw().len()).unwrap();
        buf[..img.as_raw().len()].copy_from_slice(img.as_raw());
        let frame = Frame::new(buf, PixelFormat::Rgb24, w, h, i as u64, i as f64 / 25.0).unwrap();
        stage.process(frame, &mut out).unwrap();
        // Nothing leaves before the batch of 8 is full (the wait is an hour).
        if i < 7 {
            assert!(out.is_empty());
        }
    }
    stage.flush(&mut out).unwrap();
    assert_eq!(out.len(), 8);
    assert!(out.iter().enumerate().all(|(i, f)| f.index == i as u64));
    let got: Vec<Vec<Detection>> = out.iter().map(|f| f.meta.detections.clone()).collect();
    assert_same(&single, &got);
    let r = d.stats().report();
    assert!(r.oom_splits >= 1 && r.ceiling <= 3, "{r:?}");
}

#[test]
fn the_stage_runs_a_partial_batch_after_its_wait() {
    let Some(p) = pictures() else { return };
    let d = Arc::new(detector(8));
    let pool = FramePool::with_budget(16 << 20);
    let mut stage = DetectStage::new(d, Duration::ZERO);
    let img = &p[1];
    let (w, h) = img.dimensions();
    let mut buf = pool.acquire(img.as_raw().len()).unwrap();
    buf[..img.as_raw().len()].copy_from_slice(img.as_raw());
    let frame = Frame::new(buf, PixelFormat::Rgb24, w, h, 0, 0.0).unwrap();
    let mut out: Vec<Frame> = Vec::new();
    stage.process(frame, &mut out).unwrap();
    // A zero wait: the batch is due at once.
    assert_eq!(out.len(), 1);
    assert_eq!(stage.tick_interval(), None);
}

/// Adaptive quality: a detector letterboxing to a smaller size finds what one
/// made for that size finds, and back at its own size what it found before; the
/// stage follows its knob in steps of 32.
#[test]
fn a_smaller_input_size_is_a_detector_made_for_it() {
    let Some(p) = pictures() else { return };
    let images = refs(&p[..3]);
    let full = detector(1);
    let before = one_by_one(&full, &images);
    let small = Detector::new(
        fixture_model(),
        DetectConfig {
            imgsz: 224,
            post: PostConfig::default(),
        },
        1,
    )
    .unwrap();
    full.set_input_size(224).unwrap();
    assert_eq!(full.input_size(), 224);
    assert_same(&one_by_one(&full, &images), &one_by_one(&small, &images));
    full.set_input_size(320).unwrap();
    assert_same(&one_by_one(&full, &images), &before);
    for bad in [0, 100, 352] {
        assert!(full.set_input_size(bad).is_err(), "{bad}");
    }

    let knob = reel_sched::QualityKnob::new(0.7);
    let shared = Arc::new(detector(1));
    let mut stage =
        DetectStage::new(Arc::clone(&shared), Duration::from_millis(1)).with_scale(knob.clone());
    let pool = FramePool::with_budget(8 << 20);
    let (w, h) = (p[1].width(), p[1].height());
    let mut buf = pool.acquire(p[1].as_raw().len()).unwrap();
    buf[..p[1].as_raw().len()].copy_from_slice(p[1].as_raw());
    let frame = Frame::new(buf, PixelFormat::Rgb24, w, h, 0, 0.0).unwrap();
    let mut out = Vec::new();
    stage.process(frame, &mut out).unwrap();
    stage.flush(&mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(shared.input_size(), 224, "320 at 0.7 is 224");
}
