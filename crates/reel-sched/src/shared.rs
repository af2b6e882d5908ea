//! What every thread of a pipeline shares (the run state and the metrics), and the
//! helpers they all use to start threads and read panics.

use std::any::Any;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use crossbeam_channel::Sender;

use crate::control::{Control, Never};
use crate::metrics::{Metrics, Snapshot};

/// What every pipeline thread shares.
pub(crate) struct Shared {
    pub(crate) control: Arc<Control>,
    pub(crate) metrics: Metrics,
}

impl Shared {
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.metrics.snapshot(self.control.state())
    }
}

/// Spawns a pipeline thread holding a clone of `exit` until it ends. The name comes
/// from stage names, which plugins choose: NUL bytes (which the system refuses) are
/// replaced.
pub(crate) fn spawn_thread(
    name: String,
    exit: Sender<Never>,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let name = name.replace('\0', "?");
    thread::Builder::new().name(name).spawn(move || {
        let _exit = exit;
        f();
    })
}

/// The message a panic carried, if it was a string.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Locks `m`; every critical section in the engine leaves a consistent value, so a
/// poisoned lock is used as it is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
