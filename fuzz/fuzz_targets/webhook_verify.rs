//! Standard Webhooks verification (`docket_notify::verify`, `WebhookSigner::verify`) with
//! fuzzed secret, headers, body, clock and tolerance: it must never panic, and a message it
//! signed itself must verify (and stop verifying once the body changes).
//!
//! Input: fields separated by `\n`: secret, id, timestamp, signature; the rest is the body.
//! The first 16 bytes of the body (when present) also give `now` and the tolerance.
#![no_main]

use std::time::Duration;

use docket_notify::{WebhookHeaders, WebhookSigner, verify};
use libfuzzer_sys::fuzz_target;

/// A header given as `-` is absent.
fn opt(s: &str) -> Option<&str> {
    if s == "-" { None } else { Some(s) }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(5, |&b| b == b'\n');
    let secret = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let id = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let ts = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let sig = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let (now, tol) = if body.len() >= 16 {
        (
            i64::from_le_bytes(body[..8].try_into().unwrap()),
            u64::from_le_bytes(body[8..16].try_into().unwrap()),
        )
    } else {
        (1_700_000_000, 300)
    };
    let tolerance = Duration::from_secs(tol);

    let signers: Vec<WebhookSigner> = [secret.as_str(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        .iter()
        .filter_map(|s| WebhookSigner::new(s).ok())
        .collect();
    // Fuzzed headers, each possibly absent.
    let headers = WebhookHeaders {
        id: opt(&id),
        timestamp: opt(&ts),
        signature: opt(&sig),
    };
    let _ = verify(&signers, &headers, body, now, tolerance);
    let _ = verify(&[], &headers, body, now, tolerance);
    for s in &signers {
        let _ = s.verify(&headers, body, now, tolerance);
    }

    // Sign, then verify: must pass with the fuzzed id and the clock at the timestamp.
    let Ok(t) = ts.trim().parse::<i64>() else {
        return;
    };
    let id = id.trim();
    if id.is_empty() {
        return;
    }
    for s in &signers {
        let signature = s.sign(id, t, body);
        let h = WebhookHeaders::new(id, &ts, &signature);
        s.verify(&h, body, t, Duration::ZERO)
            .unwrap_or_else(|e| panic!("own signature refused: {e}"));
        // With a fuzzed extra entry in front (a rotation list) it still verifies, unless the
        // extra entry itself has whitespace-joined garbage, which is only more entries.
        let two = format!("{} {signature}", sig.trim());
        let h2 = WebhookHeaders::new(id, &ts, &two);
        s.verify(&h2, body, t, Duration::ZERO)
            .unwrap_or_else(|e| panic!("own signature after another entry refused: {e}"));
        let mut other = body.to_vec();
        other.push(b'x');
        assert!(
            s.verify(&h, &other, t, Duration::ZERO).is_err(),
            "changed body verified"
        );
    }
});
