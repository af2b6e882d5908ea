//! Source-side frame skipping: deciding, frame by frame, which frames enter.

use crate::spec::Skip;

pub(crate) struct Skipper {
    policy: Skip,
    /// Frames seen so far.
    seen: u64,
    /// The sampling slot of the last frame kept, for [`Skip::Rate`].
    last_slot: Option<i64>,
}

impl Skipper {
    pub(crate) fn new(policy: Skip) -> Self {
        Self {
            policy,
            seen: 0,
            last_slot: None,
        }
    }

    /// Whether the next frame (presented at `pts` seconds) enters the pipeline.
    /// `behind` tells whether the pipeline is behind; it is only asked for
    /// [`Skip::Adaptive`].
    pub(crate) fn keep(&mut self, pts: f64, behind: impl FnOnce() -> bool) -> bool {
        let n = self.seen;
        self.seen += 1;
        match self.policy {
            Skip::None => true,
            Skip::EveryNth(every) => every <= 1 || n.is_multiple_of(every),
            Skip::Rate(fps) => {
                if !(fps > 0.0 && fps.is_finite() && pts.is_finite()) {
                    return true;
                }
                // Frames whose pts is within a hair of a slot boundary belong to the
                // new slot: 3/30 s sampled at 10 fps starts slot 1, whatever rounding
                // did to it.
                let slot = (pts * fps + 1e-6).floor() as i64;
                if self.last_slot == Some(slot) {
                    false
                } else {
                    self.last_slot = Some(slot);
                    true
                }
            }
            Skip::Adaptive => !behind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(policy: Skip, pts: impl Iterator<Item = f64>) -> Vec<usize> {
        let mut s = Skipper::new(policy);
        pts.enumerate()
            .filter(|(_, p)| s.keep(*p, || false))
            .map(|(i, _)| i)
            .collect()
    }

    fn at_fps(fps: f64, n: usize) -> impl Iterator<Item = f64> {
        (0..n).map(move |i| i as f64 / fps)
    }

    #[test]
    fn every_nth_keeps_the_first_and_every_nth_after() {
        assert_eq!(kept(Skip::EveryNth(3), at_fps(30.0, 10)), [0, 3, 6, 9]);
        assert_eq!(kept(Skip::EveryNth(1), at_fps(30.0, 3)), [0, 1, 2]);
        assert_eq!(kept(Skip::EveryNth(0), at_fps(30.0, 3)), [0, 1, 2]);
    }

    #[test]
    fn rate_samples_by_timestamp() {
        assert_eq!(
            kept(Skip::Rate(10.0), at_fps(30.0, 12)),
            [0, 3, 6, 9],
            "30 fps sampled at 10 fps keeps one frame in three"
        );
        // NTSC rate: 29.97 fps sampled at 1 fps keeps the first frame of each second.
        let kept_ntsc = kept(Skip::Rate(1.0), at_fps(30_000.0 / 1001.0, 100));
        assert_eq!(kept_ntsc, [0, 30, 60, 90]);
        // A target above the source's rate keeps everything.
        assert_eq!(kept(Skip::Rate(60.0), at_fps(30.0, 5)), [0, 1, 2, 3, 4]);
        // Nonsense rates keep everything rather than nothing.
        assert_eq!(kept(Skip::Rate(0.0), at_fps(30.0, 3)), [0, 1, 2]);
        assert_eq!(kept(Skip::Rate(f64::NAN), at_fps(30.0, 3)), [0, 1, 2]);
    }

    #[test]
    fn adaptive_skips_only_while_behind() {
        let mut s = Skipper::new(Skip::Adaptive);
        let behind = [false, true, true, false, true, false];
        let kept: Vec<bool> = behind.iter().map(|&b| s.keep(0.0, || b)).collect();
        assert_eq!(kept, [true, false, false, true, false, true]);
    }
}
