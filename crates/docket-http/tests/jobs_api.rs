//! Jobs run on request, stuck jobs and stats, progress streamed by a server from workers in
//! another process, and readiness while migrations are pending, over a real socket, on both
//! backends.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use docket_conformance::both_backends;
use docket_conformance::harness::{TestDb, postgres};
use docket_core::{
    Clock, Driver, JobGetAvailableParams, JobInsertManyParams, QueueDriver, QueueExecutor,
    SystemClock, WorkerHeartbeatParams,
};
use docket_http::ApiOptions;
use docket_pipeline::Pipeline;
use docket_queue::{JobArgs, JobContext, JobError, Runtime, Worker, Workers};
use futures::StreamExt;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod common;
use common::{NOTES, json, listen, runtime_config};

const MAX_BODY: usize = 256 * 1024;

fn pipeline<D: Driver>(driver: &D, blobs: &Path) -> Pipeline<D> {
    common::pipeline(driver, blobs, MAX_BODY)
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
