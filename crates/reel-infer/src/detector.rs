//! A loaded model with its pre- and postprocessing: pictures in, detections out,
//! in batches, splitting a batch that runs out of memory.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::Tensor;
use reel_frame::{Detection, Label};
use reel_ops::letterbox::Letterbox;
use reel_pool::{FramePool, PoolConfig};

use crate::cpu::{self, Runner};
use crate::device::Precision;
use crate::model::YoloV8;
use crate::postprocess::{self, Candidate, PostConfig};
use crate::preprocess::{ImageRef, Preprocessor};
use crate::{COCO_LABELS, InferError};

/// A model loaded once and shared ([`crate::ModelManager`] hands these out).
#[derive(Debug)]
pub struct LoadedModel {
    /// The network.
    pub net: YoloV8,
    /// Class names by index.
    pub labels: Vec<Label>,
    /// How the model was asked for (a name or a path).
    pub name: String,
    /// The weights file it was loaded from.
    pub path: PathBuf,
    /// The device, as `cpu`, `cuda:0`, `metal:0`.
    pub device: String,
    /// The precision it runs in.
    pub precision: Precision,
}

impl LoadedModel {
    /// Labels for `nc` classes: COCO's when there are 80, else `class{N}`.
    pub fn labels_for(nc: usize) -> Vec<Label> {
        if nc == COCO_LABELS.len() {
            COCO_LABELS.iter().map(|l| Label::new(l)).collect()
        } else {
            (0..nc).map(|i| Label::new(&format!("class{i}"))).collect()
        }
    }
}

/// How a detector preprocesses and filters.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectConfig {
    /// Side of the square model input, a multiple of 32.
    pub imgsz: u32,
    /// Confidence threshold, IoU threshold, class filter, most detections.
    pub post: PostConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            imgsz: 640,
            post: PostConfig::default(),
        }
    }
}

impl DetectConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), InferError> {
        if self.imgsz == 0 || !self.imgsz.is_multiple_of(32) || self.imgsz > 4096 {
            return Err(InferError::Options(format!(
                "the model size must be a positive multiple of 32 up to 4096, not {}",
                self.imgsz
            )));
        }
        let p = &self.post;
        if !(0.0..=1.0).contains(&p.conf) {
            return Err(InferError::Options(format!(
                "the confidence threshold must be in 0..=1, not {}",
                p.conf
            )));
        }
        if !(0.0..=1.0).contains(&p.iou) {
            return Err(InferError::Options(format!(
                "the IoU threshold must be in 0..=1, not {}",
                p.iou
            )));
        }
        Ok(())
    }
}

/// Batch figures of a run, shared between the detector and whoever reports them.
#[derive(Debug)]
pub struct BatchStats {
    ceiling: AtomicUsize,
    batches: AtomicU64,
    images: AtomicU64,
    oom_splits: AtomicU64,
    detections: AtomicU64,
}

/// A snapshot of [`BatchStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchReport {
    /// The batch ceiling now (lowered by each out-of-memory split).
    pub ceiling: usize,
    /// Forward passes that succeeded.
    pub batches: u64,
    /// Pictures processed.
    pub images: u64,
    /// Batches that ran out of memory and were split in halves.
    pub oom_splits: u64,
    /// Detections found.
    pub detections: u64,
}

impl BatchStats {
    fn new(ceiling: usize) -> Self {
        Self {
            ceiling: AtomicUsize::new(ceiling.max(1)),
            batches: AtomicU64::new(0),
            images: AtomicU64::new(0),
            oom_splits: AtomicU64::new(0),
            detections: AtomicU64::new(0),
        }
    }

    /// The largest batch to run now.
    pub fn ceiling(&self) -> usize {
        self.ceiling.load(Ordering::Relaxed).max(1)
    }

    /// The figures now.
    pub fn report(&self) -> BatchReport {
        BatchReport {
            ceiling: self.ceiling(),
            batches: self.batches.load(Ordering::Relaxed),
            images: self.images.load(Ordering::Relaxed),
            oom_splits: self.oom_splits.load(Ordering::Relaxed),
            detections: self.detections.load(Ordering::Relaxed),
        }
    }
}

/// Reusable state of one batch: the preprocessor, the CPU engine's runner (its
/// threads and planned buffers), the output and the buffers of geometry and
/// candidates.
#[derive(Debug)]
struct Scratch {
    prep: Preprocessor,
    runner: Option<Runner>,
    out: Vec<f32>,
    boxes: Vec<Letterbox>,
    cands: Vec<Candidate>,
}

/// A model with its preprocessing and postprocessing. Cheap to share (`Arc`);
/// batches run one at a time.
pub struct Detector {
    model: Arc<LoadedModel>,
    config: DetectConfig,
    pool: FramePool,
    scratch: Mutex<Scratch>,
    stats: Arc<BatchStats>,
    fail_above: AtomicUsize,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("model", &self.model.name)
            .field("config", &self.config)
            .field("stats", &self.stats.report())
            .finish_non_exhaustive()
    }
}

impl Detector {
    /// A detector running `model` with `config`, for batches of up to `max_batch`,
    /// on [`cpu::default_threads`] threads when the model runs on the CPU engine.
    /// Its input buffers come from a pool of its own sized for two batches.
    pub fn new(
        model: Arc<LoadedModel>,
        config: DetectConfig,
        max_batch: usize,
    ) -> Result<Self, InferError> {
        Self::with_threads(model, config, max_batch, 0)
    }

    /// [`new`](Self::new) with the number of threads the CPU engine runs the
    /// network on (0: [`cpu::default_threads`], every core the process may use).
    /// The threads are the detector's own (started here, kept until it is
    /// dropped); at batch 1 they share each layer, at larger batches each runs
    /// whole pictures. A model on a GPU ignores the number.
    pub fn with_threads(
        model: Arc<LoadedModel>,
        config: DetectConfig,
        max_batch: usize,
        threads: usize,
    ) -> Result<Self, InferError> {
        config.validate()?;
        let runner = model.net.cpu_network().map(|_| Runner::new(threads));
        let max_batch = max_batch.max(1);
        let prep = Preprocessor::new(config.imgsz);
        let per_batch = max_batch * prep.floats_per_image() * std::mem::size_of::<f32>();
        let pool = FramePool::new(PoolConfig::with_budget(2 * per_batch));
        Ok(Self {
            model,
            config,
            pool,
            scratch: Mutex::new(Scratch {
                prep,
                runner,
                out: Vec::new(),
                boxes: Vec::with_capacity(max_batch),
                cands: Vec::new(),
            }),
            stats: Arc::new(BatchStats::new(max_batch)),
            fail_above: AtomicUsize::new(0),
        })
    }

    /// The side of the square input pictures are letterboxed to now: the
    /// configuration's `imgsz`, or a smaller one set by
    /// [`set_input_size`](Self::set_input_size).
    pub fn input_size(&self) -> u32 {
        let scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        scratch.prep.size()
    }

    /// Letterboxes the next batches to `size` (a multiple of 32, at most the
    /// configuration's `imgsz`, whose input buffers it fits in): a smaller input
    /// costs the network less, for coarser detections. The CPU engine plans each
    /// size once.
    pub fn set_input_size(&self, size: u32) -> Result<(), InferError> {
        if size == 0 || !size.is_multiple_of(32) || size > self.config.imgsz {
            return Err(InferError::Options(format!(
                "the detection input size must be a multiple of 32 between 32 and {} (imgsz), not {size}",
                self.config.imgsz
            )));
        }
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        if scratch.prep.size() != size {
            tracing::debug!(size, "detection input size changed");
            scratch.prep = Preprocessor::new(size);
        }
        Ok(())
    }

    /// Threads the CPU engine runs on (`None` when the model runs elsewhere).
    pub fn threads(&self) -> Option<usize> {
        let scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        scratch.runner.as_ref().map(Runner::threads)
    }

    /// Time per layer of the last batch on the CPU engine (empty on candle).
    pub fn layer_times(&self) -> Vec<cpu::LayerTime> {
        let scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        match (&scratch.runner, self.model.net.cpu_network()) {
            (Some(r), Some(net)) => r.layer_times(net),
            _ => Vec::new(),
        }
    }

    /// The model.
    pub fn model(&self) -> &Arc<LoadedModel> {
        &self.model
    }

    /// The configuration.
    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// The batch figures (shared: they keep counting).
    pub fn stats(&self) -> Arc<BatchStats> {
        Arc::clone(&self.stats)
    }

    /// The pool the input tensors come from.
    pub fn input_pool(&self) -> &FramePool {
        &self.pool
    }

    /// Makes every batch of more than `n` pictures fail as if its input buffer could
    /// not be allocated (0 turns it off). The model still runs what is not refused:
    /// this exercises the out-of-memory path with the real network.
    pub fn fail_batches_larger_than(&self, n: usize) {
        self.fail_above.store(n, Ordering::Relaxed);
    }

    /// Runs one batch as it is: the raw output `[n, 4 + classes, anchors]` and
    /// where each picture landed in the input.
    pub fn forward_batch(
        &self,
        images: &[ImageRef<'_>],
    ) -> Result<(Tensor, Vec<Letterbox>), InferError> {
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        let (n, rows, anchors) = self.forward_locked(&mut scratch, images)?;
        let out = Tensor::from_slice(
            &scratch.out[..n * rows * anchors],
            (n, rows, anchors),
            &candle_core::Device::Cpu,
        )?;
        Ok((out, scratch.boxes.clone()))
    }

    /// Letterboxes and runs a batch; the output goes to `scratch.out`. Returns
    /// (pictures, rows, anchors).
    fn forward_locked(
        &self,
        scratch: &mut Scratch,
        images: &[ImageRef<'_>],
    ) -> Result<(usize, usize, usize), InferError> {
        let n = images.len();
        let limit = self.fail_above.load(Ordering::Relaxed);
        if limit > 0 && n > limit {
            return Err(InferError::OutOfMemory {
                batch: n,
                message: format!("simulated allocation failure above {limit} pictures"),
            });
        }
        let Scratch {
            prep,
            boxes,
            runner,
            out,
            ..
        } = scratch;
        let s = prep.size() as usize;
        let buf = prep.batch_into(&self.pool, images, boxes)?;
        let input = &buf.as_f32()[..n * 3 * s * s];
        let net = &self.model.net;
        if let (Some(engine), Some(runner)) = (net.cpu_network(), runner.as_mut()) {
            let (rows, anchors) = (engine.rows(), cpu::Network::anchors(s, s));
            if out.len() < n * rows * anchors {
                out.resize(n * rows * anchors, 0.0);
            }
            runner.run(engine, input, n, s, s, out)?;
            return Ok((n, rows, anchors));
        }
        let input = Tensor::from_slice(input, (n, 3, s, s), net.device())?;
        drop(buf);
        let y = net.forward(&input).map_err(|e| match e {
            InferError::Candle(c) => {
                let e = InferError::Candle(c);
                if e.is_out_of_memory() {
                    InferError::OutOfMemory {
                        batch: n,
                        message: e.to_string(),
                    }
                } else {
                    e
                }
            }
            other => other,
        })?;
        let (_, rows, anchors) = y.dims3()?;
        out.clear();
        out.extend(y.flatten_all()?.to_vec1::<f32>()?);
        Ok((n, rows, anchors))
    }

    /// Detects objects in one batch as it is (no splitting): one list per picture,
    /// best first, in the pictures' own pixels.
    pub fn detect(&self, images: &[ImageRef<'_>]) -> Result<Vec<Vec<Detection>>, InferError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        let (n, rows, anchors) = self.forward_locked(&mut scratch, images)?;
        let Scratch {
            boxes, cands, out, ..
        } = &mut *scratch;
        let mut results = Vec::with_capacity(n);
        for (i, (img, lb)) in images.iter().zip(boxes.iter()).enumerate() {
            let one = &out[i * rows * anchors..(i + 1) * rows * anchors];
            postprocess::candidates(one, anchors, &self.config.post, cands);
            postprocess::nms(cands, self.config.post.iou, self.config.post.max_det);
            results.push(postprocess::to_detections(
                cands,
                lb,
                img.width,
                img.height,
                &self.model.labels,
            ));
        }
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.images.fetch_add(n as u64, Ordering::Relaxed);
        let found: usize = results.iter().map(Vec::len).sum();
        self.stats
            .detections
            .fetch_add(found as u64, Ordering::Relaxed);
        Ok(results)
    }

    /// Detects objects in any number of pictures, in batches no larger than the
    /// ceiling. A batch that runs out of memory is split in halves and retried,
    /// down to single pictures, and the ceiling is lowered for the rest of the run;
    /// each split is logged and counted. Results come in the pictures' order.
    pub fn detect_adaptive(
        &self,
        images: &[ImageRef<'_>],
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        let mut results = Vec::with_capacity(images.len());
        let mut rest = images;
        while !rest.is_empty() {
            let take = rest.len().min(self.stats.ceiling());
            let (now, later) = rest.split_at(take);
            self.detect_splitting(now, &mut results)?;
            rest = later;
        }
        Ok(results)
    }

    fn detect_splitting(
        &self,
        images: &[ImageRef<'_>],
        results: &mut Vec<Vec<Detection>>,
    ) -> Result<(), InferError> {
        match self.detect(images) {
            Ok(found) => {
                results.extend(found);
                Ok(())
            }
            Err(e) if e.is_out_of_memory() && images.len() > 1 => {
                let half = images.len().div_ceil(2);
                let lowered = self
                    .stats
                    .ceiling
                    .fetch_min(half, Ordering::Relaxed)
                    .min(half);
                self.stats.oom_splits.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    batch = images.len(),
                    ceiling = lowered,
                    error = %e,
                    "batch ran out of memory: splitting it and lowering the batch ceiling"
                );
                let (a, b) = images.split_at(half);
                self.detect_splitting(a, results)?;
                self.detect_splitting(b, results)
            }
            Err(e) => Err(e),
        }
    }
}
