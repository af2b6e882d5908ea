//! Sources, stages and sinks the tests build pipelines from. Frames are small gray
//! pictures from a real pool, so that every test can check that each buffer went
//! back to it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;
use reel_sched::{BoxError, Emit, Sink, Source, Stage, StageError};

pub const SIDE: u32 = 8;
pub const FRAME_BYTES: usize = (SIDE * SIDE) as usize;

pub fn pool() -> FramePool {
    FramePool::with_budget(64 << 20)
}

/// A frame of the given index, its pixels all set to the low byte of the index.
pub fn frame(pool: &FramePool, index: u64, fps: f64) -> Frame {
    let mut buf = pool.acquire(FRAME_BYTES).unwrap();
    buf.fill(index as u8);
    Frame::new(
        buf,
        PixelFormat::Gray8,
        SIDE,
        SIDE,
        index,
        index as f64 / fps,
    )
    .unwrap()
}

/// Something a test runs before the source makes frame `i`.
pub type Hook = Box<dyn FnMut(u64) + Send>;

/// `n` frames (or endless with `u64::MAX`) at 30 fps of pts. Records the most
/// buffers the pool ever had in use, sampled right after each acquisition (the only
/// moment the count grows, so the sample is the true maximum).
pub struct Frames {
    pub pool: FramePool,
    pub n: u64,
    pub next: u64,
    pub before: Option<Hook>,
    pub peak_buffers: Arc<AtomicUsize>,
    pub fail_at: Option<u64>,
    /// Frames claim to have been captured this long before they are made.
    pub age: Option<Duration>,
    /// Set when the source reports its end (after its last frame was sent).
    pub ended: Arc<Gate>,
}

impl Frames {
    pub fn new(pool: &FramePool, n: u64) -> Self {
        Self {
            pool: pool.clone(),
            n,
            next: 0,
            before: None,
            peak_buffers: Arc::default(),
            fail_at: None,
            age: None,
            ended: Arc::new(Gate::default()),
        }
    }

    pub fn before(mut self, hook: impl FnMut(u64) + Send + 'static) -> Self {
        self.before = Some(Box::new(hook));
        self
    }
}

impl Source for Frames {
    fn name(&self) -> &str {
        "test frames"
    }

    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
        if self.next >= self.n {
            self.ended.open();
            return None;
        }
        let i = self.next;
        if self.fail_at == Some(i) {
            return Some(Err("the test source broke".into()));
        }
        if let Some(hook) = &mut self.before {
            hook(i);
        }
        self.next += 1;
        let mut f = frame(&self.pool, i, 30.0);
        if let Some(age) = self.age {
            f.meta.captured_at = Some(std::time::Instant::now().checked_sub(age).unwrap());
        }
        let in_use = self.pool.stats().buffers_in_use;
        self.peak_buffers.fetch_max(in_use, Ordering::Relaxed);
        Some(Ok(f))
    }
}

/// A one-way gate threads wait on until it opens.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }

    /// Waits until the gate opens or `limit` passes; whether it opened.
    pub fn wait_at_most(&self, limit: Duration) -> bool {
        let open = self.open.lock().unwrap();
        let (open, _) = self.cv.wait_timeout_while(open, limit, |o| !*o).unwrap();
        *open
    }

    pub fn is_open(&self) -> bool {
        *self.open.lock().unwrap()
    }
}

/// Passes frames through, after running a hook on each (a sleep, a wait...).
pub struct Pass {
    pub name: &'static str,
    pub hook: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl Pass {
    pub fn new(name: &'static str) -> Self {
        Self { name, hook: None }
    }

    pub fn hook(mut self, hook: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Sleeps a pseudo-random 0..=`max_ms` milliseconds, decided by the frame index.
    pub fn jitter(self, max_ms: u64) -> Self {
        self.hook(move |i| {
            let ms = i.wrapping_mul(2_654_435_761) % (max_ms + 1);
            std::thread::sleep(Duration::from_millis(ms));
        })
    }
}

impl Stage for Pass {
    fn name(&self) -> &str {
        self.name
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        if let Some(hook) = &self.hook {
            hook(frame.index);
        }
        out.emit(frame);
        Ok(())
    }
}

/// Emits each frame and then a new frame with the same index marked as a copy.
pub struct Split;

impl Stage for Split {
    fn name(&self) -> &str {
        "split"
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        let pool = frame.buffer().pool();
        let mut copy = self::frame(&pool, frame.index, 30.0);
        copy.meta.metrics.set("copy", 1.0);
        out.emit(frame);
        out.emit(copy);
        Ok(())
    }
}

/// Emits only frames with even indices.
pub struct Evens;

impl Stage for Evens {
    fn name(&self) -> &str {
        "evens"
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        if frame.index.is_multiple_of(2) {
            out.emit(frame);
        }
        Ok(())
    }
}

/// Holds frames back and emits them `size` at a time, on a tick, or at the flush.
pub struct Batch {
    pub size: usize,
    pub held: Vec<Frame>,
    pub tick: Option<Duration>,
}

impl Batch {
    pub fn new(size: usize) -> Self {
        Self {
            size,
            held: Vec::new(),
            tick: None,
        }
    }
}

impl Stage for Batch {
    fn name(&self) -> &str {
        "batch"
    }

    fn process(&mut self, frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        self.held.push(frame);
        if self.held.len() >= self.size {
            self.held.drain(..).for_each(|f| out.emit(f));
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut dyn Emit) -> Result<(), StageError> {
        self.held.drain(..).for_each(|f| out.emit(f));
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.tick.filter(|_| !self.held.is_empty())
    }

    fn tick(&mut self, out: &mut dyn Emit) -> Result<(), StageError> {
        self.held.drain(..).for_each(|f| out.emit(f));
        Ok(())
    }
}

/// Fails on the frames `when` picks, with a fatal error if asked, or panics.
pub struct Failing {
    pub name: &'static str,
    pub when: fn(u64) -> bool,
    pub fatal: bool,
    pub panic: bool,
    pub mark: u8,
}

impl Failing {
    pub fn new(name: &'static str, when: fn(u64) -> bool) -> Self {
        Self {
            name,
            when,
            fatal: false,
            panic: false,
            mark: 0xEE,
        }
    }
}

impl Stage for Failing {
    fn name(&self) -> &str {
        self.name
    }

    fn process(&mut self, mut frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        if (self.when)(frame.index) {
            if self.panic {
                panic!("the test stage panicked on frame {}", frame.index);
            }
            let e = format!("cannot handle frame {}", frame.index);
            return Err(if self.fatal {
                StageError::fatal(e)
            } else {
                StageError::new(e)
            });
        }
        frame.data_mut()[0] = self.mark;
        out.emit(frame);
        Ok(())
    }
}

/// What a [`Collect`] sink saw.
#[derive(Default)]
pub struct Seen {
    /// (index, is a copy made by `Split`, first byte)
    pub frames: Mutex<Vec<(u64, bool, u8)>>,
    pub finished: AtomicBool,
}

impl Seen {
    pub fn indices(&self) -> Vec<u64> {
        self.frames.lock().unwrap().iter().map(|f| f.0).collect()
    }

    pub fn len(&self) -> usize {
        self.frames.lock().unwrap().len()
    }
}

/// Records every frame it consumes.
pub struct Collect {
    pub seen: Arc<Seen>,
    pub fail_at: Option<u64>,
}

impl Collect {
    pub fn new() -> (Self, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        (
            Self {
                seen: Arc::clone(&seen),
                fail_at: None,
            },
            seen,
        )
    }
}

impl Sink for Collect {
    fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
        if self.fail_at == Some(frame.index) {
            return Err(StageError::new("the test sink is full"));
        }
        let copy = frame.meta.metrics.get("copy").is_some();
        self.seen
            .frames
            .lock()
            .unwrap()
            .push((frame.index, copy, frame.data()[0]));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), StageError> {
        self.seen.finished.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// Waits (polling) until `cond` holds; fails the test after a minute, which only a
/// hang can take.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
