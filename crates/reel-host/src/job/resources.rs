//! What every job of a process shares: one frame pool under one byte budget (which
//! follows the memory monitor), the models, the results cache.

use std::sync::Arc;

use reel_infer::{HubOptions, ModelManager};
use reel_pool::monitor::{MemoryProbe, MonitorConfig, Subscription};
use reel_pool::{FramePool, MemoryMonitor, PoolConfig};

use crate::cache::Cache;

/// The pool budget of a process when nothing sets one (the settings give one from
/// the machine's profile; this is for callers without settings).
pub const DEFAULT_POOL_BUDGET: u64 = 256 << 20;

/// The resources jobs run on. Any number of jobs may run on one `Resources` at
/// once (each from its own thread, or all from one): together they stay inside the
/// pool's budget, load each model once, and share the cache.
pub struct Resources {
    pool: FramePool,
    monitor: Arc<MemoryMonitor>,
    /// Keeps the pool following the monitor's pressure levels.
    _follow: Subscription,
    models: ModelManager,
    cache: Option<Cache>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("pool", &self.pool.stats())
            .field("cache", &self.cache.as_ref().map(Cache::dir))
            .finish_non_exhaustive()
    }
}

impl Resources {
    /// Resources with a pool of `pool_budget_bytes`, a memory monitor of this
    /// machine sampling on its own thread, models fetched as the environment says
    /// (`HF_HOME`, `HF_ENDPOINT`), and `cache` (`None`: no cache).
    pub fn new(pool_budget_bytes: u64, cache: Option<Cache>) -> Self {
        Self::with_monitor(
            pool_budget_bytes,
            cache,
            MemoryMonitor::start(MonitorConfig::default()),
            HubOptions::from_env(),
        )
    }

    /// Like [`new`](Self::new), with memory readings from `probe`, taken only when
    /// the returned resources' [`monitor`](Self::monitor) is polled (for tests, and
    /// for callers that sample on their own schedule).
    pub fn with_probe(
        pool_budget_bytes: u64,
        cache: Option<Cache>,
        probe: Box<dyn MemoryProbe>,
    ) -> Self {
        Self::with_monitor(
            pool_budget_bytes,
            cache,
            MemoryMonitor::manual_with_probe(MonitorConfig::default(), probe),
            HubOptions::from_env(),
        )
    }

    /// Resources over a monitor and hub options of the caller's.
    pub fn with_monitor(
        pool_budget_bytes: u64,
        cache: Option<Cache>,
        monitor: MemoryMonitor,
        hub: HubOptions,
    ) -> Self {
        let budget = usize::try_from(pool_budget_bytes).unwrap_or(usize::MAX);
        let pool = FramePool::new(PoolConfig::with_budget(budget));
        let monitor = Arc::new(monitor);
        let follow = pool.follow(&monitor);
        let models = ModelManager::new(Some(Arc::clone(&monitor)), hub);
        Self {
            pool,
            monitor,
            _follow: follow,
            models,
            cache,
        }
    }

    /// The frame pool every job takes its frames from.
    pub fn pool(&self) -> &FramePool {
        &self.pool
    }

    /// The memory monitor the pool (and the model manager) follow.
    pub fn monitor(&self) -> &MemoryMonitor {
        &self.monitor
    }

    /// The models, each loaded once.
    pub fn models(&self) -> &ModelManager {
        &self.models
    }

    /// The results cache, if there is one.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }
}
