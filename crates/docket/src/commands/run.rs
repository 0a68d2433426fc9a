//! `docket serve` and `docket worker`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use docket_core::{Driver, SystemClock};
use docket_queue::{Runtime, RuntimeConfig};

use docket_http::metrics::ClusterGauges;

use crate::backend::Backend;
use crate::config::{Config, mask_url};
use crate::out::outln;
use crate::{builtin, with_driver};

/// Flags shared by `serve` and `worker`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Queues to work (repeat or comma-separate); overrides worker.queues.
    #[arg(long, value_delimiter = ',')]
    queues: Vec<String>,
    /// Jobs running at once per queue; overrides worker.concurrency.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Do not apply migrations at start.
    #[arg(long)]
    no_migrate: bool,
    /// `serve` only: the API and the dashboard, no workers and no part in maintenance (set
    /// `worker.enabled = false` for the same); `docket worker` processes do the work.
    #[arg(long)]
    no_workers: bool,
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(mut config: Config, args: RunArgs, serve: bool) -> anyhow::Result<ExitCode> {
    if !args.queues.is_empty() {
        config.worker.queues = args.queues;
    }
    if let Some(c) = args.concurrency {
        config.worker.concurrency = c;
    }
    if args.no_workers {
        if !serve {
            return Err(crate::out::Usage("--no-workers is for docket serve".into()).into());
        }
        config.worker.enabled = false;
    }
    if !serve && !config.worker.enabled {
        anyhow::bail!("worker.enabled is false: a docket worker process would have nothing to do");
    }
    config.validate()?;
    let runtime = config.runtime()?;
    let backend = Backend::open(&config).await?;
    if config.migrate_on_start && !args.no_migrate {
        backend.migrate(Duration::from_secs(300)).await?;
    }
    let what = if serve { "serve" } else { "worker" };
    tracing::info!(
        database = %mask_url(&config.database_url),
        backend = backend.name(),
        "docket {what} running; stop with Ctrl-C or SIGTERM"
    );
    with_driver!(backend, |d| run_with(d, &config, runtime, serve).await)
}

async fn run_with<D: Driver>(
    driver: D,
    config: &Config,
    runtime: RuntimeConfig,
    serve: bool,
) -> anyhow::Result<ExitCode> {
    let pipeline = crate::pipeline::build(driver.clone(), config).await?;
    embedder_check(&pipeline, config.embed.reembed_on_change).await;
    let mut workers = builtin::workers();
    pipeline.register(&mut workers);
    // Workers need the fetcher and the storage settings too: they run the ingest jobs.
    let fetcher =
        docket_pipeline::fetch::Fetcher::new(config.fetch.clone(), config.storage.max_file_bytes)?;
    let storage = config
        .storage_webhook
        .clone()
        .map(|w| docket_pipeline::ingest::StorageIngest::new(pipeline.clone(), fetcher.clone(), w))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if let Some(s) = &storage {
        s.register(&mut workers);
    }
    let a = &config.alerts;
    let delivery = docket_pipeline::alerts::AlertDelivery::new(
        &a.webhook,
        &a.email,
        &config.notify.webhook,
        &config.notify.email,
    )?;
    let alerts = docket_pipeline::alerts::Alerts::new(
        pipeline.clone(),
        a,
        delivery.any(),
        Arc::new(SystemClock),
    )?;
    delivery.register(&mut workers);
    docket_pipeline::analytics::register(&mut workers, config.analytics(), Arc::new(SystemClock));
    docket_pipeline::orphans::register(
        &pipeline,
        &mut workers,
        Duration::from_secs(config.storage.orphan_grace_secs),
        Arc::new(SystemClock),
    );
    // Before the first job runs, so that /metrics counts every attempt.
    docket_http::metrics::install();
    // A worker serves its health and its metrics, for probes and Prometheus; an address it
    // cannot have stops it before it claims anything.
    let worker_listener = if serve {
        None
    } else {
        Some(
            tokio::net::TcpListener::bind(&config.http.listen)
                .await
                .with_context(|| {
                    format!(
                        "listening on {} (http.listen) for /metrics, /healthz and /readyz: give \
                         each docket process on a host its own address (DOCKET_HTTP__LISTEN)",
                        config.http.listen
                    )
                })?,
        )
    };
    let maintenance = runtime.maintenance.is_some();
    // Without workers (`serve --no-workers`) this process neither works jobs nor takes part
    // in maintenance: no worker row, no leadership, no alert evaluation.
    let handle = if config.worker.enabled {
        Some(Runtime::start(
            driver,
            workers,
            runtime,
            Arc::new(SystemClock),
        )?)
    } else {
        tracing::info!(
            "workers off (worker.enabled = false): serving the API and the dashboard only"
        );
        None
    };
    let shutdown = handle
        .as_ref()
        .map_or_else(tokio_util::sync::CancellationToken::new, |h| {
            h.shutdown_token()
        });
    if let (true, Some(h)) = (config.alerts.enabled, &handle) {
        // Evaluated by whichever process leads maintenance.
        let (leading, stop) = (h.leadership(), h.shutdown_token());
        tokio::spawn(async move { alerts.run(leading, stop).await });
    }
    // The gauges read from the database come from one process: the one leading maintenance.
    let cluster_gauges = match &handle {
        Some(h) if maintenance => ClusterGauges::WhileLeading(h.leadership()),
        Some(_) => ClusterGauges::Always,
        None => ClusterGauges::Never,
    };
    let keys = config.http.api_keys()?;
    if let Some(listener) = worker_listener {
        let addr = listener.local_addr()?;
        let app =
            docket_http::worker_router(pipeline.clone(), keys.clone(), cluster_gauges.clone());
        serve_http(listener, app, shutdown.clone());
        tracing::info!("metrics and health on http://{addr} (/metrics, /healthz, /readyz)");
        outln!("docket worker is listening on http://{addr}")?;
    }
    if serve {
        // Without pgvector, searches are answered from docket's own index, built from here on.
        if let Err(e) = pipeline.start_search_index(shutdown.clone()).await {
            tracing::warn!(error = %e, "no vector index: searches scan the stored vectors");
        }
        let listener = tokio::net::TcpListener::bind(&config.http.listen)
            .await
            .with_context(|| format!("listening on {}", config.http.listen))?;
        let addr = listener.local_addr()?;
        let body_limit = (config.storage.max_file_bytes as usize).saturating_add(1 << 20);
        if keys.is_none() {
            tracing::warn!("no API keys configured (http.keys): the API is open to local users");
        }
        let app = docket_http::router(
            pipeline.clone(),
            docket_http::ApiOptions {
                max_body_bytes: body_limit,
                keys,
                fetcher: Some(fetcher),
                storage,
                processor: handle.as_ref().map(|h| h.processor()),
                cluster_gauges,
            },
        );
        serve_http(listener, app, shutdown.clone());
        tracing::info!("HTTP API on http://{addr} (try: curl http://{addr}/healthz)");
        outln!("docket is listening on http://{addr}")?;
    }
    let token = shutdown.clone();
    let mut signals = Signals::new()?;
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("signal received; shutting down (send again to exit at once)");
        token.cancel();
        signals.next().await;
        tracing::warn!("second signal: exiting without waiting");
        std::process::exit(130);
    });
    match handle {
        Some(h) => h.stopped().await,
        None => shutdown.cancelled().await,
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves `app` on `listener` (each request knowing its client's address) until `stop`.
fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
}

/// At start: documents whose vectors were made before fingerprints were recorded, by an
/// embedder of the running one's name, take its fingerprint; documents another embedder made
/// vectors for are reported (search cannot rank them), and their re-embedding is enqueued when
/// `reembed_on_change` is on. A database that cannot answer now only delays this to the next
/// start (or `docket reindex`).
async fn embedder_check<D: Driver>(p: &docket_pipeline::Pipeline<D>, reembed_on_change: bool) {
    let checked = async {
        p.adopt_unfingerprinted().await?;
        let report = p.embedder_report().await?;
        if report.stale_documents == 0 {
            return Ok(());
        }
        for s in &report.stale {
            tracing::warn!(
                documents = s.documents,
                "search cannot rank these documents: {}",
                s.reason
            );
        }
        if reembed_on_change {
            let started = p.start_reindex().await?;
            tracing::warn!(
                documents = report.stale_documents,
                job_id = started.job_id,
                "re-embedding them with the running embedder (embed.reembed_on_change); progress: docket status"
            );
        } else {
            tracing::warn!(
                documents = report.stale_documents,
                "embed.reembed_on_change is off: run docket reindex to re-embed them"
            );
        }
        Ok::<_, docket_pipeline::PipelineError>(())
    };
    if let Err(e) = checked.await {
        tracing::warn!(error = %e, "could not check which embedder made the stored vectors");
    }
}

/// SIGTERM and SIGINT, registered once so that no delivery is missed or seen twice.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
