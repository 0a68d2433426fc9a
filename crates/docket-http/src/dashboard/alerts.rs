//! `/ui/alerts`: the built-in alerts (firing and pending, then history) and their silences:
//! silence a rule for a while, end a silence. The banner on every page ([`banner`]) links here
//! while anything fires.

use std::fmt::Write as _;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use docket_core::{AlertListParams, AlertState, Driver, JobState, QueueExecutor};
use docket_pipeline::alerts::ops::{self, AlertView};
use docket_pipeline::alerts::{ALERT_NOTIFY_KIND, Rule};

use super::actions::who;
use super::flash::{self, Flash};
use super::html::{self, Col, esc};
use super::{Ui, UiError, UiResult};
use crate::AppState;
use crate::auth::Actor;

/// The firing, unsilenced alerts a page's banner shows: `(rule, subject, summary)`.
#[derive(Debug, Clone, Default)]
pub(super) struct Banner(pub(super) Vec<(String, String, String)>);

/// Reads what the banner shows, for every dashboard page (an unreadable database shows none:
/// the page itself says what is wrong).
pub(super) async fn banner<D: Driver>(
    State(s): State<AppState<D>>,
    mut req: Request,
    next: Next,
) -> Response {
    let open = AlertListParams {
        open: Some(true),
        limit: 100,
        ..Default::default()
    };
    if let Ok(view) = ops::list(s.pipeline.driver(), &open).await {
        let loud = view
            .loud()
            .map(|a| {
                (
                    a.alert.rule.clone(),
                    a.alert.subject.clone(),
                    a.alert.summary.clone(),
                )
            })
            .collect();
        req.extensions_mut().insert(Banner(loud));
    }
    next.run(req).await
}

/// The banner's HTML, or nothing while nothing fires.
pub(super) fn banner_html(b: &Banner) -> String {
    if b.0.is_empty() {
        return String::new();
    }
    let mut h = format!(
        "<div class=\"alert-banner\" role=\"alert\" id=\"alert-banner\"><strong>{} firing</strong><ul>",
        html::count(b.0.len(), "alert", "alerts")
    );
    for (rule, subject, summary) in b.0.iter().take(5) {
        let _ = write!(
            h,
            "<li><a href=\"/ui/alerts\"><code>{}</code>{}</a>: {}</li>",
            esc(rule),
            if subject.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"muted\">{}</span>", esc(subject))
            },
            esc(summary)
        );
    }
    if b.0.len() > 5 {
        let _ = write!(
            h,
            "<li><a href=\"/ui/alerts\">and {} more</a></li>",
            b.0.len() - 5
        );
    }
    h.push_str("</ul></div>");
    h
}

fn row(b: &mut String, a: &AlertView, now: chrono::DateTime<Utc>) {
    let x = &a.alert;
    let state = match (x.state, a.silenced) {
        (AlertState::Firing, true) => "firing (silenced)".to_owned(),
        (s, _) => s.to_string(),
    };
    let since = match x.state {
        AlertState::Pending => html::ago(now, x.pending_at),
        AlertState::Firing => html::ago(now, x.firing_at.unwrap_or(x.pending_at)),
        AlertState::Resolved => x.resolved_at.map(html::time).unwrap_or_default(),
    };
    let subject = if x.subject.is_empty() {
        String::new()
    } else {
        format!("<br><span class=\"muted\">{}</span>", esc(&x.subject))
    };
    b.push_str("<tr>");
    b.push_str(&html::td(
        "rule",
        "",
        &format!("<code>{}</code>{subject}", esc(&x.rule)),
    ));
    b.push_str(&html::td(
        "what",
        "",
        &format!("{} <a href=\"{}\">look</a>", esc(&x.summary), esc(&a.link)),
    ));
    b.push_str(&html::td("state", "", &html::state_badge(&state)));
    b.push_str(&html::td("since", "", &since));
    b.push_str(&html::td("severity", "", &esc(&x.severity)));
    b.push_str("</tr>");
}

const COLS: [Col<'static>; 5] = [
    Col::Text("rule"),
    Col::Text("what"),
    Col::Text("state"),
    Col::Text("since"),
    Col::Text("severity"),
];

/// `GET /ui/alerts`.
pub(super) async fn page<D: Driver>(State(s): State<AppState<D>>, ui: Ui) -> UiResult {
    let d = s.pipeline.driver();
    let list = |open| AlertListParams {
        open: Some(open),
        limit: 100,
        ..Default::default()
    };
    let open = ops::list(d, &list(true)).await?;
    let history = ops::list(d, &list(false)).await?;
    let now = Utc::now();
    let mut b = String::from(
        "<h1>Alerts</h1><p class=\"lede\">The built-in rules, evaluated every minute by the maintenance leader. A silenced rule is still evaluated and recorded; nobody is told and the banner leaves it out.</p>",
    );
    // Deliveries that failed for good: nobody was told about those notices.
    let failed = {
        let mut c = d.conn().await?;
        c.job_stats()
            .await?
            .iter()
            .filter(|r| r.job_type == ALERT_NOTIFY_KIND && r.status == JobState::Failed)
            .map(|r| r.count)
            .sum::<i64>()
    };
    if failed > 0 {
        let _ = write!(
            b,
            "<p class=\"warn\" role=\"alert\" id=\"failed-deliveries\"><strong>{} could not be delivered</strong>: see <a href=\"/ui/jobs?kind={ALERT_NOTIFY_KIND}&amp;state=failed\">the failed deliveries</a> for why, and retry them once the webhook or the mail server answers.</p>",
            html::count(failed as usize, "alert notice", "alert notices"),
        );
    }
    b.push_str("<section class=\"card\" id=\"alerts-open\" data-live><h2>Open</h2>");
    if open.alerts.is_empty() {
        b.push_str("<p class=\"empty\">Nothing firing or pending.</p>");
    } else {
        b.push_str(&html::table_start("alerts stack", &COLS));
        for a in &open.alerts {
            row(&mut b, a, now);
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section>");

    b.push_str("<section class=\"card\" id=\"silences\"><h2>Silences</h2>");
    if open.silences.is_empty() {
        b.push_str("<p class=\"empty\">No silence in force.</p>");
    } else {
        b.push_str(&html::table_start(
            "silences",
            &[
                Col::Text("rule"),
                Col::Text("subject"),
                Col::Text("until"),
                Col::Text("by"),
                Col::Text("reason"),
                Col::Text(""),
            ],
        ));
        for x in &open.silences {
            let _ = write!(
                b,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td><form method=\"post\" action=\"/ui/alerts/silences/{}/end\"><button type=\"submit\" class=\"secondary\">End</button></form></td></tr>",
                esc(&x.rule),
                esc(x.subject.as_deref().unwrap_or("(all)")),
                html::time(x.until),
                esc(&x.actor),
                esc(&x.reason),
                x.id
            );
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("<form method=\"post\" action=\"/ui/alerts/silence\" class=\"filters\"><div class=\"field\"><label for=\"f-rule\">Rule</label><select id=\"f-rule\" name=\"rule\">");
    for r in Rule::ALL {
        let _ = write!(b, "<option>{}</option>", r.name());
    }
    b.push_str("</select></div><div class=\"field\"><label for=\"f-subject\">Subject (optional)</label><input id=\"f-subject\" name=\"subject\" placeholder=\"queue=default\"></div><div class=\"field\"><label for=\"f-for\">For</label><select id=\"f-for\" name=\"for\">");
    for (secs, label) in [
        (3600, "1 hour"),
        (4 * 3600, "4 hours"),
        (86_400, "1 day"),
        (7 * 86_400, "7 days"),
    ] {
        let _ = write!(b, "<option value=\"{secs}\">{label}</option>");
    }
    b.push_str("</select></div><div class=\"field\"><label for=\"f-reason\">Reason</label><input id=\"f-reason\" name=\"reason\"></div><button type=\"submit\">Silence</button></form></section>");

    b.push_str("<section class=\"card\" id=\"alerts-history\"><h2>History</h2>");
    if history.alerts.is_empty() {
        b.push_str("<p class=\"empty\">No alert has resolved yet.</p>");
    } else {
        b.push_str(&html::table_start("alerts stack", &COLS));
        for a in &history.alerts {
            row(&mut b, a, now);
        }
        b.push_str(html::TABLE_END);
    }
    b.push_str("</section>");
    Ok(ui.page("Alerts", "alerts", b))
}

/// `POST /ui/alerts/silence`: `rule`, `subject`, `for` (seconds), `reason`.
pub(super) async fn silence<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    body: axum::body::Bytes,
) -> UiResult {
    let field = |name: &str| crate::auth::form_urlencoded_value(&body, name).unwrap_or_default();
    let secs: u64 = field("for").parse().map_err(|_| {
        UiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "for: a number of seconds".into(),
        )
    })?;
    let rule = field("rule");
    let subject = Some(field("subject").trim().to_owned());
    let row = ops::silence(
        s.pipeline.driver(),
        &who(&actor),
        &rule,
        subject,
        Duration::from_secs(secs),
        field("reason").trim(),
    )
    .await
    .map_err(|e| match e {
        docket_core::Error::Invalid(m) => UiError(StatusCode::UNPROCESSABLE_ENTITY, m),
        e => e.into(),
    })?;
    Ok(flash::redirect(
        "/ui/alerts",
        Flash::done(format!(
            "Silenced {}{} until {}",
            row.rule,
            row.subject.map(|s| format!(" ({s})")).unwrap_or_default(),
            row.until.format("%Y-%m-%d %H:%M UTC")
        )),
    ))
}

/// `POST /ui/alerts/silences/{id}/end`.
pub(super) async fn end<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> UiResult {
    if ops::unsilence(s.pipeline.driver(), &who(&actor), id).await? {
        Ok(flash::redirect(
            "/ui/alerts",
            Flash::done(format!("Ended silence {id}")),
        ))
    } else {
        Ok(flash::redirect(
            "/ui/alerts",
            Flash::warn(format!("Silence {id} was no longer in force")),
        ))
    }
}
