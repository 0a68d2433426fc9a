//! Outbound webhooks behind the SSRF guard: names that resolve to private, loopback or
//! link-local addresses (by a stub resolver: no DNS query, and no connection anywhere but
//! 127.0.0.1) are refused permanently before anything is sent; with `allow_private` the signed
//! POST reaches a loopback receiver.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use docket_notify::guard::{BoxFuture, Resolver, check_redirect, is_public};
use docket_notify::{
    DEFAULT_TOLERANCE, DeliveryError, WebhookConfig, WebhookHeaders, WebhookSender, WebhookSigner,
    event, new_message_id, verify,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Names that resolve to chosen addresses, without any DNS query.
struct StubResolver(HashMap<String, Vec<IpAddr>>);

impl Resolver for StubResolver {
    fn lookup(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let found = self.0.get(host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

fn stub() -> Arc<StubResolver> {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    Arc::new(StubResolver(HashMap::from([
        ("private.test".to_owned(), vec![ip("10.0.0.1")]),
        ("metadata.test".to_owned(), vec![ip("169.254.169.254")]),
        ("ula.test".to_owned(), vec![ip("fd00::1")]),
        ("loop.test".to_owned(), vec![ip("127.0.0.1")]),
        ("mapped.test".to_owned(), vec![ip("::ffff:127.0.0.1")]),
    ])))
}

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<AtomicUsize>,
    last: Arc<std::sync::Mutex<Option<(HeaderMap, Bytes)>>>,
}

async fn hook(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    rx.hits.fetch_add(1, Ordering::SeqCst);
    *rx.last.lock().unwrap() = Some((headers, body));
    StatusCode::NO_CONTENT
}

async fn start_receiver() -> (u16, Receiver) {
    let rx = Receiver::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, rx)
}

fn sender(allow_private: bool) -> WebhookSender {
    WebhookSender::with_resolver(
        &WebhookConfig {
            secret: Some(SECRET.into()),
            timeout_ms: 2_000,
            allow_private,
            ..Default::default()
        },
        stub(),
    )
    .unwrap()
}

fn sample_event() -> serde_json::Value {
    event(
        "document.completed",
        serde_json::json!({"id": "doc_1"}),
        chrono::Utc::now(),
    )
}

#[tokio::test]
async fn private_targets_are_refused_permanently_and_nothing_is_sent() {
    let (port, rx) = start_receiver().await;
    let s = sender(false);
    let cases = [
        // Names, refused when resolved (the loopback ones point at the live receiver's port).
        (format!("http://private.test:{port}/hook"), "10.0.0.1"),
        (
            format!("http://metadata.test:{port}/hook"),
            "169.254.169.254",
        ),
        (format!("http://ula.test:{port}/hook"), "fd00::1"),
        (format!("http://loop.test:{port}/hook"), "127.0.0.1"),
        (format!("http://mapped.test:{port}/hook"), "127.0.0.1"),
        // Addresses and loopback names, refused before any connection.
        (format!("http://127.0.0.1:{port}/hook"), "127.0.0.1"),
        (format!("http://[::1]:{port}/hook"), "::1"),
        (format!("http://localhost:{port}/hook"), "localhost"),
        (format!("http://2130706433:{port}/hook"), "127.0.0.1"),
        (format!("http://0.0.0.0:{port}/hook"), "0.0.0.0"),
        ("http://10.0.0.1/hook".to_owned(), "10.0.0.1"),
    ];
    for (url, shown) in &cases {
        let err = s
            .send(url, &new_message_id(), &sample_event())
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Refused(_)), "{url}: {err:?}");
        assert!(!err.retryable(), "{url}: a refusal is permanent");
        let msg = err.to_string();
        assert!(msg.starts_with("refused: "), "{url}: {msg}");
        assert!(msg.contains(shown), "{url}: {msg}");
    }
    let err = s
        .send("http://10.0.0.1/hook", &new_message_id(), &sample_event())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("refused: 10.0.0.1 is a private address"),
        "{err}"
    );
    let err = s
        .send("http://metadata.test/x", &new_message_id(), &sample_event())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("metadata.test resolves to 169.254.169.254, a link-local address"),
        "{err}"
    );
    assert_eq!(
        rx.hits.load(Ordering::SeqCst),
        0,
        "the receiver got a request"
    );
}

#[tokio::test]
async fn allow_private_reaches_a_loopback_receiver_with_a_signed_post() {
    let (port, rx) = start_receiver().await;
    let s = sender(true);
    let ev = sample_event();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://loop.test:{port}/hook"),
    ] {
        let msg_id = new_message_id();
        let report = s.send(&url, &msg_id, &ev).await.unwrap();
        assert_eq!(report.status, 204);
        let (headers, body) = rx.last.lock().unwrap().take().unwrap();
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        assert_eq!(header("webhook-id"), Some(msg_id.as_str()));
        verify(
            &[WebhookSigner::new(SECRET).unwrap()],
            &WebhookHeaders::from_lookup(header),
            &body,
            chrono::Utc::now().timestamp(),
            DEFAULT_TOLERANCE,
        )
        .expect("signature verifies");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            ev
        );
    }
    assert_eq!(rx.hits.load(Ordering::SeqCst), 2);
    // Names the stub does not know fail to connect (retryable), not refused.
    let err = s
        .send("http://unknown.test/hook", &new_message_id(), &ev)
        .await
        .unwrap_err();
    assert!(!matches!(err, DeliveryError::Refused(_)), "{err:?}");
}

#[test]
fn allow_private_defaults_off_in_config() {
    let c: WebhookConfig = serde_json::from_str("{}").unwrap();
    assert!(!c.allow_private);
    let c: WebhookConfig = serde_json::from_str(r#"{"allow_private": true}"#).unwrap();
    assert!(c.allow_private);
}

/// A redirect from an allowed receiver to a refused target is refused at the hop check (the
/// webhook client follows no redirects at all; fetches follow them through this check).
#[test]
fn redirect_hops_from_an_allowed_origin_are_rechecked() {
    let url = |s: &str| reqwest::Url::parse(s).unwrap();
    // The origin itself is allowed when allow_private is set…
    assert!(check_redirect(&url("http://127.0.0.1:9/next"), 1, 5, true).is_ok());
    // …but with the guard on, a hop to any refused target fails, whatever the origin was.
    for hop in [
        "http://127.0.0.1:9/admin",
        "http://[::1]/",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fc00::1]/",
        "http://[::ffff:127.0.0.1]/",
    ] {
        let err = check_redirect(&url(hop), 1, 5, false).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{hop}: {err}");
    }
    assert!(check_redirect(&url("https://example.com/"), 1, 5, false).is_ok());
    assert!(check_redirect(&url("https://example.com/"), 6, 5, false).is_err());
    assert!(!is_public("fd00::1".parse().unwrap()));
    assert!(is_public("8.8.8.8".parse().unwrap()));
}
