//! The `LanguageServer`: lifecycle, document sync, inline completion, the accept command,
//! the telemetry notifications and `moat/status`.

use crate::documents::{self, Document, Documents, Encoding};
use crate::events::{Facts, Telemetry};
use crate::inflight::Inflight;
use crate::protocol::*;
use crate::settings::Settings;
use crate::typing::Shown;
use crate::worker::{
    AdapterLoader, AdapterState, Input, ModelState, SharedIndex, WorkError, Worker,
};
use moat_context::RecentEdit;
use moat_engine::{CancelFlag, DeviceChoice, EngineOptions};
use moat_index::{persist, Index, Lang, WalkOptions};
use moat_telemetry::committed::{fingerprint, written_lines};
use moat_telemetry::EventKind;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// Finds the model file for a setting (a name or a path). The binary supplies it; it must
/// not download anything (the server opens no connection).
/// Finds the model file for the `model` setting (none: the default for a GPU when the flag
/// says the model will run on one, else for a CPU).
pub type ModelLocator =
    dyn Fn(Option<&str>, bool) -> std::result::Result<PathBuf, String> + Send + Sync;

pub struct ServerOptions {
    pub locate_model: Box<ModelLocator>,
    /// Loads the `adapter` setting's adapter for serving unmerged.
    pub load_adapter: Arc<AdapterLoader>,
    /// Where persisted indexes live.
    pub index_cache: Option<PathBuf>,
    /// Threads the engine runs on (fixed for the process).
    pub threads: usize,
    /// The telemetry database (`None`: telemetry is not recorded).
    pub telemetry_db: Option<PathBuf>,
    /// When to check that accepted completions are still there, seconds after the accept.
    pub retention_after: Vec<u32>,
}

/// Documents larger than this are served but not indexed (like the walker's limit).
const INDEX_MAX_BYTES: usize = 1 << 20;
/// Items remembered for accept and telemetry events.
const ITEMS: usize = 1000;
/// Completions remembered per document for typing through.
const SHOWN_PER_DOCUMENT: usize = 4;
/// Latencies kept for the status.
const LATENCIES: usize = 200;
/// Recent edit regions kept for context, and the most one edit may bring.
const RECENT: usize = 8;
const RECENT_MAX_BYTES: usize = 4096;
const RECENT_MAX_LINES: u32 = 30;

#[derive(Debug, Clone)]
struct Item {
    uri: String,
    text: String,
    shown_at: Option<Instant>,
    /// The cursor's line around the completion: its start and its rest (for the lines moat
    /// wrote, see `moat_telemetry::committed`).
    line_before: String,
    line_after: String,
    /// How many of its lines were fingerprinted already (by earlier partial accepts).
    fingerprinted: usize,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
struct Counters {
    requests: u64,
    model_calls: u64,
    typing_cache_hits: u64,
    /// Requests answered by a generation started for an earlier keystroke.
    joined: u64,
    /// Completions computed ahead, after an accept, and how many were then asked for.
    speculative: u64,
    speculative_hits: u64,
    superseded: u64,
    empty: u64,
    errors: u64,
    shown: u64,
    accepted: u64,
    partially_accepted: u64,
    dismissed: u64,
}

#[derive(Default)]
struct State {
    docs: Mutex<Documents>,
    settings: RwLock<Settings>,
    encoding: Mutex<Option<Encoding>>,
    root: Mutex<Option<PathBuf>>,
    index: SharedIndex,
    indexing: Mutex<&'static str>,
    worker: OnceLock<Worker>,
    seq: Mutex<HashMap<String, u64>>,
    inflight: Mutex<HashMap<String, Arc<Inflight>>>,
    /// The last completions of each document, newest first: the editor may show an older one
    /// than the newest (the answer to a request it cancelled never reached it).
    shown: Mutex<HashMap<String, VecDeque<Shown>>>,
    items: Mutex<(HashMap<String, Item>, VecDeque<String>)>,
    recent: Mutex<VecDeque<RecentEdit>>,
    next_id: AtomicU64,
    counters: Mutex<Counters>,
    latencies: Mutex<VecDeque<f64>>,
    setting_problems: Mutex<Vec<String>>,
    telemetry: Telemetry,
    /// Tells this process's completion ids from another's in the telemetry store.
    started_ms: OnceLock<i64>,
}

/// What the typing-through cache knows for a request.
enum Cached {
    /// (completion id, the rest of it to show)
    Rest(String, String),
    /// The model had nothing to say for exactly this document and cursor.
    Nothing,
}

/// A generation started by `launch`, as `finished` needs it.
struct Launched {
    key: String,
    serial: u64,
    before: String,
    after: String,
    speculative: bool,
    repo: String,
    path: String,
    language: String,
}

impl State {
    fn model_name(&self) -> String {
        match self.worker.get().map(Worker::state) {
            Some(ModelState::Ready { model, .. }) => Path::new(&model)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(model),
            _ => String::new(),
        }
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.counters));
    }

    fn new_id(&self) -> String {
        let started = *self.started_ms.get_or_init(moat_telemetry::now_ms);
        format!(
            "moat-{started:x}-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed) + 1
        )
    }

    fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The rest of the completion shown in a document, if `text` is that document with some
    /// of it typed at the cursor: (completion id, rest).
    fn typed_through(&self, key: &str, text: &str, cursor: usize) -> Option<Cached> {
        let shown = lock(&self.shown);
        let (s, hit) = shown.get(key)?.iter().find_map(|s| {
            let hit = match s.rest(text, cursor) {
                Some(rest) => Cached::Rest(s.id.clone(), rest.to_string()),
                None if s.nothing_at(text, cursor) => Cached::Nothing,
                None => return None,
            };
            Some((s, hit))
        })?;
        if s.speculative && text.len() == s.before.len() + s.after.len() {
            self.count(|c| c.speculative_hits += 1);
        }
        Some(hit)
    }

    /// A generation ended: its completion becomes the one shown in the document.
    fn finished(&self, g: Launched, result: std::result::Result<crate::worker::Output, WorkError>) {
        let Launched {
            key,
            serial,
            before,
            after,
            speculative,
            repo,
            path,
            language,
        } = g;
        {
            let mut inflight = lock(&self.inflight);
            if inflight.get(&key).is_some_and(|g| g.serial == serial) {
                inflight.remove(&key);
            }
        }
        match result {
            Ok(out) => {
                {
                    let mut l = lock(&self.latencies);
                    l.push_back(out.total_ms);
                    if l.len() > LATENCIES {
                        l.pop_front();
                    }
                }
                // An empty answer is remembered too: the same request gets it again at once.
                let id = if out.text.is_empty() {
                    self.count(|c| c.empty += 1);
                    String::new()
                } else {
                    let id = self.new_id();
                    self.remember(&id, &key, &out.text, &before, &after);
                    let settings = self.settings();
                    if settings.telemetry {
                        self.telemetry.completion(Facts {
                            id: id.clone(),
                            repo,
                            path,
                            language,
                            model: match &out.adapter {
                                Some(a) => format!("{}+{a}", self.model_name()),
                                None => self.model_name(),
                            },
                            context: settings.context.name().to_string(),
                            prompt_tokens: out.prompt_tokens,
                            latency_ms: out.total_ms,
                            text: out.text.clone(),
                            keep_code: settings.telemetry_code,
                        });
                    }
                    id
                };
                let mut shown = lock(&self.shown);
                let list = shown.entry(key).or_default();
                list.push_front(Shown {
                    id,
                    before,
                    after,
                    text: out.text,
                    speculative,
                });
                list.truncate(SHOWN_PER_DOCUMENT);
            }
            Err(WorkError::Cancelled) => self.count(|c| c.superseded += 1),
            Err(WorkError::Loading) => {}
            Err(e) => {
                self.count(|c| c.errors += 1);
                tracing::warn!("completion failed: {e}");
            }
        }
    }

    fn remember(&self, id: &str, uri: &str, text: &str, before: &str, after: &str) {
        let line_before = before.rsplit('\n').next().unwrap_or("");
        let line_after = after.split('\n').next().unwrap_or("");
        let mut items = lock(&self.items);
        items.0.insert(
            id.to_string(),
            Item {
                uri: uri.to_string(),
                text: text.to_string(),
                shown_at: None,
                line_before: line_before.to_string(),
                line_after: line_after.to_string(),
                fingerprinted: 0,
            },
        );
        items.1.push_back(id.to_string());
        while items.1.len() > ITEMS {
            if let Some(old) = items.1.pop_front() {
                items.0.remove(&old);
            }
        }
    }
}

#[derive(Clone)]
pub struct Backend {
    client: Client,
    opts: Arc<ServerOptions>,
    state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take the server down with a poisoned lock.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn percentile(v: &VecDeque<f64>, q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s: Vec<f64> = v.iter().copied().collect();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some((s[rank - 1] * 10.0).round() / 10.0)
}

impl Backend {
    pub fn new(client: Client, opts: Arc<ServerOptions>) -> Self {
        Self {
            client,
            state: {
                let state = State::default();
                if let Some(db) = &opts.telemetry_db {
                    state.telemetry.set_db(db.clone());
                }
                Arc::new(state)
            },
            opts,
        }
    }

    fn encoding(&self) -> Encoding {
        lock(&self.state.encoding).unwrap_or(Encoding::Utf16)
    }

    fn settings(&self) -> Settings {
        self.state.settings()
    }

    /// The repository path of a document: relative to the root when inside it.
    fn rel_path(&self, uri: &Uri) -> String {
        let path = uri.to_file_path().map(|p| p.into_owned());
        let root = lock(&self.state.root).clone();
        match (path, root) {
            (Some(p), Some(r)) => p
                .strip_prefix(&r)
                .map(|rel| rel.to_string_lossy().replace('\\', "/"))
                .unwrap_or_else(|_| p.display().to_string()),
            (Some(p), None) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            _ => uri.as_str().to_string(),
        }
    }

    /// By the path and text as the index decides it, so that the open document and its
    /// indexed copy agree; an editor that calls a `.h` C++ is believed.
    fn lang_of(&self, uri: &Uri, language_id: &str, text: &str) -> Option<Lang> {
        let by_path = uri
            .to_file_path()
            .and_then(|p| Lang::from_path_and_text(&p, text));
        match (by_path, Lang::from_name(language_id)) {
            (Some(Lang::C), Some(Lang::Cpp)) => Some(Lang::Cpp),
            (p, named) => p.or(named),
        }
    }

    /// Keeps the index in step with an open document (off the async threads).
    fn reindex(&self, uri: &Uri, text: &str, language_id: &str) {
        if text.len() > INDEX_MAX_BYTES || lock(&self.state.root).is_none() {
            return;
        }
        let Some(lang) = self.lang_of(uri, language_id, text) else {
            return;
        };
        let rel = self.rel_path(uri);
        if rel.starts_with('/') {
            return; // outside the repository
        }
        let index = self.state.index.clone();
        let text = text.to_string();
        tokio::task::spawn_blocking(move || {
            if let Some(idx) = index.write().unwrap_or_else(|p| p.into_inner()).as_mut() {
                idx.update_text(&rel, lang, &text);
            }
        });
    }

    fn start_background(&self) {
        let settings = self.settings();
        let device: DeviceChoice = match settings.device.parse() {
            Ok(d) => d,
            Err(e) => {
                let msg = format!("device `{}`: {e}", settings.device);
                let _ = self.state.worker.set(Worker::start(
                    Err(msg),
                    EngineOptions::default(),
                    self.state.index.clone(),
                    self.opts.load_adapter.clone(),
                ));
                return self.start_indexing();
            }
        };
        let model = (self.opts.locate_model)(settings.model.as_deref(), device.is_gpu());
        let worker = Worker::start(
            model,
            EngineOptions {
                device,
                ..Default::default()
            },
            self.state.index.clone(),
            self.opts.load_adapter.clone(),
        );
        let _ = self.state.worker.set(worker.clone());
        if let Some(spec) = settings.adapter_spec() {
            self.switch_adapter(Some(spec));
        }
        let client = self.client.clone();
        tokio::spawn(async move {
            let progress = begin_progress(&client, "moat/model", "moat: loading the model").await;
            loop {
                match worker.state() {
                    ModelState::Loading => tokio::time::sleep(Duration::from_millis(100)).await,
                    ModelState::Ready { .. } => {
                        if let Some(p) = progress {
                            p.finish_with_message("ready").await;
                        }
                        break;
                    }
                    ModelState::Failed { error } => {
                        if let Some(p) = progress {
                            p.finish_with_message("failed").await;
                        }
                        client
                            .show_message(MessageType::ERROR, format!("moat: {error}"))
                            .await;
                        break;
                    }
                }
            }
        });
        self.start_indexing();
    }

    fn start_indexing(&self) {
        let Some(root) = lock(&self.state.root).clone() else {
            *lock(&self.state.indexing) = "no repository";
            return;
        };
        *lock(&self.state.indexing) = "indexing";
        let state = self.state.clone();
        let cache = self.opts.index_cache.clone();
        let client = self.client.clone();
        tokio::spawn(async move {
            let progress = begin_progress(&client, "moat/index", "moat: indexing").await;
            let built =
                tokio::task::spawn_blocking(move || build_index(&root, cache.as_deref())).await;
            let message = match built {
                Ok(Ok(idx)) => {
                    let s = idx.stats();
                    let msg = format!("{} files, {} definitions", s.files, s.definitions);
                    *state.index.write().unwrap_or_else(|p| p.into_inner()) = Some(idx);
                    *lock(&state.indexing) = "ready";
                    msg
                }
                Ok(Err(e)) => {
                    tracing::warn!("indexing failed: {e}");
                    *lock(&state.indexing) = "failed";
                    format!("failed: {e}")
                }
                Err(e) => {
                    *lock(&state.indexing) = "failed";
                    format!("failed: {e}")
                }
            };
            if let Some(p) = progress {
                p.finish_with_message(message).await;
            }
        });
    }

    /// The completion at a position: from the typing-through cache, from a generation in
    /// flight for this document, or from the model after the debounce. `None`: nothing to
    /// show (disabled, superseded, loading, or no text).
    async fn complete_at(
        &self,
        uri: &Uri,
        pos: Position,
    ) -> Result<Option<(String, String, Range)>> {
        let settings = self.settings();
        let key = uri.as_str().to_string();
        let enc = self.encoding();
        let (text, version, language_id) = {
            let docs = lock(&self.state.docs);
            let Some(doc) = docs.get(&key) else {
                return Err(Error::invalid_params(format!(
                    "{key} is not open (send textDocument/didOpen first)"
                )));
            };
            (doc.text.clone(), doc.version, doc.language_id.clone())
        };
        let cursor = documents::offset(&text, pos.line, pos.character, enc)
            .map_err(|e| Error::invalid_params(e.to_string()))?;
        self.state.count(|c| c.requests += 1);
        if !settings.enabled || !settings.language_enabled(&language_id) {
            return Ok(None);
        }
        let range = Range {
            start: pos,
            end: pos,
        };
        let answer = |got: Option<Cached>| match got {
            Some(Cached::Rest(id, rest)) => Some((id, rest, range)),
            _ => None,
        };
        // Typing through the shown completion: the rest of it, no model call.
        if let Some(hit) = self.state.typed_through(&key, &text, cursor) {
            self.state.count(|c| c.typing_cache_hits += 1);
            return Ok(answer(Some(hit)));
        }
        // A generation for this document before the characters just typed: wait for it.
        let grace = Duration::from_millis(settings.debounce_ms + 100);
        let joined = {
            let inflight = lock(&self.state.inflight);
            match inflight.get(&key).filter(|g| g.joinable(&text, cursor)) {
                Some(g) if g.diverged(&text, cursor) => {
                    g.cancel.cancel();
                    None
                }
                Some(g) => Some(g.join(grace)),
                None => None,
            }
        };
        if let Some(j) = joined {
            j.finished().await;
            if let Some(hit) = self.state.typed_through(&key, &text, cursor) {
                self.state.count(|c| c.joined += 1);
                return Ok(answer(Some(hit)));
            }
        }
        // Debounce: a newer request for this document within the wait replaces this one.
        let mine = {
            let mut seq = lock(&self.state.seq);
            let n = seq.entry(key.clone()).or_default();
            *n += 1;
            *n
        };
        tokio::time::sleep(Duration::from_millis(settings.debounce_ms)).await;
        let still_mine = lock(&self.state.seq).get(&key) == Some(&mine);
        let same_text = lock(&self.state.docs)
            .get(&key)
            .is_some_and(|d| d.version == version);
        if !still_mine || !same_text {
            self.state.count(|c| c.superseded += 1);
            return Ok(None);
        }
        let Some(g) = self.launch(uri, &text, cursor, &language_id, &settings, false) else {
            return Ok(None);
        };
        g.join(grace).finished().await;
        Ok(answer(self.state.typed_through(&key, &text, cursor)))
    }

    /// Starts a generation at `cursor` on its own task: it runs to the end unless nobody
    /// waits for it, and leaves its completion in the typing-through cache. `None` before
    /// the server is initialized.
    fn launch(
        &self,
        uri: &Uri,
        text: &str,
        cursor: usize,
        language_id: &str,
        settings: &Settings,
        speculative: bool,
    ) -> Option<Arc<Inflight>> {
        let worker = self.state.worker.get()?.clone();
        let key = uri.as_str().to_string();
        let repo_name = lock(&self.state.root)
            .as_ref()
            .and_then(|r| r.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "repo".into());
        let path = self.rel_path(uri);
        let recent: Vec<RecentEdit> = lock(&self.state.recent)
            .iter()
            .filter(|e| e.path != path)
            .cloned()
            .collect();
        let mut input = Input {
            uri: key.clone(),
            path,
            repo_name,
            lang: self.lang_of(uri, language_id, text),
            text: text.to_string(),
            cursor,
            mode: settings.context,
            budget: settings.budget(),
            context_lines: settings.context_lines(),
            max_tokens: settings.max_tokens,
            decode_budget: (settings.decode_budget_ms > 0)
                .then(|| std::time::Duration::from_millis(settings.decode_budget_ms)),
            recent,
            partial: Default::default(),
        };
        let cancel = CancelFlag::new();
        let serial = self.state.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (before, after) = text.split_at(cursor);
        let (g, finish) = Inflight::new(serial, before, after, cancel.clone());
        input.partial = g.partial.clone();
        let g = Arc::new(g);
        if let Some(old) = lock(&self.state.inflight).insert(key.clone(), g.clone()) {
            old.cancel.cancel(); // an older generation for this document: nobody waits for it
        }
        self.state.count(|c| {
            c.model_calls += 1;
            if speculative {
                c.speculative += 1;
            }
        });
        let state = self.state.clone();
        let launched = Launched {
            key,
            serial,
            before: before.to_string(),
            after: after.to_string(),
            speculative,
            repo: input.repo_name.clone(),
            path: input.path.clone(),
            language: input
                .lang
                .map_or(language_id.to_string(), |l| l.name().to_string()),
        };
        tokio::spawn(async move {
            let result = worker.complete(input, cancel).await;
            state.finished(launched, result);
            finish.done();
        });
        Some(g)
    }

    /// Checks at each retention checkpoint how much of an accepted text is still in its
    /// document (the open text, else the file on disk).
    fn track_retention(&self, key: &str, id: &str, offset: usize, text: &str) {
        if !self.settings().telemetry {
            return;
        }
        for &after in &self.opts.retention_after {
            let (this, key, id, text) = (
                self.clone(),
                key.to_string(),
                id.to_string(),
                text.to_string(),
            );
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(after.into())).await;
                let open = lock(&this.state.docs).get(&key).map(|d| d.text.clone());
                let doc = open.or_else(|| {
                    let path = key.parse::<Uri>().ok()?.to_file_path()?.into_owned();
                    std::fs::read_to_string(path).ok()
                });
                if let Some(doc) = doc {
                    let kept = moat_telemetry::retention::kept(&text, &doc, offset);
                    this.state.telemetry.retention(&id, after, kept);
                }
            });
        }
    }

    /// After an accept, the next completion is computed before the editor asks for it: at
    /// the end of the accepted text, once the document holds it (the editor's edit and the
    /// accept command come in either order).
    fn speculate(&self, key: &str, accepted: Shown) {
        let settings = self.settings();
        if !settings.enabled {
            return;
        }
        let Ok(uri) = key.parse::<Uri>() else {
            return;
        };
        let expected = format!("{}{}{}", accepted.before, accepted.text, accepted.after);
        let cursor = accepted.before.len() + accepted.text.len();
        let this = self.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(1);
            loop {
                let doc = lock(&this.state.docs)
                    .get(uri.as_str())
                    .map(|d| (d.text == expected, d.language_id.clone()));
                match doc {
                    Some((true, language_id)) => {
                        if settings.language_enabled(&language_id) {
                            this.launch(&uri, &expected, cursor, &language_id, &settings, true);
                        }
                        return;
                    }
                    Some(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(10)).await
                    }
                    _ => return,
                }
            }
        });
    }

    fn accept_command(id: &str) -> Command {
        Command {
            title: "Accept".into(),
            command: ACCEPT_COMMAND.into(),
            arguments: Some(vec![Value::String(id.to_string())]),
        }
    }

    pub async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        let tdp = params.text_document_position;
        let got = self
            .complete_at(&tdp.text_document.uri, tdp.position)
            .await?;
        Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
            items: got
                .map(|(id, text, range)| InlineCompletionItem {
                    insert_text: text,
                    filter_text: None,
                    range: Some(range),
                    command: Some(Self::accept_command(&id)),
                    insert_text_format: None,
                })
                .into_iter()
                .collect(),
        })))
    }

    pub async fn did_show(&self, params: ShownParams) {
        if let Some(id) = params.item.completion_id() {
            let uri = lock(&self.state.items).0.get_mut(&id).map(|item| {
                item.shown_at = Some(Instant::now());
                item.uri.clone()
            });
            self.state.count(|c| c.shown += 1);
            if let (Some(uri), true) = (uri, self.settings().telemetry) {
                self.state.telemetry.shown(&uri, &id);
            }
            tracing::info!(target: "moat::events", "shown {id}");
        }
    }

    pub async fn did_partially_accept(&self, params: PartialAcceptParams) {
        if let Some(id) = params.item.completion_id() {
            self.state.count(|c| c.partially_accepted += 1);
            self.decided(&id, EventKind::Partial, Some(params.accepted_length));
            self.inserted(&id, Some(params.accepted_length as usize));
            tracing::info!(target: "moat::events", "partially accepted {id}: {} characters", params.accepted_length);
        }
    }

    fn decided(&self, id: &str, kind: EventKind, chars: Option<u32>) {
        if !self.settings().telemetry {
            return;
        }
        let uri = lock(&self.state.items).0.get(id).map(|i| i.uri.clone());
        self.state
            .telemetry
            .decided(uri.as_deref(), id, kind, chars);
    }

    /// Records the fingerprints of the lines moat wrote into the document: the whole
    /// completion, or its first `chars` characters for a partial accept.
    fn inserted(&self, id: &str, chars: Option<usize>) {
        let settings = self.settings();
        if !settings.telemetry {
            return;
        }
        let Some(item) = lock(&self.state.items).0.get(id).cloned() else {
            return;
        };
        let lines = match chars {
            Some(n) if n < item.text.chars().count() => {
                let end = item
                    .text
                    .char_indices()
                    .nth(n)
                    .map_or(item.text.len(), |(i, _)| i);
                written_lines(&item.line_before, &item.text[..end], None)
            }
            _ => written_lines(&item.line_before, &item.text, Some(&item.line_after)),
        };
        // Partial accepts come one after another (lengths so far): each line once.
        let prints: Vec<i64> = lines
            .iter()
            .skip(item.fingerprinted)
            .map(|l| fingerprint(l, settings.salt()))
            .collect();
        if let Some(i) = lock(&self.state.items).0.get_mut(id) {
            i.fingerprinted = i.fingerprinted.max(lines.len());
        }
        self.state.telemetry.inserted(id, &prints);
    }

    pub async fn did_dismiss(&self, params: ShownParams) {
        if let Some(id) = params.item.completion_id() {
            self.state.count(|c| c.dismissed += 1);
            self.decided(&id, EventKind::Dismissed, None);
            tracing::info!(target: "moat::events", "dismissed {id}");
        }
    }

    pub async fn status(&self, _: StatusParams) -> Result<Value> {
        let settings = self.settings();
        let model = self
            .state
            .worker
            .get()
            .map(Worker::state)
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
            .unwrap_or_else(|| json!({"state": "not started"}));
        let index = {
            let guard = self.state.index.read().unwrap_or_else(|p| p.into_inner());
            let stats = guard.as_ref().map(Index::stats);
            json!({
                "state": *lock(&self.state.indexing),
                "root": lock(&self.state.root).as_ref().map(|r| r.display().to_string()),
                "files": stats.as_ref().map(|s| s.files),
                "definitions": stats.as_ref().map(|s| s.definitions),
            })
        };
        let lat = lock(&self.state.latencies).clone();
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "model": model,
            "adapter": self.state.worker.get().map(Worker::adapter).unwrap_or_default(),
            "threads": self.opts.threads,
            "settings": settings,
            "settingProblems": *lock(&self.state.setting_problems),
            "index": index,
            "documents": lock(&self.state.docs).len(),
            "counters": *lock(&self.state.counters),
            "latencyMs": {
                "last": lat.back(),
                "p50": percentile(&lat, 0.5),
                "p95": percentile(&lat, 0.95),
                "n": lat.len(),
            },
        }))
    }

    /// Applies settings; returns the adapter change they make, if any.
    fn apply_settings(&self, v: &Value) -> Option<Option<(String, bool)>> {
        let (problems, before, after) = {
            let mut s = self
                .state
                .settings
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let before = s.adapter_spec();
            (s.apply(v), before, s.adapter_spec())
        };
        for p in &problems {
            tracing::warn!("{p}");
        }
        *lock(&self.state.setting_problems) = problems;
        (before != after).then_some(after)
    }

    /// Asks the model thread to serve another adapter (or none), forgets the completions the
    /// old one made, and tells the user if the new one cannot be served.
    fn switch_adapter(&self, spec: Option<(String, bool)>) {
        let Some(worker) = self.state.worker.get().cloned() else {
            return; // before `initialized`: the worker starts with the setting
        };
        worker.set_adapter(spec);
        lock(&self.state.shown).clear();
        lock(&self.state.inflight).clear();
        let client = self.client.clone();
        tokio::spawn(async move {
            loop {
                match worker.adapter() {
                    AdapterState::Loading { .. } => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    AdapterState::Failed { name, error } => {
                        let msg = format!(
                            "moat: adapter {name} is not served, the base model is: {error}"
                        );
                        client.show_message(MessageType::WARNING, msg).await;
                        break;
                    }
                    _ => break,
                }
            }
        });
    }

    /// Remembers the lines an edit touched, for the next prompts' context.
    fn note_edit(&self, uri: &Uri, text: &str, start_line: u32, new_text: &str) {
        // Typing and pastes are edits worth showing; a whole-document replacement (or a huge
        // paste) is not a region, and would cost its size in every later prompt.
        if new_text.trim().is_empty() || new_text.len() > RECENT_MAX_BYTES {
            return;
        }
        let path = self.rel_path(uri);
        let n = (new_text.matches('\n').count() as u32).min(RECENT_MAX_LINES);
        let first = start_line.saturating_sub(1);
        let last = start_line + n + 1;
        let region: String = text
            .split_inclusive('\n')
            .skip(first as usize)
            .take((last - first + 1) as usize)
            .collect();
        let mut recent = lock(&self.state.recent);
        // One region per place: a burst of keystrokes on a line is one edit.
        recent.retain(|e| !(e.path == path && e.start_line.abs_diff(first) <= 2));
        recent.push_front(RecentEdit {
            path,
            start_line: first,
            text: region,
        });
        recent.truncate(RECENT);
    }
}

/// A `$/progress` report, if the client lets the server create the token.
async fn begin_progress(
    client: &Client,
    token: &str,
    title: &str,
) -> Option<OngoingProgress<Unbounded, NotCancellable>> {
    let token = NumberOrString::String(token.into());
    client
        .send_request::<request::WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
            token: token.clone(),
        })
        .await
        .ok()?;
    Some(client.progress(token, title).begin().await)
}

fn build_index(root: &Path, cache: Option<&Path>) -> std::result::Result<Index, String> {
    let file = cache.map(|c| persist::index_path(c, root));
    let mut idx = match &file {
        Some(f) => persist::load(root, WalkOptions::default(), f),
        None => Index::new(root, WalkOptions::default()),
    }
    .map_err(|e| e.to_string())?;
    let stats = idx.refresh();
    if let Some(f) = file {
        if stats.parsed > 0 || stats.removed > 0 || !f.exists() {
            if let Err(e) = persist::save(&idx, &f) {
                tracing::warn!("could not save the index: {e}");
            }
        }
    }
    Ok(idx)
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let utf8 = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_ref())
            .is_some_and(|v| v.contains(&PositionEncodingKind::UTF8));
        let enc = if utf8 {
            Encoding::Utf8
        } else {
            Encoding::Utf16
        };
        *lock(&self.state.encoding) = Some(enc);
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .and_then(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .or_else(|| {
                params
                    .root_uri
                    .as_ref()
                    .and_then(|u| u.to_file_path().map(|p| p.into_owned()))
            })
            .filter(|p| p.is_dir())
            .map(|p| moat_index::git::discover(&p).map(|g| g.root).unwrap_or(p));
        if let Some(opts) = &params.initialization_options {
            self.apply_settings(opts);
        }
        if let Some(info) = &params.client_info {
            let version = info.version.as_deref().unwrap_or("");
            self.state.telemetry.set_client(&info.name, version);
        }
        let settings = self.settings();
        let email = moat_index::git::user_email(root.as_deref().unwrap_or(Path::new(".")))
            .unwrap_or_else(|| "unknown".into());
        self.state
            .telemetry
            .set_user(moat_telemetry::user_id(&email, settings.salt()));
        *lock(&self.state.root) = root;
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(if utf8 {
                    PositionEncodingKind::UTF8
                } else {
                    PositionEncodingKind::UTF16
                }),
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::INCREMENTAL,
                )),
                completion_provider: Some(CompletionOptions::default()),
                inline_completion_provider: Some(OneOf::Left(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![ACCEPT_COMMAND.into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "moat".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        self.start_background();
    }

    async fn shutdown(&self) -> Result<()> {
        for g in lock(&self.state.inflight).values() {
            g.cancel.cancel();
        }
        self.state.telemetry.flush();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        self.reindex(&d.uri, &d.text, &d.language_id);
        lock(&self.state.docs).open(
            d.uri.as_str(),
            Document {
                text: d.text,
                version: d.version,
                language_id: d.language_id,
            },
        );
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let key = uri.as_str().to_string();
        let enc = self.encoding();
        let mut edits = Vec::new();
        let result = {
            let mut docs = lock(&self.state.docs);
            let mut r = Ok(true);
            for ch in &params.content_changes {
                let range = ch.range.map(|r| {
                    (
                        (r.start.line, r.start.character),
                        (r.end.line, r.end.character),
                    )
                });
                r = docs.edit(&key, params.text_document.version, range, &ch.text, enc);
                if r.is_err() {
                    break;
                }
                if let Some(r) = range {
                    edits.push((r.0 .0, ch.text.clone()));
                }
            }
            r.map(|known| {
                known.then(|| {
                    let d = docs.get(&key).expect("known document");
                    (d.text.clone(), d.language_id.clone())
                })
            })
        };
        match result {
            Ok(Some((text, language_id))) => {
                for (line, new_text) in edits {
                    self.note_edit(&uri, &text, line, &new_text);
                }
                self.reindex(&uri, &text, &language_id);
            }
            Ok(None) => tracing::warn!("didChange for {key}, which is not open"),
            Err(e) => {
                tracing::warn!("didChange for {key} refused: {e}");
                self.client
                    .log_message(
                        MessageType::WARNING,
                        format!("moat: an edit to {key} was refused ({e}); reopen the file"),
                    )
                    .await;
            }
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let key = params.text_document.uri.as_str().to_string();
        lock(&self.state.docs).close(&key);
        lock(&self.state.shown).remove(&key);
        lock(&self.state.seq).remove(&key);
        if let Some(g) = lock(&self.state.inflight).remove(&key) {
            g.cancel.cancel();
        }
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        if let Some(spec) = self.apply_settings(&params.settings) {
            self.switch_adapter(spec);
        }
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let tdp = params.text_document_position;
        let Some((id, text, range)) = self
            .complete_at(&tdp.text_document.uri, tdp.position)
            .await?
        else {
            return Ok(None);
        };
        let label = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        Ok(Some(CompletionResponse::Array(vec![CompletionItem {
            label,
            kind: Some(CompletionItemKind::TEXT),
            detail: Some("moat".into()),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                range,
                new_text: text,
            })),
            command: Some(Self::accept_command(&id)),
            ..Default::default()
        }])))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        if params.command != ACCEPT_COMMAND {
            return Err(Error::invalid_params(format!(
                "unknown command `{}` (this server has {ACCEPT_COMMAND})",
                params.command
            )));
        }
        let Some(id) = params.arguments.first().and_then(Value::as_str) else {
            return Err(Error::invalid_params(format!(
                "{ACCEPT_COMMAND} takes the completion id as its argument"
            )));
        };
        let item = lock(&self.state.items).0.get(id).cloned();
        self.state.count(|c| c.accepted += 1);
        self.decided(id, EventKind::Accepted, None);
        self.inserted(id, None);
        if let Some(item) = &item {
            // The shown completion is in the document now; nothing left to type through.
            let shown = lock(&self.state.shown)
                .remove(&item.uri)
                .unwrap_or_default();
            if let Some(s) = shown.into_iter().find(|s| s.id == id) {
                self.track_retention(&item.uri, id, s.before.len(), &s.text);
                self.speculate(&item.uri, s);
            }
            let visible = item.shown_at.map(|t| t.elapsed().as_millis());
            tracing::info!(target: "moat::events", "accepted {id} ({} characters, visible {visible:?} ms)", item.text.len());
        } else {
            tracing::info!(target: "moat::events", "accepted {id} (not remembered)");
        }
        Ok(None)
    }
}
