//! In-process decoding (`Backend::Libav`, the `libav` feature): the frames are
//! reel-ops' area resize and conversion of exactly the pictures ffmpeg decodes, with
//! ffmpeg's indices and times; inputs it does not take go to the child process.

use std::path::Path;

use reel_decode::{Backend, DecodeError, DecodeOptions, HwAccel, Sampling, open};
use reel_frame::{Frame, PixelFormat};
use reel_ops::convert::{Matrix, convert, convert_with_matrix, full_to_limited_range};
use reel_ops::resize::{Filter, Resizer};
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
    // 4:2:2 and a rotated picture. (Full-range MJPEG, yuvj420p, is taken now.)
    let (frames, backend) = decode(
        &fixtures::mjpeg_mov(),
        &opts(Backend::Libav).with_size(96, 54),
    );
    assert_eq!(backend, "libav");
    assert_eq!(frames.len(), 30);
    let yuv422 = fixtures::video(
        "yuv422.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=192x108:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv422p",
        ],
    );
    let (frames, backend) = decode(&yuv422, &opts(Backend::Libav).with_size(96, 54));
    assert_eq!(backend, "ffmpeg");
    assert_eq!(frames.len(), 25);
    let dir = fixtures::scratch();
    let rotated = fixtures::rotated_mp4(dir.path());
    let (frames, backend) = decode(&rotated, &opts(Backend::Libav));
    assert_eq!(backend, "ffmpeg");
    assert_eq!((frames[0].width(), frames[0].height()), (240, 320));
    // The default backend never decodes in process.
    let (_, backend) = decode(&fixtures::testsrc_mp4(), &opts(Backend::Auto));
    assert_eq!(backend, "ffmpeg");
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
