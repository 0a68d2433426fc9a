//! The Stuck page (`/ui/jobs/stuck`): running jobs whose worker's lease has lapsed.
//!
//! Each worker writes its own lease with its heartbeat, so the page needs no setting of its
//! own: it lists what the `stuck_jobs` view lists and the rescuer will take back, judged on the
//! database's clock. Each row says whose job it is, when that worker was last heard from, how
//! long the job has run, and offers the job page and a cancel button.

use std::fmt::Write as _;

use axum::extract::State;
use chrono::{Duration, Utc};
use docket_core::{Driver, JobListStuckParams, QueueExecutor, StuckJobRow};

use super::html::{self, Col, esc};
use super::{Ui, UiResult};
use crate::AppState;

/// Rows shown at most.
const LIMIT: i64 = 200;

pub(super) async fn stuck<D: Driver>(State(s): State<AppState<D>>, ui: Ui) -> UiResult {
    let mut c = s.pipeline.driver().conn().await?;
    let list = c
        .job_list_stuck(JobListStuckParams {
            now: None,
            limit: LIMIT,
        })
        .await?;
    let leader = c.leader_get(None).await?;
    drop(c);
    let mut b = String::from(
        "<h1>Stuck jobs</h1><p class=\"lede\">Running jobs whose worker's lease has lapsed: its last heartbeat is older than the lease it wrote with it, or its row is gone. The maintenance leader's rescuer puts them back in their queue on its next pass, or dead-letters them when no attempts are left.</p>",
    );
    b.push_str("<section class=\"card\" id=\"stuck\" data-live>");
    if !list.is_empty() && leader.is_none() {
        b.push_str("<p class=\"warn\" role=\"status\">No process leads maintenance: nothing rescues these jobs until one does. Cancel them, or start a process with maintenance enabled.</p>");
    }
    b.push_str(&table(&list));
    b.push_str("</section>");
    Ok(ui.page("Stuck jobs", "stuck", b))
}

fn table(jobs: &[StuckJobRow]) -> String {
    if jobs.is_empty() {
        return "<p class=\"empty\">No stuck jobs: every running job's worker is within its lease.</p>"
            .to_owned();
    }
    let now = Utc::now();
    let mut b = html::table_start(
        "jobs stack",
        &[
            Col::Num("id"),
            Col::Text("kind"),
            Col::Text("queue"),
            Col::Num("attempts"),
            Col::Text("worker"),
            Col::Text("last heartbeat"),
            Col::Text("lease"),
            Col::Text("running for"),
            Col::Text("action"),
        ],
    );
    for r in jobs {
        let j = &r.job;
        let heartbeat = match r.worker_heartbeat_at {
            Some(t) => html::ago(now, t),
            None => "<span class=\"muted\">no worker row</span>".to_owned(),
        };
        let lease = r
            .worker_lease_ms
            .map_or_else(|| "—".to_owned(), html::millis);
        let _ = write!(
            b,
            "<tr data-job=\"{id}\">{}{}{}{}{}{}{}{}{}</tr>",
            html::td(
                "id",
                "num",
                &format!("<a href=\"/ui/jobs/{id}\">{id}</a>", id = j.id)
            ),
            html::td("kind", "", &esc(&j.job_type)),
            html::td("queue", "", &esc(&j.queue)),
            html::td(
                "attempts",
                "num",
                &format!("{}/{}", j.attempts, j.max_attempts)
            ),
            html::td(
                "worker",
                "",
                &format!(
                    "<code>{}</code> <span class=\"badge state-failed\">dead</span>",
                    esc(j.locked_by.as_deref().unwrap_or(""))
                )
            ),
            html::td("last heartbeat", "", &heartbeat),
            html::td("lease", "", &lease),
            html::td(
                "running for",
                "",
                &html::duration(Duration::milliseconds(r.running_for_ms))
            ),
            html::td(
                "action",
                "",
                &format!(
                    "<form method=\"post\" action=\"/ui/jobs/{id}/cancel\" data-confirm=\"Cancel job {id}?\"><button type=\"submit\" class=\"danger\" aria-label=\"Cancel job {id}\">Cancel</button></form>",
                    id = j.id
                )
            ),
            id = j.id,
        );
    }
    b.push_str(html::TABLE_END);
    b
}
