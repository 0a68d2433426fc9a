//! The optional vector search through the database's own index (PostgreSQL with pgvector):
//! nearest chunks of active generations of the running embedder, exactly where the extension
//! is installed, and whatever the vectors of older generations and other embedders crowding
//! the index's nearest candidates.

use chrono::{DateTime, Duration, Utc};
use docket_core::{
    ChunkSearchParams, DocumentStore, Error, Executor, QueueDriver, Transaction,
    VECTOR_INDEX_MAX_DIMS,
};
use uuid::Uuid;

use crate::harness::TestDb;

use super::documents::{activate, activated, chunks, list_chunks, new_doc, replace, vectors_of};
use super::{base_time, conn};

fn search(query: Vec<f32>, k: i64, document_ids: Option<Vec<Uuid>>) -> ChunkSearchParams {
    ChunkSearchParams {
        query,
        k,
        document_ids,
        embedder_fingerprint: None,
    }
}

/// The ids of a search's hits, best first; panics when the backend does not search.
async fn hits<E: Executor>(c: &mut E, p: ChunkSearchParams) -> Vec<(i64, f32)> {
    c.chunk_search(&p)
        .await
        .expect("chunk_search")
        .expect("the backend searches vectors")
        .into_iter()
        .map(|h| (h.id, h.score))
        .collect()
}

/// The optional vector search: available exactly on PostgreSQL with the pgvector extension
/// installed (detected by a migrated driver and, lazily, by one that never migrated);
/// elsewhere `chunk_search` answers `None` and `vector_index_ensure` false, while invalid
/// params are refused on every backend. Where available: nearest chunks of active
/// generations only, of the query's dimensions, best first, filtered by document, with
/// vectors pgvector cannot hold left out, before and after the index is built.
pub async fn vector_search_optional<T: TestDb>(db: &T) {
    let expected = db.backend() == "postgres"
        && db
            .query_rows("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            .await
            == 1;
    {
        // Another process that never migrated detects it on first use.
        let other = db.connect_again().await;
        let mut c = other.conn().await.expect("conn");
        assert_eq!(c.vector_search_available().await.unwrap(), expected);
    }
    let mut c = conn(db).await;
    assert_eq!(
        c.vector_search_available().await.unwrap(),
        expected,
        "vector search is available exactly where pgvector is installed"
    );
    for dims in [0, -1, VECTOR_INDEX_MAX_DIMS + 1] {
        assert!(
            matches!(c.vector_index_ensure(dims).await, Err(Error::Invalid(_))),
            "{dims} dimensions"
        );
    }
    for bad in [
        search(vec![], 1, None),
        search(vec![1.0, f32::NAN], 1, None),
        search(vec![f32::INFINITY], 1, None),
        search(vec![1.0], -1, None),
    ] {
        assert!(
            matches!(c.chunk_search(&bad).await, Err(Error::Invalid(_))),
            "{bad:?}"
        );
    }

    // Two active documents, one never activated; vectors of 3 dimensions and one of 4.
    let t0 = base_time();
    let a = new_doc(&mut c, t0).await;
    let b = new_doc(&mut c, t0 + Duration::milliseconds(1)).await;
    let never = new_doc(&mut c, t0 + Duration::milliseconds(2)).await;
    replace(&mut c, a.id, 1, &chunks(2, "a")).await;
    replace(&mut c, b.id, 1, &chunks(3, "b")).await;
    replace(&mut c, never.id, 1, &chunks(1, "never")).await;
    let a_rows = list_chunks(&mut c, a.id, Some(1)).await;
    let b_rows = list_chunks(&mut c, b.id, Some(1)).await;
    let never_rows = list_chunks(&mut c, never.id, Some(1)).await;
    let (a0, a1) = (a_rows[0].id, a_rows[1].id);
    let (b0, b1, b2) = (b_rows[0].id, b_rows[1].id, b_rows[2].id);
    let set = vec![
        (a0, vec![1.0, 0.0, 0.0]),
        (a1, vec![0.0, 1.0, 0.0]),
        (b0, vec![0.9, 0.1, 0.0]),
        (b1, vec![0.0, 0.0, 1.0]),
        (b2, vec![1.0, 0.0, 0.0, 0.0]),
        (never_rows[0].id, vec![1.0, 0.0, 0.0]),
    ];
    assert_eq!(c.chunk_set_embeddings(&set).await.unwrap(), 6);
    activated(&mut c, a.id, 1, 2, t0).await;
    activated(&mut c, b.id, 1, 3, t0).await;

    if !expected {
        assert!(!c.vector_index_ensure(3).await.unwrap());
        assert_eq!(
            c.chunk_search(&search(vec![1.0, 0.0, 0.0], 10, None))
                .await
                .unwrap(),
            None
        );
        // The portable path is whole.
        assert_eq!(vectors_of(&mut c, None).await.len(), 5);
        return;
    }

    for indexed in [false, true] {
        let all = hits(&mut c, search(vec![1.0, 0.0, 0.0], 10, None)).await;
        let ids: Vec<i64> = all.iter().map(|h| h.0).collect();
        assert_eq!(ids.len(), 4, "active chunks of 3 dimensions: {all:?}");
        assert_eq!(&ids[..2], [a0, b0], "best first: {all:?}");
        let mut rest = ids[2..].to_vec();
        rest.sort();
        assert_eq!(rest, [a1, b1], "{all:?}");
        assert!((all[0].1 - 1.0).abs() < 1e-6, "{all:?}");
        let b0_score = 0.9 / (0.82f32).sqrt();
        assert!((all[1].1 - b0_score).abs() < 1e-5, "{all:?}");
        assert!(all[2].1.abs() < 1e-6 && all[3].1.abs() < 1e-6, "{all:?}");
        assert!(all.windows(2).all(|w| w[0].1 >= w[1].1), "{all:?}");
        assert!(all.iter().all(|h| h.0 != never_rows[0].id));

        assert_eq!(
            hits(&mut c, search(vec![1.0, 0.0, 0.0], 1, None)).await[0].0,
            a0
        );
        let only_b = hits(&mut c, search(vec![1.0, 0.0, 0.0], 10, Some(vec![b.id]))).await;
        assert_eq!(only_b.iter().map(|h| h.0).collect::<Vec<_>>(), [b0, b1]);
        let four = hits(&mut c, search(vec![2.0, 0.0, 0.0, 0.0], 10, None)).await;
        assert_eq!(four.iter().map(|h| h.0).collect::<Vec<_>>(), [b2]);
        assert!(
            hits(&mut c, search(vec![1.0; 5], 10, None))
                .await
                .is_empty()
        );
        assert!(
            hits(&mut c, search(vec![1.0, 0.0, 0.0], 0, None))
                .await
                .is_empty()
        );
        assert!(
            hits(&mut c, search(vec![1.0, 0.0, 0.0], 10, Some(vec![])))
                .await
                .is_empty()
        );
        if !indexed {
            assert!(c.vector_index_ensure(3).await.unwrap());
            assert!(c.vector_index_ensure(3).await.unwrap(), "idempotent");
            assert_eq!(
                db.query_rows(
                    "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() \
                     AND indexname = 'document_chunks_embedding_hnsw_3'"
                )
                .await,
                1
            );
            assert!(
                !c.vector_index_ensure(2001).await.unwrap(),
                "beyond what an HNSW index holds"
            );
        }
    }

    // Overwriting a vector moves it; one pgvector cannot hold leaves the search, not the store.
    c.chunk_set_embeddings(&[(a1, vec![1.0, 0.0, 0.0]), (a0, vec![f32::NAN, 0.0, 0.0])])
        .await
        .unwrap();
    let after = hits(&mut c, search(vec![1.0, 0.0, 0.0], 10, None)).await;
    assert_eq!(
        after.iter().map(|h| h.0).collect::<Vec<_>>(),
        [a1, b0, b1],
        "{after:?}"
    );
    assert_eq!(vectors_of(&mut c, None).await.len(), 5);
    drop(c);

    // Inside a transaction too.
    let mut tx = db.driver().begin().await.expect("begin");
    assert_eq!(
        hits(&mut tx, search(vec![1.0, 0.0, 0.0], 1, None)).await[0].0,
        a1
    );
    tx.rollback().await.unwrap();
}

/// `n` vectors of 3 dimensions at angles from `from` (radians from the query's axis) in steps
/// of `step`: the first is the nearest.
fn fan(from: f32, step: f32, n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| {
            let a = from + step * i as f32;
            vec![a.cos(), a.sin(), 0.0]
        })
        .collect()
}

/// A document with one chunk per vector, activated (or not) with `fingerprint`; its chunk ids
/// in the vectors' order.
async fn doc_with<E: Executor>(
    c: &mut E,
    at: DateTime<Utc>,
    vectors: &[Vec<f32>],
    fingerprint: Option<&str>,
) -> Vec<i64> {
    let d = new_doc(c, at).await;
    let n = vectors.len() as i32;
    replace(c, d.id, 1, &chunks(n, "crowd")).await;
    let ids: Vec<i64> = list_chunks(c, d.id, Some(1))
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    let set: Vec<(i64, Vec<f32>)> = ids.iter().copied().zip(vectors.iter().cloned()).collect();
    assert_eq!(
        c.chunk_set_embeddings(&set).await.unwrap(),
        set.len() as u64
    );
    if let Some(fp) = fingerprint {
        let mut p = activate(d.id, 1, n, at);
        p.embedder_fingerprint = Some(fp.to_owned());
        assert!(c.document_activate(&p).await.unwrap());
    }
    ids
}

/// The index's nearest vectors may all belong to documents a search leaves out (never
/// activated, or embedded by another embedder): the search still answers the k nearest that
/// qualify, in the exact order, and all of them when fewer than k qualify — before and after
/// the index is built. Where the backend has no vector search, `chunk_search` answers `None`.
pub async fn vector_search_past_crowding<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let query = vec![1.0, 0.0, 0.0];
    let mine = |k: i64| ChunkSearchParams {
        query: query.clone(),
        k,
        document_ids: None,
        embedder_fingerprint: Some("mine".into()),
    };
    if !c.vector_search_available().await.unwrap() {
        assert_eq!(c.chunk_search(&mine(3)).await.unwrap(), None);
        return;
    }
    let t0 = base_time();
    // 300 vectors nearer the query than any of "mine" (angles 0 to 0.3), none searchable.
    doc_with(&mut c, t0, &fan(0.0, 0.001, 150), None).await;
    let other = doc_with(
        &mut c,
        t0 + Duration::milliseconds(1),
        &fan(0.0005, 0.001, 150),
        Some("other"),
    )
    .await;
    let ours = doc_with(
        &mut c,
        t0 + Duration::milliseconds(2),
        &fan(0.4, 0.05, 5),
        Some("mine"),
    )
    .await;

    for indexed in [false, true] {
        let ids = |h: Vec<(i64, f32)>| h.into_iter().map(|h| h.0).collect::<Vec<_>>();
        assert_eq!(
            ids(hits(&mut c, mine(3)).await),
            ours[..3],
            "indexed: {indexed}"
        );
        assert_eq!(ids(hits(&mut c, mine(5)).await), ours, "indexed: {indexed}");
        assert_eq!(
            ids(hits(&mut c, mine(10)).await),
            ours,
            "fewer than k qualify; indexed: {indexed}"
        );
        let best = hits(&mut c, mine(1)).await;
        assert!((best[0].1 - 0.4f32.cos()).abs() < 1e-5, "{best:?}");
        // Any embedder: the other's nearest come first.
        let any = ids(hits(&mut c, search(query.clone(), 3, None)).await);
        assert_eq!(any, other[..3], "indexed: {indexed}");
        if !indexed {
            assert!(c.vector_index_ensure(3).await.unwrap());
        }
    }
}
