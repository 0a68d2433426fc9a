//! The notify stage's deliveries: a signed webhook to the document's callback URL (or the
//! configured one) and an email, per the deployment's settings.
//!
//! Delivery is at least once: a retried notify job sends again, with the same `webhook-id`
//! so that receivers can drop the duplicate.

use chrono::Utc;
use docket_core::{DocumentRow, DocumentStatus};
use docket_notify::{
    DeliveryError, DocumentNotice, EmailConfig, Mailer, NoticeStatus, NotifyError, WebhookConfig,
    WebhookSender,
};
use docket_queue::JobError;
use serde::{Deserialize, Serialize};

/// `[notify]`: webhook and email settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Outbound webhooks.
    pub webhook: WebhookConfig,
    /// Email by SMTP.
    pub email: EmailConfig,
}

/// Sends notifications for finished documents.
#[derive(Default)]
pub struct Notifier {
    webhook: Option<WebhookSender>,
    mailer: Option<Mailer>,
}

/// A delivery that failed.
#[derive(Debug, thiserror::Error)]
#[error("{channel} delivery failed: {error}")]
pub struct NotifyFailure {
    channel: &'static str,
    #[source]
    error: DeliveryError,
}

impl NotifyFailure {
    /// A failed delivery on `channel` (`webhook`, `email`).
    pub fn new(channel: &'static str, error: DeliveryError) -> Self {
        Self { channel, error }
    }

    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.error.retryable()
    }

    /// The job error that retries (or not) the delivery.
    pub fn to_job_error(&self) -> JobError {
        match (self.is_retryable(), self.error.retry_after()) {
            (false, _) => JobError::permanent(self.to_string()),
            (true, Some(after)) => JobError::retry_after(self.to_string(), after),
            (true, None) => JobError::retryable(self.to_string()),
        }
    }
}

impl Notifier {
    /// Sends nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Builds the senders the configuration asks for.
    pub fn new(config: &NotifyConfig) -> Result<Self, NotifyError> {
        Ok(Self {
            webhook: Some(WebhookSender::new(&config.webhook)?),
            mailer: Mailer::new(&config.email)?,
        })
    }

    fn webhook_target<'a>(&'a self, doc: &'a DocumentRow) -> Option<&'a str> {
        self.webhook
            .as_ref()
            .and_then(|w| w.target(doc.callback_url.as_deref()))
    }

    /// Whether a completed document has anything to notify.
    pub fn wants_completed(&self, doc: &DocumentRow) -> bool {
        self.webhook_target(doc).is_some()
            || self
                .mailer
                .as_ref()
                .is_some_and(|m| m.wants(NoticeStatus::Completed))
    }

    /// Whether a failed document has anything to notify.
    pub fn wants_failed(&self, doc: &DocumentRow) -> bool {
        self.webhook_target(doc).is_some()
            || self
                .mailer
                .as_ref()
                .is_some_and(|m| m.wants(NoticeStatus::Failed))
    }

    /// Sends the webhook and the email for `doc`.
    pub async fn deliver(&self, doc: &DocumentRow, failure: bool) -> Result<(), NotifyFailure> {
        let notice = notice(doc, failure);
        if let (Some(sender), Some(url)) = (&self.webhook, self.webhook_target(doc)) {
            // Stable across retries of this notification, so receivers can deduplicate.
            let msg_id = format!(
                "msg_{}_{}_{}",
                doc.id.simple(),
                doc.generation,
                notice.status.as_str()
            );
            let report = sender
                .send(url, &msg_id, &notice.webhook_event(Utc::now()))
                .await
                .map_err(|error| NotifyFailure {
                    channel: "webhook",
                    error,
                })?;
            tracing::info!(document_id = %doc.id, status = report.status, "webhook delivered");
        }
        if let Some(mailer) = &self.mailer {
            mailer
                .send_notice(&notice)
                .await
                .map_err(|error| NotifyFailure {
                    channel: "email",
                    error,
                })?;
        }
        Ok(())
    }
}

fn notice(doc: &DocumentRow, failure: bool) -> DocumentNotice {
    let failed = failure || doc.status == DocumentStatus::Failed;
    DocumentNotice {
        id: doc.id.to_string(),
        filename: doc.filename.clone().unwrap_or_else(|| doc.id.to_string()),
        status: if failed {
            NoticeStatus::Failed
        } else {
            NoticeStatus::Completed
        },
        error: doc.error.clone(),
        chunk_count: doc.chunk_count.max(0) as u64,
        token_count: doc.token_count.max(0) as u64,
        stage: if failed {
            doc.error_stage.clone()
        } else {
            None
        },
    }
}
