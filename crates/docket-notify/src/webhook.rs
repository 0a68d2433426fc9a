//! Signed outbound webhooks in the [Standard Webhooks] format, and their
//! verifier.
//!
//! Every request carries three headers:
//!
//! * `webhook-id`: the message id (see [`new_message_id`]). It must stay the
//!   same across retries of one event so that receivers can deduplicate; the
//!   caller generates it once and stores it with the job.
//! * `webhook-timestamp`: the send time in unix seconds, as a string.
//! * `webhook-signature`: `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`.
//!   A receiver accepts the request when any space-separated `v1,...` entry
//!   matches any of its keys, which is how secrets are rotated.
//!
//! # Secrets
//!
//! A secret of the form `whsec_<base64>` (the format Standard Webhooks
//! libraries generate and expect) uses the base64-decoded bytes after the
//! prefix as the HMAC key; padding is optional, and invalid base64 after the
//! prefix is an error rather than silently falling back. Any other non-empty
//! string is used as a raw key: its UTF-8 bytes, as they are. Both sides must
//! therefore be configured with the same string. [`generate_secret`] makes a
//! fresh `whsec_` secret with 32 random bytes.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{DeliveryError, NotifyError, VerifyError};
use crate::guard::{self, GuardError, GuardedResolver, Resolver, SystemResolver};

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the message id.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the unix timestamp (seconds) of the attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// Prefix of secrets in the Standard Webhooks format.
pub const SECRET_PREFIX: &str = "whsec_";
/// Default allowed clock difference between sender and verifier (5 minutes).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// `User-Agent` of outbound webhook requests.
pub const USER_AGENT: &str = concat!("docket-webhooks/", env!("CARGO_PKG_VERSION"));

/// Base64 decoding for `whsec_` secrets: standard alphabet, padding optional.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Signs webhook messages with one key (see the module docs for how a secret
/// string becomes a key).
#[derive(Clone)]
pub struct WebhookSigner {
    key: Vec<u8>,
}

impl fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSigner")
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .finish()
    }
}

impl WebhookSigner {
    /// Builds a signer from a `whsec_<base64>` secret or a raw secret string.
    ///
    /// Fails when the secret (or its decoded key) is empty, or when the part
    /// after `whsec_` is not valid base64.
    pub fn new(secret: &str) -> Result<Self, NotifyError> {
        let key = if let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) {
            SECRET_BASE64.decode(encoded.trim()).map_err(|e| {
                NotifyError::InvalidSecret(format!(
                    "the part after {SECRET_PREFIX} is not valid base64: {e}"
                ))
            })?
        } else {
            secret.as_bytes().to_vec()
        };
        if key.is_empty() {
            return Err(NotifyError::InvalidSecret("the secret is empty".into()));
        }
        Ok(Self { key })
    }

    /// Builds a signer directly from key bytes.
    pub fn from_key(key: impl Into<Vec<u8>>) -> Result<Self, NotifyError> {
        let key = key.into();
        if key.is_empty() {
            return Err(NotifyError::InvalidSecret("the key is empty".into()));
        }
        Ok(Self { key })
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `v1,<base64>` signature of `"{msg_id}.{timestamp}.{body}"`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(msg_id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Constant-time check of one raw (decoded) signature.
    fn matches(&self, msg_id: &str, timestamp: i64, body: &[u8], signature: &[u8]) -> bool {
        self.mac(msg_id, timestamp, body)
            .verify_slice(signature)
            .is_ok()
    }

    /// Verifies a request against this signer alone; see [`verify`].
    pub fn verify(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
        now: i64,
        tolerance: Duration,
    ) -> Result<(), VerifyError> {
        verify(std::slice::from_ref(self), headers, body, now, tolerance)
    }
}

/// A fresh random secret in the `whsec_<base64>` form (32 random bytes from
/// the operating system's generator).
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    // Each v4 UUID has 122 random bits (6 are fixed): 244 random bits in all.
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// A new message id: `msg_` followed by a UUIDv7 in simple (32 hex digit)
/// form. Generate it once per event and reuse it for every retry.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// The Standard Webhooks payload: `{"type", "timestamp" (RFC 3339), "data"}`.
pub fn event(kind: &str, data: serde_json::Value, at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "type": kind,
        "timestamp": at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "data": data,
    })
}

/// The three Standard Webhooks headers of a request, as received. Absent
/// headers are `None`; empty ones are treated as absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

impl<'a> WebhookHeaders<'a> {
    /// Headers from explicit values.
    pub fn new(id: &'a str, timestamp: &'a str, signature: &'a str) -> Self {
        Self {
            id: Some(id),
            timestamp: Some(timestamp),
            signature: Some(signature),
        }
    }

    /// Headers looked up by (lower-case) name, e.g. from an HTTP header map:
    /// `WebhookHeaders::from_lookup(|n| map.get(n).and_then(|v| v.to_str().ok()))`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self {
            id: lookup(HEADER_ID),
            timestamp: lookup(HEADER_TIMESTAMP),
            signature: lookup(HEADER_SIGNATURE),
        }
    }
}

fn present<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, VerifyError> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(VerifyError::MissingHeader(name)),
    }
}

/// Verifies a Standard Webhooks request.
///
/// Checks, in this order: all three headers are present; the timestamp is
/// an integer; it lies within `tolerance` of `now` (unix seconds) in either
/// direction; and at least one `v1,<base64>` entry of the signature header
/// matches at least one of `signers` (compared in constant time). Entries
/// with other versions or undecodable base64 are ignored. With no signers
/// nothing can match, so the result is [`VerifyError::NoMatchingSignature`].
pub fn verify(
    signers: &[WebhookSigner],
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let id = present(headers.id, HEADER_ID)?;
    let timestamp = present(headers.timestamp, HEADER_TIMESTAMP)?;
    let signature = present(headers.signature, HEADER_SIGNATURE)?;

    let ts: i64 = timestamp
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp(timestamp.to_owned()))?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if ts < now.saturating_sub(tolerance) {
        return Err(VerifyError::TimestampTooOld { timestamp: ts, now });
    }
    if ts > now.saturating_add(tolerance) {
        return Err(VerifyError::TimestampTooNew { timestamp: ts, now });
    }

    for entry in signature.split_ascii_whitespace() {
        let Some(("v1", encoded)) = entry.split_once(',') else {
            continue;
        };
        let Ok(raw) = STANDARD.decode(encoded) else {
            continue;
        };
        if signers.iter().any(|s| s.matches(id, ts, body, &raw)) {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatchingSignature)
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_max_response_bytes() -> usize {
    4096
}

/// Webhook settings.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Default target, used when a document has no callback URL of its own.
    pub url: Option<String>,
    /// Signing secret (`whsec_<base64>` or raw, see the module docs). Without
    /// one, requests are sent unsigned, which receivers cannot authenticate.
    pub secret: Option<String>,
    /// Limit for a whole attempt (connect, send, read the answer), in
    /// milliseconds. Default 10000.
    pub timeout_ms: u64,
    /// At most this many bytes of the response body are read (and kept for
    /// logging); the rest is discarded. Default 4096.
    pub max_response_bytes: usize,
    /// Allow private, loopback and link-local targets. Off by default: a callback URL comes
    /// from a user, and must not make docket post into its own network (see
    /// [`guard`]).
    pub allow_private: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret: None,
            timeout_ms: default_timeout_ms(),
            max_response_bytes: default_max_response_bytes(),
            allow_private: false,
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("timeout_ms", &self.timeout_ms)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

/// The outcome of a successful (2xx) delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The HTTP status code (2xx).
    pub status: u16,
    /// Time from sending the request to having read the response.
    pub elapsed: Duration,
    /// The `webhook-id` that was sent.
    pub msg_id: String,
    /// The `webhook-timestamp` that was sent.
    pub timestamp: i64,
    /// The start of the response body (at most `max_response_bytes`, lossily
    /// decoded as UTF-8).
    pub response_body: String,
}

/// Sends signed webhooks. Cheap to clone; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    signer: Option<WebhookSigner>,
    default_url: Option<String>,
    timeout: Duration,
    max_response_bytes: usize,
    allow_private: bool,
}

fn parse_target(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme {other:?} is not http or https")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(parsed)
}

/// The error and its sources, joined with ": ".
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

/// `Retry-After` as delay-seconds or an HTTP-date (relative to `now`).
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let delta = at.with_timezone(&Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

impl WebhookSender {
    /// Builds a sender: validates the default URL and secret and creates an
    /// HTTP client that never follows redirects, ignores proxies, gives up
    /// after `timeout_ms` and, unless `allow_private`, refuses private,
    /// loopback and link-local targets (see [`guard`]).
    pub fn new(config: &WebhookConfig) -> Result<Self, NotifyError> {
        Self::with_resolver(config, Arc::new(SystemResolver))
    }

    /// A sender that resolves names with `resolver` (tests point names at
    /// addresses without touching the network).
    pub fn with_resolver(
        config: &WebhookConfig,
        resolver: Arc<dyn Resolver>,
    ) -> Result<Self, NotifyError> {
        if let Some(url) = &config.url {
            let target = parse_target(url).map_err(|reason| NotifyError::InvalidUrl {
                url: url.clone(),
                reason,
            })?;
            // An address the guard would refuse at every delivery fails at startup instead.
            guard::check_url_for(&target, config.allow_private, "posting to it").map_err(|e| {
                NotifyError::InvalidUrl {
                    url: url.clone(),
                    reason: format!("{e} (allow it with allow_private = true)"),
                }
            })?;
        }
        let signer = config
            .secret
            .as_deref()
            .map(WebhookSigner::new)
            .transpose()?;
        if signer.is_none() {
            tracing::debug!("no webhook secret configured: webhooks will be sent unsigned");
        }
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(GuardedResolver::new(
                resolver,
                config.allow_private,
            )))
            .build()
            .map_err(|e| NotifyError::HttpClient(error_chain(&e)))?;
        Ok(Self {
            client,
            signer,
            default_url: config.url.clone(),
            timeout,
            max_response_bytes: config.max_response_bytes,
            allow_private: config.allow_private,
        })
    }

    /// The configured default target, if any.
    pub fn default_url(&self) -> Option<&str> {
        self.default_url.as_deref()
    }

    /// The document's own callback URL when it has one, else the default.
    pub fn target<'a>(&'a self, callback_url: Option<&'a str>) -> Option<&'a str> {
        callback_url.or(self.default_url.as_deref())
    }

    /// The signer, when a secret is configured.
    pub fn signer(&self) -> Option<&WebhookSigner> {
        self.signer.as_ref()
    }

    /// POSTs `event` (serialized as JSON) to `url` with the Standard Webhooks
    /// headers, signed with the current time.
    ///
    /// Any 2xx answer is success. Everything else is a [`DeliveryError`]
    /// whose [`retryable`](DeliveryError::retryable) says whether to retry;
    /// redirects are not followed and count as permanent failures. A target
    /// the guard refuses (a private, loopback or link-local address, by
    /// itself or by what its name resolves to, unless `allow_private`) is a
    /// permanent [`DeliveryError::Refused`], and nothing is sent.
    pub async fn send(
        &self,
        url: &str,
        msg_id: &str,
        event: &serde_json::Value,
    ) -> Result<DeliveryReport, DeliveryError> {
        let target = parse_target(url).map_err(|reason| DeliveryError::InvalidUrl {
            url: url.to_owned(),
            reason,
        })?;
        guard::check_url_for(&target, self.allow_private, "posting to it").map_err(
            |e| match e {
                GuardError::BadUrl(reason) => DeliveryError::InvalidUrl {
                    url: url.to_owned(),
                    reason,
                },
                GuardError::Refused(why) => DeliveryError::Refused(why),
            },
        )?;
        if msg_id.is_empty() || !msg_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DeliveryError::InvalidMessage(format!(
                "webhook-id {msg_id:?} must be non-empty printable ASCII without spaces"
            )));
        }
        let body =
            serde_json::to_vec(event).map_err(|e| DeliveryError::InvalidMessage(e.to_string()))?;
        let timestamp = Utc::now().timestamp();

        let mut request = self
            .client
            .post(target)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, msg_id)
            .header(HEADER_TIMESTAMP, timestamp.to_string());
        if let Some(signer) = &self.signer {
            request = request.header(HEADER_SIGNATURE, signer.sign(msg_id, timestamp, &body));
        }
        let started = Instant::now();
        let mut response = request
            .body(body)
            .send()
            .await
            .map_err(|e| self.classify(url, &e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));

        // Keep at most max_response_bytes of the body; a read error here
        // does not change the outcome, which the status already decided.
        let mut kept = Vec::new();
        while kept.len() < self.max_response_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.max_response_bytes - kept.len();
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %error_chain(&e), "reading webhook response body");
                    break;
                }
            }
        }
        drop(response);
        let elapsed = started.elapsed();
        let response_body = String::from_utf8_lossy(&kept).into_owned();

        if (200..300).contains(&status) {
            tracing::debug!(url, msg_id, status, ?elapsed, "webhook delivered");
            Ok(DeliveryReport {
                status,
                elapsed,
                msg_id: msg_id.to_owned(),
                timestamp,
                response_body,
            })
        } else {
            tracing::debug!(url, msg_id, status, ?elapsed, "webhook rejected");
            Err(DeliveryError::Http {
                status,
                retry_after,
                body: response_body,
                elapsed,
            })
        }
    }

    fn classify(&self, url: &str, error: &reqwest::Error) -> DeliveryError {
        if let Some(refused) = guard::refused_in(error) {
            DeliveryError::Refused(refused.0.clone())
        } else if error.is_timeout() {
            DeliveryError::Timeout(self.timeout)
        } else if error.is_builder() {
            DeliveryError::InvalidUrl {
                url: url.to_owned(),
                reason: error_chain(error),
            }
        } else if error.is_connect() {
            DeliveryError::Connect(error_chain(error))
        } else {
            DeliveryError::Transport(error_chain(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_forms() {
        let a = WebhookSigner::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(a.key.len(), 24);
        // Padding is optional.
        let padded = WebhookSigner::new("whsec_aGVsbG8=").unwrap();
        let unpadded = WebhookSigner::new("whsec_aGVsbG8").unwrap();
        assert_eq!(padded.key, b"hello");
        assert_eq!(unpadded.key, b"hello");
        // Raw secrets are their UTF-8 bytes.
        assert_eq!(WebhookSigner::new("hunter2").unwrap().key, b"hunter2");
        assert!(WebhookSigner::new("").is_err());
        assert!(WebhookSigner::new("whsec_").is_err());
        assert!(WebhookSigner::new("whsec_!!notbase64!!").is_err());
        assert!(format!("{a:?}").contains("24 bytes"));
    }

    #[test]
    fn generated_secret_roundtrips() {
        let s = generate_secret();
        assert!(s.starts_with(SECRET_PREFIX));
        assert_eq!(WebhookSigner::new(&s).unwrap().key.len(), 32);
        assert_ne!(s, generate_secret());
    }

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("1994-11-06T08:49:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(37))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn config_defaults_and_masking() {
        let c: WebhookConfig = serde_json::from_str(r#"{"secret": "whsec_aGVsbG8="}"#).unwrap();
        assert_eq!(c.timeout_ms, 10_000);
        assert_eq!(c.max_response_bytes, 4096);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("aGVsbG8"), "{dbg}");
        assert!(serde_json::from_str::<WebhookConfig>(r#"{"urll": "x"}"#).is_err());
    }

    #[test]
    fn event_shape() {
        let at = DateTime::parse_from_rfc3339("2024-05-01T12:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = event("document.completed", serde_json::json!({"id": "d1"}), at);
        assert_eq!(
            e,
            serde_json::json!({
                "type": "document.completed",
                "timestamp": "2024-05-01T12:00:00.250Z",
                "data": {"id": "d1"},
            })
        );
    }

    #[test]
    fn message_ids() {
        let id = new_message_id();
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
        assert_ne!(id, new_message_id());
    }

    #[test]
    fn sender_rejects_bad_config() {
        let bad_url = WebhookConfig {
            url: Some("ftp://example.com/x".into()),
            ..Default::default()
        };
        assert!(matches!(
            WebhookSender::new(&bad_url),
            Err(NotifyError::InvalidUrl { .. })
        ));
        let private_default = WebhookConfig {
            url: Some("http://10.1.2.3/hook".into()),
            ..Default::default()
        };
        let err = WebhookSender::new(&private_default).unwrap_err();
        assert!(
            err.to_string().contains("10.1.2.3 is a private address"),
            "{err}"
        );
        assert!(
            WebhookSender::new(&WebhookConfig {
                allow_private: true,
                ..private_default
            })
            .is_ok()
        );
        let bad_secret = WebhookConfig {
            secret: Some("whsec_***".into()),
            ..Default::default()
        };
        assert!(matches!(
            WebhookSender::new(&bad_secret),
            Err(NotifyError::InvalidSecret(_))
        ));
    }
}
