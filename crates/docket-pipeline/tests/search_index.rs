//! docket's own vector index, on both backends (PostgreSQL here has no pgvector): searches
//! answered from it rank as the exact scan does, and it follows the database's changes —
//! deletions and new generations, made by its own process or another — so that no search
//! returns a chunk that is gone.

use std::sync::Arc;
use std::time::Duration;

use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::*;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_pipeline::ann::VectorIndex;
use docket_pipeline::notify::Notifier;
use docket_pipeline::search::SearchMode;
use docket_pipeline::*;
use tokio_util::sync::CancellationToken;

mod common;
use common::{corpus, start};

const FILES: [&str; 4] = ["guide.md", "page.html", "notes.txt", "handbook.docx"];
const QUERIES: [&str; 5] = [
    "installation steps",
    "how are errors reported",
    "quarterly revenue table",
    "configuration file options",
    "the meeting notes",
];

fn pipeline<D: Driver>(driver: &D, blobs: &tempfile::TempDir) -> Pipeline<D> {
    common::pipeline(
        driver,
        blobs.path(),
        Arc::new(HashingEmbedder::new(HashingConfig {
            dimensions: 384,
            max_tokens: 256,
        })),
        Notifier::none(),
    )
}

async fn completed<D: Driver>(p: &Pipeline<D>, id: uuid::Uuid) {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let mut c = p.driver().conn().await.unwrap();
            let d = c.document_get(id).await.unwrap().expect("document");
            if d.status.is_terminal() {
                assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
                return;
            }
            drop(c);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the document completes");
}

async fn ready(index: &Arc<VectorIndex>) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !index.ready() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the index is built");
}

/// `(chunk id, score)` of the best 10 for each query.
async fn rankings<D: Driver>(p: &Pipeline<D>) -> Vec<Vec<(i64, f32)>> {
    let mut out = Vec::new();
    for q in QUERIES {
        let hits = p
            .search_mode(q, 10, None, SearchMode::Vector)
            .await
            .unwrap();
        out.push(hits.iter().map(|h| (h.chunk.id, h.score)).collect());
    }
    out
}

fn assert_same(indexed: &[Vec<(i64, f32)>], scanned: &[Vec<(i64, f32)>]) {
    assert_eq!(indexed.len(), scanned.len());
    for (a, b) in indexed.iter().zip(scanned) {
        let ids = |r: &[(i64, f32)]| r.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        assert_eq!(ids(a), ids(b), "the index ranks as the exact scan does");
        for ((_, x), (_, y)) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6, "exact scores: {x} vs {y}");
        }
    }
}

async fn embedded_chunks<D: Driver>(p: &Pipeline<D>) -> Vec<ChunkVector> {
    let mut c = p.driver().conn().await.unwrap();
    c.chunk_vectors_page(&ChunkVectorPageParams {
        limit: 100_000,
        ..ChunkVectorPageParams::default()
    })
    .await
    .unwrap()
}

#[both_backends]
async fn the_vector_index_ranks_as_the_scan_and_follows_changes(db: impl TestDb) {
    let blobs = tempfile::tempdir().unwrap();
    let p = pipeline(db.driver(), &blobs);
    let runtime = start(&p);
    let mut ids = Vec::new();
    for name in FILES {
        let s = p
            .submit(NewDocument {
                bytes: corpus(name),
                filename: Some(name.to_owned()),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push(s.document.id);
    }
    for id in &ids {
        completed(&p, *id).await;
    }
    // A process without an index of its own: the exact scan.
    let scan = pipeline(db.driver(), &blobs);
    let stop = CancellationToken::new();
    let Some(index) = p.start_search_index(stop.clone()).await.unwrap() else {
        let mut c = p.driver().conn().await.unwrap();
        assert!(
            c.vector_search_available().await.unwrap(),
            "no index only where the database has its own"
        );
        return;
    };
    ready(&index).await;
    // From here on the index follows the database only as searches ask it to: each search
    // must see every change committed before it.
    stop.cancel();
    let stored = embedded_chunks(&p).await;
    let status = index.status();
    assert_eq!(status.vectors as usize, stored.len(), "{status:?}");
    assert_eq!(status.documents as usize, FILES.len());
    assert!(status.memory_bytes > 0 && status.bytes_per_vector > 0);
    let reads = index.log_reads();
    assert_same(&rankings(&p).await, &rankings(&scan).await);
    assert_eq!(
        index.log_reads(),
        reads,
        "searches of a current index apply nothing (one look at the log's end each)"
    );

    // Deleted by this process: its chunks are never returned again.
    let gone = ids[0];
    let gone_chunks: Vec<i64> = stored
        .iter()
        .filter(|v| v.document_id == gone)
        .map(|v| v.id)
        .collect();
    assert!(p.delete(gone).await.unwrap());
    let after_delete = rankings(&p).await;
    assert!(
        after_delete
            .iter()
            .flatten()
            .all(|(id, _)| !gone_chunks.contains(id)),
        "a deleted document's chunks are not returned"
    );
    assert_same(&after_delete, &rankings(&scan).await);
    assert_eq!(index.status().documents as usize, FILES.len() - 1);

    // Processed again by another process: the new generation's chunks replace the old.
    let other = pipeline(db.driver(), &blobs);
    let again = ids[1];
    let old_chunks: Vec<i64> = stored
        .iter()
        .filter(|v| v.document_id == again)
        .map(|v| v.id)
        .collect();
    other.reprocess(again).await.unwrap();
    completed(&other, again).await;
    let after_reprocess = rankings(&p).await;
    assert!(
        after_reprocess
            .iter()
            .flatten()
            .all(|(id, _)| !old_chunks.contains(id)),
        "an old generation's chunks are not returned"
    );
    assert_same(&after_reprocess, &rankings(&scan).await);
    assert_eq!(
        index.status().vectors as usize,
        embedded_chunks(&p).await.len(),
        "the index holds what the database holds"
    );

    // A second process builds its own index from the same database, to the same answers.
    let stop = CancellationToken::new();
    let second = pipeline(db.driver(), &blobs);
    let second_index = second
        .start_search_index(stop.clone())
        .await
        .unwrap()
        .expect("an index");
    ready(&second_index).await;
    assert_eq!(second_index.status().vectors, index.status().vectors);
    assert_same(&rankings(&second).await, &rankings(&scan).await);

    // Restricted to documents: the same chunks as the scan restricted to them.
    let only = Some(vec![ids[2], ids[3]]);
    let scoped = p
        .search_mode(QUERIES[0], 10, only.clone(), SearchMode::Vector)
        .await
        .unwrap();
    let scanned = scan
        .search_mode(QUERIES[0], 10, only, SearchMode::Vector)
        .await
        .unwrap();
    let chunk_ids = |h: &[search::SearchHit]| h.iter().map(|h| h.chunk.id).collect::<Vec<_>>();
    assert_eq!(chunk_ids(&scoped), chunk_ids(&scanned));
    stop.cancel();
    runtime.shutdown().await;
}
