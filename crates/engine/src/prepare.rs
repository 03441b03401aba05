//! Rewrites a GGUF so that every weight is in a format the engine has fast kernels for.
//! Decoding streams every weight once per token, so the fewest bytes win as long as the
//! kernel keeps up with memory: where `qmat` runs (x86-64 with AVX2), Q5_0 stays Q5_0 (35%
//! fewer bytes than Q8_0; the AVX-512 VNNI one-row kernel streams it at memory speed).
//! Formats without a fast kernel here (Q4_0, Q4_1, Q5_1, and Q5_0 elsewhere, where candle's
//! Q5_0 code is scalar) become Q8_0, which loses almost nothing.

use crate::error::Result;
use crate::gguf::GgufFile;
use crate::qmat::QMat;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use std::path::Path;

/// Written into the prepared file so that a stale preparation can be recognised.
pub const PREPARED_KEY: &str = "moat.prepared";
/// The preparation depends on the CPU's kernels, so its version names the choice made.
pub fn prepared_version() -> &'static str {
    if QMat::fast_q5_0() {
        "keep-q5_0-v2"
    } else {
        "q8_0-v2"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareReport {
    pub requantized: usize,
    pub kept: usize,
}

fn needs_requant(dtype: GgmlDType) -> bool {
    match dtype {
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_1 => true,
        GgmlDType::Q5_0 => !QMat::fast_q5_0(),
        _ => false,
    }
}

/// Reads `src` and writes the prepared model to `dst` (which the caller moves into place).
pub fn prepare(src: &Path, dst: &Path) -> Result<PrepareReport> {
    let mut f = GgufFile::open(src)?;
    let mut names: Vec<String> = f.content.tensor_infos.keys().cloned().collect();
    // Keep the source order so the output is deterministic.
    names.sort_by_key(|n| f.content.tensor_infos[n].offset);
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    let mut report = PrepareReport {
        requantized: 0,
        kept: 0,
    };
    for name in names {
        let t = f.tensor(&name, &Device::Cpu)?;
        let t = if needs_requant(t.dtype()) {
            report.requantized += 1;
            QTensor::quantize(&t.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            report.kept += 1;
            t
        };
        tensors.push((name, t));
    }
    crate::gguf::write_derived(&f.content, &tensors, PREPARED_KEY, prepared_version(), dst)?;
    Ok(report)
}

/// Whether `path` is already a prepared file of the current version.
pub fn is_prepared(path: &Path) -> Result<bool> {
    let f = GgufFile::open(path)?;
    Ok(matches!(
        f.content.metadata.get(PREPARED_KEY),
        Some(gguf_file::Value::String(v)) if v == prepared_version()
    ))
}
