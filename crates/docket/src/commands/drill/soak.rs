//! `docket drill soak`: steady ingestion for a long time, with a transaction held open.

use super::*;

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

/// The tables the soak drill measures.
const SOAK_TABLES: [&str; 4] = [
    "document_chunks",
    "documents",
    "job_attempts",
    "processing_jobs",
];

const MB: f64 = 1048576.0;

/// What the soak drill holds open and measures, per backend (the drivers' diagnostics).
enum Probe {
    Postgres {
        driver: docket_postgres::PgDriver,
        held: Option<docket_postgres::diagnostics::HeldSnapshot>,
    },
    Sqlite {
        driver: docket_sqlite::SqliteDriver,
        /// The database file; its write-ahead log is beside it (`…-wal`).
        path: std::path::PathBuf,
        held: Option<docket_sqlite::diagnostics::HeldRead>,
    },
}

impl Probe {
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
            Probe::Postgres { driver, held } => *held = Some(driver.hold_snapshot().await?),
            Probe::Sqlite { driver, path, held } => *held = Some(driver.hold_read(path).await?),
        }
        Ok(())
    }

    async fn release(&mut self) -> anyhow::Result<()> {
        match self {
            Probe::Postgres { held, .. } => {
                if let Some(h) = held.take() {
                    h.release().await?;
                }
            }
            Probe::Sqlite { held, .. } => {
                if let Some(h) = held.take() {
                    h.release().await?;
                }
            }
        }
        Ok(())
    }

    /// Documents completed in the last `secs` seconds, and the p50 and p99 of their latency
    /// (created → completed) in seconds.
    async fn latency(&self, secs: u64) -> anyhow::Result<(usize, Option<f64>, Option<f64>)> {
        let since = chrono::Utc::now() - chrono::Duration::seconds(secs as i64);
        let mut xs = match self {
            Probe::Postgres { driver, .. } => driver.completion_latencies(since).await?,
            Probe::Sqlite { driver, .. } => driver.completion_latencies(since).await?,
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
            Probe::Postgres { driver, .. } => {
                let tables = driver.table_stats(&SOAK_TABLES).await?;
                Ok(serde_json::Value::Object(
                    tables
                        .into_iter()
                        .map(|t| {
                            let figures = json!({
                                "total_mb": t.total_bytes as f64 / MB,
                                "indexes_mb": t.index_bytes as f64 / MB,
                                "live_rows": t.live_rows,
                                "dead_rows": t.dead_rows,
                                "autovacuums": t.autovacuums,
                            });
                            (t.name, figures)
                        })
                        .collect(),
                ))
            }
            Probe::Sqlite { driver, path, .. } => {
                let mb =
                    |p: &std::path::Path| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / MB);
                let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
                let stats = driver.file_stats(&SOAK_TABLES).await?;
                let rows: serde_json::Map<_, _> =
                    stats.rows.into_iter().map(|(t, n)| (t, json!(n))).collect();
                Ok(json!({
                    "database_mb": mb(path),
                    "wal_mb": mb(&wal),
                    "free_mb": stats.free_bytes as f64 / MB,
                    "rows": rows,
                }))
            }
        }
    }

    /// After cleanup: PostgreSQL vacuums the tables; SQLite checkpoints and truncates its
    /// write-ahead log (the database file keeps its free pages for reuse).
    async fn vacuum(&self) -> anyhow::Result<()> {
        match self {
            Probe::Postgres { driver, .. } => driver.vacuum_analyze(&SOAK_TABLES).await?,
            Probe::Sqlite { driver, .. } => driver.checkpoint_truncate().await?,
        }
        Ok(())
    }
}

pub(super) async fn soak(mut config: Config, k: SoakDrill) -> anyhow::Result<ExitCode> {
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
            let autovacuum = d.setting("autovacuum").await?;
            let probe = Probe::Postgres {
                driver: d.clone(),
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
            let limit = d.journal_size_limit().await?;
            let probe = Probe::Sqlite {
                driver: d.clone(),
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
    Ok(super::exit_code(ok))
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
        let (done, failed) = counts(&driver).await?;
        if done + failed >= submitted as i64 || Instant::now() > drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    handle.shutdown().await;
    // The invariants, before cleanup deletes the finished jobs and their attempts.
    let (done, failed) = counts(&driver).await?;
    let (lost, checks) = verify(&driver, submitted as i64, done).await?;
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
