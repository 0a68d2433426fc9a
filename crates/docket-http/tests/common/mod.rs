//! The server setup the HTTP tests share.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use docket_core::{Driver, SystemClock};
use docket_embed::Embedder;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_http::ApiOptions;
use docket_http::auth::ApiKeys;
use docket_pipeline::blob::ObjectStoreBlobs;
use docket_pipeline::config::{ChunkConfig, StagesConfig};
use docket_pipeline::notify::Notifier;
use docket_pipeline::progress::ProgressHub;
use docket_pipeline::{ParseSettings, Pipeline, PipelineParts};
use docket_queue::{Runtime, RuntimeConfig, RuntimeHandle, Workers};

pub mod dashboard;
pub mod openapi;
pub mod schema_values;

/// A pipeline over `driver` with the hashing embedder, small chunks, files up to half of
/// `max_body`, and progress carried by the driver's broadcasts.
pub fn pipeline<D: Driver>(driver: &D, blobs: &Path, max_body: usize) -> Pipeline<D> {
    pipeline_with(driver, blobs, max_body, StagesConfig::default(), hashing())
}

fn pipeline_with<D: Driver>(
    driver: &D,
    blobs: &Path,
    max_body: usize,
    stages: StagesConfig,
    embedder: Arc<dyn Embedder>,
) -> Pipeline<D> {
    Pipeline::new(PipelineParts {
        driver: driver.clone(),
        blobs: Arc::new(ObjectStoreBlobs::local(blobs).unwrap()),
        embedder,
        parse: ParseSettings {
            limits: docket_parse::Limits::default(),
            isolation: None,
        },
        chunk: ChunkConfig {
            max_tokens: 32,
            overlap_tokens: 4,
        },
        stages,
        max_file_bytes: max_body as u64 / 2,
        notifier: Notifier::none(),
        progress: ProgressHub::over(driver.broadcasts()),
    })
    .unwrap()
}

/// The default embedder: lexical, 384 dimensions.
pub fn hashing() -> Arc<dyn Embedder> {
    Arc::new(HashingEmbedder::new(HashingConfig::default()))
}

/// Serves `app` on a fresh loopback port; its base URL.
pub async fn listen(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    format!("http://{addr}")
}

/// A server like `docket serve` on a loopback socket: the router over [`pipeline`] (its
/// chunks embedded two to a page, so that progress moves several times while embedding) and a
/// runtime working its jobs (no maintenance).
pub struct Server<D: Driver> {
    pub base: String,
    pub driver: D,
    pub runtime: RuntimeHandle,
    _blobs: tempfile::TempDir,
}

/// A [`Server`] with `keys`; `POST /v1/jobs/process` runs on its runtime.
pub async fn serve<D: Driver>(driver: &D, max_body: usize, keys: Option<ApiKeys>) -> Server<D> {
    serve_with(driver, max_body, keys, |_, _, _| {}).await
}

/// A [`Server`] whose workers and API options `extend` adds to (more job kinds, URL fetching,
/// the storage webhook) before the runtime starts.
pub async fn serve_with<D: Driver>(
    driver: &D,
    max_body: usize,
    keys: Option<ApiKeys>,
    extend: impl FnOnce(&Pipeline<D>, &mut Workers<D>, &mut ApiOptions<D>),
) -> Server<D> {
    serve_using(driver, max_body, keys, hashing(), extend).await
}

/// [`serve_with`] with another embedder.
pub async fn serve_using<D: Driver>(
    driver: &D,
    max_body: usize,
    keys: Option<ApiKeys>,
    embedder: Arc<dyn Embedder>,
    extend: impl FnOnce(&Pipeline<D>, &mut Workers<D>, &mut ApiOptions<D>),
) -> Server<D> {
    let blobs = tempfile::tempdir().unwrap();
    let stages = StagesConfig {
        embed_page: 2,
        ..StagesConfig::default()
    };
    let pipeline = pipeline_with(driver, blobs.path(), max_body, stages, embedder);
    let mut workers = Workers::new();
    pipeline.register(&mut workers);
    let mut options = ApiOptions {
        keys,
        ..ApiOptions::new(max_body)
    };
    extend(&pipeline, &mut workers, &mut options);
    let runtime = Runtime::start(
        driver.clone(),
        workers,
        RuntimeConfig {
            poll_interval: Duration::from_millis(50),
            maintenance: None,
            ..Default::default()
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    options.processor = Some(runtime.processor());
    Server {
        base: listen(docket_http::router(pipeline, options)).await,
        driver: driver.clone(),
        runtime,
        _blobs: blobs,
    }
}

/// The admin key of [`admin_and_reader`].
pub const ADMIN: &str = "admin-secret-0123456789";
/// The read-only key of [`admin_and_reader`].
pub const READER: &str = "reader-secret-0123456789";

/// Two keys: `ops` ([`ADMIN`], scope admin) and `viewer` ([`READER`], scope read).
pub fn admin_and_reader() -> ApiKeys {
    use sha2::{Digest, Sha256};
    let key = |name: &str, secret: &str, scopes| docket_http::auth::ApiKey {
        name: name.into(),
        sha256: format!("{:x}", Sha256::digest(secret.as_bytes())),
        scopes,
    };
    ApiKeys::new(&[
        key("ops", ADMIN, vec![docket_http::auth::Scope::Admin]),
        key("viewer", READER, vec![docket_http::auth::Scope::Read]),
    ])
    .unwrap()
}

/// A response's status and JSON body (`null` when the body is not JSON).
pub async fn json(r: reqwest::Response) -> (reqwest::StatusCode, serde_json::Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// A small Markdown document the tests upload and fetch.
pub const NOTES: &str = "# Field notes\n\nThe lighthouse keeper logged every passing ship in a \
                         green ledger.\n\nStorms came from the west in autumn.\n";

/// A runtime working `queues`: quick polls, no maintenance.
pub fn runtime_config(queues: &[&str]) -> RuntimeConfig {
    RuntimeConfig {
        poll_interval: Duration::from_millis(50),
        maintenance: None,
        queues: queues
            .iter()
            .map(|q| docket_queue::QueueConfig::new(*q))
            .collect(),
        ..Default::default()
    }
}
