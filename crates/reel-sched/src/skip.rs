//! Source-side frame skipping: deciding, frame by frame, which frames enter.
//!
//! Selecting frames by number or by time (every Nth, a sampling rate, a window) is
//! the decode request's business, where it costs least; what is left here is the
//! one decision only the running pipeline can make: whether it is behind.

use crate::spec::Skip;

pub(crate) struct Skipper {
    policy: Skip,
}

impl Skipper {
    pub(crate) fn new(policy: Skip) -> Self {
        Self { policy }
    }

    /// Whether the next frame enters the pipeline. `behind` tells whether the
    /// pipeline is behind; it is only asked for [`Skip::Adaptive`].
    pub(crate) fn keep(&mut self, behind: impl FnOnce() -> bool) -> bool {
        match self.policy {
            Skip::None => true,
            Skip::Adaptive => !behind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_keeps_everything() {
        let mut s = Skipper::new(Skip::None);
        assert!((0..5).all(|_| s.keep(|| true)));
    }

    #[test]
    fn adaptive_skips_only_while_behind() {
        let mut s = Skipper::new(Skip::Adaptive);
        let behind = [false, true, true, false, true, false];
        let kept: Vec<bool> = behind.iter().map(|&b| s.keep(|| b)).collect();
        assert_eq!(kept, [true, false, false, true, false, true]);
    }
}
