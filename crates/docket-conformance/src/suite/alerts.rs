//! Alerts, silences and attempt counts ([`MonitorStore`]).

use chrono::Duration;
use docket_core::{
    AlertListParams, AlertOpenParams, AlertSilenceParams, AlertState, AlertUpdateParams,
    AttemptOutcome, CompletionOutcome, JobAttemptCountRow, JobAttemptCountsParams, MonitorStore,
};
use serde_json::json;

use crate::harness::TestDb;

use super::{add, base_time, claim, complete, completion, conn, job};

fn open(
    rule: &str,
    subject: &str,
    state: AlertState,
    now: chrono::DateTime<chrono::Utc>,
) -> AlertOpenParams {
    AlertOpenParams {
        rule: rule.to_owned(),
        subject: subject.to_owned(),
        state,
        severity: "page".to_owned(),
        summary: format!("{rule} about {subject}"),
        figures: json!({"count": 1}),
        now,
    }
}

fn update(
    id: i64,
    from: AlertState,
    to: AlertState,
    notified: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> AlertUpdateParams {
    AlertUpdateParams {
        id,
        from,
        to,
        summary: format!("now {to}"),
        figures: json!({"count": 2}),
        notified,
        now,
    }
}

/// An alert opens pending (or firing), one per rule and subject while open; moves to firing
/// and resolved, each move stamping its time and applying only from the state the caller
/// read; a resolved alert stays as it was and the next episode is a new row; the list filters
/// by open or resolved and by rule, newest first, paged by id.
pub async fn alert_lifecycle<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;

    let a = c
        .alert_open(&open("oldest_due_job", "queue=a", AlertState::Pending, t0))
        .await
        .expect("alert_open");
    assert_eq!(a.state, AlertState::Pending);
    assert_eq!(
        (a.rule.as_str(), a.subject.as_str()),
        ("oldest_due_job", "queue=a")
    );
    assert_eq!(a.severity, "page");
    assert_eq!(a.figures, json!({"count": 1}));
    assert_eq!((a.pending_at, a.evaluated_at), (t0, t0));
    assert_eq!(
        (a.firing_at, a.resolved_at, a.notified_at),
        (None, None, None)
    );

    // The same rule and subject while open: the open one, unchanged.
    let again = c
        .alert_open(&open(
            "oldest_due_job",
            "queue=a",
            AlertState::Firing,
            t0 + s(60),
        ))
        .await
        .expect("alert_open again");
    assert_eq!(again, a);
    // Another subject, or another rule, is another alert; one may open firing.
    let b = c
        .alert_open(&open("oldest_due_job", "queue=b", AlertState::Pending, t0))
        .await
        .expect("alert_open b");
    let d = c
        .alert_open(&open("dead_letters_high", "", AlertState::Firing, t0))
        .await
        .expect("alert_open firing");
    assert!(b.id > a.id && d.id > b.id, "ids grow: {a:?} {b:?} {d:?}");
    assert_eq!((d.state, d.firing_at), (AlertState::Firing, Some(t0)));

    // Refresh in place, then fire: firing_at and notified_at stamped.
    let a2 = c
        .alert_update(&update(
            a.id,
            AlertState::Pending,
            AlertState::Pending,
            false,
            t0 + s(60),
        ))
        .await
        .expect("alert_update")
        .expect("applies");
    assert_eq!(
        (a2.state, a2.evaluated_at, a2.firing_at),
        (AlertState::Pending, t0 + s(60), None)
    );
    assert_eq!(a2.figures, json!({"count": 2}));
    assert_eq!(a2.summary, "now pending");
    let a3 = c
        .alert_update(&update(
            a.id,
            AlertState::Pending,
            AlertState::Firing,
            true,
            t0 + s(120),
        ))
        .await
        .expect("alert_update")
        .expect("applies");
    assert_eq!(a3.state, AlertState::Firing);
    assert_eq!(
        (a3.firing_at, a3.notified_at),
        (Some(t0 + s(120)), Some(t0 + s(120)))
    );
    assert_eq!(a3.pending_at, t0, "pending_at stays");
    // From a state it is no longer in: refused, unchanged.
    let stale = c
        .alert_update(&update(
            a.id,
            AlertState::Pending,
            AlertState::Resolved,
            false,
            t0 + s(150),
        ))
        .await
        .expect("alert_update");
    assert_eq!(stale, None);
    // A refresh without notifying keeps notified_at and firing_at.
    let a4 = c
        .alert_update(&update(
            a.id,
            AlertState::Firing,
            AlertState::Firing,
            false,
            t0 + s(180),
        ))
        .await
        .expect("alert_update")
        .expect("applies");
    assert_eq!(
        (a4.firing_at, a4.notified_at),
        (Some(t0 + s(120)), Some(t0 + s(120)))
    );
    let a5 = c
        .alert_update(&update(
            a.id,
            AlertState::Firing,
            AlertState::Resolved,
            true,
            t0 + s(240),
        ))
        .await
        .expect("alert_update")
        .expect("applies");
    assert_eq!(a5.state, AlertState::Resolved);
    assert_eq!(
        (a5.resolved_at, a5.notified_at),
        (Some(t0 + s(240)), Some(t0 + s(240)))
    );
    assert_eq!(a5.firing_at, Some(t0 + s(120)));
    // A resolved alert does not move again.
    let after = c
        .alert_update(&update(
            a.id,
            AlertState::Resolved,
            AlertState::Firing,
            false,
            t0 + s(300),
        ))
        .await
        .expect("alert_update");
    assert_eq!(after, None);
    // A pending alert that clears resolves without having fired.
    let b2 = c
        .alert_update(&update(
            b.id,
            AlertState::Pending,
            AlertState::Resolved,
            false,
            t0 + s(60),
        ))
        .await
        .expect("alert_update")
        .expect("applies");
    assert_eq!((b2.firing_at, b2.resolved_at), (None, Some(t0 + s(60))));

    // The next episode of the same rule and subject is a new row.
    let next = c
        .alert_open(&open(
            "oldest_due_job",
            "queue=a",
            AlertState::Pending,
            t0 + s(360),
        ))
        .await
        .expect("alert_open");
    assert!(
        next.id > d.id && next.state == AlertState::Pending,
        "{next:?}"
    );

    let list = |open: Option<bool>, rule: Option<&str>, before_id, limit| AlertListParams {
        open,
        rule: rule.map(str::to_owned),
        before_id,
        limit,
    };
    let ids = |v: Vec<docket_core::AlertRow>| v.iter().map(|a| a.id).collect::<Vec<_>>();
    let all = c
        .alert_list(&list(None, None, None, 100))
        .await
        .expect("alert_list");
    assert_eq!(ids(all), [next.id, d.id, b.id, a.id], "newest first");
    let open_ids = c
        .alert_list(&list(Some(true), None, None, 100))
        .await
        .expect("open");
    assert_eq!(ids(open_ids), [next.id, d.id]);
    let closed = c
        .alert_list(&list(Some(false), None, None, 100))
        .await
        .expect("closed");
    assert_eq!(ids(closed), [b.id, a.id]);
    let rule = c
        .alert_list(&list(None, Some("oldest_due_job"), None, 100))
        .await
        .expect("by rule");
    assert_eq!(ids(rule), [next.id, b.id, a.id]);
    let page = c
        .alert_list(&list(None, None, Some(d.id), 1))
        .await
        .expect("page");
    assert_eq!(ids(page), [b.id]);
    assert!(
        c.alert_list(&list(None, None, None, 0))
            .await
            .expect("zero")
            .is_empty()
    );
    assert!(
        c.alert_list(&list(None, None, None, -1)).await.is_err(),
        "negative limit"
    );
}

/// Silences: recorded, listed while they last (newest first), ended early; `covers` matches
/// the rule and, when the silence names one, the subject.
pub async fn alert_silences<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let h = Duration::hours;
    let silence = |rule: &str, subject: Option<&str>, until| AlertSilenceParams {
        rule: rule.to_owned(),
        subject: subject.map(str::to_owned),
        until,
        actor: "cli:ops".to_owned(),
        reason: "maintenance window".to_owned(),
        now: Some(t0),
    };
    let all = c
        .alert_silence_insert(&silence("queue_paused", None, t0 + h(2)))
        .await
        .expect("silence");
    assert_eq!(
        (all.created_at, all.until, all.subject.clone()),
        (t0, t0 + h(2), None)
    );
    assert_eq!(
        (all.actor.as_str(), all.reason.as_str()),
        ("cli:ops", "maintenance window")
    );
    let one = c
        .alert_silence_insert(&silence("oldest_due_job", Some("queue=a"), t0 + h(1)))
        .await
        .expect("silence");
    assert!(one.covers("oldest_due_job", "queue=a", t0));
    assert!(
        !one.covers("oldest_due_job", "queue=b", t0),
        "another subject"
    );
    assert!(!one.covers("oldest_due_job", "queue=a", t0 + h(1)), "ended");
    assert!(all.covers("queue_paused", "queue=x", t0) && !all.covers("dead_letters", "", t0));

    let live = c.alert_silence_list(Some(t0)).await.expect("list");
    assert_eq!(
        live.iter().map(|s| s.id).collect::<Vec<_>>(),
        [one.id, all.id]
    );
    let later = c.alert_silence_list(Some(t0 + h(1))).await.expect("list");
    assert_eq!(
        later.iter().map(|s| s.id).collect::<Vec<_>>(),
        [all.id],
        "the hour's one ended"
    );

    assert!(
        c.alert_silence_end(all.id, Some(t0 + Duration::minutes(30)))
            .await
            .expect("end")
    );
    assert!(
        !c.alert_silence_end(all.id, Some(t0 + Duration::minutes(31)))
            .await
            .expect("end again"),
        "already ended"
    );
    let live = c
        .alert_silence_list(Some(t0 + Duration::minutes(30)))
        .await
        .expect("list");
    assert_eq!(live.iter().map(|s| s.id).collect::<Vec<_>>(), [one.id]);
}

/// Attempts that finished in a window, per kind, queue, outcome, and whether they were
/// snoozes; outside the window, not counted.
pub async fn attempt_counts<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(add(&mut c, job("embed", "q", t0)).await);
    }
    let other = add(&mut c, job("parse", "q", t0)).await;
    let claimed = claim(&mut c, "q", "w", 10, t0).await;
    assert_eq!(claimed.len(), 5);
    let done = complete(
        &mut c,
        vec![
            completion(ids[0], 1, "w", t0, t0 + s(1), CompletionOutcome::Completed),
            completion(
                ids[1],
                1,
                "w",
                t0,
                t0 + s(2),
                CompletionOutcome::Retry {
                    run_at: t0 + s(60),
                    error: "boom".into(),
                },
            ),
            completion(
                ids[2],
                1,
                "w",
                t0,
                t0 + s(2),
                CompletionOutcome::Snoozed {
                    run_at: t0 + s(30),
                    reason: "provider down".into(),
                },
            ),
            completion(ids[3], 1, "w", t0, t0 + s(3), CompletionOutcome::Released),
            completion(other, 1, "w", t0, t0 + s(100), CompletionOutcome::Completed),
        ],
    )
    .await;
    assert_eq!(done.len(), 5);

    let counts = c
        .job_attempt_counts(&JobAttemptCountsParams {
            since: t0,
            now: Some(t0 + s(10)),
        })
        .await
        .expect("job_attempt_counts");
    let row = |outcome, snoozed| JobAttemptCountRow {
        job_type: "embed".into(),
        queue: "q".into(),
        outcome,
        snoozed,
        count: 1,
    };
    let mut want = vec![
        row(AttemptOutcome::Completed, false),
        row(AttemptOutcome::Retried, false),
        row(AttemptOutcome::Released, false),
        row(AttemptOutcome::Released, true),
    ];
    let key = |r: &JobAttemptCountRow| (r.job_type.clone(), r.outcome.as_str(), r.snoozed);
    want.sort_by_key(key);
    let mut got = counts;
    got.sort_by_key(key);
    assert_eq!(got, want, "the parse attempt finished after the window");

    let later = c
        .job_attempt_counts(&JobAttemptCountsParams {
            since: t0 + s(3),
            now: Some(t0 + s(200)),
        })
        .await
        .expect("job_attempt_counts");
    let kinds: Vec<_> = later
        .iter()
        .map(|r| (r.job_type.as_str(), r.outcome, r.count))
        .collect();
    assert_eq!(
        kinds,
        [
            ("embed", AttemptOutcome::Released, 1),
            ("parse", AttemptOutcome::Completed, 1)
        ]
    );
}

/// Analytics: attempts of a window rolled up per kind, queue and outcome with nearest-rank
/// duration percentiles; failed attempts grouped by message; an hour stored at once (rollup
/// rows replaced, failure reasons added up, the newest five example jobs kept, the cursor
/// moved, never back); listing and pruning.
pub async fn analytics_rollup<T: TestDb>(db: &T) {
    use docket_core::{
        AnalyticsStoreParams, AttemptRollupRow, AttemptWindowParams, FailureReasonListParams,
        FailureReasonRow, RollupListParams,
    };
    let mut c = conn(db).await;
    let t0 = base_time();
    let ms = Duration::milliseconds;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(add(&mut c, job("embed", "q", t0)).await);
    }
    assert_eq!(claim(&mut c, "q", "w", 10, t0).await.len(), 10);
    let completions = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let took = ms(100 * (i as i64 + 1));
            let outcome = if i < 8 {
                CompletionOutcome::Completed
            } else {
                CompletionOutcome::Retry {
                    run_at: t0 + Duration::hours(1),
                    error: format!("timeout after {} ms", 100 * (i + 1)),
                }
            };
            completion(*id, 1, "w", t0, t0 + took, outcome)
        })
        .collect();
    assert_eq!(complete(&mut c, completions).await.len(), 10);

    let window = AttemptWindowParams {
        since: t0,
        until: t0 + Duration::hours(1),
    };
    let rows = c.job_attempt_rollup(&window).await.expect("rollup");
    let row = |outcome, attempts, total_ms, p50_ms, p95_ms, p99_ms, max_ms| AttemptRollupRow {
        hour: t0,
        job_type: "embed".into(),
        queue: "q".into(),
        outcome,
        attempts,
        total_ms,
        p50_ms,
        p95_ms,
        p99_ms,
        max_ms,
    };
    // Completed: 100..800 ms; the 4th, 8th and 8th shortest of 8.
    assert_eq!(
        rows,
        [
            row(AttemptOutcome::Completed, 8, 3600, 400, 800, 800, 800),
            row(AttemptOutcome::Retried, 2, 1900, 900, 1000, 1000, 1000),
        ]
    );
    let outside = AttemptWindowParams {
        since: t0 + ms(150),
        until: t0 + ms(300),
    };
    let rows = c.job_attempt_rollup(&outside).await.expect("rollup");
    assert_eq!(
        rows.len(),
        1,
        "only the attempt that ended at 200 ms: {rows:?}"
    );
    assert_eq!((rows[0].attempts, rows[0].p50_ms), (1, 200));

    let errors = c.job_attempt_errors(&window).await.expect("errors");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e.job_type == "embed" && e.count == 1));
    let last = errors
        .iter()
        .find(|e| e.error == "timeout after 1000 ms")
        .expect("grouped by message");
    assert_eq!(
        (last.first_at, last.last_at, last.last_job_id),
        (t0 + ms(1000), t0 + ms(1000), ids[9])
    );

    assert_eq!(c.analytics_cursor().await.expect("cursor"), None);
    let reason = |count, at, jobs: Vec<i64>| FailureReasonRow {
        job_type: "embed".into(),
        reason: "timeout after <n> ms".into(),
        example: format!("timeout after {count} ms"),
        count,
        first_seen: at,
        last_seen: at,
        example_job_ids: jobs,
    };
    let hour = c.job_attempt_rollup(&window).await.unwrap();
    c.analytics_store(&AnalyticsStoreParams {
        rollup: hour.clone(),
        reasons: vec![reason(2, t0, vec![3, 2, 1])],
        rolled_until: t0 + Duration::hours(1),
    })
    .await
    .expect("store");
    // The same hour again (a pass that ran twice): rollup rows replaced, the reason added up.
    c.analytics_store(&AnalyticsStoreParams {
        rollup: hour.clone(),
        reasons: vec![reason(3, t0 + Duration::hours(2), vec![9, 8, 7, 6])],
        rolled_until: t0,
    })
    .await
    .expect("store again");
    assert_eq!(
        c.analytics_cursor().await.unwrap(),
        Some(t0 + Duration::hours(1)),
        "the cursor never goes back"
    );
    let stored = c
        .analytics_rollup_list(&RollupListParams::default())
        .await
        .expect("list");
    assert_eq!(stored, hour);
    let only = c
        .analytics_rollup_list(&RollupListParams {
            since: Some(t0 + ms(1)),
            job_type: None,
        })
        .await
        .unwrap();
    assert!(only.is_empty(), "{only:?}");
    let reasons = c
        .failure_reason_list(&FailureReasonListParams {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("reasons");
    assert_eq!(reasons.len(), 1);
    let r = &reasons[0];
    assert_eq!(
        (r.count, r.first_seen, r.last_seen),
        (5, t0, t0 + Duration::hours(2))
    );
    assert_eq!(r.example, "timeout after 3 ms", "the newest example");
    assert_eq!(r.example_job_ids, [9, 8, 7, 6, 3], "the newest five");
    let later = FailureReasonListParams {
        seen_since: Some(t0 + Duration::hours(3)),
        limit: 10,
        ..Default::default()
    };
    assert!(c.failure_reason_list(&later).await.unwrap().is_empty());

    // Pruning before t0 + 1 h: the rollup hour goes; the reason, seen since, stays.
    let n = c
        .analytics_prune(t0 + Duration::hours(1))
        .await
        .expect("prune");
    assert_eq!(n, 2, "two rollup rows");
    assert!(
        c.analytics_rollup_list(&RollupListParams::default())
            .await
            .unwrap()
            .is_empty()
    );
    let n = c
        .analytics_prune(t0 + Duration::hours(3))
        .await
        .expect("prune");
    assert_eq!(n, 1, "the reason, last seen at t0 + 2 h");
}
