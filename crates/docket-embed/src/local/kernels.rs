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

/// Scratch buffers for [`attention`], reused across heads.
#[derive(Default)]
pub(crate) struct AttnScratch {
    q: Vec<f32>,
    kt: Vec<f32>,
    v: Vec<f32>,
    scores: Vec<f32>,
}

/// Self-attention of one sequence.
///
/// `qkv` holds the sequence's `s` rows of `[q | k | v]` (each `hidden` wide, bias not yet
/// added, `bias` is the matching `3 * hidden` vector); the per-head context vectors go into
/// `ctx` (`s` rows of `hidden`). There is no mask: sequences are packed without padding.
pub(crate) fn attention(
    arch: Arch,
    qkv: &[f32],
    bias: &[f32],
    ctx: &mut [f32],
    heads: usize,
    scratch: &mut AttnScratch,
) {
    let hidden = bias.len() / 3;
    let d = hidden / heads;
    let s = ctx.len() / hidden;
    let scale = 1.0 / (d as f32).sqrt();
    scratch.q.resize(s * d, 0.0);
    scratch.kt.resize(d * s, 0.0);
    scratch.v.resize(s * d, 0.0);
    scratch.scores.resize(s, 0.0);
    let AttnScratch { q, kt, v, scores } = scratch;
    kernel!(arch, (q: &'a mut Vec<f32>, kt: &'a mut Vec<f32>, v: &'a mut Vec<f32>, scores: &'a mut Vec<f32>, qkv: &'a [f32], bias: &'a [f32], ctx: &'a mut [f32], heads: usize, hidden: usize, d: usize, s: usize, scale: f32), {
        for h in 0..heads {
            let (qo, ko, vo) = (h * d, hidden + h * d, 2 * hidden + h * d);
            // Gather this head's q (scaled), k transposed and v, adding the biases.
            for (i, row) in qkv.chunks_exact(3 * hidden).enumerate() {
                let qd = &mut q[i * d..(i + 1) * d];
                for ((o, &a), &b) in qd.iter_mut().zip(&row[qo..qo + d]).zip(&bias[qo..]) {
                    *o = (a + b) * scale;
                }
                let vd = &mut v[i * d..(i + 1) * d];
                for ((o, &a), &b) in vd.iter_mut().zip(&row[vo..vo + d]).zip(&bias[vo..]) {
                    *o = a + b;
                }
                for c in 0..d {
                    kt[c * s + i] = row[ko + c] + bias[ko + c];
                }
            }
            for i in 0..s {
                // scores = q_i · Kᵀ, as d row updates over the whole key range.
                scores.fill(0.0);
                let qi = &q[i * d..(i + 1) * d];
                for (c, &qc) in qi.iter().enumerate() {
                    let krow = &kt[c * s..(c + 1) * s];
                    for (sc, &k) in scores.iter_mut().zip(krow) {
                        *sc += qc * k;
                    }
                }
                // softmax
                let mut mx = [f32::NEG_INFINITY; LANES];
                let (chunks, rest) = scores.as_chunks::<LANES>();
                for c in chunks {
                    for l in 0..LANES {
                        mx[l] = mx[l].max(c[l]);
                    }
                }
                let mut m = f32::NEG_INFINITY;
                for &x in mx.iter().chain(rest) {
                    m = m.max(x);
                }
                for sc in scores.iter_mut() {
                    *sc = exp(*sc - m);
                }
                let mut acc = [0.0f32; LANES];
                let (chunks, rest) = scores.as_chunks::<LANES>();
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
                // out = softmax · V
                let out = &mut ctx[i * hidden + h * d..i * hidden + (h + 1) * d];
                out.fill(0.0);
                for (&p, vj) in scores.iter().zip(v.chunks_exact(d)) {
                    for (o, &x) in out.iter_mut().zip(vj) {
                        *o += p * x;
                    }
                }
                for o in out.iter_mut() {
                    *o *= inv;
                }
            }
        }
    })
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
}
