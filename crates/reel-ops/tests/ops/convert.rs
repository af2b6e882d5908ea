//! Colour conversion against ffmpeg's swscale on the same bytes.

use reel_frame::PixelFormat;
use reel_ops::convert::convert;

use crate::util::{ffmpeg_convert, max_diff, mean_diff, smooth_rgb};

fn ours(src: &[u8], from: PixelFormat, to: PixelFormat, w: u32, h: u32) -> Vec<u8> {
    let mut dst = vec![0u8; to.frame_size(w, h).unwrap()];
    convert(src, from, &mut dst, to, w, h).unwrap();
    dst
}

/// The chroma samples of a `w` x `h` YUV 4:2:0 frame, without the last row and
/// column when they cover only half a block (ffmpeg fills those oddly).
fn whole_block_chroma(yuv: &[u8], format: PixelFormat, w: u32, h: u32) -> Vec<u8> {
    let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
    let (full_w, full_h) = ((w / 2) as usize, (h / 2) as usize);
    let chroma = &yuv[(w * h) as usize..];
    let mut out = Vec::new();
    match format {
        PixelFormat::Nv12 => {
            for row in chroma.chunks_exact(2 * cw).take(full_h) {
                out.extend(&row[..2 * full_w]);
            }
        }
        _ => {
            for plane in chroma.chunks_exact(cw * ch) {
                for row in plane.chunks_exact(cw).take(full_h) {
                    out.extend(&row[..full_w]);
                }
            }
        }
    }
    out
}

#[test]
fn rgb_to_yuv_matches_ffmpeg() {
    for (w, h) in [(64, 48), (37, 21)] {
        let rgb = smooth_rgb(w, h);
        for to in [PixelFormat::Yuv420p, PixelFormat::Nv12] {
            let theirs = ffmpeg_convert(&rgb, "rgb24", to.name(), w, h);
            let mine = ours(&rgb, PixelFormat::Rgb24, to, w, h);
            let luma = (w * h) as usize;
            let d = max_diff(&mine[..luma], &theirs[..luma]);
            assert!(d <= 1, "{w}x{h} {to}: luma differs by {d}");
            // swscale filters chroma vertically over more than two rows: within 2
            // levels on smooth content. At odd sizes it scales the chroma rows by
            // a ratio slightly off 2 (21 rows to 11), so only the mean is close.
            let (a, b) = (
                whole_block_chroma(&mine, to, w, h),
                whole_block_chroma(&theirs, to, w, h),
            );
            if w % 2 == 0 && h % 2 == 0 {
                let d = max_diff(&a, &b);
                assert!(d <= 2, "{w}x{h} {to}: chroma differs by {d}");
            } else {
                let d = mean_diff(&a, &b);
                assert!(d < 1.0, "{w}x{h} {to}: chroma differs by {d} on average");
            }
        }
    }
}

/// BT.601 limited-range YUV 4:2:0 to RGB in floating point, chroma repeated over its
/// block: the exact answer the fixed-point code rounds.
fn exact_rgb(yuv: &[u8], w: u32, h: u32) -> Vec<u8> {
    let (w, h) = (w as usize, h as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let luma = 255.0 / 219.0 * (f64::from(yuv[y * w + x]) - 16.0);
            let c = (y / 2) * cw + x / 2;
            let u = f64::from(yuv[w * h + c]) - 128.0;
            let v = f64::from(yuv[w * h + cw * ch + c]) - 128.0;
            let (kr, kb) = (0.299, 0.114);
            let kg = 1.0 - kr - kb;
            let s = 255.0 / 224.0;
            let r = luma + 2.0 * (1.0 - kr) * s * v;
            let g = luma - 2.0 * (1.0 - kb) * kb / kg * s * u - 2.0 * (1.0 - kr) * kr / kg * s * v;
            let b = luma + 2.0 * (1.0 - kb) * s * u;
            out.extend([r, g, b].map(|c| c.round().clamp(0.0, 255.0) as u8));
        }
    }
    out
}

#[test]
fn yuv_to_rgb_matches_ffmpeg() {
    for (w, h) in [(64, 48), (37, 21)] {
        let rgb = smooth_rgb(w, h);
        for from in [PixelFormat::Yuv420p, PixelFormat::Nv12] {
            let yuv = ffmpeg_convert(&rgb, "rgb24", from.name(), w, h);
            let planar = ours(&yuv, from, PixelFormat::Yuv420p, w, h);
            let exact = exact_rgb(&planar, w, h);
            for to in [PixelFormat::Rgb24, PixelFormat::Bgr24, PixelFormat::Rgba] {
                let mine = ours(&yuv, from, to, w, h);
                if from == PixelFormat::Yuv420p && w % 2 == 0 && h % 2 == 0 {
                    // swscale's unscaled yuv420p path repeats chroma too, but truncates
                    // with coarse coefficients (up to 3 levels off the exact result).
                    // (For nv12 and odd sizes it takes its general path, which
                    // interpolates chroma, so only the exact comparison applies.)
                    let theirs = ffmpeg_convert(&yuv, from.name(), to.name(), w, h);
                    let d = max_diff(&mine, &theirs);
                    assert!(d <= 3, "{w}x{h} {from}->{to}: differs from ffmpeg by {d}");
                }
                let as_rgb = ours(&mine, to, PixelFormat::Rgb24, w, h);
                let d = max_diff(&as_rgb, &exact);
                assert!(
                    d <= 1,
                    "{w}x{h} {from}->{to}: differs from the exact result by {d}"
                );
            }
        }
    }
}

#[test]
fn gray_matches_ffmpeg() {
    let (w, h) = (64, 48);
    let rgb = smooth_rgb(w, h);
    let theirs = ffmpeg_convert(&rgb, "rgb24", "gray", w, h);
    assert!(
        max_diff(
            &ours(&rgb, PixelFormat::Rgb24, PixelFormat::Gray8, w, h),
            &theirs
        ) <= 1
    );
    let yuv = ffmpeg_convert(&rgb, "rgb24", "yuv420p", w, h);
    let theirs = ffmpeg_convert(&yuv, "yuv420p", "gray", w, h);
    assert!(
        max_diff(
            &ours(&yuv, PixelFormat::Yuv420p, PixelFormat::Gray8, w, h),
            &theirs
        ) <= 1
    );
    let gray = ffmpeg_convert(&rgb, "rgb24", "gray", w, h);
    let theirs = ffmpeg_convert(&gray, "gray", "rgb24", w, h);
    assert_eq!(
        ours(&gray, PixelFormat::Gray8, PixelFormat::Rgb24, w, h),
        theirs
    );
}

#[test]
fn known_pixels_match_ffmpeg_exactly() {
    // Flat 2x2 blocks of pure colours: no subsampling or filtering involved.
    let colours: [[u8; 3]; 8] = [
        [0, 0, 0],
        [255, 255, 255],
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [128, 128, 128],
        [200, 100, 50],
        [12, 190, 240],
    ];
    let (w, h) = (16u32, 2u32);
    let mut rgb = Vec::new();
    for _row in 0..h {
        for c in colours {
            rgb.extend(c);
            rgb.extend(c);
        }
    }
    let theirs = ffmpeg_convert(&rgb, "rgb24", "yuv420p", w, h);
    let mine = ours(&rgb, PixelFormat::Rgb24, PixelFormat::Yuv420p, w, h);
    assert!(max_diff(&mine, &theirs) <= 1, "{mine:?}\n{theirs:?}");
    let back_theirs = ffmpeg_convert(&theirs, "yuv420p", "rgb24", w, h);
    let back_mine = ours(&theirs, PixelFormat::Yuv420p, PixelFormat::Rgb24, w, h);
    assert!(
        max_diff(&back_mine, &back_theirs) <= 2,
        "{back_mine:?}\n{back_theirs:?}"
    );
}

#[test]
fn rgb_yuv_rgb_round_trip_stays_close() {
    let (w, h) = (96, 64);
    let rgb = smooth_rgb(w, h);
    for via in [PixelFormat::Yuv420p, PixelFormat::Nv12] {
        let yuv = ours(&rgb, PixelFormat::Rgb24, via, w, h);
        let back = ours(&yuv, via, PixelFormat::Rgb24, w, h);
        // Chroma at quarter resolution blurs colour edges a little on smooth content.
        assert!(
            mean_diff(&rgb, &back) < 1.5,
            "mean {}",
            mean_diff(&rgb, &back)
        );
        assert!(max_diff(&rgb, &back) <= 12, "max {}", max_diff(&rgb, &back));
    }
    // A flat picture survives exactly (up to the limited range's rounding).
    let flat: Vec<u8> = [90u8, 160, 30].repeat(16);
    let yuv = ours(&flat, PixelFormat::Rgb24, PixelFormat::Yuv420p, 4, 4);
    let back = ours(&yuv, PixelFormat::Yuv420p, PixelFormat::Rgb24, 4, 4);
    assert!(max_diff(&flat, &back) <= 2);
}
