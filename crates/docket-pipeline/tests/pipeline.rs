//! The pipeline end to end on both backends: real files from the parse corpus, real parsers,
//! the hashing embedder (the local model is checked against its reference in docket-embed),
//! a real runtime working the stage jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::*;
use docket_embed::Embedder;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_pipeline::notify::{Notifier, NotifyConfig};
use docket_pipeline::stuck::RepairAction;
use docket_pipeline::*;

mod common;
use common::{Fault, Faulty, corpus, start};

struct Setup<D: Driver> {
    pipeline: Pipeline<D>,
    _blobs: tempfile::TempDir,
}

fn hashing() -> Arc<dyn Embedder> {
    Arc::new(HashingEmbedder::new(HashingConfig::default()))
}

fn setup<D: Driver>(driver: &D, embedder: Arc<dyn Embedder>, notifier: Notifier) -> Setup<D> {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = common::pipeline(driver, dir.path(), embedder, notifier);
    Setup {
        pipeline,
        _blobs: dir,
    }
}

async fn doc<D: Driver>(p: &Pipeline<D>, id: uuid::Uuid) -> DocumentRow {
    let mut c = p.driver().conn().await.unwrap();
    c.document_get(id).await.unwrap().expect("document exists")
}

/// Waits until the document is completed or failed.
async fn finished<D: Driver>(p: &Pipeline<D>, id: uuid::Uuid) -> DocumentRow {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let d = doc(p, id).await;
            if d.status.is_terminal() {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("document {id} did not finish"))
}

async fn submit<D: Driver>(p: &Pipeline<D>, name: &str) -> Submitted {
    p.submit(NewDocument {
        bytes: corpus(name),
        filename: Some(name.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn chunks<D: Driver>(p: &Pipeline<D>, id: uuid::Uuid) -> Vec<ChunkRow> {
    let mut c = p.driver().conn().await.unwrap();
    c.chunk_list(ChunkListParams {
        document_id: id,
        generation: None,
        limit: 10_000,
        offset: 0,
    })
    .await
    .unwrap()
}

async fn jobs_of<D: Driver>(p: &Pipeline<D>, id: uuid::Uuid) -> Vec<JobRow> {
    let mut c = p.driver().conn().await.unwrap();
    c.job_list(JobListParams {
        document_id: Some(id),
        limit: 100,
        ..Default::default()
    })
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------

/// (file, a sentence in it, a heading or page the chunk with it must carry)
const FILES: &[(&str, &str)] = &[
    (
        "notes.txt",
        "The team agreed to ship the ingestion service on Friday.",
    ),
    ("guide.md", "Copy docket.toml and set the database URL."),
    (
        "page.html",
        "Tomatoes need at least six hours of direct sunlight every day.",
    ),
    ("report.pdf", ""),
    ("handbook.docx", ""),
    ("data.csv", ""),
    ("sheet.xlsx", ""),
    ("data.json", ""),
    ("legacy-latin1.txt", ""),
    ("utf16.txt", ""),
];

#[both_backends]
async fn every_format_completes_and_is_searchable(db: impl TestDb) {
    let s = setup(db.driver(), hashing(), Notifier::none());
    let p = &s.pipeline;
    let h = start(p);
    let mut ids = Vec::new();
    for (name, _) in FILES {
        let sub = submit(p, name).await;
        assert!(sub.created);
        assert_eq!(sub.document.status, DocumentStatus::Queued);
        ids.push(sub.document.id);
    }
    for (id, (name, _)) in ids.iter().zip(FILES) {
        let d = finished(p, *id).await;
        assert_eq!(d.status, DocumentStatus::Completed, "{name}: {:?}", d.error);
        assert_eq!(d.progress, 100, "{name}");
        assert!(d.chunk_count > 0, "{name}");
        assert!(d.token_count > 0, "{name}");
        assert_eq!(d.active_generation, Some(1));
        assert_eq!(d.embedder.as_deref(), Some(p.embedder().name()));
        for key in ["parse_ms", "chunk_ms", "embed_ms", "complete_ms"] {
            assert!(
                d.timings.get(key).is_some(),
                "{name}: no {key} in {}",
                d.timings
            );
        }
        let cs = chunks(p, *id).await;
        assert_eq!(cs.len() as i32, d.chunk_count, "{name}");
        assert!(cs.iter().all(|c| c.has_embedding && c.token_count > 0));
        assert!(
            cs.iter()
                .all(|c| c.token_count as usize <= p.chunker().max_tokens()),
            "{name}: a chunk is above the maximum"
        );
        // Every stage job completed exactly once, each with one attempt.
        let jobs = jobs_of(p, *id).await;
        assert_eq!(jobs.len(), 4, "{name}: {jobs:?}");
        assert!(
            jobs.iter()
                .all(|j| j.status == JobState::Completed && j.attempts == 1)
        );
    }
    // Structure reached the chunks: the Markdown chunk knows its heading path, the PDF its
    // page.
    let md = chunks(p, ids[1]).await;
    assert!(
        md.iter()
            .any(|c| c.heading_path.iter().any(|h| h == "Configure")),
        "{md:?}"
    );
    let pdf = chunks(p, ids[3]).await;
    assert!(pdf.iter().any(|c| c.page == Some(2)), "{pdf:?}");
    // Character offsets point into the parsed text.
    let text = {
        let mut c = p.driver().conn().await.unwrap();
        c.document_text_get(GenerationKey::new(ids[0], 1))
            .await
            .unwrap()
            .unwrap()
            .text
    };
    for c in chunks(p, ids[0]).await {
        let piece: String = text
            .chars()
            .skip(c.char_start as usize)
            .take((c.char_end - c.char_start) as usize)
            .collect();
        assert_eq!(piece, c.text);
    }
    // A sentence from a file finds that file first.
    for (i, (name, sentence)) in FILES.iter().enumerate() {
        if sentence.is_empty() {
            continue;
        }
        let hits = p.search(sentence, 3, None).await.unwrap();
        assert_eq!(hits[0].chunk.document_id, ids[i], "{name}: {hits:?}");
        assert!(hits[0].score > 0.5, "{name}: {}", hits[0].score);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        // Restricted to other documents, it cannot be found there.
        let others: Vec<_> = ids.iter().copied().filter(|d| *d != ids[i]).collect();
        let hits = p.search(sentence, 3, Some(others)).await.unwrap();
        assert!(hits.iter().all(|h| h.chunk.document_id != ids[i]));
    }
    h.shutdown().await;
}

#[both_backends]
async fn identical_bytes_find_the_document_and_reprocessing_swaps_chunks(db: impl TestDb) {
    let s = setup(db.driver(), hashing(), Notifier::none());
    let p = &s.pipeline;
    let h = start(p);
    let first = submit(p, "guide.md").await;
    let d1 = finished(p, first.document.id).await;
    let before = chunks(p, d1.id).await;

    // Identical bytes arriving at once still make one document.
    let racing: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                p.submit(NewDocument {
                    bytes: Bytes::from_static(b"The same bytes, uploaded four times at once."),
                    ..Default::default()
                })
                .await
                .unwrap()
            })
        })
        .collect();
    let mut subs = Vec::new();
    for r in racing {
        subs.push(r.await.unwrap());
    }
    assert_eq!(subs.iter().filter(|s| s.created).count(), 1);
    assert!(subs.iter().all(|s| s.document.id == subs[0].document.id));

    let again = submit(p, "guide.md").await;
    assert!(!again.created);
    assert_eq!(again.document.id, d1.id);
    assert_eq!(again.document.generation, 1);

    let re = p
        .submit(NewDocument {
            bytes: corpus("guide.md"),
            filename: Some("guide.md".into()),
            reprocess: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(re.document.id, d1.id);
    assert_eq!(re.document.generation, 2);
    let d2 = finished(p, d1.id).await;
    assert_eq!(d2.status, DocumentStatus::Completed);
    assert_eq!(d2.active_generation, Some(2));
    let after = chunks(p, d1.id).await;
    assert!(after.iter().all(|c| c.generation == 2));
    // Same bytes, same chunks: the swap replaced rows, it did not add any.
    let key = |c: &ChunkRow| (c.chunk_index, c.text.clone(), c.char_start, c.char_end);
    assert_eq!(
        before.iter().map(key).collect::<Vec<_>>(),
        after.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(
        db.query_rows(&format!(
            "SELECT 1 FROM document_chunks WHERE document_id = '{}'",
            d1.id
        ))
        .await,
        after.len()
    );
    h.shutdown().await;
}

#[both_backends]
async fn running_a_stage_twice_leaves_the_same_rows(db: impl TestDb) {
    let s = setup(db.driver(), hashing(), Notifier::none());
    let p = &s.pipeline;
    let h = start(p);
    let id = submit(p, "page.html").await.document.id;
    finished(p, id).await;
    let before = chunks(p, id).await;

    // Run the parse, chunk, embed and complete stages of generation 1 again, one after the
    // other, as a retry or a rescued duplicate would (each re-run also re-runs the stages
    // after it).
    for kind in &STAGE_KINDS[..4] {
        let mut c = p.driver().conn().await.unwrap();
        c.job_insert_many(JobInsertManyParams {
            jobs: vec![JobInsertParams {
                job_type: kind.to_string(),
                queue: "default".into(),
                priority: 0,
                payload: serde_json::json!({"document_id": id, "generation": 1}),
                max_attempts: 3,
                run_at: None,
                unique_key: None,
                document_id: Some(id),
            }],
        })
        .await
        .unwrap();
        drop(c);
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let jobs = jobs_of(p, id).await;
                if jobs.iter().all(|j| j.status.is_finished()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{kind} did not finish"));
    }
    assert!(
        jobs_of(p, id)
            .await
            .iter()
            .all(|j| j.status == JobState::Completed && j.attempts == 1),
        "every re-run succeeded at once"
    );
    let d = finished(p, id).await;
    assert_eq!(d.status, DocumentStatus::Completed);
    let after = chunks(p, id).await;
    let key = |c: &ChunkRow| {
        (
            c.chunk_index,
            c.text.clone(),
            c.char_start,
            c.char_end,
            c.heading_path.clone(),
            c.has_embedding,
        )
    };
    assert_eq!(
        before.iter().map(key).collect::<Vec<_>>(),
        after.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(
        db.query_rows("SELECT 1 FROM document_chunks").await,
        before.len()
    );
    h.shutdown().await;
}

#[both_backends]
async fn bad_files_fail_with_a_clear_permanent_error(db: impl TestDb) {
    let s = setup(db.driver(), hashing(), Notifier::none());
    let p = &s.pipeline;
    let h = start(p);
    assert!(matches!(
        p.submit(NewDocument {
            bytes: Bytes::new(),
            ..Default::default()
        })
        .await,
        Err(PipelineError::Empty)
    ));
    assert!(matches!(
        p.submit(NewDocument {
            bytes: Bytes::from(vec![b'a'; 1024 * 1024 + 1]),
            ..Default::default()
        })
        .await,
        Err(PipelineError::TooLarge { .. })
    ));
    for name in [
        "hostile/garbage.txt",
        "hostile/truncated.pdf",
        "hostile/bomb.docx",
    ] {
        let id = submit(p, name).await.document.id;
        let d = finished(p, id).await;
        assert_eq!(d.status, DocumentStatus::Failed, "{name}");
        assert_eq!(d.error_stage.as_deref(), Some("parse"), "{name}");
        let error = d.error.unwrap_or_default();
        assert!(error.len() > 10, "{name}: {error:?}");
        // One attempt, dead-lettered at once: never a retry loop.
        let jobs = jobs_of(p, id).await;
        assert_eq!(jobs.len(), 1, "{name}: {jobs:?}");
        assert_eq!(jobs[0].status, JobState::Failed);
        assert_eq!(jobs[0].attempts, 1);
        assert_eq!(d.chunk_count, 0);
    }
    h.shutdown().await;
}

#[both_backends]
async fn progress_is_persisted_and_broadcast_through_every_stage(db: impl TestDb) {
    // The default embedding page (256 chunks): the page follows the document's size.
    let dir = tempfile::tempdir().unwrap();
    let stages = docket_pipeline::config::StagesConfig::default();
    let p = &common::pipeline_with(db.driver(), dir.path(), hashing(), Notifier::none(), stages);
    let mut events = p.progress().subscribe();
    let h = start(p);
    let text: String = (0..120)
        .map(|i| {
            format!("Paragraph {i} is about lighthouses, tides and the keepers who mind them.\n\n")
        })
        .collect();
    let id = p
        .submit(NewDocument {
            bytes: Bytes::from(text),
            filename: Some("long.txt".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .document
        .id;
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let e = events.recv().await.unwrap();
            if e.document_id != id {
                continue;
            }
            let last = e.is_final();
            seen.push(e);
            if last {
                break;
            }
        }
    })
    .await
    .unwrap();
    let progress: Vec<i16> = seen.iter().map(|e| e.progress).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(*progress.last().unwrap(), 100);
    let statuses: Vec<DocumentStatus> = seen.iter().map(|e| e.status).collect();
    for s in [
        DocumentStatus::Queued,
        DocumentStatus::Parsing,
        DocumentStatus::Chunking,
        DocumentStatus::Embedding,
        DocumentStatus::Completing,
        DocumentStatus::Completed,
    ] {
        assert!(statuses.contains(&s), "{s:?} missing from {statuses:?}");
    }
    // No event repeats the one before it.
    let states: Vec<(DocumentStatus, Option<&str>, i16)> = seen
        .iter()
        .map(|e| (e.status, e.stage.as_deref(), e.progress))
        .collect();
    for w in states.windows(2) {
        assert_ne!(w[0], w[1], "an event repeated: {states:?}");
    }
    // Embedding moves through the stage in steps of at most 5 points, from 30 to 90.
    let mut within: Vec<i16> = seen
        .iter()
        .filter(|e| e.status == DocumentStatus::Embedding)
        .map(|e| e.progress)
        .collect();
    within.push(90);
    assert_eq!(within[0], 30, "{within:?}");
    assert!(
        within.windows(2).all(|w| w[1] - w[0] <= 5),
        "steps above 5: {within:?}"
    );
    let chunks = doc(p, id).await.chunk_count;
    assert!(chunks >= 24, "a document of {chunks} chunks");
    // Its pages (a twelfth of it each) went to the batcher ahead of their writes, so they
    // shared the model's batches; one page at a time, each page was a batch of its own.
    let model = p.take_embed_stats();
    let pages = (chunks as u64).div_ceil((chunks as u64 / 12).max(1));
    assert_eq!(model.texts, chunks as u64);
    assert!(
        model.calls * 3 <= pages,
        "{} model batches for {pages} pages",
        model.calls
    );
    assert!(model.busy > Duration::ZERO && model.first_start <= model.last_end);
    h.shutdown().await;
}

#[both_backends]
async fn stuck_documents_are_found_and_repaired(db: impl TestDb) {
    let s = setup(db.driver(), hashing(), Notifier::none());
    let p = &s.pipeline;
    // No runtime yet: cancel the parse job by hand, leaving the document with no live job.
    let id = submit(p, "notes.txt").await.document.id;
    let job = jobs_of(p, id).await.remove(0);
    {
        let mut c = p.driver().conn().await.unwrap();
        c.job_cancel(JobCancelParams {
            ids: vec![job.id],
            now: None,
        })
        .await
        .unwrap();
    }
    // Not idle long enough yet: nothing to do.
    assert!(
        p.repair_stuck(Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );
    let repairs = p.repair_stuck(Duration::ZERO).await.unwrap();
    assert_eq!(repairs.len(), 1);
    assert_eq!(repairs[0].document_id, id);
    assert_eq!(repairs[0].action, RepairAction::Requeued("parse".into()));
    // Its job is live again: a second sweep finds nothing.
    assert!(p.repair_stuck(Duration::ZERO).await.unwrap().is_empty());
    let h = start(p);
    assert_eq!(finished(p, id).await.status, DocumentStatus::Completed);
    h.shutdown().await;
}

#[both_backends]
async fn an_unavailable_provider_holds_jobs_back_without_spending_attempts(db: impl TestDb) {
    // Down for its first six calls.
    let flaky = Faulty::new(hashing(), |call| {
        if call < 6 {
            Fault::Unavailable
        } else {
            Fault::Pass
        }
    });
    let s = setup(db.driver(), flaky.clone(), Notifier::none());
    let p = &s.pipeline;
    let h = start(p);
    let id = submit(p, "notes.txt").await.document.id;
    let d = finished(p, id).await;
    assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
    // Six unavailable answers, more than max_attempts (4): none of them was spent.
    assert!(flaky.calls() > 6);
    let embed = jobs_of(p, id)
        .await
        .into_iter()
        .find(|j| j.job_type == "docket.embed")
        .unwrap();
    assert_eq!(embed.status, JobState::Completed);
    assert_eq!(embed.attempts, 1, "snoozes must not count as attempts");
    let attempts = {
        let mut c = p.driver().conn().await.unwrap();
        c.job_attempt_list(embed.id).await.unwrap()
    };
    let snoozed = attempts
        .iter()
        .filter(|a| {
            a.outcome == AttemptOutcome::Released
                && a.error.as_deref().is_some_and(|e| e.contains("snoozed"))
        })
        .count();
    assert_eq!(snoozed, 6, "{attempts:?}");
    h.shutdown().await;
}

#[both_backends]
async fn completion_webhook_is_signed_and_delivered(db: impl TestDb) {
    use axum::routing::post;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(axum::http::HeaderMap, Bytes)>();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut config = NotifyConfig::default();
    config.webhook.secret = Some(secret.into());
    // The receiver is on loopback, which the SSRF guard refuses by default.
    config.webhook.allow_private = true;
    let notifier = Notifier::new(&config).unwrap();
    let s = setup(db.driver(), hashing(), notifier);
    let p = &s.pipeline;
    let h = start(p);
    let id = p
        .submit(NewDocument {
            bytes: corpus("notes.txt"),
            filename: Some("notes.txt".into()),
            callback_url: Some(format!("http://{addr}/hook")),
            ..Default::default()
        })
        .await
        .unwrap()
        .document
        .id;
    let d = finished(p, id).await;
    assert_eq!(d.status, DocumentStatus::Completed);
    assert!(d.timings.get("notify_ms").is_some());
    let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let signer = docket_notify::WebhookSigner::new(secret).unwrap();
    docket_notify::verify(
        &[signer],
        &docket_notify::WebhookHeaders::from_lookup(header),
        &body,
        chrono::Utc::now().timestamp(),
        Duration::from_secs(300),
    )
    .expect("signature verifies");
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "document.completed");
    assert_eq!(event["data"]["id"], id.to_string());
    assert_eq!(event["data"]["chunk_count"], d.chunk_count);

    // A document that fails is notified too, with the stage and the reason.
    let bad = p
        .submit(NewDocument {
            bytes: corpus("hostile/garbage.txt"),
            filename: Some("garbage.txt".into()),
            callback_url: Some(format!("http://{addr}/hook")),
            ..Default::default()
        })
        .await
        .unwrap()
        .document
        .id;
    assert_eq!(finished(p, bad).await.status, DocumentStatus::Failed);
    let (_, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "document.failed");
    assert_eq!(event["data"]["id"], bad.to_string());
    assert_eq!(event["data"]["stage"], "parse");
    assert!(
        event["data"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    h.shutdown().await;
}

/// With the guard on (the default), a callback URL on loopback is refused without a request:
/// the document completes, and the notify job records the refusal once, without retrying.
#[both_backends]
async fn a_refused_callback_completes_the_document_without_retrying(db: impl TestDb) {
    use axum::routing::post;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let notifier = Notifier::new(&NotifyConfig::default()).unwrap();
    let s = setup(db.driver(), hashing(), notifier);
    let p = &s.pipeline;
    let h = start(p);
    let id = p
        .submit(NewDocument {
            bytes: corpus("notes.txt"),
            filename: Some("notes.txt".into()),
            callback_url: Some(format!("http://{addr}/hook")),
            ..Default::default()
        })
        .await
        .unwrap()
        .document
        .id;
    assert_eq!(finished(p, id).await.status, DocumentStatus::Completed);
    // The notify job fails (permanently, on its first attempt) with the refusal as its error.
    let notify = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let jobs = jobs_of(p, id).await;
            if let Some(j) = jobs
                .into_iter()
                .find(|j| j.job_type == "docket.notify" && j.last_error.is_some())
            {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the notify job records the refusal");
    assert_eq!(notify.status, JobState::Failed, "{notify:?}");
    let error = notify.last_error.unwrap();
    assert!(
        error.contains("refused") && error.contains("127.0.0.1"),
        "{error}"
    );
    assert_eq!(notify.attempts, 1, "a refusal is not retried");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    h.shutdown().await;
}

#[both_backends]
async fn the_local_model_finds_meaning_not_just_words(db: impl TestDb) {
    use docket_embed::local::{LocalConfig, LocalEmbedder};
    let dir = docket_embed::test_model_dir().unwrap_or_else(|e| panic!("{e}"));
    let local = LocalEmbedder::load(LocalConfig {
        model: dir.display().to_string(),
        threads: Some(2),
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    let s = setup(db.driver(), Arc::new(local), Notifier::none());
    let p = &s.pipeline;
    let h = start(p);
    let mut ids = Vec::new();
    for name in ["guide.md", "page.html", "notes.txt"] {
        let id = submit(p, name).await.document.id;
        ids.push(id);
    }
    for id in &ids {
        let d = finished(p, *id).await;
        assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
        assert!(d.embedder.as_deref().unwrap().starts_with("local:"));
    }
    // Each question shares no word with the chunk that answers it: only a model of meaning
    // ranks that chunk first.
    let words = |t: &str| -> std::collections::HashSet<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    for (question, answer) in [
        ("how much sunshine do vegetable crops require", ids[1]),
        ("system prerequisites needed", ids[0]),
    ] {
        let hits = p.search(question, 3, None).await.unwrap();
        assert_eq!(hits[0].chunk.document_id, answer, "{question}: {hits:?}");
        let shared: Vec<_> = words(question)
            .intersection(&words(&hits[0].chunk.text))
            .cloned()
            .collect();
        assert!(
            shared.is_empty(),
            "{question}: shares {shared:?} with its answer"
        );
    }
    h.shutdown().await;
}
