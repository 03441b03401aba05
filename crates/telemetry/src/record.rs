//! What is recorded: one row per completion the model produced, and the events the editor
//! reported about it.

use serde::{Deserialize, Serialize};

/// Now, as the records' times are: unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A completion the server produced (shown or not: the editor decides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Completion {
    pub id: String,
    /// Unix time, milliseconds.
    pub time_ms: i64,
    pub user: String,
    pub editor: String,
    pub editor_version: String,
    pub repo: String,
    /// The file, relative to the editor's workspace folder ('/'-separated).
    pub path: String,
    pub language: String,
    pub model: String,
    /// The fine-tuned adapter, "" for none.
    pub adapter: String,
    /// Context mode: none, file or repo.
    pub context: String,
    pub prompt_tokens: u32,
    pub latency_ms: f64,
    pub chars: u32,
    pub lines: u32,
    /// The completion's text: only when the admin opted in to storing code.
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The editor displayed it.
    Shown,
    /// It stopped being displayed without a decision (another one replaced it): the end of
    /// its visible time.
    Hidden,
    Accepted,
    /// Part of it was accepted (`chars` of it).
    Partial,
    /// The user dismissed it explicitly.
    Dismissed,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Shown => "shown",
            Self::Hidden => "hidden",
            Self::Accepted => "accepted",
            Self::Partial => "partial",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [
            Self::Shown,
            Self::Hidden,
            Self::Accepted,
            Self::Partial,
            Self::Dismissed,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub completion: String,
    pub time_ms: i64,
    pub kind: EventKind,
    /// Characters accepted, for `Partial`.
    pub chars: Option<u32>,
    /// How long it was visible, when the editor says (for `Shown`).
    pub visible_ms: Option<u32>,
}

/// How much of an accepted completion was still in the document `after_s` seconds after
/// the accept (0 to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retention {
    pub completion: String,
    pub after_s: u32,
    pub kept: f64,
}
