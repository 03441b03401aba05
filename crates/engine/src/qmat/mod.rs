//! Our own quantized matrix multiplication for the CPU, for the weight formats the default
//! model is made of (Q5_0 and Q8_0, blocks of 32 along K, so K = 896 is fine).
//!
//! Decoding is bound by memory bandwidth (23 GB/s for two threads here, with software
//! prefetch: see `PREFETCH`): every generated token streams every weight once, so the model
//! stays in Q5_0 (35% fewer bytes than Q8_0) and the kernels must unpack it faster than
//! memory delivers it. Activations are quantized to 8 bits per block of 32, as llama.cpp
//! does. The kernel is the best the CPU has, chosen at run time:
//! - `amx`: Q5_0, Q8_0, Q4_K and Q6_K on AMX tiles, for 8 rows or more (prefill; 4–5×
//!   the VNNI kernel's throughput there);
//! - `avx512`: Q5_0 and Q8_0 with AVX-512 VNNI, one or many rows (decoding; prefill
//!   without AMX);
//! - `avx2`: Q5_0 and Q8_0 with AVX2, tiles of 64 weight rows by 8 activation rows (CPUs
//!   without AVX-512 VNNI);
//! - Q4_K and Q6_K without AMX or for few rows: candle's per-row dot products.
//!
//! `row_dot_scalar` is the reference both are tested against.

use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;
use std::sync::Arc;

const QK: usize = 32;

/// How far ahead of the weights being read the decoding kernels ask for the next ones, in
/// bytes. Without it, decoding read weights at ~9 GB/s of this machine's 23 (a two-thread
/// read of 1 GiB; the hardware prefetcher of this virtual machine does not keep up): one
/// software prefetch per 64 bytes, 4 KiB ahead, took the default model from 22 to 35 tokens/s
/// (1 and 2 KiB ahead were slower; 8 KiB no faster).
const PREFETCH: usize = 4096;

/// Asks for the cache lines of `len` bytes from `p + PREFETCH` on (a hint: any address is
/// fine, nothing is read).
#[inline]
fn prefetch_ahead(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..len).step_by(64) {
        // Safety: prefetching never faults, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                p.wrapping_add(PREFETCH + off) as *const i8,
            )
        };
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// f16 scale, 4 bytes of fifth bits, 16 bytes of nibbles: 22 bytes per 32 weights.
    Q5_0,
    /// f16 scale, 32 signed bytes: 34 bytes per 32 weights.
    Q8_0,
    /// Super-blocks of 256: eight sub-blocks of 32 with 6-bit scales and minimums, 4-bit
    /// values; 144 bytes.
    Q4K,
    /// Super-blocks of 256: sixteen sub-blocks of 16 with 8-bit scales, 6-bit values; 210
    /// bytes.
    Q6K,
}

/// Weights per K-quant super-block.
const QK_K: usize = 256;

impl WeightFormat {
    fn block_bytes(self) -> usize {
        match self {
            Self::Q5_0 => 22,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q6K => 210,
        }
    }

    /// Weights per block along K.
    fn block_len(self) -> usize {
        match self {
            Self::Q5_0 | Self::Q8_0 => QK,
            Self::Q4K | Self::Q6K => QK_K,
        }
    }

    fn k_quant(self) -> bool {
        matches!(self, Self::Q4K | Self::Q6K)
    }
}

/// A `[n, k]` weight matrix (n output rows) in its GGUF block layout.
pub struct QMat {
    format: WeightFormat,
    n: usize,
    k: usize,
    /// Shared with candle's matmul for the same weights: one copy in memory.
    tensor: Arc<QTensor>,
}

/// An output buffer that parallel tasks write disjoint parts of.
pub(crate) struct SharedOut(pub(crate) *mut f32);
// Safety: every user writes disjoint ranges (see `QMat::matmul`, `attention::attend`).
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Safety: `r * m + m` is inside the buffer and no other task writes row `r`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, r: usize, m: usize) -> &mut [f32] {
        self.slice(r * m, m)
    }

    /// Safety: `start + len` is inside the buffer and no other task writes that range.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Activations quantized per block of 32: `qs[m][k]`, `d[m][k/32]`.
struct QAct {
    qs: Vec<i8>,
    d: Vec<f32>,
    /// For the VNNI kernel only (else empty): `qs + 128` as unsigned bytes, and each block's
    /// scale repeated in eight lanes.
    xu: Vec<u8>,
    dx: Vec<f32>,
}

impl QMat {
    /// Takes the matrix if its format has a kernel here and the CPU can run it.
    pub fn from_qtensor(t: Arc<QTensor>) -> Option<Self> {
        let format = match t.dtype() {
            GgmlDType::Q5_0 => WeightFormat::Q5_0,
            GgmlDType::Q8_0 => WeightFormat::Q8_0,
            GgmlDType::Q4K => WeightFormat::Q4K,
            GgmlDType::Q6K => WeightFormat::Q6K,
            _ => return None,
        };
        if !simd_available() {
            return None;
        }
        let (n, k) = t.shape().dims2().ok()?;
        if !k.is_multiple_of(format.block_len()) {
            return None;
        }
        // CPU storage lends its bytes; anything else (a GPU tensor) has no kernel here.
        let std::borrow::Cow::Borrowed(data) = t.data().ok()? else {
            return None;
        };
        if data.len() != n * k / format.block_len() * format.block_bytes() {
            return None;
        }
        // K-quant rows are read as candle's block structs (f16 fields: 2-byte alignment).
        if format.k_quant() && !(data.as_ptr() as usize).is_multiple_of(2) {
            return None;
        }
        Some(Self {
            format,
            n,
            k,
            tensor: t,
        })
    }

    /// Whether Q5_0 weights have a kernel here as fast as Q8_0's (per weight, faster).
    pub fn fast_q5_0() -> bool {
        simd_available()
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn cols(&self) -> usize {
        self.k
    }

    /// `out[m][n] = x[m][k] · W[n][k]`.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_using(x, m, Kernel::best(m))
    }

    /// `kernel` must be one this CPU runs (`Kernel::choices()`; tests run each).
    fn matmul_using(&self, x: &[f32], m: usize, kernel: Kernel) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "activation shape");
        let kernel = match (kernel, self.format) {
            (Kernel::Amx, _) => Kernel::Amx,
            (_, WeightFormat::Q4K | WeightFormat::Q6K) => return self.matmul_k_quant(x, m),
            (k, _) => k,
        };
        let data = self
            .tensor
            .data()
            .expect("CPU storage (checked at construction)");
        let nb = self.k / QK;
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Amx {
            let packed = amx::Packed::new(x, m, nb);
            let mut out = vec![0f32; m * self.n];
            let dst = SharedOut(out.as_mut_ptr());
            candle_core::utils::barrier_pool().execute_chunked(self.n.div_ceil(16), |strips| {
                // Safety: AMX is chosen only where the CPU has it and AVX-512; each strip
                // of 16 rows is one task's, so are its output columns.
                unsafe { amx::strips(self.format, &data, self.n, &packed, strips, &dst) }
            });
            return out;
        }
        let act = quantize(x, m, self.k, kernel == Kernel::Avx512);
        let row_bytes = self.k / self.format.block_len() * self.format.block_bytes();
        let mut out_t = vec![0f32; self.n * m]; // [n][m]
        let dst = SharedOut(out_t.as_mut_ptr());
        // candle's worker pool: its threads spin briefly between calls, which matters at
        // ~170 small products per generated token (a sleeping pool costs a wake-up each).
        candle_core::utils::barrier_pool().execute_chunked(self.n, |rows| {
            #[cfg(target_arch = "x86_64")]
            if kernel == Kernel::Avx2 {
                // Safety: QMat is only built when the CPU has AVX2 and FMA (F16C comes with
                // them); `data` holds all n rows; each task gets its own rows.
                unsafe { avx2::rows(self.format, &data, row_bytes, rows, nb, &act, m, &dst) };
                return;
            }
            for r in rows {
                let w = &data[r * row_bytes..(r + 1) * row_bytes];
                // Safety: each row r is written by exactly one task, inside the buffer.
                let out_row = unsafe { dst.row(r, m) };
                if kernel == Kernel::Avx512 {
                    // Safety: checked above that the CPU has the features; `act` was
                    // quantized for it.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        avx512::rows(self.format, w, nb, &act, m, out_row)
                    };
                    continue;
                }
                row_dot_scalar(self.format, w, nb, &act, m, out_row);
            }
        });
        transpose(out_t, self.n, m)
    }
}

impl QMat {
    /// Q4_K and Q6_K for a few rows (decoding): candle's dot products of one weight row and
    /// one activation row, on the weights' own layout. candle's matmul would also build a
    /// second, repacked copy of every K-quant matrix (130 MB for the default model).
    fn matmul_k_quant(&self, x: &[f32], m: usize) -> Vec<f32> {
        use candle_core::quantized::k_quants::{BlockQ4K, BlockQ6K, BlockQ8K, GgmlType};
        let kb = self.k / QK_K;
        let mut xq = vec![BlockQ8K::zeros(); m * kb];
        for (row, blocks) in x.chunks(self.k).zip(xq.chunks_mut(kb)) {
            BlockQ8K::from_float(row, blocks);
        }
        let data = self
            .tensor
            .data()
            .expect("CPU storage (checked at construction)");
        let row_bytes = kb * self.format.block_bytes();
        let mut out_t = vec![0f32; self.n * m];
        let dst = SharedOut(out_t.as_mut_ptr());
        let (format, k) = (self.format, self.k);
        candle_core::utils::barrier_pool().execute_chunked(self.n, |rows| {
            for r in rows {
                let w = data[r * row_bytes..(r + 1) * row_bytes].as_ptr();
                if m == 1 {
                    prefetch_ahead(w, row_bytes);
                }
                // Safety: each row r is written by exactly one task, inside the buffer.
                let out_row = unsafe { dst.row(r, m) };
                for (o, xs) in out_row.iter_mut().zip(xq.chunks(kb)) {
                    // Safety: the row is `kb` blocks of the format (checked at construction:
                    // length and 2-byte alignment; the structs are plain bytes and f16s).
                    *o = unsafe {
                        match format {
                            WeightFormat::Q4K => {
                                let w = std::slice::from_raw_parts(w as *const BlockQ4K, kb);
                                BlockQ4K::vec_dot(k, w, xs)
                            }
                            _ => {
                                let w = std::slice::from_raw_parts(w as *const BlockQ6K, kb);
                                BlockQ6K::vec_dot(k, w, xs)
                            }
                        }
                    };
                }
            }
        });
        transpose(out_t, self.n, m)
    }
}

/// `[n][m]` to `[m][n]`.
fn transpose(out_t: Vec<f32>, n: usize, m: usize) -> Vec<f32> {
    if m == 1 {
        return out_t;
    }
    let mut out = vec![0f32; m * n];
    for (r, col) in out_t.chunks(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            out[i * n + r] = *v;
        }
    }
    out
}

/// Which kernel multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// AVX2, for CPUs without AVX-512 VNNI.
    Avx2,
    /// AVX-512 VNNI, Q5_0 and Q8_0.
    Avx512,
    /// AMX tiles, every format, for products of at least `AMX_MIN_ROWS` rows.
    Amx,
}

/// Below this many activation rows AMX's 16-row tiles are mostly padding: at 4 rows it
/// matched the VNNI kernel, at 8 it was twice as fast (4864 × 896 Q5_0, this machine).
const AMX_MIN_ROWS: usize = 8;

impl Kernel {
    /// Called for every product (~170 per generated token): no allocation.
    fn best(m: usize) -> Self {
        if !vnni_available() {
            Self::Avx2
        } else if m >= AMX_MIN_ROWS && amx_available() {
            Self::Amx
        } else {
            Self::Avx512
        }
    }

    /// The kernels this CPU runs (AVX2 and FMA are required to build a `QMat` at all).
    #[cfg(test)]
    fn choices() -> Vec<Self> {
        let mut v = vec![Self::Avx2];
        if vnni_available() {
            v.push(Self::Avx512);
            if amx_available() {
                v.push(Self::Amx);
            }
        }
        v
    }
}

/// AMX's kernel also needs the AVX-512 ones' features (`vnni_available`).
fn amx_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        amx::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// AVX-512 with VNNI and VBMI: the Q5_0 and Q8_0 kernel for few rows (decoding).
fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            avx512f_available()
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512vbmi")
                && is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// AVX-512F, unless `MOAT_NO_AVX512` switches every AVX-512 kernel off (here and in
/// attention).
pub(crate) fn avx512f_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            is_x86_feature_detected!("avx512f") && std::env::var_os("MOAT_NO_AVX512").is_none()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn quantize(x: &[f32], m: usize, k: usize, vnni: bool) -> QAct {
    let mut qs = vec![0i8; m * k];
    let mut d = vec![0f32; m * k / QK];
    for ((xb, qb), db) in x.chunks(QK).zip(qs.chunks_mut(QK)).zip(d.iter_mut()) {
        *db = quantize_block(xb, qb);
    }
    let (mut xu, mut dx) = (Vec::new(), Vec::new());
    if vnni {
        xu = qs.iter().map(|v| (*v as u8) ^ 0x80).collect();
        dx = d.iter().flat_map(|v| [*v; 8]).collect();
    }
    QAct { qs, d, xu, dx }
}

/// One block of 32 activations to 8 bits: the values into `q`, and their scale.
#[inline]
fn quantize_block(x: &[f32], q: &mut [i8]) -> f32 {
    // Eight lanes, so that the maximum vectorizes (a fold over one float stays scalar).
    let mut lanes = [0f32; 8];
    for c in x.chunks_exact(8) {
        for (m, v) in lanes.iter_mut().zip(c) {
            *m = m.max(v.abs());
        }
    }
    let amax = lanes.iter().fold(0f32, |a, v| a.max(*v));
    let scale = amax / 127.0;
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    // Ties round to even here (llama.cpp rounds them away from zero): a product lands
    // exactly on a half only by chance, and the rounding vectorizes.
    for (o, v) in q.iter_mut().zip(x) {
        *o = crate::fastmath::round_to_i8(v * inv);
    }
    // The scale is kept at f16 precision, as in a Q8_0 block: the same rounding as candle's
    // and llama.cpp's kernels, so all three give the same logits.
    f16::from_f32(scale).to_f32()
}

/// The 32 signed weights of one block, and its scale.
fn unpack_scalar(format: WeightFormat, b: &[u8]) -> ([i8; QK], f32) {
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    let mut w = [0i8; QK];
    match format {
        WeightFormat::Q8_0 => {
            for (o, v) in w.iter_mut().zip(&b[2..34]) {
                *o = *v as i8;
            }
        }
        WeightFormat::Q5_0 => {
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            for j in 0..16 {
                let lo = (b[6 + j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
                let hi = (b[6 + j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
                w[j] = lo as i8 - 16;
                w[j + 16] = hi as i8 - 16;
            }
        }
        WeightFormat::Q4K | WeightFormat::Q6K => unreachable!("K-quants have no 32-blocks"),
    }
    (w, d)
}

/// Weight block `b` (its bytes `blk`) times the same block of activation row `row`, scaled.
fn block_dot_scalar(
    format: WeightFormat,
    blk: &[u8],
    act: &QAct,
    row: usize,
    b: usize,
    nb: usize,
) -> f32 {
    let (wq, dw) = unpack_scalar(format, blk);
    let start = (row * nb + b) * QK;
    let xq = &act.qs[start..start + QK];
    let dot: i32 = wq.iter().zip(xq).map(|(a, c)| *a as i32 * *c as i32).sum();
    dot as f32 * dw * act.d[row * nb + b]
}

/// Reference implementation, for tests and other architectures.
fn row_dot_scalar(
    format: WeightFormat,
    w: &[u8],
    nb: usize,
    act: &QAct,
    m: usize,
    out: &mut [f32],
) {
    let bb = format.block_bytes();
    for (i, o) in out.iter_mut().enumerate().take(m) {
        let mut sum = 0f32;
        for b in 0..nb {
            sum += block_dot_scalar(format, &w[b * bb..(b + 1) * bb], act, i, b, nb);
        }
        *o = sum;
    }
}

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module, Tensor};
    use rand::{Rng, SeedableRng};

    fn check(dtype: GgmlDType, n: usize, k: usize, m: usize) {
        let mut rng = rand::rngs::StdRng::seed_from_u64((n * 31 + k * 7 + m) as u64);
        let w: Vec<f32> = (0..n * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let x: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let wt =
            QTensor::quantize(&Tensor::from_vec(w, (n, k), &Device::Cpu).unwrap(), dtype).unwrap();
        // Reference: the dequantized weights times the f32 activations.
        let wd = wt.dequantize(&Device::Cpu).unwrap();
        let xt = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap();
        let want: Vec<f32> = xt
            .matmul(&wd.t().unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let wt = Arc::new(wt);
        let q = QMat::from_qtensor(wt.clone()).expect("kernel available");
        for kernel in Kernel::choices() {
            check_one(&q, &wt, &xt, &x, &want, (dtype, n, k, m), kernel);
        }
    }

    fn check_one(
        q: &QMat,
        wt: &Arc<QTensor>,
        xt: &Tensor,
        x: &[f32],
        want: &[f32],
        (dtype, n, k, m): (GgmlDType, usize, usize, usize),
        kernel: Kernel,
    ) {
        let got = q.matmul_using(x, m, kernel);
        let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        let max_diff = |a: &[f32]| {
            a.iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        };
        let err = max_diff(want);
        // Activation quantization to 8 bits costs about 1% of the output range.
        assert!(
            err < 0.02 * scale,
            "{dtype:?} n={n} k={k} m={m} {kernel:?}: error {err} of {scale}"
        );
        // And the candle kernel (which also quantizes activations) agrees as closely; candle's
        // Q5_0 kernel needs K to be a multiple of 64.
        if !k.is_multiple_of(64) {
            return;
        }
        let cq = candle_core::quantized::QMatMul::from_arc(wt.clone()).unwrap();
        let theirs: Vec<f32> = cq
            .forward(xt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let err2 = max_diff(&theirs);
        assert!(
            err2 < 0.02 * scale,
            "{dtype:?} vs candle: {err2} of {scale}"
        );
    }

    #[test]
    fn kernels_match_the_reference_on_awkward_shapes() {
        let choices = Kernel::choices();
        if !choices.contains(&Kernel::Amx) {
            eprintln!("this CPU has no AMX (or MOAT_NO_AMX is set): testing {choices:?} only");
        }
        for dtype in [GgmlDType::Q5_0, GgmlDType::Q8_0] {
            for (n, k) in [(128, 896), (37, 4864), (5, 32)] {
                for m in [1, 3, 4, 7, 9, 16, 33, 64, 513] {
                    check(dtype, n, k, m);
                }
            }
        }
        // K-quants: K is a multiple of their super-blocks of 256.
        for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
            for (n, k) in [(37, 4864), (130, 512), (3, 256)] {
                for m in [1, 7, 8, 17, 64, 513] {
                    check(dtype, n, k, m);
                }
            }
        }
    }

    #[test]
    fn vocabulary_sized_output_matrix() {
        // The output matrix of the default model: 151,936 rows of K = 896 in Q8_0 (decoding
        // and the last prefill row use it). Random blocks (small scales, any quants), checked
        // against the scalar reference on every 1,009th row.
        let (n, k) = (151_936, 896);
        let nb = k / QK;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut bytes = vec![0u8; n * nb * 34];
        for blk in bytes.chunks_mut(34) {
            let d = f16::from_f32(rng.gen_range(0.001..0.01));
            blk[..2].copy_from_slice(&d.to_le_bytes());
            rng.fill(&mut blk[2..]);
        }
        let storage = candle_core::quantized::QStorage::from_data(
            std::borrow::Cow::Borrowed(&bytes),
            &Device::Cpu,
            GgmlDType::Q8_0,
        )
        .unwrap();
        let q = QMat::from_qtensor(Arc::new(QTensor::new(storage, (n, k)).unwrap())).unwrap();
        let row_bytes = nb * 34;
        for m in [1, 7, 64] {
            let x: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let act = quantize(&x, m, k, false);
            for kernel in Kernel::choices() {
                let got = q.matmul_using(&x, m, kernel);
                for r in (0..n).step_by(1009) {
                    let mut want = vec![0f32; m];
                    let w = &bytes[r * row_bytes..(r + 1) * row_bytes];
                    row_dot_scalar(WeightFormat::Q8_0, w, nb, &act, m, &mut want);
                    for (i, a) in want.iter().enumerate() {
                        let b = got[i * n + r];
                        assert!(
                            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                            "{kernel:?} m={m} row {r}, activation row {i}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn scalar_unpack_and_simd_agree_exactly() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        // 96 = three blocks: an odd count exercises the tail after the two-block steps.
        let (n, k) = (9, 96);
        let w: Vec<f32> = (0..n * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        for (dtype, m) in [GgmlDType::Q5_0, GgmlDType::Q8_0]
            .into_iter()
            .flat_map(|d| [(d, 1), (d, 5), (d, 13), (d, 21)])
        {
            let x: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let wt = QTensor::quantize(
                &Tensor::from_vec(w.clone(), (n, k), &Device::Cpu).unwrap(),
                dtype,
            )
            .unwrap();
            let q = QMat::from_qtensor(Arc::new(wt)).unwrap();
            let data = q.tensor.data().unwrap();
            let act = quantize(&x, m, k, false);
            let bb = q.format.block_bytes() * k / QK;
            for kernel in Kernel::choices() {
                let fast = q.matmul_using(&x, m, kernel);
                for r in 0..n {
                    let mut out = vec![0f32; m];
                    row_dot_scalar(
                        q.format,
                        &data[r * bb..(r + 1) * bb],
                        k / QK,
                        &act,
                        m,
                        &mut out,
                    );
                    for i in 0..m {
                        let (a, b) = (out[i], fast[i * n + r]);
                        assert!(
                            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                            "{dtype:?} {kernel:?} r={r} i={i}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
