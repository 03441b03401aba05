//! Element-wise math in code the compiler vectorizes: libm's `expf` is a call per element,
//! and a float-to-int `as` cast (which saturates and maps NaN to 0) compiles to scalar code
//! with a branch per lane.

use candle_core::{Result, Tensor};

/// `e^x` for `x <= 0` within 2e-7 relative error, in code the compiler vectorizes (libm's
/// `expf` is a call per score): `x = n ln 2 + r` with `|r| <= ln 2 / 2`, a degree-6 Taylor
/// polynomial for `e^r`, and `2^n` put into the exponent bits.
///
/// `n` is rounded by adding 1.5 · 2²³, which leaves it in the sum's low mantissa bits: a
/// float-to-int cast (`as i32` saturates and maps NaN to 0) compiled to scalar code with a
/// branch per lane, and took 11% of a warm prefill in softmax.
#[inline]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let t = x.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = t - ROUND;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let mut p: f32 = 1.0 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    // n is in -126..=0 here, so the biased exponent is a normal number's; `t`'s bits are
    // ROUND's plus n.
    let biased = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    p * f32::from_bits(biased << 23)
}

/// `silu(gate) · up`, element-wise, for the feed-forward block: one pass and one new buffer
/// (candle's `silu` then `*` make two, with an `expf` call per element: 5% of a prefill).
pub(crate) fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let shape = gate.shape().clone();
    let mut g = gate.flatten_all()?.to_vec1::<f32>()?;
    let u = up.flatten_all()?.to_vec1::<f32>()?;
    if g.len() != u.len() {
        return Err(candle_core::Error::Msg(format!(
            "silu_mul: {:?} and {:?} differ",
            gate.shape(),
            up.shape()
        )));
    }
    for (a, b) in g.iter_mut().zip(&u) {
        *a = silu(*a) * b;
    }
    Tensor::from_vec(g, shape, gate.device())
}

/// `x · sigmoid(x)`, with `e^{-|x|}` so the exponential never overflows.
#[inline]
fn silu(x: f32) -> f32 {
    let e = exp_nonpositive(-x.abs());
    let s = if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    x * s
}

/// `x` rounded to the nearest integer (ties to even) after clamping to ±127: adding 1.5 · 2²³
/// leaves the integer in the sum's low mantissa bits. NaN clamps to −127.
#[inline]
// Not `clamp`: it returns NaN for NaN, which would not land in the mantissa bits.
#[allow(clippy::manual_clamp)]
pub(crate) fn round_to_i8(x: f32) -> i8 {
    const ROUND: f32 = 12_582_912.0;
    let y = x.max(-127.0).min(127.0) + ROUND;
    (y.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -(i as f32) * 87.0 / 200_000.0;
            let want = (x as f64).exp();
            let got = exp_nonpositive(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn silu_matches_the_definition() {
        let mut worst = 0f64;
        for i in -100_000..=100_000 {
            let x = i as f32 * 1e-3 * 30.0;
            let want = x as f64 / (1.0 + (-(x as f64)).exp());
            worst = worst.max((silu(x) as f64 - want).abs() / want.abs().max(1e-3));
        }
        assert!(worst < 2e-6, "relative error {worst}");
        assert_eq!(silu(0.0), 0.0);
        assert!(silu(-200.0).abs() < 1e-30 && silu(200.0) == 200.0);
        let dev = candle_core::Device::Cpu;
        let g = Tensor::new(&[[-2.0f32, 0.5], [3.0, -0.1]], &dev).unwrap();
        let u = Tensor::new(&[[1.0f32, 2.0], [-1.0, 4.0]], &dev).unwrap();
        let want = (candle_nn::ops::silu(&g).unwrap() * &u).unwrap();
        let got = silu_mul(&g, &u).unwrap();
        assert_eq!(got.dims(), want.dims());
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
    }

    #[test]
    fn rounding_to_i8_is_exact_and_clamped() {
        for (x, want) in [
            (0.0, 0),
            (0.4, 0),
            (0.6, 1),
            (-0.6, -1),
            (1.5, 2),
            (2.5, 2),
            (-2.5, -2),
            (126.7, 127),
            (127.0, 127),
            (300.0, 127),
            (-127.0, -127),
            (-1e9, -127),
            (f32::NAN, -127),
        ] {
            assert_eq!(round_to_i8(x), want, "{x}");
        }
        for i in -1270..=1270 {
            let x = i as f32 / 10.0 + 0.013;
            assert_eq!(round_to_i8(x), x.round() as i8, "{x}");
        }
    }
}
