//! The bounded queues between threads and their policies. Each edge has exactly one
//! sending thread, so a drop-oldest send can make room by taking the oldest frame
//! itself.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, select};
use reel_frame::Frame;

use crate::shared::Shared;
use crate::spec::QueuePolicy;

/// The pipeline is discarding (or the receiving side is gone): stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stopped;

/// The sending end of an edge.
pub(crate) struct EdgeTx {
    tx: Sender<Frame>,
    /// To take the oldest frame out when the policy drops it.
    rx: Receiver<Frame>,
    policy: QueuePolicy,
    index: usize,
}

impl EdgeTx {
    pub(crate) fn new(
        tx: Sender<Frame>,
        rx: Receiver<Frame>,
        policy: QueuePolicy,
        index: usize,
    ) -> Self {
        Self {
            tx,
            rx,
            policy,
            index,
        }
    }

    /// Queues `frame` according to the edge's policy. On `Err` the frame was
    /// discarded and the caller must stop.
    pub(crate) fn send(&self, frame: Frame, sh: &Shared) -> Result<(), Stopped> {
        let frame = match self.tx.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(f)) => f,
            Err(TrySendError::Disconnected(f)) => return self.stop(f, sh),
        };
        match self.policy {
            QueuePolicy::DropNewest => {
                drop(frame);
                sh.metrics.dropped(self.index);
                Ok(())
            }
            QueuePolicy::DropOldest => self.replace_oldest(frame, sh),
            QueuePolicy::Block => {
                select! {
                    send(self.tx, frame) -> res => match res {
                        Ok(()) => Ok(()),
                        Err(e) => self.stop(e.into_inner(), sh),
                    },
                    recv(sh.control.abort_rx) -> _ => self.stop(frame, sh),
                }
            }
            QueuePolicy::BlockFor(max_age) => {
                // The deadline is the frame's, counted from its capture: a frame that
                // has already waited upstream waits less here.
                let now = Instant::now();
                let born = frame.meta.captured_at.unwrap_or(now);
                let wait = (born + max_age).saturating_duration_since(now);
                if wait.is_zero() {
                    return self.replace_oldest(frame, sh);
                }
                select! {
                    send(self.tx, frame) -> res => match res {
                        Ok(()) => Ok(()),
                        Err(e) => self.stop(e.into_inner(), sh),
                    },
                    recv(sh.control.abort_rx) -> _ => self.stop(frame, sh),
                    default(wait) => self.replace_oldest(frame, sh),
                }
            }
        }
    }

    /// Takes the oldest queued frames out, dropping them, until `frame` fits.
    fn replace_oldest(&self, mut frame: Frame, sh: &Shared) -> Result<(), Stopped> {
        loop {
            match self.tx.try_send(frame) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(f)) => {
                    frame = f;
                    // The receiver may have taken it first: then there is room now.
                    if let Ok(oldest) = self.rx.try_recv() {
                        drop(oldest);
                        sh.metrics.dropped(self.index);
                    }
                }
                Err(TrySendError::Disconnected(f)) => return self.stop(f, sh),
            }
        }
    }

    fn stop(&self, frame: Frame, sh: &Shared) -> Result<(), Stopped> {
        drop(frame);
        sh.metrics.discarded(1);
        sh.control.mark_interrupted();
        Err(Stopped)
    }
}

/// What waiting on a queue gave.
pub(crate) enum Recv<T> {
    Item(T),
    /// Nothing arrived within the timeout.
    Timeout,
    /// The sending side finished and the queue is empty: end of stream.
    Closed,
    /// The pipeline is discarding.
    Stop,
}

/// Waits for the next item on `rx`, at most `timeout` when given, waking up when the
/// pipeline starts discarding.
pub(crate) fn recv<T>(rx: &Receiver<T>, sh: &Shared, timeout: Option<Duration>) -> Recv<T> {
    if sh.control.is_discarding() {
        return Recv::Stop;
    }
    match rx.try_recv() {
        Ok(item) => return Recv::Item(item),
        Err(TryRecvError::Disconnected) => return Recv::Closed,
        Err(TryRecvError::Empty) => {}
    }
    match timeout {
        None => select! {
            recv(rx) -> res => res.map_or(Recv::Closed, Recv::Item),
            recv(sh.control.abort_rx) -> _ => Recv::Stop,
        },
        Some(t) => select! {
            recv(rx) -> res => res.map_or(Recv::Closed, Recv::Item),
            recv(sh.control.abort_rx) -> _ => Recv::Stop,
            default(t) => Recv::Timeout,
        },
    }
}

/// Sends `item` on an internal channel, blocking while it is full. Gives the item
/// back when the pipeline starts discarding or the receiver is gone.
pub(crate) fn send_internal<T>(tx: &Sender<T>, item: T, sh: &Shared) -> Result<(), T> {
    let item = match tx.try_send(item) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Full(item)) => item,
        Err(TrySendError::Disconnected(item)) => return Err(item),
    };
    select! {
        send(tx, item) -> res => res.map_err(|e| e.into_inner()),
        recv(sh.control.abort_rx) -> _ => Err(item),
    }
}
