//! The log an in-process vector index follows: every activation, embedder adoption and
//! deletion of a document, in commit order, each document once (its latest change); and the
//! vector page restricted to chunk ids (how a search reads its candidates back).

use chrono::Duration;
use docket_core::{
    ChunkVectorPageParams, DocumentReprocessParams, DocumentStore, EmbedderAdoptParams, Executor,
    SearchIndexChange, SearchIndexChangesParams,
};
use uuid::Uuid;

use crate::harness::TestDb;

use super::documents::{activate, chunks, embed_all, replace};
use super::embedders::searchable;
use super::{base_time, conn};

async fn changes_after<E: Executor>(c: &mut E, seq: i64, document: Uuid) -> Vec<SearchIndexChange> {
    c.search_index_changes(&SearchIndexChangesParams {
        after_seq: seq,
        after_document: document,
        limit: 100,
    })
    .await
    .expect("search_index_changes")
}

/// The log after `(seq, document)`, read one entry per call.
async fn one_at_a_time<E: Executor>(
    c: &mut E,
    mut seq: i64,
    mut document: Uuid,
) -> Vec<SearchIndexChange> {
    let mut read = Vec::new();
    loop {
        let page = c
            .search_index_changes(&SearchIndexChangesParams {
                after_seq: seq,
                after_document: document,
                limit: 1,
            })
            .await
            .expect("search_index_changes");
        let Some(last) = page.last() else {
            return read;
        };
        (seq, document) = (last.seq, last.document_id);
        read.extend(page);
    }
}

/// (document, searchable, fingerprint) of each change.
fn summary(changes: &[SearchIndexChange]) -> Vec<(Uuid, bool, Option<&str>)> {
    changes
        .iter()
        .map(|c| {
            (
                c.document_id,
                c.searchable,
                c.embedder_fingerprint.as_deref(),
            )
        })
        .collect()
}

/// Each activation, adoption and deletion logs its document after every earlier change; a
/// reader at the last entry reads only what came after it, and a document appears once, at
/// its latest change. Read a page at a time, the log is the same.
pub async fn search_index_log_follows_changes<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    assert!(
        changes_after(&mut c, 0, Uuid::nil()).await.is_empty(),
        "a new database has logged nothing"
    );
    let a = searchable(&mut c, t0, 2, "model-a", Some("fp-a"), None).await;
    let b = searchable(
        &mut c,
        t0 + Duration::seconds(1),
        1,
        "model-b",
        Some("fp-b"),
        None,
    )
    .await;
    let old = searchable(&mut c, t0 + Duration::seconds(2), 1, "model-a", None, None).await;
    let first = changes_after(&mut c, 0, Uuid::nil()).await;
    assert_eq!(
        summary(&first),
        vec![
            (a.id, true, Some("fp-a")),
            (b.id, true, Some("fp-b")),
            (old.id, true, None)
        ],
        "activations, in the order they committed"
    );
    assert!(first.windows(2).all(|w| w[0].seq < w[1].seq));
    let last = first.last().unwrap();
    let (seq, doc) = (last.seq, last.document_id);
    assert!(changes_after(&mut c, seq, doc).await.is_empty());

    // Adoption logs the adopted document with its new fingerprint.
    let adopted = c
        .document_embedder_adopt(&EmbedderAdoptParams {
            embedder: "model-a".into(),
            embedder_fingerprint: "fp-a".into(),
        })
        .await
        .unwrap();
    assert_eq!(adopted, 1);
    let after_adopt = changes_after(&mut c, seq, doc).await;
    assert_eq!(summary(&after_adopt), vec![(old.id, true, Some("fp-a"))]);
    let (seq, doc) = (after_adopt[0].seq, after_adopt[0].document_id);

    // A new generation of `a`: logged when it becomes active, not before.
    c.document_reprocess(&DocumentReprocessParams {
        id: a.id,
        now: None,
    })
    .await
    .unwrap()
    .expect("reprocess");
    replace(&mut c, a.id, 2, &chunks(3, "model-a")).await;
    embed_all(&mut c, a.id, 2).await;
    assert!(
        changes_after(&mut c, seq, doc).await.is_empty(),
        "a generation being processed changes nothing searchable"
    );
    let mut p = activate(a.id, 2, 3, t0 + Duration::seconds(5));
    p.embedder = Some("model-a".into());
    p.embedder_fingerprint = Some("fp-a".into());
    assert!(c.document_activate(&p).await.unwrap());
    let after_activate = changes_after(&mut c, seq, doc).await;
    assert_eq!(summary(&after_activate), vec![(a.id, true, Some("fp-a"))]);

    // A deletion: logged, the document no longer searchable.
    assert!(c.document_delete(b.id).await.unwrap());
    assert!(!c.document_delete(b.id).await.unwrap());
    let (seq2, doc2) = (after_activate[0].seq, after_activate[0].document_id);
    assert_eq!(
        summary(&changes_after(&mut c, seq2, doc2).await),
        vec![(b.id, false, None)],
        "a document deleted twice is logged once"
    );

    // From the start: each document once, at its latest change, in clock order.
    let all = changes_after(&mut c, 0, Uuid::nil()).await;
    assert_eq!(
        summary(&all),
        vec![
            (old.id, true, Some("fp-a")),
            (a.id, true, Some("fp-a")),
            (b.id, false, None)
        ]
    );
    let paged = one_at_a_time(&mut c, 0, Uuid::nil()).await;
    assert_eq!(paged, all, "read a page at a time, the log is the same");
}

/// Several documents adopted at once share one clock number; a reader paging one entry at a
/// time still reads each of them.
pub async fn search_index_log_pages_within_one_change<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let mut docs = Vec::new();
    for i in 0..3 {
        docs.push(
            searchable(&mut c, t0 + Duration::seconds(i), 1, "model-x", None, None)
                .await
                .id,
        );
    }
    let before = changes_after(&mut c, 0, Uuid::nil()).await;
    let last = before.last().unwrap();
    let (seq, doc) = (last.seq, last.document_id);
    assert_eq!(
        c.document_embedder_adopt(&EmbedderAdoptParams {
            embedder: "model-x".into(),
            embedder_fingerprint: "fp-x".into(),
        })
        .await
        .unwrap(),
        3
    );
    let seen = one_at_a_time(&mut c, seq, doc).await;
    assert_eq!(seen.len(), 3);
    assert!(seen.windows(2).all(|w| w[0].seq == w[1].seq));
    let mut ids: Vec<Uuid> = seen.iter().map(|c| c.document_id).collect();
    ids.sort();
    docs.sort();
    assert_eq!(ids, docs);
}

/// The vector page restricted to chunk ids returns those that are live, embedded chunks of
/// active generations (of the fingerprint asked for), and no others.
pub async fn chunk_vectors_by_id<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let a = searchable(&mut c, t0, 3, "model-a", Some("fp-a"), None).await;
    let b = searchable(
        &mut c,
        t0 + Duration::seconds(1),
        2,
        "model-b",
        Some("fp-b"),
        None,
    )
    .await;
    let page = |ids: Vec<i64>, fp: Option<&str>| ChunkVectorPageParams {
        document_ids: None,
        embedder_fingerprint: fp.map(str::to_owned),
        after_id: 0,
        limit: 100,
        chunk_ids: Some(ids),
    };
    let all = c
        .chunk_vectors_page(&ChunkVectorPageParams {
            limit: 100,
            ..ChunkVectorPageParams::default()
        })
        .await
        .unwrap();
    let of = |doc: Uuid| -> Vec<i64> {
        all.iter()
            .filter(|v| v.document_id == doc)
            .map(|v| v.id)
            .collect()
    };
    let (ids_a, ids_b) = (of(a.id), of(b.id));
    assert_eq!((ids_a.len(), ids_b.len()), (3, 2));
    let wanted = vec![ids_a[0], ids_a[2], ids_b[1], 999_999_999];
    let got: Vec<i64> = c
        .chunk_vectors_page(&page(wanted.clone(), None))
        .await
        .unwrap()
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(
        got,
        vec![ids_a[0], ids_a[2], ids_b[1]],
        "unknown ids are left out"
    );
    let got: Vec<i64> = c
        .chunk_vectors_page(&page(wanted, Some("fp-a")))
        .await
        .unwrap()
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(
        got,
        vec![ids_a[0], ids_a[2]],
        "only the fingerprint asked for"
    );
    assert!(
        c.chunk_vectors_page(&page(Vec::new(), None))
            .await
            .unwrap()
            .is_empty(),
        "an empty list matches none"
    );
    assert!(c.document_delete(a.id).await.unwrap());
    assert!(
        c.chunk_vectors_page(&page(ids_a, None))
            .await
            .unwrap()
            .is_empty(),
        "a deleted document's chunks are gone"
    );
}
