//! The memory monitor: samples system memory and this process's resident set on a
//! background thread, classifies the pressure, and tells subscribers when the level
//! changes.
//!
//! Escalations are told at once; a fall back to a lower level is told only once the
//! cooldown since the last notification has passed and the lower level still holds,
//! so subscribers are not flooded by a reading that hovers around a threshold.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How much pressure the machine (or this process) is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum PressureLevel {
    /// Plenty of room.
    #[default]
    Normal,
    /// Getting full: release what is idle.
    Warning,
    /// Close to the limit: shrink budgets.
    Critical,
    /// About to fail: shed everything that can be shed.
    Emergency,
}

impl PressureLevel {
    /// The level's name, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            PressureLevel::Normal => "normal",
            PressureLevel::Warning => "warning",
            PressureLevel::Critical => "critical",
            PressureLevel::Emergency => "emergency",
        }
    }

    fn from_index(i: usize) -> Self {
        match i {
            0 => PressureLevel::Normal,
            1 => PressureLevel::Warning,
            2 => PressureLevel::Critical,
            _ => PressureLevel::Emergency,
        }
    }

    /// The level a reading falls in, given the warning, critical and emergency
    /// thresholds in increasing order.
    fn classify<T: PartialOrd>(value: T, thresholds: &[T; 3]) -> Self {
        let above = thresholds.iter().filter(|t| value >= **t).count();
        Self::from_index(above)
    }
}

impl fmt::Display for PressureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Thresholds for each level (warning, critical, emergency), on both the share of
/// system memory in use and the bytes this process holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Percent of system memory in use (0–100) at which each level starts.
    pub system_percent: [f64; 3],
    /// Resident bytes of this process at which each level starts (`None`: no limit
    /// on the process itself).
    pub process_bytes: Option<[u64; 3]>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            system_percent: [80.0, 90.0, 95.0],
            process_bytes: None,
        }
    }
}

/// How a [`MemoryMonitor`] samples and notifies.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Time between samples on the background thread.
    pub interval: Duration,
    /// The least time between two notifications of a lower level.
    pub cooldown: Duration,
    /// Where the levels start.
    pub thresholds: Thresholds,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(500),
            cooldown: Duration::from_secs(2),
            thresholds: Thresholds::default(),
        }
    }
}

/// One reading of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemorySample {
    /// Memory the system (or the container's limit, when smaller) has in all.
    pub total_bytes: u64,
    /// Memory that can still be had without swapping.
    pub available_bytes: u64,
    /// This process's resident set.
    pub process_rss_bytes: u64,
}

impl MemorySample {
    /// Percent of memory in use.
    pub fn used_percent(&self) -> f64 {
        if self.total_bytes == 0 {
            return 0.0;
        }
        let used = self.total_bytes.saturating_sub(self.available_bytes);
        used as f64 * 100.0 / self.total_bytes as f64
    }
}

/// Where samples come from. The default reads the real system through `sysinfo`;
/// tests script their own readings.
pub trait MemoryProbe: Send {
    /// Reads memory now.
    fn sample(&mut self) -> MemorySample;
}

/// Reads the real machine through `sysinfo`, honouring a container's memory limit.
/// On a platform `sysinfo` cannot read, every sample is zero (and the level stays
/// normal).
pub struct SysinfoProbe {
    system: Option<sysinfo::System>,
    pid: Option<sysinfo::Pid>,
}

impl SysinfoProbe {
    /// A probe of this machine and this process.
    pub fn new() -> Self {
        Self {
            system: sysinfo::System::new().ok(),
            pid: sysinfo::get_current_pid().ok(),
        }
    }
}

impl Default for SysinfoProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryProbe for SysinfoProbe {
    fn sample(&mut self) -> MemorySample {
        let Some(system) = self.system.as_mut() else {
            return MemorySample::default();
        };
        system.refresh_memory();
        let mut total = system.total_memory();
        let mut available = system.available_memory();
        if let Some(limits) = system
            .cgroup_limits()
            .filter(|l| l.total_memory > 0 && l.total_memory < total)
        {
            total = limits.total_memory;
            available = available.min(limits.free_memory);
        }
        let process_rss_bytes = match self.pid {
            Some(pid) => {
                system.refresh_processes_specifics(
                    sysinfo::ProcessesToUpdate::Some(&[pid]),
                    false,
                    sysinfo::ProcessRefreshKind::nothing().with_memory(),
                );
                system.process(pid).map_or(0, |p| p.memory())
            }
            None => 0,
        };
        MemorySample {
            total_bytes: total,
            available_bytes: available,
            process_rss_bytes,
        }
    }
}

/// Usage reported by an extra memory source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceUsage {
    /// Bytes in use.
    pub used_bytes: u64,
    /// Bytes in all.
    pub total_bytes: u64,
}

/// An extra pool of memory the monitor should watch, such as a GPU's. Its pressure
/// is classified with the system-percent thresholds.
pub trait MemorySource: Send + Sync {
    /// A short name for logs and reports (`"cuda:0"`).
    fn name(&self) -> &str;
    /// Usage now, or `None` when it cannot be read.
    fn usage(&self) -> Option<SourceUsage>;
}

type Callback = Arc<dyn Fn(PressureLevel) + Send + Sync>;

struct Subscriber {
    id: u64,
    callback: Callback,
}

struct Status {
    sample: MemorySample,
    level: PressureLevel,
    notified: PressureLevel,
    last_notified_at: Option<Instant>,
}

struct Shared {
    config: MonitorConfig,
    probe: Mutex<Box<dyn MemoryProbe>>,
    sources: Mutex<Vec<Arc<dyn MemorySource>>>,
    status: Mutex<Status>,
    subscribers: Mutex<Vec<Subscriber>>,
    next_id: AtomicU64,
    stop: AtomicBool,
    wake: std::sync::Condvar,
    sleeper: Mutex<()>,
}

impl Shared {
    fn level_of(&self, sample: &MemorySample) -> PressureLevel {
        let t = &self.config.thresholds;
        let mut level = PressureLevel::classify(sample.used_percent(), &t.system_percent);
        if let Some(limits) = &t.process_bytes {
            level = level.max(PressureLevel::classify(sample.process_rss_bytes, limits));
        }
        let sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        for source in sources.iter() {
            if let Some(u) = source.usage().filter(|u| u.total_bytes > 0) {
                let pct = u.used_bytes as f64 * 100.0 / u.total_bytes as f64;
                level = level.max(PressureLevel::classify(pct, &t.system_percent));
            }
        }
        level
    }

    /// Takes a sample, classifies it, and notifies subscribers if the level change
    /// is due. Returns the level now.
    fn poll(&self, now: Instant) -> PressureLevel {
        let sample = self
            .probe
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sample();
        let level = self.level_of(&sample);
        let notify = {
            let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
            status.sample = sample;
            status.level = level;
            let due = match status.last_notified_at {
                None => true,
                Some(at) => now.saturating_duration_since(at) >= self.config.cooldown,
            };
            let tell = level > status.notified || (level < status.notified && due);
            if tell {
                status.notified = level;
                status.last_notified_at = Some(now);
            }
            tell
        };
        if notify {
            tracing::info!(
                %level,
                used_percent = format_args!("{:.1}", sample.used_percent()),
                rss = sample.process_rss_bytes,
                "memory pressure level changed"
            );
            let callbacks: Vec<Callback> = self
                .subscribers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|s| Arc::clone(&s.callback))
                .collect();
            for cb in callbacks {
                cb(level);
            }
        }
        level
    }
}

/// Watches memory and tells subscribers of pressure level changes.
///
/// [`MemoryMonitor::start`] samples on a background thread that stops when the last
/// handle is dropped; [`MemoryMonitor::manual`] samples only when
/// [`poll`](Self::poll) is called, for deterministic tests and one-shot readings.
#[derive(Clone)]
pub struct MemoryMonitor {
    shared: Arc<Shared>,
    _thread: Option<Arc<ThreadGuard>>,
}

struct ThreadGuard {
    shared: Weak<Shared>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.stop.store(true, Ordering::SeqCst);
            // Taking the sleeper's lock orders the store before the thread's check.
            let _sleeping = shared
                .sleeper
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            shared.wake.notify_all();
        }
        let handle = self
            .handle
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl fmt::Debug for MemoryMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryMonitor")
            .field("config", &self.shared.config)
            .field("level", &self.level())
            .finish()
    }
}

/// Keeps a subscriber registered; dropping it unsubscribes.
#[must_use = "dropping the subscription unsubscribes at once"]
pub struct Subscription {
    shared: Weak<Shared>,
    id: u64,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared
                .subscribers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|s| s.id != self.id);
        }
    }
}

impl MemoryMonitor {
    /// Starts monitoring the real machine on a background thread.
    pub fn start(config: MonitorConfig) -> Self {
        Self::start_with_probe(config, Box::new(SysinfoProbe::new()))
    }

    /// Starts monitoring with the given probe on a background thread.
    pub fn start_with_probe(config: MonitorConfig, probe: Box<dyn MemoryProbe>) -> Self {
        let mut monitor = Self::manual_with_probe(config, probe);
        let weak = Arc::downgrade(&monitor.shared);
        let interval = monitor.shared.config.interval;
        let spawned = std::thread::Builder::new()
            .name("reel-memory-monitor".into())
            .spawn(move || {
                loop {
                    let Some(shared) = weak.upgrade() else { return };
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    shared.poll(Instant::now());
                    let guard = shared
                        .sleeper
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let _ = shared.wake.wait_timeout(guard, interval);
                }
            });
        match spawned {
            Ok(handle) => {
                monitor._thread = Some(Arc::new(ThreadGuard {
                    shared: Arc::downgrade(&monitor.shared),
                    handle: Mutex::new(Some(handle)),
                }));
            }
            Err(e) => {
                tracing::warn!(
                    "memory monitor thread could not start ({e}); sampling on demand only"
                );
            }
        }
        monitor
    }

    /// A monitor of the real machine that samples only when polled.
    pub fn manual(config: MonitorConfig) -> Self {
        Self::manual_with_probe(config, Box::new(SysinfoProbe::new()))
    }

    /// A monitor with the given probe that samples only when polled. The first
    /// sample is taken now.
    pub fn manual_with_probe(config: MonitorConfig, probe: Box<dyn MemoryProbe>) -> Self {
        let shared = Arc::new(Shared {
            config,
            probe: Mutex::new(probe),
            sources: Mutex::new(Vec::new()),
            status: Mutex::new(Status {
                sample: MemorySample::default(),
                level: PressureLevel::Normal,
                notified: PressureLevel::Normal,
                last_notified_at: None,
            }),
            subscribers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            wake: std::sync::Condvar::new(),
            sleeper: Mutex::new(()),
        });
        {
            let sample = shared
                .probe
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sample();
            let level = shared.level_of(&sample);
            let mut status = shared.status.lock().unwrap_or_else(PoisonError::into_inner);
            status.sample = sample;
            status.level = level;
        }
        Self {
            shared,
            _thread: None,
        }
    }

    /// The configuration the monitor runs with.
    pub fn config(&self) -> &MonitorConfig {
        &self.shared.config
    }

    /// Samples now, as of `now`, notifying subscribers if a change is due, and
    /// returns the level.
    pub fn poll(&self, now: Instant) -> PressureLevel {
        self.shared.poll(now)
    }

    /// The latest sample.
    pub fn latest(&self) -> MemorySample {
        self.shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sample
    }

    /// The level of the latest sample.
    pub fn level(&self) -> PressureLevel {
        self.shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .level
    }

    /// Bytes that can still be had, as of the latest sample.
    pub fn available_bytes(&self) -> u64 {
        self.latest().available_bytes
    }

    /// Whether `bytes` more can be taken without reaching the warning threshold.
    pub fn can_reserve(&self, bytes: u64) -> bool {
        let s = self.latest();
        if s.total_bytes == 0 {
            return true;
        }
        let t = &self.shared.config.thresholds;
        let warn_used = (s.total_bytes as f64 * t.system_percent[0] / 100.0) as u64;
        let used = s.total_bytes.saturating_sub(s.available_bytes);
        let system_ok = used.saturating_add(bytes) < warn_used;
        let process_ok = t
            .process_bytes
            .is_none_or(|p| s.process_rss_bytes.saturating_add(bytes) < p[0]);
        system_ok && process_ok
    }

    /// How many items of `bytes_per_item` fit now without reaching the warning
    /// threshold, clamped to `floor..=ceiling` (the floor is returned even when not
    /// even one fits: the caller needs to make progress).
    pub fn batch_size(&self, bytes_per_item: u64, floor: usize, ceiling: usize) -> usize {
        let ceiling = ceiling.max(floor);
        if bytes_per_item == 0 {
            return ceiling;
        }
        let s = self.latest();
        let t = &self.shared.config.thresholds;
        let warn_used = (s.total_bytes as f64 * t.system_percent[0] / 100.0) as u64;
        let used = s.total_bytes.saturating_sub(s.available_bytes);
        let mut room = warn_used.saturating_sub(used);
        if let Some(p) = &t.process_bytes {
            room = room.min(p[0].saturating_sub(s.process_rss_bytes));
        }
        let fit = usize::try_from(room / bytes_per_item).unwrap_or(usize::MAX);
        fit.clamp(floor, ceiling)
    }

    /// Adds an extra memory source (a GPU) whose usage also sets the level.
    pub fn add_source(&self, source: Arc<dyn MemorySource>) {
        self.shared
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(source);
    }

    /// Calls `callback` with the new level whenever a change is told. The callback
    /// runs on the sampling thread and should be quick.
    pub fn subscribe(
        &self,
        callback: impl Fn(PressureLevel) + Send + Sync + 'static,
    ) -> Subscription {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Subscriber {
                id,
                callback: Arc::new(callback),
            });
        Subscription {
            shared: Arc::downgrade(&self.shared),
            id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    const GIB: u64 = 1 << 30;

    /// Replays a script of used-percent readings on a 10 GiB machine.
    struct Script(Arc<Mutex<VecDeque<f64>>>);

    impl MemoryProbe for Script {
        fn sample(&mut self) -> MemorySample {
            let pct = self.0.lock().unwrap().pop_front().unwrap_or(0.0);
            let total = 10 * GIB;
            MemorySample {
                total_bytes: total,
                available_bytes: total - (total as f64 * pct / 100.0) as u64,
                process_rss_bytes: GIB,
            }
        }
    }

    fn scripted(readings: &[f64], cooldown: Duration) -> MemoryMonitor {
        let script = Arc::new(Mutex::new(readings.iter().copied().collect()));
        MemoryMonitor::manual_with_probe(
            MonitorConfig {
                cooldown,
                ..MonitorConfig::default()
            },
            Box::new(Script(script)),
        )
    }

    #[test]
    fn levels_follow_thresholds() {
        let t = [80.0, 90.0, 95.0];
        assert_eq!(PressureLevel::classify(10.0, &t), PressureLevel::Normal);
        assert_eq!(PressureLevel::classify(80.0, &t), PressureLevel::Warning);
        assert_eq!(PressureLevel::classify(92.0, &t), PressureLevel::Critical);
        assert_eq!(PressureLevel::classify(99.0, &t), PressureLevel::Emergency);
    }

    #[test]
    fn escalations_are_told_at_once_and_falls_after_the_cooldown() {
        // First reading is taken at construction.
        let m = scripted(
            &[10.0, 85.0, 96.0, 50.0, 50.0, 50.0],
            Duration::from_secs(2),
        );
        let told = Arc::new(Mutex::new(Vec::new()));
        let t2 = Arc::clone(&told);
        let _sub = m.subscribe(move |l| t2.lock().unwrap().push(l));
        let t0 = Instant::now();
        assert_eq!(m.poll(t0), PressureLevel::Warning);
        assert_eq!(
            m.poll(t0 + Duration::from_millis(100)),
            PressureLevel::Emergency
        );
        // Back to normal, but within the cooldown: not told yet.
        assert_eq!(
            m.poll(t0 + Duration::from_millis(200)),
            PressureLevel::Normal
        );
        assert_eq!(told.lock().unwrap().len(), 2);
        m.poll(t0 + Duration::from_millis(1000));
        assert_eq!(told.lock().unwrap().len(), 2);
        // Still normal after the cooldown: told once.
        m.poll(t0 + Duration::from_millis(2200));
        assert_eq!(
            *told.lock().unwrap(),
            vec![
                PressureLevel::Warning,
                PressureLevel::Emergency,
                PressureLevel::Normal
            ]
        );
    }

    #[test]
    fn dropping_the_subscription_unsubscribes() {
        let m = scripted(&[10.0, 85.0], Duration::ZERO);
        let told = Arc::new(AtomicU64::new(0));
        let t2 = Arc::clone(&told);
        let sub = m.subscribe(move |_| {
            t2.fetch_add(1, Ordering::SeqCst);
        });
        drop(sub);
        m.poll(Instant::now());
        assert_eq!(told.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn reserve_and_batch_size_respect_the_warning_threshold() {
        // 50 % of 10 GiB used; warning at 80 %: 3 GiB of room.
        let m = scripted(&[50.0], Duration::ZERO);
        assert!(m.can_reserve(2 * GIB));
        assert!(!m.can_reserve(4 * GIB));
        assert_eq!(m.batch_size(GIB, 1, 16), 3);
        assert_eq!(m.batch_size(GIB / 4, 1, 8), 8);
        assert_eq!(m.batch_size(8 * GIB, 1, 8), 1);
    }

    #[test]
    fn process_thresholds_raise_the_level() {
        let script = Arc::new(Mutex::new(VecDeque::from([10.0])));
        let m = MemoryMonitor::manual_with_probe(
            MonitorConfig {
                thresholds: Thresholds {
                    process_bytes: Some([GIB / 2, GIB, 2 * GIB]),
                    ..Thresholds::default()
                },
                ..MonitorConfig::default()
            },
            Box::new(Script(script)),
        );
        // The scripted process holds 1 GiB: critical by the process thresholds.
        assert_eq!(m.level(), PressureLevel::Critical);
    }

    struct FakeGpu;
    impl MemorySource for FakeGpu {
        fn name(&self) -> &str {
            "gpu"
        }
        fn usage(&self) -> Option<SourceUsage> {
            Some(SourceUsage {
                used_bytes: 91,
                total_bytes: 100,
            })
        }
    }

    #[test]
    fn extra_sources_count() {
        let m = scripted(&[10.0, 10.0], Duration::ZERO);
        assert_eq!(m.level(), PressureLevel::Normal);
        m.add_source(Arc::new(FakeGpu));
        assert_eq!(m.poll(Instant::now()), PressureLevel::Critical);
    }

    #[test]
    fn the_real_machine_is_read() {
        let m = MemoryMonitor::manual(MonitorConfig::default());
        let s = m.latest();
        assert!(s.total_bytes > 0);
        assert!(s.available_bytes <= s.total_bytes);
        assert!(s.process_rss_bytes > 0);
    }

    #[test]
    fn the_background_thread_samples_and_stops() {
        let script = Arc::new(Mutex::new(VecDeque::from(vec![10.0; 1000])));
        let polled = Arc::clone(&script);
        let m = MemoryMonitor::start_with_probe(
            MonitorConfig {
                interval: Duration::from_millis(1),
                ..MonitorConfig::default()
            },
            Box::new(Script(script)),
        );
        while polled.lock().unwrap().len() > 990 {
            std::thread::yield_now();
        }
        drop(m);
        let left = polled.lock().unwrap().len();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(polled.lock().unwrap().len(), left, "the thread stopped");
    }
}
