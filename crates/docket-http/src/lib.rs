//! docket's HTTP API (first part): documents, their live progress as server-sent events,
//! search, and health.
//!
//! | route | |
//! |---|---|
//! | `GET /healthz` | the process is up |
//! | `GET /readyz` | the database answers (`503` while it does not) |
//! | `POST /v1/documents` | multipart upload (`file`, optional `callback_url`): `202` |
//! | `GET /v1/documents` | newest first; `status`, `limit`, `before` |
//! | `GET /v1/documents/{id}` | one document |
//! | `DELETE /v1/documents/{id}` | the document, its chunks and its bytes |
//! | `POST /v1/documents/{id}/reprocess` | process again: `202` |
//! | `GET /v1/documents/{id}/chunks` | the searchable chunks |
//! | `GET /v1/documents/{id}/events` | progress as server-sent events, until it finishes |
//! | `GET /v1/events` | every document's progress as server-sent events |
//! | `POST /v1/search` | `{query, k, document_ids}` → chunks and scores |
//!
//!
//! The job and queue routes are listed in the `jobs` module's source.
//!
//! Errors are `{"error": "..."}` with the matching status. Every route but the health checks
//! needs a bearer API key with the right scope ([`auth`]) once keys are configured.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use docket_core::{DocumentListParams, DocumentStatus, Driver, Executor};
use docket_pipeline::progress::ProgressEvent;
use docket_pipeline::{NewDocument, Pipeline, PipelineError};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

pub mod auth;
mod jobs;

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

/// The API's routes over `pipeline`. Request bodies above `max_body_bytes` get `413`. With
/// `keys`, every route but the health checks needs a key with the route's scope; without,
/// the API is open (for a server that listens on loopback only).
pub fn router<D: Driver>(
    pipeline: Pipeline<D>,
    max_body_bytes: usize,
    keys: Option<auth::ApiKeys>,
) -> Router {
    let api = routes(pipeline, max_body_bytes);
    let api = match keys {
        Some(keys) => api.layer(axum::middleware::from_fn_with_state(keys, auth::check)),
        None => api,
    };
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

fn routes<D: Driver>(pipeline: Pipeline<D>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<D>))
        .route("/v1/documents", post(create::<D>).get(list::<D>))
        .route("/v1/documents/{id}", get(show::<D>).delete(remove::<D>))
        .route("/v1/documents/{id}/reprocess", post(reprocess::<D>))
        .route("/v1/documents/{id}/chunks", get(chunks::<D>))
        .route("/v1/documents/{id}/events", get(events::<D>))
        .route("/v1/events", get(all_events::<D>))
        .route("/v1/search", post(search::<D>))
        .merge(jobs::routes::<D>())
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            max_body_bytes,
            refuse_announced_oversize,
        ))
        .with_state(pipeline)
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
    match p.driver().ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(e) => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unavailable: {e}"),
        )
        .into_response(),
    }
}

async fn create<D: Driver>(
    State(p): State<Pipeline<D>>,
    mut form: Multipart,
) -> Result<Response, ApiError> {
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
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(bad(format!(
                        "callback_url must be an http or https URL (got {url:?})"
                    )));
                }
                new.callback_url = Some(url);
            }
            Some("reprocess") => {
                let v = field.text().await.map_err(|e| bad(e.body_text()))?;
                new.reprocess = matches!(v.as_str(), "true" | "1");
            }
            Some(other) => return Err(bad(format!("unknown form field {other:?}"))),
            None => return Err(bad("a form field has no name".into())),
        }
    }
    if !has_file {
        return Err(bad("the form has no `file` field".into()));
    }
    let sub = p.submit(new).await?;
    let status = if sub.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "created": sub.created, "document": sub.document })),
    )
        .into_response())
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
    limit: Option<i64>,
    before: Option<Uuid>,
}

async fn list<D: Driver>(
    State(p): State<Pipeline<D>>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let status = q
        .status
        .map(|s| s.parse::<DocumentStatus>())
        .transpose()
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let limit = q.limit.unwrap_or(50);
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
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    if p.delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(id))
    }
}

async fn reprocess<D: Driver>(
    State(p): State<Pipeline<D>>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let doc = p.reprocess(id).await?;
    Ok((StatusCode::ACCEPTED, Json(doc)).into_response())
}

async fn chunks<D: Driver>(
    State(p): State<Pipeline<D>>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let mut c = p.driver().conn().await?;
    if c.document_get(id).await?.is_none() {
        return Err(not_found(id));
    }
    let rows = c.chunk_list(id, None, 10_000, 0).await?;
    Ok(Json(json!({ "chunks": rows })).into_response())
}

fn sse_event(e: &ProgressEvent) -> Event {
    Event::default()
        .event("progress")
        .json_data(e)
        .unwrap_or_else(|_| Event::default().event("progress"))
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
    let updates = futures::stream::unfold(
        (BroadcastStream::new(rx), false),
        move |(mut rx, finished)| async move {
            if finished {
                return None;
            }
            loop {
                match rx.next().await? {
                    Ok(e) if e.document_id == id => {
                        let last = e.is_final();
                        return Some((e, (rx, last)));
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchRequest {
    query: String,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default)]
    document_ids: Option<Vec<Uuid>>,
}

fn default_k() -> usize {
    10
}

async fn search<D: Driver>(
    State(p): State<Pipeline<D>>,
    body: Result<Json<SearchRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    if req.query.trim().is_empty() || !(1..=100).contains(&req.k) {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "query must not be empty and k must be between 1 and 100".into(),
        ));
    }
    let hits = p.search(&req.query, req.k, req.document_ids).await?;
    Ok(Json(json!({ "hits": hits })).into_response())
}
