//! The job pages: the jobs list (`/ui/jobs`, maintenance jobs hidden unless asked for), the
//! dead-letter view (`/ui/jobs/failed`) and a job (`/ui/jobs/{id}`).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use docket_core::{CronSchedule, Driver, JobListParams, JobState, QueueExecutor};
use docket_queue::JobArgs;
use serde::Deserialize;
use uuid::Uuid;

use super::html::{self, Col, esc};
use super::{PAGE, Ui, UiError, UiResult, nonempty};
use crate::AppState;
use axum::http::StatusCode;

/// The kinds of the maintenance leader's own jobs: the nightly cleanup and the every-minute
/// stuck-document sweep. With the kind of any other built-in schedule (a schedule named
/// `docket.*`), they are hidden from the jobs list unless asked for: the sweep alone adds
/// 1,440 jobs a day.
const MAINTENANCE_KINDS: [&str; 2] = [
    docket_queue::maintenance::CLEANUP_KIND,
    <docket_pipeline::stuck::SweepArgs as JobArgs>::KIND,
];

/// The maintenance kinds: [`MAINTENANCE_KINDS`] and the built-in schedules' kinds.
fn maintenance_kinds(schedules: &[CronSchedule]) -> BTreeSet<String> {
    MAINTENANCE_KINDS
        .iter()
        .map(|k| (*k).to_owned())
        .chain(
            schedules
                .iter()
                .filter(|s| s.name.starts_with("docket."))
                .map(|s| s.job_type.clone()),
        )
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct JobsQuery {
    state: Option<String>,
    kind: Option<String>,
    queue: Option<String>,
    document: Option<String>,
    /// `1`: show maintenance jobs too.
    maintenance: Option<String>,
    before: Option<i64>,
}

impl JobsQuery {
    fn show_maintenance(&self) -> bool {
        matches!(
            self.maintenance.as_deref().map(str::trim),
            Some("1" | "on" | "true" | "yes")
        )
    }

    /// `/ui/jobs?…` with these filters, maintenance jobs shown or not, from `before`.
    fn url(&self, maintenance: bool, before: Option<i64>) -> String {
        let mut u = String::from("/ui/jobs?");
        for (k, v) in [
            ("state", &self.state),
            ("kind", &self.kind),
            ("queue", &self.queue),
            ("document", &self.document),
        ] {
            if let Some(v) = nonempty(v) {
                let _ = write!(u, "{k}={}&", html::url(&v));
            }
        }
        if maintenance {
            u.push_str("maintenance=1&");
        }
        if let Some(b) = before {
            let _ = write!(u, "before={b}&");
        }
        u.pop();
        u
    }
}

pub(super) async fn list<D: Driver>(
    State(s): State<AppState<D>>,
    ui: Ui,
    Query(q): Query<JobsQuery>,
) -> UiResult {
    let state = nonempty(&q.state)
        .map(|s| s.parse::<JobState>())
        .transpose()
        .map_err(|e| UiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let document = nonempty(&q.document)
        .map(|d| d.parse::<Uuid>())
        .transpose()
        .map_err(|_| {
            UiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "document must be a document id (a UUID)".into(),
            )
        })?;
    let kind = nonempty(&q.kind);
    let queue = nonempty(&q.queue);
    let show_maintenance = q.show_maintenance();
    let mut c = s.pipeline.driver().conn().await?;
    let stats = c.job_stats().await?;
    let maintenance = maintenance_kinds(&c.cron_schedule_list().await?);
    // A kind asked for by name is shown, maintenance or not; otherwise, unless maintenance
    // jobs are asked for, every kind there is but theirs.
    let hide = kind.is_none() && !show_maintenance;
    let job_types: Option<Vec<String>> = match &kind {
        Some(k) => Some(vec![k.clone()]),
        None if !hide => Some(Vec::new()),
        None => {
            let others: BTreeSet<&str> = stats
                .iter()
                .map(|r| r.job_type.as_str())
                .filter(|k| !maintenance.contains(*k))
                .collect();
            // None: there are only maintenance jobs (or none), so nothing to list.
            (!others.is_empty()).then(|| others.into_iter().map(str::to_owned).collect())
        }
    };
    let list = match job_types {
        None => Vec::new(),
        Some(job_types) => {
            c.job_list(JobListParams {
                states: state.into_iter().collect(),
                job_types,
                queue: queue.clone(),
                document_id: document,
                before_id: q.before,
                limit: PAGE,
            })
            .await?
        }
    };
    drop(c);
    // How many the filters would show but the maintenance switch hides.
    let hidden: i64 = if hide && document.is_none() {
        stats
            .iter()
            .filter(|r| maintenance.contains(&r.job_type))
            .filter(|r| state.is_none_or(|st| r.status == st))
            .filter(|r| queue.as_deref().is_none_or(|qn| r.queue == qn))
            .map(|r| r.count)
            .sum()
    } else {
        0
    };
    let kinds: BTreeSet<&str> = stats.iter().map(|r| r.job_type.as_str()).collect();
    let queues: BTreeSet<&str> = stats.iter().map(|r| r.queue.as_str()).collect();

    let mut b = String::from("<h1>Jobs</h1>");
    b.push_str("<form class=\"filters\" method=\"get\" action=\"/ui/jobs\">");
    b.push_str(&html::select(
        "state",
        "State",
        JobState::ALL.iter().map(|s| s.as_str()),
        q.state.as_deref(),
    ));
    b.push_str(&html::select(
        "kind",
        "Kind",
        kinds.into_iter(),
        q.kind.as_deref(),
    ));
    b.push_str(&html::select(
        "queue",
        "Queue",
        queues.into_iter(),
        q.queue.as_deref(),
    ));
    let _ = write!(
        b,
        "<div class=\"field\"><label for=\"f-document\">Document id</label><input id=\"f-document\" name=\"document\" value=\"{}\" placeholder=\"any\" spellcheck=\"false\"></div>",
        esc(q.document.as_deref().unwrap_or(""))
    );
    let _ = write!(
        b,
        "<div class=\"field check\"><input id=\"f-maintenance\" name=\"maintenance\" type=\"checkbox\" value=\"1\"{}><label for=\"f-maintenance\">Show maintenance jobs</label></div>",
        if show_maintenance { " checked" } else { "" }
    );
    b.push_str("<div class=\"field actions\"><button type=\"submit\">Filter</button> <a href=\"/ui/jobs\">Clear</a></div></form>");
    b.push_str("<section class=\"card\" id=\"job-list\" data-live>");
    let names = maintenance
        .iter()
        .map(|k| format!("<code>{}</code>", esc(k)))
        .collect::<Vec<_>>()
        .join(", ");
    if hidden > 0 {
        let _ = write!(
            b,
            "<p class=\"note\" id=\"maintenance-note\">{} hidden: the maintenance leader's own ({names}). <a href=\"{}\">Show them</a></p>",
            esc(&html::count(
                usize::try_from(hidden).unwrap_or(0),
                "maintenance job",
                "maintenance jobs"
            )),
            esc(&q.url(true, None)),
        );
    } else if show_maintenance && kind.is_none() {
        let _ = write!(
            b,
            "<p class=\"note\" id=\"maintenance-note\">Maintenance jobs ({names}) are shown. <a href=\"{}\">Hide them</a></p>",
            esc(&q.url(false, None)),
        );
    }
    b.push_str(&job_table(&list, "No jobs match these filters.", false));
    if list.len() as i64 == PAGE
        && let Some(last) = list.last()
    {
        let _ = write!(
            b,
            "<p><a href=\"{}\">Older jobs →</a></p>",
            esc(&q.url(show_maintenance, Some(last.id)))
        );
    }
    b.push_str("</section>");
    Ok(ui.page("Jobs", "jobs", b))
}

/// Jobs as a table (a card per job on a phone, its error readable under it), with a
/// checkbox per row when `select`.
fn job_table(jobs: &[docket_core::JobRow], empty: &str, select: bool) -> String {
    if jobs.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(empty));
    }
    let now = Utc::now();
    let mut cols = Vec::new();
    if select {
        cols.push(Col::Hidden("select"));
    }
    cols.extend([
        Col::Num("id"),
        Col::Text("kind"),
        Col::Text("queue"),
        Col::Text("state"),
        Col::Num("attempts"),
        Col::Text("created"),
        Col::Text("last error"),
    ]);
    let mut b = html::table_start("jobs stack", &cols);
    for j in jobs {
        let _ = write!(b, "<tr data-job=\"{}\">", j.id);
        if select {
            b.push_str(&html::td(
                "select",
                "select",
                &format!(
                    "<input type=\"checkbox\" name=\"id\" value=\"{id}\" aria-label=\"select job {id}\">",
                    id = j.id
                ),
            ));
        }
        let _ = write!(
            b,
            "{}{}{}{}{}{}{}</tr>",
            html::td(
                "id",
                "num",
                &format!("<a href=\"/ui/jobs/{id}\">{id}</a>", id = j.id)
            ),
            html::td("kind", "", &esc(&j.job_type)),
            html::td("queue", "", &esc(&j.queue)),
            html::td("state", "", &html::state_badge(j.status.as_str())),
            html::td(
                "attempts",
                "num",
                &format!("{}/{}", j.attempts, j.max_attempts)
            ),
            html::td("created", "", &html::ago(now, j.created_at)),
            html::td(
                "last error",
                "error-cell",
                &esc(&html::truncate(j.last_error.as_deref().unwrap_or(""), 160))
            ),
        );
    }
    b.push_str(html::TABLE_END);
    b
}

pub(super) async fn failed<D: Driver>(
    State(s): State<AppState<D>>,
    ui: Ui,
    Query(q): Query<JobsQuery>,
) -> UiResult {
    let mut c = s.pipeline.driver().conn().await?;
    let list = c
        .job_list(JobListParams {
            states: vec![JobState::Failed],
            job_types: nonempty(&q.kind).into_iter().collect(),
            queue: nonempty(&q.queue),
            document_id: None,
            before_id: q.before,
            limit: 200,
        })
        .await?;
    drop(c);
    let mut b = String::from(
        "<h1>Dead letters</h1><p class=\"lede\">Jobs that failed for good: a permanent error, or every attempt used. They run again only when retried.</p>",
    );
    b.push_str("<section class=\"card\" id=\"dead\" data-live>");
    if list.is_empty() {
        b.push_str("<p class=\"empty\">No failed jobs. Nothing to repair.</p>");
    } else {
        // Each button asks for a confirmation page first (the server's, see `confirm`).
        b.push_str("<form method=\"post\" action=\"/ui/jobs/retry\" id=\"bulk\">");
        b.push_str("<div class=\"toolbar\"><button type=\"submit\" name=\"all\" value=\"\" id=\"retry-selected\">Retry selected</button> <button type=\"submit\" name=\"all\" value=\"1\" class=\"secondary\" id=\"retry-all\">Retry every failed job</button> <button type=\"submit\" name=\"all\" value=\"\" class=\"danger\" id=\"discard-selected\" formaction=\"/ui/jobs/discard\">Discard selected</button></div>");
        b.push_str(&job_table(&list, "", true));
        b.push_str("</form>");
    }
    b.push_str("</section>");
    Ok(ui.page("Dead letters", "failed", b))
}

pub(super) async fn job<D: Driver>(
    State(s): State<AppState<D>>,
    ui: Ui,
    Path(id): Path<i64>,
) -> UiResult {
    let mut c = s.pipeline.driver().conn().await?;
    let j = c
        .job_get(id)
        .await?
        .ok_or_else(|| UiError(StatusCode::NOT_FOUND, format!("job {id} not found")))?;
    let attempts = c.job_attempt_list(id).await?;
    drop(c);
    let now = Utc::now();
    let mut b = format!("<h1>Job {id} <small>{}</small></h1>", esc(&j.job_type));
    b.push_str("<div id=\"job-state\" data-live>");
    b.push_str("<div class=\"toolbar\">");
    if matches!(j.status, JobState::Failed | JobState::Cancelled) {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/jobs/{id}/retry\"><button type=\"submit\">Retry</button></form>"
        );
    }
    if matches!(j.status, JobState::Queued | JobState::Retrying) {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/jobs/{id}/run-now\"><button type=\"submit\">Run now</button></form>"
        );
    }
    if j.status.is_live() {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/jobs/{id}/cancel\" data-confirm=\"Cancel job {id}?\"><button type=\"submit\" class=\"danger\">Cancel</button></form>"
        );
    }
    if j.status == JobState::Failed {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/jobs/{id}/discard\" data-confirm=\"Discard job {id} for good? Its attempts go with it.\"><button type=\"submit\" class=\"danger\">Discard</button></form>"
        );
    }
    b.push_str("</div>");
    b.push_str("<dl class=\"facts card\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(b, "<div><dt>{k}</dt><dd>{v}</dd></div>");
    };
    fact("state", html::state_badge(j.status.as_str()));
    fact(
        "queue",
        format!(
            "<a href=\"/ui/jobs?queue={}\">{}</a>",
            html::url(&j.queue),
            esc(&j.queue)
        ),
    );
    fact("attempts", format!("{} of {}", j.attempts, j.max_attempts));
    fact("priority", j.priority.to_string());
    fact(
        "document",
        j.document_id.map_or_else(
            || "—".to_owned(),
            |d| format!("<a href=\"/ui/documents/{d}\"><code>{d}</code></a>"),
        ),
    );
    fact(
        "worker",
        j.locked_by
            .as_deref()
            .map_or_else(|| "—".to_owned(), |w| format!("<code>{}</code>", esc(w))),
    );
    if let Some(k) = &j.unique_key {
        fact("unique key", format!("<code>{}</code>", esc(k)));
    }
    if let Some(e) = &j.last_error {
        fact(
            "last error",
            format!("<span class=\"error\">{}</span>", esc(e)),
        );
    }
    b.push_str("</dl>");

    // Timeline.
    let mut events: Vec<(DateTime<Utc>, String)> = vec![(j.created_at, "enqueued".into())];
    for a in &attempts {
        events.push((
            a.started_at,
            format!(
                "attempt {} started on <code>{}</code>",
                a.attempt,
                esc(&a.worker_id)
            ),
        ));
        events.push((
            a.finished_at,
            format!(
                "attempt {} {} after {}",
                a.attempt,
                a.outcome.as_str(),
                html::millis(a.duration_ms)
            ),
        ));
    }
    if j.status.is_live() && j.run_at > now {
        events.push((j.run_at, "due".into()));
    }
    if let Some(t) = j.completed_at {
        events.push((t, format!("finished: {}", j.status.as_str())));
    }
    events.sort_by_key(|(t, _)| *t);
    b.push_str("<section class=\"card\"><h2>Timeline</h2><ol class=\"timeline\">");
    for (t, what) in &events {
        let _ = write!(b, "<li>{} {what}</li>", html::time(*t));
    }
    b.push_str("</ol></section>");

    b.push_str("<section class=\"card\"><h2>Attempts</h2>");
    if attempts.is_empty() {
        b.push_str("<p class=\"empty\">No attempt has finished yet.</p>");
    } else {
        b.push_str(&html::table_start(
            "stack",
            &[
                Col::Num("#"),
                Col::Text("worker"),
                Col::Text("started"),
                Col::Num("duration"),
                Col::Text("outcome"),
                Col::Text("error"),
            ],
        ));
        for a in &attempts {
            let _ = write!(
                b,
                "<tr>{}{}{}{}{}{}</tr>",
                html::td("#", "num", &a.attempt.to_string()),
                html::td("worker", "", &format!("<code>{}</code>", esc(&a.worker_id))),
                html::td("started", "", &html::time(a.started_at)),
                html::td("duration", "num", &html::millis(a.duration_ms)),
                html::td("outcome", "", a.outcome.as_str()),
                html::td(
                    "error",
                    "error-cell",
                    &esc(a.error.as_deref().unwrap_or(""))
                ),
            );
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section></div>");
    let payload = serde_json::to_string_pretty(&j.payload).unwrap_or_default();
    let _ = write!(
        b,
        "<section class=\"card\"><h2>Payload</h2><pre>{}</pre></section>",
        esc(&payload)
    );
    Ok(ui.page(&format!("Job {id}"), "jobs", b))
}
