//! What a job reports: one summary type for every job, whatever its stages. The
//! sections of the stages a job did not run are left out of its JSON.

use std::collections::BTreeMap;

use reel_decode::VideoInfo;
use reel_pool::FramePool;
use reel_sched::Snapshot;
use serde::{Deserialize, Serialize};

use crate::plugins::PluginReport;

/// The video, as the summary describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSummary {
    /// Display width in pixels.
    pub width: u32,
    /// Display height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// Frames in the stream, when known.
    pub frames: Option<u64>,
    /// Duration in seconds, when known.
    pub duration_s: Option<f64>,
    /// Codec name.
    pub codec: String,
}

impl VideoSummary {
    /// The probe's facts, at the video's display size.
    pub fn of(info: &VideoInfo) -> Self {
        let (width, height) = info.display_size();
        Self {
            width,
            height,
            fps: info.fps,
            frames: info.frames,
            duration_s: info.duration_s,
            codec: info.codec.clone(),
        }
    }
}

/// One scene: from its first frame to its last, inclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// First frame (0-based).
    pub start_frame: u64,
    /// Last frame, inclusive.
    pub end_frame: u64,
    /// Start time in seconds: the first frame's presentation time.
    pub start_s: f64,
    /// End time in seconds: the next scene's start, or the end of the last frame.
    pub end_s: f64,
}

/// The frame pool's figures for the run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PoolSummary {
    /// The pool's byte budget.
    pub budget_bytes: u64,
    /// The most bytes in use at once.
    pub peak_bytes: u64,
    /// Buffers served from the free lists.
    pub hits: u64,
    /// Buffers that had to be allocated.
    pub misses: u64,
}

impl PoolSummary {
    /// `pool`'s figures now.
    pub fn of(pool: &FramePool) -> Self {
        let s = pool.stats();
        Self {
            budget_bytes: s.budget_bytes as u64,
            peak_bytes: s.peak_bytes as u64,
            hits: s.hits,
            misses: s.misses,
        }
    }
}

/// Whether the result came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// Served from the cache.
    Hit,
    /// Analysed (and stored when the run completed).
    Miss,
    /// The cache was not used.
    Off,
}

/// Which scene detector ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SceneDetector {
    /// Fixed threshold on the HSV delta between consecutive frames.
    #[default]
    Content,
    /// Threshold on the ratio of a frame's delta to its neighbours' mean.
    Adaptive,
}

impl SceneDetector {
    /// The name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            SceneDetector::Content => "content",
            SceneDetector::Adaptive => "adaptive",
        }
    }
}

/// The analysis stage's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSummary {
    /// The size frames were analysed at.
    pub analysis_size: [u32; 2],
    /// The scene detector.
    pub detector: SceneDetector,
    /// Frames analysed (one line each).
    pub frames_analyzed: u64,
    /// The first frame of every scene but the first.
    pub cuts: Vec<u64>,
    /// The scenes the cuts delimit.
    pub scenes: Vec<Scene>,
}

/// The model, as the summary describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// As asked for: a name or a path.
    pub name: String,
    /// The weights file.
    pub path: String,
    /// `yolov8n` … `yolov8x`.
    pub variant: String,
    /// Classes it predicts.
    pub classes: usize,
    /// Input size.
    pub imgsz: u32,
    /// Precision.
    pub precision: String,
}

/// Batching figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchSummary {
    /// The batch asked for (lowered to what the pool budget holds).
    pub requested: usize,
    /// The ceiling at the end (lower than asked after out-of-memory splits).
    pub ceiling: usize,
    /// Forward passes run.
    pub batches: u64,
    /// Batches that ran out of memory and were split.
    pub oom_splits: u64,
}

/// The detection stage's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionSummary {
    /// The model.
    pub model: ModelSummary,
    /// Where it ran: `cpu`, `cuda:0`, `metal:0`.
    pub device: String,
    /// What ran the convolutions: the CPU engine's kernels (`avx512`, `avx2`,
    /// `portable`) or `candle` (GPUs, or when asked for).
    #[serde(default)]
    pub kernels: String,
    /// Threads the CPU engine ran on (absent on a GPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Detections in all, the plugins' included.
    pub detections: u64,
    /// Detections per label.
    pub counts: BTreeMap<String, u64>,
    /// Batching.
    pub batch: BatchSummary,
    /// The pool the model's input tensors come from.
    pub input_pool: PoolSummary,
}

/// One stage of the pipeline, as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    /// The stage's name (`analyze`, `detect`, `plugin:NAME`).
    pub name: String,
    /// Frames it received.
    pub frames_in: u64,
    /// Frames its input queue's policy dropped.
    pub dropped: u64,
    /// The most workers it had at once (1 for a sequential stage).
    pub peak_workers: usize,
    /// The most workers it may have: the job's `workers` for a parallel stage.
    pub max_workers: usize,
    /// Seconds spent in its calls, summed over workers.
    pub busy_s: f64,
}

/// The summary of any job: the video, what each stage found, and how the run went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The input as given.
    pub input: String,
    /// What the video is.
    pub video: VideoSummary,
    /// The decoder that read the video: backend and codec (`libav h264`, `ffmpeg
    /// h264`, `ffmpeg h264 (cuda)`, `synthetic …`).
    #[serde(default)]
    pub decoder: String,
    /// The scheduling mode (`quality`, `batch`, `realtime`, `balanced`).
    #[serde(default)]
    pub mode: String,
    /// Frames the decoder produced, those the sampling left out included.
    pub frames_decoded: u64,
    /// Decoding errors passed over (`--keep-going`): corrupt frames the decoder
    /// concealed or lost.
    #[serde(default)]
    pub decode_errors: u64,
    /// Frames that reached the end of the pipeline (one result line each).
    pub frames: u64,
    /// Frames the mode's queues dropped to keep up (realtime and balanced modes).
    #[serde(default)]
    pub dropped: u64,
    /// Frames the adaptive skip left out while the pipeline was behind.
    #[serde(default)]
    pub skipped: u64,
    /// The analysis, when the job ran one.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSummary>,
    /// The detection, when the job ran one.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<DetectionSummary>,
    /// Each plugin's counters.
    #[serde(default)]
    pub plugins: Vec<PluginReport>,
    /// The pipeline's stages.
    #[serde(default)]
    pub stages: Vec<StageSummary>,
    /// The processed video, when one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_out: Option<String>,
    /// A live job's figures (its `dropped` above counts every reason: queue, stale
    /// and skip).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub live: Option<crate::live::LiveSummary>,
    /// Wall-clock seconds, model loading included.
    pub wall_s: f64,
    /// Frames per second of wall-clock time.
    pub fps: f64,
    /// Peak resident set of this process, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Frame pool figures.
    pub pool: PoolSummary,
    /// Whether the cache answered.
    pub cache: CacheStatus,
    /// True when the run was stopped before the end.
    #[serde(default)]
    pub interrupted: bool,
    /// Why the run failed, when it did (the summary is then what was found before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobSummary {
    /// Frames per second of `frames` over `wall_s` (0 for no time).
    pub(crate) fn rate(frames: u64, wall_s: f64) -> f64 {
        if wall_s > 0.0 {
            frames as f64 / wall_s
        } else {
            0.0
        }
    }
}

/// The pipeline's stages from its final metrics; `max_workers` is the job's bound
/// for the parallel ones.
pub(crate) fn stages_of(metrics: &Snapshot, max_workers: usize) -> Vec<StageSummary> {
    metrics
        .stages
        .iter()
        .map(|s| StageSummary {
            name: s.name.to_string(),
            frames_in: s.frames_in,
            dropped: s.dropped,
            peak_workers: s.peak_workers,
            max_workers: if s.parallel { max_workers } else { 1 },
            busy_s: s.busy.as_secs_f64(),
        })
        .collect()
}

/// Scenes from the cuts (with the presentation time of each cut's frame) for a
/// stream whose analysed frames begin with `first` (its index and time: a window
/// or a seek starts past frame 0) and end at `end` (one past the last index), the
/// last one ending at `end_s`.
pub(crate) fn scenes(cuts: &[(u64, f64)], first: (u64, f64), end: u64, end_s: f64) -> Vec<Scene> {
    if end == 0 {
        return Vec::new();
    }
    let mut starts = vec![first];
    starts.extend(
        cuts.iter()
            .copied()
            .filter(|&(c, _)| c > first.0 && c < end),
    );
    starts
        .iter()
        .enumerate()
        .map(|(i, &(start, start_s))| {
            let (next, next_s) = starts.get(i + 1).copied().unwrap_or((end, end_s));
            Scene {
                start_frame: start,
                end_frame: next - 1,
                start_s,
                end_s: next_s,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_follow_the_cuts_and_their_times() {
        let s = scenes(&[(10, 1.0), (25, 2.5)], (0, 0.0), 40, 4.0);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].start_frame, s[0].end_frame), (0, 9));
        assert_eq!((s[1].start_frame, s[1].end_frame), (10, 24));
        assert_eq!((s[2].start_frame, s[2].end_frame), (25, 39));
        assert_eq!((s[0].end_s, s[1].start_s), (1.0, 1.0));
        assert_eq!((s[2].start_s, s[2].end_s), (2.5, 4.0));
        assert!(scenes(&[], (0, 0.0), 0, 0.0).is_empty());
        // Times are the frames' own, however irregular.
        let s = scenes(&[(150, 10.0)], (0, 0.0), 200, 12.0);
        assert_eq!(s[1].start_s, 10.0);
        // A window's first scene starts at its first frame.
        let s = scenes(&[(150, 10.0)], (120, 8.0), 200, 12.0);
        assert_eq!((s[0].start_frame, s[0].start_s), (120, 8.0));
        assert_eq!(s[0].end_frame, 149);
    }
}
