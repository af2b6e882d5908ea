//! The analysis stage: `reel-ops`' [`Analyzer`] on every frame, at the analysis
//! size. Frames decoded at that size are analysed where they lie; larger ones
//! (decoded whole for detection, plugins or a video out) are reduced into the
//! stage's own copy first, and go on unchanged.

use std::collections::VecDeque;

use reel_frame::Frame;
use reel_ops::analyze::{AnalyzeConfig, Analyzer, SceneConfig};
use reel_ops::measure::MeasureConfig;
use reel_ops::resize::{Filter, Resizer};
use reel_ops::scene::{AdaptiveConfig, ContentConfig};
use reel_sched::{Emit, Stage, StageError};

use crate::job::{AnalysisRequest, SceneDetector};

/// The metric under which the stage records a cut decided on a frame: the index
/// of the cut's first frame.
pub(crate) const CUT: &str = "scene_cut";
/// The presentation time of that first frame.
pub(crate) const CUT_PTS: &str = "scene_cut_pts";

/// How many recent frames' times the stage remembers, to give a cut decided late
/// (after the detectors' minimum length or window) its frame's time.
const RECENT: usize = 512;

/// The analysers the job's analysis request asks for.
pub(crate) fn config(req: &AnalysisRequest) -> AnalyzeConfig {
    AnalyzeConfig {
        scenes: Some(match req.detector {
            SceneDetector::Content => SceneConfig::Content(ContentConfig {
                threshold: req.threshold,
                min_scene_len: u64::from(req.min_scene_len),
                ..ContentConfig::default()
            }),
            SceneDetector::Adaptive => SceneConfig::Adaptive(AdaptiveConfig {
                min_scene_len: u64::from(req.min_scene_len),
                ..AdaptiveConfig::default()
            }),
        }),
        measure: MeasureConfig {
            motion: true,
            brightness: true,
            sharpness: true,
            black: None,
        },
    }
}

/// Sequential (the detectors keep state between frames).
pub(crate) struct AnalysisStage {
    analyzer: Analyzer,
    size: (u32, u32),
    resizer: Resizer,
    /// The reduced copy of a frame larger than the analysis size.
    copy: Vec<u8>,
    /// (index, pts) of the last frames seen, newest last.
    recent: VecDeque<(u64, f64)>,
}

impl AnalysisStage {
    /// Analyses frames at `size`.
    pub(crate) fn new(config: AnalyzeConfig, size: (u32, u32)) -> Self {
        Self {
            analyzer: Analyzer::new(config),
            size,
            resizer: Resizer::new(Filter::Area),
            copy: Vec::new(),
            recent: VecDeque::with_capacity(RECENT),
        }
    }

    fn pts_of(&self, index: u64) -> Option<f64> {
        self.recent
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, pts)| *pts)
    }
}

impl Stage for AnalysisStage {
    fn name(&self) -> &str {
        "analyze"
    }

    fn process(&mut self, mut frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        let (w, h) = self.size;
        let format = frame.format();
        let analysis = if (frame.width(), frame.height()) == (w, h) {
            self.analyzer
                .analyze(frame.index, frame.data(), format, w, h)
                .map_err(StageError::fatal)?
        } else {
            let len = format
                .frame_size(w, h)
                .ok_or_else(|| StageError::fatal(format!("{w}x{h} is not a frame size")))?;
            self.copy.resize(len, 0);
            self.resizer
                .resize(
                    frame.data(),
                    frame.width(),
                    frame.height(),
                    &mut self.copy,
                    w,
                    h,
                    format,
                )
                .map_err(StageError::fatal)?;
            self.analyzer
                .analyze(frame.index, &self.copy, format, w, h)
                .map_err(StageError::fatal)?
        };
        analysis.write_metrics(&mut frame.meta.metrics);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((frame.index, frame.pts));
        if let Some(cut) = analysis.scene.cut {
            // Indices below 2^53 are exact in an f64.
            frame.meta.metrics.set(CUT, cut as f64);
            if let Some(pts) = self.pts_of(cut) {
                frame.meta.metrics.set(CUT_PTS, pts);
            }
        }
        out.emit(frame);
        Ok(())
    }
}
