//! What goes over the wire to an OpenAI-compatible endpoint and comes back: the request and
//! response bodies, the token estimate that sizes requests, and how error bodies, `Retry-After`
//! headers and retries are read.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};

/// First retry backoff; doubles per retry.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest retry backoff.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How much of an error body goes into an error message.
pub(super) const MAX_ERROR_BODY_CHARS: usize = 500;

/// The conservative token estimate: see the [module docs](super#token-counts).
pub fn estimate_tokens(text: &str) -> usize {
    // In quarter tokens.
    let quarters: usize = text
        .chars()
        .map(|c| {
            if c.is_ascii() {
                1
            } else if is_cjk(c) {
                4
            } else {
                2
            }
        })
        .sum();
    quarters.div_ceil(4).max(text.split_whitespace().count())
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF      // Hangul Jamo
        | 0x2E80..=0x2FDF    // CJK radicals
        | 0x3000..=0x30FF    // CJK punctuation, hiragana, katakana
        | 0x3100..=0x31FF    // bopomofo, Hangul compatibility jamo, katakana extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF00..=0xFFEF    // half- and full-width forms
        | 0x20000..=0x3FFFF) // CJK extensions B and later
}

#[derive(Serialize)]
pub(super) struct RequestBody<'a> {
    pub(super) model: &'a str,
    pub(super) input: &'a [&'a str],
    pub(super) encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) dimensions: Option<usize>,
}

#[derive(Deserialize)]
pub(super) struct ResponseBody {
    pub(super) data: Vec<ResponseItem>,
}

#[derive(Deserialize)]
pub(super) struct ResponseItem {
    pub(super) embedding: Vec<f32>,
    pub(super) index: usize,
}

/// The provider's error message from an error body: OpenAI's `{"error": {"message"}}`,
/// TEI's and Ollama's `{"error": "..."}`, `{"message"}` / `{"detail"}`, or the body itself.
pub(super) fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let pick = |v: &serde_json::Value| v.as_str().map(str::to_owned);
            v.get("error")
                .and_then(|e| e.get("message").and_then(pick).or_else(|| pick(e)))
                .or_else(|| v.get("message").and_then(pick))
                .or_else(|| v.get("detail").and_then(pick))
        });
    let message = from_json.unwrap_or_else(|| text.trim().to_owned());
    if message.is_empty() {
        return "(empty body)".to_owned();
    }
    match message.char_indices().nth(MAX_ERROR_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// The wait a `429` asks for: `retry-after-ms`, else `Retry-After` as seconds or an HTTP date.
pub(super) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = header(RETRY_AFTER.as_str())?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(86_400)),
    )
}

/// Exponential backoff with up to 25 % jitter: 100 ms, 200 ms, 400 ms, … at most 2 s.
pub(super) fn backoff(retry: u32) -> Duration {
    let base = BACKOFF_BASE
        .saturating_mul(1u32 << retry.min(16))
        .min(BACKOFF_MAX);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimate_is_conservative() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        // Never fewer than the words.
        assert_eq!(estimate_tokens("a b c d e f"), 6);
        // CJK: a token per character.
        assert_eq!(estimate_tokens("日本語"), 3);
        // Other non-ASCII: half a token per character.
        assert_eq!(estimate_tokens("привет"), 3);
    }

    #[test]
    fn retry_after_parses_seconds_dates_and_ms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(now + Duration::from_secs(30))
                .parse()
                .unwrap(),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(now - Duration::from_secs(30))
                .parse()
                .unwrap(),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(250)));
    }

    #[test]
    fn error_message_reads_common_shapes() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad key","type":"x"}}"#),
            "bad key"
        );
        assert_eq!(
            error_message(br#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(error_message(br#"{"detail":"nope"}"#), "nope");
        assert_eq!(error_message(b"  plain text "), "plain text");
        assert_eq!(error_message(b""), "(empty body)");
        assert_eq!(
            error_message("x".repeat(600).as_bytes()).chars().count(),
            MAX_ERROR_BODY_CHARS + 1
        );
    }
}
