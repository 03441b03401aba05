//! Low-rank adapters served unmerged: each adapted projection computes `W·x + s·B·(A·x)` next
//! to the frozen weight, so one loaded base model can switch adapters (or drop them) without
//! reloading or re-quantizing anything.
//!
//! The engine does not know where adapters come from or how they were trained (that is the
//! tune crate's business); it takes named tensors and checks that their shapes fit the model.

use crate::error::{EngineError, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;

/// The GGUF names of the projections of a block that may carry an adapter.
pub const PROJECTIONS: [&str; 7] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// One adapted projection: `down = Aᵀ` (`[in, rank]`) and `up = s·Bᵀ` (`[rank, out]`), kept
/// transposed and pre-scaled so that the forward pass is two plain matrix products.
#[derive(Clone)]
pub struct LowRank {
    pub(crate) down: Tensor,
    pub(crate) up: Tensor,
}

impl LowRank {
    /// `a`: `[rank, in]`, `b`: `[out, rank]`, the update being `scale · B · A`.
    pub fn new(a: &Tensor, b: &Tensor, scale: f64) -> Result<Self> {
        let (rank, _) = a
            .dims2()
            .map_err(|_| bad(format!("A must be a matrix, got {:?}", a.dims())))?;
        let (_, rank_b) = b
            .dims2()
            .map_err(|_| bad(format!("B must be a matrix, got {:?}", b.dims())))?;
        if rank != rank_b {
            return Err(bad(format!(
                "A has rank {rank} but B has rank {rank_b} ({:?} and {:?})",
                a.dims(),
                b.dims()
            )));
        }
        Ok(Self {
            down: a.to_dtype(DType::F32)?.t()?.contiguous()?,
            up: (b.to_dtype(DType::F32)?.t()? * scale)?.contiguous()?,
        })
    }

    /// `(in, out)` features.
    pub fn dims(&self) -> (usize, usize) {
        (self.down.dims()[0], self.up.dims()[1])
    }

    pub(crate) fn to_device(&self, dev: &Device) -> Result<Self> {
        Ok(Self {
            down: self.down.to_device(dev)?,
            up: self.up.to_device(dev)?,
        })
    }

    /// `s·B·A·x` for `x`: `[1, t, in]`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, k) = x.dims3()?;
        let y = x
            .reshape((b * t, k))?
            .matmul(&self.down)?
            .matmul(&self.up)?;
        Ok(y.reshape((b, t, self.up.dims()[1]))?)
    }
}

fn bad(detail: String) -> EngineError {
    EngineError::Adapter(detail)
}

/// A named set of low-rank updates, by layer and projection.
#[derive(Clone)]
pub struct Adapter {
    name: String,
    deltas: BTreeMap<(usize, String), LowRank>,
}

impl Adapter {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            deltas: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds the update of `projection` (a name from [`PROJECTIONS`]) in block `layer`.
    pub fn insert(&mut self, layer: usize, projection: &str, delta: LowRank) -> Result<()> {
        if !PROJECTIONS.contains(&projection) {
            return Err(bad(format!(
                "unknown projection `{projection}` (expected one of {})",
                PROJECTIONS.join(", ")
            )));
        }
        self.deltas.insert((layer, projection.to_string()), delta);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.deltas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }

    /// The dense update `s·B·A` (`[out, in]`) of `projection` in block `layer`, as merging
    /// it into the weight would add.
    pub fn delta(&self, layer: usize, projection: &str) -> Result<Option<Tensor>> {
        match self.deltas.get(&(layer, projection.to_string())) {
            Some(d) => Ok(Some(d.down.matmul(&d.up)?.t()?.contiguous()?)),
            None => Ok(None),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&(usize, String), &LowRank)> {
        self.deltas.iter()
    }
}
