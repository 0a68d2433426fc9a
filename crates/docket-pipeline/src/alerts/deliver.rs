//! Deliveries: one durable job (`docket.alert_notify`) per notice, retried with the queue's
//! backoff, to a webhook (Standard Webhooks, signed as the document notifications are, or a
//! Slack-compatible `{"text": …}`) and by email (plain text a person can act on).
//!
//! The job carries the notice as it was when the alert moved, so a delivery retried later
//! still tells what happened then. A delivery that keeps failing ends as a dead letter of kind
//! `docket.alert_notify`, on the dashboard's failed-jobs page like any other (and counted by
//! `dead_letters`).

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use docket_core::{AlertRow, Driver};
use docket_notify::{EmailConfig, Mailer, NotifyError, WebhookConfig, WebhookSender};
use docket_queue::{JobArgs, JobContext, JobError, Worker, Workers};
use serde::{Deserialize, Serialize};

use super::AlertEvent;
use crate::notify::NotifyFailure;

/// The delivery job's kind.
pub const ALERT_NOTIFY_KIND: &str = "docket.alert_notify";

/// `[alerts.webhook]`: where alert notices are posted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertWebhookConfig {
    /// The URL; none: no webhook.
    pub url: Option<String>,
    /// `standard` (default: a Standard Webhooks event, `alert.firing`, `alert.repeat` or
    /// `alert.resolved`) or `slack` (`{"text": …}`, for Slack and compatible chat hooks).
    pub format: WebhookFormat,
    /// Signing secret (as `notify.webhook.secret`); default: `notify.webhook.secret`.
    pub secret: Option<String>,
    /// Allow private, loopback and link-local targets (an operator's own URL). Default false.
    pub allow_private: bool,
    /// The severities posted here: `page`, `ticket`. Default both.
    pub severities: Vec<String>,
}

fn both_severities() -> Vec<String> {
    vec!["page".to_owned(), "ticket".to_owned()]
}

/// Which notices a channel takes, checked: each of `page`, `ticket`.
fn check_severities(key: &str, s: &[String]) -> Result<(), String> {
    match s.iter().find(|v| !matches!(v.as_str(), "page" | "ticket")) {
        Some(bad) => Err(format!("{key}: {bad:?} is not a severity (page, ticket)")),
        None => Ok(()),
    }
}

impl Default for AlertWebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            format: WebhookFormat::default(),
            secret: None,
            allow_private: false,
            severities: both_severities(),
        }
    }
}

/// The body an alert webhook posts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"type", "timestamp", "data"}`, signed.
    #[default]
    Standard,
    /// `{"text": "…"}`.
    Slack,
}

/// `[alerts.email]`: who is mailed alert notices, through `[notify.email]`'s SMTP server and
/// sender.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertEmailConfig {
    /// Recipients; empty: no email.
    pub to: Vec<String>,
    /// The severities mailed: `page`, `ticket`. Default both.
    pub severities: Vec<String>,
}

impl Default for AlertEmailConfig {
    fn default() -> Self {
        Self {
            to: Vec::new(),
            severities: both_severities(),
        }
    }
}

impl AlertWebhookConfig {
    /// What is wrong with these settings.
    pub fn check(&self) -> Result<(), String> {
        check_severities("alerts.webhook.severities", &self.severities)
    }
}

impl AlertEmailConfig {
    /// What is wrong with these settings.
    pub fn check(&self) -> Result<(), String> {
        check_severities("alerts.email.severities", &self.severities)
    }
}

/// A notice as delivered: the job's arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotifyArgs {
    /// The alert's id.
    pub alert_id: i64,
    /// `firing`, `repeat` or `resolved`.
    pub event: AlertEvent,
    /// The rule.
    pub rule: String,
    /// What it is about, or empty.
    pub subject: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// One line a person can act on.
    pub summary: String,
    /// The figures behind it.
    pub figures: serde_json::Value,
    /// When the condition was first seen.
    pub pending_at: DateTime<Utc>,
    /// When it fired.
    pub firing_at: Option<DateTime<Utc>>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The dashboard page to look at.
    pub link: String,
}

impl JobArgs for AlertNotifyArgs {
    const KIND: &'static str = ALERT_NOTIFY_KIND;
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl AlertNotifyArgs {
    /// The notice of `row` for `event`, linking to `link`.
    pub fn new(row: &AlertRow, event: AlertEvent, link: String) -> Self {
        Self {
            alert_id: row.id,
            event,
            rule: row.rule.clone(),
            subject: row.subject.clone(),
            severity: row.severity.clone(),
            summary: row.summary.clone(),
            figures: row.figures.clone(),
            pending_at: row.pending_at,
            firing_at: row.firing_at,
            resolved_at: row.resolved_at,
            link,
        }
    }

    fn about(&self) -> String {
        if self.subject.is_empty() {
            self.rule.clone()
        } else {
            format!("{} ({})", self.rule, self.subject)
        }
    }

    /// The email's subject line.
    pub fn title(&self) -> String {
        let what = match self.event {
            AlertEvent::Firing => "FIRING",
            AlertEvent::Repeat => "STILL FIRING",
            AlertEvent::Resolved => "RESOLVED",
        };
        format!("[docket {what}] {}: {}", self.severity, self.about())
    }

    /// The plain-text body: what fired, since when, the figures, where to look.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let since = self.firing_at.unwrap_or(self.pending_at);
        let _ = match self.event {
            AlertEvent::Resolved => writeln!(
                t,
                "docket alert {} resolved at {} (it fired at {}).",
                self.about(),
                self.resolved_at.map(time).unwrap_or_default(),
                time(since)
            ),
            _ => writeln!(
                t,
                "docket alert {} is firing, since {} (condition first seen {}).",
                self.about(),
                time(since),
                time(self.pending_at)
            ),
        };
        let _ = writeln!(t, "\n{}\n", self.summary);
        if let Some(map) = self.figures.as_object() {
            let _ = writeln!(t, "Figures:");
            for (k, v) in map {
                if k != "counter_at_notice" {
                    let _ = writeln!(t, "  {k}: {v}");
                }
            }
        }
        let _ = writeln!(t, "\nSeverity: {}", self.severity);
        let _ = writeln!(t, "Look: {}", self.link);
        if self.event != AlertEvent::Resolved {
            let subject = if self.subject.is_empty() {
                String::new()
            } else {
                format!(" --subject {}", self.subject)
            };
            let _ = writeln!(
                t,
                "Silence: docket alerts silence {}{subject} --for 2h --reason \"…\"",
                self.rule
            );
        }
        t
    }

    fn event_type(&self) -> String {
        format!("alert.{}", self.event.as_str())
    }
}

/// Sends alert notices to the configured webhook and email.
pub struct AlertDelivery {
    webhook: Option<(WebhookSender, String, WebhookFormat, Vec<String>)>,
    mailer: Option<(Mailer, Vec<String>)>,
}

impl AlertDelivery {
    /// The channels `[alerts.webhook]` and `[alerts.email]` configure (SMTP server and sender
    /// from `notify_email`; the signing secret defaults to `notify_webhook`'s).
    pub fn new(
        webhook: &AlertWebhookConfig,
        email: &AlertEmailConfig,
        notify_webhook: &WebhookConfig,
        notify_email: &EmailConfig,
    ) -> Result<Self, NotifyError> {
        let webhook = match &webhook.url {
            Some(url) => {
                let config = WebhookConfig {
                    url: Some(url.clone()),
                    secret: webhook
                        .secret
                        .clone()
                        .or_else(|| notify_webhook.secret.clone()),
                    allow_private: webhook.allow_private,
                    ..notify_webhook.clone()
                };
                Some((
                    WebhookSender::new(&config)?,
                    url.clone(),
                    webhook.format,
                    webhook.severities.clone(),
                ))
            }
            None => None,
        };
        let mailer = if email.to.is_empty() {
            None
        } else {
            let config = EmailConfig {
                to: email.to.clone(),
                on_completed: true,
                on_failed: true,
                ..notify_email.clone()
            };
            Mailer::new(&config)?.map(|m| (m, email.severities.clone()))
        };
        Ok(Self { webhook, mailer })
    }

    /// Whether any channel is configured.
    pub fn any(&self) -> bool {
        self.webhook.is_some() || self.mailer.is_some()
    }

    /// Sends `notice` on every channel.
    pub async fn deliver(&self, notice: &AlertNotifyArgs) -> Result<(), NotifyFailure> {
        let wants = |s: &[String]| s.contains(&notice.severity);
        if let Some((sender, url, format, severities)) = &self.webhook
            && wants(severities)
        {
            // Stable across retries of this notice, so receivers can deduplicate.
            let msg_id = format!(
                "msg_alert_{}_{}_{}",
                notice.alert_id,
                notice.event.as_str(),
                notice
                    .resolved_at
                    .or(notice.firing_at)
                    .unwrap_or(notice.pending_at)
                    .timestamp()
            );
            let body = match format {
                WebhookFormat::Standard => docket_notify::webhook::event(
                    &notice.event_type(),
                    serde_json::to_value(notice).unwrap_or_default(),
                    Utc::now(),
                ),
                WebhookFormat::Slack => serde_json::json!({
                    "text": format!("{}\n{}", notice.title(), notice.text())
                }),
            };
            sender
                .send(url, &msg_id, &body)
                .await
                .map_err(|error| NotifyFailure::new("webhook", error))?;
        }
        if let Some((mailer, severities)) = &self.mailer
            && wants(severities)
        {
            mailer
                .send(&notice.title(), &notice.text())
                .await
                .map_err(|error| NotifyFailure::new("email", error))?;
        }
        Ok(())
    }

    /// Registers the delivery job's handler.
    pub fn register<D: Driver>(self, workers: &mut Workers<D>) {
        workers.register(AlertNotifyWorker(std::sync::Arc::new(self)));
    }
}

struct AlertNotifyWorker(std::sync::Arc<AlertDelivery>);

impl<D: Driver> Worker<D> for AlertNotifyWorker {
    type Args = AlertNotifyArgs;

    async fn work(&self, _ctx: JobContext<D>, args: AlertNotifyArgs) -> Result<(), JobError> {
        self.0.deliver(&args).await.map_err(|e| e.to_job_error())?;
        tracing::info!(
            alert_id = args.alert_id,
            event = args.event.as_str(),
            "alert notice delivered"
        );
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(120)
    }
}
