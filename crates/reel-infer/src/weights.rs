//! Reading YOLOv8 weights from a memory-mapped safetensors file, in either naming,
//! with every tensor's shape checked and batch-norm folded into its convolution.
//!
//! Names are asked for in ultralytics' own spelling (`model.2.m.0.cv1.conv.weight`);
//! for a file in the naming of the candle weights on the Hugging Face hub they are
//! translated (`net.b2.0.bottleneck.0.cv1.conv.weight`).

use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

use crate::InferError;

/// Batch-norm epsilon of every YOLOv8 convolution block.
pub const BN_EPS: f64 = 1e-3;

/// How the tensors of a file are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// ultralytics' state-dict names: `model.0.conv.weight`, `model.0.bn.weight`, ….
    Ultralytics,
    /// The candle hub names: `net.b1.0.conv.weight`, `fpn.n1…`, `head…`.
    Hub,
}

/// The hub prefix of ultralytics' layer `index`, if the detector has that layer
/// with weights.
fn hub_prefix(index: u32) -> Option<&'static str> {
    Some(match index {
        0 => "net.b1.0",
        1 => "net.b1.1",
        2 => "net.b2.0",
        3 => "net.b2.1",
        4 => "net.b2.2",
        5 => "net.b3.0",
        6 => "net.b3.1",
        7 => "net.b4.0",
        8 => "net.b4.1",
        9 => "net.b5.0",
        12 => "fpn.n1",
        15 => "fpn.n2",
        16 => "fpn.n3",
        18 => "fpn.n4",
        19 => "fpn.n5",
        21 => "fpn.n6",
        22 => "head",
        _ => return None,
    })
}

/// The hub name of an ultralytics tensor name (`None` when it has no counterpart).
pub fn to_hub_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix("model.")?;
    let (index, rest) = rest.split_once('.')?;
    let prefix = hub_prefix(index.parse().ok()?)?;
    let rest = match rest.strip_prefix("m.") {
        Some(tail) => format!("bottleneck.{tail}"),
        None => rest.to_string(),
    };
    Some(format!("{prefix}.{rest}"))
}

/// An open weights file.
pub struct Weights {
    st: MmapedSafetensors,
    path: PathBuf,
    naming: Naming,
    device: Device,
    dtype: DType,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("path", &self.path)
            .field("naming", &self.naming)
            .finish_non_exhaustive()
    }
}

impl Weights {
    /// Memory-maps `path` and tells its naming. Tensors are then put on `device` in
    /// `dtype`.
    pub fn open(path: &Path, device: &Device, dtype: DType) -> Result<Self, InferError> {
        let meta = std::fs::metadata(path).map_err(|source| InferError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !meta.is_file() {
            return Err(InferError::BadModel {
                path: path.to_path_buf(),
                message: "not a file".to_string(),
            });
        }
        // SAFETY: the file is mapped read-only and only read through the mapping
        // while it loads; the tensors are copied out of it. Changing the file while
        // a model loads from it is outside what reel supports (as for every
        // memory-mapped input).
        let st = unsafe { MmapedSafetensors::new(path) }.map_err(|e| InferError::BadModel {
            path: path.to_path_buf(),
            message: format!("not a readable safetensors file: {e}"),
        })?;
        let names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
        let naming = if names.iter().any(|n| n.starts_with("model.")) {
            Naming::Ultralytics
        } else if names.iter().any(|n| n.starts_with("net.")) {
            Naming::Hub
        } else {
            return Err(InferError::BadModel {
                path: path.to_path_buf(),
                message: format!(
                    "no YOLOv8 tensors (neither `model.*` nor `net.*` names) among its {} tensors",
                    names.len()
                ),
            });
        };
        Ok(Self {
            st,
            path: path.to_path_buf(),
            naming,
            device: device.clone(),
            dtype,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The naming the file uses.
    pub fn naming(&self) -> Naming {
        self.naming
    }

    /// The device tensors are put on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The precision tensors are put in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The name the file would give the ultralytics tensor `name`.
    pub fn file_name(&self, name: &str) -> String {
        match self.naming {
            Naming::Ultralytics => name.to_string(),
            Naming::Hub => to_hub_name(name).unwrap_or_else(|| name.to_string()),
        }
    }

    /// The shape of a tensor in the file, `None` when absent.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.st
            .get(&self.file_name(name))
            .ok()
            .map(|v| v.shape().to_vec())
    }

    /// The tensor `name` (ultralytics spelling) as f32 on the CPU, checked against
    /// `expected`.
    pub fn cpu_f32(&self, name: &str, expected: &[usize]) -> Result<Tensor, InferError> {
        let file_name = self.file_name(name);
        let view = self
            .st
            .get(&file_name)
            .map_err(|_| InferError::MissingTensor {
                path: self.path.clone(),
                tensor: file_name.clone(),
                expected: expected.to_vec(),
            })?;
        if view.shape() != expected {
            return Err(InferError::TensorShape {
                path: self.path.clone(),
                tensor: file_name,
                found: view.shape().to_vec(),
                expected: expected.to_vec(),
            });
        }
        let t = self
            .st
            .load(&file_name, &Device::Cpu)
            .map_err(|e| InferError::BadModel {
                path: self.path.clone(),
                message: format!("tensor `{file_name}`: {e}"),
            })?;
        Ok(t.to_dtype(DType::F32)?)
    }

    /// Moves a CPU f32 tensor to the model's device and precision.
    pub fn place(&self, t: &Tensor) -> Result<Tensor, InferError> {
        Ok(t.to_dtype(self.dtype)?.to_device(&self.device)?)
    }

    /// A convolution with its batch-norm folded in, from `prefix.conv.weight` and
    /// `prefix.bn.{weight,bias,running_mean,running_var}`: the weight scaled by
    /// `gamma / sqrt(var + eps)` per output channel and the bias `beta - mean *
    /// gamma / sqrt(var + eps)`. Returns the weight `[c2, c1, k, k]` and the bias
    /// shaped `[1, c2, 1, 1]`, placed.
    pub fn conv_bn(
        &self,
        prefix: &str,
        c1: usize,
        c2: usize,
        k: usize,
    ) -> Result<(Tensor, Tensor), InferError> {
        let w = self.cpu_f32(&format!("{prefix}.conv.weight"), &[c2, c1, k, k])?;
        let gamma = self.cpu_f32(&format!("{prefix}.bn.weight"), &[c2])?;
        let beta = self.cpu_f32(&format!("{prefix}.bn.bias"), &[c2])?;
        let mean = self.cpu_f32(&format!("{prefix}.bn.running_mean"), &[c2])?;
        let var = self.cpu_f32(&format!("{prefix}.bn.running_var"), &[c2])?;
        let scale = gamma.broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
        let w = w.broadcast_mul(&scale.reshape((c2, 1, 1, 1))?)?;
        let b = (beta - mean.mul(&scale)?)?;
        Ok((self.place(&w)?, self.place(&b.reshape((1, c2, 1, 1))?)?))
    }

    /// A plain convolution with bias (`prefix.weight`, `prefix.bias`), placed; the
    /// bias shaped `[1, c2, 1, 1]`.
    pub fn conv_bias(
        &self,
        prefix: &str,
        c1: usize,
        c2: usize,
        k: usize,
    ) -> Result<(Tensor, Tensor), InferError> {
        let w = self.cpu_f32(&format!("{prefix}.weight"), &[c2, c1, k, k])?;
        let b = self.cpu_f32(&format!("{prefix}.bias"), &[c2])?;
        Ok((self.place(&w)?, self.place(&b.reshape((1, c2, 1, 1))?)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names() {
        let cases = [
            ("model.0.conv.weight", "net.b1.0.conv.weight"),
            ("model.1.bn.running_var", "net.b1.1.bn.running_var"),
            (
                "model.2.m.0.cv1.conv.weight",
                "net.b2.0.bottleneck.0.cv1.conv.weight",
            ),
            ("model.4.cv2.bn.bias", "net.b2.2.cv2.bn.bias"),
            ("model.9.cv1.conv.weight", "net.b5.0.cv1.conv.weight"),
            (
                "model.12.m.0.cv2.bn.weight",
                "fpn.n1.bottleneck.0.cv2.bn.weight",
            ),
            ("model.21.cv1.conv.weight", "fpn.n6.cv1.conv.weight"),
            ("model.22.cv2.0.2.bias", "head.cv2.0.2.bias"),
            ("model.22.dfl.conv.weight", "head.dfl.conv.weight"),
        ];
        for (u, h) in cases {
            assert_eq!(to_hub_name(u).as_deref(), Some(h), "{u}");
        }
        assert_eq!(to_hub_name("model.10.x"), None);
        assert_eq!(to_hub_name("other"), None);
    }
}
