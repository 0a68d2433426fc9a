//! `docket drill …`: reliability drills that anyone can rerun, each bounded in time and
//! printing a JSON summary. The fast versions run in the test suite (`tests/drills.rs`).
//!
//! - `crash`: documents through the whole pipeline in several `docket worker` processes on
//!   PostgreSQL while a random worker is killed (SIGKILL) every few seconds and started again.
//!   Every document must complete, no chunk may be stored twice, every attempt must be
//!   recorded and no job may finish twice.
//! - `outage`: a `docket serve` and a `docket worker` lose the database mid-run (their
//!   connections terminated, or PostgreSQL restarted) while documents are uploaded: both
//!   processes stay up and reconnect, uploads refused meanwhile (`503`) succeed when retried,
//!   `/readyz` reports the outage while it lasts, and the same invariants hold.

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use docket_core::{Driver, MonitorStore, QueueDriver, QueueExecutor};
use docket_pipeline::NewDocument;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::bench::{BackendKind, Fresh};
use crate::backend::Backend;
use crate::config::Config;
use crate::out::outln;

/// `docket drill …`
#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Kill random worker processes (SIGKILL) while documents go through the pipeline
    /// (PostgreSQL; needs --database-url).
    Crash(CrashDrill),
    /// Cut the database away from a running server and worker: terminate their connections,
    /// or restart PostgreSQL (needs --database-url; `restart` needs the right to restart it).
    Outage(OutageDrill),
    /// Upload the hostile corpus (corrupt and looping PDFs, a DOCX zip bomb, deeply nested
    /// HTML, invalid UTF-8, garbage, empty and oversized files) to a real `docket serve`, over
    /// and over: each gets a clear error, the server stays up, its memory stays bounded.
    Hostile(HostileDrill),
    /// Steady ingestion for a long time, with a transaction held open for part of it
    /// (PostgreSQL's vacuum and SQLite's checkpoints cannot clean behind it): throughput,
    /// latency, table sizes, dead rows or log size over time, then cleanup.
    Soak(SoakDrill),
    /// Two "hosts" that share nothing but PostgreSQL and an S3-compatible bucket, each a
    /// `docket serve` and a `docket worker` in a folder of its own; documents uploaded to
    /// either server while workers are killed at random (needs --database-url and the
    /// bucket's --s3-* settings).
    Hosts(HostsDrill),
}

mod crash;
mod hostile;
mod hosts;
mod outage;
mod soak;

pub use crash::CrashDrill;
pub use hostile::HostileDrill;
pub use hosts::HostsDrill;
pub use outage::OutageDrill;
pub use soak::SoakDrill;

/// Runs a drill.
pub async fn drill(config: Config, cmd: DrillCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DrillCommand::Crash(c) => crash::crash(config, c).await,
        DrillCommand::Outage(o) => outage::outage(config, o).await,
        DrillCommand::Hostile(h) => hostile::hostile(h).await,
        DrillCommand::Soak(k) => soak::soak(config, k).await,
        DrillCommand::Hosts(h) => hosts::hosts(config, h).await,
    }
}

/// Environment for worker processes: fast liveness so that a killed worker's jobs come back
/// within about two seconds (a fifth of a second of backoff, not minutes), the lexical
/// embedder, quiet logs. The drill kills workers every few hundred milliseconds on purpose: a
/// job whose workers die three times in a row is the drill's doing, not the job's, so
/// `max_rescues` is out of its way.
const WORKER_ENV: &[(&str, &str)] = &[
    ("DOCKET_EMBED__PROVIDER", "hashing"),
    ("DOCKET_PIPELINE__BACKOFF_MS", "[200]"),
    ("DOCKET_MAINTENANCE__MAX_RESCUES", "1000000"),
    ("DOCKET_WORKER__HEARTBEAT_INTERVAL_MS", "300"),
    ("DOCKET_WORKER__POLL_INTERVAL_MS", "200"),
    ("DOCKET_MAINTENANCE__LEASE_MS", "1500"),
    ("DOCKET_MAINTENANCE__RESCUE_INTERVAL_MS", "300"),
    ("DOCKET_MAINTENANCE__LEADER_TTL_MS", "1500"),
    ("DOCKET_LOG__LEVEL", "warn"),
];

struct Workers {
    exe: std::path::PathBuf,
    url: String,
    blob_dir: std::path::PathBuf,
    log_dir: std::path::PathBuf,
    procs: Vec<tokio::process::Child>,
    started: usize,
}

impl Workers {
    fn spawn(&mut self) -> anyhow::Result<tokio::process::Child> {
        self.started += 1;
        let log = std::fs::File::create(self.log_dir.join(format!("worker-{}.log", self.started)))?;
        let mut cmd = tokio::process::Command::new(&self.exe);
        child_env(&mut cmd, &self.url, &self.blob_dir);
        cmd.arg("worker").stdout(Stdio::null()).stderr(log);
        Ok(cmd.spawn()?)
    }
}

fn document(i: usize, rng: &mut StdRng) -> (String, bytes::Bytes) {
    const WORDS: &[&str] = &[
        "harbour",
        "ferry",
        "tide",
        "lighthouse",
        "ledger",
        "storm",
        "channel",
        "anchor",
        "keeper",
        "island",
        "dawn",
        "dusk",
        "cargo",
        "pier",
        "signal",
        "current",
    ];
    let paragraphs = rng.random_range(2..6);
    let mut text = format!("# Log {i}\n\n");
    for p in 0..paragraphs {
        text.push_str(&format!("## Entry {p}\n\n"));
        for _ in 0..rng.random_range(20..80) {
            text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
            text.push(' ');
        }
        text.push_str("\n\n");
    }
    (format!("log-{i}.md"), bytes::Bytes::from(text))
}

/// A drill's exit code: success when nothing was lost.
fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The address a `docket serve` started with its stdout piped says it listens on (waiting up
/// to a minute).
async fn listening_url(server: &mut tokio::process::Child) -> anyhow::Result<String> {
    let stdout = server
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("docket is listening on ") {
                return Some(url.trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| anyhow::anyhow!("docket serve did not start"))
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

/// The invariants every drill checks in the database once its documents have finished
/// ([`docket_core::ConsistencyReport`]): what was lost (0 when nothing) and the figures.
async fn verify<D: Driver>(
    driver: &D,
    documents: i64,
    completed: i64,
) -> anyhow::Result<(i64, serde_json::Value)> {
    let r = driver.conn().await?.consistency_report().await?;
    let lost = (documents - completed) + r.violations();
    Ok((
        lost,
        json!({
            "chunks": r.chunks,
            "duplicate_chunks": r.duplicate_chunks,
            "chunk_count_mismatches": r.chunk_count_mismatches,
            "chunks_without_vector": r.chunks_without_vector,
            "jobs_completed_twice": r.jobs_completed_twice,
            "stages_completed_twice": r.stages_completed_twice,
            "attempts_unrecorded": r.attempts_unrecorded,
            "completed_jobs_without_attempt": r.completed_jobs_without_attempt,
            "jobs_not_completed": r.jobs_not_completed,
            "attempts_by_outcome": r.attempts_by_outcome,
        }),
    ))
}

/// Documents completed and failed.
async fn counts<D: Driver>(driver: &D) -> anyhow::Result<(i64, i64)> {
    let r = driver.conn().await?.consistency_report().await?;
    Ok((r.documents_completed, r.documents_failed))
}

/// Prints the last lines of up to `files` logs (`*.log`) in `dir` to stderr, for a drill that
/// lost something.
fn print_log_tails(dir: &std::path::Path, files: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let logs = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"));
    for log in logs.take(files) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        eprintln!(
            "--- {}\n{}",
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// Points a `docket` child process at the drill's database and blob folder: the caller's
/// `DOCKET_*` variables are cleared, and it starts in the blob folder, so that no
/// `docket.toml` from the caller's directory applies.
fn child_env(cmd: &mut tokio::process::Command, url: &str, blob_dir: &std::path::Path) {
    for (k, _) in std::env::vars() {
        if k.starts_with("DOCKET_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("DOCKET_DATABASE_URL", url)
        .env("DOCKET_STORAGE__BLOB_DIR", blob_dir)
        .env("DOCKET_MIGRATE_ON_START", "false")
        // Workers serve /metrics and the health checks too: each on a port of its own.
        .env("DOCKET_HTTP__LISTEN", "127.0.0.1:0")
        .envs(WORKER_ENV.iter().copied())
        .current_dir(blob_dir)
        .kill_on_drop(true);
}

/// Uploads a document, retrying while the server answers 503 or cannot be reached; the
/// number of retries.
async fn upload_retrying(
    http: &reqwest::Client,
    base: &str,
    name: String,
    bytes: bytes::Bytes,
) -> anyhow::Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut retries = 0;
    loop {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.clone()),
        );
        match http
            .post(format!("{base}/v1/documents"))
            .multipart(form)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(retries),
            Ok(r) if r.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                anyhow::bail!(
                    "upload of {name}: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )
            }
            _ => {}
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "upload of {name}: still failing after 120 s"
        );
        retries += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
