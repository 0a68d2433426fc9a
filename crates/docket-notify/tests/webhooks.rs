//! Webhook delivery against a loopback axum receiver, and the verifier.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use docket_notify::{
    DEFAULT_TOLERANCE, DeliveryError, VerifyError, WebhookConfig, WebhookHeaders, WebhookSender,
    WebhookSigner, event, new_message_id, verify,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=";

/// Checks a signature header without the crate's code: HMAC-SHA256 computed
/// here with the `hmac` crate, base64-encoded and compared as text.
fn independent_check(secret: &str, id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header.split(' ').any(|s| s == expected)
}

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Received {
    id: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
    content_type: Option<String>,
    user_agent: Option<String>,
    body: Vec<u8>,
    verified: Result<(), VerifyError>,
    independently_verified: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Received>>>,
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn hook(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let wh = WebhookHeaders::from_lookup(|n| headers.get(n).and_then(|v| v.to_str().ok()));
    let now = chrono::Utc::now().timestamp();
    let verified = verify(
        &[WebhookSigner::new(SECRET).unwrap()],
        &wh,
        &body,
        now,
        DEFAULT_TOLERANCE,
    );
    let independently_verified = match (wh.id, wh.timestamp, wh.signature) {
        (Some(id), Some(ts), Some(sig)) => independent_check(SECRET, id, ts, &body, sig),
        _ => false,
    };
    let ok = verified.is_ok() && independently_verified;
    rx.seen.lock().unwrap().push(Received {
        id: header_str(&headers, "webhook-id"),
        timestamp: header_str(&headers, "webhook-timestamp"),
        signature: header_str(&headers, "webhook-signature"),
        content_type: header_str(&headers, "content-type"),
        user_agent: header_str(&headers, "user-agent"),
        body: body.to_vec(),
        verified,
        independently_verified,
    });
    if ok {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn status(State(rx): State<Receiver>, Path(code): Path<u16>) -> Response {
    rx.seen.lock().unwrap().push(Received {
        id: None,
        timestamp: None,
        signature: None,
        content_type: None,
        user_agent: None,
        body: Vec::new(),
        verified: Ok(()),
        independently_verified: false,
    });
    let status = StatusCode::from_u16(code).unwrap();
    let mut response = (status, format!("answered {code}")).into_response();
    let headers = response.headers_mut();
    match code {
        429 => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        }
        302 => {
            headers.insert(header::LOCATION, HeaderValue::from_static("/redirected"));
        }
        _ => {}
    }
    response
}

async fn slow() -> StatusCode {
    tokio::time::sleep(Duration::from_secs(5)).await;
    StatusCode::OK
}

async fn big() -> String {
    "x".repeat(100_000)
}

async fn redirected(State(rx): State<Receiver>) -> StatusCode {
    rx.seen.lock().unwrap().push(Received {
        id: Some("REDIRECT FOLLOWED".into()),
        timestamp: None,
        signature: None,
        content_type: None,
        user_agent: None,
        body: Vec::new(),
        verified: Ok(()),
        independently_verified: false,
    });
    StatusCode::OK
}

/// Starts the receiver on an ephemeral loopback port; returns its base URL.
async fn start_receiver() -> (String, Receiver) {
    let rx = Receiver::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/status/{code}", post(status))
        .route("/slow", post(slow))
        .route("/big", post(big))
        .route("/redirected", post(redirected).get(redirected))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rx)
}

fn sender(secret: Option<&str>, timeout_ms: u64) -> WebhookSender {
    WebhookSender::new(&WebhookConfig {
        secret: secret.map(str::to_owned),
        timeout_ms,
        // The receiver is on loopback, which the SSRF guard refuses by default.
        allow_private: true,
        ..Default::default()
    })
    .unwrap()
}

fn sample_event() -> serde_json::Value {
    event(
        "document.completed",
        serde_json::json!({"id": "doc_1", "filename": "a.pdf", "chunk_count": 3}),
        chrono::Utc::now(),
    )
}

#[tokio::test]
async fn delivery_ok_and_verified_both_ways() {
    let (base, rx) = start_receiver().await;
    let s = sender(Some(SECRET), 5_000);
    let msg_id = new_message_id();
    let ev = sample_event();
    let report = s.send(&format!("{base}/hook"), &msg_id, &ev).await.unwrap();
    assert_eq!(report.status, 204);
    assert_eq!(report.msg_id, msg_id);
    assert!(report.elapsed < Duration::from_secs(5));

    let seen = rx.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.verified, Ok(()));
    assert!(r.independently_verified);
    assert_eq!(r.id.as_deref(), Some(msg_id.as_str()));
    assert_eq!(r.timestamp, Some(report.timestamp.to_string()));
    let now = chrono::Utc::now().timestamp();
    assert!((now - report.timestamp).abs() <= 5);
    assert!(r.signature.as_deref().unwrap().starts_with("v1,"));
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert!(
        r.user_agent
            .as_deref()
            .unwrap()
            .starts_with("docket-webhooks/")
    );
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, ev);

    // A retry of the same event keeps its id, and is signed afresh.
    s.send(&format!("{base}/hook"), &msg_id, &ev).await.unwrap();
    let seen = rx.seen.lock().unwrap().clone();
    assert_eq!(seen[1].id.as_deref(), Some(msg_id.as_str()));
    assert!(seen[1].independently_verified);
}

#[tokio::test]
async fn wrong_secret_is_refused_by_receiver() {
    let (base, rx) = start_receiver().await;
    let s = sender(Some(OTHER_SECRET), 5_000);
    let err = s
        .send(&format!("{base}/hook"), &new_message_id(), &sample_event())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.retryable());
    let seen = rx.seen.lock().unwrap().clone();
    assert_eq!(seen[0].verified, Err(VerifyError::NoMatchingSignature));
    assert!(!seen[0].independently_verified);
}

#[tokio::test]
async fn unsigned_without_secret() {
    let (base, rx) = start_receiver().await;
    let s = sender(None, 5_000);
    assert!(s.signer().is_none());
    let err = s
        .send(&format!("{base}/hook"), &new_message_id(), &sample_event())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    let seen = rx.seen.lock().unwrap().clone();
    assert_eq!(seen[0].signature, None);
    assert_eq!(
        seen[0].verified,
        Err(VerifyError::MissingHeader("webhook-signature"))
    );
}

#[tokio::test]
async fn status_classification() {
    let (base, rx) = start_receiver().await;
    let s = sender(Some(SECRET), 5_000);
    let ev = sample_event();
    let cases = [
        (500, true),
        (503, true),
        (408, true),
        (429, true),
        (400, false),
        (404, false),
        (410, false),
        (302, false),
    ];
    for (code, retryable) in cases {
        let err = s
            .send(&format!("{base}/status/{code}"), &new_message_id(), &ev)
            .await
            .unwrap_err();
        match &err {
            DeliveryError::Http {
                status,
                body,
                retry_after,
                ..
            } => {
                assert_eq!(*status, code);
                assert_eq!(body, &format!("answered {code}"));
                let expected = (code == 429).then(|| Duration::from_secs(7));
                assert_eq!(*retry_after, expected, "{code}");
            }
            other => panic!("{code}: expected Http, got {other:?}"),
        }
        assert_eq!(err.retryable(), retryable, "{code}: {err}");
    }
    // The 302 was not followed.
    let seen = rx.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), cases.len());
    assert!(
        seen.iter()
            .all(|r| r.id.as_deref() != Some("REDIRECT FOLLOWED"))
    );
}

#[tokio::test]
async fn response_body_is_capped() {
    let (base, _rx) = start_receiver().await;
    let s = WebhookSender::new(&WebhookConfig {
        secret: Some(SECRET.into()),
        max_response_bytes: 1000,
        allow_private: true,
        ..Default::default()
    })
    .unwrap();
    let report = s
        .send(&format!("{base}/big"), &new_message_id(), &sample_event())
        .await
        .unwrap();
    assert_eq!(report.status, 200);
    assert_eq!(report.response_body.len(), 1000);
}

#[tokio::test]
async fn timeout_is_retryable() {
    let (base, _rx) = start_receiver().await;
    let s = sender(Some(SECRET), 300);
    let started = std::time::Instant::now();
    let err = s
        .send(&format!("{base}/slow"), &new_message_id(), &sample_event())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Timeout(_)), "{err:?}");
    assert!(err.retryable());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let s = sender(Some(SECRET), 2_000);
    let err = s
        .send(
            &format!("http://{addr}/hook"),
            &new_message_id(),
            &sample_event(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Connect(_)), "{err:?}");
    assert!(err.retryable());
}

#[tokio::test]
async fn invalid_urls_are_permanent() {
    let s = sender(Some(SECRET), 2_000);
    for url in [
        "not a url",
        "ftp://127.0.0.1/x",
        "http://",
        "/relative/path",
    ] {
        let err = s
            .send(url, &new_message_id(), &sample_event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
        assert!(!err.retryable(), "{url}");
    }
}

#[tokio::test]
async fn unusable_message_id_is_permanent() {
    let (base, rx) = start_receiver().await;
    let s = sender(Some(SECRET), 2_000);
    for id in ["", "msg 1", "msg\n1"] {
        let err = s
            .send(&format!("{base}/hook"), id, &sample_event())
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::InvalidMessage(_)), "{err:?}");
        assert!(!err.retryable());
    }
    assert!(rx.seen.lock().unwrap().is_empty());
}

// ---- verifier ----

const TS: i64 = 1_700_000_000;

fn signed(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    WebhookSigner::new(secret).unwrap().sign(id, ts, body)
}

#[test]
fn verify_accepts_and_rejects() {
    let signer = WebhookSigner::new(SECRET).unwrap();
    let body = br#"{"type":"document.failed"}"#;
    let sig = signer.sign("msg_1", TS, body);
    let ts = TS.to_string();
    let ok = WebhookHeaders::new("msg_1", &ts, &sig);
    let check = |h: &WebhookHeaders<'_>, body: &[u8], now: i64| {
        verify(
            std::slice::from_ref(&signer),
            h,
            body,
            now,
            DEFAULT_TOLERANCE,
        )
    };

    assert_eq!(check(&ok, body, TS), Ok(()));
    assert!(independent_check(SECRET, "msg_1", &ts, body, &sig));
    // Within tolerance on both sides.
    assert_eq!(check(&ok, body, TS + 300), Ok(()));
    assert_eq!(check(&ok, body, TS - 300), Ok(()));

    // Wrong secret.
    let other = WebhookSigner::new(OTHER_SECRET).unwrap();
    assert_eq!(
        other.verify(&ok, body, TS, DEFAULT_TOLERANCE),
        Err(VerifyError::NoMatchingSignature)
    );
    // Tampered body, id or timestamp.
    assert_eq!(
        check(&ok, br#"{"type":"document.completed"}"#, TS),
        Err(VerifyError::NoMatchingSignature)
    );
    assert_eq!(
        check(&WebhookHeaders::new("msg_2", &ts, &sig), body, TS),
        Err(VerifyError::NoMatchingSignature)
    );
    let ts_plus = (TS + 1).to_string();
    assert_eq!(
        check(&WebhookHeaders::new("msg_1", &ts_plus, &sig), body, TS),
        Err(VerifyError::NoMatchingSignature)
    );
    // Stale and future timestamps.
    assert_eq!(
        check(&ok, body, TS + 301),
        Err(VerifyError::TimestampTooOld {
            timestamp: TS,
            now: TS + 301
        })
    );
    assert_eq!(
        check(&ok, body, TS - 301),
        Err(VerifyError::TimestampTooNew {
            timestamp: TS,
            now: TS - 301
        })
    );
    // A narrower tolerance.
    assert!(matches!(
        verify(
            std::slice::from_ref(&signer),
            &ok,
            body,
            TS + 11,
            Duration::from_secs(10)
        ),
        Err(VerifyError::TimestampTooOld { .. })
    ));
    // Bad timestamp.
    assert_eq!(
        check(&WebhookHeaders::new("msg_1", "yesterday", &sig), body, TS),
        Err(VerifyError::InvalidTimestamp("yesterday".into()))
    );
    // Missing (or empty) headers.
    for (h, missing) in [
        (WebhookHeaders { id: None, ..ok }, "webhook-id"),
        (
            WebhookHeaders {
                timestamp: None,
                ..ok
            },
            "webhook-timestamp",
        ),
        (
            WebhookHeaders {
                signature: None,
                ..ok
            },
            "webhook-signature",
        ),
        (
            WebhookHeaders {
                signature: Some(""),
                ..ok
            },
            "webhook-signature",
        ),
        (WebhookHeaders::default(), "webhook-id"),
    ] {
        assert_eq!(
            check(&h, body, TS),
            Err(VerifyError::MissingHeader(missing))
        );
    }
    // Garbage, other versions and a bare base64 string never match.
    let bare = sig.trim_start_matches("v1,");
    for header in ["v1,!!!", "v2,abc", bare, "v1a,xyz v1,", ","] {
        assert_eq!(
            check(&WebhookHeaders::new("msg_1", &ts, header), body, TS),
            Err(VerifyError::NoMatchingSignature),
            "{header}"
        );
    }
    // No signers: nothing can match.
    assert_eq!(
        verify(&[], &ok, body, TS, DEFAULT_TOLERANCE),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn rotation_with_two_signatures() {
    let body = b"{}";
    let old = signed(SECRET, "msg_r", TS, body);
    let new = signed(OTHER_SECRET, "msg_r", TS, body);
    let header = format!("{old} {new}");
    let ts = TS.to_string();
    let h = WebhookHeaders::new("msg_r", &ts, &header);
    // A receiver that knows only one of the two secrets accepts either way.
    for secret in [SECRET, OTHER_SECRET] {
        let s = WebhookSigner::new(secret).unwrap();
        assert_eq!(s.verify(&h, body, TS, DEFAULT_TOLERANCE), Ok(()));
        assert!(independent_check(secret, "msg_r", &ts, body, &header));
    }
    // A receiver in the middle of rotation holds both keys and accepts a
    // request signed with either one.
    let both = [
        WebhookSigner::new(SECRET).unwrap(),
        WebhookSigner::new(OTHER_SECRET).unwrap(),
    ];
    for sig in [&old, &new] {
        let h = WebhookHeaders::new("msg_r", &ts, sig);
        assert_eq!(verify(&both, &h, body, TS, DEFAULT_TOLERANCE), Ok(()));
    }
    // A third key matches neither.
    let third = WebhookSigner::new("whsec_dGhpcmQ=").unwrap();
    assert_eq!(
        third.verify(&h, body, TS, DEFAULT_TOLERANCE),
        Err(VerifyError::NoMatchingSignature)
    );
}

/// Known answers, computed independently of this crate with Python's
/// standard library:
///
/// ```text
/// python3 -c 'import hmac, hashlib, base64
/// key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
/// msg = b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}"
/// print(base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode())
/// msg2 = b"msg_docket_kat.1700000000.{\"type\":\"document.completed\",\"data\":{\"id\":\"d1\"}}"
/// print(base64.b64encode(hmac.new(b"raw-secret-not-whsec", msg2, hashlib.sha256).digest()).decode())'
/// ```
///
/// The first is also the example in the Standard Webhooks specification.
#[test]
fn known_answer_vectors() {
    let spec = WebhookSigner::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let body = br#"{"test": 2432232314}"#;
    let sig = spec.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
    assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    let h = WebhookHeaders::new("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &sig);
    assert_eq!(
        spec.verify(&h, body, 1_614_265_330, DEFAULT_TOLERANCE),
        Ok(())
    );

    // A secret without the whsec_ prefix is used as raw UTF-8 key bytes.
    let raw = WebhookSigner::new("raw-secret-not-whsec").unwrap();
    let body = br#"{"type":"document.completed","data":{"id":"d1"}}"#;
    assert_eq!(
        raw.sign("msg_docket_kat", 1_700_000_000, body),
        "v1,HKcRa70ZDf0aK1b8Lwu4cA/sjzXQIZNgfPximyM2mP0="
    );
}
