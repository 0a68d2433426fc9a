//! The overview (`/`): jobs by state and kind, the search index, throughput over the last
//! hour, queues, workers and the maintenance leader.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use axum::extract::State;
use chrono::Utc;
use docket_core::{Driver, JobState, QueueExecutor, WorkerListParams};

use super::html::{self, Col, esc};
use super::{Ui, UiResult, embedder, queues};
use crate::AppState;

pub(super) async fn page<D: Driver>(State(s): State<AppState<D>>, ui: Ui) -> UiResult {
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
    b.push_str(&queues::queue_table(&stats, &activity, &queues, now, false));
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

    Ok(ui.page("Overview", "overview", b))
}
