//! Search and re-embedding.
//!
//! | route | scope | |
//! |---|---|---|
//! | `POST /v1/search` | read | the `k` best chunks for `query` by `mode` (`hybrid`, the default: vector and text rankings fused; `vector`; `text`), and how many documents the vector ranking could not rank |
//! | `GET /v1/reindex` | read | the running embedder, stale documents by embedder, the re-embedding job |
//! | `POST /v1/reindex` | admin | starts re-embedding the stale documents (one job at a time) |

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use docket_core::{DocumentStore, Driver, JobListParams, QueueExecutor};
use docket_pipeline::reindex::{REINDEX_KEY, ReindexArgs};
use docket_pipeline::{Pipeline, SearchMode};
use docket_queue::JobArgs;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::json;
use uuid::Uuid;

use crate::actions::actor_name;
use crate::auth::Actor;
use crate::params::{Int, JsonObject};
use crate::{ApiError, AppState};

/// The most hits one search returns.
pub(crate) const MAX_K: usize = 1000;

pub(crate) fn routes<D: Driver>() -> Router<AppState<D>> {
    Router::new().route("/v1/search", post(search::<D>)).route(
        "/v1/reindex",
        post(start_reindex::<D>).get(reindex_status::<D>),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchRequest {
    query: String,
    #[serde(default = "default_k")]
    k: Int,
    #[serde(default)]
    document_ids: Option<Vec<Uuid>>,
    #[serde(default, deserialize_with = "search_mode")]
    mode: SearchMode,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

fn default_k() -> Int {
    Int(10)
}

/// The names of the search modes.
const MODES: [&str; 3] = ["hybrid", "vector", "text"];

/// A search mode by name. serde_json reads an enum from a string or an object only and calls
/// anything else a syntax error (`expected value`); this says what is wrong instead:
/// `invalid type: null, expected one of hybrid, vector, text`.
fn search_mode<'de, D: Deserializer<'de>>(d: D) -> Result<SearchMode, D::Error> {
    struct Name;
    impl Visitor<'_> for Name {
        type Value = SearchMode;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "one of {}", MODES.join(", "))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<SearchMode, E> {
            SearchMode::deserialize(de::value::StrDeserializer::<E>::new(v))
        }
    }
    d.deserialize_any(Name)
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, m.into())
}

async fn search<D: Driver>(
    State(p): State<Pipeline<D>>,
    JsonObject(req): JsonObject<SearchRequest>,
) -> Result<Response, ApiError> {
    if req.query.trim().is_empty() {
        return Err(invalid("query must not be empty"));
    }
    let k = req.k.0;
    if !(1..=MAX_K as i64).contains(&k) {
        return Err(invalid(format!(
            "k must be between 1 and {MAX_K} (got {k})"
        )));
    }
    let report = p.embedder_report_cached().await?;
    if req.metadata.as_ref().is_some_and(|m| !m.is_object()) {
        return Err(invalid(
            "metadata must be a JSON object (documents whose metadata contains it)",
        ));
    }
    if req.filename.as_deref().is_some_and(|f| f.is_empty()) {
        return Err(invalid("filename must not be empty"));
    }
    let scope = p
        .search_scope(req.document_ids, req.filename, req.metadata)
        .await?;
    let hits = p
        .search_mode(&req.query, k as usize, scope, req.mode)
        .await?;
    // Each hit names its file.
    let mut filenames: std::collections::HashMap<Uuid, Option<String>> = Default::default();
    {
        let mut c = p.driver().conn().await?;
        for h in &hits {
            if let std::collections::hash_map::Entry::Vacant(e) =
                filenames.entry(h.chunk.document_id)
            {
                let doc = c.document_get(h.chunk.document_id).await?;
                e.insert(doc.and_then(|d| d.filename));
            }
        }
    }
    let hits: Vec<_> = hits
        .into_iter()
        .map(|h| {
            let mut hit = json!(h);
            hit["filename"] = json!(filenames.get(&h.chunk.document_id).cloned().flatten());
            if h.vector_score.is_some() {
                hit["embedder_fingerprint"] = json!(report.fingerprint);
            }
            hit
        })
        .collect();
    Ok(Json(json!({
        "mode": req.mode,
        "hits": hits,
        "embedder": { "name": report.name, "fingerprint": report.fingerprint },
        "stale_documents": report.stale_documents,
        "stale": report.stale,
    }))
    .into_response())
}

/// The re-embedding job, if one is live or was the last.
async fn reindex_job<D: Driver>(p: &Pipeline<D>) -> Result<serde_json::Value, ApiError> {
    let mut c = p.driver().conn().await?;
    let jobs = c
        .job_list(JobListParams {
            job_types: vec![ReindexArgs::KIND.to_owned()],
            limit: 1,
            ..JobListParams::default()
        })
        .await?;
    Ok(jobs.first().map_or(serde_json::Value::Null, |j| {
        json!({
            "id": j.id,
            "state": j.status,
            "created_at": j.created_at,
            "last_error": j.last_error,
        })
    }))
}

async fn reindex_status<D: Driver>(State(p): State<Pipeline<D>>) -> Result<Response, ApiError> {
    let report = p.embedder_report().await?;
    let job = reindex_job(&p).await?;
    Ok(Json(json!({ "embedder": report, "job": job })).into_response())
}

async fn start_reindex<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
) -> Result<Response, ApiError> {
    let started = p.start_reindex().await?;
    if started.created {
        docket_queue::admin::record(
            p.driver(),
            &actor_name(&actor),
            "reindex",
            Some(REINDEX_KEY.to_owned()),
            &[started.job_id],
            json!({ "stale_documents": started.stale_documents }),
        )
        .await?;
    }
    let status = if started.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(started))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::FromRequest;

    async fn read(body: &str) -> Result<SearchRequest, ApiError> {
        let req = axum::http::Request::post("/v1/search")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        JsonObject::<SearchRequest>::from_request(req, &())
            .await
            .map(|JsonObject(r)| r)
    }

    #[tokio::test]
    async fn a_mode_that_names_no_mode_is_the_data_s_fault() {
        for (mode, says) in [
            (
                "null",
                "mode: invalid type: null, expected one of hybrid, vector, text",
            ),
            (
                "5",
                "mode: invalid type: integer `5`, expected one of hybrid, vector, text",
            ),
            (
                r#""fuzzy""#,
                "mode: unknown variant `fuzzy`, expected one of `hybrid`, `vector`, `text`",
            ),
        ] {
            let body = format!(r#"{{"query": "x", "mode": {mode}}}"#);
            let ApiError(status, message) = read(&body).await.unwrap_err();
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(message, says, "{body}");
        }
        for name in MODES {
            let r = read(&format!(r#"{{"query": "x", "mode": "{name}"}}"#))
                .await
                .unwrap();
            assert_eq!(json!(r.mode), json!(name));
        }
        assert_eq!(
            read(r#"{"query": "x"}"#).await.unwrap().mode,
            SearchMode::Hybrid
        );
        let ApiError(status, _) = read(r#"{"query": "x""#).await.unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
