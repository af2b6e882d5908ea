//! The sample plugins and the fixture plugins, built as shared libraries by
//! `cargo xtask build-plugins --fixtures`, loaded through the real loader and run
//! as stages on synthetic video with known ground truth.

#![allow(
    clippy::unwrap_used,
    reason = "helpers of the tests below: a failure is the test's failure"
)]

use reel_decode::DecodeOptions;
use reel_decode::synthetic::{GroundTruth, ObjectTruth, ground_truth};
use reel_frame::{BBox, Detection, Frame, Label, PixelFormat};
use reel_host::plugins::{
    Catalog, Error, Origin, PluginReport, PluginSpec, PluginStage, SearchDir, SearchPath, load,
};
use reel_pool::FramePool;
use reel_sched::{BoxError, ErrorPolicy, Outcome, Pipeline, Sink, Source, Stage, StageSpec};
use reel_tests::{fixture, fixtures_dir, plugins_dir};

/// One scene, three objects drifting over a textured background.
const VIDEO: &str =
    "synthetic:scenes?width=320&height=180&fps=30&frames=40&scenes=1&seed=11&objects=4";

fn catalog() -> Catalog {
    Catalog::discover(SearchPath::from_dirs([
        SearchDir {
            path: plugins_dir(),
            origin: Origin::Flag,
        },
        SearchDir {
            path: fixtures_dir(),
            origin: Origin::Flag,
        },
    ]))
}

fn stage(spec: &str) -> PluginStage {
    let spec: PluginSpec = spec.parse().unwrap();
    let plugin = catalog().resolve(&spec.target).unwrap();
    PluginStage::new(&plugin, &spec.config).unwrap()
}

/// Frames handed out in order.
struct Frames(std::vec::IntoIter<Frame>);

impl Source for Frames {
    fn name(&self) -> &str {
        "frames"
    }

    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
        self.0.next().map(Ok)
    }
}

/// The indices of the frames that reached the end.
#[derive(Default)]
struct Indices(Vec<u64>);

impl Sink for Indices {
    fn consume(&mut self, frame: Frame) -> Result<(), reel_sched::StageError> {
        self.0.push(frame.index);
        Ok(())
    }
}

/// Runs `frames` through the plugin stage `spec` in a pipeline, under `policy`:
/// the frames that came out, the plugin's report, and how the run ended.
fn run_through(
    spec: &str,
    policy: ErrorPolicy,
    frames: Vec<Frame>,
) -> (Vec<u64>, PluginReport, Outcome) {
    let plugin = stage(spec);
    let stats = plugin.stats();
    let report = Pipeline::new(Frames(frames.into_iter()), Indices::default())
        .stage(StageSpec::sequential(plugin).on_error(policy))
        .run();
    let r = stats.report(report.metrics.stage(&stats.stage_name()));
    (report.sink.0, r, report.outcome)
}

/// The frames of `uri` in `format`.
fn frames(uri: &str, format: PixelFormat) -> Vec<Frame> {
    let pool = FramePool::with_budget(256 << 20);
    let mut source =
        reel_decode::open(uri, &DecodeOptions::default().with_format(format), &pool).unwrap();
    std::iter::from_fn(|| source.read_frame())
        .map(Result::unwrap)
        .collect()
}

/// Passes one frame through `stage`, which must emit it.
fn pass(stage: &mut PluginStage, frame: Frame) -> Frame {
    let mut out = Vec::new();
    stage.process(frame, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

fn truth_detections(objects: &[ObjectTruth]) -> Vec<Detection> {
    objects
        .iter()
        .map(|o| Detection {
            class_id: 0,
            label: o.label.clone(),
            conf: 0.9,
            bbox: o.bbox,
        })
        .collect()
}

/// A box's pixels as the plugins' interface defines them: edges rounded outwards,
/// clipped to the frame; `(x0, y0, x1, y1)`, ends exclusive.
fn pixel_rect(b: &BBox, w: u32, h: u32) -> (u32, u32, u32, u32) {
    let x0 = b.x1.floor().clamp(0.0, w as f32) as u32;
    let y0 = b.y1.floor().clamp(0.0, h as f32) as u32;
    let x1 = (b.x2.ceil().clamp(0.0, w as f32) as u32).max(x0);
    let y1 = (b.y2.ceil().clamp(0.0, h as f32) as u32).max(y0);
    (x0, y0, x1, y1)
}

fn inside((x0, y0, x1, y1): (u32, u32, u32, u32), x: u32, y: u32) -> bool {
    x >= x0 && x < x1 && y >= y0 && y < y1
}

fn rgb(frame: &Frame, x: u32, y: u32) -> [u8; 3] {
    let i = (y * frame.width() + x) as usize * 3;
    frame.data()[i..i + 3].try_into().unwrap()
}

fn truth() -> GroundTruth {
    ground_truth(VIDEO).unwrap()
}

#[test]
fn plugins_load_side_by_side_each_as_itself() {
    let c = catalog();
    let mut names: Vec<String> = c
        .entries()
        .iter()
        .filter_map(|e| e.plugin.as_ref().ok().map(|p| p.name().to_string()))
        .collect();
    names.sort();
    assert_eq!(names, ["faulty", "motion", "overlay", "pixelate"]);
    for name in ["motion", "overlay", "pixelate"] {
        let p = c.find(name).unwrap();
        assert_eq!(p.name(), name);
        assert!(p.path().ends_with(format!(
            "{}reel_plugin_{name}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )));
        assert_eq!(
            p.description().interface_version,
            reel_host::plugins::INTERFACE_VERSION
        );
    }
    assert_eq!(
        c.find("motion").unwrap().description().produces,
        ["detections"]
    );
    assert_eq!(
        c.find("overlay").unwrap().description().produces,
        ["pixels"]
    );
}

#[test]
fn motion_boxes_overlap_the_moving_shapes() {
    let gt = truth();
    let mut motion = stage("motion");
    let (mut shapes, mut found, mut boxes, mut on_shapes) = (0, 0, 0, 0);
    for frame in frames(VIDEO, PixelFormat::Rgb24) {
        let f = pass(&mut motion, frame);
        let dets: Vec<&Detection> = f.meta.detections.iter().collect();
        assert!(dets.iter().all(|d| d.label.as_str() == "motion"));
        // The background settles over the first frames.
        if f.index < 5 {
            continue;
        }
        for o in gt.objects_at(f.index) {
            shapes += 1;
            found += usize::from(dets.iter().any(|d| d.bbox.intersection(&o.bbox) > 0.0));
        }
        for d in &dets {
            boxes += 1;
            on_shapes += usize::from(
                gt.objects_at(f.index)
                    .iter()
                    .any(|o| d.bbox.intersection(&o.bbox) > 0.0),
            );
        }
    }
    eprintln!("motion: {found}/{shapes} shapes found, {on_shapes}/{boxes} boxes on a shape");
    assert!(shapes > 0);
    assert_eq!(found, shapes, "every moving shape is found in every frame");
    assert_eq!(on_shapes, boxes, "every box is on a moving shape");
    let report = motion.stats().report(None);
    assert_eq!(report.errors, 0);
    assert_eq!(report.processed, 40);
}

#[test]
fn overlay_changes_exactly_the_box_pixels() {
    let gt = truth();
    let color = [255u8, 0, 255];
    let mut overlay = stage("overlay:labels=false,thickness=2,color=[255,0,255]");
    let mut checked = 0;
    for mut frame in frames(VIDEO, PixelFormat::Rgb24).into_iter().step_by(7) {
        let objects = gt.objects_at(frame.index);
        frame.meta.detections = truth_detections(&objects);
        let before = frame.data().to_vec();
        let f = pass(&mut overlay, frame);
        let (w, h) = (f.width(), f.height());
        let rects: Vec<_> = objects.iter().map(|o| pixel_rect(&o.bbox, w, h)).collect();
        let on_outline = |x: u32, y: u32| {
            rects.iter().any(|&(x0, y0, x1, y1)| {
                inside((x0, y0, x1, y1), x, y)
                    && (x < x0 + 2 || x + 2 >= x1 || y < y0 + 2 || y + 2 >= y1)
            })
        };
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) as usize * 3;
                if on_outline(x, y) {
                    assert_eq!(rgb(&f, x, y), color, "outline pixel {x},{y}");
                    checked += 1;
                } else {
                    assert_eq!(f.data()[i..i + 3], before[i..i + 3], "pixel {x},{y}");
                }
            }
        }
        // The detections themselves pass through untouched.
        assert_eq!(f.meta.detections, truth_detections(&objects));
    }
    assert!(checked > 0);
}

#[test]
fn overlay_labels_stay_in_their_tags() {
    let gt = truth();
    let mut overlay = stage("overlay");
    let mut frame = frames(VIDEO, PixelFormat::Rgb24).swap_remove(10);
    let objects = gt.objects_at(frame.index);
    frame.meta.detections = truth_detections(&objects);
    let before = frame.data().to_vec();
    let f = pass(&mut overlay, frame);
    let (w, h) = (f.width(), f.height());
    // The documented tag: 9 pixels high, 1 + 6 per character wide, above the box
    // (inside it when there is no room above).
    let allowed: Vec<_> = objects
        .iter()
        .flat_map(|o| {
            let r = pixel_rect(&o.bbox, w, h);
            let chars = format!("{} 0.90", o.label).len() as u32;
            let ty = if r.1 >= 9 { r.1 - 9 } else { r.1 };
            [r, (r.0, ty, (r.0 + 1 + 6 * chars).min(w), (ty + 9).min(h))]
        })
        .collect();
    let mut changed = 0;
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) as usize * 3;
            if f.data()[i..i + 3] != before[i..i + 3] {
                changed += 1;
                assert!(allowed.iter().any(|&r| inside(r, x, y)), "pixel {x},{y}");
            }
        }
    }
    assert!(changed > 0);
}

#[test]
fn pixelate_leaves_other_regions_untouched() {
    let gt = truth();
    let mut pixelate = stage(r#"pixelate:block=8,labels=["circle"]"#);
    let mut pixelated = 0;
    for mut frame in frames(VIDEO, PixelFormat::Rgb24).into_iter().step_by(5) {
        let objects = gt.objects_at(frame.index);
        frame.meta.detections = truth_detections(&objects);
        let before = frame.data().to_vec();
        let f = pass(&mut pixelate, frame);
        let (w, h) = (f.width(), f.height());
        let circles: Vec<_> = objects
            .iter()
            .filter(|o| o.label.as_str() == "circle")
            .map(|o| pixel_rect(&o.bbox, w, h))
            .collect();
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) as usize * 3;
                if !circles.iter().any(|&r| inside(r, x, y)) {
                    assert_eq!(f.data()[i..i + 3], before[i..i + 3], "pixel {x},{y}");
                }
            }
        }
        // A circle's box that overlaps no other is made of uniform 8x8 blocks.
        for (k, &r) in circles.iter().enumerate() {
            let alone = circles
                .iter()
                .enumerate()
                .all(|(j, &o)| j == k || o.2 <= r.0 || r.2 <= o.0 || o.3 <= r.1 || r.3 <= o.1);
            if !alone {
                continue;
            }
            for y in r.1..r.3 {
                for x in r.0..r.2 {
                    let corner = (r.0 + (x - r.0) / 8 * 8, r.1 + (y - r.1) / 8 * 8);
                    assert_eq!(rgb(&f, x, y), rgb(&f, corner.0, corner.1), "{x},{y}");
                }
            }
            pixelated += 1;
        }
        if !circles.is_empty() {
            assert_ne!(f.data(), &before[..], "circles were pixelated");
        }
    }
    assert!(pixelated > 0, "the video has circles to pixelate");
}

#[test]
fn a_plugin_built_for_another_interface_is_refused_by_name_and_versions() {
    let err = load(&fixture("next")).unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err:?}");
    let msg = err.to_string();
    for part in ["`next`", "2.0.0", "1.1.0", "libreel_plugin_next"] {
        assert!(msg.contains(part), "{part} missing from: {msg}");
    }
    // Looking it up by name gives the same refusal; the others still load.
    let c = catalog();
    assert!(matches!(c.find("next"), Err(Error::Incompatible { .. })));
    assert!(c.find("faulty").is_ok());
}

#[test]
fn a_panic_on_frame_3_is_skipped_with_the_skip_policy() {
    let input = frames(VIDEO, PixelFormat::Rgb24)
        .into_iter()
        .take(8)
        .collect();
    let (out, r, outcome) = run_through("faulty:panic_at=3", ErrorPolicy::Skip, input);
    assert!(matches!(outcome, Outcome::Completed), "{outcome:?}");
    assert_eq!(out, (0..8).collect::<Vec<_>>());
    assert_eq!((r.frames, r.processed, r.errors, r.panics), (8, 7, 1, 1));
    assert!(!r.disabled);
    let last = r.last_error.unwrap();
    assert!(
        last.contains("frame 3") && last.contains("fixture panic on frame 3"),
        "{last}"
    );
    // The plugin kept working after the panic.
    assert!(r.counters.contains(&("calls".to_string(), 8)));
}

#[test]
fn a_panic_on_frame_3_fails_the_run_cleanly_with_the_fail_policy() {
    let input = frames(VIDEO, PixelFormat::Rgb24)
        .into_iter()
        .take(8)
        .collect();
    let (out, r, outcome) = run_through("faulty:panic_at=3", ErrorPolicy::Fail, input);
    let Outcome::Failed(e) = outcome else {
        panic!("the run fails: {outcome:?}");
    };
    assert_eq!(e.frame(), Some(3));
    let msg = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(
        msg.contains("plugin `faulty`") && msg.contains("panicked"),
        "{msg}"
    );
    assert!(
        out.iter().all(|&i| i < 3),
        "nothing after the panic: {out:?}"
    );
    assert_eq!((r.errors, r.panics), (1, 1));
}

#[test]
fn a_plugin_returning_errors_is_disabled_after_n() {
    let input = frames(VIDEO, PixelFormat::Rgb24)
        .into_iter()
        .take(10)
        .collect();
    let (out, r, outcome) = run_through("faulty:error_from=2", ErrorPolicy::DisableAfter(3), input);
    assert!(matches!(outcome, Outcome::Completed), "{outcome:?}");
    assert_eq!(out.len(), 10, "every frame goes on");
    assert_eq!((r.processed, r.errors, r.panics, r.passed_by), (2, 3, 0, 5));
    assert!(r.disabled);
    // Frames 0..=4 reached the plugin; none after it was disabled.
    assert!(
        r.counters.contains(&("calls".to_string(), 5)),
        "{:?}",
        r.counters
    );
    assert!(r.last_error.unwrap().contains("fixture error on frame 4"));
}

#[test]
fn failures_outside_frames_are_reported() {
    let plugin = catalog().find("faulty").unwrap();
    let e = PluginStage::new(&plugin, r#"{"panic_in_create":true}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`faulty`") && e.contains("fixture panic in create"),
        "{e}"
    );
    let e = PluginStage::new(&plugin, r#"{"no_such_option":1}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid configuration"), "{e}");

    let input = frames(VIDEO, PixelFormat::Rgb24)
        .into_iter()
        .take(2)
        .collect();
    let (_, _, outcome) = run_through("faulty:fail_flush=true", ErrorPolicy::Fail, input);
    let Outcome::Failed(e) = outcome else {
        panic!("the run fails: {outcome:?}");
    };
    assert_eq!(e.at(), Some(reel_sched::At::Flush));
    let msg = std::error::Error::source(&e).unwrap().to_string();
    assert!(msg.contains("flush"), "{msg}");
}

#[test]
fn the_plugin_gets_the_frames_own_buffer_and_adds_detections() {
    let mut faulty = stage("faulty:detect=true");
    for mut frame in frames(VIDEO, PixelFormat::Rgb24).into_iter().take(3) {
        frame.meta.detections.push(Detection {
            class_id: 1,
            label: Label::new("earlier"),
            conf: 0.5,
            bbox: BBox::new(1.0, 2.0, 3.0, 4.0),
        });
        let addr = frame.data().as_ptr() as u64;
        let len = frame.data().len() as u64;
        let f = pass(&mut faulty, frame);
        faulty.flush(&mut Vec::new()).unwrap();
        let counters = faulty.stats().report(None).counters;
        assert!(
            counters.contains(&("last_pixels_addr".to_string(), addr)),
            "{counters:?}"
        );
        assert!(counters.contains(&("last_pixels_len".to_string(), len)));
        assert_eq!(f.data().as_ptr() as u64, addr);
        let labels: Vec<(&str, u32)> = f
            .meta
            .detections
            .iter()
            .map(|d| (d.label.as_str(), d.class_id))
            .collect();
        assert_eq!(labels, [("earlier", 1), ("fixture", 7)]);
    }
}

/// A `width` x `height` YUV 4:2:0 frame of mid gray.
fn yuv_frame(width: u32, height: u32) -> Frame {
    let pool = FramePool::with_budget(1 << 20);
    let len = PixelFormat::Yuv420p.frame_size(width, height).unwrap();
    let mut buf = pool.acquire(len).unwrap();
    buf.fill(128);
    Frame::new(buf, PixelFormat::Yuv420p, width, height, 0, 0.0).unwrap()
}

#[test]
fn a_frame_in_a_format_the_plugin_refuses_fails_the_run() {
    let mut overlay = stage("overlay");
    let e = overlay
        .process(yuv_frame(64, 48), &mut Vec::new())
        .unwrap_err();
    assert!(e.is_fatal());
    let msg = e.to_string();
    assert!(
        msg.contains("`overlay`") && msg.contains("yuv420p"),
        "{msg}"
    );
    // Motion accepts it.
    let mut motion = stage("motion");
    pass(&mut motion, yuv_frame(64, 48));
    assert_eq!(motion.stats().report(None).processed, 1);
}
