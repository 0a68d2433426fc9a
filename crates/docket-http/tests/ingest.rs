//! Documents that arrive by URL and by storage webhook, over a real socket, on both backends.
//! (Jobs run on request, stuck jobs, stats, progress across processes and readiness are in
//! `jobs_api.rs`.) Every fetch goes to a server on loopback: the SSRF guard is
//! relaxed by its explicit setting where a test must fetch, and left on where a test checks
//! that it refuses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::{DocumentStore, Driver, QueueDriver, QueueExecutor, SystemClock};
use docket_http::ApiOptions;
use docket_notify::WebhookSigner;
use docket_pipeline::Pipeline;
use docket_pipeline::fetch::{FetchConfig, Fetcher, Resolver};
use docket_pipeline::ingest::{StorageIngest, StorageWebhookConfig};
use docket_queue::{Runtime, Workers};
use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;
use common::{NOTES, listen, runtime_config};

const MAX_BODY: usize = 256 * 1024;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A file server on loopback: files by path, redirect chains, a large body, a slow answer;
/// it counts requests so tests can prove the guard refused before connecting.
#[derive(Clone, Default)]
struct Origin {
    hits: Arc<AtomicUsize>,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    seen_auth: Arc<Mutex<Vec<String>>>,
}

async fn origin_file(
    State(o): State<Origin>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    o.hits.fetch_add(1, Ordering::SeqCst);
    if let Some(a) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        o.seen_auth.lock().unwrap().push(a.to_owned());
    }
    if let Some(rest) = path.strip_prefix("hop/") {
        // hop/N → hop/N-1 … hop/0 → notes.md
        let n: u32 = rest.parse().unwrap_or(0);
        let next = if n == 0 {
            "/files/notes.md".to_owned()
        } else {
            format!("/files/hop/{}", n - 1)
        };
        return Redirect::temporary(&next).into_response();
    }
    if path == "slow" {
        tokio::time::sleep(Duration::from_secs(5)).await;
        return "late".into_response();
    }
    if path == "big" {
        return vec![b'a'; MAX_BODY].into_response();
    }
    match o.files.lock().unwrap().get(&path) {
        Some(b) => ([("content-type", "text/markdown")], b.clone()).into_response(),
        None => AxStatus::NOT_FOUND.into_response(),
    }
}

async fn start_origin() -> (String, Origin) {
    let o = Origin::default();
    o.files
        .lock()
        .unwrap()
        .insert("notes.md".into(), NOTES.as_bytes().to_vec());
    let app = axum::Router::new()
        .route("/files/{*path}", get(origin_file))
        .with_state(o.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    (format!("http://{addr}"), o)
}

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

fn pipeline<D: Driver>(driver: &D, blobs: &Path) -> Pipeline<D> {
    common::pipeline(driver, blobs, MAX_BODY)
}

fn relaxed() -> FetchConfig {
    FetchConfig {
        allow_private: true,
        max_redirects: 3,
        timeout_secs: 2,
        max_bytes: None,
    }
}

async fn json(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn wait_status(http: &reqwest::Client, base: &str, id: &str, want: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, d) = json(
                http.get(format!("{base}/v1/documents/{id}"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            if d["status"] == want {
                return d;
            }
            assert_ne!(d["status"], "failed", "{d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("document {id} never reached {want}"))
}

#[both_backends]
async fn url_ingestion(db: impl TestDb) {
    let driver = db.driver().clone();
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(&driver, dir.path());
    let mut workers = Workers::new();
    p.register(&mut workers);
    let rt = Runtime::start(
        driver.clone(),
        workers,
        runtime_config(&["default"]),
        Arc::new(SystemClock),
    )
    .unwrap();
    let (origin, o) = start_origin().await;
    let base = listen(docket_http::router(
        p.clone(),
        ApiOptions {
            fetcher: Some(Fetcher::new(relaxed(), MAX_BODY as u64 / 2).unwrap()),
            ..ApiOptions::new(MAX_BODY)
        },
    ))
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |body: Value| http.post(format!("{base}/v1/documents")).json(&body).send();

    // Fetched, stored with its source and URL, processed.
    let (status, body) = json(
        post(json!({ "url": format!("{origin}/files/notes.md"), "metadata": {"team": "ops"} }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = &body["document"];
    assert_eq!(doc["source"], "url");
    assert_eq!(doc["filename"], "notes.md");
    assert_eq!(doc["metadata"]["team"], "ops");
    assert_eq!(
        doc["metadata"]["source_url"],
        format!("{origin}/files/notes.md")
    );
    let id = doc["id"].as_str().unwrap().to_owned();
    wait_status(&http, &base, &id, "completed").await;
    let (_, hits) = json(
        http.post(format!("{base}/v1/search"))
            .json(&json!({"query": "lighthouse keeper green ledger", "k": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        hits["hits"][0]["chunk"]["document_id"],
        id.as_str(),
        "{hits}"
    );

    // Through redirects (within the limit): the same bytes, the same document.
    let (status, body) = json(
        post(json!({ "url": format!("{origin}/files/hop/2") }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["created"], false);
    assert_eq!(body["document"]["id"], id.as_str());

    // Failures, each with a clear status and message, and nothing stored.
    let cases = [
        (
            json!({ "url": format!("{origin}/files/hop/5") }),
            StatusCode::BAD_GATEWAY,
            "redirects",
        ),
        (
            json!({ "url": format!("{origin}/files/missing.pdf") }),
            StatusCode::BAD_GATEWAY,
            "404",
        ),
        (
            json!({ "url": format!("{origin}/files/big") }),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
        (
            json!({ "url": format!("{origin}/files/slow") }),
            StatusCode::GATEWAY_TIMEOUT,
            "timed out",
        ),
        (
            json!({ "url": "ftp://127.0.0.1/x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "http",
        ),
        (
            json!({ "url": "not a url" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad URL",
        ),
        (
            json!({ "url": format!("{origin}/files/notes.md"), "callback_url": "javascript:x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "callback_url",
        ),
        (
            json!({ "url": format!("{origin}/files/notes.md"), "metadata": [1] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "metadata",
        ),
        (
            json!({ "url": format!("{origin}/files/notes.md"), "nope": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "nope",
        ),
        (
            json!({ "callback_url": "https://x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "url",
        ),
    ];
    for (req, want, says) in cases {
        let (status, body) = json(post(req.clone()).await.unwrap()).await;
        assert_eq!(status, want, "{req} → {body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains(says),
            "{req}: the error says {says:?}: {body}"
        );
    }
    let r = http
        .post(format!("{base}/v1/documents"))
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "malformed JSON");
    let (_, list) = json(
        http.get(format!("{base}/v1/documents"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["documents"].as_array().unwrap().len(), 1, "{list}");

    // The guard on (the default): loopback, private and metadata addresses are refused
    // before any connection, whether named by address or by a name that resolves to one.
    let before = o.hits.load(Ordering::SeqCst);
    let stub = StubResolver(HashMap::from([
        (
            "intranet.example".to_owned(),
            vec!["10.1.2.3".parse().unwrap()],
        ),
        (
            "metadata.example".to_owned(),
            vec!["169.254.169.254".parse().unwrap()],
        ),
        (
            "mixed.example".to_owned(),
            vec!["fd00::1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
        ),
        (
            "origin.example".to_owned(),
            vec!["127.0.0.1".parse().unwrap()],
        ),
    ]));
    let guarded = listen(docket_http::router(
        p.clone(),
        ApiOptions {
            fetcher: Some(
                Fetcher::with_resolver(FetchConfig::default(), MAX_BODY as u64 / 2, Arc::new(stub))
                    .unwrap(),
            ),
            ..ApiOptions::new(MAX_BODY)
        },
    ))
    .await;
    let port = origin.rsplit(':').next().unwrap();
    for url in [
        format!("{origin}/files/notes.md"),
        format!("http://localhost:{port}/files/notes.md"),
        format!("http://[::1]:{port}/files/notes.md"),
        format!("http://origin.example:{port}/files/notes.md"),
        "http://intranet.example/files/notes.md".to_owned(),
        "http://metadata.example/latest/meta-data/".to_owned(),
        "http://mixed.example/x".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let (status, body) = json(
            http.post(format!("{guarded}/v1/documents"))
                .json(&json!({ "url": url }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url} → {body}");
        assert!(
            body["error"].as_str().unwrap().contains("refused"),
            "{url} → {body}"
        );
    }
    assert_eq!(
        o.hits.load(Ordering::SeqCst),
        before,
        "the guard let a request through"
    );
    rt.shutdown().await;
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

#[both_backends]
async fn storage_webhooks(db: impl TestDb) {
    let driver = db.driver().clone();
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(&driver, dir.path());
    let (origin, o) = start_origin().await;
    o.files.lock().unwrap().insert(
        "uploads/user 1/report.md".into(),
        b"# Quarterly report\n\nRevenue grew in the northern region.\n".to_vec(),
    );
    let fetcher = Fetcher::new(relaxed(), MAX_BODY as u64 / 2).unwrap();
    let ingest = StorageIngest::new(
        p.clone(),
        fetcher,
        StorageWebhookConfig {
            secret: SECRET.into(),
            tolerance_secs: 300,
            object_url: format!("{origin}/files/{{bucket}}/{{key}}"),
            headers: [("Authorization".to_owned(), "Bearer service-key".to_owned())].into(),
            priority: 5,
            start_delay_ms: 0,
            not_ready_secs: 60,
        },
    )
    .unwrap();
    let mut workers = Workers::new();
    p.register(&mut workers);
    ingest.register(&mut workers);
    let rt = Runtime::start(
        driver.clone(),
        workers,
        runtime_config(&["default"]),
        Arc::new(SystemClock),
    )
    .unwrap();
    // API keys on: the webhook needs none (its signature is the check).
    let keys = docket_http::auth::ApiKeys::new(&[docket_http::auth::ApiKey {
        name: "admin".into(),
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        scopes: vec![docket_http::auth::Scope::Admin],
    }])
    .unwrap();
    let base = listen(docket_http::router(
        p.clone(),
        ApiOptions {
            keys: Some(keys),
            storage: Some(ingest),
            ..ApiOptions::new(MAX_BODY)
        },
    ))
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let hook = format!("{base}/v1/webhooks/storage");
    let send = |body: String, headers: Vec<(&'static str, String)>| {
        let mut r = http
            .post(&hook)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.send()
    };
    let now = chrono::Utc::now().timestamp();
    let supabase = json!({
        "type": "INSERT", "table": "objects", "schema": "storage",
        "record": {"id": "b2c1", "bucket_id": "uploads", "name": "user 1/report.md",
                   "metadata": {"eTag": "\"abc\"", "size": 60, "mimetype": "text/markdown"}},
        "old_record": null
    })
    .to_string();

    // Refused: no signature, a wrong one, one made with another secret, a stale timestamp,
    // a signature over other bytes.
    let wrong_secret = signed(&supabase, "msg_1", now, "whsec_c2VjcmV0LW90aGVy");
    let stale = signed(&supabase, "msg_1", now - 3600, SECRET);
    let mut forged = signed(&supabase, "msg_1", now, SECRET);
    forged[2].1 = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    let other_body = signed("{}", "msg_1", now, SECRET);
    for (what, headers) in [
        ("unsigned", vec![]),
        ("forged", forged),
        ("another secret", wrong_secret),
        ("stale", stale),
        ("signed other bytes", other_body),
    ] {
        let (status, body) = json(send(supabase.clone(), headers).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("signature"),
            "{what}: {body}"
        );
    }
    // Signed but unreadable.
    let (status, _) = json(
        send("{oops".into(), signed("{oops", "m", now, SECRET))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = json(
        send(
            "{\"hello\":1}".into(),
            signed("{\"hello\":1}", "m", now, SECRET),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Accepted: one job, then one document fetched with the configured header.
    let (status, body) = json(
        send(supabase.clone(), signed(&supabase, "msg_1", now, SECRET))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"][0]["key"], "user 1/report.md");
    assert_eq!(body["ignored"], 0);
    // Delivered again at once (the sender retried): the live job holds it.
    let (status, again) = json(
        send(
            supabase.clone(),
            signed(&supabase, "msg_1", now + 1, SECRET),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let auth = [("authorization", "Bearer test")];
    let docs = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let mut r = http.get(format!("{base}/v1/documents?status=completed"));
            for (k, v) in auth {
                r = r.header(k, v);
            }
            let (_, list) = json(r.send().await.unwrap()).await;
            let docs = list["documents"].as_array().cloned().unwrap_or_default();
            if !docs.is_empty() {
                return docs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the announced object never became a completed document");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["source"], "webhook");
    assert_eq!(docs[0]["filename"], "report.md");
    assert_eq!(docs[0]["metadata"]["storage"]["bucket"], "uploads");
    assert!(
        o.seen_auth
            .lock()
            .unwrap()
            .iter()
            .any(|a| a == "Bearer service-key")
    );
    // Delivered again after it finished: fetched again, identical bytes, still one document.
    let (status, _) = json(
        send(
            supabase.clone(),
            signed(&supabase, "msg_1", now + 2, SECRET),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // An S3 notification for the same bytes under the S3 shape, plus a deletion (ignored).
    let s3 = json!({"Records": [
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "uploads"}, "object": {"key": "user+1/report.md", "eTag": "abc", "size": 60}}},
        {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "uploads"}, "object": {"key": "gone.md"}}}
    ]})
    .to_string();
    let (status, body) = json(
        send(s3.clone(), signed(&s3, "msg_2", now, SECRET))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["ignored"], 1);
    assert_eq!(body["accepted"][0]["key"], "user 1/report.md");
    // Every ingest job finishes; still exactly one document.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let mut c = driver.conn().await.unwrap();
            let live = c
                .job_list(docket_core::JobListParams {
                    job_types: vec!["docket.ingest_object".into()],
                    states: vec![
                        docket_core::JobState::Queued,
                        docket_core::JobState::Running,
                        docket_core::JobState::Retrying,
                    ],
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap();
            if live.is_empty() {
                return;
            }
            drop(c);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("ingest jobs never finished");
    let mut c = driver.conn().await.unwrap();
    let ingested = c
        .job_list(docket_core::JobListParams {
            job_types: vec!["docket.ingest_object".into()],
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        ingested
            .iter()
            .all(|j| j.status == docket_core::JobState::Completed),
        "{ingested:?}"
    );
    let all = c
        .document_list(&docket_core::DocumentListParams {
            status: None,
            source: None,
            before: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        all.len(),
        1,
        "one document for every delivery of one object: {all:?}"
    );
    drop(c);
    rt.shutdown().await;

    // No webhook configured: 404.
    let plain = listen(docket_http::router(p.clone(), ApiOptions::new(MAX_BODY))).await;
    let r = http
        .post(format!("{plain}/v1/webhooks/storage"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
