//! Dense layers in 8-bit integers (`embed.precision = "int8"`).
//!
//! Weights are quantised once, at load, symmetrically per output column (`w ≈ sw[c]·q`, `q`
//! in −127..=127); activations are quantised per row on the fly (`x ≈ sx[r]·(u − 128)`, `u`
//! in 1..=255, 128 standing for zero). A product is then an integer dot product,
//!
//! `Σₖ x·w ≈ sx·sw·(Σₖ u·q − 128·Σₖ q)`,
//!
//! whose correction term is computed with the weights. On CPUs with AVX-512 VNNI the dot
//! products run on `vpdpbusd` (64 byte multiply-adds per instruction, four times the f32
//! fused multiply-add's 16); elsewhere a portable loop computes the same integers (correct,
//! not fast).
//!
//! A few inputs of each row are far larger than the rest (a transformer's outlier channels,
//! the same few token after token). Scaling a row to them would leave every other input a
//! handful of levels: with all-MiniLM-L6-v2 a two-token input fell to cosine 0.986 against
//! the f32 vectors. Inputs beyond [`OUTLIER`] times the row's root mean square are left out
//! of the integer product and added in f32 (with the weights' 8-bit values), which lifted the
//! worst cosine on the reference sentences to 0.996 for about 5 % of the int8 speed.
//!
//! Weights are packed in panels of [`NR`] columns: for each group of four inputs, the four
//! bytes of each column side by side, which is the operand layout `vpdpbusd` wants.

use rayon::prelude::*;

/// Output columns per panel (three 16-lane vectors).
pub(crate) const NR: usize = 48;
/// Rows per micro-kernel call.
pub(crate) const MR: usize = 8;
/// Rows per rayon task.
const ROWS_PER_TASK: usize = 32;
/// The byte that stands for an activation of zero.
const ZERO: u8 = 128;
/// Inputs larger than this many times their row's root mean square are multiplied in f32.
const OUTLIER: f32 = 6.0;

/// A `(k → n)` linear layer's weights in 8 bits.
pub(crate) struct QLinear {
    k: usize,
    n: usize,
    /// `k` rounded up to a multiple of 4.
    kp: usize,
    /// Panels of [`NR`] columns, each `kp / 4` groups of `NR × 4` bytes (`i8` values).
    packed: Vec<i8>,
    /// The same values row by row (`k × np`), for the outlier inputs' f32 products.
    rows: Vec<i8>,
    /// Per output column (padded to whole panels): the weight scale.
    scale: Vec<f32>,
    /// Per output column: `128 · Σₖ q`.
    comp: Vec<i32>,
}

impl QLinear {
    /// Quantises `w`, `(k, n)` row-major (inputs × outputs).
    pub(crate) fn new(w: &[f32], k: usize, n: usize) -> QLinear {
        assert_eq!(w.len(), k * n, "weight shape");
        let kp = k.div_ceil(4) * 4;
        let panels = n.div_ceil(NR);
        let np = panels * NR;
        let mut scale = vec![1.0f32; np];
        let mut comp = vec![0i32; np];
        let mut packed = vec![0i8; panels * kp * NR];
        let mut rows = vec![0i8; k * np];
        for c in 0..n {
            let amax = (0..k).map(|r| w[r * n + c].abs()).fold(0.0f32, f32::max);
            let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
            scale[c] = s;
            let (p, j) = (c / NR, c % NR);
            let mut sum = 0i32;
            for r in 0..k {
                let q = (w[r * n + c] / s).round().clamp(-127.0, 127.0) as i8;
                sum += q as i32;
                let (g, t) = (r / 4, r % 4);
                packed[p * kp * NR + g * NR * 4 + j * 4 + t] = q;
                rows[r * np + c] = q;
            }
            comp[c] = i32::from(ZERO) * sum;
        }
        QLinear {
            k,
            n,
            kp,
            packed,
            rows,
            scale,
            comp,
        }
    }

    /// `a (m × k, row-major) · W`, `m × n` row-major. Call inside the rayon pool that should
    /// do the work.
    pub(crate) fn forward(&self, a: &[f32], m: usize) -> Vec<f32> {
        assert_eq!(a.len(), m * self.k, "input shape");
        let n = self.n;
        let mut out = vec![0.0f32; m * n];
        out.par_chunks_mut(ROWS_PER_TASK * n)
            .zip(a.par_chunks(ROWS_PER_TASK * self.k))
            .for_each_init(Scratch::default, |scratch, (out, a)| {
                vnni::task(self, a, out, scratch)
            });
        out
    }
}

/// Per-thread buffers of [`task`].
#[derive(Default)]
struct Scratch {
    /// Quantised rows, `kp` bytes each.
    q: Vec<u8>,
    /// Their scales.
    sx: Vec<f32>,
    /// Outliers left out of the quantised rows, `(input, value)`, row after row.
    outliers: Vec<(u32, f32)>,
    /// Per row, where its outliers start in `outliers` (one more entry than rows).
    starts: Vec<u32>,
}

/// The rows of `a` times every panel, into `out`: quantise the rows, then run `kernel` on
/// each block of [`MR`] rows and each panel, and scale the integers back. Plain loops, inlined
/// into the caller, so that LLVM vectorises them for the caller's instruction set.
#[inline(always)]
fn task(
    lin: &QLinear,
    a: &[f32],
    out: &mut [f32],
    scratch: &mut Scratch,
    kernel: impl Fn(&[u8], usize, &[i8], &mut [[i32; NR]; MR]),
) {
    let (k, kp, n) = (lin.k, lin.kp, lin.n);
    let rows = a.len() / k;
    let Scratch {
        q,
        sx,
        outliers,
        starts,
    } = scratch;
    q.clear();
    q.resize(rows.div_ceil(MR) * MR * kp, ZERO);
    sx.clear();
    outliers.clear();
    starts.clear();
    for (row, qrow) in a.chunks_exact(k).zip(q.chunks_exact_mut(kp)) {
        starts.push(outliers.len() as u32);
        // A few inputs of a transformer's rows are far larger than the rest (the same few
        // channels, token after token). Scaling the row to them would leave the others a
        // handful of levels, so inputs beyond OUTLIER × the row's RMS are left out of the
        // integer product and added back in f32 below.
        let (sumsq, max_abs) = sum_squares_and_max(row);
        let limit = OUTLIER * (sumsq / k as f32).sqrt();
        let has_outliers = max_abs > limit;
        let amax = if has_outliers {
            max_abs_within(row, limit)
        } else {
            max_abs
        };
        let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        let inv = 1.0 / s;
        // Round half up (`+ 0.5`, truncate) on values shifted to 1.5..=255.5: no libm call,
        // so the loop vectorises. Outliers become zero here.
        for (o, &x) in qrow.iter_mut().zip(row) {
            let v = if x.abs() <= limit { x * inv } else { 0.0 };
            *o = (v.clamp(-127.0, 127.0) + f32::from(ZERO) + 0.5) as i32 as u8;
        }
        if has_outliers {
            // Sixteen at a time: most runs hold none, and a run's test vectorises.
            for (b, run) in row.chunks(LANES).enumerate() {
                if run.iter().fold(false, |any, x| any | (x.abs() > limit)) {
                    for (c, &x) in run.iter().enumerate() {
                        if x.abs() > limit {
                            outliers.push(((b * LANES + c) as u32, x));
                        }
                    }
                }
            }
        }
        sx.push(s);
    }
    starts.push(outliers.len() as u32);
    let panel_len = kp * NR;
    let np = lin.scale.len();
    let mut acc = [[0i32; NR]; MR];
    for (p, panel) in lin.packed.chunks_exact(panel_len).enumerate() {
        let c0 = p * NR;
        let width = NR.min(n - c0);
        let (comp, scale) = (&lin.comp[c0..c0 + NR], &lin.scale[c0..c0 + NR]);
        for (blk, qa) in q.chunks_exact(MR * kp).enumerate() {
            kernel(qa, kp, panel, &mut acc);
            for (r, acc_row) in acc.iter().enumerate() {
                let i = blk * MR + r;
                if i >= rows {
                    break;
                }
                let s = sx[i];
                let mut vals = [0.0f32; NR];
                for (((v, &a), &c), &w) in vals.iter_mut().zip(acc_row).zip(comp).zip(scale) {
                    *v = (a - c) as f32 * (s * w);
                }
                for &(input, x) in &outliers[starts[i] as usize..starts[i + 1] as usize] {
                    let w = &lin.rows[input as usize * np + c0..][..NR];
                    for ((v, &w), &ws) in vals.iter_mut().zip(w).zip(scale) {
                        *v += x * ws * f32::from(w);
                    }
                }
                out[i * n + c0..i * n + c0 + width].copy_from_slice(&vals[..width]);
            }
        }
    }
}

/// Independent accumulators in the row reductions below, so that they vectorise without
/// reassociating a float chain.
const LANES: usize = 16;

/// `Σ x²` and `max |x|` of `row`.
#[inline(always)]
fn sum_squares_and_max(row: &[f32]) -> (f32, f32) {
    let (mut sum, mut max) = ([0.0f32; LANES], [0.0f32; LANES]);
    let (chunks, rest) = row.as_chunks::<LANES>();
    for c in chunks {
        for l in 0..LANES {
            sum[l] += c[l] * c[l];
            max[l] = if c[l].abs() > max[l] {
                c[l].abs()
            } else {
                max[l]
            };
        }
    }
    let mut s: f32 = sum.iter().sum();
    let mut m = max.iter().fold(0.0f32, |m, &x| m.max(x));
    for &x in rest {
        s += x * x;
        m = m.max(x.abs());
    }
    (s, m)
}

/// `max |x|` over the values of `row` no larger than `limit`.
#[inline(always)]
fn max_abs_within(row: &[f32], limit: f32) -> f32 {
    let mut max = [0.0f32; LANES];
    let (chunks, rest) = row.as_chunks::<LANES>();
    for c in chunks {
        for l in 0..LANES {
            let a = c[l].abs();
            max[l] = if a <= limit && a > max[l] { a } else { max[l] };
        }
    }
    let m = max.iter().fold(0.0f32, |m, &x| m.max(x));
    rest.iter()
        .map(|x| x.abs())
        .filter(|&a| a <= limit)
        .fold(m, f32::max)
}

/// The integer dot products of [`MR`] rows and one panel, without SIMD intrinsics.
fn portable_kernel(qa: &[u8], kp: usize, panel: &[i8], acc: &mut [[i32; NR]; MR]) {
    for (r, acc_row) in acc.iter_mut().enumerate() {
        let row = &qa[r * kp..(r + 1) * kp];
        acc_row.fill(0);
        for (g, b) in panel.chunks_exact(NR * 4).enumerate() {
            let a = &row[g * 4..g * 4 + 4];
            for (j, w) in b.chunks_exact(4).enumerate() {
                acc_row[j] += (0..4)
                    .map(|t| i32::from(a[t]) * i32::from(w[t]))
                    .sum::<i32>();
            }
        }
    }
}

/// The AVX-512 VNNI micro-kernel. The only `unsafe` in docket: calling a
/// `#[target_feature]` function, once the CPU has been checked for those features.
#[allow(unsafe_code)]
mod vnni {
    use super::{MR, NR, QLinear, Scratch, portable_kernel};

    /// Whether this CPU runs [`kernel`] natively.
    pub(super) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// [`super::task`] compiled for AVX-512 with the VNNI micro-kernel where the CPU has it,
    /// else with the portable loops.
    pub(super) fn task(lin: &QLinear, a: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: the CPU has every feature `task_avx512` is compiled for (checked just
            // above; the check is a cached load after the first call).
            unsafe { x86::task_avx512(lin, a, out, scratch) };
            return;
        }
        super::task(lin, a, out, scratch, portable_kernel);
    }

    /// `acc[r][j] = Σ_g Σ_t qa[r][4g+t] · panel[g][j][t]` for [`MR`] rows (`kp` bytes each)
    /// and the [`NR`] columns of one panel.
    #[cfg(test)]
    pub(super) fn kernel(qa: &[u8], kp: usize, panel: &[i8], acc: &mut [[i32; NR]; MR]) {
        assert!(qa.len() >= MR * kp && panel.len() >= kp / 4 * NR * 4);
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: the CPU has every feature `kernel_avx512` is compiled for (checked
            // just above; the check is a cached load after the first call).
            unsafe { x86::kernel_avx512(qa, kp, panel, acc) };
            return;
        }
        portable_kernel(qa, kp, panel, acc);
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::arch::x86_64::{__m512i, _mm512_dpbusd_epi32, _mm512_set1_epi32};

        use super::{MR, NR, QLinear, Scratch};

        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        pub(super) fn task_avx512(
            lin: &QLinear,
            a: &[f32],
            out: &mut [f32],
            scratch: &mut Scratch,
        ) {
            super::super::task(lin, a, out, scratch, |qa, kp, panel, acc| {
                kernel_avx512(qa, kp, panel, acc)
            });
        }

        /// 16 lanes of i32 from 64 bytes, without a pointer.
        #[inline(always)]
        fn load(b: &[i8]) -> __m512i {
            let arr: [i8; 64] = b[..64].try_into().expect("64 bytes");
            bytemuck::cast(arr)
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        pub(super) fn kernel_avx512(qa: &[u8], kp: usize, panel: &[i8], acc: &mut [[i32; NR]; MR]) {
            const { assert!(NR == 48 && MR == 8) };
            let zero: __m512i = bytemuck::cast([0i32; 16]);
            let mut c = [[zero; 3]; MR];
            let rows: [&[u8]; MR] = std::array::from_fn(|r| &qa[r * kp..(r + 1) * kp]);
            for (g, b) in panel[..kp / 4 * NR * 4].chunks_exact(NR * 4).enumerate() {
                let b0 = load(&b[0..64]);
                let b1 = load(&b[64..128]);
                let b2 = load(&b[128..192]);
                for r in 0..MR {
                    let a = &rows[r][g * 4..g * 4 + 4];
                    let a = _mm512_set1_epi32(i32::from_le_bytes([a[0], a[1], a[2], a[3]]));
                    c[r][0] = _mm512_dpbusd_epi32(c[r][0], a, b0);
                    c[r][1] = _mm512_dpbusd_epi32(c[r][1], a, b1);
                    c[r][2] = _mm512_dpbusd_epi32(c[r][2], a, b2);
                }
            }
            for (out, c) in acc.iter_mut().zip(&c) {
                let v: [[i32; 16]; 3] = bytemuck::cast(*c);
                out[..16].copy_from_slice(&v[0]);
                out[16..32].copy_from_slice(&v[1]);
                out[32..].copy_from_slice(&v[2]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u32) -> f32 {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (*seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
    }

    #[test]
    fn int8_products_are_close_to_f32() {
        let mut seed = 7;
        // Shapes on and off the panel and row-block sizes.
        for (m, k, n) in [
            (1usize, 4usize, 48usize),
            (9, 38, 50),
            (70, 384, 96),
            (33, 130, 1),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
            let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed) * 0.1).collect();
            let q = QLinear::new(&w, k, n);
            let got = q.forward(&a, m);
            for r in 0..m {
                let want: Vec<f32> = (0..n)
                    .map(|c| (0..k).map(|i| a[r * k + i] * w[i * n + c]).sum())
                    .collect();
                let (mut dot, mut gg, mut ww) = (0.0f64, 0.0f64, 0.0f64);
                for (g, w) in got[r * n..(r + 1) * n].iter().zip(&want) {
                    dot += (*g as f64) * (*w as f64);
                    gg += (*g as f64).powi(2);
                    ww += (*w as f64).powi(2);
                }
                let cos = dot / (gg.sqrt() * ww.sqrt()).max(1e-30);
                assert!(cos > 0.999, "m {m} k {k} n {n} row {r}: cosine {cos}");
            }
        }
    }

    fn cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        dot / (na * nb).max(1e-30)
    }

    #[test]
    fn outlier_inputs_do_not_coarsen_the_rest_of_their_row() {
        let mut seed = 5;
        let (m, k, n) = (16usize, 384usize, 96usize);
        let mut a: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
        // Two channels forty times larger than the rest, as a transformer's outlier
        // channels are: scaled to them, every other input would get about three levels.
        for r in 0..m {
            a[r * k + 7] = 40.0;
            a[r * k + 200] = -35.0;
        }
        let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed) * 0.1).collect();
        let got = QLinear::new(&w, k, n).forward(&a, m);
        // The inliers' share of each output, the part the outliers would have drowned.
        for r in 0..m {
            let want: Vec<f32> = (0..n)
                .map(|c| (0..k).map(|i| a[r * k + i] * w[i * n + c]).sum())
                .collect();
            let outliers: Vec<f32> = (0..n)
                .map(|c| a[r * k + 7] * w[7 * n + c] + a[r * k + 200] * w[200 * n + c])
                .collect();
            let rest_want: Vec<f32> = want.iter().zip(&outliers).map(|(x, o)| x - o).collect();
            let rest_got: Vec<f32> = got[r * n..(r + 1) * n]
                .iter()
                .zip(&outliers)
                .map(|(x, o)| x - o)
                .collect();
            let c = cosine(&rest_got, &rest_want);
            assert!(c > 0.999, "row {r}: inliers' products at cosine {c}");
        }
    }

    #[test]
    fn the_vnni_kernel_matches_the_portable_one() {
        if !vnni::available() {
            return;
        }
        let mut seed = 3;
        let kp = 388;
        let qa: Vec<u8> = (0..MR * kp)
            .map(|_| (lcg(&mut seed) * 127.0 + 128.0) as u8)
            .collect();
        let panel: Vec<i8> = (0..kp * NR)
            .map(|_| (lcg(&mut seed) * 127.0) as i8)
            .collect();
        let (mut a, mut b) = ([[0i32; NR]; MR], [[1i32; NR]; MR]);
        vnni::kernel(&qa, kp, &panel, &mut a);
        portable_kernel(&qa, kp, &panel, &mut b);
        assert_eq!(a, b);
    }
}
