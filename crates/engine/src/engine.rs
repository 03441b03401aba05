//! The engine: a loaded model, its tokenizer and one warm KV cache, with prefix reuse.

use crate::adapter::Adapter;
use crate::cancel::CancelFlag;
use crate::config::ModelConfig;
use crate::decoder::{Decoder, PREFILL_CHUNK};
use crate::device::{cpu_threads, DeviceChoice};
use crate::error::{EngineError, Result};
use crate::fim::{self, FimFormat, FimPrompt};
use crate::gguf::GgufFile;
use crate::kv::{KvCache, KvSnapshot};
use crate::repeat::{AvoidLine, Verdict};
use crate::sampling::{Sampler, Sampling};
use crate::tokenizer::Tokenizer;
use crate::trim::Trimmer;
use candle_core::Tensor;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub device: DeviceChoice,
    /// Positions the KV cache holds (prompt plus generated tokens).
    pub context_size: usize,
    /// Overrides the prompt format detected from the vocabulary.
    pub fim_format: Option<FimFormat>,
    /// Use moat's own CPU kernels where they apply (off: candle's, for comparison).
    pub own_kernels: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            device: DeviceChoice::Cpu,
            context_size: 4096,
            fim_format: None,
            own_kernels: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GenerateParams {
    pub max_tokens: usize,
    pub sampling: Sampling,
    /// Generation ends before the first of these strings; it is not part of the text.
    pub stop_strings: Vec<String>,
    /// Keep going past end and markup tokens (benchmarks need a fixed number of steps).
    pub ignore_eos: bool,
    /// First lines not to write (the one after the hole and others, see [`AvoidLine`]): a
    /// generation that writes one backs up to the token that began it (or its indentation)
    /// and takes the next best token, at most [`AVOID_TRIES`] times.
    pub avoid: Option<AvoidLine>,
}

/// How many times a generation backs up from a refused first line (each costs the
/// re-prefill of a few tokens: the cache keeps the prompt).
pub const AVOID_TRIES: usize = 3;

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_tokens: 64,
            sampling: Sampling::greedy(),
            stop_strings: Vec::new(),
            ignore_eos: false,
            avoid: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model emitted an end or markup token.
    EndOfText,
    MaxTokens,
    StopString,
    /// The caller (e.g. the trimmer) found the completion complete.
    Complete,
    Cancelled,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were reused from the previous request.
    pub cached_tokens: usize,
    pub prefill_ms: f64,
    pub generated_tokens: usize,
    pub decode_ms: f64,
}

#[derive(Debug, Clone)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    pub timings: Timings,
}

/// What a streaming callback tells the generator after seeing the text so far.
pub enum Flow {
    Continue,
    /// The completion is the text up to this byte offset; stop.
    StopAt(usize),
}

/// What the engine is running, for status displays.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    pub architecture: String,
    pub layers: usize,
    pub embedding: usize,
    pub vocab: usize,
    pub fim_format: FimFormat,
    pub device: String,
    pub threads: usize,
    pub context_size: usize,
    pub load_ms: f64,
}

pub struct EngineSnapshot {
    kv: KvSnapshot,
    tokens: Vec<u32>,
}

pub struct Engine {
    decoder: Decoder,
    tokenizer: Tokenizer,
    fim: FimFormat,
    cache: KvCache,
    /// The tokens whose keys and values the cache holds, in order.
    cached: Vec<u32>,
    info: EngineInfo,
    adapter: Option<String>,
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Engine {
    pub fn load(path: &Path, opts: &EngineOptions) -> Result<Self> {
        let start = Instant::now();
        let mut file = GgufFile::open(path)?;
        let cfg = ModelConfig::from_gguf(&file.content)?;
        // The tokenizer reads the metadata before the weights are loaded.
        let tokenizer = Tokenizer::from_gguf(&file.content)?;
        let fim = match opts.fim_format {
            Some(f) => f,
            None => FimFormat::detect(&tokenizer)?,
        };
        let device = opts.device.open()?;
        let context_size = opts.context_size.clamp(16, cfg.context_length.max(16));
        let decoder = Decoder::load(&mut file, &cfg, &device, context_size, opts.own_kernels)?;
        let cache = KvCache::new(&cfg, context_size, &device, decoder.kv_dtype())?;
        let info = EngineInfo {
            architecture: cfg.architecture.clone(),
            layers: cfg.n_layer,
            embedding: cfg.n_embd,
            vocab: tokenizer.vocab_size(),
            fim_format: fim,
            device: opts.device.name(),
            threads: if device.is_cpu() { cpu_threads() } else { 0 },
            context_size,
            load_ms: start.elapsed().as_secs_f64() * 1e3,
        };
        tracing::info!(?info, "model loaded from {}", path.display());
        Ok(Self {
            decoder,
            tokenizer,
            fim,
            cache,
            cached: Vec::new(),
            info,
            adapter: None,
        })
    }

    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn config(&self) -> &ModelConfig {
        self.decoder.config()
    }

    pub fn fim_format(&self) -> FimFormat {
        self.fim
    }

    /// Tokens currently held by the KV cache.
    pub fn cached_tokens(&self) -> &[u32] {
        &self.cached
    }

    /// Serves `adapter` unmerged on top of the base weights from now on (`None`: the base
    /// alone). The KV cache is dropped: its keys and values came from other weights. On an
    /// error nothing changes.
    pub fn set_adapter(&mut self, adapter: Option<&Adapter>) -> Result<()> {
        self.decoder.set_adapter(adapter)?;
        self.adapter = adapter.map(|a| a.name().to_string());
        self.clear_cache();
        Ok(())
    }

    /// The adapter being served, if any.
    pub fn adapter(&self) -> Option<&str> {
        self.adapter.as_deref()
    }

    pub fn clear_cache(&mut self) {
        self.cache.truncate(0);
        self.cached.clear();
    }

    pub fn snapshot(&self) -> Result<EngineSnapshot> {
        Ok(EngineSnapshot {
            kv: self.cache.snapshot()?,
            tokens: self.cached.clone(),
        })
    }

    pub fn restore(&mut self, snap: &EngineSnapshot) -> Result<()> {
        self.cache.restore(&snap.kv)?;
        self.cached = snap.tokens.clone();
        Ok(())
    }

    pub fn render_fim(&self, prompt: &FimPrompt) -> Result<Vec<u32>> {
        fim::render(&self.tokenizer, self.fim, prompt)
    }

    /// Brings the cache to hold `prompt` and returns the logits after its last token. Only the
    /// part of `prompt` after its longest common prefix with the cached tokens is computed.
    /// Also returns how many prompt tokens were reused.
    fn prefill(&mut self, prompt: &[u32], cancel: &CancelFlag) -> Result<(Option<Tensor>, usize)> {
        if prompt.is_empty() {
            return Err(EngineError::Tokenizer("the prompt is empty".into()));
        }
        if prompt.len() >= self.cache.capacity() {
            return Err(EngineError::ContextOverflow {
                needed: prompt.len() + 1,
                capacity: self.cache.capacity(),
            });
        }
        // Keep at least one token to run, so that there are logits to sample from.
        let reuse = common_prefix(&self.cached, prompt).min(prompt.len() - 1);
        self.cache.truncate(reuse);
        self.cached.truncate(reuse);
        let mut logits = None;
        for chunk in prompt[reuse..].chunks(PREFILL_CHUNK) {
            if cancel.is_cancelled() {
                return Ok((None, reuse));
            }
            logits = Some(self.decoder.forward(chunk, &mut self.cache)?);
            self.cached.extend_from_slice(chunk);
        }
        Ok((logits, reuse))
    }

    /// Logits after `prompt` (reusing the cache like any request). For tests and evals.
    pub fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        let (logits, _) = self.prefill(prompt, &CancelFlag::new())?;
        Ok(logits.expect("not cancelled").to_vec1()?)
    }

    /// Generates after `prompt`. `on_text` sees the whole decoded text after every token that
    /// completes a character, and may end the generation.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerateParams,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<Generation> {
        let t0 = Instant::now();
        let mut timings = Timings {
            prompt_tokens: prompt.len(),
            ..Default::default()
        };
        let finish = |text: String, tokens, stop, mut timings: Timings, t1: Instant| {
            timings.decode_ms = t1.elapsed().as_secs_f64() * 1e3;
            Generation {
                text,
                tokens,
                stop,
                timings,
            }
        };
        let (logits, reused) = self.prefill(prompt, cancel)?;
        timings.cached_tokens = reused;
        let Some(mut logits) = logits else {
            return Ok(finish(
                String::new(),
                vec![],
                StopReason::Cancelled,
                timings,
                Instant::now(),
            ));
        };
        timings.prefill_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let max_tokens = params.max_tokens.min(self.cache.capacity() - prompt.len());
        let mut sampler = Sampler::new(params.sampling);
        let mut generated: Vec<u32> = Vec::new();
        let mut text = String::new();
        // The first-line guard, while its verdict is pending: the tokens banned at the step
        // where the last refused line began, and how many back-ups are left.
        let mut guard = params.avoid.as_ref();
        let (mut banned, mut ban_at, mut tries) = (Vec::new(), usize::MAX, AVOID_TRIES);
        let stop = loop {
            if cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            if generated.len() >= max_tokens {
                break StopReason::MaxTokens;
            }
            let mut row = logits.to_vec1::<f32>()?;
            if generated.len() == ban_at {
                for &t in &banned {
                    row[t as usize] = f32::NEG_INFINITY;
                }
            }
            let next = sampler.sample(&row);
            let end = self.tokenizer.is_special(next) && !params.ignore_eos;
            if !end {
                generated.push(next);
                timings.generated_tokens = generated.len();
            }
            let decoded = self.tokenizer.decode(&generated)?;
            // A token can end inside a multi-byte character; wait for the rest.
            if !decoded.ends_with('\u{FFFD}') {
                if let Some(g) = guard {
                    match g.verdict(&decoded, end) {
                        Verdict::Pending => {}
                        Verdict::Fine => guard = None,
                        Verdict::Refused(at) => {
                            let k = self.token_at(&generated, at)?;
                            if k != ban_at {
                                (ban_at, banned) = (k, Vec::new());
                            }
                            banned.push(generated[k]);
                            generated.truncate(k);
                            tries -= 1;
                            if tries == 0 {
                                guard = None;
                            }
                            let mut back = prompt.to_vec();
                            back.extend_from_slice(&generated);
                            let (l, _) = self.prefill(&back, cancel)?;
                            match l {
                                Some(l) => logits = l,
                                None => break StopReason::Cancelled,
                            }
                            text = self.tokenizer.decode(&generated)?;
                            continue;
                        }
                    }
                }
                if end {
                    break StopReason::EndOfText;
                }
                text = decoded;
                if let Some(cut) = params
                    .stop_strings
                    .iter()
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| text.find(s.as_str()))
                    .min()
                {
                    text.truncate(cut);
                    break StopReason::StopString;
                }
                if let Flow::StopAt(cut) = on_text(&text) {
                    text.truncate(cut.min(text.len()));
                    break StopReason::Complete;
                }
            }
            if end {
                break StopReason::EndOfText;
            }
            if generated.len() >= max_tokens {
                break StopReason::MaxTokens;
            }
            logits = self.decoder.forward(&[next], &mut self.cache)?;
            self.cached.push(next);
        };
        Ok(finish(text, generated, stop, timings, t1))
    }

    /// The index of the generated token whose text covers byte `at` of their decoded text.
    fn token_at(&self, generated: &[u32], at: usize) -> Result<usize> {
        for k in 0..generated.len() {
            if self.tokenizer.decode(&generated[..=k])?.len() > at {
                return Ok(k);
            }
        }
        Ok(generated.len().saturating_sub(1))
    }

    /// Completes the hole between `prompt.prefix` and `prompt.suffix`: renders the model's
    /// infilling format, generates, and trims run-on output. `on_text` sees the raw text.
    pub fn complete(
        &mut self,
        prompt: &FimPrompt,
        params: &GenerateParams,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let tokens = self.render_fim(prompt)?;
        let trimmer = Trimmer::new(&prompt.prefix, &prompt.suffix);
        let mut gen = self.generate(&tokens, params, cancel, &mut |text| {
            on_text(text);
            match trimmer.end(text) {
                Some(cut) => Flow::StopAt(cut),
                None => Flow::Continue,
            }
        })?;
        gen.text = trimmer.finish(&gen.text);
        Ok(gen)
    }
}
