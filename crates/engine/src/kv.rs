//! A preallocated key/value cache that can be cut back to a shared prefix, snapshotted and
//! restored. This is what lets a request that shares its first tokens with the previous one
//! prefill only its new tail (as llama.cpp's `cache_prompt` does).

use crate::config::ModelConfig;
use crate::error::{EngineError, Result};
use candle_core::{DType, Device, Tensor};

/// Keys are stored transposed, `[1, n_kv_head, head_dim, capacity]`, so that scoring one query
/// against many keys reads each feature's keys contiguously (no horizontal sums); values are
/// `[1, n_kv_head, capacity, head_dim]`. The position axis of each is `K_POS` / `V_POS`.
const K_POS: usize = 3;
const V_POS: usize = 2;
/// Extra positions per key row: with a power-of-two capacity, rows 16 KB apart would all land
/// in the same L1 cache sets and evict each other while 64 features are read side by side.
const KEY_PAD: usize = 16;

pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    len: usize,
    capacity: usize,
    dtype: DType,
}

/// A copy of the cache's filled part, to return to later (e.g. the state before a speculative
/// completion).
pub struct KvSnapshot {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    len: usize,
}

impl KvSnapshot {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl KvCache {
    pub fn new(cfg: &ModelConfig, capacity: usize, device: &Device, dtype: DType) -> Result<Self> {
        let v_shape = (1, cfg.n_kv_head, capacity, cfg.head_dim);
        let k_shape = (1, cfg.n_kv_head, cfg.head_dim, capacity + KEY_PAD);
        let mut k = Vec::with_capacity(cfg.n_layer);
        let mut v = Vec::with_capacity(cfg.n_layer);
        for _ in 0..cfg.n_layer {
            k.push(Tensor::zeros(k_shape, dtype, device)?);
            v.push(Tensor::zeros(v_shape, dtype, device)?);
        }
        Ok(Self {
            k,
            v,
            len: 0,
            capacity,
            dtype,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forget every position from `len` on. Cheap: nothing is copied or freed.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Write `t` new positions for `layer` after the filled part and return views of the whole
    /// filled part including them. The length only grows in [`KvCache::advance`], once every
    /// layer has been written, so a failure halfway leaves the cache consistent.
    pub(crate) fn write(&self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let needed = self.len + t;
        if needed > self.capacity {
            return Err(EngineError::ContextOverflow {
                needed,
                capacity: self.capacity,
            });
        }
        let k = k.to_dtype(self.dtype)?.transpose(2, 3)?.contiguous()?;
        self.k[layer].slice_set(&k, K_POS, self.len)?;
        self.v[layer].slice_set(&v.to_dtype(self.dtype)?.contiguous()?, V_POS, self.len)?;
        Ok((
            self.k[layer].narrow(K_POS, 0, needed)?,
            self.v[layer].narrow(V_POS, 0, needed)?,
        ))
    }

    /// Distance between two features' rows in the key buffer.
    pub(crate) fn key_stride(&self) -> usize {
        self.capacity + KEY_PAD
    }

    /// The layer's whole key and value buffers, in the layouts described at the top.
    pub(crate) fn buffers(&self, layer: usize) -> (&Tensor, &Tensor) {
        (&self.k[layer], &self.v[layer])
    }

    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }

    pub fn snapshot(&self) -> Result<KvSnapshot> {
        let copy = |ts: &[Tensor], axis: usize| -> Result<Vec<Tensor>> {
            ts.iter()
                // `contiguous` alone would share storage when the cache is full.
                .map(|t| Ok(t.narrow(axis, 0, self.len)?.contiguous()?.copy()?))
                .collect()
        };
        Ok(KvSnapshot {
            k: copy(&self.k, K_POS)?,
            v: copy(&self.v, V_POS)?,
            len: self.len,
        })
    }

    pub fn restore(&mut self, snap: &KvSnapshot) -> Result<()> {
        if snap.len > self.capacity || snap.k.len() != self.k.len() {
            return Err(EngineError::ContextOverflow {
                needed: snap.len,
                capacity: self.capacity,
            });
        }
        if snap.len > 0 {
            for (dst, src) in self.k.iter().zip(&snap.k) {
                dst.slice_set(src, K_POS, 0)?;
            }
            for (dst, src) in self.v.iter().zip(&snap.v) {
                dst.slice_set(src, V_POS, 0)?;
            }
        }
        self.len = snap.len;
        Ok(())
    }
}
