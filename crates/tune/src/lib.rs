//! Fine-tuning the code model on a repository's own code: LoRA adapters over the frozen,
//! quantized base, trained on fill-in-the-middle samples cut from the repository's files,
//! judged on files held out from training.
//!
//! Architecture Invariant: this crate knows nothing of LSP or telemetry. It reads a model
//! file and a directory and writes an adapter; serving it (merged, or unmerged through
//! [`serving_adapter`]) is the engine's job.

pub mod error;
pub mod frozen;
pub mod lora;
pub mod model;

pub use error::{Result, TuneError};
pub use lora::{Lora, LoraConfig, Target};
pub use model::{LoadOptions, Ops, TrainModel};
pub mod optim;
pub mod train;
pub use train::{train, Sample, TrainConfig};
pub mod data;
pub mod manifest;
pub mod merge;
pub mod pipeline;
pub mod samples;
pub mod serve;
pub use serve::serving_adapter;
