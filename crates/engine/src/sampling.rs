//! Choosing the next token from logits.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self::greedy()
    }
}

impl Sampling {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

pub struct Sampler {
    cfg: Sampling,
    rng: StdRng,
}

impl Sampler {
    pub fn new(cfg: Sampling) -> Self {
        Self {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
        }
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.cfg.temperature <= 0.0 {
            return argmax(logits);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, ((l - max) / self.cfg.temperature).exp()))
            .collect();
        let total: f32 = probs.iter().map(|p| p.1).sum();
        probs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        // Keep the smallest set of tokens whose mass reaches top_p.
        let mut mass = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            mass += p.1 / total;
            if mass >= self.cfg.top_p {
                keep = i + 1;
                break;
            }
        }
        let probs = &probs[..keep];
        let kept: f32 = probs.iter().map(|p| p.1).sum();
        let mut r = self.rng.gen::<f32>() * kept;
        for p in probs {
            if r < p.1 {
                return p.0;
            }
            r -= p.1;
        }
        probs[probs.len() - 1].0
    }
}

pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest() {
        assert_eq!(
            Sampler::new(Sampling::greedy()).sample(&[0.1, 3.0, -1.0, 2.9]),
            1
        );
    }

    #[test]
    fn top_p_never_leaves_the_nucleus() {
        let mut s = Sampler::new(Sampling {
            temperature: 1.0,
            top_p: 0.5,
            seed: 7,
        });
        // Token 2 alone holds far more than half the mass.
        for _ in 0..200 {
            assert_eq!(s.sample(&[0.0, 0.0, 10.0, 0.0]), 2);
        }
    }

    #[test]
    fn temperature_sampling_is_seeded_and_varies() {
        let logits = [1.0, 1.0, 1.0, 1.0];
        let draw = |seed| {
            let mut s = Sampler::new(Sampling {
                temperature: 1.0,
                top_p: 1.0,
                seed,
            });
            (0..64).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        let d = draw(3);
        assert!(
            d.iter().any(|&t| t != d[0]),
            "uniform logits must not give one token 64 times"
        );
    }
}
