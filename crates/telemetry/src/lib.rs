//! Completion telemetry: what was shown, accepted, partially accepted and dismissed, stored
//! in an embedded SQLite database, and the reports computed from it.
//!
//! Architecture Invariant: this crate knows nothing of the transport (LSP, editors) nor of
//! the model. The server hands it plain records; the reports read them back. No code is
//! stored unless the caller puts it in `Completion::text` (an admin's opt-in).

pub mod committed;
mod error;
pub mod git;
mod html;
pub mod metrics;
pub mod record;
pub mod report;
pub mod retention;
mod store;

pub use committed::Inserted;
pub use error::{Result, TelemetryError};
pub use metrics::{summarize, Summary, MIN_VISIBLE_MS};
pub use record::{now_ms, Completion, Event, EventKind, Retention};
pub use report::{day, parse_time, render, Dimension, Format, Report};
pub use store::{Loaded, Record, Recorder, Store};

/// A user's identity as stored: the e-mail itself, or a salted hash of it.
pub fn user_id(email: &str, salt: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    match salt {
        None => email.to_string(),
        Some(salt) => {
            let digest = Sha256::new()
                .chain_update(salt.as_bytes())
                .chain_update([0])
                .chain_update(email.trim().to_lowercase().as_bytes())
                .finalize();
            let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("user-{hex}")
        }
    }
}
