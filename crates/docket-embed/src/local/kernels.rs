//! Element-wise kernels written as plain loops that LLVM vectorises.
//!
//! Each function runs its loops under [`pulp::Arch::dispatch`], which compiles them for the
//! best instruction set the CPU offers (AVX-512, AVX2+FMA, ...) and picks it at run time,
//! without `unsafe`. Reductions keep `LANES` independent
//! accumulators so they vectorise without reassociating floating-point sums.

use pulp::{Arch, Simd, WithSimd};

/// Runs a kernel body inside `Arch::dispatch`. The body becomes the generic `with_simd` of a
/// one-off struct (monomorphised per instruction set and inlined into pulp's
/// `#[target_feature]` function), which is what lets LLVM vectorise its loops for
/// AVX2/AVX-512; a closure passed to `dispatch` was not inlined and ran as baseline SSE2.
macro_rules! kernel {
    ($arch:expr, ($($name:ident: $ty:ty),* $(,)?), $body:block) => {{
        struct K<'a> {
            $($name: $ty,)*
            _life: std::marker::PhantomData<&'a ()>,
        }
        impl WithSimd for K<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _simd: S) {
                let K { $($name,)* _life } = self;
                $body
            }
        }
        $arch.dispatch(K { $($name,)* _life: std::marker::PhantomData })
    }};
}

const LANES: usize = 16;

#[inline(always)]
fn lane_sum(acc: &[f32; LANES]) -> f32 {
    let mut s = 0.0;
    for v in acc {
        s += v;
    }
    s
}

/// `e^x` for `f32`, relative error about 2e-7, branch-free so that it vectorises.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    // Round x·log2(e) to the nearest integer by adding 1.5·2²³ (no `floor`, no int casts).
    const SHIFT: f32 = 12_582_912.0;
    let t = x * LOG2E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // The low mantissa bits of `t` hold n + 2²²; turn them into the exponent of 2ⁿ.
    let scale = f32::from_bits((t.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127)) << 23);
    p * scale
}

/// `erf(x)`, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7 plus `exp`'s).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// `tanh(x)` through `exp`, branch-free.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let e = exp(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

/// The activation between the two feed-forward layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `x·Φ(x)` with the exact (erf) normal CDF, BERT's `gelu`.
    Gelu,
    /// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

/// `out[r][c] = act(inp[r][c] + bias[c])` for rows of `bias.len()` values.
pub(crate) fn bias_act(arch: Arch, inp: &[f32], bias: &[f32], out: &mut [f32], act: Activation) {
    let n = bias.len();
    kernel!(arch, (n: usize, inp: &'a [f32], bias: &'a [f32], out: &'a mut [f32], act: Activation), {
        for (o_row, i_row) in out.chunks_exact_mut(n).zip(inp.chunks_exact(n)) {
            match act {
                Activation::Gelu => {
                    for ((o, &i), &b) in o_row.iter_mut().zip(i_row).zip(bias) {
                        let x = i + b;
                        *o = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
                    }
                }
                Activation::GeluTanh => {
                    for ((o, &i), &b) in o_row.iter_mut().zip(i_row).zip(bias) {
                        let x = i + b;
                        let u = 0.797_884_6 * (x + 0.044_715 * x * x * x);
                        *o = 0.5 * x * (1.0 + tanh(u));
                    }
                }
                Activation::Relu => {
                    for ((o, &i), &b) in o_row.iter_mut().zip(i_row).zip(bias) {
                        *o = (i + b).max(0.0);
                    }
                }
            }
        }
    })
}

/// Layer normalisation of one row in place.
#[inline(always)]
fn layer_norm_row(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = x.len();
    let mut acc = [0.0f32; LANES];
    let (chunks, rest) = x.as_chunks::<LANES>();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    let mut sum = lane_sum(&acc);
    for v in rest {
        sum += v;
    }
    let mean = sum / n as f32;
    let mut acc = [0.0f32; LANES];
    for c in chunks {
        for l in 0..LANES {
            let d = c[l] - mean;
            acc[l] += d * d;
        }
    }
    let mut var = lane_sum(&acc);
    for v in rest {
        let d = v - mean;
        var += d * d;
    }
    let inv = 1.0 / (var / n as f32 + eps).sqrt();
    for ((v, &g), &b) in x.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// `x[r] = LayerNorm(x[r] + y[r] + bias)` for rows of `bias.len()` values.
pub(crate) fn residual_layer_norm(
    arch: Arch,
    y: &[f32],
    bias: &[f32],
    x: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let n = bias.len();
    kernel!(arch, (n: usize, y: &'a [f32], bias: &'a [f32], x: &'a mut [f32], gamma: &'a [f32], beta: &'a [f32], eps: f32), {
        for (x_row, y_row) in x.chunks_exact_mut(n).zip(y.chunks_exact(n)) {
            for ((xv, &yv), &b) in x_row.iter_mut().zip(y_row).zip(bias) {
                *xv += yv + b;
            }
            layer_norm_row(x_row, gamma, beta, eps);
        }
    })
}

/// Layer normalisation of every row of `x` in place.
pub(crate) fn layer_norm(arch: Arch, x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = gamma.len();
    kernel!(arch, (n: usize, x: &'a mut [f32], gamma: &'a [f32], beta: &'a [f32], eps: f32), {
        for row in x.chunks_exact_mut(n) {
            layer_norm_row(row, gamma, beta, eps);
        }
    })
}

/// Query rows per attention block.
const QB: usize = 4;
/// Keys (and value columns) per attention block.
const KB: usize = 32;

/// Scratch buffers for [`attention`], reused across heads and sequences.
#[derive(Default)]
pub(crate) struct AttnScratch {
    /// Scaled queries in blocks of `QB` rows, each block `d × QB` (column-major in the block).
    q: Vec<f32>,
    /// Keys in blocks of `KB`, each block `d × KB` (keys transposed), zero-padded.
    kt: Vec<f32>,
    /// Values in column blocks of `KB`, each block `s × KB`, zero-padded (only used when the
    /// head size is not a multiple of `KB`; otherwise values are read in place).
    v: Vec<f32>,
    /// `QB` rows of scores, `sp` wide.
    scores: Vec<f32>,
}

/// Self-attention of one sequence.
///
/// `qkv` holds the sequence's `s` rows of `[q | k | v]` (each `hidden` wide, bias not yet
/// added, `bias` is the matching `3 * hidden` vector); the per-head context vectors of the
/// query rows `first..first + ctx.len() / hidden` go into `ctx` (one row of `hidden` each),
/// so that a long sequence can be split between threads. There is no mask: sequences are
/// packed without padding.
///
/// Per head, the queries are processed `QB` rows at a time: a register-blocked `QB × KB`
/// micro-kernel computes the scores, the rows are soft-maxed, and a `QB × KB` micro-kernel
/// accumulates probabilities times values, so the working set stays in L1/L2.
pub(crate) fn attention(
    arch: Arch,
    qkv: &[f32],
    bias: &[f32],
    ctx: &mut [f32],
    first: usize,
    heads: usize,
    scratch: &mut AttnScratch,
) {
    let hidden = bias.len() / 3;
    let d = hidden / heads;
    let s = qkv.len() / (3 * hidden);
    let rows = ctx.len() / hidden;
    if rows == 0 || d == 0 {
        return;
    }
    let sq = rows.div_ceil(QB) * QB;
    let sp = s.div_ceil(KB) * KB;
    let dp = d.div_ceil(KB) * KB;
    debug_assert!(first + rows <= s);
    // Padding must be zero; the gathers below overwrite every other entry for each head.
    for (buf, len) in [
        (&mut scratch.q, sq * d),
        (&mut scratch.kt, sp * d),
        (
            &mut scratch.v,
            if d.is_multiple_of(KB) { 0 } else { s * dp },
        ),
    ] {
        buf.clear();
        buf.resize(len, 0.0);
    }
    scratch.scores.resize(QB * sp, 0.0);
    arch.dispatch(Attn {
        qkv,
        bias,
        ctx,
        scratch,
        first,
        rows,
        heads,
        hidden,
        d,
        s,
        sp,
    });
}

struct Attn<'a> {
    qkv: &'a [f32],
    bias: &'a [f32],
    ctx: &'a mut [f32],
    scratch: &'a mut AttnScratch,
    first: usize,
    rows: usize,
    heads: usize,
    hidden: usize,
    d: usize,
    s: usize,
    sp: usize,
}

impl WithSimd for Attn<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        match S::F32_LANES {
            16 => self.run::<S, 2>(simd),
            8 => self.run::<S, 4>(simd),
            4 => self.run::<S, 8>(simd),
            2 => self.run::<S, 16>(simd),
            _ => self.run::<S, 32>(simd),
        }
    }
}

impl Attn<'_> {
    /// `NV` vectors of `S` hold `KB` floats.
    #[inline(always)]
    fn run<S: Simd, const NV: usize>(self, simd: S) {
        let Attn {
            qkv,
            bias,
            ctx,
            scratch,
            first,
            rows,
            heads,
            hidden,
            d,
            s,
            sp,
        } = self;
        assert_eq!(NV * S::F32_LANES, KB, "unsupported SIMD width");
        let AttnScratch { q, kt, v, scores } = scratch;
        const { assert!(QB == 4) };
        let direct_v = d.is_multiple_of(KB);
        let scale = 1.0 / (d as f32).sqrt();
        let zero = simd.splat_f32s(0.0);
        for h in 0..heads {
            let (qo, ko, vo) = (h * d, hidden + h * d, 2 * hidden + h * d);
            // Gather this head's q (scaled), k and v into their blocked layouts, adding biases.
            let q_rows = qkv.chunks_exact(3 * hidden).skip(first).take(rows);
            for (i, row) in q_rows.enumerate() {
                let qb = &mut q[(i / QB) * d * QB + i % QB..];
                for (c, (&a, &b)) in row[qo..qo + d].iter().zip(&bias[qo..qo + d]).enumerate() {
                    qb[c * QB] = (a + b) * scale;
                }
            }
            for (i, row) in qkv.chunks_exact(3 * hidden).enumerate() {
                let kb = &mut kt[(i / KB) * d * KB + i % KB..];
                for (c, (&a, &b)) in row[ko..ko + d].iter().zip(&bias[ko..ko + d]).enumerate() {
                    kb[c * KB] = a + b;
                }
                if !direct_v {
                    for (c, &a) in row[vo..vo + d].iter().enumerate() {
                        v[(c / KB) * s * KB + i * KB + c % KB] = a;
                    }
                }
            }
            for (blk, qblk) in q.chunks_exact(d * QB).enumerate() {
                // scores[r][j] = q_r · k_j for KB keys at a time.
                for (jb, kblk) in kt.chunks_exact(d * KB).enumerate() {
                    let kv = S::as_simd_f32s(kblk).0;
                    let mut acc = [[zero; NV]; QB];
                    for (kc, qc) in kv.chunks_exact(NV).zip(qblk.chunks_exact(QB)) {
                        let kc: &[S::f32s; NV] = kc.try_into().expect("NV vectors");
                        for r in 0..QB {
                            let qs = simd.splat_f32s(qc[r]);
                            for n in 0..NV {
                                acc[r][n] = simd.mul_add_e_f32s(qs, kc[n], acc[r][n]);
                            }
                        }
                    }
                    for (r, a) in acc.iter().enumerate() {
                        let out = &mut scores[r * sp + jb * KB..r * sp + (jb + 1) * KB];
                        let out = S::as_mut_simd_f32s(out).0;
                        out.copy_from_slice(a);
                    }
                }
                // Softmax of each row over the s real keys, in place.
                for r in 0..QB {
                    let row = &mut scores[r * sp..r * sp + s];
                    let mut mx = [f32::NEG_INFINITY; LANES];
                    let (chunks, rest) = row.as_chunks::<LANES>();
                    for c in chunks {
                        for l in 0..LANES {
                            mx[l] = mx[l].max(c[l]);
                        }
                    }
                    let mut m = f32::NEG_INFINITY;
                    for &x in mx.iter().chain(rest) {
                        m = m.max(x);
                    }
                    for sc in row.iter_mut() {
                        *sc = exp(*sc - m);
                    }
                    let mut acc = [0.0f32; LANES];
                    let (chunks, rest) = row.as_chunks::<LANES>();
                    for c in chunks {
                        for l in 0..LANES {
                            acc[l] += c[l];
                        }
                    }
                    let mut sum = lane_sum(&acc);
                    for x in rest {
                        sum += x;
                    }
                    let inv = 1.0 / sum;
                    for x in row.iter_mut() {
                        *x *= inv;
                    }
                }
                // ctx rows = P · V (+ the value bias, as each row of P sums to 1) for KB value
                // columns at a time.
                let (r0, rest) = scores.split_at(sp);
                let (r1, rest) = rest.split_at(sp);
                let (r2, r3) = rest.split_at(sp);
                let (r0, r1, r2, r3) = (&r0[..s], &r1[..s], &r2[..s], &r3[..s]);
                for cb in 0..d.div_ceil(KB) {
                    let c0 = cb * KB;
                    let mut acc = [[zero; NV]; QB];
                    let mut step = |vj: &[f32], p: [f32; QB]| {
                        let vj: &[S::f32s; NV] =
                            S::as_simd_f32s(vj).0.try_into().expect("NV vectors");
                        for r in 0..QB {
                            let ps = simd.splat_f32s(p[r]);
                            for n in 0..NV {
                                acc[r][n] = simd.mul_add_e_f32s(ps, vj[n], acc[r][n]);
                            }
                        }
                    };
                    let probs = r0.iter().zip(r1).zip(r2).zip(r3);
                    if direct_v {
                        let v_rows = qkv.chunks_exact(3 * hidden);
                        for (row, (((&p0, &p1), &p2), &p3)) in v_rows.zip(probs) {
                            step(&row[vo + c0..vo + c0 + KB], [p0, p1, p2, p3]);
                        }
                    } else {
                        let vblk = &v[cb * s * KB..(cb + 1) * s * KB];
                        for (vj, (((&p0, &p1), &p2), &p3)) in vblk.chunks_exact(KB).zip(probs) {
                            step(vj, [p0, p1, p2, p3]);
                        }
                    }
                    let width = KB.min(d - c0);
                    let vb = &bias[vo + c0..vo + c0 + width];
                    for (r, a) in acc.iter().enumerate() {
                        let i = blk * QB + r;
                        if i >= rows {
                            break;
                        }
                        let mut tmp = [0.0f32; KB];
                        S::as_mut_simd_f32s(&mut tmp).0.copy_from_slice(a);
                        let o = i * hidden + h * d + c0;
                        for ((o, &t), &b) in ctx[o..o + width].iter_mut().zip(&tmp).zip(vb) {
                            *o = t + b;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let e = exp(x) as f64;
            let want = (x as f64).exp();
            assert!(
                ((e - want) / want).abs() < 1e-6,
                "exp({x}) = {e}, want {want}"
            );
        }
        // erf reference values.
        for (x, want) in [
            (0.0f32, 0.0f64),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (-1.5, -0.966_105_146_5),
            (2.5, 0.999_593_047_98),
            (-4.0, -0.999_999_984_6),
        ] {
            assert!((erf(x) as f64 - want).abs() < 5e-7, "erf({x})");
        }
    }

    /// Plain-loop attention of one sequence, all rows.
    fn naive_attention(qkv: &[f32], bias: &[f32], heads: usize) -> Vec<f32> {
        let hidden = bias.len() / 3;
        let d = hidden / heads;
        let s = qkv.len() / (3 * hidden);
        let at = |i: usize, c: usize| qkv[i * 3 * hidden + c] + bias[c];
        let mut out = vec![0.0f32; s * hidden];
        for h in 0..heads {
            for i in 0..s {
                let sc: Vec<f64> = (0..s)
                    .map(|j| {
                        (0..d)
                            .map(|c| (at(i, h * d + c) * at(j, hidden + h * d + c)) as f64)
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..d {
                    let v: f64 = (0..s)
                        .map(|j| e[j] * at(j, 2 * hidden + h * d + c) as f64)
                        .sum();
                    out[i * hidden + h * d + c] = (v / z) as f32;
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_plain_loops() {
        let arch = Arch::new();
        let mut scratch = AttnScratch::default();
        let mut seed = 1u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        };
        // Head sizes on and off the block width; lengths on and off the block sizes.
        for (heads, d) in [(2usize, 32usize), (3, 24), (2, 40)] {
            let hidden = heads * d;
            for s in [1usize, 3, 4, 33, 70] {
                let qkv: Vec<f32> = (0..s * 3 * hidden).map(|_| rnd() * 2.0).collect();
                let bias: Vec<f32> = (0..3 * hidden).map(|_| rnd()).collect();
                let want = naive_attention(&qkv, &bias, heads);
                // All rows at once, then in two runs of rows.
                for split in [s, s.div_ceil(2)] {
                    let mut got = vec![0.0f32; s * hidden];
                    let mut first = 0;
                    for part in got.chunks_mut(split * hidden) {
                        attention(arch, &qkv, &bias, part, first, heads, &mut scratch);
                        first += part.len() / hidden;
                    }
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (g - w).abs() < 1e-4,
                            "heads {heads} d {d} s {s}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }
}
