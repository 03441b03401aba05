//! Q5_0 and Q8_0 with AVX-512 VNNI, for any number of activation rows.
//!
//! Two weight blocks (64 weights, 44 bytes of Q5_0 or 68 of Q8_0) are unpacked per step. For
//! Q5_0 one `vpermb` gathers the nibble bytes and the fifth bits become a mask register; Q8_0
//! is two loads. `vpdpbusd` multiplies unsigned by signed bytes, so the activations are
//! stored offset by 128 (`QAct::xu`) and each block's sum starts from `-128 * sum(weights)`, computed once per pair with one more `vpdpbusd`.
//! The unpacked pair then serves up to eight activation rows held in registers, whose bytes
//! and scales (5 bytes per weight column) stay in L1 for K = 896. Decoding (one row) runs
//! at memory speed with this; prefill does far fewer instructions per product than AVX2.

use super::{block_dot_scalar, QAct, WeightFormat, PREFETCH, QK};
use std::arch::x86_64::*;

pub(super) struct Consts {
    idx: __m512i,
    cnt: __m512i,
    low: __m512i,
    sixteen: __m512i,
    offset: __m512i,
    spread: __m512i,
}

/// Bytes 0..16 and 16..32 take block 0's nibble bytes (6..22), 32..64 block 1's (28..44).
const IDX: [u8; 64] = {
    let mut idx = [0u8; 64];
    let mut j = 0;
    while j < 16 {
        idx[j] = 6 + j as u8;
        idx[16 + j] = 6 + j as u8;
        idx[32 + j] = 28 + j as u8;
        idx[48 + j] = 28 + j as u8;
        j += 1;
    }
    idx
};

/// Shift counts per 16-bit lane: the second and fourth 16 bytes keep the high nibbles.
const CNT: [u16; 32] = {
    let mut cnt = [0u16; 32];
    let mut i = 0;
    while i < 32 {
        cnt[i] = if (i / 8) % 2 == 1 { 4 } else { 0 };
        i += 1;
    }
    cnt
};

impl Consts {
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    pub(super) fn new() -> Self {
        // Safety: the arrays are 64 bytes long.
        unsafe {
            Self {
                idx: _mm512_loadu_si512(IDX.as_ptr() as *const __m512i),
                cnt: _mm512_loadu_si512(CNT.as_ptr() as *const __m512i),
                low: _mm512_set1_epi8(0x0F),
                sixteen: _mm512_set1_epi8(16),
                offset: _mm512_set1_epi8(-128),
                spread: _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
            }
        }
    }
}

/// The pair of blocks at `blk` as 64 signed weights, the starting sums that take back the
/// activations' offset, and the blocks' scales spread to 8 lanes each.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,f16c")]
#[inline]
pub(super) unsafe fn unpack_pair(blk: *const u8, c: &Consts) -> (__m512i, __m512i, __m512) {
    // A masked load: the 44 bytes of the pair and nothing past the end of the data.
    let raw = _mm512_maskz_loadu_epi8(0x0000_0FFF_FFFF_FFFF, blk as *const i8);
    let nib = _mm512_and_si512(
        _mm512_srlv_epi16(_mm512_permutexvar_epi8(c.idx, raw), c.cnt),
        c.low,
    );
    let qh0 = (blk.add(2) as *const u32).read_unaligned() as u64;
    let qh1 = (blk.add(24) as *const u32).read_unaligned() as u64;
    // value = nibble + 16 * fifth bit - 16.
    let ws = _mm512_mask_sub_epi8(nib, !(qh0 | (qh1 << 32)), nib, c.sixteen);
    with_sums_and_scales(ws, blk, blk.add(22), c)
}

/// A pair's unpacked weights with the starting sums that take back the activations' offset
/// and the two blocks' f16 scales (at `d0` and `d1`) spread to 8 lanes each.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,f16c")]
#[inline]
unsafe fn with_sums_and_scales(
    ws: __m512i,
    d0: *const u8,
    d1: *const u8,
    c: &Consts,
) -> (__m512i, __m512i, __m512) {
    // 0x80 as unsigned is 128: the lanes get 128 * sum(w); their negation starts the sums.
    let start = _mm512_sub_epi32(
        _mm512_setzero_si512(),
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), c.offset, ws),
    );
    let d0 = (d0 as *const u16).read_unaligned() as u32;
    let d1 = (d1 as *const u16).read_unaligned() as u32;
    let dw = _mm_cvtph_ps(_mm_cvtsi32_si128((d0 | (d1 << 16)) as i32));
    (
        ws,
        start,
        _mm512_permutexvar_ps(c.spread, _mm512_castps128_ps512(dw)),
    )
}

/// The Q8_0 pair at `blk` like `unpack_pair`: two blocks of 34 bytes, an f16 scale and 32
/// signed bytes each.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,f16c")]
#[inline]
unsafe fn unpack_pair_q8_0(blk: *const u8, c: &Consts) -> (__m512i, __m512i, __m512) {
    let lo = _mm256_loadu_si256(blk.add(2) as *const __m256i);
    let hi = _mm256_loadu_si256(blk.add(36) as *const __m256i);
    let ws = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
    with_sums_and_scales(ws, blk, blk.add(34), c)
}

/// Rows `i0..i0 + T` of the activations times one weight row of Q8_0 (`Q8`) or Q5_0 blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,f16c,fma")]
#[inline]
unsafe fn tile<const T: usize, const Q8: bool>(
    w: &[u8],
    nb: usize,
    act: &QAct,
    i0: usize,
    c: &Consts,
    out: &mut [f32],
) {
    let (format, pair_bytes) = if Q8 {
        (WeightFormat::Q8_0, 68)
    } else {
        (WeightFormat::Q5_0, 44)
    };
    let k = nb * QK;
    let mut acc = [_mm512_setzero_ps(); T];
    for p in 0..nb / 2 {
        let blk = w.as_ptr().add(p * pair_bytes);
        // The weights are streamed once: see `PREFETCH`.
        _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH) as *const i8);
        if Q8 {
            _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH + 64) as *const i8);
        }
        let (ws, start, dw) = if Q8 {
            unpack_pair_q8_0(blk, c)
        } else {
            unpack_pair(blk, c)
        };
        for (t, a) in acc.iter_mut().enumerate() {
            let row = i0 + t;
            let x = _mm512_loadu_si512(act.xu.as_ptr().add(row * k + p * 64) as *const __m512i);
            let lanes = row * nb * 8 + p * 16;
            let dot = _mm512_dpbusd_epi32(start, x, ws);
            let s = _mm512_mul_ps(dw, _mm512_loadu_ps(act.dx.as_ptr().add(lanes)));
            *a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, *a);
        }
    }
    for (t, a) in acc.iter().enumerate() {
        out[t] = _mm512_reduce_add_ps(*a);
    }
    if nb % 2 == 1 {
        let b = nb - 1;
        let bb = format.block_bytes();
        let blk = &w[b * bb..(b + 1) * bb];
        for (t, o) in out.iter_mut().enumerate().take(T) {
            *o += block_dot_scalar(format, blk, act, i0 + t, b, nb);
        }
    }
}

/// `out[i] = x[i] · w` for all `m` activation rows, up to eight per pass.
///
/// Safety: the CPU has the features above, `w` is one row of `nb` blocks of `format` (Q5_0
/// or Q8_0), and `act` was quantized with `xu` and `dx` for `m` rows of `nb` blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,f16c,fma")]
pub(super) unsafe fn rows(
    format: WeightFormat,
    w: &[u8],
    nb: usize,
    act: &QAct,
    m: usize,
    out: &mut [f32],
) {
    debug_assert_eq!(w.len(), nb * format.block_bytes());
    debug_assert_eq!(act.dx.len(), m * nb * 8);
    match format {
        WeightFormat::Q8_0 => rows_of::<true>(w, nb, act, m, out),
        WeightFormat::Q5_0 => rows_of::<false>(w, nb, act, m, out),
        WeightFormat::Q4K | WeightFormat::Q6K => unreachable!("K-quants go to amx or candle"),
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,f16c,fma")]
unsafe fn rows_of<const Q8: bool>(w: &[u8], nb: usize, act: &QAct, m: usize, out: &mut [f32]) {
    let c = Consts::new();
    let mut i = 0;
    while m - i >= 8 {
        tile::<8, Q8>(w, nb, act, i, &c, &mut out[i..i + 8]);
        i += 8;
    }
    // The rest in one pass over the weight row: each pass unpacks it again.
    let o = &mut out[i..m];
    match m - i {
        0 => {}
        1 => tile::<1, Q8>(w, nb, act, i, &c, o),
        2 => tile::<2, Q8>(w, nb, act, i, &c, o),
        3 => tile::<3, Q8>(w, nb, act, i, &c, o),
        4 => tile::<4, Q8>(w, nb, act, i, &c, o),
        5 => tile::<5, Q8>(w, nb, act, i, &c, o),
        6 => tile::<6, Q8>(w, nb, act, i, &c, o),
        _ => tile::<7, Q8>(w, nb, act, i, &c, o),
    }
}
