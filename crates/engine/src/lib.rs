//! moat's inference engine: loads a GGUF code model, keeps one warm KV cache that is reused
//! across requests sharing a prefix, and completes fill-in-the-middle prompts.
//!
//! Architecture Invariant: this crate knows nothing of editors, LSP or repositories. It takes
//! text (or tokens) and returns text; deciding what goes into a prompt is the context crate's
//! job, and serving it is the LSP crate's.

pub mod adapter;
pub mod attention;
mod cancel;
pub mod config;
mod decoder;
pub use decoder::{causal_mask, rope_tables};
pub mod device;
mod engine;
pub mod error;
mod fastmath;
pub mod fim;
pub mod gguf;
pub mod kv;
pub mod prepare;
pub mod qmat;
pub mod repeat;
pub mod sampling;
pub mod tiny;
pub mod tokenizer;
pub mod trim;

pub use adapter::{Adapter, LowRank};
pub use cancel::CancelFlag;
pub use config::ModelConfig;
pub use device::DeviceChoice;
pub use engine::{
    Engine, EngineInfo, EngineOptions, EngineSnapshot, Flow, GenerateParams, Generation,
    StopReason, Timings, AVOID_TRIES,
};
pub use error::{EngineError, Result};
pub use fim::{ContextFile, FimFormat, FimPrompt};
pub use repeat::AvoidLine;
pub use sampling::Sampling;
pub use trim::Trimmer;
