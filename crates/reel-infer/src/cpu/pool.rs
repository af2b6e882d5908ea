//! The engine's threads: a fixed set of workers that run one job at a time on
//! every thread (the caller's included), and a barrier for the steps inside it.
//! Starting a job and waiting for it allocates nothing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

/// A job: called once on every thread with the thread's number.
type Job<'a> = dyn Fn(usize) + Sync + 'a;

/// The job being run, its lifetime erased. It is only dereferenced between the
/// moment [`Pool::broadcast`] publishes it and the moment every worker has
/// reported back, all of which happens inside that call, while the borrow it was
/// made from is alive.
#[derive(Clone, Copy)]
struct JobPtr(*const Job<'static>);

// SAFETY: the job behind the pointer is `Sync`, and it outlives every use (see
// above).
unsafe impl Send for JobPtr {}

struct State {
    generation: u64,
    job: Option<JobPtr>,
    running: usize,
    quit: bool,
}

struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
    panicked: AtomicBool,
}

/// A fixed set of threads.
pub(crate) struct Pool {
    threads: usize,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads)
            .finish()
    }
}

impl Pool {
    /// `threads` threads in all: the caller's and `threads - 1` workers.
    pub(crate) fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                running: 0,
                quit: false,
            }),
            start: Condvar::new(),
            done: Condvar::new(),
            panicked: AtomicBool::new(false),
        });
        let workers = (1..threads)
            .map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("reel-infer-{i}"))
                    .spawn(move || worker(&shared, i))
                    .expect("the operating system refused a thread for inference")
            })
            .collect();
        Self {
            threads,
            shared,
            workers,
        }
    }

    /// Threads in all.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job(i)` on every thread `i` in `0..threads` (0 is the caller's) and
    /// returns when all have finished. A panic on any thread is raised again here.
    pub(crate) fn broadcast(&self, job: &Job<'_>) {
        if self.threads == 1 {
            job(0);
            return;
        }
        // SAFETY: only the lifetime is erased; see `JobPtr`.
        let ptr =
            JobPtr(unsafe { std::mem::transmute::<*const Job<'_>, *const Job<'static>>(job) });
        {
            let mut st = self.lock();
            st.job = Some(ptr);
            st.generation += 1;
            st.running = self.threads - 1;
            self.shared.start.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        let mut st = self.lock();
        while st.running > 0 {
            st = self
                .shared
                .done
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        st.job = None;
        drop(st);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if self.shared.panicked.swap(false, Ordering::SeqCst) {
            panic!("an inference thread panicked");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn worker(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            while st.generation == seen && !st.quit {
                st = shared
                    .start
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if st.quit {
                return;
            }
            seen = st.generation;
            st.job
        };
        if let Some(JobPtr(job)) = job {
            // SAFETY: the job is alive until `running` reaches 0 (see `JobPtr`).
            let job = unsafe { &*job };
            if catch_unwind(AssertUnwindSafe(|| job(index))).is_err() {
                shared.panicked.store(true, Ordering::SeqCst);
            }
        }
        let mut st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.running -= 1;
        if st.running == 0 {
            shared.done.notify_all();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.lock().quit = true;
        self.shared.start.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A barrier for the threads of one job. It spins (for up to
/// [`Barrier::SPIN`]) before it yields: a layer's threads arrive within a row's
/// work of each other, and yielding the core to another process on a shared
/// machine costs a whole time slice before the thread runs again.
#[derive(Debug)]
pub(crate) struct Barrier {
    count: AtomicUsize,
    generation: AtomicUsize,
    threads: usize,
}

impl Barrier {
    /// How long a thread spins before it starts yielding.
    pub(crate) const SPIN: std::time::Duration = std::time::Duration::from_micros(500);

    /// For `threads` threads.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            count: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            threads: threads.max(1),
        }
    }

    /// Waits until all threads have arrived.
    pub(crate) fn wait(&self) {
        if self.threads == 1 {
            return;
        }
        let g = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.count.store(0, Ordering::Relaxed);
            self.generation.store(g.wrapping_add(1), Ordering::Release);
            return;
        }
        let mut started: Option<std::time::Instant> = None;
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == g {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                let t = *started.get_or_insert_with(std::time::Instant::now);
                if t.elapsed() > Self::SPIN {
                    std::thread::yield_now();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_the_job_and_the_barrier_orders_steps() {
        let pool = Pool::new(3);
        let hits = AtomicUsize::new(0);
        let barrier = Barrier::new(3);
        let after = AtomicUsize::new(0);
        for _ in 0..50 {
            hits.store(0, Ordering::SeqCst);
            after.store(0, Ordering::SeqCst);
            pool.broadcast(&|_| {
                hits.fetch_add(1, Ordering::SeqCst);
                barrier.wait();
                // Every thread sees all arrivals once past the barrier.
                assert_eq!(hits.load(Ordering::SeqCst), 3);
                after.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(after.load(Ordering::SeqCst), 3);
        }
    }
}
