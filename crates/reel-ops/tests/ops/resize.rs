//! The resizer against `fast_image_resize`, an implementation it did not write.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions};
use reel_frame::PixelFormat;
use reel_ops::resize::{Filter, Resizer};

use crate::util::{max_diff, textured_rgb};

fn theirs(
    src: &[u8],
    sw: u32,
    sh: u32,
    dw: u32,
    dh: u32,
    channels: usize,
    alg: ResizeAlg,
) -> Vec<u8> {
    let pt = match channels {
        1 => PixelType::U8,
        3 => PixelType::U8x3,
        _ => PixelType::U8x4,
    };
    let mut dst = vec![0u8; dw as usize * dh as usize * channels];
    let s = ImageRef::new(sw, sh, src, pt).unwrap();
    let mut d = Image::from_slice_u8(dw, dh, &mut dst, pt).unwrap();
    fast_image_resize::Resizer::new()
        .resize(
            &s,
            &mut d,
            &ResizeOptions::new().resize_alg(alg).use_alpha(false),
        )
        .unwrap();
    dst
}

fn picture(w: u32, h: u32, format: PixelFormat) -> Vec<u8> {
    let rgb = textured_rgb(w, h);
    let mut out = vec![0u8; format.frame_size(w, h).unwrap()];
    reel_ops::convert::convert(&rgb, PixelFormat::Rgb24, &mut out, format, w, h).unwrap();
    out
}

fn ours(
    r: &mut Resizer,
    src: &[u8],
    sw: u32,
    sh: u32,
    dw: u32,
    dh: u32,
    f: PixelFormat,
) -> Vec<u8> {
    let mut dst = vec![0u8; f.frame_size(dw, dh).unwrap()];
    r.resize(src, sw, sh, &mut dst, dw, dh, f).unwrap();
    dst
}

const FORMATS: [(PixelFormat, usize); 3] = [
    (PixelFormat::Gray8, 1),
    (PixelFormat::Rgb24, 3),
    (PixelFormat::Rgba, 4),
];

#[test]
fn area_matches_box_convolution_at_whole_ratios() {
    // At whole ratios a box filter and the area average weigh the same pixels.
    let mut r = Resizer::new(Filter::Area);
    for (sw, sh, dw, dh) in [
        (1280, 720, 320, 180),
        (768, 576, 256, 192),
        (640, 360, 320, 180),
    ] {
        for (format, channels) in FORMATS {
            let src = picture(sw, sh, format);
            let mine = ours(&mut r, &src, sw, sh, dw, dh, format);
            let alg = ResizeAlg::Convolution(FilterType::Box);
            let other = theirs(&src, sw, sh, dw, dh, channels, alg);
            let d = max_diff(&mine, &other);
            assert!(d <= 1, "{sw}x{sh}->{dw}x{dh} {format}: max diff {d}");
        }
    }
}

#[test]
fn bilinear_matches_fixed_kernel_interpolation() {
    let mut r = Resizer::new(Filter::Bilinear);
    for (sw, sh, dw, dh) in [
        (548, 342, 640, 399),
        (1280, 720, 640, 360),
        (1920, 1080, 416, 234),
        (33, 17, 100, 61),
    ] {
        for (format, channels) in FORMATS {
            let src = picture(sw, sh, format);
            let mine = ours(&mut r, &src, sw, sh, dw, dh, format);
            let alg = ResizeAlg::Interpolation(FilterType::Bilinear);
            let other = theirs(&src, sw, sh, dw, dh, channels, alg);
            let d = max_diff(&mine, &other);
            assert!(d <= 1, "{sw}x{sh}->{dw}x{dh} {format}: max diff {d}");
        }
    }
}

#[test]
fn nearest_picks_the_pixel_under_each_centre() {
    let mut r = Resizer::new(Filter::Nearest);
    for (sw, sh, dw, dh) in [(1280, 720, 320, 180), (100, 60, 333, 77), (37, 41, 10, 9)] {
        for (format, channels) in FORMATS {
            let src = picture(sw, sh, format);
            let mine = ours(&mut r, &src, sw, sh, dw, dh, format);
            // Independent reference, in exact integer arithmetic.
            let centre = |o: u32, i: u32, n: u32| ((2 * o + 1) * i / (2 * n)) as usize;
            for y in 0..dh {
                for x in 0..dw {
                    let s = (centre(y, sh, dh) * sw as usize + centre(x, sw, dw)) * channels;
                    let d = (y * dw + x) as usize * channels;
                    assert_eq!(
                        mine[d..d + channels],
                        src[s..s + channels],
                        "{sw}x{sh}->{dw}x{dh} at {x},{y}"
                    );
                }
            }
            // fast_image_resize computes centres in floating point: it agrees where
            // no centre falls on a pixel boundary.
            if (sw, sh) != (100, 60) {
                let other = theirs(&src, sw, sh, dw, dh, channels, ResizeAlg::Nearest);
                let differ = mine.iter().zip(&other).filter(|(a, b)| a != b).count();
                assert_eq!(
                    differ, 0,
                    "{sw}x{sh}->{dw}x{dh} {format}: {differ} bytes differ"
                );
            }
        }
    }
}

#[test]
fn planar_resize_equals_resizing_each_plane() {
    let (sw, sh, dw, dh) = (1280u32, 720u32, 320u32, 180u32);
    let mut r = Resizer::new(Filter::Area);
    let yuv = picture(sw, sh, PixelFormat::Yuv420p);
    let mine = ours(&mut r, &yuv, sw, sh, dw, dh, PixelFormat::Yuv420p);
    let (y, c) = ((sw * sh) as usize, (sw * sh / 4) as usize);
    let (dy, dc) = ((dw * dh) as usize, (dw * dh / 4) as usize);
    let alg = ResizeAlg::Convolution(FilterType::Box);
    let luma = theirs(&yuv[..y], sw, sh, dw, dh, 1, alg);
    let u = theirs(&yuv[y..y + c], sw / 2, sh / 2, dw / 2, dh / 2, 1, alg);
    let v = theirs(&yuv[y + c..], sw / 2, sh / 2, dw / 2, dh / 2, 1, alg);
    assert!(max_diff(&mine[..dy], &luma) <= 1);
    assert!(max_diff(&mine[dy..dy + dc], &u) <= 1);
    assert!(max_diff(&mine[dy + dc..], &v) <= 1);
}
