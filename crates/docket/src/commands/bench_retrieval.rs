//! `docket bench retrieval`: does search find the answer? As JSON.
//!
//! A question set (`bench_retrieval.json`) over real documents: the Valgrind manual's HTML
//! pages that Debian's `valgrind` package installs (`--docs`). The questions are phrased as a
//! user would ask them, sharing few words with their answers; each names a phrase that marks
//! the answering passage. The first 20 questions (`set: "first"`) cover three chapters;
//! 40 more (`"second"`), over three more chapters, were written later and held out from the
//! comparisons the fusion constant was first chosen on, so the report gives each set's
//! figures as well as the whole. For each embedder (`hashing`, and `local` and `local_int8`, the
//! same model with `embed.precision = "int8"`, when its model is at hand) the pages go
//! through the whole pipeline into a fresh database, and every question is searched by
//! `text`, `vector` and `hybrid`: the report gives, per mode, recall@5 (the share of
//! questions whose answering chunk is in the top 5) and MRR@10 (the mean of 1/rank of the
//! first answering chunk, 0 when it is not in the top 10), and each question's ranks.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clap::Args;
use docket_core::{DocumentStatus, Driver, SystemClock};
use docket_embed::EmbedConfig;
use docket_pipeline::NewDocument;
use docket_pipeline::search::SearchMode;
use docket_queue::{Runtime, RuntimeConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::bench::{BackendKind, Fresh};
use crate::config::Config;
use crate::out::outln;
use crate::{builtin, with_driver};

const QUESTIONS: &str = include_str!("bench_retrieval.json");

/// `docket bench retrieval` flags.
#[derive(Debug, Args)]
pub struct RetrievalBench {
    /// The backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendKind,
    /// The folder holding the question set's pages (Debian's valgrind package installs them).
    #[arg(long, default_value = "/usr/share/doc/valgrind/html")]
    docs: PathBuf,
    /// The local model's folder (default: `embed.model` when the configured provider is
    /// `local`, else the cached default model); without one only `hashing` is measured.
    #[arg(long)]
    model: Option<PathBuf>,
}

#[derive(Deserialize)]
struct QuestionSet {
    source: String,
    files: Vec<String>,
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct Question {
    q: String,
    answer: String,
    set: Batch,
}

/// Which batch a question was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Batch {
    /// The set the fusion settings were first compared on.
    First,
    /// Written later, over three more chapters, and held out from those comparisons.
    Second,
}

/// Recall@5 and MRR@10 of `ranks` (the answering chunk's rank per question, if in the top 10).
fn scores(ranks: &[Option<usize>]) -> serde_json::Value {
    let n = ranks.len().max(1) as f64;
    let recall5 = ranks.iter().filter(|r| r.is_some_and(|r| r <= 5)).count() as f64 / n;
    let mrr = ranks
        .iter()
        .map(|r| r.map_or(0.0, |r| 1.0 / r as f64))
        .sum::<f64>()
        / n;
    json!({ "questions": ranks.len(), "recall_at_5": recall5, "mrr_at_10": mrr })
}

/// Lowercase, whitespace collapsed: how answers are looked for in chunks.
fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Runs the benchmark and prints its report.
pub async fn retrieval(config: Config, b: RetrievalBench) -> anyhow::Result<ExitCode> {
    let set: QuestionSet = serde_json::from_str(QUESTIONS)?;
    let mut docs = Vec::new();
    for f in &set.files {
        let path = b.docs.join(f);
        let bytes = std::fs::read(&path).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (the question set reads the Valgrind manual: install Debian's valgrind package, or point --docs at its html folder)",
                path.display()
            )
        })?;
        docs.push((f.clone(), Bytes::from(bytes)));
    }
    let mut embedders = vec![("hashing", EmbedConfig::Hashing(Default::default()))];
    let model = b.model.clone().or_else(|| match &config.embed.provider {
        EmbedConfig::Local(l) => docket_embed::local::present_model_dir(l),
        _ => docket_embed::local::present_model_dir(&Default::default()),
    });
    match model {
        Some(dir) => {
            // The float model, and the same model in 8-bit integers (`embed.precision`).
            for (name, precision) in [
                ("local", docket_embed::local::Precision::F32),
                ("local_int8", docket_embed::local::Precision::Int8),
            ] {
                embedders.push((
                    name,
                    EmbedConfig::Local(docket_embed::local::LocalConfig {
                        model: dir.display().to_string(),
                        precision,
                        ..Default::default()
                    }),
                ));
            }
        }
        None => tracing::warn!(
            "no local model at hand (docket models pull, or --model DIR): measuring hashing only"
        ),
    }
    let mut report = serde_json::Map::new();
    report.insert("source".into(), json!(set.source));
    report.insert("files".into(), json!(set.files));
    report.insert("questions".into(), json!(set.questions.len()));
    for (name, provider) in embedders {
        let mut c = config.clone();
        c.embed.provider = provider;
        c.embed.explicit = true;
        let fresh = Fresh::new(&c, b.backend).await?;
        let r = with_driver!(&fresh.backend, |d| run(d.clone(), &c, &docs, &set).await)?;
        fresh.drop_schema().await;
        report.insert(name.into(), r);
    }
    outln!("{}", serde_json::to_string_pretty(&report)?)?;
    Ok(ExitCode::SUCCESS)
}

async fn run<D: Driver>(
    driver: D,
    config: &Config,
    docs: &[(String, Bytes)],
    set: &QuestionSet,
) -> anyhow::Result<serde_json::Value> {
    let pipeline = crate::pipeline::build(driver.clone(), config).await?;
    let mut workers = builtin::workers();
    pipeline.register(&mut workers);
    let started = Instant::now();
    for (name, bytes) in docs {
        pipeline
            .submit(NewDocument {
                bytes: bytes.clone(),
                filename: Some(name.clone()),
                ..Default::default()
            })
            .await?;
    }
    let handle = Runtime::start(
        driver.clone(),
        workers,
        RuntimeConfig {
            maintenance: None,
            ..Default::default()
        },
        Arc::new(SystemClock),
    )?;
    let rows = super::bench_pipeline::wait_all(&pipeline, docs.len()).await;
    handle.shutdown().await;
    let rows = rows?;
    // A failed document would measure fewer pages.
    if let Some(d) = rows.iter().find(|d| d.status != DocumentStatus::Completed) {
        anyhow::bail!("{:?} did not complete: {:?}", d.filename, d.error);
    }
    let chunks: i64 = rows.iter().map(|d| d.chunk_count as i64).sum();
    let ingest_seconds = started.elapsed().as_secs_f64();
    let mut modes = serde_json::Map::new();
    for mode in [SearchMode::Text, SearchMode::Vector, SearchMode::Hybrid] {
        let mut ranks = Vec::new();
        for q in &set.questions {
            let hits = pipeline.search_mode(&q.q, 10, None, mode).await?;
            let answer = norm(&q.answer);
            let rank = hits
                .iter()
                .position(|h| norm(&h.chunk.text).contains(&answer))
                .map(|i| i + 1);
            ranks.push(rank);
        }
        let mut report = scores(&ranks);
        let mut sets = serde_json::Map::new();
        for batch in [Batch::First, Batch::Second] {
            let of_set: Vec<_> = set
                .questions
                .iter()
                .zip(&ranks)
                .filter(|(q, _)| q.set == batch)
                .map(|(_, r)| *r)
                .collect();
            let name = serde_json::to_value(batch)?;
            sets.insert(name.as_str().unwrap_or("set").to_owned(), scores(&of_set));
        }
        report["sets"] = sets.into();
        report["ranks"] = json!(ranks);
        modes.insert(
            serde_json::to_value(mode)?
                .as_str()
                .unwrap_or("mode")
                .to_owned(),
            report,
        );
    }
    Ok(json!({
        "embedder": pipeline.embedder().name(),
        "chunks": chunks,
        "ingest_seconds": ingest_seconds,
        "modes": modes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_set_reads_with_its_two_batches_and_no_question_twice() {
        let set: QuestionSet = serde_json::from_str(QUESTIONS).expect("question set");
        let count = |batch| set.questions.iter().filter(|q| q.set == batch).count();
        assert_eq!(count(Batch::First), 20);
        assert_eq!(count(Batch::Second), 40);
        let mut asked: Vec<_> = set.questions.iter().map(|q| norm(&q.q)).collect();
        asked.sort();
        asked.dedup();
        assert_eq!(asked.len(), 60, "a question asked twice");
        assert!(set.questions.iter().all(|q| !norm(&q.answer).is_empty()));
    }

    #[test]
    fn scores_count_the_top_five_and_the_reciprocal_rank() {
        let s = scores(&[Some(1), Some(5), Some(6), None]);
        assert_eq!(s["recall_at_5"], 0.5);
        let mrr = (1.0 + 0.2 + 1.0 / 6.0) / 4.0;
        assert!((s["mrr_at_10"].as_f64().unwrap() - mrr).abs() < 1e-12);
    }
}
