//! docket's HTTP API: documents, their live progress as server-sent events, search, storage
//! webhooks, jobs, queues, cron, health and metrics. `GET /v1/openapi.json` describes every
//! route; the tests check that it matches the router.
//!
//! | route | |
//! |---|---|
//! | `GET /healthz` | the process is up |
//! | `GET /readyz` | the database and the storage of originals answer, and the schema is current (`503` otherwise) |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /v1/openapi.json` | the OpenAPI 3.1 document |
//! | `POST /v1/documents` | multipart upload (`file`, `callback_url`, `reprocess`), or JSON `{url}` to fetch: `202` |
//! | `GET /v1/documents` | newest first; `status`, `limit`, `before` |
//! | `GET /v1/documents/{id}` | one document |
//! | `DELETE /v1/documents/{id}` | the document, its chunks and its bytes |
//! | `POST /v1/documents/{id}/reprocess` | process again: `202` |
//! | `GET /v1/documents/{id}/chunks` | the searchable chunks |
//! | `GET /v1/documents/{id}/events` | progress as server-sent events, until it finishes |
//! | `GET /v1/events` | every document's progress as server-sent events |
//! | `POST /v1/search` | `{query, k, document_ids}` → chunks and scores |
//! | `POST /v1/webhooks/storage` | storage "object created" events, signed (no API key) |
//! | `GET /`, `/ui/...` | the operator dashboard (HTML; a login form and a session cookie) |
//!
//! The job, queue and cron routes are listed in the `jobs` module's source.
//!
//! Errors are `{"error": "..."}` with the matching status. Every route but the health checks
//! and the storage webhook needs a bearer API key with the right scope ([`auth`]) once keys
//! are configured.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use docket_core::{ChunkListParams, DocumentListParams, DocumentStatus, DocumentStore, Driver};
use docket_pipeline::fetch::Fetcher;
use docket_pipeline::ingest::StorageIngest;
use docket_pipeline::progress::ProgressEvent;
use docket_pipeline::{NewDocument, Pipeline, PipelineError};
use docket_queue::Processor;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

mod actions;
mod alerts;
mod analytics;
pub mod auth;
mod dashboard;
mod ingest;
mod jobs;
pub mod metrics;
mod openapi;
mod params;
mod search;

/// Priority of documents uploaded by users (ahead of bulk ingestion at 0).
pub const UPLOAD_PRIORITY: i16 = 5;

/// An API error: a status and a message for the client.
#[derive(Debug)]
pub struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        let status = match &e {
            PipelineError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            PipelineError::Empty => StatusCode::UNPROCESSABLE_ENTITY,
            PipelineError::NotFound(_) => StatusCode::NOT_FOUND,
            PipelineError::Db(docket_core::Error::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            PipelineError::Db(docket_core::Error::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            PipelineError::Blob(docket_pipeline::blob::BlobError::Store(err)) => {
                tracing::warn!(error = %err, "object storage unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            PipelineError::Embed(err) => {
                tracing::warn!(error = %err, "embedding failed");
                StatusCode::BAD_GATEWAY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "request failed");
        }
        ApiError(status, e.to_string())
    }
}

impl From<docket_core::Error> for ApiError {
    fn from(e: docket_core::Error) -> Self {
        PipelineError::from(e).into()
    }
}

fn not_found(id: Uuid) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("document {id} not found"))
}

/// What the API serves beyond the pipeline itself.
pub struct ApiOptions<D: Driver> {
    /// Request bodies above this get `413`.
    pub max_body_bytes: usize,
    /// With keys, every route but the health checks needs a key with the route's scope;
    /// without, the API is open (for a server that listens on loopback only).
    pub keys: Option<auth::ApiKeys>,
    /// Fetches documents created by URL; without it, `{url}` bodies get `422`.
    pub fetcher: Option<Fetcher>,
    /// The storage webhook; without it, `POST /v1/webhooks/storage` answers `404`.
    pub storage: Option<StorageIngest<D>>,
    /// Runs a batch of jobs on request; without it (a server with no workers),
    /// `POST /v1/jobs/process` answers `503`.
    pub processor: Option<Processor>,
    /// Whether `/metrics` carries the gauges read from the database (one process of a
    /// deployment should). Default: always.
    pub cluster_gauges: metrics::ClusterGauges,
}

impl<D: Driver> ApiOptions<D> {
    /// Only a body limit: no keys, no URL fetching, no webhook, no processor.
    pub fn new(max_body_bytes: usize) -> Self {
        Self {
            max_body_bytes,
            keys: None,
            fetcher: None,
            storage: None,
            processor: None,
            cluster_gauges: metrics::ClusterGauges::Always,
        }
    }
}

/// The router's state: the pipeline and the optional parts.
#[derive(Clone)]
pub(crate) struct AppState<D: Driver> {
    pub(crate) pipeline: Pipeline<D>,
    pub(crate) fetcher: Option<Fetcher>,
    pub(crate) storage: Option<StorageIngest<D>>,
    pub(crate) processor: Option<Processor>,
    pub(crate) cluster_gauges: metrics::ClusterGauges,
}

impl<D: Driver> axum::extract::FromRef<AppState<D>> for Pipeline<D> {
    fn from_ref(s: &AppState<D>) -> Self {
        s.pipeline.clone()
    }
}

impl<D: Driver> axum::extract::FromRef<AppState<D>> for metrics::ClusterGauges {
    fn from_ref(s: &AppState<D>) -> Self {
        s.cluster_gauges.clone()
    }
}

/// The API's routes over `pipeline`.
pub fn router<D: Driver>(pipeline: Pipeline<D>, options: ApiOptions<D>) -> Router {
    let max_body_bytes = options.max_body_bytes;
    let state = AppState {
        pipeline,
        fetcher: options.fetcher,
        storage: options.storage,
        processor: options.processor,
        cluster_gauges: options.cluster_gauges,
    };
    let keys = options
        .keys
        .map(|k| k.with_sessions(state.pipeline.driver().clone()));
    let api = routes(state, max_body_bytes);
    outer_layers(api, keys)
}

/// What a `docket worker` process serves: `/healthz`, `/readyz` and `/metrics` (its own job,
/// stage and embedding series; the database's gauges as `cluster_gauges` says), behind the
/// same keys as the API where keys are set.
pub fn worker_router<D: Driver>(
    pipeline: Pipeline<D>,
    keys: Option<auth::ApiKeys>,
    cluster_gauges: metrics::ClusterGauges,
) -> Router {
    let state = AppState {
        pipeline,
        fetcher: None,
        storage: None,
        processor: None,
        cluster_gauges,
    };
    let routes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<D>))
        .route("/metrics", get(metrics::render::<D>))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state);
    outer_layers(routes, keys)
}

/// The key check, request metrics, security headers and request ids around `api`.
fn outer_layers(api: Router, keys: Option<auth::ApiKeys>) -> Router {
    let api = match keys {
        Some(keys) => api.layer(axum::middleware::from_fn_with_state(keys, auth::check)),
        None => api,
    };
    // Outside the key check, so that refused requests are counted too.
    let api = api.layer(metrics::layer());
    // Every answer, refusals included, carries the headers that protect the dashboard.
    let api = api.layer(axum::middleware::from_fn(security_headers));
    // Outermost: every request gets an id (the client's `x-request-id`, or a new UUID),
    // returned in the response and carried by the request's log span.
    api.layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<axum::body::Body>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id
                    )
                },
            ),
        )
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            tower_http::request_id::MakeRequestUuid,
        ))
}

fn routes<D: Driver>(state: AppState<D>, max_body_bytes: usize) -> Router {
    let dashboard = dashboard::routes::<D>(state.clone());
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<D>))
        .route("/v1/documents", post(create::<D>).get(list::<D>))
        .route("/v1/documents/{id}", get(show::<D>).delete(remove::<D>))
        .route("/v1/documents/{id}/reprocess", post(reprocess::<D>))
        .route("/v1/documents/{id}/chunks", get(chunks::<D>))
        .route("/v1/documents/{id}/events", get(events::<D>))
        .route("/v1/events", get(all_events::<D>))
        .route("/v1/webhooks/storage", post(ingest::storage_webhook::<D>))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics::render::<D>))
        .merge(jobs::routes::<D>())
        .merge(alerts::routes::<D>())
        .merge(analytics::routes::<D>())
        .merge(actions::routes::<D>())
        .merge(search::routes::<D>())
        .merge(dashboard)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            max_body_bytes,
            refuse_announced_oversize,
        ))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

/// The Content-Security-Policy of every answer: the dashboard's pages load their one
/// stylesheet and one script from this origin (no inline script, no inline style), read their
/// live updates from it, post their forms to it, and may not be framed by any page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// Sets the browser protections on every answer: the [`CONTENT_SECURITY_POLICY`],
/// `X-Frame-Options: DENY` (for browsers without `frame-ancestors`), `nosniff` and no
/// referrer (dashboard URLs carry document ids and filters).
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::HeaderValue;
    use axum::http::header;
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// Errors the framework answers itself (an unreadable path parameter or query string, a body
/// that is not the JSON a route takes: plain text; no such route, a wrong method: empty) are
/// rewritten as `{"error": ...}` like every other error.
async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let plain = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    let untyped = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none();
    if !(resp.status().is_client_error() || resp.status().is_server_error()) || !(plain || untyped)
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_owned(),
    };
    let mut json = ApiError(parts.status, text).into_response();
    // Keep the framework's other headers (`Allow` on a 405, say).
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// Answers `413` at once when the declared `Content-Length` is over the limit, before a byte
/// of the body is read (bodies without a length are cut off at the limit while read).
async fn refuse_announced_oversize(
    State(max): State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > max as u64 => ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is {n} bytes; the limit is {max}"),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

async fn readyz<D: Driver>(State(p): State<Pipeline<D>>) -> Response {
    let unready = |m: String| ApiError(StatusCode::SERVICE_UNAVAILABLE, m).into_response();
    // Answer within the probe's patience: a pool waiting to reconnect is not ready.
    let check = async {
        p.driver()
            .ping()
            .await
            .map_err(|e| format!("database unavailable: {e}"))?;
        p.driver()
            .pending_migrations()
            .await
            .map_err(|e| format!("cannot read the schema's migrations: {e}"))
    };
    // Where originals live must answer too: uploads need it, and every parse.
    let storage = async {
        let unavailable =
            |e: String| format!("object storage unavailable ({}): {e}", p.blobs().describe());
        match tokio::time::timeout(READY_WITHIN, p.blobs().check()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable(e.to_string())),
            Err(_) => Err(unavailable(format!(
                "no answer within {} ms",
                READY_WITHIN.as_millis()
            ))),
        }
    };
    match tokio::time::timeout(READY_WITHIN, check).await {
        Err(_) => unready(format!(
            "database unavailable: no answer within {} ms",
            READY_WITHIN.as_millis()
        )),
        Ok(Err(m)) => unready(m),
        Ok(Ok(pending)) if pending.is_empty() => {
            if let Err(m) = storage.await {
                return unready(m);
            }
            // Ready; and what search can rank (a store left to another embedder is not a
            // reason to stop serving).
            let embedder = p.embedder_report_cached().await.ok().map(|r| {
                json!({
                    "name": r.name,
                    "fingerprint": r.fingerprint,
                    "stale_documents": r.stale_documents,
                    "reembedding_documents": r.reembedding_documents,
                    // Set while `hashing` stands in for the default local model (not
                    // downloaded): why, and the command that fixes it.
                    "fallback": p.embedder().fallback(),
                })
            });
            // docket's own vector index, where this process has one (no pgvector): until it
            // is built, searches scan (slower, still right).
            let search_index = p.search_index().map(|i| i.status());
            Json(json!({ "status": "ready", "embedder": embedder, "search_index": search_index }))
                .into_response()
        }
        Ok(Ok(pending)) => unready(format!(
            "the database schema is behind this build: migrations {pending:?} are pending (run docket migrate)"
        )),
    }
}

/// How long `/readyz` waits for the database before it answers `503`.
const READY_WITHIN: Duration = Duration::from_millis(1000);

/// `POST /v1/documents`: a multipart upload, or JSON `{url}` to fetch.
async fn create<D: Driver>(
    State(s): State<AppState<D>>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    use axum::extract::FromRequest;
    let is_json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    if is_json {
        let params::JsonObject(body) =
            params::JsonObject::<UrlRequest>::from_request(req, &()).await?;
        return create_from_url(s, body).await;
    }
    let is_form = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("multipart/form-data"));
    if !is_form {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the file as multipart/form-data (field `file`), or JSON {\"url\": ...}".into(),
        ));
    }
    let form = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError(e.status(), e.body_text()))?;
    upload(s.pipeline, form).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlRequest {
    url: String,
    #[serde(default, deserialize_with = "params::non_null")]
    callback_url: Option<String>,
    #[serde(default)]
    reprocess: bool,
    #[serde(default, deserialize_with = "params::non_null")]
    metadata: Option<serde_json::Value>,
}

fn check_callback(url: &str) -> Result<(), ApiError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("callback_url must be an http or https URL (got {url:?})"),
        ))
    }
}

async fn create_from_url<D: Driver>(s: AppState<D>, req: UrlRequest) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    let Some(fetcher) = &s.fetcher else {
        return Err(bad("this server does not fetch URLs".into()));
    };
    if let Some(cb) = &req.callback_url {
        check_callback(cb)?;
    }
    let mut metadata = match req.metadata {
        None => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => return Err(bad("metadata must be a JSON object".into())),
    };
    let fetched = fetcher.get(&req.url, &[]).await.map_err(|e| {
        use docket_pipeline::fetch::FetchError as F;
        let status = match &e {
            F::BadUrl(_) | F::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            F::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            F::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            F::Status(_) | F::TooManyRedirects(_) | F::Unreachable(_) => StatusCode::BAD_GATEWAY,
        };
        tracing::info!(error = %e, "URL fetch refused or failed");
        ApiError(status, e.to_string())
    })?;
    metadata
        .entry("source_url")
        .or_insert_with(|| serde_json::Value::String(fetched.final_url.clone()));
    let sub = s
        .pipeline
        .submit(NewDocument {
            bytes: fetched.bytes,
            filename: fetched.filename.as_deref().map(sanitize_filename),
            content_type: fetched.content_type,
            source: Some(docket_core::DocumentSource::Url),
            callback_url: req.callback_url,
            metadata: Some(serde_json::Value::Object(metadata)),
            priority: UPLOAD_PRIORITY,
            reprocess: req.reprocess,
        })
        .await?;
    Ok(submitted(sub))
}

fn submitted(sub: docket_pipeline::Submitted) -> Response {
    let status = if sub.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({ "created": sub.created, "document": sub.document })),
    )
        .into_response()
}

async fn upload<D: Driver>(p: Pipeline<D>, mut form: Multipart) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    let mut new = NewDocument {
        priority: UPLOAD_PRIORITY,
        ..NewDocument::default()
    };
    let mut has_file = false;
    while let Some(field) = form.next_field().await.map_err(|e| {
        let status = e.status();
        ApiError(status, e.body_text())
    })? {
        match field.name() {
            Some("file") => {
                new.filename = field.file_name().map(sanitize_filename);
                new.content_type = field.content_type().map(str::to_owned);
                new.bytes = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError(e.status(), e.body_text()))?;
                has_file = true;
            }
            Some("callback_url") => {
                let url = field.text().await.map_err(|e| bad(e.body_text()))?;
                check_callback(&url)?;
                new.callback_url = Some(url);
            }
            Some("reprocess") => {
                let v = field.text().await.map_err(|e| bad(e.body_text()))?;
                new.reprocess = match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "on" | "yes" => true,
                    "false" | "0" | "off" | "no" | "" => false,
                    _ => return Err(bad(format!("reprocess must be true or false (got {v:?})"))),
                };
            }
            Some(other) => return Err(bad(format!("unknown form field {other:?}"))),
            None => return Err(bad("a form field has no name".into())),
        }
    }
    if !has_file {
        return Err(bad("the form has no `file` field".into()));
    }
    let sub = p.submit(new).await?;
    Ok(submitted(sub))
}

/// Keeps the last path segment of a client's file name, without control characters.
fn sanitize_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = last.chars().filter(|c| !c.is_control()).take(255).collect();
    if clean.is_empty() || clean == "." || clean == ".." {
        "upload".to_owned()
    } else {
        clean
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<params::QueryInt>,
    before: Option<Uuid>,
}

async fn list<D: Driver>(
    State(p): State<Pipeline<D>>,
    params::QueryParams(q): params::QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let status = q
        .status
        .map(|s| params::one_of("status", "document status", &s, &DocumentStatus::ALL))
        .transpose()?;
    let limit = q.limit.map_or(50, |n| n.0);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be between 1 and 1000".into(),
        ));
    }
    let mut c = p.driver().conn().await?;
    let docs = c
        .document_list(&DocumentListParams {
            status,
            source: None,
            before: q.before,
            limit,
        })
        .await?;
    let next = (docs.len() as i64 == limit)
        .then(|| docs.last().map(|d| d.id))
        .flatten();
    Ok(Json(json!({ "documents": docs, "next_before": next })).into_response())
}

async fn show<D: Driver>(
    State(p): State<Pipeline<D>>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let mut c = p.driver().conn().await?;
    let doc = c.document_get(id).await?.ok_or_else(|| not_found(id))?;
    Ok(Json(doc).into_response())
}

async fn remove<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<auth::Actor>>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    if p.delete(id).await? {
        let who = actions::actor_name(&actor);
        docket_queue::admin::record(
            p.driver(),
            &who,
            "delete",
            Some(id.to_string()),
            &[],
            json!({}),
        )
        .await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(id))
    }
}

async fn reprocess<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<auth::Actor>>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let doc = p.reprocess(id).await?;
    let who = actions::actor_name(&actor);
    let detail = json!({ "generation": doc.generation });
    docket_queue::admin::record(
        p.driver(),
        &who,
        "reprocess",
        Some(id.to_string()),
        &[],
        detail,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(doc)).into_response())
}

async fn chunks<D: Driver>(
    State(p): State<Pipeline<D>>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let mut c = p.driver().conn().await?;
    let doc = c.document_get(id).await?.ok_or_else(|| not_found(id))?;
    // The searchable generation only (a re-processing one is not visible until it completes).
    let rows = match doc.active_generation {
        Some(generation) => {
            c.chunk_list(ChunkListParams {
                document_id: id,
                generation: Some(generation),
                limit: 10_000,
                offset: 0,
            })
            .await?
        }
        None => Vec::new(),
    };
    Ok(Json(json!({ "chunks": rows })).into_response())
}

fn sse_event(e: &ProgressEvent) -> Event {
    Event::default()
        .event("progress")
        .json_data(e)
        .unwrap_or_else(|_| Event::default().event("progress"))
}

/// Whether two events describe the same state of a document (their times aside).
fn same_state(a: &ProgressEvent, b: &ProgressEvent) -> bool {
    (a.generation, a.status, &a.stage, a.progress, &a.error)
        == (b.generation, b.status, &b.stage, b.progress, &b.error)
}

async fn events<D: Driver>(
    State(p): State<Pipeline<D>>,
    Path(id): Path<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribe before reading the row, so that no change falls between the two.
    let rx = p.progress().subscribe();
    let doc = {
        let mut c = p.driver().conn().await?;
        c.document_get(id).await?.ok_or_else(|| not_found(id))?
    };
    let first = ProgressEvent::of(&doc);
    let done = first.is_final();
    // This document's events, up to and including the one that finishes it.
    // Progress never goes back within a generation: an event published late (a batch's
    // percentage overtaken by the stage's end) is skipped.
    // An event that says nothing new (the same state announced twice, or the row read above
    // broadcast as well) is not sent again.
    let start = (first.generation, first.progress);
    let said = first.clone();
    let updates = futures::stream::unfold(
        (BroadcastStream::new(rx), false, start, said),
        move |(mut rx, finished, mut high, mut said)| async move {
            if finished {
                return None;
            }
            loop {
                match rx.next().await? {
                    Ok(e) if e.document_id == id => {
                        let last = e.is_final();
                        if !last && (e.generation, e.progress) < high {
                            continue;
                        }
                        if same_state(&e, &said) {
                            continue;
                        }
                        high = high.max((e.generation, e.progress));
                        said = e.clone();
                        return Some((e, (rx, last, high, said)));
                    }
                    // Other documents' events, or a gap after falling behind: the next
                    // event of this document carries its whole state anyway.
                    _ => continue,
                }
            }
        },
    );
    let stream = futures::stream::once(async move { first })
        .chain(if done {
            futures::stream::empty().boxed()
        } else {
            updates.boxed()
        })
        .map(|e| Ok(sse_event(&e)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn all_events<D: Driver>(
    State(p): State<Pipeline<D>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(p.progress().subscribe()).filter_map(|e| async move {
        match e {
            Ok(e) => Some(Ok(sse_event(&e))),
            // Fell behind: say so; clients re-read the documents they follow.
            Err(_) => Some(Ok(Event::default().event("lagged").data("{}"))),
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
