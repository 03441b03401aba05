//! A preallocated key/value cache that can be cut back to a shared prefix, snapshotted and
//! restored. This is what lets a request that shares its first tokens with the previous one
//! prefill only its new tail (as llama.cpp's `cache_prompt` does).

use crate::config::ModelConfig;
use crate::error::{EngineError, Result};
use candle_core::{DType, Device, Tensor};

pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    len: usize,
    capacity: usize,
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
    pub fn new(cfg: &ModelConfig, capacity: usize, device: &Device) -> Result<Self> {
        let shape = (1, cfg.n_kv_head, capacity, cfg.head_dim);
        let mut k = Vec::with_capacity(cfg.n_layer);
        let mut v = Vec::with_capacity(cfg.n_layer);
        for _ in 0..cfg.n_layer {
            k.push(Tensor::zeros(shape, DType::F32, device)?);
            v.push(Tensor::zeros(shape, DType::F32, device)?);
        }
        Ok(Self {
            k,
            v,
            len: 0,
            capacity,
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
        self.k[layer].slice_set(&k.contiguous()?, 2, self.len)?;
        self.v[layer].slice_set(&v.contiguous()?, 2, self.len)?;
        Ok((
            self.k[layer].narrow(2, 0, needed)?,
            self.v[layer].narrow(2, 0, needed)?,
        ))
    }

    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }

    pub fn snapshot(&self) -> Result<KvSnapshot> {
        let copy = |ts: &[Tensor]| -> Result<Vec<Tensor>> {
            ts.iter()
                // `contiguous` alone would share storage when the cache is full.
                .map(|t| Ok(t.narrow(2, 0, self.len)?.contiguous()?.copy()?))
                .collect()
        };
        Ok(KvSnapshot {
            k: copy(&self.k)?,
            v: copy(&self.v)?,
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
                dst.slice_set(src, 2, 0)?;
            }
            for (dst, src) in self.v.iter().zip(&snap.v) {
                dst.slice_set(src, 2, 0)?;
            }
        }
        self.len = snap.len;
        Ok(())
    }
}
