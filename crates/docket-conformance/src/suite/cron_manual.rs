//! Cron: manual runs ("run now"), refused while a run of the schedule is live.

use chrono::{DateTime, Duration, Utc};
use docket_core::{
    CompletionOutcome, CronRun, CronRunAction, CronRunEnqueueParams, Executor, JobState,
    QueueDriver, QueueExecutor,
};

use crate::harness::TestDb;

use super::cron::{cron_job, runs, schedule, schedule_named};
use super::{
    all_jobs, base_time, cancel_jobs, claim, complete, completion, conn, get, ids_of, sorted,
};

/// A manual run of `name` at `at` (its job's key made unique by `at`).
fn manual(name: &str, at: DateTime<Utc>) -> CronRunEnqueueParams {
    CronRunEnqueueParams {
        schedule_name: name.to_owned(),
        scheduled_for: at,
        expected_next_run_at: None,
        next_run_at: at,
        action: CronRunAction::Enqueue(cron_job(&format!("cron:{name}:{}", at.timestamp_micros()))),
        message: Some("manual".into()),
    }
}

async fn enqueue<E: Executor>(c: &mut E, p: CronRunEnqueueParams) -> Option<CronRun> {
    c.cron_run_enqueue(p).await.expect("cron_run_enqueue")
}

/// A manual run is refused (`None`, nothing written) while a run of its schedule has a job
/// that is queued, running or retrying, whether that run was manual or scheduled; the job
/// decides, not the run row (which lags until `cron_run_sync`). Other schedules' runs do not
/// count.
pub async fn cron_run_manual_refused_while_live<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;
    let n1 = t0 + Duration::hours(1);
    for name in ["live", "other"] {
        c.cron_schedule_upsert(schedule(name, "0 * * * *", n1))
            .await
            .expect("upsert");
    }
    let refused = |what: &str| format!("a manual run was enqueued while a run was {what}");

    // Queued (as in a paused queue).
    let first = enqueue(&mut c, manual("live", t0 + s(1)))
        .await
        .expect("the first manual run is enqueued");
    let job = first.job_id.expect("its job");
    assert!(
        enqueue(&mut c, manual("live", t0 + s(2))).await.is_none(),
        "{}",
        refused("queued")
    );
    assert_eq!(all_jobs(&mut c).await.len(), 1, "a refused run left a job");
    assert_eq!(runs(&mut c, Some("live"), 10).await.len(), 1);
    assert_eq!(
        schedule_named(&mut c, "live").await.next_run_at,
        n1,
        "a refused run moved the schedule"
    );

    // Another schedule is not held back by it.
    let other = enqueue(&mut c, manual("other", t0 + s(3)))
        .await
        .expect("another schedule's manual run");
    let other_job = other.job_id.expect("its job");

    // Running.
    let at = Utc::now() + Duration::hours(2);
    let got = claim(&mut c, "maint", "w", 10, at).await;
    assert_eq!(sorted(ids_of(&got)), sorted(vec![job, other_job]));
    assert!(
        enqueue(&mut c, manual("live", t0 + s(4))).await.is_none(),
        "{}",
        refused("running")
    );

    // Retrying.
    let retry_at = at + Duration::minutes(5);
    let done = complete(
        &mut c,
        vec![
            completion(
                job,
                1,
                "w",
                at,
                at + s(1),
                CompletionOutcome::Retry {
                    run_at: retry_at,
                    error: "flaky".into(),
                },
            ),
            completion(
                other_job,
                1,
                "w",
                at,
                at + s(1),
                CompletionOutcome::Completed,
            ),
        ],
    )
    .await;
    assert_eq!(done, sorted(vec![job, other_job]));
    assert_eq!(get(&mut c, job).await.status, JobState::Retrying);
    assert!(
        enqueue(&mut c, manual("live", t0 + s(5))).await.is_none(),
        "{}",
        refused("retrying")
    );

    // Finished: its run row still says `enqueued` (nothing synced it), but the job decides.
    let again = retry_at + s(1);
    assert_eq!(ids_of(&claim(&mut c, "maint", "w", 10, again).await), [job]);
    complete(
        &mut c,
        vec![completion(
            job,
            2,
            "w",
            again,
            again + s(1),
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert_eq!(
        runs(&mut c, Some("live"), 10).await[0].status,
        "enqueued",
        "the run row was synced, so this no longer tests that the job decides"
    );
    let second = enqueue(&mut c, manual("live", t0 + s(6)))
        .await
        .expect("a manual run once the live one finished");
    let second_job = second.job_id.expect("its job");
    cancel_jobs(&mut c, vec![second_job], again + s(2)).await;

    // A scheduled occurrence's live job holds manual runs back too; a cancelled one does not.
    let scheduled = enqueue(
        &mut c,
        CronRunEnqueueParams {
            schedule_name: "live".into(),
            scheduled_for: n1,
            expected_next_run_at: Some(n1),
            next_run_at: n1 + Duration::hours(1),
            action: CronRunAction::Enqueue(cron_job("cron:live:scheduled")),
            message: None,
        },
    )
    .await
    .expect("the scheduled occurrence is enqueued");
    assert!(
        enqueue(&mut c, manual("live", t0 + s(7))).await.is_none(),
        "{}",
        refused("scheduled and queued")
    );
    cancel_jobs(
        &mut c,
        vec![scheduled.job_id.expect("its job")],
        again + s(3),
    )
    .await;
    assert!(
        enqueue(&mut c, manual("live", t0 + s(8))).await.is_some(),
        "a cancelled run held a manual run back"
    );
}

/// Two manual runs of one schedule at the same moment, from two connections: one is enqueued,
/// the other refused, round after round.
pub async fn cron_run_manual_concurrent<T: TestDb>(db: &T) {
    let second = db.connect_again().await;
    let mut a = conn(db).await;
    let mut b = second.conn().await.expect("second driver conn()");
    let t0 = base_time();
    a.cron_schedule_upsert(schedule("race", "0 * * * *", t0 + Duration::hours(1)))
        .await
        .expect("upsert");
    let mut at = Utc::now() + Duration::hours(2);
    for round in 0..10 {
        let us = |i: i64| t0 + Duration::microseconds(2 * round + i);
        let (ra, rb) = tokio::join!(
            a.cron_run_enqueue(manual("race", us(0))),
            b.cron_run_enqueue(manual("race", us(1))),
        );
        let won: Vec<CronRun> = [ra, rb]
            .into_iter()
            .filter_map(|r| r.expect("cron_run_enqueue"))
            .collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: two manual runs at once, and {} enqueued",
            won.len()
        );
        // Its job finishes, so that the next round races again.
        let job = won[0].job_id.expect("its job");
        assert_eq!(ids_of(&claim(&mut a, "maint", "w", 10, at).await), [job]);
        let done = complete(
            &mut a,
            vec![completion(
                job,
                1,
                "w",
                at,
                at,
                CompletionOutcome::Completed,
            )],
        )
        .await;
        assert_eq!(done, [job]);
        at += Duration::seconds(1);
    }
    assert_eq!(runs(&mut a, Some("race"), 100).await.len(), 10);
}
