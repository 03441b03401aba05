//! A whole tuning run: repository → samples → adapter + manifest in an output directory. A
//! run interrupted in the same directory resumes from its checkpoint.

use crate::data::{collect, Corpus, DataOptions};
use crate::error::{io, Result, TuneError};
use crate::lora::{Lora, LoraConfig};
use crate::manifest::{sha256_file, Base, Manifest, Results, SampleSummary, ADAPTER_FILE};
use crate::model::TrainModel;
use crate::samples::{samples, Prompter, SampleOptions};
use crate::train::{held_out_loss, train, Progress, Sample, Split, TrainConfig};
use moat_context::ContextMode;
use moat_engine::fim::FimFormat;
use moat_index::Index;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[derive(Debug, Clone)]
pub struct TuneOptions {
    pub repo: PathBuf,
    pub base: PathBuf,
    /// Adapter directory (created; a checkpoint there is resumed).
    pub out: PathBuf,
    pub name: String,
    pub data: DataOptions,
    pub samples: SampleOptions,
    pub lora: LoraConfig,
    pub train: TrainConfig,
    /// Held-out samples used for the loss (each costs a forward pass per evaluation).
    pub max_held_out_samples: usize,
}

pub struct Prepared {
    pub corpus: Corpus,
    pub train: Vec<Sample>,
    pub held_out: Vec<Sample>,
    pub summary: SampleSummary,
}

/// Peak memory of a training step, in bytes: the model file, plus the activations kept for
/// the backward pass (per layer and token: the MLP's and attention's intermediates, and the
/// attention matrix), doubled for the gradients and temporaries alive at the peak. Fitted to
/// 5.2 GB measured for the 0.5B model at sequence 256 (estimate 5.6 GB).
pub fn memory_estimate(model: &TrainModel, model_bytes: u64, seq: usize) -> u64 {
    let c = &model.cfg;
    let per_token = (12 * c.n_ff + 40 * c.n_embd) as f64 + 3.0 * c.n_head as f64 * seq as f64;
    let activations = 2.0 * seq as f64 * c.n_layer as f64 * per_token * 4.0;
    model_bytes.saturating_add(activations.min(u64::MAX as f64 / 2.0) as u64)
}

/// Free memory as the kernel counts it (`MemAvailable`), where it can be read.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Fails early, with what to change, when a step would not fit in memory (an allocation
/// failure later would abort the process without a word).
pub fn check_memory(model: &TrainModel, model_bytes: u64, seq: usize) -> Result<()> {
    let need = memory_estimate(model, model_bytes, seq);
    match available_memory() {
        Some(free) if model.device.is_cpu() && need > free => Err(TuneError::OutOfMemory {
            need_mb: need / 1_000_000,
            available_mb: free / 1_000_000,
            seq,
            half: (seq / 2).max(32),
        }),
        _ => Ok(()),
    }
}

/// Reads the repository and cuts the samples.
pub fn prepare(model: &TrainModel, opts: &TuneOptions) -> Result<Prepared> {
    let model_bytes = std::fs::metadata(&opts.base).map(|m| m.len()).unwrap_or(0);
    check_memory(model, model_bytes, opts.samples.seq)?;
    if opts.samples.seq > model.max_positions() {
        return Err(TuneError::Invalid(format!(
            "sequence length {} is longer than the {} positions the model is set up for",
            opts.samples.seq,
            model.max_positions()
        )));
    }
    let corpus = collect(&opts.repo, &opts.data)?;
    let format = FimFormat::detect(&model.tokenizer)?;
    let index = match opts.samples.context {
        ContextMode::Repo => Some(training_index(&opts.repo, &opts.data, &corpus)?),
        _ => None,
    };
    let prompter = Prompter {
        tok: &model.tokenizer,
        format,
        mode: opts.samples.context,
        index: index.as_ref(),
        repo_name: repo_name(&opts.repo),
    };
    let train = samples(&prompter, &corpus.train, &opts.samples)?;
    let mut held_out = samples(&prompter, &corpus.held_out, &opts.samples)?;
    // Evenly spaced, so every held-out file keeps its share.
    if held_out.len() > opts.max_held_out_samples && opts.max_held_out_samples > 0 {
        let step = held_out.len() as f64 / opts.max_held_out_samples as f64;
        held_out = (0..opts.max_held_out_samples)
            .map(|i| held_out[(i as f64 * step) as usize].clone())
            .collect();
    }
    let need = opts.train.accumulate.max(2);
    if train.len() < need {
        return Err(TuneError::TooLittleData {
            what: format!("{} training samples (at least {need} needed)", train.len()),
        });
    }
    if held_out.is_empty() {
        return Err(TuneError::TooLittleData {
            what: "no held-out samples".into(),
        });
    }
    let summary = SampleSummary {
        context: opts.samples.context.name().to_string(),
        seq: opts.samples.seq,
        train_samples: train.len(),
        held_out_samples: held_out.len(),
        train_sample_tokens: train.iter().map(|s| s.tokens.len()).sum(),
    };
    Ok(Prepared {
        corpus,
        train,
        held_out,
        summary,
    })
}

/// The repository's index without the held-out files: what training prompts draw
/// repository context from (the held-out code must not reach the model during training).
fn training_index(repo: &Path, data: &DataOptions, corpus: &Corpus) -> Result<Index> {
    let mut index = Index::new(repo, data.walk.clone())?;
    index.refresh();
    for f in &corpus.held_out {
        index.remove_file(&f.path);
    }
    Ok(index)
}

/// The name the server gives the repository in prompts: its directory's.
pub fn repo_name(repo: &Path) -> String {
    repo.canonicalize()
        .ok()
        .as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Trains, then writes `adapter.safetensors` and `manifest.json` into `opts.out`.
pub fn train_and_save(
    model: &TrainModel,
    data: &Prepared,
    opts: &TuneOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Lora, Manifest)> {
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    let lora = Lora::new(
        opts.lora.clone(),
        model.cfg.n_layer,
        &|l, t| model.dims(l, t),
        opts.train.seed,
        &model.device,
        model.dtype,
    )?;
    let outcome = train(
        model,
        &lora,
        Split {
            train: &data.train,
            held_out: &data.held_out,
        },
        &opts.train,
        Some(&opts.out),
        stop,
        progress,
    )?;
    let h = &outcome.history;
    // The first evaluation is of the untrained adapter (B = 0), that is of the base model.
    let base_loss = match h.evals.first() {
        Some(&(0, l)) => l,
        _ => held_out_loss(model, None, &data.held_out)?,
    };
    let after = h.best.map(|(_, l)| l).unwrap_or(f64::NAN);
    lora.save(&opts.out.join(ADAPTER_FILE))?;
    let manifest = Manifest {
        format: 1,
        name: opts.name.clone(),
        created_unix: now(),
        base: base_info(model, &opts.base)?,
        lora: opts.lora.clone(),
        train: opts.train.clone(),
        data: data.corpus.summary.clone(),
        samples: data.summary.clone(),
        held_out_files: data
            .corpus
            .held_out
            .iter()
            .map(|f| f.path.clone())
            .collect(),
        results: Some(Results {
            steps: h.step,
            tokens: h.tokens,
            seconds: h.seconds,
            tokens_per_s: h.tokens as f64 / h.seconds.max(1e-9),
            ending: outcome.ending,
            held_out_loss_before: base_loss,
            held_out_loss_after: after,
            quality_before: None,
            quality_after: None,
            better: after < base_loss,
            losses: h.losses.clone(),
            evals: h.evals.clone(),
        }),
    };
    manifest.write(&opts.out)?;
    Ok((lora, manifest))
}

fn base_info(model: &TrainModel, base: &Path) -> Result<Base> {
    Ok(Base {
        file: base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: sha256_file(base)?,
        architecture: model.cfg.architecture.clone(),
    })
}

/// Loads the adapter in `dir` for `model`, after checking it belongs to `base`.
pub fn load_adapter(model: &TrainModel, base: &Path, dir: &Path) -> Result<(Lora, Manifest)> {
    let manifest = Manifest::read(dir)?;
    manifest.check_base(base)?;
    let lora = Lora::new(
        manifest.lora.clone(),
        model.cfg.n_layer,
        &|l, t| model.dims(l, t),
        0,
        &model.device,
        model.dtype,
    )?;
    lora.load_into(&dir.join(ADAPTER_FILE))?;
    Ok((lora, manifest))
}
