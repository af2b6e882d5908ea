//! Models loaded once per (weights, device, precision) and shared; memory checked
//! before a load, idle models evicted least recently used first under pressure.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use candle_core::{DType, Tensor};
use reel_pool::MemoryMonitor;

use crate::InferError;
use crate::detector::LoadedModel;
use crate::device::{DeviceSpec, Precision, device_name};
use crate::model::YoloV8;
use crate::source::{self, HubOptions, ModelSource};
use crate::weights::Weights;

/// Memory a load is expected to take, as a multiple of the weights file's size:
/// the mapped file, the folded f32 copies and the device's copy.
pub const LOAD_FACTOR: f64 = 3.0;

/// Which model, where, in what precision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRequest {
    /// The weights.
    pub source: ModelSource,
    /// The device.
    pub device: DeviceSpec,
    /// The precision.
    pub precision: Precision,
}

impl ModelRequest {
    /// The weights on the CPU in f32.
    pub fn cpu(source: ModelSource) -> Self {
        Self {
            source,
            device: DeviceSpec::Cpu,
            precision: Precision::F32,
        }
    }
}

/// What identifies a loaded model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    path: PathBuf,
    device: String,
    precision: Precision,
}

struct Entry {
    key: Key,
    model: Arc<LoadedModel>,
    bytes: u64,
    last_used: u64,
}

/// The manager's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ManagerStats {
    /// Models loaded (each load reads a file).
    pub loads: u64,
    /// Requests answered with a model already loaded.
    pub hits: u64,
    /// Models evicted to make room.
    pub evictions: u64,
    /// Models held now.
    pub resident: usize,
}

/// Loads models once and shares them. A model stays while anyone holds it; an idle
/// one (held by the manager alone) stays too, until memory is needed for another.
pub struct ModelManager {
    monitor: Option<Arc<MemoryMonitor>>,
    hub: HubOptions,
    factor: f64,
    state: Mutex<State>,
    loads: AtomicU64,
    hits: AtomicU64,
    evictions: AtomicU64,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    clock: u64,
}

impl fmt::Debug for ModelManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelManager")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ModelManager {
    /// A manager that checks `monitor` (when given) before each load and fetches
    /// named models as `hub` says.
    pub fn new(monitor: Option<Arc<MemoryMonitor>>, hub: HubOptions) -> Self {
        Self {
            monitor,
            hub,
            factor: LOAD_FACTOR,
            state: Mutex::new(State::default()),
            loads: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// The figures now.
    pub fn stats(&self) -> ManagerStats {
        let resident = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len();
        ManagerStats {
            loads: self.loads.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            resident,
        }
    }

    /// The model `req` asks for: the one already loaded, or loaded now (after a
    /// memory check, evicting idle models if needed, and a warm-up pass).
    pub fn get(&self, req: &ModelRequest) -> Result<Arc<LoadedModel>, InferError> {
        let path = source::resolve(&req.source, &self.hub)?;
        let device = req.device.open()?;
        req.precision.check(&device)?;
        let key = Key {
            path: path.clone(),
            device: device_name(&device),
            precision: req.precision,
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.clock += 1;
        let now = state.clock;
        if let Some(e) = state.entries.iter_mut().find(|e| e.key == key) {
            e.last_used = now;
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::clone(&e.model));
        }
        let file_bytes = std::fs::metadata(&path)
            .map_err(|source| InferError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        let needed = (file_bytes as f64 * self.factor) as u64;
        self.make_room(&mut state, &req.source.describe(), needed)?;

        let started = Instant::now();
        let weights = Weights::open(&path, &device, req.precision.dtype())?;
        let net = YoloV8::load(&weights, req.source.variant())?;
        drop(weights);
        // Warm-up: the first pass sets up kernels and caches; a small input keeps
        // it short.
        let warm = Tensor::zeros((1, 3, 64, 64), DType::F32, &device)?;
        net.forward(&warm)?;
        let labels = LoadedModel::labels_for(net.num_classes());
        tracing::info!(
            model = %req.source.describe(),
            variant = %net.variant(),
            device = %key.device,
            precision = %req.precision,
            ms = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        let model = Arc::new(LoadedModel {
            net,
            labels,
            name: req.source.describe(),
            path,
            device: key.device.clone(),
            precision: req.precision,
        });
        self.loads.fetch_add(1, Ordering::Relaxed);
        state.entries.push(Entry {
            key,
            model: Arc::clone(&model),
            bytes: needed,
            last_used: now,
        });
        Ok(model)
    }

    /// Evicts idle models, least recently used first, until `needed` bytes fit
    /// (counting what the evicted models held as freed, since the monitor's next
    /// sample may not show it yet).
    fn make_room(&self, state: &mut State, model: &str, needed: u64) -> Result<(), InferError> {
        let Some(monitor) = &self.monitor else {
            return Ok(());
        };
        monitor.poll(Instant::now());
        let mut freed = 0u64;
        while !monitor.can_reserve(needed.saturating_sub(freed)) {
            let idle = state
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| Arc::strong_count(&e.model) == 1)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i);
            let Some(i) = idle else {
                return Err(InferError::NoMemory {
                    model: model.to_string(),
                    needed: needed.saturating_sub(freed),
                    available: monitor.available_bytes(),
                });
            };
            let e = state.entries.remove(i);
            freed += e.bytes;
            self.evictions.fetch_add(1, Ordering::Relaxed);
            tracing::info!(model = %e.model.name, device = %e.key.device, "evicted an idle model to make room");
        }
        Ok(())
    }
}
