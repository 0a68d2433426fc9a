//! Cancelled documents: they stay cancelled until reprocessed.

use chrono::Duration;
use docket_core::{
    DocumentCancelParams, DocumentFailParams, DocumentProgressParams, DocumentReprocessParams,
    DocumentStatus, DocumentStore, StuckDocumentsParams,
};

use crate::harness::TestDb;

use super::documents::{activate, get_doc, new_doc, stage};
use super::{base_time, conn};

/// A cancelled document keeps its reason; no stage write moves it (stage, progress, failure,
/// activation), the stuck-document sweep never lists it, finished documents cannot be
/// cancelled, and a reprocess starts it again.
pub async fn document_cancel_sticks<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let old = t0 - Duration::hours(1);
    let d = new_doc(&mut c, old).await;
    let done = new_doc(&mut c, old + Duration::seconds(1)).await;
    assert!(
        c.document_set_stage(&stage(
            done.id,
            1,
            DocumentStatus::Completed,
            "notify",
            100,
            old
        ))
        .await
        .expect("set_stage")
    );
    assert!(
        c.document_set_stage(&stage(d.id, 1, DocumentStatus::Chunking, "chunk", 20, old))
            .await
            .expect("set_stage")
    );

    let cancel = |ids| DocumentCancelParams {
        ids,
        reason: "cancelled by key:ops".into(),
        now: Some(old),
    };
    let got = c
        .document_cancel(&cancel(vec![d.id, done.id]))
        .await
        .expect("document_cancel");
    assert_eq!(got, vec![d.id], "a completed document is not cancelled");
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(row.status, DocumentStatus::Cancelled);
    assert_eq!(row.error.as_deref(), Some("cancelled by key:ops"));
    assert_eq!(row.error_stage.as_deref(), Some("chunk"), "where it stood");
    assert!(row.status.is_terminal());
    assert_eq!(
        get_doc(&mut c, done.id).await.status,
        DocumentStatus::Completed
    );
    assert!(
        c.document_cancel(&cancel(vec![d.id]))
            .await
            .expect("document_cancel")
            .is_empty(),
        "cancelled twice"
    );

    // No stage write of the cancelled run moves it.
    assert!(
        !c.document_set_stage(&stage(d.id, 1, DocumentStatus::Embedding, "embed", 30, t0))
            .await
            .expect("set_stage")
    );
    assert!(
        !c.document_set_progress(&DocumentProgressParams {
            generation_embedder: None,
            id: d.id,
            generation: 1,
            progress: 50,
            now: Some(t0),
        })
        .await
        .expect("set_progress")
    );
    assert!(
        !c.document_fail(&DocumentFailParams {
            id: d.id,
            generation: 1,
            stage: "embed".into(),
            error: "late".into(),
            now: Some(t0),
        })
        .await
        .expect("fail")
    );
    assert!(
        !c.document_activate(&activate(d.id, 1, 3, t0))
            .await
            .expect("activate")
    );
    let row = get_doc(&mut c, d.id).await;
    assert_eq!(
        (row.status, row.progress, row.active_generation),
        (DocumentStatus::Cancelled, 20, None)
    );

    // The sweep never revives it: it has no live job and has not changed for an hour.
    let stuck = c
        .document_list_stuck(&StuckDocumentsParams {
            updated_before: t0 - Duration::minutes(5),
            limit: 100,
        })
        .await
        .expect("list_stuck");
    assert!(
        stuck.iter().all(|s| s.id != d.id),
        "a cancelled document is not stuck: {stuck:?}"
    );

    // A reprocess starts it again.
    let again = c
        .document_reprocess(&DocumentReprocessParams {
            id: d.id,
            now: Some(t0),
        })
        .await
        .expect("reprocess")
        .expect("the document exists");
    assert_eq!(
        (again.status, again.generation, again.error),
        (DocumentStatus::Queued, 2, None)
    );
    assert!(
        c.document_set_stage(&stage(d.id, 2, DocumentStatus::Parsing, "parse", 5, t0))
            .await
            .expect("set_stage")
    );
}
