//! A live job's source under overload, deterministic where it matters: the
//! quality controller reads a clock that moves one frame interval per frame the
//! source delivers (the stream's own time), so its decisions rest on the ratio of
//! frames out to frames in, not on how busy the machine is.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reel_decode::DecodeOptions;
use reel_frame::{Frame, PixelFormat};
use reel_host::live::{LiveSource, LiveSpec, LiveStats, LiveSummary};
use reel_pool::FramePool;
use reel_sched::{
    BoxError, CancelToken, Emit, ManualClock, Mode, NullSink, Pipeline, QualityConfig,
    QualityController, QualityKnob, Source, Stage, StageError, StageSpec,
};

const FPS: f64 = 30.0;
const WIDTH: u32 = 160;
const HEIGHT: u32 = 120;

/// The live source, moving the controller's clock on by one frame interval per
/// frame: the stream's time.
struct StreamClock {
    inner: LiveSource,
    clock: ManualClock,
}

impl Source for StreamClock {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
        let next = self.inner.next_frame();
        self.clock.advance(Duration::from_secs_f64(1.0 / FPS));
        next
    }
}

/// A stage that costs twice the frame interval for a whole frame while `loaded`,
/// in proportion to the frame's area (a frame decoded at a lower scale costs less).
struct Load {
    loaded: Arc<AtomicBool>,
    /// The narrowest frame seen.
    narrowest: Arc<AtomicU32>,
}

impl Stage for Load {
    fn name(&self) -> &str {
        "load"
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        self.narrowest.fetch_min(frame.width(), Ordering::SeqCst);
        if self.loaded.load(Ordering::SeqCst) {
            let area = f64::from(frame.width() * frame.height()) / f64::from(WIDTH * HEIGHT);
            std::thread::sleep(Duration::from_secs_f64(2.0 / FPS * area));
        }
        out.emit(frame);
        Ok(())
    }
}

#[test]
fn overload_in_realtime_drops_lowers_the_scale_and_recovers() {
    let pool = FramePool::with_budget(64 << 20);
    let knob = QualityKnob::new(1.0);
    let opts = DecodeOptions::default()
        .with_format(PixelFormat::Rgb24)
        .with_scale(knob.clone());
    let input = format!(
        "synthetic:scenes?width={WIDTH}&height={HEIGHT}&fps={FPS}&frames=100000&scenes=1&seed=3"
    );
    let cancel = CancelToken::new();
    let stats = LiveStats::default();
    let source = LiveSource::new(
        &input,
        opts,
        &pool,
        LiveSpec::default(),
        stats.clone(),
        cancel.clone(),
    )
    .unwrap();
    let clock = ManualClock::new();
    let config = QualityConfig {
        window: Duration::from_millis(500),
        cooldown: Duration::from_millis(500),
        step_up: 0.1,
        ..QualityConfig::new(FPS)
    };
    let loaded = Arc::new(AtomicBool::new(true));
    let narrowest = Arc::new(AtomicU32::new(WIDTH));
    let pipeline = Pipeline::new(
        StreamClock {
            inner: source,
            clock: clock.clone(),
        },
        NullSink,
    )
    .mode(Mode::Realtime)
    .stage(StageSpec::sequential(Load {
        loaded: Arc::clone(&loaded),
        narrowest: Arc::clone(&narrowest),
    }))
    .adaptive_quality(QualityController::with_clock(config, knob.clone(), clock))
    .cancel_on(&cancel);
    let bound = pipeline.in_flight_bound() as u64;
    let handle = pipeline.spawn();

    // Overloaded: the scale comes down.
    let deadline = Instant::now() + Duration::from_secs(20);
    while knob.get() > 0.8 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let low = knob.get();
    let during = LiveSummary::of(&handle.metrics(), &stats);
    assert!(low <= 0.8, "the scale stayed at {low}: {during:?}");
    assert!(during.dropped_by.queue > 0, "{during:?}");
    // The source decodes at the lower scale: the stage gets smaller frames.
    let narrowest = narrowest.load(Ordering::SeqCst);
    assert!(narrowest < WIDTH, "frames stayed {narrowest} wide");

    // The load goes: the scale returns to 1.0.
    loaded.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while knob.get() < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(knob.get(), 1.0, "the scale did not recover from {low}");

    cancel.cancel();
    let report = handle.join();
    let m = report.metrics;
    let live = LiveSummary::of(&m, &stats);
    assert_eq!(
        live.frames_in,
        live.frames_out + live.dropped() + live.discarded,
        "{live:?}"
    );
    assert!(m.max_in_flight <= bound, "{} > {bound}", m.max_in_flight);
    assert!(live.latency_ms.p99 > 0.0, "{live:?}");
    assert_eq!(pool.stats().bytes_in_use, 0);
}
