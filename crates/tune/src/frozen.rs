//! Frozen base weights. Training never updates them, so their backward pass computes only
//! the gradient of the input: candle's matmul backward would also compute (and keep) a
//! gradient for every frozen matrix, a third more work and the whole model's size again in
//! memory. On the CPU the forward runs the engine's quantized kernels on the weights as
//! stored (QLoRA style); elsewhere, and for the f64 gradient check, dense weights with
//! candle's matmul.

use crate::error::Result;
use candle_core::quantized::QTensor;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};
use moat_engine::qmat::QMat;
use std::sync::Arc;

/// `y = x · Wᵀ` for a weight `W` of shape `[n, k]` that gets no gradient.
pub enum Frozen {
    Quantized(Arc<Box<dyn CustomOp1 + Send + Sync>>),
    Dense(Tensor),
}

pub struct QuantOp {
    q: Arc<QTensor>,
    own: Option<QMat>,
    n: usize,
    k: usize,
}

impl Frozen {
    /// `dense`: dequantize to `dtype` and use candle's matmul (gradient checks, GPUs).
    pub fn new(q: QTensor, device: &Device, dense: Option<DType>) -> Result<Self> {
        let (n, k) = q.shape().dims2()?;
        if let Some(dtype) = dense {
            return Ok(Self::Dense(q.dequantize(device)?.to_dtype(dtype)?));
        }
        if !device.is_cpu() {
            return Ok(Self::Dense(q.dequantize(device)?));
        }
        let q = Arc::new(q);
        let own = QMat::from_qtensor(q.clone());
        let op: Box<dyn CustomOp1 + Send + Sync> = Box::new(QuantOp { q, own, n, k });
        Ok(Self::Quantized(Arc::new(op)))
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Quantized(op) => x.contiguous()?.apply_op1_arc(op.clone())?,
            Self::Dense(w) => x.broadcast_matmul(&w.t()?)?,
        })
    }
}

impl CustomOp1 for QuantOp {
    fn name(&self) -> &'static str {
        "moat-frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("frozen matmul takes f32 activations, got another type");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("frozen matmul takes contiguous activations");
        };
        let x = &data[start..end];
        let dims = layout.dims();
        let k = *dims.last().unwrap_or(&0);
        if k != self.k {
            candle_core::bail!(
                "frozen matmul: input has {k} features, the weight {}",
                self.k
            );
        }
        let m = x.len() / k.max(1);
        let out = match &self.own {
            Some(w) => w.matmul(x, m),
            None => {
                let w = self.q.dequantize(&Device::Cpu)?;
                Tensor::from_slice(x, (m, k), &Device::Cpu)?
                    .matmul(&w.t()?)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
            }
        };
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("at least one dimension") = self.n;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // Dequantized per call rather than kept: the model stays at its quantized size. Measured
        // on the 0.5B model (2 threads, sequence 246): keeping the f32 copies is 5% faster for
        // 2 GB more, and Wᵀ in Q8_0 through the int8 kernel was 8% slower than this.
        let w = self.q.dequantize(grad.device())?;
        Ok(Some(grad.broadcast_matmul(&w)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;
    use candle_core::Var;

    #[test]
    fn quantized_forward_and_input_gradient_match_dense() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.5, (96, 64), &dev).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        // The weights as the Q8_0 tensor holds them, row-major.
        let wd = q
            .dequantize(&dev)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let dense = Frozen::new(
            QTensor::quantize(&w, GgmlDType::Q8_0).unwrap(),
            &dev,
            Some(DType::F32),
        )
        .unwrap();
        let quant = Frozen::new(q, &dev, None).unwrap();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (1, 7, 64), &dev).unwrap()).unwrap();
        let probe = Tensor::randn(0f32, 1.0, (1, 7, 96), &dev).unwrap();
        let mut grads = Vec::new();
        let mut outs = Vec::new();
        for f in [&dense, &quant] {
            let y = f.forward(x.as_tensor()).unwrap();
            let loss = (&y * &probe).unwrap().sum_all().unwrap();
            let g = loss.backward().unwrap();
            grads.push(
                g.get(x.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            );
            outs.push(y.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
        let max_err = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max)
        };
        // The quantized kernel also quantizes the activations to 8 bits, by blocks of 32
        // with the scale d = max|x| / 127 stored as f16: each activation is off by at most
        // d/2 from rounding plus 127·d·2⁻¹¹ from the stored scale (< 0.6·d), so an output
        // is off by at most the sum over blocks of 0.6·d times the block's |weights|. A
        // bound from the inputs, not a fixed tolerance: random inputs cannot make it flaky.
        let xs = x
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (t, row) in xs.chunks(64).enumerate() {
            for (o, wrow) in wd.chunks(64).enumerate() {
                let bound: f32 = row
                    .chunks(32)
                    .zip(wrow.chunks(32))
                    .map(|(xb, wb)| {
                        let d = xb.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                        0.6 * d * wb.iter().map(|v| v.abs()).sum::<f32>()
                    })
                    .sum::<f32>()
                    + 1e-4;
                let i = t * 96 + o;
                let err = (outs[0][i] - outs[1][i]).abs();
                assert!(err <= bound, "forward [{t}, {o}]: {err} > {bound}");
            }
        }
        assert!(
            max_err(&outs[0], &outs[1]) > 0.0,
            "the quantized path should differ a little from the dense one"
        );
        assert!(
            max_err(&grads[0], &grads[1]) < 1e-3,
            "gradient {}",
            max_err(&grads[0], &grads[1])
        );
    }
}
