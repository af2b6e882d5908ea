//! Live inputs: cameras, network streams, and files or `synthetic:` sources paced
//! at their own frame rate. A live job is an ordinary [`JobSpec`](crate::job::JobSpec)
//! with a [`LiveSpec`]: the engine runs it over the same pipeline, stages and sink
//! as any job; only the source differs ([`LiveSource`]: pacing, reconnects with
//! backoff, the stall watchdog, frozen-picture detection, one continuous timeline
//! over reconnects and loops) and the figures it reports ([`LiveSummary`]: drops by
//! reason, latency from arrival to sink, the stream's lag, reconnects, stalls).

mod source;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use reel_decode::VideoInfo;
use reel_sched::{QueuePolicy, Snapshot};
use serde::{Deserialize, Serialize};

pub use source::{LiveError, LiveSource};

/// What makes a job live: how its input is paced, reconnected and watched.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSpec {
    /// Start a local file again at its end (its timeline goes on).
    pub loop_input: bool,
    /// Stop after this long (the run then completes; it is not interrupted).
    pub duration: Option<Duration>,
    /// In balanced mode, how old a frame may grow waiting for room in a queue before
    /// the queue drops instead; `None` is the scheduler's default.
    pub max_staleness: Option<Duration>,
    /// How a network input is connected again.
    pub reconnect: Reconnect,
    /// A connected stream that delivers no frame for this long is stalled: its
    /// decoder is stopped and the stream connected again. Off by default (cameras
    /// that send on events are silent for long stretches).
    pub stall_timeout: Option<Duration>,
    /// The same picture repeated for this long is reported as a frozen source.
    pub frozen_after: Option<Duration>,
}

impl Default for LiveSpec {
    fn default() -> Self {
        Self {
            loop_input: false,
            duration: None,
            max_staleness: None,
            reconnect: Reconnect::default(),
            stall_timeout: None,
            frozen_after: Some(Duration::from_secs(5)),
        }
    }
}

/// Connecting a network input, the first time and after a loss: exponential
/// backoff from `initial`, doubling up to `max`, and at most `max_attempts` failed
/// attempts in a row (`None`: until stopped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reconnect {
    /// The wait after the first failed attempt.
    pub initial: Duration,
    /// The longest wait between attempts.
    pub max: Duration,
    /// Failed attempts in a row before the job fails.
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    /// 250 ms doubling up to 5 s, without end.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
            max_attempts: None,
        }
    }
}

impl Reconnect {
    /// The wait after `failures` failed attempts in a row (the first is 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        doubled.min(self.max)
    }
}

/// The live figures a source and the sink keep while a job runs; clones share them.
#[derive(Debug, Clone, Default)]
pub struct LiveStats(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    reconnects: AtomicU64,
    stalls: AtomicU64,
    frozen: AtomicU64,
    failed_connects: AtomicU64,
    connected: AtomicBool,
    /// The wall-clock instant of the stream's time zero.
    epoch: OnceLock<Instant>,
    /// The last delivered frame's lag behind the stream's clock, in nanoseconds.
    lag_ns: AtomicI64,
    lag_known: AtomicBool,
    /// How far ahead of the wall clock the earliest frame ever came, in
    /// nanoseconds (never above zero): the stream's clock starts there.
    ahead_ns: AtomicI64,
    info: Mutex<Option<VideoInfo>>,
}

impl LiveStats {
    /// Connections made again after one was lost.
    pub fn reconnects(&self) -> u64 {
        self.0.reconnects.load(Ordering::Relaxed)
    }

    /// Streams that stopped delivering frames for longer than the stall timeout.
    pub fn stalls(&self) -> u64 {
        self.0.stalls.load(Ordering::Relaxed)
    }

    /// Times the same picture went on for longer than `frozen_after`.
    pub fn frozen(&self) -> u64 {
        self.0.frozen.load(Ordering::Relaxed)
    }

    /// Connection attempts that failed.
    pub fn failed_connects(&self) -> u64 {
        self.0.failed_connects.load(Ordering::Relaxed)
    }

    /// Whether the input is connected now.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Relaxed)
    }

    /// How far the last frame the sink consumed was behind the stream's own clock
    /// (now minus the wall-clock time its timestamp stands for), once one was.
    pub fn stream_lag_s(&self) -> Option<f64> {
        self.0
            .lag_known
            .load(Ordering::Relaxed)
            .then(|| self.0.lag_ns.load(Ordering::Relaxed) as f64 / 1e9)
    }

    /// What the last connection's probe found.
    pub fn info(&self) -> Option<VideoInfo> {
        self.0
            .info
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The sink consumed a frame at `pts` on the stream's timeline (a job's sink
    /// calls it for every frame; a pipeline with a sink of its own calls it too).
    pub fn delivered(&self, pts: f64) {
        let Some(epoch) = self.0.epoch.get() else {
            return;
        };
        let now = epoch.elapsed().as_secs_f64();
        let lag = ((now - pts) * 1e9) as i64 - self.0.ahead_ns.load(Ordering::Relaxed);
        self.0.lag_ns.store(lag, Ordering::Relaxed);
        self.0.lag_known.store(true, Ordering::Relaxed);
    }

    /// A frame at `pts` arrived at `now`.
    fn arrived(&self, now: Instant, epoch: Instant, pts: f64) {
        let late = now.saturating_duration_since(epoch).as_secs_f64() - pts;
        self.0
            .ahead_ns
            .fetch_min(((late * 1e9) as i64).min(0), Ordering::Relaxed);
    }

    fn epoch(&self, at: impl FnOnce() -> Instant) -> Instant {
        *self.0.epoch.get_or_init(at)
    }

    fn set_info(&self, info: VideoInfo) {
        *self.0.info.lock().unwrap_or_else(PoisonError::into_inner) = Some(info);
    }
}

/// Frames the pipeline let go, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DroppedBy {
    /// A full queue made room for a newer frame (realtime: the newest frame wins).
    pub queue: u64,
    /// A frame waited in a full queue past its staleness limit (balanced).
    pub stale: u64,
    /// Left out at the source while the pipeline was behind (`--skip-behind`).
    pub skip: u64,
}

/// Latency from a frame's arrival (a paced file's: its scheduled time) to the end
/// of its consumption by the sink, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The longest.
    pub max: f64,
}

/// A live job's figures: in the summary, and once a second in `--stats`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LiveSummary {
    /// Frames read from the input.
    pub frames_in: u64,
    /// Frames the sink consumed.
    pub frames_out: u64,
    /// Frames let go, by reason (their sum is the summary's `dropped`).
    pub dropped_by: DroppedBy,
    /// Dropped frames as a fraction of the frames in.
    pub drop_rate: f64,
    /// Frames thrown away because the run was stopped (in = out + dropped + these).
    pub discarded: u64,
    /// From arrival to sink.
    pub latency_ms: LatencyMs,
    /// Now minus the stream's own clock at the last frame out; its slope over a run
    /// shows whether frames queue anywhere.
    pub stream_lag_s: Option<f64>,
    /// The processing scale (1.0 without adaptive quality).
    pub quality: f64,
    /// Frames out per second since the start.
    pub fps_out: f64,
    /// Connections made again after one was lost.
    pub reconnects: u64,
    /// Streams that went silent past the stall timeout.
    pub stalls: u64,
    /// Episodes of the same picture repeated past `frozen_after`.
    pub frozen: u64,
    /// Connection attempts that failed (the first connect's included).
    pub failed_connects: u64,
    /// The most frames in the pipeline at once.
    pub max_in_flight: u64,
}

impl LiveSummary {
    /// The figures of a pipeline's `snapshot` and the source's `stats`.
    pub fn of(snapshot: &Snapshot, stats: &LiveStats) -> Self {
        let mut by = DroppedBy {
            skip: snapshot.frames_skipped,
            ..DroppedBy::default()
        };
        for e in &snapshot.edges {
            match e.policy {
                QueuePolicy::BlockFor(_) => by.stale += e.dropped,
                _ => by.queue += e.dropped,
            }
        }
        let frames_in = snapshot.frames_in + snapshot.frames_skipped;
        let dropped = by.queue + by.stale + by.skip;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let l = &snapshot.latency;
        Self {
            frames_in,
            frames_out: snapshot.frames_out,
            dropped_by: by,
            drop_rate: if frames_in == 0 {
                0.0
            } else {
                dropped as f64 / frames_in as f64
            },
            discarded: snapshot.discarded,
            latency_ms: LatencyMs {
                p50: ms(l.p50),
                p95: ms(l.p95),
                p99: ms(l.p99),
                max: ms(l.max),
            },
            stream_lag_s: stats.stream_lag_s(),
            quality: f64::from(snapshot.quality.unwrap_or(1.0)),
            fps_out: snapshot.fps_out,
            reconnects: stats.reconnects(),
            stalls: stats.stalls(),
            frozen: stats.frozen(),
            failed_connects: stats.failed_connects(),
            max_in_flight: snapshot.max_in_flight,
        }
    }

    /// Every frame dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_by.queue + self.dropped_by.stale + self.dropped_by.skip
    }
}

/// Whether `input` is read over a network (a URL), so that it is connected again
/// when lost rather than ended.
pub fn is_network(input: &str) -> bool {
    input.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme != "file"
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// Whether `input` is paced at its own frame rate: a regular file or a
/// `synthetic:` source, which could otherwise be read faster than real time.
pub fn is_paced(input: &str) -> bool {
    reel_decode::synthetic::is_synthetic(input)
        || (!is_network(input) && std::fs::metadata(input).is_ok_and(|m| m.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let r = Reconnect {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(700),
            max_attempts: None,
        };
        let waits: Vec<u128> = (1..=5).map(|n| r.delay(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
        assert_eq!(r.delay(u32::MAX), Duration::from_millis(700));
    }

    #[test]
    fn inputs_are_told_apart() {
        assert!(is_network("tcp://127.0.0.1:9000"));
        assert!(is_network("rtsp://cam/stream"));
        assert!(!is_network("file:///tmp/x.mp4"));
        assert!(!is_network("clip.mp4"));
        assert!(is_paced("synthetic:duration=1"));
        assert!(!is_paced("udp://127.0.0.1:9000"));
        assert!(!is_paced("/definitely/not/here.mp4"));
    }
}
