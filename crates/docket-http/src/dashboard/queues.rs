//! Queues and cron (`/ui/queues`): each queue's state and depth, with pause (confirmed) and
//! resume; the cron schedules, with "run now"; their recent runs. The queue table is also the
//! overview's.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use axum::extract::State;
use chrono::{DateTime, Utc};
use docket_core::{Driver, JobState, QueueExecutor};

use super::html::{self, Col, esc};
use super::{Ui, UiResult};
use crate::AppState;

pub(super) async fn page<D: Driver>(State(s): State<AppState<D>>, ui: Ui) -> UiResult {
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
    Ok(ui.page("Queues and cron", "queues", b))
}

/// Queues: depth, running, oldest due job's wait, paused; with pause/resume buttons when
/// `actions`.
pub(super) fn queue_table(
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
        let paused_at = queues
            .iter()
            .find(|q| q.name == name)
            .and_then(|q| q.paused_at);
        let paused = paused_at.is_some();
        let _ = write!(
            b,
            "<tr data-queue=\"{q}\"><th scope=\"row\"><a href=\"/ui/jobs?queue={u}\">{q}</a></th><td>{state}</td>",
            q = esc(name),
            u = html::url(name),
            state = match paused_at {
                Some(t) => format!(
                    "<span class=\"badge state-failed\">paused</span> <small>{}</small>",
                    html::ago(now, t)
                ),
                None => "<span class=\"badge state-completed\">running</span>".to_owned(),
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
