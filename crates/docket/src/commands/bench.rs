//! `docket bench queue`: queue throughput and latency, as JSON.
//!
//! Each phase runs in a fresh database (a new schema on PostgreSQL, a new file on SQLite), so
//! phases do not disturb each other and the user's data is never touched.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use docket_core::{
    Driver, JobInsertManyParams, JobInsertParams, JobState, QueueExecutor, SystemClock,
};
use docket_queue::{JobArgs, JobContext, JobError, Runtime, RuntimeConfig, Worker, Workers};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;

use crate::backend::Backend;
use crate::config::Config;
use crate::out::outln;
use crate::{builtin, with_driver};

/// `docket bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Enqueue throughput, worked throughput and pickup latency of no-op jobs.
    Queue(QueueBench),
    /// Documents through every stage, beside the raw embedding model on the same chunks.
    Pipeline(super::bench_pipeline::PipelineBench),
    /// The HTTP API: idle memory of `docket serve`, upload latency, event-stream delay.
    Http(super::bench_http::HttpBench),
    /// Vector search on docket's own index: build time, memory, latency, recall.
    Search(super::bench_search::SearchBench),
    /// Whether search finds the answer: recall@5 and MRR of a question set over real pages.
    Retrieval(super::bench_retrieval::RetrievalBench),
}

/// Which backend to measure.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum BackendKind {
    /// PostgreSQL at --database-url (or DOCKET_DATABASE_URL); each phase in a new schema.
    Postgres,
    /// SQLite, in a temporary file per phase.
    Sqlite,
}

/// `docket bench queue` flags.
#[derive(Debug, Args)]
pub struct QueueBench {
    /// The backend.
    #[arg(long, value_enum, default_value = "postgres")]
    backend: BackendKind,
    /// Jobs worked in the throughput phase (pre-inserted).
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    /// Worker concurrency in the throughput phase (default: the runtime's default).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Jobs enqueued one call each by the concurrent callers.
    #[arg(long, default_value_t = 20_000)]
    single_jobs: u64,
    /// Concurrent callers for one-call enqueue.
    #[arg(long, default_value_t = 8)]
    callers: u64,
    /// Jobs enqueued in batches.
    #[arg(long, default_value_t = 100_000)]
    batch_jobs: u64,
    /// Jobs per batch.
    #[arg(long, default_value_t = 1_000)]
    batch_size: u64,
    /// Jobs in the latency phase.
    #[arg(long, default_value_t = 1_000)]
    latency_jobs: u64,
    /// Milliseconds between latency-phase enqueues.
    #[arg(long, default_value_t = 20)]
    latency_interval_ms: u64,
    /// Only these phases (comma-separated: single,batch,worked,latency,scale). `scale` runs
    /// only when named here.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Rows in the `scale` phase: claim speed with this many jobs queued, then with this many
    /// finished rows kept, then with this many jobs waiting an hour.
    #[arg(long, default_value_t = 1_000_000)]
    scale_jobs: u64,
}

/// Runs benchmarks.
pub async fn bench(config: Config, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Queue(q) => queue(config, q).await,
        BenchCommand::Pipeline(b) => super::bench_pipeline::pipeline(config, b).await,
        BenchCommand::Http(b) => super::bench_http::http(config, b).await,
        BenchCommand::Search(b) => super::bench_search::search(config, b).await,
        BenchCommand::Retrieval(b) => super::bench_retrieval::retrieval(config, b).await,
    }
}

pub(crate) struct Fresh {
    pub(crate) backend: Backend,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
    url: String,
}

impl Fresh {
    pub(crate) async fn new(config: &Config, kind: BackendKind) -> anyhow::Result<Fresh> {
        let mut c = config.clone();
        c.postgres.max_connections = c.postgres.max_connections.max(20);
        let (dir, schema) = match kind {
            BackendKind::Sqlite => {
                let dir = tempfile::tempdir()?;
                c.database_url = format!("sqlite://{}", dir.path().join("bench.db").display());
                (Some(dir), None)
            }
            BackendKind::Postgres => {
                anyhow::ensure!(
                    c.database_url.starts_with("postgres"),
                    "--backend postgres needs --database-url postgres://…"
                );
                let schema = format!("docket_bench_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&c.database_url).await?;
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                let base = c.database_url.clone();
                let sep = if base.contains('?') { '&' } else { '?' };
                c.database_url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                (None, Some((base, schema)))
            }
        };
        let backend = Backend::open(&c).await?;
        backend.migrate(Duration::from_secs(10)).await?;
        Ok(Fresh {
            backend,
            _dir: dir,
            schema,
            url: c.database_url,
        })
    }

    /// The database URL this backend was opened with (its own schema, on PostgreSQL).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) async fn drop_schema(self) {
        if let Some((base, schema)) = self.schema {
            drop(self.backend);
            if let Ok(admin) = sqlx::PgPool::connect(&base).await {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&admin)
                    .await;
                admin.close().await;
            }
        }
    }
}

async fn queue(config: Config, q: QueueBench) -> anyhow::Result<ExitCode> {
    let want = |p: &str| q.only.is_empty() || q.only.iter().any(|o| o == p);
    let mut report = serde_json::Map::new();
    report.insert(
        "backend".into(),
        json!(format!("{:?}", q.backend).to_lowercase()),
    );
    report.insert(
        "cores".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
    );
    if want("single") {
        let f = Fresh::new(&config, q.backend).await?;
        let r = with_driver!(&f.backend, |d| enqueue_single(
            d.clone(),
            q.single_jobs,
            q.callers
        )
        .await)?;
        report.insert("enqueue_single".into(), r);
        f.drop_schema().await;
    }
    if want("batch") {
        let f = Fresh::new(&config, q.backend).await?;
        let r = with_driver!(&f.backend, |d| enqueue_batch(
            d.clone(),
            q.batch_jobs,
            q.batch_size
        )
        .await)?;
        report.insert("enqueue_batch".into(), r);
        f.drop_schema().await;
    }
    if want("worked") {
        let f = Fresh::new(&config, q.backend).await?;
        let r = with_driver!(&f.backend, |d| worked(d.clone(), q.jobs, q.concurrency)
            .await)?;
        report.insert("worked".into(), r);
        f.drop_schema().await;
    }
    if want("latency") {
        let f = Fresh::new(&config, q.backend).await?;
        let r = with_driver!(&f.backend, |d| {
            latency(
                d.clone(),
                q.latency_jobs,
                Duration::from_millis(q.latency_interval_ms),
            )
            .await
        })?;
        report.insert("latency".into(), r);
        f.drop_schema().await;
    }
    if q.only.iter().any(|o| o == "scale") {
        let f = Fresh::new(&config, q.backend).await?;
        let b = f.backend.clone();
        let vacuum = async || -> anyhow::Result<()> {
            match &b {
                Backend::Postgres(pg) => {
                    sqlx::query("VACUUM ANALYZE processing_jobs")
                        .execute(pg.pool())
                        .await?;
                }
                Backend::Sqlite(lite) => {
                    sqlx::query("PRAGMA optimize").execute(lite.pool()).await?;
                }
            }
            Ok(())
        };
        let r = with_driver!(&f.backend, |d| {
            scale(d.clone(), q.scale_jobs, q.jobs, vacuum).await
        })?;
        report.insert("scale".into(), r);
        f.drop_schema().await;
    }
    outln!("{}", serde_json::to_string_pretty(&report)?)?;
    Ok(ExitCode::SUCCESS)
}

fn noop_job() -> JobInsertParams {
    JobInsertParams::new(builtin::NoopArgs::KIND, json!({}))
}

async fn enqueue_single<D: Driver>(
    d: D,
    jobs: u64,
    callers: u64,
) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let per = jobs / callers.max(1);
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                let mut c = d.conn().await?;
                c.job_insert_many(JobInsertManyParams {
                    jobs: vec![noop_job()],
                })
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = per * callers;
    Ok(json!({ "jobs": n, "callers": callers, "seconds": secs, "jobs_per_sec": n as f64 / secs }))
}

async fn enqueue_batch<D: Driver>(d: D, jobs: u64, size: u64) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let mut left = jobs;
    let mut c = d.conn().await?;
    while left > 0 {
        let n = left.min(size);
        let batch = (0..n).map(|_| noop_job()).collect();
        c.job_insert_many(JobInsertManyParams { jobs: batch })
            .await?;
        left -= n;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(
        json!({ "jobs": jobs, "batch_size": size, "seconds": secs, "jobs_per_sec": jobs as f64 / secs }),
    )
}

/// Counts finished handlers and signals when all are done.
#[derive(Default)]
struct Counter {
    done: AtomicU64,
    target: AtomicU64,
    all: Notify,
}

impl Counter {
    /// Counts one finished handler; signals when the target is reached.
    fn tick(&self) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.target.load(Ordering::Relaxed) {
            self.all.notify_one();
        }
    }
}

struct CountingNoop(Arc<Counter>);

impl<D: Driver> Worker<D> for CountingNoop {
    type Args = builtin::NoopArgs;
    async fn work(&self, _: JobContext<D>, _: builtin::NoopArgs) -> Result<(), JobError> {
        self.0.tick();
        Ok(())
    }
}

fn bench_runtime(concurrency: Option<usize>) -> RuntimeConfig {
    let mut rc = RuntimeConfig {
        maintenance: None,
        ..Default::default()
    };
    if let Some(c) = concurrency {
        rc.queues[0].concurrency = c;
    }
    rc
}

/// Works `target` jobs of what is queued and returns (seconds to the last handler, seconds to
/// the runtime's stop with every completion written).
async fn work_until<D: Driver>(
    d: &D,
    target: u64,
    concurrency: Option<usize>,
) -> anyhow::Result<(f64, f64)> {
    let counter = Arc::new(Counter::default());
    counter.target.store(target, Ordering::Relaxed);
    let mut workers = Workers::new();
    workers.register(CountingNoop(counter.clone()));
    let start = Instant::now();
    let handle = Runtime::start(
        d.clone(),
        workers,
        bench_runtime(concurrency),
        Arc::new(SystemClock),
    )?;
    tokio::time::timeout(Duration::from_secs(1800), counter.all.notified()).await?;
    let handlers = start.elapsed().as_secs_f64();
    handle.shutdown().await;
    Ok((handlers, start.elapsed().as_secs_f64()))
}

/// Claim speed as the table grows: with `rows` jobs queued, then with `rows` finished rows,
/// then with `rows` jobs waiting for later (idle claims and the worked rate).
async fn scale<D: Driver>(
    d: D,
    rows: u64,
    jobs: u64,
    vacuum: impl AsyncFn() -> anyhow::Result<()>,
) -> anyhow::Result<serde_json::Value> {
    let jobs = jobs.min(rows);
    let started = Instant::now();
    enqueue_batch(d.clone(), rows, 5_000).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    // The first `jobs` of a full queue.
    let (queued_secs, _) = work_until(&d, jobs, None).await?;
    // Drain the rest, so that every row is finished.
    let rest = rows.saturating_sub(completed(&d).await? as u64);
    if rest > 0 {
        work_until(&d, rest, None).await?;
    }
    // New jobs beside `rows` finished ones: right after they finished (their old index
    // entries not yet vacuumed), then once vacuum has run, as it does on its own in service.
    enqueue_batch(d.clone(), jobs, 5_000).await?;
    let (unvacuumed_secs, _) = work_until(&d, jobs, None).await?;
    vacuum().await?;
    enqueue_batch(d.clone(), jobs, 5_000).await?;
    let (finished_secs, _) = work_until(&d, jobs, None).await?;
    // `rows` jobs waiting an hour (snoozed through a provider outage, say), at a higher
    // priority than the due ones: a claim that finds nothing due, and the worked rate, should
    // not notice them.
    enqueue_later(&d, rows, 5_000).await?;
    vacuum().await?;
    let idle_claim_ms = idle_claims_ms(&d, 200).await?;
    enqueue_batch(d.clone(), jobs, 5_000).await?;
    let (snoozed_secs, _) = work_until(&d, jobs, None).await?;
    Ok(json!({
        "idle_claim_ms_p50_with_rows_waiting": idle_claim_ms,
        "worked_per_sec_with_rows_waiting": jobs as f64 / snoozed_secs,
        "worked_per_sec_with_rows_just_finished_unvacuumed": jobs as f64 / unvacuumed_secs,
        "rows": rows,
        "jobs_measured": jobs,
        "fill_seconds": fill_secs,
        "worked_per_sec_with_rows_queued": jobs as f64 / queued_secs,
        "worked_per_sec_with_rows_finished": jobs as f64 / finished_secs,
    }))
}

/// Enqueues `n` no-op jobs due in an hour, at priority 5, `size` per statement.
async fn enqueue_later<D: Driver>(d: &D, n: u64, size: u64) -> anyhow::Result<()> {
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let mut left = n;
    let mut c = d.conn().await?;
    while left > 0 {
        let k = left.min(size);
        let batch = (0..k)
            .map(|_| {
                let mut j = noop_job();
                j.run_at = Some(later);
                j.priority = 5;
                j
            })
            .collect();
        c.job_insert_many(JobInsertManyParams { jobs: batch })
            .await?;
        left -= k;
    }
    Ok(())
}

/// The median time, in milliseconds, of `n` claims that find nothing due.
async fn idle_claims_ms<D: Driver>(d: &D, n: usize) -> anyhow::Result<f64> {
    let mut c = d.conn().await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let got = c
            .job_get_available(docket_core::JobGetAvailableParams {
                worker_id: "bench-idle".into(),
                queue: docket_core::DEFAULT_QUEUE.into(),
                limit: 100,
                now: None,
            })
            .await?;
        anyhow::ensure!(got.is_empty(), "a claim found a job due: {}", got[0].id);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[n / 2])
}

async fn completed<D: Driver>(d: &D) -> anyhow::Result<i64> {
    Ok(d.conn()
        .await?
        .job_stats()
        .await?
        .iter()
        .filter(|r| r.status == JobState::Completed)
        .map(|r| r.count)
        .sum())
}

async fn worked<D: Driver>(
    d: D,
    jobs: u64,
    concurrency: Option<usize>,
) -> anyhow::Result<serde_json::Value> {
    enqueue_batch(d.clone(), jobs, 5_000).await?;
    let (handlers, secs) = work_until(&d, jobs, concurrency).await?;
    let done = completed(&d).await?;
    anyhow::ensure!(done as u64 == jobs, "only {done} of {jobs} jobs completed");
    Ok(json!({
        "jobs": jobs,
        "concurrency": bench_runtime(concurrency).queues[0].concurrency,
        "seconds": secs,
        "jobs_per_sec": jobs as f64 / secs,
        "handlers_done_seconds": handlers,
    }))
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[derive(Debug, Serialize, Deserialize)]
struct LatencyArgs {
    enqueued_ns: u64,
}

impl JobArgs for LatencyArgs {
    const KIND: &'static str = "bench.latency";
}

struct LatencyWorker(Arc<Mutex<Histogram<u64>>>, Arc<Counter>);

impl<D: Driver> Worker<D> for LatencyWorker {
    type Args = LatencyArgs;
    async fn work(&self, _: JobContext<D>, a: LatencyArgs) -> Result<(), JobError> {
        let now = epoch().elapsed().as_nanos() as u64;
        let us = now.saturating_sub(a.enqueued_ns) / 1_000;
        self.0.lock().expect("histogram").record(us.max(1)).ok();
        self.1.tick();
        Ok(())
    }
}

async fn latency<D: Driver>(d: D, jobs: u64, gap: Duration) -> anyhow::Result<serde_json::Value> {
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let counter = Arc::new(Counter::default());
    counter.target.store(jobs, Ordering::Relaxed);
    let mut workers = Workers::new();
    workers.register(LatencyWorker(hist.clone(), counter.clone()));
    let handle = Runtime::start(
        d.clone(),
        workers,
        bench_runtime(None),
        Arc::new(SystemClock),
    )?;
    // Let the worker register and go idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tick = tokio::time::interval(gap);
    for _ in 0..jobs {
        tick.tick().await;
        let t = epoch().elapsed().as_nanos() as u64;
        let job = docket_queue::insert_params(&LatencyArgs { enqueued_ns: t }, Default::default())?;
        d.conn()
            .await?
            .job_insert_many(JobInsertManyParams { jobs: vec![job] })
            .await?;
    }
    tokio::time::timeout(Duration::from_secs(60), counter.all.notified()).await?;
    handle.shutdown().await;
    let h = hist.lock().expect("histogram");
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(json!({
        "jobs": jobs,
        "interval_ms": gap.as_millis() as u64,
        "p50_ms": ms(0.50),
        "p95_ms": ms(0.95),
        "p99_ms": ms(0.99),
        "max_ms": h.max() as f64 / 1000.0,
    }))
}
