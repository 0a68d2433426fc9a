//! `/ui/audit`: who did what to which jobs, newest first (the operator actions of every
//! door: the dashboard, the API, the CLI).

use std::fmt::Write as _;

use axum::extract::{Query, State};
use docket_core::{AuditListParams, Driver, QueueExecutor};
use serde::Deserialize;

use super::html::{self, Col, esc};
use super::{Ui, UiResult, nonempty};
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    action: Option<String>,
    job: Option<i64>,
    before: Option<i64>,
}

const PAGE: i64 = 100;

pub(super) async fn page<D: Driver>(
    State(s): State<AppState<D>>,
    ui: Ui,
    Query(q): Query<AuditQuery>,
) -> UiResult {
    let mut c = s.pipeline.driver().conn().await?;
    let rows = c
        .audit_list(AuditListParams {
            action: nonempty(&q.action),
            job_id: q.job,
            before_id: q.before,
            limit: PAGE,
        })
        .await?;
    drop(c);
    let mut b = String::from(
        "<h1>Audit trail</h1><p class=\"lede\">Every operator action — retry, run now, cancel, discard, pause, resume, cron run, reprocess, delete — with who did it, from the dashboard, the API or the command line.</p>",
    );
    b.push_str("<section class=\"card\" id=\"audit\" data-live>");
    if rows.is_empty() {
        b.push_str("<p class=\"empty\">No operator action recorded.</p>");
    } else {
        b.push_str(&html::table_start(
            "audit",
            &[
                Col::Text("when"),
                Col::Text("who"),
                Col::Text("action"),
                Col::Text("target"),
                Col::Text("jobs"),
            ],
        ));
        for a in &rows {
            let jobs = a
                .job_ids
                .iter()
                .take(20)
                .map(|j| format!("<a href=\"/ui/jobs/{j}\">{j}</a>"))
                .collect::<Vec<_>>()
                .join(", ");
            let more = a.job_ids.len().saturating_sub(20);
            let _ = write!(
                b,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                html::time(a.at),
                esc(&a.actor),
                esc(&a.action),
                esc(a.target.as_deref().unwrap_or("")),
                jobs,
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                },
            );
        }
        b.push_str(html::TABLE_END);
        if rows.len() as i64 == PAGE
            && let Some(last) = rows.last()
        {
            let _ = write!(
                b,
                "<p><a href=\"/ui/audit?before={}\">Older actions →</a></p>",
                last.id
            );
        }
    }
    b.push_str("</section>");
    Ok(ui.page("Audit trail", "audit", b))
}
