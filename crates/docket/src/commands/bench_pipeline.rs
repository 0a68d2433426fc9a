//! `docket bench pipeline`: documents through every stage, beside the raw model speed.
//!
//! One run, one JSON report. Parsing and chunking run once; then `--repeat` rounds (default
//! 3) each run the raw model, sentence-transformers, the pipeline and the raw model again in
//! turn (the two raw passes bracket the others, so the machine's drift within a round falls
//! on both sides of each ratio), and every
//! figure is a median over the rounds with its min, max and spread, beside each run's load
//! (the machine's busy share, this process's share, other processes', the hypervisor's
//! steal):
//! - `parse`: MB/s per format (in-process parsers on the generated corpus and the committed
//!   sample files), and the chunker's speed on the same texts;
//! - `raw_model`: the embedding provider alone on exactly the chunks the pipeline will embed,
//!   in its preferred batch size (sentences/s, over both passes of the round), after one
//!   warm-up batch;
//! - `int8` (with `--int8`): the same model in 8-bit integers against the float model, a batch
//!   of each in turn;
//! - `python_reference`: sentence-transformers on the same chunks, when it is installed and
//!   the provider is `local` (one process that loaded the model once, warmed up, and times
//!   one encode per round);
//! - `pipeline`: the same documents submitted and worked by a runtime in a fresh database
//!   (documents/s, chunks/s, the share of stage time spent parsing and chunking, and the
//!   model's batches: their count and mean size, its busy share, when the first started and
//!   the last ended); its
//!   documents are deleted between rounds, so each round does the same work;
//! - `raw_model_vs_python` and `pipeline.embed_vs_raw_model`: ratios taken within each round;
//! - `peak_rss_mb`: the process's high-water mark.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use docket_core::{DocumentListParams, DocumentStatus, DocumentStore, Driver, SystemClock};
use docket_embed::local::{LocalConfig, LocalEmbedder, Precision};
use docket_embed::{EmbedConfig, Embedder};
use docket_parse::Format;
use docket_pipeline::{NewDocument, Pipeline};
use docket_queue::{Runtime, RuntimeConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::bench::{BackendKind, Fresh};
use super::bench_stats::{LoadMeter, summary};
use crate::config::Config;
use crate::out::outln;
use crate::{builtin, with_driver};

/// `docket bench pipeline` flags.
#[derive(Debug, Args)]
pub struct PipelineBench {
    /// The backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendKind,
    /// Generated documents (Text, Markdown, HTML, JSON and CSV in turn).
    #[arg(long, default_value_t = 100)]
    documents: usize,
    /// Words per generated document.
    #[arg(long, default_value_t = 1_500)]
    words: usize,
    /// Stage jobs running at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Rounds: each runs the raw model, sentence-transformers, the pipeline and the raw model
    /// again in turn; figures are medians over the rounds with their spread.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Python interpreter for the sentence-transformers comparison (skipped when it cannot
    /// import sentence_transformers).
    #[arg(long, default_value = "python3")]
    python: String,
    /// With the local model in f32: also load it with `embed.precision = "int8"` and, in each
    /// round, time the two on the same chunks a model batch at a time, in turn, so that the
    /// machine's drift falls on both alike (`int8_vs_f32`).
    #[arg(long)]
    int8: bool,
}

const SAMPLES: &[(&str, &[u8])] = &[
    (
        "report.pdf",
        include_bytes!("../../../docket-parse/tests/corpus/report.pdf"),
    ),
    (
        "handbook.docx",
        include_bytes!("../../../docket-parse/tests/corpus/handbook.docx"),
    ),
    (
        "sheet.xlsx",
        include_bytes!("../../../docket-parse/tests/corpus/sheet.xlsx"),
    ),
];

const PY_BENCH: &str = include_str!("../../../docket-embed/tests/fixtures/bench_speed.py");

const WORDS: &[&str] = &[
    "queue",
    "worker",
    "document",
    "pipeline",
    "embedding",
    "vector",
    "search",
    "index",
    "river",
    "mountain",
    "garden",
    "library",
    "station",
    "harbour",
    "village",
    "market",
    "engineer",
    "teacher",
    "farmer",
    "captain",
    "student",
    "doctor",
    "painter",
    "writer",
    "builds",
    "reads",
    "carries",
    "measures",
    "repairs",
    "counts",
    "plants",
    "studies",
    "quickly",
    "carefully",
    "slowly",
    "rarely",
    "often",
    "together",
    "again",
    "later",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "with",
    "for",
    "on",
    "from",
    "by",
    "under",
    "large",
    "small",
    "ancient",
    "modern",
    "quiet",
    "busy",
    "bright",
    "cold",
    "green",
];

fn sentence(rng: &mut StdRng) -> String {
    let n = rng.random_range(10..22);
    let mut s: Vec<&str> = (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    let first = s[0].to_owned();
    let mut out = String::new();
    out.push_str(&first[..1].to_uppercase());
    out.push_str(&first[1..]);
    s.remove(0);
    for w in s {
        out.push(' ');
        out.push_str(w);
    }
    out.push('.');
    out
}

fn paragraphs(rng: &mut StdRng, words: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = 0;
    while total < words {
        let mut p = String::new();
        for _ in 0..rng.random_range(3..7) {
            let s = sentence(rng);
            total += s.split(' ').count();
            if !p.is_empty() {
                p.push(' ');
            }
            p.push_str(&s);
        }
        out.push(p);
    }
    out
}

/// Generated document `i`: unique bytes, so none is deduplicated.
fn generate(i: usize, words: usize) -> (String, Bytes) {
    let mut rng = StdRng::seed_from_u64(i as u64);
    let paras = paragraphs(&mut rng, words);
    let (name, body) = match i % 5 {
        0 => (
            format!("doc-{i}.txt"),
            format!("Report {i}\n\n{}\n", paras.join("\n\n")),
        ),
        1 => {
            let mut md = format!("# Guide {i}\n\n");
            for (k, p) in paras.iter().enumerate() {
                if k % 3 == 0 {
                    md.push_str(&format!("## Part {k}\n\n"));
                }
                md.push_str(p);
                md.push_str("\n\n");
            }
            (format!("doc-{i}.md"), md)
        }
        2 => {
            let mut html = format!(
                "<!doctype html><html><head><title>Page {i}</title><script>var x = 1;</script>\
                 </head><body><nav><a href=\"/\">Home</a></nav><main><h1>Page {i}</h1>"
            );
            for (k, p) in paras.iter().enumerate() {
                if k % 3 == 0 {
                    html.push_str(&format!("<h2>Section {k}</h2>"));
                }
                html.push_str(&format!("<p>{p}</p>"));
            }
            html.push_str("</main><footer>Copyright</footer></body></html>");
            (format!("doc-{i}.html"), html)
        }
        3 => (
            format!("doc-{i}.json"),
            serde_json::to_string_pretty(&json!({
                "id": i,
                "title": format!("Record {i}"),
                "sections": paras.iter().map(|p| json!({"body": p})).collect::<Vec<_>>(),
            }))
            .unwrap_or_default(),
        ),
        _ => {
            let mut csv = String::from("id,topic,notes\n");
            for (k, p) in paras.iter().enumerate() {
                csv.push_str(&format!("{k},topic {k},\"{p}\"\n"));
            }
            (format!("doc-{i}.csv"), csv)
        }
    };
    (name, Bytes::from(body))
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs the pipeline benchmark.
pub async fn pipeline(mut config: Config, b: PipelineBench) -> anyhow::Result<ExitCode> {
    let mut docs: Vec<(String, Bytes)> = (0..b.documents).map(|i| generate(i, b.words)).collect();
    for (name, bytes) in SAMPLES {
        docs.push((name.to_string(), Bytes::from_static(bytes)));
    }
    let blob_dir = tempfile::tempdir()?;
    config.storage.blob_dir = blob_dir.path().to_owned();
    config.notify = Default::default();
    let fresh = Fresh::new(&config, b.backend).await?;
    let report = with_driver!(&fresh.backend, |d| run(d.clone(), &config, &b, &docs).await)?;
    fresh.drop_schema().await;
    outln!("{}", serde_json::to_string_pretty(&report)?)?;
    Ok(ExitCode::SUCCESS)
}

async fn run<D: Driver>(
    driver: D,
    config: &Config,
    b: &PipelineBench,
    docs: &[(String, Bytes)],
) -> anyhow::Result<serde_json::Value> {
    let pipeline = crate::pipeline::build(driver.clone(), config).await?;
    let embedder = pipeline.embedder().clone();

    // 1. Parse and chunk, in process, per format.
    let limits = crate::pipeline::parse_settings(config)?.limits;
    let mut per_format: BTreeMap<&'static str, (u64, Duration)> = BTreeMap::new();
    let mut chunk_time = Duration::ZERO;
    let mut texts: Vec<String> = Vec::new();
    for (name, bytes) in docs {
        let format = docket_parse::detect(bytes, Some(name), None)?;
        let t = Instant::now();
        let parsed = docket_parse::parse(bytes, format, &limits)?;
        let e = per_format.entry(format_name(format)).or_default();
        e.0 += bytes.len() as u64;
        e.1 += t.elapsed();
        let t = Instant::now();
        let chunks = pipeline.chunker().chunk(&parsed);
        chunk_time += t.elapsed();
        texts.extend(chunks.into_iter().map(|c| c.text));
    }
    let parse_json: serde_json::Map<String, serde_json::Value> = per_format
        .iter()
        .map(|(f, (bytes, t))| {
            (
                f.to_string(),
                json!({
                    "bytes": bytes,
                    "mb_per_s": *bytes as f64 / 1e6 / t.as_secs_f64().max(1e-9),
                }),
            )
        })
        .collect();

    // 2. The rounds: the raw model on exactly these chunks, sentence-transformers on the
    // same chunks, then the pipeline, `repeat` times in turn, so that each figure is a
    // median and a change in the machine's load shows up in all three.
    let mut python = match (&config.embed.provider, embedder.fallback()) {
        (EmbedConfig::Local(local), None) => PyRef::start(&b.python, &local.model, &texts).await,
        (EmbedConfig::Local(_), Some(note)) => Err(json!({ "skipped": note })),
        _ => Err(json!({"skipped": "the provider is not local"})),
    };
    let batch_size = embedder.batch_size().max(1);
    // Warm-up: the first pass pays for page faults and the thread pool's start.
    if let Some(first) = texts.chunks(batch_size).next() {
        embedder.embed(first).await?;
    }
    let int8 = match (&config.embed.provider, b.int8) {
        (EmbedConfig::Local(local), true)
            if local.precision == Precision::F32 && embedder.fallback().is_none() =>
        {
            let local = LocalConfig {
                precision: Precision::Int8,
                ..local.clone()
            };
            let model = LocalEmbedder::load(local).await?;
            if let Some(first) = texts.chunks(batch_size).next() {
                model.embed(first).await?;
            }
            Some(model)
        }
        (_, true) => anyhow::bail!(
            "--int8 compares with the local model in f32: it needs embed.provider = \"local\", \
             its model on disk, and embed.precision = \"f32\""
        ),
        _ => None,
    };
    let mut int8_runs = Vec::new();
    let (mut raw_runs, mut py_runs, mut pipe_runs) = (Vec::new(), Vec::new(), Vec::new());
    let rounds = b.repeat.max(1);
    let mut last = None;
    let raw_pass = || async {
        let meter = LoadMeter::start();
        for batch in texts.chunks(batch_size) {
            embedder.embed(batch).await?;
        }
        anyhow::Ok(meter.stop())
    };
    for round in 0..rounds {
        let (before, load) = raw_pass().await?;
        if let Ok(py) = &mut python {
            let meter = LoadMeter::start();
            match py.run().await {
                Ok(mut r) => {
                    r["load"] = meter.stop().1;
                    py_runs.push(r);
                }
                Err(e) => python = Err(e),
            }
        }
        if let Some(model) = &int8 {
            // Batch by batch in turn: f32, then int8, on the same texts.
            let (mut f32_time, mut int8_time) = (Duration::ZERO, Duration::ZERO);
            for batch in texts.chunks(batch_size) {
                let t = Instant::now();
                embedder.embed(batch).await?;
                f32_time += t.elapsed();
                let t = Instant::now();
                model.embed(batch).await?;
                int8_time += t.elapsed();
            }
            int8_runs.push(json!({
                "f32_sentences_per_s": texts.len() as f64 / f32_time.as_secs_f64(),
                "int8_sentences_per_s": texts.len() as f64 / int8_time.as_secs_f64(),
                "int8_vs_f32": f32_time.as_secs_f64() / int8_time.as_secs_f64(),
            }));
        }
        let (run, rows) = pipeline_round(&driver, &pipeline, b, docs).await?;
        pipe_runs.push(run);
        // The raw model again: its rate in the round is over both passes, which bracket the
        // phases between them, so that a drift of the machine's speed during the round
        // falls on both sides of each ratio alike.
        let (after, _) = raw_pass().await?;
        raw_runs.push(json!({
            "seconds": [before, after],
            "sentences_per_s": 2.0 * texts.len() as f64 / (before + after),
            "load": load,
        }));
        if round + 1 < rounds {
            for d in &rows {
                pipeline.delete(d.id).await?;
            }
        }
        last = Some(rows);
    }
    if let Ok(py) = python.as_mut() {
        py.stop().await;
    }
    let rows = last.unwrap_or_default();
    let failed: Vec<_> = rows
        .iter()
        .filter(|d| d.status == DocumentStatus::Failed)
        .map(|d| json!({"filename": d.filename, "error": d.error}))
        .collect();
    let chunks: i64 = rows.iter().map(|d| d.chunk_count as i64).sum();

    let rate = |runs: &[serde_json::Value], key: &str| -> Vec<f64> {
        runs.iter().filter_map(|r| r[key].as_f64()).collect()
    };
    let raw_rates = rate(&raw_runs, "sentences_per_s");
    let py_rates = rate(&py_runs, "sentences_per_s");
    let pipe_rates = rate(&pipe_runs, "chunks_per_s");
    // Ratios within a round, where the two ran minutes apart rather than a whole run apart.
    let per_round =
        |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| a / b).collect() };
    let python_json = match &python {
        Err(skipped) if py_runs.is_empty() => skipped.clone(),
        _ => json!({
            "impl": py_runs.first().map(|r| r["impl"].clone()),
            "sentences_per_s": summary(&py_rates),
            "runs": py_runs,
        }),
    };
    let kernel = match &config.embed.provider {
        EmbedConfig::Local(local) if embedder.fallback().is_none() => {
            Some(local.precision.kernel())
        }
        _ => None,
    };
    Ok(json!({
        "embedder": embedder.name(),
        "kernel": kernel,
        "backend": driver.name(),
        "documents": docs.len(),
        "chunks": chunks,
        "chunk_max_tokens": pipeline.chunker().max_tokens(),
        "rounds": rounds,
        "parse": parse_json,
        "chunker_chunks_per_s": texts.len() as f64 / chunk_time.as_secs_f64().max(1e-9),
        "raw_model": {
            "sentences": texts.len(),
            "sentences_per_s": summary(&raw_rates),
            "runs": raw_runs,
        },
        "pipeline": {
            "chunks_per_s": summary(&pipe_rates),
            "documents_per_s": summary(&rate(&pipe_runs, "documents_per_s")),
            "embed_vs_raw_model": summary(&per_round(&pipe_rates, &raw_rates)),
            "failed": failed,
            "runs": pipe_runs,
        },
        "python_reference": python_json,
        "int8": int8.as_ref().map(|m| json!({
            "kernel": Precision::Int8.kernel(),
            "embedder": m.name(),
            "int8_vs_f32": summary(&rate(&int8_runs, "int8_vs_f32")),
            "runs": int8_runs,
        })),
        "raw_model_vs_python": summary(&per_round(&raw_rates, &py_rates)),
        "peak_rss_mb": peak_rss_mb(),
    }))
}

/// One pipeline round: every document submitted, then worked by a fresh runtime until all
/// are terminal. Returns the round's figures and the document rows.
async fn pipeline_round<D: Driver>(
    driver: &D,
    pipeline: &Pipeline<D>,
    b: &PipelineBench,
    docs: &[(String, Bytes)],
) -> anyhow::Result<(serde_json::Value, Vec<docket_core::DocumentRow>)> {
    let mut workers = builtin::workers();
    pipeline.register(&mut workers);
    let mut rc = RuntimeConfig {
        maintenance: None,
        ..Default::default()
    };
    rc.queues[0].concurrency = b.concurrency;
    pipeline.take_embed_stats();
    let meter = LoadMeter::start();
    let started = tokio::time::Instant::now();
    for (name, bytes) in docs {
        pipeline
            .submit(NewDocument {
                bytes: bytes.clone(),
                filename: Some(name.clone()),
                ..Default::default()
            })
            .await?;
    }
    let handle = Runtime::start(driver.clone(), workers, rc, Arc::new(SystemClock))?;
    let rows = wait_all(pipeline, docs.len()).await?;
    let (wall, load) = meter.stop();
    let model = pipeline.take_embed_stats();
    handle.shutdown().await;
    // Where the round's time went around the model: before its first batch, between batches,
    // after its last.
    let offset = |t: Option<tokio::time::Instant>| t.map(|t| (t - started).as_secs_f64());
    let model_json = json!({
        "batches": model.calls,
        "mean_batch": model.texts as f64 / model.calls.max(1) as f64,
        "busy_seconds": model.busy.as_secs_f64(),
        "busy_share": model.busy.as_secs_f64() / wall,
        "first_batch_at_s": offset(model.first_start),
        "last_batch_end_s": offset(model.last_end),
    });
    let chunks: i64 = rows.iter().map(|d| d.chunk_count as i64).sum();
    let stage_ms = |key: &str| -> f64 {
        rows.iter()
            .filter_map(|d| d.timings.get(key).and_then(|v| v.as_f64()))
            .sum()
    };
    let (parse_ms, chunk_ms, embed_ms, complete_ms) = (
        stage_ms("parse_ms"),
        stage_ms("chunk_ms"),
        stage_ms("embed_ms"),
        stage_ms("complete_ms"),
    );
    let run = json!({
        "seconds": wall,
        "documents_per_s": docs.len() as f64 / wall,
        "chunks_per_s": chunks as f64 / wall,
        "mb_per_s": docs.iter().map(|(_, b)| b.len()).sum::<usize>() as f64 / 1e6 / wall,
        "stage_ms": {"parse": parse_ms, "chunk": chunk_ms, "embed": embed_ms, "complete": complete_ms},
        "parse_chunk_share_of_embed": (parse_ms + chunk_ms) / embed_ms.max(1.0),
        "model": model_json,
        "load": load,
    });
    Ok((run, rows))
}

fn format_name(f: Format) -> &'static str {
    f.name()
}

pub(crate) async fn wait_all<D: Driver>(
    p: &Pipeline<D>,
    n: usize,
) -> anyhow::Result<Vec<docket_core::DocumentRow>> {
    loop {
        let mut rows = Vec::new();
        let mut before = None;
        loop {
            let page = {
                let mut c = p.driver().conn().await?;
                c.document_list(&DocumentListParams {
                    status: None,
                    source: None,
                    before,
                    limit: 1000,
                })
                .await?
            };
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            rows.extend(page);
        }
        if rows.len() >= n && rows.iter().all(|d| d.status.is_terminal()) {
            return Ok(rows);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// sentence-transformers in a child process that loaded the model once and times one
/// encode of all the chunks per request (`bench_speed.py --serve`).
struct PyRef {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    _dir: tempfile::TempDir,
}

impl PyRef {
    async fn start(
        python: &str,
        model: &str,
        texts: &[String],
    ) -> Result<PyRef, serde_json::Value> {
        use tokio::io::AsyncBufReadExt;
        let skip = |why: String| json!({ "skipped": why });
        let dir = tempfile::tempdir().map_err(|e| skip(format!("no temporary directory: {e}")))?;
        let script = dir.path().join("bench_speed.py");
        let sentences = dir.path().join("sentences.txt");
        let stderr_path = dir.path().join("stderr.txt");
        let lines: Vec<String> = texts.iter().map(|t| t.replace(['\n', '\r'], " ")).collect();
        // Its standard error goes to a file: a pipe nobody reads while it runs would stop
        // it once full.
        let stderr = std::fs::write(&script, PY_BENCH)
            .and_then(|()| std::fs::write(&sentences, lines.join("\n") + "\n"))
            .and_then(|()| std::fs::File::create(&stderr_path))
            .map_err(|e| skip(format!("cannot write the script: {e}")))?;
        let mut child = tokio::process::Command::new(python)
            .arg(&script)
            .arg(model)
            .arg(&sentences)
            .args(["--batch", "32", "--threads", "2", "--serve"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| skip(format!("{python}: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(skip("no pipes to the child".into()));
        };
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        match lines.next_line().await {
            Ok(Some(l)) if l.contains("\"ready\"") => Ok(PyRef {
                child,
                stdin,
                lines,
                _dir: dir,
            }),
            _ => {
                let _ = child.kill().await;
                let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                Err(json!({
                    "skipped": "sentence-transformers did not run (not installed?)",
                    "stderr": err.lines().last().unwrap_or_default(),
                }))
            }
        }
    }

    /// One timed encode of every chunk.
    async fn run(&mut self) -> Result<serde_json::Value, serde_json::Value> {
        use tokio::io::AsyncWriteExt;
        let failed = |why: String| json!({ "skipped": why });
        self.stdin
            .write_all(b"run\n")
            .await
            .map_err(|e| failed(format!("the reference stopped: {e}")))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| failed(format!("the reference stopped: {e}")))?;
        match self.lines.next_line().await {
            Ok(Some(l)) => {
                serde_json::from_str(&l).map_err(|e| failed(format!("unreadable output: {e}")))
            }
            _ => Err(failed("the reference stopped".into())),
        }
    }

    async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}
