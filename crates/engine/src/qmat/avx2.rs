//! The Q5_0 and Q8_0 kernel for AVX2: CPUs without AVX-512 VNNI (AMD's before Zen 4, many
//! laptops), prefill and decoding.
//!
//! Weights are taken 64 rows at a time (their blocks stay in L2) against tiles of up to 8
//! activation rows (in L1), each tile's sums held in registers: on an AMD EPYC with AVX2
//! only, two runs of `moat bench engine --runs 3` each side by side, one row at a time
//! before, prefill went from ~78–87 to ~85–97 tokens/s and a warm 1,500 + 24 completion
//! from 1.15–1.35 s to 0.81–0.99 s.

use super::{QAct, SharedOut, WeightFormat, PREFETCH, QK};
use std::arch::x86_64::*;

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Spreads 32 bits to 32 bytes: 0xFF where the bit is set.
#[inline(always)]
unsafe fn bits_to_bytes(bits: u32) -> __m256i {
    let shuf = _mm256_set_epi64x(
        0x0303030303030303,
        0x0202020202020202,
        0x0101010101010101,
        0x0000000000000000,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), shuf);
    let select = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(bytes, select), _mm256_set1_epi64x(-1))
}

#[inline(always)]
unsafe fn unpack(format: WeightFormat, b: *const u8) -> __m256i {
    match format {
        WeightFormat::Q8_0 => _mm256_loadu_si256(b.add(2) as *const __m256i),
        WeightFormat::Q5_0 => {
            let qh = (b.add(2) as *const u32).read_unaligned();
            let qs = _mm_loadu_si128(b.add(6) as *const __m128i);
            // Low nibbles are weights 0..16, high nibbles 16..32.
            let nib = _mm256_and_si256(
                _mm256_set_m128i(_mm_srli_epi16(qs, 4), qs),
                _mm256_set1_epi8(0x0F),
            );
            // value - 16: without the fifth bit the byte becomes nibble | 0xF0.
            let high = _mm256_andnot_si256(bits_to_bytes(qh), _mm256_set1_epi8(0xF0u8 as i8));
            _mm256_or_si256(nib, high)
        }
        WeightFormat::Q4K | WeightFormat::Q6K => unreachable!("K-quants go to amx or candle"),
    }
}

/// Weight rows taken together (~40 KB of Q5_0 at K = 896): they stay in L2 while each tile
/// of activation rows, in L1, passes over all of them. Row by row, as before session 17,
/// every weight row streamed all the activations again (917 KB at 1,024 prompt tokens:
/// from L3, for each of 4,864 rows), and prefill on an AVX2-only EPYC ran at ~80 tokens/s.
const ROW_BLOCK: usize = 64;

/// Activation rows that share one unpacked weight block (eight accumulators and the
/// block's operands fit the sixteen AVX2 registers).
const TILE: usize = 8;

/// `out_t[r][i] = W[r] · x[i]` for the weight rows `rows` and all `m` activation rows.
///
/// Safety: the CPU has AVX2, FMA and F16C; `data` holds every row of `rows` (`row_bytes`
/// each, `nb` blocks of `format`); `act` holds `m` rows of `k = nb * 32`; no other task
/// writes rows `rows` of `dst` (`m` floats each).
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn rows(
    format: WeightFormat,
    data: &[u8],
    row_bytes: usize,
    rows: std::ops::Range<usize>,
    nb: usize,
    act: &QAct,
    m: usize,
    dst: &SharedOut,
) {
    let mut r0 = rows.start;
    while r0 < rows.end {
        let r1 = (r0 + ROW_BLOCK).min(rows.end);
        let mut i0 = 0;
        while i0 < m {
            let mt = (m - i0).min(TILE);
            for r in r0..r1 {
                let w = data[r * row_bytes..(r + 1) * row_bytes].as_ptr();
                let out = dst.slice(r * m + i0, mt);
                // The tile's height is a constant in each copy: its accumulators stay in
                // registers and its loop unrolls.
                match mt {
                    8 => tile::<8>(format, w, nb, act, i0, out),
                    7 => tile::<7>(format, w, nb, act, i0, out),
                    6 => tile::<6>(format, w, nb, act, i0, out),
                    5 => tile::<5>(format, w, nb, act, i0, out),
                    4 => tile::<4>(format, w, nb, act, i0, out),
                    3 => tile::<3>(format, w, nb, act, i0, out),
                    2 => tile::<2>(format, w, nb, act, i0, out),
                    _ => tile::<1>(format, w, nb, act, i0, out),
                }
            }
            i0 += mt;
        }
        r0 = r1;
    }
}

/// One weight row times activation rows `i0..i0 + M`.
#[inline(always)]
unsafe fn tile<const M: usize>(
    format: WeightFormat,
    w: *const u8,
    nb: usize,
    act: &QAct,
    i0: usize,
    out: &mut [f32],
) {
    let bb = format.block_bytes();
    let k = nb * QK;
    let ones = _mm256_set1_epi16(1);
    let x = act.qs.as_ptr().add(i0 * k);
    let dx = act.d.as_ptr().add(i0 * nb);
    let mut acc = [_mm256_setzero_ps(); M];
    for b in 0..nb {
        let blk = w.add(b * bb);
        if M == 1 {
            // Decoding streams the weights once: see `PREFETCH`.
            _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH) as *const i8);
        }
        let wq = unpack(format, blk);
        // F16C directly: `half`'s conversion checks the CPU's features at every call.
        let dw = _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(
            (blk as *const u16).read_unaligned() as i32,
        )));
        // maddubs multiplies unsigned by signed bytes: |w| times x with w's sign.
        let aw = _mm256_sign_epi8(wq, wq);
        for (t, a) in acc.iter_mut().enumerate() {
            let xq = _mm256_loadu_si256(x.add(t * k + b * QK) as *const __m256i);
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xq, wq)), ones);
            let scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(&*dx.add(t * nb + b)));
            *a = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(p), *a);
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = hsum(a);
    }
}
