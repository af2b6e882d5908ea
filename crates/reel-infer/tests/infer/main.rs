//! Evidence for `reel-infer`: parity with the reference implementation, the
//! letterbox, NMS and box mapping, batching, out-of-memory splitting, the model
//! manager, weights files in both namings or broken, and model sources offline.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

mod alloc;
mod batching;
mod conv;
mod letterbox;
mod manager;
mod nms;
#[path = "../../../../tests/support/oracle.rs"]
mod oracle;
mod parity;
mod source;
mod vtest;
mod weights;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor};
use reel_infer::{LoadedModel, ModelManager, ModelRequest, ModelSource, YoloV8};

/// The reference fixtures beside the project (`../shared/data`), or where
/// `REEL_SHARED_DATA` says.
pub fn shared_data() -> PathBuf {
    std::env::var_os("REEL_SHARED_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    )
}

/// A file of the YOLOv8n fixture; panics with a clear message when it is missing.
pub fn fixture(name: &str) -> PathBuf {
    let p = shared_data().join("yolov8n-random").join(name);
    assert!(
        p.is_file(),
        "missing reference fixture {} (the shared data beside the project, or REEL_SHARED_DATA)",
        p.display()
    );
    p
}

/// The fixture's weights.
pub fn weights_path() -> PathBuf {
    fixture("yolov8n_random.safetensors")
}

/// A little-endian f32 file.
pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The fixture model on the CPU, loaded once for the whole test binary.
pub fn fixture_model() -> Arc<LoadedModel> {
    static MODEL: OnceLock<Arc<LoadedModel>> = OnceLock::new();
    Arc::clone(MODEL.get_or_init(|| {
        let manager = ModelManager::new(None, reel_infer::HubOptions::from_env());
        manager
            .get(&ModelRequest::cpu(ModelSource::Path(weights_path())))
            .unwrap()
    }))
}

/// Every tensor of the fixture, by name.
pub fn fixture_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(weights_path(), &Device::Cpu).unwrap()
}

/// Loads a network from a weights file on the CPU.
pub fn load_net(path: &Path) -> Result<YoloV8, reel_infer::InferError> {
    let w = reel_infer::weights::Weights::open(path, &Device::Cpu, candle_core::DType::F32)?;
    YoloV8::load(&w, None)
}

/// `messi5.jpg` from Debian's opencv-doc, as RGB, if installed.
pub fn messi() -> Option<image::RgbImage> {
    let p = Path::new("/usr/share/doc/opencv-doc/examples/data/messi5.jpg");
    if !p.is_file() {
        crate::oracle::missing(&format!("{} (Debian package opencv-doc)", p.display()));
        return None;
    }
    Some(image::open(p).unwrap().to_rgb8())
}
