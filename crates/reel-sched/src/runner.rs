//! Calls into one stage instance: timing, output counting, panics, and the stage's
//! error policy. Shared by sequential stage threads and parallel workers.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reel_frame::Frame;

use crate::metrics::StageCounters;
use crate::outcome::{At, PipelineError};
use crate::shared::{Shared, panic_message};
use crate::spec::ErrorPolicy;
use crate::stage::{Stage, StageError};

pub(crate) struct Runner {
    stage: Box<dyn Stage>,
    name: Arc<str>,
    policy: ErrorPolicy,
    index: usize,
}

impl Runner {
    pub(crate) fn new(
        stage: Box<dyn Stage>,
        name: Arc<str>,
        policy: ErrorPolicy,
        index: usize,
    ) -> Self {
        Self {
            stage,
            name,
            policy,
            index,
        }
    }

    fn counters<'a>(&self, sh: &'a Shared) -> &'a StageCounters {
        &sh.metrics.stages[self.index]
    }

    fn disabled(&self, sh: &Shared) -> bool {
        self.counters(sh).disabled.load(Ordering::Relaxed)
    }

    /// How long to wait for a frame before ticking (`None` for a disabled stage).
    pub(crate) fn tick_interval(&self, sh: &Shared) -> Option<Duration> {
        if self.disabled(sh) {
            return None;
        }
        catch_unwind(AssertUnwindSafe(|| self.stage.tick_interval())).unwrap_or(None)
    }

    /// Processes `frame`, appending the outputs to `out` (which the caller keeps
    /// empty between calls). `Err` means the pipeline must stop.
    pub(crate) fn process(
        &mut self,
        frame: Frame,
        out: &mut Vec<Frame>,
        sh: &Shared,
    ) -> Result<(), PipelineError> {
        let c = self.counters(sh);
        c.frames_in.fetch_add(1, Ordering::Relaxed);
        if self.disabled(sh) {
            out.push(frame);
            self.emitted(out.len(), -1, sh);
            return Ok(());
        }
        let at = At::Frame(frame.index);
        let start = Instant::now();
        let res = catch_unwind(AssertUnwindSafe(|| self.stage.process(frame, out)));
        c.served(start.elapsed());
        self.emitted(out.len(), -1, sh);
        self.check(res, at, sh)
    }

    /// Ticks the stage (it waited `tick_interval` for a frame).
    pub(crate) fn tick(&mut self, out: &mut Vec<Frame>, sh: &Shared) -> Result<(), PipelineError> {
        if self.disabled(sh) {
            return Ok(());
        }
        let res = catch_unwind(AssertUnwindSafe(|| self.stage.tick(out)));
        self.emitted(out.len(), 0, sh);
        self.check(res, At::Tick, sh)
    }

    /// Flushes the stage at the end of its input.
    pub(crate) fn flush(&mut self, out: &mut Vec<Frame>, sh: &Shared) -> Result<(), PipelineError> {
        if self.disabled(sh) {
            return Ok(());
        }
        let res = catch_unwind(AssertUnwindSafe(|| self.stage.flush(out)));
        self.emitted(out.len(), 0, sh);
        self.check(res, At::Flush, sh)
    }

    /// Counts `n` frames emitted by a call that consumed `consumed` (0 or -1) frames.
    fn emitted(&self, n: usize, consumed: i64, sh: &Shared) {
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        if n > 0 {
            self.counters(sh)
                .frames_out
                .fetch_add(n64, Ordering::Relaxed);
        }
        sh.metrics
            .in_flight(i64::try_from(n).unwrap_or(i64::MAX) + consumed);
    }

    fn check(
        &self,
        res: Result<Result<(), StageError>, Box<dyn Any + Send>>,
        at: At,
        sh: &Shared,
    ) -> Result<(), PipelineError> {
        let c = self.counters(sh);
        let error = match res {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(panic) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                return Err(PipelineError::Panicked {
                    stage: self.name.clone(),
                    at,
                    message: panic_message(&*panic),
                });
            }
        };
        let errors = c.errors.fetch_add(1, Ordering::Relaxed) + 1;
        let fail = |source| PipelineError::Stage {
            stage: self.name.clone(),
            at,
            source,
        };
        if error.is_fatal() {
            return Err(fail(error));
        }
        match self.policy {
            ErrorPolicy::Fail => Err(fail(error)),
            ErrorPolicy::Skip => {
                log_skipped(&self.name, at, &error, errors);
                Ok(())
            }
            ErrorPolicy::DisableAfter(limit) => {
                log_skipped(&self.name, at, &error, errors);
                if errors >= u64::from(limit) && !c.disabled.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        stage = %self.name,
                        errors,
                        "stage disabled after too many errors; frames now pass through it"
                    );
                }
                Ok(())
            }
        }
    }
}

/// Logs a skipped error: the first one of a stage as a warning, the rest at debug
/// level so that a stage failing on every frame does not flood the log.
fn log_skipped(stage: &str, at: At, error: &StageError, count: u64) {
    if count == 1 {
        tracing::warn!(stage, %at, %error, "stage error skipped (further ones are logged at debug level)");
    } else {
        tracing::debug!(stage, %at, %error, count, "stage error skipped");
    }
}
