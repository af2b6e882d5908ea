use reel_decode::synthetic::{Shape, SyntheticSource, ground_truth};
use reel_decode::{DecodeOptions, Sampling, VideoSource, open};
use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;
use reel_sched::QualityKnob;

const URI: &str =
    "synthetic:scenes?width=320&height=180&fps=30&frames=120&scenes=4&seed=11&objects=3";

fn pool() -> FramePool {
    FramePool::with_budget(64 << 20)
}

fn frames(uri: &str, opts: &DecodeOptions) -> Vec<Frame> {
    let mut src = open(uri, opts, &pool()).unwrap();
    let mut out = Vec::new();
    while let Some(f) = src.read_frame() {
        out.push(f.unwrap());
    }
    out
}

fn pixel(f: &Frame, x: u32, y: u32) -> [u8; 3] {
    let i = (y as usize * f.width() as usize + x as usize) * 3;
    let d = f.data();
    [d[i], d[i + 1], d[i + 2]]
}

#[test]
fn every_frame_with_index_and_time() {
    let fs = frames(URI, &DecodeOptions::default());
    assert_eq!(fs.len(), 120);
    for (i, f) in fs.iter().enumerate() {
        assert_eq!(f.index, i as u64);
        assert!((f.pts - i as f64 / 30.0).abs() < 1e-9);
        assert_eq!((f.width(), f.height()), (320, 180));
        assert_eq!(f.format(), PixelFormat::Rgb24);
        assert!(f.meta.source_size.is_none());
    }
}

#[test]
fn object_pixels_match_the_ground_truth() {
    let gt = ground_truth(URI).unwrap();
    let fs = frames(URI, &DecodeOptions::default());
    for f in &fs {
        let objects = gt.objects_at(f.index);
        assert_eq!(objects.len(), 3);
        // The topmost object is drawn last: its box is exactly its colour for a
        // rectangle, and its box's centre for a circle.
        let top = objects.last().unwrap();
        let b = top.bbox;
        let (x1, y1, x2, y2) = (b.x1 as u32, b.y1 as u32, b.x2 as u32, b.y2 as u32);
        let cx = (x1 + x2) / 2;
        let cy = (y1 + y2) / 2;
        assert_eq!(pixel(f, cx, cy), top.color, "frame {}", f.index);
        if top.shape == Shape::Rectangle {
            for (x, y) in [(x1, y1), (x2 - 1, y1), (x1, y2 - 1), (x2 - 1, y2 - 1)] {
                assert_eq!(pixel(f, x, y), top.color, "frame {} corner", f.index);
            }
        } else {
            // The circle touches the middle of each side of its box.
            for (x, y) in [(x1, cy), (x2 - 1, cy), (cx, y1), (cx, y2 - 1)] {
                assert_eq!(pixel(f, x, y), top.color, "frame {} edge", f.index);
            }
        }
    }
}

#[test]
fn same_uri_same_pixels() {
    let a = frames(URI, &DecodeOptions::default());
    let b = frames(URI, &DecodeOptions::default());
    assert!(a.iter().zip(&b).all(|(x, y)| x.data() == y.data()));
    let c = frames(
        "synthetic:scenes?width=320&height=180&fps=30&frames=120&scenes=4&seed=12&objects=3",
        &DecodeOptions::default(),
    );
    assert_ne!(a[0].data(), c[0].data());
}

#[test]
fn sampling_keeps_source_indices() {
    let every = frames(
        URI,
        &DecodeOptions::default().with_sampling(Sampling::every(7)),
    );
    let idx: Vec<u64> = every.iter().map(|f| f.index).collect();
    assert_eq!(idx, (0..120).step_by(7).collect::<Vec<u64>>());

    let fps = frames(
        URI,
        &DecodeOptions::default().with_sampling(Sampling::fps(10.0)),
    );
    let idx: Vec<u64> = fps.iter().map(|f| f.index).collect();
    assert_eq!(idx, (0..120).step_by(3).collect::<Vec<u64>>());

    let window = frames(
        URI,
        &DecodeOptions::default().with_sampling(Sampling::all().between(Some(1.0), Some(2.0))),
    );
    let idx: Vec<u64> = window.iter().map(|f| f.index).collect();
    assert_eq!(idx, (30..60).collect::<Vec<u64>>());
}

#[test]
fn output_size_and_formats() {
    let full = frames(URI, &DecodeOptions::default());
    let small = frames(URI, &DecodeOptions::default().with_size(160, 90));
    assert_eq!((small[0].width(), small[0].height()), (160, 90));
    assert_eq!(small[0].meta.source_size, Some((320, 180)));
    let bgr = frames(
        URI,
        &DecodeOptions::default().with_format(PixelFormat::Bgr24),
    );
    for (r, b) in full.iter().zip(&bgr).take(5) {
        for (p, q) in r.data().chunks_exact(3).zip(b.data().chunks_exact(3)) {
            assert_eq!([p[2], p[1], p[0]], q);
        }
    }
}

#[test]
fn live_scale_changes_mid_stream() {
    let knob = QualityKnob::new(1.0);
    let opts = DecodeOptions::default().with_scale(knob.clone());
    let mut src = SyntheticSource::open(URI, &opts, &pool()).unwrap();
    let a = src.read_frame().unwrap().unwrap();
    assert_eq!(a.width(), 320);
    knob.set(0.5);
    let b = src.read_frame().unwrap().unwrap();
    assert_eq!((b.width(), b.height()), (160, 90));
    assert_eq!(b.index, 1);
    assert_eq!(b.meta.source_size, Some((320, 180)));
    knob.set(1.0);
    let c = src.read_frame().unwrap().unwrap();
    assert_eq!((c.width(), c.index), (320, 2));
    assert_eq!(src.info().decoder.backend, "synthetic");
}

#[test]
fn frames_come_from_the_pool_and_go_back() {
    let pool = pool();
    let mut src = open(URI, &DecodeOptions::default(), &pool).unwrap();
    for _ in 0..50 {
        drop(src.read_frame().unwrap().unwrap());
    }
    let stats = pool.stats();
    assert_eq!(stats.bytes_in_use, 0);
    // One buffer, reused.
    assert_eq!(stats.misses, 1);
    assert!(stats.hits >= 49);
}

/// Runs reel-ops' content detector (PySceneDetect's algorithm: threshold 27,
/// minimum scene length 15) over `uri`: the cuts, the highest score within a
/// scene and the lowest score at a cut.
fn detect(uri: &str) -> (Vec<u64>, f64, f64) {
    use reel_ops::scene::{ContentConfig, ContentDetector};
    let gt = ground_truth(uri).unwrap();
    let mut det = ContentDetector::new(ContentConfig::default());
    let (mut cuts, mut inner, mut at_cut) = (Vec::new(), 0.0f64, f64::MAX);
    for f in frames(uri, &DecodeOptions::default()) {
        let step = det
            .process(f.index, f.data(), f.format(), f.width(), f.height())
            .unwrap();
        if let Some(score) = step.score {
            if gt.cuts.contains(&f.index) {
                at_cut = at_cut.min(score.content_val);
            } else {
                inner = inner.max(score.content_val);
            }
        }
        cuts.extend(step.cut);
    }
    (cuts, inner, at_cut)
}

#[test]
fn a_content_detector_finds_exactly_the_ground_truth_cuts() {
    for seed in 1..=6 {
        let uri = format!(
            "synthetic:scenes?width=320&height=180&fps=30&frames=240&scenes=6&seed={seed}&objects=3"
        );
        let truth = ground_truth(&uri).unwrap().cuts;
        let (cuts, inner, at_cut) = detect(&uri);
        assert_eq!(cuts, truth, "{uri}");
        // With a wide margin on both sides of the threshold.
        assert!(inner < 5.0, "{uri}: a score of {inner} within a scene");
        assert!(at_cut > 40.0, "{uri}: a score of {at_cut} at a cut");
    }
}
