//! Where a model runs (`auto | cpu | cuda[:N] | metal`) and in what precision.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device};

use crate::InferError;

/// The device asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// The first GPU this build can use, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA GPU of this ordinal (needs the `cuda` feature).
    Cuda(usize),
    /// The Metal GPU (needs the `metal` feature).
    Metal,
}

impl FromStr for DeviceSpec {
    type Err = InferError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            "metal" | "mps" => Ok(DeviceSpec::Metal),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => n.parse().map(DeviceSpec::Cuda).map_err(|_| {
                    InferError::Device(format!(
                        "`{s}`: the CUDA device number must be a non-negative integer (cuda:0)"
                    ))
                }),
                None => Err(InferError::Device(format!(
                    "unknown device `{s}`: auto, cpu, cuda, cuda:N or metal"
                ))),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal => f.write_str("metal"),
        }
    }
}

impl DeviceSpec {
    /// Opens the device. `auto` picks CUDA 0 or Metal when this build supports one
    /// and the machine has it, else the CPU. Asking for a GPU this build was made
    /// without is an error that says how to get it.
    pub fn open(self) -> Result<Device, InferError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Auto => {
                if cfg!(feature = "cuda")
                    && candle_core::utils::cuda_is_available()
                    && let Ok(d) = Device::new_cuda(0)
                {
                    return Ok(d);
                }
                if cfg!(feature = "metal")
                    && candle_core::utils::metal_is_available()
                    && let Ok(d) = Device::new_metal(0)
                {
                    return Ok(d);
                }
                Ok(Device::Cpu)
            }
            DeviceSpec::Cuda(n) => {
                if !cfg!(feature = "cuda") {
                    return Err(InferError::Device(format!(
                        "cuda:{n} was asked for, but this build has no CUDA support \
                         (build with `--features cuda`), or use --device cpu"
                    )));
                }
                Device::new_cuda(n)
                    .map_err(|e| InferError::Device(format!("cannot open cuda:{n}: {e}")))
            }
            DeviceSpec::Metal => {
                if !cfg!(feature = "metal") {
                    return Err(InferError::Device(
                        "metal was asked for, but this build has no Metal support \
                         (build with `--features metal`), or use --device cpu"
                            .to_string(),
                    ));
                }
                Device::new_metal(0)
                    .map_err(|e| InferError::Device(format!("cannot open metal: {e}")))
            }
        }
    }
}

/// A short name of an opened device: `cpu`, `cuda:0`, `metal`.
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// The precision weights and activations are held in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 32-bit floats (the only choice on the CPU).
    #[default]
    F32,
    /// 16-bit floats (GPUs only).
    F16,
    /// bfloat16 (GPUs only).
    Bf16,
}

impl FromStr for Precision {
    type Err = InferError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "f16" | "fp16" | "half" | "float16" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            other => Err(InferError::Options(format!(
                "unknown precision `{other}`: f32, f16 or bf16"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        })
    }
}

impl Precision {
    /// The tensor type.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }

    /// Refuses half precision on the CPU.
    pub fn check(self, device: &Device) -> Result<(), InferError> {
        if self != Precision::F32 && device.is_cpu() {
            return Err(InferError::Options(format!(
                "{self} runs on GPUs only; use f32 on the CPU"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("CPU".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert_eq!("metal".parse::<DeviceSpec>().unwrap(), DeviceSpec::Metal);
        let e = "cuda:x".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(e.contains("cuda:x"), "{e}");
        let e = "tpu".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(e.contains("unknown device `tpu`"), "{e}");
        assert_eq!(DeviceSpec::Cuda(1).to_string(), "cuda:1");
    }

    #[test]
    fn cpu_and_auto_open_here() {
        assert!(DeviceSpec::Cpu.open().unwrap().is_cpu());
        assert!(DeviceSpec::Auto.open().is_ok());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let e = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
        assert!(
            e.contains("no CUDA support") && e.contains("--features cuda"),
            "{e}"
        );
    }

    #[test]
    fn half_precision_is_for_gpus() {
        assert!(Precision::F16.check(&Device::Cpu).is_err());
        assert!(Precision::F32.check(&Device::Cpu).is_ok());
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("f8".parse::<Precision>().is_err());
    }
}
