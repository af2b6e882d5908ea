//! Adaptive quality: a controller that compares the output rate with a target and
//! moves a [`QualityKnob`] down quickly when the pipeline falls behind, and up slowly
//! when it keeps up.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::stage::QualityKnob;

/// Where the controller gets the time from: the system's monotonic clock in a
/// pipeline, a scripted one in tests.
pub trait Clock: Send + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start: Instant,
    offset_ns: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at an arbitrary instant.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            offset_ns: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.offset_ns.load(Ordering::Relaxed))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }
}

/// How a [`QualityController`] behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// The output rate to hold, in frames per second.
    pub target_fps: f64,
    /// How long the rate is measured over before any decision, and again after each
    /// change (so that a decision never rests on frames made at another quality).
    pub window: Duration,
    /// The lowest quality.
    pub floor: f32,
    /// How much one step down takes off.
    pub step_down: f32,
    /// How much one step up adds.
    pub step_up: f32,
    /// The dead band, as a fraction of the target: below `target × (1 − hysteresis)`
    /// the pipeline is behind; at or above `target × (1 − hysteresis / 2)` it has
    /// headroom; in between the quality holds.
    pub hysteresis: f64,
    /// The least time after any change before a step up. It doubles (up to eight
    /// times) each time a step up proves too much, and halves back with each step up
    /// that holds.
    pub cooldown: Duration,
}

impl QualityConfig {
    /// Defaults for `target_fps`: one-second window, floor 0.3, steps of 0.15 down and
    /// 0.05 up, 10 % hysteresis, 3 s cooldown.
    pub fn new(target_fps: f64) -> Self {
        Self {
            target_fps,
            window: Duration::from_secs(1),
            floor: 0.3,
            step_down: 0.15,
            step_up: 0.05,
            hysteresis: 0.1,
            cooldown: Duration::from_secs(3),
        }
    }
}

/// The most the cooldown is doubled after failed steps up.
const MAX_BACKOFF: u32 = 3;

/// A change the controller made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QualityChange {
    /// Behind the target: the quality went down to this.
    Down(f32),
    /// Headroom: the quality went up to this.
    Up(f32),
}

/// Measures the output rate over a window and publishes a quality factor to a
/// [`QualityKnob`].
///
/// It steps down by [`step_down`](QualityConfig::step_down) after each window spent
/// behind the target; when a step up was the cause, it returns to the level before
/// that step instead, and waits longer before trying again. It steps up by
/// [`step_up`](QualityConfig::step_up) when a full window shows headroom and the
/// cooldown since the last change has passed. Call [`update`](Self::update) with the
/// total of frames out, as often as convenient (a pipeline calls it ten times per
/// window).
pub struct QualityController {
    config: QualityConfig,
    knob: QualityKnob,
    clock: Box<dyn Clock>,
    /// (time, frames out) samples, oldest first, none older than needed for one window.
    samples: VecDeque<(Instant, u64)>,
    last_change: Option<(Instant, QualityChange)>,
    /// The quality before the last step up, to return to if it proves too much.
    before_probe: Option<f32>,
    backoff: u32,
    rate: Option<f64>,
}

impl QualityController {
    /// A controller on the system clock, publishing to `knob` (which starts wherever
    /// it stands, usually 1.0).
    pub fn new(config: QualityConfig, knob: QualityKnob) -> Self {
        Self::with_clock(config, knob, SystemClock)
    }

    /// A controller reading the time from `clock`.
    pub fn with_clock(config: QualityConfig, knob: QualityKnob, clock: impl Clock) -> Self {
        Self {
            config,
            knob,
            clock: Box::new(clock),
            samples: VecDeque::with_capacity(64),
            last_change: None,
            before_probe: None,
            backoff: 0,
            rate: None,
        }
    }

    /// The knob it publishes to.
    pub fn knob(&self) -> &QualityKnob {
        &self.knob
    }

    /// Its configuration.
    pub fn config(&self) -> &QualityConfig {
        &self.config
    }

    /// The output rate over the last full window, once there is one.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// How often a pipeline calls [`update`](Self::update).
    pub(crate) fn period(&self) -> Duration {
        (self.config.window / 10).max(Duration::from_millis(1))
    }

    /// Takes in the total of frames out so far, and changes the quality if the last
    /// window calls for it. Returns the change made, if any.
    pub fn update(&mut self, frames_out: u64) -> Option<QualityChange> {
        let now = self.clock.now();
        self.samples.push_back((now, frames_out));
        // Keep exactly one sample at or before the window's start.
        let start = now.checked_sub(self.config.window)?;
        while self.samples.len() > 1 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
        let &(t0, n0) = self.samples.front()?;
        if t0 > start {
            return None; // less than a full window since the start or the last change
        }
        let secs = now.saturating_duration_since(t0).as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        let rate = frames_out.saturating_sub(n0) as f64 / secs;
        self.rate = Some(rate);
        let change = self.decide(now, rate)?;
        let q = match change {
            QualityChange::Down(q) | QualityChange::Up(q) => q,
        };
        self.knob.set(q);
        self.last_change = Some((now, change));
        // Start a fresh window at the new quality.
        self.samples.clear();
        self.samples.push_back((now, frames_out));
        tracing::debug!(rate, quality = q, ?change, "quality changed");
        Some(change)
    }

    fn decide(&mut self, now: Instant, rate: f64) -> Option<QualityChange> {
        let c = &self.config;
        let q = self.knob.get();
        let floor = c.floor.clamp(0.0, 1.0);
        if rate < c.target_fps * (1.0 - c.hysteresis) {
            if q <= floor {
                return None;
            }
            let failed_probe = matches!(self.last_change, Some((_, QualityChange::Up(_))));
            let to = match self.before_probe.take() {
                Some(before) if failed_probe => {
                    self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
                    before
                }
                _ => q - c.step_down,
            };
            return Some(QualityChange::Down(to.max(floor)));
        }
        if rate >= c.target_fps * (1.0 - c.hysteresis / 2.0) && q < 1.0 {
            let wait = c.cooldown * (1u32 << self.backoff);
            let cooled = self
                .last_change
                .is_none_or(|(at, _)| now.saturating_duration_since(at) >= wait);
            if !cooled {
                return None;
            }
            if matches!(self.last_change, Some((_, QualityChange::Up(_)))) {
                // The last step up held for a whole cooldown.
                self.backoff = self.backoff.saturating_sub(1);
            }
            self.before_probe = Some(q);
            return Some(QualityChange::Up((q + c.step_up).min(1.0)));
        }
        None
    }
}

impl std::fmt::Debug for QualityController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QualityController")
            .field("config", &self.config)
            .field("quality", &self.knob.get())
            .field("rate", &self.rate)
            .field("backoff", &self.backoff)
            .finish()
    }
}
