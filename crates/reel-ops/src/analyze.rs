//! All the analysers of a frame in one: scene cuts ([`crate::scene`]) and luma
//! measurements ([`crate::measure`]), each only if asked for. The host wraps an
//! [`Analyzer`] in a stage; it knows nothing of stages itself.

use reel_frame::{Frame, Metrics, PixelFormat};

use crate::convert::convert;
use crate::measure::{MeasureConfig, Measurements, Measurer};
use crate::scene::{AdaptiveConfig, AdaptiveDetector, ContentConfig, ContentDetector, SceneStep};
use crate::{OpsError, frame_len};

/// Names under which [`FrameAnalysis::write_metrics`] records values.
pub mod metric {
    /// The content detector's score against the previous frame.
    pub const CONTENT_DELTA: &str = "content_delta";
    /// Mean absolute luma difference against the previous frame.
    pub const MOTION: &str = "motion";
    /// Mean luma.
    pub const BRIGHTNESS: &str = "brightness";
    /// Variance of the Laplacian of luma.
    pub const SHARPNESS: &str = "sharpness";
    /// Fraction of black pixels.
    pub const BLACK_RATIO: &str = "black_ratio";
}

/// Which scene detector to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SceneConfig {
    /// Fixed threshold on the HSV delta (`detect-content`).
    Content(ContentConfig),
    /// Threshold on the ratio to the neighbours' mean (`detect-adaptive`).
    Adaptive(AdaptiveConfig),
}

impl Default for SceneConfig {
    fn default() -> Self {
        SceneConfig::Content(ContentConfig::default())
    }
}

/// What to analyse.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AnalyzeConfig {
    /// Scene cuts, with which detector; `None` for none.
    pub scenes: Option<SceneConfig>,
    /// Luma measurements.
    pub measure: MeasureConfig,
}

impl AnalyzeConfig {
    /// The pixel format that costs least to analyse: packed BGR when scenes are
    /// detected (HSV needs colour; it is also what OpenCV decodes to), luma alone
    /// otherwise.
    pub fn preferred_format(&self) -> PixelFormat {
        if self.scenes.is_some() {
            PixelFormat::Bgr24
        } else {
            PixelFormat::Gray8
        }
    }
}

#[derive(Debug, Clone)]
enum Detector {
    Content(ContentDetector),
    Adaptive(AdaptiveDetector),
}

/// The analysis of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FrameAnalysis {
    /// The frame's index in its stream.
    pub index: u64,
    /// Scene detection: this frame's score, and any cut decided now.
    pub scene: SceneStep,
    /// Luma measurements.
    pub measurements: Measurements,
}

impl FrameAnalysis {
    /// Records the values found in `metrics` (under the [`metric`] names); returns
    /// false if `metrics` ran out of room.
    pub fn write_metrics(&self, metrics: &mut Metrics) -> bool {
        let m = &self.measurements;
        [
            (
                metric::CONTENT_DELTA,
                self.scene.score.map(|s| s.content_val),
            ),
            (metric::MOTION, m.motion),
            (metric::BRIGHTNESS, m.brightness),
            (metric::SHARPNESS, m.sharpness),
            (metric::BLACK_RATIO, m.black_ratio),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| (name, v)))
        .fold(true, |ok, (name, v)| metrics.set(name, v) && ok)
    }
}

/// Runs the analysers asked for on a stream of frames, in order. Keeps its planes
/// between frames: no allocation per frame once the first has been seen.
#[derive(Debug, Clone)]
pub struct Analyzer {
    config: AnalyzeConfig,
    detector: Option<Detector>,
    measurer: Measurer,
    /// Frames not in a packed RGB format are converted here for the scene detector.
    rgb: Vec<u8>,
}

impl Analyzer {
    /// An analyser doing what `config` asks.
    pub fn new(config: AnalyzeConfig) -> Self {
        let detector = config.scenes.map(|s| match s {
            SceneConfig::Content(c) => Detector::Content(ContentDetector::new(c)),
            SceneConfig::Adaptive(c) => Detector::Adaptive(AdaptiveDetector::new(c)),
        });
        Self {
            config,
            detector,
            measurer: Measurer::new(config.measure),
            rgb: Vec::new(),
        }
    }

    /// What it analyses.
    pub fn config(&self) -> &AnalyzeConfig {
        &self.config
    }

    /// Analyses frame `index` of any format (scene detection converts frames that
    /// are not packed RGB first, at a cost: prefer
    /// [`AnalyzeConfig::preferred_format`]).
    pub fn analyze(
        &mut self,
        index: u64,
        frame: &[u8],
        format: PixelFormat,
        width: u32,
        height: u32,
    ) -> Result<FrameAnalysis, OpsError> {
        let scene = match &mut self.detector {
            None => SceneStep::default(),
            Some(detector) => {
                let (pixels, packed) = match format {
                    PixelFormat::Bgr24 | PixelFormat::Rgb24 | PixelFormat::Rgba => (frame, format),
                    _ => {
                        let len = frame_len(PixelFormat::Rgb24, width, height)?;
                        if self.rgb.len() < len {
                            self.rgb.resize(len, 0);
                        }
                        let rgb = &mut self.rgb[..len];
                        convert(frame, format, rgb, PixelFormat::Rgb24, width, height)?;
                        (&*rgb, PixelFormat::Rgb24)
                    }
                };
                match detector {
                    Detector::Content(d) => d.process(index, pixels, packed, width, height)?,
                    Detector::Adaptive(d) => d.process(index, pixels, packed, width, height)?,
                }
            }
        };
        let measurements = self.measurer.measure(frame, format, width, height)?;
        Ok(FrameAnalysis {
            index,
            scene,
            measurements,
        })
    }

    /// Analyses `frame` (its index and pixels) and records the values in its
    /// metrics.
    pub fn analyze_frame(&mut self, frame: &mut Frame) -> Result<FrameAnalysis, OpsError> {
        let analysis = self.analyze(
            frame.index,
            frame.data(),
            frame.format(),
            frame.width(),
            frame.height(),
        )?;
        analysis.write_metrics(&mut frame.meta.metrics);
        Ok(analysis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::BlackConfig;

    fn flat(bgr: [u8; 3], n: usize) -> Vec<u8> {
        bgr.repeat(n)
    }

    #[test]
    fn finds_a_cut_and_measures() {
        let mut a = Analyzer::new(AnalyzeConfig {
            scenes: Some(SceneConfig::default()),
            measure: MeasureConfig::all(),
        });
        let (red, blue) = (flat([0, 0, 255], 64), flat([255, 0, 0], 64));
        let mut cuts = Vec::new();
        for i in 0..40u64 {
            let f = if i < 20 { &red } else { &blue };
            let r = a.analyze(i, f, PixelFormat::Bgr24, 8, 8).unwrap();
            cuts.extend(r.scene.cut);
            assert_eq!(r.measurements.sharpness, Some(0.0));
            assert_eq!(r.measurements.black, Some(false));
            if i == 20 {
                assert_eq!(r.scene.score.unwrap().content_val, 40.0);
                // Luma of red 76, of blue 29.
                assert_eq!(r.measurements.motion, Some(47.0));
            }
        }
        assert_eq!(cuts, vec![20]);
    }

    #[test]
    fn other_formats_are_converted_for_scenes() {
        let mut a = Analyzer::new(AnalyzeConfig {
            scenes: Some(SceneConfig::Content(ContentConfig {
                min_scene_len: 1,
                ..ContentConfig::default()
            })),
            measure: MeasureConfig::default(),
        });
        let dark = vec![0u8; 64];
        let light = vec![200u8; 64];
        let mut cuts = Vec::new();
        for (i, f) in [&dark, &dark, &light, &light].into_iter().enumerate() {
            cuts.extend(
                a.analyze(i as u64, f, PixelFormat::Gray8, 8, 8)
                    .unwrap()
                    .scene
                    .cut,
            );
        }
        assert_eq!(cuts, vec![2]);
        assert_eq!(
            AnalyzeConfig::default().preferred_format(),
            PixelFormat::Gray8
        );
    }

    #[test]
    fn writes_metrics_under_their_names() {
        let mut a = Analyzer::new(AnalyzeConfig {
            scenes: None,
            measure: MeasureConfig {
                brightness: true,
                black: Some(BlackConfig::default()),
                ..MeasureConfig::default()
            },
        });
        let r = a.analyze(0, &[50u8; 16], PixelFormat::Gray8, 4, 4).unwrap();
        let mut m = Metrics::default();
        assert!(r.write_metrics(&mut m));
        assert_eq!(m.get(metric::BRIGHTNESS), Some(50.0));
        assert_eq!(m.get(metric::BLACK_RATIO), Some(0.0));
        assert_eq!(m.get(metric::MOTION), None);
        assert_eq!(m.len(), 2);
    }
}
