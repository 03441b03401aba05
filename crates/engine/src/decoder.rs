//! Our decoder-only transformer over candle: the qwen2 and llama families (they differ in
//! attention biases, tied output weights and the rotary layout, all read from the file).

use crate::adapter::{Adapter, LowRank, PROJECTIONS};
use crate::attention::{attend, AttnShape};
use crate::config::{ModelConfig, RopeStyle};
use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::kv::KvCache;
use crate::qmat::QMat;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Storage, Tensor};

/// Rows per forward pass during prefill: bounds the attention scores to
/// `heads × CHUNK × context` floats however long the prompt is.
pub const PREFILL_CHUNK: usize = 256;

/// A weight matrix. On the CPU, Q5_0 and Q8_0 go through our own kernels (`qmat`): for
/// several rows (prefill) they reuse each unpacked weight block for several rows, and for one
/// row (decoding) Q5_0 streams at memory speed where candle's Q5_0 code is scalar. Other
/// formats (Q4_K, Q6_K) and other devices use candle's.
struct Weight {
    candle: QMatMul,
    own: Option<QMat>,
}

impl Weight {
    fn new(t: QTensor, dev: &Device, own_kernels: bool) -> Result<Self> {
        let t = std::sync::Arc::new(t);
        let own = if own_kernels && dev.is_cpu() {
            QMat::from_qtensor(t.clone())
        } else {
            None
        };
        Ok(Self {
            candle: QMatMul::from_arc(t)?,
            own,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.own {
            Some(w) => {
                let (b, t, k) = x.dims3()?;
                let xs = x.flatten_all()?.to_vec1::<f32>()?;
                debug_assert_eq!(k, w.cols());
                let out = w.matmul(&xs, b * t);
                Ok(Tensor::from_vec(out, (b, t, w.rows()), x.device())?)
            }
            _ => Ok(self.candle.forward(x)?),
        }
    }
}

struct Linear {
    w: Weight,
    b: Option<Tensor>,
    /// `(in, out)` features.
    dims: (usize, usize),
    /// An unmerged adapter's update, added to the output.
    delta: Option<LowRank>,
}

impl Linear {
    fn load(f: &mut GgufFile, name: &str, dev: &Device, own: bool) -> Result<Self> {
        let t = f.tensor(&format!("{name}.weight"), dev)?;
        let (out, inp) = t.shape().dims2()?;
        let w = Weight::new(t, dev, own)?;
        let bias_name = format!("{name}.bias");
        let b = if f.has_tensor(&bias_name) {
            Some(f.tensor(&bias_name, dev)?.dequantize(dev)?)
        } else {
            None
        };
        Ok(Self {
            w,
            b,
            dims: (inp, out),
            delta: None,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.w.forward(x)?;
        if let Some(b) = &self.b {
            y = y.broadcast_add(b)?;
        }
        if let Some(d) = &self.delta {
            y = (y + d.forward(x)?)?;
        }
        Ok(y)
    }
}

struct Block {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Block {
    fn projection(&mut self, gguf_name: &str) -> Option<&mut Linear> {
        Some(match gguf_name {
            "attn_q" => &mut self.q,
            "attn_k" => &mut self.k,
            "attn_v" => &mut self.v,
            "attn_output" => &mut self.o,
            "ffn_gate" => &mut self.gate,
            "ffn_up" => &mut self.up,
            "ffn_down" => &mut self.down,
            _ => return None,
        })
    }
}

pub struct Decoder {
    cfg: ModelConfig,
    embed: QTensor,
    blocks: Vec<Block>,
    out_norm: Tensor,
    output: Weight,
    cos: Tensor,
    sin: Tensor,
    device: Device,
    /// Our CPU attention (`attention.rs`) and feed-forward activation (`fastmath.rs`)
    /// instead of candle's ops.
    own_attention: bool,
}

fn norm(f: &mut GgufFile, name: &str, dev: &Device) -> Result<Tensor> {
    Ok(f.tensor(name, dev)?.dequantize(dev)?)
}

impl Decoder {
    /// Loads every weight of `f` onto `device`. `max_positions` bounds the rotary tables;
    /// `own` selects our CPU kernels where they apply (candle's otherwise, e.g. to compare).
    pub fn load(
        f: &mut GgufFile,
        cfg: &ModelConfig,
        device: &Device,
        max_positions: usize,
        own: bool,
    ) -> Result<Self> {
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = format!("blk.{i}");
            blocks.push(Block {
                attn_norm: norm(f, &format!("{p}.attn_norm.weight"), device)?,
                q: Linear::load(f, &format!("{p}.attn_q"), device, own)?,
                k: Linear::load(f, &format!("{p}.attn_k"), device, own)?,
                v: Linear::load(f, &format!("{p}.attn_v"), device, own)?,
                o: Linear::load(f, &format!("{p}.attn_output"), device, own)?,
                ffn_norm: norm(f, &format!("{p}.ffn_norm.weight"), device)?,
                gate: Linear::load(f, &format!("{p}.ffn_gate"), device, own)?,
                up: Linear::load(f, &format!("{p}.ffn_up"), device, own)?,
                down: Linear::load(f, &format!("{p}.ffn_down"), device, own)?,
            });
        }
        let embed = f.tensor("token_embd.weight", device)?;
        // Small models tie the output projection to the embedding table.
        let output_name = if f.has_tensor("output.weight") {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        let output = Weight::new(f.tensor(output_name, device)?, device, own)?;
        let out_norm = norm(f, "output_norm.weight", device)?;
        let (cos, sin) = rope_tables(cfg, max_positions, device)?;
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            blocks,
            out_norm,
            output,
            cos,
            sin,
            device: device.clone(),
            own_attention: own && device.is_cpu(),
        })
    }

    /// What the KV cache stores: f16 for our attention (half the memory and the bytes read
    /// per token), f32 for candle's ops.
    pub fn kv_dtype(&self) -> DType {
        if self.own_attention {
            DType::F16
        } else {
            DType::F32
        }
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Replaces the unmerged adapter (`None`: the base model alone). Every update is checked
    /// against the model before any is applied, so a bad adapter leaves the model as it was.
    pub fn set_adapter(&mut self, adapter: Option<&Adapter>) -> Result<()> {
        let mut placed = Vec::new();
        if let Some(a) = adapter {
            for ((layer, name), delta) in a.iter() {
                let n_layer = self.blocks.len();
                let block = self.blocks.get_mut(*layer).ok_or_else(|| {
                    EngineError::Adapter(format!(
                        "it adapts block {layer} but the model has {n_layer} blocks"
                    ))
                })?;
                let linear = block.projection(name).expect("names are checked on insert");
                if delta.dims() != linear.dims {
                    return Err(EngineError::Adapter(format!(
                        "blk.{layer}.{name}: the adapter is {:?} (in, out) but the model's \
                         projection is {:?}; it was trained for another model",
                        delta.dims(),
                        linear.dims
                    )));
                }
                placed.push((*layer, name.as_str(), delta.to_device(&self.device)?));
            }
        }
        for b in &mut self.blocks {
            for name in PROJECTIONS {
                b.projection(name).expect("known name").delta = None;
            }
        }
        for (layer, name, delta) in placed {
            self.blocks[layer]
                .projection(name)
                .expect("known name")
                .delta = Some(delta);
        }
        Ok(())
    }

    /// Runs `tokens` at the positions after what `cache` holds, appends their keys and values,
    /// and returns the logits of the last token only (a `[vocab]` f32 tensor).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let t = tokens.len();
        let pos = cache.len();
        let cfg = &self.cfg;
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embed.embedding(&ids)?.unsqueeze(0)?;
        let cos = self.cos.narrow(0, pos, t)?;
        let sin = self.sin.narrow(0, pos, t)?;
        let groups = cfg.n_head / cfg.n_kv_head;
        let mask = if t > 1 && !self.own_attention {
            Some(causal_mask(groups, t, pos, &self.device)?)
        } else {
            None
        };
        let scale = 1.0 / (cfg.head_dim as f64).sqrt();
        for (layer, b) in self.blocks.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &b.attn_norm, cfg.rms_eps as f32)?;
            let heads = |y: Tensor, n: usize| -> Result<Tensor> {
                Ok(y.reshape((1, t, n, cfg.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let q = heads(b.q.forward(&h)?, cfg.n_head)?;
            let k = heads(b.k.forward(&h)?, cfg.n_kv_head)?;
            let v = heads(b.v.forward(&h)?, cfg.n_kv_head)?;
            let (q, k) = match cfg.rope_style {
                RopeStyle::Halves => (
                    candle_nn::rotary_emb::rope(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope(&k, &cos, &sin)?,
                ),
                RopeStyle::Interleaved => (
                    candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?,
                ),
            };
            let (k_all, v_all) = cache.write(layer, &k, &v)?;
            let y = if self.own_attention {
                self.cpu_attention(&q, cache, layer, t, scale)?
            } else {
                // Grouped-query attention without copying keys per head: the query heads
                // that share a key head are stacked as extra rows of that key head.
                let q = q.reshape((1, cfg.n_kv_head, groups * t, cfg.head_dim))?;
                // The cache's views are strided (its capacity, not its length, sets the batch
                // stride); candle's CUDA product takes only contiguous batches, the CPU's any.
                let (k_all, v_all) = if self.device.is_cpu() {
                    (k_all, v_all)
                } else {
                    (k_all.contiguous()?, v_all.contiguous()?)
                };
                let mut att = (q.matmul(&k_all)? * scale)?;
                if let Some(m) = &mask {
                    att = att.broadcast_add(m)?;
                }
                let att = candle_nn::ops::softmax_last_dim(&att)?;
                att.matmul(&v_all)?
                    .reshape((1, cfg.n_head, t, cfg.head_dim))?
                    .transpose(1, 2)?
                    .reshape((1, t, cfg.n_head * cfg.head_dim))?
            };
            x = (x + b.o.forward(&y)?)?;
            let h = candle_nn::ops::rms_norm(&x, &b.ffn_norm, cfg.rms_eps as f32)?;
            let (gate, up) = (b.gate.forward(&h)?, b.up.forward(&h)?);
            let ff = if self.own_attention {
                crate::fastmath::silu_mul(&gate, &up)?
            } else {
                (candle_nn::ops::silu(&gate)? * up)?
            };
            x = (x + b.down.forward(&ff)?)?;
        }
        cache.advance(t);
        let last = x.narrow(1, t - 1, 1)?;
        let last = candle_nn::ops::rms_norm(&last, &self.out_norm, cfg.rms_eps as f32)?;
        let logits = self.output.forward(&last)?;
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?)
    }
}

impl Decoder {
    /// `q`: `[1, n_head, t, head_dim]`; the cache already holds this call's keys and values.
    fn cpu_attention(
        &self,
        q: &Tensor,
        cache: &KvCache,
        layer: usize,
        t: usize,
        scale: f64,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let qs = q.flatten_all()?.to_vec1::<f32>()?;
        let (k, v) = cache.buffers(layer);
        let (ks, kl) = k.storage_and_layout();
        let (vs, vl) = v.storage_and_layout();
        let (Storage::Cpu(kc), Storage::Cpu(vc)) = (&*ks, &*vs) else {
            unreachable!("own attention is only chosen on the CPU")
        };
        let shape = AttnShape {
            n_head: cfg.n_head,
            n_kv_head: cfg.n_kv_head,
            head_dim: cfg.head_dim,
            capacity: cache.capacity(),
            key_stride: cache.key_stride(),
            pos: cache.len(),
            t,
        };
        let out = attend(
            &qs,
            &kc.as_slice::<half::f16>()?[kl.start_offset()..],
            &vc.as_slice::<half::f16>()?[vl.start_offset()..],
            shape,
            scale as f32,
        );
        Ok(Tensor::from_vec(
            out,
            (1, t, cfg.n_head * cfg.head_dim),
            &self.device,
        )?)
    }
}

pub fn rope_tables(cfg: &ModelConfig, n: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let half = cfg.head_dim / 2;
    let inv: Vec<f32> = (0..half)
        .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f32 / cfg.head_dim as f32))
        .collect();
    let inv = Tensor::from_vec(inv, (1, half), dev)?;
    let pos = Tensor::arange(0u32, n as u32, dev)?
        .to_dtype(DType::F32)?
        .reshape((n, 1))?;
    let freqs = pos.broadcast_mul(&inv)?;
    Ok((freqs.cos()?.contiguous()?, freqs.sin()?.contiguous()?))
}

/// Additive mask for `groups` stacked query heads of `t` rows each, starting at `pos`.
pub fn causal_mask(groups: usize, t: usize, pos: usize, dev: &Device) -> Result<Tensor> {
    let total = pos + t;
    let mut m = vec![0f32; groups * t * total];
    for g in 0..groups {
        for i in 0..t {
            let row = (g * t + i) * total;
            for v in &mut m[row + pos + i + 1..row + total] {
                *v = f32::NEG_INFINITY;
            }
        }
    }
    Ok(Tensor::from_vec(m, (groups * t, total), dev)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_hides_only_future_positions() {
        let m = causal_mask(2, 3, 2, &Device::Cpu).unwrap();
        let m: Vec<Vec<f32>> = m.to_vec2().unwrap();
        // Row i of each group may see positions 0..=pos+i.
        for g in 0..2 {
            for i in 0..3 {
                let row = &m[g * 3 + i];
                for (j, v) in row.iter().enumerate() {
                    assert_eq!(*v == 0.0, j <= 2 + i, "g={g} i={i} j={j}");
                }
            }
        }
    }
}
