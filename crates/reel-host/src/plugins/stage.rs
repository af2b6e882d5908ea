//! A plugin as a scheduler stage: the frame's buffer and detections are lent to
//! the plugin, its failures handled by an error policy, and all of it counted.

use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use abi_stable::std_types::{RResult, RVec};
use reel_frame::{BBox, Detection, Frame, Label};
use reel_plugin_api as api;
use reel_plugin_api::ProcessorBox;
use reel_sched::{Emit, Stage, StageError};
use serde::Serialize;

use super::error::Error;
use super::load::{LoadedPlugin, to_api};
use super::spec::ErrorPolicy;

/// The most distinct labels a stage keeps shared copies of.
const LABEL_CACHE: usize = 256;

/// Counts of a plugin stage, readable from any thread while the pipeline runs.
#[derive(Debug, Default)]
pub struct PluginStats {
    frames: AtomicU64,
    processed: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    passed_by: AtomicU64,
    busy_ns: AtomicU64,
    disabled: AtomicBool,
    last_error: Mutex<Option<String>>,
    counters: Mutex<Vec<(String, u64)>>,
}

/// A snapshot of a plugin stage's counts, as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PluginReport {
    /// The plugin's name.
    pub plugin: String,
    /// Frames that reached the stage.
    pub frames: u64,
    /// Frames the plugin processed successfully.
    pub processed: u64,
    /// Failures: errors returned and panics caught (frames, flush).
    pub errors: u64,
    /// Of those, panics.
    pub panics: u64,
    /// Frames that passed the plugin by because it had been disabled.
    pub passed_by: u64,
    /// Whether the plugin was disabled by the error policy.
    pub disabled: bool,
    /// Time spent in the plugin's calls, in seconds.
    pub busy_s: f64,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// The plugin's own counters, as of the end of the stream.
    pub counters: Vec<(String, u64)>,
}

impl PluginStats {
    fn report(&self, plugin: &str) -> PluginReport {
        PluginReport {
            plugin: plugin.to_string(),
            frames: self.frames.load(Ordering::Relaxed),
            processed: self.processed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            passed_by: self.passed_by.load(Ordering::Relaxed),
            disabled: self.disabled.load(Ordering::Relaxed),
            busy_s: self.busy_ns.load(Ordering::Relaxed) as f64 / 1e9,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            counters: self
                .counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

/// A handle on a plugin stage's counts that stays valid after the stage has moved
/// into a pipeline.
#[derive(Debug, Clone)]
pub struct StatsHandle {
    plugin: Arc<str>,
    stats: Arc<PluginStats>,
}

impl StatsHandle {
    /// The counts now.
    pub fn report(&self) -> PluginReport {
        self.stats.report(&self.plugin)
    }
}

/// A plugin running as a [`Stage`]: one processor, created from a configuration,
/// called once per frame in stream order.
///
/// Per frame, the plugin gets the frame's own buffer (no copy) and its detections;
/// detections the plugin adds are attached to the frame. When the plugin fails
/// (an error, or a panic caught at the boundary), the stage applies its
/// [`ErrorPolicy`]: with `Skip` and `Disable` the frame goes on, its detections as
/// they were before the call (its pixels may hold what the plugin wrote before it
/// failed); with `Fail` the run fails with an error naming the plugin. A frame in a
/// format the plugin does not accept fails the run whatever the policy.
pub struct PluginStage {
    name: String,
    plugin: String,
    formats: Vec<api::PixelFormat>,
    processor: ProcessorBox,
    policy: ErrorPolicy,
    stats: Arc<PluginStats>,
    handle: StatsHandle,
    /// The detections lent to the plugin; empty between calls, its allocation
    /// kept from frame to frame.
    scratch: RVec<api::Detection<'static>>,
    /// Shared copies of the labels plugins produce, so that attaching a detection
    /// does not allocate its label again.
    labels: Vec<Label>,
    /// The detections a call added, on their way to the frame; empty between
    /// calls.
    added: Vec<Detection>,
    disabled: bool,
}

impl std::fmt::Debug for PluginStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginStage")
            .field("plugin", &self.plugin)
            .field("policy", &self.policy)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl PluginStage {
    /// A stage running `plugin` configured by `config` (a JSON object's text).
    pub fn new(plugin: &LoadedPlugin, config: &str, policy: ErrorPolicy) -> Result<Self, Error> {
        let processor = plugin.create_processor(config)?;
        let stats = Arc::new(PluginStats::default());
        let handle = StatsHandle {
            plugin: Arc::from(plugin.name()),
            stats: Arc::clone(&stats),
        };
        Ok(Self {
            name: format!("plugin:{}", plugin.name()),
            plugin: plugin.name().to_string(),
            formats: plugin
                .description()
                .formats
                .iter()
                .map(|f| to_api(*f))
                .collect(),
            processor,
            policy,
            stats,
            handle,
            scratch: RVec::new(),
            labels: Vec::new(),
            added: Vec::new(),
            disabled: false,
        })
    }

    /// A handle on the stage's counts, for reporting while or after it runs.
    pub fn stats(&self) -> StatsHandle {
        self.handle.clone()
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Whether the error policy has disabled the plugin.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// A shared label for `text`, allocated once per distinct text.
    fn label(&mut self, text: &str) -> Label {
        if let Some(l) = self.labels.iter().find(|l| l.as_str() == text) {
            return l.clone();
        }
        let l = Label::new(text);
        if self.labels.len() < LABEL_CACHE {
            self.labels.push(l.clone());
        }
        l
    }

    /// Calls the plugin on `frame`; on success the detections it added are
    /// attached to the frame.
    fn call(&mut self, frame: &mut Frame) -> Result<(), api::PluginError> {
        let format = to_api(frame.format());
        let (width, height, index, pts) = (frame.width(), frame.height(), frame.index, frame.pts);
        let mut detections = mem::take(&mut frame.meta.detections);
        let mut lent = reuse(mem::take(&mut self.scratch));
        lent.extend(detections.iter().map(|d| {
            api::Detection::new(
                d.class_id,
                d.label.as_str(),
                d.conf,
                api::BBox::new(d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2),
            )
        }));
        let existing = lent.len();
        let result = match api::FrameMut::new(frame.data_mut(), format, width, height, index, pts) {
            Ok(view) => {
                let started = Instant::now();
                let r = self
                    .processor
                    .process(view, api::Detections::new(&mut lent));
                self.stats
                    .busy_ns
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                r
            }
            // A `Frame` always holds at least its layout's bytes.
            Err(e) => RResult::RErr(api::PluginError::new(e)),
        };
        let mut added = mem::take(&mut self.added);
        if let RResult::ROk(()) = result {
            for d in &lent[existing..] {
                let b = d.bbox;
                added.push(Detection {
                    class_id: d.class_id,
                    label: self.label(d.label()),
                    conf: d.conf,
                    bbox: BBox::new(b.x1, b.y1, b.x2, b.y2),
                });
            }
        }
        // Giving the lent list back ends its borrow of the frame's detections.
        self.scratch = reuse(lent);
        detections.append(&mut added);
        self.added = added;
        frame.meta.detections = detections;
        result.into_result()
    }

    /// Counts a failure and decides, by the policy, whether it ends the run.
    fn failed(&mut self, what: &str, e: api::PluginError) -> Result<(), StageError> {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if e.is_panic() {
            self.stats.panics.fetch_add(1, Ordering::Relaxed);
        }
        let message = format!("{what}: {e}");
        *self
            .stats
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
        let error = Error::Plugin {
            plugin: self.plugin.clone(),
            what: "failed",
            message,
        };
        match self.policy {
            ErrorPolicy::Fail => Err(StageError::fatal(error)),
            ErrorPolicy::Skip => {
                tracing::warn!("{error} (skipped)");
                Ok(())
            }
            ErrorPolicy::Disable(after) => {
                let errors = self.stats.errors.load(Ordering::Relaxed);
                if errors >= u64::from(after) {
                    self.disabled = true;
                    self.stats.disabled.store(true, Ordering::Relaxed);
                    tracing::warn!("{error}; plugin disabled after {errors} failures");
                } else {
                    tracing::warn!("{error} (skipped, failure {errors} of {after})");
                }
                Ok(())
            }
        }
    }

    /// Reads the plugin's counters into the stats.
    fn collect_counters(&mut self) {
        match self.processor.counters() {
            RResult::ROk(list) => {
                *self
                    .stats
                    .counters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    list.iter().map(|c| (c.name.to_string(), c.value)).collect();
            }
            RResult::RErr(e) => {
                tracing::warn!("plugin `{}`: reporting counters: {e}", self.plugin);
            }
        }
    }
}

/// An empty vector of lent detections, keeping its allocation, for any lifetime.
fn reuse<'a, 'b>(mut v: RVec<api::Detection<'a>>) -> RVec<api::Detection<'b>> {
    v.clear();
    // SAFETY: the vector is empty, so no value of either lifetime is carried over,
    // and `Detection<'a>` and `Detection<'b>` differ only in a lifetime, so they
    // have the same layout; only the allocation is reused.
    unsafe { mem::transmute::<RVec<api::Detection<'a>>, RVec<api::Detection<'b>>>(v) }
}

impl Stage for PluginStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&mut self, mut frame: Frame, out: &mut dyn Emit) -> Result<(), StageError> {
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        if self.disabled {
            self.stats.passed_by.fetch_add(1, Ordering::Relaxed);
            out.emit(frame);
            return Ok(());
        }
        if !self.formats.contains(&to_api(frame.format())) {
            return Err(StageError::fatal(Error::UnsupportedFormat {
                plugin: self.plugin.clone(),
                format: frame.format().to_string(),
                accepted: self
                    .formats
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            }));
        }
        match self.call(&mut frame) {
            Ok(()) => {
                self.stats.processed.fetch_add(1, Ordering::Relaxed);
                out.emit(frame);
                Ok(())
            }
            Err(e) => {
                let what = format!("frame {}", frame.index);
                self.failed(&what, e)?;
                out.emit(frame);
                Ok(())
            }
        }
    }

    fn flush(&mut self, _out: &mut dyn Emit) -> Result<(), StageError> {
        let result = if self.disabled {
            Ok(())
        } else {
            match self.processor.flush() {
                RResult::ROk(()) => Ok(()),
                RResult::RErr(e) => self.failed("flush", e),
            }
        };
        self.collect_counters();
        result
    }
}
