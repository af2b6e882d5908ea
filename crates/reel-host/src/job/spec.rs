//! A job's description: what to read, which stages to run on every frame, where
//! the frames end, and how to schedule them. Every command builds one of these;
//! [`start`](super::start) runs any of them.

use std::path::PathBuf;
use std::time::Duration;

use reel_decode::{HwAccel, Sampling};
use reel_infer::{DeviceSpec, Precision};
use reel_sched::{ErrorPolicy, Mode, Skip};

use super::summary::SceneDetector;
use crate::plugins::LoadedPlugin;

/// Everything a job does, in one value (cheap to clone: batch jobs make one per
/// input from a template).
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The input: a file, a URL, or anything `reel_decode::open` takes.
    pub input: String,
    /// How to decode it.
    pub decode: DecodeRequest,
    /// The stages every frame goes through, in order.
    pub stages: Vec<StageRequest>,
    /// Encode the frames that leave the last stage into this file.
    pub video_out: Option<VideoOut>,
    /// What happens when a stage is slower than its input.
    pub mode: Mode,
    /// Frames the source leaves out while the pipeline is behind.
    pub skip: Skip,
    /// Adaptive quality: hold this output rate by lowering the decode size.
    pub target_fps: Option<f64>,
    /// The most workers a parallel stage may have.
    pub workers: usize,
    /// Whether the results cache may answer (and keep) this job: only analysis
    /// alone, of a local file, without loss, ever uses it.
    pub use_cache: bool,
    /// Read the input as a live stream (`reel live`): paced, connected again when
    /// lost, and reported with the live figures.
    pub live: Option<crate::live::LiveSpec>,
}

impl JobSpec {
    /// A job reading `input` through no stage at all, in quality mode, with the
    /// machine's cores as workers; add stages and sinks to it.
    pub fn new(input: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            decode: DecodeRequest::default(),
            stages: Vec::new(),
            video_out: None,
            mode: Mode::Quality,
            skip: Skip::None,
            target_fps: None,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            use_cache: true,
            live: None,
        }
    }

    /// The analysis stage, if the job has one.
    pub fn analysis(&self) -> Option<&AnalysisRequest> {
        self.stages.iter().find_map(|s| match s {
            StageRequest::Analysis(a) => Some(a),
            _ => None,
        })
    }

    /// The detection stage, if the job has one.
    pub fn detection(&self) -> Option<&DetectionRequest> {
        self.stages.iter().find_map(|s| match s {
            StageRequest::Detection(d) => Some(d),
            _ => None,
        })
    }
}

/// How to decode the input.
#[derive(Debug, Clone, Default)]
pub struct DecodeRequest {
    /// Hardware decoding.
    pub hwaccel: HwAccel,
    /// Which frames to decode (every Nth, a rate, a window).
    pub sampling: Sampling,
    /// The longest a network input may take to connect or answer a read; `None`
    /// leaves the decoder's default.
    pub network_timeout: Option<std::time::Duration>,
    /// Decode past corrupt frames (the decoder conceals them) instead of stopping
    /// at the first; the summary counts what was lost.
    pub keep_going: bool,
    /// The frame rate of an image sequence, which carries none; `None` is the
    /// decoder's default (25).
    pub sequence_fps: Option<f64>,
}

/// One stage of a job.
#[derive(Debug, Clone)]
pub enum StageRequest {
    /// Scene cuts and per-frame measurements.
    Analysis(AnalysisRequest),
    /// Objects found by a YOLOv8 model.
    Detection(DetectionRequest),
    /// A plugin loaded at run time.
    Plugin(PluginRequest),
}

/// The analysis stage.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisRequest {
    /// Analysis size; `None` picks the scene detector's usual reduced size.
    pub size: Option<(u32, u32)>,
    /// The scene detector.
    pub detector: SceneDetector,
    /// The content detector's threshold (the adaptive one's is its own default).
    pub threshold: f64,
    /// Shortest scene, in analysed frames.
    pub min_scene_len: u32,
}

impl Default for AnalysisRequest {
    /// The command-line contract's defaults.
    fn default() -> Self {
        Self {
            size: None,
            detector: SceneDetector::Content,
            threshold: crate::config::DEFAULT_THRESHOLD,
            min_scene_len: crate::config::DEFAULT_MIN_SCENE_LEN,
        }
    }
}

/// The detection stage.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionRequest {
    /// `yolov8n` … `yolov8x` (from the hub's cache) or a `.safetensors` path.
    pub model: String,
    /// Where the model runs.
    pub device: DeviceSpec,
    /// The precision it runs in (f16 and bf16 on GPUs only).
    pub precision: Precision,
    /// The largest batch.
    pub batch: usize,
    /// The longest a partial batch waits for more frames.
    pub batch_wait: Duration,
    /// The model's input size (square, a multiple of 32).
    pub imgsz: u32,
    /// Confidence threshold.
    pub conf: f32,
    /// IoU threshold of the suppression.
    pub iou: f32,
    /// Only these classes: COCO names or class numbers (empty: all).
    pub classes: Vec<String>,
    /// At most this many detections per frame.
    pub max_det: usize,
    /// Threads the CPU engine runs the model on (0: every core the process may
    /// use); GPUs ignore it.
    pub threads: usize,
}

impl DetectionRequest {
    /// The command-line contract's defaults for `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            device: DeviceSpec::Auto,
            precision: Precision::F32,
            batch: 8,
            batch_wait: Duration::from_millis(200),
            imgsz: 640,
            conf: 0.25,
            iou: 0.45,
            classes: Vec::new(),
            max_det: 300,
            threads: 0,
        }
    }
}

/// A plugin stage.
#[derive(Debug, Clone)]
pub struct PluginRequest {
    /// The plugin, loaded.
    pub plugin: LoadedPlugin,
    /// Its configuration (a JSON object's text).
    pub config: String,
    /// What its failure on a frame does.
    pub on_error: ErrorPolicy,
}

/// The processed video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOut {
    /// The file to write (the container follows the extension).
    pub path: PathBuf,
    /// libx264's constant rate factor (0 lossless … 51 worst).
    pub crf: u8,
}

impl VideoOut {
    /// `path` at libx264's default quality.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            crf: 23,
        }
    }
}
