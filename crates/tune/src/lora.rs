//! Low-rank adapters: for a frozen weight `W` (`[out, in]`), the trained update is
//! `(alpha / rank) · B · A` with `A: [rank, in]` and `B: [out, rank]`. `B` starts at zero, so
//! an untrained adapter leaves the model exactly as it was.

use crate::error::{io, Result, TuneError};
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A projection of a transformer block that can carry an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    /// The tensor name in a GGUF block (`blk.N.{name}.weight`).
    pub fn gguf_name(self) -> &'static str {
        match self {
            Target::Q => "attn_q",
            Target::K => "attn_k",
            Target::V => "attn_v",
            Target::O => "attn_output",
            Target::Gate => "ffn_gate",
            Target::Up => "ffn_up",
            Target::Down => "ffn_down",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let t = match s.trim() {
            "q" | "attn_q" => Target::Q,
            "k" | "attn_k" => Target::K,
            "v" | "attn_v" => Target::V,
            "o" | "attn_output" => Target::O,
            "gate" | "ffn_gate" => Target::Gate,
            "up" | "ffn_up" => Target::Up,
            "down" | "ffn_down" => Target::Down,
            _ => return None,
        };
        Some(t)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f32,
    pub targets: Vec<Target>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            dropout: 0.05,
            targets: Target::ALL.to_vec(),
        }
    }
}

impl LoraConfig {
    pub fn validate(&self) -> Result<()> {
        if self.rank == 0 || self.rank > 256 {
            return Err(TuneError::Invalid(format!("rank {} (1 to 256)", self.rank)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(TuneError::Invalid(format!(
                "dropout {} (0 to <1)",
                self.dropout
            )));
        }
        if self.targets.is_empty() {
            return Err(TuneError::Invalid("no target modules".into()));
        }
        Ok(())
    }

    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }
}

/// One adapted projection.
pub struct Pair {
    pub a: Var,
    pub b: Var,
}

/// Every adapter of a model, by layer and target.
pub struct Lora {
    pub config: LoraConfig,
    pub layers: Vec<BTreeMap<Target, Pair>>,
}

/// `(in, out)` features of `target` in `layer`.
pub type Dims<'a> = &'a dyn Fn(usize, Target) -> (usize, usize);

impl Lora {
    /// Fresh adapters: `A` uniform in ±1/√in (as PEFT does), `B` zero.
    pub fn new(
        config: LoraConfig,
        n_layer: usize,
        dims: Dims,
        seed: u64,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        config.validate()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut layers = Vec::with_capacity(n_layer);
        for layer in 0..n_layer {
            let mut m = BTreeMap::new();
            for &t in &config.targets {
                let (inp, out) = dims(layer, t);
                let bound = 1.0 / (inp as f64).sqrt();
                let a: Vec<f64> = (0..config.rank * inp)
                    .map(|_| rng.gen_range(-bound..bound))
                    .collect();
                let a = Tensor::from_vec(a, (config.rank, inp), device)?.to_dtype(dtype)?;
                let b = Tensor::zeros((out, config.rank), dtype, device)?;
                m.insert(
                    t,
                    Pair {
                        a: Var::from_tensor(&a)?,
                        b: Var::from_tensor(&b)?,
                    },
                );
            }
            layers.push(m);
        }
        Ok(Self { config, layers })
    }

    pub fn name(layer: usize, t: Target, part: char) -> String {
        format!("blk.{layer}.{}.lora_{part}", t.gguf_name())
    }

    /// Every trainable tensor with its name, in a fixed order.
    pub fn vars(&self) -> Vec<(String, &Var)> {
        let mut out = Vec::new();
        for (layer, m) in self.layers.iter().enumerate() {
            for (t, p) in m {
                out.push((Self::name(layer, *t, 'a'), &p.a));
                out.push((Self::name(layer, *t, 'b'), &p.b));
            }
        }
        out
    }

    pub fn parameter_count(&self) -> usize {
        self.vars().iter().map(|(_, v)| v.elem_count()).sum()
    }

    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut m = HashMap::new();
        for (n, v) in self.vars() {
            m.insert(n, v.as_tensor().to_dtype(DType::F32)?);
        }
        Ok(m)
    }

    /// Overwrites every tensor from `tensors` (same names and shapes, as `tensors()` wrote).
    pub fn assign(&self, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
        for (n, v) in self.vars() {
            let t = tensors.get(&n).ok_or_else(|| TuneError::BadAdapter {
                path: path.to_path_buf(),
                detail: format!("tensor {n} is missing"),
            })?;
            if t.dims() != v.dims() {
                return Err(TuneError::BadAdapter {
                    path: path.to_path_buf(),
                    detail: format!(
                        "tensor {n} has shape {:?}, expected {:?}",
                        t.dims(),
                        v.dims()
                    ),
                });
            }
            v.set(&t.to_dtype(v.dtype())?.to_device(v.device())?)?;
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        candle_core::safetensors::save(&self.tensors()?, &tmp)?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }

    pub fn load_into(&self, path: &Path) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            TuneError::BadAdapter {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
        })?;
        self.assign(&tensors, path)
    }

    /// `scale · B · A`, the change this adapter makes to the weight (`[out, in]`, f32).
    pub fn delta(&self, layer: usize, t: Target) -> Result<Option<Tensor>> {
        let Some(p) = self.layers.get(layer).and_then(|m| m.get(&t)) else {
            return Ok(None);
        };
        let d = p.b.as_tensor().matmul(p.a.as_tensor())?;
        Ok(Some((d * self.config.scale())?.to_dtype(DType::F32)?))
    }
}
