//! The frame buffer pool: a byte budget, free lists per size class, and guards that
//! return their buffer on drop.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::class::size_class;
use crate::monitor::{MemoryMonitor, PressureLevel, Subscription};

/// Alignment of every pooled buffer, in bytes: enough for AVX-512 loads and for
/// viewing the bytes as `f32` tensors.
pub const BUFFER_ALIGN: usize = 64;

/// How a [`FramePool`] is sized and behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// The soft budget: normal requests wait rather than take the pool past it.
    pub budget_bytes: usize,
    /// The hard limit: critical requests may take the pool up to it, never past.
    /// Values below `budget_bytes` are raised to it.
    pub hard_limit_bytes: usize,
    /// Zero every buffer when it comes back, so that one stream's pixels can never be
    /// seen by the next user of the buffer.
    pub secure: bool,
    /// The lowest the effective budget may shrink to under memory pressure.
    pub min_budget_bytes: usize,
}

impl PoolConfig {
    /// A pool of `budget_bytes`, with a hard limit 25 % above it, not secure, and a
    /// pressure floor of a quarter of the budget.
    pub fn with_budget(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            hard_limit_bytes: budget_bytes.saturating_add(budget_bytes / 4),
            secure: false,
            min_budget_bytes: budget_bytes / 4,
        }
    }

    /// Sets secure mode (zeroing on return).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets the hard limit for critical requests.
    pub fn hard_limit(mut self, bytes: usize) -> Self {
        self.hard_limit_bytes = bytes;
        self
    }
}

/// Who is asking: critical requests may go past the soft budget, up to the hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Waits while the soft budget is spent.
    #[default]
    Normal,
    /// May use the headroom between the soft budget and the hard limit (for example a
    /// frame that must be processed to keep a live stream's state consistent).
    Critical,
}

/// Why the pool could not hand out a buffer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// The request is larger than the pool could ever hold.
    #[error("a buffer of {requested} bytes exceeds the pool's {limit}-byte budget")]
    TooLarge {
        /// Bytes asked for (after rounding to the size class).
        requested: usize,
        /// The budget (or hard limit, for critical requests) it was compared with.
        limit: usize,
    },
    /// No buffer came back within the time allowed.
    #[error("no {requested}-byte buffer came back to the pool within {waited:?}")]
    Timeout {
        /// Bytes asked for.
        requested: usize,
        /// How long the request waited.
        waited: Duration,
    },
    /// The pool's budget is spent and the caller asked not to wait.
    #[error("the pool's budget is spent")]
    WouldBlock,
    /// The system allocator refused the memory.
    #[error("the system allocator refused {bytes} bytes")]
    AllocFailed {
        /// Bytes asked of the allocator.
        bytes: usize,
    },
}

/// A consistent picture of the pool's counters, cheap to take at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// The configured soft budget.
    pub budget_bytes: usize,
    /// The budget in force now (smaller than `budget_bytes` under memory pressure).
    pub effective_budget_bytes: usize,
    /// The hard limit for critical requests.
    pub hard_limit_bytes: usize,
    /// Requests served from a free list.
    pub hits: u64,
    /// Requests that needed a fresh allocation.
    pub misses: u64,
    /// Bytes the pool holds now, in use or idle.
    pub bytes_allocated: usize,
    /// Bytes held by live guards.
    pub bytes_in_use: usize,
    /// Buffers held by live guards.
    pub buffers_in_use: usize,
    /// The most bytes the pool ever held at once.
    pub peak_bytes: usize,
    /// Requests that had to wait for a buffer to come back.
    pub waits: u64,
    /// Total time spent waiting, over all requests.
    pub wait_time: Duration,
    /// Idle buffers released (to make room for another size, or under pressure).
    pub trimmed: u64,
}

/// A block of memory owned by the pool while idle.
struct Block {
    ptr: NonNull<u8>,
    cap: usize,
}

// SAFETY: a Block is a uniquely owned heap allocation; moving it between threads is
// no different from moving a Box<[u8]>.
unsafe impl Send for Block {}

impl Block {
    fn layout(cap: usize) -> Option<Layout> {
        Layout::from_size_align(cap, BUFFER_ALIGN).ok()
    }

    fn allocate(cap: usize) -> Result<Self, PoolError> {
        let layout = Self::layout(cap).ok_or(PoolError::AllocFailed { bytes: cap })?;
        // SAFETY: `cap` is a size class, never zero, so the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        NonNull::new(ptr)
            .map(|ptr| Block { ptr, cap })
            .ok_or(PoolError::AllocFailed { bytes: cap })
    }

    fn free(self) {
        if let Some(layout) = Self::layout(self.cap) {
            // SAFETY: the block was allocated by `allocate` with this same layout and
            // is owned by nobody else.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

/// Idle blocks of one size class.
struct FreeList {
    class: usize,
    blocks: Vec<Block>,
}

struct State {
    /// Free lists, sorted by class.
    free: Vec<FreeList>,
    allocated: usize,
    in_use: usize,
    buffers_in_use: usize,
    effective_budget: usize,
}

impl State {
    fn idle_bytes(&self) -> usize {
        self.allocated - self.in_use
    }

    fn list_mut(&mut self, class: usize) -> Option<&mut FreeList> {
        self.free
            .binary_search_by_key(&class, |l| l.class)
            .ok()
            .map(|i| &mut self.free[i])
    }

    fn push_free(&mut self, block: Block) {
        match self.free.binary_search_by_key(&block.cap, |l| l.class) {
            Ok(i) => self.free[i].blocks.push(block),
            Err(i) => self.free.insert(
                i,
                FreeList {
                    class: block.cap,
                    blocks: vec![block],
                },
            ),
        }
    }

    /// Releases idle blocks, largest classes first, until `needed` bytes are freed or
    /// nothing idle is left. Returns the blocks to free outside the lock.
    fn evict(&mut self, needed: usize, out: &mut Vec<Block>) {
        let mut freed = 0;
        for list in self.free.iter_mut().rev() {
            while freed < needed {
                match list.blocks.pop() {
                    Some(block) => {
                        freed += block.cap;
                        self.allocated -= block.cap;
                        out.push(block);
                    }
                    None => break,
                }
            }
        }
    }
}

struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    waits: AtomicU64,
    wait_nanos: AtomicU64,
    trimmed: AtomicU64,
    allocated: AtomicUsize,
    in_use: AtomicUsize,
    buffers_in_use: AtomicUsize,
    peak: AtomicUsize,
    effective_budget: AtomicUsize,
}

struct Inner {
    config: PoolConfig,
    state: Mutex<State>,
    returned: Condvar,
    counters: Counters,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent: every
        // critical section updates its fields before anything that can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, state: &State) {
        let c = &self.counters;
        c.allocated.store(state.allocated, Ordering::Relaxed);
        c.in_use.store(state.in_use, Ordering::Relaxed);
        c.buffers_in_use
            .store(state.buffers_in_use, Ordering::Relaxed);
        c.peak.fetch_max(state.allocated, Ordering::Relaxed);
        c.effective_budget
            .store(state.effective_budget, Ordering::Relaxed);
    }

    fn release(&self, ptr: NonNull<u8>, cap: usize) {
        let block = Block { ptr, cap };
        if self.config.secure {
            // SAFETY: the block is `cap` bytes long and owned by us alone now.
            unsafe { std::ptr::write_bytes(block.ptr.as_ptr(), 0, cap) };
        }
        let mut state = self.lock();
        state.in_use -= cap;
        state.buffers_in_use -= 1;
        let to_free = if state.allocated > state.effective_budget {
            // The budget shrank under pressure while this buffer was out: give it back
            // to the system instead of keeping it idle.
            state.allocated -= cap;
            self.counters.trimmed.fetch_add(1, Ordering::Relaxed);
            Some(block)
        } else {
            state.push_free(block);
            None
        };
        self.publish(&state);
        drop(state);
        self.returned.notify_all();
        if let Some(block) = to_free {
            block.free();
        }
    }
}

/// A pool of frame buffers under a byte budget. Cloning gives another handle to the
/// same pool.
///
/// ```
/// use reel_pool::{FramePool, PoolConfig};
///
/// let pool = FramePool::new(PoolConfig::with_budget(64 << 20));
/// let mut frame = pool.acquire(1920 * 1080 * 3)?;
/// frame[0] = 255;
/// drop(frame); // back in the pool, ready for the next frame
/// assert_eq!(pool.stats().bytes_in_use, 0);
/// # Ok::<(), reel_pool::PoolError>(())
/// ```
#[derive(Clone)]
pub struct FramePool {
    inner: Arc<Inner>,
}

impl fmt::Debug for FramePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramePool")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// How long a request may wait.
#[derive(Clone, Copy)]
enum Wait {
    No,
    Until(Instant),
    Forever,
}

impl FramePool {
    /// Creates a pool; nothing is allocated until the first request or [`prewarm`].
    ///
    /// [`prewarm`]: FramePool::prewarm
    pub fn new(mut config: PoolConfig) -> Self {
        config.hard_limit_bytes = config.hard_limit_bytes.max(config.budget_bytes);
        config.min_budget_bytes = config.min_budget_bytes.min(config.budget_bytes);
        let counters = Counters {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            wait_nanos: AtomicU64::new(0),
            trimmed: AtomicU64::new(0),
            allocated: AtomicUsize::new(0),
            in_use: AtomicUsize::new(0),
            buffers_in_use: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            effective_budget: AtomicUsize::new(config.budget_bytes),
        };
        let state = State {
            free: Vec::new(),
            allocated: 0,
            in_use: 0,
            buffers_in_use: 0,
            effective_budget: config.budget_bytes,
        };
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
                returned: Condvar::new(),
                counters,
            }),
        }
    }

    /// A pool of `budget_bytes` with the default settings of [`PoolConfig::with_budget`].
    pub fn with_budget(budget_bytes: usize) -> Self {
        Self::new(PoolConfig::with_budget(budget_bytes))
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// A buffer of `len` bytes, waiting as long as it takes for the budget to allow it.
    ///
    /// The buffer's contents are unspecified (zero when fresh or in secure mode).
    /// Fails at once when `len` exceeds the whole budget: waiting could never help.
    pub fn acquire(&self, len: usize) -> Result<PooledBuf, PoolError> {
        self.acquire_inner(len, Priority::Normal, Wait::Forever)
    }

    /// Like [`acquire`](Self::acquire) but gives up after `timeout`.
    pub fn acquire_timeout(&self, len: usize, timeout: Duration) -> Result<PooledBuf, PoolError> {
        let wait = Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until);
        self.acquire_inner(len, Priority::Normal, wait)
    }

    /// A buffer now, or [`PoolError::WouldBlock`] if the budget is spent.
    pub fn try_acquire(&self, len: usize) -> Result<PooledBuf, PoolError> {
        self.acquire_inner(len, Priority::Normal, Wait::No)
    }

    /// A buffer with the given priority, waiting at most `timeout` (`None`: forever).
    pub fn acquire_with(
        &self,
        len: usize,
        priority: Priority,
        timeout: Option<Duration>,
    ) -> Result<PooledBuf, PoolError> {
        let wait = match timeout {
            None => Wait::Forever,
            Some(t) => Instant::now()
                .checked_add(t)
                .map_or(Wait::Forever, Wait::Until),
        };
        self.acquire_inner(len, priority, wait)
    }

    fn acquire_inner(
        &self,
        len: usize,
        priority: Priority,
        wait: Wait,
    ) -> Result<PooledBuf, PoolError> {
        let inner = &self.inner;
        let cfg = &inner.config;
        let ceiling = match priority {
            Priority::Normal => cfg.budget_bytes,
            Priority::Critical => cfg.hard_limit_bytes,
        };
        let class = size_class(len).ok_or(PoolError::TooLarge {
            requested: len,
            limit: ceiling,
        })?;
        if class > ceiling {
            return Err(PoolError::TooLarge {
                requested: class,
                limit: ceiling,
            });
        }

        let mut waited_since: Option<Instant> = None;
        let mut evicted = Vec::new();
        let mut state = inner.lock();
        let outcome = loop {
            if let Some(block) = state.list_mut(class).and_then(|l| l.blocks.pop()) {
                state.in_use += class;
                state.buffers_in_use += 1;
                inner.counters.hits.fetch_add(1, Ordering::Relaxed);
                break Ok(Some(block));
            }
            let limit = match priority {
                Priority::Normal => state.effective_budget,
                Priority::Critical => cfg.hard_limit_bytes,
            };
            if state.allocated + class <= limit {
                state.allocated += class;
                state.in_use += class;
                state.buffers_in_use += 1;
                inner.counters.misses.fetch_add(1, Ordering::Relaxed);
                break Ok(None);
            }
            let shortfall = state.allocated + class - limit;
            if state.idle_bytes() > 0 {
                let before = evicted.len();
                state.evict(shortfall, &mut evicted);
                inner
                    .counters
                    .trimmed
                    .fetch_add((evicted.len() - before) as u64, Ordering::Relaxed);
                if state.allocated + class <= limit {
                    continue;
                }
            }
            // Nothing idle is left to release: wait for a buffer to come back.
            let now = Instant::now();
            let start = *waited_since.get_or_insert_with(|| {
                inner.counters.waits.fetch_add(1, Ordering::Relaxed);
                now
            });
            state = match wait {
                Wait::No => break Err(PoolError::WouldBlock),
                Wait::Forever => inner
                    .returned
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Wait::Until(deadline) => {
                    if now >= deadline {
                        break Err(PoolError::Timeout {
                            requested: class,
                            waited: now - start,
                        });
                    }
                    inner
                        .returned
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        };
        inner.publish(&state);
        drop(state);
        if let Some(start) = waited_since {
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            inner
                .counters
                .wait_nanos
                .fetch_add(nanos, Ordering::Relaxed);
        }
        for block in evicted {
            block.free();
        }

        let block = match outcome? {
            Some(block) => block,
            None => match Block::allocate(class) {
                Ok(block) => block,
                Err(e) => {
                    let mut state = inner.lock();
                    state.allocated -= class;
                    state.in_use -= class;
                    state.buffers_in_use -= 1;
                    inner.publish(&state);
                    drop(state);
                    inner.returned.notify_all();
                    return Err(e);
                }
            },
        };
        Ok(PooledBuf {
            ptr: block.ptr,
            len,
            cap: block.cap,
            pool: Arc::clone(&self.inner),
        })
    }

    /// Allocates `count` buffers of `len` bytes up front, as far as the budget allows,
    /// and leaves them idle. Returns how many were added.
    pub fn prewarm(&self, count: usize, len: usize) -> Result<usize, PoolError> {
        let mut held = Vec::with_capacity(count);
        for _ in 0..count {
            match self.try_acquire(len) {
                Ok(buf) => held.push(buf),
                Err(PoolError::WouldBlock) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(held.len())
    }

    /// Releases every idle buffer back to the system. Returns the bytes released.
    pub fn trim(&self) -> usize {
        let mut evicted = Vec::new();
        let mut state = self.inner.lock();
        let before = state.allocated;
        state.evict(usize::MAX, &mut evicted);
        let released = before - state.allocated;
        self.inner
            .counters
            .trimmed
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        self.inner.publish(&state);
        drop(state);
        for block in evicted {
            block.free();
        }
        released
    }

    /// Reacts to a memory pressure level: idle buffers are released from `Warning` up,
    /// and the effective budget shrinks to half under `Critical` and to a quarter under
    /// `Emergency` (never below the configured floor). `Normal` restores the budget.
    pub fn apply_pressure(&self, level: PressureLevel) {
        let cfg = &self.inner.config;
        let budget = match level {
            PressureLevel::Normal | PressureLevel::Warning => cfg.budget_bytes,
            PressureLevel::Critical => cfg.budget_bytes / 2,
            PressureLevel::Emergency => cfg.budget_bytes / 4,
        }
        .max(cfg.min_budget_bytes);
        {
            let mut state = self.inner.lock();
            state.effective_budget = budget;
            self.inner.publish(&state);
        }
        // A larger budget may let waiting requests through.
        self.inner.returned.notify_all();
        if level >= PressureLevel::Warning {
            let released = self.trim();
            tracing::debug!(?level, released, budget, "pool reacted to memory pressure");
        }
    }

    /// Subscribes this pool to a memory monitor's level changes. The pool reacts as in
    /// [`apply_pressure`](Self::apply_pressure) for as long as the returned
    /// subscription is alive; the subscription does not keep the pool alive.
    pub fn follow(&self, monitor: &MemoryMonitor) -> Subscription {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        monitor.subscribe(move |level| {
            if let Some(inner) = weak.upgrade() {
                FramePool { inner }.apply_pressure(level);
            }
        })
    }

    /// The pool's counters now.
    pub fn stats(&self) -> PoolStats {
        let c = &self.inner.counters;
        let cfg = &self.inner.config;
        PoolStats {
            budget_bytes: cfg.budget_bytes,
            effective_budget_bytes: c.effective_budget.load(Ordering::Relaxed),
            hard_limit_bytes: cfg.hard_limit_bytes,
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            bytes_allocated: c.allocated.load(Ordering::Relaxed),
            bytes_in_use: c.in_use.load(Ordering::Relaxed),
            buffers_in_use: c.buffers_in_use.load(Ordering::Relaxed),
            peak_bytes: c.peak.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
            wait_time: Duration::from_nanos(c.wait_nanos.load(Ordering::Relaxed)),
            trimmed: c.trimmed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Only idle blocks are left: a live guard holds an `Arc<Inner>`.
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        for list in state.free.drain(..) {
            for block in list.blocks {
                block.free();
            }
        }
    }
}

/// An owned buffer from a [`FramePool`]; it goes back to the pool when dropped, on
/// whichever thread drops it.
///
/// It dereferences to `&mut [u8]` of the requested length; the allocation behind it
/// is 64-byte aligned and may be somewhat larger (its size class).
pub struct PooledBuf {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
    pool: Arc<Inner>,
}

// SAFETY: a PooledBuf uniquely owns its bytes (like a Box<[u8]>); the pool handle it
// carries is an Arc of Sync state.
unsafe impl Send for PooledBuf {}
// SAFETY: shared access only hands out `&[u8]`.
unsafe impl Sync for PooledBuf {}

impl PooledBuf {
    /// The usable length in bytes (what was requested).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty (a zero-byte request).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The size of the allocation behind the buffer (its size class).
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Changes the usable length within the capacity, for example when a stream's
    /// frame size shrinks. Returns `false`, changing nothing, if `len` exceeds the
    /// capacity.
    pub fn set_len(&mut self, len: usize) -> bool {
        if len > self.cap {
            return false;
        }
        self.len = len;
        true
    }

    /// Views the bytes as `f32`s (the trailing `len % 4` bytes are not included).
    pub fn as_f32(&self) -> &[f32] {
        // SAFETY: the allocation is 64-byte aligned, `len / 4` floats fit in `len`
        // bytes, and every bit pattern is a valid f32.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<f32>(), self.len / 4) }
    }

    /// Views the bytes as mutable `f32`s (the trailing `len % 4` bytes are not
    /// included).
    pub fn as_f32_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_f32`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<f32>(), self.len / 4) }
    }

    /// A handle to the pool the buffer belongs to.
    pub fn pool(&self) -> FramePool {
        FramePool {
            inner: Arc::clone(&self.pool),
        }
    }
}

impl Deref for PooledBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `cap >= len` bytes, initialised (allocated zeroed
        // and only ever written through this slice), and uniquely owned.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for PooledBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl fmt::Debug for PooledBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuf")
            .field("len", &self.len)
            .field("capacity", &self.cap)
            .finish()
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        self.pool.release(self.ptr, self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn buffers_are_reused() {
        let pool = FramePool::with_budget(16 * MIB);
        let a = pool.acquire(MIB).unwrap();
        let first = a.as_ptr();
        drop(a);
        let b = pool.acquire(MIB).unwrap();
        assert_eq!(b.as_ptr(), first);
        let s = pool.stats();
        assert_eq!((s.hits, s.misses), (1, 1));
    }

    #[test]
    fn buffers_are_aligned_for_f32() {
        let pool = FramePool::with_budget(16 * MIB);
        let mut b = pool.acquire(640 * 640 * 3 * 4).unwrap();
        assert_eq!(b.as_ptr() as usize % BUFFER_ALIGN, 0);
        let floats = b.as_f32_mut();
        assert_eq!(floats.len(), 640 * 640 * 3);
        floats[7] = 1.5;
        assert_eq!(b.as_f32()[7], 1.5);
    }

    #[test]
    fn request_over_budget_is_an_error() {
        let pool = FramePool::with_budget(MIB);
        let err = pool.acquire(2 * MIB).unwrap_err();
        assert!(matches!(err, PoolError::TooLarge { .. }), "{err}");
        // Critical requests are measured against the hard limit.
        let pool = FramePool::new(PoolConfig::with_budget(MIB).hard_limit(4 * MIB));
        assert!(pool.acquire_with(2 * MIB, Priority::Critical, None).is_ok());
    }

    #[test]
    fn try_acquire_does_not_wait() {
        let pool = FramePool::with_budget(MIB);
        let _held = pool.acquire(MIB).unwrap();
        assert_eq!(pool.try_acquire(MIB).unwrap_err(), PoolError::WouldBlock);
        let err = pool
            .acquire_timeout(MIB, Duration::from_millis(20))
            .unwrap_err();
        assert!(matches!(err, PoolError::Timeout { .. }));
        assert_eq!(pool.stats().waits, 2);
    }

    #[test]
    fn critical_requests_use_the_headroom() {
        let pool = FramePool::new(PoolConfig::with_budget(2 * MIB).hard_limit(3 * MIB));
        let _a = pool.acquire(2 * MIB).unwrap();
        assert_eq!(pool.try_acquire(MIB).unwrap_err(), PoolError::WouldBlock);
        let c = pool
            .acquire_with(MIB, Priority::Critical, Some(Duration::ZERO))
            .unwrap();
        assert_eq!(pool.stats().bytes_allocated, 3 * MIB);
        assert!(
            pool.acquire_with(MIB, Priority::Critical, Some(Duration::ZERO))
                .is_err()
        );
        drop(c);
    }

    #[test]
    fn idle_buffers_of_another_size_make_room() {
        let pool = FramePool::with_budget(4 * MIB);
        drop(pool.acquire(3 * MIB).unwrap());
        // 3 MiB idle; a 2 MiB request does not fit beside it, so the idle one goes.
        let b = pool.try_acquire(2 * MIB).unwrap();
        let s = pool.stats();
        assert_eq!(s.trimmed, 1);
        assert_eq!(s.bytes_allocated, 2 * MIB);
        drop(b);
    }

    #[test]
    fn secure_mode_zeroes_on_return() {
        let pool = FramePool::new(PoolConfig::with_budget(MIB).secure(true));
        let mut a = pool.acquire(8192).unwrap();
        a.fill(0xAB);
        drop(a);
        let b = pool.acquire(8192).unwrap();
        assert!(b.iter().all(|&x| x == 0));
        assert_eq!(pool.stats().hits, 1);
    }

    #[test]
    fn pressure_trims_and_shrinks_the_budget() {
        let pool = FramePool::with_budget(8 * MIB);
        let held = pool.acquire(4 * MIB).unwrap();
        drop(pool.acquire(2 * MIB).unwrap());
        pool.apply_pressure(PressureLevel::Critical);
        let s = pool.stats();
        assert_eq!(s.effective_budget_bytes, 4 * MIB);
        assert_eq!(s.bytes_allocated, 4 * MIB, "the idle buffer was released");
        assert_eq!(pool.try_acquire(MIB).unwrap_err(), PoolError::WouldBlock);
        pool.apply_pressure(PressureLevel::Normal);
        assert!(pool.try_acquire(MIB).is_ok());
        drop(held);
    }

    #[test]
    fn buffers_returned_over_a_shrunk_budget_are_freed() {
        let pool = FramePool::with_budget(8 * MIB);
        let a = pool.acquire(4 * MIB).unwrap();
        let b = pool.acquire(4 * MIB).unwrap();
        pool.apply_pressure(PressureLevel::Emergency);
        drop(a);
        drop(b);
        let s = pool.stats();
        assert_eq!(s.effective_budget_bytes, 2 * MIB);
        assert_eq!(
            s.bytes_allocated, 0,
            "both came back over the shrunk budget"
        );
        assert_eq!(s.trimmed, 2);
        assert_eq!(s.bytes_in_use, 0);
    }

    #[test]
    fn prewarm_fills_free_lists() {
        let pool = FramePool::with_budget(10 * MIB);
        assert_eq!(pool.prewarm(3, 2 * MIB).unwrap(), 3);
        assert_eq!(pool.prewarm(10, 2 * MIB).unwrap(), 5);
        let s = pool.stats();
        assert_eq!(s.bytes_in_use, 0);
        let _b = pool.acquire(2 * MIB).unwrap();
        assert_eq!(pool.stats().misses, s.misses);
    }
}
