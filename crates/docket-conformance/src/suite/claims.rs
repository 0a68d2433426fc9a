//! Claim identity: every claim has its own token, and only that token ends its attempt; the
//! operator's run now, discard and audit trail; the rescuer's guarded, engine-decided rescues.

use chrono::Duration;
use docket_core::{
    AttemptOutcome, AuditInsertParams, AuditListParams, CompletionOutcome, JobClaimsLostParams,
    JobDiscardParams, JobListStuckParams, JobRescue, JobRescueManyParams, JobRetryParams,
    JobRunNowParams, JobState, QueueExecutor, WorkerHeartbeatParams,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::TestDb;

use super::{
    add, attempts, base_time, by_token, cancel_jobs, claim, conn, failed, finish, finish_claimed,
    get, gone, job, rescue_expired, retry_jobs,
};

fn heartbeat(id: &str, now: chrono::DateTime<chrono::Utc>) -> WorkerHeartbeatParams {
    WorkerHeartbeatParams {
        id: id.to_owned(),
        hostname: "host".into(),
        pid: 7,
        queues: vec![],
        lease: chrono::Duration::minutes(1),
        now: Some(now),
    }
}

/// A claim's token is unique and cleared when the attempt ends; the old handler of a job that
/// was cancelled, retried and claimed again by the same worker cannot complete the new claim,
/// nor can the handler of a rescued, retried job, nor that of a released, reclaimed one.
pub async fn claim_tokens_guard_every_end<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;
    c.worker_heartbeat(heartbeat("w", t0))
        .await
        .expect("heartbeat");

    // Tokens: one per claim, distinct, gone once the attempt ends.
    for q in ["tok-a", "tok-a"] {
        add(&mut c, job("tok", q, t0)).await;
    }
    let two = claim(&mut c, "tok-a", "w", 2, t0).await;
    let (a, b) = (&two[0], &two[1]);
    assert!(a.claim_token.is_some() && b.claim_token.is_some());
    assert_ne!(
        a.claim_token, b.claim_token,
        "each claimed job has its own token"
    );
    assert_eq!(get(&mut c, a.id).await.claim_token, a.claim_token);
    finish_claimed(&mut c, a, t0 + s(1), CompletionOutcome::Completed).await;
    assert_eq!(get(&mut c, a.id).await.claim_token, None);
    finish_claimed(&mut c, b, t0 + s(1), failed("x")).await;

    // Cancel → retry → the same worker claims it again: the first handler's completion,
    // never interrupted, is refused; the new claim's applies.
    let id = add(&mut c, job("tok", "tok-cancel", t0)).await;
    let old = claim(&mut c, "tok-cancel", "w", 1, t0).await.remove(0);
    assert_eq!(cancel_jobs(&mut c, vec![id], t0 + s(1)).await, vec![id]);
    assert_eq!(get(&mut c, id).await.claim_token, None);
    let retry = |ids| JobRetryParams {
        ids,
        now: Some(t0 + s(2)),
        ..Default::default()
    };
    assert_eq!(retry_jobs(&mut c, retry(vec![id])).await, vec![id]);
    let new = claim(&mut c, "tok-cancel", "w", 1, t0 + s(3))
        .await
        .remove(0);
    assert_eq!(new.locked_by, old.locked_by);
    assert_eq!(new.attempts, old.attempts + 1, "attempt numbers only grow");
    assert_ne!(new.claim_token, old.claim_token);
    let stale = c
        .job_complete_many(docket_core::JobCompleteManyParams {
            completions: vec![by_token(&old, t0 + s(4), CompletionOutcome::Completed)],
        })
        .await
        .expect("complete");
    assert!(
        stale.is_empty(),
        "the cancelled claim's completion is refused"
    );
    assert_eq!(get(&mut c, id).await.status, JobState::Running);
    finish_claimed(&mut c, &new, t0 + s(5), CompletionOutcome::Completed).await;

    // Rescue (max_attempts 1: dead-lettered) → retry → the same worker claims it again: the
    // rescued handler's completion is refused.
    let mut one = job("tok", "tok-rescue", t0 - Duration::minutes(20));
    one.max_attempts = 1;
    let id = add(&mut c, one).await;
    c.worker_heartbeat(heartbeat("w-dead", t0 - Duration::minutes(10)))
        .await
        .expect("heartbeat");
    let old = claim(
        &mut c,
        "tok-rescue",
        "w-dead",
        1,
        t0 - Duration::minutes(10),
    )
    .await
    .remove(0);
    let r = rescue_expired(&mut c, t0, 100).await;
    assert_eq!(r.failed, vec![id], "out of attempts: dead-lettered");
    assert_eq!(retry_jobs(&mut c, retry(vec![id])).await, vec![id]);
    c.worker_heartbeat(heartbeat("w-dead", t0 + s(2)))
        .await
        .expect("heartbeat");
    let new = claim(&mut c, "tok-rescue", "w-dead", 1, t0 + s(3))
        .await
        .remove(0);
    assert_eq!(new.attempts, 2);
    let stale = c
        .job_complete_many(docket_core::JobCompleteManyParams {
            completions: vec![by_token(&old, t0 + s(4), CompletionOutcome::Completed)],
        })
        .await
        .expect("complete");
    assert!(
        stale.is_empty(),
        "the rescued claim's completion is refused"
    );
    finish_claimed(&mut c, &new, t0 + s(5), CompletionOutcome::Completed).await;

    // Release → reclaim by the same worker at the same attempt number: only the token tells
    // the two claims apart.
    let id = add(&mut c, job("tok", "tok-release", t0)).await;
    let old = claim(&mut c, "tok-release", "w", 1, t0).await.remove(0);
    finish_claimed(&mut c, &old, t0 + s(1), CompletionOutcome::Released).await;
    let new = claim(&mut c, "tok-release", "w", 1, t0 + s(2))
        .await
        .remove(0);
    assert_eq!(
        (new.id, new.attempts),
        (id, old.attempts),
        "same attempt number"
    );
    let stale = c
        .job_complete_many(docket_core::JobCompleteManyParams {
            completions: vec![by_token(&old, t0 + s(3), failed("late"))],
        })
        .await
        .expect("complete");
    assert!(
        stale.is_empty(),
        "the released claim's completion is refused"
    );
    finish_claimed(&mut c, &new, t0 + s(4), CompletionOutcome::Completed).await;
    let outcomes: Vec<_> = attempts(&mut c, id)
        .await
        .iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![AttemptOutcome::Released, AttemptOutcome::Completed]
    );
}

/// Of the claims a worker holds, `job_claims_lost` names those that ended elsewhere.
pub async fn claims_lost<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    c.worker_heartbeat(heartbeat("w", t0))
        .await
        .expect("heartbeat");
    for _ in 0..3 {
        add(&mut c, job("lost", "lost", t0)).await;
    }
    let jobs = claim(&mut c, "lost", "w", 3, t0).await;
    let claims: Vec<(i64, Uuid)> = jobs
        .iter()
        .map(|j| (j.id, j.claim_token.expect("token")))
        .collect();
    let ask = |claims: Vec<(i64, Uuid)>| JobClaimsLostParams { claims };
    assert!(
        c.job_claims_lost(ask(claims.clone()))
            .await
            .expect("claims_lost")
            .is_empty(),
        "every claim is held"
    );
    cancel_jobs(&mut c, vec![jobs[1].id], t0).await;
    let mut asked = claims.clone();
    asked.push((jobs[2].id + 10_000, Uuid::new_v4())); // no such job
    asked[0].1 = Uuid::new_v4(); // a claim the job does not run under
    let lost = c.job_claims_lost(ask(asked)).await.expect("claims_lost");
    assert_eq!(lost, vec![jobs[0].id, jobs[1].id, jobs[2].id + 10_000]);
    assert!(
        c.job_claims_lost(ask(Vec::new()))
            .await
            .expect("claims_lost")
            .is_empty()
    );
}

/// Run now makes queued, scheduled and retrying jobs due at once without spending an attempt;
/// discard deletes dead letters only; both by id or by filter.
pub async fn run_now_and_discard<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let later = t0 + Duration::hours(1);
    let queued = add(&mut c, job("rn", "rn", t0)).await;
    let scheduled = add(&mut c, job("rn", "rn", later)).await;
    let retrying = add(&mut c, job("rn", "rn-r", t0)).await;
    let claimed = claim(&mut c, "rn-r", "w", 1, t0).await.remove(0);
    finish_claimed(
        &mut c,
        &claimed,
        t0,
        CompletionOutcome::Retry {
            run_at: later,
            error: "flaky".into(),
        },
    )
    .await;
    let dead = add(&mut c, job("rn", "rn-f", t0)).await;
    finish(&mut c, "rn-f", t0, failed("boom")).await;
    let other = add(&mut c, job("rn-other", "rn", later)).await;

    let now = t0 + Duration::seconds(5);
    let got = c
        .job_run_now(JobRunNowParams {
            ids: vec![queued, scheduled, retrying, dead],
            now: Some(now),
            ..Default::default()
        })
        .await
        .expect("run_now");
    assert_eq!(got, vec![queued, scheduled, retrying]);
    for id in [queued, scheduled, retrying] {
        let j = get(&mut c, id).await;
        assert_eq!(j.run_at, now, "job {id} is due now");
    }
    let r = get(&mut c, retrying).await;
    assert_eq!(
        (r.status, r.attempts),
        (JobState::Retrying, 1),
        "no attempt spent"
    );
    assert_eq!(get(&mut c, dead).await.status, JobState::Failed);
    let by_kind = c
        .job_run_now(JobRunNowParams {
            job_type: Some("rn-other".into()),
            now: Some(now),
            ..Default::default()
        })
        .await
        .expect("run_now");
    assert_eq!(by_kind, vec![other]);

    // Discard: dead letters only.
    let dead2 = add(&mut c, job("rn2", "rn-f2", t0)).await;
    finish(&mut c, "rn-f2", t0, failed("boom")).await;
    let got = c
        .job_discard(JobDiscardParams {
            ids: vec![dead, queued],
            ..Default::default()
        })
        .await
        .expect("discard");
    assert_eq!(got, vec![dead]);
    assert!(gone(&mut c, dead).await);
    assert!(attempts(&mut c, dead).await.is_empty(), "attempts go too");
    assert!(!gone(&mut c, queued).await);
    let got = c
        .job_discard(JobDiscardParams {
            queue: Some("rn-f2".into()),
            ..Default::default()
        })
        .await
        .expect("discard");
    assert_eq!(got, vec![dead2]);
}

/// Operator actions are recorded and listed newest first, filtered by action or job.
pub async fn audit_trail<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let rec = |actor: &str, action: &str, ids: Vec<i64>, secs| AuditInsertParams {
        actor: actor.into(),
        action: action.into(),
        target: (action == "pause").then(|| "default".to_owned()),
        job_ids: ids,
        detail: json!({ "n": secs }),
        now: Some(t0 + Duration::seconds(secs)),
    };
    let first = c
        .audit_insert(rec("key:ops", "retry", vec![1, 2], 1))
        .await
        .expect("audit_insert");
    assert_eq!(
        (
            first.actor.as_str(),
            first.action.as_str(),
            &first.job_ids,
            first.at
        ),
        ("key:ops", "retry", &vec![1, 2], t0 + Duration::seconds(1))
    );
    assert_eq!(first.detail, json!({ "n": 1 }));
    c.audit_insert(rec("dashboard:admin", "pause", vec![], 2))
        .await
        .expect("audit_insert");
    c.audit_insert(rec("cli:root", "cancel", vec![2, 3], 3))
        .await
        .expect("audit_insert");
    let list = |action: Option<&str>, job_id, before_id| AuditListParams {
        action: action.map(str::to_owned),
        job_id,
        before_id,
        limit: 10,
    };
    let all = c.audit_list(list(None, None, None)).await.expect("list");
    let actions: Vec<_> = all.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, vec!["cancel", "pause", "retry"], "newest first");
    assert_eq!(all[1].target.as_deref(), Some("default"));
    let of_two = c.audit_list(list(None, Some(2), None)).await.expect("list");
    assert_eq!(of_two.len(), 2, "actions that changed job 2");
    let pauses = c
        .audit_list(list(Some("pause"), None, None))
        .await
        .expect("list");
    assert_eq!(pauses.len(), 1);
    let older = c
        .audit_list(list(None, None, Some(all[0].id)))
        .await
        .expect("list");
    assert_eq!(older.len(), 2, "paged by id");
}

/// The rescuer's candidates are the running jobs of dead workers; a rescue applies the
/// engine's decision (due at its backoff, or dead-lettered) only while the job runs under the
/// dead claim, counts rescues in a row, and a finished attempt starts the count over.
pub async fn rescue_decisions<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let m = Duration::minutes;
    c.worker_heartbeat(heartbeat("dead", t0 - m(10)))
        .await
        .expect("heartbeat");
    c.worker_heartbeat(heartbeat("live", t0))
        .await
        .expect("heartbeat");
    let a = add(&mut c, job("rd", "rd-a", t0 - m(20))).await;
    let b = add(&mut c, job("rd", "rd-b", t0 - m(20))).await;
    let l = add(&mut c, job("rd", "rd-l", t0 - m(20))).await;
    let ja = claim(&mut c, "rd-a", "dead", 1, t0 - m(10)).await.remove(0);
    let jb = claim(&mut c, "rd-b", "dead", 1, t0 - m(10)).await.remove(0);
    claim(&mut c, "rd-l", "live", 1, t0).await;
    let expired = c
        .job_list_stuck(JobListStuckParams {
            now: Some(t0),
            limit: 10,
        })
        .await
        .expect("list_stuck");
    let mut ids: Vec<i64> = expired.iter().map(|s| s.job.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![a, b], "only the dead worker's jobs: {l} is live");

    let decide = |j: &docket_core::JobRow, status, run_at, error: &str| JobRescue {
        id: j.id,
        claim_token: j.claim_token,
        attempt: j.attempts,
        worker_id: "dead".into(),
        started_at: t0 - m(10),
        status,
        run_at,
        error: error.into(),
        max_attempts: j.max_attempts + 1,
    };
    // The job `b` completes just before the rescue lands: its rescue is refused.
    finish_claimed(&mut c, &jb, t0, CompletionOutcome::Completed).await;
    let r = c
        .job_rescue_many(JobRescueManyParams {
            rescues: vec![
                decide(&ja, JobState::Queued, t0 + m(1), "lease expired"),
                decide(&jb, JobState::Failed, t0, "lease expired"),
            ],
            now: Some(t0),
        })
        .await
        .expect("rescue_many");
    assert_eq!((r.requeued, r.failed), (vec![a], vec![]));
    let before = ja.max_attempts;
    let j = get(&mut c, a).await;
    assert_eq!(
        (
            j.status,
            j.run_at,
            j.rescues,
            j.claim_token,
            j.attempts,
            j.max_attempts
        ),
        (JobState::Queued, t0 + m(1), 1, None, 1, before + 1),
        "due at the engine's backoff, one rescue counted, max_attempts as the engine decided"
    );
    assert_eq!(j.last_error.as_deref(), Some("lease expired"));
    let at = attempts(&mut c, a).await;
    assert_eq!(
        (at.len(), at[0].outcome, at[0].error.as_deref()),
        (1, AttemptOutcome::Rescued, Some("lease expired"))
    );
    assert_eq!(get(&mut c, b).await.status, JobState::Completed);

    // A second rescue in a row counts 2; the engine dead-letters it.
    let ja = claim(&mut c, "rd-a", "dead", 1, t0 + m(2)).await.remove(0);
    let r = c
        .job_rescue_many(JobRescueManyParams {
            rescues: vec![decide(&ja, JobState::Failed, t0, "died twice")],
            now: Some(t0 + m(3)),
        })
        .await
        .expect("rescue_many");
    assert_eq!(r.failed, vec![a]);
    let j = get(&mut c, a).await;
    assert_eq!(
        (j.status, j.rescues, j.completed_at),
        (JobState::Failed, 2, Some(t0 + m(3)))
    );
    // A manual retry starts the count over; so does any attempt that ends.
    retry_jobs(
        &mut c,
        JobRetryParams {
            ids: vec![a],
            now: Some(t0 + m(4)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(get(&mut c, a).await.rescues, 0);
    let ja = claim(&mut c, "rd-a", "dead", 1, t0 + m(4)).await.remove(0);
    c.job_rescue_many(JobRescueManyParams {
        rescues: vec![decide(&ja, JobState::Queued, t0 + m(4), "again")],
        now: Some(t0 + m(4)),
    })
    .await
    .expect("rescue_many");
    assert_eq!(get(&mut c, a).await.rescues, 1);
    let ja = claim(&mut c, "rd-a", "live", 1, t0 + m(5)).await.remove(0);
    finish_claimed(
        &mut c,
        &ja,
        t0 + m(5),
        CompletionOutcome::Retry {
            run_at: t0 + m(6),
            error: "flaky".into(),
        },
    )
    .await;
    assert_eq!(
        get(&mut c, a).await.rescues,
        0,
        "an attempt that ends resets it"
    );
}
