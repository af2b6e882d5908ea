//! Test videos made with ffmpeg from its lavfi sources, with scene cuts at known
//! frames, and the ffmpeg baseline (`ffmpeg -i X -f null -`).
//!
//! A video is a concatenation of segments, each from a different generator with
//! motion of its own (moving test patterns, a zooming fractal, scrolling bars,
//! rotating gradients), so that within a segment the content detector's score stays
//! well under the threshold and at each boundary it is far above it. The first frame
//! of every segment after the first is a cut (0-based, as reel reports them).
//! Made once and kept: the file name carries every parameter of the recipe.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

/// PySceneDetect's and reel's minimum scene length, in frames.
pub const MIN_SCENE_LEN: u32 = 15;

/// Bump when the recipe changes, so files made by an older one are not reused.
const RECIPE: u32 = 1;

/// The generators, in order: (lavfi source, its extra options, filters after it).
/// Every one moves; neighbours differ strongly in colour.
const SOURCES: &[(&str, &str, &str)] = &[
    ("testsrc2", "", ""),
    ("smptebars", "", ",scroll=h=0.004"),
    ("mandelbrot", "", ""),
    ("pal100bars", "", ",scroll=h=0.004"),
    ("rgbtestsrc", "", ",scroll=v=0.005"),
    ("testsrc2", "", ",negate,vflip"),
    ("gradients", ":speed=0.03", ""),
    ("yuvtestsrc", "", ",scroll=v=0.004"),
    ("colorspectrum", "", ",scroll=h=0.003"),
    ("testsrc", "", ""),
];

/// Relative segment lengths, so cuts fall at irregular frames.
const WEIGHTS: &[u32] = &[10, 13, 8, 12, 9, 14, 7, 11, 10, 6];

/// The shortest segment: twice the minimum scene length, so that no cut is ever
/// suppressed by it.
const MIN_SEGMENT: u32 = 2 * MIN_SCENE_LEN;

/// What to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Short name, used in reports and the file name.
    pub name: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Total frames.
    pub frames: u32,
    /// Which generator comes first (the order is rotated by this much), so that
    /// different files pair different sources at their cuts.
    pub rotate: usize,
}

/// A video file, made here or found on the system.
#[derive(Debug, Clone)]
pub struct Video {
    /// Short name for reports.
    pub name: String,
    /// Where the file is.
    pub path: PathBuf,
    /// The true cuts (0-based first frames of new scenes), when known.
    pub truth: Option<Vec<u64>>,
}

impl Recipe {
    /// The segment lengths: as many generators as fit with every segment at least
    /// [`MIN_SEGMENT`] frames long, lengths proportional to [`WEIGHTS`], the
    /// rounding remainder on the last one (two halves for the shortest videos).
    pub fn segments(&self) -> Result<Vec<u32>> {
        for count in (2..=SOURCES.len()).rev() {
            let weights = &WEIGHTS[..count];
            let sum: u32 = weights.iter().sum();
            let mut lengths: Vec<u32> = weights
                .iter()
                .map(|w| (u64::from(self.frames) * u64::from(*w) / u64::from(sum)) as u32)
                .collect();
            let used: u32 = lengths.iter().sum();
            if let Some(last) = lengths.last_mut() {
                *last += self.frames - used;
            }
            if lengths.iter().all(|l| *l >= MIN_SEGMENT) {
                return Ok(lengths);
            }
        }
        // Too short for unequal segments: two halves, if they are long enough.
        if self.frames >= 2 * MIN_SEGMENT {
            return Ok(vec![self.frames / 2, self.frames - self.frames / 2]);
        }
        bail!(
            "{}: {} frames is too short for two scenes of at least {MIN_SEGMENT} frames",
            self.name,
            self.frames
        )
    }

    /// The true cuts: the first frame of every segment after the first.
    pub fn cuts(&self) -> Result<Vec<u64>> {
        Ok(cuts_of(&self.segments()?))
    }

    /// The file this recipe makes, in `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!(
            "{}-{}x{}-{}fps-{}f-r{}-v{RECIPE}.mp4",
            self.name, self.width, self.height, self.fps, self.frames, self.rotate
        ))
    }

    /// The ffmpeg arguments that make the video into `out`.
    pub fn ffmpeg_args(&self, out: &Path) -> Result<Vec<String>> {
        let lengths = self.segments()?;
        let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
            .map(String::from)
            .to_vec();
        for (i, len) in lengths.iter().enumerate() {
            let (source, options, filters) = SOURCES[(i + self.rotate) % SOURCES.len()];
            args.extend(["-f".into(), "lavfi".into(), "-i".into()]);
            args.push(format!(
                "{source}=size={}x{}:rate={}{options}{filters},trim=end_frame={len},setpts=PTS-STARTPTS",
                self.width, self.height, self.fps
            ));
        }
        args.push("-filter_complex".into());
        args.push(format!("concat=n={}:v=1:a=0,format=yuv420p", lengths.len()));
        for a in [
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-an",
        ] {
            args.push(a.into());
        }
        args.push(out.to_string_lossy().into_owned());
        Ok(args)
    }

    /// Makes the video in `dir` unless it is already there; returns it with its cuts.
    pub fn make(&self, dir: &Path) -> Result<Video> {
        let path = self.path_in(dir);
        let truth = Some(self.cuts()?);
        if !path.is_file() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            eprintln!("xtask: making {} …", path.display());
            // Written aside and renamed, so an interrupted run leaves no partial file
            // that a later one would reuse.
            let partial = path.with_extension(format!("{}.partial.mp4", std::process::id()));
            let out = ffmpeg()
                .args(self.ffmpeg_args(&partial)?)
                .stdout(Stdio::null())
                .output()
                .with_context(|| format!("running {} to make {}", ffmpeg_program(), self.name))?;
            if !out.status.success() {
                let _ = std::fs::remove_file(&partial);
                bail!(
                    "ffmpeg could not make {}: {}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let made = count_frames(&partial)?;
            if made != u64::from(self.frames) {
                let _ = std::fs::remove_file(&partial);
                bail!(
                    "ffmpeg made {made} frames of {} instead of {}",
                    self.name,
                    self.frames
                );
            }
            std::fs::rename(&partial, &path)
                .with_context(|| format!("renaming {} into place", partial.display()))?;
        }
        Ok(Video {
            name: self.name.clone(),
            path,
            truth,
        })
    }
}

/// The cuts of a concatenation of segments of these lengths.
pub fn cuts_of(lengths: &[u32]) -> Vec<u64> {
    lengths
        .iter()
        .scan(0u64, |start, len| {
            *start += u64::from(*len);
            Some(*start)
        })
        .take(lengths.len().saturating_sub(1))
        .collect()
}

/// The ffmpeg program: `REEL_FFMPEG` (as reel itself uses) or `ffmpeg`.
pub fn ffmpeg_program() -> String {
    std::env::var("REEL_FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

fn ffmpeg() -> Command {
    Command::new(ffmpeg_program())
}

/// The frames (packets) of the first video stream, as ffprobe counts them
/// (`REEL_FFPROBE` or `ffprobe`).
pub fn count_frames(path: &Path) -> Result<u64> {
    let program = std::env::var("REEL_FFPROBE").unwrap_or_else(|_| "ffprobe".into());
    let out = Command::new(&program)
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "ffprobe could not read {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("ffprobe's frame count for {}: {text:?}", path.display()))
}

/// ffmpeg's version line; a clear error when it is not installed.
pub fn ffmpeg_version() -> Result<String> {
    version_of(&ffmpeg_program())
}

fn version_of(program: &str) -> Result<String> {
    let out = Command::new(program)
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "`{program}` could not be run: ffmpeg is needed to make the test videos and \
                 for the baseline (Debian: apt-get install ffmpeg; or set REEL_FFMPEG)"
            )
        })?;
    ensure!(out.status.success(), "`{program} -version` failed");
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

/// Seconds for `ffmpeg -i X -f null -`: decoding every frame and nothing else, with
/// ffmpeg's own thread defaults.
pub fn time_ffmpeg_null(path: &Path) -> Result<f64> {
    let start = Instant::now();
    let out = ffmpeg()
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .stdout(Stdio::null())
        .output()
        .with_context(|| format!("running {}", ffmpeg_program()))?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "ffmpeg could not decode {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(secs)
}

/// `count` videos of mixed length for the batch checks: `size` (width, height) at 25
/// fps, 60 to 60 + 30 × (`spread` - 1) frames (each at least two scenes), the
/// generators rotated from one to the next; made once and kept in `dir`.
pub fn mixed(
    dir: &Path,
    prefix: &str,
    count: usize,
    size: (u32, u32),
    spread: u32,
) -> Result<Vec<Video>> {
    (0..count)
        .map(|i| {
            let step = (i as u32 * 7) % spread.max(1);
            Recipe {
                name: format!("{prefix}{i:02}"),
                width: size.0,
                height: size.1,
                fps: 25,
                frames: 2 * MIN_SEGMENT + 30 * step,
                rotate: i,
            }
            .make(dir)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(frames: u32) -> Recipe {
        Recipe {
            name: "t".into(),
            width: 320,
            height: 240,
            fps: 30,
            frames,
            rotate: 0,
        }
    }

    #[test]
    fn segments_cover_every_frame_and_respect_the_minimum() {
        for frames in [60, 61, 200, 299, 600, 900, 1800, 18_000] {
            let lengths = recipe(frames).segments().unwrap();
            assert_eq!(lengths.iter().sum::<u32>(), frames, "{frames}");
            assert!(lengths.len() >= 2);
            assert!(lengths.iter().all(|l| *l >= MIN_SEGMENT), "{lengths:?}");
        }
        assert_eq!(recipe(600).segments().unwrap().len(), SOURCES.len());
    }

    #[test]
    fn a_made_video_has_its_frames_and_pyscenedetect_finds_its_cuts() {
        let dir = crate::target_dir().join(format!("tmp/xtask-test-{}", std::process::id()));
        let r = Recipe {
            name: "made".into(),
            width: 160,
            height: 120,
            fps: 25,
            frames: 400,
            rotate: 2,
        };
        let video = r.make(&dir).unwrap();
        assert_eq!(video.path, r.path_in(&dir));
        assert_eq!(count_frames(&video.path).unwrap(), 400);
        let truth = video.truth.clone().unwrap();
        assert_eq!(truth.len(), 7, "{truth:?}");
        // Made once: a second call reuses the file.
        let modified = std::fs::metadata(&video.path).unwrap().modified().unwrap();
        r.make(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&video.path).unwrap().modified().unwrap(),
            modified
        );
        assert!(time_ffmpeg_null(&video.path).unwrap() > 0.0);
        // Every generator pair is clearly a cut and nothing inside a segment is, as
        // an implementation the project did not write sees it.
        if crate::pyscenedetect::versions().is_some() {
            let run = crate::pyscenedetect::run(&video.path, &dir.join("pysd"), true).unwrap();
            assert_eq!(run.cuts, truth);
            assert_eq!(run.first_frame, 0);
            assert_eq!(
                run.scores.len(),
                399,
                "every frame after the first is scored"
            );
        } else {
            crate::oracle_support::missing(&format!(
                "PySceneDetect ({})",
                crate::pyscenedetect::INSTALL
            ));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_ffmpeg_is_named_with_how_to_install_it() {
        let err = format!("{:#}", version_of("/nonexistent/ffmpeg").unwrap_err());
        assert!(err.contains("/nonexistent/ffmpeg"), "{err}");
        assert!(err.contains("apt-get install ffmpeg"), "{err}");
        assert!(ffmpeg_version().unwrap().starts_with("ffmpeg version"));
    }

    #[test]
    fn too_short_a_video_is_refused() {
        let err = recipe(59).segments().unwrap_err().to_string();
        assert!(err.contains("too short"), "{err}");
    }

    #[test]
    fn cuts_are_the_starts_of_the_later_segments() {
        assert_eq!(cuts_of(&[60, 78, 48]), vec![60, 138]);
        assert_eq!(cuts_of(&[100]), Vec::<u64>::new());
        assert_eq!(cuts_of(&[]), Vec::<u64>::new());
        assert_eq!(
            recipe(600).cuts().unwrap(),
            vec![60, 138, 186, 258, 312, 396, 438, 504, 564]
        );
    }

    #[test]
    fn the_recipe_names_every_parameter_in_the_file_and_the_filters() {
        let r = Recipe {
            rotate: 3,
            ..recipe(300)
        };
        let path = r.path_in(Path::new("/d"));
        assert_eq!(
            path,
            Path::new(&format!("/d/t-320x240-30fps-300f-r3-v{RECIPE}.mp4"))
        );
        let args = r.ffmpeg_args(Path::new("/d/out.mp4")).unwrap();
        let inputs: Vec<&String> = args
            .iter()
            .zip(args.iter().skip(1))
            .filter(|(flag, _)| *flag == "-i")
            .map(|(_, v)| v)
            .collect();
        let lengths = r.segments().unwrap();
        assert_eq!(inputs.len(), lengths.len());
        assert!(inputs[0].starts_with("pal100bars=size=320x240:rate=30"));
        assert!(inputs[0].ends_with(&format!(
            "trim=end_frame={},setpts=PTS-STARTPTS",
            lengths[0]
        )));
        assert!(args.contains(&format!(
            "concat=n={}:v=1:a=0,format=yuv420p",
            lengths.len()
        )));
        assert_eq!(args.last().unwrap(), "/d/out.mp4");
    }
}
