//! The document store: documents, parsed texts, chunks and their vectors.

use chrono::{DateTime, Duration, Utc};
use docket_core::{
    ChunkInsert, ChunkListParams, ChunkListUnembeddedParams, ChunkReplaceParams, ChunkRow,
    ChunkVectorPageParams, DocumentActivateParams, DocumentFailParams, DocumentInsertParams,
    DocumentListParams, DocumentProgressParams, DocumentRow, DocumentSource, DocumentStageParams,
    DocumentStatus, DocumentStore, DocumentText, Executor, GenerationKey,
};
use serde_json::json;
use uuid::{NoContext, Timestamp, Uuid};

use crate::harness::TestDb;

use super::{base_time, conn};

/// A UUID v7 of `at` (millisecond precision): ids made from increasing times sort in that
/// order.
pub(crate) fn v7(at: DateTime<Utc>) -> Uuid {
    let nanos = at.timestamp_subsec_nanos();
    Uuid::new_v7(Timestamp::from_unix(
        NoContext,
        at.timestamp() as u64,
        nanos - nanos % 1_000_000,
    ))
}

pub(crate) fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

pub(crate) fn doc(
    id: Uuid,
    source: DocumentSource,
    sha256: String,
    now: DateTime<Utc>,
) -> DocumentInsertParams {
    DocumentInsertParams {
        id,
        source,
        filename: Some("report.pdf".into()),
        content_type: Some("application/pdf".into()),
        size_bytes: 1234,
        sha256,
        storage_key: format!("originals/{id}"),
        callback_url: None,
        metadata: json!({}),
        priority: 0,
        now: Some(now),
    }
}

pub(crate) async fn insert_doc<E: Executor>(c: &mut E, p: DocumentInsertParams) -> DocumentRow {
    c.document_insert(&p).await.expect("document_insert")
}

pub(crate) async fn new_doc<E: Executor>(c: &mut E, at: DateTime<Utc>) -> DocumentRow {
    let id = v7(at);
    // A content hash of its own: one document per sha256.
    let sha = format!("{:032x}", id.as_u128()).repeat(2);
    insert_doc(c, doc(id, DocumentSource::Upload, sha, at)).await
}

pub(crate) async fn get_doc<E: Executor>(c: &mut E, id: Uuid) -> DocumentRow {
    c.document_get(id)
        .await
        .expect("document_get")
        .unwrap_or_else(|| panic!("document {id} is gone"))
}

pub(crate) fn stage(
    id: Uuid,
    generation: i32,
    status: DocumentStatus,
    name: &str,
    progress: i16,
    now: DateTime<Utc>,
) -> DocumentStageParams {
    DocumentStageParams {
        id,
        generation,
        status,
        stage: Some(name.to_owned()),
        progress,
        timing: None,
        now: Some(now),
    }
}

pub(crate) fn activate(
    id: Uuid,
    generation: i32,
    chunks: i32,
    now: DateTime<Utc>,
) -> DocumentActivateParams {
    DocumentActivateParams {
        id,
        generation,
        chunk_count: chunks,
        token_count: i64::from(chunks) * 10,
        embedder: Some("test-embedder".into()),
        embedder_fingerprint: None,
        chunker_fingerprint: None,
        timing: Some(("complete_ms".into(), 7)),
        status: DocumentStatus::Completed,
        progress: 100,
        now: Some(now),
    }
}

/// Activates `generation` of `id` with [`activate`]'s figures; the activation must apply.
pub(crate) async fn activated<E: DocumentStore>(
    c: &mut E,
    id: Uuid,
    generation: i32,
    chunks: i32,
    now: DateTime<Utc>,
) {
    assert!(
        c.document_activate(&activate(id, generation, chunks, now))
            .await
            .unwrap(),
        "activate {id} generation {generation}"
    );
}

/// Stores `text` as the plain text of `generation` of `id`, with no sections.
pub(crate) async fn store_text<E: DocumentStore>(c: &mut E, id: Uuid, generation: i32, text: &str) {
    c.document_text_upsert(&DocumentText {
        document_id: id,
        generation,
        format: "text".into(),
        text: text.into(),
        sections: json!([]),
    })
    .await
    .unwrap();
}

pub(crate) fn chunk(i: i32, text: &str) -> ChunkInsert {
    ChunkInsert {
        chunk_index: i,
        text: text.to_owned(),
        char_start: i * 100,
        char_end: i * 100 + text.chars().count() as i32,
        token_count: 3 + i,
        heading_path: vec!["Intro".into(), format!("Part {i}")],
        page: if i % 2 == 0 { Some(i + 1) } else { None },
    }
}

pub(crate) fn chunks(n: i32, tag: &str) -> Vec<ChunkInsert> {
    (0..n)
        .map(|i| chunk(i, &format!("{tag} chunk {i} — é")))
        .collect()
}

pub(crate) async fn replace<E: Executor>(
    c: &mut E,
    id: Uuid,
    generation: i32,
    cs: &[ChunkInsert],
) -> u64 {
    c.chunk_replace(ChunkReplaceParams {
        document_id: id,
        generation,
        chunks: cs,
    })
    .await
    .expect("chunk_replace")
}

pub(crate) async fn list_chunks<E: Executor>(
    c: &mut E,
    id: Uuid,
    generation: Option<i32>,
) -> Vec<ChunkRow> {
    c.chunk_list(ChunkListParams {
        document_id: id,
        generation,
        limit: 1000,
        offset: 0,
    })
    .await
    .expect("chunk_list")
}

pub(crate) fn vector(seed: i32, dims: usize) -> Vec<f32> {
    (0..dims)
        .map(|d| (seed as f32 + 1.0) * 0.001 * (d as f32 + 1.0) - 0.37)
        .collect()
}

/// Embeds every chunk of a generation; returns the vectors by chunk id.
pub(crate) async fn embed_all<E: Executor>(
    c: &mut E,
    id: Uuid,
    generation: i32,
) -> Vec<(i64, Vec<f32>)> {
    let rows = c
        .chunk_list_unembedded(ChunkListUnembeddedParams {
            document_id: id,
            generation,
            limit: 1000,
        })
        .await
        .expect("chunk_list_unembedded");
    let vs: Vec<(i64, Vec<f32>)> = rows
        .iter()
        .map(|r| (r.id, vector(r.chunk_index + generation * 100, 8)))
        .collect();
    let n = c
        .chunk_set_embeddings(&vs)
        .await
        .expect("chunk_set_embeddings");
    assert_eq!(n, vs.len() as u64);
    vs
}

pub(crate) async fn vectors_of<E: Executor>(c: &mut E, ids: Option<Vec<Uuid>>) -> Vec<(i64, Uuid)> {
    c.chunk_vectors_page(&ChunkVectorPageParams {
        document_ids: ids,
        embedder_fingerprint: None,
        after_id: 0,
        limit: 1000,
        chunk_ids: None,
    })
    .await
    .expect("chunk_vectors_page")
    .into_iter()
    .map(|v| (v.id, v.document_id))
    .collect()
}

pub(crate) fn texts(rows: &[ChunkRow]) -> Vec<&str> {
    rows.iter().map(|r| r.text.as_str()).collect()
}

pub(crate) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `document_insert`, `document_get`, `document_find_by_sha256`: every field round-trips; a
/// new document is queued at generation 1 with nothing active.
pub async fn document_insert_get<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let id = v7(t0);
    let mut p = doc(id, DocumentSource::Webhook, sha(0xab), t0);
    p.callback_url = Some("https://example.com/hook".into());
    p.metadata = json!({"team": "legal", "tags": ["a", "b"], "n": 3});
    p.priority = 7;
    let inserted = insert_doc(&mut c, p.clone()).await;
    let expected = DocumentRow {
        embedder_fingerprint: None,
        chunker_fingerprint: None,
        generation_embedder: None,
        id,
        source: DocumentSource::Webhook,
        filename: Some("report.pdf".into()),
        content_type: Some("application/pdf".into()),
        size_bytes: 1234,
        sha256: sha(0xab),
        storage_key: format!("originals/{id}"),
        status: DocumentStatus::Queued,
        progress: 0,
        stage: None,
        error: None,
        error_stage: None,
        timings: json!({}),
        callback_url: Some("https://example.com/hook".into()),
        metadata: json!({"team": "legal", "tags": ["a", "b"], "n": 3}),
        priority: 7,
        generation: 1,
        active_generation: None,
        chunk_count: 0,
        token_count: 0,
        embedder: None,
        created_at: t0,
        updated_at: t0,
        completed_at: None,
    };
    assert_eq!(inserted, expected, "the returned row");
    assert_eq!(get_doc(&mut c, id).await, expected, "the stored row");
    assert!(c.document_get(Uuid::now_v7()).await.unwrap().is_none());

    // The same content again: nothing is inserted, the existing document comes back.
    let later = v7(t0 + Duration::seconds(5));
    let mut q = doc(
        later,
        DocumentSource::Upload,
        sha(0xab),
        t0 + Duration::seconds(5),
    );
    q.filename = None;
    q.content_type = None;
    let second = insert_doc(&mut c, q).await;
    assert_eq!(second, expected, "one document per content");
    assert!(c.document_get(later).await.unwrap().is_none());
    let found = c
        .document_find_by_sha256(&sha(0xab))
        .await
        .unwrap()
        .expect("found by sha256");
    assert_eq!(found.id, id);
    assert!(
        c.document_find_by_sha256(&sha(0xcd))
            .await
            .unwrap()
            .is_none()
    );

    // The id is the key: the same id with other content is refused.
    p.sha256 = sha(0xcd);
    let dup = c.document_insert(&p).await;
    assert!(dup.is_err(), "a second insert of one id: {dup:?}");
}

/// `document_list`: newest first by id, filters by status and source, keyset paging.
pub async fn document_list<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let sources = [
        DocumentSource::Upload,
        DocumentSource::Url,
        DocumentSource::Upload,
        DocumentSource::Webhook,
        DocumentSource::Upload,
    ];
    let mut ids = Vec::new();
    for (i, source) in sources.into_iter().enumerate() {
        let at = t0 + Duration::milliseconds(10 * i as i64);
        ids.push(
            insert_doc(&mut c, doc(v7(at), source, sha(i as u8), at))
                .await
                .id,
        );
    }
    let [d0, d1, d2, d3, d4] = ids[..] else {
        unreachable!()
    };
    // d2 fails.
    assert!(
        c.document_fail(&DocumentFailParams {
            id: d2,
            generation: 1,
            stage: "parse".into(),
            error: "bad pdf".into(),
            now: Some(t0),
        })
        .await
        .unwrap()
    );

    let list = |status, source, before, limit| DocumentListParams {
        status,
        source,
        before,
        limit,
    };
    async fn ids_of<E: Executor>(c: &mut E, p: DocumentListParams) -> Vec<Uuid> {
        c.document_list(&p)
            .await
            .expect("document_list")
            .into_iter()
            .map(|d| d.id)
            .collect()
    }
    assert_eq!(
        ids_of(&mut c, list(None, None, None, 100)).await,
        [d4, d3, d2, d1, d0],
        "newest first"
    );
    assert_eq!(
        ids_of(&mut c, list(None, Some(DocumentSource::Upload), None, 100)).await,
        [d4, d2, d0]
    );
    assert_eq!(
        ids_of(&mut c, list(Some(DocumentStatus::Failed), None, None, 100)).await,
        [d2]
    );
    assert_eq!(
        ids_of(
            &mut c,
            list(
                Some(DocumentStatus::Queued),
                Some(DocumentSource::Upload),
                None,
                100
            )
        )
        .await,
        [d4, d0],
        "filters combine"
    );
    assert!(
        ids_of(
            &mut c,
            list(Some(DocumentStatus::Completed), None, None, 100)
        )
        .await
        .is_empty()
    );
    assert_eq!(
        ids_of(&mut c, list(None, None, Some(d2), 100)).await,
        [d1, d0],
        "cursor"
    );
    assert!(ids_of(&mut c, list(None, None, None, 0)).await.is_empty());

    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = ids_of(&mut c, list(None, None, before, 2)).await;
        if page.is_empty() {
            break;
        }
        before = page.last().copied();
        pages.push(page);
    }
    assert_eq!(pages, vec![vec![d4, d3], vec![d2, d1], vec![d0]]);
}

/// `document_set_stage`: applies only at the document's generation; merges timings; clears
/// the error unless the new status is `failed`; `completed` sets `completed_at` once.
pub async fn document_stage_updates<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let d = new_doc(&mut c, t0).await;
    let t1 = t0 + Duration::seconds(1);

    let mut p = stage(d.id, 1, DocumentStatus::Parsing, "parse", 5, t1);
    p.timing = Some(("queue_ms".into(), 40));
    assert!(c.document_set_stage(&p).await.unwrap());
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(
        (
            row.status,
            row.stage.as_deref(),
            row.progress,
            row.updated_at
        ),
        (DocumentStatus::Parsing, Some("parse"), 5, t1)
    );
    assert_eq!(row.timings, json!({"queue_ms": 40}));

    // Another generation's stage changes nothing.
    for generation in [0, 2] {
        let stale = stage(d.id, generation, DocumentStatus::Embedding, "embed", 90, t1);
        assert!(
            !c.document_set_stage(&stale).await.unwrap(),
            "generation {generation}"
        );
    }
    let missing = stage(Uuid::now_v7(), 1, DocumentStatus::Parsing, "parse", 1, t1);
    assert!(!c.document_set_stage(&missing).await.unwrap());
    assert_eq!(
        get_doc(&mut c, d.id).await,
        row,
        "unchanged by stale stages"
    );

    // Timings merge (a key set twice keeps the last value).
    let t2 = t0 + Duration::seconds(2);
    let mut p = stage(d.id, 1, DocumentStatus::Chunking, "chunk", 40, t2);
    p.timing = Some(("parse_ms".into(), 12));
    assert!(c.document_set_stage(&p).await.unwrap());
    p.timing = Some(("queue_ms".into(), 41));
    assert!(c.document_set_stage(&p).await.unwrap());
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(row.timings, json!({"queue_ms": 41, "parse_ms": 12}));
    assert_eq!(row.progress, 40);

    // A failure is kept by a `failed` stage update, and cleared by any other.
    assert!(
        c.document_fail(&DocumentFailParams {
            id: d.id,
            generation: 1,
            stage: "chunk".into(),
            error: "boom".into(),
            now: Some(t2),
        })
        .await
        .unwrap()
    );
    assert!(
        c.document_set_stage(&stage(d.id, 1, DocumentStatus::Failed, "chunk", 40, t2))
            .await
            .unwrap()
    );
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(
        (row.error.as_deref(), row.error_stage.as_deref()),
        (Some("boom"), Some("chunk"))
    );
    assert!(
        c.document_set_stage(&stage(d.id, 1, DocumentStatus::Chunking, "chunk", 45, t2))
            .await
            .unwrap()
    );
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(
        (row.status, row.error, row.error_stage),
        (DocumentStatus::Chunking, None, None)
    );
    assert_eq!(row.completed_at, None);

    // `completed` records completed_at, once.
    let t3 = t0 + Duration::seconds(3);
    assert!(
        c.document_set_stage(&stage(
            d.id,
            1,
            DocumentStatus::Completed,
            "notify",
            100,
            t3
        ))
        .await
        .unwrap()
    );
    let t4 = t0 + Duration::seconds(4);
    assert!(
        c.document_set_stage(&stage(
            d.id,
            1,
            DocumentStatus::Completed,
            "notify",
            100,
            t4
        ))
        .await
        .unwrap()
    );
    let row = get_doc(&mut c, d.id).await;
    assert_eq!((row.completed_at, row.updated_at), (Some(t3), t4));
}

/// `document_set_progress`: only raises progress, only at the document's generation, only
/// while it is unfinished.
pub async fn document_progress_only_rises<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let d = new_doc(&mut c, t0).await;
    let prog = |generation, progress, secs| DocumentProgressParams {
        generation_embedder: None,
        id: d.id,
        generation,
        progress,
        now: Some(t0 + Duration::seconds(secs)),
    };
    assert!(c.document_set_progress(&prog(1, 30, 1)).await.unwrap());
    assert_eq!(get_doc(&mut c, d.id).await.progress, 30);
    assert!(c.document_set_progress(&prog(1, 10, 2)).await.unwrap());
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(row.progress, 30, "progress never goes down");
    assert_eq!(row.updated_at, t0 + Duration::seconds(2));
    assert!(c.document_set_progress(&prog(1, 55, 3)).await.unwrap());
    assert_eq!(get_doc(&mut c, d.id).await.progress, 55);
    assert!(!c.document_set_progress(&prog(2, 80, 4)).await.unwrap());
    assert_eq!(get_doc(&mut c, d.id).await.progress, 55, "other generation");

    // Finished documents keep their progress.
    assert!(
        c.document_fail(&DocumentFailParams {
            id: d.id,
            generation: 1,
            stage: "embed".into(),
            error: "quota".into(),
            now: Some(t0),
        })
        .await
        .unwrap()
    );
    assert!(!c.document_set_progress(&prog(1, 90, 5)).await.unwrap());
    assert_eq!(get_doc(&mut c, d.id).await.progress, 55);
}

/// `document_fail`: records the reason and the stage; guarded by generation.
pub async fn document_fail_records_stage<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let d = new_doc(&mut c, t0).await;
    assert!(
        c.document_set_stage(&stage(d.id, 1, DocumentStatus::Embedding, "embed", 70, t0))
            .await
            .unwrap()
    );
    let fail = |generation, error: &str| DocumentFailParams {
        id: d.id,
        generation,
        stage: "embed".into(),
        error: error.into(),
        now: Some(t0 + Duration::seconds(9)),
    };
    assert!(!c.document_fail(&fail(2, "stale")).await.unwrap());
    assert_eq!(
        get_doc(&mut c, d.id).await.status,
        DocumentStatus::Embedding
    );
    assert!(
        c.document_fail(&fail(1, "model unavailable"))
            .await
            .unwrap()
    );
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(row.status, DocumentStatus::Failed);
    assert_eq!(row.error.as_deref(), Some("model unavailable"));
    assert_eq!(row.error_stage.as_deref(), Some("embed"));
    assert_eq!(row.stage.as_deref(), Some("embed"));
    assert_eq!(row.progress, 70, "progress is kept");
    assert_eq!(row.updated_at, t0 + Duration::seconds(9));
    assert_eq!(row.completed_at, None);
    assert!(row.status.is_terminal());
}

/// `document_text_upsert` replaces a generation's text; `document_text_get` reads it back.
pub async fn document_text_upsert_replaces<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let d = new_doc(&mut c, base_time()).await;
    assert!(
        c.document_text_get(GenerationKey::new(d.id, 1))
            .await
            .unwrap()
            .is_none()
    );
    let first = DocumentText {
        document_id: d.id,
        generation: 1,
        format: "markdown".into(),
        text: "# Title\n\nBody — ünïcödé\n".into(),
        sections: json!([{"title": "Title", "level": 1, "char_start": 0}]),
    };
    c.document_text_upsert(&first).await.unwrap();
    assert_eq!(
        c.document_text_get(GenerationKey::new(d.id, 1))
            .await
            .unwrap(),
        Some(first.clone())
    );

    let second = DocumentText {
        format: "text".into(),
        text: "plain".into(),
        sections: json!([]),
        ..first.clone()
    };
    c.document_text_upsert(&second).await.unwrap();
    assert_eq!(
        c.document_text_get(GenerationKey::new(d.id, 1))
            .await
            .unwrap(),
        Some(second.clone())
    );
    let other = DocumentText {
        generation: 2,
        ..first.clone()
    };
    c.document_text_upsert(&other).await.unwrap();
    assert_eq!(
        c.document_text_get(GenerationKey::new(d.id, 1))
            .await
            .unwrap(),
        Some(second)
    );
    assert_eq!(
        c.document_text_get(GenerationKey::new(d.id, 2))
            .await
            .unwrap(),
        Some(other)
    );

    // A text belongs to a stored document.
    let orphan = DocumentText {
        document_id: Uuid::now_v7(),
        ..first
    };
    assert!(c.document_text_upsert(&orphan).await.is_err());
}

/// `document_delete` takes the document's texts and chunks with it.
pub async fn document_delete_cascades<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let d = new_doc(&mut c, t0).await;
    let kept = new_doc(&mut c, t0 + Duration::milliseconds(1)).await;
    for x in [&d, &kept] {
        replace(&mut c, x.id, 1, &chunks(2, "x")).await;
        embed_all(&mut c, x.id, 1).await;
        store_text(&mut c, x.id, 1, "x").await;
        activated(&mut c, x.id, 1, 2, t0).await;
    }
    let ids: Vec<i64> = list_chunks(&mut c, d.id, None)
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    assert!(c.document_delete(d.id).await.unwrap());
    assert!(!c.document_delete(d.id).await.unwrap(), "already gone");
    assert!(c.document_get(d.id).await.unwrap().is_none());
    assert!(
        c.document_text_get(GenerationKey::new(d.id, 1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(c.chunk_get_many(&ids).await.unwrap().is_empty());
    assert_eq!(
        c.chunk_count_embedded(GenerationKey::new(d.id, 1))
            .await
            .unwrap(),
        (0, 0)
    );
    // SQLite has one connection: give it back for the raw queries.
    drop(c);
    assert_eq!(
        db.query_rows(&format!(
            "SELECT 1 FROM document_chunks WHERE document_id = '{}'",
            d.id
        ))
        .await,
        0
    );
    assert_eq!(
        db.query_rows(&format!(
            "SELECT 1 FROM document_texts WHERE document_id = '{}'",
            d.id
        ))
        .await,
        0
    );
    // The other document is untouched.
    let mut c = conn(db).await;
    assert_eq!(list_chunks(&mut c, kept.id, None).await.len(), 2);
    assert!(
        c.document_text_get(GenerationKey::new(kept.id, 1))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        vectors_of(&mut c, None)
            .await
            .iter()
            .map(|v| v.1)
            .collect::<Vec<_>>(),
        [kept.id, kept.id]
    );
}

/// `document_ids_present` answers which of the ids are stored documents: none of an empty
/// list, deleted ones no longer, and more than the limit is refused.
pub async fn document_ids_present_answers_stored_ids<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let a = new_doc(&mut c, t0).await;
    let b = new_doc(&mut c, t0 + Duration::milliseconds(1)).await;
    let never = Uuid::now_v7();
    assert!(c.document_ids_present(&[]).await.unwrap().is_empty());
    let mut found = c.document_ids_present(&[a.id, never, b.id]).await.unwrap();
    found.sort();
    let mut want = vec![a.id, b.id];
    want.sort();
    assert_eq!(found, want);
    assert!(c.document_delete(a.id).await.unwrap());
    assert_eq!(
        c.document_ids_present(&[a.id, b.id, never]).await.unwrap(),
        vec![b.id]
    );
    let many: Vec<Uuid> = (0..=docket_core::MAX_IDS_PRESENT)
        .map(|_| Uuid::now_v7())
        .collect();
    assert!(matches!(
        c.document_ids_present(&many).await,
        Err(docket_core::Error::Invalid(_))
    ));
    assert!(
        c.document_ids_present(&many[1..]).await.unwrap().is_empty(),
        "the limit itself is taken"
    );
}
