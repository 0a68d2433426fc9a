//! Changing the embedder, on both backends: search ranks only the running embedder's vectors
//! and says what it left out; re-embedding moves the documents over as durable work (chunks
//! kept when the chunker is the same, made again from the stored text when not), survives
//! the death of the process running it, and search answers from the documents already moved.

use std::sync::Arc;
use std::time::Duration;

use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::*;
use docket_embed::Embedder;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_pipeline::config::StagesConfig;
use docket_pipeline::notify::Notifier;
use docket_pipeline::reindex::{EmbedderReport, ReindexArgs};
use docket_pipeline::*;
use docket_queue::JobArgs;
use docket_queue::maintenance::{Rescuer, RescuerConfig};

mod common;
use common::{Fault, Faulty, corpus, start};

const FILES: [&str; 3] = ["guide.md", "page.html", "notes.txt"];

/// A pipeline over `driver` with `embedder`; the blob folder is shared by every pipeline of
/// a test, as processes of one deployment share their storage.
fn pipeline<D: Driver>(
    driver: &D,
    blobs: &tempfile::TempDir,
    embedder: Arc<dyn Embedder>,
) -> Pipeline<D> {
    common::pipeline(driver, blobs.path(), embedder, Notifier::none())
}

fn hashing(max_tokens: usize) -> Arc<dyn Embedder> {
    Arc::new(HashingEmbedder::new(HashingConfig {
        dimensions: 384,
        max_tokens,
    }))
}

async fn doc<D: Driver>(p: &Pipeline<D>, id: uuid::Uuid) -> DocumentRow {
    let mut c = p.driver().conn().await.unwrap();
    c.document_get(id).await.unwrap().expect("document exists")
}

async fn wait_for<D: Driver, F: Fn(&DocumentRow) -> bool>(
    p: &Pipeline<D>,
    id: uuid::Uuid,
    what: &str,
    done: F,
) -> DocumentRow {
    let waited = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let d = doc(p, id).await;
            if done(&d) {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match waited {
        Ok(d) => d,
        Err(_) => panic!("document {id}: {what}: {:?}", doc(p, id).await),
    }
}

/// Submits the corpus files and waits until each has completed.
async fn ingest<D: Driver>(p: &Pipeline<D>, files: &[&str]) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for name in files {
        let s = p
            .submit(NewDocument {
                bytes: corpus(name),
                filename: Some((*name).to_owned()),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push(s.document.id);
    }
    for id in &ids {
        let d = wait_for(p, *id, "completes", |d| d.status.is_terminal()).await;
        assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
    }
    ids
}

async fn until_current<D: Driver>(p: &Pipeline<D>) -> EmbedderReport {
    tokio::time::timeout(Duration::from_secs(180), async {
        loop {
            let r = p.embedder_report().await.unwrap();
            if r.stale_documents == 0 {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("every document is re-embedded")
}

async fn hit_documents<D: Driver>(p: &Pipeline<D>, query: &str) -> Vec<uuid::Uuid> {
    let mut ids: Vec<uuid::Uuid> = p
        .search(query, 50, None)
        .await
        .unwrap()
        .iter()
        .map(|h| h.chunk.document_id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The chunks of a document's active generation.
async fn active_chunks<D: Driver>(p: &Pipeline<D>, id: uuid::Uuid) -> Vec<ChunkRow> {
    let mut c = p.driver().conn().await.unwrap();
    c.chunk_list(ChunkListParams {
        document_id: id,
        generation: None,
        limit: 1000,
        offset: 0,
    })
    .await
    .unwrap()
}

/// What the leader and an operator do after a process died: the rescuer hands its running
/// jobs on, and every waiting job is run now (instead of after its backoff). Returns the
/// rescued jobs.
async fn hand_on_and_run_now<D: Driver>(p: &Pipeline<D>) -> Vec<i64> {
    let rescued = Rescuer::new(
        p.driver().clone(),
        RescuerConfig::default(),
        Arc::new(SystemClock),
    )
    .unwrap()
    .run_once()
    .await
    .unwrap();
    docket_queue::admin::run_now(
        p.driver(),
        "test",
        JobRunNowParams {
            ids: vec![],
            job_type: None,
            queue: None,
            now: None,
        },
    )
    .await
    .unwrap();
    rescued.requeued
}

async fn reindex_jobs<D: Driver>(p: &Pipeline<D>) -> Vec<JobRow> {
    let mut c = p.driver().conn().await.unwrap();
    c.job_list(JobListParams {
        job_types: vec![ReindexArgs::KIND.to_owned()],
        limit: 10,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The scenario: documents embedded by the lexical default, then the process starts
/// again with the local model (as many dimensions). Search ranks none of the old vectors and
/// says why; re-embedding moves every document over (chunked again: the tokenizer changed),
/// below uploads, without a notification; afterwards search finds meaning.
#[both_backends]
async fn a_new_embedder_never_ranks_old_vectors_and_reindex_moves_them(db: impl TestDb) {
    let blobs = tempfile::tempdir().unwrap();
    let before = pipeline(db.driver(), &blobs, hashing(256));
    let h = start(&before);
    let ids = ingest(&before, &FILES).await;
    h.shutdown().await;
    let old_fingerprint = before.embedder().identity().fingerprint.clone();
    assert_eq!(
        doc(&before, ids[0]).await.embedder_fingerprint.as_deref(),
        Some(old_fingerprint.as_str())
    );

    use docket_embed::local::{LocalConfig, LocalEmbedder};
    let dir = docket_embed::test_model_dir().unwrap_or_else(|e| panic!("{e}"));
    let local = LocalEmbedder::load(LocalConfig {
        model: dir.display().to_string(),
        threads: Some(2),
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(
        local.dimensions(),
        384,
        "the same length: only the fingerprint tells"
    );
    let after = pipeline(db.driver(), &blobs, Arc::new(local));
    let report = after.embedder_report().await.unwrap();
    assert_eq!(
        (
            report.current_documents,
            report.stale_documents,
            report.reembedding_documents
        ),
        (0, 3, 0)
    );
    assert_eq!(report.stale.len(), 1);
    let stale = &report.stale[0];
    assert_eq!(
        (
            stale.embedder.as_deref(),
            stale.fingerprint.as_deref(),
            stale.documents
        ),
        (Some("hashing:384"), Some(old_fingerprint.as_str()), 3)
    );
    assert!(
        stale.reason.contains("hashing:384") && stale.reason.contains("docket reindex"),
        "{}",
        stale.reason
    );
    assert!(
        after
            .search("installation", 10, None)
            .await
            .unwrap()
            .is_empty(),
        "no vector of another embedder is ranked"
    );
    assert_eq!(
        after.adopt_unfingerprinted().await.unwrap(),
        0,
        "fingerprinted documents are never adopted"
    );

    let started = after.start_reindex().await.unwrap();
    assert!(started.created);
    assert_eq!(started.stale_documents, 3);
    let again = after.start_reindex().await.unwrap();
    assert_eq!(
        (again.job_id, again.created),
        (started.job_id, false),
        "one re-embedding job at a time"
    );
    let h = start(&after);
    let report = until_current(&after).await;
    assert_eq!((report.current_documents, report.stale_documents), (3, 0));
    let fingerprint = after.embedder().identity().fingerprint.clone();
    for id in &ids {
        let d = wait_for(&after, *id, "completes", |d| {
            d.status == DocumentStatus::Completed
        })
        .await;
        assert_eq!(
            (
                d.generation,
                d.active_generation,
                d.embedder.as_deref(),
                d.embedder_fingerprint.as_deref(),
                d.chunker_fingerprint.as_deref(),
            ),
            (
                2,
                Some(2),
                Some(after.embedder().name()),
                Some(fingerprint.as_str()),
                Some(after.chunker().fingerprint()),
            )
        );
        let mut c = after.driver().conn().await.unwrap();
        let jobs = c
            .job_list(JobListParams {
                document_id: Some(*id),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let second: Vec<&JobRow> = jobs
            .iter()
            .filter(|j| j.payload["generation"] == 2)
            .collect();
        let kinds: Vec<&str> = second.iter().map(|j| j.job_type.as_str()).collect();
        assert!(
            !kinds.contains(&"docket.parse") && kinds.contains(&"docket.chunk"),
            "chunked again from the stored text, never parsed: {kinds:?}"
        );
        assert!(
            !kinds.contains(&"docket.notify"),
            "a re-embedding notifies no one: {kinds:?}"
        );
        assert!(
            second
                .iter()
                .all(|j| j.priority == 0 && j.payload["reembed"] == true),
            "below every upload: {second:?}"
        );
    }
    let job = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let jobs = reindex_jobs(&after).await;
            if jobs[0].status == JobState::Completed {
                return jobs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the re-embedding job ends once nothing is stale");
    assert_eq!(job.len(), 1);
    // Meaning now: no word in common with the page that answers.
    let hits = after
        .search("how much sunshine do vegetable crops require", 3, None)
        .await
        .unwrap();
    assert_eq!(hits[0].chunk.document_id, ids[1], "{hits:?}");
    h.shutdown().await;
}

/// The process running the re-embedding dies after starting its first document: that
/// document's stage jobs carry on (they are durable), search answers from it as soon as it
/// has switched while the others wait, and the rescued job carries on with the rest without
/// starting the first again. Same chunker and tokenizer: the chunks are copied, not made
/// again.
#[both_backends]
async fn reindex_survives_the_death_of_its_process(db: impl TestDb) {
    let blobs = tempfile::tempdir().unwrap();
    let before = pipeline(db.driver(), &blobs, hashing(256));
    let h = start(&before);
    let ids = ingest(&before, &FILES).await;
    h.shutdown().await;
    let old_chunks = active_chunks(&before, ids[0]).await;

    // Another input limit: another fingerprint, the same dimensions, words and chunks.
    let after = pipeline(db.driver(), &blobs, hashing(128));
    assert_ne!(
        after.embedder().identity().fingerprint,
        before.embedder().identity().fingerprint
    );
    assert_eq!(
        after.chunker().fingerprint(),
        before.chunker().fingerprint()
    );
    let started = after.start_reindex().await.unwrap();
    let claimed = {
        let mut c = after.driver().conn().await.unwrap();
        c.job_get_available(JobGetAvailableParams {
            worker_id: "gone".into(),
            queue: StagesConfig::default().queue,
            limit: 1,
            now: None,
        })
        .await
        .unwrap()
    };
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, started.job_id);
    // What the job's first step did before its process died.
    let first = after.reembed_page(1, None).await.unwrap();
    assert_eq!(first, vec![ids[0]]);

    // A process without the job: the started document's stage jobs run.
    let h = start(&after);
    let d = wait_for(&after, ids[0], "switches", |d| {
        d.status == DocumentStatus::Completed && d.generation == 2
    })
    .await;
    assert_eq!(d.active_generation, Some(2));
    let report = after.embedder_report().await.unwrap();
    assert_eq!((report.current_documents, report.stale_documents), (1, 2));
    assert_eq!(
        hit_documents(&after, "the").await,
        vec![ids[0]],
        "search answers from the documents already switched"
    );
    let copied = active_chunks(&after, ids[0]).await;
    let texts = |cs: &[ChunkRow]| cs.iter().map(|c| c.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&copied), texts(&old_chunks), "the chunks were copied");
    assert!(copied.iter().all(|c| c.generation == 2 && c.has_embedding));

    // The leader finds the dead worker's job and hands it on; an operator runs it now.
    assert_eq!(hand_on_and_run_now(&after).await, vec![started.job_id]);
    let report = until_current(&after).await;
    assert_eq!(report.current_documents, 3);
    for id in &ids {
        let d = wait_for(&after, *id, "completes", |d| {
            d.status == DocumentStatus::Completed
        })
        .await;
        assert_eq!(d.generation, 2, "started once each");
    }
    assert_eq!(hit_documents(&after, "the").await.len(), 3);
    h.shutdown().await;
}

/// A document half embedded by one embedder when its process stops, finished by a process
/// with another: the first one's vectors are made again, so a generation never mixes two
/// embedders, and every stored vector is the new embedder's vector of its chunk.
#[both_backends]
async fn a_generation_never_mixes_two_embedders(db: impl TestDb) {
    let blobs = tempfile::tempdir().unwrap();
    // Answers its first call (of 4 texts, a page) and never the next ones: a process that
    // stops in the middle of a document's embedding.
    let stalls = Faulty::batched(hashing(256), 4, |call| {
        if call == 0 { Fault::Pass } else { Fault::Stall }
    });
    let before = pipeline(db.driver(), &blobs, stalls.clone());
    let h = start(&before);
    let id = before
        .submit(NewDocument {
            bytes: corpus("guide.md"),
            filename: Some("guide.md".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .document
        .id;
    let half = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (embedded, total) = {
                let mut c = before.driver().conn().await.unwrap();
                c.chunk_count_embedded(GenerationKey::new(id, 1))
                    .await
                    .unwrap()
            };
            if embedded > 0 {
                return (embedded, total);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a first page is embedded");
    assert!(half.0 < half.1, "part of the document: {half:?}");
    let first = doc(&before, id).await;
    assert_eq!(
        first.generation_embedder.as_deref(),
        Some(before.embedder().identity().fingerprint.as_str())
    );
    h.shutdown().await;

    // Fewer dimensions: vectors that cannot be mistaken for the first one's.
    let after = pipeline(
        db.driver(),
        &blobs,
        Arc::new(HashingEmbedder::new(HashingConfig {
            dimensions: 256,
            max_tokens: 256,
        })),
    );
    // Whatever state the embed job was left in, the leader hands it on and it runs now.
    hand_on_and_run_now(&after).await;
    let h = start(&after);
    let d = wait_for(&after, id, "completes", |d| d.status.is_terminal()).await;
    assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
    let fingerprint = after.embedder().identity().fingerprint.clone();
    assert_eq!(
        (
            d.generation,
            d.embedder_fingerprint.as_deref(),
            d.generation_embedder.as_deref()
        ),
        (1, Some(fingerprint.as_str()), Some(fingerprint.as_str()))
    );
    let (texts, vectors) = {
        let mut c = after.driver().conn().await.unwrap();
        let chunks = c
            .chunk_list(ChunkListParams {
                document_id: id,
                generation: None,
                limit: 1000,
                offset: 0,
            })
            .await
            .unwrap();
        let vectors = c
            .chunk_vectors_page(&ChunkVectorPageParams {
                document_ids: Some(vec![id]),
                embedder_fingerprint: Some(fingerprint.clone()),
                after_id: 0,
                limit: 1000,
                chunk_ids: None,
            })
            .await
            .unwrap();
        (
            chunks.into_iter().map(|c| c.text).collect::<Vec<_>>(),
            vectors.into_iter().map(|v| v.embedding).collect::<Vec<_>>(),
        )
    };
    assert_eq!(texts.len(), half.1 as usize);
    let expected = after.embedder().embed(&texts).await.unwrap();
    assert_eq!(vectors, expected, "every vector is the new embedder's");
    h.shutdown().await;
}
