//! The cron scheduler on both backends, driven through `run_once` and `run_now`: a bad stored
//! schedule does not stop the others, the built-in schedules come back on every pass, the
//! database's clock decides what is due, and a manual run waits for the live one.

use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::*;
use docket_queue::maintenance::{CLEANUP_SCHEDULE, ManualRun, Scheduler, SchedulerConfig};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

fn spec(name: &str, expression: &str) -> CronScheduleSpec {
    CronScheduleSpec {
        name: name.into(),
        expression: expression.into(),
        timezone: "UTC".into(),
        job_type: "test.task".into(),
        queue: DEFAULT_QUEUE.into(),
        payload: serde_json::json!({ "label": name }),
        priority: 0,
        enabled: true,
        missed_policy: MissedRunPolicy::RunOnce,
    }
}

/// Stores a schedule as it is, without the scheduler's validation: as a person with `psql`,
/// or an older version, would.
async fn store<D: Driver>(d: &D, spec: CronScheduleSpec, next_run_at: DateTime<Utc>) {
    d.conn()
        .await
        .unwrap()
        .cron_schedule_upsert(CronScheduleUpsertParams { spec, next_run_at })
        .await
        .unwrap();
}

async fn schedule<D: Driver>(d: &D, name: &str) -> Option<CronSchedule> {
    let all = d.conn().await.unwrap().cron_schedule_list().await.unwrap();
    all.into_iter().find(|s| s.name == name)
}

async fn history<D: Driver>(d: &D, name: &str) -> Vec<CronRun> {
    d.conn()
        .await
        .unwrap()
        .cron_run_list(CronRunListParams {
            schedule_name: Some(name.into()),
            limit: 100,
        })
        .await
        .unwrap()
}

fn names(runs: &[CronRun]) -> Vec<&str> {
    runs.iter().map(|r| r.schedule_name.as_str()).collect()
}

/// Schedules that cannot run (a time zone, an expression, a job that does not validate) come
/// first by name and are recorded as `invalid` with the reason; the good one after them runs in
/// the same pass. A bad expression parks its schedule until it is saved with a good one; a bad
/// job moves its schedule to the next occurrence.
#[both_backends]
async fn a_bad_schedule_is_recorded_and_the_others_run<T: TestDb>(db: T) {
    let d = db.driver();
    let clock = ManualClock::new(t0());
    let sched = Scheduler::new(
        d.clone(),
        SchedulerConfig::default(),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let due = t0() + Duration::minutes(5);
    store(
        d,
        CronScheduleSpec {
            timezone: "Mars/Olympus".into(),
            ..spec("a-bad-zone", "*/5 * * * *")
        },
        due,
    )
    .await;
    store(d, spec("b-bad-expression", "every day"), due).await;
    store(
        d,
        CronScheduleSpec {
            priority: 99,
            ..spec("c-bad-job", "*/5 * * * *")
        },
        due,
    )
    .await;
    store(d, spec("d-good", "*/5 * * * *"), due).await;

    clock.set(due + Duration::seconds(1));
    let r = sched.run_once().await.unwrap();
    assert_eq!(names(&r.enqueued), ["d-good"], "the good schedule ran");
    assert_eq!(
        names(&r.invalid),
        ["a-bad-zone", "b-bad-expression", "c-bad-job"]
    );
    assert_eq!((r.skipped, r.failed), (0, 0));
    for run in &r.invalid {
        assert_eq!((run.status.as_str(), run.job_id), ("invalid", None));
        assert_eq!(run.scheduled_for, due);
    }
    let message = |i: usize| r.invalid[i].message.clone().unwrap_or_default();
    assert!(message(0).contains("Mars/Olympus"), "{}", message(0));
    assert!(message(1).contains("every day"), "{}", message(1));
    assert!(message(2).contains("priority"), "{}", message(2));
    assert_eq!(history(d, "a-bad-zone").await, vec![r.invalid[0].clone()]);

    // The history shows it once: the next passes find nothing to do.
    clock.set(due + Duration::seconds(2));
    let r = sched.run_once().await.unwrap();
    assert!(r.enqueued.is_empty() && r.invalid.is_empty(), "{r:?}");
    let parked = schedule(d, "a-bad-zone").await.unwrap().next_run_at;
    assert!(parked > t0() + Duration::days(365 * 1000), "{parked}");
    assert_eq!(
        schedule(d, "c-bad-job").await.unwrap().next_run_at,
        due + Duration::minutes(5),
        "a bad job moves its schedule to the next occurrence"
    );

    // Saved again with a valid time zone, the parked schedule runs at its next occurrence.
    sched
        .upsert(spec("a-bad-zone", "*/5 * * * *"))
        .await
        .unwrap();
    store(
        d,
        spec("c-bad-job", "*/5 * * * *"),
        due + Duration::minutes(5),
    )
    .await;
    clock.set(due + Duration::minutes(5));
    let r = sched.run_once().await.unwrap();
    assert_eq!(names(&r.enqueued), ["a-bad-zone", "c-bad-job", "d-good"]);
    assert!(r.invalid.is_empty(), "{r:?}");
}

/// The built-in schedules are written on the first pass, not again while they are as defined,
/// and come back on the next pass after being deleted or changed by hand.
#[both_backends]
async fn built_in_schedules_are_ensured_on_every_pass<T: TestDb>(db: T) {
    let d = db.driver();
    let clock = ManualClock::new(t0());
    let config = SchedulerConfig {
        builtin: vec![spec("app.sweep", "* * * * *")],
        ..SchedulerConfig::default()
    };
    let sched = Scheduler::new(d.clone(), config, Arc::new(clock.clone())).unwrap();
    let r = sched.run_once().await.unwrap();
    assert_eq!(r.ensured, ["app.sweep", CLEANUP_SCHEDULE]);
    let cleanup = schedule(d, CLEANUP_SCHEDULE).await.unwrap();
    assert_eq!(
        (cleanup.expression.as_str(), cleanup.next_run_at),
        ("0 2 * * *", t0() + Duration::hours(2))
    );
    for _ in 0..3 {
        assert!(
            sched.run_once().await.unwrap().ensured.is_empty(),
            "an unchanged built-in schedule was written again"
        );
    }

    // Deleted between passes (a database restored from an old dump, a person).
    assert_eq!(
        db.query_rows(&format!(
            "DELETE FROM cron_schedules WHERE name = '{CLEANUP_SCHEDULE}' RETURNING name"
        ))
        .await,
        1
    );
    assert!(schedule(d, CLEANUP_SCHEDULE).await.is_none());
    let r = sched.run_once().await.unwrap();
    assert_eq!(r.ensured, [CLEANUP_SCHEDULE]);
    assert_eq!(schedule(d, CLEANUP_SCHEDULE).await.unwrap(), cleanup);

    // Changed by hand: disabled, another expression.
    store(
        d,
        CronScheduleSpec {
            enabled: false,
            ..spec("app.sweep", "0 * * * *")
        },
        t0() + Duration::hours(1),
    )
    .await;
    let r = sched.run_once().await.unwrap();
    assert_eq!(r.ensured, ["app.sweep"]);
    let sweep = schedule(d, "app.sweep").await.unwrap();
    assert_eq!(
        (sweep.expression.as_str(), sweep.enabled, sweep.next_run_at),
        ("* * * * *", true, t0() + Duration::minutes(1))
    );
}

/// A clock that is `ahead` of the real time and, like the wall clock, lets the database use its
/// own.
#[derive(Debug)]
struct SkewedClock {
    ahead: Duration,
}

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.ahead
    }

    fn now_for_db(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// With the wall clock's `None`, the database's clock decides what is due and plans the
/// occurrence: a node whose clock runs two hours ahead neither runs a schedule that is due only
/// by its clock nor takes an on-time occurrence for one two hours late.
#[both_backends]
async fn the_database_clock_decides_what_is_due<T: TestDb>(db: T) {
    let d = db.driver();
    let clock = SkewedClock {
        ahead: Duration::hours(2),
    };
    let sched = Scheduler::new(d.clone(), SchedulerConfig::default(), Arc::new(clock)).unwrap();
    let minute = Utc::now().duration_trunc(Duration::minutes(1)).unwrap();
    store(d, spec("due", "* * * * *"), minute).await;
    store(d, spec("not-yet", "0 * * * *"), minute + Duration::hours(1)).await;
    let r = sched.run_once().await.unwrap();
    assert_eq!(names(&r.enqueued), ["due"]);
    let run = &r.enqueued[0];
    assert!(
        run.scheduled_for >= minute && run.scheduled_for <= Utc::now(),
        "occurrence {} planned from another clock than the database's ({minute})",
        run.scheduled_for
    );
    assert_eq!(
        schedule(d, "not-yet").await.unwrap().next_run_at,
        minute + Duration::hours(1)
    );
}

/// `run_now` enqueues a run, refuses a second one while the first is queued (its queue
/// paused), and enqueues again once it has finished.
#[both_backends]
async fn a_manual_run_waits_for_the_live_one<T: TestDb>(db: T) {
    let d = db.driver();
    let clock = ManualClock::new(t0());
    let sched = Scheduler::new(
        d.clone(),
        SchedulerConfig::default(),
        Arc::new(clock.clone()),
    )
    .unwrap();
    sched.upsert(spec("nightly", "0 3 * * *")).await.unwrap();
    let mut c = d.conn().await.unwrap();
    c.queue_set_paused(QueueSetPausedParams {
        name: DEFAULT_QUEUE.into(),
        paused: true,
        now: Some(t0()),
    })
    .await
    .unwrap();
    drop(c);

    let ManualRun::Enqueued(first) = sched.run_now("nightly").await.unwrap() else {
        panic!("the first manual run was not enqueued");
    };
    assert_eq!(first.message.as_deref(), Some("manual"));
    clock.advance(Duration::seconds(1));
    assert_eq!(sched.run_now("nightly").await.unwrap(), ManualRun::Live);
    assert_eq!(
        sched.run_now("no-such-schedule").await.unwrap(),
        ManualRun::NoSuchSchedule
    );
    assert_eq!(history(d, "nightly").await.len(), 1);

    // Cancelled (finished), it no longer holds the next one back.
    let mut c = d.conn().await.unwrap();
    c.job_cancel(JobCancelParams {
        ids: vec![first.job_id.unwrap()],
        now: Some(t0()),
    })
    .await
    .unwrap();
    drop(c);
    clock.advance(Duration::seconds(1));
    assert!(matches!(
        sched.run_now("nightly").await.unwrap(),
        ManualRun::Enqueued(_)
    ));
}
