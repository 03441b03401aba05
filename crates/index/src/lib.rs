//! The repository index: which files matter, what they define and import, which identifiers
//! they use where, and which code looks like which. Usable on its own (`moat index`,
//! `moat symbols`, `moat similar`) and by the context builder.
//!
//! Architecture Invariant: this crate knows nothing of models, prompts or LSP. It answers
//! questions about code; what to do with the answers is the caller's business.

pub mod error;
pub mod extract;
pub mod git;
mod index;
pub mod lang;
mod pattern;
pub mod persist;
mod reach;
pub mod resolve;
pub mod similar;
pub mod tokens;
pub mod walk;
pub mod watch;

pub use error::{IndexError, Result};
pub use extract::{DefKind, Definition, Extractor, FileSymbols, Import, Uses};
pub use index::{content_hash, DefHit, Index, ResolvedImport, SimilarHit, Stats};
pub use lang::Lang;
pub use walk::{Skip, WalkOptions};
