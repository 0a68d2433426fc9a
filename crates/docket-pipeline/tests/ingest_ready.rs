//! Storage announces an object a moment before it answers for it: the ingest job waits
//! `start_delay_ms` before its first fetch, takes a `404` within `not_ready_secs` of the event
//! for "not ready yet" and fetches again a little later (no attempt spent), and fails with the
//! reason once the window has passed. Both backends, against a loopback object server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::*;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_notify::{WebhookHeaders, WebhookSigner};
use docket_pipeline::fetch::{FetchConfig, Fetcher};
use docket_pipeline::ingest::{StorageIngest, StorageWebhookConfig};
use docket_pipeline::notify::Notifier;

mod common;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Objects by key, each with how many more times it answers `404` first (`usize::MAX`:
/// never there).
type Objects = Arc<Mutex<HashMap<String, (usize, Vec<u8>)>>>;

async fn object(State(o): State<Objects>, Path(key): Path<String>) -> Response {
    let mut o = o.lock().unwrap();
    match o.get_mut(&key) {
        Some((0, bytes)) => bytes.clone().into_response(),
        Some((n, _)) => {
            *n = n.saturating_sub(1);
            StatusCode::NOT_FOUND.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn announce<D: Driver>(ingest: &StorageIngest<D>, key: &str, id: &str) {
    let body = serde_json::json!({
        "type": "INSERT", "table": "objects", "schema": "storage",
        "record": {"bucket_id": "uploads", "name": key}
    })
    .to_string();
    let at = chrono::Utc::now().timestamp();
    let sig = WebhookSigner::new(SECRET)
        .unwrap()
        .sign(id, at, body.as_bytes());
    let at = at.to_string();
    let headers = WebhookHeaders::new(id, &at, &sig);
    let (accepted, _) = ingest.receive(&headers, body.as_bytes()).await.unwrap();
    assert_eq!(accepted.len(), 1);
}

async fn ingest_job<D: Driver>(d: &D, key: &str) -> JobRow {
    let mut c = d.conn().await.unwrap();
    c.job_list(JobListParams {
        job_types: vec!["docket.ingest_object".into()],
        limit: 10,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_iter()
    .find(|j| j.payload["object"]["key"] == key)
    .expect("the ingest job")
}

#[both_backends]
async fn an_object_that_is_not_ready_yet_is_fetched_again_within_the_window(db: impl TestDb) {
    let objects: Objects = Arc::default();
    objects.lock().unwrap().insert(
        "uploads/late.md".into(),
        (
            2,
            b"# Late\n\nThe object answered 404 twice, then this.\n".to_vec(),
        ),
    );
    objects
        .lock()
        .unwrap()
        .insert("uploads/never.md".into(), (usize::MAX, Vec::new()));
    let app = axum::Router::new()
        .route("/o/{*key}", axum::routing::get(object))
        .with_state(objects.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let blobs = tempfile::tempdir().unwrap();
    let embedder = Arc::new(HashingEmbedder::new(HashingConfig {
        dimensions: 64,
        max_tokens: 256,
    }));
    let p = common::pipeline(db.driver(), blobs.path(), embedder, Notifier::none());
    let fetcher = Fetcher::new(
        FetchConfig {
            allow_private: true,
            max_redirects: 0,
            timeout_secs: 2,
            max_bytes: None,
        },
        1 << 20,
    )
    .unwrap();
    let ingest = StorageIngest::new(
        p.clone(),
        fetcher,
        StorageWebhookConfig {
            secret: SECRET.into(),
            tolerance_secs: 300,
            object_url: format!("http://{addr}/o/{{bucket}}/{{key}}"),
            headers: Default::default(),
            priority: 5,
            start_delay_ms: 300,
            not_ready_secs: 8,
        },
    )
    .unwrap();
    let mut workers = docket_queue::Workers::new();
    p.register(&mut workers);
    ingest.register(&mut workers);
    let h = common::start_with(&p, workers);

    let announced = Instant::now();
    announce(&ingest, "late.md", "msg_late").await;
    announce(&ingest, "never.md", "msg_never").await;
    let job = ingest_job(db.driver(), "late.md").await;
    assert!(
        job.run_at >= job.created_at + chrono::Duration::milliseconds(290),
        "the first fetch waits start_delay_ms: {job:?}"
    );

    // The late object: two 404s held back (no attempt spent), then fetched and processed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let j = ingest_job(db.driver(), "late.md").await;
        if j.status == JobState::Completed {
            break j;
        }
        assert!(j.status.is_live(), "{j:?}");
        assert!(Instant::now() < deadline, "never ingested: {j:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done.attempts, 1, "the 404s spent no attempt: {done:?}");
    let mut c = db.driver().conn().await.unwrap();
    let tries = c.job_attempt_list(done.id).await.unwrap();
    let not_ready = tries
        .iter()
        .filter(|a| a.error.as_deref().unwrap_or("").contains("not ready yet"))
        .count();
    assert_eq!(not_ready, 2, "{tries:?}");
    drop(c);

    // The object that never comes: failed with the reason once the window has passed.
    let failed = loop {
        let j = ingest_job(db.driver(), "never.md").await;
        if j.status == JobState::Failed {
            break j;
        }
        assert!(Instant::now() < deadline, "never failed: {j:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        announced.elapsed() >= Duration::from_secs(8),
        "not before the window ended"
    );
    let error = failed.last_error.clone().unwrap_or_default();
    assert!(error.contains("still not found"), "{error}");
    h.shutdown().await;
}
