//! Writes base + adapter as one GGUF: each adapted weight becomes `W + scale · B · A`,
//! quantized again to the type it had, so the engine serves it at the base model's speed.

use crate::error::{io, Result, TuneError};
use crate::lora::{Lora, Target};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use moat_engine::gguf::GgufFile;
use std::path::Path;

/// Metadata key naming the adapter a merged file carries.
pub const ADAPTER_KEY: &str = "moat.adapter";

/// Merges `lora` into the model at `base` and writes the result to `out`.
pub fn merge(base: &Path, lora: &Lora, adapter_name: &str, out: &Path) -> Result<()> {
    let mut f = GgufFile::open(base)?;
    let mut names: Vec<String> = f.content.tensor_infos.keys().cloned().collect();
    names.sort_by_key(|n| f.content.tensor_infos[n].offset);
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    let n_layer = lora.layers.len();
    let mut merged = 0;
    for name in names {
        let t = f.tensor(&name, &Device::Cpu)?;
        let target = (0..n_layer).find_map(|l| {
            Target::ALL
                .into_iter()
                .find(|t| name == format!("blk.{l}.{}.weight", t.gguf_name()))
                .map(|t| (l, t))
        });
        let t = match target {
            Some((layer, target)) => match lora.delta(layer, target)? {
                Some(delta) => {
                    merged += 1;
                    let dtype = t.dtype();
                    let w = (t.dequantize(&Device::Cpu)? + delta.to_device(&Device::Cpu)?)?;
                    // A type without a quantizer here becomes Q8_0 rather than fail.
                    QTensor::quantize(&w, dtype)
                        .or_else(|_| QTensor::quantize(&w, GgmlDType::Q8_0))?
                }
                None => t,
            },
            None => t,
        };
        tensors.push((name, t));
    }
    let expected: usize = lora.layers.iter().map(|m| m.len()).sum();
    if merged != expected {
        return Err(TuneError::Invalid(format!(
            "the base model has {merged} of the adapter's {expected} weights: wrong base model?"
        )));
    }
    let tmp = out.with_extension("gguf.tmp");
    moat_engine::gguf::write_derived(&f.content, &tensors, ADAPTER_KEY, adapter_name, &tmp)?;
    std::fs::rename(&tmp, out).map_err(io(out))
}
