//! Which embedder made each document's vectors: search scoped to one embedder, the count of
//! documents by embedder, adopting unfingerprinted rows, and starting re-embedding.

use chrono::Duration;
use docket_core::{
    ChunkSearchParams, ChunkVectorPageParams, DocumentProgressParams, DocumentReembedParams,
    DocumentReprocessParams, DocumentRow, DocumentStatus, DocumentStore, DocumentText,
    EmbedderAdoptParams, EmbedderCount, Executor, GenerationKey,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::TestDb;

use super::documents::{
    activate, chunks, embed_all, get_doc, list_chunks, new_doc, replace, texts,
};
use super::{base_time, conn};

/// A completed document of `n` embedded chunks whose vectors `embedder` made (fingerprint
/// `fingerprint`), chunked by `chunker`, with its parsed text.
pub(crate) async fn searchable<E: Executor>(
    c: &mut E,
    at: chrono::DateTime<chrono::Utc>,
    n: i32,
    embedder: &str,
    fingerprint: Option<&str>,
    chunker: Option<&str>,
) -> DocumentRow {
    let d = new_doc(c, at).await;
    replace(c, d.id, 1, &chunks(n, embedder)).await;
    embed_all(c, d.id, 1).await;
    c.document_text_upsert(&DocumentText {
        document_id: d.id,
        generation: 1,
        format: "markdown".into(),
        text: format!("# {embedder}\n\nthe text of {}", d.id),
        sections: json!([{"heading": embedder}]),
    })
    .await
    .expect("document_text_upsert");
    let mut p = activate(d.id, 1, n, at);
    p.embedder = Some(embedder.to_owned());
    p.embedder_fingerprint = fingerprint.map(str::to_owned);
    p.chunker_fingerprint = chunker.map(str::to_owned);
    assert!(c.document_activate(&p).await.expect("document_activate"));
    get_doc(c, d.id).await
}

async fn vector_docs<E: Executor>(c: &mut E, fingerprint: Option<&str>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = c
        .chunk_vectors_page(&ChunkVectorPageParams {
            document_ids: None,
            embedder_fingerprint: fingerprint.map(str::to_owned),
            after_id: 0,
            limit: 1000,
            chunk_ids: None,
        })
        .await
        .expect("chunk_vectors_page")
        .into_iter()
        .map(|v| v.document_id)
        .collect();
    ids.dedup();
    ids
}

fn count(embedder: &str, fingerprint: Option<&str>, finished: bool, n: i64) -> EmbedderCount {
    EmbedderCount {
        embedder: Some(embedder.to_owned()),
        embedder_fingerprint: fingerprint.map(str::to_owned),
        finished,
        documents: n,
    }
}

fn sorted(mut counts: Vec<EmbedderCount>) -> Vec<EmbedderCount> {
    counts.sort_by(|a, b| {
        (&a.embedder_fingerprint, &a.embedder, a.finished).cmp(&(
            &b.embedder_fingerprint,
            &b.embedder,
            b.finished,
        ))
    });
    counts
}

/// Activation records the embedder's and the chunker's fingerprints; the vector page and the
/// database's own search (where it has one) return only the vectors of the fingerprint asked
/// for (every one when none is); `document_embedders` counts searchable documents by
/// embedder and by whether they finished; `document_embedder_adopt` gives fingerprintless
/// documents of a name that name's fingerprint, and no others.
pub async fn embedder_fingerprints_scope_vectors<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let a = searchable(&mut c, t0, 2, "model-a", Some("fp-a"), Some("ch-1")).await;
    let b = searchable(
        &mut c,
        t0 + Duration::seconds(1),
        3,
        "model-b",
        Some("fp-b"),
        None,
    )
    .await;
    let old = searchable(&mut c, t0 + Duration::seconds(2), 1, "model-a", None, None).await;
    let other = searchable(&mut c, t0 + Duration::seconds(3), 1, "model-c", None, None).await;
    let _never = new_doc(&mut c, t0 + Duration::seconds(4)).await;
    assert_eq!(
        (
            a.embedder_fingerprint.as_deref(),
            a.chunker_fingerprint.as_deref(),
            b.chunker_fingerprint.as_deref()
        ),
        (Some("fp-a"), Some("ch-1"), None)
    );

    assert_eq!(vector_docs(&mut c, Some("fp-a")).await, vec![a.id]);
    assert_eq!(vector_docs(&mut c, Some("fp-b")).await, vec![b.id]);
    assert_eq!(
        vector_docs(&mut c, Some("fp-none")).await,
        Vec::<Uuid>::new()
    );
    assert_eq!(
        vector_docs(&mut c, None).await,
        vec![a.id, b.id, old.id, other.id]
    );
    if c.vector_search_available().await.unwrap() {
        let query: Vec<f32> = (0..8).map(|d| 0.1 + d as f32 * 0.01).collect();
        let found = |fp: Option<&str>| ChunkSearchParams {
            query: query.clone(),
            k: 10,
            document_ids: None,
            embedder_fingerprint: fp.map(str::to_owned),
        };
        let mut ids: Vec<Uuid> = c
            .chunk_search(&found(Some("fp-b")))
            .await
            .unwrap()
            .expect("searches")
            .into_iter()
            .map(|h| h.document_id)
            .collect();
        ids.dedup();
        assert_eq!(ids, vec![b.id]);
        let all = c
            .chunk_search(&found(None))
            .await
            .unwrap()
            .expect("searches");
        assert_eq!(all.len(), 7);
    }

    assert_eq!(
        sorted(c.document_embedders().await.unwrap()),
        sorted(vec![
            count("model-a", Some("fp-a"), true, 1),
            count("model-b", Some("fp-b"), true, 1),
            count("model-a", None, true, 1),
            count("model-c", None, true, 1),
        ]),
        "documents never activated are not searchable and not counted"
    );

    let adopted = c
        .document_embedder_adopt(&EmbedderAdoptParams {
            embedder: "model-a".into(),
            embedder_fingerprint: "fp-a".into(),
        })
        .await
        .unwrap();
    assert_eq!(adopted, 1, "only the fingerprintless document of that name");
    assert_eq!(vector_docs(&mut c, Some("fp-a")).await, vec![a.id, old.id]);
    assert_eq!(
        get_doc(&mut c, other.id).await.embedder_fingerprint,
        None,
        "another name keeps none"
    );
    assert_eq!(
        c.document_embedder_adopt(&EmbedderAdoptParams {
            embedder: "model-a".into(),
            embedder_fingerprint: "fp-z".into(),
        })
        .await
        .unwrap(),
        0,
        "a recorded fingerprint is never replaced"
    );

    // Being processed again: counted as not finished until it completes.
    c.document_reprocess(&DocumentReprocessParams {
        id: b.id,
        now: None,
    })
    .await
    .unwrap()
    .expect("reprocess");
    assert!(c.document_embedders().await.unwrap().contains(&count(
        "model-b",
        Some("fp-b"),
        false,
        1
    )));
}

/// `generation_embedder`: a progress write records it when given and keeps it otherwise; a
/// new generation starts without one.
pub async fn generation_embedder_is_recorded<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let d = new_doc(&mut c, t0).await;
    assert_eq!(d.generation_embedder, None);
    let progress = |p: i16, fp: Option<&str>| DocumentProgressParams {
        id: d.id,
        generation: 1,
        progress: p,
        generation_embedder: fp.map(str::to_owned),
        now: None,
    };
    assert!(
        c.document_set_progress(&progress(30, Some("fp-1")))
            .await
            .unwrap()
    );
    assert_eq!(
        get_doc(&mut c, d.id).await.generation_embedder.as_deref(),
        Some("fp-1")
    );
    assert!(c.document_set_progress(&progress(40, None)).await.unwrap());
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(
        (row.progress, row.generation_embedder.as_deref()),
        (40, Some("fp-1"))
    );
    assert!(
        c.document_set_progress(&progress(10, Some("fp-2")))
            .await
            .unwrap()
    );
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(
        (row.progress, row.generation_embedder.as_deref()),
        (40, Some("fp-2")),
        "progress never falls; the embedder is recorded anyway"
    );
    let again = c
        .document_reprocess(&DocumentReprocessParams {
            id: d.id,
            now: None,
        })
        .await
        .unwrap()
        .expect("reprocess");
    assert_eq!((again.generation, again.generation_embedder), (2, None));
}

/// `document_reembed`: finished documents whose active vectors another embedder made (or
/// none recorded) get a new generation with a copy of the active text, and of the active
/// chunks (without vectors) when the chunker matches (`embedding`) or none (`chunking`);
/// oldest first, within `limit`, after the cursor; the active generation stays as it was;
/// current, unfinished and never-activated documents are left alone; an unfinished earlier
/// generation's rows go.
pub async fn document_reembed_starts_generations<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let same = searchable(&mut c, t0, 3, "old", Some("fp-old"), Some("ch-now")).await;
    let rechunk = searchable(
        &mut c,
        t0 + Duration::seconds(1),
        2,
        "old",
        Some("fp-old"),
        Some("ch-then"),
    )
    .await;
    let legacy = searchable(&mut c, t0 + Duration::seconds(2), 1, "old", None, None).await;
    let current = searchable(
        &mut c,
        t0 + Duration::seconds(3),
        2,
        "new",
        Some("fp-new"),
        Some("ch-now"),
    )
    .await;
    let busy = searchable(
        &mut c,
        t0 + Duration::seconds(4),
        1,
        "old",
        Some("fp-old"),
        Some("ch-now"),
    )
    .await;
    c.document_reprocess(&DocumentReprocessParams {
        id: busy.id,
        now: None,
    })
    .await
    .unwrap()
    .expect("reprocess");
    let _never = new_doc(&mut c, t0 + Duration::seconds(5)).await;
    // `same` has the rows of an unfinished earlier generation 2 (a reprocess that failed).
    c.document_reprocess(&DocumentReprocessParams {
        id: same.id,
        now: None,
    })
    .await
    .unwrap()
    .expect("reprocess");
    replace(&mut c, same.id, 2, &chunks(5, "abandoned")).await;
    c.document_fail(&docket_core::DocumentFailParams {
        id: same.id,
        generation: 2,
        stage: "chunk".into(),
        error: "boom".into(),
        now: None,
    })
    .await
    .unwrap();

    let reembed = |limit: i64, after: Option<Uuid>| DocumentReembedParams {
        embedder_fingerprint: "fp-new".into(),
        chunker_fingerprint: "ch-now".into(),
        limit,
        after,
        now: None,
    };
    let first = c.document_reembed(&reembed(1, None)).await.unwrap();
    assert_eq!(
        first.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![same.id]
    );
    assert_eq!(
        first[0],
        get_doc(&mut c, same.id).await,
        "the stored rows are returned"
    );
    let rest = c
        .document_reembed(&reembed(10, Some(same.id)))
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![rechunk.id, legacy.id]
    );
    assert!(
        c.document_reembed(&reembed(10, None))
            .await
            .unwrap()
            .is_empty(),
        "started documents are no longer finished"
    );

    // Chunks made by the running chunker are copied without vectors.
    let s = &first[0];
    assert_eq!(
        (
            s.generation,
            s.active_generation,
            s.status,
            s.stage.as_deref(),
            s.progress,
            s.error.as_deref(),
            s.completed_at,
            s.generation_embedder.as_deref(),
            s.embedder_fingerprint.as_deref(),
        ),
        (
            3,
            Some(1),
            DocumentStatus::Embedding,
            Some("embed"),
            30,
            None,
            None,
            None,
            Some("fp-old"),
        )
    );
    let active = list_chunks(&mut c, same.id, Some(1)).await;
    let copied = list_chunks(&mut c, same.id, Some(3)).await;
    assert_eq!(texts(&copied), texts(&active));
    for (a, b) in active.iter().zip(&copied) {
        assert_eq!(
            (
                a.chunk_index,
                a.char_start,
                a.char_end,
                a.token_count,
                &a.heading_path,
                a.page
            ),
            (
                b.chunk_index,
                b.char_start,
                b.char_end,
                b.token_count,
                &b.heading_path,
                b.page
            )
        );
        assert!(a.has_embedding && !b.has_embedding);
    }
    assert!(
        list_chunks(&mut c, same.id, Some(2)).await.is_empty(),
        "the abandoned generation's chunks went"
    );
    assert_eq!(
        c.chunk_count_embedded(GenerationKey::new(same.id, 3))
            .await
            .unwrap(),
        (0, 3)
    );
    let text = |g| GenerationKey::new(same.id, g);
    let old_text = c
        .document_text_get(text(1))
        .await
        .unwrap()
        .expect("active text");
    let new_text = c
        .document_text_get(text(3))
        .await
        .unwrap()
        .expect("copied text");
    assert_eq!(
        (
            &new_text.format,
            &new_text.text,
            &new_text.sections,
            new_text.generation
        ),
        (&old_text.format, &old_text.text, &old_text.sections, 3)
    );

    // Another chunker (or none recorded): chunked again from the copied text.
    for d in &rest {
        assert_eq!(
            (d.generation, d.status, d.stage.as_deref(), d.progress),
            (2, DocumentStatus::Chunking, Some("chunk"), 20)
        );
        assert!(list_chunks(&mut c, d.id, Some(2)).await.is_empty());
        assert!(
            c.document_text_get(GenerationKey::new(d.id, 2))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            list_chunks(&mut c, d.id, None).await.len() as i32,
            d.chunk_count
        );
    }

    // The others are as they were.
    let cur = get_doc(&mut c, current.id).await;
    assert_eq!((cur.generation, cur.status), (1, DocumentStatus::Completed));
    let b = get_doc(&mut c, busy.id).await;
    assert_eq!((b.generation, b.status), (2, DocumentStatus::Queued));
    // Searchable as before until activated.
    assert_eq!(
        vector_docs(&mut c, Some("fp-old")).await,
        vec![same.id, rechunk.id, busy.id]
    );

    assert!(matches!(
        c.document_reembed(&reembed(-1, None)).await,
        Err(docket_core::Error::Invalid(_))
    ));
}
