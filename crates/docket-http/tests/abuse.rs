//! HTTP abuse drills, on both backends, over a real socket: requests without a key, with a
//! wrong or malformed one, with the wrong scope; storage webhooks with wrong, stale, future or
//! replayed signatures; path traversal in uploaded file names; huge headers; oversized bodies,
//! with and without a declared length; malformed JSON on every JSON route; URL ingestion aimed
//! at loopback, private, link-local and metadata addresses. Each gets its status, and the
//! server keeps answering `/healthz` after every batch.
//!
//! No test opens a connection to anything but 127.0.0.1: non-loopback ranges are reached only
//! through a stub resolver, and refused before any connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::Driver;
use docket_http::ApiOptions;
use docket_http::auth::{ApiKey, ApiKeys, Scope};
use docket_notify::WebhookSigner;
use docket_pipeline::Pipeline;
use docket_pipeline::fetch::{FetchConfig, Fetcher, Resolver};
use docket_pipeline::ingest::{StorageIngest, StorageWebhookConfig};
use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
#[path = "abuse/requests.rs"]
mod requests;

use requests::{bad_json, body_limits, huge_headers};

const MAX_BODY: usize = 64 * 1024;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ADMIN: &str = "admin-key-0123456789";
const INGEST: &str = "ingest-key-0123456789";
const READ: &str = "read-key-0123456789";

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

fn key(name: &str, secret: &str, scopes: Vec<Scope>) -> ApiKey {
    ApiKey {
        name: name.into(),
        sha256: Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        scopes,
    }
}

/// A loopback origin that counts every request it gets.
async fn start_origin() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/{*path}",
            get(|State(h): State<Arc<AtomicUsize>>| async move {
                h.fetch_add(1, Ordering::SeqCst);
                "# Notes\n\nSecret internal data.\n"
            }),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    (port, hits)
}

struct Server {
    base: String,
    addr: String,
    http: reqwest::Client,
}

impl Server {
    async fn healthz(&self, after: &str) {
        let r = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the server is down after {after}: {e}"));
        assert_eq!(r.status(), StatusCode::OK, "healthz after {after}");
    }

    fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match key {
            Some(k) => r.header("authorization", format!("Bearer {k}")),
            None => r,
        }
    }

    /// Sends raw bytes on a fresh connection and returns the status line's code (`None` when
    /// the server closed the connection without answering).
    async fn raw(&self, request: &[u8]) -> Option<u16> {
        let mut tcp = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        // The server may answer (and close) before reading it all: a failed write is fine.
        let _ = tcp.write_all(request).await;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        answer.extend_from_slice(&buf[..n]);
                        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
        })
        .await;
        assert!(read.is_ok(), "no answer within 10 s");
        let text = String::from_utf8_lossy(&answer);
        text.strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
    }
}

async fn json(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn error_text(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no {{\"error\"}} in {body}"))
}

fn pipeline<D: Driver>(driver: &D, blobs: &Path) -> Pipeline<D> {
    common::pipeline(driver, blobs, MAX_BODY)
}

fn stub() -> StubResolver {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    StubResolver(HashMap::from([
        ("loop.test".to_owned(), vec![ip("127.0.0.1")]),
        ("ten.test".to_owned(), vec![ip("10.0.0.1")]),
        ("seventeen.test".to_owned(), vec![ip("172.16.5.4")]),
        ("thirtyone.test".to_owned(), vec![ip("172.31.255.254")]),
        ("home.test".to_owned(), vec![ip("192.168.1.1")]),
        ("metadata.test".to_owned(), vec![ip("169.254.169.254")]),
        ("ula.test".to_owned(), vec![ip("fc00::1")]),
        ("ula-d.test".to_owned(), vec![ip("fd12:3456::1")]),
        ("mapped.test".to_owned(), vec![ip("::ffff:127.0.0.1")]),
        ("v6loop.test".to_owned(), vec![ip("::1")]),
    ]))
}

async fn start<D: Driver>(driver: &D, blobs: &Path) -> Server {
    let p = pipeline(driver, blobs);
    let keys = ApiKeys::new(&[
        key("admin", ADMIN, vec![Scope::Admin]),
        key("ingest", INGEST, vec![Scope::Ingest]),
        key("read", READ, vec![Scope::Read]),
    ])
    .unwrap()
    // Each malformed key must get its own 401: no limit per address (sessions.rs tests it).
    .with_failure_limit(docket_http::auth::FailureLimit::off());
    // The storage webhook, as in ingest.rs; it never fetches here (no signature passes).
    let ingest = StorageIngest::new(
        p.clone(),
        Fetcher::new(FetchConfig::default(), MAX_BODY as u64 / 2).unwrap(),
        StorageWebhookConfig {
            secret: SECRET.into(),
            tolerance_secs: 300,
            object_url: "http://127.0.0.1:9/files/{bucket}/{key}".into(),
            headers: Default::default(),
            priority: 5,
            start_delay_ms: 0,
            not_ready_secs: 60,
        },
    )
    .unwrap();
    // URL ingestion with the guard as configured by default.
    let fetcher = Fetcher::with_resolver(
        FetchConfig {
            timeout_secs: 2,
            ..FetchConfig::default()
        },
        MAX_BODY as u64 / 2,
        Arc::new(stub()),
    )
    .unwrap();
    let app = docket_http::router(
        p,
        ApiOptions {
            keys: Some(keys),
            fetcher: Some(fetcher),
            storage: Some(ingest),
            ..ApiOptions::new(MAX_BODY)
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    Server {
        base: format!("http://{addr}"),
        addr,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

/// A multipart body built by hand, so that the file name goes on the wire exactly as given.
fn multipart(disposition_name: &[u8], content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "docketabuseboundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(b"Content-Disposition: form-data; name=\"file\"; ");
    body.extend_from_slice(disposition_name);
    body.extend_from_slice(b"\r\nContent-Type: text/plain\r\n\r\n");
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            walk(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

async fn keys_and_scopes(s: &Server) {
    use reqwest::Method;
    // No key, a wrong key, malformed Authorization headers: 401 with a Bearer challenge.
    let long = "k".repeat(10 * 1024);
    let headers: Vec<(&str, Option<reqwest::header::HeaderValue>)> = vec![
        ("no header", None),
        ("wrong key", Some("Bearer not-a-key".parse().unwrap())),
        ("Bearer, no token", Some("Bearer".parse().unwrap())),
        ("Bearer and a space", Some("Bearer ".parse().unwrap())),
        ("Basic", Some("Basic YWRtaW46YWRtaW4=".parse().unwrap())),
        ("the key without Bearer", Some(READ.parse().unwrap())),
        (
            "the key after another scheme",
            Some(format!("Token {READ}").parse().unwrap()),
        ),
        (
            "two keys",
            Some(format!("Bearer {READ} {ADMIN}").parse().unwrap()),
        ),
        (
            "a 10 kB token",
            Some(format!("Bearer {long}").parse().unwrap()),
        ),
        (
            "non-UTF-8 bytes",
            Some(reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap()),
        ),
    ];
    for (what, value) in headers {
        for (method, path) in [
            (Method::GET, "/v1/documents"),
            (Method::POST, "/v1/search"),
            (
                Method::DELETE,
                "/v1/documents/00000000-0000-0000-0000-000000000000",
            ),
            (Method::POST, "/v1/jobs/process"),
        ] {
            let mut r = s.req(method.clone(), path, None);
            if let Some(v) = &value {
                r = r.header("authorization", v.clone());
            }
            let resp = r.send().await.unwrap();
            assert_eq!(
                resp.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{what}: {method} {path}"
            );
            let (status, body) = json(resp).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {method} {path}");
            assert!(error_text(&body).contains("API key"), "{body}");
        }
    }
    s.healthz("bad keys").await;

    // Each scope boundary: 403, before the body is even looked at.
    let doc = "/v1/documents/00000000-0000-0000-0000-000000000000";
    let forbidden = [
        (READ, Method::POST, "/v1/documents".to_owned(), "ingest"),
        (READ, Method::POST, format!("{doc}/reprocess"), "ingest"),
        (READ, Method::DELETE, doc.to_owned(), "admin"),
        (READ, Method::POST, "/v1/jobs/process".to_owned(), "admin"),
        (READ, Method::POST, "/v1/jobs/retry".to_owned(), "admin"),
        (READ, Method::POST, "/v1/jobs/1/cancel".to_owned(), "admin"),
        (
            READ,
            Method::POST,
            "/v1/queues/default/pause".to_owned(),
            "admin",
        ),
        (READ, Method::POST, "/v1/cron/x/run".to_owned(), "admin"),
        (INGEST, Method::DELETE, doc.to_owned(), "admin"),
        (INGEST, Method::POST, "/v1/jobs/process".to_owned(), "admin"),
        (INGEST, Method::POST, "/v1/jobs/retry".to_owned(), "admin"),
        (INGEST, Method::POST, "/v1/jobs/1/retry".to_owned(), "admin"),
        (
            INGEST,
            Method::POST,
            "/v1/queues/default/resume".to_owned(),
            "admin",
        ),
        (INGEST, Method::GET, "/v1/documents".to_owned(), "read"),
        (INGEST, Method::GET, doc.to_owned(), "read"),
        (INGEST, Method::POST, "/v1/search".to_owned(), "read"),
        (INGEST, Method::GET, "/v1/jobs".to_owned(), "read"),
    ];
    for (k, method, path, scope) in forbidden {
        let (status, body) = json(
            s.req(method.clone(), &path, Some(k))
                .header("content-type", "application/json")
                .body("{not json")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{k}: {method} {path}: {body}"
        );
        assert!(
            error_text(&body).contains(&format!("lacks the {scope} scope")),
            "{k}: {method} {path}: {body}"
        );
    }
    // And the keys do what their scopes allow.
    let ok = [
        (READ, Method::GET, "/v1/documents", StatusCode::OK),
        (ADMIN, Method::GET, "/v1/documents", StatusCode::OK),
        (ADMIN, Method::DELETE, doc, StatusCode::NOT_FOUND),
        // No processor on this server: past the key check, refused for want of workers.
        (
            ADMIN,
            Method::POST,
            "/v1/jobs/process",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ];
    for (k, method, path, want) in ok {
        let (status, body) = json(s.req(method.clone(), path, Some(k)).send().await.unwrap()).await;
        assert_eq!(status, want, "{k}: {method} {path}: {body}");
    }
    // The key is the only credential: health checks stay open.
    let r = s.req(Method::GET, "/readyz", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.healthz("wrong scopes").await;
}

fn signed(body: &str, id: &str, at: i64, secret: &str) -> Vec<(&'static str, String)> {
    let sig = WebhookSigner::new(secret)
        .unwrap()
        .sign(id, at, body.as_bytes());
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", at.to_string()),
        ("webhook-signature", sig),
    ]
}

async fn webhook_signatures(s: &Server) {
    let now = chrono::Utc::now().timestamp();
    let event = json!({
        "type": "INSERT", "table": "objects", "schema": "storage",
        "record": {"id": "b2c1", "bucket_id": "uploads", "name": "a.md",
                   "metadata": {"size": 10, "mimetype": "text/markdown"}},
        "old_record": null
    })
    .to_string();
    let other = event.replace("a.md", "../../etc/passwd");
    let mut forged = signed(&event, "msg_1", now, SECRET);
    forged[2].1 = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    let mut garbage = signed(&event, "msg_1", now, SECRET);
    garbage[2].1 = "v1,!!!! v2,abc".into();
    let mut bad_ts = signed(&event, "msg_1", now, SECRET);
    bad_ts[1].1 = "yesterday".into();
    let cases = [
        ("unsigned", event.clone(), vec![]),
        ("forged", event.clone(), forged),
        ("garbage signature", event.clone(), garbage),
        ("unreadable timestamp", event.clone(), bad_ts),
        (
            "another secret",
            event.clone(),
            signed(&event, "msg_1", now, "whsec_c2VjcmV0LW90aGVy"),
        ),
        (
            "stale",
            event.clone(),
            signed(&event, "msg_1", now - 3600, SECRET),
        ),
        (
            "from the future",
            event.clone(),
            signed(&event, "msg_1", now + 3600, SECRET),
        ),
        // A captured delivery replayed with the same id and headers over another body.
        (
            "replayed over another body",
            other.clone(),
            signed(&event, "msg_1", now, SECRET),
        ),
        ("another id over the same body", event.clone(), {
            let mut h = signed(&event, "msg_1", now, SECRET);
            h[0].1 = "msg_2".into();
            h
        }),
    ];
    for (what, body, headers) in cases {
        let mut r = s
            .http
            .post(format!("{}/v1/webhooks/storage", s.base))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        let (status, body) = json(r.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert!(error_text(&body).contains("signature"), "{what}: {body}");
    }
    s.healthz("bad webhook signatures").await;
}

async fn file_names(s: &Server, root: &Path, blobs: &Path) {
    let long = "x".repeat(10 * 1024);
    // (what goes in the Content-Disposition, the stored file name)
    let cases: Vec<(Vec<u8>, Value)> = vec![
        (b"filename=\"../../etc/passwd\"".to_vec(), json!("passwd")),
        (b"filename=\"..\\..\\boot.ini\"".to_vec(), json!("boot.ini")),
        (b"filename=\"a/../../b\"".to_vec(), json!("b")),
        (b"filename=\"/etc/shadow\"".to_vec(), json!("shadow")),
        (
            b"filename=\"C:\\Windows\\win.ini\"".to_vec(),
            json!("win.ini"),
        ),
        (b"filename=\"..\"".to_vec(), json!("upload")),
        (b"filename=\"../\"".to_vec(), json!("upload")),
        (b"filename=\"tab\there.txt\"".to_vec(), json!("tabhere.txt")),
        (
            format!("filename=\"{long}.txt\"").into_bytes(),
            json!("x".repeat(255)),
        ),
        // The extended form is not read by the multipart parser: no name at all.
        (
            b"filename*=UTF-8''..%2F..%2Fetc%2Fhosts".to_vec(),
            Value::Null,
        ),
    ];
    for (i, (disposition, want)) in cases.into_iter().enumerate() {
        let (ct, body) = multipart(&disposition, format!("upload number {i}\n").as_bytes());
        let (status, doc) = json(
            s.req(reqwest::Method::POST, "/v1/documents", Some(INGEST))
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let shown = String::from_utf8_lossy(&disposition);
        assert_eq!(status, StatusCode::ACCEPTED, "{shown}: {doc}");
        assert_eq!(doc["document"]["filename"], want, "{shown}");
    }
    // Control characters other than tab (NUL, BEL, ESC, CR) in the name: the multipart parser
    // refuses the part's headers outright, and nothing is stored. (A tab, which a header may
    // hold, is stripped from the stored name: above.)
    for (i, name) in [
        &b"evil\x00name.txt"[..],
        b"bell\x07\x1b[31mred.txt",
        b"line\rbreak.txt",
    ]
    .into_iter()
    .enumerate()
    {
        let mut disposition = b"filename=\"".to_vec();
        disposition.extend_from_slice(name);
        disposition.push(b'"');
        let (ct, body) = multipart(&disposition, format!("control {i}\n").as_bytes());
        let (status, doc) = json(
            s.req(reqwest::Method::POST, "/v1/documents", Some(INGEST))
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let shown = String::from_utf8_lossy(name);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{shown:?}: {doc}");
        assert!(error_text(&doc).contains("headers"), "{shown:?}: {doc}");
    }
    // Nothing was written outside the blob folder (which sits two levels below the root, so
    // that a `../../` would still land inside the root, where this would see it).
    let mut files = Vec::new();
    walk(root, &mut files);
    assert!(!files.is_empty(), "the uploads were stored");
    let blobs = blobs.canonicalize().unwrap();
    for f in &files {
        let f = f.canonicalize().unwrap();
        assert!(
            f.starts_with(&blobs),
            "{} is outside the blob folder",
            f.display()
        );
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            !["passwd", "boot.ini", "b", "shadow", "win.ini", "hosts"].contains(&name.as_ref()),
            "a file is named after the client's name: {}",
            f.display()
        );
    }
    s.healthz("hostile file names").await;
}

async fn ssrf(s: &Server) {
    let (port, hits) = start_origin().await;
    let targets = [
        format!("http://127.0.0.1:{port}/notes.md"),
        format!("http://127.1.2.3:{port}/notes.md"),
        format!("http://[::1]:{port}/notes.md"),
        format!("http://localhost:{port}/notes.md"),
        format!("http://LOCALHOST.:{port}/notes.md"),
        format!("http://0.0.0.0:{port}/notes.md"),
        format!("http://2130706433:{port}/notes.md"),
        format!("http://0x7f000001:{port}/notes.md"),
        format!("http://0177.0.0.1:{port}/notes.md"),
        format!("http://[::ffff:127.0.0.1]:{port}/notes.md"),
        format!("http://loop.test:{port}/notes.md"),
        format!("http://mapped.test:{port}/notes.md"),
        format!("http://v6loop.test:{port}/notes.md"),
        "http://ten.test/x".to_owned(),
        "http://seventeen.test/x".to_owned(),
        "http://thirtyone.test/x".to_owned(),
        "http://home.test/x".to_owned(),
        "http://metadata.test/latest/meta-data/".to_owned(),
        "http://ula.test/x".to_owned(),
        "http://ula-d.test/x".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00::1]/x".to_owned(),
    ];
    for url in &targets {
        let (status, body) = json(
            s.req(reqwest::Method::POST, "/v1/documents", Some(INGEST))
                .json(&json!({ "url": url }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url} → {body}");
        assert!(error_text(&body).contains("refused"), "{url} → {body}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the guard let a request through"
    );
    s.healthz("SSRF attempts").await;
}

#[both_backends]
async fn abuse(db: impl TestDb) {
    let root = tempfile::tempdir().unwrap();
    let blobs = root.path().join("a").join("b").join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let s = start(db.driver(), &blobs).await;
    keys_and_scopes(&s).await;
    webhook_signatures(&s).await;
    file_names(&s, root.path(), &blobs).await;
    let headers = huge_headers(&s).await;
    eprintln!("huge headers: {headers:?}");
    // hyper's defaults: a head of up to ~400 kB is read, at most 100 headers.
    assert_eq!(headers[0].1, Some(200), "{headers:?}");
    assert_eq!(headers[1].1, Some(401), "{headers:?}");
    assert_eq!(headers[2].1, Some(431), "{headers:?}");
    assert_eq!(headers[3].1, Some(431), "{headers:?}");
    body_limits(&s).await;
    bad_json(&s).await;
    ssrf(&s).await;
}
