//! The model's own thread. Inference is long, CPU-bound work: it never runs on the async
//! runtime that reads the editor's messages, so the server answers `initialize`, status and
//! cancellations while a completion is being generated.
//!
//! One model instance serves every document; requests queue, and a request for a document
//! that has a newer one waiting is answered empty without running. The engine keeps its KV
//! cache between requests, so the document being edited stays warm.

use moat_context::post::Post;
use moat_context::{
    Assembler, Budget, ContextMemo, ContextMode, ContextStyle, RecentEdit, Request,
};
use moat_engine::{Adapter, AvoidLine, CancelFlag, Engine, EngineOptions, Flow, GenerateParams};
use moat_index::{Index, Lang};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::oneshot;

/// The repository index, once built (`None` while indexing: completions use the file only).
pub type SharedIndex = Arc<RwLock<Option<Index>>>;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModelState {
    Loading,
    Ready {
        model: String,
        architecture: String,
        device: String,
        load_ms: f64,
    },
    Failed {
        error: String,
    },
}

/// Loads an adapter for serving unmerged: `(name or directory, base model file, force)`. The
/// binary supplies it (the server does not know how adapters are stored or judged); it
/// refuses an adapter that did not beat the base model unless forced.
pub type AdapterLoader =
    dyn Fn(&str, &Path, bool) -> std::result::Result<Adapter, String> + Send + Sync;

/// Which adapter is served, for the status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AdapterState {
    /// The base model alone.
    #[default]
    None,
    Loading {
        name: String,
    },
    Active {
        name: String,
    },
    /// The last adapter asked for could not be served; the base model serves instead.
    Failed {
        name: String,
        error: String,
    },
}

/// What one completion needs, copied out of the document store.
#[derive(Debug, Clone)]
pub struct Input {
    pub uri: String,
    /// Repository-relative path (or the file name outside a repository).
    pub path: String,
    pub repo_name: String,
    pub lang: Option<Lang>,
    pub text: String,
    pub cursor: usize,
    pub mode: ContextMode,
    pub budget: Budget,
    /// Lines the repository context is kept for, from the line it was chosen at down.
    pub context_lines: u32,
    pub max_tokens: usize,
    /// Decoding time after which the completion ends with its current line.
    pub decode_budget: Option<std::time::Duration>,
    pub recent: Vec<RecentEdit>,
    /// The text generated so far, for requests that wait for this generation.
    pub partial: Arc<Mutex<String>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Output {
    pub text: String,
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// Request received by the worker → answer, including the wait in the queue.
    pub total_ms: f64,
    /// The adapter that generated it.
    pub adapter: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    #[error("the model is still loading")]
    Loading,
    #[error("the model could not be loaded: {0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Completion(String),
}

struct Job {
    input: Input,
    cancel: CancelFlag,
    queued: Instant,
    reply: Option<oneshot::Sender<Result<Output, WorkError>>>,
}

/// What the model thread is asked to do, in order: a completion queued after an adapter
/// change is computed with the new adapter.
enum Msg {
    Complete(Job),
    /// `(name or directory, force)`; `None`: the base model alone.
    Adapter(Option<(String, bool)>),
}

#[derive(Clone)]
pub struct Worker {
    tx: mpsc::Sender<Msg>,
    state: Arc<Mutex<ModelState>>,
    adapter: Arc<Mutex<AdapterState>>,
}

impl Worker {
    /// Starts the thread; the model loads there in the background.
    pub fn start(
        model: Result<PathBuf, String>,
        opts: EngineOptions,
        index: SharedIndex,
        loader: Arc<AdapterLoader>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Msg>();
        let state = Arc::new(Mutex::new(ModelState::Loading));
        let adapter = Arc::new(Mutex::new(AdapterState::None));
        let st = state.clone();
        let ad = adapter.clone();
        std::thread::Builder::new()
            .name("moat-model".into())
            .spawn(move || {
                let loaded = model.and_then(|path| {
                    Engine::load(&path, &opts)
                        .map(|e| (path, e))
                        .map_err(|e| e.to_string())
                });
                let (path, mut engine) = match loaded {
                    Ok((path, engine)) => {
                        let info = engine.info().clone();
                        *st.lock().expect("state lock") = ModelState::Ready {
                            model: path.display().to_string(),
                            architecture: info.architecture.clone(),
                            device: format!("{:?}", opts.device),
                            load_ms: info.load_ms,
                        };
                        tracing::info!("model ready: {}", path.display());
                        (path, engine)
                    }
                    Err(error) => {
                        tracing::error!("model not loaded: {error}");
                        *st.lock().expect("state lock") = ModelState::Failed {
                            error: error.clone(),
                        };
                        // Answer every request with the reason, never hang.
                        for msg in rx {
                            match msg {
                                Msg::Complete(mut job) => {
                                    job.reply_with(Err(WorkError::Failed(error.clone())))
                                }
                                Msg::Adapter(Some((name, _))) => {
                                    *ad.lock().expect("adapter lock") = AdapterState::Failed {
                                        name,
                                        error: "the model is not loaded".into(),
                                    }
                                }
                                Msg::Adapter(None) => {
                                    *ad.lock().expect("adapter lock") = AdapterState::None
                                }
                            }
                        }
                        return;
                    }
                };
                let swap = |engine: &mut Engine, spec: Option<(String, bool)>| {
                    swap_adapter(engine, spec, &path, loader.as_ref(), &ad)
                };
                serve(&mut engine, &rx, &index, &swap);
            })
            .expect("spawn the model thread");
        Self { tx, state, adapter }
    }

    pub fn adapter(&self) -> AdapterState {
        self.adapter.lock().expect("adapter lock").clone()
    }

    /// Serves `spec` (`(name or directory, force)`) unmerged from the next completion on, or
    /// the base model alone for `None`. The answer shows in [`Worker::adapter`].
    pub fn set_adapter(&self, spec: Option<(String, bool)>) {
        // Said at once, so that no status read after this call shows the old adapter's
        // state (turning one off was reported as the old failure until the model thread
        // got to it). Dropping an adapter cannot fail; the message queue applies it before
        // any later completion.
        *self.adapter.lock().expect("adapter lock") = match &spec {
            Some((name, _)) => AdapterState::Loading { name: name.clone() },
            None => AdapterState::None,
        };
        let _ = self.tx.send(Msg::Adapter(spec));
    }

    pub fn state(&self) -> ModelState {
        self.state.lock().expect("state lock").clone()
    }

    /// Queues a completion. While the model loads, the answer is immediate: `Loading`.
    pub async fn complete(&self, input: Input, cancel: CancelFlag) -> Result<Output, WorkError> {
        match self.state() {
            ModelState::Loading => return Err(WorkError::Loading),
            ModelState::Failed { error } => return Err(WorkError::Failed(error)),
            ModelState::Ready { .. } => {}
        }
        let (reply, rx) = oneshot::channel();
        let job = Job {
            input,
            cancel,
            queued: Instant::now(),
            reply: Some(reply),
        };
        if self.tx.send(Msg::Complete(job)).is_err() {
            return Err(WorkError::Completion("the model thread has stopped".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(WorkError::Completion("the model thread has stopped".into())))
    }
}

/// Applies an adapter change on the model thread and records the outcome. A failure keeps
/// the base model (never a half-applied adapter), and says why in the status and the log.
fn swap_adapter(
    engine: &mut Engine,
    spec: Option<(String, bool)>,
    base: &Path,
    loader: &AdapterLoader,
    state: &Mutex<AdapterState>,
) {
    let new = match spec {
        None => {
            if let Err(e) = engine.set_adapter(None) {
                tracing::error!("dropping the adapter: {e}");
            }
            AdapterState::None
        }
        Some((name, force)) => {
            let loaded = loader(&name, base, force)
                .and_then(|a| engine.set_adapter(Some(&a)).map_err(|e| e.to_string()));
            match loaded {
                Ok(()) => {
                    tracing::info!("serving adapter {name} (unmerged)");
                    AdapterState::Active { name }
                }
                Err(error) => {
                    tracing::error!("adapter {name} not served: {error}");
                    let _ = engine.set_adapter(None);
                    AdapterState::Failed { name, error }
                }
            }
        }
    };
    *state.lock().expect("adapter lock") = new;
}

type Swap<'a> = dyn Fn(&mut Engine, Option<(String, bool)>) + 'a;

fn serve(engine: &mut Engine, rx: &mpsc::Receiver<Msg>, index: &SharedIndex, swap: &Swap) {
    let mut memo = ContextMemo::default();
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        while let Ok(more) = rx.try_recv() {
            msgs.push(more);
        }
        // Completions between adapter changes run as one batch, so that "a newer request for
        // the same document" never reaches across a change.
        let mut jobs = Vec::new();
        for msg in msgs {
            match msg {
                Msg::Complete(job) => jobs.push(job),
                Msg::Adapter(spec) => {
                    run_batch(engine, &mut jobs, index, &mut memo);
                    swap(engine, spec);
                }
            }
        }
        run_batch(engine, &mut jobs, index, &mut memo);
    }
}

fn run_batch(
    engine: &mut Engine,
    jobs: &mut Vec<Job>,
    index: &SharedIndex,
    memo: &mut ContextMemo,
) {
    for i in 0..jobs.len() {
        let newer = jobs[i + 1..]
            .iter()
            .any(|j| j.input.uri == jobs[i].input.uri);
        let job = &jobs[i];
        // Superseded by a newer request for the same document, or given up by the
        // client: answered without running.
        let result = if newer || job.cancel.is_cancelled() {
            Err(WorkError::Cancelled)
        } else {
            run(engine, job, index, memo)
        };
        jobs[i].reply_with(result);
    }
    jobs.clear();
}

impl Job {
    fn reply_with(&mut self, result: Result<Output, WorkError>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

/// Where text ends after its last complete line that has content: a block cut there for
/// time is still whole lines. `None` while no such line is complete.
fn whole_lines(text: &str) -> Option<usize> {
    let cut = text.rfind('\n')?;
    (!text[..cut].trim().is_empty()).then_some(cut)
}

fn run(
    engine: &mut Engine,
    job: &Job,
    index: &SharedIndex,
    memo: &mut ContextMemo,
) -> Result<Output, WorkError> {
    let input = &job.input;
    memo.set_lines(input.context_lines);
    let assembled = {
        let guard = index.read().unwrap_or_else(|p| p.into_inner());
        let assembler = Assembler {
            tok: engine.tokenizer(),
            format: engine.fim_format(),
            repo_name: input.repo_name.clone(),
            budget: input.budget,
            style: ContextStyle::default(),
        };
        let req = Request {
            path: &input.path,
            lang: input.lang,
            text: &input.text,
            cursor: input.cursor,
            recent: &input.recent,
        };
        assembler
            .assemble_memo(&req, guard.as_ref(), input.mode, memo)
            .map_err(|e| WorkError::Completion(e.to_string()))?
    };
    let prompt = &assembled.prompt;
    let post = Post::new(input.lang, &assembled.prefix, &assembled.suffix);
    let tokens = engine
        .render_fim(prompt)
        .map_err(|e| WorkError::Completion(e.to_string()))?;
    let params = GenerateParams {
        max_tokens: input.max_tokens,
        avoid: AvoidLine::after(&prompt.prefix, &prompt.suffix),
        ..Default::default()
    };
    let mut decoding_since: Option<std::time::Instant> = None;
    let gen = engine
        .generate(&tokens, &params, &job.cancel, &mut |t| {
            t.clone_into(&mut input.partial.lock().unwrap_or_else(|p| p.into_inner()));
            if let Some(cut) = post.end(t) {
                return Flow::StopAt(cut);
            }
            let since = *decoding_since.get_or_insert_with(std::time::Instant::now);
            match input.decode_budget {
                Some(budget) if since.elapsed() >= budget => match whole_lines(t) {
                    Some(cut) => Flow::StopAt(cut),
                    None => Flow::Continue,
                },
                _ => Flow::Continue,
            }
        })
        .map_err(|e| WorkError::Completion(e.to_string()))?;
    if job.cancel.is_cancelled() {
        return Err(WorkError::Cancelled);
    }
    let t = &gen.timings;
    tracing::debug!(
        "completion: {} prompt tokens ({} cached), prefill {:.0} ms, {} tokens in {:.0} ms",
        t.prompt_tokens,
        t.cached_tokens,
        t.prefill_ms,
        t.generated_tokens,
        t.decode_ms
    );
    Ok(Output {
        text: post.finish(&gen.text),
        prompt_tokens: t.prompt_tokens,
        cached_tokens: t.cached_tokens,
        generated_tokens: t.generated_tokens,
        prefill_ms: t.prefill_ms,
        decode_ms: t.decode_ms,
        total_ms: job.queued.elapsed().as_secs_f64() * 1e3,
        adapter: engine.adapter().map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::whole_lines;

    #[test]
    fn a_cut_for_time_keeps_whole_lines_with_content() {
        assert_eq!(whole_lines("if x:"), None, "no line is complete");
        assert_eq!(whole_lines("\n    "), None, "only a blank line is complete");
        assert_eq!(whole_lines("if x:\n    ret"), Some(5));
        assert_eq!(whole_lines("if x:\n    return 1\n\n  "), Some(19));
    }
}
