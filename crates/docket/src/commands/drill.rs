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
use docket_core::{Driver, QueueExecutor};
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
}

/// `docket drill soak` flags.
#[derive(Debug, Args)]
pub struct SoakDrill {
    /// The backend: PostgreSQL at --database-url (a schema of its own), or SQLite in a
    /// temporary file.
    #[arg(long, value_enum, default_value = "postgres")]
    backend: BackendKind,
    /// How long documents keep coming.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Documents submitted per second.
    #[arg(long, default_value_t = 10)]
    rate: u64,
    /// When the open transaction starts, in minutes from the start.
    #[arg(long, default_value_t = 15.0)]
    hold_from: f64,
    /// How long it stays open, in minutes.
    #[arg(long, default_value_t = 20.0)]
    hold_minutes: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 60)]
    sample_secs: u64,
    /// The cleaner runs every minute during the run and deletes jobs finished longer ago than
    /// this (production keeps them for days and cleans daily; this is the same cycle, faster).
    /// 0: no cleanup until the end.
    #[arg(long, default_value_t = 10)]
    retention_minutes: u64,
}

/// `docket drill hostile` flags.
#[derive(Debug, Args)]
pub struct HostileDrill {
    /// Times each file is processed (the first upload, then re-processing).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// The hostile corpus, committed with the parser's tests.
const HOSTILE: &[(&str, &[u8])] = &[
    (
        "loop.pdf",
        include_bytes!("../../../docket-parse/tests/corpus/hostile/loop.pdf"),
    ),
    (
        "corrupt.pdf",
        include_bytes!("../../../docket-parse/tests/corpus/hostile/corrupt.pdf"),
    ),
    (
        "truncated.pdf",
        include_bytes!("../../../docket-parse/tests/corpus/hostile/truncated.pdf"),
    ),
    (
        "bomb.docx",
        include_bytes!("../../../docket-parse/tests/corpus/hostile/bomb.docx"),
    ),
    (
        "deep.html",
        include_bytes!("../../../docket-parse/tests/corpus/hostile/deep.html"),
    ),
    (
        "garbage.txt",
        include_bytes!("../../../docket-parse/tests/corpus/hostile/garbage.txt"),
    ),
    (
        "invalid-utf8.json",
        include_bytes!("../../../docket-parse/tests/corpus/hostile/invalid-utf8.json"),
    ),
    (
        "invalid-utf8.txt",
        include_bytes!("../../../docket-parse/tests/corpus/hostile/invalid-utf8.txt"),
    ),
];

/// How the database goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutageMode {
    /// `pg_terminate_backend` on every connection of the drill's processes, five times over
    /// two seconds (only theirs: they carry an application name of their own).
    Terminate,
    /// Stop the PostgreSQL server, keep it down `--down-secs` while uploads go on, start it.
    Restart,
}

/// `docket drill outage` flags.
#[derive(Debug, Args)]
pub struct OutageDrill {
    /// How the database goes away.
    #[arg(long, value_enum, default_value = "terminate")]
    mode: OutageMode,
    /// Documents to push through (half before the outage, half during and after it).
    #[arg(long, default_value_t = 300)]
    documents: usize,
    /// The command that stops and starts PostgreSQL when given `stop` or `start` (mode
    /// `restart`); default: pg_ctlcluster on the newest cluster in /etc/postgresql.
    #[arg(long)]
    pg_ctl: Option<String>,
    /// How long PostgreSQL stays down (mode `restart`), while uploads go on.
    #[arg(long, default_value_t = 3)]
    down_secs: u64,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
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
        DrillCommand::Outage(o) => outage(config, o).await,
        DrillCommand::Hostile(h) => hostile(h).await,
        DrillCommand::Soak(k) => soak(config, k).await,
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
    config.embed.provider = docket_embed::EmbedConfig::Hashing(Default::default());
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
        let (done, failed) = counts(Db::Pg(driver.pool())).await?;
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

    drop(pipeline);
    let (lost, checks) = verify(Db::Pg(driver.pool()), c.documents as i64, done).await?;
    let ok = lost == 0;
    let mut summary = json!({
        "drill": "crash",
        "ok": ok,
        "documents": c.documents,
        "completed": done,
        "failed": failed,
        "workers": c.workers,
        "kills": kills,
        "worker_processes_started": workers.started,
        "submit_seconds": submitted_in.as_secs_f64(),
        "elapsed_seconds": elapsed.as_secs_f64(),
        "documents_per_second": done as f64 / elapsed.saturating_sub(submitted_in).as_secs_f64().max(0.001),
    });
    merge(&mut summary, checks);
    outln!("{}", serde_json::to_string_pretty(&summary)?)?;
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

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

/// A database the invariants are checked in (the checks are plain SQL both accept).
#[derive(Clone, Copy)]
enum Db<'a> {
    Pg(&'a sqlx::PgPool),
    Lite(&'a sqlx::SqlitePool),
}

impl Db<'_> {
    async fn scalar(self, sql: &str) -> anyhow::Result<i64> {
        let r = match self {
            Db::Pg(p) => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await,
            Db::Lite(p) => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await,
        };
        r.map_err(|e| anyhow::anyhow!("{sql}: {e}"))
    }

    async fn pairs(self, sql: &str) -> anyhow::Result<Vec<(String, i64)>> {
        let r = match self {
            Db::Pg(p) => sqlx::query_as(sql).fetch_all(p).await,
            Db::Lite(p) => sqlx::query_as(sql).fetch_all(p).await,
        };
        r.map_err(|e| anyhow::anyhow!("{sql}: {e}"))
    }
}

/// The invariants every drill checks in the database once its documents have finished:
/// what was lost (0 when nothing) and the figures.
async fn verify(
    db: Db<'_>,
    documents: i64,
    completed: i64,
) -> anyhow::Result<(i64, serde_json::Value)> {
    let scalar = |sql: &'static str| db.scalar(sql);
    // No chunk stored twice (the unique index forbids it; count anyway), and every completed
    // document holds exactly the chunks it says it has, each with its vector.
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
    // Every attempt recorded: each claim (the job's attempt counter) left exactly one row
    // (attempts given back uncounted, `released`, aside).
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
    let outcomes = db
        .pairs("SELECT outcome, count(*) FROM job_attempts GROUP BY outcome ORDER BY outcome")
        .await?;
    let jobs_not_completed = scalar(
        "SELECT count(*) FROM processing_jobs WHERE job_type LIKE 'docket.%' \
         AND job_type <> 'docket.cleanup' AND job_type <> 'docket.sweep_documents' \
         AND status <> 'completed'",
    )
    .await?;
    let lost = (documents - completed)
        + duplicate_chunks
        + chunk_count_mismatches
        + unembedded
        + jobs_completed_twice
        + stages_completed_twice
        + attempts_unrecorded
        + completed_jobs_without_attempt;
    Ok((
        lost,
        json!({
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
        }),
    ))
}

/// Documents completed and failed.
async fn counts(db: Db<'_>) -> anyhow::Result<(i64, i64)> {
    let by_status = db
        .pairs(
            "SELECT status, count(*) FROM documents \
             WHERE status IN ('completed', 'failed') GROUP BY status",
        )
        .await?;
    let of = |s: &str| {
        by_status
            .iter()
            .find(|(k, _)| k == s)
            .map_or(0, |(_, n)| *n)
    };
    Ok((of("completed"), of("failed")))
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

async fn outage(mut config: Config, o: OutageDrill) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        config.database_url.starts_with("postgres"),
        "the outage drill needs PostgreSQL: pass --database-url postgres://…"
    );
    let started = Instant::now();
    let blob_dir = tempfile::tempdir()?;
    config.storage.blob_dir = blob_dir.path().to_owned();
    let fresh = Fresh::new(&config, BackendKind::Postgres).await?;
    let Backend::Postgres(driver) = fresh.backend.clone() else {
        anyhow::bail!("expected PostgreSQL");
    };
    let app = format!(
        "docket_drill_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let url = format!("{}&application_name={app}", fresh.url());
    let exe = std::env::current_exe()?;

    // The server (API, workers, maintenance) and one more worker.
    let mut server = {
        let mut cmd = tokio::process::Command::new(&exe);
        child_env(&mut cmd, &url, blob_dir.path());
        cmd.arg("serve")
            .env("DOCKET_HTTP__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd.spawn()?
    };
    let mut worker = {
        let mut cmd = tokio::process::Command::new(&exe);
        child_env(&mut cmd, &url, blob_dir.path());
        cmd.arg("worker")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn()?
    };
    let stdout = server
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let base = tokio::time::timeout(Duration::from_secs(60), async {
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
    .ok_or_else(|| anyhow::anyhow!("docket serve did not start"))?;
    let http = reqwest::Client::builder().no_proxy().build()?;

    let mut rng = StdRng::seed_from_u64(11);
    let docs: Vec<_> = (0..o.documents).map(|i| document(i, &mut rng)).collect();
    let half = o.documents / 2;
    let mut upload_retries = 0;
    for (name, bytes) in &docs[..half] {
        upload_retries += upload_retrying(&http, &base, name.clone(), bytes.clone()).await?;
    }

    // /readyz, every 20 ms (a restart can leave the database down for well under a second), from now to the end.
    let seen: Arc<std::sync::Mutex<Vec<(f64, u16)>>> = Arc::default();
    let probe = {
        let (http, base, seen) = (http.clone(), base.clone(), seen.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            loop {
                let status = match http
                    .get(format!("{base}/readyz"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0, // the server did not answer at all
                };
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((t0.elapsed().as_secs_f64(), status));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // The outage.
    let outage_started = Instant::now();
    let mut terminated = 0i64;
    match o.mode {
        OutageMode::Terminate => {
            let admin = sqlx::PgPool::connect(&config.database_url).await?;
            for _ in 0..5 {
                terminated += sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()) t",
                )
                .bind(&app)
                .fetch_one(&admin)
                .await?;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            admin.close().await;
        }
        OutageMode::Restart => {
            let pg_ctl = match &o.pg_ctl {
                Some(c) => c.clone(),
                None => {
                    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")?
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
                    let v = versions
                        .pop()
                        .ok_or_else(|| anyhow::anyhow!("no cluster in /etc/postgresql"))?;
                    format!("pg_ctlcluster --skip-systemctl-redirect {v} main")
                }
            };
            let run = |action: &'static str| {
                let command = format!("{pg_ctl} {action}");
                async move {
                    let st = tokio::process::Command::new("sh")
                        .args(["-c", &command])
                        .status()
                        .await?;
                    anyhow::ensure!(st.success(), "{command}: {st}");
                    Ok::<_, anyhow::Error>(())
                }
            };
            run("stop").await?;
            // The second half is uploaded while the database is down: refused with 503,
            // retried by the client until it is back.
            let uploads = {
                let (http, base) = (http.clone(), base.clone());
                let rest: Vec<_> = docs[half..].to_vec();
                tokio::spawn(async move {
                    let mut retries = 0;
                    for (name, bytes) in rest {
                        retries += upload_retrying(&http, &base, name, bytes).await?;
                    }
                    Ok::<_, anyhow::Error>(retries)
                })
            };
            tokio::time::sleep(Duration::from_secs(o.down_secs)).await;
            run("start").await?;
            upload_retries += uploads.await??;
        }
    }
    let outage_secs = outage_started.elapsed().as_secs_f64();

    // The rest, during the recovery (mode `restart` uploaded them during the outage).
    if o.mode == OutageMode::Terminate {
        for (name, bytes) in &docs[half..] {
            upload_retries += upload_retrying(&http, &base, name.clone(), bytes.clone()).await?;
        }
    }
    let deadline = started + Duration::from_secs(o.timeout_secs);
    let mut last = (0, 0);
    let (done, failed) = loop {
        if let Ok(c) = counts(Db::Pg(driver.pool())).await {
            last = c;
        }
        if last.0 + last.1 >= o.documents as i64 || Instant::now() > deadline {
            break last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    probe.abort();
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let server_alive = server.try_wait()?.is_none();
    let worker_alive = worker.try_wait()?.is_none();
    let _ = server.kill().await;
    let _ = worker.kill().await;

    let (lost, checks) = verify(Db::Pg(driver.pool()), o.documents as i64, done).await?;
    let unready: Vec<f64> = seen
        .iter()
        .filter(|(_, s)| *s == 503)
        .map(|(t, _)| *t)
        .collect();
    // The longest stretch without an answer from /readyz (a probe that hung).
    let longest_probe_gap = seen
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0f64, f64::max);
    let unanswered = seen.iter().filter(|(_, s)| *s == 0).count();
    let ready_at_end = seen.last().is_some_and(|(_, s)| *s == 200);
    let saw_outage = o.mode != OutageMode::Restart || !unready.is_empty();
    let ok = lost == 0 && server_alive && worker_alive && ready_at_end && saw_outage;
    let mut summary = json!({
        "drill": "outage",
        "mode": format!("{:?}", o.mode).to_lowercase(),
        "ok": ok,
        "documents": o.documents,
        "completed": done,
        "failed": failed,
        "connections_terminated": terminated,
        "outage_seconds": outage_secs,
        "upload_retries": upload_retries,
        "readyz_probes": seen.len(),
        "readyz_503": unready.len(),
        "readyz_unanswered": unanswered,
        "readyz_503_window_seconds": unready.first().zip(unready.last()).map(|(a, b)| b - a),
        "readyz_longest_gap_seconds": longest_probe_gap,
        "ready_at_end": ready_at_end,
        "server_stayed_up": server_alive,
        "worker_stayed_up": worker_alive,
        "elapsed_seconds": elapsed.as_secs_f64(),
    });
    merge(&mut summary, checks);
    outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    fresh.drop_schema().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn rss_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn hostile(h: HostileDrill) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    const LIMIT: u64 = 4 << 20;
    let mut server = {
        let mut cmd = tokio::process::Command::new(&exe);
        for (k, _) in std::env::vars() {
            if k.starts_with("DOCKET_") {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(dir.path())
            .arg("serve")
            .env("DOCKET_HTTP__LISTEN", "127.0.0.1:0")
            .env("DOCKET_EMBED__PROVIDER", "hashing")
            .env("DOCKET_LOG__LEVEL", "warn")
            .env("DOCKET_STORAGE__MAX_FILE_BYTES", LIMIT.to_string())
            .env("DOCKET_WORKER__POLL_INTERVAL_MS", "100")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        cmd.spawn()?
    };
    let pid = server
        .id()
        .ok_or_else(|| anyhow::anyhow!("the server exited at once"))?;
    let stdout = server
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let base = tokio::time::timeout(Duration::from_secs(60), async {
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
    .ok_or_else(|| anyhow::anyhow!("docket serve did not start"))?;
    let idle_rss_kb = rss_kb(pid, "VmRSS:").unwrap_or(0);
    let http = reqwest::Client::builder().no_proxy().build()?;
    let form = |name: &str, bytes: Vec<u8>, reprocess: bool| {
        let mut f = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
        if reprocess {
            f = f.text("reprocess", "true");
        }
        f
    };

    // Refused at the door: an empty file (422) and one over the limit (413).
    let mut refusals = serde_json::Map::new();
    for (name, bytes, want) in [
        ("empty.txt", Vec::new(), 422u16),
        ("huge.txt", vec![b'a'; LIMIT as usize + 1], 413),
    ] {
        let r = http
            .post(format!("{base}/v1/documents"))
            .multipart(form(name, bytes, false))
            .send()
            .await?;
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        refusals.insert(
            name.into(),
            json!({ "status": status, "expected": want, "error": body["error"] }),
        );
    }

    // The rest, `rounds` times each: uploaded, then re-processed.
    let mut ids = Vec::new();
    for (name, bytes) in HOSTILE {
        let r = http
            .post(format!("{base}/v1/documents"))
            .multipart(form(name, bytes.to_vec(), false))
            .send()
            .await?;
        let body: serde_json::Value = r.json().await?;
        let id = body["document"]["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("upload of {name}: {body}"))?
            .to_owned();
        ids.push((*name, id));
    }
    let mut peak_kb = rss_kb(pid, "VmRSS:").unwrap_or(0);
    let deadline = started + Duration::from_secs(h.timeout_secs);
    let mut results: Vec<(String, serde_json::Value)> = Vec::new();
    for round in 0..h.rounds {
        // Wait for this round to finish (no document still in progress).
        loop {
            peak_kb = peak_kb.max(rss_kb(pid, "VmRSS:").unwrap_or(0));
            let mut busy = 0;
            results.clear();
            for (name, id) in &ids {
                let d: serde_json::Value = http
                    .get(format!("{base}/v1/documents/{id}"))
                    .send()
                    .await?
                    .json()
                    .await?;
                let st = d["status"].as_str().unwrap_or("").to_owned();
                if st != "completed" && st != "failed" {
                    busy += 1;
                }
                results.push((name.to_string(), d));
            }
            if busy == 0 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "documents still in progress at the deadline"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if round + 1 < h.rounds {
            for (name, id) in &ids {
                let r = http
                    .post(format!("{base}/v1/documents/{id}/reprocess"))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "reprocess {name}: {}", r.status());
            }
        }
    }
    let server_alive = server.try_wait()?.is_none();
    let healthy = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    // Attempts per parse job: a hostile file must fail once, not be retried.
    let jobs: serde_json::Value = http
        .get(format!("{base}/v1/jobs?kind=docket.parse&limit=1000"))
        .send()
        .await?
        .json()
        .await?;
    let max_parse_attempts = jobs["jobs"]
        .as_array()
        .map(|j| {
            j.iter()
                .filter_map(|j| j["attempts"].as_i64())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let vm_hwm_kb = rss_kb(pid, "VmHWM:").unwrap_or(0);
    let _ = server.kill().await;

    let mut unclear = 0;
    let mut files = serde_json::Map::new();
    for (name, d) in &results {
        let status = d["status"].as_str().unwrap_or("");
        let error = d["error"].as_str().unwrap_or("");
        // A parser may recover text from a damaged file; a failure must say why, at parse.
        if status == "failed" && (error.len() < 10 || d["error_stage"] != "parse") {
            unclear += 1;
        }
        files.insert(
            name.clone(),
            json!({ "status": status, "generation": d["generation"], "error": error }),
        );
    }
    let refused_right = refusals
        .values()
        .all(|r| r["status"] == r["expected"] && r["error"].is_string());
    let ok = server_alive && healthy && unclear == 0 && refused_right && max_parse_attempts <= 1;
    let summary = json!({
        "drill": "hostile",
        "ok": ok,
        "rounds": h.rounds,
        "files": files,
        "refused_at_upload": refusals,
        "unclear_errors": unclear,
        "max_parse_attempts": max_parse_attempts,
        "server_stayed_up": server_alive && healthy,
        "server_idle_rss_mb": idle_rss_kb as f64 / 1024.0,
        "server_peak_rss_mb": vm_hwm_kb.max(peak_kb) as f64 / 1024.0,
        "elapsed_seconds": started.elapsed().as_secs_f64(),
    });
    outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Sizes and dead rows of the hot tables.
async fn table_figures(pool: &sqlx::PgPool) -> anyhow::Result<serde_json::Value> {
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT relname::text, pg_total_relation_size(relid), pg_indexes_size(relid), \
                n_live_tup, n_dead_tup, autovacuum_count \
         FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() \
           AND relname IN ('processing_jobs', 'job_attempts', 'documents', 'document_chunks') \
         ORDER BY relname",
    )
    .fetch_all(pool)
    .await?;
    Ok(serde_json::Value::Object(
        rows.into_iter()
            .map(|(name, total, idx, live, dead, autovacuums)| {
                (
                    name,
                    json!({
                        "total_mb": total as f64 / 1048576.0,
                        "indexes_mb": idx as f64 / 1048576.0,
                        "live_rows": live,
                        "dead_rows": dead,
                        "autovacuums": autovacuums,
                    }),
                )
            })
            .collect(),
    ))
}

/// The tables the soak drill measures.
const SOAK_TABLES: [&str; 4] = [
    "document_chunks",
    "documents",
    "job_attempts",
    "processing_jobs",
];

/// What the soak drill holds open and measures, per backend.
enum Probe {
    Postgres {
        pool: sqlx::PgPool,
        held: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
    },
    Sqlite {
        pool: sqlx::SqlitePool,
        /// The database file; its write-ahead log is beside it (`…-wal`).
        path: std::path::PathBuf,
        held: Option<sqlx::SqliteConnection>,
    },
}

impl Probe {
    fn db(&self) -> Db<'_> {
        match self {
            Probe::Postgres { pool, .. } => Db::Pg(pool),
            Probe::Sqlite { pool, .. } => Db::Lite(pool),
        }
    }

    fn holding(&self) -> bool {
        match self {
            Probe::Postgres { held, .. } => held.is_some(),
            Probe::Sqlite { held, .. } => held.is_some(),
        }
    }

    /// Opens the transaction that holds cleanup back. PostgreSQL: a snapshot, so vacuum
    /// keeps every row version that dies after it began. SQLite: a read transaction on a
    /// connection of its own, as another process (a backup, a `sqlite3` shell) would hold:
    /// no checkpoint can go past it, so the write-ahead log only grows.
    async fn hold(&mut self) -> anyhow::Result<()> {
        match self {
            Probe::Postgres { pool, held } => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT txid_current()")
                    .execute(&mut *tx)
                    .await?;
                *held = Some(tx);
            }
            Probe::Sqlite { path, held, .. } => {
                use sqlx::Connection as _;
                let mut c = sqlx::SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(&*path),
                )
                .await?;
                sqlx::query("BEGIN").execute(&mut c).await?;
                // The first read takes the snapshot.
                sqlx::query("SELECT count(*) FROM documents")
                    .execute(&mut c)
                    .await?;
                *held = Some(c);
            }
        }
        Ok(())
    }

    async fn release(&mut self) -> anyhow::Result<()> {
        match self {
            Probe::Postgres { held, .. } => {
                if let Some(tx) = held.take() {
                    tx.rollback().await?;
                }
            }
            Probe::Sqlite { held, .. } => {
                if let Some(mut c) = held.take() {
                    use sqlx::Connection as _;
                    sqlx::query("ROLLBACK").execute(&mut c).await?;
                    c.close().await?;
                }
            }
        }
        Ok(())
    }

    /// Documents completed in the last `secs` seconds, and the p50 and p99 of their latency
    /// (created → completed) in seconds.
    async fn latency(&self, secs: u64) -> anyhow::Result<(usize, Option<f64>, Option<f64>)> {
        let mut xs: Vec<f64> =
            match self {
                Probe::Postgres { pool, .. } => sqlx::query_scalar(
                    "SELECT extract(epoch FROM completed_at - created_at)::float8 FROM documents \
                     WHERE completed_at > now() - make_interval(secs => $1)",
                )
                .bind(secs as f64)
                .fetch_all(pool)
                .await?,
                Probe::Sqlite { pool, .. } => {
                    let since = chrono::Utc::now().timestamp_micros() - secs as i64 * 1_000_000;
                    sqlx::query_scalar(
                        "SELECT (completed_at - created_at) / 1e6 FROM documents \
                     WHERE completed_at > ?1",
                    )
                    .bind(since)
                    .fetch_all(pool)
                    .await?
                }
            };
        xs.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = (xs.len().saturating_sub(1) as f64 * q).round() as usize;
            xs.get(i).copied()
        };
        Ok((xs.len(), at(0.5), at(0.99)))
    }

    /// PostgreSQL: each table's size, index size, live and dead rows, autovacuum runs.
    /// SQLite: the database and WAL files' sizes, the free pages, each table's rows.
    async fn figures(&self) -> anyhow::Result<serde_json::Value> {
        match self {
            Probe::Postgres { pool, .. } => table_figures(pool).await,
            Probe::Sqlite { pool, path, .. } => {
                let mb = |p: &std::path::Path| {
                    std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1048576.0)
                };
                let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
                let pragma = |name: &'static str| async move {
                    sqlx::query_scalar::<_, i64>(name).fetch_one(pool).await
                };
                let page_size = pragma("PRAGMA page_size").await?;
                let free_pages = pragma("PRAGMA freelist_count").await?;
                let mut rows = serde_json::Map::new();
                for t in SOAK_TABLES {
                    let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
                        .fetch_one(pool)
                        .await?;
                    rows.insert(t.to_owned(), json!(n));
                }
                Ok(json!({
                    "database_mb": mb(path),
                    "wal_mb": mb(&wal),
                    "free_mb": (free_pages * page_size) as f64 / 1048576.0,
                    "rows": rows,
                }))
            }
        }
    }

    /// After cleanup: PostgreSQL vacuums the tables; SQLite checkpoints and truncates its
    /// write-ahead log (the database file keeps its free pages for reuse).
    async fn vacuum(&self) -> anyhow::Result<()> {
        match self {
            Probe::Postgres { pool, .. } => {
                for t in SOAK_TABLES {
                    sqlx::query(&format!("VACUUM ANALYZE {t}"))
                        .execute(pool)
                        .await?;
                }
            }
            Probe::Sqlite { pool, .. } => {
                let (busy, _, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                        .fetch_one(pool)
                        .await?;
                anyhow::ensure!(busy == 0, "the final checkpoint could not finish");
            }
        }
        Ok(())
    }
}

async fn soak(mut config: Config, k: SoakDrill) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        [k.minutes, k.hold_from, k.hold_minutes]
            .iter()
            .all(|m| m.is_finite() && *m >= 0.0)
            && k.minutes > 0.0
            && k.rate > 0
            && k.sample_secs > 0,
        "--minutes, --rate and --sample-secs must be positive; --hold-from and --hold-minutes \
         not negative"
    );
    let blob_dir = tempfile::tempdir()?;
    config.storage.blob_dir = blob_dir.path().to_owned();
    config.embed.provider = docket_embed::EmbedConfig::Hashing(Default::default());
    config.notify = Default::default();
    if k.retention_minutes > 0 {
        let days = k.retention_minutes as f64 / (24.0 * 60.0);
        config.maintenance.completed_retention_days = days;
        config.maintenance.failed_retention_days = days;
        config.maintenance.cleanup_cron = "* * * * *".to_owned();
    }
    let fresh = Fresh::new(&config, k.backend).await?;
    let (probe, setting) = match &fresh.backend {
        Backend::Postgres(d) => {
            let autovacuum: String = sqlx::query_scalar("SHOW autovacuum")
                .fetch_one(d.pool())
                .await?;
            let probe = Probe::Postgres {
                pool: d.pool().clone(),
                held: None,
            };
            (probe, json!({ "autovacuum": autovacuum }))
        }
        Backend::Sqlite(d) => {
            let path = fresh
                .url()
                .strip_prefix("sqlite://")
                .context("a SQLite URL")?
                .into();
            let limit: i64 = sqlx::query_scalar("PRAGMA journal_size_limit")
                .fetch_one(d.pool())
                .await?;
            let probe = Probe::Sqlite {
                pool: d.pool().clone(),
                path,
                held: None,
            };
            (probe, json!({ "journal_size_limit": limit }))
        }
    };
    let mut summary =
        crate::with_driver!(fresh.backend.clone(), |d| soak_with(d, probe, &config, &k)
            .await)?;
    let ok = summary["ok"] == json!(true);
    merge(&mut summary, json!({ "database": setting }));
    outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    fresh.drop_schema().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn soak_with<D: Driver>(
    driver: D,
    mut probe: Probe,
    config: &Config,
    k: &SoakDrill,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let pipeline = crate::pipeline::build(driver.clone(), config).await?;
    let mut workers = crate::builtin::workers();
    pipeline.register(&mut workers);
    // The leader's hourly analytics job, which the built-in schedule enqueues.
    docket_pipeline::analytics::register(
        &mut workers,
        config.analytics(),
        std::sync::Arc::new(docket_core::SystemClock),
    );
    let mut runtime = config.runtime()?;
    if k.retention_minutes == 0 {
        runtime.maintenance = None; // cleanup is run at the end, explicitly
    }
    let handle = docket_queue::Runtime::start(
        driver.clone(),
        workers,
        runtime,
        std::sync::Arc::new(docket_core::SystemClock),
    )?;

    let minutes = |m: f64| Duration::try_from_secs_f64(m * 60.0);
    let total = minutes(k.minutes)?;
    let hold_at = minutes(k.hold_from)?;
    let hold_until = hold_at.saturating_add(minutes(k.hold_minutes)?);
    let mut rng = StdRng::seed_from_u64(3);
    let mut samples = Vec::new();
    let mut next_sample = Instant::now() + Duration::from_secs(k.sample_secs);
    let mut submit_lat = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut submitted = 0usize;
    let tick = Duration::from_secs_f64(1.0 / k.rate as f64);
    let mut next = Instant::now();
    while started.elapsed() < total {
        let t = started.elapsed();
        if !probe.holding() && t >= hold_at && t < hold_until {
            probe.hold().await?;
        }
        if t >= hold_until && probe.holding() {
            probe.release().await?;
        }
        let (name, bytes) = document(submitted, &mut rng);
        let t0 = Instant::now();
        pipeline
            .submit(NewDocument {
                bytes,
                filename: Some(name),
                ..Default::default()
            })
            .await?;
        submit_lat.record(t0.elapsed().as_micros() as u64)?;
        submitted += 1;
        if Instant::now() >= next_sample {
            let (done, lat_p50, lat_p99) = probe.latency(k.sample_secs).await?;
            samples.push(json!({
                "minute": t.as_secs_f64() / 60.0,
                "transaction_held": probe.holding(),
                "completed_per_sec": done as f64 / k.sample_secs as f64,
                "submit_p50_ms": submit_lat.value_at_quantile(0.5) as f64 / 1000.0,
                "submit_p99_ms": submit_lat.value_at_quantile(0.99) as f64 / 1000.0,
                "document_latency_p50_s": lat_p50,
                "document_latency_p99_s": lat_p99,
                "tables": probe.figures().await?,
            }));
            eprintln!(
                "{}",
                samples.last().map(|s| s.to_string()).unwrap_or_default()
            );
            submit_lat.reset();
            next_sample = Instant::now() + Duration::from_secs(k.sample_secs);
        }
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    probe.release().await?;
    // Let the queue drain, then clean up as the maintenance would (retention 0 here) and let
    // vacuum reclaim the dead rows.
    let drain_deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (done, failed) = counts(probe.db()).await?;
        if done + failed >= submitted as i64 || Instant::now() > drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    handle.shutdown().await;
    // The invariants, before cleanup deletes the finished jobs and their attempts.
    let (done, failed) = counts(probe.db()).await?;
    let (lost, checks) = verify(probe.db(), submitted as i64, done).await?;
    let before_cleanup = probe.figures().await?;
    let deleted = {
        let mut c = driver.conn().await?;
        let mut n = 0u64;
        loop {
            let d = c
                .job_delete_finished(docket_core::JobDeleteFinishedParams {
                    completed_before: chrono::Utc::now(),
                    failed_before: chrono::Utc::now(),
                    limit: 10_000,
                })
                .await?;
            n += d;
            if d == 0 {
                break;
            }
        }
        n
    };
    probe.vacuum().await?;
    let after_cleanup = probe.figures().await?;
    let mut summary = json!({
        "drill": "soak",
        "ok": lost == 0,
        "minutes": k.minutes,
        "rate": k.rate,
        "hold": { "from_minute": k.hold_from, "minutes": k.hold_minutes },
        "retention_minutes": k.retention_minutes,
        "documents": submitted,
        "completed": done,
        "failed": failed,
        "samples": samples,
        "jobs_deleted_by_cleanup": deleted,
        "tables_before_cleanup": before_cleanup,
        "tables_after_cleanup": after_cleanup,
        "elapsed_seconds": started.elapsed().as_secs_f64(),
    });
    merge(&mut summary, checks);
    drop(pipeline);
    Ok(summary)
}
