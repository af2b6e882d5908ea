//! Scene cuts and measurements on real video: a video made by ffmpeg from
//! different sources concatenated at known frames, OpenCV's own test video, and
//! PySceneDetect and OpenCV as oracles when python3 has them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use reel_frame::PixelFormat;
use reel_ops::measure::{MeasureConfig, Measurer};
use reel_ops::resize::{Filter, Resizer};
use reel_ops::scene::{
    AdaptiveConfig, AdaptiveDetector, ContentConfig, ContentDetector, SceneStep,
    auto_downscale_size, hsv_pixel, to_hsv,
};

use crate::util::{decode_bgr, decode_bgr_opencv, ffmpeg, probe_size, python};

const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

/// Segment lengths of the concatenated video, and so its true cuts.
const SEGMENTS: [u64; 6] = [40, 55, 30, 70, 45, 60];

fn true_cuts() -> Vec<u64> {
    SEGMENTS
        .iter()
        .scan(0, |end, len| {
            *end += len;
            Some(*end)
        })
        .take(SEGMENTS.len() - 1)
        .collect()
}

/// A 1280x720 25 fps H.264 video of six lavfi sources (moving test pattern, bars,
/// a zooming fractal, colour bars, a still colour spectrum, the old test pattern), cut
/// at [`true_cuts`]. Within each, frames score below 4; at the cuts, above 45 (the
/// threshold is 27). Every source is deterministic, so the file is the same on every run.
/// Made once per test run.
fn cuts_video() -> &'static Path {
    static VIDEO: OnceLock<PathBuf> = OnceLock::new();
    VIDEO.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reel-ops-scene");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cuts.mp4");
        let partial = dir.join(format!("cuts-{}.mp4", std::process::id()));
        let sources = [
            "testsrc2",
            "smptehdbars",
            "mandelbrot",
            "rgbtestsrc",
            "colorspectrum",
            "testsrc",
        ];
        let mut args: Vec<String> = Vec::new();
        for (src, len) in sources.iter().zip(SEGMENTS) {
            let sep = if src.contains('=') { ":" } else { "=" };
            args.extend([
                "-f".into(),
                "lavfi".into(),
                "-i".into(),
                format!("{src}{sep}size=1280x720:rate=25,trim=end_frame={len}"),
            ]);
        }
        for a in [
            "-filter_complex",
            "concat=n=6:v=1:a=0,format=yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-y",
        ] {
            args.push(a.into());
        }
        args.push(partial.to_string_lossy().into_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ffmpeg(&args, &[]);
        std::fs::rename(&partial, &path).unwrap();
        path
    })
}

/// Per-frame scores and cuts of one detector over a whole video.
#[derive(Debug, Default)]
struct Run {
    scores: BTreeMap<u64, f64>,
    ratios: BTreeMap<u64, f64>,
    cuts: Vec<u64>,
}

impl Run {
    fn record(&mut self, i: u64, step: SceneStep) {
        if let Some(s) = step.score {
            self.scores.insert(i, s.content_val);
        }
        if let Some((f, r)) = step.adaptive_ratio {
            self.ratios.insert(f, r);
        }
        self.cuts.extend(step.cut);
    }
}

/// Our runs over one decode: content and adaptive detectors on the frames shrunk
/// to PySceneDetect's size (its way: bilinear) and, if asked, as decoded.
#[derive(Debug, Default)]
struct Runs {
    content_full: Run,
    adaptive_full: Run,
    content_small: Run,
    adaptive_small: Run,
}

/// A content detector, and an adaptive one fed its scores (one HSV pass a frame).
struct Pair(ContentDetector, AdaptiveDetector);

impl Pair {
    fn new() -> Self {
        Pair(
            ContentDetector::new(ContentConfig::default()),
            AdaptiveDetector::new(AdaptiveConfig::default()),
        )
    }

    fn feed(
        &mut self,
        i: u64,
        pixels: &[u8],
        (w, h): (u32, u32),
        content: &mut Run,
        adaptive: &mut Run,
    ) {
        let step = self.0.process(i, pixels, PixelFormat::Bgr24, w, h).unwrap();
        content.record(i, step);
        let (ratio, cut) = self
            .1
            .process_score(i, step.score.map_or(0.0, |s| s.content_val));
        adaptive.record(
            i,
            SceneStep {
                score: step.score,
                cut,
                adaptive_ratio: ratio,
            },
        );
    }
}

/// Feeds the frames `decode` produces (`size`, BGR24) to the detectors.
fn run_all(
    size: (u32, u32),
    full: bool,
    decode: impl FnOnce(&mut dyn FnMut(u64, &[u8])) -> u64,
) -> Runs {
    let small = auto_downscale_size(size.0, size.1);
    let (mut at_full, mut at_small) = (Pair::new(), Pair::new());
    let mut resizer = Resizer::new(Filter::Bilinear);
    let mut shrunk = vec![0u8; (small.0 * small.1 * 3) as usize];
    let mut runs = Runs::default();
    let mut feed = |i: u64, frame: &[u8]| {
        resizer
            .resize(
                frame,
                size.0,
                size.1,
                &mut shrunk,
                small.0,
                small.1,
                PixelFormat::Bgr24,
            )
            .unwrap();
        at_small.feed(
            i,
            &shrunk,
            small,
            &mut runs.content_small,
            &mut runs.adaptive_small,
        );
        if full {
            at_full.feed(
                i,
                frame,
                size,
                &mut runs.content_full,
                &mut runs.adaptive_full,
            );
        }
    };
    decode(&mut feed);
    runs
}

/// [`run_all`] on ffmpeg's decode of `path`.
fn run_ffmpeg(path: &Path, full: bool) -> Runs {
    run_all(probe_size(path), full, |feed| decode_bgr(path, feed))
}

#[test]
fn content_and_adaptive_find_the_true_cuts_of_an_ffmpeg_made_video() {
    let path = cuts_video();
    assert_eq!(probe_size(path), (1280, 720));
    let runs = run_ffmpeg(path, true);
    // At PySceneDetect's analysis size (256x144) and at full size.
    assert_eq!(runs.content_small.cuts, true_cuts(), "content detector");
    assert_eq!(runs.adaptive_small.cuts, true_cuts(), "adaptive detector");
    assert_eq!(
        runs.content_full.cuts,
        true_cuts(),
        "content detector, full size"
    );
    assert_eq!(
        runs.adaptive_full.cuts,
        true_cuts(),
        "adaptive detector, full size"
    );
    assert_eq!(runs.content_small.scores.len(), 299);
    // Within scenes the scores are low, at the cuts high.
    for (f, v) in &runs.content_small.scores {
        if true_cuts().contains(f) {
            assert!(*v > 45.0, "cut {f} scores {v}");
        } else {
            assert!(*v < 10.0, "frame {f} scores {v}");
        }
    }
}

#[test]
fn a_static_camera_has_no_cuts() {
    if !Path::new(VTEST).exists() {
        crate::oracle::missing(&format!("{VTEST} (Debian package opencv-doc)"));
        return;
    }
    let runs = run_ffmpeg(Path::new(VTEST), false);
    assert!(runs.content_small.scores.len() > 700);
    for run in [&runs.content_small, &runs.adaptive_small] {
        assert!(run.cuts.is_empty(), "cuts {:?}", run.cuts);
    }
}

#[test]
fn measurements_on_a_made_video() {
    // Black, then a still grey card, then noise: brightness, black frames, motion
    // and sharpness each tell them apart.
    let raw = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=black:size=160x90:rate=25:duration=0.4",
            "-f",
            "lavfi",
            "-i",
            "color=0x808080:size=160x90:rate=25:duration=0.4",
            "-f",
            "lavfi",
            "-i",
            "nullsrc=size=160x90:rate=25:duration=0.4,geq=random(1)*255:128:128",
            "-filter_complex",
            "[0][1][2]concat=n=3:v=1:a=0,format=gray",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        &[],
    );
    let mut m = Measurer::new(MeasureConfig::all());
    let results: Vec<_> = raw
        .chunks_exact(160 * 90)
        .map(|f| m.measure(f, PixelFormat::Gray8, 160, 90).unwrap())
        .collect();
    assert_eq!(results.len(), 30);
    for (i, r) in results.iter().enumerate() {
        match i {
            0..10 => {
                assert_eq!(r.black, Some(true), "frame {i}");
                assert!(r.brightness.unwrap() < 1.0);
            }
            10..20 => {
                assert_eq!(r.black, Some(false), "frame {i}");
                assert!((r.brightness.unwrap() - 128.0).abs() < 1.0);
                assert_eq!(r.sharpness, Some(0.0));
                if i > 10 {
                    assert_eq!(r.motion, Some(0.0));
                }
            }
            _ => {
                assert!(r.sharpness.unwrap() > 1000.0, "noise is sharp: {r:?}");
                assert!(r.motion.unwrap() > 40.0, "noise moves: {r:?}");
            }
        }
    }
    assert_eq!(results[0].motion, None);
    assert!(results[10].motion.unwrap() > 100.0);
}

// --- Oracles -------------------------------------------------------------------

/// PySceneDetect's per-frame scores and cuts (0-based) for `path`, from its
/// command line: `scenedetect -i X -s stats.csv -m 15 [-d 1] detect-… list-scenes`.
/// `None` if python3 cannot run it.
fn pyscenedetect(path: &Path, detector: &str, full_size: bool) -> Option<Run> {
    python(&["scenedetect", "cv2"], "pass", &[])?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "reel-ops-pyscenedetect-{}-{detector}-{full_size}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "scenedetect", "-q", "-i"])
        .arg(path)
        .arg("-o")
        .arg(&dir)
        .args(["-s", "stats.csv", "-m", "15"]);
    if full_size {
        cmd.args(["-d", "1"]);
    }
    let status = cmd
        .args([detector, "list-scenes", "-f", "scenes.csv"])
        .status()
        .unwrap();
    assert!(status.success(), "scenedetect failed on {}", path.display());
    let stats = std::fs::read_to_string(dir.join("stats.csv")).unwrap();
    let mut lines = stats.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (frame_col, score_col) = (col("Frame Number").unwrap(), col("content_val").unwrap());
    let ratio_col = col("adaptive_ratio (w=2)");
    let mut run = Run::default();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        // Frame numbers are 1-based in the stats file.
        let frame = cells[frame_col].parse::<u64>().unwrap() - 1;
        if let Some(v) = cells.get(score_col).and_then(|v| v.parse::<f64>().ok()) {
            run.scores.insert(frame, v);
        }
        if let Some(v) = ratio_col
            .and_then(|c| cells.get(c))
            .and_then(|v| v.parse::<f64>().ok())
        {
            run.ratios.insert(frame, v);
        }
    }
    // The scene list: a row of cut timecodes, a header, then one row per scene with
    // its 1-based start frame; every scene after the first starts at a cut.
    let scenes = std::fs::read_to_string(dir.join("scenes.csv")).unwrap();
    run.cuts = scenes
        .lines()
        .skip(3)
        .map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap() - 1)
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    Some(run)
}

/// Largest |difference| between two per-frame series, which must cover the same
/// frames.
fn max_gap(ours: &BTreeMap<u64, f64>, theirs: &BTreeMap<u64, f64>) -> f64 {
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the same frames are scored"
    );
    ours.iter()
        .map(|(f, v)| (v - theirs[f]).abs())
        .fold(0.0, f64::max)
}

fn mean_gap(ours: &BTreeMap<u64, f64>, theirs: &BTreeMap<u64, f64>) -> f64 {
    ours.iter().map(|(f, v)| (v - theirs[f]).abs()).sum::<f64>() / ours.len().max(1) as f64
}

/// Compares our run with PySceneDetect's: per-frame scores (and adaptive ratios)
/// within `bound`, and cuts equal (and equal to `truth`).
fn compare(path: &Path, what: &str, ours: &Run, theirs: &Run, bound: f64, truth: &[u64]) {
    let gap = max_gap(&ours.scores, &theirs.scores);
    println!(
        "{} {what}: {} frames, max |content_val diff| {gap:.3e}, mean {:.3e}, cuts ours {:?} theirs {:?}",
        path.display(),
        ours.scores.len(),
        mean_gap(&ours.scores, &theirs.scores),
        ours.cuts,
        theirs.cuts
    );
    assert!(gap <= bound, "{what}: scores differ by {gap}");
    if !theirs.ratios.is_empty() {
        let gap = max_gap(&ours.ratios, &theirs.ratios);
        println!("    adaptive_ratio: max diff {gap:.3e}");
        assert!(
            gap <= bound.max(0.05),
            "{what}: adaptive ratios differ by {gap}"
        );
    }
    assert_eq!(ours.cuts, theirs.cuts, "{what}");
    assert_eq!(
        theirs.cuts, truth,
        "{what}: PySceneDetect against the truth"
    );
}

#[test]
fn pyscenedetect_agrees_on_the_made_video() {
    // H.264 decodes to identical pixels in OpenCV and ffmpeg: identical scores, at
    // full size and at PySceneDetect's default size (an exact factor of 5 here).
    let path = cuts_video();
    let Some(content_full) = pyscenedetect(path, "detect-content", true) else {
        return;
    };
    let content = pyscenedetect(path, "detect-content", false).unwrap();
    let adaptive = pyscenedetect(path, "detect-adaptive", false).unwrap();
    let ours = run_ffmpeg(path, true);
    let truth = true_cuts();
    compare(
        path,
        "detect-content full size",
        &ours.content_full,
        &content_full,
        0.0,
        &truth,
    );
    compare(
        path,
        "detect-content",
        &ours.content_small,
        &content,
        0.0,
        &truth,
    );
    compare(
        path,
        "detect-adaptive",
        &ours.adaptive_small,
        &adaptive,
        0.0,
        &truth,
    );
}

#[test]
fn pyscenedetect_agrees_on_vtest() {
    if !Path::new(VTEST).exists() {
        crate::oracle::missing(&format!("{VTEST} (Debian package opencv-doc)"));
        return;
    }
    let path = Path::new(VTEST);
    let Some(content) = pyscenedetect(path, "detect-content", false) else {
        return;
    };
    let adaptive = pyscenedetect(path, "detect-adaptive", false).unwrap();
    // vtest.avi is MS-MPEG4v3, which OpenCV's ffmpeg build decodes up to 2 levels
    // apart from Debian's ffmpeg: the scores differ by that much...
    let ours = run_ffmpeg(path, false);
    compare(
        path,
        "detect-content",
        &ours.content_small,
        &content,
        0.01,
        &[],
    );
    compare(
        path,
        "detect-adaptive",
        &ours.adaptive_small,
        &adaptive,
        0.01,
        &[],
    );
    // ...and no more: on the frames OpenCV decodes, they are identical.
    let ours = run_all(probe_size(path), false, |feed| {
        decode_bgr_opencv(path, feed).unwrap_or(0)
    });
    compare(
        path,
        "detect-content on OpenCV's decode",
        &ours.content_small,
        &content,
        0.0,
        &[],
    );
    compare(
        path,
        "detect-adaptive on OpenCV's decode",
        &ours.adaptive_small,
        &adaptive,
        0.0,
        &[],
    );
}

#[test]
fn hsv_equals_opencv_for_every_colour() {
    // All 2^24 colours as one 4096x4096 BGR picture.
    let bgr: Vec<u8> = (0..1u32 << 24)
        .flat_map(|c| [c as u8, (c >> 8) as u8, (c >> 16) as u8])
        .collect();
    let script = "import sys, numpy as np, cv2; \
        im = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(4096, 4096, 3); \
        sys.stdout.buffer.write(cv2.cvtColor(im, cv2.COLOR_BGR2HSV).tobytes())";
    let Some(theirs) = python(&["numpy", "cv2"], script, &bgr) else {
        return;
    };
    let mut ours = vec![0u8; bgr.len()];
    to_hsv(&bgr, PixelFormat::Bgr24, 4096, 4096, &mut ours).unwrap();
    let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "{differ} HSV bytes differ from OpenCV's");
    assert_eq!(hsv_pixel(255, 0, 10), [theirs[3 * 0xff000a], 255, 255]);
}

#[test]
fn sharpness_equals_opencvs_laplacian_variance() {
    if !Path::new(VTEST).exists() {
        crate::oracle::missing(&format!("{VTEST} (Debian package opencv-doc)"));
        return;
    }
    let gray = ffmpeg(
        &[
            "-i",
            VTEST,
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        &[],
    );
    let (w, h) = (768u32, 576u32);
    assert_eq!(gray.len(), (w * h) as usize);
    let script = "import sys, numpy as np, cv2; \
        g = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(576, 768); \
        print(float(cv2.Laplacian(g, cv2.CV_64F).var()))";
    let Some(out) = python(&["numpy", "cv2"], script, &gray) else {
        return;
    };
    let theirs: f64 = String::from_utf8_lossy(&out).trim().parse().unwrap();
    let mut m = Measurer::new(MeasureConfig {
        sharpness: true,
        ..MeasureConfig::default()
    });
    let ours = m
        .measure(&gray, PixelFormat::Gray8, w, h)
        .unwrap()
        .sharpness
        .unwrap();
    println!("vtest frame 0 sharpness: ours {ours}, OpenCV {theirs}");
    assert!((ours - theirs).abs() <= 1e-9 * theirs, "{ours} vs {theirs}");
}
