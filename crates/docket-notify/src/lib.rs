//! Outbound notifications.
//!
//! * [`webhook`]: signed HTTP callbacks in the [Standard Webhooks] format
//!   ([`WebhookSigner`], [`WebhookSender`]) and the matching verifier
//!   ([`verify`]), which the HTTP layer also uses for inbound webhooks.
//! * [`email`]: plain-text email over SMTP ([`Mailer`]).
//! * [`guard`]: the SSRF guard every outbound request on a user's behalf goes
//!   through (webhooks here, fetches by URL in the pipeline).
//! * [`notice`]: rendering a document's completed/failed notice as an email
//!   or as a webhook `data` object ([`DocumentNotice`]).
//!
//! Every delivery failure is a [`DeliveryError`] whose
//! [`retryable`](DeliveryError::retryable) tells the job layer whether to try
//! again (connection errors, timeouts, HTTP 5xx/408/429, SMTP 4xx) or give up
//! (other HTTP 4xx, invalid URLs, SMTP 5xx).
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

pub mod email;
mod error;
pub mod guard;
pub mod notice;
pub mod webhook;

pub use email::{EmailConfig, Mailer};
pub use error::{DeliveryError, NotifyError, VerifyError};
pub use notice::{DocumentNotice, NoticeStatus};
pub use webhook::{
    DEFAULT_TOLERANCE, DeliveryReport, WebhookConfig, WebhookHeaders, WebhookSender, WebhookSigner,
    event, new_message_id, verify,
};
