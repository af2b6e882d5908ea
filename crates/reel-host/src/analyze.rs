//! The analyze job: decode at the analysis size → [`Analyzer`] stage → plugin
//! stages → a sink that streams one JSON line per analysed frame, with the results
//! served from, and stored in, the analysis [`Cache`] when the input is a file.
//!
//! Quality mode: no frame is dropped. The job reports progress through a callback
//! and stops early when its [`CancelFlag`] is raised; it knows nothing of terminals.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use reel_decode::{Backend, DecodeError, DecodeOptions, HwAccel, Sampling, Scaler, VideoInfo};
use reel_frame::Frame;
use reel_ops::analyze::{AnalyzeConfig, Analyzer, SceneConfig, metric};
use reel_ops::measure::MeasureConfig;
use reel_ops::scene::{AdaptiveConfig, ContentConfig, auto_downscale_size};
use reel_pool::FramePool;
use reel_sched::{Mode, Pipeline, Sink, Snapshot, Stage, StageError, StageSpec};
use serde::{Deserialize, Serialize};

use crate::cache::{Cache, CacheError, EntryWriter, FileIdentity};
use crate::job;
use crate::lines::{LineOut, json_number};
use crate::plugins::{PluginReport, PluginStage, StatsHandle};

/// The version of the result format; part of every cache key, so that a change of
/// format never serves old results.
const FORMAT_VERSION: u32 = 2;

/// Which scene detector to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detector {
    /// Fixed threshold on the HSV delta between consecutive frames.
    #[default]
    Content,
    /// Threshold on the ratio of a frame's delta to its neighbours' mean.
    Adaptive,
}

impl Detector {
    /// The name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Content => "content",
            Detector::Adaptive => "adaptive",
        }
    }
}

/// What to analyse and how.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// The input: a file, a URL, or any input `reel_decode::open` takes.
    pub input: String,
    /// Analysis size; `None` picks the scene detector's usual reduced size.
    pub size: Option<(u32, u32)>,
    /// Keep one frame in this many (0 and 1 keep all).
    pub every: u32,
    /// Keep at most this many frames per second of video.
    pub sample_fps: Option<f64>,
    /// The scene detector.
    pub detector: Detector,
    /// The content detector's threshold (the adaptive one's is its own default).
    pub threshold: f64,
    /// Shortest scene, in analysed frames.
    pub min_scene_len: u32,
    /// Hardware decoding.
    pub hwaccel: HwAccel,
    /// Byte budget of the frame pool.
    pub pool_budget_bytes: u64,
}

impl AnalyzeOptions {
    /// The defaults of the command-line contract for `input`.
    pub fn new(input: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            size: None,
            every: 1,
            sample_fps: None,
            detector: Detector::Content,
            threshold: 27.0,
            min_scene_len: 15,
            hwaccel: HwAccel::default(),
            pool_budget_bytes: 256 << 20,
        }
    }

    /// Everything that changes the result, as the cache key's options string.
    fn cache_key(&self) -> String {
        // The automatic size depends only on the file, which the key identifies.
        let size = self
            .size
            .map_or_else(|| "auto".to_string(), |(w, h)| format!("{w}x{h}"));
        format!(
            "analyze/v{FORMAT_VERSION} size={size} every={} sample_fps={:?} detector={} threshold={} min_scene_len={} decode={}",
            self.every.max(1),
            self.sample_fps,
            self.detector.name(),
            self.threshold,
            self.min_scene_len,
            // In-process frames are resized and converted by reel-ops, not swscale:
            // close, not identical, so the two builds keep apart entries.
            if reel_decode::LIBAV {
                "libav"
            } else {
                "ffmpeg"
            }
        )
    }
}

/// Errors of the analyze job.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The input could not be opened or decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An option is out of range.
    #[error("{0}")]
    Options(String),
    /// The pipeline stopped on an error (decoding, a stage, or writing results).
    #[error("analysis of {input} stopped: {message}")]
    Pipeline {
        /// The input.
        input: String,
        /// What went wrong, with the stage and frame.
        message: String,
        /// What was found up to the error.
        partial: Box<AnalyzeSummary>,
    },
    /// The analysis cache failed.
    #[error("analysis cache: {0}")]
    Cache(#[from] CacheError),
    /// Writing the frame lines failed.
    #[error("writing frame lines: {0}")]
    Io(#[from] std::io::Error),
}

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
    /// Start time in seconds.
    pub start_s: f64,
    /// End time in seconds (the end of its last frame).
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

/// The summary of an analysis, as the command-line contract specifies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeSummary {
    /// The input as given.
    pub input: String,
    /// What the video is.
    pub video: VideoSummary,
    /// The size frames were analysed at.
    pub analysis_size: [u32; 2],
    /// The scene detector.
    pub detector: Detector,
    /// The decoder that read the video: backend and codec (`libav h264`, `ffmpeg
    /// h264`, `ffmpeg h264 (cuda)`, `synthetic …`).
    #[serde(default)]
    pub decoder: String,
    /// Frames the decoder delivered.
    pub frames_decoded: u64,
    /// Frames analysed (one line each).
    pub frames_analyzed: u64,
    /// The first frame of every scene but the first.
    pub cuts: Vec<u64>,
    /// The scenes the cuts delimit.
    pub scenes: Vec<Scene>,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Analysed frames per second of wall-clock time.
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
    /// Each plugin's counters.
    #[serde(default)]
    pub plugins: Vec<PluginReport>,
}

/// Raised to stop a running analysis; what was found so far is kept.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the analysis to stop.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it was raised.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A progress callback: the pipeline's figures, and the frames expected when known.
pub type Progress<'a> = dyn FnMut(&Snapshot, Option<u64>) + 'a;

/// Where results go and what runs besides the analysis.
pub struct JobIo<'a> {
    /// Receives one JSON line per analysed frame; `None` to keep only the summary.
    pub out: Option<Box<dyn Write + Send>>,
    /// The analysis cache; `None` for off. Only file inputs use it, and only runs
    /// without plugins (plugins must see the frames).
    pub cache: Option<&'a Cache>,
    /// Plugin stages, run in order after the analysis.
    pub plugins: Vec<PluginStage>,
    /// Called about ten times a second with the pipeline's figures and the number
    /// of frames expected, when known.
    pub progress: Option<&'a mut Progress<'a>>,
    /// Stops the run when raised.
    pub cancel: CancelFlag,
}

impl std::fmt::Debug for JobIo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobIo")
            .field("out", &self.out.is_some())
            .field("cache", &self.cache.is_some())
            .field("plugins", &self.plugins.len())
            .finish_non_exhaustive()
    }
}

/// The analysis size for a video of `width` x `height`: `requested` when given,
/// else the scene detector's usual reduced size.
pub fn analysis_size(width: u32, height: u32, requested: Option<(u32, u32)>) -> (u32, u32) {
    requested.unwrap_or_else(|| auto_downscale_size(width, height))
}

/// Runs the analysis of `opts.input`.
///
/// Returns the summary; an interrupted run returns its partial summary with
/// `interrupted` set (nothing is cached then). A failure mid-stream returns
/// [`AnalyzeError::Pipeline`] carrying what was found; every line written before
/// it stays valid.
pub fn run(opts: &AnalyzeOptions, mut io: JobIo<'_>) -> Result<AnalyzeSummary, AnalyzeError> {
    let started = Instant::now();
    if let Some(fps) = opts.sample_fps
        && !(fps.is_finite() && fps > 0.0)
    {
        return Err(AnalyzeError::Options(format!(
            "--sample-fps must be a positive number, not {fps}"
        )));
    }
    if !(opts.threshold.is_finite() && opts.threshold > 0.0) {
        return Err(AnalyzeError::Options(format!(
            "--threshold must be a positive number, not {}",
            opts.threshold
        )));
    }
    // The cache: file inputs only, and runs whose frames no plugin needs to see.
    let key = opts.cache_key();
    let identity = match io.cache {
        Some(_) if io.plugins.is_empty() && Path::new(&opts.input).is_file() => {
            Some(FileIdentity::of(&opts.input)?)
        }
        _ => None,
    };
    if let (Some(cache), Some(id)) = (io.cache, &identity)
        && let Some(entry) = cache.get(id, &key)?
        && let Ok(mut summary) = serde_json::from_str::<AnalyzeSummary>(entry.summary())
    {
        if let Some(out) = io.out.as_mut() {
            entry.write_frames_to(out)?;
            out.flush()?;
        }
        summary.cache = CacheStatus::Hit;
        summary.wall_s = started.elapsed().as_secs_f64();
        summary.peak_rss_bytes = reel_pool::peak_rss_bytes();
        return Ok(summary);
    }
    let writer = match (io.cache, &identity) {
        (Some(cache), Some(id)) => Some(cache.writer(id, &key)?),
        _ => None,
    };
    let cache_status = if writer.is_some() {
        CacheStatus::Miss
    } else {
        CacheStatus::Off
    };

    let base = DecodeOptions::default().with_hwaccel(opts.hwaccel);
    let info = reel_decode::probe(&opts.input, &base)?;
    let (dw, dh) = info.display_size();
    let size = analysis_size(dw, dh, opts.size);
    if size.0 == 0 || size.1 == 0 {
        return Err(AnalyzeError::Options(format!(
            "the analysis size must not be zero, not {}x{}",
            size.0, size.1
        )));
    }

    let config = AnalyzeConfig {
        scenes: Some(match opts.detector {
            Detector::Content => SceneConfig::Content(ContentConfig {
                threshold: opts.threshold,
                min_scene_len: u64::from(opts.min_scene_len),
                ..ContentConfig::default()
            }),
            Detector::Adaptive => SceneConfig::Adaptive(AdaptiveConfig {
                min_scene_len: u64::from(opts.min_scene_len),
                ..AdaptiveConfig::default()
            }),
        }),
        measure: MeasureConfig {
            motion: true,
            brightness: true,
            sharpness: true,
            black: None,
        },
    };
    let budget = usize::try_from(opts.pool_budget_bytes).unwrap_or(usize::MAX);
    let pool = FramePool::with_budget(budget);
    let decode = base
        .with_format(config.preferred_format())
        .with_size(size.0, size.1)
        // Bilinear costs the decoder less than ffmpeg's default bicubic when it
        // downsizes, and keeps fine patterns apart better; fast bilinear is cheaper
        // still but aliases them into false cuts.
        .with_scaler(Scaler::Bilinear)
        // In process when the build can: no second process, no full-size scaling,
        // no pipe (see `reel_decode::Backend::Libav`).
        .with_backend(Backend::Libav)
        .with_sampling(Sampling {
            every: opts.every,
            fps: opts.sample_fps,
            ..Sampling::all()
        });
    let source = reel_decode::open(&opts.input, &decode, &pool)?;
    let decoder = {
        let d = &source.info().decoder;
        format!("{} {}", d.backend, d.name)
    };
    let expected = expected_frames(&info, opts);

    let cuts = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::new(Mutex::new(SinkState {
        writer,
        lines: 0,
        end: 0,
        error: None,
    }));
    let sink = LineSink {
        out: LineOut::new(io.out.take(), "frame lines"),
        state: Arc::clone(&shared),
        line: String::with_capacity(256),
    };
    let handles: Vec<StatsHandle> = io.plugins.iter().map(PluginStage::stats).collect();
    let mut pipeline =
        Pipeline::new(source, sink)
            .mode(Mode::Quality)
            .stage(StageSpec::sequential(AnalyzeStage {
                analyzer: Analyzer::new(config),
                cuts: Arc::clone(&cuts),
            }));
    for plugin in io.plugins.drain(..) {
        pipeline = pipeline.stage(StageSpec::sequential(plugin));
    }
    let report = job::watch(pipeline.spawn(), &io.cancel, io.progress.take(), expected);
    let interrupted = report.is_cancelled();
    let metrics = report.metrics.clone();

    let lines;
    let end;
    let writer;
    {
        let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
        lines = state.lines;
        end = state.end;
        writer = state.writer.take();
        if let Some(e) = state.error.take() {
            tracing::warn!(error = %e, "frame lines could not be written");
        }
    }
    let cuts = std::mem::take(&mut *cuts.lock().unwrap_or_else(PoisonError::into_inner));
    let wall_s = started.elapsed().as_secs_f64();
    let summary = AnalyzeSummary {
        input: opts.input.clone(),
        video: VideoSummary::of(&info),
        analysis_size: [size.0, size.1],
        detector: opts.detector,
        decoder,
        frames_decoded: metrics.frames_in,
        frames_analyzed: lines,
        scenes: scenes(&cuts, end, info.fps),
        cuts,
        wall_s,
        fps: if wall_s > 0.0 {
            lines as f64 / wall_s
        } else {
            0.0
        },
        peak_rss_bytes: reel_pool::peak_rss_bytes(),
        pool: PoolSummary::of(&pool),
        cache: cache_status,
        interrupted,
        plugins: handles.iter().map(StatsHandle::report).collect(),
    };
    if let Some(error) = report.error() {
        return Err(AnalyzeError::Pipeline {
            input: opts.input.clone(),
            message: error.to_string(),
            partial: Box::new(summary),
        });
    }
    if !interrupted && let Some(writer) = writer {
        let text = serde_json::to_string(&summary)
            .map_err(|e| AnalyzeError::Io(std::io::Error::other(e)))?;
        writer.commit(&text)?;
    }
    Ok(summary)
}

/// The number of frames the run should deliver, when the probe knows.
fn expected_frames(info: &VideoInfo, opts: &AnalyzeOptions) -> Option<u64> {
    let frames = job::source_frames(info)?;
    let mut n = frames.div_ceil(u64::from(opts.every.max(1)));
    if let Some(fps) = opts.sample_fps
        && fps < info.fps
        && info.fps > 0.0
    {
        n = n.min(((frames as f64) * fps / info.fps).ceil() as u64);
    }
    Some(n)
}

/// Scenes from the cuts, for a stream of `frames` frames.
fn scenes(cuts: &[u64], frames: u64, fps: f64) -> Vec<Scene> {
    if frames == 0 {
        return Vec::new();
    }
    let secs = |f: u64| if fps > 0.0 { f as f64 / fps } else { 0.0 };
    let mut starts = vec![0];
    starts.extend(cuts.iter().copied().filter(|&c| c > 0 && c < frames));
    starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let end = starts.get(i + 1).copied().unwrap_or(frames);
            Scene {
                start_frame: start,
                end_frame: end - 1,
                start_s: secs(start),
                end_s: secs(end),
            }
        })
        .collect()
}

/// The analysis as a pipeline stage: sequential (the detectors keep state).
struct AnalyzeStage {
    analyzer: Analyzer,
    cuts: Arc<Mutex<Vec<u64>>>,
}

impl Stage for AnalyzeStage {
    fn name(&self) -> &str {
        "analyze"
    }

    fn process(
        &mut self,
        mut frame: Frame,
        out: &mut dyn reel_sched::Emit,
    ) -> Result<(), StageError> {
        let analysis = self
            .analyzer
            .analyze_frame(&mut frame)
            .map_err(StageError::fatal)?;
        if let Some(cut) = analysis.scene.cut {
            self.cuts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(cut);
        }
        out.emit(frame);
        Ok(())
    }
}

struct SinkState {
    writer: Option<EntryWriter>,
    lines: u64,
    /// One past the highest frame index written: where the last scene ends.
    end: u64,
    error: Option<String>,
}

/// Writes one JSON line per frame, whole and flushed, and feeds the cache writer.
struct LineSink {
    out: LineOut,
    state: Arc<Mutex<SinkState>>,
    line: String,
}

impl LineSink {
    fn format(&mut self, frame: &Frame) {
        self.line.clear();
        let _ = write!(
            self.line,
            "{{\"frame\":{},\"pts\":{}",
            frame.index,
            json_number(frame.pts)
        );
        for name in [
            metric::CONTENT_DELTA,
            metric::MOTION,
            metric::BRIGHTNESS,
            metric::SHARPNESS,
        ] {
            let value = frame.meta.metrics.get(name);
            let _ = write!(
                self.line,
                ",\"{name}\":{}",
                value.map_or_else(|| "null".to_string(), json_number)
            );
        }
        self.line.push('}');
    }
}

impl Sink for LineSink {
    fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
        self.format(&frame);
        let index = frame.index;
        drop(frame);
        self.out.write_line(&mut self.line)?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.lines += 1;
        state.end = state.end.max(index + 1);
        if let Some(writer) = state.writer.as_mut()
            && let Err(e) = writer.write_line(&self.line)
        {
            // The result is still good; it just will not be cached.
            state.error = Some(e.to_string());
            state.writer = None;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), StageError> {
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_follow_the_cuts() {
        let s = scenes(&[10, 25], 40, 10.0);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].start_frame, s[0].end_frame), (0, 9));
        assert_eq!((s[1].start_frame, s[1].end_frame), (10, 24));
        assert_eq!((s[2].start_frame, s[2].end_frame), (25, 39));
        assert_eq!((s[2].start_s, s[2].end_s), (2.5, 4.0));
        assert!(scenes(&[], 0, 30.0).is_empty());
        assert_eq!(scenes(&[], 5, 0.0)[0].end_s, 0.0);
    }

    #[test]
    fn the_cache_key_carries_every_option() {
        let a = AnalyzeOptions::new("x");
        let mut b = a.clone();
        b.threshold = 30.0;
        assert_ne!(a.cache_key(), b.cache_key());
        let mut c = a.clone();
        c.detector = Detector::Adaptive;
        assert_ne!(a.cache_key(), c.cache_key());
        let mut d = a.clone();
        d.size = Some((320, 180));
        assert_ne!(a.cache_key(), d.cache_key());
        let mut e = a.clone();
        e.every = 2;
        assert_ne!(a.cache_key(), e.cache_key());
    }
}
