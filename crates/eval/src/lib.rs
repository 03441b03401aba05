//! Evals that every change to prompts, trimming or the model is judged by: HumanEval-FIM
//! (public, single-line holes in three languages) and holes cut from real repositories
//! (line, mid-line and block completions, with and without repository context).
//!
//! Architecture Invariant: evals drive the same context assembly and post-processing as
//! the server; nothing here has a shortcut the server lacks.

mod complete;
pub mod holes;
pub mod humaneval;
pub mod metrics;
pub mod repo;

pub use complete::{Completer, Completion};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {detail}")]
    Data { path: String, detail: String },
    #[error(transparent)]
    Engine(#[from] moat_engine::EngineError),
    #[error(transparent)]
    Context(#[from] moat_context::ContextError),
}

pub type Result<T> = std::result::Result<T, EvalError>;
