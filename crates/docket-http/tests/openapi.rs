//! The OpenAPI document (`openapi.json`, served at `GET /v1/openapi.json`) against the server
//! it describes: it is a valid OpenAPI 3.1 document; it lists exactly the routes the router
//! serves (read from this crate's source), each of which answers; the statuses, media types
//! and JSON bodies the server answers with are the documented ones; and each operation's
//! documented scope is the one the server enforces.
//!
//! The checks run Python's `openapi-spec-validator` and `jsonschema` (a dependency of the
//! former): `pip install openapi-spec-validator`. A missing validator fails the tests.
//!
//! Response schemas are checked strictly: every object schema that lists `properties` (and
//! says nothing about others) is made to refuse properties it does not list, so that a field
//! the server adds or renames is caught here, while the published document leaves clients free
//! to ignore new fields.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use docket_conformance::harness::{TestDb, sqlite};
use docket_core::{
    Clock, CronScheduleSpec, CronScheduleUpsertParams, JobGetAvailableParams, JobInsertManyParams,
    JobInsertParams, MissedRunPolicy, QueueDriver, QueueExecutor, SystemClock,
    WorkerHeartbeatParams,
};
use docket_http::auth::{ApiKey, ApiKeys, Scope};
use serde_json::{Value, json};

mod common;
use common::openapi::*;

/// The scope an operation's description names (`Scope: \`read\``), or `None` for an open one
/// (`security: []`).
fn documented_scope(doc: &Value, method: &str, path: &str) -> Option<Scope> {
    let op = &doc["paths"][path][method];
    let open = op["security"].as_array().is_some_and(Vec::is_empty);
    let description = op["description"].as_str().unwrap_or("");
    let named: Vec<Scope> = [
        ("`ingest`", Scope::Ingest),
        ("`read`", Scope::Read),
        ("`admin`", Scope::Admin),
    ]
    .into_iter()
    .filter(|(word, _)| description.contains(&format!("Scope: {word}")))
    .map(|(_, s)| s)
    .collect();
    if open {
        assert!(
            named.is_empty(),
            "{method} {path} is open (security: []) but its description names a scope"
        );
        None
    } else {
        assert_eq!(
            named.len(),
            1,
            "{method} {path}: the description must name its scope once, as Scope: `read`"
        );
        Some(named[0])
    }
}

// ---------------------------------------------------------------------------------------------
// The routes the router serves, read from this crate's source.

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// If a string or character literal starts at `i`, the index just after it.
fn skip_literal(s: &str, i: usize) -> Option<usize> {
    let b = s.as_bytes();
    let ident = |j: usize| j > 0 && (b[j - 1].is_ascii_alphanumeric() || b[j - 1] == b'_');
    match b[i] {
        b'"' => {
            let mut j = i + 1;
            while j < b.len() {
                match b[j] {
                    b'\\' => j += 2,
                    b'"' => return Some(j + 1),
                    _ => j += 1,
                }
            }
            Some(b.len())
        }
        b'r' if !ident(i) && matches!(b.get(i + 1), Some(b'"' | b'#')) => {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                return None;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            Some(
                s[body..]
                    .find(&close)
                    .map_or(b.len(), |k| body + k + close.len()),
            )
        }
        b'\'' => {
            if b.get(i + 1) == Some(&b'\\') {
                return Some(s[i + 3..].find('\'').map_or(b.len(), |k| i + 3 + k + 1));
            }
            let c = s[i + 1..].chars().next()?;
            let after = i + 1 + c.len_utf8();
            // A character literal; otherwise a lifetime.
            (b.get(after) == Some(&b'\'')).then_some(after + 1)
        }
        _ => None,
    }
}

/// `src` without its comments.
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        if let Some(end) = skip_literal(src, i) {
            out.push_str(&src[i..end]);
            i = end;
        } else if src[i..].starts_with("//") {
            i = src[i..].find('\n').map_or(src.len(), |k| i + k);
        } else if src[i..].starts_with("/*") {
            i = src[i + 2..].find("*/").map_or(src.len(), |k| i + 2 + k + 2);
        } else {
            let c = src[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Walks `s` outside literals, calling `f(index, byte, depth)` for each bracket-level byte;
/// stops at the `)`, `]` or `}` that closes depth 0 and returns its index.
fn walk(s: &str, mut f: impl FnMut(usize, u8, usize)) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = skip_literal(s, i) {
            i = end;
            continue;
        }
        f(i, b[i], depth);
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The methods of a method-router expression such as `post(create::<D>).get(list::<D>)`:
/// the names of the calls at its top level that are HTTP methods.
fn methods_of(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    walk(expr, |i, c, depth| {
        if c == b'(' && depth == 0 {
            let end = expr[..i].trim_end().len();
            let start = expr[..end]
                .rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(0, |k| k + 1);
            names.push(expr[start..end].to_owned());
        }
    });
    for n in &names {
        assert!(
            !matches!(
                n.as_str(),
                "any" | "on" | "get_service" | "post_service" | "on_service"
            ),
            "a route uses {n}(..): list its methods one by one so this test can read them"
        );
    }
    names
        .into_iter()
        .filter(|n| METHODS.contains(&n.as_str()))
        .collect()
}

/// Every (method, path) of the `.route("PATH", get(..).post(..))` calls in this crate's source.
fn served_routes() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    // The dashboard (src/dashboard/) serves HTML pages for browsers, not the JSON API that
    // the document describes.
    let dashboard = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dashboard");
    files.retain(|f| !f.starts_with(&dashboard));
    files.sort();
    let mut out = BTreeSet::new();
    for file in files {
        let src = strip_comments(&std::fs::read_to_string(&file).unwrap());
        let mut rest = src.as_str();
        while let Some(i) = rest.find(".route(") {
            let args = &rest[i + ".route(".len()..];
            let close = walk(args, |_, _, _| {})
                .unwrap_or_else(|| panic!("{}: unclosed .route(", file.display()));
            let (call, after) = args.split_at(close);
            let call = call.trim_start();
            let path_end = call
                .strip_prefix('"')
                .and_then(|c| c.find('"'))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a route's path is not a string literal: .route({call})",
                        file.display()
                    )
                });
            let path = &call[1..=path_end];
            let expr = call[path_end + 2..]
                .trim_start()
                .strip_prefix(',')
                .unwrap_or_else(|| panic!("{}: .route({call}) has no handler", file.display()));
            let methods = methods_of(expr);
            assert!(
                !methods.is_empty(),
                "{}: no HTTP method found in .route({call})",
                file.display()
            );
            for m in methods {
                out.insert((m, path.to_owned()));
            }
            rest = after;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_valid_openapi_3_1() {
    require_validators();
    let db = sqlite().await;
    let s = serve(db.driver(), None).await;
    let (status, content_type, text) = fetch_document(&s.base, None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(essence(&content_type), "application/json");
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "an OpenAPI 3.1 document"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let out = python(&["-m", "openapi_spec_validator", file.to_str().unwrap()]);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.contains(": OK"),
        "openapi-spec-validator refuses the document:\n{report}"
    );

    // The JSON examples of request bodies match their schemas.
    let mut checks = Vec::new();
    for (method, path) in documented_operations(&doc) {
        let at = format!("/paths/{}/{method}/requestBody", esc(&path));
        let Some(body) = doc.pointer(&at) else {
            continue;
        };
        let (body, at) = deref(&doc, body, at);
        for (media, content) in body["content"].as_object().into_iter().flatten() {
            if let Some(example) = content.get("example") {
                checks.push(Check {
                    label: format!("example of {} {path} ({media})", method.to_uppercase()),
                    pointer: format!("{at}/content/{}/schema", esc(media)),
                    instance: example.clone(),
                });
            }
        }
    }
    validate_instances(&doc, &checks);
    s.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_documented_and_every_documented_one_is_served() {
    let db = sqlite().await;
    let s = serve(db.driver(), None).await;
    let doc = served_document(&s.base).await;

    let served = served_routes();
    let documented = documented_operations(&doc);
    let show = |set: BTreeSet<&(String, String)>| {
        set.into_iter()
            .map(|(m, p)| format!("  {} {p}", m.to_uppercase()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let undocumented = served.difference(&documented).collect::<BTreeSet<_>>();
    let unserved = documented.difference(&served).collect::<BTreeSet<_>>();
    let mut problems = Vec::new();
    if !undocumented.is_empty() {
        problems.push(format!(
            "served but not documented:\n{}",
            show(undocumented)
        ));
    }
    if !unserved.is_empty() {
        problems.push(format!(
            "documented but not served (no .route in src/):\n{}",
            show(unserved)
        ));
    }

    // Each documented operation reaches a handler, and answers as documented.
    let mut client = Client::new(&s.base, doc.clone());
    for (method, path) in &documented {
        let a = client.probe(method, path, None).await;
        if a.status == 405 || a.is_routing_404() {
            problems.push(format!(
                "{} {path}: the router answers {} (no such route)",
                method.to_uppercase(),
                a.status
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    client.finish();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_scopes_are_the_enforced_ones() {
    const READ: &str = "openapi-read-key";
    const INGEST: &str = "openapi-ingest-key";
    const ADMIN: &str = "openapi-admin-key";
    let keys = ApiKeys::new(&[
        key("reader", READ, &[Scope::Read]),
        key("uploader", INGEST, &[Scope::Ingest]),
        key("operator", ADMIN, &[Scope::Admin]),
    ])
    .unwrap();
    let db = sqlite().await;
    let s = serve(db.driver(), Some(keys)).await;
    let (status, _, text) = fetch_document(&s.base, Some(READ)).await;
    assert_eq!(status, 200, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();

    let mut client = Client::new(&s.base, doc.clone());
    let mut problems = Vec::new();
    let bearer_401 =
        |a: &Answer| a.status == 401 && a.www_authenticate.as_deref() == Some("Bearer");
    for (method, path) in documented_operations(&doc) {
        let op = format!("{} {path}", method.to_uppercase());
        let Some(scope) = documented_scope(&doc, &method, &path) else {
            let a = client.probe(&method, &path, None).await;
            if bearer_401(&a) || a.status == 403 {
                problems.push(format!(
                    "{op} is documented as open, but without a key it answers {}",
                    a.status
                ));
            }
            continue;
        };
        let a = client.probe(&method, &path, None).await;
        if !bearer_401(&a) {
            problems.push(format!(
                "{op} needs a key, but without one it answers {} (not 401 with WWW-Authenticate: Bearer)",
                a.status
            ));
        }
        let (right, wrong): (&str, &[&str]) = match scope {
            Scope::Read => (READ, &[INGEST]),
            Scope::Ingest => (INGEST, &[READ]),
            Scope::Admin => (ADMIN, &[READ, INGEST]),
        };
        for k in wrong {
            let a = client.probe(&method, &path, Some(k)).await;
            if a.status != 403 {
                problems.push(format!(
                    "{op} is documented as needing {scope:?}, but a key without it gets {}",
                    a.status
                ));
            }
        }
        for k in [right, ADMIN] {
            let a = client.probe(&method, &path, Some(k)).await;
            if bearer_401(&a) || a.status == 403 {
                problems.push(format!(
                    "{op} is documented as needing {scope:?}, but a key with it gets {}",
                    a.status
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    client.finish();
    s.runtime.shutdown().await;
}

const MARKDOWN: &str = "# Ingestion service\n\n\
The team agreed to ship the ingestion service before the end of the quarter, once the \
parsers handle every format in the corpus.\n\n\
## Search\n\n\
Search embeds the query and returns the chunks most similar to it, best first, among the \
documents that completed.\n\n\
## Jobs\n\n\
Every stage runs as a job; failed jobs wait in the dead-letter queue until someone retries \
them by hand.\n";

/// `GET path` (an instance of `template`), which must answer `200`; its JSON body.
async fn get(c: &mut Client, template: &str, path: &str) -> Value {
    let a = c.send("get", template, path, Body::None, None).await;
    assert_eq!(a.status, 200, "GET {path}: {}", a.text);
    a.json.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_match_the_documented_schemas() {
    let db = sqlite().await;
    let s = serve(db.driver(), None).await;
    let doc = served_document(&s.base).await;
    let mut c = Client::new(&s.base, doc);
    let file = || Body::File("openapi-check.md", MARKDOWN.as_bytes().to_vec());

    let a = c
        .send("post", "/v1/documents", "/v1/documents", file(), None)
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let id = a.json.as_ref().unwrap()["document"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc_path = format!("/v1/documents/{id}");
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let d: Value = reqwest::get(format!("{}{doc_path}", s.base))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match d["status"].as_str() {
                Some("completed") => return,
                Some("failed") => panic!("the document failed: {d}"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("the document completes");

    let d = get(&mut c, "/v1/documents/{id}", &doc_path).await;
    assert_eq!(d["status"], "completed");
    get(&mut c, "/v1/documents", "/v1/documents").await;
    let page = get(
        &mut c,
        "/v1/documents",
        "/v1/documents?status=completed&limit=1",
    )
    .await;
    assert_eq!(page["next_before"], id.as_str());
    let chunks = get(
        &mut c,
        "/v1/documents/{id}/chunks",
        &format!("{doc_path}/chunks"),
    )
    .await;
    assert!(!chunks["chunks"].as_array().unwrap().is_empty());
    let a = c
        .send(
            "post",
            "/v1/search",
            "/v1/search",
            Body::Json(json!({"query": "when does the ingestion service ship", "k": 3})),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(!a.json.unwrap()["hits"].as_array().unwrap().is_empty());

    let jobs = get(&mut c, "/v1/jobs", &format!("/v1/jobs?document_id={id}")).await;
    let job = jobs["jobs"][0]["id"].as_i64().expect("the document's jobs");
    get(&mut c, "/v1/jobs", "/v1/jobs?limit=1").await;
    let detail = get(&mut c, "/v1/jobs/{id}", &format!("/v1/jobs/{job}")).await;
    assert!(!detail["attempts"].as_array().unwrap().is_empty());
    get(&mut c, "/v1/jobs/failed", "/v1/jobs/failed").await;
    get(&mut c, "/v1/jobs/stats", "/v1/jobs/stats").await;

    for action in ["pause", "resume"] {
        let template = format!("/v1/queues/{{name}}/{action}");
        let a = c
            .send(
                "post",
                &template,
                &format!("/v1/queues/openapi/{action}"),
                Body::None,
                None,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let queues = get(&mut c, "/v1/queues", "/v1/queues").await;
    assert!(!queues["queues"].as_array().unwrap().is_empty());

    // A schedule, and a run of it by hand.
    {
        let mut conn = db.driver().conn().await.unwrap();
        conn.cron_schedule_upsert(CronScheduleUpsertParams {
            spec: CronScheduleSpec {
                name: "openapi-nightly".into(),
                expression: "0 3 * * *".into(),
                timezone: "UTC".into(),
                job_type: "openapi.nothing".into(),
                queue: "openapi".into(),
                payload: json!({}),
                priority: 0,
                enabled: true,
                missed_policy: MissedRunPolicy::Skip,
            },
            next_run_at: SystemClock.now(),
        })
        .await
        .unwrap();
    }
    let schedules = get(&mut c, "/v1/cron", "/v1/cron").await;
    assert_eq!(schedules["schedules"][0]["name"], "openapi-nightly");
    let a = c
        .send(
            "post",
            "/v1/cron/{name}/run",
            "/v1/cron/openapi-nightly/run",
            Body::None,
            None,
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    // Its job waits (no worker serves the queue): a second run is refused.
    let a = c
        .send(
            "post",
            "/v1/cron/{name}/run",
            "/v1/cron/openapi-nightly/run",
            Body::None,
            None,
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text);
    // A schedule stored by hand with a job that does not validate: no run.
    {
        let mut conn = db.driver().conn().await.unwrap();
        conn.cron_schedule_upsert(CronScheduleUpsertParams {
            spec: CronScheduleSpec {
                name: "openapi-broken".into(),
                expression: "0 3 * * *".into(),
                timezone: "UTC".into(),
                job_type: "openapi.nothing".into(),
                queue: "openapi".into(),
                payload: json!({}),
                priority: 99,
                enabled: false,
                missed_policy: MissedRunPolicy::Skip,
            },
            next_run_at: SystemClock.now(),
        })
        .await
        .unwrap();
    }
    let a = c
        .send(
            "post",
            "/v1/cron/{name}/run",
            "/v1/cron/openapi-broken/run",
            Body::None,
            None,
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    let runs = get(&mut c, "/v1/cron/history", "/v1/cron/history?limit=5").await;
    assert!(!runs["runs"].as_array().unwrap().is_empty());

    // The lead's additions: processing by request, stuck jobs, metrics, URL ingestion (the
    // guard refuses a loopback target), and the storage webhook, signed and not.
    let a = c
        .send(
            "post",
            "/v1/jobs/process",
            "/v1/jobs/process",
            Body::Json(json!({"limit": 5})),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // Two stuck jobs, so that both shapes of a row are checked: one whose worker row is gone
    // (its worker fields null), one whose worker's own one-second lease lapsed.
    {
        let mut conn = db.driver().conn().await.unwrap();
        conn.worker_heartbeat(WorkerHeartbeatParams {
            id: "openapi-lapsed".into(),
            hostname: "h".into(),
            pid: 1,
            queues: vec![],
            lease: chrono::Duration::seconds(1),
            now: Some(SystemClock.now() - chrono::Duration::seconds(10)),
        })
        .await
        .unwrap();
        for worker in ["openapi-gone", "openapi-lapsed"] {
            let mut job = JobInsertParams::new("openapi.stuck", json!({}));
            job.queue = worker.into();
            conn.job_insert_many(JobInsertManyParams { jobs: vec![job] })
                .await
                .unwrap();
            let got = conn
                .job_get_available(JobGetAvailableParams {
                    worker_id: worker.into(),
                    queue: worker.into(),
                    limit: 1,
                    now: None,
                })
                .await
                .unwrap();
            assert_eq!(got.len(), 1);
        }
    }
    let stuck = get(&mut c, "/v1/jobs/stuck", "/v1/jobs/stuck").await;
    let workers: Vec<&str> = stuck["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["locked_by"].as_str().unwrap())
        .collect();
    assert_eq!(workers, ["openapi-lapsed", "openapi-gone"], "{stuck}");
    assert_eq!(stuck["jobs"][0]["worker_lease_ms"], 1000);
    assert!(stuck["jobs"][1]["worker_heartbeat_at"].is_null());
    let a = c
        .send("get", "/metrics", "/metrics", Body::None, None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = c
        .send(
            "post",
            "/v1/documents",
            "/v1/documents",
            Body::Json(json!({"url": "http://127.0.0.1:9/report.pdf"})),
            None,
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    let signer = docket_notify::WebhookSigner::new(WEBHOOK_SECRET).unwrap();
    let events = [
        json!({
            "type": "INSERT", "table": "objects", "schema": "storage",
            "record": {"id": "6a1f", "bucket_id": "docs", "name": "reports/q3.pdf",
                       "metadata": {"size": 10, "mimetype": "application/pdf", "eTag": "\"abc\""}},
            "old_record": null
        }),
        json!({"Records": [
            {"eventName": "ObjectCreated:Put",
             "s3": {"bucket": {"name": "docs"}, "object": {"key": "a+b.txt", "size": 3, "eTag": "e1"}}},
            {"eventName": "ObjectRemoved:Delete",
             "s3": {"bucket": {"name": "docs"}, "object": {"key": "gone.txt"}}}
        ]}),
    ];
    for (i, event) in events.iter().enumerate() {
        let body = serde_json::to_vec(event).unwrap();
        let id = format!("msg_openapi_{i}");
        let ts = SystemClock.now().timestamp();
        for signature in [signer.sign(&id, ts, &body), "v1,bm9wZQ==".to_owned()] {
            let a = c
                .send_with_headers(
                    "post",
                    "/v1/webhooks/storage",
                    &body,
                    &[
                        ("webhook-id", id.clone()),
                        ("webhook-timestamp", ts.to_string()),
                        ("webhook-signature", signature.clone()),
                    ],
                )
                .await;
            let want = if signature.starts_with("v1,bm9") {
                401
            } else {
                202
            };
            assert_eq!(a.status, want, "{}", a.text);
        }
    }

    // Operator actions: refusals (409) and successes, one job and in bulk, and the trail.
    let job_path = |a: &str| format!("/v1/jobs/{job}/{a}");
    for action in ["retry", "run-now", "discard", "cancel"] {
        let a = c
            .send(
                "post",
                &format!("/v1/jobs/{{id}}/{action}"),
                &job_path(action),
                Body::None,
                None,
            )
            .await;
        assert_eq!(a.status, 409, "{action} of a completed job: {}", a.text);
    }
    let a = c
        .send(
            "post",
            "/v1/documents/{id}/cancel",
            &format!("{doc_path}/cancel"),
            Body::None,
            None,
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text);
    for (path, body) in [
        ("/v1/jobs/run-now", json!({"queue": "openapi"})),
        ("/v1/jobs/discard", json!({"all": true})),
        ("/v1/jobs/retry", json!({"ids": [job]})),
    ] {
        let a = c.send("post", path, path, Body::Json(body), None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
    }
    let live = get(&mut c, "/v1/jobs", "/v1/jobs?queue=openapi&state=queued").await;
    let waiting = live["jobs"][0]["id"]
        .as_i64()
        .expect("the cron run's job waits");
    let a = c
        .send(
            "post",
            "/v1/jobs/{id}/cancel",
            &format!("/v1/jobs/{waiting}/cancel"),
            Body::None,
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let audit = get(&mut c, "/v1/audit", "/v1/audit?limit=50").await;
    assert!(!audit["actions"].as_array().unwrap().is_empty());
    get(
        &mut c,
        "/v1/audit",
        &format!("/v1/audit?job={waiting}&action=cancel"),
    )
    .await;

    // The same bytes again; processing again; deleting; and the errors after.
    let a = c
        .send("post", "/v1/documents", "/v1/documents", file(), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = c
        .send(
            "post",
            "/v1/documents/{id}/reprocess",
            &format!("{doc_path}/reprocess"),
            Body::None,
            None,
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let a = c
        .send("delete", "/v1/documents/{id}", &doc_path, Body::None, None)
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    let a = c
        .send("get", "/v1/documents/{id}", &doc_path, Body::None, None)
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    let a = c
        .send(
            "get",
            "/v1/documents/{id}",
            "/v1/documents/not-a-uuid",
            Body::None,
            None,
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = c
        .send("get", "/v1/jobs", "/v1/jobs?colour=blue", Body::None, None)
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = c
        .send(
            "post",
            "/v1/search",
            "/v1/search",
            Body::Json(json!({"query": "x", "colour": 1})),
            None,
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);

    c.finish();
    s.runtime.shutdown().await;
}
