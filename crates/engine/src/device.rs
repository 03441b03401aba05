//! Where the model runs, and how many CPU threads it may use.

use crate::error::{EngineError, Result};
use candle_core::Device;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda(usize),
    Metal(usize),
}

impl FromStr for DeviceChoice {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self> {
        let (kind, index) = match s.split_once(':') {
            Some((k, i)) => (
                k,
                i.parse()
                    .map_err(|_| EngineError::UnknownDevice(s.into()))?,
            ),
            None => (s, 0),
        };
        match kind {
            // A CUDA GPU when this build has CUDA and the machine has one, else the CPU.
            "auto" if cfg!(feature = "cuda") && candle_core::utils::cuda_is_available() => {
                Ok(Self::Cuda(index))
            }
            "auto" => Ok(Self::Cpu),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(index)),
            "metal" => Ok(Self::Metal(index)),
            _ => Err(EngineError::UnknownDevice(s.into())),
        }
    }
}

impl DeviceChoice {
    pub fn name(self) -> String {
        match self {
            Self::Cpu => "cpu".into(),
            Self::Cuda(i) => format!("cuda:{i}"),
            Self::Metal(i) => format!("metal:{i}"),
        }
    }

    /// Whether the model runs on a GPU (the default model is a bigger one there).
    pub fn is_gpu(self) -> bool {
        !matches!(self, Self::Cpu)
    }

    pub fn open(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(i) if cfg!(feature = "cuda") => Ok(Device::new_cuda(i)?),
            Self::Metal(i) if cfg!(feature = "metal") => Ok(Device::new_metal(i)?),
            Self::Cuda(_) => Err(EngineError::DeviceUnavailable("cuda".into())),
            Self::Metal(_) => Err(EngineError::DeviceUnavailable("metal".into())),
        }
    }
}

/// The number of cores this process may use. candle's CPU workers spin while waiting, so
/// more threads than cores makes everything far slower, never faster.
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Sets how many threads candle's CPU kernels use. It must run before the first tensor
/// operation of the process (candle sizes its pools once); later calls have no effect.
pub fn set_cpu_threads(n: usize) {
    let n = n.clamp(1, available_cores()).to_string();
    // Safety of set_var: called at start-up, before any thread of ours reads the environment.
    std::env::set_var("CANDLE_NUM_THREADS", &n);
    std::env::set_var("RAYON_NUM_THREADS", &n);
}

/// The thread count candle will use.
pub fn cpu_threads() -> usize {
    candle_core::utils::get_num_threads()
}
