//! Causal attention over the preallocated KV cache, on the CPU, for our own decoder.
//!
//! candle's route (two `matmul`s through the `gemm` crate, a mask tensor, a softmax on
//! rayon) costs little arithmetic but much else when few query rows meet a long cache:
//! packing the cache into `gemm`'s layout on every call, an `exp` from libm per score, and a
//! rayon pool that competes with candle's spinning worker. Here each task takes one KV head
//! and one query position. It converts a block of 64 keys from the f16 cache once for all
//! the query heads that share the KV head, scores each head against the block with keys
//! transposed (one broadcast and eight vector FMAs per feature, no horizontal sums), and
//! never builds the `L × L` matrix: one row of scores per query head.

use crate::fastmath::exp_nonpositive;
use crate::qmat::SharedOut;
use half::f16;
use half::slice::HalfFloatSliceExt;

/// Sizes of one attention call. The cache holds `pos + t` positions when it runs.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Positions the cache buffers are laid out for: keys `[n_kv_head][head_dim][key_stride]`
    /// (transposed, rows padded), values `[n_kv_head][capacity][head_dim]`.
    pub capacity: usize,
    pub key_stride: usize,
    /// Positions in the cache before this call's tokens.
    pub pos: usize,
    /// Query rows (tokens) in this call.
    pub t: usize,
}

/// Keys and values are converted from f16 in blocks of this many positions, each block once
/// for all the query heads of its group (16 KB of f32 for 64-wide heads: it stays in L1).
const BLOCK: usize = 64;

/// Query rows per task during prefill: their heads share each converted block of keys and
/// values, and the AVX-512 kernels score four query vectors per pass over a block.
const ROWS: usize = 4;

/// `q`: `[n_head][t][head_dim]`; `k`, `v`: the layer's cache buffers (f16). Returns
/// `[t][n_head * head_dim]`, each query row attending to positions `0..=pos + row`.
pub fn attend(q: &[f32], k: &[f16], v: &[f16], s: AttnShape, scale: f32) -> Vec<f32> {
    attend_using(q, k, v, s, scale, crate::qmat::avx512f_available())
}

/// `wide`: whether the AVX-512 kernels may be used (tests run both paths).
fn attend_using(q: &[f32], k: &[f16], v: &[f16], s: AttnShape, scale: f32, wide: bool) -> Vec<f32> {
    let AttnShape {
        n_head,
        n_kv_head,
        head_dim: d,
        capacity,
        key_stride,
        pos,
        t,
    } = s;
    assert_eq!(q.len(), n_head * t * d, "query shape");
    assert!(k.len() >= n_kv_head * key_stride * d && v.len() >= n_kv_head * capacity * d);
    assert!(
        pos + t <= capacity && capacity <= key_stride,
        "cache overflow"
    );
    let groups = n_head / n_kv_head;
    let tiles = t.div_ceil(ROWS);
    let wide = wide && d.is_multiple_of(16);
    let mut out = vec![0f32; t * n_head * d];
    let dst = SharedOut(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(n_kv_head * tiles, |items| {
        let mut scores = vec![0f32; groups * ROWS * (pos + t)];
        let mut block = vec![0f32; BLOCK * d];
        for item in items {
            let (h, tile) = (item / tiles, item % tiles);
            let i0 = tile * ROWS;
            let rows = ROWS.min(t - i0);
            // Query vector n is head h*groups + n / rows at row i0 + n % rows; all of them
            // score every key up to the tile's last row, the earlier rows' extra scores
            // then weigh nothing.
            let span = pos + i0 + rows;
            let nv = groups * rows;
            let len = |n: usize| pos + i0 + n % rows + 1;
            let query = |n: usize| &q[((h * groups + n / rows) * t + i0 + n % rows) * d..][..d];
            let kt = &k[h * key_stride * d..(h + 1) * key_stride * d];
            let vh = &v[h * capacity * d..(h * capacity + span) * d];
            let scores = &mut scores[..nv * span];
            for j0 in (0..span).step_by(BLOCK) {
                let w = BLOCK.min(span - j0);
                // Transposed keys: feature c of keys j0.. is at kt[c * key_stride + j0..].
                for c in 0..d {
                    let src = &kt[c * key_stride + j0..c * key_stride + j0 + w];
                    src.convert_to_f32_slice(&mut block[c * BLOCK..c * BLOCK + w]);
                }
                // `wide` is never true off x86-64 (no AVX-512 there).
                if wide {
                    // Safety: AVX-512F is present; every query and score row is in bounds.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        score_wide(&query, nv, &block, d, scores, span, j0, w, scale)
                    };
                } else {
                    for n in 0..nv {
                        let row = &mut scores[n * span + j0..n * span + j0 + w];
                        score_block(query(n), &block, row, scale);
                    }
                }
            }
            for n in 0..nv {
                let row = &mut scores[n * span..(n + 1) * span];
                let (live, masked) = row.split_at_mut(len(n));
                softmax(live);
                masked.fill(0.0);
            }
            for j0 in (0..span).step_by(BLOCK) {
                let w = BLOCK.min(span - j0);
                vh[j0 * d..(j0 + w) * d].convert_to_f32_slice(&mut block[..w * d]);
                // Safety (both arms): task (h, tile) alone writes rows i0..i0 + rows of
                // heads h*groups..+groups.
                let out_row = |n: usize| unsafe {
                    dst.slice(((i0 + n % rows) * n_head + h * groups + n / rows) * d, d)
                };
                if wide {
                    // Safety: AVX-512F is present and d is a multiple of 16.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        weigh_wide(scores, span, nv, j0, &block[..w * d], d, &out_row)
                    };
                } else {
                    for n in 0..nv {
                        let p = &scores[n * span + j0..n * span + j0 + w];
                        weigh_values(p, &block[..w * d], d, out_row(n));
                    }
                }
            }
        }
    });
    out
}

/// Scores of query vectors `0..nv` against one block of keys (`w` of them, from `j0`),
/// four vectors per pass so that each loaded key serves four FMAs.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn score_wide<'q>(
    query: &impl Fn(usize) -> &'q [f32],
    nv: usize,
    block: &[f32],
    d: usize,
    scores: &mut [f32],
    span: usize,
    j0: usize,
    w: usize,
    scale: f32,
) {
    let mut n = 0;
    while n < nv {
        let take = (nv - n).min(4);
        let qs: [&[f32]; 4] = std::array::from_fn(|i| query(n + i.min(take - 1)));
        let sums = match take {
            4 => wide::scores::<4>(&qs, block, d),
            3 => wide::scores::<3>(&qs, block, d),
            2 => wide::scores::<2>(&qs, block, d),
            _ => wide::scores::<1>(&qs, block, d),
        };
        for (i, sum) in sums.iter().enumerate().take(take) {
            let row = &mut scores[(n + i) * span + j0..(n + i) * span + j0 + w];
            for (o, v) in row.iter_mut().zip(sum) {
                *o = v * scale;
            }
        }
        n += take;
    }
}

/// Adds each query vector's weighted values of one block into its output row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weigh_wide<'o>(
    scores: &[f32],
    span: usize,
    nv: usize,
    j0: usize,
    values: &[f32],
    d: usize,
    out_row: &impl Fn(usize) -> &'o mut [f32],
) {
    let w = values.len() / d;
    let mut n = 0;
    while n < nv {
        let take = (nv - n).min(4);
        let p: [&[f32]; 4] = std::array::from_fn(|i| {
            let v = n + i.min(take - 1);
            &scores[v * span + j0..v * span + j0 + w]
        });
        match take {
            4 => wide::weigh::<4>(&p, values, d, |i| out_row(n + i)),
            3 => wide::weigh::<3>(&p, values, d, |i| out_row(n + i)),
            2 => wide::weigh::<2>(&p, values, d, |i| out_row(n + i)),
            _ => wide::weigh::<1>(&p, values, d, |i| out_row(n + i)),
        }
        n += take;
    }
}

/// AVX-512 kernels for `N` query vectors at once.
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::BLOCK;
    use std::arch::x86_64::*;

    /// `q_n · key j` for the 64 keys of a block (`block[c * BLOCK + j]`); lanes past the
    /// block's keys hold leftovers the caller ignores.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scores<const N: usize>(
        q: &[&[f32]; 4],
        block: &[f32],
        d: usize,
    ) -> [[f32; BLOCK]; 4] {
        let mut acc = [[_mm512_setzero_ps(); 4]; N];
        for c in 0..d {
            let keys = block.as_ptr().add(c * BLOCK);
            let k: [__m512; 4] = std::array::from_fn(|j| _mm512_loadu_ps(keys.add(16 * j)));
            for (a, qn) in acc.iter_mut().zip(q) {
                let b = _mm512_set1_ps(*qn.get_unchecked(c));
                for j in 0..4 {
                    a[j] = _mm512_fmadd_ps(b, k[j], a[j]);
                }
            }
        }
        let mut out = [[0f32; BLOCK]; 4];
        for (o, a) in out.iter_mut().zip(&acc) {
            for (j, aj) in a.iter().enumerate() {
                _mm512_storeu_ps(o.as_mut_ptr().add(16 * j), *aj);
            }
        }
        out
    }

    /// `out_n += Σ_j p_n[j] · value j`, 64 columns at a time; `d` is a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weigh<'o, const N: usize>(
        p: &[&[f32]; 4],
        values: &[f32],
        d: usize,
        out: impl Fn(usize) -> &'o mut [f32],
    ) {
        let w = p[0].len();
        let mut c0 = 0;
        while c0 < d {
            let cols = ((d - c0) / 16).min(4);
            let mut acc = [[_mm512_setzero_ps(); 4]; N];
            for (n, a) in acc.iter_mut().enumerate() {
                let o = out(n).as_ptr().add(c0);
                for (j, aj) in a.iter_mut().enumerate().take(cols) {
                    *aj = _mm512_loadu_ps(o.add(16 * j));
                }
            }
            for jj in 0..w {
                let row = values.as_ptr().add(jj * d + c0);
                let v: [__m512; 4] = std::array::from_fn(|j| {
                    if j < cols {
                        _mm512_loadu_ps(row.add(16 * j))
                    } else {
                        _mm512_setzero_ps()
                    }
                });
                for (a, pn) in acc.iter_mut().zip(p) {
                    let b = _mm512_set1_ps(*pn.get_unchecked(jj));
                    for j in 0..cols {
                        a[j] = _mm512_fmadd_ps(b, v[j], a[j]);
                    }
                }
            }
            for (n, a) in acc.iter().enumerate() {
                let o = out(n).as_mut_ptr().add(c0);
                for (j, aj) in a.iter().enumerate().take(cols) {
                    _mm512_storeu_ps(o.add(16 * j), *aj);
                }
            }
            c0 += 16 * cols;
        }
    }
}

/// `out[j] = scale * q · key j` for the `out.len()` keys of a block laid out
/// `block[c * BLOCK + j]`. A full block keeps its 64 sums in eight vector registers across
/// the features: enough independent FMAs to hide their latency.
#[inline]
fn score_block(q: &[f32], block: &[f32], out: &mut [f32], scale: f32) {
    let w = out.len();
    if w == BLOCK {
        let mut acc = [0f32; BLOCK];
        for (c, qc) in q.iter().enumerate() {
            let keys = &block[c * BLOCK..(c + 1) * BLOCK];
            for l in 0..BLOCK {
                // `mul_add` lets the compiler use FMA (it may not fuse `a * b + c` itself).
                acc[l] = qc.mul_add(keys[l], acc[l]);
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = a * scale;
        }
        return;
    }
    out.fill(0.0);
    for (c, qc) in q.iter().enumerate() {
        for (o, kv) in out.iter_mut().zip(&block[c * BLOCK..c * BLOCK + w]) {
            *o = qc.mul_add(*kv, *o);
        }
    }
    for o in out {
        *o *= scale;
    }
}

/// `out += Σ_j p[j] · v[j]` over a block of value rows, 64 columns at a time so that the
/// sums stay in registers.
#[inline]
fn weigh_values(p: &[f32], v: &[f32], d: usize, out: &mut [f32]) {
    const B: usize = 64;
    let mut c0 = 0;
    while c0 < d {
        let w = B.min(d - c0);
        let mut acc = [0f32; B];
        acc[..w].copy_from_slice(&out[c0..c0 + w]);
        if w == B {
            for (pj, value) in p.iter().zip(v.chunks_exact(d)) {
                let cols = &value[c0..c0 + B];
                for l in 0..B {
                    acc[l] = pj.mul_add(cols[l], acc[l]);
                }
            }
        } else {
            for (pj, value) in p.iter().zip(v.chunks_exact(d)) {
                for (a, x) in acc.iter_mut().zip(&value[c0..c0 + w]) {
                    *a = pj.mul_add(*x, *a);
                }
            }
        }
        out[c0..c0 + w].copy_from_slice(&acc[..w]);
        c0 += w;
    }
}

/// Written as separate passes with eight-lane partial results so that each one vectorizes
/// (a float reduction in the same loop as the `exp` would keep the whole loop scalar).
fn softmax(row: &mut [f32]) {
    let max = lanes8(row, f32::NEG_INFINITY, f32::max);
    for v in row.iter_mut() {
        *v = exp_nonpositive(*v - max);
    }
    let inv = 1.0 / lanes8(row, 0.0, |a, b| a + b);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Folds `xs` with `f` in eight interleaved lanes, then folds the lanes.
#[inline]
fn lanes8(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(init, |a, v| f(a, *v));
    for c in chunks {
        for l in 0..8 {
            acc[l] = f(acc[l], c[l]);
        }
    }
    acc.iter().fold(tail, |a, v| f(a, *v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The textbook formula, one head and one row at a time.
    fn reference(q: &[f32], k: &[f16], v: &[f16], s: AttnShape, scale: f32) -> Vec<f32> {
        let d = s.head_dim;
        let groups = s.n_head / s.n_kv_head;
        let mut out = vec![0f32; s.t * s.n_head * d];
        for head in 0..s.n_head {
            let h = head / groups;
            for i in 0..s.t {
                let len = s.pos + i + 1;
                let qv = &q[(head * s.t + i) * d..][..d];
                let w: Vec<f64> = (0..len)
                    .map(|j| {
                        let key = (0..d).map(|c| k[(h * d + c) * s.key_stride + j].to_f32());
                        qv.iter().zip(key).map(|(a, b)| (a * b) as f64).sum::<f64>() * scale as f64
                    })
                    .collect();
                let m = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = w.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..d {
                    let val: f64 = (0..len)
                        .map(|j| e[j] / z * v[(h * s.capacity + j) * d + c].to_f64())
                        .sum();
                    out[(i * s.n_head + head) * d + c] = val as f32;
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_textbook_formula() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        // Grouped (7 query heads per KV head, as the default model) and plain; one row
        // (decoding) and several (prefill), with and without earlier positions.
        for (n_head, n_kv_head, head_dim) in [(14, 2, 64), (4, 4, 12)] {
            // Up to 40 positions: part of a block; up to 150: two blocks of 64 and a tail.
            for (pos, t, capacity) in [
                (0, 1, 40),
                (0, 5, 40),
                (9, 1, 40),
                (26, 7, 40),
                (30, 10, 40),
                (0, 150, 150),
                (70, 9, 80),
                (127, 1, 130),
            ] {
                let s = AttnShape {
                    n_head,
                    n_kv_head,
                    head_dim,
                    capacity,
                    key_stride: capacity + 3,
                    pos,
                    t,
                };
                let mut r =
                    |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-2.0..2.0)).collect() };
                let q = r(n_head * t * head_dim);
                let half =
                    |x: Vec<f32>| -> Vec<f16> { x.iter().map(|v| f16::from_f32(*v)).collect() };
                let k = half(r(n_kv_head * s.key_stride * head_dim));
                let v = half(r(n_kv_head * capacity * head_dim));
                let want = reference(&q, &k, &v, s, 0.125);
                let mut paths = vec![false];
                if crate::qmat::avx512f_available() {
                    paths.push(true);
                }
                for wide in paths {
                    let got = attend_using(&q, &k, &v, s, 0.125, wide);
                    let err = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(err < 1e-4, "{s:?} wide={wide}: max error {err}");
                }
            }
        }
    }
}
