//! Documents that arrive by URL and by storage webhook, jobs run on request, stuck jobs and
//! stats, and progress streamed by a server from workers in another process — over a real
//! socket, on both backends. Every fetch goes to a server on loopback: the SSRF guard is
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
use docket_conformance::harness::{TestDb, postgres};
use docket_core::{
    Clock, DocumentStore, Driver, JobGetAvailableParams, JobInsertManyParams, QueueDriver,
    QueueExecutor, SystemClock, WorkerHeartbeatParams,
};
use docket_http::ApiOptions;
use docket_notify::WebhookSigner;
use docket_pipeline::Pipeline;
use docket_pipeline::fetch::{FetchConfig, Fetcher, Resolver};
use docket_pipeline::ingest::{StorageIngest, StorageWebhookConfig};
use docket_queue::{
    JobArgs, JobContext, JobError, QueueConfig, Runtime, RuntimeConfig, Worker, Workers,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod common;
use common::listen;

const MAX_BODY: usize = 256 * 1024;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const NOTES: &str = "# Field notes\n\nThe lighthouse keeper logged every passing ship in a \
                     green ledger.\n\nStorms came from the west in autumn.\n";

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
    tokio::spawn(async move { axum::serve(listener, app).await });
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

fn runtime_config(queues: &[&str]) -> RuntimeConfig {
    RuntimeConfig {
        poll_interval: Duration::from_millis(50),
        maintenance: None,
        queues: queues.iter().map(|q| QueueConfig::new(*q)).collect(),
        ..Default::default()
    }
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

/// A job kind for the process-now test: fails when asked to.
#[derive(Debug, Serialize, Deserialize)]
struct Probe {
    fail: bool,
}

impl JobArgs for Probe {
    const KIND: &'static str = "test.probe";
}

struct ProbeWorker;

impl<D: Driver> Worker<D> for ProbeWorker {
    type Args = Probe;

    async fn work(&self, _ctx: JobContext<D>, args: Probe) -> Result<(), JobError> {
        if args.fail {
            Err(JobError::retryable("probe asked to fail"))
        } else {
            Ok(())
        }
    }
}

#[both_backends]
async fn process_stuck_and_stats(db: impl TestDb) {
    let driver = db.driver().clone();
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(&driver, dir.path());
    let mut workers = Workers::new();
    p.register(&mut workers);
    workers.register(ProbeWorker);
    // The runtime works `default` only: jobs in `manual` wait for POST /v1/jobs/process.
    let rt = Runtime::start(
        driver.clone(),
        workers,
        runtime_config(&["default"]),
        Arc::new(SystemClock),
    )
    .unwrap();
    let base = listen(docket_http::router(
        p.clone(),
        ApiOptions {
            processor: Some(rt.processor()),
            ..ApiOptions::new(MAX_BODY)
        },
    ))
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let client = docket_queue::Client::new(driver.clone());
    let opts = || docket_queue::InsertOpts {
        queue: Some("manual".into()),
        ..Default::default()
    };
    let ok = client
        .insert(&Probe { fail: false }, opts())
        .await
        .unwrap()
        .id;
    let bad = client
        .insert(&Probe { fail: true }, opts())
        .await
        .unwrap()
        .id;

    let (status, body) = json(
        http.get(format!("{base}/v1/jobs/stats"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let age = body["oldest_queued_age_seconds"]
        .as_f64()
        .expect("an age while jobs wait");
    assert!((0.0..60.0).contains(&age), "{body}");
    let waiting = body["throughput"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["queue"] == "manual")
        .cloned()
        .expect("a throughput row for the waiting queue");
    assert_eq!(waiting["completed_last_minute"], 0);

    for (req, want) in [
        (json!({"limit": 0}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"limit": 101}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"nope": 1}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let r = http
            .post(format!("{base}/v1/jobs/process"))
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{req}");
    }
    let (status, body) = json(
        http.post(format!("{base}/v1/jobs/process"))
            .json(&json!({"queue": "manual", "limit": 10}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let processed = body["processed"].as_array().unwrap();
    assert_eq!(processed.len(), 2, "{body}");
    let outcome = |id: i64| processed.iter().find(|p| p["id"] == id).unwrap().clone();
    assert_eq!(outcome(ok)["outcome"], "completed");
    assert_eq!(outcome(bad)["outcome"], "retry");
    assert!(
        outcome(bad)["error"]
            .as_str()
            .unwrap()
            .contains("probe asked to fail")
    );
    let (_, job) = json(
        http.get(format!("{base}/v1/jobs/{ok}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(job["job"]["status"], "completed");
    assert_eq!(
        job["attempts"].as_array().unwrap().len(),
        1,
        "the attempt is recorded"
    );
    let (_, job) = json(
        http.get(format!("{base}/v1/jobs/{bad}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(job["job"]["status"], "retrying");
    // Nothing due: an empty batch.
    let (_, body) = json(
        http.post(format!("{base}/v1/jobs/process"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["processed"], json!([]), "{body}");
    let (_, body) = json(
        http.get(format!("{base}/v1/jobs/stats"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let row = body["throughput"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["queue"] == "manual" && r["job_type"] == "test.probe")
        .cloned()
        .unwrap();
    assert_eq!(row["completed_last_minute"], 1, "{body}");
    assert_eq!(row["completed_last_hour"], 1, "{body}");

    // Stuck: a job claimed by a worker with no row, and one whose worker's own lease (two
    // seconds) lapsed; not stuck: a job its live worker (lease one hour) has run for three
    // hours, long after any fixed interval would have called it stuck.
    let (ghost, lapsed) = {
        let mut c = driver.conn().await.unwrap();
        let now = SystemClock.now();
        let beat = |id: &str, lease, at| WorkerHeartbeatParams {
            id: id.into(),
            hostname: "h".into(),
            pid: 1,
            queues: vec![],
            lease,
            now: Some(at),
        };
        c.worker_heartbeat(beat(
            "lapsed-worker",
            chrono::Duration::seconds(2),
            now - chrono::Duration::seconds(5),
        ))
        .await
        .unwrap();
        c.worker_heartbeat(beat("slow-worker", chrono::Duration::hours(1), now))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for (worker, started) in [
            ("ghost-worker", now),
            ("lapsed-worker", now - chrono::Duration::seconds(30)),
            ("slow-worker", now - chrono::Duration::hours(3)),
        ] {
            let id = c
                .job_insert_many(JobInsertManyParams {
                    jobs: vec![docket_core::JobInsertParams {
                        queue: worker.into(),
                        run_at: Some(now - chrono::Duration::hours(4)),
                        ..docket_core::JobInsertParams::new("test.probe", json!({"fail": false}))
                    }],
                })
                .await
                .unwrap()[0]
                .id;
            let got = c
                .job_get_available(JobGetAvailableParams {
                    worker_id: worker.into(),
                    queue: worker.into(),
                    limit: 1,
                    now: Some(started),
                })
                .await
                .unwrap();
            assert_eq!(got.len(), 1);
            ids.push(id);
        }
        (ids[0], ids[1])
    };
    let (status, body) = json(
        http.get(format!("{base}/v1/jobs/stuck"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![lapsed, ghost], "newest first: {body}");
    let row = &body["jobs"][0];
    assert_eq!(row["locked_by"], "lapsed-worker", "{body}");
    assert_eq!(row["status"], "running", "{body}");
    assert_eq!(row["worker_lease_ms"], 2000, "{body}");
    assert!(row["worker_heartbeat_at"].is_string(), "{body}");
    let ran = row["running_for_ms"].as_i64().unwrap();
    assert!((30_000..600_000).contains(&ran), "{body}");
    let row = &body["jobs"][1];
    assert_eq!(row["locked_by"], "ghost-worker", "{body}");
    assert!(row["worker_heartbeat_at"].is_null() && row["worker_lease_ms"].is_null());
    let r = http
        .get(format!("{base}/v1/jobs/stuck?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A server without workers cannot process on request.
    let idle = listen(docket_http::router(p.clone(), ApiOptions::new(MAX_BODY))).await;
    let (status, body) = json(
        http.post(format!("{idle}/v1/jobs/process"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    rt.shutdown().await;
}

/// The server runs no workers; "another process" (a second driver on the same database, as
/// `docket worker` would open) does the work. The server's event stream still follows the
/// document to 100 %: the progress crosses by the database's broadcasts (PostgreSQL).
async fn progress_crosses_processes(driver: impl Driver, other: impl Driver) {
    let dir = tempfile::tempdir().unwrap();
    let server_side = pipeline(&driver, dir.path());
    let worker_side = pipeline(&other, dir.path());
    let mut workers = Workers::new();
    worker_side.register(&mut workers);
    let base = listen(docket_http::router(server_side, ApiOptions::new(MAX_BODY))).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(NOTES.as_bytes().to_vec()).file_name("notes.md"),
    );
    let (status, body) = json(
        http.post(format!("{base}/v1/documents"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["document"]["id"].as_str().unwrap().to_owned();
    let events = http
        .get(format!("{base}/v1/documents/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    // Only now start the workers elsewhere.
    let rt = Runtime::start(
        other.clone(),
        workers,
        runtime_config(&["default"]),
        Arc::new(SystemClock),
    )
    .unwrap();
    let mut stream = events.bytes_stream();
    let mut text = String::new();
    let mut seen: Vec<(String, i64)> = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) {
                    let v: Value = serde_json::from_str(data.trim()).unwrap();
                    seen.push((
                        v["status"].as_str().unwrap().to_owned(),
                        v["progress"].as_i64().unwrap(),
                    ));
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the stream did not end with the document: {seen:?}"));
    assert_eq!(
        seen.first().map(|s| s.0.as_str()),
        Some("queued"),
        "{seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&("completed".to_owned(), 100)),
        "{seen:?}"
    );
    assert!(seen.len() >= 4, "progress arrived stage by stage: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0].1 <= w[1].1),
        "progress only rises: {seen:?}"
    );
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_progress_crosses_processes() {
    // The test's schema; both "processes" listen, as `docket serve` and `docket worker` do.
    let db = postgres().await;
    let server = docket_conformance::harness::connect_pg(db.url(), true);
    let other = docket_conformance::harness::connect_pg(db.url(), true);
    progress_crosses_processes(server, other).await
}

/// `/readyz` is 503 while the schema is behind the build, and 200 once migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let driver = docket_sqlite::SqliteDriver::connect(&docket_sqlite::SqliteOptions::new(url))
        .await
        .unwrap();
    let base = listen(docket_http::router(
        pipeline(&driver, dir.path()),
        ApiOptions::new(MAX_BODY),
    ))
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (status, body) = json(http.get(format!("{base}/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("docket migrate"),
        "{body}"
    );
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the process is up all the same");
    driver.migrate().await.unwrap();
    let (status, body) = json(http.get(format!("{base}/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
