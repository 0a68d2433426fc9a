//! Operator actions: retry, run now, cancel, discard, pause and resume.
//!
//! Each action is applied and recorded in the audit trail (`docket_audit`: who, what, when,
//! which jobs) in one transaction, and logged, whichever door it came through (the CLI, the
//! HTTP API, the dashboard). Jobs named by id that the action could not change come back as
//! [`Refused`], each with the reason, so that no caller reports "0 jobs" and exits happily.

use docket_core::{
    AuditInsertParams, AuditRow, DocumentCancelParams, DocumentStore, Driver, JobCancelParams,
    JobDiscardParams, JobListParams, JobRetryParams, JobRow, JobRunNowParams, JobState,
    QueueDriver, QueueExecutor, QueueRow, QueueSetPausedParams, Result, Transaction,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::runtime::CLAIMS_CHANGED_TAG;

/// A job named by id that an action left as it was, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// The job.
    pub id: i64,
    /// Why it was left alone.
    pub reason: String,
}

/// What an action did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ActionOutcome {
    /// The jobs it changed, by id.
    pub changed: Vec<i64>,
    /// The jobs named by id that it could not change.
    pub refused: Vec<Refused>,
    /// Documents cancelled with their jobs (cancel only).
    pub documents: Vec<Uuid>,
    /// The audit row that records it.
    pub audit_id: i64,
}

/// Retries dead-lettered or cancelled jobs (by id, or every one matching the filters): due
/// now, with a fresh grant of attempts.
pub async fn retry<D: QueueDriver>(
    driver: &D,
    actor: &str,
    params: JobRetryParams,
) -> Result<ActionOutcome> {
    change(driver, actor, Change::Retry(params)).await
}

/// Makes queued (also scheduled) and retrying jobs due now, spending no attempt.
pub async fn run_now<D: QueueDriver>(
    driver: &D,
    actor: &str,
    params: JobRunNowParams,
) -> Result<ActionOutcome> {
    change(driver, actor, Change::RunNow(params)).await
}

/// Deletes dead letters (failed jobs) for good.
pub async fn discard<D: QueueDriver>(
    driver: &D,
    actor: &str,
    params: JobDiscardParams,
) -> Result<ActionOutcome> {
    change(driver, actor, Change::Discard(params)).await
}

/// An action on jobs selected by id or by kind and queue.
enum Change {
    Retry(JobRetryParams),
    RunNow(JobRunNowParams),
    Discard(JobDiscardParams),
}

impl Change {
    fn action(&self) -> &'static str {
        match self {
            Change::Retry(_) => "retry",
            Change::RunNow(_) => "run_now",
            Change::Discard(_) => "discard",
        }
    }

    /// The ids named, and the filter (for the audit trail).
    fn selection(&self) -> (Vec<i64>, serde_json::Value) {
        let (ids, kind, queue) = match self {
            Change::Retry(p) => (&p.ids, &p.job_type, &p.queue),
            Change::RunNow(p) => (&p.ids, &p.job_type, &p.queue),
            Change::Discard(p) => (&p.ids, &p.job_type, &p.queue),
        };
        (ids.clone(), json!({ "kind": kind, "queue": queue }))
    }

    async fn apply<E: QueueExecutor>(self, ex: &mut E) -> Result<Vec<i64>> {
        match self {
            Change::Retry(p) => ex.job_retry(p).await,
            Change::RunNow(p) => ex.job_run_now(p).await,
            Change::Discard(p) => ex.job_discard(p).await,
        }
    }

    /// Why a job named was left as it was.
    fn why(action: &str, j: &JobRow) -> String {
        match (action, j.status) {
            ("retry", JobState::Failed | JobState::Cancelled) => format!(
                "another live job holds its unique key {:?}",
                j.unique_key.as_deref().unwrap_or("")
            ),
            ("retry", JobState::Queued | JobState::Retrying) => format!(
                "it is {} and will run on its own: use run-now to run it at once",
                j.status.as_str()
            ),
            ("retry", s) => format!(
                "it is {}; only failed or cancelled jobs are retried",
                s.as_str()
            ),
            ("run_now", s) => format!(
                "it is {}; only queued, scheduled or retrying jobs can be run now (retry failed \
                 or cancelled ones)",
                s.as_str()
            ),
            (_, s) => format!(
                "it is {}; only dead letters (failed jobs) are discarded",
                s.as_str()
            ),
        }
    }
}

/// Applies `c` and records it in one transaction, then explains each named job it left alone.
async fn change<D: QueueDriver>(driver: &D, actor: &str, c: Change) -> Result<ActionOutcome> {
    let action = c.action();
    let (named, detail) = c.selection();
    let mut tx = driver.begin().await?;
    let changed = c.apply(&mut tx).await?;
    let audit = record_in(&mut tx, actor, action, None, &changed, detail).await?;
    tx.commit().await?;
    let refused = explain(driver, &named, &changed, |j| Change::why(action, j)).await?;
    Ok(done(actor, action, changed, refused, Vec::new(), audit))
}

/// Cancels jobs that have not finished. A running job's handler is told at once (and its
/// completion refused); a job that works on a document cancels the document too, with the
/// document's other live jobs: nothing revives it but a reprocess.
pub async fn cancel<D: Driver>(driver: &D, actor: &str, ids: Vec<i64>) -> Result<ActionOutcome> {
    let mut tx = driver.begin().await?;
    let mut documents = Vec::new();
    for id in &ids {
        if let Some(j) = tx.job_get(*id).await?
            && j.status.is_live()
            && let Some(d) = j.document_id
            && !documents.contains(&d)
        {
            documents.push(d);
        }
    }
    let outcome = cancel_in(&mut tx, actor, ids.clone(), documents, None).await?;
    tx.commit().await?;
    announce(driver, &outcome.changed);
    let refused = explain(driver, &ids, &outcome.changed, |j| {
        format!("it has already finished ({})", j.status.as_str())
    })
    .await?;
    let ActionOutcome {
        changed,
        documents,
        audit_id,
        ..
    } = outcome;
    Ok(done(actor, "cancel", changed, refused, documents, audit_id))
}

/// Cancels a document and every live job of its pipeline. Returns `None` when the document
/// is gone; `documents` is empty when it had already finished.
pub async fn cancel_document<D: Driver>(
    driver: &D,
    actor: &str,
    id: Uuid,
) -> Result<Option<ActionOutcome>> {
    let mut tx = driver.begin().await?;
    if tx.document_get(id).await?.is_none() {
        tx.rollback().await?;
        return Ok(None);
    }
    let outcome = cancel_in(&mut tx, actor, Vec::new(), vec![id], Some(id)).await?;
    tx.commit().await?;
    announce(driver, &outcome.changed);
    let ActionOutcome {
        changed,
        documents,
        audit_id,
        ..
    } = outcome;
    Ok(Some(done(
        actor,
        "cancel",
        changed,
        Vec::new(),
        documents,
        audit_id,
    )))
}

/// Cancels `ids`, the documents, and the documents' other live jobs, and records it.
async fn cancel_in<T: Transaction + DocumentStore>(
    tx: &mut T,
    actor: &str,
    mut ids: Vec<i64>,
    documents: Vec<Uuid>,
    target: Option<Uuid>,
) -> Result<ActionOutcome> {
    for d in &documents {
        let live = tx
            .job_list(JobListParams {
                states: vec![JobState::Queued, JobState::Retrying, JobState::Running],
                document_id: Some(*d),
                limit: 1000,
                ..JobListParams::default()
            })
            .await?;
        for j in live {
            if !ids.contains(&j.id) {
                ids.push(j.id);
            }
        }
    }
    let changed = tx.job_cancel(JobCancelParams { ids, now: None }).await?;
    let documents = tx
        .document_cancel(&DocumentCancelParams {
            ids: documents,
            reason: format!("cancelled by {actor}"),
            now: None,
        })
        .await?;
    let audit = record_in(
        tx,
        actor,
        "cancel",
        target.map(|t| t.to_string()),
        &changed,
        json!({ "documents": documents }),
    )
    .await?;
    Ok(ActionOutcome {
        changed,
        refused: Vec::new(),
        documents,
        audit_id: audit,
    })
}

/// Pauses or resumes a queue (`*`: every queue).
pub async fn set_paused<D: QueueDriver>(
    driver: &D,
    actor: &str,
    queue: &str,
    paused: bool,
) -> Result<QueueRow> {
    let mut tx = driver.begin().await?;
    let row = tx
        .queue_set_paused(QueueSetPausedParams {
            name: queue.to_owned(),
            paused,
            now: None,
        })
        .await?;
    let action = if paused { "pause" } else { "resume" };
    record_in(
        &mut tx,
        actor,
        action,
        Some(queue.to_owned()),
        &[],
        json!({}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(actor, action, queue, "operator action");
    Ok(row)
}

/// Records an action done elsewhere (a cron run, a reprocess, a delete), and logs it.
pub async fn record<D: QueueDriver>(
    driver: &D,
    actor: &str,
    action: &str,
    target: Option<String>,
    job_ids: &[i64],
    detail: serde_json::Value,
) -> Result<AuditRow> {
    let mut c = driver.conn().await?;
    let row = c
        .audit_insert(AuditInsertParams {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            job_ids: job_ids.to_vec(),
            detail,
            now: None,
        })
        .await?;
    tracing::info!(actor, action, target = ?row.target, jobs = ?row.job_ids, "operator action");
    Ok(row)
}

async fn record_in<E: QueueExecutor>(
    ex: &mut E,
    actor: &str,
    action: &str,
    target: Option<String>,
    job_ids: &[i64],
    detail: serde_json::Value,
) -> Result<i64> {
    let row = ex
        .audit_insert(AuditInsertParams {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            job_ids: job_ids.to_vec(),
            detail,
            now: None,
        })
        .await?;
    Ok(row.id)
}

/// Tells every process to check its running claims of these jobs now.
pub(crate) fn announce<D: QueueDriver>(driver: &D, ids: &[i64]) {
    if ids.is_empty() {
        return;
    }
    if let Ok(json) = serde_json::to_string(ids) {
        driver
            .broadcasts()
            .publish(format!("{CLAIMS_CHANGED_TAG}{json}"));
    }
}

/// Why each job named in `named` but not in `changed` was left alone.
async fn explain<D: QueueDriver>(
    driver: &D,
    named: &[i64],
    changed: &[i64],
    why: impl Fn(&JobRow) -> String,
) -> Result<Vec<Refused>> {
    let mut refused = Vec::new();
    let mut c = driver.conn().await?;
    for id in named {
        if changed.contains(id) || refused.iter().any(|r: &Refused| r.id == *id) {
            continue;
        }
        let reason = match c.job_get(*id).await? {
            None => "no such job".to_owned(),
            Some(j) => why(&j),
        };
        refused.push(Refused { id: *id, reason });
    }
    Ok(refused)
}

fn done(
    actor: &str,
    action: &str,
    changed: Vec<i64>,
    refused: Vec<Refused>,
    documents: Vec<Uuid>,
    audit_id: i64,
) -> ActionOutcome {
    tracing::info!(
        actor,
        action,
        jobs = ?changed,
        refused = refused.len(),
        documents = ?documents,
        audit_id,
        "operator action"
    );
    ActionOutcome {
        changed,
        refused,
        documents,
        audit_id,
    }
}
