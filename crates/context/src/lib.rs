//! What the model sees and what the user gets: a completion prompt assembled from the
//! document and the repository index under a token budget (`assemble`), and the model's raw
//! output cut to what belongs at the cursor (`post`).
//!
//! Architecture Invariant: this crate is the only one that knows both the index and the
//! engine's prompt format, and it knows nothing of LSP or editors. It takes a document, a
//! cursor and an index, and returns a prompt; it takes model output and returns text.

mod assemble;
mod error;
mod lines;
pub mod post;
mod snippets;

pub use assemble::{
    Assembled, Assembler, Budget, ContextMemo, ContextMode, ContextStyle, RecentEdit, Request,
    Source, CPU_SUFFIX_TOKENS, MEMO_LINES,
};
pub use error::{ContextError, Result};
pub use lines::{has_word, is_word};
pub use snippets::{receiver, SourceKind};
