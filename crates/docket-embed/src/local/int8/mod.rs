//! Dense layers in 8-bit integers (`embed.precision = "int8"`).
//!
//! Weights are quantised once, at load, symmetrically per output column (`w ≈ sw[c]·q`, `q`
//! in −127..=127); activations are quantised per row on the fly (`x ≈ sx[r]·(u − 128)`, `u`
//! in 1..=255, 128 standing for zero). A product is then an integer dot product,
//!
//! `Σₖ x·w ≈ sx·sw·(Σₖ u·q − 128·Σₖ q)`,
//!
//! whose correction term is computed with the weights. Three kernels compute the same
//! integers, the fastest the CPU has picked once ([`kernel_name`]):
//!
//! - Intel AMX (`tdpbusd`): a 16 × 64 byte tile times a 64 × 16 tile in one instruction,
//!   16,384 byte multiply-adds; Linux lends the tile registers to a process that asks
//!   (`arch_prctl`), and a CPU or kernel without them is simply not offered this kernel;
//! - AVX-512 VNNI (`vpdpbusd`): 64 byte multiply-adds per instruction, four times the f32
//!   fused multiply-add's 16;
//! - a portable loop elsewhere (correct, not fast).
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

/// Output columns per panel (three 16-lane vectors, or three AMX tiles' columns).
pub(crate) const NR: usize = 48;
/// Rows per VNNI (and portable) micro-kernel call.
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

    /// `a (m × k, row-major) · W`, `m × n` row-major, on the fastest kernel this CPU has.
    /// Call inside the rayon pool that should do the work.
    pub(crate) fn forward(&self, a: &[f32], m: usize) -> Vec<f32> {
        self.forward_on(Kernel::best(self.kp), a, m)
    }

    /// [`QLinear::forward`] on `kernel`, or on the next one down where it is not usable here.
    fn forward_on(&self, kernel: Kernel, a: &[f32], m: usize) -> Vec<f32> {
        assert_eq!(a.len(), m * self.k, "input shape");
        let n = self.n;
        let mut out = vec![0.0f32; m * n];
        out.par_chunks_mut(ROWS_PER_TASK * n)
            .zip(a.par_chunks(ROWS_PER_TASK * self.k))
            .for_each_init(Scratch::default, |scratch, (out, a)| {
                run(kernel, self, a, out, scratch)
            });
        out
    }

    /// `a · W` handed on while it is still in cache: each rayon task computes the product for
    /// its rows into a buffer of its own and calls `then(product rows, dst rows)` with the
    /// matching rows of `dst` (`dst_width` values each). A layer followed by an element-wise
    /// step (bias and activation, bias and residual and LayerNorm) then never writes its
    /// output to memory and reads it back.
    pub(crate) fn forward_then(
        &self,
        a: &[f32],
        m: usize,
        dst: &mut [f32],
        dst_width: usize,
        then: impl Fn(&[f32], &mut [f32]) + Sync,
    ) {
        assert_eq!(a.len(), m * self.k, "input shape");
        assert_eq!(dst.len(), m * dst_width, "output shape");
        let kernel = Kernel::best(self.kp);
        dst.par_chunks_mut(ROWS_PER_TASK * dst_width)
            .zip(a.par_chunks(ROWS_PER_TASK * self.k))
            .for_each_init(
                || (Scratch::default(), Vec::new()),
                |(scratch, out), (dst, a)| {
                    out.resize(a.len() / self.k * self.n, 0.0);
                    run(kernel, self, a, out, scratch);
                    then(out, dst);
                },
            );
    }
}

/// One task's rows on `kernel`.
fn run(kernel: Kernel, lin: &QLinear, a: &[f32], out: &mut [f32], scratch: &mut Scratch) {
    match kernel {
        Kernel::Amx => simd::task_amx(lin, a, out, scratch),
        Kernel::Vnni => simd::task_vnni(lin, a, out, scratch),
        Kernel::Portable => task(lin, a, out, scratch, portable_kernel::<MR>),
    }
}

/// The integer kernels, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Amx,
    Vnni,
    Portable,
}

impl Kernel {
    /// The fastest kernel this process can run on inputs of `kp` bytes (AMX tiles take 64
    /// bytes of each row at a time).
    fn best(kp: usize) -> Kernel {
        if kp.is_multiple_of(simd::AMX_K) && simd::amx_available() {
            Kernel::Amx
        } else if simd::vnni_available() {
            Kernel::Vnni
        } else {
            Kernel::Portable
        }
    }
}

/// The kernel the int8 layers of all-MiniLM-L6-v2's shape (inputs of 384 and 1,536 bytes)
/// run on in this process: `"amx"`, `"avx512-vnni"` or `"portable"`, for logs and
/// benchmarks.
pub(crate) fn kernel_name() -> &'static str {
    match Kernel::best(384) {
        Kernel::Amx => "amx",
        Kernel::Vnni => "avx512-vnni",
        Kernel::Portable => "portable",
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
/// each block of `R` rows and each panel, and scale the integers back. Plain loops, inlined
/// into the caller, so that LLVM vectorises them for the caller's instruction set.
#[inline(always)]
fn task<const R: usize>(
    lin: &QLinear,
    a: &[f32],
    out: &mut [f32],
    scratch: &mut Scratch,
    kernel: impl Fn(&[u8], usize, &[i8], &mut [[i32; NR]; R]),
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
    q.resize(rows.div_ceil(R) * R * kp, ZERO);
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
        // Rounded by the addition itself: 2²³ + 128 + v lies in 2²³..2²⁴, where floats are
        // whole numbers, so the sum is 128 + v rounded to the nearest (ties to even), and
        // its low byte is that number. No float-to-integer conversion (which Rust saturates
        // one value at a time), so the loop vectorises. Outliers become zero here.
        const SHIFT: f32 = 8_388_608.0 + ZERO as f32;
        for (o, &x) in qrow.iter_mut().zip(row) {
            let v = if x.abs() <= limit { x * inv } else { 0.0 };
            *o = (v.clamp(-127.0, 127.0) + SHIFT).to_bits() as u8;
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
    let mut acc = [[0i32; NR]; R];
    for (p, panel) in lin.packed.chunks_exact(panel_len).enumerate() {
        let c0 = p * NR;
        let width = NR.min(n - c0);
        let (comp, scale) = (&lin.comp[c0..c0 + NR], &lin.scale[c0..c0 + NR]);
        for (blk, qa) in q.chunks_exact(R * kp).enumerate() {
            kernel(qa, kp, panel, &mut acc);
            for (r, acc_row) in acc.iter().enumerate() {
                let i = blk * R + r;
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

/// The integer dot products of `R` rows and one panel, without SIMD intrinsics.
fn portable_kernel<const R: usize>(qa: &[u8], kp: usize, panel: &[i8], acc: &mut [[i32; NR]; R]) {
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

// The AVX-512 VNNI and AMX micro-kernels: the only `unsafe` in docket (see the module).
#[allow(unsafe_code)]
mod simd;

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

    /// Random activation bytes for `rows` rows and a random weight panel, `kp` bytes deep.
    fn operands(rows: usize, kp: usize, seed: &mut u32) -> (Vec<u8>, Vec<i8>) {
        let qa = (0..rows * kp)
            .map(|_| (lcg(seed) * 127.0 + 128.0) as u8)
            .collect();
        let panel = (0..kp * NR).map(|_| (lcg(seed) * 127.0) as i8).collect();
        (qa, panel)
    }

    #[test]
    fn the_vnni_kernel_matches_the_portable_one() {
        if !simd::vnni_available() {
            eprintln!("no AVX-512 VNNI here: nothing to compare");
            return;
        }
        let (qa, panel) = operands(MR, 388, &mut 3);
        let (mut a, mut b) = ([[0i32; NR]; MR], [[1i32; NR]; MR]);
        simd::kernel_vnni(&qa, 388, &panel, &mut a);
        portable_kernel(&qa, 388, &panel, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn the_amx_kernel_matches_the_portable_one() {
        const R: usize = simd::AMX_MR;
        for kp in [64, 384, 1536] {
            let (qa, panel) = operands(R, kp, &mut 11);
            let (mut a, mut b) = ([[7i32; NR]; R], [[1i32; NR]; R]);
            // Twice: the second call must not add to the first's sums.
            for _ in 0..2 {
                if simd::kernel_amx(&qa, kp, &panel, &mut a).is_none() {
                    eprintln!("no AMX granted here: nothing to compare");
                    return;
                }
            }
            portable_kernel(&qa, kp, &panel, &mut b);
            assert_eq!(a, b, "kp {kp}");
        }
    }

    #[test]
    fn every_kernel_gives_the_same_products() {
        let mut seed = 13;
        // 70 rows: whole and partial blocks of 8 and 16; inputs a multiple of 64 (AMX) and
        // not (AMX falls back to VNNI); outputs on and off whole panels.
        for (m, k, n) in [(70usize, 384usize, 100usize), (37, 1536, 48), (5, 100, 7)] {
            let a: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed) * 3.0).collect();
            let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed) * 0.1).collect();
            let q = QLinear::new(&w, k, n);
            let portable = q.forward_on(Kernel::Portable, &a, m);
            assert_eq!(q.forward_on(Kernel::Vnni, &a, m), portable, "VNNI, k {k}");
            assert_eq!(q.forward_on(Kernel::Amx, &a, m), portable, "AMX, k {k}");
            assert_eq!(q.forward(&a, m), portable, "best, k {k}");
            // Handed on task by task: the same rows, each to its own place.
            let mut dst = vec![f32::NAN; m * (n + 1)];
            q.forward_then(&a, m, &mut dst, n + 1, |y, d| {
                for (d, y) in d.chunks_exact_mut(n + 1).zip(y.chunks_exact(n)) {
                    d[..n].copy_from_slice(y);
                    d[n] = 0.0;
                }
            });
            let rows: Vec<f32> = dst
                .chunks_exact(n + 1)
                .flat_map(|r| r[..n].to_vec())
                .collect();
            assert_eq!(rows, portable, "handed on, k {k}");
        }
        eprintln!("int8 kernel here: {}", kernel_name());
    }
}
