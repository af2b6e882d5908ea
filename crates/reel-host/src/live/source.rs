//! The source of a live job: any input `reel_decode::open` takes, read as a live
//! stream. A file or a `synthetic:` source is paced at its own frame rate (each
//! frame stamped with its scheduled wall-clock time); a network stream is connected
//! with exponential backoff (the first connect too) and connected again when it
//! ends, fails or stalls; frames are numbered on one timeline across reconnects
//! and loops. Every wait (pacing, backoff) wakes for a cancellation within 50 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reel_decode::{DecodeError, DecodeOptions, VideoSource};
use reel_frame::Frame;
use reel_pool::FramePool;
use reel_sched::{BoxError, CancelToken, Source};

use super::{LiveSpec, LiveStats, is_network, is_paced};

/// The longest a wait sleeps before it looks at the cancel token again.
const WAKE: Duration = Duration::from_millis(50);

/// Why a live input ended in an error.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The input could not be connected, as many times in a row as allowed.
    #[error("{input}: gave up after {attempts} failed connection attempts in a row: {source}")]
    GaveUp {
        /// The input.
        input: String,
        /// Failed attempts in a row.
        attempts: u32,
        /// The last attempt's error.
        source: Box<DecodeError>,
    },
    /// The run was stopped (cancelled) while the source read or waited.
    #[error("{input}: stopped")]
    Stopped {
        /// The input.
        input: String,
    },
    /// The input (not a network stream) failed.
    #[error(transparent)]
    Decode(Box<DecodeError>),
}

impl From<DecodeError> for LiveError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(Box::new(e))
    }
}

/// A live input as a pipeline's source; see the module's description.
pub struct LiveSource {
    input: String,
    opts: DecodeOptions,
    pool: FramePool,
    spec: LiveSpec,
    stats: LiveStats,
    cancel: CancelToken,
    network: bool,
    paced: bool,
    inner: Option<Box<dyn VideoSource>>,
    /// Failed connection attempts in a row.
    failures: u32,
    /// Connections (and openings of a paced file) that delivered a frame.
    connects: u64,
    /// Whether the current connection has delivered a frame.
    delivering: bool,
    /// Where this connection's timeline starts on the run's one.
    offset: f64,
    /// This connection's first timestamp.
    first_pts: Option<f64>,
    /// The last timestamp delivered, on the run's timeline.
    last_pts: Option<f64>,
    frame_s: f64,
    next_index: u64,
    ends_at: Option<Instant>,
    watch: Option<Watch>,
    frozen: Frozen,
}

/// The stall watchdog: a thread that stops the decoder of a stream that has
/// delivered nothing for the stall timeout.
struct Watch {
    state: Arc<WatchState>,
    thread: Option<JoinHandle<()>>,
}

struct WatchState {
    start: Instant,
    /// Nanoseconds from `start` to the last sign of life (a frame, a connection).
    last_ns: AtomicU64,
    /// The decoder process being watched (0: none).
    pid: AtomicU32,
    stalled: AtomicBool,
    stop: AtomicBool,
}

impl WatchState {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A sign of life: the silence is counted from now.
    fn touch(&self) {
        self.last_ns.store(self.now_ns(), Ordering::Release);
    }
}

impl Watch {
    fn spawn(timeout: Duration) -> std::io::Result<Self> {
        let state = Arc::new(WatchState {
            start: Instant::now(),
            last_ns: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            stalled: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let theirs = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("reel-live-watch".into())
            .spawn(move || {
                let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
                while !theirs.stop.load(Ordering::Acquire) {
                    std::thread::sleep(WAKE);
                    let silent = theirs
                        .now_ns()
                        .saturating_sub(theirs.last_ns.load(Ordering::Acquire));
                    let pid = theirs.pid.load(Ordering::Acquire);
                    if pid != 0 && silent > timeout_ns {
                        theirs.pid.store(0, Ordering::Release);
                        theirs.stalled.store(true, Ordering::Release);
                        tracing::warn!(?timeout, "the stream stalled; stopping its decoder");
                        reel_decode::stop_input(pid);
                    }
                }
            })?;
        Ok(Self {
            state,
            thread: Some(thread),
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The same picture seen over and over.
#[derive(Default)]
struct Frozen {
    hash: Option<u64>,
    /// The timestamp the current picture was first seen at.
    since: f64,
    reported: bool,
}

impl LiveSource {
    /// A live source over `input`, connected on its first read. `cancel` stops
    /// every wait; `stats` receives the figures.
    pub fn new(
        input: &str,
        opts: DecodeOptions,
        pool: &FramePool,
        spec: LiveSpec,
        stats: LiveStats,
        cancel: CancelToken,
    ) -> Result<Self, LiveError> {
        let watch = match spec.stall_timeout {
            Some(t) => Some(Watch::spawn(t).map_err(|source| {
                LiveError::from(DecodeError::Io {
                    input: input.to_string(),
                    context: "cannot start the stall watchdog",
                    source,
                })
            })?),
            None => None,
        };
        let (network, paced) = (is_network(input), is_paced(input));
        let mut opts = opts;
        if !paced {
            // Only local files are decoded in process: a stream goes straight to
            // the ffmpeg child, which starts after a second of probing.
            opts.backend = reel_decode::Backend::Ffmpeg;
            opts.limits.network_probe = Some(Duration::from_secs(1));
            // A stream joined midway starts between keyframes, and a lossy one
            // loses packets: the decoder conceals and goes on.
            opts.strict = false;
        }
        // A network stream is read over one connection, with no probe before it: a
        // publisher may serve a single client.
        opts.one_connection = network;
        Ok(Self {
            input: input.to_string(),
            network,
            paced,
            opts,
            pool: pool.clone(),
            ends_at: spec.duration.and_then(|d| Instant::now().checked_add(d)),
            spec,
            stats,
            cancel,
            inner: None,
            failures: 0,
            connects: 0,
            delivering: false,
            offset: 0.0,
            first_pts: None,
            last_pts: None,
            frame_s: 1.0 / 25.0,
            next_index: 0,
            watch,
            frozen: Frozen::default(),
        })
    }

    /// Whether the run should stop reading: cancelled, or past its duration.
    fn over(&self) -> bool {
        self.cancel.is_cancelled() || self.ends_at.is_some_and(|t| Instant::now() >= t)
    }

    /// Sleeps until `at`, waking for a cancellation; false when the run is over.
    fn sleep_until(&self, at: Instant) -> bool {
        loop {
            if self.over() {
                return false;
            }
            let now = Instant::now();
            if now >= at {
                return true;
            }
            std::thread::sleep((at - now).min(WAKE));
        }
    }

    /// Opens the input once; on failure, waits the backoff. `Ok(false)`: try again.
    fn connect(&mut self) -> Result<bool, LiveError> {
        match reel_decode::open(&self.input, &self.opts, &self.pool) {
            Ok(inner) => {
                let info = inner.info().clone();
                if info.fps > 0.0 {
                    self.frame_s = 1.0 / info.fps;
                }
                self.stats.set_info(info);
                self.stats.0.connected.store(true, Ordering::Relaxed);
                self.delivering = false;
                self.first_pts = None;
                self.inner = Some(inner);
                self.arm(None);
                Ok(true)
            }
            // Stopped while connecting (a probe killed to stop it): no failure.
            Err(_) if self.over() => Ok(false),
            Err(e) if self.network => self.failed(e),
            Err(e) => Err(e.into()),
        }
    }

    /// A connection attempt failed (to open, or before its first frame): counts
    /// it, gives up past the most allowed, else waits the backoff.
    fn failed(&mut self, e: DecodeError) -> Result<bool, LiveError> {
        self.failures += 1;
        self.stats.0.failed_connects.fetch_add(1, Ordering::Relaxed);
        if self
            .spec
            .reconnect
            .max_attempts
            .is_some_and(|n| self.failures > n)
        {
            return Err(LiveError::GaveUp {
                input: self.input.clone(),
                attempts: self.failures,
                source: Box::new(e),
            });
        }
        let wait = self.spec.reconnect.delay(self.failures);
        tracing::warn!(input = self.input, error = %e, ?wait, "cannot connect; trying again");
        self.sleep_until(Instant::now() + wait);
        Ok(false)
    }

    /// The current connection delivered a frame: the first one makes it count.
    fn delivered(&mut self) {
        if self.delivering {
            return;
        }
        self.delivering = true;
        self.failures = 0;
        self.connects += 1;
        if self.connects > 1 && self.network {
            self.stats.0.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!(input = self.input, "connected again");
        }
    }

    /// The watchdog watches `pid` (or nothing) from now on.
    fn arm(&self, pid: Option<u32>) {
        if let Some(w) = &self.watch {
            w.state.pid.store(pid.unwrap_or(0), Ordering::Release);
        }
    }

    /// The connection is gone: drop its decoder, and count a stall if the watchdog
    /// stopped it.
    fn disconnect(&mut self, why: &str) {
        self.inner = None;
        self.stats.0.connected.store(false, Ordering::Relaxed);
        if let Some(w) = &self.watch {
            w.state.pid.store(0, Ordering::Release);
            if w.state.stalled.swap(false, Ordering::AcqRel) {
                self.stats.0.stalls.fetch_add(1, Ordering::Relaxed);
            }
        }
        tracing::warn!(input = self.input, "{why}; connecting again");
    }

    /// Puts a frame on the run's timeline, paces it and stamps it.
    fn place(&mut self, mut frame: Frame) -> Option<Frame> {
        let now = Instant::now();
        let first = match self.first_pts {
            Some(p) => p,
            None => {
                // A new connection or a new loop: its timeline follows the last.
                self.offset = match (self.last_pts, self.network) {
                    (None, _) => 0.0,
                    (Some(last), false) => last + self.frame_s,
                    (Some(last), true) => self
                        .stats
                        .0
                        .epoch
                        .get()
                        .map_or(last + self.frame_s, |e| {
                            now.saturating_duration_since(*e).as_secs_f64()
                        })
                        .max(last + self.frame_s),
                };
                *self.first_pts.insert(frame.pts)
            }
        };
        let pts = self.offset + (frame.pts - first).max(0.0);
        // Timestamps come from the input: one out of any clock's range is now.
        let span = Duration::try_from_secs_f64(pts).ok();
        let epoch = self
            .stats
            .epoch(|| span.and_then(|d| now.checked_sub(d)).unwrap_or(now));
        frame.pts = pts;
        frame.index = self.next_index;
        self.next_index += 1;
        self.last_pts = Some(pts);
        if self.paced {
            let due = span.and_then(|d| epoch.checked_add(d)).unwrap_or(now);
            if !self.sleep_until(due) {
                return None;
            }
            frame.meta.captured_at = Some(due);
        } else {
            frame.meta.captured_at = Some(now);
            // The stream's clock runs from its earliest frame: frames that came in
            // a burst (what the decoder read while it probed) set it back.
            self.stats.arrived(now, epoch, pts);
        }
        self.watch_frozen(&frame);
        Some(frame)
    }

    fn watch_frozen(&mut self, frame: &Frame) {
        let Some(after) = self.spec.frozen_after else {
            return;
        };
        let hash = xxhash_rust::xxh3::xxh3_64(frame.data());
        if self.frozen.hash != Some(hash) {
            self.frozen = Frozen {
                hash: Some(hash),
                since: frame.pts,
                reported: false,
            };
        } else if !self.frozen.reported && frame.pts - self.frozen.since >= after.as_secs_f64() {
            self.frozen.reported = true;
            self.stats.0.frozen.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                input = self.input,
                seconds = frame.pts - self.frozen.since,
                "the picture has not changed: the source may be frozen"
            );
        }
    }

    fn touch(&self) {
        if let Some(w) = &self.watch {
            w.state.touch();
        }
    }

    /// The next frame on the run's timeline, `None` at the end (or when stopped).
    fn read(&mut self) -> Option<Result<Frame, LiveError>> {
        loop {
            if self.cancel.is_cancelled() {
                // An error, as a decoder killed to stop it gives: the pipeline,
                // told to stop, takes it for the interruption it is.
                self.inner = None;
                return Some(Err(LiveError::Stopped {
                    input: self.input.clone(),
                }));
            }
            if self.over() {
                self.inner = None;
                return None;
            }
            let Some(inner) = self.inner.as_mut() else {
                match self.connect() {
                    Ok(_) => {
                        self.touch();
                        continue;
                    }
                    Err(e) => return Some(Err(e)),
                }
            };
            let next = inner.read_frame();
            let pid = inner.process_id();
            // An unprobed stream is described once its first frame came.
            let described = (matches!(next, Some(Ok(_))) && !self.delivering && self.network)
                .then(|| inner.info().clone());
            match next {
                Some(Ok(frame)) => {
                    self.touch();
                    self.arm(pid);
                    if let Some(info) = described {
                        if info.fps > 0.0 {
                            self.frame_s = 1.0 / info.fps;
                        }
                        self.stats.set_info(info);
                    }
                    self.delivered();
                    match self.place(frame) {
                        Some(f) => return Some(Ok(f)),
                        None => continue,
                    }
                }
                _ if self.over() => continue,
                // A connection that never delivered a frame was a failed attempt.
                end if self.network && !self.delivering => {
                    self.disconnect("no frame came");
                    let e = match end {
                        Some(Err(e)) => e,
                        _ => DecodeError::Network {
                            input: self.input.clone(),
                            cause: "the stream ended before its first frame".into(),
                        },
                    };
                    if let Err(gave_up) = self.failed(e) {
                        return Some(Err(gave_up));
                    }
                }
                None if self.network => self.disconnect("the stream ended"),
                Some(Err(e)) if self.network => {
                    let why = format!("the stream failed: {e}");
                    self.disconnect(&why);
                }
                None if self.spec.loop_input && self.paced && self.last_pts.is_some() => {
                    // Start again at the beginning, on the same timeline.
                    self.inner = None;
                    self.first_pts = None;
                }
                None => return None,
                Some(Err(e)) => return Some(Err(e.into())),
            }
        }
    }
}

impl Source for LiveSource {
    fn name(&self) -> &str {
        &self.input
    }

    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
        self.read().map(|r| r.map_err(BoxError::from))
    }
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("input", &self.input)
            .field("network", &self.network)
            .field("paced", &self.paced)
            .field("connects", &self.connects)
            .finish_non_exhaustive()
    }
}
