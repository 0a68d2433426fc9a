//! Analytics on both backends: a pass rolls each ended hour's attempts into rollup rows and
//! failure reasons (one reason for one failure whatever its ids and numbers), which stay once
//! the cleaner has deleted the jobs; the next pass starts where the last stopped.

use chrono::{Duration, DurationRound, Utc};
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::*;
use docket_pipeline::analytics::{AnalyticsConfig, rollup_once};

#[both_backends]
async fn hours_roll_up_and_outlive_the_job_rows(db: impl TestDb) {
    let d = db.driver();
    let now = Utc::now();
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap();
    let two_ago = this_hour - Duration::hours(2);
    let mut c = d.conn().await.unwrap();
    // Two hours ago: 3 parse jobs, one completes, two fail with messages that differ only in
    // their numbers.
    let jobs = (0..3)
        .map(|_| {
            let mut j = JobInsertParams::new("docket.parse", serde_json::json!({}));
            j.run_at = Some(two_ago);
            j.max_attempts = 1;
            j
        })
        .collect();
    let ids: Vec<i64> = c
        .job_insert_many(JobInsertManyParams { jobs })
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let claimed = c
        .job_get_available(JobGetAvailableParams {
            worker_id: "w".into(),
            queue: "default".into(),
            limit: 3,
            now: Some(two_ago + Duration::minutes(1)),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let started = two_ago + Duration::minutes(1);
    let completions = claimed
        .iter()
        .enumerate()
        .map(|(i, j)| JobCompletion {
            id: j.id,
            claim_token: j.claim_token.unwrap(),
            attempt: 1,
            worker_id: "w".into(),
            started_at: started,
            finished_at: started + Duration::milliseconds(200 * (i as i64 + 1)),
            outcome: if i == 0 {
                CompletionOutcome::Completed
            } else {
                CompletionOutcome::Failed {
                    error: format!("page {} of /tmp/upload-{}.pdf is encrypted", i * 7, j.id),
                }
            },
        })
        .collect();
    c.job_complete_many(JobCompleteManyParams { completions })
        .await
        .unwrap();
    drop(c);

    let config = AnalyticsConfig::default();
    let r = rollup_once(d, &config, now).await.unwrap();
    assert!(
        r.hours >= 2,
        "from 24 hours back to the last ended hour: {r:?}"
    );
    assert_eq!(r.rolled_until, Some(this_hour));
    assert_eq!(r.rows, 2, "completed and failed: {r:?}");
    assert_eq!(r.reasons, 1, "one failure, twice: {r:?}");

    // The cleaner deletes the jobs; the analytics stay.
    let mut c = d.conn().await.unwrap();
    let deleted = c
        .job_delete_finished(JobDeleteFinishedParams {
            completed_before: now + Duration::hours(1),
            failed_before: now + Duration::hours(1),
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(deleted, 3);
    let rows = c
        .analytics_rollup_list(&RollupListParams {
            job_type: Some("docket.parse".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.hour == two_ago));
    let failed = rows
        .iter()
        .find(|r| r.outcome == AttemptOutcome::Failed)
        .unwrap();
    assert_eq!(
        (failed.attempts, failed.p50_ms, failed.max_ms),
        (2, 400, 600)
    );
    let reasons = c
        .failure_reason_list(&FailureReasonListParams {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0].reason, "page <n> of <path> is encrypted");
    assert_eq!(reasons[0].count, 2);
    let mut want = ids[1..].to_vec();
    want.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(reasons[0].example_job_ids, want);
    drop(c);

    // The next pass, in the same hour, has nothing new to roll.
    let again = rollup_once(d, &config, now).await.unwrap();
    assert_eq!((again.hours, again.rows, again.reasons), (0, 0, 0));
    // Past the retention, they go.
    let later = rollup_once(d, &config, now + Duration::days(91))
        .await
        .unwrap();
    assert_eq!(later.pruned, 3, "{later:?}");
}
