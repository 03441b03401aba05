//! The protocol types, behind one module: the fork's next release moves them to another
//! crate, and only this file should have to change.

pub use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
pub use tower_lsp_server::ls_types::*;
pub use tower_lsp_server::{
    Client, LanguageServer, LspService, NotCancellable, OngoingProgress, Server, Unbounded,
};

use serde::{Deserialize, Serialize};

/// The command an accepted item runs; its argument is the completion id.
pub const ACCEPT_COMMAND: &str = "moat.accept";

/// `textDocument/didShowCompletion` (the Copilot language server's shape).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ShownParams {
    pub item: ItemRef,
}

/// `textDocument/didPartiallyAcceptCompletion`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartialAcceptParams {
    pub item: ItemRef,
    pub accepted_length: u32,
}

/// An item as clients echo it back: what matters is its command's argument (the id), or an
/// `id` field.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemRef {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub insert_text: Option<String>,
    #[serde(default)]
    pub command: Option<CommandRef>,
}

/// The part of an item's command that identifies it; clients may echo the rest or not.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CommandRef {
    #[serde(default)]
    pub arguments: Option<Vec<serde_json::Value>>,
}

impl ItemRef {
    pub fn completion_id(&self) -> Option<String> {
        self.id.clone().or_else(|| {
            self.command
                .as_ref()?
                .arguments
                .as_ref()?
                .first()?
                .as_str()
                .map(String::from)
        })
    }
}

/// `moat/status` takes nothing; `{}` and no params at all are both accepted.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusParams {}
