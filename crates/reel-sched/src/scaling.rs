//! When a parallel stage gains or loses a worker: it measures, over each period, how
//! busy its workers were and how long frames waited with no worker free.

use std::time::{Duration, Instant};

/// A change in a parallel stage's workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Grow,
    Shrink,
}

/// Grow when frames waited with every worker busy for this share of the period.
const SATURATED_TO_GROW: f64 = 0.8;
/// ... and the workers were busy for this share of their time.
const BUSY_TO_GROW: f64 = 0.9;
/// Shrink when the work done would have kept one worker fewer at most this busy.
const BUSY_TO_SHRINK: f64 = 0.7;

pub(crate) struct Scaler {
    period: Duration,
    period_start: Instant,
    last: Instant,
    busy_workers: usize,
    saturated: bool,
    /// Worker-seconds spent busy this period.
    busy_secs: f64,
    /// Seconds with every worker busy and frames waiting, this period.
    saturated_secs: f64,
}

impl Scaler {
    pub(crate) fn new(period: Duration, now: Instant) -> Self {
        Self {
            period,
            period_start: now,
            last: now,
            busy_workers: 0,
            saturated: false,
            busy_secs: 0.0,
            saturated_secs: 0.0,
        }
    }

    /// How long to wait at most before the next observation.
    pub(crate) fn sample_every(&self) -> Duration {
        (self.period / 8).max(Duration::from_millis(1))
    }

    /// The state until `now` was the one observed last; from `now` it is this.
    pub(crate) fn observe(&mut self, now: Instant, busy_workers: usize, saturated: bool) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.busy_secs += self.busy_workers as f64 * dt;
        if self.saturated {
            self.saturated_secs += dt;
        }
        self.last = now;
        self.busy_workers = busy_workers;
        self.saturated = saturated;
    }

    /// At the end of each period, the step to take with `workers` now, if any.
    pub(crate) fn decide(
        &mut self,
        now: Instant,
        workers: usize,
        min: usize,
        max: usize,
    ) -> Option<Step> {
        let elapsed = now.saturating_duration_since(self.period_start);
        if elapsed < self.period {
            return None;
        }
        let secs = elapsed.as_secs_f64();
        let w = workers as f64;
        let step = if workers < max
            && self.saturated_secs >= SATURATED_TO_GROW * secs
            && self.busy_secs >= BUSY_TO_GROW * w * secs
        {
            Some(Step::Grow)
        } else if workers > min && self.busy_secs <= BUSY_TO_SHRINK * (w - 1.0) * secs {
            Some(Step::Shrink)
        } else {
            None
        };
        self.period_start = now;
        self.busy_secs = 0.0;
        self.saturated_secs = 0.0;
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_millis(100);

    /// Runs one period in which `busy` workers are busy and frames wait or not.
    fn period(s: &mut Scaler, t: &mut Instant, busy: usize, saturated: bool) {
        s.observe(*t, busy, saturated);
        *t += P;
        s.observe(*t, busy, saturated);
    }

    #[test]
    fn grows_only_when_saturated_and_busy() {
        let mut t = Instant::now();
        let mut s = Scaler::new(P, t);
        period(&mut s, &mut t, 2, true);
        assert_eq!(s.decide(t, 2, 1, 4), Some(Step::Grow));
        // Busy but nothing waiting: the workers keep up.
        period(&mut s, &mut t, 2, false);
        assert_eq!(s.decide(t, 2, 1, 4), None);
        // At the maximum already.
        period(&mut s, &mut t, 4, true);
        assert_eq!(s.decide(t, 4, 1, 4), None);
    }

    #[test]
    fn shrinks_when_the_load_fits_in_fewer_workers() {
        let mut t = Instant::now();
        let mut s = Scaler::new(P, t);
        period(&mut s, &mut t, 0, false);
        assert_eq!(s.decide(t, 3, 1, 4), Some(Step::Shrink));
        // Two of three busy: one worker fewer would be fully busy, keep three.
        period(&mut s, &mut t, 2, false);
        assert_eq!(s.decide(t, 3, 1, 4), None);
        // At the minimum already.
        period(&mut s, &mut t, 0, false);
        assert_eq!(s.decide(t, 1, 1, 4), None);
    }

    #[test]
    fn decides_once_per_period() {
        let mut t = Instant::now();
        let mut s = Scaler::new(P, t);
        s.observe(t, 2, true);
        t += P / 2;
        s.observe(t, 2, true);
        assert_eq!(s.decide(t, 2, 1, 4), None, "half a period is not enough");
        t += P / 2;
        s.observe(t, 2, true);
        assert_eq!(s.decide(t, 2, 1, 4), Some(Step::Grow));
        assert_eq!(
            s.decide(t, 3, 1, 4),
            None,
            "a new period starts after each decision"
        );
    }
}
