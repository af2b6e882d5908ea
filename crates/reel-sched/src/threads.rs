//! The loops of a pipeline's own threads: the source, each sequential stage, and the
//! sink. (Parallel stages run their manager and workers in `parallel`.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::Receiver;
use reel_frame::Frame;

use crate::edge::{EdgeTx, Recv, recv};
use crate::outcome::{At, PipelineError};
use crate::runner::Runner;
use crate::shared::{Shared, lock, panic_message};
use crate::skip::Skipper;
use crate::spec::Skip;
use crate::stage::{Sink, Source};

/// Reads the source until its end (or an error, or a cancellation), skipping frames
/// as asked.
pub(crate) fn source_thread(mut source: Box<dyn Source>, skip: Skip, out: &EdgeTx, sh: &Shared) {
    let mut skipper = Skipper::new(skip);
    let mut read = 0u64;
    loop {
        if !sh.control.is_running() {
            sh.control.mark_interrupted();
            break;
        }
        let next = catch_unwind(AssertUnwindSafe(|| source.next_frame()))
            .unwrap_or_else(|panic| Some(Err(panic_message(&*panic).into())));
        let mut frame = match next {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(_)) if !sh.control.is_running() => {
                // Stopped while it waited: the source's end is the cancellation's
                // doing (a decoder killed to stop it), not a failure.
                sh.control.mark_interrupted();
                break;
            }
            Some(Err(source_error)) => {
                sh.control.record(PipelineError::Source {
                    name: source.name().to_string(),
                    frames: read,
                    source: source_error,
                });
                break;
            }
        };
        read += 1;
        if frame.meta.captured_at.is_none() {
            frame.meta.captured_at = Some(Instant::now());
        }
        let behind = || sh.metrics.in_flight_now() > sh.metrics.capacity_now();
        if !skipper.keep(behind) {
            sh.metrics.skipped();
            continue;
        }
        sh.metrics.entered();
        if out.send(frame, sh).is_err() {
            break;
        }
    }
}

/// Runs a sequential stage until its input ends (or the pipeline stops).
pub(crate) fn sequential_thread(
    mut runner: Runner,
    input: &Receiver<Frame>,
    out: &EdgeTx,
    sh: &Shared,
) {
    let mut buf: Vec<Frame> = Vec::with_capacity(4);
    loop {
        let timeout = runner.tick_interval(sh);
        let (step, last) = match recv(input, sh, timeout) {
            Recv::Item(frame) => (runner.process(frame, &mut buf, sh), false),
            Recv::Timeout => (runner.tick(&mut buf, sh), false),
            Recv::Closed => (runner.flush(&mut buf, sh), true),
            Recv::Stop => {
                sh.control.mark_interrupted();
                break;
            }
        };
        if let Err(e) = step {
            sh.control.fail(e);
            break;
        }
        if forward(&mut buf, out, sh).is_err() || last {
            break;
        }
    }
    if !buf.is_empty() {
        sh.metrics.discarded(buf.len() as u64);
        buf.clear();
    }
}

/// Sends a call's outputs downstream, in order.
fn forward(buf: &mut Vec<Frame>, out: &EdgeTx, sh: &Shared) -> Result<(), ()> {
    let mut frames = buf.drain(..);
    while let Some(frame) = frames.next() {
        if out.send(frame, sh).is_err() {
            let rest = frames.count() as u64;
            sh.metrics.discarded(rest);
            return Err(());
        }
    }
    Ok(())
}

/// Feeds the sink until its input ends (or the pipeline stops), then finishes it.
/// The sink lives in `slot`: it is taken out for the run and put back at the end,
/// whatever happens, so that the pipeline's report can hand it to its owner.
pub(crate) fn sink_thread<K: Sink>(slot: &Mutex<Option<K>>, input: &Receiver<Frame>, sh: &Shared) {
    let Some(mut sink) = lock(slot).take() else {
        return;
    };
    let res = catch_unwind(AssertUnwindSafe(|| feed(&mut sink, input, sh)));
    if let Err(panic) = res {
        sh.control.fail(PipelineError::Crashed {
            thread: "sink".into(),
            message: panic_message(&*panic),
        });
    }
    *lock(slot) = Some(sink);
}

fn feed<K: Sink>(sink: &mut K, input: &Receiver<Frame>, sh: &Shared) {
    let name: Arc<str> = Arc::from("sink");
    let failed = |at: At, res: Result<Result<(), _>, Box<dyn std::any::Any + Send>>| match res {
        Ok(Ok(())) => None,
        Ok(Err(source)) => Some(PipelineError::Stage {
            stage: name.clone(),
            at,
            source,
        }),
        Err(panic) => Some(PipelineError::Panicked {
            stage: name.clone(),
            at,
            message: panic_message(&*panic),
        }),
    };
    loop {
        match recv(input, sh, None) {
            Recv::Item(frame) => {
                let at = At::Frame(frame.index);
                let captured_at = frame.meta.captured_at;
                let res = catch_unwind(AssertUnwindSafe(|| sink.consume(frame)));
                if let Some(e) = failed(at, res) {
                    sh.metrics.in_flight(-1);
                    sh.control.fail(e);
                    return;
                }
                sh.metrics.delivered(captured_at);
            }
            Recv::Closed => break,
            Recv::Stop => {
                sh.control.mark_interrupted();
                break;
            }
            Recv::Timeout => {}
        }
    }
    let res = catch_unwind(AssertUnwindSafe(|| sink.finish()));
    if let Some(e) = failed(At::Flush, res) {
        sh.control.fail(e);
    }
}
