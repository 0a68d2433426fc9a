//! The operator dashboard: server-rendered HTML pages over the same data as the JSON API,
//! with a few lines of hand-written JavaScript that refresh the live parts of a page as soon as
//! a document's progress event arrives (server-sent events, `/ui/events`) and every few
//! seconds besides (job and queue changes have no event). No build step, no CDN: the
//! stylesheet and the script are compiled into the binary.
//!
//! | page | |
//! |---|---|
//! | `/` | overview: jobs by state and kind, throughput, queues, workers, leader |
//! | `/ui/jobs` | jobs, filtered by state, kind, queue, document |
//! | `/ui/jobs/failed` | the dead-letter view, with bulk retry and discard |
//! | `/ui/jobs/stuck` | running jobs whose worker's lease lapsed: worker, last heartbeat, running time; cancel |
//! | `/ui/jobs/{id}` | a job: payload, attempts, timeline; retry, run now, cancel, discard |
//! | `/ui/documents` | documents with live progress; upload |
//! | `/ui/documents/{id}` | a document and its chunks; reprocess, cancel, delete |
//! | `/ui/queues` | queues (pause, resume) and cron schedules (run now, history) |
//! | `/ui/audit` | the audit trail: every operator action, who, when, which jobs |
//!
//! The actions (in [`actions`]) share the API's functions, so every one of them lands in the
//! audit trail.
//!
//! Access is checked in [`crate::auth`] (a session cookie from `/ui/login`). Forms that change
//! state are POSTs; cross-site forgery is refused by the session cookie's `SameSite=Strict`
//! and, for every POST, by [`same_origin`] (the browser's `Sec-Fetch-Site` and `Origin`
//! headers must not name another site), so the forms carry no separate token.

mod actions;
mod audit;
mod embedder;
mod html;
mod stuck;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use docket_core::{
    ChunkListParams, DocumentListParams, DocumentStatus, DocumentStore, Driver, JobListParams,
    JobState, QueueExecutor, WorkerListParams,
};
use docket_pipeline::NewDocument;
use docket_queue::maintenance::ManualRun;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{DashboardUser, LoginRequired};
use crate::{AppState, UPLOAD_PRIORITY};
use html::{Col, Page, esc};

pub(crate) fn routes<D: Driver>() -> Router<AppState<D>> {
    Router::new()
        .route("/", get(overview::<D>))
        .route("/ui/login", get(login_form))
        .route("/ui/assets/app.css", get(css))
        .route("/ui/assets/app.js", get(js))
        .route("/ui/jobs", get(jobs::<D>))
        .route("/ui/jobs/failed", get(failed::<D>))
        .route("/ui/jobs/stuck", get(stuck::stuck::<D>))
        .route("/ui/jobs/retry", post(actions::retry_many::<D>))
        .route("/ui/jobs/discard", post(actions::discard_many::<D>))
        .route("/ui/jobs/{id}", get(job::<D>))
        .route("/ui/jobs/{id}/retry", post(actions::retry_one::<D>))
        .route("/ui/jobs/{id}/run-now", post(actions::run_now_one::<D>))
        .route("/ui/jobs/{id}/discard", post(actions::discard_one::<D>))
        .route("/ui/jobs/{id}/cancel", post(actions::cancel_one::<D>))
        .route("/ui/documents", get(documents::<D>).post(upload::<D>))
        .route("/ui/documents/{id}", get(document::<D>))
        .route(
            "/ui/documents/{id}/reprocess",
            post(actions::reprocess::<D>),
        )
        .route(
            "/ui/documents/{id}/cancel",
            post(actions::cancel_document::<D>),
        )
        .route("/ui/documents/{id}/delete", post(actions::delete::<D>))
        .route("/ui/queues", get(queues::<D>))
        .route("/ui/queues/{name}/pause", post(actions::pause::<D>))
        .route("/ui/queues/{name}/resume", post(actions::resume::<D>))
        .route("/ui/audit", get(audit::page::<D>))
        .route("/ui/reindex", post(embedder::reindex::<D>))
        .route("/ui/cron/{name}/run", post(cron_run::<D>))
        // Every document's progress, as `GET /v1/events` streams it, for the pages' script
        // (behind the dashboard's session rather than a bearer key).
        .route("/ui/events", get(crate::all_events::<D>))
        .route_layer(axum::middleware::from_fn(refuse_cross_site))
}

/// Whether a request comes from the dashboard's own pages (or from no page at all, like a
/// test client): `Sec-Fetch-Site` is `same-origin` or `none` when the browser sends it, and
/// `Origin`, when sent, names the host the request was sent to.
pub(crate) fn same_origin(req: &Request) -> bool {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
            let origin_host = origin.split_once("://").map(|(_, rest)| rest);
            host.is_some() && origin_host == host
        }
    }
}

async fn refuse_cross_site(req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::POST && !same_origin(&req) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    next.run(req).await
}

type User = Option<Extension<DashboardUser>>;

fn user_name(u: &User) -> Option<&str> {
    u.as_ref().map(|Extension(u)| u.key_name.as_str())
}

/// A page-level error: shown as a page, not JSON.
struct UiError(StatusCode, String);

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let body = Page::new("Error", "")
            .body(format!(
                "<h1>{}</h1><p class=\"error\">{}</p><p><a href=\"/\">Back to the overview</a></p>",
                self.0.as_u16(),
                esc(&self.1)
            ))
            .render(None);
        (self.0, Html(body)).into_response()
    }
}

impl From<docket_core::Error> for UiError {
    fn from(e: docket_core::Error) -> Self {
        let crate::ApiError(s, m) = e.into();
        UiError(s, m)
    }
}

impl From<docket_pipeline::PipelineError> for UiError {
    fn from(e: docket_pipeline::PipelineError) -> Self {
        let crate::ApiError(s, m) = e.into();
        UiError(s, m)
    }
}

type UiResult = Result<Response, UiError>;

fn see_other(to: &str) -> Response {
    let loc = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, loc)]).into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("assets/app.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("assets/app.js"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    error: Option<String>,
}

async fn login_form(
    login: Option<Extension<LoginRequired>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    if login.is_none() {
        // No keys configured: the dashboard is open.
        return see_other("/");
    }
    let error = match q.error.as_deref() {
        Some("scope") => "<p class=\"error\" role=\"alert\">That key lacks the admin scope.</p>",
        Some(_) => "<p class=\"error\" role=\"alert\">That key is not valid.</p>",
        None => "",
    };
    let body = format!(
        r#"<section class="login card">
<h1>docket</h1>
<p>Log in with an API key that has the <code>admin</code> scope.</p>
{error}
<form method="post" action="/ui/login">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
</section>"#
    );
    Html(Page::new("Log in", "").body(body).bare().render(None)).into_response()
}

// ---------------------------------------------------------------------------------------------
// Overview.

async fn overview<D: Driver>(State(s): State<AppState<D>>, user: User) -> UiResult {
    let mut c = s.pipeline.driver().conn().await?;
    let stats = c.job_stats().await?;
    let activity = c
        .job_activity(docket_core::JobActivityParams::default())
        .await?;
    let queues = c.queue_list().await?;
    let workers = c.worker_list(WorkerListParams::default()).await?;
    let leader = c.leader_get(None).await?;
    let now = Utc::now();
    let throughput = c
        .job_throughput(docket_core::JobThroughputParams {
            since: now - chrono::Duration::minutes(59),
            now: Some(now),
        })
        .await?;
    drop(c);

    let mut b = String::new();
    b.push_str("<h1>Overview</h1>");

    // Jobs by kind and state.
    let mut by_kind: BTreeMap<&str, HashMap<JobState, i64>> = BTreeMap::new();
    let mut totals: HashMap<JobState, i64> = HashMap::new();
    for r in &stats {
        *by_kind
            .entry(r.job_type.as_str())
            .or_default()
            .entry(r.status)
            .or_default() += r.count;
        *totals.entry(r.status).or_default() += r.count;
    }
    b.push_str("<section id=\"totals\" data-live class=\"tiles\" aria-label=\"Jobs by state\">");
    for st in JobState::ALL {
        let n = totals.get(&st).copied().unwrap_or(0);
        let _ = write!(
            b,
            "<a class=\"tile state-{s}\" href=\"/ui/jobs?state={s}\"><span class=\"n\">{n}</span><span>{s}</span></a>",
            s = st.as_str()
        );
    }
    b.push_str("</section>");

    b.push_str(&embedder::card(&s.pipeline).await);

    b.push_str("<section class=\"card\" id=\"kinds\" data-live><h2>Jobs by kind</h2>");
    if by_kind.is_empty() {
        b.push_str("<p class=\"empty\">No jobs yet. Upload a document to start one.</p>");
    } else {
        let mut cols = vec![Col::Text("kind")];
        cols.extend(JobState::ALL.iter().map(|st| Col::Num(st.as_str())));
        b.push_str(&html::table_start("", &cols));
        for (kind, counts) in &by_kind {
            let _ = write!(
                b,
                "<tr><th scope=\"row\"><a href=\"/ui/jobs?kind={}\">{}</a></th>",
                html::url(kind),
                esc(kind)
            );
            for st in JobState::ALL {
                let n = counts.get(&st).copied().unwrap_or(0);
                if n == 0 {
                    b.push_str("<td class=\"num muted\">0</td>");
                } else {
                    let _ = write!(
                        b,
                        "<td class=\"num\"><a href=\"/ui/jobs?kind={}&amp;state={}\">{n}</a></td>",
                        html::url(kind),
                        st.as_str()
                    );
                }
            }
            b.push_str("</tr>");
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section>");

    // Throughput per minute over the last hour.
    b.push_str(
        "<section class=\"card\" id=\"throughput\" data-live><h2>Throughput, last hour</h2>",
    );
    b.push_str(&html::throughput_chart(&throughput, now));
    b.push_str("</section>");

    // Queues.
    b.push_str("<section class=\"card\" id=\"queues\" data-live><h2>Queues</h2>");
    b.push_str(&queue_table(&stats, &activity, &queues, now, false));
    b.push_str("</section>");

    // Workers and leader.
    b.push_str("<section class=\"card\" id=\"workers\" data-live><h2>Workers</h2>");
    match &leader {
        Some(l) => {
            let _ = write!(
                b,
                "<p>Leader: <code>{}</code> since {}</p>",
                esc(&l.leader_id),
                html::time(l.elected_at)
            );
        }
        None => b.push_str("<p>Leader: <span class=\"muted\">none elected (no process runs maintenance)</span></p>"),
    }
    if workers.is_empty() {
        b.push_str("<p class=\"empty\">No workers have reported in. Jobs wait until a process with workers starts.</p>");
    } else {
        if workers.iter().any(|w| w.dead) {
            b.push_str("<p class=\"warn\" role=\"status\">A worker is dead: its last heartbeat is older than its lease. Its running jobs are <a href=\"/ui/jobs/stuck\">stuck</a> until the rescuer takes them back; then its row goes.</p>");
        }
        b.push_str(&html::table_start(
            "",
            &[
                Col::Text("worker"),
                Col::Text("state"),
                Col::Text("host"),
                Col::Num("pid"),
                Col::Text("queues"),
                Col::Text("started"),
                Col::Text("last heartbeat"),
                Col::Text("lease"),
            ],
        ));
        for w in &workers {
            let lead = leader.as_ref().is_some_and(|l| l.leader_id == w.id);
            let _ = write!(
                b,
                "<tr data-worker=\"{}\"><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&w.id),
                esc(&w.id),
                if lead {
                    " <span class=\"badge\">leader</span>"
                } else {
                    ""
                },
                if w.dead {
                    "<span class=\"badge state-failed\">dead</span>"
                } else {
                    "<span class=\"badge state-completed\">live</span>"
                },
                esc(&w.hostname),
                w.pid,
                esc(&w.queues.join(", ")),
                html::time(w.started_at),
                html::ago(now, w.heartbeat_at),
                html::millis(w.lease_ms),
            );
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section>");

    Ok(Html(
        Page::new("Overview", "overview")
            .body(b)
            .render(user_name(&user)),
    )
    .into_response())
}

/// Queues: depth, running, oldest due job's wait, paused; with pause/resume buttons when
/// `actions`.
fn queue_table(
    stats: &[docket_core::JobStatRow],
    activity: &[docket_core::JobActivityRow],
    queues: &[docket_core::QueueRow],
    now: DateTime<Utc>,
    actions: bool,
) -> String {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    names.insert(docket_core::DEFAULT_QUEUE);
    names.extend(stats.iter().map(|r| r.queue.as_str()));
    names.extend(
        queues
            .iter()
            .filter(|q| q.name != docket_core::ALL_QUEUES)
            .map(|q| q.name.as_str()),
    );
    let all_paused = queues
        .iter()
        .any(|q| q.name == docket_core::ALL_QUEUES && q.paused_at.is_some());
    let mut b = String::new();
    if all_paused {
        b.push_str("<p class=\"warn\" role=\"status\">Every queue is paused (the <code>*</code> switch).</p>");
    }
    let mut cols = vec![Col::Text("queue"), Col::Text("state")];
    if actions {
        cols.push(Col::Text("action"));
    }
    cols.extend([
        Col::Num("queued"),
        Col::Num("running"),
        Col::Num("retrying"),
        Col::Text("oldest due job waits"),
    ]);
    b.push_str(&html::table_start("", &cols));
    for name in names {
        let count = |st: JobState| -> i64 {
            stats
                .iter()
                .filter(|r| r.queue == name && r.status == st)
                .map(|r| r.count)
                .sum()
        };
        let oldest = activity
            .iter()
            .filter(|a| a.queue == name)
            .filter_map(|a| a.oldest_due_at)
            .min();
        let paused = queues
            .iter()
            .any(|q| q.name == name && q.paused_at.is_some());
        let _ = write!(
            b,
            "<tr data-queue=\"{q}\"><th scope=\"row\"><a href=\"/ui/jobs?queue={u}\">{q}</a></th><td>{state}</td>",
            q = esc(name),
            u = html::url(name),
            state = if paused {
                "<span class=\"badge state-failed\">paused</span>"
            } else {
                "<span class=\"badge state-completed\">running</span>"
            },
        );
        if actions {
            let (verb, label) = if paused {
                ("resume", "Resume")
            } else {
                ("pause", "Pause")
            };
            let _ = write!(
                b,
                "<td><form method=\"post\" action=\"/ui/queues/{u}/{verb}\"><button type=\"submit\" class=\"secondary\" aria-label=\"{label} queue {q}\">{label}</button></form></td>",
                u = html::url(name),
                q = esc(name),
            );
        }
        let _ = write!(
            b,
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            count(JobState::Queued),
            count(JobState::Running),
            count(JobState::Retrying),
            oldest.map_or_else(|| "—".to_owned(), |t| html::duration(now - t)),
        );
    }
    b.push_str(html::TABLE_END);
    b
}

// ---------------------------------------------------------------------------------------------
// Jobs.

#[derive(Debug, Default, Deserialize)]
struct JobsQuery {
    state: Option<String>,
    kind: Option<String>,
    queue: Option<String>,
    document: Option<String>,
    before: Option<i64>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

const PAGE: i64 = 50;

async fn jobs<D: Driver>(
    State(s): State<AppState<D>>,
    user: User,
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
    let mut c = s.pipeline.driver().conn().await?;
    let list = c
        .job_list(JobListParams {
            states: state.into_iter().collect(),
            job_types: nonempty(&q.kind).into_iter().collect(),
            queue: nonempty(&q.queue),
            document_id: document,
            before_id: q.before,
            limit: PAGE,
        })
        .await?;
    let stats = c.job_stats().await?;
    drop(c);
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
    b.push_str("<div class=\"field actions\"><button type=\"submit\">Filter</button> <a href=\"/ui/jobs\">Clear</a></div></form>");
    b.push_str("<section class=\"card\" id=\"job-list\" data-live>");
    b.push_str(&job_table(&list, "No jobs match these filters.", false));
    if list.len() as i64 == PAGE
        && let Some(last) = list.last()
    {
        let mut next = String::from("/ui/jobs?");
        for (k, v) in [
            ("state", &q.state),
            ("kind", &q.kind),
            ("queue", &q.queue),
            ("document", &q.document),
        ] {
            if let Some(v) = nonempty(v) {
                let _ = write!(next, "{k}={}&", html::url(&v));
            }
        }
        let _ = write!(next, "before={}", last.id);
        let _ = write!(b, "<p><a href=\"{}\">Older jobs →</a></p>", esc(&next));
    }
    b.push_str("</section>");
    Ok(Html(Page::new("Jobs", "jobs").body(b).render(user_name(&user))).into_response())
}

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
    let mut b = html::table_start("jobs", &cols);
    for j in jobs {
        b.push_str("<tr>");
        if select {
            let _ = write!(
                b,
                "<td><input type=\"checkbox\" name=\"id\" value=\"{id}\" aria-label=\"select job {id}\"></td>",
                id = j.id
            );
        }
        let _ = write!(
            b,
            "<td class=\"num\"><a href=\"/ui/jobs/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}/{}</td><td>{}</td><td class=\"error-cell\">{}</td></tr>",
            esc(&j.job_type),
            esc(&j.queue),
            html::state_badge(j.status.as_str()),
            j.attempts,
            j.max_attempts,
            html::ago(now, j.created_at),
            esc(&html::truncate(j.last_error.as_deref().unwrap_or(""), 160)),
            id = j.id,
        );
    }
    b.push_str(html::TABLE_END);
    b
}

async fn failed<D: Driver>(
    State(s): State<AppState<D>>,
    user: User,
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
        b.push_str("<form method=\"post\" action=\"/ui/jobs/retry\" id=\"bulk\">");
        b.push_str("<div class=\"toolbar\"><button type=\"submit\" name=\"all\" value=\"\" id=\"retry-selected\">Retry selected</button> <button type=\"submit\" name=\"all\" value=\"1\" class=\"secondary\" id=\"retry-all\">Retry every failed job</button> <button type=\"submit\" name=\"all\" value=\"\" class=\"danger\" id=\"discard-selected\" formaction=\"/ui/jobs/discard\" data-confirm=\"Discard the selected dead letters for good?\">Discard selected</button></div>");
        b.push_str(&job_table(&list, "", true));
        b.push_str("</form>");
    }
    b.push_str("</section>");
    Ok(Html(
        Page::new("Dead letters", "failed")
            .body(b)
            .render(user_name(&user)),
    )
    .into_response())
}

async fn job<D: Driver>(State(s): State<AppState<D>>, user: User, Path(id): Path<i64>) -> UiResult {
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
            "",
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
                "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"error-cell\">{}</td></tr>",
                a.attempt,
                esc(&a.worker_id),
                html::time(a.started_at),
                html::millis(a.duration_ms),
                a.outcome.as_str(),
                esc(a.error.as_deref().unwrap_or("")),
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
    Ok(Html(
        Page::new(&format!("Job {id}"), "jobs")
            .body(b)
            .render(user_name(&user)),
    )
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Documents.

#[derive(Debug, Default, Deserialize)]
struct DocsQuery {
    status: Option<String>,
    before: Option<Uuid>,
}

async fn documents<D: Driver>(
    State(s): State<AppState<D>>,
    user: User,
    Query(q): Query<DocsQuery>,
) -> UiResult {
    let status = nonempty(&q.status)
        .map(|s| s.parse::<DocumentStatus>())
        .transpose()
        .map_err(|e| UiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let mut c = s.pipeline.driver().conn().await?;
    let docs = c
        .document_list(&DocumentListParams {
            status,
            source: None,
            before: q.before,
            limit: PAGE,
        })
        .await?;
    drop(c);
    let now = Utc::now();
    let mut b = String::from("<h1>Documents</h1>");
    b.push_str(
        r#"<form class="upload card" method="post" action="/ui/documents" enctype="multipart/form-data">
<div class="field"><label for="file">Upload a document</label><input id="file" name="file" type="file" required></div>
<div class="field check"><input id="reprocess" name="reprocess" type="checkbox" value="true"><label for="reprocess">process again if already known</label></div>
<div class="field actions"><button type="submit">Upload</button></div>
</form>"#,
    );
    b.push_str("<form class=\"filters\" method=\"get\" action=\"/ui/documents\">");
    b.push_str(&html::select(
        "status",
        "Status",
        DocumentStatus::ALL.iter().map(|s| s.as_str()),
        q.status.as_deref(),
    ));
    b.push_str("<div class=\"field actions\"><button type=\"submit\" class=\"secondary\">Filter</button></div></form>");
    b.push_str("<section class=\"card\" id=\"doc-list\" data-live>");
    if docs.is_empty() {
        b.push_str("<p class=\"empty\">No documents yet. Upload one above, or send one to <code>POST /v1/documents</code>.</p>");
    } else {
        b.push_str(&html::table_start(
            "docs",
            &[
                Col::Text("document"),
                Col::Text("status"),
                Col::Text("progress"),
                Col::Num("size"),
                Col::Num("chunks"),
                Col::Text("timings"),
                Col::Text("created"),
                Col::Text("error"),
            ],
        ));
        for d in &docs {
            let _ = write!(
                b,
                "<tr data-document=\"{id}\"><td><a href=\"/ui/documents/{id}\">{}</a></td><td>{}{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"error-cell\">{}</td></tr>",
                esc(d.filename.as_deref().unwrap_or("(unnamed)")),
                html::state_badge(d.status.as_str()),
                d.stage
                    .as_deref()
                    .filter(|_| !d.status.is_terminal())
                    .map(|s| format!(" <small>{}</small>", esc(s)))
                    .unwrap_or_default(),
                html::progress(d.progress, d.status.as_str()),
                html::bytes(d.size_bytes),
                d.chunk_count,
                html::timings(&d.timings),
                html::ago(now, d.created_at),
                esc(&html::truncate(d.error.as_deref().unwrap_or(""), 160)),
                id = d.id,
            );
        }
        b.push_str(html::TABLE_END);
        if docs.len() as i64 == PAGE
            && let Some(last) = docs.last()
        {
            let _ = write!(
                b,
                "<p><a href=\"/ui/documents?before={}{}\">Older documents →</a></p>",
                last.id,
                nonempty(&q.status)
                    .map(|s| format!("&amp;status={}", html::url(&s)))
                    .unwrap_or_default()
            );
        }
    }
    b.push_str("</section>");
    Ok(Html(
        Page::new("Documents", "documents")
            .body(b)
            .render(user_name(&user)),
    )
    .into_response())
}

async fn upload<D: Driver>(State(s): State<AppState<D>>, mut form: Multipart) -> UiResult {
    let bad = |m: String| UiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    let mut new = NewDocument {
        priority: UPLOAD_PRIORITY,
        ..NewDocument::default()
    };
    let mut has_file = false;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| UiError(e.status(), e.body_text()))?
    {
        match field.name() {
            Some("file") => {
                new.filename = field.file_name().map(crate::sanitize_filename);
                new.content_type = field.content_type().map(str::to_owned);
                new.bytes = field
                    .bytes()
                    .await
                    .map_err(|e| UiError(e.status(), e.body_text()))?;
                has_file = !new.bytes.is_empty() || new.filename.is_some();
            }
            Some("reprocess") => {
                new.reprocess = field.text().await.is_ok_and(|v| v == "true");
            }
            _ => {}
        }
    }
    if !has_file {
        return Err(bad("choose a file to upload".into()));
    }
    s.pipeline.submit(new).await?;
    // Back to the list, where the new document's progress bar moves live.
    Ok(see_other("/ui/documents"))
}

async fn document<D: Driver>(
    State(s): State<AppState<D>>,
    user: User,
    Path(id): Path<Uuid>,
) -> UiResult {
    let mut c = s.pipeline.driver().conn().await?;
    let d = c
        .document_get(id)
        .await?
        .ok_or_else(|| UiError(StatusCode::NOT_FOUND, format!("document {id} not found")))?;
    let chunks = match d.active_generation {
        Some(g) => {
            c.chunk_list(ChunkListParams {
                document_id: id,
                generation: Some(g),
                limit: 500,
                offset: 0,
            })
            .await?
        }
        None => Vec::new(),
    };
    drop(c);
    let name = d.filename.as_deref().unwrap_or("(unnamed)");
    let mut b = format!("<h1>{}</h1>", esc(name));
    let _ = write!(
        b,
        r#"<div class="toolbar">
<form method="post" action="/ui/documents/{id}/reprocess"><button type="submit" class="secondary">Reprocess</button></form>{cancel}
<form method="post" action="/ui/documents/{id}/delete" data-confirm="Delete this document, its chunks and its bytes?"><button type="submit" class="danger">Delete</button></form>
<a href="/ui/jobs?document={id}">Its jobs</a>
</div>"#,
        cancel = if d.status.is_terminal() {
            String::new()
        } else {
            format!(
                "\n<form method=\"post\" action=\"/ui/documents/{id}/cancel\" data-confirm=\"Cancel this document? It stops where it is until it is reprocessed.\"><button type=\"submit\" class=\"danger\" id=\"cancel-document\">Cancel</button></form>"
            )
        }
    );
    b.push_str("<div id=\"doc-state\" data-live><dl class=\"facts card\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(b, "<div><dt>{k}</dt><dd>{v}</dd></div>");
    };
    fact("id", format!("<code>{id}</code>"));
    fact("status", html::state_badge(d.status.as_str()));
    fact("progress", html::progress(d.progress, d.status.as_str()));
    fact("stage", esc(d.stage.as_deref().unwrap_or("—")));
    fact("timings", html::timings(&d.timings));
    fact("size", html::bytes(d.size_bytes));
    fact("type", esc(d.content_type.as_deref().unwrap_or("—")));
    fact("source", esc(d.source.as_str()));
    fact(
        "sha-256",
        format!("<code class=\"hash\">{}</code>", esc(&d.sha256)),
    );
    fact(
        "generation",
        format!(
            "{} (searchable: {})",
            d.generation,
            d.active_generation.map_or("none".into(), |g| g.to_string())
        ),
    );
    fact(
        "chunks",
        format!("{} ({} tokens)", d.chunk_count, d.token_count),
    );
    fact(
        "embedder",
        match (&d.embedder, &d.embedder_fingerprint) {
            (None, _) => "—".into(),
            (Some(name), fingerprint) => {
                let running = &s.pipeline.embedder().identity().fingerprint;
                let stale = if fingerprint.as_ref() == Some(running) {
                    ""
                } else {
                    " <span class=\"warn\">not searched: another embedder than the running one</span>"
                };
                format!(
                    "{} <small>({})</small>{stale}",
                    esc(name),
                    esc(fingerprint.as_deref().unwrap_or("not recorded"))
                )
            }
        },
    );
    fact("created", html::time(d.created_at));
    fact("completed", d.completed_at.map_or("—".into(), html::time));
    if let Some(e) = &d.error {
        fact(
            "error",
            format!(
                "<span class=\"error\">{}{}</span>",
                d.error_stage
                    .as_deref()
                    .map(|s| format!("{}: ", esc(s)))
                    .unwrap_or_default(),
                esc(e)
            ),
        );
    }
    b.push_str("</dl>");
    b.push_str("<section class=\"card\"><h2>Chunks</h2>");
    if chunks.is_empty() {
        b.push_str(if d.status.is_terminal() {
            "<p class=\"empty\">This document has no searchable chunks.</p>"
        } else {
            "<p class=\"empty\">No chunks yet: they appear when processing completes.</p>"
        });
    } else {
        b.push_str("<ol class=\"chunks\">");
        for ch in &chunks {
            let _ = write!(
                b,
                "<li><div class=\"meta\">#{} · {} tokens{}{}</div><p>{}</p></li>",
                ch.chunk_index,
                ch.token_count,
                ch.page.map(|p| format!(" · page {p}")).unwrap_or_default(),
                if ch.heading_path.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", esc(&ch.heading_path.join(" › ")))
                },
                esc(&ch.text)
            );
        }
        b.push_str("</ol>");
    }
    b.push_str("</section></div>");
    Ok(Html(
        Page::new(name, "documents")
            .body(b)
            .render(user_name(&user)),
    )
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Queues and cron.

async fn queues<D: Driver>(State(s): State<AppState<D>>, user: User) -> UiResult {
    let mut c = s.pipeline.driver().conn().await?;
    let stats = c.job_stats().await?;
    let activity = c
        .job_activity(docket_core::JobActivityParams::default())
        .await?;
    let queues = c.queue_list().await?;
    let schedules = c.cron_schedule_list().await?;
    let runs = c
        .cron_run_list(docket_core::CronRunListParams {
            schedule_name: None,
            limit: 50,
        })
        .await?;
    drop(c);
    let now = Utc::now();
    let mut b = String::from("<h1>Queues and cron</h1>");
    b.push_str("<section class=\"card\" id=\"queue-table\" data-live><h2>Queues</h2>");
    b.push_str(&queue_table(&stats, &activity, &queues, now, true));
    b.push_str("</section>");

    b.push_str("<section class=\"card\" id=\"schedules\" data-live><h2>Schedules</h2>");
    if schedules.is_empty() {
        b.push_str("<p class=\"empty\">No cron schedules are configured.</p>");
    } else {
        b.push_str(&html::table_start(
            "",
            &[
                Col::Text("schedule"),
                Col::Text("expression"),
                Col::Text("job"),
                Col::Text("next run"),
                Col::Text("last run"),
                Col::Text("enabled"),
                Col::Text("action"),
            ],
        ));
        for sc in &schedules {
            let _ = write!(
                b,
                "<tr><th scope=\"row\">{n}</th><td><code>{}</code> <small>{}</small></td><td>{} <small>on {}</small></td><td>{}</td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/ui/cron/{u}/run\"><button type=\"submit\" class=\"secondary\" aria-label=\"Run {n} now\">Run now</button></form></td></tr>",
                esc(&sc.expression),
                esc(&sc.timezone),
                esc(&sc.job_type),
                esc(&sc.queue),
                html::time(sc.next_run_at),
                sc.last_run_at.map_or("—".into(), html::time),
                if sc.enabled { "yes" } else { "no" },
                n = esc(&sc.name),
                u = html::url(&sc.name),
            );
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section>");

    b.push_str("<section class=\"card\" id=\"history\" data-live><h2>Recent runs</h2>");
    if runs.is_empty() {
        b.push_str("<p class=\"empty\">No schedule has run yet.</p>");
    } else {
        b.push_str(&html::table_start(
            "",
            &[
                Col::Text("schedule"),
                Col::Text("for"),
                Col::Text("status"),
                Col::Text("job"),
                Col::Text("finished"),
                Col::Text("message"),
            ],
        ));
        for r in &runs {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                esc(&r.schedule_name),
                html::time(r.scheduled_for),
                html::state_badge(&r.status),
                r.job_id.map_or("—".into(), |j| format!(
                    "<a href=\"/ui/jobs/{j}\">{j}</a>"
                )),
                r.finished_at.map_or("—".into(), html::time),
                if r.status == "failed" {
                    "error-cell"
                } else {
                    "note"
                },
                esc(r.message.as_deref().unwrap_or("")),
            );
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section>");
    Ok(Html(
        Page::new("Queues and cron", "queues")
            .body(b)
            .render(user_name(&user)),
    )
    .into_response())
}

async fn cron_run<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<crate::auth::Actor>>,
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
            let who = actions::who(&actor);
            let jobs: Vec<i64> = run.job_id.into_iter().collect();
            let detail = serde_json::json!({ "run": run.id });
            docket_queue::admin::record(p.driver(), &who, "cron_run", Some(name), &jobs, detail)
                .await?;
            Ok(see_other("/ui/queues"))
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
