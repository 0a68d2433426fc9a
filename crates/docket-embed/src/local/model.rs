//! A BERT encoder forward pass for inference, on packed (unpadded) sequences.
//!
//! The four dense layers per block go through candle's matrix multiply (the `gemm` crate), or
//! with `embed.precision = "int8"` through the 8-bit kernels of `int8/`;
//! everything else is fused by hand: the Q, K and V projections are one matmul, biases are
//! added inside the following kernel, residual + LayerNorm is one pass, and attention runs
//! per sequence without padding or masks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Storage, Tensor};
use pulp::Arch;
use rayon::prelude::*;
use serde::Deserialize;

use super::Precision;
use super::int8::QLinear;
use super::kernels::{self, Activation, AttnScratch};

/// Rows per rayon task in the element-wise passes.
const ROWS_PER_TASK: usize = 32;

/// The fewest query rows an attention task takes when a sequence is split between threads.
const MIN_ATTN_ROWS: usize = 32;

/// Tokens per forward pass (longer batches are split at sequence boundaries).
const TOKENS_PER_PASS: usize = 512;

/// The subset of a Hugging Face `config.json` this encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_pos_type")]
    pub position_embedding_type: String,
}

fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_pos_type() -> String {
    "absolute".into()
}

/// A dense layer's weights, `(in, out)`.
enum Dense {
    /// f32, through candle's matrix multiply.
    F32(Tensor),
    /// Quantised to 8 bits.
    Int8(QLinear),
}

impl Dense {
    fn new(w: Tensor, precision: Precision) -> Res<Dense> {
        Ok(match precision {
            Precision::F32 => Dense::F32(w),
            Precision::Int8 => {
                let (k, n) = w.dims2().map_err(ce)?;
                let values = w.flatten_all().and_then(|t| t.to_vec1()).map_err(ce)?;
                Dense::Int8(QLinear::new(&values, k, n))
            }
        })
    }

    /// `a (m × in, row-major) · W`.
    fn forward_ref(&self, a: &[f32], m: usize, k: usize) -> Res<Out> {
        Ok(match self {
            Dense::F32(w) => Out::T(matmul(a, m, k, w)?),
            Dense::Int8(q) => Out::V(q.forward(a, m)),
        })
    }

    /// `then(rows of a · W, the same rows of dst)` over all rows: for int8 task by task,
    /// while each task's product is in cache ([`QLinear::forward_then`]); for f32 after the
    /// whole product, in tasks of [`ROWS_PER_TASK`] rows.
    /// An owned input saves the f32 path a copy.
    fn forward_then(
        &self,
        a: Cow<'_, [f32]>,
        m: usize,
        k: usize,
        dst: &mut [f32],
        dst_width: usize,
        then: impl Fn(&[f32], &mut [f32]) + Sync,
    ) -> Res<()> {
        match self {
            Dense::Int8(q) => q.forward_then(&a, m, dst, dst_width, then),
            Dense::F32(w) => {
                let y = match a {
                    Cow::Owned(a) => matmul_vec(a, m, k, w)?,
                    Cow::Borrowed(a) => matmul(a, m, k, w)?,
                };
                let n = y.dims2().map_err(ce)?.1;
                with_slice(&y, |y| {
                    dst.par_chunks_mut(dst_width * ROWS_PER_TASK)
                        .zip(y.par_chunks(n * ROWS_PER_TASK))
                        .for_each(|(d, y)| then(y, d));
                })?;
            }
        }
        Ok(())
    }
}

/// A dense layer's output.
enum Out {
    T(Tensor),
    V(Vec<f32>),
}

impl Out {
    /// Runs `f` on the values, row-major.
    fn with<R>(&self, f: impl FnOnce(&[f32]) -> R) -> Res<R> {
        match self {
            Out::T(t) => with_slice(t, f),
            Out::V(v) => Ok(f(v)),
        }
    }
}

struct Layer {
    /// `[Wq; Wk; Wv]ᵀ`, `(hidden, 3·hidden)`.
    wqkv: Dense,
    bqkv: Vec<f32>,
    /// `(hidden, hidden)`.
    wo: Dense,
    bo: Vec<f32>,
    ln1_g: Vec<f32>,
    ln1_b: Vec<f32>,
    /// `(hidden, intermediate)`.
    wi: Dense,
    bi: Vec<f32>,
    /// `(intermediate, hidden)`.
    wo2: Dense,
    bo2: Vec<f32>,
    ln2_g: Vec<f32>,
    ln2_b: Vec<f32>,
}

/// A loaded BERT encoder.
pub(crate) struct Bert {
    cfg: BertConfig,
    act: Activation,
    eps: f32,
    arch: Arch,
    word: Vec<f32>,
    pos: Vec<f32>,
    token_type0: Vec<f32>,
    emb_ln_g: Vec<f32>,
    emb_ln_b: Vec<f32>,
    layers: Vec<Layer>,
}

type Res<T> = Result<T, String>;

fn ce(e: candle_core::Error) -> String {
    e.to_string()
}

struct Weights {
    map: HashMap<String, Tensor>,
    prefix: &'static str,
}

impl Weights {
    fn get(&self, name: &str) -> Res<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let t = self
            .map
            .get(&full)
            .or_else(|| {
                // Old checkpoints name LayerNorm parameters gamma/beta.
                let alt = full
                    .replace("LayerNorm.weight", "LayerNorm.gamma")
                    .replace("LayerNorm.bias", "LayerNorm.beta");
                self.map.get(&alt)
            })
            .ok_or_else(|| format!("tensor `{full}` missing from model.safetensors"))?;
        t.to_dtype(DType::F32).map_err(ce)
    }

    fn vec(&self, name: &str, len: usize) -> Res<Vec<f32>> {
        let t = self.get(name)?;
        if t.elem_count() != len {
            return Err(format!(
                "tensor `{name}` has {} values, expected {len}",
                t.elem_count()
            ));
        }
        t.flatten_all().and_then(|t| t.to_vec1()).map_err(ce)
    }

    /// A `(out, in)` linear weight, checked and returned as `(in, out)` contiguous.
    fn linear_t(&self, name: &str, out: usize, inp: usize) -> Res<Tensor> {
        let t = self.get(name)?;
        if t.dims() != [out, inp] {
            return Err(format!(
                "tensor `{name}` has shape {:?}, expected [{out}, {inp}]",
                t.dims()
            ));
        }
        Ok(t)
    }
}

fn contiguous_t(t: &Tensor) -> Res<Tensor> {
    t.t().and_then(|t| t.contiguous()).map_err(ce)
}

impl Bert {
    /// Loads `model.safetensors` (tensor names with or without a `bert.` prefix).
    pub(crate) fn load(weights: &Path, cfg: BertConfig, precision: Precision) -> Res<Self> {
        if cfg.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type `{}` is not supported",
                cfg.position_embedding_type
            ));
        }
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        let act = match cfg.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => return Err(format!("hidden_act `{other}` is not supported")),
        };
        let map = candle_core::safetensors::load(weights, &Device::Cpu)
            .map_err(|e| format!("cannot read {}: {e}", weights.display()))?;
        let prefix = ["", "bert.", "model."]
            .into_iter()
            .find(|p| map.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .ok_or(
                "model.safetensors has no `embeddings.word_embeddings.weight`: not a BERT model",
            )?;
        let w = Weights { map, prefix };
        let h = cfg.hidden_size;
        let i = cfg.intermediate_size;
        let word_t = w.get("embeddings.word_embeddings.weight")?;
        if word_t.dims().len() != 2 || word_t.dims()[1] != h {
            return Err(format!(
                "word embeddings have shape {:?}, hidden_size is {h}",
                word_t.dims()
            ));
        }
        let word = word_t.flatten_all().and_then(|t| t.to_vec1()).map_err(ce)?;
        let pos = w.vec(
            "embeddings.position_embeddings.weight",
            cfg.max_position_embeddings * h,
        )?;
        let token_type0 = match w.get("embeddings.token_type_embeddings.weight") {
            Ok(t) => t.get(0).and_then(|t| t.to_vec1()).map_err(ce)?,
            Err(_) => vec![0.0; h],
        };
        let emb_ln_g = w.vec("embeddings.LayerNorm.weight", h)?;
        let emb_ln_b = w.vec("embeddings.LayerNorm.bias", h)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{l}.");
            let q = w.linear_t(&format!("{p}attention.self.query.weight"), h, h)?;
            let k = w.linear_t(&format!("{p}attention.self.key.weight"), h, h)?;
            let v = w.linear_t(&format!("{p}attention.self.value.weight"), h, h)?;
            let wqkv = Dense::new(
                contiguous_t(&Tensor::cat(&[&q, &k, &v], 0).map_err(ce)?)?,
                precision,
            )?;
            let mut bqkv = w.vec(&format!("{p}attention.self.query.bias"), h)?;
            bqkv.extend(w.vec(&format!("{p}attention.self.key.bias"), h)?);
            bqkv.extend(w.vec(&format!("{p}attention.self.value.bias"), h)?);
            layers.push(Layer {
                wqkv,
                bqkv,
                wo: Dense::new(
                    contiguous_t(&w.linear_t(
                        &format!("{p}attention.output.dense.weight"),
                        h,
                        h,
                    )?)?,
                    precision,
                )?,
                bo: w.vec(&format!("{p}attention.output.dense.bias"), h)?,
                ln1_g: w.vec(&format!("{p}attention.output.LayerNorm.weight"), h)?,
                ln1_b: w.vec(&format!("{p}attention.output.LayerNorm.bias"), h)?,
                wi: Dense::new(
                    contiguous_t(&w.linear_t(&format!("{p}intermediate.dense.weight"), i, h)?)?,
                    precision,
                )?,
                bi: w.vec(&format!("{p}intermediate.dense.bias"), i)?,
                wo2: Dense::new(
                    contiguous_t(&w.linear_t(&format!("{p}output.dense.weight"), h, i)?)?,
                    precision,
                )?,
                bo2: w.vec(&format!("{p}output.dense.bias"), h)?,
                ln2_g: w.vec(&format!("{p}output.LayerNorm.weight"), h)?,
                ln2_b: w.vec(&format!("{p}output.LayerNorm.bias"), h)?,
            });
        }
        Ok(Bert {
            eps: cfg.layer_norm_eps as f32,
            cfg,
            act,
            arch: Arch::new(),
            word,
            pos,
            token_type0,
            emb_ln_g,
            emb_ln_b,
            layers,
        })
    }

    pub(crate) fn hidden_size(&self) -> usize {
        self.cfg.hidden_size
    }

    pub(crate) fn max_positions(&self) -> usize {
        self.cfg.max_position_embeddings
    }

    pub(crate) fn vocab_size(&self) -> usize {
        self.word.len() / self.cfg.hidden_size
    }

    /// Mean-pooled (not yet normalised) embeddings of `seqs` (token ids with special tokens,
    /// each no longer than `max_positions()` and with ids below `vocab_size()`).
    /// Call inside the rayon pool that should do the work.
    ///
    /// Long batches run as consecutive passes of at most [`TOKENS_PER_PASS`] tokens, so that
    /// the activations stay cache-sized and the allocator reuses their buffers.
    pub(crate) fn embed(&self, seqs: &[&[u32]]) -> Res<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(seqs.len());
        let mut start = 0;
        while start < seqs.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < seqs.len() && (end == start || tokens + seqs[end].len() <= TOKENS_PER_PASS)
            {
                tokens += seqs[end].len();
                end += 1;
            }
            out.extend(self.embed_pass(&seqs[start..end])?);
            start = end;
        }
        Ok(out)
    }

    /// [`Bert::embed`] in one pass.
    fn embed_pass(&self, seqs: &[&[u32]]) -> Res<Vec<Vec<f32>>> {
        let h = self.cfg.hidden_size;
        let inter = self.cfg.intermediate_size;
        let arch = self.arch;
        let eps = self.eps;
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let total: usize = lens.iter().sum();
        if total == 0 {
            return Ok(vec![vec![0.0; h]; seqs.len()]);
        }

        // Embeddings: word + position + token type 0, then LayerNorm.
        let mut x = vec![0.0f32; total * h];
        {
            let mut rows = x.chunks_exact_mut(h);
            let mut jobs = Vec::with_capacity(total);
            for s in seqs {
                for (p, &id) in s.iter().enumerate() {
                    jobs.push((rows.next().expect("row per token"), id as usize, p));
                }
            }
            jobs.par_chunks_mut(ROWS_PER_TASK).for_each(|chunk| {
                for (row, id, p) in chunk.iter_mut() {
                    let word = &self.word[*id * h..(*id + 1) * h];
                    let pos = &self.pos[*p * h..(*p + 1) * h];
                    for (((o, &a), &b), &c) in
                        row.iter_mut().zip(word).zip(pos).zip(&self.token_type0)
                    {
                        *o = a + b + c;
                    }
                    kernels::layer_norm(arch, row, &self.emb_ln_g, &self.emb_ln_b, eps);
                }
            });
        }

        for layer in &self.layers {
            // Attention block.
            let qkv = layer.wqkv.forward_ref(&x, total, h)?;
            let mut ctx = vec![0.0f32; total * h];
            qkv.with(|qkv| {
                // One task per sequence, or per run of query rows when there are fewer
                // sequences than threads (each task gathers its sequence's keys).
                let splits = rayon::current_num_threads().div_ceil(seqs.len()).max(1);
                let mut parts: Vec<(&[f32], &mut [f32], usize)> = Vec::with_capacity(seqs.len());
                let (mut q_rest, mut c_rest) = (qkv, ctx.as_mut_slice());
                for &len in &lens {
                    let (q, qr) = q_rest.split_at(len * 3 * h);
                    let (mut c, cr) = c_rest.split_at_mut(len * h);
                    let mut first = 0;
                    while !c.is_empty() {
                        let n = len.div_ceil(splits).max(MIN_ATTN_ROWS).min(len - first);
                        let (part, rest) = c.split_at_mut(n * h);
                        parts.push((q, part, first));
                        (c, first) = (rest, first + n);
                    }
                    (q_rest, c_rest) = (qr, cr);
                }
                parts.into_par_iter().for_each_init(
                    AttnScratch::default,
                    |scratch, (q, c, first)| {
                        kernels::attention(
                            arch,
                            q,
                            &layer.bqkv,
                            c,
                            first,
                            self.cfg.num_attention_heads,
                            scratch,
                        )
                    },
                );
            })?;
            drop(qkv);
            layer
                .wo
                .forward_then(Cow::Owned(ctx), total, h, &mut x, h, |y, x| {
                    kernels::residual_layer_norm(
                        arch,
                        y,
                        &layer.bo,
                        x,
                        &layer.ln1_g,
                        &layer.ln1_b,
                        eps,
                    )
                })?;
            // Feed-forward block.
            let mut act = vec![0.0f32; total * inter];
            layer
                .wi
                .forward_then(Cow::Borrowed(&x), total, h, &mut act, inter, |pre, act| {
                    kernels::bias_act(arch, pre, &layer.bi, act, self.act)
                })?;
            layer
                .wo2
                .forward_then(Cow::Owned(act), total, inter, &mut x, h, |y, x| {
                    kernels::residual_layer_norm(
                        arch,
                        y,
                        &layer.bo2,
                        x,
                        &layer.ln2_g,
                        &layer.ln2_b,
                        eps,
                    )
                })?;
        }

        // Mean pooling over each sequence's tokens.
        let mut out = Vec::with_capacity(seqs.len());
        let mut rest = x.as_slice();
        for &len in &lens {
            let (rows, r) = rest.split_at(len * h);
            rest = r;
            let mut v = vec![0.0f32; h];
            for row in rows.chunks_exact(h) {
                v.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
            }
            let n = len.max(1) as f32;
            v.iter_mut().for_each(|a| *a /= n);
            out.push(v);
        }
        Ok(out)
    }
}

/// `a (m×k, row-major) · w (k×n)` through candle's CPU matmul.
fn matmul(a: &[f32], m: usize, k: usize, w: &Tensor) -> Res<Tensor> {
    let a = Tensor::from_slice(a, (m, k), &Device::Cpu).map_err(ce)?;
    a.matmul(w).map_err(ce)
}

/// [`matmul`] taking ownership of `a`, which saves a copy.
fn matmul_vec(a: Vec<f32>, m: usize, k: usize, w: &Tensor) -> Res<Tensor> {
    let a = Tensor::from_vec(a, (m, k), &Device::Cpu).map_err(ce)?;
    a.matmul(w).map_err(ce)
}

/// Runs `f` on a contiguous f32 CPU tensor's values.
fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Res<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err("tensor is not on the CPU".into());
    };
    let data = cpu.as_slice::<f32>().map_err(ce)?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or("matmul result is not contiguous")?;
    Ok(f(&data[start..end]))
}
