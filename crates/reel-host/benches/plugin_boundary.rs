//! The cost of calling a plugin per frame: the same processor (the `pixelate`
//! sample) called natively, through the plugin boundary (the loaded library's
//! trait object), and as a full `PluginStage` (format check, detections lent and
//! taken back, counts), on a 640x360 RGB frame carrying three detections.
//!
//! Two workloads: `no-op` (no detection has the configured label, so the plugin
//! only looks at the detections: the cost is the call itself) and `whole-frame`
//! (the plugin pixelates every pixel: the call's cost against real work).
//!
//! Needs the release build of the plugin: `cargo xtask build-plugins --release`,
//! then `cargo bench -p reel-host --bench plugin_boundary`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use abi_stable::std_types::RVec;
use criterion::{Criterion, criterion_group, criterion_main};
use reel_frame::{BBox, Detection, Frame, Label, PixelFormat};
use reel_host::plugins::{PluginStage, load};
use reel_plugin_api as api;
use reel_plugin_api::{Plugin, Processor};
use reel_plugin_pixelate::Pixelate;
use reel_pool::FramePool;
use reel_sched::Stage;

const W: u32 = 640;
const H: u32 = 360;

fn library() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let lib = target.join("release").join(format!(
        "{}reel_plugin_pixelate{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo xtask build-plugins --release` first",
        lib.display()
    );
    lib
}

fn frame(pool: &FramePool) -> Frame {
    let len = PixelFormat::Rgb24.frame_size(W, H).unwrap_or(0);
    let mut buf = pool.acquire(len).expect("pool");
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    let mut f = Frame::new(buf, PixelFormat::Rgb24, W, H, 0, 0.0).expect("frame");
    for k in 0..3 {
        let x = 50.0 + 150.0 * k as f32;
        f.meta.detections.push(Detection {
            class_id: 0,
            label: Label::new("face"),
            conf: 0.9,
            bbox: BBox::new(x, 100.0, x + 80.0, 200.0),
        });
    }
    f
}

fn lent(detections: &[Detection]) -> RVec<api::Detection<'_>> {
    detections
        .iter()
        .map(|d| {
            api::Detection::new(
                d.class_id,
                d.label.as_str(),
                d.conf,
                api::BBox::new(d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let plugin = load(&library()).expect("the pixelate plugin loads");
    let pool = FramePool::with_budget(64 << 20);
    for (workload, config) in [
        ("no-op", r#"{"labels":["nobody"]}"#),
        ("whole-frame", r#"{"whole_frame":true,"block":16}"#),
    ] {
        let mut group = c.benchmark_group(format!("plugin-call/{workload}"));

        let mut native = Pixelate::create(config).expect("config");
        let mut f = frame(&pool);
        let dets = std::mem::take(&mut f.meta.detections);
        group.bench_function("native", |b| {
            b.iter(|| {
                let mut list = lent(&dets);
                let (index, pts) = (f.index, f.pts);
                let mut view =
                    api::FrameMut::new(f.data_mut(), api::PixelFormat::Rgb24, W, H, index, pts)
                        .expect("view");
                native
                    .process(&mut view, &mut api::Detections::new(&mut list))
                    .expect("process");
                black_box(list.len())
            })
        });

        let mut boxed = plugin.create_processor(config).expect("config");
        group.bench_function("boundary", |b| {
            b.iter(|| {
                let mut list = lent(&dets);
                let (index, pts) = (f.index, f.pts);
                let view =
                    api::FrameMut::new(f.data_mut(), api::PixelFormat::Rgb24, W, H, index, pts)
                        .expect("view");
                let r = boxed.process(view, api::Detections::new(&mut list));
                black_box(r.is_ok());
                black_box(list.len())
            })
        });

        let mut stage = PluginStage::new(&plugin, config).expect("stage");
        let mut slot = Some(frame(&pool));
        let mut out = Vec::with_capacity(1);
        group.bench_function("stage", |b| {
            b.iter(|| {
                if let Some(f) = slot.take() {
                    stage.process(f, &mut out).expect("process");
                }
                slot = out.pop();
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
