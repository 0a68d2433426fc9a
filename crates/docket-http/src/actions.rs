//! Operator actions over HTTP, each recorded in the audit trail under the caller's key name
//! (`key:<name>`; `anonymous` on a server without keys), and the trail itself.
//!
//! | route | scope | |
//! |---|---|---|
//! | `POST /v1/jobs/retry` | admin | failed or cancelled jobs: `{ids}`, `{kind, queue}` or `{all: true}` |
//! | `POST /v1/jobs/run-now` | admin | queued, scheduled or retrying jobs, due now, no attempt spent |
//! | `POST /v1/jobs/discard` | admin | dead letters, deleted for good |
//! | `POST /v1/jobs/{id}/retry`, `/run-now`, `/discard`, `/cancel` | admin | one job (`409` with the reason when it cannot) |
//! | `POST /v1/documents/{id}/cancel` | admin | a document and its pipeline's live jobs |
//! | `POST /v1/queues/{name}/pause`, `/resume` | admin | |
//! | `GET /v1/audit` | admin | operator actions, newest first; `action`, `job`, `before`, `limit` |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use docket_core::{
    AuditListParams, Driver, JobDiscardParams, JobRetryParams, JobRunNowParams, QueueExecutor,
};
use docket_pipeline::Pipeline;
use docket_queue::admin::{self, ActionOutcome};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Actor;
use crate::params::{Int, JsonObject, QueryInt, QueryParams};
use crate::{ApiError, AppState};

pub(crate) fn routes<D: Driver>() -> Router<AppState<D>> {
    Router::new()
        .route("/v1/jobs/retry", post(retry_many::<D>))
        .route("/v1/jobs/run-now", post(run_now_many::<D>))
        .route("/v1/jobs/discard", post(discard_many::<D>))
        .route("/v1/jobs/{id}/retry", post(retry_one::<D>))
        .route("/v1/jobs/{id}/run-now", post(run_now_one::<D>))
        .route("/v1/jobs/{id}/discard", post(discard_one::<D>))
        .route("/v1/jobs/{id}/cancel", post(cancel_one::<D>))
        .route("/v1/documents/{id}/cancel", post(cancel_document::<D>))
        .route("/v1/queues/{name}/pause", post(pause::<D>))
        .route("/v1/queues/{name}/resume", post(resume::<D>))
        .route("/v1/audit", get(audit::<D>))
}

/// Who is asking, for the audit trail.
pub(crate) fn actor_name(actor: &Option<Extension<Actor>>) -> String {
    actor
        .as_ref()
        .map_or_else(|| "anonymous".to_owned(), |Extension(a)| a.0.clone())
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, m.into())
}

/// Jobs to act on: by id, by kind and/or queue, or all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Selection {
    #[serde(default)]
    ids: Vec<Int>,
    kind: Option<String>,
    queue: Option<String>,
    #[serde(default)]
    all: bool,
}

type Body = JsonObject<Selection>;

fn selection(JsonObject(s): Body, which: &str) -> Result<Selection, ApiError> {
    if s.ids.is_empty() && s.kind.is_none() && s.queue.is_none() && !s.all {
        return Err(invalid(format!(
            "say which jobs: ids, kind and/or queue, or all: true for every {which} job"
        )));
    }
    if s.all && (!s.ids.is_empty() || s.kind.is_some() || s.queue.is_some()) {
        return Err(invalid("all: true takes no other field"));
    }
    Ok(s)
}

fn answer(field: &str, o: ActionOutcome) -> Response {
    Json(json!({ field: o.changed, "refused": o.refused, "audit_id": o.audit_id })).into_response()
}

/// One job named in the path: `404` when it does not exist, `409` with the reason when the
/// action could not change it.
fn refusal(id: i64, o: &ActionOutcome) -> Option<ApiError> {
    let r = o.refused.iter().find(|r| r.id == id)?;
    Some(if r.reason == "no such job" {
        ApiError(StatusCode::NOT_FOUND, format!("job {id} not found"))
    } else {
        ApiError(
            StatusCode::CONFLICT,
            format!("job {id} was left as it was: {}", r.reason),
        )
    })
}

fn one(field: &str, id: i64, o: ActionOutcome) -> Result<Response, ApiError> {
    match refusal(id, &o) {
        Some(e) => Err(e),
        None => Ok(answer(field, o)),
    }
}

async fn retry_many<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    body: Body,
) -> Result<Response, ApiError> {
    let s = selection(body, "failed or cancelled")?;
    let params = JobRetryParams {
        ids: s.ids.into_iter().map(|n| n.0).collect(),
        job_type: s.kind,
        queue: s.queue,
        now: None,
    };
    let o = admin::retry(p.driver(), &actor_name(&actor), params).await?;
    Ok(answer("retried", o))
}

async fn retry_one<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let params = JobRetryParams {
        ids: vec![id],
        ..JobRetryParams::default()
    };
    let o = admin::retry(p.driver(), &actor_name(&actor), params).await?;
    one("retried", id, o)
}

async fn run_now_many<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    body: Body,
) -> Result<Response, ApiError> {
    let s = selection(body, "queued, scheduled or retrying")?;
    let params = JobRunNowParams {
        ids: s.ids.into_iter().map(|n| n.0).collect(),
        job_type: s.kind,
        queue: s.queue,
        now: None,
    };
    let o = admin::run_now(p.driver(), &actor_name(&actor), params).await?;
    Ok(answer("run_now", o))
}

async fn run_now_one<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let params = JobRunNowParams {
        ids: vec![id],
        ..JobRunNowParams::default()
    };
    let o = admin::run_now(p.driver(), &actor_name(&actor), params).await?;
    one("run_now", id, o)
}

async fn discard_many<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    body: Body,
) -> Result<Response, ApiError> {
    let s = selection(body, "failed")?;
    let params = JobDiscardParams {
        ids: s.ids.into_iter().map(|n| n.0).collect(),
        job_type: s.kind,
        queue: s.queue,
    };
    let o = admin::discard(p.driver(), &actor_name(&actor), params).await?;
    Ok(answer("discarded", o))
}

async fn discard_one<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let params = JobDiscardParams {
        ids: vec![id],
        ..JobDiscardParams::default()
    };
    let o = admin::discard(p.driver(), &actor_name(&actor), params).await?;
    one("discarded", id, o)
}

async fn cancel_one<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let o = p.cancel_jobs(&actor_name(&actor), vec![id]).await?;
    if let Some(e) = refusal(id, &o) {
        return Err(e);
    }
    Ok(Json(json!({
        "cancelled": o.changed,
        "documents": o.documents,
        "refused": o.refused,
        "audit_id": o.audit_id,
    }))
    .into_response())
}

async fn cancel_document<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let Some(o) = p.cancel_document(&actor_name(&actor), id).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("document {id} not found"),
        ));
    };
    if o.documents.is_empty() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("document {id} has already finished"),
        ));
    }
    Ok(Json(json!({
        "cancelled": o.changed,
        "documents": o.documents,
        "audit_id": o.audit_id,
    }))
    .into_response())
}

async fn set_paused<D: Driver>(
    p: &Pipeline<D>,
    actor: &Option<Extension<Actor>>,
    name: String,
    paused: bool,
) -> Result<Response, ApiError> {
    if name.is_empty() || name.len() > 128 {
        return Err(invalid("a queue name is 1 to 128 characters"));
    }
    let q = admin::set_paused(p.driver(), &actor_name(actor), &name, paused).await?;
    Ok(Json(q).into_response())
}

async fn pause<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_paused(&p, &actor, name, true).await
}

async fn resume<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_paused(&p, &actor, name, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    action: Option<String>,
    job: Option<QueryInt>,
    before: Option<QueryInt>,
    limit: Option<QueryInt>,
}

async fn audit<D: Driver>(
    State(p): State<Pipeline<D>>,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.map_or(100, |n| n.0);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("limit must be between 1 and 1000"));
    }
    let mut c = p.driver().conn().await?;
    let actions = c
        .audit_list(AuditListParams {
            action: q.action,
            job_id: q.job.map(|n| n.0),
            before_id: q.before.map(|n| n.0),
            limit,
        })
        .await?;
    Ok(Json(json!({ "actions": actions })).into_response())
}
