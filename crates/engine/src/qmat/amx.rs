//! Prefill on AMX, the tile unit of Intel Xeons since Sapphire Rapids: one `tdpbssd`
//! multiplies 16 weight rows by 16 activation rows over a block of 32 (8,192 products), where
//! AVX-512 VNNI needs 128 instructions.
//!
//! The weights are the A operand, row-major as they unpack, and the activations the B operand,
//! so only the activations take AMX's four-bytes-interleaved layout (they are quantized once
//! per product anyway). Every block has its own weight and activation scales, so a tile
//! product runs over one block (K = 32) and its integer sums are scaled into f32 accumulators
//! held in 16 registers: the scaling, not the tile unit, sets the pace.
//!
//! Linux grants the tile state per process (`arch_prctl`). The tile configuration belongs to
//! the thread, and candle's own AMX kernels, which run on the same worker threads, keep
//! theirs loaded between calls, so ours is saved and restored around each use.

use super::avx512::{unpack_pair, Consts};
use super::{quantize_block, unpack_scalar, SharedOut, WeightFormat, QK};
use std::arch::x86_64::*;

/// Rows of a tile: weight rows and activation rows per product.
const T: usize = 16;
/// Bytes of one activation tile: 8 groups of 4 values for 16 rows.
const B_TILE: usize = 8 * 64;

/// Whether the CPU has AMX-INT8 and the kernel lets this process use it.
pub(super) fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        if std::env::var_os("MOAT_NO_AMX").is_some() {
            return false;
        }
        // `is_x86_feature_detected!("amx-int8")` is not stable: CPUID leaf 7, EDX bits 24
        // (tiles) and 25 (int8).
        let leaf = __cpuid_count(7, 0);
        if leaf.edx & (1 << 24) == 0 || leaf.edx & (1 << 25) == 0 {
            return false;
        }
        request_permission()
    })
}

#[cfg(target_os = "linux")]
fn request_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // Safety: a request for a process permission; it touches no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn request_permission() -> bool {
    false
}

#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

impl TileConfig {
    fn ours() -> Self {
        let mut c = Self {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        // tmm0: the sums, 16 weight rows × 16 activation rows of i32.
        (c.rows[0], c.colsb[0]) = (16, 64);
        // tmm1: the weights, 16 rows of one block.
        (c.rows[1], c.colsb[1]) = (16, QK as u16);
        // tmm2: the activations, 8 groups of 4 values × 16 rows.
        (c.rows[2], c.colsb[2]) = (8, 64);
        // Half blocks, for Q6_K's sub-blocks of 16: tmm3 weights, tmm4 activations, tmm5
        // the second half's sums.
        (c.rows[3], c.colsb[3]) = (16, 16);
        (c.rows[4], c.colsb[4]) = (4, 64);
        (c.rows[5], c.colsb[5]) = (16, 64);
        c
    }
}

/// Our tile configuration, loaded for as long as it lives; the thread's previous one (a
/// palette of 0 means none) comes back when it drops.
struct Tiles {
    saved: TileConfig,
}

impl Tiles {
    /// Safety: `available()` returned true.
    unsafe fn load() -> Self {
        let saved = TileConfig {
            palette: 0,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        let ours = TileConfig::ours();
        std::arch::asm!(
            "sttilecfg [{saved}]",
            "ldtilecfg [{ours}]",
            saved = in(reg) &saved,
            ours = in(reg) &ours,
            options(nostack)
        );
        Self { saved }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // Safety: the configuration was stored by `sttilecfg`, so it is a valid one.
        unsafe {
            if self.saved.palette == 0 {
                std::arch::asm!("tilerelease", options(nostack, nomem));
            } else {
                std::arch::asm!("ldtilecfg [{c}]", c = in(reg) &self.saved, options(nostack));
            }
        }
    }
}

/// Quantized activations in the B operand's layout: `xs[tile][block][group][row][4]` with
/// `T` rows per tile (the last one padded with zeros), `dx[tile][block][row]`, and `dxs`
/// the scale times the block's sum of values (for Q4_K's minimums).
pub(super) struct Packed {
    xs: Vec<i8>,
    dx: Vec<f32>,
    dxs: Vec<f32>,
    m: usize,
    nb: usize,
}

/// A buffer that parallel tasks write disjoint parts of (`Packed::new`: one tile each).
struct Disjoint<T>(*mut T);
// Safety: each task writes only its own tiles' ranges.
unsafe impl<T> Sync for Disjoint<T> {}

impl<T> Disjoint<T> {
    /// Safety: the range is inside the buffer and no other task uses it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

impl Packed {
    /// Quantizes activations `x[m][nb * 32]` per block and lays them out, one tile of 16
    /// rows per task (done on one thread, this took 10% of a prefill while the other waited).
    pub(super) fn new(x: &[f32], m: usize, nb: usize) -> Self {
        let tiles = m.div_ceil(T);
        let mut xs = vec![0i8; tiles * nb * B_TILE];
        let mut dx = vec![0f32; tiles * nb * T];
        let mut dxs = vec![0f32; tiles * nb * T];
        let (pxs, pdx, pdxs) = (
            Disjoint(xs.as_mut_ptr()),
            Disjoint(dx.as_mut_ptr()),
            Disjoint(dxs.as_mut_ptr()),
        );
        let k = nb * QK;
        candle_core::utils::barrier_pool().execute_chunked(tiles, |range| {
            for t in range {
                // Safety: tile t's parts of the three buffers are written by this task only.
                let (xs, dx, dxs) = unsafe {
                    (
                        pxs.slice(t * nb * B_TILE, nb * B_TILE),
                        pdx.slice(t * nb * T, nb * T),
                        pdxs.slice(t * nb * T, nb * T),
                    )
                };
                let mut q = [0i8; QK];
                for r in 0..(m - t * T).min(T) {
                    let row = &x[(t * T + r) * k..][..k];
                    for (b, src) in row.chunks_exact(QK).enumerate() {
                        let d = quantize_block(src, &mut q);
                        let base = b * B_TILE + r * 4;
                        for (g, four) in q.chunks_exact(4).enumerate() {
                            xs[base + g * 64..base + g * 64 + 4].copy_from_slice(four);
                        }
                        let sum: i32 = q.iter().map(|v| *v as i32).sum();
                        dx[b * T + r] = d;
                        dxs[b * T + r] = d * sum as f32;
                    }
                }
            }
        });
        Self { xs, dx, dxs, m, nb }
    }
}

/// Per-task scratch: one strip of 16 weight rows unpacked, `w[block][row][32]` and
/// `d[block][row]`, and two tiles of sums. `d2` is Q4_K's minimum (subtracted, times the
/// activations' sum) or Q6_K's scale for the block's second half; unused otherwise.
struct Strip {
    w: Vec<i8>,
    d: Vec<f32>,
    d2: Vec<f32>,
    sums: [i32; 2 * T * T],
}

/// `out[i][r] = x[i] · w[r]` for the weight rows of the 16-row strips in `strips`.
///
/// Safety: `available()` returned true; the CPU has AVX-512 (F, BW, VL, VBMI, VNNI); `data`
/// holds `n` rows of `nb` blocks of `format`; `out` has room for `act.m * n` floats and no
/// other task writes the columns of these strips.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,f16c,fma")]
pub(super) unsafe fn strips(
    format: WeightFormat,
    data: &[u8],
    n: usize,
    act: &Packed,
    strips: std::ops::Range<usize>,
    out: &SharedOut,
) {
    let nb = act.nb;
    let mut s = Strip {
        w: vec![0i8; nb * T * QK],
        d: vec![0f32; nb * T],
        d2: vec![0f32; nb * T],
        sums: [0; 2 * T * T],
    };
    let _tiles = Tiles::load();
    let c = Consts::new();
    for strip in strips {
        let n0 = strip * T;
        let rows = (n - n0).min(T);
        unpack_strip(format, data, nb, n0, rows, &c, &mut s);
        for t in 0..act.m.div_ceil(T) {
            let acc = match format {
                WeightFormat::Q4K => tile_row::<{ Sums::MINUS_MIN }>(&mut s, act, t),
                WeightFormat::Q6K => tile_row::<{ Sums::HALVES }>(&mut s, act, t),
                _ => tile_row::<{ Sums::PLAIN }>(&mut s, act, t),
            };
            let lanes = (act.m - t * T).min(T);
            let mut block = [[0f32; T]; T];
            for (dst, a) in block.iter_mut().zip(&acc) {
                _mm512_storeu_ps(dst.as_mut_ptr(), *a);
            }
            // The sums are by weight row; the output is by activation row.
            for i in 0..lanes {
                let o = out.slice((t * T + i) * n + n0, rows);
                for (v, sums) in o.iter_mut().zip(&block) {
                    *v = sums[i];
                }
            }
        }
    }
}

/// Unpacks weight rows `n0..n0 + rows` into the strip; rows past them are zero.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,f16c,fma")]
unsafe fn unpack_strip(
    format: WeightFormat,
    data: &[u8],
    nb: usize,
    n0: usize,
    rows: usize,
    c: &Consts,
    s: &mut Strip,
) {
    let bb = format.block_bytes();
    let row_bytes = nb * QK / format.block_len() * bb;
    if rows < T {
        s.w.fill(0);
        s.d.fill(0.0);
        s.d2.fill(0.0);
    }
    for r in 0..rows {
        let w = &data[(n0 + r) * row_bytes..(n0 + r + 1) * row_bytes];
        if format.k_quant() {
            for (sb, blk) in w.chunks_exact(bb).enumerate() {
                if format == WeightFormat::Q4K {
                    unpack_q4k(blk, sb * 8, r, s);
                } else {
                    unpack_q6k(blk, sb * 8, r, s);
                }
            }
            continue;
        }
        let mut b = 0;
        if format == WeightFormat::Q5_0 {
            while b + 2 <= nb {
                let (ws, _, _) = unpack_pair(w.as_ptr().add(b * bb), c);
                let dst = s.w.as_mut_ptr();
                _mm256_storeu_si256(
                    dst.add((b * T + r) * QK) as *mut __m256i,
                    _mm512_castsi512_si256(ws),
                );
                _mm256_storeu_si256(
                    dst.add(((b + 1) * T + r) * QK) as *mut __m256i,
                    _mm512_extracti64x4_epi64::<1>(ws),
                );
                for j in 0..2 {
                    let blk = &w[(b + j) * bb..];
                    s.d[(b + j) * T + r] = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                }
                b += 2;
            }
        }
        // Q8_0 blocks, and an odd Q5_0 block at the end.
        while b < nb {
            let (q, d) = unpack_scalar(format, &w[b * bb..(b + 1) * bb]);
            s.w[(b * T + r) * QK..][..QK].copy_from_slice(&q);
            s.d[b * T + r] = d;
            b += 1;
        }
    }
}

/// How a block's integer sums become its contribution (a const parameter of `tile_row`).
struct Sums;

impl Sums {
    /// `sums · dx · d` (Q5_0, Q8_0).
    const PLAIN: u8 = 0;
    /// `(sums · d − Σx · d2) · dx` (Q4_K: scale and minimum per sub-block of 32).
    const MINUS_MIN: u8 = 1;
    /// `(sums₁ · d + sums₂ · d2) · dx` over two half blocks (Q6_K: sub-blocks of 16).
    const HALVES: u8 = 2;
}

/// The strip's 16 weight rows times activation tile `t`: for each weight row, the sums
/// for the tile's 16 activation rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,f16c,fma")]
unsafe fn tile_row<const SUMS: u8>(s: &mut Strip, act: &Packed, t: usize) -> [__m512; T] {
    let mut acc = [_mm512_setzero_ps(); T];
    for b in 0..act.nb {
        let a = s.w.as_ptr().add(b * T * QK);
        let x = act.xs.as_ptr().add((t * act.nb + b) * B_TILE);
        let c = s.sums.as_mut_ptr();
        if SUMS == Sums::HALVES {
            std::arch::asm!(
                "tilezero tmm0",
                "tilezero tmm5",
                "tileloadd tmm3, [{a} + {sa}*1]",
                "tileloadd tmm4, [{x} + {sx}*1]",
                "tdpbssd tmm0, tmm3, tmm4",
                "tileloadd tmm3, [{a} + {sa}*1 + 16]",
                "tileloadd tmm4, [{x} + {sx}*1 + 256]",
                "tdpbssd tmm5, tmm3, tmm4",
                "tilestored [{c} + {sc}*1], tmm0",
                "tilestored [{c} + {sc}*1 + 1024], tmm5",
                a = in(reg) a,
                sa = in(reg) QK,
                x = in(reg) x,
                sx = in(reg) 64usize,
                c = in(reg) c,
                sc = in(reg) 64usize,
                options(nostack)
            );
        } else {
            std::arch::asm!(
                "tilezero tmm0",
                "tileloadd tmm1, [{a} + {sa}*1]",
                "tileloadd tmm2, [{x} + {sx}*1]",
                "tdpbssd tmm0, tmm1, tmm2",
                "tilestored [{c} + {sc}*1], tmm0",
                a = in(reg) a,
                sa = in(reg) QK,
                x = in(reg) x,
                sx = in(reg) 64usize,
                c = in(reg) c,
                sc = in(reg) 64usize,
                options(nostack)
            );
        }
        let at = (t * act.nb + b) * T;
        let dx = _mm512_loadu_ps(act.dx.as_ptr().add(at));
        let dxs = _mm512_loadu_ps(act.dxs.as_ptr().add(at));
        let (dw, dw2) = (s.d.as_ptr().add(b * T), s.d2.as_ptr().add(b * T));
        for (r, a) in acc.iter_mut().enumerate() {
            let sums = _mm512_loadu_si512(s.sums.as_ptr().add(r * T) as *const __m512i);
            let scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), dx);
            *a = _mm512_fmadd_ps(scaled, _mm512_set1_ps(*dw.add(r)), *a);
            if SUMS == Sums::MINUS_MIN {
                *a = _mm512_fnmadd_ps(dxs, _mm512_set1_ps(*dw2.add(r)), *a);
            } else if SUMS == Sums::HALVES {
                let p = s.sums.as_ptr().add(T * T + r * T) as *const __m512i;
                let scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(p)), dx);
                *a = _mm512_fmadd_ps(scaled, _mm512_set1_ps(*dw2.add(r)), *a);
            }
        }
    }
    acc
}

/// The scale and minimum of Q4_K sub-block `j` from their 6-bit packing in 12 bytes.
fn q4k_scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// One Q4_K super-block (`d`, `dmin`, 12 bytes of scales, 128 of nibbles) of weight row `r`
/// into blocks `b0..b0 + 8` of the strip: values 0..15, scale `d·sc`, minimum `dmin·m`.
#[target_feature(enable = "avx2")]
unsafe fn unpack_q4k(blk: &[u8], b0: usize, r: usize, s: &mut Strip) {
    let d = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
    let dmin = half::f16::from_le_bytes([blk[2], blk[3]]).to_f32();
    let scales = &blk[4..16];
    let low = _mm256_set1_epi8(0x0F);
    for j in 0..8 {
        let (sc, mn) = q4k_scale_min(j, scales);
        s.d[(b0 + j) * T + r] = d * sc as f32;
        s.d2[(b0 + j) * T + r] = dmin * mn as f32;
        // Each 32 bytes hold two sub-blocks: the low nibbles, then the high ones.
        let bytes = _mm256_loadu_si256(blk.as_ptr().add(16 + (j / 2) * 32) as *const __m256i);
        let q = if j % 2 == 0 {
            _mm256_and_si256(bytes, low)
        } else {
            _mm256_and_si256(_mm256_srli_epi16::<4>(bytes), low)
        };
        _mm256_storeu_si256(
            s.w.as_mut_ptr().add(((b0 + j) * T + r) * QK) as *mut __m256i,
            q,
        );
    }
}

/// One Q6_K super-block (128 bytes of low nibbles, 64 of high bit pairs, 16 signed scales,
/// `d`) of weight row `r` into blocks `b0..b0 + 8`: values −32..31, each block's two
/// sub-blocks' scales `d·sc` in `d` and `d2`.
#[target_feature(enable = "avx2")]
unsafe fn unpack_q6k(blk: &[u8], b0: usize, r: usize, s: &mut Strip) {
    let d = half::f16::from_le_bytes([blk[208], blk[209]]).to_f32();
    let low = _mm256_set1_epi8(0x0F);
    let two = _mm256_set1_epi8(3);
    let bias = _mm256_set1_epi8(32);
    for h in 0..2 {
        let ql = blk.as_ptr().add(64 * h);
        let qh = _mm256_loadu_si256(blk.as_ptr().add(128 + 32 * h) as *const __m256i);
        let ql0 = _mm256_loadu_si256(ql as *const __m256i);
        let ql1 = _mm256_loadu_si256(ql.add(32) as *const __m256i);
        // Four blocks of 32 per half: low nibbles of the first and second 32 bytes, then
        // their high nibbles; bit pairs 0-1, 2-3, 4-5, 6-7 of the high bytes, in order.
        let nibbles = [
            _mm256_and_si256(ql0, low),
            _mm256_and_si256(ql1, low),
            _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), low),
            _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), low),
        ];
        let highs = [
            _mm256_and_si256(qh, two),
            _mm256_and_si256(_mm256_srli_epi16::<2>(qh), two),
            _mm256_and_si256(_mm256_srli_epi16::<4>(qh), two),
            _mm256_and_si256(_mm256_srli_epi16::<6>(qh), two),
        ];
        for g in 0..4 {
            let b = b0 + 4 * h + g;
            let q = _mm256_sub_epi8(
                _mm256_or_si256(nibbles[g], _mm256_slli_epi16::<4>(highs[g])),
                bias,
            );
            _mm256_storeu_si256(s.w.as_mut_ptr().add((b * T + r) * QK) as *mut __m256i, q);
            let sc = &blk[192 + 8 * h + 2 * g..];
            s.d[b * T + r] = d * (sc[0] as i8) as f32;
            s.d2[b * T + r] = d * (sc[1] as i8) as f32;
        }
    }
}
