//! The traits a plugin implements, and the guarded trait object that carries a
//! processor across the boundary.

use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::StableAbi;
use abi_stable::sabi_trait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RBox, RResult, RStr, RString, RVec};

use crate::{Detections, FrameMut, PluginError, PluginInfo};

/// One named count a processor reports (frames seen, objects found, …).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// What is counted.
    pub name: RString,
    /// How many.
    pub value: u64,
}

/// Where a processor writes its counters when the host asks for them.
#[derive(Debug, Default)]
pub struct Counters {
    list: RVec<Counter>,
}

impl Counters {
    /// Sets counter `name` to `value` (replacing an earlier value).
    pub fn set(&mut self, name: &str, value: u64) {
        if let Some(c) = self.list.iter_mut().find(|c| c.name == name) {
            c.value = value;
        } else {
            self.list.push(Counter {
                name: RString::from(name),
                value,
            });
        }
    }

    /// The counters set so far.
    pub fn as_slice(&self) -> &[Counter] {
        self.list.as_slice()
    }

    fn into_inner(self) -> RVec<Counter> {
        self.list
    }
}

/// What a plugin does with frames. One processor is created per configured use of
/// the plugin and is called from one thread at a time, frame after frame, in
/// stream order.
///
/// Panics in these methods are caught at the boundary and reported to the host as
/// errors; they never unwind into reel.
pub trait Processor: Send + 'static {
    /// Processes one frame: read or change its pixels in place, read the
    /// detections earlier stages attached, add detections.
    fn process(
        &mut self,
        frame: &mut FrameMut<'_>,
        detections: &mut Detections<'_, '_>,
    ) -> Result<(), PluginError>;

    /// Called once after the last frame of the stream.
    fn flush(&mut self) -> Result<(), PluginError> {
        Ok(())
    }

    /// Reports counters (called by the host when it reports on the run).
    fn counters(&self, _counters: &mut Counters) {}
}

/// A plugin: its description, and how to make a processor from a configuration.
/// Export it with [`export_plugin!`](crate::export_plugin).
pub trait Plugin: Processor + Sized {
    /// What the plugin is, what it consumes and produces.
    fn info() -> PluginInfo;

    /// A processor configured by `config`: a JSON object's text (`{}` when the user
    /// gave none; the host turns TOML and `key=value` forms into JSON).
    fn create(config: &str) -> Result<Self, PluginError>;

    /// Whether a processor keeps nothing from one frame to the next (its result on
    /// a frame depends on that frame alone). The host may then run several
    /// processors at once, each on its own frames, and put the frames back in
    /// order. The default, `false`, gives every frame, in order, to one processor.
    fn stateless() -> bool {
        false
    }
}

/// The processor's side of the boundary: what the host calls. Plugins implement
/// [`Processor`], never this; [`export_plugin!`](crate::export_plugin) wraps it.
#[sabi_trait]
pub trait ProcessorDyn: Send {
    /// See [`Processor::process`].
    fn process(
        &mut self,
        frame: FrameMut<'_>,
        detections: Detections<'_, '_>,
    ) -> RResult<(), PluginError>;

    /// See [`Processor::flush`].
    fn flush(&mut self) -> RResult<(), PluginError>;

    /// See [`Processor::counters`].
    #[sabi(last_prefix_field)]
    fn counters(&self) -> RResult<RVec<Counter>, PluginError>;
}

/// A processor as the host holds it: an owned, ABI-stable trait object.
pub type ProcessorBox = ProcessorDyn_TO<'static, RBox<()>>;

/// Runs `f`, turning a panic into a [`PluginError`] of kind `Panicked`.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.into(),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            RResult::RErr(PluginError::panicked(msg))
        }
    }
}

/// A processor behind the boundary: every call, and the drop, run inside
/// `catch_unwind`.
struct Guarded<P: Processor>(ManuallyDrop<P>);

impl<P: Processor> ProcessorDyn for Guarded<P> {
    fn process(
        &mut self,
        mut frame: FrameMut<'_>,
        mut detections: Detections<'_, '_>,
    ) -> RResult<(), PluginError> {
        guard(|| self.0.process(&mut frame, &mut detections))
    }

    fn flush(&mut self) -> RResult<(), PluginError> {
        guard(|| self.0.flush())
    }

    fn counters(&self) -> RResult<RVec<Counter>, PluginError> {
        guard(|| {
            let mut c = Counters::default();
            self.0.counters(&mut c);
            Ok(c.into_inner())
        })
    }
}

impl<P: Processor> Drop for Guarded<P> {
    fn drop(&mut self) {
        // SAFETY: the processor is dropped exactly once, here, and never used after.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe {
            ManuallyDrop::drop(&mut self.0)
        }));
        // A panic while dropping has nowhere to go: the host is releasing the
        // processor and cannot act on an error. It was printed by the panic hook.
        drop(dropped);
    }
}

/// Wraps a processor for the host (what the exported `create` returns).
pub fn into_processor_box<P: Processor>(processor: P) -> ProcessorBox {
    ProcessorDyn_TO::from_value(Guarded(ManuallyDrop::new(processor)), TD_Opaque)
}

pub(crate) extern "C" fn info_entry<P: Plugin>() -> RResult<PluginInfo, PluginError> {
    guard(|| Ok(P::info()))
}

pub(crate) extern "C" fn stateless_entry<P: Plugin>() -> bool {
    // A panic here is the plugin's bug; the safe answer is the sequential one.
    std::panic::catch_unwind(P::stateless).unwrap_or(false)
}

pub(crate) extern "C" fn create_entry<P: Plugin>(
    config: RStr<'_>,
) -> RResult<ProcessorBox, PluginError> {
    guard(|| P::create(config.as_str()).map(into_processor_box))
}
