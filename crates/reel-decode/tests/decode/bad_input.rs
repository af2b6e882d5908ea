//! Every kind of bad input gets a typed error that names the file (and the last good
//! frame when it stops mid-stream); frames decoded before the fault are delivered.

use std::path::Path;
use std::process::Command;

use reel_decode::ffmpeg::FfmpegSource;
use reel_decode::{
    DecodeError, DecodeOptions, FfmpegTools, HwAccel, Position, VideoSource, open, probe,
};
use reel_frame::Frame;
use reel_pool::FramePool;

use crate::fixtures::{self, framemd5, md5};

fn software() -> DecodeOptions {
    DecodeOptions::default().with_hwaccel(HwAccel::None)
}

fn open_err(path: &str, opts: &DecodeOptions) -> DecodeError {
    match open(path, opts, &FramePool::with_budget(64 << 20)) {
        Ok(_) => panic!("{path} opened"),
        Err(e) => e,
    }
}

/// Reads until the end or an error: the frames, and the error if any.
fn read_until_error(src: &mut dyn VideoSource) -> (Vec<Frame>, Option<DecodeError>) {
    let mut frames = Vec::new();
    while let Some(r) = src.read_frame() {
        match r {
            Ok(f) => frames.push(f),
            Err(e) => {
                assert!(src.read_frame().is_none(), "a stream ends after its error");
                return (frames, Some(e));
            }
        }
    }
    (frames, None)
}

/// A copy of `src` cut to `fraction` of its length.
fn truncated_copy(src: &Path, dir: &Path, fraction: f64) -> std::path::PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let cut = (bytes.len() as f64 * fraction) as usize;
    let out = dir.join(format!(
        "cut-{}",
        src.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(&out, &bytes[..cut]).unwrap();
    out
}

#[test]
fn missing_file() {
    let e = open_err("/no/such/dir/clip.mp4", &software());
    assert!(matches!(e, DecodeError::NotFound { .. }), "{e:?}");
    assert_eq!(e.to_string(), "/no/such/dir/clip.mp4: no such file");
    assert!(matches!(
        probe("/no/such/dir/clip.mp4", &software()),
        Err(DecodeError::NotFound { .. })
    ));
}

#[test]
fn empty_file() {
    let dir = fixtures::scratch();
    let path = dir.path().join("empty.mp4");
    std::fs::write(&path, b"").unwrap();
    let e = open_err(path.to_str().unwrap(), &software());
    assert!(matches!(e, DecodeError::Empty { .. }), "{e:?}");
    assert!(
        e.to_string().contains("empty.mp4: the file is empty"),
        "{e}"
    );
}

#[test]
fn text_file_named_mp4() {
    let dir = fixtures::scratch();
    let path = dir.path().join("notes.mp4");
    std::fs::write(&path, "these are my notes, not a video\n").unwrap();
    let e = open_err(path.to_str().unwrap(), &software());
    assert!(matches!(e, DecodeError::NotVideo { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("notes.mp4: not a video file"), "{msg}");
    assert!(msg.contains("Invalid data"), "{msg}");
}

#[test]
fn audio_only_file() {
    let dir = fixtures::scratch();
    let path = dir.path().join("tone.wav");
    fixtures::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=0.2",
        path.to_str().unwrap(),
    ]);
    let e = open_err(path.to_str().unwrap(), &software());
    assert!(matches!(e, DecodeError::NoVideoStream { .. }), "{e:?}");
    assert!(e.to_string().contains("tone.wav"));
}

#[test]
fn truncated_mp4_delivers_the_good_frames_then_says_where_it_stopped() {
    let dir = fixtures::scratch();
    let full = fixtures::faststart_mp4();
    let oracle = framemd5(&full, None);
    let cut = truncated_copy(&full, dir.path(), 0.6);
    let name = cut.to_str().unwrap();
    let mut src = open(name, &software(), &FramePool::with_budget(64 << 20)).unwrap();
    assert_eq!(
        src.info().frames,
        Some(100),
        "the index still promises 100 frames"
    );
    let (frames, err) = read_until_error(&mut *src);
    let err = err.expect("a truncated file is an error");
    assert!(frames.len() > 20 && frames.len() < 100, "{}", frames.len());
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.index, i as u64);
        assert_eq!(md5(f), oracle[i], "frame {i} before the fault");
    }
    let last = frames.last().unwrap();
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err:?}");
    assert_eq!(err.position(), Some(Position::after(last.index, last.pts)));
    let msg = err.to_string();
    assert!(msg.contains(name), "{msg}");
    assert!(
        msg.contains(&format!("after frame {}", last.index)),
        "{msg}"
    );
}

#[test]
fn truncated_mkv_is_truncated_too() {
    let dir = fixtures::scratch();
    let mkv = dir.path().join("whole.mkv");
    fixtures::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=3",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "25",
        mkv.to_str().unwrap(),
    ]);
    let cut = truncated_copy(&mkv, dir.path(), 0.55);
    let mut src = open(
        cut.to_str().unwrap(),
        &software(),
        &FramePool::with_budget(64 << 20),
    )
    .unwrap();
    let (frames, err) = read_until_error(&mut *src);
    let err = err.expect("a truncated file is an error");
    assert!(!frames.is_empty());
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err:?}");
    assert!(err.to_string().contains("cut-whole.mkv"), "{err}");
}

#[test]
fn corrupt_data_stops_at_the_fault() {
    let dir = fixtures::scratch();
    let full = fixtures::faststart_mp4();
    let oracle = framemd5(&full, None);
    let mut bytes = std::fs::read(&full).unwrap();
    // Scribble over a stretch in the middle of the video data.
    let start = bytes.len() / 2;
    let mut x = 12345u32;
    for b in &mut bytes[start..start + 4000] {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    let bad = dir.path().join("scribbled.mp4");
    std::fs::write(&bad, &bytes).unwrap();

    let mut src = open(
        bad.to_str().unwrap(),
        &software(),
        &FramePool::with_budget(64 << 20),
    )
    .unwrap();
    let (frames, err) = read_until_error(&mut *src);
    let err = err.expect("corrupt data is an error in strict mode");
    assert!(matches!(err, DecodeError::Corrupt { .. }), "{err:?}");
    assert!(!frames.is_empty() && frames.len() < 100);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(md5(f), oracle[i], "frame {i} before the fault");
    }
    let last = frames.last().unwrap();
    assert_eq!(err.position(), Some(Position::after(last.index, last.pts)));
    assert!(
        err.to_string()
            .contains("scribbled.mp4: corrupt video after frame"),
        "{err}"
    );

    // Not strict: the decoder conceals the damage and the stream goes on to the end.
    let lenient = DecodeOptions {
        strict: false,
        ..software()
    };
    let mut src = open(
        bad.to_str().unwrap(),
        &lenient,
        &FramePool::with_budget(64 << 20),
    )
    .unwrap();
    let (frames2, err2) = read_until_error(&mut *src);
    assert!(err2.is_none(), "{err2:?}");
    assert!(frames2.len() > frames.len());
}

#[test]
fn absurd_dimensions_are_refused_before_allocating() {
    let dir = fixtures::scratch();
    let pool = FramePool::with_budget(64 << 20);
    let opts = software().with_backend(reel_decode::Backend::Ffmpeg);
    // One that ffmpeg itself refuses, and one that only reel's limits refuse.
    for (w, h) in [(100_000u64, 100_000u64), (12_000, 12_000)] {
        let path = dir.path().join(format!("huge{w}.y4m"));
        let header = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\nFRAME\n");
        let mut bytes = header.into_bytes();
        bytes.extend_from_slice(&[16u8; 4096]);
        std::fs::write(&path, &bytes).unwrap();
        let e = match open(path.to_str().unwrap(), &opts, &pool) {
            Ok(_) => panic!("opened"),
            Err(e) => e,
        };
        assert!(
            matches!(e, DecodeError::AbsurdDimensions { width, height, .. } if (width, height) == (w, h)),
            "{e:?}"
        );
        assert!(
            e.to_string().contains(&format!("huge{w}.y4m: {w}x{h}")),
            "{e}"
        );
    }

    // A request for an absurd output size, on a sane input.
    let sane = fixtures::testsrc_mp4();
    let e = match open(
        sane.to_str().unwrap(),
        &software().with_size(100_000, 100_000),
        &pool,
    ) {
        Ok(_) => panic!("opened"),
        Err(e) => e,
    };
    assert!(matches!(e, DecodeError::AbsurdDimensions { .. }), "{e:?}");
    assert_eq!(pool.stats().bytes_allocated, 0);
    assert_eq!(pool.stats().misses, 0);
}

#[test]
fn ffmpeg_not_installed() {
    let path = fixtures::testsrc_mp4();
    let name = path.to_str().unwrap();
    let nowhere = FfmpegTools::new("/opt/nowhere/bin/ffmpeg", "/opt/nowhere/bin/ffprobe");
    let e = open_err(name, &software().with_tools(nowhere));
    assert!(matches!(e, DecodeError::ToolMissing { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(name), "{msg}");
    assert!(msg.contains("/opt/nowhere/bin/ffprobe"), "{msg}");
    assert!(msg.contains("REEL_FFPROBE"), "{msg}");

    // ffprobe there, ffmpeg not: the first frame says so.
    let half = FfmpegTools::new("/opt/nowhere/bin/ffmpeg", "ffprobe");
    let mut src = open(
        name,
        &software().with_tools(half),
        &FramePool::with_budget(64 << 20),
    )
    .unwrap();
    let e = src.read_frame().unwrap().unwrap_err();
    assert!(matches!(e, DecodeError::ToolMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("REEL_FFMPEG"), "{e}");
    assert!(src.read_frame().is_none());
}

#[test]
fn ffmpeg_killed_mid_stream() {
    let path = fixtures::faststart_mp4();
    let oracle = framemd5(&path, None);
    let pool = FramePool::with_budget(64 << 20);
    let mut src = FfmpegSource::open(path.to_str().unwrap(), &software(), &pool).unwrap();
    let mut frames = Vec::new();
    for _ in 0..5 {
        frames.push(src.read_frame().unwrap().unwrap());
    }
    let pid = src.pid().unwrap();
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (more, err) = read_until_error(&mut src);
    frames.extend(more);
    let err = err.expect("a killed decoder is an error");
    assert!(
        matches!(err, DecodeError::Killed { signal: 9, .. }),
        "{err:?}"
    );
    let last = frames.last().unwrap();
    assert_eq!(err.position(), Some(Position::after(last.index, last.pts)));
    assert!(err.to_string().contains("killed by signal 9"), "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()));
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(md5(f), oracle[i]);
    }
    // Reaped.
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    drop(frames);
    assert_eq!(pool.stats().bytes_in_use, 0);
}
