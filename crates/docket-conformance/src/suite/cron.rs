//! Cron: schedules, runs and their enqueued jobs.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use docket_core::{
    CompletionOutcome, CronRun, CronRunAction, CronRunEnqueueParams, CronRunListParams,
    CronSchedule, CronScheduleDueParams, CronScheduleSpec, CronScheduleUpsertParams, Executor,
    JobInsertParams, JobState, MissedRunPolicy, QueueExecutor,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::TestDb;

use super::{
    all_jobs, base_time, claim, complete, completion, conn, failed, get, ids_of, ms, sorted,
};

pub(super) fn schedule(
    name: &str,
    expression: &str,
    next_run_at: DateTime<Utc>,
) -> CronScheduleUpsertParams {
    CronScheduleUpsertParams {
        spec: CronScheduleSpec {
            name: name.to_owned(),
            expression: expression.to_owned(),
            timezone: "UTC".into(),
            job_type: "cleanup".into(),
            queue: "maint".into(),
            payload: json!({"retention_days": 7}),
            priority: 3,
            enabled: true,
            missed_policy: MissedRunPolicy::RunOnce,
        },
        next_run_at,
    }
}

pub(super) fn cron_job(key: &str) -> JobInsertParams {
    let mut j = JobInsertParams::new("cleanup", json!({"retention_days": 7}));
    j.queue = "maint".into();
    j.priority = 3;
    j.unique_key = Some(key.to_owned());
    j
}

pub(super) async fn schedule_named<E: Executor>(c: &mut E, name: &str) -> CronSchedule {
    c.cron_schedule_list()
        .await
        .expect("cron_schedule_list")
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("schedule {name} not listed"))
}

pub(super) async fn runs<E: Executor>(c: &mut E, name: Option<&str>, limit: i64) -> Vec<CronRun> {
    c.cron_run_list(CronRunListParams {
        schedule_name: name.map(str::to_owned),
        limit,
    })
    .await
    .expect("cron_run_list")
}

/// Schedules upsert (keeping `next_run_at` while the expression is unchanged); occurrences are
/// enqueued exactly once; manual and skipped runs; run state follows the job.
pub async fn cron_schedules_and_runs<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let h = Duration::hours;
    let (n1, n2, n3, n4) = (t0 + h(1), t0 + h(2), t0 + h(24), t0 + h(48));
    let m = t0 + Duration::minutes(5);

    let s = c
        .cron_schedule_upsert(schedule("nightly", "0 2 * * *", n1))
        .await
        .expect("upsert");
    let expected = CronSchedule {
        name: "nightly".into(),
        expression: "0 2 * * *".into(),
        timezone: "UTC".into(),
        job_type: "cleanup".into(),
        queue: "maint".into(),
        payload: json!({"retention_days": 7}),
        priority: 3,
        enabled: true,
        missed_policy: MissedRunPolicy::RunOnce,
        next_run_at: n1,
        last_run_at: None,
    };
    assert_eq!(s, expected);
    assert_eq!(
        c.cron_schedule_list().await.expect("list"),
        vec![expected.clone()]
    );

    // Same expression: next_run_at stays, other fields update.
    let mut same = schedule("nightly", "0 2 * * *", n1 + h(24));
    same.spec.priority = 4;
    same.spec.enabled = false;
    same.spec.missed_policy = MissedRunPolicy::Skip;
    let s = c.cron_schedule_upsert(same).await.expect("upsert");
    assert_eq!(
        s.next_run_at, n1,
        "an unchanged expression must keep next_run_at"
    );
    assert_eq!(
        (s.priority, s.enabled, s.missed_policy),
        (4, false, MissedRunPolicy::Skip)
    );

    // A new expression (or time zone) replaces next_run_at.
    let s = c
        .cron_schedule_upsert(schedule("nightly", "0 3 * * *", n2 - h(1)))
        .await
        .expect("upsert");
    assert_eq!(
        (s.expression.as_str(), s.next_run_at),
        ("0 3 * * *", n2 - h(1))
    );
    let mut tz = schedule("nightly", "0 3 * * *", n2);
    tz.spec.timezone = "Europe/Paris".into();
    let s = c.cron_schedule_upsert(tz).await.expect("upsert");
    assert_eq!((s.timezone.as_str(), s.next_run_at), ("Europe/Paris", n2));
    assert_eq!((s.priority, s.enabled), (3, true));
    assert_eq!(c.cron_schedule_list().await.expect("list").len(), 1);

    let occurrence =
        |for_: DateTime<Utc>, expected: Option<DateTime<Utc>>, next, job: Option<_>| {
            CronRunEnqueueParams {
                schedule_name: "nightly".into(),
                scheduled_for: for_,
                expected_next_run_at: expected,
                next_run_at: next,
                action: job.map_or(CronRunAction::Skip, CronRunAction::Enqueue),
                message: None,
            }
        };

    // A manual run: recorded, the schedule does not move.
    let manual = |key: &str| CronRunEnqueueParams {
        message: Some("manual".into()),
        ..occurrence(m, None, t0 + h(1000), Some(cron_job(key)))
    };
    let mrun = c
        .cron_run_enqueue(manual("cron:nightly:manual"))
        .await
        .expect("cron_run_enqueue")
        .expect("a manual run is enqueued");
    assert_eq!((mrun.scheduled_for, mrun.status.as_str()), (m, "enqueued"));
    assert_eq!(mrun.message.as_deref(), Some("manual"));
    let j2 = mrun.job_id.expect("the manual run's job");
    let s = schedule_named(&mut c, "nightly").await;
    assert_eq!(
        (s.next_run_at, s.last_run_at),
        (n2, None),
        "a manual run moved the schedule"
    );

    // A scheduled occurrence (a live manual run does not hold it back).
    let key2 = format!("cron:nightly:{}", n2.timestamp());
    let params = occurrence(n2, Some(n2), n3, Some(cron_job(&key2)));
    let run = c
        .cron_run_enqueue(params.clone())
        .await
        .expect("cron_run_enqueue")
        .expect("the occurrence is enqueued");
    assert_eq!(run.schedule_name, "nightly");
    assert_eq!(run.scheduled_for, n2);
    assert_eq!(run.status, "enqueued");
    assert_eq!(
        (run.started_at, run.finished_at, run.message.as_deref()),
        (None, None, None)
    );
    let j1 = run.job_id.expect("the run names its job");
    let j = get(&mut c, j1).await;
    assert_eq!(
        (j.job_type.as_str(), j.queue.as_str(), j.priority, j.status),
        ("cleanup", "maint", 3, JobState::Queued)
    );
    assert_eq!(j.unique_key.as_deref(), Some(key2.as_str()));
    assert_eq!(j.payload, json!({"retention_days": 7}));
    let s = schedule_named(&mut c, "nightly").await;
    assert_eq!(
        (s.next_run_at, s.last_run_at),
        (n3, Some(n2)),
        "schedule advanced"
    );

    // The same call again (another node, or a retry): nothing.
    let jobs_before = all_jobs(&mut c).await.len();
    assert!(
        c.cron_run_enqueue(params)
            .await
            .expect("cron_run_enqueue")
            .is_none(),
        "an occurrence enqueued twice"
    );
    assert_eq!(
        all_jobs(&mut c).await.len(),
        jobs_before,
        "a stale enqueue inserted a job"
    );
    assert_eq!(runs(&mut c, Some("nightly"), 100).await.len(), 2);
    let s = schedule_named(&mut c, "nightly").await;
    assert_eq!((s.next_run_at, s.last_run_at), (n3, Some(n2)));
    assert_ne!(j2, j1);

    // A second manual run while runs are live: refused, nothing written.
    let mut again = manual("cron:nightly:manual-2");
    again.scheduled_for = m + Duration::minutes(1);
    assert!(
        c.cron_run_enqueue(again)
            .await
            .expect("cron_run_enqueue")
            .is_none(),
        "a manual run was enqueued while a run was live"
    );
    assert_eq!(all_jobs(&mut c).await.len(), jobs_before);
    assert_eq!(runs(&mut c, Some("nightly"), 100).await.len(), 2);

    // A skipped occurrence: no job, the schedule advances.
    let jobs_before = all_jobs(&mut c).await.len();
    let mut skip = occurrence(n3, Some(n3), n4, None);
    skip.message = Some("missed".into());
    let srun = c
        .cron_run_enqueue(skip)
        .await
        .expect("cron_run_enqueue")
        .expect("a skipped occurrence is recorded");
    assert_eq!((srun.status.as_str(), srun.job_id), ("skipped", None));
    assert_eq!(srun.message.as_deref(), Some("missed"));
    assert_eq!(
        all_jobs(&mut c).await.len(),
        jobs_before,
        "a skipped occurrence inserted a job"
    );
    let s = schedule_named(&mut c, "nightly").await;
    assert_eq!(
        s.next_run_at, n4,
        "a skipped occurrence must advance the schedule"
    );
    assert_eq!(
        s.last_run_at,
        Some(n2),
        "last_run_at names the last enqueued occurrence"
    );

    // An unknown schedule.
    let mut unknown = occurrence(n2, Some(n2), n3, Some(cron_job("cron:nope")));
    unknown.schedule_name = "nope".into();
    assert!(
        c.cron_run_enqueue(unknown)
            .await
            .expect("enqueue")
            .is_none()
    );

    // Listing: newest occurrence first, filtered by schedule.
    c.cron_schedule_upsert(schedule("hourly", "0 * * * *", t0 + Duration::minutes(30)))
        .await
        .expect("upsert");
    let h1 = t0 + Duration::minutes(30);
    let hourly = CronRunEnqueueParams {
        schedule_name: "hourly".into(),
        scheduled_for: h1,
        expected_next_run_at: Some(h1),
        next_run_at: h1 + h(1),
        action: CronRunAction::Enqueue(cron_job("cron:hourly:1")),
        message: None,
    };
    let hrun = c
        .cron_run_enqueue(hourly)
        .await
        .expect("enqueue")
        .expect("enqueued");
    let all: Vec<_> = runs(&mut c, None, 100).await.iter().map(|r| r.id).collect();
    assert_eq!(
        all,
        [srun.id, run.id, hrun.id, mrun.id],
        "newest occurrence first"
    );
    let nightly: Vec<_> = runs(&mut c, Some("nightly"), 100)
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(nightly, [srun.id, run.id, mrun.id]);
    let two: Vec<_> = runs(&mut c, Some("nightly"), 2)
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(two, [srun.id, run.id], "limit");
    assert!(runs(&mut c, Some("nope"), 100).await.is_empty());

    // Run state follows the job's.
    let by_id = |rs: Vec<CronRun>, id: i64| rs.into_iter().find(|r| r.id == id).expect("run");
    let changed = c.cron_run_sync().await.expect("cron_run_sync");
    assert_eq!(changed, 3, "enqueued runs take their queued jobs' state");
    let rs = runs(&mut c, None, 100).await;
    assert_eq!(by_id(rs.clone(), run.id).status, "queued");
    assert_eq!(
        by_id(rs.clone(), srun.id).status,
        "skipped",
        "a skipped run has no job"
    );

    // The cron jobs' run_at is the database's "now": claim well after it.
    let claim_at = Utc::now().trunc_subsecs(0) + h(1);
    let got = claim(&mut c, "maint", "w", 10, claim_at).await;
    assert_eq!(
        sorted(ids_of(&got)),
        sorted(vec![j1, j2, hrun.job_id.expect("job")])
    );
    assert_eq!(c.cron_run_sync().await.expect("sync"), 3);
    let r = by_id(runs(&mut c, None, 100).await, run.id);
    assert_eq!(
        (r.status.as_str(), r.started_at, r.finished_at),
        ("running", Some(claim_at), None)
    );

    let fin = claim_at + Duration::seconds(2);
    let done = complete(
        &mut c,
        vec![
            completion(j1, 1, "w", claim_at, fin, CompletionOutcome::Completed),
            completion(j2, 1, "w", claim_at, fin, failed("kaput")),
        ],
    )
    .await;
    assert_eq!(done, sorted(vec![j1, j2]));
    assert_eq!(c.cron_run_sync().await.expect("sync"), 2);
    let rs = runs(&mut c, None, 100).await;
    let r = by_id(rs.clone(), run.id);
    assert_eq!(
        (
            r.status.as_str(),
            r.started_at,
            r.finished_at,
            r.message.as_deref()
        ),
        ("completed", Some(claim_at), Some(fin), None)
    );
    let r = by_id(rs.clone(), mrun.id);
    assert_eq!(
        (
            r.status.as_str(),
            r.started_at,
            r.finished_at,
            r.message.as_deref()
        ),
        ("failed", Some(claim_at), Some(fin), Some("kaput"))
    );
    assert_eq!(by_id(rs, hrun.id).status, "running");
    assert_eq!(
        c.cron_run_sync().await.expect("sync"),
        0,
        "finished runs are not synced again"
    );
}

/// The job a cron occurrence enqueues keeps every field of its [`JobInsertParams`], as
/// `job_insert_many` would store them.
pub async fn cron_run_enqueue_job_fields<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let next = t0 + Duration::hours(1);
    c.cron_schedule_upsert(schedule("fields", "0 * * * *", next))
        .await
        .expect("upsert");
    let doc = Uuid::new_v4();
    let mut j = cron_job("cron:fields:1");
    j.run_at = Some(next + Duration::minutes(5));
    j.document_id = Some(doc);
    j.max_attempts = 2;
    j.priority = 6;
    j.payload = json!({"what": "report", "n": 3});
    let run = c
        .cron_run_enqueue(CronRunEnqueueParams {
            schedule_name: "fields".into(),
            scheduled_for: next,
            expected_next_run_at: Some(next),
            next_run_at: next + Duration::hours(1),
            action: CronRunAction::Enqueue(j.clone()),
            message: None,
        })
        .await
        .expect("cron_run_enqueue")
        .expect("enqueued");
    let stored = get(&mut c, run.job_id.expect("job")).await;
    assert_eq!(stored.job_type, j.job_type);
    assert_eq!(stored.queue, j.queue);
    assert_eq!(stored.priority, 6);
    assert_eq!(stored.payload, j.payload);
    assert_eq!(stored.max_attempts, 2);
    assert_eq!(stored.unique_key, j.unique_key);
    assert_eq!(
        (stored.run_at, stored.document_id),
        (next + Duration::minutes(5), Some(doc)),
        "(run_at, document_id) of the enqueued job: the params' values were dropped"
    );
}

/// An occurrence already recorded is not enqueued again, and leaves nothing behind ("all or
/// nothing"), manual or scheduled; the schedule still moves past it.
pub async fn cron_run_enqueue_recorded_occurrence<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let h = Duration::hours;
    let (n1, n2) = (t0 + h(1), t0 + h(2));
    c.cron_schedule_upsert(schedule("rec", "0 * * * *", n1))
        .await
        .expect("upsert");
    let manual = |key: &str| CronRunEnqueueParams {
        schedule_name: "rec".into(),
        scheduled_for: n1,
        expected_next_run_at: None,
        next_run_at: n2,
        action: CronRunAction::Enqueue(cron_job(key)),
        message: Some("manual".into()),
    };
    let first = c
        .cron_run_enqueue(manual("rec:a"))
        .await
        .expect("enqueue")
        .expect("enqueued");
    let first_job = first.job_id.expect("job");
    // Its job finishes, so that its unique key no longer blocks anything.
    let got = claim(&mut c, "maint", "w", 10, Utc::now() + h(1)).await;
    assert_eq!(ids_of(&got), vec![first_job]);
    let started = got[0].started_at.expect("started_at");
    let done = complete(
        &mut c,
        vec![completion(
            first_job,
            1,
            "w",
            started,
            started + ms(1),
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert_eq!(done, vec![first_job]);

    assert!(
        c.cron_run_enqueue(manual("rec:b"))
            .await
            .expect("enqueue")
            .is_none(),
        "an occurrence recorded twice"
    );
    let after_manual: Vec<_> = ids_of(&all_jobs(&mut c).await);

    let scheduled = CronRunEnqueueParams {
        schedule_name: "rec".into(),
        scheduled_for: n1,
        expected_next_run_at: Some(n1),
        next_run_at: n2,
        action: CronRunAction::Enqueue(cron_job("rec:a")),
        message: None,
    };
    assert!(
        c.cron_run_enqueue(scheduled)
            .await
            .expect("enqueue")
            .is_none(),
        "an occurrence recorded twice"
    );
    let after_scheduled: Vec<_> = ids_of(&all_jobs(&mut c).await);
    assert_eq!(
        (after_manual, after_scheduled),
        (vec![first_job], vec![first_job]),
        "jobs (newest first) after the refused manual run, and after the refused scheduled run: \
         a refused enqueue must leave no job behind"
    );
    assert_eq!(runs(&mut c, Some("rec"), 10).await.len(), 1);
    let s = schedule_named(&mut c, "rec").await;
    assert_eq!(
        s.next_run_at, n2,
        "the schedule is stuck on a recorded occurrence"
    );
}

/// An occurrence whose job key is already held by a live job is recorded as `duplicate` (a
/// final state) with no job, rather than as an `enqueued` run that nothing would ever move on.
pub async fn cron_run_duplicate_job<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let next = base_time().trunc_subsecs(0) + Duration::minutes(5);
    c.cron_schedule_upsert(schedule("dup", "*/5 * * * *", next))
        .await
        .expect("upsert");
    let holder = c
        .job_insert_many(docket_core::JobInsertManyParams {
            jobs: vec![cron_job("cron:dup:held")],
        })
        .await
        .expect("insert")[0];
    assert!(!holder.duplicate);
    let run = c
        .cron_run_enqueue(CronRunEnqueueParams {
            schedule_name: "dup".into(),
            scheduled_for: next,
            expected_next_run_at: Some(next),
            next_run_at: next + Duration::minutes(5),
            action: CronRunAction::Enqueue(cron_job("cron:dup:held")),
            message: None,
        })
        .await
        .expect("cron_run_enqueue")
        .expect("a run is recorded");
    assert_eq!((run.status.as_str(), run.job_id), ("duplicate", None));
    assert_eq!(all_jobs(&mut c).await.len(), 1, "no second job");
    assert_eq!(
        schedule_named(&mut c, "dup").await.next_run_at,
        next + Duration::minutes(5)
    );
}

/// The due schedules are the enabled ones whose `next_run_at` is at or before `now`, by name;
/// the answer names the time that decided it, the database's clock when none is given.
pub async fn cron_schedule_due_at_now<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let m = Duration::minutes;
    c.cron_schedule_upsert(schedule("b-due", "* * * * *", t0 - m(1)))
        .await
        .expect("upsert");
    c.cron_schedule_upsert(schedule("a-due-now", "* * * * *", t0))
        .await
        .expect("upsert");
    c.cron_schedule_upsert(schedule("c-later", "* * * * *", t0 + m(1)))
        .await
        .expect("upsert");
    let mut off = schedule("d-disabled", "* * * * *", t0 - m(1));
    off.spec.enabled = false;
    c.cron_schedule_upsert(off).await.expect("upsert");

    let due = |now| CronScheduleDueParams { now };
    let got = c.cron_schedule_due(due(Some(t0))).await.expect("due");
    assert_eq!(got.now, t0, "the time given is the time used");
    let names: Vec<_> = got.schedules.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["a-due-now", "b-due"],
        "enabled schedules with next_run_at <= now, by name"
    );
    assert_eq!(got.schedules[0], schedule_named(&mut c, "a-due-now").await);

    let got = c
        .cron_schedule_due(due(Some(t0 - m(5))))
        .await
        .expect("due");
    assert_eq!((got.now, got.schedules.len()), (t0 - m(5), 0));

    // No time given: the database's clock (on SQLite, the process's), even when nothing is
    // due.
    let before = Utc::now();
    let got = c.cron_schedule_due(due(None)).await.expect("due");
    let after = Utc::now();
    let slack = Duration::seconds(5);
    assert!(
        got.now >= before - slack && got.now <= after + slack,
        "now {} is not the clock's, between {before} and {after}",
        got.now
    );
    let names: Vec<_> = got.schedules.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a-due-now", "b-due"]);
    c.cron_schedule_upsert(schedule("b-due", "0 0 1 1 *", t0 + Duration::days(400)))
        .await
        .expect("upsert");
    c.cron_schedule_upsert(schedule("a-due-now", "0 0 1 1 *", t0 + Duration::days(400)))
        .await
        .expect("upsert");
    let got = c.cron_schedule_due(due(None)).await.expect("due");
    assert!(got.schedules.is_empty(), "{:?}", got.schedules);
    assert!(
        got.now >= before - slack,
        "the clock comes back with no schedule due"
    );
}

/// An occurrence of a schedule that cannot run is recorded as `invalid`, with no job and the
/// reason as message; the schedule moves to the `next_run_at` given, and its `last_run_at`
/// (the last occurrence enqueued) stays.
pub async fn cron_run_invalid_recorded<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let (n1, parked) = (t0 + Duration::hours(1), t0 + Duration::days(3650));
    c.cron_schedule_upsert(schedule("bad", "0 * * * *", n1))
        .await
        .expect("upsert");
    let jobs_before = all_jobs(&mut c).await.len();
    let run = c
        .cron_run_enqueue(CronRunEnqueueParams {
            schedule_name: "bad".into(),
            scheduled_for: n1,
            expected_next_run_at: Some(n1),
            next_run_at: parked,
            action: CronRunAction::Invalid,
            message: Some("unknown time zone \"Mars/Olympus\"".into()),
        })
        .await
        .expect("cron_run_enqueue")
        .expect("the invalid occurrence is recorded");
    assert_eq!(
        (run.status.as_str(), run.job_id, run.scheduled_for),
        ("invalid", None, n1)
    );
    assert_eq!(
        run.message.as_deref(),
        Some("unknown time zone \"Mars/Olympus\"")
    );
    assert_eq!(all_jobs(&mut c).await.len(), jobs_before, "no job");
    let s = schedule_named(&mut c, "bad").await;
    assert_eq!((s.next_run_at, s.last_run_at), (parked, None));
    assert_eq!(runs(&mut c, Some("bad"), 10).await, vec![run.clone()]);
    // Not a run to keep in step with a job.
    assert_eq!(c.cron_run_sync().await.expect("sync"), 0);
    assert_eq!(runs(&mut c, Some("bad"), 10).await, vec![run]);
}
