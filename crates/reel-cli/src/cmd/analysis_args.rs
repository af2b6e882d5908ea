//! The analysis options `reel analyze` and `reel batch` share.

use reel_host::config::{Config, FrameSize, Settings};
use reel_host::job::{AnalysisRequest, SceneDetector};

use crate::cmd::values;

/// Which frames are analysed, at what size, and how cuts are decided.
#[derive(Debug, Clone, clap::Args)]
pub struct AnalysisArgs {
    /// Analyse one frame in N.
    #[arg(long, value_name = "N", conflicts_with = "sample_fps", value_parser = values::at_least_one::<u32>, allow_negative_numbers = true)]
    pub every: Option<u32>,
    /// Analyse at most F frames per second of video.
    #[arg(long, value_name = "F", value_parser = values::positive, allow_negative_numbers = true)]
    pub sample_fps: Option<f64>,
    /// Start at this time (seconds like 12.5, or [HH:]MM:SS[.s]); frames keep the
    /// video's own indices and times.
    #[arg(long, value_name = "TIME", value_parser = values::time)]
    pub start: Option<f64>,
    /// Stop before the first frame at or after this time (as --start).
    #[arg(long, value_name = "TIME", value_parser = values::time)]
    pub end: Option<f64>,
    /// Analysis size (default: the scene detector's usual reduced size).
    #[arg(long, value_name = "WxH")]
    pub size: Option<FrameSize>,
    /// Content detector threshold (default 27).
    #[arg(long, value_name = "T", value_parser = values::positive, allow_negative_numbers = true)]
    pub threshold: Option<f64>,
    /// Shortest scene, in frames (default 15).
    #[arg(long, value_name = "N", value_parser = values::at_least_one::<u32>, allow_negative_numbers = true)]
    pub min_scene_len: Option<u32>,
    /// Scene detector: content (HSV delta) or adaptive (ratio to the rolling mean).
    #[arg(long, value_name = "KIND", default_value = "content", value_parser = parse_detector)]
    pub detector: SceneDetector,
}

impl AnalysisArgs {
    /// Puts these flags into the command's `flags` (they layer over reel.toml).
    pub fn flags(&self, flags: &mut Config) {
        flags.analyze.size = self.size;
        flags.analyze.threshold = self.threshold;
        flags.analyze.min_scene_len = self.min_scene_len;
    }

    /// The analysis stage the effective settings describe.
    pub fn request(&self, settings: &Settings) -> AnalysisRequest {
        AnalysisRequest {
            size: settings.analyze.size.map(|s| (s.width, s.height)),
            detector: self.detector,
            threshold: settings.analyze.threshold,
            min_scene_len: settings.analyze.min_scene_len,
        }
    }

    /// The sampling these flags ask for (a window that holds no frame is a usage
    /// error).
    pub fn sampling(&self) -> anyhow::Result<reel_decode::Sampling> {
        values::window(self.start, self.end)?;
        Ok(reel_decode::Sampling {
            every: self.every.unwrap_or(1),
            fps: self.sample_fps,
            ..reel_decode::Sampling::all()
        }
        .between(self.start, self.end))
    }
}

fn parse_detector(s: &str) -> Result<SceneDetector, String> {
    match s {
        "content" => Ok(SceneDetector::Content),
        "adaptive" => Ok(SceneDetector::Adaptive),
        _ => Err(format!("unknown detector `{s}` (content or adaptive)")),
    }
}
