//! The dashboard's operator actions: retry, run now, discard, cancel (jobs and documents),
//! reprocess, delete, pause and resume, run a cron schedule now. Each goes through the same
//! function as the API's (`docket_queue::admin`, the pipeline, the scheduler), so it is recorded
//! in the audit trail under `dashboard:<key name>` (`dashboard` on an open server), and answers
//! with a redirect back and a message saying what it did, with counts ([`super::flash`]).
//!
//! The bulk ones (retry or discard dead letters) and pausing a queue change nothing until
//! confirmed ([`super::confirm`]). An action that could not be done at all (no such job, a job
//! in the wrong state for it) answers with an error page saying why.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use docket_core::{
    DocumentStore, Driver, JobDiscardParams, JobListParams, JobRetryParams, JobRunNowParams,
    JobState, QueueExecutor,
};
use docket_queue::admin::{self, ActionOutcome, Refused};
use docket_queue::maintenance::ManualRun;
use serde_json::json;
use uuid::Uuid;

use super::confirm::{self, Ask};
use super::flash::{self, Flash};
use super::html::{count, esc};
use super::{Ui, UiError, UiResult};
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

/// `; 2 jobs left as they were (job 7: it is running; job 9: no such job)`, or nothing.
fn left_alone(refused: &[Refused]) -> String {
    if refused.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "; {} left as {} (",
        count(refused.len(), "job", "jobs"),
        if refused.len() == 1 {
            "it was"
        } else {
            "they were"
        }
    );
    for (i, r) in refused.iter().take(3).enumerate() {
        if i > 0 {
            s.push_str("; ");
        }
        let _ = write!(s, "job {}: {}", r.id, r.reason);
    }
    if refused.len() > 3 {
        let _ = write!(s, "; and {} more", refused.len() - 3);
    }
    s.push(')');
    s
}

/// A form's `back` field when it names a dashboard page (`/` or `/ui/...`, nothing that
/// leaves the site); otherwise `default`.
fn back_to(body: &[u8], default: &str) -> String {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "back")
        .map(|(_, v)| v.into_owned())
        .filter(|v| {
            (v == "/" || v.starts_with("/ui/"))
                && v.len() <= 512
                && v.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        })
        .unwrap_or_else(|| default.to_owned())
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
    Ok(flash::redirect(
        &format!("/ui/jobs/{id}"),
        Flash::done(format!(
            "Job {id} retried: queued again, due now, with a fresh grant of attempts."
        )),
    ))
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
    Ok(flash::redirect(
        &format!("/ui/jobs/{id}"),
        Flash::done(format!(
            "Job {id} is due now: the next free worker of its queue runs it."
        )),
    ))
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
    Ok(flash::redirect(
        "/ui/jobs/failed",
        Flash::done(format!("Job {id} discarded, with its attempts.")),
    ))
}

pub(super) async fn cancel_one<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> UiResult {
    let o = s.pipeline.cancel_jobs(&who(&actor), vec![id]).await?;
    refused(id, &o)?;
    let mut msg = format!("Job {id} cancelled");
    if !o.documents.is_empty() {
        msg.push_str(", and its document with it");
        let others = o.changed.iter().filter(|j| **j != id).count();
        if others > 0 {
            let _ = write!(msg, " ({} more of its jobs)", count(others, "job", "jobs"));
        }
    }
    msg.push('.');
    Ok(flash::redirect(&format!("/ui/jobs/{id}"), Flash::done(msg)))
}

/// A bulk form: the ids ticked (`id=..&id=..`), whether `all=1` was asked.
struct Bulk {
    ids: Vec<i64>,
    all: bool,
}

impl Bulk {
    fn parse(body: &[u8]) -> Self {
        let mut ids = Vec::new();
        let mut all = false;
        for (k, v) in url::form_urlencoded::parse(body) {
            match &*k {
                "id" => ids.extend(v.parse::<i64>().ok()),
                "all" => all = v == "1",
                _ => {}
            }
        }
        Self { ids, all }
    }

    /// The form again, for the confirmation page.
    fn fields(&self) -> Vec<(String, String)> {
        if self.all {
            vec![("all".into(), "1".into())]
        } else {
            self.ids
                .iter()
                .map(|id| ("id".into(), id.to_string()))
                .collect()
        }
    }
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

/// `job 12, job 15 and 1 more`, linked.
fn job_links(ids: &[i64]) -> String {
    let mut s = ids
        .iter()
        .take(20)
        .map(|id| format!("<a href=\"/ui/jobs/{id}\">{id}</a>"))
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > 20 {
        let _ = write!(s, " and {} more", ids.len() - 20);
    }
    s
}

/// Retry or discard, the two bulk actions of the dead-letter view.
#[derive(Clone, Copy, PartialEq)]
enum BulkVerb {
    Retry,
    Discard,
}

impl BulkVerb {
    fn ask(self, form: &Bulk, n: usize) -> Ask {
        let jobs = count(n, "job", "jobs");
        let (title, detail) = match (self, form.all) {
            (BulkVerb::Retry, true) => (
                "Retry every failed job?".to_owned(),
                format!(
                    "This retries all <strong>{}</strong> in the dead-letter view (as many as have failed for good when you confirm): each is queued again, due now, with a fresh grant of attempts. Cancelled jobs are left alone.",
                    esc(&jobs)
                ),
            ),
            (BulkVerb::Retry, false) => (
                format!("Retry {} selected?", jobs),
                format!(
                    "Jobs {} are queued again, due now, with a fresh grant of attempts.",
                    job_links(&form.ids)
                ),
            ),
            (BulkVerb::Discard, true) => (
                "Discard every failed job for good?".to_owned(),
                format!(
                    "This deletes all <strong>{}</strong> in the dead-letter view, with their attempts. It cannot be undone.",
                    esc(&jobs)
                ),
            ),
            (BulkVerb::Discard, false) => (
                format!("Discard {} for good?", jobs),
                format!(
                    "Jobs {} are deleted, with their attempts. It cannot be undone.",
                    job_links(&form.ids)
                ),
            ),
        };
        let (path, button) = match self {
            BulkVerb::Retry => ("/ui/jobs/retry", format!("Retry {jobs}")),
            BulkVerb::Discard => ("/ui/jobs/discard", format!("Discard {jobs}")),
        };
        Ask {
            title,
            detail,
            action: path.to_owned(),
            fields: form.fields(),
            button,
            danger: self == BulkVerb::Discard,
            back: "/ui/jobs/failed".to_owned(),
            nav: "failed",
        }
    }

    fn past(self) -> &'static str {
        match self {
            BulkVerb::Retry => "retried",
            BulkVerb::Discard => "discarded",
        }
    }
}

/// `POST /ui/jobs/retry` and `/ui/jobs/discard`: the selected rows (`id=..&id=..`) or every
/// dead letter (`all=1`; a retry with no ids would also take the cancelled ones), once
/// confirmed (`confirm=yes`); without it, the confirmation page.
async fn bulk<D: Driver>(
    s: &AppState<D>,
    actor: &Option<Extension<Actor>>,
    ui: &Ui,
    verb: BulkVerb,
    body: &[u8],
) -> UiResult {
    let form = Bulk::parse(body);
    let ids = if form.all {
        every_failed(s).await?
    } else {
        form.ids.clone()
    };
    if ids.is_empty() {
        let msg = if form.all {
            Flash::done(format!("No failed jobs: nothing {}.", verb.past()))
        } else {
            Flash::warn(format!(
                "No jobs selected: nothing {}. Tick the jobs first.",
                verb.past()
            ))
        };
        return Ok(flash::redirect("/ui/jobs/failed", msg));
    }
    if !confirm::given(body) {
        return Ok(verb.ask(&form, ids.len()).page(ui));
    }
    let driver = s.pipeline.driver();
    let o = match verb {
        BulkVerb::Retry => {
            let params = JobRetryParams {
                ids,
                ..JobRetryParams::default()
            };
            admin::retry(driver, &who(actor), params).await?
        }
        BulkVerb::Discard => {
            let params = JobDiscardParams {
                ids,
                ..JobDiscardParams::default()
            };
            admin::discard(driver, &who(actor), params).await?
        }
    };
    let msg = format!(
        "{} {}{}.",
        count(o.changed.len(), "job", "jobs"),
        verb.past(),
        left_alone(&o.refused)
    );
    let msg = if o.refused.is_empty() {
        Flash::done(msg)
    } else {
        Flash::warn(msg)
    };
    Ok(flash::redirect("/ui/jobs/failed", msg))
}

pub(super) async fn retry_many<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    ui: Ui,
    body: axum::body::Bytes,
) -> UiResult {
    bulk(&s, &actor, &ui, BulkVerb::Retry, &body).await
}

pub(super) async fn discard_many<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    ui: Ui,
    body: axum::body::Bytes,
) -> UiResult {
    bulk(&s, &actor, &ui, BulkVerb::Discard, &body).await
}

/// A document's name for a message.
fn doc_name(d: &docket_core::DocumentRow) -> String {
    d.filename
        .clone()
        .unwrap_or_else(|| format!("Document {}", d.id))
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
    Ok(flash::redirect(
        &format!("/ui/documents/{id}"),
        Flash::done(format!(
            "{} is being processed again (generation {}); search keeps the current chunks until it completes.",
            doc_name(&doc),
            doc.generation
        )),
    ))
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
        Some(o) => Ok(flash::redirect(
            &format!("/ui/documents/{id}"),
            Flash::done(format!(
                "Document cancelled, with {} of its; it stays cancelled until reprocessed.",
                count(o.changed.len(), "live job", "live jobs")
            )),
        )),
    }
}

pub(super) async fn delete<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<Uuid>,
) -> UiResult {
    let name = {
        let mut c = s.pipeline.driver().conn().await?;
        c.document_get(id).await?.map(|d| doc_name(&d))
    };
    let msg = if s.pipeline.delete(id).await? {
        admin::record(
            s.pipeline.driver(),
            &who(&actor),
            "delete",
            Some(id.to_string()),
            &[],
            json!({}),
        )
        .await?;
        Flash::done(format!(
            "{} deleted, with its chunks and its bytes.",
            name.unwrap_or_else(|| format!("Document {id}"))
        ))
    } else {
        Flash::warn(format!("Document {id} was already gone: nothing deleted."))
    };
    Ok(flash::redirect("/ui/documents", msg))
}

/// `queue default`, or `every queue` for the `*` switch.
fn queue_label(name: &str) -> String {
    if name == docket_core::ALL_QUEUES {
        "every queue".to_owned()
    } else {
        format!("queue {name}")
    }
}

/// Pause (once confirmed) or resume `name`, then back to the form's `back` page (the queues
/// page by default).
async fn set_paused<D: Driver>(
    s: &AppState<D>,
    actor: &Option<Extension<Actor>>,
    ui: &Ui,
    name: String,
    paused: bool,
    body: &[u8],
) -> UiResult {
    if name.is_empty() || name.len() > 128 {
        return Err(UiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a queue name is 1 to 128 characters".into(),
        ));
    }
    let back = back_to(body, "/ui/queues");
    let label = queue_label(&name);
    if paused && !confirm::given(body) {
        let waiting: i64 = {
            let mut c = s.pipeline.driver().conn().await?;
            c.job_stats()
                .await?
                .iter()
                .filter(|r| {
                    (name == docket_core::ALL_QUEUES || r.queue == name)
                        && matches!(r.status, JobState::Queued | JobState::Retrying)
                })
                .map(|r| r.count)
                .sum()
        };
        let u = super::html::url(&name);
        return Ok(Ask {
            title: format!("Pause {label}?"),
            detail: format!(
                "No new job starts in {} until it is resumed; running jobs finish. {} waiting there now, and whatever is enqueued meanwhile (uploaded documents too), will wait.",
                esc(&label),
                esc(&count(usize::try_from(waiting).unwrap_or(0), "job", "jobs")),
            ),
            action: format!("/ui/queues/{u}/pause"),
            fields: vec![("back".into(), back.clone())],
            button: format!("Pause {label}"),
            danger: true,
            back,
            nav: "queues",
        }
        .page(ui));
    }
    admin::set_paused(s.pipeline.driver(), &who(actor), &name, paused).await?;
    let msg = if paused {
        format!(
            "{} paused: no new job starts in it until it is resumed.",
            capital(&label)
        )
    } else {
        format!("{} resumed: its jobs start again.", capital(&label))
    };
    Ok(flash::redirect(&back, Flash::done(msg)))
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub(super) async fn pause<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    ui: Ui,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> UiResult {
    set_paused(&s, &actor, &ui, name, true, &body).await
}

pub(super) async fn resume<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    ui: Ui,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> UiResult {
    set_paused(&s, &actor, &ui, name, false, &body).await
}

/// `POST /ui/cron/{name}/run`: a run of the schedule now, as `docket cron run` does; refused
/// while one is live.
pub(super) async fn cron_run<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(name): Path<String>,
) -> UiResult {
    let p = &s.pipeline;
    let scheduler = docket_queue::maintenance::Scheduler::new(
        p.driver().clone(),
        Default::default(),
        std::sync::Arc::new(docket_core::SystemClock),
    )?;
    // The same rule as the API's and the CLI's: refused while a run is live.
    match scheduler.run_now(&name).await? {
        ManualRun::Enqueued(run) => {
            let jobs: Vec<i64> = run.job_id.into_iter().collect();
            let detail = json!({ "run": run.id });
            admin::record(
                p.driver(),
                &who(&actor),
                "cron_run",
                Some(name.clone()),
                &jobs,
                detail,
            )
            .await?;
            let job = run
                .job_id
                .map_or_else(String::new, |j| format!(": job {j} queued"));
            Ok(flash::redirect(
                "/ui/queues",
                Flash::done(format!("Schedule {name} run now{job}.")),
            ))
        }
        ManualRun::Live => Err(UiError(
            StatusCode::CONFLICT,
            format!("a run of {name} is already live"),
        )),
        ManualRun::NoSuchSchedule => Err(UiError(
            StatusCode::NOT_FOUND,
            format!("no cron schedule named {name:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_names_only_dashboard_pages() {
        for (body, want) in [
            (&b"back=%2Fui%2Fdocuments"[..], "/ui/documents"),
            (b"back=%2F", "/"),
            (
                b"back=%2Fui%2Fjobs%3Fstate%3Dfailed",
                "/ui/jobs?state=failed",
            ),
            (b"", "/ui/queues"),
            (b"back=%2F%2Fevil.example%2Fui%2F", "/ui/queues"),
            (b"back=https%3A%2F%2Fevil.example%2F", "/ui/queues"),
            (b"back=%2Fui%2F%5C%5Cevil.example", "/ui/queues"),
            (b"back=%2Fui%2Fa%0D%0ALocation%3A+x", "/ui/queues"),
            (b"back=%2Fv1%2Fqueues", "/ui/queues"),
        ] {
            assert_eq!(
                back_to(body, "/ui/queues"),
                want,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn left_alone_names_a_few_and_counts_the_rest() {
        assert_eq!(left_alone(&[]), "");
        let r = |id| Refused {
            id,
            reason: "it is running".into(),
        };
        assert_eq!(
            left_alone(&[r(7)]),
            "; 1 job left as it was (job 7: it is running)"
        );
        assert_eq!(
            left_alone(&[r(1), r(2), r(3), r(4), r(5)]),
            "; 5 jobs left as they were (job 1: it is running; job 2: it is running; job 3: it is running; and 2 more)"
        );
    }
}
