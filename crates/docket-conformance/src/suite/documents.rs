//! The document store: documents, parsed texts, chunks and their vectors.

use chrono::{DateTime, Duration, Utc};
use docket_core::{
    ChunkInsert, ChunkListParams, ChunkListUnembeddedParams, ChunkReplaceParams, ChunkRow,
    ChunkSearchParams, ChunkVectorPageParams, CompletionOutcome, DocumentActivateParams,
    DocumentFailParams, DocumentInsertParams, DocumentListParams, DocumentProgressParams,
    DocumentReprocessParams, DocumentRow, DocumentSource, DocumentStageParams, DocumentStatus,
    DocumentStore, DocumentText, Error, Executor, GenerationKey, QueueDriver, StuckDocumentsParams,
    Transaction, VECTOR_INDEX_MAX_DIMS,
};
use serde_json::json;
use uuid::{NoContext, Timestamp, Uuid};

use crate::harness::TestDb;

use super::{Conn, add, base_time, conn, failed, finish, job, keyed};

/// A UUID v7 of `at` (millisecond precision): ids made from increasing times sort in that
/// order.
fn v7(at: DateTime<Utc>) -> Uuid {
    let nanos = at.timestamp_subsec_nanos();
    Uuid::new_v7(Timestamp::from_unix(
        NoContext,
        at.timestamp() as u64,
        nanos - nanos % 1_000_000,
    ))
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn doc(
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

async fn insert_doc<E: Executor>(c: &mut E, p: DocumentInsertParams) -> DocumentRow {
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

fn chunk(i: i32, text: &str) -> ChunkInsert {
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

fn vector(seed: i32, dims: usize) -> Vec<f32> {
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

async fn vectors_of<E: Executor>(c: &mut E, ids: Option<Vec<Uuid>>) -> Vec<(i64, Uuid)> {
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

fn bits(v: &[f32]) -> Vec<u32> {
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

/// `chunk_replace`: every field round-trips, in chunk order; running it twice (a retried
/// stage) leaves the same rows; other generations are untouched.
pub async fn chunk_replace_is_idempotent<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let d = new_doc(&mut c, base_time()).await;
    // Given out of order: listed by chunk_index.
    let mut input = chunks(5, "g1");
    input.reverse();
    assert_eq!(replace(&mut c, d.id, 1, &input).await, 5);
    let first = list_chunks(&mut c, d.id, Some(1)).await;
    assert_eq!(first.len(), 5);
    for (i, r) in first.iter().enumerate() {
        let want = chunk(i as i32, &format!("g1 chunk {i} — é"));
        assert_eq!(
            (
                r.document_id,
                r.generation,
                r.chunk_index,
                r.text.as_str(),
                r.char_start,
                r.char_end,
                r.token_count,
                &r.heading_path,
                r.page,
                r.has_embedding
            ),
            (
                d.id,
                1,
                want.chunk_index,
                want.text.as_str(),
                want.char_start,
                want.char_end,
                want.token_count,
                &want.heading_path,
                want.page,
                false
            )
        );
    }

    assert_eq!(replace(&mut c, d.id, 1, &input).await, 5, "second run");
    let again = list_chunks(&mut c, d.id, Some(1)).await;
    let strip = |rows: &[ChunkRow]| -> Vec<ChunkRow> {
        rows.iter()
            .cloned()
            .map(|r| ChunkRow { id: 0, ..r })
            .collect()
    };
    assert_eq!(strip(&again), strip(&first), "same rows after a rerun");
    assert_eq!(
        c.chunk_count_embedded(GenerationKey::new(d.id, 1))
            .await
            .unwrap(),
        (0, 5)
    );

    // Another generation is separate.
    assert_eq!(replace(&mut c, d.id, 2, &chunks(2, "g2")).await, 2);
    assert_eq!(
        c.chunk_count_embedded(GenerationKey::new(d.id, 1))
            .await
            .unwrap(),
        (0, 5)
    );
    assert_eq!(
        c.chunk_count_embedded(GenerationKey::new(d.id, 2))
            .await
            .unwrap(),
        (0, 2)
    );

    // Fewer chunks replace more; none replace all.
    assert_eq!(replace(&mut c, d.id, 1, &chunks(3, "g1b")).await, 3);
    assert_eq!(
        texts(&list_chunks(&mut c, d.id, Some(1)).await),
        ["g1b chunk 0 — é", "g1b chunk 1 — é", "g1b chunk 2 — é"]
    );
    assert_eq!(replace(&mut c, d.id, 1, &[]).await, 0);
    assert!(list_chunks(&mut c, d.id, Some(1)).await.is_empty());

    // Nothing is active yet: the active generation's list is empty.
    assert!(list_chunks(&mut c, d.id, None).await.is_empty());

    // Paging.
    assert_eq!(replace(&mut c, d.id, 1, &chunks(5, "p")).await, 5);
    let page = c
        .chunk_list(ChunkListParams {
            document_id: d.id,
            generation: Some(1),
            limit: 2,
            offset: 2,
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.chunk_index).collect::<Vec<_>>(),
        [2, 3]
    );

    // A failed replace (a chunk index twice) changes nothing.
    let mut bad = chunks(2, "bad");
    bad.push(chunk(0, "dup"));
    assert!(
        c.chunk_replace(ChunkReplaceParams {
            document_id: d.id,
            generation: 1,
            chunks: &bad
        })
        .await
        .is_err()
    );
    assert_eq!(list_chunks(&mut c, d.id, Some(1)).await.len(), 5);
}

/// Embeddings are stored and read back bit for bit; unembedded chunks and counts follow.
pub async fn chunk_embeddings_round_trip<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let d = new_doc(&mut c, t0).await;
    replace(&mut c, d.id, 1, &chunks(4, "e")).await;
    let rows = list_chunks(&mut c, d.id, Some(1)).await;

    // Exotic values included: signed zero, subnormals, extremes, NaN with a payload.
    let exotic = vec![
        0.0f32,
        -0.0,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_1234),
        1.0 / 3.0,
        -123_456.79,
    ];
    let ordinary = vector(7, 384);
    let set = vec![(rows[0].id, exotic.clone()), (rows[2].id, ordinary.clone())];
    assert_eq!(c.chunk_set_embeddings(&set).await.unwrap(), 2);
    assert_eq!(c.chunk_set_embeddings(&[]).await.unwrap(), 0);
    assert_eq!(
        c.chunk_set_embeddings(&[(i64::MAX, vec![1.0])])
            .await
            .unwrap(),
        0,
        "unknown chunk ids are skipped"
    );
    assert_eq!(
        c.chunk_count_embedded(GenerationKey::new(d.id, 1))
            .await
            .unwrap(),
        (2, 4)
    );

    let unembedded = c
        .chunk_list_unembedded(ChunkListUnembeddedParams {
            document_id: d.id,
            generation: 1,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        unembedded.iter().map(|r| r.chunk_index).collect::<Vec<_>>(),
        [1, 3]
    );
    assert!(unembedded.iter().all(|r| !r.has_embedding));
    assert_eq!(
        c.chunk_list_unembedded(ChunkListUnembeddedParams {
            document_id: d.id,
            generation: 1,
            limit: 1
        })
        .await
        .unwrap()
        .len(),
        1
    );
    let listed = list_chunks(&mut c, d.id, Some(1)).await;
    assert_eq!(
        listed.iter().map(|r| r.has_embedding).collect::<Vec<_>>(),
        [true, false, true, false]
    );

    // The vectors come back only once the generation is active.
    assert!(vectors_of(&mut c, None).await.is_empty());
    assert!(
        c.document_activate(&activate(d.id, 1, 4, t0))
            .await
            .unwrap()
    );
    let page = c
        .chunk_vectors_page(&ChunkVectorPageParams {
            embedder_fingerprint: None,
            document_ids: None,
            after_id: 0,
            limit: 10,
            chunk_ids: None,
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!((page[0].id, page[0].document_id), (rows[0].id, d.id));
    assert_eq!(bits(&page[0].embedding), bits(&exotic), "exact f32 bits");
    assert_eq!(page[1].id, rows[2].id);
    assert_eq!(bits(&page[1].embedding), bits(&ordinary));

    // Overwriting a vector replaces it.
    let replaced = vector(99, 3);
    c.chunk_set_embeddings(&[(rows[0].id, replaced.clone())])
        .await
        .unwrap();
    let page = c
        .chunk_vectors_page(&ChunkVectorPageParams {
            embedder_fingerprint: None,
            document_ids: Some(vec![d.id]),
            after_id: 0,
            limit: 1,
            chunk_ids: None,
        })
        .await
        .unwrap();
    assert_eq!(bits(&page[0].embedding), bits(&replaced));

    // chunk_get_many: by id, skipping unknown ids.
    let got = c
        .chunk_get_many(&[rows[3].id, 0, rows[0].id, rows[3].id])
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|r| (r.id, r.has_embedding))
            .collect::<Vec<_>>(),
        [(rows[0].id, true), (rows[3].id, false)]
    );
    assert_eq!(got[1].text, rows[3].text);
    assert!(c.chunk_get_many(&[]).await.unwrap().is_empty());
}

/// `chunk_vectors_page`: embedded chunks of active generations only, by id, filtered by
/// document, paged by id.
pub async fn chunk_vectors_page_active_only<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let a = new_doc(&mut c, t0).await;
    let b = new_doc(&mut c, t0 + Duration::milliseconds(1)).await;
    let never = new_doc(&mut c, t0 + Duration::milliseconds(2)).await;
    for d in [&a, &b, &never] {
        replace(&mut c, d.id, 1, &chunks(3, "v")).await;
    }
    let va = embed_all(&mut c, a.id, 1).await;
    // b: only two of three chunks embedded.
    let b_rows = c
        .chunk_list_unembedded(ChunkListUnembeddedParams {
            document_id: b.id,
            generation: 1,
            limit: 2,
        })
        .await
        .unwrap();
    let vb: Vec<(i64, Vec<f32>)> = b_rows.iter().map(|r| (r.id, vector(1, 8))).collect();
    c.chunk_set_embeddings(&vb).await.unwrap();
    embed_all(&mut c, never.id, 1).await;
    assert!(
        c.document_activate(&activate(a.id, 1, 3, t0))
            .await
            .unwrap()
    );
    assert!(
        c.document_activate(&activate(b.id, 1, 3, t0))
            .await
            .unwrap()
    );
    // `never` is not activated; `a` gets chunks of a new generation (embedded, inactive).
    c.document_reprocess(&DocumentReprocessParams {
        id: a.id,
        now: Some(t0),
    })
    .await
    .unwrap()
    .expect("reprocess");
    replace(&mut c, a.id, 2, &chunks(2, "new")).await;
    embed_all(&mut c, a.id, 2).await;

    let mut want: Vec<(i64, Uuid)> = va.iter().map(|(id, _)| (*id, a.id)).collect();
    want.extend(vb.iter().map(|(id, _)| (*id, b.id)));
    want.sort();
    assert_eq!(vectors_of(&mut c, None).await, want);
    assert_eq!(
        vectors_of(&mut c, Some(vec![b.id])).await,
        want.iter()
            .copied()
            .filter(|w| w.1 == b.id)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        vectors_of(&mut c, Some(vec![b.id, a.id, never.id])).await,
        want
    );
    assert!(vectors_of(&mut c, Some(vec![never.id])).await.is_empty());
    assert!(vectors_of(&mut c, Some(vec![])).await.is_empty());

    // Paging by id.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = c
            .chunk_vectors_page(&ChunkVectorPageParams {
                embedder_fingerprint: None,
                document_ids: None,
                after_id: after,
                limit: 2,
                chunk_ids: None,
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().unwrap().id;
        seen.extend(page.into_iter().map(|v| (v.id, v.document_id)));
    }
    assert_eq!(seen, want);
}

/// `document_activate`: the new generation becomes visible and every other one goes, in one
/// call; inside a rolled-back transaction, nothing changes. A stale generation is refused.
pub async fn document_activate_swaps_generations<T: TestDb>(db: &T) {
    let t0 = base_time();
    let d = {
        let mut c = conn(db).await;
        let d = new_doc(&mut c, t0).await;
        replace(&mut c, d.id, 1, &chunks(3, "old")).await;
        embed_all(&mut c, d.id, 1).await;
        c.document_text_upsert(&DocumentText {
            document_id: d.id,
            generation: 1,
            format: "text".into(),
            text: "old".into(),
            sections: json!([]),
        })
        .await
        .unwrap();
        let mut p = activate(d.id, 1, 3, t0);
        p.status = DocumentStatus::Notifying;
        p.progress = 95;
        assert!(c.document_activate(&p).await.unwrap());
        let row = get_doc(&mut c, d.id).await;
        assert_eq!(
            (
                row.status,
                row.progress,
                row.active_generation,
                row.completed_at
            ),
            (DocumentStatus::Notifying, 95, Some(1), None),
            "activated, not completed"
        );
        assert_eq!(
            (row.chunk_count, row.token_count, row.embedder.as_deref()),
            (3, 30, Some("test-embedder"))
        );
        assert_eq!(row.timings, json!({"complete_ms": 7}));
        assert_eq!(texts(&list_chunks(&mut c, d.id, None).await).len(), 3);

        // Generation 2 is prepared.
        let r = c
            .document_reprocess(&DocumentReprocessParams {
                id: d.id,
                now: Some(t0),
            })
            .await
            .unwrap()
            .expect("reprocess");
        assert_eq!(r.generation, 2);
        replace(&mut c, d.id, 2, &chunks(2, "new")).await;
        embed_all(&mut c, d.id, 2).await;
        c.document_text_upsert(&DocumentText {
            document_id: d.id,
            generation: 2,
            format: "text".into(),
            text: "new".into(),
            sections: json!([]),
        })
        .await
        .unwrap();
        d
    };
    let old_texts = ["old chunk 0 — é", "old chunk 1 — é", "old chunk 2 — é"];

    // Activated inside a transaction that rolls back: nothing changed.
    {
        let mut tx = db.driver().begin().await.expect("begin");
        assert!(
            tx.document_activate(&activate(d.id, 2, 2, t0))
                .await
                .unwrap()
        );
        assert_eq!(
            texts(&list_chunks(&mut tx, d.id, None).await),
            ["new chunk 0 — é", "new chunk 1 — é"],
            "the transaction sees its swap"
        );
        tx.rollback().await.expect("rollback");
    }
    {
        let mut c = conn(db).await;
        let row = get_doc(&mut c, d.id).await;
        assert_eq!(row.active_generation, Some(1), "rolled back");
        assert_eq!(texts(&list_chunks(&mut c, d.id, None).await), old_texts);
        assert_eq!(
            c.chunk_count_embedded(GenerationKey::new(d.id, 1))
                .await
                .unwrap(),
            (3, 3)
        );
        assert_eq!(
            c.chunk_count_embedded(GenerationKey::new(d.id, 2))
                .await
                .unwrap(),
            (2, 2)
        );
        assert!(
            c.document_text_get(GenerationKey::new(d.id, 1))
                .await
                .unwrap()
                .is_some()
        );
    }

    // A stale or unknown activation changes nothing.
    {
        let mut c = conn(db).await;
        assert!(
            !c.document_activate(&activate(d.id, 1, 9, t0))
                .await
                .unwrap()
        );
        assert!(
            !c.document_activate(&activate(d.id, 3, 9, t0))
                .await
                .unwrap()
        );
        assert!(
            !c.document_activate(&activate(Uuid::now_v7(), 1, 9, t0))
                .await
                .unwrap()
        );
        let row = get_doc(&mut c, d.id).await;
        assert_eq!((row.active_generation, row.chunk_count), (Some(1), 3));
        assert_eq!(
            c.chunk_count_embedded(GenerationKey::new(d.id, 1))
                .await
                .unwrap(),
            (3, 3)
        );
    }

    // Committed in a transaction: the swap is whole.
    let t1 = t0 + Duration::seconds(30);
    {
        let mut tx = db.driver().begin().await.expect("begin");
        assert!(
            tx.document_activate(&activate(d.id, 2, 2, t1))
                .await
                .unwrap()
        );
        tx.commit().await.expect("commit");
    }
    let mut c = conn(db).await;
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(
        (
            row.status,
            row.progress,
            row.generation,
            row.active_generation,
            row.chunk_count,
            row.token_count,
            row.completed_at,
        ),
        (DocumentStatus::Completed, 100, 2, Some(2), 2, 20, Some(t1))
    );
    assert_eq!(
        texts(&list_chunks(&mut c, d.id, None).await),
        ["new chunk 0 — é", "new chunk 1 — é"]
    );
    assert_eq!(
        c.chunk_count_embedded(GenerationKey::new(d.id, 1))
            .await
            .unwrap(),
        (0, 0),
        "old chunks gone"
    );
    assert!(
        c.document_text_get(GenerationKey::new(d.id, 1))
            .await
            .unwrap()
            .is_none(),
        "old text gone"
    );
    assert!(
        c.document_text_get(GenerationKey::new(d.id, 2))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(vectors_of(&mut c, None).await.len(), 2);

    // Activating again (a retried stage) is harmless.
    assert!(
        c.document_activate(&activate(d.id, 2, 2, t1))
            .await
            .unwrap()
    );
    assert_eq!(list_chunks(&mut c, d.id, None).await.len(), 2);
}

/// `document_reprocess`: a new generation, queued from scratch; the active generation stays
/// searchable until the new one is activated.
pub async fn document_reprocess_keeps_old_chunks<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let d = new_doc(&mut c, t0).await;
    replace(&mut c, d.id, 1, &chunks(2, "one")).await;
    embed_all(&mut c, d.id, 1).await;
    let mut p = stage(d.id, 1, DocumentStatus::Embedding, "embed", 80, t0);
    p.timing = Some(("parse_ms".into(), 3));
    c.document_set_stage(&p).await.unwrap();
    assert!(
        c.document_activate(&activate(d.id, 1, 2, t0))
            .await
            .unwrap()
    );
    let before = vectors_of(&mut c, None).await;
    assert_eq!(before.len(), 2);

    let t1 = t0 + Duration::seconds(60);
    let row = c
        .document_reprocess(&DocumentReprocessParams {
            id: d.id,
            now: Some(t1),
        })
        .await
        .unwrap()
        .expect("reprocess");
    assert_eq!(
        row,
        get_doc(&mut c, d.id).await,
        "the returned row is the stored one"
    );
    assert_eq!(
        (
            row.generation,
            row.active_generation,
            row.status,
            row.progress,
            row.stage.clone(),
            row.error.clone(),
            row.error_stage.clone(),
            row.completed_at,
            row.updated_at,
        ),
        (
            2,
            Some(1),
            DocumentStatus::Queued,
            0,
            None,
            None,
            None,
            None,
            t1
        )
    );
    assert_eq!(row.timings, json!({}));
    assert_eq!(
        (row.chunk_count, row.embedder.as_deref()),
        (2, Some("test-embedder"))
    );
    assert_eq!(row.created_at, t0);

    // The old generation stays searchable while the new one is built.
    replace(&mut c, d.id, 2, &chunks(3, "two")).await;
    embed_all(&mut c, d.id, 2).await;
    assert_eq!(vectors_of(&mut c, None).await, before);
    assert_eq!(
        texts(&list_chunks(&mut c, d.id, None).await),
        ["one chunk 0 — é", "one chunk 1 — é"]
    );
    // Stages of the old generation are refused.
    assert!(
        !c.document_set_stage(&stage(d.id, 1, DocumentStatus::Parsing, "parse", 1, t1))
            .await
            .unwrap()
    );

    // Reprocessed again before finishing: the unfinished generation's chunks go, the active
    // one's stay.
    let row = c
        .document_reprocess(&DocumentReprocessParams {
            id: d.id,
            now: Some(t1),
        })
        .await
        .unwrap()
        .expect("reprocess");
    assert_eq!(row.generation, 3);
    assert_eq!(
        c.chunk_count_embedded(GenerationKey::new(d.id, 2))
            .await
            .unwrap(),
        (0, 0)
    );
    assert_eq!(vectors_of(&mut c, None).await, before);

    replace(&mut c, d.id, 3, &chunks(1, "three")).await;
    embed_all(&mut c, d.id, 3).await;
    assert!(
        c.document_activate(&activate(d.id, 3, 1, t1))
            .await
            .unwrap()
    );
    let after = vectors_of(&mut c, None).await;
    assert_eq!(after.len(), 1);
    assert!(after[0].0 > before[1].0, "new chunk ids");
    assert_eq!(
        texts(&list_chunks(&mut c, d.id, None).await),
        ["three chunk 0 — é"]
    );

    assert!(
        c.document_reprocess(&DocumentReprocessParams {
            id: Uuid::now_v7(),
            now: None,
        })
        .await
        .unwrap()
        .is_none()
    );
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
        c.document_text_upsert(&DocumentText {
            document_id: x.id,
            generation: 1,
            format: "text".into(),
            text: "x".into(),
            sections: json!([]),
        })
        .await
        .unwrap();
        assert!(
            c.document_activate(&activate(x.id, 1, 2, t0))
                .await
                .unwrap()
        );
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

/// `document_list_stuck`: unfinished documents unchanged since the cut-off with no live job
/// keyed `document:<id>:…`, oldest first.
pub async fn document_stuck_detection<T: TestDb>(db: &T) {
    let mut c: Conn<T> = conn(db).await;
    let t0 = base_time();
    let old = t0 - Duration::hours(1);
    let at = |ms| old + Duration::milliseconds(ms);
    let idle = new_doc(&mut c, at(0)).await; // no job at all
    let live = new_doc(&mut c, at(1)).await; // a queued parse job
    let finished = new_doc(&mut c, at(2)).await; // its job finished
    let done = new_doc(&mut c, at(3)).await; // completed
    let broken = new_doc(&mut c, at(4)).await; // failed
    let fresh = new_doc(&mut c, t0).await; // updated recently
    let other_key = new_doc(&mut c, at(5)).await; // a live job of another key shape
    let running = new_doc(&mut c, at(6)).await; // a running embed job
    // `idle` moved to a stage, later than `live` was created: ordering by updated_at.
    assert!(
        c.document_set_stage(&stage(
            idle.id,
            1,
            DocumentStatus::Parsing,
            "parse",
            5,
            at(10)
        ))
        .await
        .unwrap()
    );

    let key = |id: Uuid, stage: &str| format!("document:{id}:{stage}");
    add(
        &mut c,
        keyed(job("parse", "docs", old), &key(live.id, "parse")),
    )
    .await;
    add(
        &mut c,
        keyed(job("parse", "docs-done", old), &key(finished.id, "parse")),
    )
    .await;
    finish(&mut c, "docs-done", t0, CompletionOutcome::Completed).await;
    add(
        &mut c,
        keyed(
            job("parse", "docs-other", old),
            &format!("doc:{}", other_key.id),
        ),
    )
    .await;
    add(
        &mut c,
        keyed(job("embed", "docs-run", old), &key(running.id, "embed")),
    )
    .await;
    let claimed = super::claim(&mut c, "docs-run", "w", 1, t0).await;
    assert_eq!(claimed.len(), 1);
    assert!(
        c.document_set_stage(&stage(
            done.id,
            1,
            DocumentStatus::Completed,
            "notify",
            100,
            at(3)
        ))
        .await
        .unwrap()
    );
    assert!(
        c.document_fail(&DocumentFailParams {
            id: broken.id,
            generation: 1,
            stage: "parse".into(),
            error: "x".into(),
            now: Some(at(4)),
        })
        .await
        .unwrap()
    );

    let stuck = |limit| StuckDocumentsParams {
        updated_before: t0 - Duration::minutes(5),
        limit,
    };
    let ids = |rows: Vec<DocumentRow>| rows.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(
        ids(c.document_list_stuck(&stuck(100)).await.unwrap()),
        [finished.id, other_key.id, idle.id],
        "oldest first; live jobs, finished documents and recent ones excluded"
    );
    assert_eq!(
        ids(c.document_list_stuck(&stuck(1)).await.unwrap()),
        [finished.id]
    );

    // Once the live job fails for good, its document is stuck too.
    finish(&mut c, "docs", t0, failed("gave up")).await;
    assert_eq!(
        ids(c.document_list_stuck(&stuck(100)).await.unwrap()),
        [live.id, finished.id, other_key.id, idle.id]
    );
    assert!(fresh.updated_at > t0 - Duration::minutes(5));
}

/// Out-of-range values are refused before they reach storage.
pub async fn document_validation<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let d = new_doc(&mut c, t0).await;
    let invalid = |r: Result<bool, Error>, what: &str| {
        assert!(matches!(r, Err(Error::Invalid(_))), "{what}: {r:?}");
    };
    for progress in [-1, 101] {
        invalid(
            c.document_set_stage(&stage(
                d.id,
                1,
                DocumentStatus::Parsing,
                "parse",
                progress,
                t0,
            ))
            .await,
            "stage progress",
        );
        invalid(
            c.document_set_progress(&DocumentProgressParams {
                generation_embedder: None,
                id: d.id,
                generation: 1,
                progress,
                now: None,
            })
            .await,
            "progress",
        );
        let mut p = activate(d.id, 1, 0, t0);
        p.progress = progress;
        invalid(c.document_activate(&p).await, "activate progress");
    }
    let row = get_doc(&mut c, d.id).await;
    assert_eq!((row.status, row.progress), (DocumentStatus::Queued, 0));

    let bad_insert = |f: fn(&mut DocumentInsertParams)| {
        let mut p = doc(Uuid::now_v7(), DocumentSource::Url, sha(9), t0);
        f(&mut p);
        p
    };
    for (what, p) in [
        ("short sha256", bad_insert(|p| p.sha256 = "abc".into())),
        (
            "upper-case sha256",
            bad_insert(|p| p.sha256 = "AB".repeat(32)),
        ),
        (
            "metadata not an object",
            bad_insert(|p| p.metadata = json!([1])),
        ),
        ("negative size", bad_insert(|p| p.size_bytes = -1)),
        ("priority", bad_insert(|p| p.priority = 11)),
        ("empty storage key", bad_insert(|p| p.storage_key.clear())),
    ] {
        let r = c.document_insert(&p).await;
        assert!(matches!(r, Err(Error::Invalid(_))), "{what}: {r:?}");
    }
    let r = c
        .document_list(&DocumentListParams {
            limit: -1,
            ..Default::default()
        })
        .await;
    assert!(matches!(r, Err(Error::Invalid(_))), "negative limit: {r:?}");
    let r = c
        .document_text_upsert(&DocumentText {
            document_id: d.id,
            generation: 1,
            format: "text".into(),
            text: String::new(),
            sections: json!({}),
        })
        .await;
    assert!(
        matches!(r, Err(Error::Invalid(_))),
        "sections not an array: {r:?}"
    );
    let mut bad = chunk(0, "x");
    bad.char_end = -1;
    let r = c
        .chunk_replace(ChunkReplaceParams {
            document_id: d.id,
            generation: 1,
            chunks: &[bad],
        })
        .await;
    assert!(matches!(r, Err(Error::Invalid(_))), "char range: {r:?}");
    let r = c
        .chunk_list(ChunkListParams {
            document_id: d.id,
            generation: Some(1),
            limit: -1,
            offset: 0,
        })
        .await;
    assert!(
        matches!(r, Err(Error::Invalid(_))),
        "chunk_list limit: {r:?}"
    );
}

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
    assert!(
        c.document_activate(&activate(a.id, 1, 2, t0))
            .await
            .unwrap()
    );
    assert!(
        c.document_activate(&activate(b.id, 1, 3, t0))
            .await
            .unwrap()
    );

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
