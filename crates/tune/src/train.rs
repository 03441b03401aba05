//! The training loop: gradient accumulation over single samples, AdamW with warm-up and
//! cosine decay, held-out evaluation with early stopping, checkpoints every few steps and
//! resume after an interrupt (same seed → same result as an uninterrupted run).

use crate::error::{io, Result, TuneError};
use crate::lora::Lora;
use crate::model::{Ops, TrainModel};
use crate::optim::{AdamParams, AdamW, Schedule};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A training or evaluation sequence: the loss is taken on `tokens[target_from..]` (the
/// hidden middle and its end marker), never on the prompt around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub tokens: Vec<u32>,
    pub target_from: usize,
}

impl Sample {
    pub fn targets(&self) -> usize {
        self.tokens.len().saturating_sub(self.target_from.max(1))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer updates.
    pub steps: usize,
    /// Samples per update.
    pub accumulate: usize,
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    pub seed: u64,
    /// Held-out loss every this many updates (0: only at the end).
    pub eval_every: usize,
    /// Stop after this many evaluations without a new best held-out loss (0: never).
    pub patience: usize,
    /// Checkpoint every this many updates (when a directory is given).
    pub checkpoint_every: usize,
    /// Stop (after checkpointing) once this much time has passed.
    pub max_seconds: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 200,
            accumulate: 4,
            lr: 2e-4,
            warmup: 10,
            weight_decay: 0.0,
            seed: 1,
            eval_every: 25,
            patience: 3,
            checkpoint_every: 10,
            max_seconds: None,
        }
    }
}

/// Reported after every update.
#[derive(Debug, Clone)]
pub struct Progress {
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    pub lr: f64,
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub held_out: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    Finished,
    EarlyStopped,
    TimeLimit,
    Interrupted,
}

/// What survives between runs (the JSON half of a checkpoint).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    pub step: usize,
    pub tokens: usize,
    pub seconds: f64,
    /// Training loss per update.
    pub losses: Vec<(usize, f64)>,
    /// Held-out loss per evaluation (step 0 is the base model).
    pub evals: Vec<(usize, f64)>,
    pub best: Option<(usize, f64)>,
    pub bad_evals: usize,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub history: History,
    pub ending: Ending,
    pub resumed_from: Option<usize>,
}

/// Fails unless every adapter tensor received a gradient. `B` starts at zero, so `A`'s
/// gradient is zero until `B` moves; `B`'s never is unless the graph was cut.
pub fn check_gradients(lora: &Lora, grads: &GradStore) -> Result<Vec<Tensor>> {
    for (layer, m) in lora.layers.iter().enumerate() {
        for (t, p) in m {
            let b_zero =
                p.b.as_tensor()
                    .abs()?
                    .max_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?
                    == 0.0;
            for (part, var) in [('a', &p.a), ('b', &p.b)] {
                let name = Lora::name(layer, *t, part);
                let g = grads
                    .get(var.as_tensor())
                    .ok_or_else(|| TuneError::NoGradient(name.clone()))?;
                let size = g
                    .abs()?
                    .max_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?;
                let may_be_zero = part == 'a' && b_zero;
                if !size.is_finite() || (size == 0.0 && !may_be_zero) {
                    return Err(TuneError::NoGradient(name));
                }
            }
        }
    }
    Ok(lora
        .vars()
        .iter()
        .map(|(_, v)| grads.get(v.as_tensor()).expect("checked above").clone())
        .collect())
}

/// Token-weighted mean loss over `samples` (no dropout, no gradient).
pub fn held_out_loss(model: &TrainModel, lora: Option<&Lora>, samples: &[Sample]) -> Result<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for s in samples {
        let k = s.targets();
        if k == 0 {
            continue;
        }
        let l = model.loss(&s.tokens, s.target_from, lora, Ops::Fused, None)?;
        sum += l.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? * k as f64;
        n += k;
    }
    Ok(if n == 0 { f64::NAN } else { sum / n as f64 })
}

/// Which sample the `i`-th micro-step uses: a fresh shuffle each epoch, from the seed.
fn sample_index(seed: u64, n: usize, i: usize) -> usize {
    let epoch = i / n;
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    order[i % n]
}

const CHECKPOINT: &str = "checkpoint.safetensors";
const CHECKPOINT_JSON: &str = "checkpoint.json";
pub const BEST: &str = "best.safetensors";

#[derive(Serialize, Deserialize)]
struct CheckpointMeta {
    config: TrainConfig,
    adam_t: usize,
    history: History,
}

fn write_checkpoint(
    dir: &Path,
    lora: &Lora,
    opt: &AdamW,
    cfg: &TrainConfig,
    h: &History,
) -> Result<()> {
    let vars = lora.vars();
    let mut all = lora.tensors()?;
    all.extend(opt.state(&vars));
    let path = dir.join(CHECKPOINT);
    let tmp = dir.join("checkpoint.safetensors.tmp");
    candle_core::safetensors::save(&all, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    let meta = CheckpointMeta {
        config: cfg.clone(),
        adam_t: opt.t,
        history: h.clone(),
    };
    let json = dir.join(CHECKPOINT_JSON);
    let tmp = dir.join("checkpoint.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&meta).expect("plain data"))
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, &json).map_err(io(&json))
}

fn read_checkpoint(
    dir: &Path,
    lora: &Lora,
    opt: &mut AdamW,
    cfg: &TrainConfig,
) -> Result<Option<History>> {
    let json = dir.join(CHECKPOINT_JSON);
    if !json.exists() {
        return Ok(None);
    }
    let bad = |detail: String| TuneError::BadAdapter {
        path: json.clone(),
        detail,
    };
    let bytes = std::fs::read(&json).map_err(io(&json))?;
    let meta: CheckpointMeta = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if meta.config.seed != cfg.seed || meta.config.accumulate != cfg.accumulate {
        return Err(bad(format!(
            "it was written with seed {} and accumulate {}; resume with the same settings or choose another output directory",
            meta.config.seed, meta.config.accumulate
        )));
    }
    let path = dir.join(CHECKPOINT);
    let tensors =
        candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| TuneError::BadAdapter {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    lora.assign(&tensors, &path)?;
    if let Some(missing) = opt.restore(&lora.vars(), &tensors, meta.adam_t)? {
        return Err(bad(format!("optimizer state {missing} is missing")));
    }
    Ok(Some(meta.history))
}

/// Training samples and the held-out ones that judge them.
#[derive(Debug, Clone, Copy)]
pub struct Split<'a> {
    pub train: &'a [Sample],
    pub held_out: &'a [Sample],
}

/// Trains `lora` on `data.train`. With `dir`, checkpoints go there and an existing checkpoint is
/// resumed; the best adapter by held-out loss is what `lora` holds at the end.
pub fn train(
    model: &TrainModel,
    lora: &Lora,
    data: Split,
    cfg: &TrainConfig,
    dir: Option<&Path>,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome> {
    let Split { train, held_out } = data;
    if train.is_empty() {
        return Err(TuneError::TooLittleData {
            what: "no training samples".into(),
        });
    }
    if cfg.accumulate == 0 || cfg.steps == 0 {
        return Err(TuneError::Invalid(
            "steps and accumulate must be at least 1".into(),
        ));
    }
    let vars = lora.vars();
    let mut opt = AdamW::new(
        &vars,
        AdamParams {
            weight_decay: cfg.weight_decay,
            ..AdamParams::default()
        },
    )?;
    let sched = Schedule {
        peak: cfg.lr,
        warmup: cfg.warmup,
        total: cfg.steps,
    };
    let mut history = History::default();
    let mut resumed_from = None;
    if let Some(d) = dir {
        std::fs::create_dir_all(d).map_err(io(d))?;
        if let Some(h) = read_checkpoint(d, lora, &mut opt, cfg)? {
            resumed_from = Some(h.step);
            history = h;
        }
    }
    let evaluating = !held_out.is_empty();
    if evaluating && history.evals.is_empty() {
        let base = held_out_loss(model, Some(lora), held_out)?;
        history.evals.push((history.step, base));
        history.best = Some((history.step, base));
    }
    let started = Instant::now();
    let seconds_before = history.seconds;
    let tokens_before = history.tokens;
    let mut ending = Ending::Finished;
    while history.step < cfg.steps {
        if stop.load(Ordering::Relaxed) {
            ending = Ending::Interrupted;
            break;
        }
        if cfg
            .max_seconds
            .is_some_and(|m| started.elapsed().as_secs_f64() >= m)
        {
            ending = Ending::TimeLimit;
            break;
        }
        let step = history.step;
        let mut acc: Option<Vec<Tensor>> = None;
        let mut loss_sum = 0.0;
        for j in 0..cfg.accumulate {
            let i = step * cfg.accumulate + j;
            let s = &train[sample_index(cfg.seed, train.len(), i)];
            let seed = cfg.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            let loss = model.loss(
                &s.tokens,
                s.target_from,
                Some(lora),
                Ops::Differentiable,
                Some(seed),
            )?;
            let value = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            if !value.is_finite() {
                return Err(TuneError::NotFinite { step });
            }
            loss_sum += value;
            let grads = check_gradients(lora, &loss.backward()?)?;
            acc = Some(match acc {
                None => grads,
                Some(a) => a
                    .iter()
                    .zip(&grads)
                    .map(|(x, y)| x + y)
                    .collect::<candle_core::Result<_>>()?,
            });
            history.tokens += s.tokens.len();
        }
        let grads: Vec<Tensor> = acc
            .expect("accumulate ≥ 1")
            .iter()
            .map(|g| g / cfg.accumulate as f64)
            .collect::<candle_core::Result<_>>()?;
        let lr = sched.lr(step);
        opt.step(&vars, &grads, lr)?;
        history.step += 1;
        let loss = loss_sum / cfg.accumulate as f64;
        history.losses.push((history.step, loss));
        history.seconds = seconds_before + started.elapsed().as_secs_f64();
        let mut held = None;
        let last = history.step == cfg.steps;
        if evaluating && ((cfg.eval_every > 0 && history.step % cfg.eval_every == 0) || last) {
            let l = held_out_loss(model, Some(lora), held_out)?;
            held = Some(l);
            history.evals.push((history.step, l));
            if history.best.is_none_or(|(_, b)| l < b) {
                history.best = Some((history.step, l));
                history.bad_evals = 0;
                if let Some(d) = dir {
                    lora.save(&d.join(BEST))?;
                }
            } else {
                history.bad_evals += 1;
            }
        }
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        progress(&Progress {
            step: history.step,
            steps: cfg.steps,
            loss,
            lr,
            tokens: history.tokens,
            tokens_per_s: (history.tokens - tokens_before) as f64 / elapsed,
            held_out: held,
        });
        if let Some(d) = dir {
            if cfg.checkpoint_every > 0 && history.step % cfg.checkpoint_every == 0 || last {
                write_checkpoint(d, lora, &opt, cfg, &history)?;
            }
        }
        if cfg.patience > 0 && history.bad_evals >= cfg.patience {
            ending = Ending::EarlyStopped;
            break;
        }
    }
    if let Some(d) = dir {
        write_checkpoint(d, lora, &opt, cfg, &history)?;
        // The best adapter by held-out loss is the result, unless the base model was best.
        let best = d.join(BEST);
        if best.exists() && history.best.is_some_and(|(s, _)| s > 0) {
            lora.load_into(&best)?;
        }
    }
    Ok(Outcome {
        history,
        ending,
        resumed_from,
    })
}
