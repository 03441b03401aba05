//! AdamW with its state kept as named tensors, so a checkpoint can hold it and a resumed
//! run continues exactly where it stopped (candle-nn's AdamW keeps its moments private).

use crate::error::Result;
use candle_core::{Tensor, Var};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamParams {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

pub struct AdamW {
    params: AdamParams,
    /// Updates applied so far (the bias correction depends on it).
    pub t: usize,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl AdamW {
    pub fn new(vars: &[(String, &Var)], params: AdamParams) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(Self {
            params,
            t: 0,
            m: vars
                .iter()
                .map(|(_, v)| zeros(v))
                .collect::<candle_core::Result<_>>()?,
            v: vars
                .iter()
                .map(|(_, v)| zeros(v))
                .collect::<candle_core::Result<_>>()?,
        })
    }

    /// One update of every var from its gradient (same order as `vars`).
    pub fn step(&mut self, vars: &[(String, &Var)], grads: &[Tensor], lr: f64) -> Result<()> {
        let p = self.params;
        self.t += 1;
        let c1 = 1.0 - p.beta1.powi(self.t as i32);
        let c2 = 1.0 - p.beta2.powi(self.t as i32);
        for (i, ((_, var), g)) in vars.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * p.beta1)? + (g * (1.0 - p.beta1))?)?;
            let v = ((&self.v[i] * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + p.eps)?)?;
            let theta = var.as_tensor();
            let decayed = (theta * (1.0 - lr * p.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The moments as `{name}.adam_m` / `{name}.adam_v`.
    pub fn state(&self, vars: &[(String, &Var)]) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (n, _)) in vars.iter().enumerate() {
            out.insert(format!("{n}.adam_m"), self.m[i].clone());
            out.insert(format!("{n}.adam_v"), self.v[i].clone());
        }
        out
    }

    /// Restores the moments written by `state`; `None` names the first one missing.
    pub fn restore(
        &mut self,
        vars: &[(String, &Var)],
        state: &HashMap<String, Tensor>,
        t: usize,
    ) -> Result<Option<String>> {
        for (i, (n, v)) in vars.iter().enumerate() {
            for (suffix, slot) in [("adam_m", &mut self.m[i]), ("adam_v", &mut self.v[i])] {
                let key = format!("{n}.{suffix}");
                let Some(s) = state.get(&key) else {
                    return Ok(Some(key));
                };
                *slot = s.to_dtype(v.dtype())?.to_device(v.device())?;
            }
        }
        self.t = t;
        Ok(None)
    }
}

/// Linear warm-up to the peak rate, then cosine decay to a tenth of it.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
}

impl Schedule {
    /// The rate for update number `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        let floor = self.peak * 0.1;
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1);
        let done = ((step - self.warmup) as f64 / span as f64).min(1.0);
        floor + (self.peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * done).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_then_decays_to_a_tenth() {
        let s = Schedule {
            peak: 1.0,
            warmup: 4,
            total: 20,
        };
        assert_eq!(s.lr(0), 0.25);
        assert_eq!(s.lr(3), 1.0);
        assert!((s.lr(4) - 1.0).abs() < 1e-12);
        assert!(s.lr(10) < s.lr(5));
        assert!((s.lr(20) - 0.1).abs() < 1e-12);
        assert!((s.lr(100) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn adamw_minimises_a_quadratic() {
        let x = Var::new(&[3.0f32, -2.0], &Device::Cpu).unwrap();
        let vars = vec![("x".to_string(), &x)];
        let mut opt = AdamW::new(&vars, AdamParams::default()).unwrap();
        for _ in 0..300 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            let g = loss.backward().unwrap();
            let gx = g.get(x.as_tensor()).unwrap().clone();
            opt.step(&vars, &[gx], 0.05).unwrap();
        }
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|x| x.abs() < 0.05), "{v:?}");
    }
}
