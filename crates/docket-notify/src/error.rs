//! Error types shared by the webhook and email halves of the crate.

use std::time::Duration;

/// A configuration or construction error: bad secret, URL or address.
///
/// These are found when a [`WebhookSender`](crate::WebhookSender),
/// [`WebhookSigner`](crate::WebhookSigner) or [`Mailer`](crate::Mailer) is
/// built, so a misconfigured service fails at startup rather than at the
/// first delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The webhook secret is empty or its `whsec_` part is not valid base64.
    #[error("invalid webhook secret: {0}")]
    InvalidSecret(String),
    /// A URL (webhook target or SMTP server) could not be used. Passwords in
    /// the URL are masked.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An email address (`from` or `to`) could not be parsed.
    #[error("invalid email address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as configured.
        address: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    HttpClient(String),
}

/// Why an incoming webhook failed verification.
///
/// Each case is distinct so that the receiving side can log precisely why a
/// request was refused; all of them should be answered with a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header (`webhook-id`, `webhook-timestamp` or
    /// `webhook-signature`) is absent or empty.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer number of seconds.
    #[error("invalid webhook-timestamp {0:?}")]
    InvalidTimestamp(String),
    /// The timestamp is older than `now - tolerance` (possible replay).
    #[error("webhook-timestamp {timestamp} is too old (now {now})")]
    TimestampTooOld {
        /// The timestamp from the header.
        timestamp: i64,
        /// The verifier's current time.
        now: i64,
    },
    /// The timestamp is later than `now + tolerance`.
    #[error("webhook-timestamp {timestamp} is too far in the future (now {now})")]
    TimestampTooNew {
        /// The timestamp from the header.
        timestamp: i64,
        /// The verifier's current time.
        now: i64,
    },
    /// No `v1` signature in the header matches any of the secrets.
    #[error("no matching webhook signature")]
    NoMatchingSignature,
}

/// A failed delivery (webhook or email), classified for retrying.
///
/// [`retryable`](Self::retryable) is `true` for failures that may go away by
/// themselves (connection refused, timeouts, HTTP 5xx, 408, 429, SMTP 4xx)
/// and `false` for failures that will repeat (other HTTP 4xx and 3xx, invalid
/// or refused URLs, SMTP 5xx, a message that cannot be built).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The target URL is not a usable `http`/`https` URL. Permanent.
    #[error("invalid webhook URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The SSRF guard refused the target: a private, loopback, link-local or
    /// reserved address, or a name that resolves only to such addresses.
    /// Nothing was sent. Permanent.
    #[error("refused: {0}")]
    Refused(String),
    /// The connection could not be established (refused, DNS, TLS
    /// handshake). Retryable.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// No complete answer within the configured timeout. Retryable.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The webhook endpoint answered with a non-2xx status. Retryable for
    /// 5xx, 408 and 429, permanent otherwise.
    #[error("webhook endpoint answered HTTP {status}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The `Retry-After` delay, when the response had a parseable one.
        retry_after: Option<Duration>,
        /// The start of the response body (at most `max_response_bytes`),
        /// for logging.
        body: String,
        /// Time from sending the request to receiving the response.
        elapsed: Duration,
    },
    /// Another transport-level failure (connection reset mid-request, ...).
    /// Retryable.
    #[error("request failed: {0}")]
    Transport(String),
    /// The SMTP server answered with a 4xx (transient) reply. Retryable.
    #[error("SMTP server answered {code} (transient): {message}")]
    SmtpTransient {
        /// The SMTP reply code, e.g. 451.
        code: u16,
        /// The full error text.
        message: String,
    },
    /// The SMTP server answered with a 5xx (permanent) reply. Permanent.
    #[error("SMTP server answered {code} (permanent): {message}")]
    SmtpPermanent {
        /// The SMTP reply code, e.g. 550.
        code: u16,
        /// The full error text.
        message: String,
    },
    /// Another SMTP failure (network error, TLS error, garbled reply).
    /// Retryable.
    #[error("SMTP error: {0}")]
    Smtp(String),
    /// The message could not be built (an email that lettre refuses, a
    /// webhook id that cannot be a header value). Permanent.
    #[error("cannot build message: {0}")]
    InvalidMessage(String),
}

impl DeliveryError {
    /// Whether trying again later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::InvalidUrl { .. }
            | Self::Refused(_)
            | Self::SmtpPermanent { .. }
            | Self::InvalidMessage(_) => false,
            Self::Connect(_)
            | Self::Timeout(_)
            | Self::Transport(_)
            | Self::SmtpTransient { .. }
            | Self::Smtp(_) => true,
            Self::Http { status, .. } => http_status_retryable(*status),
        }
    }

    /// The delay the server asked for with `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status or SMTP reply code, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            Self::SmtpTransient { code, .. } | Self::SmtpPermanent { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Retry policy for non-2xx HTTP answers: 5xx, 408 (Request Timeout) and 429
/// (Too Many Requests) are worth retrying; everything else (other 4xx, and
/// 3xx since redirects are not followed) will keep failing.
pub(crate) fn http_status_retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}
