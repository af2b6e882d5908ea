//! Frame selection and the live decode scale, for the sources that decode in
//! process. (The ffmpeg backend expresses the same rules as `select` filters.)

use reel_sched::QualityKnob;

use crate::options::Sampling;

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Deliver it.
    Keep,
    /// Skip it and look at the next.
    Skip,
    /// No later frame can be kept: the stream is over.
    End,
}

/// Applies a [`Sampling`] to frames in presentation order.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    step: u64,
    fps: Option<f64>,
    start: f64,
    end: Option<f64>,
    /// Frames seen at or after `start`.
    in_range: u64,
    /// The last time cell a frame was kept in (fps sampling).
    last_cell: i64,
}

impl Sampler {
    pub(crate) fn new(sampling: &Sampling) -> Self {
        Self {
            step: sampling.step(),
            fps: sampling.fps,
            start: sampling.start.unwrap_or(0.0),
            end: sampling.end,
            in_range: 0,
            last_cell: -1,
        }
    }

    /// The first time kept (0 without a start).
    #[cfg(feature = "libav")]
    pub(crate) fn start(&self) -> f64 {
        self.start
    }

    /// The verdict on the frame presented at `pts` seconds from the stream's start.
    pub(crate) fn judge(&mut self, pts: f64) -> Verdict {
        if self.end.is_some_and(|end| pts >= end) {
            return Verdict::End;
        }
        if pts < self.start {
            return Verdict::Skip;
        }
        let n = self.in_range;
        self.in_range += 1;
        if let Some(fps) = self.fps {
            let cell = fps_cell(pts - self.start, fps);
            if cell > self.last_cell {
                self.last_cell = cell;
                return Verdict::Keep;
            }
            return Verdict::Skip;
        }
        if n.is_multiple_of(self.step) {
            Verdict::Keep
        } else {
            Verdict::Skip
        }
    }
}

/// The sampling cell of a frame `offset` seconds after the sampling origin. A small
/// tolerance keeps frames that sit exactly on a boundary (up to float error) in the
/// cell they start.
pub(crate) fn fps_cell(offset: f64, fps: f64) -> i64 {
    // Truncation is the intent: cells are whole numbers of 1/fps.
    (offset * fps + 1e-6).floor() as i64
}

/// The live decode scale: reads the knob, quantises it to eighths (at least 1/8), and
/// says when it changed.
#[derive(Debug, Clone)]
pub(crate) struct ScaleControl {
    knob: Option<QualityKnob>,
    applied: u8,
}

/// Scale steps per unit.
const STEPS: f32 = 8.0;

impl ScaleControl {
    pub(crate) fn new(knob: Option<QualityKnob>) -> Self {
        let mut s = Self { knob, applied: 8 };
        s.applied = s.read();
        s
    }

    fn read(&self) -> u8 {
        match &self.knob {
            None => 8,
            // The knob is clamped to 0..=1, so the product fits in a u8.
            Some(k) => ((k.get() * STEPS).round() as u8).clamp(1, 8),
        }
    }

    /// The scale in force.
    pub(crate) fn factor(&self) -> f32 {
        f32::from(self.applied) / STEPS
    }

    /// Reads the knob; returns the new factor if it moved to another step.
    pub(crate) fn poll(&mut self) -> Option<f32> {
        let now = self.read();
        if now == self.applied {
            None
        } else {
            self.applied = now;
            Some(self.factor())
        }
    }
}

/// `base` scaled by `factor`: the base itself at 1, else rounded to even sides (at
/// least 2) so that every pixel format and encoder accepts it.
pub(crate) fn scaled_size(base: (u32, u32), factor: f32) -> (u32, u32) {
    if factor >= 1.0 {
        return base;
    }
    let side = |v: u32| -> u32 {
        let scaled = (f64::from(v) * f64::from(factor) / 2.0).round() * 2.0;
        // Never above the base side, which is a u32.
        (scaled as u32).clamp(2.min(v), v)
    };
    (side(base.0), side(base.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(sampling: Sampling, pts: impl Iterator<Item = f64>) -> Vec<usize> {
        let mut s = Sampler::new(&sampling);
        let mut out = Vec::new();
        for (i, t) in pts.enumerate() {
            match s.judge(t) {
                Verdict::Keep => out.push(i),
                Verdict::Skip => {}
                Verdict::End => break,
            }
        }
        out
    }

    fn at_30fps(n: usize) -> impl Iterator<Item = f64> {
        (0..n).map(|i| i as f64 / 30.0)
    }

    #[test]
    fn every_nth_counts_from_the_start_time() {
        assert_eq!(kept(Sampling::every(3), at_30fps(10)), [0, 3, 6, 9]);
        let s = Sampling::every(3).between(Some(0.1), Some(0.3));
        // Frames 3..9 are in range (0.1 <= t < 0.3); keep 3, 6.
        assert_eq!(kept(s, at_30fps(30)), [3, 6]);
    }

    #[test]
    fn fps_keeps_the_first_frame_of_each_cell() {
        // 30 -> 12 fps: cells of 1/12 s.
        let k = kept(Sampling::fps(12.0), at_30fps(30));
        assert_eq!(k.len(), 12);
        assert_eq!(&k[..5], [0, 3, 5, 8, 10]);
        // A rate above the source's keeps everything, never repeats.
        assert_eq!(kept(Sampling::fps(60.0), at_30fps(30)).len(), 30);
    }

    #[test]
    fn scale_is_quantised_and_reported_once() {
        let knob = QualityKnob::new(1.0);
        let mut c = ScaleControl::new(Some(knob.clone()));
        assert_eq!(c.factor(), 1.0);
        knob.set(0.52);
        assert_eq!(c.poll(), Some(0.5));
        knob.set(0.49);
        assert_eq!(c.poll(), None);
        knob.set(0.0);
        assert_eq!(c.poll(), Some(0.125));
        assert_eq!(ScaleControl::new(None).poll(), None);
    }

    #[test]
    fn scaled_sizes_are_even_below_one() {
        assert_eq!(scaled_size((641, 361), 1.0), (641, 361));
        assert_eq!(scaled_size((640, 360), 0.5), (320, 180));
        assert_eq!(scaled_size((641, 361), 0.5), (320, 180));
        assert_eq!(scaled_size((10, 3), 0.125), (2, 2));
        assert_eq!(scaled_size((1, 1), 0.125), (1, 1));
    }
}
