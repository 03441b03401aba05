//! The several-rows kernel for AVX2 (prefill everywhere; decoding without AVX-512).

use super::{QAct, WeightFormat, PREFETCH, QK, TILE_M};
use half::f16;
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

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn row_dot(
    format: WeightFormat,
    w: &[u8],
    nb: usize,
    act: &QAct,
    m: usize,
    k: usize,
    out: &mut [f32],
) {
    let bb = format.block_bytes();
    let ones = _mm256_set1_epi16(1);
    let mut i0 = 0;
    while i0 < m {
        let mt = (m - i0).min(TILE_M);
        let mut acc = [_mm256_setzero_ps(); TILE_M];
        for b in 0..nb {
            let blk = w.as_ptr().add(b * bb);
            if m == 1 {
                // Decoding streams the weights once: see `PREFETCH`.
                _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH) as *const i8);
            }
            let wq = unpack(format, blk);
            let dw = f16::from_bits((blk as *const u16).read_unaligned()).to_f32();
            let aw = _mm256_sign_epi8(wq, wq);
            for (t, a) in acc.iter_mut().enumerate().take(mt) {
                let row = i0 + t;
                let xq =
                    _mm256_loadu_si256(act.qs.as_ptr().add(row * k + b * QK) as *const __m256i);
                let sx = _mm256_sign_epi8(xq, wq);
                let p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), ones);
                let scale = _mm256_set1_ps(dw * *act.d.get_unchecked(row * nb + b));
                *a = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(p), *a);
            }
        }
        for t in 0..mt {
            out[i0 + t] = hsum(acc[t]);
        }
        i0 += mt;
    }
}
