//! The adaptive quality controller under a scripted clock and a scripted load: the
//! pipeline's capacity is `base / q²` frames per second at quality `q` (cost grows
//! with the pixel count), capped by a 30 fps source.

use std::time::Duration;

use reel_sched::{
    ManualClock, NullSink, Pipeline, QualityChange, QualityConfig, QualityController, QualityKnob,
    StageSpec,
};

use crate::common::{Frames, Pass, pool};

const STEP: Duration = Duration::from_millis(100);

struct Sim {
    clock: ManualClock,
    ctrl: QualityController,
    frames: f64,
    t: f64,
}

impl Sim {
    fn new() -> Self {
        let clock = ManualClock::new();
        let mut ctrl = QualityController::with_clock(
            QualityConfig::new(30.0),
            QualityKnob::new(1.0),
            clock.clone(),
        );
        assert_eq!(ctrl.update(0), None);
        Self {
            clock,
            ctrl,
            frames: 0.0,
            t: 0.0,
        }
    }

    /// Runs for `secs` with the load `base`, returning (time, change) for each change.
    fn run(&mut self, secs: f64, base: f64) -> Vec<(f64, QualityChange)> {
        let mut changes = Vec::new();
        let end = self.t + secs;
        while self.t < end - 1e-9 {
            let q = f64::from(self.ctrl.knob().get());
            let rate = (base / (q * q)).min(30.0);
            self.clock.advance(STEP);
            self.t += STEP.as_secs_f64();
            self.frames += rate * STEP.as_secs_f64();
            if let Some(c) = self.ctrl.update(self.frames.floor() as u64) {
                changes.push(((self.t * 10.0).round() / 10.0, c));
            }
        }
        changes
    }
}

fn q(c: QualityChange) -> f32 {
    match c {
        QualityChange::Down(q) | QualityChange::Up(q) => q,
    }
}

/// Compares changes with the expected (time, up?, quality), quality to 1e-4.
fn assert_trajectory(got: &[(f64, QualityChange)], want: &[(f64, bool, f32)]) {
    let fmt = |v: &[(f64, QualityChange)]| format!("{v:?}");
    assert_eq!(got.len(), want.len(), "{}", fmt(got));
    for (g, w) in got.iter().zip(want) {
        let up = matches!(g.1, QualityChange::Up(_));
        assert!(
            (g.0 - w.0).abs() < 1e-6 && up == w.1 && (q(g.1) - w.2).abs() < 1e-4,
            "got {:?}, wanted {w:?} in {}",
            g,
            fmt(got)
        );
    }
}

#[test]
fn steps_down_fast_probes_up_slowly_and_backs_off() {
    let mut sim = Sim::new();
    // Twice too slow at full quality (12.5 fps for a 30 fps target).
    let changes = sim.run(70.0, 12.5);
    assert_trajectory(
        &changes,
        &[
            // Behind: one step down per window.
            (1.0, false, 0.85),
            (2.0, false, 0.70),
            (3.0, false, 0.55),
            // Keeping up: one step up per cooldown (3 s).
            (6.0, true, 0.60),
            (9.0, true, 0.65),
            (12.0, true, 0.70),
            // Too much: back to the last good level, and wait twice as long, then
            // four, then eight times (the most).
            (13.0, false, 0.65),
            (19.0, true, 0.70),
            (20.0, false, 0.65),
            (32.0, true, 0.70),
            (33.0, false, 0.65),
            (57.0, true, 0.70),
            (58.0, false, 0.65),
        ],
    );
    assert!(sim.ctrl.rate().is_some());
}

#[test]
fn recovers_full_quality_when_the_load_goes() {
    let mut sim = Sim::new();
    sim.run(10.0, 12.5);
    let low = sim.ctrl.knob().get();
    assert!(low < 0.7);
    // The load goes away: only steps up from here, each `step_up`, at least a
    // cooldown apart, up to full quality, which then holds.
    let changes = sim.run(60.0, 1000.0);
    assert!(!changes.is_empty());
    let mut last = (sim.t - 60.0 - 3.0, low);
    for &(t, c) in &changes {
        let QualityChange::Up(q) = c else {
            panic!("stepped down without load: {changes:?}");
        };
        assert!((q - last.1 - 0.05).abs() < 1e-4 || q == 1.0, "{changes:?}");
        assert!(t - last.0 >= 3.0 - 1e-6, "{changes:?}");
        last = (t, q);
    }
    assert_eq!(sim.ctrl.knob().get(), 1.0);
    assert!(sim.run(30.0, 1000.0).is_empty(), "full quality holds");
}

#[test]
fn never_goes_below_the_floor() {
    let mut sim = Sim::new();
    // Hopeless: 1 fps at full quality.
    let changes = sim.run(30.0, 1.0);
    let qs: Vec<f32> = changes.iter().map(|c| q(c.1)).collect();
    let want = [0.85, 0.70, 0.55, 0.40, 0.30];
    assert_eq!(qs.len(), want.len(), "{changes:?}");
    assert!(
        qs.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-4),
        "{qs:?}"
    );
    assert!((sim.ctrl.knob().get() - 0.3).abs() < 1e-6);
}

#[test]
fn holds_inside_the_dead_band() {
    let mut sim = Sim::new();
    // 28 fps at full quality: under the target, but within the 10 % band.
    assert!(sim.run(20.0, 28.0).is_empty());
    assert_eq!(sim.ctrl.knob().get(), 1.0);
}

#[test]
fn a_pipeline_reports_the_quality_it_runs_at() {
    let pool = pool();
    let knob = QualityKnob::new(0.8);
    let ctrl = QualityController::with_clock(QualityConfig::new(30.0), knob, ManualClock::new());
    let report = Pipeline::new(Frames::new(&pool, 20), NullSink)
        .stage(StageSpec::sequential(Pass::new("a")))
        .adaptive_quality(ctrl)
        .run();
    assert!(report.is_completed());
    assert_eq!(report.metrics.quality, Some(0.8));
    assert_eq!(pool.stats().bytes_in_use, 0);
}
