//! Running a job: from its description to a pipeline over the shared resources
//! (or an answer from the cache), and from the pipeline's report to the summary.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use reel_decode::ffmpeg::{EncoderOptions, FfmpegEncoder};
use reel_decode::{Backend, DecodeOptions, Sampling, Scaler, VideoInfo};
use reel_frame::PixelFormat;
use reel_infer::{
    DetectConfig, DetectStage, Detector, ModelRequest, ModelSource, PostConfig, coco_class_id,
};
use reel_ops::scene::auto_downscale_size;
use reel_pool::FramePool;
use reel_sched::{
    CancelToken, Mode, Pipeline, PipelineHandle, QualityConfig, QualityController, QualityKnob,
    QueuePolicy, Report, Snapshot, StageSpec,
};

use super::error::JobError;
use super::resources::Resources;
use super::spec::{AnalysisRequest, DetectionRequest, JobSpec, PluginRequest, StageRequest};
use super::summary::{
    AnalysisSummary, BatchSummary, CacheStatus, DetectionSummary, JobSummary, ModelSummary,
    PoolSummary, VideoSummary, scenes, stages_of,
};
use crate::cache::{Cache, EntryWriter, FileIdentity};
use crate::live::{LiveSource, LiveStats, LiveSummary};
use crate::plugins::{PluginStage, StatsHandle};
use crate::sinks::lines::{LineOut, LineShape};
use crate::sinks::{Gathered, JobSink};
use crate::stages::analysis::{self, AnalysisStage};

/// The version of the result format; part of every cache key, so that a change of
/// format never serves old results.
const FORMAT_VERSION: u32 = 3;

/// Where a job's results go besides its summary, and what stops it.
#[derive(Default)]
pub struct JobIo {
    /// Receives one JSON line per frame that leaves the pipeline; `None` to keep
    /// only the summary.
    pub lines: Option<Box<dyn Write + Send>>,
    /// Stops the job when cancelled (and every other job attached to it).
    pub cancel: Option<CancelToken>,
}

impl std::fmt::Debug for JobIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobIo")
            .field("lines", &self.lines.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// A job under way (or already answered by the cache).
pub struct RunningJob {
    state: State,
}

enum State {
    /// Answered without a pipeline.
    Done(Box<JobSummary>),
    Running(Box<Running>),
}

/// What the summary needs once the pipeline ends.
struct Running {
    handle: PipelineHandle<JobSink>,
    input: String,
    mode: Mode,
    workers: usize,
    info: VideoInfo,
    decoder: String,
    analysis: Option<(AnalysisRequest, (u32, u32))>,
    detection: Option<Detection>,
    plugins: Vec<StatsHandle>,
    pool: FramePool,
    started: Instant,
    cache_status: CacheStatus,
    video_out: Option<String>,
    expected: Option<u64>,
    decode_counts: Option<reel_decode::DecodeCounts>,
    live: Option<Live>,
}

/// A live job's side: its figures and the token that stops its waits.
struct Live {
    stats: LiveStats,
    cancel: CancelToken,
    in_flight_bound: usize,
}

struct Detection {
    model: ModelSummary,
    device: String,
    kernels: String,
    detector: Arc<Detector>,
    requested: usize,
}

impl std::fmt::Debug for RunningJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            State::Done(s) => f
                .debug_struct("RunningJob")
                .field("done", &s.input)
                .finish(),
            State::Running(r) => f
                .debug_struct("RunningJob")
                .field("input", &r.input)
                .field("handle", &r.handle)
                .finish(),
        }
    }
}

impl RunningJob {
    /// The pipeline's figures now (`None` for a job answered by the cache).
    pub fn metrics(&self) -> Option<Snapshot> {
        match &self.state {
            State::Done(_) => None,
            State::Running(r) => Some(r.handle.metrics()),
        }
    }

    /// The frames the job should deliver, when the probe knows.
    pub fn expected_frames(&self) -> Option<u64> {
        match &self.state {
            State::Done(s) => Some(s.frames),
            State::Running(r) => r.expected,
        }
    }

    /// Whether the job has ended ([`join`](Self::join) returns at once).
    pub fn is_finished(&self) -> bool {
        match &self.state {
            State::Done(_) => true,
            State::Running(r) => r.handle.is_finished(),
        }
    }

    /// Stops reading the input; what is in flight is finished and reported.
    pub fn cancel(&self) {
        if let State::Running(r) = &self.state {
            match &r.live {
                // The live source's waits (pacing, backoff) follow the token.
                Some(live) => live.cancel.cancel(),
                None => r.handle.cancel(),
            }
        }
    }

    /// A live job's figures now (`None` for any other job).
    pub fn live(&self) -> Option<LiveSummary> {
        match &self.state {
            State::Running(r) => r
                .live
                .as_ref()
                .map(|l| LiveSummary::of(&r.handle.metrics(), &l.stats)),
            State::Done(_) => None,
        }
    }

    /// A live job's source-side figures (reconnects, whether it is connected now),
    /// shared with the running source; `None` for any other job.
    pub fn live_stats(&self) -> Option<LiveStats> {
        match &self.state {
            State::Running(r) => r.live.as_ref().map(|l| l.stats.clone()),
            State::Done(_) => None,
        }
    }

    /// The most frames a live job can hold at once (`None` for any other job).
    pub fn in_flight_bound(&self) -> Option<usize> {
        match &self.state {
            State::Running(r) => r.live.as_ref().map(|l| l.in_flight_bound),
            State::Done(_) => None,
        }
    }

    /// Waits for the job to end and summarises it. An interrupted job returns its
    /// partial summary with `interrupted` set; a failure mid-stream is
    /// [`JobError::Failed`], carrying what was found (every line written before it
    /// stays valid).
    pub fn join(self) -> Result<JobSummary, JobError> {
        match self.state {
            State::Done(summary) => Ok(*summary),
            State::Running(r) => r.finish(),
        }
    }
}

/// Starts `spec` on `resources`: answers it from the cache when it can, else
/// probes the input, loads what the stages need, opens the decoder at the size and
/// in the format the stages need, and starts the pipeline. Errors here (a missing
/// input, a model that cannot be loaded, options out of range) come before any
/// frame is read.
pub fn start(spec: JobSpec, resources: &Resources, mut io: JobIo) -> Result<RunningJob, JobError> {
    let started = Instant::now();
    validate(&spec)?;

    // The cache: analysis alone, without loss, of a local file.
    let cacheable = spec.use_cache
        && spec.live.is_none()
        && spec.video_out.is_none()
        && spec.stages.len() == 1
        && spec.analysis().is_some()
        && lossless(&spec)
        && Path::new(&spec.input).is_file();
    let cache = resources.cache().filter(|_| cacheable);
    let (key, identity) = match cache {
        Some(_) => (cache_key(&spec), Some(FileIdentity::of(&spec.input)?)),
        None => (String::new(), None),
    };
    let mut usable = true;
    if let (Some(cache), Some(id)) = (cache, &identity) {
        match from_cache(cache, id, &key, &spec, &mut io, resources, started)? {
            Lookup::Hit(summary) => {
                return Ok(RunningJob {
                    state: State::Done(summary),
                });
            }
            Lookup::Miss => {}
            Lookup::Damaged => usable = false,
        }
    }
    // The cache is an optimisation: when it cannot take the results (a full disk, a
    // damaged database), the job runs without it.
    let writer: Option<EntryWriter> = match (cache, &identity) {
        (Some(cache), Some(id)) if usable => cache
            .writer(id, &key)
            .inspect_err(|e| tracing::warn!("{e}; the results will not be cached"))
            .ok(),
        _ => None,
    };
    let cache_status = if writer.is_some() {
        CacheStatus::Miss
    } else {
        CacheStatus::Off
    };

    let mut base = DecodeOptions::default().with_hwaccel(spec.decode.hwaccel);
    if let Some(t) = spec.decode.network_timeout {
        base.limits.network_timeout = t;
    }
    base.strict = !spec.decode.keep_going;
    if let Some(fps) = spec.decode.sequence_fps {
        base.sequence_fps = fps;
    }
    // A live stream is probed when it connects (it may not be there yet, and a
    // probe would take frames from a pipe); files and synthetic sources now.
    // (A stream encoded to a video out is probed now: the encoder needs its size.)
    let streamed =
        spec.live.is_some() && !crate::live::is_paced(&spec.input) && spec.video_out.is_none();
    let info = if streamed {
        pending_info(&spec.input)
    } else {
        reel_decode::probe(&spec.input, &base)?
    };
    let (dw, dh) = if streamed {
        // Unknown until connected: only the analysis size and the batch ceiling
        // depend on it, and those take a 720p stream's.
        (1280, 720)
    } else {
        info.display_size()
    };

    // The size and format the stages need decide the decode. Analysis alone
    // decodes at the analysis size; anything that needs the whole picture
    // (detection, plugins, the video out) gets it, and the analysis reduces its
    // own copy.
    let analysis = spec.analysis().map(|a| {
        (
            a.clone(),
            a.size.unwrap_or_else(|| auto_downscale_size(dw, dh)),
        )
    });
    if let Some((_, (w, h))) = &analysis
        && (*w == 0 || *h == 0)
    {
        return Err(JobError::Options(format!(
            "the analysis size must not be zero, not {w}x{h}"
        )));
    }
    let analysis_only = spec.stages.len() == 1 && analysis.is_some() && spec.video_out.is_none();
    let (format, size) = match &analysis {
        Some((a, size)) if analysis_only => (analysis::config(a).preferred_format(), *size),
        _ => (whole_frame_format(&spec)?, (dw, dh)),
    };
    // A stream's whole frames come at its own size, known once it connects.
    let decode_size = (analysis_only || !streamed).then_some(size);
    let pool = resources.pool().clone();
    let frame_bytes = format.frame_size(size.0, size.1).ok_or_else(|| {
        JobError::Options(format!("{}x{} is not a valid frame size", size.0, size.1))
    })?;
    let budget = pool.stats().effective_budget_bytes;
    if frame_bytes > budget {
        return Err(JobError::Options(format!(
            "the memory budget ({}) is smaller than one {}x{} {} frame ({}): raise --max-memory",
            bytesize::ByteSize::b(budget as u64).display().si(),
            size.0,
            size.1,
            format,
            bytesize::ByteSize::b(frame_bytes as u64).display().si(),
        )));
    }

    // Adaptive quality: one scale for the decode size and the model's input.
    let knob = spec.target_fps.map(|_| QualityKnob::new(1.0));

    // Detection: the model (loaded once per process) and this job's detector.
    let mut stages = Vec::with_capacity(spec.stages.len());
    let mut detection = None;
    let mut plugins = Vec::new();
    for request in &spec.stages {
        match request {
            StageRequest::Analysis(a) => {
                let size = analysis.as_ref().map_or(size, |(_, s)| *s);
                stages.push(StageSpec::sequential(AnalysisStage::new(
                    analysis::config(a),
                    size,
                )));
            }
            StageRequest::Detection(d) => {
                let (stage, found) =
                    detect_stage(d, resources, &spec, frame_bytes, budget, knob.as_ref())?;
                stages.push(stage);
                detection = Some(found);
            }
            StageRequest::Plugin(p) => {
                let (stage, stats) = plugin_stage(p, spec.workers)?;
                plugins.push(stats);
                stages.push(stage);
            }
        }
    }

    let mut decode = base
        .with_format(format)
        // In process when the build can: no second process, no pipe.
        .with_backend(Backend::Libav)
        .with_sampling(spec.decode.sampling);
    if analysis_only && let Some(size) = decode_size {
        // Bilinear costs the child decoder less than ffmpeg's default bicubic when
        // it downsizes, and keeps fine patterns apart better; fast bilinear is
        // cheaper still but aliases them into false cuts.
        decode = decode
            .with_size(size.0, size.1)
            .with_scaler(Scaler::Bilinear);
    }
    if let Some(knob) = &knob
        && !(spec.live.is_some() && crate::live::is_network(&spec.input))
    {
        // A network stream's decoder cannot restart at another size without
        // connecting again, so its scale stays.
        decode = decode.with_scale(knob.clone());
    }
    let video = match &spec.video_out {
        Some(out) => {
            let mut opts =
                EncoderOptions::new(size.0, size.1, out_fps(&info, &spec.decode.sampling));
            opts.format = format;
            opts.crf = out.crf;
            opts.hwaccel = spec.decode.hwaccel;
            Some(FfmpegEncoder::create(&out.path, opts)?)
        }
        None => None,
    };
    let live_token = spec
        .live
        .as_ref()
        .map(|_| io.cancel.clone().unwrap_or_default());
    let live_stats = spec.live.as_ref().map(|_| LiveStats::default());
    let (source, decoder, expected, decode_counts): (Box<dyn reel_sched::Source>, _, _, _) =
        match (&spec.live, &live_token, &live_stats) {
            (Some(live), Some(token), Some(stats)) => {
                let source = LiveSource::new(
                    &spec.input,
                    decode,
                    &pool,
                    live.clone(),
                    stats.clone(),
                    token.clone(),
                )?;
                let source: Box<dyn reel_sched::Source> = Box::new(source);
                (source, "live".to_string(), None, None)
            }
            _ => {
                let source = reel_decode::open(&spec.input, &decode, &pool)?;
                let decoder = {
                    let d = &source.info().decoder;
                    format!("{} {}", d.backend, d.name)
                };
                let counts = source.counts();
                let source: Box<dyn reel_sched::Source> = source;
                (
                    source,
                    decoder,
                    expected_frames(&info, &spec.decode.sampling),
                    counts,
                )
            }
        };

    let shape = LineShape {
        measurements: analysis.is_some(),
        detections: detection.is_some() || !plugins.is_empty(),
    };
    let sink = JobSink::new(
        LineOut::new(io.lines.take(), "result lines"),
        shape,
        writer,
        video,
    )
    .with_live(live_stats.clone());
    let mut pipeline = Pipeline::new(source, sink).mode(spec.mode).skip(spec.skip);
    // A live job's staleness limit is every balanced queue's.
    let stale = spec
        .live
        .as_ref()
        .and_then(|l| l.max_staleness)
        .filter(|_| spec.mode == Mode::Balanced)
        .map(QueuePolicy::BlockFor);
    for stage in stages {
        pipeline = pipeline.stage(match stale {
            Some(policy) => stage.queue(policy),
            None => stage,
        });
    }
    if let Some(policy) = stale {
        pipeline = pipeline.sink_queue(policy);
    }
    if let (Some(fps), Some(knob)) = (spec.target_fps, knob) {
        pipeline = pipeline.adaptive_quality(QualityController::new(QualityConfig::new(fps), knob));
    }
    if let Some(token) = live_token.as_ref().or(io.cancel.as_ref()) {
        pipeline = pipeline.cancel_on(token);
    }
    let live = match (live_stats, live_token) {
        (Some(stats), Some(cancel)) => Some(Live {
            stats,
            cancel,
            in_flight_bound: pipeline.in_flight_bound(),
        }),
        _ => None,
    };
    let handle = pipeline.spawn();
    Ok(RunningJob {
        state: State::Running(Box::new(Running {
            handle,
            input: spec.input.clone(),
            mode: spec.mode,
            workers: spec.workers,
            info,
            decoder,
            analysis,
            detection,
            plugins,
            pool,
            started,
            cache_status,
            video_out: spec
                .video_out
                .as_ref()
                .map(|v| v.path.display().to_string()),
            expected,
            decode_counts,
            live,
        })),
    })
}

/// What is known of a live stream before it connects: its name alone.
fn pending_info(input: &str) -> VideoInfo {
    VideoInfo {
        input: input.to_string(),
        container: None,
        codec: String::new(),
        pixel_format: String::new(),
        width: 0,
        height: 0,
        rotation: 0,
        fps: 0.0,
        frames: None,
        duration_s: None,
        variable_frame_rate: false,
        bit_rate: None,
        decoder: reel_decode::DecoderInfo::software("ffmpeg", "not connected"),
    }
}

/// Checks the options the stages cannot check themselves before any work starts.
fn validate(spec: &JobSpec) -> Result<(), JobError> {
    if let Some(fps) = spec.decode.sampling.fps
        && !(fps.is_finite() && fps > 0.0)
    {
        return Err(JobError::Options(format!(
            "--sample-fps must be a positive number, not {fps}"
        )));
    }
    if let Some(a) = spec.analysis()
        && !(a.threshold.is_finite() && a.threshold > 0.0)
    {
        return Err(JobError::Options(format!(
            "--threshold must be a positive number, not {}",
            a.threshold
        )));
    }
    if let Some(d) = spec.detection()
        && d.batch == 0
    {
        return Err(JobError::Options("--batch must be at least 1".into()));
    }
    if spec
        .stages
        .iter()
        .filter(|s| matches!(s, StageRequest::Analysis(_)))
        .count()
        > 1
        || spec
            .stages
            .iter()
            .filter(|s| matches!(s, StageRequest::Detection(_)))
            .count()
            > 1
    {
        return Err(JobError::Options(
            "a job runs at most one analysis and one detection".into(),
        ));
    }
    if let Some(fps) = spec.target_fps
        && !(fps.is_finite() && fps > 0.0)
    {
        return Err(JobError::Options(format!(
            "--target-fps must be a positive number, not {fps}"
        )));
    }
    Ok(())
}

/// Whether no frame can be lost: a blocking mode and no adaptive skipping.
fn lossless(spec: &JobSpec) -> bool {
    spec.mode.queue_policy().is_lossless() && spec.skip == reel_sched::Skip::None
}

/// The format whole frames are decoded in: what detection needs (packed RGB), and
/// what every plugin accepts.
fn whole_frame_format(spec: &JobSpec) -> Result<PixelFormat, JobError> {
    let accepted: Vec<(&str, &[PixelFormat])> = spec
        .stages
        .iter()
        .filter_map(|s| match s {
            StageRequest::Plugin(p) => {
                Some((p.plugin.name(), p.plugin.description().formats.as_slice()))
            }
            _ => None,
        })
        .collect();
    let candidates: &[PixelFormat] = if spec.detection().is_some() {
        &[PixelFormat::Rgb24]
    } else {
        &[
            PixelFormat::Rgb24,
            PixelFormat::Bgr24,
            PixelFormat::Yuv420p,
            PixelFormat::Gray8,
        ]
    };
    candidates
        .iter()
        .copied()
        .find(|f| accepted.iter().all(|(_, formats)| formats.contains(f)))
        .ok_or_else(|| {
            let refusing = accepted
                .iter()
                .find(|(_, formats)| !formats.contains(&candidates[0]))
                .map_or("a plugin", |(name, _)| name);
            JobError::Options(format!(
                "plugin `{refusing}` accepts none of the pixel formats the other stages work in ({})",
                candidates.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", ")
            ))
        })
}

/// A plugin's stage: one processor seeing every frame in order, or, for a
/// stateless plugin, between one and `workers` processors at once, each on its own
/// frames (their outputs put back in order). The first processor is made here, so
/// that a bad configuration is an error before the job starts.
fn plugin_stage(p: &PluginRequest, workers: usize) -> Result<(StageSpec, StatsHandle), JobError> {
    let first = PluginStage::new(&p.plugin, &p.config)?;
    let stats = first.stats();
    let stage = if p.plugin.description().stateless {
        let first = std::sync::Mutex::new(Some(first));
        let (plugin, config, counted) = (p.plugin.clone(), p.config.clone(), stats.clone());
        StageSpec::parallel(stats.stage_name(), move |_| {
            let made = first
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let stage = match made {
                Some(stage) => stage,
                None => PluginStage::counted_by(&plugin, &config, &counted)?,
            };
            Ok(Box::new(stage) as Box<dyn reel_sched::Stage>)
        })
        .workers(1, workers.max(1))
    } else {
        StageSpec::sequential(first)
    };
    Ok((stage.on_error(p.on_error), stats))
}

/// The detection stage: the shared model, this job's detector, batches lowered to
/// what the pool's budget holds beside the queues around them.
fn detect_stage(
    d: &DetectionRequest,
    resources: &Resources,
    spec: &JobSpec,
    frame_bytes: usize,
    budget: usize,
    knob: Option<&QualityKnob>,
) -> Result<(StageSpec, Detection), JobError> {
    let classes = if d.classes.is_empty() {
        None
    } else {
        Some(
            d.classes
                .iter()
                .map(|c| {
                    coco_class_id(c).or_else(|| c.trim().parse().ok()).ok_or_else(|| {
                        JobError::Options(format!(
                            "unknown class `{c}`: a COCO class name (person, car, …) or a class number"
                        ))
                    })
                })
                .collect::<Result<Vec<u32>, _>>()?,
        )
    };
    let config = DetectConfig {
        imgsz: d.imgsz,
        post: PostConfig {
            conf: d.conf,
            iou: d.iou,
            classes,
            max_det: d.max_det,
        },
    };
    config.validate()?;
    let source = ModelSource::parse(&d.model)?;
    let model = resources.models().get(&ModelRequest {
        source,
        device: d.device,
        precision: d.precision,
    })?;
    let classes_in_model = model.net.num_classes();
    if let Some(bad) = config
        .post
        .classes
        .iter()
        .flatten()
        .find(|&&c| c as usize >= classes_in_model)
    {
        return Err(JobError::Options(format!(
            "--classes: class {bad} does not exist: the model has {classes_in_model} classes (0 to {})",
            classes_in_model.saturating_sub(1)
        )));
    }
    let summary = ModelSummary {
        name: d.model.clone(),
        path: model.path.display().to_string(),
        variant: model.net.variant().to_string(),
        classes: model.net.num_classes(),
        imgsz: d.imgsz,
        precision: model.precision.to_string(),
    };
    let device = model.device.clone();
    // The frames of a batch are all held at once, with the queues around the stage
    // full: a batch larger than the budget holds would only ever run on its timeout.
    let around = 2 * spec.mode.queue_capacity() + 2;
    let fits = (budget / frame_bytes.max(1)).saturating_sub(around).max(1);
    let batch = d.batch.min(fits);
    if batch < d.batch {
        tracing::warn!(
            asked = d.batch,
            batch,
            "the memory budget holds batches of {batch} frames at most; lowering the batch"
        );
    }
    let kernels = model.net.kernel_set().name().to_string();
    let detector = Arc::new(Detector::with_threads(model, config, batch, d.threads)?);
    let mut stage = DetectStage::new(Arc::clone(&detector), d.batch_wait);
    if let Some(knob) = knob {
        stage = stage.with_scale(knob.clone());
    }
    let stage = StageSpec::sequential(stage);
    Ok((
        stage,
        Detection {
            model: summary,
            device,
            kernels,
            detector,
            requested: d.batch,
        },
    ))
}

/// The rate of the frames a sampled decode delivers.
fn out_fps(info: &VideoInfo, sampling: &Sampling) -> f64 {
    let fps = if info.fps > 0.0 { info.fps } else { 25.0 };
    let mut rate = fps / f64::from(sampling.every.max(1));
    if let Some(s) = sampling.fps {
        rate = rate.min(s);
    }
    rate
}

/// The number of frames the run should deliver, when the probe knows.
fn expected_frames(info: &VideoInfo, sampling: &Sampling) -> Option<u64> {
    let frames = info.frames.or_else(|| {
        info.duration_s
            .map(|d| (d * info.fps).round())
            .filter(|n| n.is_finite() && *n > 0.0)
            .map(|n| n as u64)
    })?;
    let mut n = frames.div_ceil(u64::from(sampling.every.max(1)));
    if let Some(fps) = sampling.fps
        && fps < info.fps
        && info.fps > 0.0
    {
        n = n.min(((frames as f64) * fps / info.fps).ceil() as u64);
    }
    Some(n)
}

/// Everything that changes an analysis' result, as the cache key's options string.
fn cache_key(spec: &JobSpec) -> String {
    let a = spec.analysis().cloned().unwrap_or_default();
    // The automatic size depends only on the file, which the key identifies.
    let size = a
        .size
        .map_or_else(|| "auto".to_string(), |(w, h)| format!("{w}x{h}"));
    let s = &spec.decode.sampling;
    format!(
        "analyze/v{FORMAT_VERSION} size={size} every={} sample_fps={:?} start={:?} end={:?} detector={} threshold={} min_scene_len={} keep_going={} image_fps={:?} decode={}",
        s.every.max(1),
        s.fps,
        s.start,
        s.end,
        a.detector.name(),
        a.threshold,
        a.min_scene_len,
        spec.decode.keep_going,
        spec.decode.sequence_fps,
        // In-process frames are resized and converted by reel-ops, not swscale:
        // close, not identical, so the two builds keep apart entries. (The "2":
        // full-range and BT.709 streams are read in process, with their own tables.)
        if reel_decode::LIBAV {
            "libav2"
        } else {
            "ffmpeg"
        }
    )
}

/// What the cache answered for a job.
enum Lookup {
    /// The job's result, its lines already written out.
    Hit(Box<JobSummary>),
    /// No entry for this input and options.
    Miss,
    /// The database could not be read (a warning was logged): the job runs
    /// without the cache, and stores nothing in it.
    Damaged,
}

/// The cached result of this job, if the cache has it: its lines copied out, its
/// summary brought up to this run (this input's spelling, this run's time, memory
/// and pool).
fn from_cache(
    cache: &Cache,
    id: &FileIdentity,
    key: &str,
    spec: &JobSpec,
    io: &mut JobIo,
    resources: &Resources,
    started: Instant,
) -> Result<Lookup, JobError> {
    let entry = match cache.get(id, key) {
        Ok(Some(entry)) => entry,
        Ok(None) => return Ok(Lookup::Miss),
        Err(e) => {
            // A damaged cache is not used: the job runs and the lines are right.
            tracing::warn!("{e}; analysing without the cache");
            return Ok(Lookup::Damaged);
        }
    };
    let Ok(mut summary) = serde_json::from_str::<JobSummary>(entry.summary()) else {
        tracing::warn!("a cached summary could not be read; analysing again");
        return Ok(Lookup::Miss);
    };
    if let Some(out) = io.lines.as_mut() {
        entry.write_frames_to(out)?;
        out.flush()?;
    }
    summary.input = spec.input.clone();
    summary.cache = CacheStatus::Hit;
    summary.wall_s = started.elapsed().as_secs_f64();
    summary.fps = JobSummary::rate(summary.frames, summary.wall_s);
    summary.peak_rss_bytes = reel_pool::peak_rss_bytes();
    // This run's budget; no frame was taken from the pool.
    summary.pool = PoolSummary {
        budget_bytes: PoolSummary::of(resources.pool()).budget_bytes,
        ..PoolSummary::default()
    };
    Ok(Lookup::Hit(Box::new(summary)))
}

impl Running {
    fn finish(self) -> Result<JobSummary, JobError> {
        let Running {
            handle,
            input,
            mode,
            workers,
            info,
            decoder,
            analysis,
            detection,
            plugins,
            pool,
            started,
            cache_status,
            video_out,
            decode_counts,
            live,
            ..
        } = self;
        let Report {
            outcome,
            metrics,
            sink,
        } = handle.join();
        let interrupted = matches!(outcome, reel_sched::Outcome::Cancelled);
        let JobSink {
            cache: writer,
            gathered,
            ..
        } = sink;
        let Gathered {
            lines,
            end,
            first,
            last_pts,
            cuts,
            counts,
            detections,
            cache_error,
        } = gathered;
        let wall_s = started.elapsed().as_secs_f64();
        // A live stream's facts are its last connection's.
        let (info, decoder) = match live.as_ref().and_then(|l| l.stats.info()) {
            Some(i) => {
                let d = format!("{} {}", i.decoder.backend, i.decoder.name);
                (i, d)
            }
            None => (info, decoder),
        };
        let live = live.map(|l| LiveSummary::of(&metrics, &l.stats));
        let frame_s = if info.fps > 0.0 { 1.0 / info.fps } else { 0.0 };
        let analysis = analysis.map(|(a, size)| AnalysisSummary {
            analysis_size: [size.0, size.1],
            detector: a.detector,
            frames_analyzed: lines,
            scenes: scenes(&cuts, first.unwrap_or((0, 0.0)), end, last_pts + frame_s),
            cuts: cuts.iter().map(|(c, _)| *c).collect(),
        });
        let detection = detection.map(|d| {
            let batches = d.detector.stats().report();
            DetectionSummary {
                model: d.model,
                device: d.device,
                kernels: d.kernels,
                threads: d.detector.threads(),
                detections,
                counts,
                batch: BatchSummary {
                    requested: d.requested,
                    ceiling: batches.ceiling,
                    batches: batches.batches,
                    oom_splits: batches.oom_splits,
                },
                input_pool: PoolSummary::of(d.detector.input_pool()),
            }
        });
        let plugins = plugins
            .iter()
            .map(|h| h.report(metrics.stage(&h.stage_name())))
            .collect();
        let summary = JobSummary {
            input: input.clone(),
            video: VideoSummary::of(&info),
            decoder,
            mode: mode.name().to_string(),
            // Every frame the decoder produced, those the sampling left out too.
            frames_decoded: decode_counts
                .as_ref()
                .map_or(0, reel_decode::DecodeCounts::decoded)
                .max(metrics.frames_in + metrics.frames_skipped),
            decode_errors: decode_counts
                .as_ref()
                .map_or(0, reel_decode::DecodeCounts::errors),
            frames: lines,
            dropped: live.as_ref().map_or(metrics.dropped, LiveSummary::dropped),
            skipped: metrics.frames_skipped,
            analysis,
            detection,
            plugins,
            stages: stages_of(&metrics, workers),
            video_out,
            live,
            wall_s,
            fps: JobSummary::rate(lines, wall_s),
            peak_rss_bytes: reel_pool::peak_rss_bytes(),
            pool: PoolSummary::of(&pool),
            cache: cache_status,
            interrupted,
            error: None,
        };
        if let reel_sched::Outcome::Failed(error) = outcome {
            let message = error_chain(&error);
            let mut partial = summary;
            partial.error = Some(message.clone());
            return Err(JobError::Failed {
                input,
                message,
                partial: Box::new(partial),
            });
        }
        if let Some(e) = cache_error {
            tracing::debug!(error = %e, "the results were not cached");
        }
        if !interrupted && let Some(writer) = writer {
            let text = serde_json::to_string(&summary)
                .map_err(|e| JobError::Io(std::io::Error::other(e)))?;
            if let Err(e) = writer.commit(&text) {
                // The cache is an optimisation: the results are whole without it.
                tracing::warn!(error = %error_chain(&e), "the results could not be stored in the cache");
            }
        }
        Ok(summary)
    }
}

/// An error and its causes, `: `-separated, each part once: a cause that opens
/// with a name the text already holds (`x.mp4: corrupt video …` after ``source
/// `x.mp4` failed``) loses that opening.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let mut more = c.to_string();
        if let Some((name, rest)) = more.split_once(": ")
            && !name.contains(' ')
            && text.contains(name)
        {
            more = rest.to_string();
        }
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
