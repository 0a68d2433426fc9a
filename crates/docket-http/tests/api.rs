//! The API over a real socket with a real HTTP client, on both backends: upload, follow the
//! event stream to 100 %, search, and the failure answers.

use std::path::PathBuf;
use std::time::Duration;

use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::Driver;
use docket_http::auth::{ApiKey, ApiKeys, Scope};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const MAX_BODY: usize = 256 * 1024;

mod common;
use common::Server;

async fn serve<D: Driver>(driver: &D) -> Server<D> {
    common::serve(driver, MAX_BODY, None).await
}

async fn serve_with<D: Driver>(driver: &D, keys: Option<ApiKeys>) -> Server<D> {
    common::serve(driver, MAX_BODY, keys).await
}

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docket-parse/tests/corpus")
        .join(name);
    std::fs::read(path).unwrap()
}

fn upload(name: &str, bytes: Vec<u8>) -> Form {
    Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()))
}

async fn json(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[both_backends]
async fn upload_follow_the_events_to_100_and_search(db: impl TestDb) {
    let s = serve(db.driver()).await;
    let http = reqwest::Client::new();
    let (status, body) = json(
        http.post(format!("{}/v1/documents", s.base))
            .multipart(upload("notes.txt", corpus("notes.txt")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["created"], true);
    assert_eq!(body["document"]["priority"], 5);
    let id = body["document"]["id"].as_str().unwrap().to_owned();

    // Follow the stream until the document finishes; it ends by itself.
    let events = http
        .get(format!("{}/v1/documents/{id}/events", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut text = String::new();
    let mut stream = events.bytes_stream();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    })
    .await
    .expect("the event stream ends when the document finishes");
    let progress: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(progress.len() >= 2, "{text}");
    let last = progress.last().unwrap();
    assert_eq!(last["status"], "completed");
    assert_eq!(last["progress"], 100);
    let pcts: Vec<i64> = progress
        .iter()
        .map(|e| e["progress"].as_i64().unwrap())
        .collect();
    assert!(pcts.windows(2).all(|w| w[0] <= w[1]), "{pcts:?}");
    // Each event says something new.
    let states: Vec<(&Value, &Value, &Value)> = progress
        .iter()
        .map(|e| (&e["status"], &e["stage"], &e["progress"]))
        .collect();
    for w in states.windows(2) {
        assert_ne!(w[0], w[1], "an event repeated: {states:?}");
    }

    let (status, doc) = json(
        http.get(format!("{}/v1/documents/{id}", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["status"], "completed");
    let (_, chunks) = json(
        http.get(format!("{}/v1/documents/{id}/chunks", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        chunks["chunks"].as_array().unwrap().len() as i64,
        doc["chunk_count"].as_i64().unwrap()
    );

    let (status, hits) = json(
        http.post(format!("{}/v1/search", s.base))
            .json(&json!({"query": "the team agreed to ship the ingestion service", "k": 3}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    assert_eq!(hits["hits"][0]["chunk"]["document_id"], id.as_str());

    // The same bytes again: the same document, not a new one.
    let (status, again) = json(
        http.post(format!("{}/v1/documents", s.base))
            .multipart(upload("copy.txt", corpus("notes.txt")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["created"], false);
    assert_eq!(again["document"]["id"], id.as_str());

    // Listed, then deleted with its chunks.
    let (_, list) = json(
        http.get(format!("{}/v1/documents?status=completed", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["documents"][0]["id"], id.as_str());
    let r = http
        .delete(format!("{}/v1/documents/{id}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = http
        .get(format!("{}/v1/documents/{id}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.runtime.shutdown().await;
}

#[both_backends]
async fn bad_requests_get_clear_errors(db: impl TestDb) {
    let s = serve(db.driver()).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", s.base)).send();
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // Every answer carries a request id: a new one, or the client's own.
    let generated = health.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let echoed = http
        .get(format!("{}/v1/documents/{}", s.base, uuid::Uuid::now_v7()))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), StatusCode::NOT_FOUND);
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
    let (status, ready) = json(get("/readyz").await.unwrap()).await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );

    let missing = uuid::Uuid::now_v7();
    for path in [
        format!("/v1/documents/{missing}"),
        format!("/v1/documents/{missing}/chunks"),
        format!("/v1/documents/{missing}/events"),
    ] {
        let (status, body) = json(get(&path).await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            body["error"].as_str().unwrap().contains("not found"),
            "{path}"
        );
    }
    let (status, _) = json(get("/v1/documents/not-a-uuid").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = json(get("/v1/documents?status=bogus").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let post = |form: Form| {
        http.post(format!("{}/v1/documents", s.base))
            .multipart(form)
            .send()
    };
    // No file; an unknown field; an empty file; a bad callback URL.
    let (status, body) = json(
        post(Form::new().text("callback_url", "http://127.0.0.1/x"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = json(post(Form::new().text("colour", "blue")).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = json(post(upload("empty.txt", Vec::new())).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = json(
        post(upload("a.txt", b"hello".to_vec()).text("callback_url", "ftp://x"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Over the document limit, and over the body limit.
    let (status, body) = json(
        post(upload("big.txt", vec![b'a'; MAX_BODY / 2 + 1]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // A body announced above the limit is refused before it is read: the client need not
    // send it (a client that keeps sending may see the connection closed instead).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = s.base.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /v1/documents HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; \
             boundary=x\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY * 4
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }

    // Search: malformed JSON, unknown fields, empty query.
    let search = |body: &'static str| {
        http.post(format!("{}/v1/search", s.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        search("{not json").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        search(r#"{"query": "x", "colour": 1}"#)
            .await
            .unwrap()
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        search(r#"{"query": "  "}"#).await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The server is still up.
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    s.runtime.shutdown().await;
}

fn key(name: &str, secret: &str, scopes: &[Scope]) -> ApiKey {
    use sha2::Digest;
    ApiKey {
        name: name.into(),
        sha256: format!("{:x}", sha2::Sha256::digest(secret.as_bytes())),
        scopes: scopes.to_vec(),
    }
}

#[both_backends]
async fn api_keys_and_scopes_are_checked(db: impl TestDb) {
    let keys = ApiKeys::new(&[
        key("reader", "read-key-123", &[Scope::Read]),
        key("uploader", "ingest-key-456", &[Scope::Ingest]),
        key("operator", "admin-key-789", &[Scope::Admin]),
    ])
    .unwrap();
    let s = serve_with(db.driver(), Some(keys)).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.base);
    // Health stays open.
    assert_eq!(
        http.get(url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        http.get(url("/readyz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    // No key, a wrong key, a malformed header.
    let r = http.get(url("/v1/documents")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    for auth in ["Bearer wrong-key", "Basic cmVhZDpyZWFk", "Bearer "] {
        let r = http
            .get(url("/v1/documents"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth}");
    }
    // The reader may read but not upload; the uploader may upload but not read.
    let r = http
        .get(url("/v1/documents"))
        .bearer_auth("read-key-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .post(url("/v1/documents"))
        .bearer_auth("read-key-123")
        .multipart(upload("notes.txt", corpus("notes.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, body) = json(
        http.post(url("/v1/documents"))
            .bearer_auth("ingest-key-456")
            .multipart(upload("notes.txt", corpus("notes.txt")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["document"]["id"].as_str().unwrap().to_owned();
    let r = http
        .get(url(&format!("/v1/documents/{id}")))
        .bearer_auth("ingest-key-456")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Deleting needs admin.
    let r = http
        .delete(url(&format!("/v1/documents/{id}")))
        .bearer_auth("read-key-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .delete(url(&format!("/v1/documents/{id}")))
        .bearer_auth("admin-key-789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Bad key configuration is refused up front.
    assert!(
        ApiKeys::new(&[ApiKey {
            name: "x".into(),
            sha256: "abc".into(),
            scopes: vec![Scope::Read]
        }])
        .is_err()
    );
    assert!(ApiKeys::new(&[key("x", "k", &[])]).is_err());
    s.runtime.shutdown().await;
}

async fn wait_status(http: &reqwest::Client, base: &str, id: &str, want: &str) {
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
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("document {id} never became {want}"))
}

#[both_backends]
async fn jobs_and_queues_are_inspected_and_repaired(db: impl TestDb) {
    let s = serve(db.driver()).await;
    let http = reqwest::Client::new();
    let base = s.base.clone();
    let url = |p: &str| format!("{base}{p}");
    // A file that cannot be parsed: its parse job is dead-lettered.
    let (_, body) = json(
        http.post(url("/v1/documents"))
            .multipart(upload("garbage.txt", corpus("hostile/garbage.txt")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let doc = body["document"]["id"].as_str().unwrap().to_owned();
    wait_status(&http, &base, &doc, "failed").await;
    // The document fails inside the stage; the job's own failure is written a moment later,
    // with the runtime's next batch of completions.
    let failed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (_, failed) = json(http.get(url("/v1/jobs/failed")).send().await.unwrap()).await;
            if failed["jobs"].as_array().is_some_and(|j| !j.is_empty()) {
                return failed;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the parse job never reached the dead-letter list");
    let job = &failed["jobs"][0];
    assert_eq!(job["job_type"], "docket.parse");
    assert_eq!(job["document_id"], doc.as_str());
    let id = job["id"].as_i64().unwrap();
    let (status, detail) = json(
        http.get(url(&format!("/v1/jobs/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["attempts"][0]["outcome"], "failed");
    let (_, by_doc) = json(
        http.get(url(&format!("/v1/jobs?document_id={doc}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_doc["jobs"].as_array().unwrap().len(), 1);
    let (_, stats) = json(http.get(url("/v1/jobs/stats")).send().await.unwrap()).await;
    assert!(
        stats["stats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["job_type"] == "docket.parse" && r["status"] == "failed")
    );

    // Retry it by hand: it runs again (and fails again: the bytes are still garbage).
    let r = http
        .post(url(&format!("/v1/jobs/{id}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, d) = json(
                http.get(url(&format!("/v1/jobs/{id}")))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            if d["attempts"].as_array().unwrap().len() == 2 && d["job"]["status"] == "failed" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the retried job ran again");
    // Finished jobs cannot be cancelled; unknown ones are not found; bulk retry must say which.
    assert_eq!(
        http.post(url(&format!("/v1/jobs/{id}/cancel")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        http.get(url("/v1/jobs/999999"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = http
        .post(url("/v1/jobs/retry"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (status, bulk) = json(
        http.post(url("/v1/jobs/retry"))
            .json(&json!({"kind": "docket.parse"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bulk["retried"], json!([id]));

    // A paused queue holds new documents until it is resumed.
    let r = http
        .post(url("/v1/queues/default/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, queues) = json(http.get(url("/v1/queues")).send().await.unwrap()).await;
    assert!(
        queues["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["name"] == "default" && !q["paused_at"].is_null())
    );
    let (_, body) = json(
        http.post(url("/v1/documents"))
            .multipart(upload("notes.txt", corpus("notes.txt")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let held = body["document"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, d) = json(
        http.get(url(&format!("/v1/documents/{held}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(d["status"], "queued");
    // The stream of every document's progress shows it completing once the queue resumes.
    let all = http.get(url("/v1/events")).send().await.unwrap();
    assert_eq!(all.status(), StatusCode::OK);
    let r = http
        .post(url("/v1/queues/default/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut stream = all.bytes_stream();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text
                .lines()
                .any(|l| l.contains(held.as_str()) && l.contains("\"completed\""))
            {
                return;
            }
        }
    })
    .await
    .expect("the completion came through /v1/events");
    wait_status(&http, &base, &held, "completed").await;

    // Cron: schedules, history, and a run of an unknown schedule.
    let (status, cron) = json(http.get(url("/v1/cron")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(cron["schedules"].is_array());
    let (status, hist) = json(
        http.get(url("/v1/cron/history?limit=5"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(hist["runs"].is_array());
    let (status, body) = json(
        http.post(url("/v1/cron/no-such-schedule/run"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    s.runtime.shutdown().await;
}

/// `POST /v1/cron/{name}/run` answers `409` while a run of the schedule is live: here the
/// first run waits in a paused queue. Once it has finished, the next one is accepted.
#[both_backends]
async fn a_cron_run_is_refused_while_one_is_live(db: impl TestDb) {
    let s = serve(db.driver()).await;
    let scheduler = docket_queue::maintenance::Scheduler::new(
        s.driver.clone(),
        Default::default(),
        std::sync::Arc::new(docket_core::SystemClock),
    )
    .unwrap();
    scheduler.ensure_builtin().await.unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.base);
    let r = http
        .post(url("/v1/queues/default/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let run = || http.post(url("/v1/cron/docket.cleanup/run")).send();
    let (status, first) = json(run().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["run"]["message"], "manual");
    let job = first["run"]["job_id"].as_i64().expect("the run's job");
    let (status, body) = json(run().await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "a run of docket.cleanup is already live");
    let (_, hist) = json(
        http.get(url("/v1/cron/history?schedule=docket.cleanup"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(hist["runs"].as_array().unwrap().len(), 1, "{hist}");

    // Resumed, the run's job finishes, and a new run is accepted.
    let r = http
        .post(url("/v1/queues/default/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, d) = json(
                http.get(url(&format!("/v1/jobs/{job}")))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            if ["completed", "failed"].contains(&d["job"]["status"].as_str().unwrap_or("")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the run's job finished");
    let (status, again) = json(run().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    s.runtime.shutdown().await;
}

/// Every answer carries the browser protections: a Content-Security-Policy without inline
/// script that no page may frame, `X-Frame-Options`, `nosniff` and no referrer; API answers,
/// dashboard pages, assets, refusals and unknown routes alike.
#[both_backends]
async fn every_answer_carries_the_browser_protections(db: impl TestDb) {
    let s = common::serve(db.driver(), 256 * 1024, Some(common::admin_and_reader())).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, key, status) in [
        ("/healthz", None, 200),
        ("/v1/jobs", Some(common::READER), 200),
        ("/v1/jobs", None, 401),
        ("/v1/no-such-route", Some(common::READER), 404),
        ("/ui/login", None, 200),
        ("/ui/jobs", None, 303),
        ("/ui/assets/app.js", None, 200),
    ] {
        let mut req = http.get(format!("{}{path}", s.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = h("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("referrer-policy"), "no-referrer", "{path}");
    }
}
