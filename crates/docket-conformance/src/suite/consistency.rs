//! The consistency report the drills check: every count on a database built to break some
//! invariants and keep others.

use chrono::Duration;
use docket_core::{ConsistencyReport, MonitorStore};

use crate::harness::TestDb;

use super::documents::{activated, chunks, embed_all, new_doc, replace};
use super::{base_time, conn};

/// A consistent database reports no violation; a completed document whose chunk count is
/// wrong, and active chunks without vectors, are counted as such.
pub async fn consistency_report_counts_what_breaks<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    assert_eq!(
        c.consistency_report().await.unwrap(),
        ConsistencyReport::default(),
        "an empty database"
    );
    let t0 = base_time();
    // Whole: three chunks, embedded, activated as three.
    let whole = new_doc(&mut c, t0).await;
    replace(&mut c, whole.id, 1, &chunks(3, "whole")).await;
    embed_all(&mut c, whole.id, 1).await;
    activated(&mut c, whole.id, 1, 3, t0).await;
    let r = c.consistency_report().await.unwrap();
    assert_eq!(
        (r.documents_completed, r.chunks, r.violations()),
        (1, 3, 0),
        "{r:?}"
    );
    // Broken: two chunks, not embedded, activated as claiming five.
    let broken = new_doc(&mut c, t0 + Duration::milliseconds(1)).await;
    replace(&mut c, broken.id, 1, &chunks(2, "broken")).await;
    activated(&mut c, broken.id, 1, 5, t0).await;
    let r = c.consistency_report().await.unwrap();
    assert_eq!(r.documents_completed, 2, "{r:?}");
    assert_eq!(r.chunks, 5, "{r:?}");
    assert_eq!(r.chunk_count_mismatches, 1, "{r:?}");
    assert_eq!(r.chunks_without_vector, 2, "{r:?}");
    assert_eq!(r.violations(), 3, "{r:?}");
    assert_eq!(
        (
            r.duplicate_chunks,
            r.jobs_completed_twice,
            r.attempts_unrecorded
        ),
        (0, 0, 0)
    );
}
