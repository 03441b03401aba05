//! The model's forward pass for training: the engine's architecture (qwen2 / llama from the
//! GGUF metadata, the same rotary tables), over the whole sequence at once, with adapters.
//!
//! One definition serves both kinds of ops: `Ops::Fused` uses candle's fused kernels (what
//! inference uses), `Ops::Differentiable` their composed versions. The fused ones have no
//! backward pass and cut the graph without an error, so training must use the composed ones,
//! and `train::check_gradients` proves at every step that the graph reached every adapter.

use crate::error::Result;
use crate::frozen::Frozen;
use crate::lora::{Lora, Target};
use candle_core::quantized::QTensor;
use candle_core::{DType, Device, Tensor, D};
use moat_engine::config::{ModelConfig, RopeStyle};
use moat_engine::gguf::GgufFile;
use moat_engine::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ops {
    Fused,
    Differentiable,
}

struct Lin {
    w: Frozen,
    b: Option<Tensor>,
}

struct Block {
    attn_norm: Tensor,
    ffn_norm: Tensor,
    /// Indexed like `Target::ALL`.
    lins: Vec<Lin>,
}

pub struct TrainModel {
    pub cfg: ModelConfig,
    pub tokenizer: Tokenizer,
    embed: QTensor,
    blocks: Vec<Block>,
    out_norm: Tensor,
    output: Frozen,
    cos: Tensor,
    sin: Tensor,
    pub device: Device,
    pub dtype: DType,
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Dequantize the frozen weights to this type and use candle's matmul (the f64
    /// gradient check); `None` keeps them quantized on the CPU.
    pub dense: Option<DType>,
    /// Longest sequence the rotary tables cover.
    pub max_positions: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dense: None,
            max_positions: 4096,
        }
    }
}

fn index(t: Target) -> usize {
    Target::ALL
        .iter()
        .position(|x| *x == t)
        .expect("every target is in ALL")
}

impl TrainModel {
    pub fn load(path: &Path, device: &Device, opts: &LoadOptions) -> Result<Self> {
        let mut f = GgufFile::open(path)?;
        let cfg = ModelConfig::from_gguf(&f.content)?;
        let tokenizer = Tokenizer::from_gguf(&f.content)?;
        let dtype = opts.dense.unwrap_or(DType::F32);
        let plain = |f: &mut GgufFile, name: &str| -> Result<Tensor> {
            Ok(f.tensor(name, device)?
                .dequantize(device)?
                .to_dtype(dtype)?)
        };
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let mut lins = Vec::new();
            for t in Target::ALL {
                let name = format!("blk.{i}.{}", t.gguf_name());
                let w = Frozen::new(
                    f.tensor(&format!("{name}.weight"), device)?,
                    device,
                    opts.dense,
                )?;
                let bias = format!("{name}.bias");
                let b = if f.has_tensor(&bias) {
                    Some(plain(&mut f, &bias)?)
                } else {
                    None
                };
                lins.push(Lin { w, b });
            }
            blocks.push(Block {
                attn_norm: plain(&mut f, &format!("blk.{i}.attn_norm.weight"))?,
                ffn_norm: plain(&mut f, &format!("blk.{i}.ffn_norm.weight"))?,
                lins,
            });
        }
        let embed = f.tensor("token_embd.weight", device)?;
        let output_name = if f.has_tensor("output.weight") {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        let output = Frozen::new(f.tensor(output_name, device)?, device, opts.dense)?;
        let out_norm = plain(&mut f, "output_norm.weight")?;
        let (cos, sin) = moat_engine::rope_tables(&cfg, opts.max_positions, device)?;
        Ok(Self {
            cos: cos.to_dtype(dtype)?,
            sin: sin.to_dtype(dtype)?,
            cfg,
            tokenizer,
            embed,
            blocks,
            out_norm,
            output,
            device: device.clone(),
            dtype,
        })
    }

    /// The longest sequence the rotary tables cover.
    pub fn max_positions(&self) -> usize {
        self.cos.dim(0).unwrap_or(0)
    }

    /// `(in, out)` features of a target projection.
    pub fn dims(&self, _layer: usize, t: Target) -> (usize, usize) {
        let c = &self.cfg;
        let kv = c.n_kv_head * c.head_dim;
        let q = c.n_head * c.head_dim;
        match t {
            Target::Q => (c.n_embd, q),
            Target::K | Target::V => (c.n_embd, kv),
            Target::O => (q, c.n_embd),
            Target::Gate | Target::Up => (c.n_embd, c.n_ff),
            Target::Down => (c.n_ff, c.n_embd),
        }
    }

    /// Hidden states after the final norm, `[t, n_embd]`. `dropout_seed` turns adapter
    /// dropout on (training) with a mask that depends only on the seed, so a resumed run
    /// draws the same masks.
    pub fn hidden(
        &self,
        tokens: &[u32],
        lora: Option<&Lora>,
        ops: Ops,
        dropout_seed: Option<u64>,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let t = tokens.len();
        let eps = cfg.rms_eps as f32;
        let norm = |x: &Tensor, w: &Tensor| -> Result<Tensor> {
            Ok(match ops {
                Ops::Fused => candle_nn::ops::rms_norm(x, w, eps)?,
                Ops::Differentiable => candle_nn::ops::rms_norm_slow(x, w, eps)?,
            })
        };
        let mut rng = dropout_seed.map(StdRng::seed_from_u64);
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self
            .embed
            .embedding(&ids)?
            .to_dtype(self.dtype)?
            .unsqueeze(0)?;
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        let groups = cfg.n_head / cfg.n_kv_head;
        let mask = moat_engine::causal_mask(groups, t, 0, &self.device)?.to_dtype(self.dtype)?;
        let scale = 1.0 / (cfg.head_dim as f64).sqrt();
        for (layer, b) in self.blocks.iter().enumerate() {
            let mut proj = |target: Target, h: &Tensor| -> Result<Tensor> {
                let lin = &b.lins[index(target)];
                let mut y = lin.w.forward(h)?;
                if let Some(bias) = &lin.b {
                    y = y.broadcast_add(bias)?;
                }
                if let Some(l) = lora {
                    if let Some(p) = l.layers[layer].get(&target) {
                        let mut hx = h.clone();
                        if let (Some(r), true) = (rng.as_mut(), l.config.dropout > 0.0) {
                            hx = dropout(&hx, l.config.dropout, r)?;
                        }
                        let low = hx.broadcast_matmul(&p.a.as_tensor().t()?)?;
                        let up = low.broadcast_matmul(&p.b.as_tensor().t()?)?;
                        y = (y + (up * l.config.scale())?)?;
                    }
                }
                Ok(y)
            };
            let h = norm(&x, &b.attn_norm)?;
            let heads = |y: Tensor, n: usize| -> Result<Tensor> {
                Ok(y.reshape((1, t, n, cfg.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let q = heads(proj(Target::Q, &h)?, cfg.n_head)?;
            let k = heads(proj(Target::K, &h)?, cfg.n_kv_head)?;
            let v = heads(proj(Target::V, &h)?, cfg.n_kv_head)?;
            let rope = |x: &Tensor| -> Result<Tensor> {
                Ok(match (cfg.rope_style, ops) {
                    (RopeStyle::Halves, Ops::Fused) => candle_nn::rotary_emb::rope(x, &cos, &sin)?,
                    (RopeStyle::Halves, Ops::Differentiable) => {
                        candle_nn::rotary_emb::rope_slow(x, &cos, &sin)?
                    }
                    (RopeStyle::Interleaved, Ops::Fused) => {
                        candle_nn::rotary_emb::rope_i(x, &cos, &sin)?
                    }
                    (RopeStyle::Interleaved, Ops::Differentiable) => {
                        candle_nn::rotary_emb::rope_i_slow(x, &cos, &sin)?
                    }
                })
            };
            let (q, k) = (rope(&q)?, rope(&k)?);
            // The query heads sharing a key head are stacked as extra rows of it.
            let q = q.reshape((1, cfg.n_kv_head, groups * t, cfg.head_dim))?;
            let att = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&mask)?;
            let att = match ops {
                Ops::Fused => candle_nn::ops::softmax_last_dim(&att)?,
                Ops::Differentiable => candle_nn::ops::softmax(&att, D::Minus1)?,
            };
            let y = att
                .matmul(&v)?
                .reshape((1, cfg.n_head, t, cfg.head_dim))?
                .transpose(1, 2)?
                .reshape((1, t, cfg.n_head * cfg.head_dim))?;
            x = (x + proj(Target::O, &y)?)?;
            let h = norm(&x, &b.ffn_norm)?;
            let ff = (candle_nn::ops::silu(&proj(Target::Gate, &h)?)? * proj(Target::Up, &h)?)?;
            x = (x + proj(Target::Down, &ff)?)?;
        }
        Ok(norm(&x, &self.out_norm)?.squeeze(0)?)
    }

    /// Logits (`[positions, vocab]`) at the given rows of `hidden`: the output projection
    /// is the largest matrix of a small model, so only the rows that are scored pay for it.
    pub fn logits_at(&self, hidden: &Tensor, positions: &[usize]) -> Result<Tensor> {
        let idx: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        let idx = Tensor::new(idx.as_slice(), &self.device)?;
        let rows = hidden.index_select(&idx, 0)?.contiguous()?;
        let rows = if matches!(self.output, Frozen::Quantized(_)) {
            rows.to_dtype(DType::F32)?
        } else {
            rows
        };
        self.output.forward(&rows)
    }

    /// Logits after the last of `tokens` (`[vocab]`, f32).
    pub fn last_logits(&self, tokens: &[u32], lora: Option<&Lora>, ops: Ops) -> Result<Vec<f32>> {
        let h = self.hidden(tokens, lora, ops, None)?;
        let logits = self.logits_at(&h, &[tokens.len().saturating_sub(1)])?;
        Ok(logits
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?)
    }

    /// Mean cross-entropy of predicting `tokens[from..]`, each from what precedes it.
    pub fn loss(
        &self,
        tokens: &[u32],
        from: usize,
        lora: Option<&Lora>,
        ops: Ops,
        dropout_seed: Option<u64>,
    ) -> Result<Tensor> {
        let from = from.max(1);
        if from >= tokens.len() {
            return Err(crate::error::TuneError::Invalid(format!(
                "a sample of {} tokens has nothing to predict from {from}",
                tokens.len()
            )));
        }
        let hidden = self.hidden(tokens, lora, ops, dropout_seed)?;
        let positions: Vec<usize> = (from - 1..tokens.len() - 1).collect();
        let logits = self.logits_at(&hidden, &positions)?;
        let targets = Tensor::new(&tokens[from..], &self.device)?;
        Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
    }
}

/// Inverted dropout with a mask from `rng`.
fn dropout(x: &Tensor, p: f32, rng: &mut StdRng) -> Result<Tensor> {
    let keep = 1.0 / (1.0 - p as f64);
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| {
            if rng.gen::<f32>() < p {
                0.0
            } else {
                keep as f32
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    Ok((x * mask)?)
}
