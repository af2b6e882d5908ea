//! The pure-Rust Y4M reader against ffmpeg's reading of the same files.

use std::path::{Path, PathBuf};

use reel_decode::y4m::Y4mSource;
use reel_decode::{Backend, DecodeError, DecodeOptions, Position, Sampling, VideoSource, open};
use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;

use crate::fixtures::{self, framemd5_as, md5};

/// 1 s of testsrc2, 320x240 at 25 fps, as Y4M (4:2:0).
fn clip() -> PathBuf {
    fixtures::video(
        "clip.y4m",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=1",
            "-pix_fmt",
            "yuv420p",
        ],
    )
}

fn frames(path: &Path, opts: &DecodeOptions) -> (Vec<Frame>, Option<DecodeError>) {
    let mut src = open(
        path.to_str().unwrap(),
        opts,
        &FramePool::with_budget(64 << 20),
    )
    .unwrap();
    let mut out = Vec::new();
    while let Some(r) = src.read_frame() {
        match r {
            Ok(f) => out.push(f),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn native(format: PixelFormat) -> DecodeOptions {
    DecodeOptions::default()
        .with_backend(Backend::Native)
        .with_format(format)
}

#[test]
fn yuv_frames_are_the_files_bytes() {
    let path = clip();
    let oracle = framemd5_as(&path, None, "yuv420p");
    let src = Y4mSource::open(
        path.to_str().unwrap(),
        &native(PixelFormat::Yuv420p),
        &FramePool::with_budget(1 << 24),
    )
    .unwrap();
    assert_eq!(src.info().frames, Some(25));
    assert_eq!(src.info().decoder.backend, "y4m");
    let (fs, err) = frames(&path, &native(PixelFormat::Yuv420p));
    assert!(err.is_none());
    assert_eq!(fs.len(), 25);
    assert_eq!(fs.len() as u64, fixtures::ffprobe_count(&path));
    for f in &fs {
        assert_eq!(md5(f), oracle[f.index as usize]);
        assert!((f.pts - f.index as f64 / 25.0).abs() < 1e-12);
    }
    // ffmpeg reading the same file gives the same frames.
    let (ff, _) = frames(
        &path,
        &native(PixelFormat::Yuv420p).with_backend(Backend::Ffmpeg),
    );
    assert_eq!(ff.len(), 25);
    assert!(ff.iter().zip(&fs).all(|(a, b)| a.data() == b.data()));
}

#[test]
fn rgb_through_reel_ops_is_close_to_ffmpegs() {
    let path = clip();
    let (ours, _) = frames(&path, &native(PixelFormat::Rgb24));
    let (theirs, _) = frames(
        &path,
        &native(PixelFormat::Rgb24).with_backend(Backend::Ffmpeg),
    );
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs).step_by(6) {
        let diff: u64 = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        let mean = diff as f64 / a.data().len() as f64;
        assert!(mean < 2.0, "frame {}: mean difference {mean}", a.index);
    }
}

#[test]
fn sampling_size_and_gray() {
    let path = clip();
    let oracle = framemd5_as(&path, None, "yuv420p");
    let (fs, _) = frames(
        &path,
        &native(PixelFormat::Yuv420p).with_sampling(Sampling::every(5)),
    );
    let idx: Vec<u64> = fs.iter().map(|f| f.index).collect();
    assert_eq!(idx, [0, 5, 10, 15, 20]);
    assert!(fs.iter().all(|f| md5(f) == oracle[f.index as usize]));

    let (small, _) = frames(&path, &native(PixelFormat::Gray8).with_size(160, 120));
    assert_eq!((small[0].width(), small[0].height()), (160, 120));
    assert_eq!(small[0].meta.source_size, Some((320, 240)));
    assert_eq!(small.len(), 25);

    let mono = fixtures::video(
        "mono.y4m",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=10:duration=1",
            "-pix_fmt",
            "gray",
        ],
    );
    let oracle = framemd5_as(&mono, None, "gray");
    let (fs, _) = frames(&mono, &native(PixelFormat::Gray8));
    assert_eq!(fs.len(), 10);
    assert!(fs.iter().all(|f| md5(f) == oracle[f.index as usize]));
}

#[test]
fn a_truncated_y4m_says_where_it_stopped() {
    let dir = fixtures::scratch();
    let bytes = std::fs::read(clip()).unwrap();
    let frame = 320 * 240 * 3 / 2 + 6;
    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let cut = dir.path().join("cut.y4m");
    std::fs::write(&cut, &bytes[..header + frame * 9 + frame / 2]).unwrap();
    let (fs, err) = frames(&cut, &native(PixelFormat::Yuv420p));
    assert_eq!(fs.len(), 9);
    let err = err.unwrap();
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err:?}");
    assert_eq!(err.position(), Some(Position::after(8, 8.0 / 25.0)));
    assert!(err.to_string().contains("cut.y4m"), "{err}");
}

#[test]
fn bad_headers() {
    let dir = fixtures::scratch();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let pool = FramePool::with_budget(1 << 24);
    let err = |p: &Path| match open(p.to_str().unwrap(), &native(PixelFormat::Rgb24), &pool) {
        Ok(_) => panic!("{} opened", p.display()),
        Err(e) => e,
    };
    let e = err(&write(
        "huge.y4m",
        b"YUV4MPEG2 W100000 H100000 F25:1 C420jpeg\nFRAME\n",
    ));
    assert!(matches!(e, DecodeError::AbsurdDimensions { .. }), "{e:?}");
    assert!(e.to_string().contains("huge.y4m: 100000x100000"));
    assert_eq!(pool.stats().bytes_allocated, 0);
    let e = err(&write("c444.y4m", b"YUV4MPEG2 W8 H8 F25:1 C444\nFRAME\n"));
    assert!(matches!(e, DecodeError::Unsupported { .. }), "{e:?}");
    let e = err(&write("text.y4m", b"just some text\n"));
    assert!(matches!(e, DecodeError::NotVideo { .. }), "{e:?}");
    let e = err(&write("empty.y4m", b""));
    assert!(matches!(e, DecodeError::Empty { .. }), "{e:?}");
    let e = err(&dir.path().join("missing.y4m"));
    assert!(matches!(e, DecodeError::NotFound { .. }), "{e:?}");

    // A frame marker missing in the middle.
    let mut bytes = b"YUV4MPEG2 W4 H2 F25:1 C420jpeg\n".to_vec();
    bytes.extend_from_slice(b"FRAME\n");
    bytes.extend_from_slice(&[100u8; 12]);
    bytes.extend_from_slice(b"GARBAGE\n");
    bytes.extend_from_slice(&[100u8; 12]);
    let p = write("garbage.y4m", &bytes);
    let (fs, e) = frames(&p, &native(PixelFormat::Yuv420p));
    assert_eq!(fs.len(), 1);
    assert!(matches!(e, Some(DecodeError::Corrupt { .. })), "{e:?}");
}
