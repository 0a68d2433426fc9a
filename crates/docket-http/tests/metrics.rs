//! `GET /metrics` over a real socket, on both backends: a document goes through the pipeline,
//! then the Prometheus text is parsed and checked series by series.
//!
//! The recorder is process-wide, so the tests of this binary share it: counts are checked
//! with `>=`, never `==`. The gauges read at scrape are exact, but each scrape sets them from
//! the database of the server scraped: scrapes take [`SCRAPE`] so that a test reads the
//! figures its own scrape set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::{
    DocumentInsertParams, DocumentSource, DocumentStore, Driver, JobInsertManyParams,
    JobInsertParams, QueueDriver, QueueExecutor, WorkerHeartbeatParams,
};
use docket_http::auth::{ApiKey, ApiKeys, Scope};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use uuid::Uuid;

const MAX_BODY: usize = 256 * 1024;

mod common;
use common::Server;

async fn serve<D: Driver>(driver: &D, keys: Option<ApiKeys>) -> Server<D> {
    common::serve(driver, MAX_BODY, keys).await
}

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docket-parse/tests/corpus")
        .join(name);
    std::fs::read(path).unwrap()
}

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The text format, parsed: the samples, and the `# TYPE` of each metric family.
#[derive(Debug, Default)]
struct Exposition {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    /// Samples named `name` whose labels include every pair of `want`.
    fn find(&self, name: &str, want: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && want
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The sum of the values of [`Exposition::find`]'s samples.
    fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.find(name, want).iter().map(|s| s.value).sum()
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|e| format!("value {s:?}: {e}")),
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let end;
        loop {
            // A label name, `=`, and a quoted value with `\\`, `\"` and `\n` escapes.
            let start = match chars.peek() {
                Some(&(_, '}')) => {
                    end = chars.next().unwrap().0;
                    break;
                }
                Some(&(i, _)) => i,
                None => return Err("unterminated labels".into()),
            };
            let eq = after[start..].find('=').ok_or("label without =")? + start;
            let key = &after[start..eq];
            if !is_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            while chars.peek().is_some_and(|&(i, _)| i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label {key} value is not quoted"));
            }
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('"') => break,
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(c @ ('\\' | '"')) => value.push(c),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some(c) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            }
            if labels.insert(key.to_owned(), value).is_some() {
                return Err(format!("label {key} repeated"));
            }
            match chars.peek().map(|&(_, c)| c) {
                Some(',') => {
                    chars.next();
                }
                Some('}') => {}
                other => return Err(format!("expected , or }} after a label, got {other:?}")),
            }
        }
        rest = &after[end + 1..];
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|e| format!("timestamp {ts:?}: {e}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses every line; any line that is neither a comment, blank, nor a valid sample fails.
fn parse_exposition(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                let name = words.next().expect("# TYPE names a metric");
                let kind = words.next().expect("# TYPE gives a type");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "line {}: unknown type {kind:?}",
                    n + 1
                );
                out.types.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        let sample = parse_sample(line)
            .unwrap_or_else(|e| panic!("line {} does not parse ({e}): {line:?}", n + 1));
        out.samples.push(sample);
    }
    out
}

#[test]
fn the_parser_reads_labels_with_braces_escapes_and_infinities() {
    let e = parse_exposition(
        "# HELP x_total A counter.\n# TYPE x_total counter\n\
         x_total{route=\"/v1/documents/{id}\",msg=\"a \\\"b\\\" \\\\ c\"} 3\n\
         h_bucket{le=\"+Inf\"} 7 1700000000000\nplain 2.5e-3\n",
    );
    assert_eq!(e.types["x_total"], "counter");
    assert_eq!(e.samples.len(), 3);
    assert_eq!(e.samples[0].labels["route"], "/v1/documents/{id}");
    assert_eq!(e.samples[0].labels["msg"], "a \"b\" \\ c");
    assert_eq!(e.samples[1].value, 7.0);
    assert_eq!(e.samples[2].value, 0.0025);
    assert!(parse_sample("bad{x=unquoted} 1").is_err());
    assert!(parse_sample("bad{x=\"1\"}").is_err());
    assert!(parse_sample("1bad 1").is_err());
    assert!(parse_sample("bad{x=\"1\"y=\"2\"} 1").is_err());
}

#[test]
fn installing_twice_returns_the_same_recorder() {
    let a = docket_http::metrics::install().expect("the recorder installs");
    let b = docket_http::metrics::install().expect("the second call returns it again");
    metrics::counter!("docket_test_install_probe_total").increment(1);
    for h in [&a, &b] {
        let e = parse_exposition(&h.render());
        assert!(
            e.sum("docket_test_install_probe_total", &[]) >= 1.0,
            "both handles render the one recorder"
        );
    }
}

/// Held by every scrape in this binary (see the module docs).
static SCRAPE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn get_metrics(http: &reqwest::Client, base: &str) -> (String, Exposition) {
    let _one_at_a_time = SCRAPE.lock().await;
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let parsed = parse_exposition(&text);
    (text, parsed)
}

async fn wait_completed(http: &reqwest::Client, base: &str, id: &str) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let d: Value = http
                .get(format!("{base}/v1/documents/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if d["status"] == "completed" {
                return;
            }
            assert_ne!(d["status"], "failed", "{d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("document {id} never completed"))
}

#[both_backends]
async fn a_processed_document_shows_in_the_metrics(db: impl TestDb) {
    let s = serve(db.driver(), None).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/documents", s.base))
        .multipart(Form::new().part(
            "file",
            Part::bytes(corpus("notes.txt")).file_name("notes.txt"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    let id = body["document"]["id"].as_str().unwrap().to_owned();
    wait_completed(&http, &s.base, &id).await;

    // The last stage's own records land just after its commit: poll briefly for them.
    let mut scrape = get_metrics(&http, &s.base).await;
    for _ in 0..100 {
        let e = &scrape.1;
        if e.sum(
            "docket_job_attempts_total",
            &[("job_type", "docket.parse"), ("outcome", "completed")],
        ) >= 1.0
            && e.sum("docket_stage_duration_seconds_count", &[("stage", "embed")]) >= 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        scrape = get_metrics(&http, &s.base).await;
    }
    let (text, e) = scrape;

    // HTTP: by route template, so the upload and the polls are series of their own.
    let uploads = e.find(
        "docket_http_requests_total",
        &[
            ("route", "/v1/documents"),
            ("method", "POST"),
            ("status", "202"),
        ],
    );
    assert!(!uploads.is_empty() && uploads[0].value >= 1.0, "{text}");
    assert!(
        e.sum(
            "docket_http_requests_total",
            &[("route", "/v1/documents/{id}"), ("method", "GET")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        e.sum(
            "docket_http_request_duration_seconds_count",
            &[("route", "/v1/documents"), ("method", "POST")]
        ) >= 1.0,
        "{text}"
    );
    // No document id in any label.
    for sample in &e.samples {
        assert!(
            sample.labels.values().all(|v| !v.contains(&id)),
            "an id became a label value: {sample:?}"
        );
    }
    // An unknown path is counted as unmatched.
    let r = http
        .get(format!("{}/no/such/{id}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, after) = get_metrics(&http, &s.base).await;
    assert!(
        after.sum(
            "docket_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0
    );

    // The queue and the stages.
    assert!(
        e.sum(
            "docket_job_attempts_total",
            &[("job_type", "docket.parse"), ("outcome", "completed")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        e.sum(
            "docket_job_attempt_duration_seconds_count",
            &[("job_type", "docket.parse")]
        ) >= 1.0,
        "{text}"
    );
    for stage in ["parse", "chunk", "embed"] {
        assert!(
            e.sum(
                "docket_stage_duration_seconds_count",
                &[("stage", stage), ("outcome", "ok")]
            ) >= 1.0,
            "stage {stage}: {text}"
        );
    }
    let buckets = e.find(
        "docket_stage_duration_seconds_bucket",
        &[("stage", "embed")],
    );
    assert!(
        buckets
            .iter()
            .any(|b| b.labels.get("le").map(String::as_str) == Some("+Inf")),
        "{text}"
    );

    // Read from the database at scrape time.
    let completed = e.find("docket_jobs", &[("state", "completed")]);
    assert!(!completed.is_empty(), "{text}");
    assert!(
        e.sum(
            "docket_jobs",
            &[("job_type", "docket.parse"), ("state", "completed")]
        ) >= 1.0,
        "{text}"
    );
    assert!(!e.find("docket_queue_depth", &[]).is_empty(), "{text}");
    assert!(
        !e.find("docket_queue_oldest_queued_age_seconds", &[])
            .is_empty(),
        "{text}"
    );
    assert!(!e.find("docket_queue_paused", &[]).is_empty(), "{text}");
    assert_eq!(e.sum("docket_database_up", &[]), 1.0, "{text}");

    // The families carry their types.
    for (name, kind) in [
        ("docket_http_requests_total", "counter"),
        ("docket_http_request_duration_seconds", "histogram"),
        ("docket_job_attempts_total", "counter"),
        ("docket_job_attempt_duration_seconds", "histogram"),
        ("docket_stage_duration_seconds", "histogram"),
        ("docket_jobs", "gauge"),
        ("docket_queue_depth", "gauge"),
    ] {
        assert_eq!(
            e.types.get(name).map(String::as_str),
            Some(kind),
            "# TYPE of {name}: {text}"
        );
    }
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
async fn metrics_need_the_read_scope(db: impl TestDb) {
    let keys = ApiKeys::new(&[
        key("reader", "read-key-123", &[Scope::Read]),
        key("uploader", "ingest-key-456", &[Scope::Ingest]),
    ])
    .unwrap();
    let s = serve(db.driver(), Some(keys)).await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", s.base);
    let status = |key: Option<&'static str>| {
        let mut req = http.get(&url);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(status(None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(Some("ingest-key-456")).await, StatusCode::FORBIDDEN);
    let scrape = SCRAPE.lock().await;
    assert_eq!(status(Some("read-key-123")).await, StatusCode::OK);
    drop(scrape);
    s.runtime.shutdown().await;
}

/// Scrapes until `done` holds (the test server's worker writes its first heartbeat just after
/// it starts), for at most 10 s; the last scrape.
async fn scrape_until(
    http: &reqwest::Client,
    base: &str,
    done: impl Fn(&Exposition) -> bool,
) -> (String, Exposition) {
    let mut scrape = get_metrics(http, base).await;
    for _ in 0..200 {
        if done(&scrape.1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        scrape = get_metrics(http, base).await;
    }
    scrape
}

/// The two figures the shipped alert rules need that no other series gives: live workers per
/// queue (`DocketQueueWithoutWorker`) and stuck documents (`DocketDocumentsStuck`).
#[both_backends]
async fn live_workers_per_queue_and_stuck_documents_show_in_the_metrics(db: impl TestDb) {
    // Its runtime works `default` (no maintenance, so no sweep repairs the stuck documents).
    let s = serve(db.driver(), None).await;
    let http = reqwest::Client::new();
    // One connection, let go before scraping: the SQLite driver has only one.
    let mut c = db.driver().conn().await.unwrap();
    let now = Utc::now();
    let hour_ago = now - chrono::Duration::hours(1);

    // Besides the server's own worker: one more live on `default` and `extra`, and one on
    // `orphan` whose lease lapsed an hour ago.
    let heartbeat = |id: &str, queues: &[&str], at| WorkerHeartbeatParams {
        id: id.to_owned(),
        hostname: "metrics-test".to_owned(),
        pid: 1,
        queues: queues.iter().map(|q| q.to_string()).collect(),
        lease: chrono::Duration::minutes(10),
        now: Some(at),
    };
    c.worker_heartbeat(heartbeat("live", &["default", "extra"], now))
        .await
        .unwrap();
    c.worker_heartbeat(heartbeat(
        "dead",
        &["orphan"],
        hour_ago - chrono::Duration::minutes(10),
    ))
    .await
    .unwrap();

    // Stuck: unfinished, unchanged for longer than `pipeline.stuck_after_ms` (5 minutes), no
    // live job. Not stuck: one changed just now, and one whose parse job waits in `orphan`.
    let document = |at| {
        let id = Uuid::now_v7();
        DocumentInsertParams {
            id,
            source: DocumentSource::Upload,
            filename: None,
            content_type: None,
            size_bytes: 1,
            sha256: docket_pipeline::sha256_hex(id.as_bytes()),
            storage_key: format!("documents/{id}/original"),
            callback_url: None,
            metadata: json!({}),
            priority: 0,
            now: Some(at),
        }
    };
    for at in [hour_ago, hour_ago, now] {
        c.document_insert(&document(at)).await.unwrap();
    }
    let waiting = c.document_insert(&document(hour_ago)).await.unwrap();
    let mut parse = JobInsertParams::new("docket.parse", json!({}));
    parse.queue = "orphan".to_owned();
    parse.unique_key = Some(format!("document:{}:parse", waiting.id));
    c.job_insert_many(JobInsertManyParams { jobs: vec![parse] })
        .await
        .unwrap();
    drop(c);

    let workers = |e: &Exposition, queue: &str| {
        let found = e.find("docket_queue_workers", &[("queue", queue)]);
        (found.len() == 1).then(|| found[0].value)
    };
    let (text, e) = scrape_until(&http, &s.base, |e| workers(e, "default") == Some(2.0)).await;
    assert_eq!(workers(&e, "default"), Some(2.0), "{text}");
    assert_eq!(workers(&e, "extra"), Some(1.0), "{text}");
    assert_eq!(
        workers(&e, "orphan"),
        Some(0.0),
        "a dead worker is not counted: {text}"
    );
    assert_eq!(
        e.sum("docket_queue_depth", &[("queue", "orphan")]),
        1.0,
        "{text}"
    );
    assert_eq!(e.sum("docket_documents_stuck", &[]), 2.0, "{text}");
    for name in ["docket_queue_workers", "docket_documents_stuck"] {
        assert_eq!(
            e.types.get(name).map(String::as_str),
            Some("gauge"),
            "{text}"
        );
    }

    // A worker that leaves is no longer counted; a queue it alone served reads 0.
    let mut c = db.driver().conn().await.unwrap();
    c.worker_delete("live").await.unwrap();
    drop(c);
    let (text, e) = scrape_until(&http, &s.base, |e| workers(e, "extra") == Some(0.0)).await;
    assert_eq!(workers(&e, "extra"), Some(0.0), "{text}");
    assert_eq!(workers(&e, "default"), Some(1.0), "{text}");
    s.runtime.shutdown().await;
}
