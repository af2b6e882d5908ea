//! The detect stage: frames collected into batches (up to the ceiling, or for at
//! most a set wait), run through a shared [`Detector`], and emitted in order with
//! their detections in `frame.meta.detections`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reel_frame::{Frame, PixelFormat};
use reel_sched::{Emit, QualityKnob, Stage, StageError};

use crate::InferError;
use crate::detector::Detector;
use crate::preprocess::ImageRef;

/// A sequential stage batching frames for a [`Detector`]. Frames must be packed
/// RGB24.
#[derive(Debug)]
pub struct DetectStage {
    detector: Arc<Detector>,
    pending: Vec<Frame>,
    max_wait: Duration,
    first_at: Option<Instant>,
    /// Adaptive quality: the input size follows this scale.
    scale: Option<QualityKnob>,
}

/// The model input for `imgsz` at quality `scale`: the nearest multiple of 32
/// (640 at 0.75 is 480, at 0.5 is 320), at least 32 and at most `imgsz`.
pub fn scaled_input_size(imgsz: u32, scale: f32) -> u32 {
    let scale = if scale.is_finite() {
        scale.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let steps = (imgsz as f32 * scale / 32.0).round() as u32;
    (steps * 32).clamp(32.min(imgsz), imgsz)
}

impl DetectStage {
    /// Batches for `detector`, waiting at most `max_wait` for a batch to fill.
    pub fn new(detector: Arc<Detector>, max_wait: Duration) -> Self {
        Self {
            detector,
            pending: Vec::new(),
            max_wait,
            first_at: None,
            scale: None,
        }
    }

    /// Letterboxes each batch to the configured size times the knob's scale, in
    /// steps of 32 ([`scaled_input_size`]): adaptive quality lowers the model's cost.
    pub fn with_scale(mut self, knob: QualityKnob) -> Self {
        self.scale = Some(knob);
        self
    }

    /// Runs what is pending and emits it, in arrival order.
    fn run(&mut self, out: &mut dyn Emit) -> Result<(), StageError> {
        self.first_at = None;
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Some(knob) = &self.scale {
            let size = scaled_input_size(self.detector.config().imgsz, knob.get());
            self.detector
                .set_input_size(size)
                .map_err(StageError::fatal)?;
        }
        let results = {
            let images = self
                .pending
                .iter()
                .map(image_of)
                .collect::<Result<Vec<_>, _>>()
                .map_err(StageError::fatal)?;
            self.detector
                .detect_adaptive(&images)
                .map_err(StageError::fatal)?
        };
        for (mut frame, found) in self.pending.drain(..).zip(results) {
            let (w, h) = (frame.width(), frame.height());
            let (sw, sh) = frame.source_size();
            let (sx, sy) = (sw as f32 / w as f32, sh as f32 / h as f32);
            frame.meta.detections.extend(found.into_iter().map(|mut d| {
                if (sx, sy) != (1.0, 1.0) {
                    d.bbox = d.bbox.scale(sx, sy).clamp_to(sw as f32, sh as f32);
                }
                d
            }));
            out.emit(frame);
        }
        Ok(())
    }

    fn due(&self) -> bool {
        self.pending.len() >= self.detector.stats().ceiling()
            || self.first_at.is_some_and(|t| t.elapsed() >= self.max_wait)
    }
}

/// A frame's pixels as a detector input.
fn image_of(frame: &Frame) -> Result<ImageRef<'_>, InferError> {
    let (w, h) = (frame.width(), frame.height());
    if frame.format() != PixelFormat::Rgb24 || frame.stride() != 3 * w as usize {
        return Err(InferError::Frame {
            index: frame.index,
            message: format!(
                "detection needs packed rgb24 frames, this one is {} with a {}-byte stride",
                frame.format(),
                frame.stride()
            ),
        });
    }
    Ok(ImageRef {
        data: frame.data(),
        width: w,
        height: h,
    })
}

impl Stage for DetectStage {
    fn name(&self) -> &str {
        "detect"
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        if self.pending.is_empty() {
            self.first_at = Some(Instant::now());
        }
        self.pending.push(frame);
        if self.due() {
            self.run(out)?;
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut dyn Emit) -> Result<(), StageError> {
        self.run(out)
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.first_at.map(|t| {
            self.max_wait
                .saturating_sub(t.elapsed())
                .max(Duration::from_millis(1))
        })
    }

    fn tick(&mut self, out: &mut dyn Emit) -> Result<(), StageError> {
        if self.due() {
            self.run(out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_size_steps_by_32() {
        assert_eq!(scaled_input_size(640, 1.0), 640);
        assert_eq!(scaled_input_size(640, 0.75), 480);
        assert_eq!(scaled_input_size(640, 0.5), 320);
        assert_eq!(scaled_input_size(640, 0.3), 192);
        assert_eq!(scaled_input_size(640, 0.0), 32);
        assert_eq!(scaled_input_size(640, f32::NAN), 640);
        assert_eq!(scaled_input_size(32, 0.1), 32);
    }
}
