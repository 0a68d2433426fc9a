//! `docket drill …`: reliability drills that anyone can rerun, each bounded in time and
//! printing a JSON summary. The fast versions run in the test suite (`tests/drills.rs`).
//!
//! - `crash`: documents through the whole pipeline in several `docket worker` processes on
//!   PostgreSQL while a random worker is killed (SIGKILL) every few seconds and started again.
//!   Every document must complete, no chunk may be stored twice, every attempt must be
//!   recorded and no job may finish twice.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use docket_core::{Driver, Executor};
use docket_pipeline::NewDocument;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::bench::{BackendKind, Fresh};
use crate::backend::Backend;
use crate::config::Config;

/// `docket drill …`
#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Kill random worker processes (SIGKILL) while documents go through the pipeline
    /// (PostgreSQL; needs --database-url).
    Crash(CrashDrill),
}

/// `docket drill crash` flags.
#[derive(Debug, Args)]
pub struct CrashDrill {
    /// Documents to push through.
    #[arg(long, default_value_t = 2_000)]
    documents: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Milliseconds between kills.
    #[arg(long, default_value_t = 3_000)]
    kill_every_ms: u64,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 1_800)]
    timeout_secs: u64,
    /// Random seed (documents and victims).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Runs a drill.
pub async fn drill(config: Config, cmd: DrillCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DrillCommand::Crash(c) => crash(config, c).await,
    }
}

/// Environment for worker processes: fast liveness so that a killed worker's jobs come back
/// within about two seconds, the lexical embedder, quiet logs.
const WORKER_ENV: &[(&str, &str)] = &[
    ("DOCKET_EMBED__PROVIDER", "hashing"),
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
        for (k, _) in std::env::vars() {
            if k.starts_with("DOCKET_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("worker")
            .env("DOCKET_DATABASE_URL", &self.url)
            .env("DOCKET_STORAGE__BLOB_DIR", &self.blob_dir)
            .env("DOCKET_MIGRATE_ON_START", "false")
            .envs(WORKER_ENV.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
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

async fn crash(mut config: Config, c: CrashDrill) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        config.database_url.starts_with("postgres"),
        "the crash drill runs worker processes on PostgreSQL: pass --database-url postgres://…"
    );
    anyhow::ensure!(c.workers >= 1, "--workers must be at least 1");
    let started = Instant::now();
    let blob_dir = tempfile::tempdir()?;
    let log_dir = tempfile::tempdir()?;
    config.storage.blob_dir = blob_dir.path().to_owned();
    config.embed = docket_embed::EmbedConfig::Hashing(Default::default());
    config.notify = Default::default();
    let fresh = Fresh::new(&config, BackendKind::Postgres).await?;
    let Backend::Postgres(driver) = fresh.backend.clone() else {
        anyhow::bail!("expected PostgreSQL");
    };
    let pipeline = crate::pipeline::build(driver.clone(), &config).await?;

    let mut rng = StdRng::seed_from_u64(c.seed);
    let mut ids = Vec::with_capacity(c.documents);
    for i in 0..c.documents {
        let (name, bytes) = document(i, &mut rng);
        let sub = pipeline
            .submit(NewDocument {
                bytes,
                filename: Some(name),
                ..Default::default()
            })
            .await?;
        ids.push(sub.document.id);
    }
    let submitted_in = started.elapsed();

    let mut workers = Workers {
        exe: std::env::current_exe()?,
        url: fresh.url().to_owned(),
        blob_dir: blob_dir.path().to_owned(),
        log_dir: log_dir.path().to_owned(),
        procs: Vec::new(),
        started: 0,
    };
    for _ in 0..c.workers {
        let p = workers.spawn()?;
        workers.procs.push(p);
    }

    let deadline = started + Duration::from_secs(c.timeout_secs);
    let mut kills = 0usize;
    let mut next_kill = Instant::now() + Duration::from_millis(c.kill_every_ms);
    let (done, failed) = loop {
        let (done, failed) = counts(&driver).await?;
        if done + failed >= c.documents as i64 {
            break (done, failed);
        }
        if Instant::now() > deadline {
            break (done, failed);
        }
        if Instant::now() >= next_kill {
            let victim = rng.random_range(0..workers.procs.len());
            // SIGKILL: no shutdown, no released jobs, no final completions.
            workers.procs[victim].kill().await?;
            kills += 1;
            let p = workers.spawn()?;
            workers.procs[victim] = p;
            next_kill = Instant::now() + Duration::from_millis(c.kill_every_ms);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    for p in &mut workers.procs {
        let _ = p.kill().await;
    }

    let pool = driver.pool().clone();
    let scalar = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("{sql}: {e}"))
        }
    };
    // No chunk stored twice (the unique index forbids it; count anyway), and every completed
    // document holds exactly the chunks it says it has.
    let duplicate_chunks = scalar(
        "SELECT count(*) FROM (SELECT 1 FROM document_chunks \
         GROUP BY document_id, generation, chunk_index HAVING count(*) > 1) d",
    )
    .await?;
    let chunk_count_mismatches = scalar(
        "SELECT count(*) FROM documents d WHERE d.status = 'completed' AND d.chunk_count <> \
         (SELECT count(*) FROM document_chunks c \
          WHERE c.document_id = d.id AND c.generation = d.active_generation)",
    )
    .await?;
    let chunks = scalar("SELECT count(*) FROM document_chunks").await?;
    let unembedded = scalar(
        "SELECT count(*) FROM document_chunks c JOIN documents d ON d.id = c.document_id \
         WHERE c.generation = d.active_generation AND c.embedding IS NULL",
    )
    .await?;
    // No job finished twice: one `completed` attempt at most per job, and one completed job
    // per (document, generation, stage).
    let jobs_completed_twice = scalar(
        "SELECT count(*) FROM (SELECT job_id FROM job_attempts WHERE outcome = 'completed' \
         GROUP BY job_id HAVING count(*) > 1) j",
    )
    .await?;
    let stages_completed_twice = scalar(
        "SELECT count(*) FROM (SELECT unique_key FROM processing_jobs \
         WHERE status = 'completed' AND unique_key LIKE 'document:%' \
         GROUP BY unique_key HAVING count(*) > 1) j",
    )
    .await?;
    // Every attempt recorded: each claim (the job's attempt counter) left exactly one row.
    let attempts_unrecorded = scalar(
        "SELECT count(*) FROM processing_jobs j WHERE j.attempts <> \
         (SELECT count(*) FROM job_attempts a WHERE a.job_id = j.id AND a.outcome <> 'released')",
    )
    .await?;
    let completed_jobs_without_attempt = scalar(
        "SELECT count(*) FROM processing_jobs j WHERE j.status = 'completed' AND NOT EXISTS \
         (SELECT 1 FROM job_attempts a WHERE a.job_id = j.id AND a.outcome = 'completed')",
    )
    .await?;
    let outcomes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, count(*) FROM job_attempts GROUP BY outcome ORDER BY outcome",
    )
    .fetch_all(&pool)
    .await?;
    let jobs_not_completed = scalar(
        "SELECT count(*) FROM processing_jobs WHERE job_type LIKE 'docket.%' \
         AND job_type <> 'docket.cleanup' AND job_type <> 'docket.sweep_documents' \
         AND status <> 'completed'",
    )
    .await?;
    drop(pipeline);
    let lost = (c.documents as i64 - done)
        + duplicate_chunks
        + chunk_count_mismatches
        + unembedded
        + jobs_completed_twice
        + stages_completed_twice
        + attempts_unrecorded
        + completed_jobs_without_attempt;
    let ok = lost == 0;
    let summary = json!({
        "drill": "crash",
        "ok": ok,
        "documents": c.documents,
        "completed": done,
        "failed": failed,
        "workers": c.workers,
        "kills": kills,
        "worker_processes_started": workers.started,
        "chunks": chunks,
        "duplicate_chunks": duplicate_chunks,
        "chunk_count_mismatches": chunk_count_mismatches,
        "chunks_without_vector": unembedded,
        "jobs_completed_twice": jobs_completed_twice,
        "stages_completed_twice": stages_completed_twice,
        "attempts_unrecorded": attempts_unrecorded,
        "completed_jobs_without_attempt": completed_jobs_without_attempt,
        "jobs_not_completed": jobs_not_completed,
        "attempts_by_outcome": outcomes.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "submit_seconds": submitted_in.as_secs_f64(),
        "elapsed_seconds": elapsed.as_secs_f64(),
        "documents_per_second": done as f64 / elapsed.saturating_sub(submitted_in).as_secs_f64().max(0.001),
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if !ok {
        let logs: Vec<_> = std::fs::read_dir(log_dir.path())?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        for l in logs.iter().take(3) {
            let text = std::fs::read_to_string(l).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            eprintln!(
                "--- {}\n{}",
                l.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
    fresh.drop_schema().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn counts<D: Driver>(driver: &D) -> anyhow::Result<(i64, i64)> {
    let mut c = driver.conn().await?;
    let mut done = 0;
    let mut failed = 0;
    for status in [
        docket_core::DocumentStatus::Completed,
        docket_core::DocumentStatus::Failed,
    ] {
        let mut before = None;
        loop {
            let page = c
                .document_list(&docket_core::DocumentListParams {
                    status: Some(status),
                    source: None,
                    before,
                    limit: 1000,
                })
                .await?;
            let n = page.len() as i64;
            if status == docket_core::DocumentStatus::Completed {
                done += n;
            } else {
                failed += n;
            }
            if n < 1000 {
                break;
            }
            before = page.last().map(|d| d.id);
        }
    }
    Ok((done, failed))
}
