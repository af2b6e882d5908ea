//! Per-frame cost of the analysers at an analysis size (320x180) and at 720p, with
//! a frame copy as the floor; and of the frame operations, with
//! `fast_image_resize` as the resize baseline. Throughput is in frames per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions};
use reel_frame::PixelFormat;
use reel_ops::analyze::{AnalyzeConfig, Analyzer, SceneConfig};
use reel_ops::convert::convert;
use reel_ops::letterbox::letterbox_rgb;
use reel_ops::measure::{BlackConfig, MeasureConfig, Measurer};
use reel_ops::resize::{Filter, Resizer};
use reel_ops::scene::{AdaptiveConfig, AdaptiveDetector, ContentConfig, ContentDetector, Weights};
use reel_ops::tensor::rgb_to_chw_f32;

/// Two different textured BGR frames (a gradient, moving blobs, noise), so that
/// every delta is non-zero.
fn frames(w: u32, h: u32) -> [Vec<u8>; 2] {
    let mut state = 0x9e37_79b9_u32;
    let mut make = |shift: u32| {
        let mut v = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let blob = if ((x + shift * 7) / 40 + y / 40).is_multiple_of(2) {
                    60
                } else {
                    0
                };
                for c in 0..3 {
                    v.push(((x * 200 / w + y * 50 / h + c * 30 + blob + (state % 24)) % 256) as u8);
                }
            }
        }
        v
    };
    [make(0), make(1)]
}

fn in_format(bgr: &[u8], format: PixelFormat, w: u32, h: u32) -> Vec<u8> {
    let mut out = vec![0u8; format.frame_size(w, h).expect("size")];
    convert(bgr, PixelFormat::Bgr24, &mut out, format, w, h).expect("convert");
    out
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(30);
    g
}

fn analysers(c: &mut Criterion) {
    for (w, h) in [(320u32, 180u32), (1280, 720)] {
        let bgr = frames(w, h);
        let gray = [
            in_format(&bgr[0], PixelFormat::Gray8, w, h),
            in_format(&bgr[1], PixelFormat::Gray8, w, h),
        ];
        let yuv = [
            in_format(&bgr[0], PixelFormat::Yuv420p, w, h),
            in_format(&bgr[1], PixelFormat::Yuv420p, w, h),
        ];
        let mut g = group(c, &format!("analyze/{w}x{h}"));
        let mut i = 0u64;
        let mut next = || {
            i += 1;
            i
        };

        let mut copy = vec![0u8; bgr[0].len()];
        g.bench_function("floor_copy_bgr_frame", |b| {
            b.iter(|| {
                copy.copy_from_slice(&bgr[(next() % 2) as usize]);
                black_box(&copy);
            })
        });
        let mut d = ContentDetector::new(ContentConfig::default());
        g.bench_function("content_bgr", |b| {
            b.iter(|| {
                let n = next();
                black_box(
                    d.process(n, &bgr[(n % 2) as usize], PixelFormat::Bgr24, w, h)
                        .expect("ok"),
                )
            })
        });
        let mut d = ContentDetector::new(ContentConfig {
            weights: Weights::LUMA_ONLY,
            ..ContentConfig::default()
        });
        g.bench_function("content_luma_only_bgr", |b| {
            b.iter(|| {
                let n = next();
                black_box(
                    d.process(n, &bgr[(n % 2) as usize], PixelFormat::Bgr24, w, h)
                        .expect("ok"),
                )
            })
        });
        let mut d = AdaptiveDetector::new(AdaptiveConfig::default());
        g.bench_function("adaptive_bgr", |b| {
            b.iter(|| {
                let n = next();
                black_box(
                    d.process(n, &bgr[(n % 2) as usize], PixelFormat::Bgr24, w, h)
                        .expect("ok"),
                )
            })
        });
        let one = |f: fn(&mut MeasureConfig)| {
            let mut c = MeasureConfig::default();
            f(&mut c);
            c
        };
        let measures: [(&str, MeasureConfig); 5] = [
            ("motion", one(|c| c.motion = true)),
            ("brightness", one(|c| c.brightness = true)),
            ("sharpness", one(|c| c.sharpness = true)),
            ("black", one(|c| c.black = Some(BlackConfig::default()))),
            ("all_measures", MeasureConfig::all()),
        ];
        for (name, config) in measures {
            for (format, input) in [("gray", &gray), ("yuv420p", &yuv), ("bgr", &bgr)] {
                if name != "all_measures" && format != "gray" {
                    continue;
                }
                let pf = match format {
                    "gray" => PixelFormat::Gray8,
                    "yuv420p" => PixelFormat::Yuv420p,
                    _ => PixelFormat::Bgr24,
                };
                let mut m = Measurer::new(config);
                g.bench_function(format!("{name}_{format}"), |b| {
                    b.iter(|| {
                        black_box(
                            m.measure(&input[(next() % 2) as usize], pf, w, h)
                                .expect("ok"),
                        )
                    })
                });
            }
        }
        let mut a = Analyzer::new(AnalyzeConfig {
            scenes: Some(SceneConfig::default()),
            measure: MeasureConfig::all(),
        });
        g.bench_function("everything_bgr", |b| {
            b.iter(|| {
                let n = next();
                black_box(
                    a.analyze(n, &bgr[(n % 2) as usize], PixelFormat::Bgr24, w, h)
                        .expect("ok"),
                )
            })
        });
        g.finish();
    }
}

fn fir_resize(
    r: &mut fast_image_resize::Resizer,
    (src, sw, sh): (&[u8], u32, u32),
    (dst, dw, dh): (&mut [u8], u32, u32),
    alg: ResizeAlg,
) {
    let s = ImageRef::new(sw, sh, src, PixelType::U8x3).expect("src");
    let mut d = Image::from_slice_u8(dw, dh, dst, PixelType::U8x3).expect("dst");
    r.resize(&s, &mut d, &ResizeOptions::new().resize_alg(alg))
        .expect("resize");
}

fn frame_ops(c: &mut Criterion) {
    let mut g = group(c, "frame_ops");
    let (w, h) = (1280u32, 720u32);
    let bgr = frames(w, h);
    let rgb = in_format(&bgr[0], PixelFormat::Rgb24, w, h);
    let yuv = in_format(&bgr[0], PixelFormat::Yuv420p, w, h);
    let mut out = vec![0u8; rgb.len()];
    g.bench_function("convert_yuv420p_to_bgr24_720p", |b| {
        b.iter(|| {
            convert(
                &yuv,
                PixelFormat::Yuv420p,
                &mut out,
                PixelFormat::Bgr24,
                w,
                h,
            )
            .expect("ok")
        })
    });
    let mut out_yuv = vec![0u8; yuv.len()];
    g.bench_function("convert_rgb24_to_yuv420p_720p", |b| {
        b.iter(|| {
            convert(
                &rgb,
                PixelFormat::Rgb24,
                &mut out_yuv,
                PixelFormat::Yuv420p,
                w,
                h,
            )
            .expect("ok")
        })
    });
    let mut gray = vec![0u8; (w * h) as usize];
    g.bench_function("convert_rgb24_to_gray_720p", |b| {
        b.iter(|| {
            convert(
                &rgb,
                PixelFormat::Rgb24,
                &mut gray,
                PixelFormat::Gray8,
                w,
                h,
            )
            .expect("ok")
        })
    });

    let cases = [
        (
            "area_720p_to_320x180",
            Filter::Area,
            ResizeAlg::Convolution(FilterType::Box),
            (1280, 720),
            (320, 180),
        ),
        (
            "bilinear_1080p_to_640x360",
            Filter::Bilinear,
            ResizeAlg::Interpolation(FilterType::Bilinear),
            (1920, 1080),
            (640, 360),
        ),
        (
            "bilinear_548x342_to_640x399",
            Filter::Bilinear,
            ResizeAlg::Interpolation(FilterType::Bilinear),
            (548, 342),
            (640, 399),
        ),
    ];
    for (name, filter, alg, (sw, sh), (dw, dh)) in cases {
        let src = in_format(&frames(sw, sh)[0], PixelFormat::Rgb24, sw, sh);
        let mut dst = vec![0u8; (dw * dh * 3) as usize];
        let mut ours = Resizer::new(filter);
        g.bench_function(format!("resize_{name}/reel"), |b| {
            b.iter(|| {
                ours.resize(&src, sw, sh, &mut dst, dw, dh, PixelFormat::Rgb24)
                    .expect("ok")
            })
        });
        let mut theirs = fast_image_resize::Resizer::new();
        g.bench_function(format!("resize_{name}/fast_image_resize"), |b| {
            b.iter(|| fir_resize(&mut theirs, (&src, sw, sh), (&mut dst, dw, dh), alg))
        });
    }

    // The analysis path of in-process decoding: a decoder's yuv420p picture
    // area-resized to the analysis size, against copying the same bytes once (the
    // least any reader of the whole picture pays).
    for ((sw, sh), (dw, dh)) in [
        ((1280u32, 720u32), (256u32, 144u32)),
        ((1920, 1080), (256, 144)),
    ] {
        let src = in_format(&frames(sw, sh)[0], PixelFormat::Yuv420p, sw, sh);
        let mut dst = vec![0u8; PixelFormat::Yuv420p.frame_size(dw, dh).expect("size")];
        let mut ours = Resizer::new(Filter::Area);
        g.bench_function(
            format!("resize_area_yuv420p_{sw}x{sh}_to_{dw}x{dh}/reel"),
            |b| {
                b.iter(|| {
                    ours.resize(&src, sw, sh, &mut dst, dw, dh, PixelFormat::Yuv420p)
                        .expect("ok")
                })
            },
        );
        let mut copy = vec![0u8; src.len()];
        g.bench_function(
            format!("resize_area_yuv420p_{sw}x{sh}_to_{dw}x{dh}/memcpy"),
            |b| b.iter(|| copy.copy_from_slice(&src)),
        );
    }

    let mut boxed = vec![0u8; 640 * 640 * 3];
    let mut tensor = vec![0f32; 640 * 640 * 3];
    let mut r = Resizer::new(Filter::Bilinear);
    g.bench_function("letterbox_720p_to_640_and_tensor", |b| {
        b.iter(|| {
            letterbox_rgb(&mut r, &rgb, w, h, &mut boxed, 640, 640, 114).expect("ok");
            rgb_to_chw_f32(&boxed, 640, 640, &mut tensor).expect("ok");
        })
    });
    g.finish();
}

criterion_group!(benches, analysers, frame_ops);
criterion_main!(benches);
