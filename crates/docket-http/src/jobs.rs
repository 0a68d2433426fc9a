//! Job and queue routes: what the queue holds, over HTTP. The repairs (retry, run now,
//! discard, cancel, pause, resume) are operator actions, in [`crate::actions`].
//!
//! | route | scope | |
//! |---|---|---|
//! | `GET /v1/jobs` | read | newest first; `state`, `kind`, `queue`, `document_id`, `before`, `limit` |
//! | `GET /v1/jobs/stats` | read | counts by kind, queue and state; throughput; oldest due job's wait |
//! | `GET /v1/jobs/failed` | read | the dead-letter queue |
//! | `GET /v1/jobs/stuck` | read | running jobs whose worker's lease lapsed, with its last heartbeat |
//! | `POST /v1/jobs/process` | admin | `{queue, limit}`: claim and run a batch now |
//! | `GET /v1/jobs/{id}` | read | a job and every attempt |
//! | `GET /v1/queues` | read | queues and whether they are paused |
//! | `GET /v1/cron` | read | schedules with their next run |
//! | `GET /v1/cron/history` | read | runs, newest first; `schedule`, `limit` |
//! | `POST /v1/cron/{name}/run` | admin | enqueue a run now (`409` while one is live) |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use docket_core::{Driver, JobListParams, JobListStuckParams, JobState, QueueExecutor};
use docket_pipeline::Pipeline;
use docket_queue::maintenance::ManualRun;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::params::{Int, JsonObject, QueryInt, QueryParams, non_null, one_of};
use crate::{ApiError, AppState};

pub(crate) fn routes<D: Driver>() -> Router<AppState<D>> {
    Router::new()
        .route("/v1/jobs", get(list::<D>))
        .route("/v1/jobs/stats", get(stats::<D>))
        .route("/v1/jobs/failed", get(failed::<D>))
        .route("/v1/jobs/stuck", get(stuck::<D>))
        .route("/v1/jobs/process", post(process::<D>))
        .route("/v1/jobs/{id}", get(show::<D>))
        .route("/v1/queues", get(queues::<D>))
        .route("/v1/cron", get(cron_list::<D>))
        .route("/v1/cron/history", get(cron_history::<D>))
        .route("/v1/cron/{name}/run", post(cron_run::<D>))
}

async fn cron_list<D: Driver>(State(p): State<Pipeline<D>>) -> Result<Response, ApiError> {
    let mut c = p.driver().conn().await?;
    Ok(Json(json!({ "schedules": c.cron_schedule_list().await? })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    schedule: Option<String>,
    limit: Option<QueryInt>,
}

async fn cron_history<D: Driver>(
    State(p): State<Pipeline<D>>,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.map_or(50, |n| n.0);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("limit must be between 1 and 1000"));
    }
    let mut c = p.driver().conn().await?;
    let runs = c
        .cron_run_list(docket_core::CronRunListParams {
            schedule_name: q.schedule,
            limit,
        })
        .await?;
    Ok(Json(json!({ "runs": runs })).into_response())
}

async fn cron_run<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<axum::Extension<crate::auth::Actor>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let scheduler = docket_queue::maintenance::Scheduler::new(
        p.driver().clone(),
        Default::default(),
        std::sync::Arc::new(docket_core::SystemClock),
    )?;
    match scheduler.run_now(&name).await? {
        ManualRun::Enqueued(run) => {
            let who = crate::actions::actor_name(&actor);
            let jobs: Vec<i64> = run.job_id.into_iter().collect();
            let detail = json!({ "run": run.id });
            docket_queue::admin::record(p.driver(), &who, "cron_run", Some(name), &jobs, detail)
                .await?;
            Ok((StatusCode::ACCEPTED, Json(json!({ "run": run }))).into_response())
        }
        ManualRun::Live => Err(ApiError(
            StatusCode::CONFLICT,
            format!("a run of {name} is already live"),
        )),
        ManualRun::NoSuchSchedule => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no cron schedule named {name:?}"),
        )),
    }
}

fn job_not_found(id: i64) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("job {id} not found"))
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, m.into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    kind: Option<String>,
    queue: Option<String>,
    document_id: Option<Uuid>,
    before: Option<QueryInt>,
    limit: Option<QueryInt>,
}

async fn list_jobs<D: Driver>(
    p: &Pipeline<D>,
    q: ListQuery,
    states: Vec<JobState>,
) -> Result<Response, ApiError> {
    let limit = q.limit.map_or(50, |n| n.0);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("limit must be between 1 and 1000"));
    }
    let mut c = p.driver().conn().await?;
    let jobs = c
        .job_list(JobListParams {
            states,
            job_types: q.kind.into_iter().collect(),
            queue: q.queue,
            document_id: q.document_id,
            before_id: q.before.map(|n| n.0),
            limit,
        })
        .await?;
    let next = (jobs.len() as i64 == limit)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    Ok(Json(json!({ "jobs": jobs, "next_before": next })).into_response())
}

async fn list<D: Driver>(
    State(p): State<Pipeline<D>>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let states = match &q.state {
        Some(s) => vec![one_of("state", "job state", s, &JobState::ALL)?],
        None => Vec::new(),
    };
    list_jobs(&p, q, states).await
}

async fn failed<D: Driver>(
    State(p): State<Pipeline<D>>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    // Not one of this route's parameters: refused as any unknown parameter is.
    if q.state.is_some() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "state: the failed list holds failed jobs only; leave out state".into(),
        ));
    }
    list_jobs(&p, q, vec![JobState::Failed]).await
}

async fn stats<D: Driver>(State(p): State<Pipeline<D>>) -> Result<Response, ApiError> {
    let mut c = p.driver().conn().await?;
    let rows = c.job_stats().await?;
    let activity = c
        .job_activity(docket_core::JobActivityParams::default())
        .await?;
    let now = chrono::Utc::now();
    let oldest = activity.iter().filter_map(|a| a.oldest_due_at).min();
    let throughput: Vec<_> = activity
        .iter()
        .map(|a| {
            json!({
                "job_type": a.job_type,
                "queue": a.queue,
                "completed_last_minute": a.completed_last_minute,
                "failed_last_minute": a.failed_last_minute,
                "completed_last_hour": a.completed_last_hour,
                "failed_last_hour": a.failed_last_hour,
                "oldest_queued_age_seconds": a.oldest_due_at.map(|t| age_seconds(now, t)),
            })
        })
        .collect();
    Ok(Json(json!({
        "stats": rows,
        "throughput": throughput,
        "oldest_queued_age_seconds": oldest.map(|t| age_seconds(now, t)),
    }))
    .into_response())
}

fn age_seconds(now: chrono::DateTime<chrono::Utc>, t: chrono::DateTime<chrono::Utc>) -> f64 {
    ((now - t).num_milliseconds().max(0) as f64) / 1000.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StuckQuery {
    limit: Option<QueryInt>,
}

/// Each job with its worker's last heartbeat and lease, and how long it has run: judged by
/// the lease each worker wrote, on the database's clock.
async fn stuck<D: Driver>(
    State(p): State<Pipeline<D>>,
    QueryParams(q): QueryParams<StuckQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.map_or(100, |n| n.0);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("limit must be between 1 and 1000"));
    }
    let mut c = p.driver().conn().await?;
    let jobs = c
        .job_list_stuck(JobListStuckParams { now: None, limit })
        .await?;
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessRequest {
    #[serde(default, deserialize_with = "non_null")]
    queue: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    limit: Option<Int>,
}

/// Claims and runs a batch of due jobs in this request, as the original job-processor
/// endpoint did (for a cron pinger or an operator; the workers do this continuously).
async fn process<D: Driver>(
    State(s): State<AppState<D>>,
    body: Option<JsonObject<ProcessRequest>>,
) -> Result<Response, ApiError> {
    let req = body.map(|JsonObject(b)| b).unwrap_or_default();
    let limit = req.limit.map_or(10, |n| n.0);
    if !(1..=100).contains(&limit) {
        return Err(invalid("limit must be between 1 and 100"));
    }
    let Some(processor) = &s.processor else {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server runs no workers".into(),
        ));
    };
    let processed = processor.process(req.queue, limit as usize).await?;
    Ok(Json(json!({ "processed": processed })).into_response())
}

async fn show<D: Driver>(
    State(p): State<Pipeline<D>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let mut c = p.driver().conn().await?;
    let job = c.job_get(id).await?.ok_or_else(|| job_not_found(id))?;
    let attempts = c.job_attempt_list(id).await?;
    Ok(Json(json!({ "job": job, "attempts": attempts })).into_response())
}

async fn queues<D: Driver>(State(p): State<Pipeline<D>>) -> Result<Response, ApiError> {
    let mut c = p.driver().conn().await?;
    Ok(Json(json!({ "queues": c.queue_list().await? })).into_response())
}
