//! Chunks: replacing a generation's chunks, their vectors, and the page of active vectors a
//! scan or an index build reads.

use chrono::Duration;
use docket_core::{
    ChunkListParams, ChunkListUnembeddedParams, ChunkReplaceParams, ChunkRow,
    ChunkVectorPageParams, DocumentReprocessParams, DocumentStore, GenerationKey,
};
use uuid::Uuid;

use crate::harness::TestDb;

use super::documents::*;
use super::*;

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
    activated(&mut c, d.id, 1, 4, t0).await;
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
    activated(&mut c, a.id, 1, 3, t0).await;
    activated(&mut c, b.id, 1, 3, t0).await;
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
