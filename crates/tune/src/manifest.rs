//! What an adapter is, written beside it as `manifest.json`: the base model it belongs to
//! (by checksum), the data, the settings, and the held-out results before and after.

use crate::data::DataSummary;
use crate::error::{io, Result, TuneError};
use crate::lora::LoraConfig;
use crate::train::{Ending, TrainConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const ADAPTER_FILE: &str = "adapter.safetensors";
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Base {
    pub file: String,
    pub sha256: String,
    pub architecture: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SampleSummary {
    /// What the prompts drew on: `file` or `repo` (older adapters: `file`).
    #[serde(default = "file_context")]
    pub context: String,
    pub seq: usize,
    pub train_samples: usize,
    pub held_out_samples: usize,
    pub train_sample_tokens: usize,
}

fn file_context() -> String {
    "file".into()
}

/// Exact match and edit similarity on held-out cursors.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Quality {
    pub holes: usize,
    pub exact_match: f64,
    pub edit_similarity: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub steps: usize,
    pub tokens: usize,
    pub seconds: f64,
    pub tokens_per_s: f64,
    pub ending: Ending,
    pub held_out_loss_before: f64,
    pub held_out_loss_after: f64,
    pub quality_before: Option<Quality>,
    pub quality_after: Option<Quality>,
    /// Whether the adapter beat the base model on the held-out files; a server uses a
    /// flagged adapter only when forced.
    pub better: bool,
    pub losses: Vec<(usize, f64)>,
    pub evals: Vec<(usize, f64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    /// Seconds since 1970 (UTC).
    pub created_unix: u64,
    pub base: Base,
    pub lora: LoraConfig,
    pub train: TrainConfig,
    pub data: DataSummary,
    pub samples: SampleSummary,
    pub held_out_files: Vec<String>,
    pub results: Option<Results>,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| TuneError::BadAdapter {
            path,
            detail: e.to_string(),
        })
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST_FILE);
        let tmp = dir.join("manifest.json.tmp");
        let json = serde_json::to_vec_pretty(self).expect("plain data");
        std::fs::write(&tmp, json).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Fails unless `base` is the file this adapter was trained on.
    pub fn check_base(&self, base: &Path) -> Result<()> {
        let found = sha256_file(base)?;
        if found != self.base.sha256 {
            return Err(TuneError::BaseMismatch {
                expected: self.base.sha256.clone(),
                found,
            });
        }
        Ok(())
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    Ok(moat_models::sha256_file(path, &moat_models::NoProgress)?.1)
}
