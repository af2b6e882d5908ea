//! Image sequences against ffmpeg's reading of the same images.

use std::path::Path;

use reel_decode::images::ImageSequence;
use reel_decode::{DecodeError, DecodeOptions, Position, Sampling, open, probe};
use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;

use crate::fixtures::{self, md5};

fn frames(input: &str, opts: &DecodeOptions) -> (Vec<Frame>, Option<DecodeError>) {
    let mut src = open(input, opts, &FramePool::with_budget(64 << 20)).unwrap();
    let mut out = Vec::new();
    while let Some(r) = src.read_frame() {
        match r {
            Ok(f) => out.push(f),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// `n` frames of testsrc2 written as `dir/img%03d.EXT` (numbered from 1).
fn write_sequence(dir: &Path, n: u32, ext: &str) -> String {
    let pattern = dir.join(format!("img%03d.{ext}"));
    fixtures::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=10",
        "-frames:v",
        &n.to_string(),
        pattern.to_str().unwrap(),
    ]);
    pattern.to_str().unwrap().to_string()
}

#[test]
fn png_sequences_are_frame_exact() {
    let dir = fixtures::scratch();
    let pattern = write_sequence(dir.path(), 12, "png");
    let oracle = fixtures::framemd5(Path::new(&pattern), None);
    assert_eq!(oracle.len(), 12);
    for input in [pattern.as_str(), dir.path().to_str().unwrap()] {
        let info = probe(input, &DecodeOptions::default()).unwrap();
        assert_eq!((info.width, info.height, info.frames), (160, 120, Some(12)));
        assert_eq!(info.codec, "png");
        let (fs, err) = frames(input, &DecodeOptions::default());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(fs.len(), 12);
        for f in &fs {
            assert_eq!(
                md5(f),
                oracle[f.index as usize],
                "{input}: frame {}",
                f.index
            );
            assert!((f.pts - f.index as f64 / 25.0).abs() < 1e-12);
        }
    }
    let opts = DecodeOptions {
        sequence_fps: 10.0,
        ..DecodeOptions::default()
    }
    .with_sampling(Sampling::fps(5.0));
    let (fs, _) = frames(&pattern, &opts);
    let idx: Vec<u64> = fs.iter().map(|f| f.index).collect();
    assert_eq!(idx, [0, 2, 4, 6, 8, 10]);
}

fn mean_diff(a: &Frame, b: &Frame) -> f64 {
    let diff: u64 = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    diff as f64 / a.data().len() as f64
}

#[test]
fn jpeg_sequences_are_as_close_to_the_pictures_as_ffmpegs() {
    let dir = fixtures::scratch();
    let jpegs = write_sequence(dir.path(), 4, "jpg");
    let pngs = write_sequence(dir.path(), 4, "png");
    let (ours, _) = frames(&jpegs, &DecodeOptions::default());
    let (truth, _) = frames(&pngs, &DecodeOptions::default());
    let theirs = {
        let opts = DecodeOptions::default()
            .with_backend(reel_decode::Backend::Ffmpeg)
            .with_hwaccel(reel_decode::HwAccel::None);
        let mut src = open(
            &dir.path().join("img001.jpg").to_string_lossy(),
            &opts,
            &FramePool::with_budget(1 << 24),
        )
        .unwrap();
        src.read_frame().unwrap().unwrap()
    };
    assert_eq!(ours.len(), 4);
    let ours_err = mean_diff(&ours[0], &truth[0]);
    let theirs_err = mean_diff(&theirs, &truth[0]);
    // JPEG is lossy, and decoders upsample chroma differently (the image crate's
    // result is libjpeg-turbo's to within a fraction of a level; ffmpeg's differs
    // more): both must land near the lossless picture. A swapped channel or a
    // misplaced row would be tens of levels off.
    assert!(ours_err < 6.0, "ours {ours_err}, ffmpeg's {theirs_err}");
    assert!(theirs_err < 6.0, "ours {ours_err}, ffmpeg's {theirs_err}");
}

#[test]
fn a_single_image_is_a_one_frame_video() {
    let messi = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg";
    let info = probe(messi, &DecodeOptions::default()).unwrap();
    let ff = probe(
        messi,
        &DecodeOptions::default().with_backend(reel_decode::Backend::Ffmpeg),
    )
    .unwrap();
    assert_eq!((info.width, info.height), (ff.width, ff.height));
    assert_eq!(info.frames, Some(1));
    let (fs, _) = frames(
        messi,
        &DecodeOptions::default()
            .with_format(PixelFormat::Gray8)
            .with_size(274, 171),
    );
    assert_eq!(fs.len(), 1);
    assert_eq!((fs[0].width(), fs[0].height()), (274, 171));
    assert_eq!(fs[0].meta.source_size, Some((ff.width, ff.height)));
}

#[test]
fn images_of_other_sizes_and_kinds_are_brought_to_the_first() {
    let dir = fixtures::scratch();
    let d = dir.path();
    fixtures::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120",
        "-frames:v",
        "1",
        d.join("a1.png").to_str().unwrap(),
    ]);
    // Bigger, gray, and 16-bit: each needs another path through the reader.
    fixtures::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240",
        "-frames:v",
        "1",
        d.join("a2.png").to_str().unwrap(),
    ]);
    fixtures::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120",
        "-frames:v",
        "1",
        "-pix_fmt",
        "gray",
        d.join("a3.png").to_str().unwrap(),
    ]);
    fixtures::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120",
        "-frames:v",
        "1",
        "-pix_fmt",
        "rgb48be",
        d.join("a10.png").to_str().unwrap(),
    ]);
    let src = ImageSequence::open(
        d.to_str().unwrap(),
        &DecodeOptions::default(),
        &FramePool::with_budget(1 << 24),
    )
    .unwrap();
    let names: Vec<String> = src
        .files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a1.png", "a2.png", "a3.png", "a10.png"]);
    let (fs, err) = frames(d.to_str().unwrap(), &DecodeOptions::default());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(fs.len(), 4);
    assert!(fs.iter().all(|f| (f.width(), f.height()) == (160, 120)));
    // The 16-bit image is the same picture as the first, to within rounding.
    let diff: u64 = fs[0]
        .data()
        .iter()
        .zip(fs[3].data())
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    assert!(diff as f64 / fs[0].data().len() as f64 <= 1.0);
}

#[test]
fn a_broken_image_names_itself_and_the_last_good_frame() {
    let dir = fixtures::scratch();
    let pattern = write_sequence(dir.path(), 6, "png");
    let broken = dir.path().join("img005.png");
    let mut bytes = std::fs::read(&broken).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    std::fs::write(&broken, &bytes).unwrap();
    let (fs, err) = frames(&pattern, &DecodeOptions::default());
    assert_eq!(fs.len(), 4);
    let err = err.unwrap();
    assert!(matches!(err, DecodeError::Image { .. }), "{err:?}");
    assert_eq!(err.position(), Some(Position::after(3, 3.0 / 25.0)));
    assert!(err.to_string().contains("img005.png"), "{err}");

    let empty = fixtures::scratch();
    let e = match open(
        empty.path().to_str().unwrap(),
        &DecodeOptions::default(),
        &FramePool::with_budget(1 << 20),
    ) {
        Ok(_) => panic!("an empty directory opened"),
        Err(e) => e,
    };
    assert!(matches!(e, DecodeError::NotVideo { .. }), "{e:?}");
    let e = match open(
        &dir.path().join("nothing%04d.png").to_string_lossy(),
        &DecodeOptions::default(),
        &FramePool::with_budget(1 << 20),
    ) {
        Ok(_) => panic!("a pattern with no files opened"),
        Err(e) => e,
    };
    assert!(matches!(e, DecodeError::NotFound { .. }), "{e:?}");
}
