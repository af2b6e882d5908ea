//! In-process decoding (`Backend::Libav`, the `libav` feature): the frames are
//! reel-ops' area resize and conversion of exactly the pictures ffmpeg decodes, with
//! ffmpeg's indices and times; inputs it does not take go to the child process.

use std::path::Path;

use reel_decode::{Backend, DecodeError, DecodeOptions, HwAccel, Sampling, open};
use reel_frame::{Frame, PixelFormat};
use reel_ops::convert::{
    Conversion, Matrix, Orientation, convert, convert_to, convert_with_matrix,
    full_to_limited_range,
};
use reel_ops::resize::{Filter, Layout, Resizer, StridedPlane};
use reel_pool::FramePool;

use crate::fixtures;

fn pool() -> FramePool {
    FramePool::with_budget(256 << 20)
}

fn opts(backend: Backend) -> DecodeOptions {
    DecodeOptions::default()
        .with_hwaccel(HwAccel::None)
        .with_backend(backend)
}

fn decode(path: &Path, opts: &DecodeOptions) -> (Vec<Frame>, &'static str) {
    let mut src = open(path.to_str().unwrap(), opts, &pool()).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = src.read_frame() {
        frames.push(f.unwrap());
    }
    (frames, src.info().decoder.backend)
}

/// Decodes `path` in process at `size` in `format`, and the reference: ffmpeg's own
/// native yuv420p frames through reel-ops' area resize and conversion.
fn same_as_reel_ops_on_ffmpegs_frames(path: &Path, size: (u32, u32), format: PixelFormat) {
    let (ours, backend) = decode(
        path,
        &opts(Backend::Libav)
            .with_size(size.0, size.1)
            .with_format(format),
    );
    assert_eq!(backend, "libav", "{}", path.display());
    let (native, backend) = decode(
        path,
        &opts(Backend::Ffmpeg).with_format(PixelFormat::Yuv420p),
    );
    assert_eq!(backend, "ffmpeg");
    assert_eq!(ours.len(), native.len(), "{}", path.display());
    let mut resizer = Resizer::new(Filter::Area);
    let mut small = vec![0u8; PixelFormat::Yuv420p.frame_size(size.0, size.1).unwrap()];
    let mut expected = vec![0u8; format.frame_size(size.0, size.1).unwrap()];
    for (a, n) in ours.iter().zip(&native) {
        assert_eq!(a.index, n.index);
        assert!((a.pts - n.pts).abs() < 1e-6, "{} vs {}", a.pts, n.pts);
        assert_eq!(
            (a.width(), a.height(), a.format()),
            (size.0, size.1, format)
        );
        resizer
            .resize(
                n.data(),
                n.width(),
                n.height(),
                &mut small,
                size.0,
                size.1,
                PixelFormat::Yuv420p,
            )
            .unwrap();
        convert(
            &small,
            PixelFormat::Yuv420p,
            &mut expected,
            format,
            size.0,
            size.1,
        )
        .unwrap();
        assert!(
            a.data() == &expected[..],
            "{}: frame {} differs",
            path.display(),
            a.index
        );
    }
}

#[test]
fn frames_are_reel_ops_on_the_pictures_ffmpeg_decodes() {
    // H.264 with B-frames, MPEG-4 part 2, odd-sized FFV1 (chroma rounds up).
    same_as_reel_ops_on_ffmpegs_frames(&fixtures::testsrc_mp4(), (64, 48), PixelFormat::Bgr24);
    same_as_reel_ops_on_ffmpegs_frames(&fixtures::mandelbrot_avi(), (100, 60), PixelFormat::Rgb24);
    same_as_reel_ops_on_ffmpegs_frames(&fixtures::odd_mkv(), (33, 21), PixelFormat::Bgr24);
}

/// ffmpeg's own decoded pictures of `path` in their native 4:2:0 layout (`pix_fmt`
/// as ffprobe names it, so ffmpeg converts nothing), one tightly packed frame each.
fn native_planes(path: &Path, pix_fmt: &str, w: u32, h: u32) -> Vec<Vec<u8>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let len = PixelFormat::Yuv420p.frame_size(w, h).unwrap();
    assert_eq!(out.stdout.len() % len, 0);
    out.stdout.chunks_exact(len).map(<[u8]>::to_vec).collect()
}

#[test]
fn full_range_streams_are_decoded_in_process_with_full_range_tables() {
    // What phones and webcams write: H.264 as yuvj420p, and HEVC flagged
    // color_range=pc (which ffprobe also reports as yuvj420p).
    let h264 = fixtures::video(
        "full.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-pix_fmt",
            "yuvj420p",
        ],
    );
    let hevc = fixtures::video(
        "full-hevc.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=1",
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p",
            "-color_range",
            "pc",
        ],
    );
    let (w, h) = (320, 240);
    for (path, size, format) in [
        (&h264, (80, 60), PixelFormat::Bgr24),
        (&hevc, (64, 48), PixelFormat::Rgb24),
        (&h264, (w, h), PixelFormat::Yuv420p),
    ] {
        let (ours, backend) = decode(
            path,
            &opts(Backend::Libav)
                .with_size(size.0, size.1)
                .with_format(format),
        );
        assert_eq!(backend, "libav", "{}", path.display());
        let native = native_planes(path, "yuvj420p", w, h);
        assert_eq!(ours.len(), native.len());
        assert_eq!(ours.len(), 25);
        let mut resizer = Resizer::new(Filter::Area);
        let mut small = vec![0u8; PixelFormat::Yuv420p.frame_size(size.0, size.1).unwrap()];
        let mut expected = vec![0u8; format.frame_size(size.0, size.1).unwrap()];
        let mut differs_from_limited = false;
        for (a, n) in ours.iter().zip(&native) {
            resizer
                .resize(n, w, h, &mut small, size.0, size.1, PixelFormat::Yuv420p)
                .unwrap();
            let mut limited = vec![0u8; expected.len()];
            convert(
                &small,
                PixelFormat::Yuv420p,
                &mut limited,
                format,
                size.0,
                size.1,
            )
            .unwrap();
            full_to_limited_range(&mut small, PixelFormat::Yuv420p, size.0, size.1).unwrap();
            convert(
                &small,
                PixelFormat::Yuv420p,
                &mut expected,
                format,
                size.0,
                size.1,
            )
            .unwrap();
            assert!(
                a.data() == &expected[..],
                "{}: frame {} differs",
                path.display(),
                a.index
            );
            differs_from_limited |= a.data() != &limited[..];
        }
        // The range matters: read as limited range, the frames would differ.
        assert!(differs_from_limited, "{}", path.display());
    }
}

#[test]
fn a_bt709_stream_is_read_with_the_bt709_matrix() {
    let path = fixtures::video(
        "bt709.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],
    );
    let (w, h) = (320, 240);
    let (ours, backend) = decode(&path, &opts(Backend::Libav).with_format(PixelFormat::Bgr24));
    assert_eq!(backend, "libav");
    // Bit for bit reel-ops' BT.709 conversion of ffmpeg's own planes.
    let native = native_planes(&path, "yuv420p", w, h);
    assert_eq!(ours.len(), native.len());
    let mut expected = vec![0u8; PixelFormat::Bgr24.frame_size(w, h).unwrap()];
    let mut bt601 = expected.clone();
    for (a, n) in ours.iter().zip(&native) {
        convert_with_matrix(
            n,
            PixelFormat::Yuv420p,
            &mut expected,
            PixelFormat::Bgr24,
            w,
            h,
            Matrix::Bt709,
        )
        .unwrap();
        convert(
            n,
            PixelFormat::Yuv420p,
            &mut bt601,
            PixelFormat::Bgr24,
            w,
            h,
        )
        .unwrap();
        assert!(a.data() == &expected[..], "frame {} differs", a.index);
        assert!(a.data() != &bt601[..], "frame {} reads as BT.601", a.index);
    }
    // And within one step of ffmpeg's own accurate conversion with that matrix
    // (chroma repeated, exact rounding: its fast path is up to 3 off the exact value).
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(&path)
        .args([
            "-vf",
            "scale=in_color_matrix=bt709:in_range=tv:flags=neighbor+accurate_rnd+full_chroma_int",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "bgr24",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<&[u8]> = out.stdout.chunks_exact(expected.len()).collect();
    assert_eq!(theirs.len(), ours.len());
    for (a, t) in ours.iter().zip(theirs) {
        let worst = a
            .data()
            .iter()
            .zip(t)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap();
        assert!(
            worst <= 1,
            "frame {}: off by {worst} from ffmpeg's bgr24",
            a.index
        );
    }
}

#[test]
fn a_start_seeks_and_gives_exactly_the_frames_of_a_full_decode() {
    // 12 s at 25 fps, a keyframe every 2 s, B-frames.
    let path = fixtures::video(
        "long.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=12",
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let o = opts(Backend::Libav).with_size(80, 60);
    let (all, backend) = decode(&path, &o);
    assert_eq!(backend, "libav");
    assert_eq!(all.len(), 300);
    for (start, end) in [
        (Some(7.3), Some(9.0)),
        (Some(4.0), None),
        (Some(10.52), Some(11.0)),
    ] {
        let sampling = Sampling::all().between(start, end);
        let (window, backend) = decode(&path, &o.clone().with_sampling(sampling));
        assert_eq!(backend, "libav");
        let want: Vec<&Frame> = all
            .iter()
            .filter(|f| f.pts >= start.unwrap() - 1e-9 && end.is_none_or(|e| f.pts < e))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(window.len(), want.len(), "{start:?}..{end:?}");
        for (a, b) in window.iter().zip(want) {
            assert_eq!((a.index, a.pts), (b.index, b.pts));
            assert!(a.data() == b.data(), "frame {} differs", a.index);
        }
        // The child process keeps the same frames.
        let (child, _) = decode(
            &path,
            &opts(Backend::Ffmpeg)
                .with_size(80, 60)
                .with_sampling(sampling),
        );
        let idx = |v: &[Frame]| v.iter().map(|f| f.index).collect::<Vec<_>>();
        assert_eq!(idx(&child), idx(&window), "{start:?}..{end:?}");
    }
}

#[test]
fn the_other_streams_are_passed_over() {
    // Audio as stream 0, the video as stream 1.
    let dir = fixtures::scratch();
    let path = dir.path().join("av.mkv");
    fixtures::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=duration=2",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=2",
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        path.to_str().unwrap(),
    ]);
    let (ours, backend) = decode(&path, &opts(Backend::Libav).with_size(80, 60));
    assert_eq!(backend, "libav");
    assert_eq!(ours.len() as u64, fixtures::ffprobe_count(&path));
    assert_eq!(ours.len(), 50);
}

#[test]
fn native_size_and_format_is_the_decoders_picture() {
    // No resize, no conversion: the bytes ffmpeg writes for yuv420p.
    let path = fixtures::testsrc_mp4();
    let (ours, backend) = decode(
        &path,
        &opts(Backend::Libav).with_format(PixelFormat::Yuv420p),
    );
    assert_eq!(backend, "libav");
    let md5s = fixtures::framemd5_as(&path, None, "yuv420p");
    assert_eq!(ours.len(), md5s.len());
    for (f, m) in ours.iter().zip(&md5s) {
        assert_eq!(&fixtures::md5(f), m, "frame {}", f.index);
    }
}

#[test]
fn variable_frame_rate_times_are_ffprobes() {
    let path = fixtures::vfr_mkv();
    let (ours, backend) = decode(&path, &opts(Backend::Libav).with_size(80, 60));
    assert_eq!(backend, "libav");
    let times = fixtures::ffprobe_times(&path);
    assert_eq!(ours.len(), times.len());
    let first = times[0];
    for (f, t) in ours.iter().zip(&times) {
        assert!(
            (f.pts - (t - first)).abs() < 1e-6,
            "{} vs {}",
            f.pts,
            t - first
        );
    }
}

#[test]
fn sampling_keeps_the_frames_the_child_process_keeps() {
    let path = fixtures::faststart_mp4();
    for sampling in [
        Sampling::every(3),
        Sampling::fps(7.0),
        Sampling::every(2).between(Some(1.0), Some(2.5)),
    ] {
        let indices = |backend| {
            let (frames, _) = decode(
                &path,
                &opts(backend).with_size(80, 60).with_sampling(sampling),
            );
            frames.iter().map(|f| f.index).collect::<Vec<_>>()
        };
        let ours = indices(Backend::Libav);
        assert!(!ours.is_empty());
        assert_eq!(ours, indices(Backend::Ffmpeg), "{sampling:?}");
    }
}

#[test]
fn inputs_it_does_not_take_go_to_the_child_process() {
    // Full-range MJPEG (yuvj420p) is taken; planar RGB (gbrp) and a picture with
    // alpha are not, nor a rotated RGB picture.
    let (frames, backend) = decode(
        &fixtures::mjpeg_mov(),
        &opts(Backend::Libav).with_size(96, 54),
    );
    assert_eq!(backend, "libav");
    assert_eq!(frames.len(), 30);
    let src = "testsrc2=size=96x64:rate=10:duration=0.5";
    let png = fixtures::video("rgb.mp4", &["-f", "lavfi", "-i", src, "-c:v", "png"]);
    let png = png.to_str().unwrap();
    for (name, args) in [
        (
            "gbrp.mkv",
            &["-f", "lavfi", "-i", src, "-c:v", "ffv1", "-pix_fmt", "gbrp"][..],
        ),
        (
            "yuva.mkv",
            &[
                "-f", "lavfi", "-i", src, "-c:v", "ffv1", "-pix_fmt", "yuva420p",
            ][..],
        ),
        (
            "rgb-rot.mp4",
            &["-i", png, "-c", "copy", "-metadata:s:v:0", "rotate=90"][..],
        ),
    ] {
        let path = fixtures::video(name, args);
        let (frames, backend) = decode(&path, &opts(Backend::Libav).with_size(48, 32));
        assert_eq!(backend, "ffmpeg", "{name}");
        assert_eq!(frames.len(), 5, "{name}");
    }
    // The default backend never decodes in process.
    let (_, backend) = decode(&fixtures::testsrc_mp4(), &opts(Backend::Auto));
    assert_eq!(backend, "ffmpeg");
}

/// The planes of a `w` x `h` picture in `pix_fmt` as ffmpeg's rawvideo writes them
/// (bytes per row, rows), and the layout the decoder reads it as.
fn raw_shape(pix_fmt: &str, w: usize, h: usize) -> (Vec<(usize, usize)>, Layout) {
    let yuv = Layout::of(PixelFormat::Yuv420p);
    let nv = Layout::of(PixelFormat::Nv12);
    let grey = Layout::of(PixelFormat::Gray8);
    let (layout, cx, cy) = match pix_fmt {
        "yuv420p" | "yuvj420p" => (yuv, 1, 1),
        "yuv422p" | "yuvj422p" => (yuv.with_chroma_shift(1, 0), 1, 0),
        "yuv444p" | "yuvj444p" => (yuv.with_chroma_shift(0, 0), 0, 0),
        "yuv420p10le" => (yuv.with_wide_samples(2), 1, 1),
        "yuv422p10le" => (yuv.with_chroma_shift(1, 0).with_wide_samples(2), 1, 0),
        "yuv444p10le" => (yuv.with_chroma_shift(0, 0).with_wide_samples(2), 0, 0),
        "yuv420p12le" => (yuv.with_wide_samples(4), 1, 1),
        "yuv422p12le" => (yuv.with_chroma_shift(1, 0).with_wide_samples(4), 1, 0),
        "yuv444p16le" => (yuv.with_chroma_shift(0, 0).with_wide_samples(8), 0, 0),
        "nv12" => (nv, 1, 1),
        "nv21" => (nv.with_swapped_chroma(), 1, 1),
        "p010le" => (nv.with_wide_samples(8), 1, 1),
        "gray" => (grey, 0, 0),
        "gray10le" => (grey.with_wide_samples(2), 0, 0),
        "gray12le" => (grey.with_wide_samples(4), 0, 0),
        "rgb24" => (Layout::of(PixelFormat::Rgb24), 0, 0),
        "bgr24" => (Layout::of(PixelFormat::Bgr24), 0, 0),
        other => panic!("no shape for {other}"),
    };
    let b = usize::from(layout.sample_bytes);
    let (cw, ch) = (w.div_ceil(1 << cx), h.div_ceil(1 << cy));
    let planes = match layout.format {
        PixelFormat::Gray8 => vec![(w * b, h)],
        PixelFormat::Rgb24 | PixelFormat::Bgr24 => vec![(3 * w, h)],
        PixelFormat::Nv12 => vec![(w * b, h), (2 * cw * b, ch)],
        _ => vec![(w * b, h), (cw * b, ch), (cw * b, ch)],
    };
    (planes, layout)
}

/// ffmpeg's own decoded pictures of `path` in the stream's layout (`pix_fmt` as
/// ffprobe names it: ffmpeg converts nothing), each with its planes.
fn raw_pictures(
    path: &Path,
    pix_fmt: &str,
    w: usize,
    h: usize,
) -> (Vec<Vec<u8>>, Vec<(usize, usize)>, Layout) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (planes, layout) = raw_shape(pix_fmt, w, h);
    let len: usize = planes.iter().map(|(s, r)| s * r).sum();
    assert_eq!(out.stdout.len() % len, 0, "{pix_fmt}");
    let pictures = out.stdout.chunks_exact(len).map(<[u8]>::to_vec).collect();
    (pictures, planes, layout)
}

/// reel-ops on one of ffmpeg's pictures, as the decoder applies it: the resize of
/// `layout` to `size` (before the turn), limited range, then the conversion.
#[allow(clippy::too_many_arguments)]
fn reference(
    picture: &[u8],
    planes: &[(usize, usize)],
    layout: Layout,
    (w, h): (u32, u32),
    size: (u32, u32),
    full_range: bool,
    how: Conversion,
    format: PixelFormat,
) -> Vec<u8> {
    let mut views = Vec::new();
    let mut at = 0;
    for &(stride, rows) in planes {
        views.push(StridedPlane {
            data: &picture[at..at + stride * rows],
            stride,
        });
        at += stride * rows;
    }
    let mut small = vec![0u8; layout.format.frame_size(size.0, size.1).unwrap()];
    Resizer::new(Filter::Area)
        .resize_layout(&views, w, h, &mut small, size.0, size.1, layout)
        .unwrap();
    if full_range {
        full_to_limited_range(&mut small, layout.format, size.0, size.1).unwrap();
    }
    let mut out = vec![0u8; format.frame_size(size.0, size.1).unwrap()];
    convert_to(&small, layout.format, &mut out, format, size.0, size.1, how).unwrap();
    out
}

/// Decodes `path` in process at `size` in `format` and checks every frame against
/// reel-ops on ffmpeg's own pictures.
fn same_as_reel_ops_on_ffmpegs_pictures(
    path: &Path,
    pix_fmt: &str,
    size: (u32, u32),
    format: PixelFormat,
    full_range: bool,
    matrix: Matrix,
) -> Vec<Frame> {
    let name = path.display();
    let (ours, backend) = decode(
        path,
        &opts(Backend::Libav)
            .with_size(size.0, size.1)
            .with_format(format),
    );
    assert_eq!(backend, "libav", "{name}");
    let (w, h) = (96, 64);
    let (pictures, planes, layout) = raw_pictures(path, pix_fmt, w, h);
    assert_eq!(ours.len(), pictures.len(), "{name}");
    assert_eq!(ours.len(), 10, "{name}");
    let how = Conversion {
        matrix,
        ..Conversion::default()
    };
    for (a, p) in ours.iter().zip(&pictures) {
        assert_eq!(
            (a.width(), a.height(), a.format()),
            (size.0, size.1, format)
        );
        let want = reference(
            p,
            &planes,
            layout,
            (w as u32, h as u32),
            size,
            full_range,
            how,
            format,
        );
        assert!(
            a.data() == &want[..],
            "{name} ({pix_fmt}): frame {} differs",
            a.index
        );
    }
    ours
}

#[test]
fn every_layout_it_reads_is_reel_ops_on_ffmpegs_pictures() {
    // 10, 12 and 16 bits, 4:2:2 and 4:4:4, full range, semi-planar, grey, RGB:
    // each at a reduced size in BGR and at its own size in its own 8-bit format.
    let src = "testsrc2=size=96x64:rate=10:duration=1";
    let cases: &[(&str, &str, &str, bool)] = &[
        ("yuv420p10.mp4", "libx265", "yuv420p10le", false),
        ("yuv422p10.mkv", "ffv1", "yuv422p10le", false),
        ("yuv444p10.mkv", "ffv1", "yuv444p10le", false),
        ("yuv420p12.mkv", "ffv1", "yuv420p12le", false),
        ("yuv422p12.mkv", "ffv1", "yuv422p12le", false),
        ("yuv444p16.mkv", "ffv1", "yuv444p16le", false),
        ("yuv422p.mp4", "libx264", "yuv422p", false),
        ("yuv444p.mkv", "ffv1", "yuv444p", false),
        ("yuvj422p.mov", "mjpeg", "yuvj422p", true),
        ("yuvj444p.mov", "mjpeg", "yuvj444p", true),
        ("nv12.nut", "rawvideo", "nv12", false),
        ("nv21.nut", "rawvideo", "nv21", false),
        ("gray.mkv", "ffv1", "gray", false),
        ("gray10.mkv", "ffv1", "gray10le", false),
        ("gray12.mkv", "ffv1", "gray12le", false),
        ("rgb24.nut", "rawvideo", "rgb24", false),
        ("bgr24.nut", "rawvideo", "bgr24", false),
    ];
    for &(name, codec, pix_fmt, full) in cases {
        let mut args = vec!["-f", "lavfi", "-i", src, "-c:v", codec, "-pix_fmt", pix_fmt];
        if codec == "libx265" {
            args.extend(["-x265-params", "log-level=error"]);
        }
        if codec == "libx264" {
            args.extend(["-preset", "veryfast"]);
        }
        let path = fixtures::video(name, &args);
        same_as_reel_ops_on_ffmpegs_pictures(
            &path,
            pix_fmt,
            (48, 32),
            PixelFormat::Bgr24,
            full,
            Matrix::Bt601,
        );
        let own = raw_shape(pix_fmt, 1, 1).1.format;
        same_as_reel_ops_on_ffmpegs_pictures(&path, pix_fmt, (96, 64), own, full, Matrix::Bt601);
    }
}

#[test]
fn ten_bits_are_rounded_to_eight_within_one_of_ffmpegs_dither() {
    // At its own size a 10-bit picture becomes 8-bit yuv420p by rounding; ffmpeg's
    // swscale dithers, which is never more than one step away.
    let path = fixtures::video(
        "yuv420p10-bt2020.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=10:duration=1",
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p10le",
            "-colorspace",
            "bt2020nc",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "bt2020-10",
        ],
    );
    let ours = same_as_reel_ops_on_ffmpegs_pictures(
        &path,
        "yuv420p10le",
        (96, 64),
        PixelFormat::Yuv420p,
        false,
        Matrix::Bt601,
    );
    let theirs = native_planes(&path, "yuv420p", 96, 64);
    for (a, t) in ours.iter().zip(&theirs) {
        let worst = a
            .data()
            .iter()
            .zip(t)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap();
        assert!(worst <= 1, "frame {}: {worst} steps from ffmpeg's", a.index);
    }
    // The stream says BT.2020: its RGB is read with that matrix.
    let rgb = same_as_reel_ops_on_ffmpegs_pictures(
        &path,
        "yuv420p10le",
        (48, 32),
        PixelFormat::Rgb24,
        false,
        Matrix::Bt2020,
    );
    let (bt601, _) = decode(
        &fixtures::video(
            "yuv420p10.mp4",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=96x64:rate=10:duration=1",
                "-c:v",
                "libx265",
                "-pix_fmt",
                "yuv420p10le",
                "-x265-params",
                "log-level=error",
            ],
        ),
        &opts(Backend::Libav)
            .with_size(48, 32)
            .with_format(PixelFormat::Rgb24),
    );
    assert!(rgb[0].data() != bt601[0].data());
}

#[test]
fn a_truncated_file_ends_with_an_error_after_its_good_frames() {
    let dir = fixtures::scratch();
    let whole = std::fs::read(fixtures::faststart_mp4()).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &whole[..whole.len() * 6 / 10]).unwrap();
    let mut src = open(
        cut.to_str().unwrap(),
        &opts(Backend::Libav).with_size(80, 60),
        &pool(),
    )
    .unwrap();
    assert_eq!(src.info().decoder.backend, "libav");
    let mut good = 0u64;
    let mut end = None;
    while let Some(r) = src.read_frame() {
        match r {
            Ok(f) => {
                assert_eq!(f.index, good);
                good += 1;
            }
            Err(e) => {
                end = Some(e);
                break;
            }
        }
    }
    assert!(good > 10 && good < 100, "{good} frames");
    let e = end.expect("the stream ends with an error");
    assert!(
        matches!(
            e,
            DecodeError::Truncated { .. } | DecodeError::Corrupt { .. }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("cut.mp4"), "{e}");
    assert!(src.read_frame().is_none());
}

/// `path` with the first track header's matrix set to `a b / c d` (unit values):
/// the display matrices (mirrors, transpositions) ffmpeg's options cannot write.
fn with_track_matrix(path: &Path, out: &Path, [a, b, c, d]: [i32; 4]) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.windows(4).position(|w| w == b"tkhd").unwrap() - 4;
    assert_eq!(bytes[at + 8], 0, "a version 0 tkhd");
    let matrix = at + 48;
    let unit = |v: i32| (v << 16).to_be_bytes();
    let fields = [
        unit(a),
        unit(b),
        [0; 4],
        unit(c),
        unit(d),
        [0; 4],
        [0; 4],
        [0; 4],
        0x4000_0000i32.to_be_bytes(),
    ];
    for (i, f) in fields.iter().enumerate() {
        bytes[matrix + 4 * i..][..4].copy_from_slice(f);
    }
    std::fs::write(out, bytes).unwrap();
}

#[test]
fn turned_pictures_are_ffmpegs_autorotation() {
    // Quarter and half turns from the rotate tag, and mirrors and transpositions
    // written into the track's matrix: at its own size in yuv420p, every frame has
    // the MD5 of ffmpeg's autorotated frame; in BGR it is reel-ops' conversion of
    // ffmpeg's autorotated planes (a 10-bit picture: within ffmpeg's dither).
    let plain = fixtures::video(
        "turn-src.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=10:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let ten = fixtures::video(
        "turn-src10.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=10:duration=1",
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p10le",
        ],
    );
    let dir = fixtures::scratch();
    let mut files = Vec::new();
    for (src, degrees, deep) in [
        (&plain, 90, false),
        (&plain, 180, false),
        (&plain, 270, false),
        (&ten, 90, true),
    ] {
        let out = dir.path().join(format!("rot{degrees}-{deep}.mp4"));
        let tag = format!("rotate={degrees}");
        fixtures::ffmpeg(&[
            "-i",
            src.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            &tag,
            out.to_str().unwrap(),
        ]);
        files.push((out, degrees % 180 == 90, deep));
    }
    for (i, m) in [[-1, 0, 0, 1], [1, 0, 0, -1], [0, 1, 1, 0], [0, -1, -1, 0]]
        .into_iter()
        .enumerate()
    {
        let out = dir.path().join(format!("matrix{i}.mp4"));
        with_track_matrix(&plain, &out, m);
        files.push((out, m[0] == 0, false));
    }
    for (path, swapped, deep) in &files {
        let name = path.display();
        let shown = if *swapped { (64, 96) } else { (96, 64) };
        let (ours, backend) = decode(
            path,
            &opts(Backend::Libav).with_format(PixelFormat::Yuv420p),
        );
        assert_eq!(backend, "libav", "{name}");
        let theirs = native_planes(path, "yuv420p", shown.0, shown.1);
        assert_eq!(ours.len(), theirs.len(), "{name}");
        assert_eq!(ours.len(), 10, "{name}");
        let md5s = fixtures::framemd5_as(path, None, "yuv420p");
        for ((f, m), t) in ours.iter().zip(&md5s).zip(&theirs) {
            assert_eq!((f.width(), f.height()), shown, "{name}");
            if *deep {
                let worst = f
                    .data()
                    .iter()
                    .zip(t)
                    .map(|(x, y)| x.abs_diff(*y))
                    .max()
                    .unwrap();
                assert!(worst <= 1, "{name}: frame {}: {worst} steps", f.index);
            } else {
                assert_eq!(&fixtures::md5(f), m, "{name}: frame {}", f.index);
            }
        }
        if *deep {
            continue;
        }
        let (bgr, _) = decode(path, &opts(Backend::Libav).with_format(PixelFormat::Bgr24));
        let mut want = vec![0u8; PixelFormat::Bgr24.frame_size(shown.0, shown.1).unwrap()];
        for (a, t) in bgr.iter().zip(&theirs) {
            convert(
                t,
                PixelFormat::Yuv420p,
                &mut want,
                PixelFormat::Bgr24,
                shown.0,
                shown.1,
            )
            .unwrap();
            assert!(a.data() == &want[..], "{name}: frame {} differs", a.index);
        }
    }
    // At a reduced size: the resize in the picture's own orientation, then the
    // turn, as reel-ops does them on ffmpeg's unturned pictures. (ffmpeg reads the
    // tag `rotate=90` as a quarter turn counter-clockwise, `transpose=cclock`.)
    for (path, turn) in [
        (&files[0].0, Orientation::COUNTER_CLOCKWISE),
        (&files[1].0, Orientation::HALF_TURN),
        (&files[2].0, Orientation::CLOCKWISE),
    ] {
        let size = turn.output_size(48, 32);
        let (ours, backend) = decode(
            path,
            &opts(Backend::Libav)
                .with_size(size.0, size.1)
                .with_format(PixelFormat::Rgb24),
        );
        assert_eq!(backend, "libav");
        let out = std::process::Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-autorotate",
                "0",
                "-i",
            ])
            .arg(path)
            .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
            .output()
            .unwrap();
        let (planes, layout) = raw_shape("yuv420p", 96, 64);
        let pictures: Vec<&[u8]> = out.stdout.chunks_exact(96 * 64 * 3 / 2).collect();
        assert_eq!(pictures.len(), ours.len());
        let how = Conversion {
            orientation: turn,
            ..Conversion::default()
        };
        for (a, p) in ours.iter().zip(pictures) {
            assert_eq!((a.width(), a.height()), size);
            let want = reference(
                p,
                &planes,
                layout,
                (96, 64),
                (48, 32),
                false,
                how,
                PixelFormat::Rgb24,
            );
            let diff = a.data().iter().zip(&want).filter(|(x, y)| x != y).count();
            assert!(
                a.data() == &want[..],
                "{}: frame {} differs in {diff} of {} ({:?} vs {:?})",
                path.display(),
                a.index,
                a.data().len(),
                &a.data()[..12],
                &want[..12],
            );
        }
    }
}
