//! A plugin as a scheduler stage: the frame's buffer and detections are lent to
//! the plugin, and all of it counted. A failure on a frame is the stage's error;
//! what it does to the run is the scheduler's [`ErrorPolicy`](reel_sched::ErrorPolicy),
//! set on the stage's `StageSpec` like any other stage's.

use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The most distinct labels a stage keeps shared copies of.
const LABEL_CACHE: usize = 256;

/// Counts of a plugin stage, readable from any thread while the pipeline runs.
#[derive(Debug, Default)]
pub struct PluginStats {
    frames: AtomicU64,
    processed: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    busy_ns: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Each processor's counters as it last reported them (one per worker).
    counters: Mutex<Vec<Vec<(String, u64)>>>,
}

/// A snapshot of a plugin stage's counts, as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PluginReport {
    /// The plugin's name.
    pub plugin: String,
    /// Frames that reached the stage (called or passed by).
    pub frames: u64,
    /// Frames the plugin processed successfully.
    pub processed: u64,
    /// Failures: errors returned and panics caught (frames, flush).
    pub errors: u64,
    /// Of those, panics.
    pub panics: u64,
    /// Frames that passed the plugin by because the error policy had disabled it.
    pub passed_by: u64,
    /// Whether the error policy disabled the plugin.
    pub disabled: bool,
    /// Time spent in the plugin's calls, in seconds.
    pub busy_s: f64,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// The plugin's own counters, as of the end of the stream (an object in JSON).
    #[serde(with = "counters_as_object")]
    pub counters: Vec<(String, u64)>,
}

/// Counters are pairs in Rust (in the plugin's order) and an object in JSON.
mod counters_as_object {
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(c: &[(String, u64)], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(c.len()))?;
        for (name, value) in c {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, u64)>, D::Error> {
        let map = std::collections::BTreeMap::<String, u64>::deserialize(d)?;
        Ok(map.into_iter().collect())
    }
}

impl PluginStats {
    fn report(&self, plugin: &str, stage: Option<&reel_sched::StageSnapshot>) -> PluginReport {
        let called = self.frames.load(Ordering::Relaxed);
        let frames = stage.map_or(called, |s| s.frames_in.max(called));
        PluginReport {
            plugin: plugin.to_string(),
            frames,
            processed: self.processed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            passed_by: frames - called,
            disabled: stage.is_some_and(|s| s.disabled),
            busy_s: self.busy_ns.load(Ordering::Relaxed) as f64 / 1e9,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            counters: sum_counters(&self.counters.lock().unwrap_or_else(PoisonError::into_inner)),
        }
    }
}

/// The counters of every processor of a stage, summed by name, in the order they
/// first appear.
fn sum_counters(per_worker: &[Vec<(String, u64)>]) -> Vec<(String, u64)> {
    let mut sum: Vec<(String, u64)> = Vec::new();
    for (name, value) in per_worker.iter().flatten() {
        match sum.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = v.saturating_add(*value),
            None => sum.push((name.clone(), *value)),
        }
    }
    sum
}

/// A handle on a plugin stage's counts that stays valid after the stage has moved
/// into a pipeline.
#[derive(Debug, Clone)]
pub struct StatsHandle {
    plugin: Arc<str>,
    stats: Arc<PluginStats>,
}

impl StatsHandle {
    /// The counts now, with what the pipeline knows of the stage (`stage`: its
    /// snapshot, which says whether the error policy disabled it and how many frames
    /// passed it by); without it, only the plugin's own calls are counted.
    pub fn report(&self, stage: Option<&reel_sched::StageSnapshot>) -> PluginReport {
        self.stats.report(&self.plugin, stage)
    }

    /// The name of the stage in a pipeline's metrics (`plugin:NAME`).
    pub fn stage_name(&self) -> String {
        format!("plugin:{}", self.plugin)
    }
}

/// A plugin running as a [`Stage`]: one processor, created from a configuration,
/// called once per frame in stream order.
///
/// Per frame, the plugin gets the frame's own buffer (no copy) and its detections;
/// detections the plugin adds are attached to the frame. When the plugin fails
/// (an error, or a panic caught at the boundary), the frame still goes on, its
/// detections as they were before the call (its pixels may hold what the plugin
/// wrote before it failed), and the stage returns the failure as its error: the
/// stage's [`ErrorPolicy`](reel_sched::ErrorPolicy) in the pipeline decides whether
/// the run goes on (skip), goes on without the plugin after N failures (disable), or
/// stops with an error naming the plugin (fail). A frame in a format the plugin
/// does not accept stops the run whatever the policy.
pub struct PluginStage {
    name: String,
    plugin: String,
    formats: Vec<api::PixelFormat>,
    processor: ProcessorBox,
    stats: Arc<PluginStats>,
    /// This processor's slot in the stats' counters.
    slot: usize,
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
}

impl std::fmt::Debug for PluginStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginStage")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

impl PluginStage {
    /// A stage running `plugin` configured by `config` (a JSON object's text).
    pub fn new(plugin: &LoadedPlugin, config: &str) -> Result<Self, Error> {
        let stats = Arc::new(PluginStats::default());
        let handle = StatsHandle {
            plugin: Arc::from(plugin.name()),
            stats,
        };
        Self::counted_by(plugin, config, &handle)
    }

    /// Another processor of `plugin` counted with the stage of `handle`: one worker
    /// of a parallel stage (the counts are the whole stage's).
    pub fn counted_by(
        plugin: &LoadedPlugin,
        config: &str,
        handle: &StatsHandle,
    ) -> Result<Self, Error> {
        let processor = plugin.create_processor(config)?;
        let stats = Arc::clone(&handle.stats);
        let slot = {
            let mut counters = stats
                .counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            counters.push(Vec::new());
            counters.len() - 1
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
            stats,
            slot,
            handle: handle.clone(),
            scratch: RVec::new(),
            labels: Vec::new(),
            added: Vec::new(),
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

    /// Counts a failure and makes it the stage's error (for the pipeline's policy).
    fn failed(&mut self, what: &str, e: api::PluginError) -> StageError {
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
        StageError::new(Error::Plugin {
            plugin: self.plugin.clone(),
            what: "failed",
            message,
        })
    }

    /// Reads the plugin's counters into the stats.
    fn collect_counters(&mut self) {
        match self.processor.counters() {
            RResult::ROk(list) => {
                let mut counters = self
                    .stats
                    .counters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some(mine) = counters.get_mut(self.slot) {
                    *mine = list.iter().map(|c| (c.name.to_string(), c.value)).collect();
                }
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
        let result = self.call(&mut frame);
        let index = frame.index;
        // The frame goes on whatever the plugin did.
        out.emit(frame);
        match result {
            Ok(()) => {
                self.stats.processed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(self.failed(&format!("frame {index}"), e)),
        }
    }

    fn flush(&mut self, _out: &mut dyn Emit) -> Result<(), StageError> {
        let result = match self.processor.flush() {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(e) => Err(self.failed("flush", e)),
        };
        self.collect_counters();
        result
    }
}

impl Drop for PluginStage {
    /// A stage the error policy disabled is never flushed: its counters are read
    /// when it goes.
    fn drop(&mut self) {
        self.collect_counters();
    }
}
