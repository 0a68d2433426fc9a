//! What operators do with alerts, shared by the API, the dashboard and the CLI: list them,
//! silence a rule for a while, end a silence. Silences are recorded in the audit trail.

use std::time::Duration;

use chrono::Utc;
use docket_core::{
    AlertListParams, AlertRow, AlertSilenceParams, AlertSilenceRow, AlertState, Driver, Error,
    MonitorStore,
};
use serde::Serialize;

use super::Rule;

/// The longest silence: 30 days.
pub const MAX_SILENCE: Duration = Duration::from_secs(30 * 86_400);

/// An alert as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    /// The row.
    #[serde(flatten)]
    pub alert: AlertRow,
    /// Whether a silence covers it now (nobody is told, no banner shows it).
    pub silenced: bool,
    /// The dashboard page to look at (a path).
    pub link: String,
}

/// Alerts, with the silences that cover them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertsView {
    /// The alerts asked for, newest first.
    pub alerts: Vec<AlertView>,
    /// The silences in force, newest first.
    pub silences: Vec<AlertSilenceRow>,
}

impl AlertsView {
    /// Firing alerts that no silence covers: what the banner shows.
    pub fn loud(&self) -> impl Iterator<Item = &AlertView> {
        self.alerts
            .iter()
            .filter(|a| a.alert.state == AlertState::Firing && !a.silenced)
    }
}

/// Alerts as `params` selects them, each marked silenced or not, with the silences in force.
pub async fn list<D: Driver>(
    driver: &D,
    params: &AlertListParams,
) -> docket_core::Result<AlertsView> {
    let mut c = driver.conn().await?;
    let rows = c.alert_list(params).await?;
    let silences = c.alert_silence_list(None).await?;
    let now = Utc::now();
    let alerts = rows
        .into_iter()
        .map(|alert| AlertView {
            silenced: alert.state.is_open()
                && silences
                    .iter()
                    .any(|s| s.covers(&alert.rule, &alert.subject, now)),
            link: Rule::from_name(&alert.rule).map_or_else(
                || "/ui/alerts".to_owned(),
                |r| r.dashboard_path(&alert.subject),
            ),
            alert,
        })
        .collect();
    Ok(AlertsView { alerts, silences })
}

/// Silences `rule` (and only `subject`, if given) for `for_`, recorded in the audit trail as
/// `actor`'s. Refuses an unknown rule, and a length outside one minute to 30 days.
pub async fn silence<D: Driver>(
    driver: &D,
    actor: &str,
    rule: &str,
    subject: Option<String>,
    for_: Duration,
    reason: &str,
) -> docket_core::Result<AlertSilenceRow> {
    if Rule::from_name(rule).is_none() {
        let known: Vec<_> = Rule::ALL.iter().map(|r| r.name()).collect();
        return Err(Error::Invalid(format!(
            "no rule named {rule:?} (the rules: {})",
            known.join(", ")
        )));
    }
    if for_ < Duration::from_secs(60) || for_ > MAX_SILENCE {
        return Err(Error::Invalid(
            "a silence lasts from one minute to 30 days".into(),
        ));
    }
    let now = Utc::now();
    let until = now + chrono::Duration::from_std(for_).unwrap_or(chrono::Duration::days(30));
    let subject = subject.filter(|s| !s.is_empty());
    let row = {
        let mut c = driver.conn().await?;
        c.alert_silence_insert(&AlertSilenceParams {
            rule: rule.to_owned(),
            subject: subject.clone(),
            until,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            now: Some(now),
        })
        .await?
    };
    let detail = serde_json::json!({
        "silence": row.id, "subject": subject, "until": until, "reason": reason,
    });
    docket_queue::admin::record(driver, actor, "silence", Some(rule.to_owned()), &[], detail)
        .await?;
    Ok(row)
}

/// Ends a silence now. Returns whether it was in force.
pub async fn unsilence<D: Driver>(driver: &D, actor: &str, id: i64) -> docket_core::Result<bool> {
    let ended = {
        let mut c = driver.conn().await?;
        c.alert_silence_end(id, None).await?
    };
    if ended {
        let detail = serde_json::json!({ "silence": id });
        docket_queue::admin::record(driver, actor, "unsilence", None, &[], detail).await?;
    }
    Ok(ended)
}
