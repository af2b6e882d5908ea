//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong loading a model or running it.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The weights file could not be opened or read.
    #[error("cannot read model {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a safetensors file, or not one of a YOLOv8 detector.
    #[error("model {}: {message}", path.display())]
    BadModel {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor the architecture needs is not in the file.
    #[error("model {}: tensor `{tensor}` is missing (expected shape {expected:?})", path.display())]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name, as the file would spell it.
        tensor: String,
        /// The shape the architecture expects.
        expected: Vec<usize>,
    },
    /// A tensor has another shape than the architecture expects.
    #[error("model {}: tensor `{tensor}` has shape {found:?}, expected {expected:?}", path.display())]
    TensorShape {
        /// The file.
        path: PathBuf,
        /// The tensor's name in the file.
        tensor: String,
        /// The shape in the file.
        found: Vec<usize>,
        /// The shape the architecture expects.
        expected: Vec<usize>,
    },
    /// A model name that is neither a known model nor an existing file.
    #[error(
        "unknown model `{0}`: give yolov8n, yolov8s, yolov8m, yolov8l or yolov8x, or the path of a .safetensors file"
    )]
    UnknownModel(String),
    /// A named model is not cached and could not be fetched.
    #[error("{0}")]
    Unavailable(Box<Unavailable>),
    /// A device that cannot be used (unknown, not compiled in, not present).
    #[error("device: {0}")]
    Device(String),
    /// An option is out of range.
    #[error("{0}")]
    Options(String),
    /// Memory ran out (host or device) while running a batch.
    #[error("out of memory running a batch of {batch}: {message}")]
    OutOfMemory {
        /// Images in the batch.
        batch: usize,
        /// What ran out.
        message: String,
    },
    /// Not enough memory to load a model, and no idle model to evict.
    #[error(
        "not enough memory to load {model}: about {needed} bytes needed, {available} available, and no idle model to evict"
    )]
    NoMemory {
        /// The model.
        model: String,
        /// Bytes the load is estimated to take.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// A frame the detector cannot read.
    #[error("frame {index}: {message}")]
    Frame {
        /// The frame's index.
        index: u64,
        /// What is wrong with it.
        message: String,
    },
    /// Letterboxing or tensor layout failed.
    #[error("preprocessing: {0}")]
    Ops(#[from] reel_ops::OpsError),
    /// The tensor library failed.
    #[error("inference: {0}")]
    Candle(#[from] candle_core::Error),
}

impl InferError {
    /// Whether the error means memory ran out, host or device: a smaller batch may
    /// succeed.
    pub fn is_out_of_memory(&self) -> bool {
        match self {
            InferError::OutOfMemory { .. } | InferError::NoMemory { .. } => true,
            InferError::Candle(e) => {
                let text = e.to_string().to_ascii_lowercase();
                text.contains("out of memory")
                    || text.contains("out_of_memory")
                    || text.contains("outofmemory")
                    || text.contains("memory allocation")
            }
            _ => false,
        }
    }
}

impl From<reel_pool::PoolError> for InferError {
    fn from(e: reel_pool::PoolError) -> Self {
        InferError::OutOfMemory {
            batch: 0,
            message: format!("input buffer: {e}"),
        }
    }
}

/// Why a named model could not be had: not in the hub cache, and the download
/// failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "model `{model}` is not in the local cache ({}) and could not be downloaded from {endpoint} ({reason}); \
     download {file} from the Hugging Face repository {repo} on a machine with a network and pass it as a local file: --model PATH/{file}",
    cache.display()
)]
pub struct Unavailable {
    /// The model's name.
    pub model: String,
    /// The hub repository.
    pub repo: String,
    /// The file in the repository.
    pub file: String,
    /// The cache directory that was searched.
    pub cache: PathBuf,
    /// The hub's address.
    pub endpoint: String,
    /// Why the download failed.
    pub reason: String,
}
