//! The detection options `reel detect` and `reel analyze --model` share.

use std::time::Duration;

use reel_host::job::DetectionRequest;
use reel_infer::{DeviceSpec, Precision};

use crate::cmd::values;

/// How the model runs and what it keeps (everything but the model's name).
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Where the model runs: auto, cpu, cuda, cuda:N or metal.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: DeviceSpec,
    /// Precision: f32, or f16/bf16 on GPUs.
    #[arg(long, value_name = "P", default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
    /// Frames per inference batch (default: the level's).
    #[arg(long, value_name = "N", value_parser = values::at_least_one::<usize>, allow_negative_numbers = true)]
    pub batch: Option<usize>,
    /// The longest a partial batch waits for more frames, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub batch_wait_ms: u64,
    /// Confidence threshold.
    #[arg(long, value_name = "C", default_value_t = 0.25, value_parser = values::unit, allow_negative_numbers = true)]
    pub conf: f32,
    /// IoU threshold of the non-maximum suppression.
    #[arg(long, value_name = "T", default_value_t = 0.45, value_parser = values::unit, allow_negative_numbers = true)]
    pub iou: f32,
    /// Model input size in pixels (a multiple of 32).
    #[arg(long, value_name = "PX", default_value_t = 640, value_parser = values::imgsz, allow_negative_numbers = true)]
    pub imgsz: u32,
    /// Keep only these classes: COCO names or numbers, comma-separated.
    #[arg(long, value_name = "A,B", value_delimiter = ',', value_parser = values::class)]
    pub classes: Vec<String>,
    /// Threads the model runs on, on the CPU (0: every core; it shares them with
    /// the decoder).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// At most this many detections per frame.
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = values::at_least_one::<usize>, allow_negative_numbers = true)]
    pub max_det: usize,
}

impl ModelArgs {
    /// The detection stage for `model`, batching `batch` frames (the settings').
    pub fn request(&self, model: &str, batch: usize) -> DetectionRequest {
        DetectionRequest {
            model: model.to_string(),
            device: self.device,
            precision: self.precision,
            batch,
            batch_wait: Duration::from_millis(self.batch_wait_ms),
            imgsz: self.imgsz,
            conf: self.conf,
            iou: self.iou,
            classes: self.classes.clone(),
            max_det: self.max_det,
            threads: self.threads,
        }
    }
}

fn parse_device(s: &str) -> Result<DeviceSpec, String> {
    s.parse().map_err(|e: reel_infer::InferError| e.to_string())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|e: reel_infer::InferError| e.to_string())
}
