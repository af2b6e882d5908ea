//! `cargo xtask bench`: `reel analyze`'s speed against the decoder's own limit
//! (`ffmpeg -i X -f null -`) and against PySceneDetect, on a 720p and a 1080p H.264
//! file with scene cuts at known frames.
//!
//! The three programs run one after another, interleaved, `--runs` times per file;
//! the median and the best of the wall-clock times are kept, every time is in the
//! report. Rates are the file's frames over the wall time measured here, for all
//! three alike (process start included); reel's own figure from its summary is
//! reported beside it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::pyscenedetect;
use crate::reel::{self, Summary};
use crate::video::{self, Recipe, Video};

/// The bench's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the JSON report goes.
    pub out: PathBuf,
    /// Length of the test files in seconds (at 30 fps).
    pub seconds: u32,
    /// Runs of each program per file.
    pub runs: u32,
    /// Leave PySceneDetect out even when it is installed.
    pub skip_pyscenedetect: bool,
}

/// The frame rate of the test files.
const FPS: u32 = 30;

/// The command lines measured, for the report (`X` is the file).
const FFMPEG_CMD: &str = "ffmpeg -i X -f null -";
const REEL_CMD: &str = "reel analyze X --json --no-cache --out /dev/null";
const PYSCENEDETECT_CMD: &str =
    "python3 -m scenedetect -q -i X -o DIR -m 15 detect-content list-scenes -f scenes.csv";

/// Runs the bench, prints its table and writes its report.
pub fn run(opts: &Options) -> Result<()> {
    let ffmpeg = video::ffmpeg_version()?;
    let pysd = pyscenedetect::versions_for_bench(opts.skip_pyscenedetect);
    let dir = crate::target_dir().join("tmp/reel-bench");
    let frames = opts.seconds.saturating_mul(FPS);
    let videos = [("720p", 1280, 720), ("1080p", 1920, 1080)]
        .into_iter()
        .map(|(name, width, height)| {
            let recipe = Recipe {
                name: name.into(),
                width,
                height,
                fps: FPS,
                frames,
                rotate: 0,
            };
            Ok((recipe.clone(), recipe.make(&dir)?))
        })
        .collect::<Result<Vec<(Recipe, Video)>>>()?;
    let bin = reel::build_release()?;

    let load_before = load_average();
    let startup = match &pysd {
        Some(_) => Some(median(
            &(0..3)
                .map(|_| pyscenedetect::startup_seconds())
                .collect::<Result<Vec<f64>>>()?,
        )),
        None => None,
    };
    let mut files = Vec::new();
    for (recipe, video) in &videos {
        eprintln!(
            "xtask: measuring {} ({} runs) …",
            video.path.display(),
            opts.runs
        );
        // The file was just made or read before: make sure it is in the page cache
        // for the first program as for the others.
        std::fs::read(&video.path).with_context(|| format!("reading {}", video.path.display()))?;
        let mut samples = Samples::default();
        for _ in 0..opts.runs {
            samples.ffmpeg.push(video::time_ffmpeg_null(&video.path)?);
            let run = reel::analyze(&bin, &video.path, Path::new("/dev/null"))?;
            samples.reel.push((run.seconds, run.summary));
            if pysd.is_some() {
                let work = dir.join(format!("pyscenedetect-{}", recipe.name));
                let run = pyscenedetect::run(&video.path, &work, false)?;
                samples.pyscenedetect.push((run.seconds, run.cuts));
            }
        }
        let bytes = std::fs::metadata(&video.path)
            .with_context(|| format!("reading {}", video.path.display()))?
            .len();
        files.push(file_report(recipe, video, bytes, &samples, startup)?);
    }

    let report = Report {
        bench: "analyze",
        commands: Commands {
            ffmpeg_null: FFMPEG_CMD,
            reel: REEL_CMD,
            pyscenedetect: PYSCENEDETECT_CMD,
        },
        runs: opts.runs,
        file_seconds: opts.seconds,
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: cpu_model(),
            load_average_before: load_before,
            load_average_after: load_average(),
            ffmpeg,
            pyscenedetect: pysd,
            pyscenedetect_startup_s: startup,
            reel_commit: git_commit(),
        },
        files,
    };
    print!("{}", table(&report));
    write_json(&opts.out, &report)?;
    println!("report: {}", opts.out.display());
    Ok(())
}

/// Writes `value` as pretty JSON to `path`, making its folder.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(value).context("serialising the report")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Everything measured on one file.
#[derive(Debug, Default)]
pub struct Samples {
    /// Seconds of each `ffmpeg -f null` run.
    pub ffmpeg: Vec<f64>,
    /// Seconds and summary of each reel run.
    pub reel: Vec<(f64, Summary)>,
    /// Seconds and cuts of each PySceneDetect run (empty when it was not run).
    pub pyscenedetect: Vec<(f64, Vec<u64>)>,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `"analyze"`.
    pub bench: &'static str,
    /// The command lines measured.
    pub commands: Commands,
    /// Runs of each program per file.
    pub runs: u32,
    /// Length of the test files.
    pub file_seconds: u32,
    /// Where it ran.
    pub machine: Machine,
    /// One entry per file.
    pub files: Vec<FileReport>,
}

/// The command lines measured.
#[derive(Debug, Serialize)]
pub struct Commands {
    /// The baseline.
    pub ffmpeg_null: &'static str,
    /// reel.
    pub reel: &'static str,
    /// PySceneDetect.
    pub pyscenedetect: &'static str,
}

/// The machine and the programs' versions.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// Logical cores available.
    pub cores: usize,
    /// The CPU's model name.
    pub cpu: Option<String>,
    /// 1-minute load average before measuring (other work on the machine).
    pub load_average_before: Option<f64>,
    /// The same after.
    pub load_average_after: Option<f64>,
    /// `ffmpeg -version`'s first line.
    pub ffmpeg: String,
    /// PySceneDetect's versions, when it ran.
    pub pyscenedetect: Option<pyscenedetect::Versions>,
    /// Seconds python takes to start and import scenedetect and cv2.
    pub pyscenedetect_startup_s: Option<f64>,
    /// The commit reel was built from.
    pub reel_commit: Option<String>,
}

/// The figures for one file.
#[derive(Debug, Serialize, PartialEq)]
pub struct FileReport {
    /// `720p` or `1080p`.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames in the file.
    pub frames: u64,
    /// Its bit rate in kbit/s.
    pub bitrate_kbps: f64,
    /// The true cuts.
    pub cuts_true: Vec<u64>,
    /// Frames per second of `ffmpeg -f null` (median run).
    pub ffmpeg_null_fps: f64,
    /// The same, best run.
    pub ffmpeg_null_fps_best: f64,
    /// Frames per second of `reel analyze`, from the wall time measured here
    /// (median run).
    pub reel_fps: f64,
    /// The same, best run.
    pub reel_fps_best: f64,
    /// reel's own `fps` from its summary (median run).
    pub reel_fps_summary: f64,
    /// Frames per second of PySceneDetect (median run), python's start included.
    pub pyscenedetect_fps: Option<f64>,
    /// The same, best run.
    pub pyscenedetect_fps_best: Option<f64>,
    /// The same as `pyscenedetect_fps` with python's start and imports taken out.
    pub pyscenedetect_fps_without_startup: Option<f64>,
    /// `reel_fps / ffmpeg_null_fps`.
    pub ratio_reel_over_ffmpeg: f64,
    /// `reel_fps_best / ffmpeg_null_fps_best`.
    pub ratio_reel_over_ffmpeg_best: f64,
    /// `reel_fps / pyscenedetect_fps`.
    pub ratio_reel_over_pyscenedetect: Option<f64>,
    /// reel's peak resident memory (largest over the runs).
    pub reel_peak_rss_bytes: u64,
    /// reel's peak pool bytes (largest over the runs).
    pub reel_pool_peak_bytes: Option<u64>,
    /// reel's pool budget (first run).
    pub reel_pool_budget_bytes: Option<u64>,
    /// The decoder reel used (first run): `libav h264` in process, `ffmpeg h264`
    /// through a child process.
    pub reel_decoder: String,
    /// Frames reel decoded (first run).
    pub reel_frames_decoded: u64,
    /// Frames reel analysed (first run).
    pub reel_frames_analyzed: u64,
    /// reel's cuts (first run).
    pub cuts_reel: Vec<u64>,
    /// PySceneDetect's cuts (first run), in reel's numbering.
    pub cuts_pyscenedetect: Option<Vec<u64>>,
    /// Whether reel and PySceneDetect found the same cuts.
    pub cuts_equal: Option<bool>,
    /// Whether reel found the true cuts.
    pub cuts_reel_equal_truth: bool,
    /// Every run's wall-clock seconds.
    pub seconds: RunSeconds,
}

/// Every run's wall-clock seconds.
#[derive(Debug, Serialize, PartialEq)]
pub struct RunSeconds {
    /// `ffmpeg -f null`.
    pub ffmpeg_null: Vec<f64>,
    /// `reel analyze`, measured here.
    pub reel: Vec<f64>,
    /// `reel analyze`, its summary's `wall_s`.
    pub reel_summary: Vec<f64>,
    /// PySceneDetect.
    pub pyscenedetect: Vec<f64>,
}

/// The figures for one file from its samples.
pub fn file_report(
    recipe: &Recipe,
    video: &Video,
    bytes: u64,
    samples: &Samples,
    pyscenedetect_startup_s: Option<f64>,
) -> Result<FileReport> {
    let frames = u64::from(recipe.frames);
    let (_, first) = samples.reel.first().context("no reel run was measured")?;
    for (_, s) in &samples.reel[1..] {
        if s.cuts != first.cuts {
            eprintln!(
                "xtask: warning: reel's cuts on {} differ between runs: {:?} and {:?}",
                recipe.name, first.cuts, s.cuts
            );
        }
    }
    if first.frames_decoded != frames {
        eprintln!(
            "xtask: warning: reel decoded {} frames of {}'s {frames}",
            first.frames_decoded, recipe.name
        );
    }
    let ffmpeg_s = &samples.ffmpeg;
    let reel_s: Vec<f64> = samples.reel.iter().map(|(s, _)| *s).collect();
    let pysd_s: Vec<f64> = samples.pyscenedetect.iter().map(|(s, _)| *s).collect();
    let fps = |secs: &[f64]| rate(frames, median(secs));
    let fps_best = |secs: &[f64]| rate(frames, best(secs));
    let ffmpeg_null_fps = fps(ffmpeg_s);
    let reel_fps = fps(&reel_s);
    let pyscenedetect_fps = (!pysd_s.is_empty()).then(|| fps(&pysd_s));
    let cuts_pyscenedetect = samples.pyscenedetect.first().map(|(_, c)| c.clone());
    let duration = f64::from(recipe.frames) / f64::from(recipe.fps.max(1));
    let truth = video.truth.clone().unwrap_or_default();
    Ok(FileReport {
        name: recipe.name.clone(),
        path: video.path.clone(),
        width: recipe.width,
        height: recipe.height,
        frames,
        bitrate_kbps: bytes as f64 * 8.0 / duration / 1000.0,
        ffmpeg_null_fps,
        ffmpeg_null_fps_best: fps_best(ffmpeg_s),
        reel_fps,
        reel_fps_best: fps_best(&reel_s),
        reel_fps_summary: median(&samples.reel.iter().map(|(_, s)| s.fps).collect::<Vec<_>>()),
        pyscenedetect_fps,
        pyscenedetect_fps_best: (!pysd_s.is_empty()).then(|| fps_best(&pysd_s)),
        pyscenedetect_fps_without_startup: pyscenedetect_startup_s
            .filter(|_| !pysd_s.is_empty())
            .map(|start| rate(frames, median(&pysd_s) - start)),
        ratio_reel_over_ffmpeg: ratio(reel_fps, ffmpeg_null_fps),
        ratio_reel_over_ffmpeg_best: ratio(fps_best(&reel_s), fps_best(ffmpeg_s)),
        ratio_reel_over_pyscenedetect: pyscenedetect_fps.map(|p| ratio(reel_fps, p)),
        reel_peak_rss_bytes: samples
            .reel
            .iter()
            .map(|(_, s)| s.peak_rss_bytes)
            .max()
            .unwrap_or(0),
        reel_pool_peak_bytes: samples
            .reel
            .iter()
            .filter_map(|(_, s)| s.pool.as_ref().map(|p| p.peak_bytes))
            .max(),
        reel_pool_budget_bytes: first.pool.as_ref().map(|p| p.budget_bytes),
        reel_decoder: first.decoder.clone(),
        reel_frames_decoded: first.frames_decoded,
        reel_frames_analyzed: first.frames_analyzed,
        cuts_equal: cuts_pyscenedetect.as_ref().map(|c| *c == first.cuts),
        cuts_reel_equal_truth: first.cuts == truth,
        cuts_reel: first.cuts.clone(),
        cuts_pyscenedetect,
        cuts_true: truth,
        seconds: RunSeconds {
            ffmpeg_null: ffmpeg_s.clone(),
            reel: reel_s,
            reel_summary: samples.reel.iter().map(|(_, s)| s.wall_s).collect(),
            pyscenedetect: pysd_s,
        },
    })
}

/// The median (the mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The shortest time; 0 for none.
pub fn best(values: &[f64]) -> f64 {
    values.iter().copied().reduce(f64::min).unwrap_or(0.0)
}

/// Frames per second; 0 when no time was measured.
pub fn rate(frames: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        frames as f64 / seconds
    } else {
        0.0
    }
}

/// `a / b`; 0 when `b` is not a positive rate.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The printed table.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "{:<6} {:>6} {:>11} {:>9} {:>9} {:>12} {:>10} {:>10}  {}\n",
        "file",
        "frames",
        "ffmpeg fps",
        "reel fps",
        "pysd fps",
        "reel/ffmpeg",
        "reel/pysd",
        "reel RSS",
        "cuts"
    );
    for f in &report.files {
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
        };
        let cuts = match (f.cuts_reel_equal_truth, f.cuts_equal) {
            (true, Some(true)) => format!("{} true, PySceneDetect the same", f.cuts_reel.len()),
            (true, None) => format!("{} true", f.cuts_reel.len()),
            (truth, pysd) => format!(
                "reel {:?}{}, PySceneDetect {}, truth {:?}",
                f.cuts_reel,
                if truth { "" } else { " (wrong)" },
                match (pysd, &f.cuts_pyscenedetect) {
                    (_, Some(c)) => format!("{c:?}"),
                    _ => "-".into(),
                },
                f.cuts_true
            ),
        };
        out += &format!(
            "{:<6} {:>6} {:>11.1} {:>9.1} {:>9} {:>12.3} {:>10} {:>7.1} MiB  {}\n",
            f.name,
            f.frames,
            f.ffmpeg_null_fps,
            f.reel_fps,
            opt(f.pyscenedetect_fps, 1),
            f.ratio_reel_over_ffmpeg,
            opt(f.ratio_reel_over_pyscenedetect, 2),
            f.reel_peak_rss_bytes as f64 / f64::from(1u32 << 20),
            cuts
        );
    }
    out
}

/// The CPU's model name from `/proc/cpuinfo`.
pub(crate) fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The 1-minute load average from `/proc/loadavg`.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The checked-out commit, with `-dirty` when the tree has changes.
pub(crate) fn git_commit() -> Option<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(crate::root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { commit + "-dirty" } else { commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(cuts: Vec<u64>, wall_s: f64, rss: u64) -> Summary {
        reel::parse_summary(
            serde_json::json!({
                "cuts": cuts, "frames_decoded": 600, "frames_analyzed": 600,
                "fps": 600.0 / wall_s, "wall_s": wall_s, "peak_rss_bytes": rss,
                "pool": {"budget_bytes": 1 << 20, "peak_bytes": rss / 2},
                "decoder": "libav h264",
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn recipe() -> (Recipe, Video) {
        let recipe = Recipe {
            name: "720p".into(),
            width: 1280,
            height: 720,
            fps: 30,
            frames: 600,
            rotate: 0,
        };
        let video = Video {
            name: "720p".into(),
            path: "/x.mp4".into(),
            truth: Some(recipe.cuts().unwrap()),
        };
        (recipe, video)
    }

    #[test]
    fn medians_bests_rates_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(best(&[3.0, 1.5, 2.0]), 1.5);
        assert_eq!(best(&[]), 0.0);
        assert_eq!(rate(600, 2.0), 300.0);
        assert_eq!(rate(600, 0.0), 0.0);
        assert_eq!(ratio(270.0, 300.0), 0.9);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }

    #[test]
    fn the_report_takes_medians_of_the_runs_and_compares_cuts() {
        let (recipe, video) = recipe();
        let truth = recipe.cuts().unwrap();
        let mut wrong = truth.clone();
        wrong.pop();
        let samples = Samples {
            ffmpeg: vec![2.0, 1.0, 3.0],
            reel: vec![
                (2.5, summary(truth.clone(), 2.4, 100)),
                (1.5, summary(truth.clone(), 1.4, 300)),
                (2.0, summary(truth.clone(), 1.9, 200)),
            ],
            pyscenedetect: vec![
                (6.0, wrong.clone()),
                (7.0, wrong.clone()),
                (5.0, wrong.clone()),
            ],
        };
        let r = file_report(&recipe, &video, 2_500_000, &samples, Some(1.0)).unwrap();
        assert_eq!(r.frames, 600);
        assert_eq!(r.bitrate_kbps, 1000.0, "2.5 MB over 20 s");
        assert_eq!(r.ffmpeg_null_fps, 300.0);
        assert_eq!(r.ffmpeg_null_fps_best, 600.0);
        assert_eq!(r.reel_fps, 300.0);
        assert_eq!(r.reel_fps_best, 400.0);
        assert_eq!(r.ratio_reel_over_ffmpeg, 1.0);
        assert!((r.ratio_reel_over_ffmpeg_best - 400.0 / 600.0).abs() < 1e-12);
        assert_eq!(r.pyscenedetect_fps, Some(100.0));
        assert_eq!(r.pyscenedetect_fps_best, Some(120.0));
        assert_eq!(r.pyscenedetect_fps_without_startup, Some(120.0));
        assert_eq!(r.ratio_reel_over_pyscenedetect, Some(3.0));
        assert_eq!(r.reel_fps_summary, 600.0 / 1.9);
        assert_eq!(r.reel_peak_rss_bytes, 300);
        assert_eq!(r.reel_pool_peak_bytes, Some(150));
        assert_eq!(r.reel_pool_budget_bytes, Some(1 << 20));
        assert_eq!(r.reel_decoder, "libav h264");
        assert_eq!(r.cuts_reel, truth);
        assert!(r.cuts_reel_equal_truth);
        assert_eq!(r.cuts_pyscenedetect, Some(wrong));
        assert_eq!(r.cuts_equal, Some(false));
        assert_eq!(r.seconds.reel_summary, vec![2.4, 1.4, 1.9]);

        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "width",
            "height",
            "frames",
            "ffmpeg_null_fps",
            "reel_fps",
            "pyscenedetect_fps",
            "ratio_reel_over_ffmpeg",
            "ratio_reel_over_pyscenedetect",
            "reel_peak_rss_bytes",
            "cuts_reel",
            "cuts_pyscenedetect",
            "cuts_equal",
        ] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
    }

    #[test]
    fn without_pyscenedetect_its_figures_are_absent() {
        let (recipe, video) = recipe();
        let samples = Samples {
            ffmpeg: vec![1.0],
            reel: vec![(1.2, summary(vec![5], 1.1, 10))],
            pyscenedetect: vec![],
        };
        let r = file_report(&recipe, &video, 1, &samples, Some(1.0)).unwrap();
        assert_eq!(r.pyscenedetect_fps, None);
        assert_eq!(r.pyscenedetect_fps_without_startup, None);
        assert_eq!(r.ratio_reel_over_pyscenedetect, None);
        assert_eq!(r.cuts_equal, None);
        assert!(!r.cuts_reel_equal_truth);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["cuts_pyscenedetect"], serde_json::Value::Null);

        let report = Report {
            bench: "analyze",
            commands: Commands {
                ffmpeg_null: FFMPEG_CMD,
                reel: REEL_CMD,
                pyscenedetect: PYSCENEDETECT_CMD,
            },
            runs: 1,
            file_seconds: 20,
            machine: Machine {
                cores: 2,
                cpu: None,
                load_average_before: None,
                load_average_after: None,
                ffmpeg: "ffmpeg version 5.1".into(),
                pyscenedetect: None,
                pyscenedetect_startup_s: None,
                reel_commit: None,
            },
            files: vec![r],
        };
        let t = table(&report);
        assert!(t.contains("reel/ffmpeg"), "{t}");
        assert!(t.contains("(wrong)"), "{t}");
        assert_eq!(t.lines().count(), 2);
    }

    #[test]
    fn no_reel_run_is_an_error() {
        let (recipe, video) = recipe();
        let samples = Samples::default();
        assert!(file_report(&recipe, &video, 1, &samples, None).is_err());
    }
}
