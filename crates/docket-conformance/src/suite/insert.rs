//! Insert: single and batch inserts, validation, unique keys.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use docket_core::{
    CompletionOutcome, DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, Error, JobInsertManyParams,
    JobInsertParams, JobInsertResult, JobRow, JobState, MAX_PAYLOAD_BYTES, QueueExecutor,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::TestDb;

use super::{
    add, all_jobs, assert_near, base_time, cancel_jobs, claim, complete, completion, conn, get,
    gone, ids_of, insert, insert_new, job, keyed, ms,
};

/// One job: every field round-trips through `job_get`; defaults apply when unset.
pub async fn insert_one<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let doc = Uuid::new_v4();
    let run_at = t0 + Duration::minutes(5) + Duration::microseconds(123_456);
    let payload = json!({
        "document_id": doc.to_string(),
        "pages": [1, 2, 3],
        "options": {"ocr": true, "language": "fr", "ratio": 0.5},
        "title": "Façade – naïve ✓ 文書",
        "nothing": null,
    });
    let params = JobInsertParams {
        job_type: "parse".into(),
        queue: "documents".into(),
        priority: 7,
        payload: payload.clone(),
        max_attempts: 9,
        run_at: Some(run_at),
        unique_key: Some("parse:doc-1".into()),
        document_id: Some(doc),
    };
    let before = Utc::now();
    let res = insert(&mut c, vec![params]).await;
    let after = Utc::now();
    assert!(!res[0].duplicate, "{res:?}");
    assert!(res[0].id > 0, "ids are positive: {res:?}");

    let j = get(&mut c, res[0].id).await;
    assert_eq!(j.id, res[0].id);
    assert_eq!(j.job_type, "parse");
    assert_eq!(j.queue, "documents");
    assert_eq!(j.status, JobState::Queued);
    assert_eq!(j.priority, 7);
    assert_eq!(j.payload, payload);
    assert_eq!(j.attempts, 0);
    assert_eq!(j.max_attempts, 9);
    assert_eq!(j.run_at, run_at, "run_at keeps its microseconds");
    assert_eq!(j.locked_by, None);
    assert_eq!(j.locked_at, None);
    assert_eq!(j.last_error, None);
    assert_eq!(j.unique_key.as_deref(), Some("parse:doc-1"));
    assert_eq!(j.document_id, Some(doc));
    assert_eq!(j.started_at, None);
    assert_eq!(j.completed_at, None);
    let mid = before + (after - before) / 2;
    assert_near(j.created_at, mid, Duration::seconds(5), "created_at");
    assert_near(j.updated_at, mid, Duration::seconds(5), "updated_at");

    // Defaults: the default queue, priority 0, due now.
    let before = Utc::now();
    let id = add(&mut c, JobInsertParams::new("notify", json!({"to": "ops"}))).await;
    let after = Utc::now();
    let j = get(&mut c, id).await;
    assert!(id > res[0].id, "ids increase");
    assert_eq!(j.queue, DEFAULT_QUEUE);
    assert_eq!(j.priority, 0);
    assert_eq!(j.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(j.payload, json!({"to": "ops"}));
    assert_eq!(j.unique_key, None);
    assert_eq!(j.document_id, None);
    assert_eq!(j.status, JobState::Queued);
    let mid = before + (after - before) / 2;
    assert_near(j.run_at, mid, Duration::seconds(5), "run_at of None (now)");

    assert!(gone(&mut c, id + 1000).await, "job_get of an unknown id");
}

/// Many jobs in one call: 1,000 of them, results in input order, ids increasing.
pub async fn insert_many<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let jobs: Vec<JobInsertParams> = (0..1000)
        .map(|i| {
            let mut j = job("bulk", "bulk", t0 + Duration::seconds(i));
            j.payload = json!({ "i": i });
            j.priority = (i % 11) as i16;
            if i % 3 == 0 {
                j.unique_key = Some(format!("bulk-{i}"));
            }
            j
        })
        .collect();
    let ids = insert_new(&mut c, jobs).await;
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids increase in input order"
    );

    let by_id: BTreeMap<i64, JobRow> = all_jobs(&mut c)
        .await
        .into_iter()
        .map(|j| (j.id, j))
        .collect();
    assert_eq!(by_id.len(), 1000, "1,000 rows stored");
    for (i, id) in ids.iter().enumerate() {
        let j = &by_id[id];
        let i = i as i64;
        assert_eq!(j.payload, json!({ "i": i }), "job {id} is input #{i}");
        assert_eq!(j.priority, (i % 11) as i16);
        assert_eq!(j.run_at, t0 + Duration::seconds(i));
        let key = (i % 3 == 0).then(|| format!("bulk-{i}"));
        assert_eq!(j.unique_key, key);
    }
}

/// Invalid jobs are refused with the right error, and nothing of the batch is inserted.
pub async fn insert_validation<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let valid = job("ok", "v", t0);

    let mut empty_type = valid.clone();
    empty_type.job_type = String::new();
    let mut prio_high = valid.clone();
    prio_high.priority = 11;
    let mut prio_low = valid.clone();
    prio_low.priority = -1;
    let mut no_attempts = valid.clone();
    no_attempts.max_attempts = 0;
    let mut empty_queue = valid.clone();
    empty_queue.queue = String::new();
    let mut star_queue = valid.clone();
    star_queue.queue = "*".into();
    let invalid = [
        ("empty job_type", empty_type),
        ("priority 11", prio_high),
        ("priority -1", prio_low),
        ("max_attempts 0", no_attempts),
        ("empty queue", empty_queue),
        ("queue '*'", star_queue),
    ];
    for (what, bad) in invalid {
        for batch in [vec![bad.clone()], vec![valid.clone(), bad.clone()]] {
            let n = batch.len();
            match c.job_insert_many(JobInsertManyParams { jobs: batch }).await {
                Err(Error::Invalid(_)) => {}
                other => panic!("{what} (batch of {n}): expected Error::Invalid, got {other:?}"),
            }
        }
    }

    // A JSON string of MAX_PAYLOAD_BYTES characters encodes to MAX_PAYLOAD_BYTES + 2 bytes.
    let mut too_large = valid.clone();
    too_large.payload = json!("x".repeat(MAX_PAYLOAD_BYTES));
    for batch in [
        vec![too_large.clone()],
        vec![valid.clone(), too_large.clone()],
    ] {
        match c.job_insert_many(JobInsertManyParams { jobs: batch }).await {
            Err(Error::PayloadTooLarge { size, max }) => {
                assert_eq!(size, MAX_PAYLOAD_BYTES + 2, "PayloadTooLarge.size");
                assert_eq!(max, MAX_PAYLOAD_BYTES, "PayloadTooLarge.max");
            }
            other => panic!("oversized payload: expected PayloadTooLarge, got {other:?}"),
        }
    }
    assert!(
        all_jobs(&mut c).await.is_empty(),
        "a refused batch inserted jobs"
    );

    // The limit itself is accepted.
    let mut at_limit = valid.clone();
    at_limit.payload = json!("y".repeat(MAX_PAYLOAD_BYTES - 2));
    let id = add(&mut c, at_limit.clone()).await;
    assert_eq!(get(&mut c, id).await.payload, at_limit.payload);
    assert_eq!(all_jobs(&mut c).await.len(), 1);
}

/// Unique keys: one live job per key; duplicates report the holder, within a batch too; a
/// finished holder frees the key.
pub async fn unique_keys<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let first = add(&mut c, keyed(job("u", "uq", t0), "k")).await;

    let res = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await;
    assert_eq!(
        res,
        vec![JobInsertResult {
            id: first,
            duplicate: true
        }],
        "a second live job with the key"
    );
    assert_eq!(all_jobs(&mut c).await.len(), 1, "the duplicate was stored");

    // Within one batch, and mixed with jobs without a key.
    let res = insert(
        &mut c,
        vec![
            keyed(job("u", "other", t0), "k2"),
            keyed(job("u", "other", t0), "k2"),
            job("u", "other", t0),
            keyed(job("u", "other", t0), "k"),
            keyed(job("u", "other", t0), "k3"),
        ],
    )
    .await;
    assert!(
        !res[0].duplicate && !res[2].duplicate && !res[4].duplicate,
        "{res:?}"
    );
    assert_eq!(
        res[1],
        JobInsertResult {
            id: res[0].id,
            duplicate: true
        },
        "duplicate inside a batch"
    );
    assert_eq!(
        res[3],
        JobInsertResult {
            id: first,
            duplicate: true
        },
        "batch job duplicating a stored one"
    );
    assert!(res[0].id < res[2].id && res[2].id < res[4].id, "{res:?}");
    assert_eq!(all_jobs(&mut c).await.len(), 4);

    // Running is live.
    let claimed = claim(&mut c, "uq", "w", 10, t0).await;
    assert_eq!(ids_of(&claimed), vec![first]);
    let res = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await;
    assert_eq!(
        res[0],
        JobInsertResult {
            id: first,
            duplicate: true
        },
        "running holder"
    );

    // Retrying is live.
    let done = complete(
        &mut c,
        vec![completion(
            first,
            1,
            "w",
            t0,
            t0 + ms(10),
            CompletionOutcome::Retry {
                run_at: t0 + Duration::minutes(1),
                error: "again".into(),
            },
        )],
    )
    .await;
    assert_eq!(done, vec![first]);
    let res = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await;
    assert_eq!(
        res[0],
        JobInsertResult {
            id: first,
            duplicate: true
        },
        "retrying holder"
    );

    // Completed frees the key.
    let claimed = claim(&mut c, "uq", "w", 10, t0 + Duration::minutes(1)).await;
    assert_eq!(ids_of(&claimed), vec![first]);
    let done = complete(
        &mut c,
        vec![completion(
            first,
            2,
            "w",
            t0 + Duration::minutes(1),
            t0 + Duration::minutes(2),
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert_eq!(done, vec![first]);
    let second = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await[0];
    assert!(
        !second.duplicate,
        "key of a completed job is free: {second:?}"
    );
    assert!(second.id > first);

    // Cancelled frees it too.
    assert_eq!(
        cancel_jobs(&mut c, vec![second.id], t0).await,
        vec![second.id]
    );
    let third = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await[0];
    assert!(
        !third.duplicate,
        "key of a cancelled job is free: {third:?}"
    );
    assert!(third.id > second.id);
    let res = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await;
    assert_eq!(
        res[0],
        JobInsertResult {
            id: third.id,
            duplicate: true
        },
        "the live holder"
    );
    assert_eq!(get(&mut c, first).await.status, JobState::Completed);
}
