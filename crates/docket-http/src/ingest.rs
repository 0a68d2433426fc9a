//! `POST /v1/webhooks/storage`: "object created" events from a storage service.
//!
//! No API key: the delivery is checked by its Standard Webhooks signature over the raw body
//! (see `docket_pipeline::ingest`). Answers `202` with the objects accepted (each one's ingest
//! job, and whether a live job already held it), `401` for a missing or wrong signature or a
//! timestamp outside the tolerance, `400` for a body that is not JSON, `422` for JSON of
//! neither known shape, and `404` when no storage webhook is configured.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use docket_core::Driver;
use docket_notify::WebhookHeaders;
use docket_pipeline::ingest::WebhookError;
use serde_json::json;

use crate::{ApiError, AppState};

pub(crate) async fn storage_webhook<D: Driver>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(ingest) = &s.storage else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "no storage webhook is configured on this server".into(),
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let wh = WebhookHeaders {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
    };
    match ingest.receive(&wh, &body).await {
        Ok((accepted, ignored)) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "accepted": accepted, "ignored": ignored })),
        )
            .into_response()),
        Err(WebhookError::Db(e)) => Err(ApiError::from(e)),
        Err(e) => {
            let status = match &e {
                WebhookError::Signature(_) => StatusCode::UNAUTHORIZED,
                WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            tracing::warn!(error = %e, "storage webhook refused");
            Err(ApiError(status, e.to_string()))
        }
    }
}
