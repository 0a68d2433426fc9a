//! Generations: activating a new generation swaps what search sees; reprocessing keeps the
//! old chunks until the new ones are active.

use chrono::Duration;
use docket_core::{
    DocumentReprocessParams, DocumentStatus, DocumentStore, GenerationKey, QueueDriver, Transaction,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::TestDb;

use super::documents::*;
use super::*;

/// `document_activate`: the new generation becomes visible and every other one goes, in one
/// call; inside a rolled-back transaction, nothing changes. A stale generation is refused.
pub async fn document_activate_swaps_generations<T: TestDb>(db: &T) {
    let t0 = base_time();
    let d = {
        let mut c = conn(db).await;
        let d = new_doc(&mut c, t0).await;
        replace(&mut c, d.id, 1, &chunks(3, "old")).await;
        embed_all(&mut c, d.id, 1).await;
        store_text(&mut c, d.id, 1, "old").await;
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
        store_text(&mut c, d.id, 2, "new").await;
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
    activated(&mut c, d.id, 2, 2, t1).await;
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
    activated(&mut c, d.id, 1, 2, t0).await;
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
    activated(&mut c, d.id, 3, 1, t1).await;
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
