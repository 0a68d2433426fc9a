//! `docket bench http`: the HTTP API's own costs, as JSON.
//!
//! - `idle_rss_mb`: a real `docket serve` (this binary, hashing embedder, SQLite in a temporary
//!   folder) started and left idle, its resident memory read from `/proc`;
//! - `upload`: `POST /v1/documents` with unique files of `--upload-bytes` from `--clients`
//!   concurrent clients over real sockets, the queues paused so that only the request path is
//!   measured (hashing, storing the original, the document row and its first job): latency
//!   percentiles of the `202` answers and uploads per second;
//! - `sse`: documents submitted one by one while a client follows `GET /v1/events`: the delay
//!   from each change (the event's `at`, when the row was written) to its arrival at the
//!   client. With `--backend postgres --cross-process`, the workers run on a second connection
//!   pool that stands for a `docket worker` process, so every event crosses PostgreSQL's
//!   `NOTIFY` before the server streams it.
//!
//! For a load from an outside tool, see docs/benchmarks.md (wrk with `bench/http/upload.lua`).

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use docket_core::{DocumentStore, Driver, QueueExecutor, QueueSetPausedParams, SystemClock};
use docket_queue::Runtime;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use super::bench::{BackendKind, Fresh};
use crate::config::Config;
use crate::out::outln;
use crate::{builtin, with_driver};

/// `docket bench http` flags.
#[derive(Debug, Args)]
pub struct HttpBench {
    /// The backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendKind,
    /// Uploads in the upload phase.
    #[arg(long, default_value_t = 800)]
    uploads: usize,
    /// Size of each uploaded file.
    #[arg(long, default_value_t = 1 << 20)]
    upload_bytes: usize,
    /// Concurrent uploading clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Documents followed in the event-stream phase.
    #[arg(long, default_value_t = 100)]
    documents: usize,
    /// PostgreSQL only: run the workers on a second connection pool (another process's),
    /// so progress reaches the server through NOTIFY.
    #[arg(long)]
    cross_process: bool,
    /// Phases to run (idle_rss, upload, sse); all when not given.
    #[arg(long)]
    only: Vec<String>,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn summary(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50_ms": ms(h, 0.50),
        "p90_ms": ms(h, 0.90),
        "p99_ms": ms(h, 0.99),
        "max_ms": h.max() as f64 / 1000.0,
    })
}

/// Runs the HTTP benchmark.
pub async fn http(mut config: Config, b: HttpBench) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !b.cross_process || b.backend == BackendKind::Postgres,
        "--cross-process needs --backend postgres"
    );
    let want = |p: &str| b.only.is_empty() || b.only.iter().any(|o| o == p);
    let mut report = serde_json::Map::new();
    report.insert(
        "backend".into(),
        json!(format!("{:?}", b.backend).to_lowercase()),
    );
    report.insert(
        "cores".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
    );
    if want("idle_rss") {
        report.insert("idle_rss_mb".into(), json!(idle_rss().await?));
    }
    let blob_dir = tempfile::tempdir()?;
    config.storage.blob_dir = blob_dir.path().to_owned();
    config.storage.max_file_bytes = config.storage.max_file_bytes.max(b.upload_bytes as u64 * 2);
    config.notify = Default::default();
    config.embed.provider = docket_embed::EmbedConfig::Hashing(Default::default());
    if want("upload") || want("sse") {
        let fresh = Fresh::new(&config, b.backend).await?;
        let url = fresh.url().to_owned();
        let phases = with_driver!(&fresh.backend, |d| run(d.clone(), &config, &b, &url, &want)
            .await)?;
        fresh.drop_schema().await;
        report.extend(phases);
    }
    outln!("{}", serde_json::to_string_pretty(&Value::Object(report))?)?;
    Ok(ExitCode::SUCCESS)
}

/// Starts this binary as `docket serve` in a temporary folder, waits until it listens and has
/// been idle a few seconds, and reads its resident set size.
async fn idle_rss() -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    for (k, _) in std::env::vars() {
        if k.starts_with("DOCKET_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .current_dir(dir.path())
        .arg("serve")
        .env("DOCKET_HTTP__LISTEN", "127.0.0.1:0")
        .env("DOCKET_EMBED__PROVIDER", "hashing")
        .env("DOCKET_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow::anyhow!("the server exited at once"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let listening = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("docket is listening on ") {
                return Ok::<_, std::io::Error>(true);
            }
        }
        Ok(false)
    })
    .await;
    anyhow::ensure!(
        matches!(listening, Ok(Ok(true))),
        "docket serve did not start listening"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))?;
    let _ = child.kill().await;
    Ok(kb / 1024.0)
}

async fn run<D: Driver>(
    driver: D,
    config: &Config,
    b: &HttpBench,
    url: &str,
    want: &dyn Fn(&str) -> bool,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    let server_pipeline = crate::pipeline::build(driver.clone(), config).await?;
    let app = docket_http::router(
        server_pipeline.clone(),
        docket_http::ApiOptions::new(config.storage.max_file_bytes as usize + (1 << 20)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(b.clients * 2)
        .build()?;

    if want("upload") {
        pause_all(&driver, true).await?;
        out.insert("upload".into(), upload_phase(&http, &base, b).await?);
        pause_all(&driver, false).await?;
        // The paused uploads are not part of what follows.
        let mut c = driver.conn().await?;
        let docs = c
            .document_list(&docket_core::DocumentListParams {
                status: None,
                source: None,
                before: None,
                limit: 100_000,
            })
            .await?;
        drop(c);
        for d in docs {
            server_pipeline.delete(d.id).await?;
        }
        let mut c = driver.conn().await?;
        let ids = c
            .job_list(docket_core::JobListParams {
                states: vec![docket_core::JobState::Queued],
                limit: 100_000,
                ..Default::default()
            })
            .await?
            .iter()
            .map(|j| j.id)
            .collect();
        c.job_cancel(docket_core::JobCancelParams { ids, now: None })
            .await?;
    }

    if want("sse") {
        let runtime = config.runtime()?;
        // The workers: in this process, or behind a second pool standing for another one.
        let handle = if b.cross_process {
            let mut other_config = config.clone();
            other_config.database_url = url.to_owned();
            let other = crate::backend::Backend::open(&other_config).await?;
            match other {
                crate::backend::Backend::Postgres(pg) => {
                    let p = crate::pipeline::build(pg.clone(), config).await?;
                    let mut workers = builtin::workers();
                    p.register(&mut workers);
                    docket_pipeline::analytics::register(
                        &mut workers,
                        config.analytics(),
                        Arc::new(SystemClock),
                    );
                    Runtime::start(pg, workers, runtime, Arc::new(SystemClock))?
                }
                crate::backend::Backend::Sqlite(_) => {
                    anyhow::bail!("--cross-process needs PostgreSQL")
                }
            }
        } else {
            let mut workers = builtin::workers();
            server_pipeline.register(&mut workers);
            docket_pipeline::analytics::register(
                &mut workers,
                config.analytics(),
                Arc::new(SystemClock),
            );
            Runtime::start(driver.clone(), workers, runtime, Arc::new(SystemClock))?
        };
        out.insert("sse".into(), sse_phase(&http, &base, b).await?);
        handle.shutdown().await;
    }
    server.abort();
    Ok(out)
}

async fn pause_all<D: Driver>(driver: &D, paused: bool) -> anyhow::Result<()> {
    let mut c = driver.conn().await?;
    c.queue_set_paused(QueueSetPausedParams {
        name: docket_core::ALL_QUEUES.to_owned(),
        paused,
        now: None,
    })
    .await?;
    Ok(())
}

async fn upload_phase(http: &reqwest::Client, base: &str, b: &HttpBench) -> anyhow::Result<Value> {
    let filler: Vec<u8> = b"the harbour master logs every ship that passes the light\n"
        .iter()
        .copied()
        .cycle()
        .take(b.upload_bytes)
        .collect();
    let filler = bytes::Bytes::from(filler);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..b.clients {
        let (http, base, filler, next) =
            (http.clone(), base.to_owned(), filler.clone(), next.clone());
        let total = b.uploads;
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            let mut other = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                // Unique bytes: every upload creates a document.
                let mut body = format!("upload {i}\n").into_bytes();
                body.extend_from_slice(&filler[..filler.len().saturating_sub(body.len())]);
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(body).file_name(format!("u{i}.txt")),
                );
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/v1/documents"))
                    .multipart(form)
                    .send()
                    .await?;
                let status = r.status();
                let _ = r.bytes().await?;
                if status == reqwest::StatusCode::ACCEPTED {
                    h.record(t.elapsed().as_micros() as u64)?;
                } else {
                    other += 1;
                }
            }
            Ok::<_, anyhow::Error>((h, other))
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    let mut other = 0;
    for t in tasks {
        let (h, o) = t.await??;
        all.add(h)?;
        other += o;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut s = summary(&all);
    s["clients"] = json!(b.clients);
    s["bytes"] = json!(b.upload_bytes);
    s["uploads_per_sec"] = json!(all.len() as f64 / secs);
    s["not_202"] = json!(other);
    Ok(s)
}

async fn sse_phase(http: &reqwest::Client, base: &str, b: &HttpBench) -> anyhow::Result<Value> {
    let events = http.get(format!("{base}/v1/events")).send().await?;
    anyhow::ensure!(
        events.status().is_success(),
        "GET /v1/events: {}",
        events.status()
    );
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(chrono::DateTime<chrono::Utc>, Value)>();
    let reader = tokio::spawn(async move {
        let mut stream = events.bytes_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            let now = chrono::Utc::now();
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:"))
                    && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                {
                    let _ = tx.send((now, v));
                }
            }
        }
    });
    let mut h = Histogram::<u64>::new(3)?;
    let mut done = 0;
    for i in 0..b.documents {
        let text = format!(
            "# Note {i}\n\nThe tide table for day {i} lists high water at dawn and dusk.\n\n{}",
            "Boats wait in the outer harbour until the channel is clear. ".repeat(40)
        );
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(text.into_bytes()).file_name(format!("n{i}.md")),
        );
        let r = http
            .post(format!("{base}/v1/documents"))
            .multipart(form)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "upload: {}", r.status());
        let id = r.json::<Value>().await?["document"]["id"].clone();
        // Every event until this document finishes.
        let finished = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some((at_client, e)) = rx.recv().await {
                if let Some(at) = e["at"]
                    .as_str()
                    .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok())
                {
                    let delay = (at_client - at).num_microseconds().unwrap_or(0).max(0) as u64;
                    h.record(delay).ok();
                }
                if e["document_id"] == id
                    && matches!(e["status"].as_str(), Some("completed" | "failed"))
                {
                    return true;
                }
            }
            false
        })
        .await;
        if matches!(finished, Ok(true)) {
            done += 1;
        }
    }
    reader.abort();
    let mut s = summary(&h);
    s["documents"] = json!(b.documents);
    s["documents_finished"] = json!(done);
    s["cross_process"] = json!(b.cross_process);
    Ok(s)
}
