//! PySceneDetect (PyPI `scenedetect`), run through its command line, as the oracle
//! for reel's cuts and the speed to beat.
//!
//! It runs with the defaults reel shares: `detect-content` (threshold 27), minimum
//! scene length 15 frames (given explicitly: the command line's own default is
//! 0.6 s), automatic downscaling, the OpenCV backend.
//!
//! Frame numbers: its scene list gives 1-based start frames numbered from the
//! frames' timestamps, so a video whose first frame is stamped one frame late
//! (Megamind.avi) starts its first scene at 2. reel counts decoded frames from 0.
//! Both are brought to reel's numbering by taking the first scene's start as frame
//! 0: the cuts are the later scenes' starts minus the first's.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::video::MIN_SCENE_LEN;

/// How to install the oracle when it is missing.
pub const INSTALL: &str = "pip install scenedetect opencv-python-headless";

/// The python interpreter: `PYTHON` or `python3`.
fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Versions of PySceneDetect, OpenCV and python, or `None` when python cannot
/// import both `scenedetect` and `cv2`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Versions {
    /// `scenedetect.__version__`.
    pub scenedetect: String,
    /// `cv2.__version__`.
    pub opencv: String,
    /// `platform.python_version()`.
    pub python: String,
}

/// The versions a bench measures with: `None` when told to skip PySceneDetect, or
/// when it is not installed (said on stderr, with how to add it).
pub fn versions_for_bench(skip: bool) -> Option<Versions> {
    if skip {
        return None;
    }
    let v = versions();
    if v.is_none() {
        eprintln!(
            "xtask: PySceneDetect is not installed: measuring without it (to add it: {INSTALL})"
        );
    }
    v
}

/// The installed versions, or `None` when PySceneDetect or OpenCV is missing.
pub fn versions() -> Option<Versions> {
    let out = Command::new(python())
        .args([
            "-c",
            "import platform, scenedetect, cv2; \
             print(scenedetect.__version__, cv2.__version__, platform.python_version())",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace().map(str::to_string);
    Some(Versions {
        scenedetect: words.next()?,
        opencv: words.next()?,
        python: words.next()?,
    })
}

/// Seconds python takes to start and import `scenedetect` and `cv2`: the part of
/// PySceneDetect's time that does not depend on the video.
pub fn startup_seconds() -> Result<f64> {
    let start = Instant::now();
    let status = Command::new(python())
        .args(["-c", "import scenedetect, cv2"])
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {}", python()))?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("python could not import scenedetect and cv2");
    }
    Ok(secs)
}

/// One run of PySceneDetect on a file.
#[derive(Debug, Clone)]
pub struct Run {
    /// Wall-clock seconds of the whole command (python's start included).
    pub seconds: f64,
    /// The cuts, in reel's numbering (see the module documentation).
    pub cuts: Vec<u64>,
    /// The frame number (0-based, its numbering) its first scene starts at.
    pub first_frame: u64,
    /// Per-frame `content_val`, in reel's numbering, when stats were asked for.
    pub scores: BTreeMap<u64, f64>,
}

/// Runs `python3 -m scenedetect -q -i INPUT -o WORKDIR -m 15 [-s stats.csv]
/// detect-content list-scenes -f scenes.csv` and reads its scene list (and stats).
pub fn run(input: &Path, workdir: &Path, stats: bool) -> Result<Run> {
    std::fs::create_dir_all(workdir).with_context(|| format!("creating {}", workdir.display()))?;
    let scenes_file = workdir.join("scenes.csv");
    let stats_file = workdir.join("stats.csv");
    for f in [&scenes_file, &stats_file] {
        if f.exists() {
            std::fs::remove_file(f).with_context(|| format!("removing {}", f.display()))?;
        }
    }
    let mut cmd = Command::new(python());
    cmd.args(["-m", "scenedetect", "-q", "-i"])
        .arg(input)
        .arg("-o")
        .arg(workdir)
        .arg("-m")
        .arg(MIN_SCENE_LEN.to_string());
    if stats {
        cmd.args(["-s", "stats.csv"]);
    }
    cmd.args(["detect-content", "list-scenes", "-f", "scenes.csv"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("running {} -m scenedetect", python()))?;
    let seconds = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "PySceneDetect failed on {}: {}",
            input.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = std::fs::read_to_string(&scenes_file)
        .with_context(|| format!("reading PySceneDetect's {}", scenes_file.display()))?;
    let starts = scene_starts(&text)
        .with_context(|| format!("parsing PySceneDetect's {}", scenes_file.display()))?;
    let (first_frame, cuts) = cuts_from_starts(&starts);
    let scores = if stats {
        let text = std::fs::read_to_string(&stats_file)
            .with_context(|| format!("reading PySceneDetect's {}", stats_file.display()))?;
        content_scores(&text, first_frame)
            .with_context(|| format!("parsing PySceneDetect's {}", stats_file.display()))?
    } else {
        BTreeMap::new()
    };
    Ok(Run {
        seconds,
        cuts,
        first_frame,
        scores,
    })
}

/// The 0-based start frames of the scenes in a `list-scenes` CSV file: an optional
/// `Timecode List:` row, a header row naming `Start Frame`, then one row per scene
/// with its 1-based start frame.
pub fn scene_starts(csv: &str) -> Result<Vec<u64>> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .by_ref()
        .find(|l| l.starts_with("Scene Number"))
        .context("no `Scene Number` header row")?;
    let col = header
        .split(',')
        .position(|h| h.trim() == "Start Frame")
        .context("no `Start Frame` column")?;
    lines
        .map(|line| {
            let cell = line
                .split(',')
                .nth(col)
                .with_context(|| format!("row without a start frame: {line:?}"))?;
            let frame: u64 = cell
                .trim()
                .parse()
                .with_context(|| format!("start frame {cell:?} is not a number"))?;
            frame
                .checked_sub(1)
                .with_context(|| format!("start frame 0 in a 1-based list: {line:?}"))
        })
        .collect()
}

/// The first scene's start and the cuts relative to it (see the module docs).
/// No scene at all (an empty list) is a video without cuts.
pub fn cuts_from_starts(starts: &[u64]) -> (u64, Vec<u64>) {
    let Some(&first) = starts.first() else {
        return (0, Vec::new());
    };
    (first, starts[1..].iter().map(|s| s - first).collect())
}

/// Per-frame `content_val` from a stats CSV file (`Frame Number` 1-based), in
/// reel's numbering (frame numbers less `first_frame` + 1). Rows without a value
/// (the first frame) are left out.
pub fn content_scores(csv: &str, first_frame: u64) -> Result<BTreeMap<u64, f64>> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .context("empty stats file")?
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("no `{name}` column"))
    };
    let (frame_col, score_col) = (col("Frame Number")?, col("content_val")?);
    let mut scores = BTreeMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let frame: u64 = cells
            .get(frame_col)
            .and_then(|c| c.trim().parse().ok())
            .with_context(|| format!("row without a frame number: {line:?}"))?;
        let Some(score) = cells.get(score_col).and_then(|c| c.trim().parse().ok()) else {
            continue;
        };
        let Some(frame) = frame.checked_sub(first_frame + 1) else {
            bail!("frame {frame} before the first scene's start");
        };
        scores.insert(frame, score);
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PySceneDetect 0.7.2 on vtest.avi: one scene, no cut row.
    const NO_CUTS: &str = "\n\
Scene Number,Start Frame,Start Timecode,Start Time (seconds),End Frame,End Timecode,End Time (seconds),Length (frames),Length (timecode),Length (seconds)\n\
1,1,00:00:00.000,0.000,795,00:01:19.500,79.500,795,00:01:19.500,79.500\n";

    /// PySceneDetect 0.7.2 on Megamind.avi, whose first frame is stamped 1/23.976 s.
    const LATE_START: &str = "Timecode List:,00:00:04.129,00:00:06.465,00:00:08.383\n\
Scene Number,Start Frame,Start Timecode,Start Time (seconds),End Frame,End Timecode,End Time (seconds),Length (frames),Length (timecode),Length (seconds)\n\
1,2,00:00:00.042,0.042,99,00:00:04.129,4.129,98,00:00:04.087,4.087\n\
2,100,00:00:04.129,4.129,155,00:00:06.465,6.465,56,00:00:02.336,2.336\n\
3,156,00:00:06.465,6.465,201,00:00:08.383,8.383,46,00:00:01.919,1.919\n\
4,202,00:00:08.383,8.383,270,00:00:11.261,11.261,69,00:00:02.878,2.878\n";

    #[test]
    fn one_scene_means_no_cuts() {
        let starts = scene_starts(NO_CUTS).unwrap();
        assert_eq!(starts, vec![0]);
        assert_eq!(cuts_from_starts(&starts), (0, vec![]));
        assert_eq!(cuts_from_starts(&[]), (0, vec![]));
    }

    #[test]
    fn start_frames_become_zero_based_cuts_from_the_first_frame() {
        let starts = scene_starts(LATE_START).unwrap();
        assert_eq!(starts, vec![1, 99, 155, 201]);
        assert_eq!(cuts_from_starts(&starts), (1, vec![98, 154, 200]));
        let from_zero = [0, 60, 138];
        assert_eq!(cuts_from_starts(&from_zero), (0, vec![60, 138]));
    }

    #[test]
    fn malformed_scene_lists_are_errors() {
        assert!(scene_starts("").is_err());
        assert!(scene_starts("Scene Number,End Frame\n1,4\n").is_err());
        assert!(scene_starts("Scene Number,Start Frame\n1,x\n").is_err());
        assert!(scene_starts("Scene Number,Start Frame\n1,0\n").is_err());
    }

    #[test]
    fn stats_are_renumbered_and_rows_without_a_score_skipped() {
        let csv = "Frame Number,Timecode,content_val,delta_hue,delta_sat,delta_lum\n\
2,00:00:00.042,,,,\n\
3,00:00:00.083,1.5,1,2,1.5\n\
4,00:00:00.125,80.25,70,90,80.75\n";
        let scores = content_scores(csv, 1).unwrap();
        assert_eq!(
            scores.into_iter().collect::<Vec<_>>(),
            vec![(1, 1.5), (2, 80.25)]
        );
        assert!(content_scores("Frame Number,x\n1,2\n", 0).is_err());
        assert!(
            content_scores(csv, 3).is_err(),
            "a frame before the first scene"
        );
    }
}
