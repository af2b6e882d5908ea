//! The ffmpeg backend against ffmpeg's and ffprobe's own answers.

use std::path::Path;
use std::sync::{Arc, Mutex};

use reel_decode::ffmpeg::FfmpegSource;
use reel_decode::{DecodeOptions, HwAccel, Sampling, Scaler, open, probe};
use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;
use reel_sched::QualityKnob;

use crate::fixtures::{self, framemd5, md5};

fn pool() -> FramePool {
    FramePool::with_budget(256 << 20)
}

fn software() -> DecodeOptions {
    DecodeOptions::default().with_hwaccel(HwAccel::None)
}

fn decode_all(path: &Path, opts: &DecodeOptions) -> Vec<Frame> {
    let mut src = open(path.to_str().unwrap(), opts, &pool()).unwrap();
    let mut out = Vec::new();
    while let Some(f) = src.read_frame() {
        out.push(f.unwrap());
    }
    out
}

/// Decodes `path` to rgb24 and checks every frame's MD5 against ffmpeg's framemd5,
/// and the frame count against ffprobe's count.
fn frame_exact(path: &Path) {
    let oracle = framemd5(path, None);
    let src = open(path.to_str().unwrap(), &software(), &pool()).unwrap();
    let mut n = 0;
    let mut src = src;
    while let Some(f) = src.read_frame() {
        let f = f.unwrap();
        assert_eq!(f.index, n as u64);
        assert_eq!(md5(&f), oracle[n], "{}: frame {n}", path.display());
        n += 1;
    }
    assert_eq!(n, oracle.len(), "{}", path.display());
    assert_eq!(
        n as u64,
        fixtures::ffprobe_count(path),
        "{}",
        path.display()
    );
}

#[test]
fn h264_mp4_is_frame_exact() {
    frame_exact(&fixtures::testsrc_mp4());
}

#[test]
fn mpeg4_avi_is_frame_exact() {
    frame_exact(&fixtures::mandelbrot_avi());
}

#[test]
fn odd_sized_ffv1_is_frame_exact() {
    let path = fixtures::odd_mkv();
    let info = probe(path.to_str().unwrap(), &software()).unwrap();
    assert_eq!((info.width, info.height), (161, 97));
    frame_exact(&path);
}

#[test]
fn vp9_webm_is_frame_exact() {
    frame_exact(&fixtures::vp9_webm());
}

#[test]
fn mjpeg_mov_is_frame_exact() {
    frame_exact(&fixtures::mjpeg_mov());
}

#[test]
fn vtest_avi_is_frame_exact() {
    // vtest.avi has 795 frames of 768x576: hashing all of them twice (here and in
    // ffmpeg) would dominate the test suite, so the MD5s cover its first 300 frames
    // (30 s) and the count covers the whole file.
    let path = Path::new(fixtures::VTEST);
    let oracle = fixtures::framemd5_limited(path, 300);
    assert_eq!(oracle.len(), 300);
    let opts = software().with_sampling(Sampling::all().between(None, Some(30.0)));
    let mut src = open(fixtures::VTEST, &opts, &pool()).unwrap();
    let mut n = 0;
    while let Some(f) = src.read_frame() {
        let f = f.unwrap();
        assert_eq!(f.index, n as u64);
        assert_eq!(md5(&f), oracle[n], "vtest.avi: frame {n}");
        n += 1;
    }
    assert_eq!(n, 300);
    // Every frame of the file, counted (decoded small, so that counting is cheap).
    let counted = decode_all(
        path,
        &software().with_format(PixelFormat::Gray8).with_size(32, 24),
    )
    .len();
    assert_eq!(counted as u64, fixtures::ffprobe_count(path));
    assert_eq!(counted, 795);
}

#[test]
fn probe_reports_the_stream() {
    let path = fixtures::testsrc_mp4();
    let info = probe(path.to_str().unwrap(), &software()).unwrap();
    assert_eq!((info.width, info.height), (320, 240));
    assert_eq!(info.codec, "h264");
    assert_eq!(info.pixel_format, "yuv420p");
    assert_eq!(info.fps, 25.0);
    assert_eq!(info.frames, Some(50));
    assert_eq!(info.duration_s, Some(2.0));
    assert_eq!(info.rotation, 0);
    assert_eq!(info.decoder.backend, "ffmpeg");

    let vtest = probe(fixtures::VTEST, &software()).unwrap();
    assert_eq!((vtest.width, vtest.height), (768, 576));
    assert_eq!(vtest.codec, "msmpeg4v3");
}

#[test]
fn vfr_timestamps_are_ffprobes() {
    let path = fixtures::vfr_mkv();
    let times = fixtures::ffprobe_times(&path);
    let frames = decode_all(&path, &software());
    assert_eq!(frames.len(), times.len());
    assert_eq!(frames.len(), 60);
    // The intervals really vary (the test would be weak on a constant rate).
    let first = times[1] - times[0];
    let last = times[59] - times[58];
    assert!(last > first * 1.8, "{first} {last}");
    for (f, t) in frames.iter().zip(&times) {
        assert!(
            (f.pts - t).abs() < 1e-6,
            "frame {}: {} vs {t}",
            f.index,
            f.pts
        );
    }
    // And they are not index / fps.
    assert!((frames[59].pts - 59.0 / 30.0).abs() > 0.5);
}

#[test]
fn timestamps_start_at_zero_for_streams_that_do_not() {
    let dir = fixtures::scratch();
    let ts = dir.path().join("late.ts");
    fixtures::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        ts.to_str().unwrap(),
    ]);
    let times = fixtures::ffprobe_times(&ts);
    let frames = decode_all(&ts, &software());
    assert_eq!(frames.len(), 25);
    assert!(frames[0].pts.abs() < 1e-9);
    for (f, t) in frames.iter().zip(&times) {
        assert!((f.pts - t).abs() < 1e-6);
    }
}

#[test]
fn every_nth_frame_is_selected_inside_ffmpeg() {
    let path = fixtures::testsrc_mp4();
    let oracle = framemd5(&path, None);
    let frames = decode_all(&path, &software().with_sampling(Sampling::every(7)));
    let idx: Vec<u64> = frames.iter().map(|f| f.index).collect();
    assert_eq!(idx, (0..50).step_by(7).collect::<Vec<u64>>());
    for f in &frames {
        assert_eq!(md5(f), oracle[f.index as usize]);
        assert!((f.pts - f.index as f64 / 25.0).abs() < 1e-9);
    }
}

#[test]
fn fps_and_time_window_sampling() {
    let path = fixtures::vfr_mkv();
    let times = fixtures::ffprobe_times(&path);
    let oracle = framemd5(&path, None);
    let frames = decode_all(
        &path,
        &software().with_sampling(Sampling::fps(5.0).between(Some(0.5), Some(2.5))),
    );
    // The rule, worked out from ffprobe's times: first frame of each 0.2 s cell of
    // [0.5, 2.5).
    let mut want = Vec::new();
    let mut last_cell = -1i64;
    for (i, t) in times.iter().enumerate() {
        if *t < 0.5 || *t >= 2.5 {
            continue;
        }
        let cell = ((t - 0.5) * 5.0 + 1e-6).floor() as i64;
        if cell > last_cell {
            last_cell = cell;
            want.push(i as u64);
        }
    }
    let got: Vec<u64> = frames.iter().map(|f| f.index).collect();
    assert_eq!(got, want);
    assert!(want.len() >= 5);
    for f in &frames {
        assert_eq!(md5(f), oracle[f.index as usize]);
        assert!((f.pts - times[f.index as usize]).abs() < 1e-6);
    }
}

#[test]
fn a_start_time_far_in_seeks_and_keeps_indices() {
    let path = fixtures::faststart_mp4();
    let oracle = framemd5(&path, None);
    let frames = decode_all(
        &path,
        &software().with_sampling(Sampling::every(3).between(Some(2.5), Some(3.5))),
    );
    let idx: Vec<u64> = frames.iter().map(|f| f.index).collect();
    // Frames 63..87 are in [2.5, 3.5) at 25 fps; every third from the first.
    assert_eq!(idx, (63..88).step_by(3).collect::<Vec<u64>>());
    for f in &frames {
        assert_eq!(md5(f), oracle[f.index as usize]);
        assert!((f.pts - f.index as f64 / 25.0).abs() < 1e-9);
    }
}

#[test]
fn output_size_and_formats_come_from_ffmpeg() {
    let path = fixtures::testsrc_mp4();
    let oracle = framemd5(&path, Some("scale=160:120,format=rgb24"));
    let frames = decode_all(&path, &software().with_size(160, 120));
    assert_eq!(frames.len(), 50);
    for f in &frames {
        assert_eq!((f.width(), f.height()), (160, 120));
        assert_eq!(f.meta.source_size, Some((320, 240)));
        assert_eq!(md5(f), oracle[f.index as usize]);
    }
    for format in [
        PixelFormat::Bgr24,
        PixelFormat::Gray8,
        PixelFormat::Yuv420p,
        PixelFormat::Rgba,
        PixelFormat::Nv12,
    ] {
        let oracle = fixtures::framemd5_as(&path, None, format.name());
        let opts = software()
            .with_format(format)
            .with_sampling(Sampling::every(10));
        let frames = decode_all(&path, &opts);
        assert_eq!(frames.len(), 5);
        for f in &frames {
            assert_eq!(f.format(), format);
            assert_eq!(f.data().len(), format.frame_size(320, 240).unwrap());
            assert_eq!(md5(f), oracle[f.index as usize], "{format}");
        }
    }
}

#[test]
fn each_scaler_gives_ffmpegs_own_frames_for_its_flags() {
    let path = fixtures::testsrc_mp4();
    let opts = software()
        .with_size(160, 90)
        .with_sampling(Sampling::every(10));
    let mut firsts = Vec::new();
    for scaler in [
        Scaler::Bicubic,
        Scaler::Bilinear,
        Scaler::Area,
        Scaler::FastBilinear,
    ] {
        let vf = format!("scale=160:90:flags={},format=rgb24", scaler.name());
        let oracle = framemd5(&path, Some(&vf));
        let frames = decode_all(&path, &opts.clone().with_scaler(scaler));
        assert_eq!(frames.len(), 5, "{scaler:?}");
        for f in &frames {
            assert_eq!((f.width(), f.height()), (160, 90));
            assert_eq!(md5(f), oracle[f.index as usize], "{scaler:?}");
        }
        firsts.push(md5(&frames[0]));
    }
    // The flags reach ffmpeg: the filters give different pictures.
    assert_ne!(firsts[0], firsts[3]);
}

#[test]
fn a_file_changed_between_probes_is_probed_again() {
    let dir = fixtures::scratch();
    let path = dir.path().join("changing.mp4");
    let make = |size: &str| {
        fixtures::ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=25:duration=0.4"),
            "-pix_fmt",
            "yuv420p",
            path.to_str().unwrap(),
        ]);
    };
    make("320x240");
    let input = path.to_str().unwrap();
    assert_eq!(probe(input, &software()).unwrap().width, 320);
    // Asked again, unchanged: the same answer.
    assert_eq!(probe(input, &software()).unwrap().width, 320);
    make("208x160");
    let info = probe(input, &software()).unwrap();
    assert_eq!((info.width, info.height), (208, 160));
    let frames = decode_all(&path, &software());
    assert_eq!(frames[0].width(), 208);
}

#[test]
fn rotated_video_comes_out_upright() {
    let dir = fixtures::scratch();
    let rotated = fixtures::rotated_mp4(dir.path());
    let info = probe(rotated.to_str().unwrap(), &software()).unwrap();
    assert_eq!((info.width, info.height), (320, 240));
    assert_eq!(info.rotation % 180, 90);
    let frames = decode_all(&rotated, &software());
    assert_eq!((frames[0].width(), frames[0].height()), (240, 320));
    assert_eq!(md5(&frames[3]), framemd5(&rotated, None)[3]);
}

#[test]
fn live_scale_restarts_ffmpeg_with_continuous_indices() {
    let path = fixtures::testsrc_mp4();
    let full = framemd5(&path, None);
    let half = framemd5(&path, Some("scale=160:120,format=rgb24"));
    let knob = QualityKnob::new(1.0);
    let opts = software().with_scale(knob.clone());
    let mut src = FfmpegSource::open(path.to_str().unwrap(), &opts, &pool()).unwrap();
    let mut frames = Vec::new();
    let mut pids = Vec::new();
    while let Some(f) = src.read_frame() {
        let f = f.unwrap();
        pids.push(src.pid());
        match f.index {
            9 => knob.set(0.5),
            29 => knob.set(1.0),
            _ => {}
        }
        frames.push(f);
    }
    assert_eq!(frames.len(), 50);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.index, i as u64);
        assert!((f.pts - i as f64 / 25.0).abs() < 1e-9);
        let (want_w, oracle) = if (10..30).contains(&i) {
            (160, &half)
        } else {
            (320, &full)
        };
        assert_eq!(f.width(), want_w, "frame {i}");
        assert_eq!(md5(f), oracle[i], "frame {i}");
    }
    // Three processes, one after the other.
    assert_ne!(pids[9], pids[10]);
    assert_ne!(pids[29], pids[30]);
}

#[test]
fn live_scale_with_sampling_keeps_the_rhythm() {
    let path = fixtures::faststart_mp4();
    let knob = QualityKnob::new(1.0);
    let opts = software()
        .with_scale(knob.clone())
        .with_sampling(Sampling::every(4));
    let mut src = open(path.to_str().unwrap(), &opts, &pool()).unwrap();
    let mut idx = Vec::new();
    while let Some(f) = src.read_frame() {
        let f = f.unwrap();
        if f.index == 40 {
            knob.set(0.25);
        }
        idx.push((f.index, f.width()));
    }
    let want: Vec<(u64, u32)> = (0..100)
        .step_by(4)
        .map(|i| (i, if i > 40 { 80 } else { 320 }))
        .collect();
    assert_eq!(idx, want);
}

/// Captures what the crate logs while `f` runs on this thread.
fn logged<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let r = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (r, text)
}

#[test]
fn hardware_that_fails_to_start_falls_back_to_software() {
    // This machine has no GPU: CUDA (and VAAPI) cannot start, so decoding must go on
    // in software, with a warning, and give exactly the software frames.
    let path = fixtures::testsrc_mp4();
    let oracle = framemd5(&path, None);
    for hw in [HwAccel::Cuda, HwAccel::Vaapi] {
        let ((frames, decoder), log) = logged(|| {
            let opts = DecodeOptions::default().with_hwaccel(hw);
            let mut src = open(path.to_str().unwrap(), &opts, &pool()).unwrap();
            let mut frames = Vec::new();
            while let Some(f) = src.read_frame() {
                frames.push(f.unwrap());
            }
            (frames, src.info().decoder.clone())
        });
        assert_eq!(frames.len(), 50);
        assert!(frames.iter().all(|f| md5(f) == oracle[f.index as usize]));
        assert_eq!(decoder.hwaccel, None, "{hw}");
        assert_eq!(decoder.name, "h264");
        assert!(log.contains("WARN"), "{log}");
        assert!(log.contains("falling back to software"), "{log}");
    }
}

#[test]
fn auto_decodes_here_in_software() {
    let path = fixtures::testsrc_mp4();
    let mut src = open(path.to_str().unwrap(), &DecodeOptions::default(), &pool()).unwrap();
    assert!(src.read_frame().unwrap().is_ok());
    let report = reel_decode::hw::HwReport::detect(&Default::default());
    let expected = report.auto_choice().map(|(h, _)| h);
    // Whatever auto chose, the decoder reports it (software when nothing is there).
    if expected.is_none() {
        assert_eq!(src.info().decoder.hwaccel, None);
    }
}

#[test]
fn frames_go_back_to_the_pool_and_the_child_is_reaped() {
    let pool = pool();
    let path = fixtures::testsrc_mp4();
    let mut src = FfmpegSource::open(path.to_str().unwrap(), &software(), &pool).unwrap();
    for _ in 0..10 {
        drop(src.read_frame().unwrap().unwrap());
    }
    let pid = src.pid().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(src);
    // Killed and reaped: no process, not even a zombie.
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    let stats = pool.stats();
    assert_eq!(stats.bytes_in_use, 0);
    assert_eq!(stats.misses, 1);
}
