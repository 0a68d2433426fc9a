//! The dashboard's operator actions: retry, run now, discard, cancel (jobs and documents),
//! reprocess, delete, pause and resume. Each goes through the same function as the API's
//! (`docket_queue::admin`, the pipeline), so it is recorded in the audit trail under
//! `dashboard:<key name>` (`dashboard` on an open server), and answers with a redirect back.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use docket_core::{
    Driver, JobDiscardParams, JobListParams, JobRetryParams, JobRunNowParams, JobState,
    QueueExecutor,
};
use docket_queue::admin::{self, ActionOutcome};
use serde_json::json;
use uuid::Uuid;

use super::{UiError, UiResult, see_other};
use crate::AppState;
use crate::auth::Actor;

/// Who acts, for the audit trail.
pub(super) fn who(actor: &Option<Extension<Actor>>) -> String {
    actor
        .as_ref()
        .map_or_else(|| "dashboard".to_owned(), |Extension(a)| a.0.clone())
}

/// A one-job action that changed nothing is an error page with the reason.
fn refused(id: i64, o: &ActionOutcome) -> Result<(), UiError> {
    match o.refused.iter().find(|r| r.id == id) {
        None => Ok(()),
        Some(r) if r.reason == "no such job" => Err(UiError(
            StatusCode::NOT_FOUND,
            format!("job {id} not found"),
        )),
        Some(r) => Err(UiError(
            StatusCode::CONFLICT,
            format!("job {id} was left as it was: {}", r.reason),
        )),
    }
}

pub(super) async fn retry_one<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> UiResult {
    let params = JobRetryParams {
        ids: vec![id],
        ..JobRetryParams::default()
    };
    refused(
        id,
        &admin::retry(s.pipeline.driver(), &who(&actor), params).await?,
    )?;
    Ok(see_other(&format!("/ui/jobs/{id}")))
}

pub(super) async fn run_now_one<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> UiResult {
    let params = JobRunNowParams {
        ids: vec![id],
        ..JobRunNowParams::default()
    };
    refused(
        id,
        &admin::run_now(s.pipeline.driver(), &who(&actor), params).await?,
    )?;
    Ok(see_other(&format!("/ui/jobs/{id}")))
}

pub(super) async fn discard_one<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> UiResult {
    let params = JobDiscardParams {
        ids: vec![id],
        ..JobDiscardParams::default()
    };
    refused(
        id,
        &admin::discard(s.pipeline.driver(), &who(&actor), params).await?,
    )?;
    Ok(see_other("/ui/jobs/failed"))
}

pub(super) async fn cancel_one<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> UiResult {
    refused(id, &s.pipeline.cancel_jobs(&who(&actor), vec![id]).await?)?;
    Ok(see_other(&format!("/ui/jobs/{id}")))
}

/// The ids ticked in a bulk form (`id=..&id=..`), and whether `all=1` was asked.
fn bulk_form(body: &[u8]) -> (Vec<i64>, bool) {
    let mut ids = Vec::new();
    let mut all = false;
    for (k, v) in url::form_urlencoded::parse(body) {
        match &*k {
            "id" => ids.extend(v.parse::<i64>().ok()),
            "all" => all = v == "1",
            _ => {}
        }
    }
    (ids, all)
}

/// Every dead letter's id, as the dead-letter page lists them.
async fn every_failed<D: Driver>(s: &AppState<D>) -> Result<Vec<i64>, UiError> {
    let mut c = s.pipeline.driver().conn().await?;
    let mut ids: Vec<i64> = Vec::new();
    loop {
        let page = c
            .job_list(JobListParams {
                states: vec![JobState::Failed],
                before_id: ids.last().copied(),
                limit: 1000,
                ..JobListParams::default()
            })
            .await?;
        ids.extend(page.iter().map(|j| j.id));
        if page.len() < 1000 {
            return Ok(ids);
        }
    }
}

/// `POST /ui/jobs/retry`: `id=..&id=..` (the selected rows) or `all=1` (every dead letter;
/// a retry with no ids would also take the cancelled ones).
pub(super) async fn retry_many<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    body: axum::body::Bytes,
) -> UiResult {
    let (mut ids, all) = bulk_form(&body);
    if all {
        ids = every_failed(&s).await?;
    }
    if !ids.is_empty() {
        let params = JobRetryParams {
            ids,
            ..JobRetryParams::default()
        };
        admin::retry(s.pipeline.driver(), &who(&actor), params).await?;
    }
    Ok(see_other("/ui/jobs/failed"))
}

/// `POST /ui/jobs/discard`: the selected dead letters, or `all=1`.
pub(super) async fn discard_many<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    body: axum::body::Bytes,
) -> UiResult {
    let (mut ids, all) = bulk_form(&body);
    if all {
        ids = every_failed(&s).await?;
    }
    if !ids.is_empty() {
        let params = JobDiscardParams {
            ids,
            ..JobDiscardParams::default()
        };
        admin::discard(s.pipeline.driver(), &who(&actor), params).await?;
    }
    Ok(see_other("/ui/jobs/failed"))
}

pub(super) async fn reprocess<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<Uuid>,
) -> UiResult {
    let doc = s.pipeline.reprocess(id).await?;
    let detail = json!({ "generation": doc.generation });
    admin::record(
        s.pipeline.driver(),
        &who(&actor),
        "reprocess",
        Some(id.to_string()),
        &[],
        detail,
    )
    .await?;
    Ok(see_other(&format!("/ui/documents/{id}")))
}

pub(super) async fn cancel_document<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<Uuid>,
) -> UiResult {
    match s.pipeline.cancel_document(&who(&actor), id).await? {
        None => Err(UiError(
            StatusCode::NOT_FOUND,
            format!("document {id} not found"),
        )),
        Some(o) if o.documents.is_empty() => Err(UiError(
            StatusCode::CONFLICT,
            format!("document {id} has already finished"),
        )),
        Some(_) => Ok(see_other(&format!("/ui/documents/{id}"))),
    }
}

pub(super) async fn delete<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<Uuid>,
) -> UiResult {
    if s.pipeline.delete(id).await? {
        admin::record(
            s.pipeline.driver(),
            &who(&actor),
            "delete",
            Some(id.to_string()),
            &[],
            json!({}),
        )
        .await?;
    }
    Ok(see_other("/ui/documents"))
}

async fn set_paused<D: Driver>(
    s: &AppState<D>,
    actor: &Option<Extension<Actor>>,
    name: String,
    paused: bool,
) -> UiResult {
    if name.is_empty() || name.len() > 128 {
        return Err(UiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a queue name is 1 to 128 characters".into(),
        ));
    }
    admin::set_paused(s.pipeline.driver(), &who(actor), &name, paused).await?;
    Ok(see_other("/ui/queues"))
}

pub(super) async fn pause<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(name): Path<String>,
) -> UiResult {
    set_paused(&s, &actor, name, true).await
}

pub(super) async fn resume<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(name): Path<String>,
) -> UiResult {
    set_paused(&s, &actor, name, false).await
}
