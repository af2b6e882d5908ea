//! The encoder sink: frames in, H.264 out, read back by the decoder.

use reel_decode::ffmpeg::{EncoderOptions, FfmpegEncoder};
use reel_decode::{DecodeError, DecodeOptions, FfmpegTools, HwAccel, open, probe};
use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;
use reel_sched::{QualityKnob, Sink};

use crate::fixtures;

const URI: &str = "synthetic:scenes?width=320&height=180&fps=25&frames=60&scenes=2&seed=5";

fn synthetic_frames() -> Vec<Frame> {
    let pool = FramePool::with_budget(64 << 20);
    let mut src = open(URI, &DecodeOptions::default(), &pool).unwrap();
    let mut out = Vec::new();
    while let Some(f) = src.read_frame() {
        out.push(f.unwrap());
    }
    out
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len() as f64
}

#[test]
fn frames_round_trip_through_h264() {
    let dir = fixtures::scratch();
    let out = dir.path().join("out.mp4");
    let frames = synthetic_frames();
    let mut opts = EncoderOptions::new(320, 180, 25.0);
    opts.hwaccel = HwAccel::None;
    opts.crf = 16;
    let mut enc = FfmpegEncoder::create(&out, opts).unwrap();
    assert_eq!(enc.encoder(), "libx264");
    let originals: Vec<Vec<u8>> = frames.iter().map(|f| f.data().to_vec()).collect();
    // Through the Sink trait, as a pipeline would drive it.
    let sink: &mut dyn Sink = &mut enc;
    for f in frames {
        sink.consume(f).unwrap();
    }
    sink.finish().unwrap();
    assert_eq!(enc.frames(), 60);

    let info = probe(out.to_str().unwrap(), &DecodeOptions::default()).unwrap();
    assert_eq!(info.codec, "h264");
    assert_eq!((info.width, info.height), (320, 180));
    assert_eq!(info.frames, Some(60));
    assert_eq!(info.fps, 25.0);
    assert_eq!(fixtures::ffprobe_count(&out), 60);

    let pool = FramePool::with_budget(64 << 20);
    let mut back = open(
        out.to_str().unwrap(),
        &DecodeOptions::default().with_hwaccel(HwAccel::None),
        &pool,
    )
    .unwrap();
    let mut n = 0;
    while let Some(f) = back.read_frame() {
        let f = f.unwrap();
        let d = mean_abs_diff(f.data(), &originals[f.index as usize]);
        assert!(d < 3.0, "frame {}: mean difference {d}", f.index);
        assert!((f.pts - f.index as f64 / 25.0).abs() < 1e-6);
        n += 1;
    }
    assert_eq!(n, 60);
}

#[test]
fn odd_sizes_are_padded_for_420() {
    let dir = fixtures::scratch();
    let out = dir.path().join("odd.mkv");
    let pool = FramePool::with_budget(64 << 20);
    let mut src = open(
        fixtures::odd_mkv().to_str().unwrap(),
        &DecodeOptions::default(),
        &pool,
    )
    .unwrap();
    let mut opts = EncoderOptions::new(161, 97, 30.0);
    opts.hwaccel = HwAccel::None;
    let mut enc = FfmpegEncoder::create(&out, opts).unwrap();
    while let Some(f) = src.read_frame() {
        enc.write(&f.unwrap()).unwrap();
    }
    enc.finish().unwrap();
    let info = probe(out.to_str().unwrap(), &DecodeOptions::default()).unwrap();
    assert_eq!((info.width, info.height), (162, 98));
}

#[test]
fn a_hardware_encoder_that_does_not_start_falls_back_to_libx264() {
    let dir = fixtures::scratch();
    let out = dir.path().join("hw.mp4");
    let mut opts = EncoderOptions::new(320, 180, 25.0);
    opts.hwaccel = HwAccel::Cuda;
    let mut enc = FfmpegEncoder::create(&out, opts).unwrap();
    assert_eq!(enc.encoder(), "libx264");
    for f in synthetic_frames().into_iter().take(10) {
        enc.write(&f).unwrap();
    }
    enc.finish().unwrap();
    assert_eq!(fixtures::ffprobe_count(&out), 10);
}

#[test]
fn frames_of_another_size_or_format_are_brought_to_the_encoders() {
    // A live stream whose decode scale drops mid-way: the file keeps one size.
    let dir = fixtures::scratch();
    let out = dir.path().join("scaled.mp4");
    let mut opts = EncoderOptions::new(320, 180, 25.0);
    opts.hwaccel = HwAccel::None;
    let mut enc = FfmpegEncoder::create(&out, opts).unwrap();
    let knob = QualityKnob::new(1.0);
    let pool = FramePool::with_budget(64 << 20);
    let dec = DecodeOptions::default().with_scale(knob.clone());
    let mut src = open(URI, &dec, &pool).unwrap();
    let mut sizes = Vec::new();
    while let Some(f) = src.read_frame() {
        let f = f.unwrap();
        if f.index == 20 {
            knob.set(0.5);
        }
        sizes.push(f.width());
        enc.write(&f).unwrap();
    }
    let gray = open(
        URI,
        &DecodeOptions::default().with_format(PixelFormat::Gray8),
        &pool,
    )
    .unwrap()
    .read_frame()
    .unwrap()
    .unwrap();
    enc.write(&gray).unwrap();
    enc.finish().unwrap();
    assert!(sizes.contains(&320) && sizes.contains(&160));
    let info = probe(out.to_str().unwrap(), &DecodeOptions::default()).unwrap();
    assert_eq!((info.width, info.height), (320, 180));
    assert_eq!(fixtures::ffprobe_count(&out), 61);
}

#[test]
fn missing_ffmpeg_is_an_error() {
    let dir = fixtures::scratch();
    let mut opts = EncoderOptions::new(320, 180, 25.0);
    opts.tools = FfmpegTools::new("/opt/nowhere/ffmpeg", "/opt/nowhere/ffprobe");
    opts.hwaccel = HwAccel::None;
    let e = FfmpegEncoder::create(dir.path().join("x.mp4"), opts).unwrap_err();
    assert!(matches!(e, DecodeError::ToolMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("REEL_FFMPEG"), "{e}");
}

#[test]
fn an_encoder_killed_mid_stream_reports_it() {
    let dir = fixtures::scratch();
    let out = dir.path().join("killed.mp4");
    let mut opts = EncoderOptions::new(320, 180, 25.0);
    opts.hwaccel = HwAccel::None;
    let mut enc = FfmpegEncoder::create(&out, opts).unwrap();
    let frames = synthetic_frames();
    enc.write(&frames[0]).unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &enc.pid().to_string()])
        .status()
        .unwrap();
    let mut failed = None;
    for f in &frames[1..] {
        if let Err(e) = enc.write(f) {
            failed = Some(e);
            break;
        }
    }
    let e = match failed {
        Some(e) => e,
        None => enc.finish().unwrap_err(),
    };
    assert!(matches!(e, DecodeError::Encode { .. }), "{e:?}");
    assert!(e.to_string().contains("killed.mp4"), "{e}");
}
