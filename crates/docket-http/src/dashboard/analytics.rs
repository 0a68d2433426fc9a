//! `/ui/analytics`: what outlives the job rows (docs/alerting.md#analytics): throughput per
//! day, the pipeline stages' timings per day, and the top failure reasons with links to jobs
//! that failed so.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use docket_core::Driver;
use serde::Deserialize;

use super::html::{self, Col, esc};
use super::{Ui, UiResult};
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub(super) struct AnalyticsQuery {
    days: Option<i64>,
}

const STAGES: [&str; 5] = ["parse", "chunk", "embed", "complete", "notify"];

pub(super) async fn page<D: Driver>(
    State(s): State<AppState<D>>,
    ui: Ui,
    Query(q): Query<AnalyticsQuery>,
) -> UiResult {
    let days = q.days.unwrap_or(14).clamp(1, 90);
    let v = crate::analytics::read(&s.pipeline, days, None).await?;
    let mut b = format!(
        "<h1>Analytics</h1><p class=\"lede\">The last {days} days, from hourly rollups of every job attempt and from failure reasons (messages with their ids, numbers and paths masked), kept for <code>maintenance.analytics_retention_days</code> after the jobs themselves are cleaned up. Complete up to {}.</p>",
        v.rolled_until.map_or_else(
            || "no hour yet: the first roll-up runs at five past the hour".to_owned(),
            html::time
        )
    );
    let _ = write!(
        b,
        "<p><a href=\"/ui/analytics?days=1\">1 day</a> · <a href=\"/ui/analytics?days=14\">14 days</a> · <a href=\"/ui/analytics?days=90\">90 days</a></p>"
    );

    // Throughput per day, every kind together.
    let mut per_day: BTreeMap<chrono::NaiveDate, (i64, i64, i64)> = BTreeMap::new();
    for d in &v.daily {
        let e = per_day.entry(d.day).or_default();
        e.0 += d.completed;
        e.1 += d.retried + d.rescued;
        e.2 += d.failed;
    }
    b.push_str("<section class=\"card\" id=\"per-day\"><h2>Throughput per day</h2>");
    if per_day.is_empty() {
        b.push_str("<p class=\"empty\">Nothing rolled up yet.</p>");
    } else {
        b.push_str(&html::table_start(
            "",
            &[
                Col::Text("day"),
                Col::Num("completed"),
                Col::Num("failed, retried"),
                Col::Num("dead-lettered"),
            ],
        ));
        for (day, (done, retried, failed)) in per_day.iter().rev() {
            let _ = write!(
                b,
                "<tr><td>{day}</td><td class=\"num\">{done}</td><td class=\"num\">{retried}</td><td class=\"num\">{failed}</td></tr>"
            );
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section>");

    // Stage timings per day: mean and the worst hourly p95 of completed attempts.
    b.push_str("<section class=\"card\" id=\"stage-timings\"><h2>Stage timings per day</h2><p class=\"lede\">Completed attempts: mean, then the highest hourly p95, in milliseconds.</p>");
    let stage_days: BTreeMap<_, Vec<_>> = v
        .daily
        .iter()
        .filter(|d| d.job_type.starts_with("docket."))
        .fold(BTreeMap::new(), |mut m, d| {
            m.entry(d.day).or_insert_with(Vec::new).push(d);
            m
        });
    if stage_days.is_empty() {
        b.push_str("<p class=\"empty\">No stage has run in these days.</p>");
    } else {
        let mut cols = vec![Col::Text("day")];
        cols.extend(STAGES.iter().map(|s| Col::Num(s)));
        b.push_str(&html::table_start("", &cols));
        for (day, rows) in stage_days.iter().rev() {
            let _ = write!(b, "<tr><td>{day}</td>");
            for stage in STAGES {
                let kind = format!("docket.{stage}");
                let cell = rows
                    .iter()
                    .find(|d| d.job_type == kind)
                    .and_then(|d| Some((d.completed_mean_ms?, d.completed_p95_ms_max?)))
                    .map_or_else(|| "—".to_owned(), |(mean, p95)| format!("{mean} / {p95}"));
                let _ = write!(b, "<td class=\"num\">{cell}</td>");
            }
            b.push_str("</tr>");
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section>");

    // Top failure reasons.
    b.push_str("<section class=\"card\" id=\"failure-reasons\"><h2>Top failure reasons</h2>");
    if v.failure_reasons.is_empty() {
        b.push_str("<p class=\"empty\">No failed attempt in these days.</p>");
    } else {
        b.push_str(&html::table_start(
            "stack",
            &[
                Col::Text("kind"),
                Col::Text("reason"),
                Col::Num("attempts"),
                Col::Text("first seen"),
                Col::Text("last seen"),
                Col::Text("examples"),
            ],
        ));
        for r in v.failure_reasons.iter().take(20) {
            let examples = r
                .example_job_ids
                .iter()
                .map(|j| format!("<a href=\"/ui/jobs/{j}\">{j}</a>"))
                .collect::<Vec<_>>()
                .join(", ");
            b.push_str("<tr>");
            b.push_str(&html::td(
                "kind",
                "",
                &format!("<code>{}</code>", esc(&r.job_type)),
            ));
            b.push_str(&html::td(
                "reason",
                "error-cell",
                &format!(
                    "{}<br><small class=\"muted\">e.g. {}</small>",
                    esc(&r.reason),
                    esc(&r.example)
                ),
            ));
            b.push_str(&html::td("attempts", "num", &r.count.to_string()));
            b.push_str(&html::td("first seen", "", &html::time(r.first_seen)));
            b.push_str(&html::td("last seen", "", &html::time(r.last_seen)));
            b.push_str(&html::td("examples", "", &examples));
            b.push_str("</tr>");
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section>");
    Ok(ui.page("Analytics", "analytics", b))
}
