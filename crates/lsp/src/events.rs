//! The server's side of telemetry: who is typing in which editor, which completion is on
//! screen, and the records handed to `moat-telemetry`'s recorder (which writes them on its
//! own thread). A database that cannot be opened is reported once; completions go on.

use moat_telemetry::{
    now_ms, Completion, Event, EventKind, Inserted, Record, Recorder, Retention, Store,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

#[derive(Default)]
pub struct Telemetry {
    db: OnceLock<PathBuf>,
    recorder: Mutex<Option<Recorder>>,
    failed: AtomicBool,
    who: Mutex<Who>,
    /// The completion on screen in each document (uri → id), until decided or replaced.
    visible: Mutex<HashMap<String, String>>,
}

#[derive(Default, Clone)]
struct Who {
    user: String,
    editor: String,
    editor_version: String,
}

/// What the server knows of a completion when the model produced it.
pub struct Facts {
    pub id: String,
    pub repo: String,
    pub path: String,
    pub language: String,
    pub model: String,
    pub context: String,
    pub prompt_tokens: usize,
    pub latency_ms: f64,
    pub text: String,
    /// Store the text itself (the admin's opt-in).
    pub keep_code: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Telemetry {
    pub fn set_db(&self, path: PathBuf) {
        let _ = self.db.set(path);
    }

    pub fn set_client(&self, editor: &str, version: &str) {
        let mut w = lock(&self.who);
        w.editor = editor.to_string();
        w.editor_version = version.to_string();
    }

    pub fn set_user(&self, user: String) {
        lock(&self.who).user = user;
    }

    fn record(&self, r: Record) {
        let mut rec = lock(&self.recorder);
        if rec.is_none() {
            let Some(path) = self.db.get() else {
                return;
            };
            if self.failed.load(Ordering::Relaxed) {
                return;
            }
            match Store::open(path) {
                Ok(store) => *rec = Some(Recorder::start(store)),
                Err(e) => {
                    self.failed.store(true, Ordering::Relaxed);
                    tracing::warn!("telemetry off: {e}");
                    return;
                }
            }
        }
        if let Some(r2) = rec.as_ref() {
            r2.record(r);
        }
    }

    pub fn completion(&self, f: Facts) {
        let who = lock(&self.who).clone();
        self.record(Record::Completion(Box::new(Completion {
            id: f.id,
            time_ms: now_ms(),
            user: who.user,
            editor: who.editor,
            editor_version: who.editor_version,
            repo: f.repo,
            path: f.path,
            language: f.language,
            model: f.model,
            adapter: String::new(),
            context: f.context,
            prompt_tokens: f.prompt_tokens as u32,
            latency_ms: f.latency_ms,
            chars: f.text.chars().count() as u32,
            lines: f.text.lines().count().max(1) as u32,
            text: f.keep_code.then_some(f.text),
        })));
    }

    fn event(&self, id: &str, kind: EventKind, chars: Option<u32>) {
        self.record(Record::Event(Event {
            completion: id.to_string(),
            time_ms: now_ms(),
            kind,
            chars,
            visible_ms: None,
        }));
    }

    /// A completion appeared in `uri`; the one shown there before (if undecided) is gone.
    pub fn shown(&self, uri: &str, id: &str) {
        let before = lock(&self.visible).insert(uri.to_string(), id.to_string());
        if let Some(old) = before.filter(|old| old != id) {
            self.event(&old, EventKind::Hidden, None);
        }
        self.event(id, EventKind::Shown, None);
    }

    /// The user decided about a completion (accepted, partially accepted, dismissed).
    pub fn decided(&self, uri: Option<&str>, id: &str, kind: EventKind, chars: Option<u32>) {
        if let Some(uri) = uri {
            let mut v = lock(&self.visible);
            if v.get(uri).is_some_and(|shown| shown == id) {
                v.remove(uri);
            }
        }
        self.event(id, kind, chars);
    }

    /// How much of an accepted completion was still there `after_s` seconds later.
    pub fn retention(&self, id: &str, after_s: u32, kept: f64) {
        self.record(Record::Retention(Retention {
            completion: id.to_string(),
            after_s,
            kept,
        }));
    }

    /// The fingerprints of the lines an accept put into the document.
    pub fn inserted(&self, id: &str, fingerprints: &[i64]) {
        let time_ms = now_ms();
        for &fingerprint in fingerprints {
            self.record(Record::Inserted(Inserted {
                completion: id.to_string(),
                time_ms,
                fingerprint,
            }));
        }
    }

    /// Writes what is queued (at shutdown).
    pub fn flush(&self) {
        if let Some(r) = lock(&self.recorder).take() {
            r.close();
        }
    }
}
