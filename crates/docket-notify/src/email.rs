//! Plain-text email over SMTP, with lettre.
//!
//! The server is given as a URL and parsed by lettre's
//! `AsyncSmtpTransport::from_url`:
//!
//! * `smtp://host:25`: plain SMTP, no TLS (only sensible on loopback or a
//!   trusted network).
//! * `smtp://user:pass@host:587?tls=required`: STARTTLS, required.
//!   (`?tls=opportunistic` upgrades when the server offers it.)
//! * `smtps://user:pass@host:465`: TLS from the first byte.
//!
//! User name and password in the URL are percent-decoded and used for
//! `AUTH`; they never appear in `Debug` output or errors.

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::error::{DeliveryError, NotifyError};
use crate::notice::{DocumentNotice, NoticeStatus};

/// Email settings.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// SMTP server URL (see the module docs). No URL: no email.
    pub smtp_url: Option<String>,
    /// Sender, `addr@example.com` or `Name <addr@example.com>`. Default
    /// `docket@localhost`.
    pub from: String,
    /// Recipients. Empty: no email.
    pub to: Vec<String>,
    /// Send an email when a document completes. Default false.
    pub on_completed: bool,
    /// Send an email when a document fails. Default true.
    pub on_failed: bool,
    /// Limit for one whole send (connect, SMTP dialogue), in milliseconds.
    /// Default 10000.
    pub timeout_ms: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "docket@localhost".into(),
            to: Vec::new(),
            on_completed: false,
            on_failed: true,
            timeout_ms: 10_000,
        }
    }
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("smtp_url", &self.smtp_url.as_deref().map(mask_url))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("on_completed", &self.on_completed)
            .field("on_failed", &self.on_failed)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// The URL with any password replaced by `***`. An unparseable URL that
/// may hold credentials is not shown at all.
pub(crate) fn mask_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot have credentials at all.
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            } else {
                url.to_owned()
            }
        }
        Err(_) if url.contains('@') => "<unparseable URL, hidden>".to_owned(),
        Err(_) => url.to_owned(),
    }
}

fn parse_mailbox(address: &str) -> Result<Mailbox, NotifyError> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| NotifyError::InvalidAddress {
            address: address.to_owned(),
            reason: e.to_string(),
        })
}

/// Sends plain-text email through one SMTP server. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    on_completed: bool,
    on_failed: bool,
    timeout: Duration,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Builds a mailer, or `None` when email is not configured (no
    /// `smtp_url`, or no recipients).
    ///
    /// A URL lettre cannot use, or an unparseable `from`/`to` address, is an
    /// error. Nothing is sent and no connection is made here.
    pub fn new(config: &EmailConfig) -> Result<Option<Self>, NotifyError> {
        let Some(url) = config
            .smtp_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Ok(None);
        };
        if config.to.is_empty() {
            tracing::warn!("email: smtp_url is set but `to` is empty, so no email will be sent");
            return Ok(None);
        }
        let from = parse_mailbox(&config.from)?;
        let to = config
            .to
            .iter()
            .map(|a| parse_mailbox(a))
            .collect::<Result<Vec<_>, _>>()?;
        let server = mask_url(url);
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| NotifyError::InvalidUrl {
                url: server.clone(),
                reason: e.to_string(),
            })?
            .timeout(Some(timeout))
            .build();
        Ok(Some(Self {
            transport,
            server,
            from,
            to,
            on_completed: config.on_completed,
            on_failed: config.on_failed,
            timeout,
        }))
    }

    /// Whether the configuration asks for email on this outcome.
    pub fn wants(&self, status: NoticeStatus) -> bool {
        match status {
            NoticeStatus::Completed => self.on_completed,
            NoticeStatus::Failed => self.on_failed,
        }
    }

    /// Sends one plain-text (UTF-8) email to all recipients, with a fresh
    /// `Message-ID` (in the sender's domain) and the current `Date`.
    ///
    /// The whole send is bounded by `timeout_ms`. SMTP 4xx replies,
    /// connection errors and timeouts are retryable; 5xx replies (including
    /// a rejected recipient, which fails the whole message) are permanent.
    pub async fn send(&self, subject: &str, text_body: &str) -> Result<(), DeliveryError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!(
                "<{}@{}>",
                uuid::Uuid::now_v7().simple(),
                self.from.email.domain()
            )))
            .date_now()
            // RFC 2045: a MIME body (quoted-printable, a charset) needs `MIME-Version`.
            .header(lettre::message::header::MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let message = builder
            .body(text_body.to_owned())
            .map_err(|e| DeliveryError::InvalidMessage(e.to_string()))?;

        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_) => Err(DeliveryError::Timeout(self.timeout)),
            Ok(Err(e)) => Err(self.classify(&e)),
            Ok(Ok(response)) => {
                tracing::debug!(server = %self.server, code = %response.code(), "email sent");
                Ok(())
            }
        }
    }

    /// Renders and sends the notice email when [`wants`](Self::wants) says
    /// so. Returns whether an email was sent.
    pub async fn send_notice(&self, notice: &DocumentNotice) -> Result<bool, DeliveryError> {
        if !self.wants(notice.status) {
            return Ok(false);
        }
        let (subject, body) = notice.email();
        self.send(&subject, &body).await.map(|()| true)
    }

    fn classify(&self, error: &lettre::transport::smtp::Error) -> DeliveryError {
        let message = crate::webhook::error_chain(error);
        if let Some(code) = error.status() {
            let code = u16::from(code);
            return if error.is_permanent() {
                DeliveryError::SmtpPermanent { code, message }
            } else {
                DeliveryError::SmtpTransient { code, message }
            };
        }
        if error.is_timeout() {
            return DeliveryError::Timeout(self.timeout);
        }
        let mut source = std::error::Error::source(error);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::*;
                if matches!(
                    io.kind(),
                    ConnectionRefused
                        | ConnectionReset
                        | ConnectionAborted
                        | NotConnected
                        | AddrNotAvailable
                        | HostUnreachable
                        | NetworkUnreachable
                ) {
                    return DeliveryError::Connect(format!("{}: {message}", self.server));
                }
            }
            source = e.source();
        }
        DeliveryError::Smtp(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("smtps://user:s3cret@mail.example.com:465"),
            "smtps://user:***@mail.example.com:465"
        );
        assert_eq!(mask_url("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
        let config = EmailConfig {
            smtp_url: Some("smtp://me:p%40ss@host:587?tls=required".into()),
            ..Default::default()
        };
        let dbg = format!("{config:?}");
        assert!(!dbg.contains("p%40ss") && dbg.contains("***"), "{dbg}");
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let c: EmailConfig = serde_json::from_str("{}").unwrap();
        assert!(!c.on_completed && c.on_failed);
        assert_eq!(c.timeout_ms, 10_000);
        assert!(serde_json::from_str::<EmailConfig>(r#"{"smtp": "x"}"#).is_err());
    }

    #[test]
    fn disabled_or_invalid() {
        assert!(Mailer::new(&EmailConfig::default()).unwrap().is_none());
        let no_to = EmailConfig {
            smtp_url: Some("smtp://127.0.0.1:2525".into()),
            ..Default::default()
        };
        assert!(Mailer::new(&no_to).unwrap().is_none());

        let ok = EmailConfig {
            to: vec!["ops@example.com".into()],
            ..no_to.clone()
        };
        let mailer = Mailer::new(&ok).unwrap().unwrap();
        assert!(mailer.wants(NoticeStatus::Failed));
        assert!(!mailer.wants(NoticeStatus::Completed));

        let bad_to = EmailConfig {
            to: vec!["not an address".into()],
            ..ok.clone()
        };
        assert!(matches!(
            Mailer::new(&bad_to),
            Err(NotifyError::InvalidAddress { .. })
        ));
        let bad_from = EmailConfig {
            from: "@@".into(),
            ..ok.clone()
        };
        assert!(matches!(
            Mailer::new(&bad_from),
            Err(NotifyError::InvalidAddress { .. })
        ));
        let bad_url = EmailConfig {
            smtp_url: Some("http://user:pw@127.0.0.1:2525".into()),
            ..ok.clone()
        };
        match Mailer::new(&bad_url) {
            Err(NotifyError::InvalidUrl { url, .. }) => assert!(!url.contains("pw"), "{url}"),
            other => panic!("expected InvalidUrl, got {other:?}"),
        }
    }
}
