//! Documents that stall and input the store refuses: stuck-document detection and validation.

use chrono::Duration;
use docket_core::{
    ChunkListParams, ChunkReplaceParams, CompletionOutcome, DocumentFailParams,
    DocumentInsertParams, DocumentListParams, DocumentProgressParams, DocumentRow, DocumentSource,
    DocumentStatus, DocumentStore, DocumentText, Error, StuckDocumentsParams,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::TestDb;

use super::documents::*;
use super::*;

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
