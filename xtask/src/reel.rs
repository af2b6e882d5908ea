//! The `reel` binary, built in release and driven through its command-line
//! contract only: `reel analyze INPUT --json --no-cache --out FRAMES.jsonl`, its
//! summary JSON on stdout and its per-frame lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Builds `reel` in release and returns the binary's path.
pub fn build_release() -> Result<PathBuf> {
    let mut build = crate::cargo();
    build.args(["build", "--release", "-p", "reel-cli", "--bin", "reel"]);
    crate::with_libav(&mut build);
    crate::step("cargo build --release (reel)", build)?;
    let bin = crate::target_dir()
        .join("release")
        .join(format!("reel{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!("the release build left no binary at {}", bin.display());
    }
    Ok(bin)
}

/// The parts of `reel analyze --json`'s summary the bench and the oracle read.
#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    /// 0-based first frames of new scenes.
    pub cuts: Vec<u64>,
    /// Frames the decoder delivered.
    pub frames_decoded: u64,
    /// Frames the analysers saw.
    pub frames_analyzed: u64,
    /// reel's own rate (frames per second of its wall time).
    pub fps: f64,
    /// reel's own wall time.
    pub wall_s: f64,
    /// The process's peak resident memory.
    pub peak_rss_bytes: u64,
    /// The frame pool's figures.
    #[serde(default)]
    pub pool: Option<Pool>,
    /// The decoder that read the video (`libav h264`, `ffmpeg h264`).
    #[serde(default)]
    pub decoder: String,
}

/// The summary's `pool` object.
#[derive(Debug, Clone, Deserialize)]
pub struct Pool {
    /// The pool's byte budget.
    pub budget_bytes: u64,
    /// The most bytes the pool ever had out.
    pub peak_bytes: u64,
}

/// One run of `reel analyze`.
#[derive(Debug, Clone)]
pub struct Run {
    /// Wall-clock seconds of the whole process, measured here.
    pub seconds: f64,
    /// What it printed.
    pub summary: Summary,
}

/// Runs `reel analyze INPUT --json --no-cache --out OUT` and reads its summary.
pub fn analyze(bin: &Path, input: &Path, out: &Path) -> Result<Run> {
    let start = Instant::now();
    let output = Command::new(bin)
        .arg("analyze")
        .arg(input)
        .args(["--json", "--no-cache", "--out"])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "reel analyze {} failed ({}): {}",
            input.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let summary = parse_summary(&output.stdout)
        .with_context(|| format!("reading reel analyze's summary for {}", input.display()))?;
    Ok(Run { seconds, summary })
}

/// The summary JSON `reel analyze --json` prints.
pub fn parse_summary(stdout: &[u8]) -> Result<Summary> {
    serde_json::from_slice(stdout).context("stdout is not the summary JSON")
}

/// `content_delta` per frame from a `FRAMES.jsonl` file; lines without one (the
/// first frame) are left out.
pub fn content_deltas(jsonl: &str) -> Result<BTreeMap<u64, f64>> {
    #[derive(Deserialize)]
    struct Line {
        frame: u64,
        content_delta: Option<f64>,
    }
    let mut deltas = BTreeMap::new();
    for (i, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line)
            .with_context(|| format!("line {} of FRAMES.jsonl", i + 1))?;
        if let Some(d) = l.content_delta {
            deltas.insert(l.frame, d);
        }
    }
    Ok(deltas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_read_and_unknown_fields_ignored() {
        let json = br#"{"input":"x.mp4","video":{"width":1280,"height":720,"fps":30.0,
            "frames":600,"duration_s":20.0,"codec":"h264"},"frames_decoded":600,
            "frames_analyzed":600,"cuts":[60,138],"scenes":[],"wall_s":1.5,"fps":400.0,
            "peak_rss_bytes":52428800,"pool":{"budget_bytes":1000,"peak_bytes":900,
            "hits":1,"misses":2},"cache":"off"}"#;
        let s = parse_summary(json).unwrap();
        assert_eq!(s.cuts, vec![60, 138]);
        assert_eq!((s.frames_decoded, s.frames_analyzed), (600, 600));
        assert_eq!(s.peak_rss_bytes, 52_428_800);
        assert_eq!(s.pool.unwrap().peak_bytes, 900);
        assert!(parse_summary(b"error: no such file").is_err());
        assert!(parse_summary(br#"{"cuts":[1]}"#).is_err(), "fields missing");
    }

    #[test]
    fn content_deltas_are_read_per_frame() {
        let jsonl = "{\"frame\":0,\"pts\":0.0,\"content_delta\":null,\"motion\":null}\n\
                     {\"frame\":1,\"pts\":0.033,\"content_delta\":1.25,\"motion\":0.5}\n\
                     \n\
                     {\"frame\":2,\"pts\":0.067,\"content_delta\":80.5}\n";
        let d = content_deltas(jsonl).unwrap();
        assert_eq!(
            d.into_iter().collect::<Vec<_>>(),
            vec![(1, 1.25), (2, 80.5)]
        );
        assert!(content_deltas("{\"frame\":\"x\"}").is_err());
    }
}
