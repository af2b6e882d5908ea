//! The detect job: decode in RGB at the video's own size → [`DetectStage`] (frames
//! batched through a shared YOLOv8 [`Detector`]) → a sink that streams one JSON
//! line per frame with its detections, in the original frame's pixels, flushed as
//! each batch finishes.
//!
//! Quality mode: no frame is dropped. A batch that runs out of memory is split and
//! the batch ceiling lowered; the summary counts those events. The job reports
//! progress through a callback and stops early when its [`CancelFlag`] is raised.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reel_decode::{DecodeError, DecodeOptions, HwAccel, Sampling};
use reel_frame::{Frame, PixelFormat};
use reel_infer::{
    DetectConfig, DetectStage, Detector, DeviceSpec, HubOptions, InferError, ModelManager,
    ModelRequest, ModelSource, PostConfig, Precision, coco_class_id,
};
use reel_pool::{FramePool, MemoryMonitor};
use reel_sched::{Mode, Pipeline, Sink, StageError, StageSpec};
use serde::{Deserialize, Serialize};

use crate::analyze::{CancelFlag, PoolSummary, Progress, VideoSummary};
use crate::job;
use crate::lines::{LineOut, json_number};

/// What to detect in and how.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// The input: a file, a URL, or any input `reel_decode::open` takes.
    pub input: String,
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
    /// Detect in one frame in this many (0 and 1: all).
    pub every: u32,
    /// The model's input size (square, a multiple of 32).
    pub imgsz: u32,
    /// Confidence threshold.
    pub conf: f32,
    /// IoU threshold of the suppression.
    pub iou: f32,
    /// Only these classes: COCO names or class numbers.
    pub classes: Vec<String>,
    /// At most this many detections per frame.
    pub max_det: usize,
    /// Hardware decoding.
    pub hwaccel: HwAccel,
    /// Byte budget of the frame pool (raised when a batch of frames would not fit).
    pub pool_budget_bytes: u64,
}

impl DetectOptions {
    /// The defaults of the command-line contract.
    pub fn new(input: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            model: model.into(),
            device: DeviceSpec::Auto,
            precision: Precision::F32,
            batch: 8,
            batch_wait: Duration::from_millis(200),
            every: 1,
            imgsz: 640,
            conf: 0.25,
            iou: 0.45,
            classes: Vec::new(),
            max_det: 300,
            hwaccel: HwAccel::default(),
            pool_budget_bytes: 256 << 20,
        }
    }

    /// The class filter as class numbers.
    fn class_ids(&self) -> Result<Option<Vec<u32>>, DetectError> {
        if self.classes.is_empty() {
            return Ok(None);
        }
        self.classes
            .iter()
            .map(|c| {
                coco_class_id(c)
                    .or_else(|| c.trim().parse().ok())
                    .ok_or_else(|| {
                        DetectError::Options(format!(
                            "unknown class `{c}`: a COCO class name (person, car, …) or a class number"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// Errors of the detect job.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The input could not be opened or decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The model could not be had or loaded.
    #[error(transparent)]
    Model(#[from] InferError),
    /// An option is out of range.
    #[error("{0}")]
    Options(String),
    /// The pipeline stopped on an error (decoding, inference, or writing results).
    #[error("detection in {input} stopped: {message}")]
    Pipeline {
        /// The input.
        input: String,
        /// What went wrong, with the stage and frame.
        message: String,
        /// What was found up to the error.
        partial: Box<DetectSummary>,
    },
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
    /// The batch asked for.
    pub requested: usize,
    /// The ceiling at the end (lower than asked after out-of-memory splits).
    pub ceiling: usize,
    /// Forward passes run.
    pub batches: u64,
    /// Batches that ran out of memory and were split.
    pub oom_splits: u64,
}

/// The summary of a detection run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectSummary {
    /// The input as given.
    pub input: String,
    /// What the video is.
    pub video: VideoSummary,
    /// The model.
    pub model: ModelSummary,
    /// Where it ran: `cpu`, `cuda:0`, `metal:0`.
    pub device: String,
    /// Frames the decoder delivered.
    pub frames_decoded: u64,
    /// Frames detected in (one line each).
    pub frames: u64,
    /// Detections in all.
    pub detections: u64,
    /// Detections per label.
    pub counts: BTreeMap<String, u64>,
    /// Batching.
    pub batch: BatchSummary,
    /// Wall-clock seconds, model loading included.
    pub wall_s: f64,
    /// Frames per second of wall-clock time.
    pub fps: f64,
    /// Peak resident set of this process, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Frame pool figures.
    pub pool: PoolSummary,
    /// The pool the model's input tensors come from.
    pub input_pool: PoolSummary,
    /// True when the run was stopped before the end.
    #[serde(default)]
    pub interrupted: bool,
}

/// Where results go.
pub struct DetectIo<'a> {
    /// Receives one JSON line per frame; `None` to keep only the summary.
    pub out: Option<Box<dyn Write + Send>>,
    /// Loads models; `None`: a manager of the job's own, checking this machine's
    /// memory and fetching named models as `HF_HOME` and `HF_ENDPOINT` say.
    pub models: Option<&'a ModelManager>,
    /// Called about ten times a second with the pipeline's figures and the number
    /// of frames expected, when known.
    pub progress: Option<&'a mut Progress<'a>>,
    /// Stops the run when raised.
    pub cancel: CancelFlag,
}

impl std::fmt::Debug for DetectIo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectIo")
            .field("out", &self.out.is_some())
            .finish_non_exhaustive()
    }
}

/// Runs detection on `opts.input`.
///
/// Returns the summary; an interrupted run returns its partial summary with
/// `interrupted` set. A failure mid-stream returns [`DetectError::Pipeline`]
/// carrying what was found; every line written before it stays valid.
pub fn run(opts: &DetectOptions, mut io: DetectIo<'_>) -> Result<DetectSummary, DetectError> {
    let started = Instant::now();
    if opts.batch == 0 {
        return Err(DetectError::Options("--batch must be at least 1".into()));
    }
    let config = DetectConfig {
        imgsz: opts.imgsz,
        post: PostConfig {
            conf: opts.conf,
            iou: opts.iou,
            classes: opts.class_ids()?,
            max_det: opts.max_det,
        },
    };
    config.validate()?;
    let source = ModelSource::parse(&opts.model)?;

    let base = DecodeOptions::default().with_hwaccel(opts.hwaccel);
    let info = reel_decode::probe(&opts.input, &base)?;
    let (dw, dh) = info.display_size();

    let own;
    let models = match io.models {
        Some(m) => m,
        None => {
            let monitor = MemoryMonitor::manual(reel_pool::monitor::MonitorConfig::default());
            own = ModelManager::new(Some(Arc::new(monitor)), HubOptions::from_env());
            &own
        }
    };
    let model = models.get(&ModelRequest {
        source,
        device: opts.device,
        precision: opts.precision,
    })?;
    let model_summary = ModelSummary {
        name: opts.model.clone(),
        path: model.path.display().to_string(),
        variant: model.net.variant().to_string(),
        classes: model.net.num_classes(),
        imgsz: opts.imgsz,
        precision: model.precision.to_string(),
    };
    let device = model.device.clone();
    let detector = Arc::new(Detector::new(model, config, opts.batch)?);

    // The frames of a batch are all held at once: the pool must hold a batch and
    // the queues around it, or batches would only ever run on their timeout.
    let frame_bytes = PixelFormat::Rgb24
        .frame_size(dw, dh)
        .ok_or_else(|| DetectError::Options(format!("{dw}x{dh} is not a valid frame size")))?;
    let needed = (opts.batch + 2 * Mode::Quality.queue_capacity() + 2) * frame_bytes;
    let budget = usize::try_from(opts.pool_budget_bytes)
        .unwrap_or(usize::MAX)
        .max(needed);
    let pool = FramePool::with_budget(budget);
    let decode = base
        .with_format(PixelFormat::Rgb24)
        .with_sampling(Sampling {
            every: opts.every,
            ..Sampling::all()
        });
    let frames = reel_decode::open(&opts.input, &decode, &pool)?;
    let expected = job::source_frames(&info).map(|n| n.div_ceil(u64::from(opts.every.max(1))));

    let shared = Arc::new(Mutex::new(SinkState::default()));
    let sink = DetsSink {
        out: LineOut::new(io.out.take(), "detection lines"),
        state: Arc::clone(&shared),
        line: String::with_capacity(1024),
    };
    let stats = detector.stats();
    let handle = Pipeline::new(frames, sink)
        .mode(Mode::Quality)
        .stage(StageSpec::sequential(DetectStage::new(
            Arc::clone(&detector),
            opts.batch_wait,
        )))
        .spawn();
    let report = job::watch(handle, &io.cancel, io.progress.take(), expected);
    let interrupted = report.is_cancelled();
    let state = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
    if let Some(e) = &state.error {
        tracing::warn!(error = %e, "detection lines could not be written");
    }
    let batches = stats.report();
    let wall_s = started.elapsed().as_secs_f64();
    let summary = DetectSummary {
        input: opts.input.clone(),
        video: VideoSummary::of(&info),
        model: model_summary,
        device,
        frames_decoded: report.metrics.frames_in,
        frames: state.lines,
        detections: state.counts.values().sum(),
        counts: state.counts,
        batch: BatchSummary {
            requested: opts.batch,
            ceiling: batches.ceiling,
            batches: batches.batches,
            oom_splits: batches.oom_splits,
        },
        wall_s,
        fps: if wall_s > 0.0 {
            state.lines as f64 / wall_s
        } else {
            0.0
        },
        peak_rss_bytes: reel_pool::peak_rss_bytes(),
        pool: PoolSummary::of(&pool),
        input_pool: PoolSummary::of(detector.input_pool()),
        interrupted,
    };
    if let Some(error) = report.error() {
        return Err(DetectError::Pipeline {
            input: opts.input.clone(),
            message: error.to_string(),
            partial: Box::new(summary),
        });
    }
    Ok(summary)
}

#[derive(Default)]
struct SinkState {
    lines: u64,
    counts: BTreeMap<String, u64>,
    error: Option<String>,
}

/// Writes one JSON line per frame, whole and flushed, and counts labels.
struct DetsSink {
    out: LineOut,
    state: Arc<Mutex<SinkState>>,
    line: String,
}

impl DetsSink {
    fn format(&mut self, frame: &Frame) {
        self.line.clear();
        let _ = write!(
            self.line,
            "{{\"frame\":{},\"pts\":{},\"detections\":[",
            frame.index,
            json_number(frame.pts)
        );
        for (i, d) in frame.meta.detections.iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            let label = serde_json::to_string(d.label.as_str()).unwrap_or_else(|_| "\"\"".into());
            let b = d.bbox;
            let _ = write!(
                self.line,
                "{{\"class_id\":{},\"label\":{label},\"conf\":{},\"box\":[{},{},{},{}]}}",
                d.class_id,
                json_number(f64::from(d.conf)),
                json_number(f64::from(b.x1)),
                json_number(f64::from(b.y1)),
                json_number(f64::from(b.x2)),
                json_number(f64::from(b.y2)),
            );
        }
        self.line.push_str("]}");
    }
}

impl Sink for DetsSink {
    fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
        self.format(&frame);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for d in &frame.meta.detections {
            if let Some(n) = state.counts.get_mut(d.label.as_str()) {
                *n += 1;
            } else {
                state.counts.insert(d.label.as_str().to_string(), 1);
            }
        }
        drop(frame);
        if let Err(e) = self.out.write_line(&mut self.line) {
            state.error = Some(e.to_string());
            return Err(e);
        }
        state.lines += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), StageError> {
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reel_frame::{BBox, Detection, Label};

    #[test]
    fn classes_by_name_or_number() {
        let mut o = DetectOptions::new("x", "yolov8n");
        assert_eq!(o.class_ids().unwrap(), None);
        o.classes = vec!["person".into(), "Car".into(), "7".into()];
        assert_eq!(o.class_ids().unwrap(), Some(vec![0, 2, 7]));
        o.classes = vec!["unicorn".into()];
        assert!(o.class_ids().unwrap_err().to_string().contains("unicorn"));
    }

    #[test]
    fn a_line_is_the_contract_json() {
        let pool = FramePool::with_budget(1 << 20);
        let buf = pool.acquire(12).unwrap();
        let mut frame = Frame::new(buf, PixelFormat::Rgb24, 2, 2, 7, 0.28).unwrap();
        frame.meta.detections.push(Detection {
            class_id: 0,
            label: Label::new("person"),
            conf: 0.5,
            bbox: BBox::new(1.0, 2.5, 30.0, 40.0),
        });
        let mut sink = DetsSink {
            out: LineOut::new(None, "detection lines"),
            state: Arc::new(Mutex::new(SinkState::default())),
            line: String::new(),
        };
        sink.format(&frame);
        let v: serde_json::Value = serde_json::from_str(&sink.line).unwrap();
        assert_eq!(v["frame"], 7);
        assert_eq!(v["pts"], 0.28);
        let d = &v["detections"][0];
        assert_eq!(d["label"], "person");
        assert_eq!(d["class_id"], 0);
        assert_eq!(d["conf"], 0.5);
        let b: Vec<f64> = d["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(b, [1.0, 2.5, 30.0, 40.0]);
    }
}
