//! `cargo xtask oracle`: reel's scene cuts against PySceneDetect's (an
//! implementation the project did not write) and against the truth.
//!
//! Files: videos made with ffmpeg from lavfi sources concatenated at known frames
//! (320x240, 640x360 and 1280x720, each pairing different sources at its cuts), and
//! the real videos of Debian's `opencv-doc` when present: `vtest.avi` (a static
//! camera: no cuts) and `Megamind.avi` (an animated clip; its truth is not known, the
//! two programs must agree). Every file must give the same cuts from both, and the
//! true ones where they are known; the command fails otherwise. The per-frame scores
//! (reel's `content_delta`, PySceneDetect's `content_val`) are compared too and
//! reported, for information.
//!
//! Without PySceneDetect it says how to install it, still checks reel against the
//! truth, and succeeds when that holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::pyscenedetect;
use crate::reel;
use crate::video::{self, Recipe, Video};

/// The oracle's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the JSON report goes.
    pub out: PathBuf,
}

/// Debian's `opencv-doc` sample videos.
const OPENCV_DATA: &str = "/usr/share/doc/opencv-doc/examples/data";

/// The made videos: (name, width, height, fps, frames, rotation of the sources).
const MADE: &[(&str, u32, u32, u32, u32, usize)] = &[
    ("lavfi-320x240", 320, 240, 25, 400, 3),
    ("lavfi-640x360", 640, 360, 30, 450, 6),
    ("lavfi-1280x720", 1280, 720, 24, 300, 1),
];

/// The comparison on one file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// Short name.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Frames reel decoded.
    pub frames: u64,
    /// The true cuts, when known.
    pub cuts_true: Option<Vec<u64>>,
    /// reel's cuts.
    pub cuts_reel: Vec<u64>,
    /// PySceneDetect's cuts in reel's numbering, when it ran.
    pub cuts_pyscenedetect: Option<Vec<u64>>,
    /// PySceneDetect's (0-based) number for the first frame.
    pub pyscenedetect_first_frame: Option<u64>,
    /// Whether reel's cuts equal PySceneDetect's.
    pub cuts_equal: Option<bool>,
    /// Whether reel's cuts are the true ones.
    pub reel_matches_truth: Option<bool>,
    /// Whether PySceneDetect's cuts are the true ones.
    pub pyscenedetect_matches_truth: Option<bool>,
    /// Frames both scored.
    pub frames_scored: usize,
    /// Largest |content_delta − content_val| over those frames.
    pub max_abs_score_diff: Option<f64>,
    /// Mean of the same.
    pub mean_abs_score_diff: Option<f64>,
    /// Whether every comparison that could be made held.
    pub agree: bool,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `"oracle"`.
    pub check: &'static str,
    /// PySceneDetect's versions, or `None` when it is not installed.
    pub pyscenedetect: Option<pyscenedetect::Versions>,
    /// `ffmpeg -version`'s first line.
    pub ffmpeg: String,
    /// One row per file.
    pub files: Vec<Row>,
    /// Whether every row agrees.
    pub agree: bool,
}

/// Runs the check, prints its table, writes its report; an error when any file
/// disagrees.
pub fn run(opts: &Options) -> Result<()> {
    let ffmpeg = video::ffmpeg_version()?;
    let pysd = pyscenedetect::versions();
    if pysd.is_none() {
        eprintln!(
            "xtask: note: PySceneDetect is not installed, so reel is checked against the \
             true cuts only. To compare with it: {}",
            pyscenedetect::INSTALL
        );
    }
    let dir = crate::target_dir().join("tmp/reel-oracle");
    let mut videos = Vec::new();
    for &(name, width, height, fps, frames, rotate) in MADE {
        let recipe = Recipe {
            name: name.into(),
            width,
            height,
            fps,
            frames,
            rotate,
        };
        videos.push(recipe.make(&dir)?);
    }
    for (file, truth) in [("vtest.avi", Some(Vec::new())), ("Megamind.avi", None)] {
        let path = Path::new(OPENCV_DATA).join(file);
        if path.is_file() {
            videos.push(Video {
                name: file.into(),
                path,
                truth,
            });
        } else {
            eprintln!(
                "xtask: note: {} is missing (Debian: apt-get install opencv-doc)",
                path.display()
            );
        }
    }
    let bin = reel::build_release()?;

    let mut rows = Vec::new();
    for v in &videos {
        eprintln!("xtask: comparing on {} …", v.path.display());
        let frames_out = dir.join(format!("{}.frames.jsonl", v.name));
        let ours = reel::analyze(&bin, &v.path, &frames_out)?;
        let jsonl = std::fs::read_to_string(&frames_out)
            .with_context(|| format!("reading {}", frames_out.display()))?;
        let deltas = reel::content_deltas(&jsonl)
            .with_context(|| format!("reading {}", frames_out.display()))?;
        let theirs = match pysd {
            Some(_) => Some(pyscenedetect::run(
                &v.path,
                &dir.join(format!("pyscenedetect-{}", v.name)),
                true,
            )?),
            None => None,
        };
        rows.push(compare(v, &ours.summary, &deltas, theirs.as_ref()));
    }
    let agree = rows.iter().all(|r| r.agree);
    let report = Report {
        check: "oracle",
        pyscenedetect: pysd,
        ffmpeg,
        files: rows,
        agree,
    };
    print!("{}", table(&report.files));
    crate::bench::write_json(&opts.out, &report)?;
    println!("report: {}", opts.out.display());
    let wrong: Vec<&str> = report
        .files
        .iter()
        .filter(|r| !r.agree)
        .map(|r| r.name.as_str())
        .collect();
    if !wrong.is_empty() {
        bail!(
            "cuts disagree on {} of {} files: {}",
            wrong.len(),
            report.files.len(),
            wrong.join(", ")
        );
    }
    Ok(())
}

/// The comparison on one file.
pub fn compare(
    video: &Video,
    ours: &reel::Summary,
    deltas: &BTreeMap<u64, f64>,
    theirs: Option<&pyscenedetect::Run>,
) -> Row {
    let cuts_pyscenedetect = theirs.map(|t| t.cuts.clone());
    let cuts_equal = cuts_pyscenedetect.as_ref().map(|c| *c == ours.cuts);
    let reel_matches_truth = video.truth.as_ref().map(|t| *t == ours.cuts);
    let pyscenedetect_matches_truth = match (&video.truth, &cuts_pyscenedetect) {
        (Some(t), Some(c)) => Some(t == c),
        _ => None,
    };
    let diffs: Vec<f64> = theirs
        .map(|t| {
            t.scores
                .iter()
                .filter_map(|(f, v)| deltas.get(f).map(|d| (d - v).abs()))
                .collect()
        })
        .unwrap_or_default();
    let agree = [cuts_equal, reel_matches_truth, pyscenedetect_matches_truth]
        .into_iter()
        .all(|c| c != Some(false));
    Row {
        name: video.name.clone(),
        path: video.path.clone(),
        frames: ours.frames_decoded,
        cuts_true: video.truth.clone(),
        cuts_reel: ours.cuts.clone(),
        cuts_pyscenedetect,
        pyscenedetect_first_frame: theirs.map(|t| t.first_frame),
        cuts_equal,
        reel_matches_truth,
        pyscenedetect_matches_truth,
        frames_scored: diffs.len(),
        max_abs_score_diff: diffs.iter().copied().reduce(f64::max),
        mean_abs_score_diff: (!diffs.is_empty())
            .then(|| diffs.iter().sum::<f64>() / diffs.len() as f64),
        agree,
    }
}

/// The printed table.
pub fn table(rows: &[Row]) -> String {
    let yes_no = |v: Option<bool>| match v {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    };
    let mut out = format!(
        "{:<15} {:>6} {:>5} {:>10} {:>11} {:>11} {:>14}  {}\n",
        "file",
        "frames",
        "cuts",
        "reel=pysd",
        "reel=truth",
        "pysd=truth",
        "max score diff",
        "result"
    );
    for r in rows {
        out += &format!(
            "{:<15} {:>6} {:>5} {:>10} {:>11} {:>11} {:>14}  {}\n",
            r.name,
            r.frames,
            r.cuts_reel.len(),
            yes_no(r.cuts_equal),
            yes_no(r.reel_matches_truth),
            yes_no(r.pyscenedetect_matches_truth),
            r.max_abs_score_diff
                .map_or_else(|| "-".into(), |d| format!("{d:.3}")),
            if r.agree { "ok" } else { "DISAGREE" }
        );
        if !r.agree || r.cuts_reel.len() <= 12 {
            out += &format!("    reel {:?}", r.cuts_reel);
            if let Some(c) = &r.cuts_pyscenedetect {
                out += &format!(", PySceneDetect {c:?}");
            }
            if let Some(t) = &r.cuts_true {
                out += &format!(", truth {t:?}");
            }
            out += "\n";
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(cuts: &[u64]) -> reel::Summary {
        reel::parse_summary(
            serde_json::json!({
                "cuts": cuts, "frames_decoded": 300, "frames_analyzed": 300, "fps": 100.0,
                "wall_s": 3.0, "peak_rss_bytes": 1,
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn theirs(cuts: &[u64], scores: &[(u64, f64)]) -> pyscenedetect::Run {
        pyscenedetect::Run {
            seconds: 1.0,
            cuts: cuts.to_vec(),
            first_frame: 0,
            scores: scores.iter().copied().collect(),
        }
    }

    fn video(truth: Option<Vec<u64>>) -> Video {
        Video {
            name: "v".into(),
            path: "/v.mp4".into(),
            truth,
        }
    }

    #[test]
    fn equal_cuts_agree_and_scores_are_compared_on_common_frames() {
        let deltas: BTreeMap<u64, f64> = [(1, 2.0), (2, 90.0), (3, 1.0)].into();
        let t = theirs(&[2], &[(1, 2.5), (2, 89.0), (4, 7.0)]);
        let row = compare(&video(Some(vec![2])), &summary(&[2]), &deltas, Some(&t));
        assert!(row.agree);
        assert_eq!(row.cuts_equal, Some(true));
        assert_eq!(row.reel_matches_truth, Some(true));
        assert_eq!(row.pyscenedetect_matches_truth, Some(true));
        assert_eq!(row.frames_scored, 2);
        assert_eq!(row.max_abs_score_diff, Some(1.0));
        assert_eq!(row.mean_abs_score_diff, Some(0.75));
    }

    #[test]
    fn any_difference_disagrees() {
        let none = BTreeMap::new();
        // reel and PySceneDetect differ, truth unknown.
        let row = compare(
            &video(None),
            &summary(&[2]),
            &none,
            Some(&theirs(&[3], &[])),
        );
        assert!(!row.agree);
        assert_eq!(row.reel_matches_truth, None);
        // Both agree with each other but not with the truth.
        let row = compare(
            &video(Some(vec![5])),
            &summary(&[2]),
            &none,
            Some(&theirs(&[2], &[])),
        );
        assert!(!row.agree);
        assert_eq!(row.cuts_equal, Some(true));
        assert_eq!(row.pyscenedetect_matches_truth, Some(false));
        // Without PySceneDetect, the truth alone decides.
        let row = compare(&video(Some(vec![])), &summary(&[]), &none, None);
        assert!(row.agree);
        assert_eq!(row.cuts_equal, None);
        assert_eq!(row.max_abs_score_diff, None);
        let row = compare(&video(Some(vec![])), &summary(&[40]), &none, None);
        assert!(!row.agree);
        let t = table(&[row]);
        assert!(t.contains("DISAGREE") && t.contains("reel [40]"), "{t}");
    }
}
