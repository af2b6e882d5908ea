//! `reel-infer` runs object detection on frames: the YOLOv8 family (n, s, m, l, x)
//! written on candle, its weights read from memory-mapped safetensors in
//! ultralytics' naming or the candle hub's (batch-norm folded in at load), models
//! fetched by name through the Hugging Face hub's cache, devices (`cpu`, `cuda`,
//! `metal`), letterbox preprocessing into pooled buffers, confidence filtering and
//! class-aware NMS, a [`ModelManager`] that loads each model once and shares it,
//! and the [`DetectStage`] that batches frames and splits a batch that runs out of
//! memory instead of failing.
//!
//! It sits beside `reel-decode` above the scheduler: it takes [`reel_frame::Frame`]s
//! and gives back [`reel_frame::Detection`]s. It knows nothing of how frames are
//! decoded, of command lines, output files or terminals.
#![deny(missing_docs)]

pub mod cpu;
mod detector;
pub mod device;
mod error;
mod labels;
mod manager;
pub mod model;
pub mod postprocess;
pub mod preprocess;
pub mod source;
mod stage;
pub mod weights;

pub use detector::{BatchReport, BatchStats, DetectConfig, Detector, LoadedModel};
pub use device::{DeviceSpec, Precision};
pub use error::{InferError, Unavailable};
pub use labels::{COCO_LABELS, coco_class_id};
pub use manager::{LOAD_FACTOR, ManagerStats, ModelManager, ModelRequest};
pub use model::{Variant, YoloV8};
pub use postprocess::PostConfig;
pub use preprocess::ImageRef;
pub use source::{HubOptions, ModelSource};
pub use stage::{DetectStage, scaled_input_size};
