//! The engine on both backends: the runtime, retries, shutdown, and the maintenance services
//! driven through `run_once` with a manual clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::*;
use docket_queue::maintenance::{
    Cleaner, CleanerConfig, Rescuer, RescuerConfig, Scheduler, SchedulerConfig,
};
use docket_queue::*;

mod common;
use common::*;

#[both_backends]
async fn runs_jobs_and_records_one_attempt_each<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, mut rx) = start(d, fast_config());
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(enqueue(d, &format!("j{i}"), Action::Ok, InsertOpts::default()).await);
    }
    for _ in 0..50 {
        recv(&mut rx).await;
    }
    h.shutdown().await;
    for id in ids {
        let j = job(d, id).await;
        assert_eq!(j.status, JobState::Completed);
        assert!(j.completed_at.is_some() && j.locked_by.is_none());
        assert_eq!(outcomes(d, id).await, vec![AttemptOutcome::Completed]);
    }
}

#[both_backends]
async fn retryable_failures_back_off_then_dead_letter<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, mut rx) = start(d, fast_config());
    let opts = InsertOpts {
        max_attempts: Some(3),
        ..Default::default()
    };
    let id = enqueue(d, "flaky", Action::Retryable, opts).await;
    for _ in 0..3 {
        assert_eq!(recv(&mut rx).await, "flaky");
    }
    let j = until_state(d, id, JobState::Failed).await;
    h.shutdown().await;
    assert_eq!(j.attempts, 3);
    assert_eq!(j.last_error.as_deref(), Some("flaky (attempt 3 of 3)"));
    use AttemptOutcome::*;
    assert_eq!(outcomes(d, id).await, vec![Retried, Retried, Failed]);
}

#[both_backends]
async fn permanent_errors_dead_letter_at_once<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, mut rx) = start(d, fast_config());
    let id = enqueue(d, "bad", Action::Permanent, InsertOpts::default()).await;
    recv(&mut rx).await;
    let j = until_state(d, id, JobState::Failed).await;
    h.shutdown().await;
    assert_eq!(
        (j.attempts, j.last_error.as_deref()),
        (1, Some("corrupt input"))
    );
    assert!(rx.try_recv().is_err(), "never retried");
}

#[both_backends]
async fn unknown_kinds_and_bad_payloads_fail_with_the_reason<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, _rx) = start(d, fast_config());
    let client = Client::new(d.clone());
    let r = client
        .insert_raw(vec![
            JobInsertParams::new("no.such.kind", serde_json::json!({})),
            JobInsertParams::new("test.task", serde_json::json!({ "label": 7 })),
        ])
        .await
        .unwrap();
    let unknown = until_state(d, r[0].id, JobState::Failed).await;
    let bad = until_state(d, r[1].id, JobState::Failed).await;
    h.shutdown().await;
    assert!(
        unknown
            .last_error
            .unwrap()
            .contains("no handler registered for job kind \"no.such.kind\"")
    );
    let e = bad.last_error.unwrap();
    assert!(
        e.contains("payload does not deserialize as test.task"),
        "{e}"
    );
    assert_eq!(bad.attempts, 1, "a bad payload is not retried");
}

#[both_backends]
async fn timeouts_and_panics_are_retryable_failures<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, mut rx) = start(d, fast_config());
    let once = InsertOpts {
        max_attempts: Some(1),
        ..Default::default()
    };
    let slow = enqueue(d, "slow", Action::Sleep(5_000), once.clone()).await;
    let boom = enqueue(d, "boom", Action::Panic, once).await;
    recv(&mut rx).await;
    recv(&mut rx).await;
    let slow = until_state(d, slow, JobState::Failed).await;
    let boom = until_state(d, boom, JobState::Failed).await;
    h.shutdown().await;
    assert!(slow.last_error.unwrap().starts_with("timed out after 2.5s"));
    assert!(
        boom.last_error
            .unwrap()
            .starts_with("handler panicked: boom")
    );
}

#[both_backends]
async fn higher_priority_runs_first<T: TestDb>(db: T) {
    let d = db.driver();
    let client = Client::new(d.clone());
    for (label, p) in [("low", 0), ("high", 9), ("mid", 5)] {
        let opts = InsertOpts {
            priority: Some(p),
            ..Default::default()
        };
        client
            .insert(
                &Task {
                    label: label.into(),
                    action: Action::Ok,
                },
                opts,
            )
            .await
            .unwrap();
    }
    let mut cfg = fast_config();
    cfg.queues[0].concurrency = 1;
    let (h, mut rx) = start(d, cfg);
    let order = vec![
        recv(&mut rx).await,
        recv(&mut rx).await,
        recv(&mut rx).await,
    ];
    h.shutdown().await;
    assert_eq!(order, ["high", "mid", "low"]);
}

#[both_backends]
async fn a_handler_completes_its_job_in_its_own_transaction<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, mut rx) = start(d, fast_config());
    let id = enqueue(d, "stage", Action::Chain, InsertOpts::default()).await;
    assert_eq!(recv(&mut rx).await, "stage");
    assert_eq!(recv(&mut rx).await, "stage-next");
    h.shutdown().await;
    assert_eq!(job(d, id).await.status, JobState::Completed);
    assert_eq!(
        outcomes(d, id).await,
        vec![AttemptOutcome::Completed],
        "completed once"
    );
}

#[both_backends]
async fn shutdown_releases_unfinished_jobs_uncounted<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, mut rx) = start(d, fast_config());
    let id = enqueue(d, "long", Action::Sleep(400), InsertOpts::default()).await;
    recv(&mut rx).await;
    h.shutdown().await; // grace 200 ms < 400 ms
    let j = job(d, id).await;
    assert_eq!((j.status, j.attempts), (JobState::Queued, 0));
    assert_eq!(outcomes(d, id).await, vec![AttemptOutcome::Released]);
}

#[both_backends]
async fn a_job_cancelled_while_running_stays_cancelled<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, mut rx) = start(d, fast_config());
    let id = enqueue(d, "doomed", Action::Sleep(300), InsertOpts::default()).await;
    recv(&mut rx).await;
    let cancelled = d
        .conn()
        .await
        .unwrap()
        .job_cancel(JobCancelParams {
            ids: vec![id],
            now: None,
        })
        .await
        .unwrap();
    assert_eq!(cancelled, vec![id]);
    h.shutdown().await; // the handler finishes and its completion is refused
    assert_eq!(job(d, id).await.status, JobState::Cancelled);
    assert_eq!(outcomes(d, id).await, vec![AttemptOutcome::Cancelled]);
}

#[both_backends]
async fn a_paused_queue_holds_its_jobs_until_resumed<T: TestDb>(db: T) {
    let d = db.driver();
    let pause = |paused| QueueSetPausedParams {
        name: DEFAULT_QUEUE.into(),
        paused,
        now: None,
    };
    d.conn()
        .await
        .unwrap()
        .queue_set_paused(pause(true))
        .await
        .unwrap();
    let (h, mut rx) = start(d, fast_config());
    let id = enqueue(d, "held", Action::Ok, InsertOpts::default()).await;
    // Several poll intervals pass: the job must still wait.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    assert_eq!(job(d, id).await.status, JobState::Queued);
    d.conn()
        .await
        .unwrap()
        .queue_set_paused(pause(false))
        .await
        .unwrap();
    assert_eq!(recv(&mut rx).await, "held");
    h.shutdown().await;
}

#[both_backends]
async fn exactly_one_runtime_leads_and_a_successor_takes_over<T: TestDb>(db: T) {
    let d = db.driver();
    let cfg = || RuntimeConfig {
        maintenance: Some(Default::default()),
        leader_ttl: Duration::from_millis(400),
        ..fast_config()
    };
    let (a, _ra) = start(d, cfg());
    let d2 = db.connect_again().await;
    let (b, _rb) = start(&d2, cfg());
    let mut la = a.leadership();
    let mut lb = b.leadership();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if *la.borrow() || *lb.borrow() {
                break;
            }
            tokio::select! { _ = la.changed() => {}, _ = lb.changed() => {} }
        }
    })
    .await
    .expect("someone leads");
    assert!(a.is_leader() ^ b.is_leader(), "exactly one leader");
    let (leader, mut follower) = if a.is_leader() { (a, lb) } else { (b, la) };
    leader.shutdown().await; // resigns
    tokio::time::timeout(Duration::from_secs(10), follower.wait_for(|l| *l))
        .await
        .expect("the follower takes over")
        .unwrap();
}

#[both_backends]
async fn cpu_heavy_handlers_do_not_starve_other_jobs<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, mut rx) = start(d, fast_config());
    // As many spinners as the test runtime has threads.
    enqueue(d, "spin", Action::Spin(1_500), InsertOpts::default()).await;
    enqueue(d, "spin", Action::Spin(1_500), InsertOpts::default()).await;
    assert_eq!(recv(&mut rx).await, "spin");
    assert_eq!(recv(&mut rx).await, "spin");
    enqueue(d, "ping", Action::Ok, InsertOpts::default()).await;
    assert_eq!(
        recv(&mut rx).await,
        "ping",
        "a quick job runs while the CPU work goes on"
    );
    assert_eq!(recv(&mut rx).await, "spin-done");
    assert_eq!(recv(&mut rx).await, "spin-done");
    h.shutdown().await;
}

#[both_backends]
async fn prefetched_jobs_are_released_on_shutdown<T: TestDb>(db: T) {
    let d = db.driver();
    let mut cfg = fast_config();
    cfg.queues[0].concurrency = 1;
    let (h, mut rx) = start(d, cfg);
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(
            enqueue(
                d,
                &format!("s{i}"),
                Action::Sleep(10),
                InsertOpts::default(),
            )
            .await,
        );
    }
    // At ~100 jobs/s the producer claims a few jobs ahead of its single slot.
    for _ in 0..25 {
        recv(&mut rx).await;
    }
    h.shutdown().await;
    let mut released = 0;
    for id in ids {
        let j = job(d, id).await;
        match j.status {
            JobState::Completed => {
                assert_eq!(outcomes(d, id).await, vec![AttemptOutcome::Completed])
            }
            JobState::Queued => {
                assert_eq!(j.attempts, 0, "a released job's attempt is not counted");
                let o = outcomes(d, id).await;
                assert!(o.is_empty() || o == vec![AttemptOutcome::Released], "{o:?}");
                released += o.len();
            }
            other => panic!("job {id} left {other}"),
        }
    }
    assert!(released >= 1, "claimed-ahead jobs were handed back");
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

#[both_backends]
async fn rescuer_requeues_jobs_of_silent_workers<T: TestDb>(db: T) {
    let d = db.driver();
    let clock = ManualClock::new(t0());
    let mut c = d.conn().await.unwrap();
    c.worker_heartbeat(WorkerHeartbeatParams {
        id: "w".into(),
        hostname: "h".into(),
        pid: 1,
        queues: vec![DEFAULT_QUEUE.into()],
        // The worker's own lease, not the rescuer's: it has none.
        lease: chrono::Duration::seconds(10),
        now: Some(t0()),
    })
    .await
    .unwrap();
    // SQLite has one connection: hand it back before the next call takes it.
    drop(c);
    let id = enqueue(d, "x", Action::Ok, InsertOpts::default()).await;
    let mut c = d.conn().await.unwrap();
    let claimed = c
        .job_get_available(JobGetAvailableParams {
            worker_id: "w".into(),
            queue: DEFAULT_QUEUE.into(),
            limit: 1,
            now: Some(t0() + chrono::Duration::hours(1)),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    drop(c);
    let rescuer =
        Rescuer::new(d.clone(), RescuerConfig::default(), Arc::new(clock.clone())).unwrap();
    // Within the worker's lease: untouched, and the worker stays.
    clock.set(t0() + chrono::Duration::seconds(9));
    assert_eq!(
        rescuer.run_once().await.unwrap(),
        JobRescueResult::default()
    );
    let mut c = d.conn().await.unwrap();
    assert_eq!(c.worker_list(Default::default()).await.unwrap().len(), 1);
    drop(c);
    clock.set(t0() + chrono::Duration::seconds(11));
    let r = rescuer.run_once().await.unwrap();
    assert_eq!(r.requeued, vec![id]);
    assert_eq!(job(d, id).await.status, JobState::Queued);
    // The worker's row goes once its jobs are back in the queue; a worker that comes back
    // writes it again.
    let mut c = d.conn().await.unwrap();
    assert!(c.worker_list(Default::default()).await.unwrap().is_empty());
    drop(c);
    assert!(
        Rescuer::new(
            d.clone(),
            RescuerConfig {
                interval: Duration::ZERO,
                ..Default::default()
            },
            Arc::new(clock)
        )
        .is_err(),
        "a zero interval is refused"
    );
}

fn spec(name: &str, expr: &str, policy: MissedRunPolicy) -> CronScheduleSpec {
    CronScheduleSpec {
        name: name.into(),
        expression: expr.into(),
        timezone: "UTC".into(),
        job_type: "test.task".into(),
        queue: DEFAULT_QUEUE.into(),
        payload: serde_json::json!({ "label": name }),
        priority: 0,
        enabled: true,
        missed_policy: policy,
    }
}

#[both_backends]
async fn scheduler_enqueues_each_occurrence_once_across_nodes<T: TestDb>(db: T) {
    let d = db.driver();
    let clock = ManualClock::new(t0());
    let node =
        |d: T::D| Scheduler::new(d, SchedulerConfig::default(), Arc::new(clock.clone())).unwrap();
    let a = node(d.clone());
    let b = node(db.connect_again().await);
    let s = a
        .upsert(spec("every5", "*/5 * * * *", MissedRunPolicy::RunOnce))
        .await
        .unwrap();
    assert_eq!(s.next_run_at, t0() + chrono::Duration::minutes(5));

    clock.set(t0() + chrono::Duration::minutes(5) + chrono::Duration::seconds(1));
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    let total = ra.unwrap().enqueued.len() + rb.unwrap().enqueued.len();
    assert_eq!(total, 1, "two nodes, one occurrence, one run");
    assert!(
        a.run_once().await.unwrap().enqueued.is_empty(),
        "nothing twice"
    );

    // Everything was down for an hour: run once, note the missed ones, resume on schedule.
    clock.set(t0() + chrono::Duration::minutes(65) + chrono::Duration::seconds(30));
    let r = a.run_once().await.unwrap();
    assert_eq!(r.enqueued.len(), 1);
    let run = &r.enqueued[0];
    assert_eq!(run.scheduled_for, t0() + chrono::Duration::minutes(65));
    assert!(
        run.message.as_deref().unwrap().contains("missed"),
        "{:?}",
        run.message
    );
    let s = d.conn().await.unwrap().cron_schedule_list().await.unwrap();
    let every5 = s.iter().find(|s| s.name == "every5").unwrap();
    assert_eq!(every5.next_run_at, t0() + chrono::Duration::minutes(70));

    // The skip policy records the late occurrence as skipped and enqueues nothing.
    a.upsert(spec("skipper", "0 * * * *", MissedRunPolicy::Skip))
        .await
        .unwrap();
    clock.set(t0() + chrono::Duration::hours(3) + chrono::Duration::minutes(10));
    let r = a.run_once().await.unwrap();
    assert_eq!(r.skipped, 1);
    let runs = d
        .conn()
        .await
        .unwrap()
        .cron_run_list(CronRunListParams {
            schedule_name: Some("skipper".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].status.as_str(), runs[0].job_id), ("skipped", None));

    // A long outage of a fast schedule: the one run is the most recent occurrence.
    a.upsert(spec("everysec", "* * * * * *", MissedRunPolicy::RunOnce))
        .await
        .unwrap();
    let back = t0() + chrono::Duration::hours(8) + chrono::Duration::milliseconds(1_500);
    clock.set(back);
    let r = a.run_once().await.unwrap();
    let run = r
        .enqueued
        .iter()
        .find(|r| r.schedule_name == "everysec")
        .expect("the fast schedule ran");
    assert_eq!(
        run.scheduled_for,
        t0() + chrono::Duration::hours(8) + chrono::Duration::seconds(1)
    );
    assert!(
        run.message
            .as_deref()
            .unwrap()
            .starts_with("over 10000 earlier"),
        "{:?}",
        run.message
    );

    // Invalid expressions are refused with the schedule's name.
    let e = a
        .upsert(spec("broken", "every day", MissedRunPolicy::RunOnce))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("broken"), "{e}");
}

#[both_backends]
async fn cleaner_deletes_by_retention<T: TestDb>(db: T) {
    let d = db.driver();
    let clock = ManualClock::new(t0());
    let ids: Vec<i64> = Client::new(d.clone())
        .insert_raw(
            (0..3)
                .map(|_| JobInsertParams::new("k", serde_json::json!({})))
                .collect(),
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let mut c = d.conn().await.unwrap();
    let claimed = c
        .job_get_available(JobGetAvailableParams {
            worker_id: "w".into(),
            queue: DEFAULT_QUEUE.into(),
            limit: 3,
            now: Some(t0() + chrono::Duration::days(40)),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    // Completed 10 days ago, failed 10 days ago, completed 1 day ago (clock: t0 + 40 days).
    let finish = |id: i64, days_ago: i64, outcome: CompletionOutcome| JobCompletion {
        id,
        claim_token: claimed
            .iter()
            .find(|j| j.id == id)
            .and_then(|j| j.claim_token)
            .expect("claimed"),
        attempt: 1,
        worker_id: "w".into(),
        started_at: t0() + chrono::Duration::days(40 - days_ago),
        finished_at: t0() + chrono::Duration::days(40 - days_ago),
        outcome,
    };
    c.job_complete_many(JobCompleteManyParams {
        completions: vec![
            finish(ids[0], 10, CompletionOutcome::Completed),
            finish(ids[1], 10, CompletionOutcome::Failed { error: "e".into() }),
            finish(ids[2], 1, CompletionOutcome::Completed),
        ],
    })
    .await
    .unwrap();
    drop(c);
    clock.set(t0() + chrono::Duration::days(40));
    let cleaner = Cleaner::new(d.clone(), CleanerConfig::default(), Arc::new(clock)).unwrap();
    assert_eq!(cleaner.run_once().await.unwrap(), 1);
    let mut c = d.conn().await.unwrap();
    assert!(c.job_get(ids[0]).await.unwrap().is_none());
    assert!(
        c.job_get(ids[1]).await.unwrap().is_some(),
        "failed jobs are kept 30 days"
    );
    assert!(c.job_get(ids[2]).await.unwrap().is_some());
}

fn invalid_runtime_config_reports_every_problem() {
    let cfg = RuntimeConfig {
        queues: vec![QueueConfig {
            name: "*".into(),
            concurrency: 0,
        }],
        heartbeat_interval: Duration::from_secs(60),
        ..Default::default()
    };
    let e = cfg.validate().unwrap_err().to_string();
    for part in ["invalid queue name", "concurrency", "heartbeat_interval"] {
        assert!(e.contains(part), "{part}: {e}");
    }
    let cfg = RuntimeConfig {
        lease: Duration::ZERO,
        ..Default::default()
    };
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("lease must be"), "{e}");
}

#[test]
fn runtime_config_validation() {
    invalid_runtime_config_reports_every_problem();
}
