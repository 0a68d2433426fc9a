//! Prometheus metrics: `GET /metrics` (scope `read`) in the text exposition format.
//!
//! The crates record through the `metrics` facade; this module installs the process-wide
//! Prometheus recorder ([`install`], done when the router is built) and renders it. Series:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `docket_http_requests_total` | counter | `method`, `route` (the route template, e.g. `/v1/documents/{id}`; `unmatched`), `status` |
//! | `docket_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `docket_auth_failures_total` | counter | `via` (`bearer`: a wrong API key; `login`: a wrong key in the dashboard's login form) |
//! | `docket_auth_throttled_total` | counter | `via` (requests refused with `429`: their address failed too often) |
//! | `docket_job_attempts_total` | counter | `job_type`, `outcome` (`completed`, `retry`, `failed`, `snoozed`, `released`) |
//! | `docket_job_attempt_duration_seconds` | histogram | `job_type` |
//! | `docket_stage_duration_seconds` | histogram | `stage`, `outcome` (`ok`, `retry`, `failed`, `snoozed`) |
//! | `docket_embed_requests_total` | counter | `provider`, `outcome` (`ok`, `unavailable`, `transient`, `permanent`) |
//! | `docket_embed_batch_duration_seconds` | histogram | `provider` |
//! | `docket_embed_breaker_open` | gauge | `provider` |
//! | `docket_jobs` | gauge, read at scrape | `job_type`, `queue`, `state` |
//! | `docket_queue_depth` | gauge, read at scrape | `queue` (queued + retrying jobs) |
//! | `docket_queue_oldest_queued_age_seconds` | gauge, read at scrape | `queue` |
//! | `docket_queue_paused` | gauge, read at scrape | `queue` |
//! | `docket_queue_workers` | gauge, read at scrape | `queue` (live workers serving it: their lease has not lapsed) |
//! | `docket_database_up` | gauge, read at scrape | (1 when the scrape could read the database; every process) |
//! | `docket_documents_stale_embedder` | gauge, read at scrape | (searchable documents whose vectors another embedder made: search cannot rank them) |
//! | `docket_documents_reembedding` | gauge, read at scrape | (of those, how many are being processed again) |
//! | `docket_documents_stuck` | gauge, read at scrape | (documents the stuck-document sweep would repair now, counted up to 1,000) |
//! | `docket_alerts_firing` | gauge, read at scrape | `rule` (alerts of the built-in rules firing now, silenced ones included; every rule listed) |
//! | `docket_search_index_vectors` | gauge, read at scrape | (vectors in this process's own vector index; absent on pgvector) |
//! | `docket_search_index_bytes` | gauge, read at scrape | (memory that index uses) |
//! | `docket_search_index_ready` | gauge, read at scrape | (1 once built; until then searches scan) |
//!
//! Counters and histograms are those of this process: every `docket serve` and `docket
//! worker` process serves `/metrics` (a worker on its own `http.listen`), and Prometheus
//! scrapes each. The gauges read at scrape come from the database and so are the same in every
//! process: one process exports them ([`ClusterGauges`]: the one leading maintenance), so that
//! summing a series across processes counts each job once; the others leave them out.
//! `docket_database_up` and the search index's gauges are every process's own. The alert
//! rules shipped in `deploy/prometheus/` read these series (docs/alerting.md);
//! `docket_queue_workers` and `docket_documents_stuck` are there for two of them, since no
//! other series tells whether a queue with due jobs has a live worker, or whether documents
//! are stuck with nothing to move them on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{FromFnLayer, Next};
use axum::response::{IntoResponse, Response};
use docket_core::{
    ALL_QUEUES, AlertListParams, AlertRow, AlertState, Driver, JobActivityParams, JobActivityRow,
    JobStatRow, JobState, MonitorStore, QueueExecutor, QueueRow, WorkerListParams, WorkerRow,
};
use docket_pipeline::Pipeline;
use docket_pipeline::alerts::Rule;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram buckets, in seconds: from a fast HTTP answer to a long job attempt.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// How often histogram samples not yet scraped are folded in (bounds their memory).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The most stuck documents a scrape counts: the alert asks only whether there are any, and a
/// scrape should not read an unbounded list when something has gone badly wrong.
const STUCK_DOCUMENTS_COUNTED: i64 = 1_000;

/// The gauges read from the database (the same in every process, so exported by one: see
/// [`ClusterGauges`]), with their help.
const CLUSTER_HELP: &[(&str, &str)] = &[
    (
        "docket_jobs",
        "Jobs in the database, by job type, queue and state",
    ),
    (
        "docket_queue_depth",
        "Jobs waiting to run (queued or retrying)",
    ),
    (
        "docket_queue_oldest_queued_age_seconds",
        "How long the longest-waiting due job (queued or retrying) has waited since it became due; 0 when none waits",
    ),
    (
        "docket_queue_paused",
        "1 while the queue is paused (by itself or by the switch for every queue)",
    ),
    (
        "docket_queue_workers",
        "Live workers (their lease not lapsed) that serve the queue",
    ),
    (
        "docket_documents_stuck",
        "Documents not finished, with no live job and no change for pipeline.stuck_after_ms: what the stuck-document sweep would repair now (counted up to 1000)",
    ),
    (
        "docket_documents_stale_embedder",
        "Searchable documents whose vectors another embedder made than the one this process runs: search cannot rank them until they are re-embedded (docket reindex)",
    ),
    (
        "docket_documents_reembedding",
        "Documents whose vectors another embedder made that are being processed again",
    ),
    (
        "docket_alerts_firing",
        "Alerts of the built-in rule firing now (docs/alerting.md), silenced ones included",
    ),
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for this process, once; later calls return the same
/// handle. `None` when another recorder was installed first (logged): `/metrics` then
/// answers `503`.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot configure the metrics recorder");
                    return None;
                }
            };
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "another metrics recorder is installed; /metrics is unavailable"
                    );
                    return None;
                }
            };
            describe();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("docket-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                // Scrapes still fold samples in; only an unscraped process grows.
                tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
            }
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "docket_http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        "docket_http_request_duration_seconds",
        "Time to answer an HTTP request (to the response head), by method and route template"
    );
    describe_counter!(
        "docket_auth_failures_total",
        "Failed authentications: a wrong bearer key (via bearer), a wrong key in the dashboard's login form (via login)"
    );
    describe_counter!(
        "docket_auth_throttled_total",
        "Requests refused with 429 because their address failed to authenticate too often, by via"
    );
    describe_counter!(
        "docket_job_attempts_total",
        "Job attempts finished in this process, by job type and outcome"
    );
    describe_histogram!(
        "docket_job_attempt_duration_seconds",
        "Duration of job attempts in this process, by job type"
    );
    describe_histogram!(
        "docket_stage_duration_seconds",
        "Duration of pipeline stage runs, by stage and outcome"
    );
    describe_counter!(
        "docket_embed_requests_total",
        "Embedding calls, by provider and outcome"
    );
    describe_histogram!(
        "docket_embed_batch_duration_seconds",
        "Duration of one embedding call (one batch of texts), by provider"
    );
    describe_gauge!(
        "docket_embed_breaker_open",
        "1 while the embedding provider's circuit breaker is not closed"
    );
    describe_gauge!(
        "docket_search_index_vectors",
        "Vectors in this process's own vector index (where the database has no pgvector)"
    );
    describe_gauge!(
        "docket_search_index_bytes",
        "Memory this process's own vector index uses (int8 vectors and graph), in bytes"
    );
    describe_gauge!(
        "docket_search_index_ready",
        "1 once this process's own vector index is built; until then searches scan the stored vectors"
    );
    describe_gauge!(
        "docket_database_up",
        "1 when the last scrape could read the job statistics from the database"
    );
}

type Track = fn(Request, Next) -> BoxFuture<'static, Response>;

/// The HTTP middleware, for `Router::layer` (where the matched route is known). Building it
/// installs the recorder, so that a server records from its start.
pub(crate) fn layer() -> FromFnLayer<Track, (), (Request,)> {
    install();
    axum::middleware::from_fn(track_boxed as Track)
}

fn track_boxed(req: Request, next: Next) -> BoxFuture<'static, Response> {
    Box::pin(track(req, next))
}

async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method().as_str());
    // The template, never the path: ids must not become label values.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "docket_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status,
    )
    .increment(1);
    metrics::histogram!(
        "docket_http_request_duration_seconds",
        "method" => method,
        "route" => route,
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// Standard methods as they are; anything else (extension methods) as `other`.
fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Which processes export the gauges read from the database. They are the same in every
/// process, so that summing a series across processes (`sum(docket_queue_depth)`) would count
/// each job once per process: one process exports them.
#[derive(Debug, Clone)]
pub enum ClusterGauges {
    /// This process does (a lone process).
    Always,
    /// This process does while it leads maintenance (one process at a time does).
    WhileLeading(tokio::sync::watch::Receiver<bool>),
    /// This process does not (`serve --no-workers`, which never leads).
    Never,
}

impl ClusterGauges {
    fn exporting(&self) -> bool {
        match self {
            ClusterGauges::Always => true,
            ClusterGauges::WhileLeading(leading) => *leading.borrow(),
            ClusterGauges::Never => false,
        }
    }
}

/// The last database gauges rendered: a scrape that cannot read the database repeats them
/// (and `docket_database_up` says they are stale).
static LAST_CLUSTER: Mutex<String> = Mutex::new(String::new());

/// `GET /metrics`: this process's series, and, where this process exports them
/// ([`ClusterGauges`]), the gauges read from the database.
pub(crate) async fn render<D: Driver>(
    State(p): State<Pipeline<D>>,
    State(scope): State<ClusterGauges>,
) -> Response {
    let Some(handle) = install() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "metrics are unavailable: another metrics recorder was installed in this process \
             before docket's Prometheus recorder\n",
        )
            .into_response();
    };
    if let Some(index) = p.search_index() {
        let s = index.status();
        metrics::gauge!("docket_search_index_vectors").set(s.vectors as f64);
        metrics::gauge!("docket_search_index_bytes").set(s.memory_bytes as f64);
        metrics::gauge!("docket_search_index_ready").set(if s.ready { 1.0 } else { 0.0 });
    }
    let exporting = scope.exporting();
    let (up, cluster) = if exporting {
        match cluster_text(&p).await {
            Ok(text) => {
                *LAST_CLUSTER.lock().unwrap_or_else(|e| e.into_inner()) = text.clone();
                (1.0, text)
            }
            Err(e) => {
                // The process's own series are still worth a scrape; the database gauges keep
                // their last values and `docket_database_up` says they are stale.
                tracing::warn!(error = %e, "metrics: cannot read the database's gauges");
                let last = LAST_CLUSTER
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                (0.0, last)
            }
        }
    } else {
        let up = tokio::time::timeout(Duration::from_secs(2), p.driver().ping()).await;
        (
            if matches!(up, Ok(Ok(()))) { 1.0 } else { 0.0 },
            String::new(),
        )
    };
    metrics::gauge!("docket_database_up").set(up);
    let mut body = handle.render();
    body.push_str(&cluster);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// The database gauges, in the exposition format.
async fn cluster_text<D: Driver>(p: &Pipeline<D>) -> Result<String, String> {
    let read = read_db(p).await.map_err(|e| e.to_string())?;
    let report = p
        .embedder_report_cached()
        .await
        .map_err(|e| format!("cannot count documents by embedder: {e}"))?;
    let mut g = Gauges::default();
    set_db_gauges(&read, &mut g);
    g.set(
        "docket_documents_stale_embedder",
        vec![],
        report.stale_documents as f64,
    );
    g.set(
        "docket_documents_reembedding",
        vec![],
        report.reembedding_documents as f64,
    );
    Ok(g.render())
}

/// Gauge samples by family, rendered in [`CLUSTER_HELP`]'s order.
#[derive(Default)]
struct Gauges(BTreeMap<&'static str, Vec<Sample>>);

/// One gauge sample: its labels and value.
type Sample = (Vec<(&'static str, String)>, f64);

impl Gauges {
    fn set(&mut self, name: &'static str, labels: Vec<(&'static str, String)>, value: f64) {
        self.0.entry(name).or_default().push((labels, value));
    }

    fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (name, help) in CLUSTER_HELP {
            let Some(samples) = self.0.get(name) else {
                continue;
            };
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, value) in samples {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let v = v
                            .replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n");
                        let _ = write!(out, "{k}=\"{v}\"");
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
            out.push('\n');
        }
        out
    }
}

/// What a scrape reads from the database.
struct DbRead {
    stats: Vec<JobStatRow>,
    queues: Vec<QueueRow>,
    activity: Vec<JobActivityRow>,
    workers: Vec<WorkerRow>,
    stuck_documents: usize,
    alerts: Vec<AlertRow>,
}

async fn read_db<D: Driver>(p: &Pipeline<D>) -> docket_core::Result<DbRead> {
    let mut c = p.driver().conn().await?;
    let stats = c.job_stats().await?;
    let queues = c.queue_list().await?;
    let activity = c.job_activity(JobActivityParams::default()).await?;
    // Judged live or dead by each worker's own lease, as `docket queues status` shows them.
    let workers = c.worker_list(WorkerListParams::default()).await?;
    let alerts = c
        .alert_list(&AlertListParams {
            open: Some(true),
            limit: 10_000,
            ..Default::default()
        })
        .await?;
    drop(c);
    let stuck_documents = p.stuck_documents(STUCK_DOCUMENTS_COUNTED).await?.len();
    Ok(DbRead {
        stats,
        queues,
        activity,
        workers,
        stuck_documents,
        alerts,
    })
}

/// Series set by earlier scrapes, so that one whose rows have gone is set to 0 rather than
/// left at its last value.
struct Seen {
    jobs: BTreeSet<(String, String, &'static str)>,
    queues: BTreeSet<String>,
}

static SEEN: Mutex<Seen> = Mutex::new(Seen {
    jobs: BTreeSet::new(),
    queues: BTreeSet::new(),
});

#[derive(Default)]
struct QueueStats {
    depth: i64,
    oldest_queued_ms: Option<i64>,
    paused: bool,
    workers: i64,
}

fn set_db_gauges(read: &DbRead, g: &mut Gauges) {
    let DbRead {
        stats,
        queues: queue_rows,
        activity,
        workers,
        stuck_documents,
        alerts,
    } = read;
    for rule in Rule::ALL {
        let firing = alerts
            .iter()
            .filter(|a| a.rule == rule.name() && a.state == AlertState::Firing)
            .count();
        g.set(
            "docket_alerts_firing",
            vec![("rule", rule.name().to_owned())],
            firing as f64,
        );
    }
    let mut jobs: BTreeMap<(String, String, &'static str), i64> = BTreeMap::new();
    let mut queues: BTreeMap<String, QueueStats> = BTreeMap::new();
    for r in stats {
        *jobs
            .entry((r.job_type.clone(), r.queue.clone(), r.status.as_str()))
            .or_default() += r.count;
        let q = queues.entry(r.queue.clone()).or_default();
        if matches!(r.status, JobState::Queued | JobState::Retrying) {
            q.depth += r.count;
        }
    }
    // How long the longest-waiting due job has waited (as `oldest_queued_age_seconds` in
    // GET /v1/jobs/stats): jobs scheduled for later are not waiting.
    for a in activity {
        if let Some(t) = a.oldest_due_at {
            let t = t.timestamp_millis();
            let q = queues.entry(a.queue.clone()).or_default();
            q.oldest_queued_ms = Some(q.oldest_queued_ms.map_or(t, |o| o.min(t)));
        }
    }
    let all_paused = queue_rows
        .iter()
        .any(|r| r.name == ALL_QUEUES && r.paused_at.is_some());
    for r in queue_rows.iter().filter(|r| r.name != ALL_QUEUES) {
        queues.entry(r.name.clone()).or_default().paused = r.paused_at.is_some();
    }
    // Every queue a worker names is listed, so that one whose workers all died reads 0.
    for w in workers {
        for name in &w.queues {
            let q = queues.entry(name.clone()).or_default();
            if !w.dead {
                q.workers += 1;
            }
        }
    }
    g.set("docket_documents_stuck", vec![], *stuck_documents as f64);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);

    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    for key in &seen.jobs {
        if !jobs.contains_key(key) {
            job_gauge(g, key, 0.0);
        }
    }
    for (key, count) in &jobs {
        job_gauge(g, key, *count as f64);
    }
    seen.jobs.extend(jobs.into_keys());
    // A queue seen before reports zeros rather than its last values.
    for name in &seen.queues {
        queues.entry(name.clone()).or_default();
    }
    for (name, q) in &queues {
        let age = q
            .oldest_queued_ms
            .map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0);
        let paused = f64::from(u8::from(q.paused || all_paused));
        let queue = || vec![("queue", name.clone())];
        g.set("docket_queue_depth", queue(), q.depth as f64);
        g.set("docket_queue_oldest_queued_age_seconds", queue(), age);
        g.set("docket_queue_paused", queue(), paused);
        g.set("docket_queue_workers", queue(), q.workers as f64);
    }
    seen.queues.extend(queues.into_keys());
}

fn job_gauge(g: &mut Gauges, (job_type, queue, state): &(String, String, &'static str), v: f64) {
    g.set(
        "docket_jobs",
        vec![
            ("job_type", job_type.clone()),
            ("queue", queue.clone()),
            ("state", (*state).to_owned()),
        ],
        v,
    );
}
