//! Times the `local` provider (or, with `--stock`, candle-transformers' own `BertModel`) on
//! sentences read from a file, one per line, and prints
//! `{"impl", "sentences", "seconds", "sentences_per_s", "cpu_seconds"}` as JSON (the
//! fastest of `--repeat` runs; `cpu_seconds` is the process CPU time of the last run).
//!
//! ```text
//! cargo run --release -p docket-embed --example local_speed -- MODEL_DIR SENTENCES.txt \
//!     [--batch 32] [--threads 2] [--repeat 1] [--precision f32|int8] [--stock] [--out vectors.json]
//! ```

use std::time::Instant;

use docket_embed::Embedder;
use docket_embed::local::{LocalConfig, LocalEmbedder, Precision};

/// CPU seconds this process has used (Linux `/proc/self/stat`; 0 elsewhere), so that runs on
/// a busy machine can be compared by CPU time as well as wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!(
            "usage: local_speed MODEL_DIR SENTENCES.txt [--batch N] [--threads N] [--repeat N] [--stock] [--out FILE]"
        );
        std::process::exit(2);
    }
    let model_dir = args[1].clone();
    let sentences: Vec<String> = std::fs::read_to_string(&args[2])
        .expect("read sentences")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let batch: usize = arg(&args, "--batch").map_or(32, |v| v.parse().expect("--batch"));
    let threads: Option<usize> = arg(&args, "--threads").map(|v| v.parse().expect("--threads"));
    let repeat: usize = arg(&args, "--repeat").map_or(1, |v| v.parse().expect("--repeat"));
    let stock = args.iter().any(|a| a == "--stock");
    let precision = match arg(&args, "--precision").as_deref() {
        None | Some("f32") => Precision::F32,
        Some("int8") => Precision::Int8,
        Some(other) => panic!("--precision {other}: f32 or int8"),
    };

    let mut cpu = 0.0;
    let (label, vectors, seconds) = if stock {
        let s = stock::Stock::load(&model_dir, batch);
        s.embed(&sentences[..sentences.len().min(batch)]); // warm-up
        let mut best = f64::MAX;
        let mut vectors = Vec::new();
        for _ in 0..repeat {
            let (t, c) = (Instant::now(), cpu_seconds());
            vectors = s.embed(&sentences);
            best = best.min(t.elapsed().as_secs_f64());
            cpu = cpu_seconds() - c;
        }
        ("candle-transformers BertModel", vectors, best)
    } else {
        let config = LocalConfig {
            model: model_dir,
            batch_size: batch,
            threads,
            precision,
            ..LocalConfig::default()
        };
        let e = LocalEmbedder::load(config).await.expect("load model");
        e.embed(&sentences[..sentences.len().min(batch)])
            .await
            .expect("warm-up");
        let mut best = f64::MAX;
        let mut vectors = Vec::new();
        for _ in 0..repeat {
            let (t, c) = (Instant::now(), cpu_seconds());
            vectors = e.embed(&sentences).await.expect("embed");
            best = best.min(t.elapsed().as_secs_f64());
            cpu = cpu_seconds() - c;
        }
        let label = match precision {
            Precision::F32 => "docket local",
            Precision::Int8 => "docket local int8",
        };
        (label, vectors, best)
    };
    if let Some(out) = arg(&args, "--out") {
        std::fs::write(out, serde_json::to_string(&vectors).expect("json")).expect("write --out");
    }
    println!(
        "{}",
        serde_json::json!({
            "impl": label,
            "sentences": sentences.len(),
            "seconds": seconds,
            "sentences_per_s": sentences.len() as f64 / seconds,
            "cpu_seconds": cpu,
        })
    );
}

/// candle-transformers' BERT as shipped, for comparison: padded batches (sorted by length),
/// mean pooling over the attention mask, L2 normalisation.
mod stock {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;
    use candle_transformers::models::bert::{BertModel, Config};
    use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

    pub struct Stock {
        model: BertModel,
        tokenizer: Tokenizer,
        batch: usize,
    }

    impl Stock {
        pub fn load(dir: &str, batch: usize) -> Stock {
            let dir = std::path::Path::new(dir);
            let config: Config =
                serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("config"))
                    .expect("config");
            let weights = std::fs::read(dir.join("model.safetensors")).expect("weights");
            let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
                .expect("vb");
            let model = BertModel::load(vb, &config).expect("model");
            let mut tokenizer =
                Tokenizer::from_file(dir.join("tokenizer.json")).expect("tokenizer");
            tokenizer.with_padding(Some(PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                ..Default::default()
            }));
            tokenizer
                .with_truncation(Some(TruncationParams {
                    max_length: 256,
                    ..Default::default()
                }))
                .expect("truncation");
            Stock {
                model,
                tokenizer,
                batch,
            }
        }

        pub fn embed(&self, texts: &[String]) -> Vec<Vec<f32>> {
            let mut order: Vec<usize> = (0..texts.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
            let mut out = vec![Vec::new(); texts.len()];
            for chunk in order.chunks(self.batch) {
                let batch: Vec<String> = chunk.iter().map(|&i| texts[i].clone()).collect();
                let enc = self.tokenizer.encode_batch(batch, true).expect("encode");
                let ids: Vec<Vec<u32>> = enc.iter().map(|e| e.get_ids().to_vec()).collect();
                let mask: Vec<Vec<u32>> = enc
                    .iter()
                    .map(|e| e.get_attention_mask().to_vec())
                    .collect();
                let ids = Tensor::new(ids, &Device::Cpu).expect("ids");
                let mask = Tensor::new(mask, &Device::Cpu).expect("mask");
                let types = ids.zeros_like().expect("types");
                let hidden = self
                    .model
                    .forward(&ids, &types, Some(&mask))
                    .expect("forward");
                let m = mask
                    .to_dtype(DType::F32)
                    .expect("mask f32")
                    .unsqueeze(2)
                    .expect("unsqueeze");
                let sum = hidden.broadcast_mul(&m).expect("mul").sum(1).expect("sum");
                let n = m.sum(1).expect("n");
                let mean = sum.broadcast_div(&n).expect("div");
                let rows: Vec<Vec<f32>> = mean.to_vec2().expect("vec2");
                for (&i, mut v) in chunk.iter().zip(rows) {
                    docket_embed::l2_normalize(&mut v);
                    out[i] = v;
                }
            }
            out
        }
    }
}
