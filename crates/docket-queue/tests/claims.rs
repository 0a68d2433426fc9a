//! Claims that end elsewhere, leases that cannot lie, rescues that back off, and process-now
//! without strays: the runtime on both backends.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use docket_conformance::both_backends;
use docket_conformance::harness::{TestDb, connect_pg, postgres};
use docket_core::*;
use docket_queue::maintenance::{Rescuer, RescuerConfig};
use docket_queue::retry::Backoff;
use docket_queue::*;

mod common;
use common::*;

fn config(queue: &str, concurrency: usize) -> RuntimeConfig {
    RuntimeConfig {
        queues: vec![QueueConfig {
            name: queue.into(),
            concurrency,
        }],
        ..fast_config()
    }
}

fn in_queue(queue: &str) -> InsertOpts {
    InsertOpts {
        queue: Some(queue.into()),
        ..InsertOpts::default()
    }
}

/// An operator's cancel reaches the running handler through its token at once (the
/// broadcast, not the heartbeat: that is set to a minute), is recorded as a cancelled attempt,
/// and the job and the audit trail say so.
#[both_backends]
async fn cancel_tells_the_running_handler<T: TestDb>(db: T) {
    let d = db.driver();
    let cfg = RuntimeConfig {
        heartbeat_interval: Duration::from_secs(60),
        lease: Duration::from_secs(300),
        ..config("cx", 2)
    };
    let (h, mut rx) = start(d, cfg);
    let id = enqueue(d, "wait", Action::AwaitCancel, in_queue("cx")).await;
    assert_eq!(recv(&mut rx).await, "wait");
    let o = admin::cancel(d, "key:ops", vec![id]).await.unwrap();
    assert_eq!(o.changed, vec![id]);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(3), recv(&mut rx))
            .await
            .expect("the handler is told within 3 s"),
        "wait-stopped"
    );
    h.shutdown().await;
    assert_eq!(job(d, id).await.status, JobState::Cancelled);
    assert_eq!(outcomes(d, id).await, vec![AttemptOutcome::Cancelled]);
    let audit = d
        .conn()
        .await
        .unwrap()
        .audit_list(AuditListParams {
            job_id: Some(id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (
            audit.len(),
            audit[0].actor.as_str(),
            audit[0].action.as_str()
        ),
        (1, "key:ops", "cancel")
    );
}

/// Without any broadcast (a cancel written straight to the database, as by another tool),
/// the heartbeat's check of the running claims tells the handler within an interval; a
/// handler that ignores its token is dropped after the cancel grace, freeing its slot.
#[both_backends]
async fn the_heartbeat_finds_lost_claims_and_stubborn_handlers_are_dropped<T: TestDb>(db: T) {
    let d = db.driver();
    let cfg = RuntimeConfig {
        cancel_grace: Duration::from_millis(100),
        ..config("hb", 1)
    };
    let (h, mut rx) = start(d, cfg);
    let polite = enqueue(d, "polite", Action::AwaitCancel, in_queue("hb")).await;
    assert_eq!(recv(&mut rx).await, "polite");
    let cancel = |id| JobCancelParams {
        ids: vec![id],
        now: None,
    };
    d.conn()
        .await
        .unwrap()
        .job_cancel(cancel(polite))
        .await
        .unwrap();
    assert_eq!(recv(&mut rx).await, "polite-stopped");

    // Concurrency 1: the next job runs only once the stubborn one's slot is free.
    let stubborn = enqueue(d, "stubborn", Action::Sleep(60_000), in_queue("hb")).await;
    assert_eq!(recv(&mut rx).await, "stubborn");
    let next = enqueue(d, "next", Action::Ok, in_queue("hb")).await;
    d.conn()
        .await
        .unwrap()
        .job_cancel(cancel(stubborn))
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), recv(&mut rx))
            .await
            .expect("the stubborn handler is dropped and the slot freed"),
        "next"
    );
    until_state(d, next, JobState::Completed).await;
    h.shutdown().await;
    assert_eq!(job(d, stubborn).await.status, JobState::Cancelled);
}

/// A claim taken back by the rescuer (the worker looked dead) stops its handler too, and the
/// handler's late success is refused.
#[both_backends]
async fn a_rescued_claim_stops_its_handler<T: TestDb>(db: T) {
    let d = db.driver();
    let (h, mut rx) = start(d, config("rs", 2));
    let id = enqueue(d, "slow", Action::AwaitCancel, in_queue("rs")).await;
    assert_eq!(recv(&mut rx).await, "slow");
    // The rescuer takes it back as if the worker's lease had lapsed: its clock is five
    // minutes ahead.
    let clock = Arc::new(ManualClock::new(Utc::now() + chrono::Duration::minutes(5)));
    let rescuer = Rescuer::new(d.clone(), RescuerConfig::default(), clock).unwrap();
    let r = rescuer.run_once().await.unwrap();
    assert_eq!(r.requeued, vec![id]);
    assert_eq!(recv(&mut rx).await, "slow-stopped");
    h.shutdown().await;
    let j = job(d, id).await;
    assert_eq!((j.status, j.rescues), (JobState::Queued, 1));
    assert!(j.run_at > Utc::now(), "a rescued job waits its backoff");
    assert_eq!(outcomes(d, id).await, vec![AttemptOutcome::Rescued]);
}

/// Rescued jobs wait their kind's backoff (not due at once, so a job that kills its worker
/// does not crash-loop) and get back the attempt that died with the worker (a job allowed one
/// attempt is not dead-lettered because its worker was killed); a job whose worker died
/// `max_rescues` times in a row is dead-lettered, saying why.
#[both_backends]
async fn rescues_back_off_and_stop_after_max_rescues<T: TestDb>(db: T) {
    let d = db.driver();
    let t0 = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let mut rescuer = Rescuer::new(
        d.clone(),
        RescuerConfig {
            max_rescues: 3,
            ..Default::default()
        },
        Arc::new(clock.clone()),
    )
    .unwrap();
    rescuer.set_backoffs(
        [(
            "test.task".to_owned(),
            Backoff {
                steps: vec![Duration::from_secs(120)],
                jitter: 0.0,
            },
        )]
        .into(),
    );
    let mut opts = in_queue("rb");
    opts.max_attempts = Some(1);
    let id = enqueue(d, "killer", Action::Ok, opts).await;
    let mut now = t0 + chrono::Duration::hours(1);
    for round in 1..=3 {
        let claimed = d
            .conn()
            .await
            .unwrap()
            .job_get_available(JobGetAvailableParams {
                worker_id: format!("gone-{round}"),
                queue: "rb".into(),
                limit: 1,
                now: Some(now),
            })
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "round {round}: the job is due");
        clock.set(now + chrono::Duration::minutes(1));
        let r = rescuer.run_once().await.unwrap();
        let j = job(d, id).await;
        if round < 3 {
            assert_eq!(r.requeued, vec![id], "round {round}");
            assert_eq!(j.status, JobState::Queued);
            assert_eq!(
                (j.attempts, j.max_attempts),
                (round, 1 + round),
                "round {round}: the attempt that died with its worker is given back"
            );
            assert_eq!(
                j.run_at,
                now + chrono::Duration::minutes(1) + chrono::Duration::minutes(2),
                "round {round}: due after the kind's backoff"
            );
            now = j.run_at;
        } else {
            assert_eq!(r.failed, vec![id]);
            assert_eq!(j.status, JobState::Failed);
            let e = j.last_error.unwrap_or_default();
            assert!(
                e.contains("3 times in a row") && e.contains("max_rescues"),
                "{e}"
            );
        }
    }
}

/// A driver whose liveness connection hangs while `hang` is set: a heartbeat that never
/// answers; and, once armed ([`HOLD_ARMED`]), whose next pooled connection is held until the
/// test lets it go (fault injection).
#[derive(Clone)]
struct Hanging<D> {
    inner: D,
    hang: Arc<AtomicBool>,
    hold: Arc<AtomicU8>,
}

const HOLD_OFF: u8 = 0;
const HOLD_ARMED: u8 = 1;
const HOLD_HELD: u8 = 2;

impl<D> Hanging<D> {
    fn new(inner: D) -> Self {
        Self {
            inner,
            hang: Arc::default(),
            hold: Arc::default(),
        }
    }
}

impl<D: QueueDriver> QueueDriver for Hanging<D> {
    type Conn = D::Conn;
    type Tx = D::Tx;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn conn(&self) -> Result<Self::Conn> {
        let held = self
            .hold
            .compare_exchange(HOLD_ARMED, HOLD_HELD, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        while held && self.hold.load(Ordering::SeqCst) == HOLD_HELD {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.inner.conn().await
    }

    async fn control_conn(&self) -> Result<Self::Conn> {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.control_conn().await
    }

    fn begin(&self) -> impl Future<Output = Result<Self::Tx>> + Send {
        self.inner.begin()
    }

    fn migrate(&self) -> impl Future<Output = Result<()>> + Send {
        self.inner.migrate()
    }

    fn pending_migrations(&self) -> impl Future<Output = Result<Vec<i64>>> + Send {
        self.inner.pending_migrations()
    }

    fn wakeups(&self) -> Wakeups {
        self.inner.wakeups()
    }

    fn broadcasts(&self) -> Broadcasts {
        self.inner.broadcasts()
    }

    fn ping(&self) -> impl Future<Output = Result<()>> + Send {
        self.inner.ping()
    }
}

/// A worker whose heartbeat hangs stops claiming and cancels its running jobs before its
/// lease lapses, hands them back, and claims again once a heartbeat gets through.
#[both_backends]
async fn a_worker_that_cannot_renew_its_lease_stops_first<T: TestDb>(db: T) {
    let d = Hanging::new(db.driver().clone());
    let hang = d.hang.clone();
    let cfg = RuntimeConfig {
        heartbeat_interval: Duration::from_millis(200),
        lease: Duration::from_millis(1_000),
        ..config("ls", 4)
    };
    let (h, mut rx) = start(&d, cfg);
    let busy = enqueue(&d, "busy", Action::AwaitCancel, in_queue("ls")).await;
    assert_eq!(recv(&mut rx).await, "busy");
    let hung_at = std::time::Instant::now();
    hang.store(true, Ordering::SeqCst);
    assert_eq!(recv(&mut rx).await, "busy-stopped");
    assert!(
        hung_at.elapsed() < Duration::from_millis(1_000),
        "stopped before the lease lapsed: {:?}",
        hung_at.elapsed()
    );
    // Fenced: nothing is claimed.
    let later = enqueue(&d, "later", Action::Ok, in_queue("ls")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(job(&d, later).await.status, JobState::Queued);
    assert!(rx.try_recv().is_err(), "nothing ran while fenced");
    hang.store(false, Ordering::SeqCst);
    // The stopped job was handed back (its claim had not ended elsewhere): it runs again,
    // beside the one that waited.
    let mut next = vec![recv(&mut rx).await, recv(&mut rx).await];
    next.sort();
    assert_eq!(next, vec!["busy", "later"]);
    until_state(&d, later, JobState::Completed).await;
    assert_eq!(outcomes(&d, busy).await[0], AttemptOutcome::Released);
    h.shutdown().await;
}

/// A completion write that stalls (its connection held) does not hold up the next: a second
/// writer records the jobs that finish meanwhile.
#[both_backends]
async fn a_stalled_completion_write_does_not_hold_up_the_next<T: TestDb>(db: T) {
    let d = Hanging::new(db.driver().clone());
    let cfg = RuntimeConfig {
        // Only wake-ups start claims: no poll takes the held connection.
        poll_interval: Duration::from_secs(60),
        ..config("cw", 2)
    };
    let (h, mut rx) = start(&d, cfg);
    let slow = enqueue(&d, "slow", Action::Sleep(200), in_queue("cw")).await;
    assert_eq!(recv(&mut rx).await, "slow");
    // The next connection asked for is the one that writes `slow`'s completion.
    d.hold.store(HOLD_ARMED, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while d.hold.load(Ordering::SeqCst) != HOLD_HELD {
        assert!(std::time::Instant::now() < deadline, "no completion write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let quick = enqueue(&d, "quick", Action::Ok, in_queue("cw")).await;
    assert_eq!(recv(&mut rx).await, "quick");
    until_state(&d, quick, JobState::Completed).await;
    assert_eq!(
        job(&d, slow).await.status,
        JobState::Running,
        "the held write was slow's completion"
    );
    d.hold.store(HOLD_OFF, Ordering::SeqCst);
    until_state(&d, slow, JobState::Completed).await;
    h.shutdown().await;
}

/// Process-now runs its jobs on the runtime's tracker: a caller that goes away (an HTTP
/// client that disconnects) neither cuts the running job short nor strands the others, which
/// go back to the queue at once, uncounted. And one call follows a chain of jobs.
#[both_backends]
async fn process_now_leaves_no_strays_and_follows_chains<T: TestDb>(db: T) {
    let d = db.driver();
    // The runtime works another queue: only process-now takes jobs from "manual".
    let (h, mut rx) = start(d, config("elsewhere", 2));
    let p = h.processor();

    let first = enqueue(d, "m1", Action::Sleep(300), in_queue("manual")).await;
    let second = enqueue(d, "m2", Action::Ok, in_queue("manual")).await;
    let third = enqueue(d, "m3", Action::Ok, in_queue("manual")).await;
    let gone = tokio::time::timeout(
        Duration::from_millis(100),
        p.process(Some("manual".into()), 10),
    )
    .await;
    assert!(gone.is_err(), "the caller went away mid-batch");
    assert_eq!(recv(&mut rx).await, "m1");
    for id in [second, third] {
        let j = until_state(d, id, JobState::Queued).await;
        assert_eq!(j.attempts, 0, "released uncounted");
        assert_eq!(outcomes(d, id).await, vec![AttemptOutcome::Released]);
    }
    until_state(d, first, JobState::Completed).await;

    // A chain: each job enqueues the next in the same queue; one call runs both.
    let chain = enqueue(d, "c", Action::Chain, in_queue("chain")).await;
    let done = p.process(Some("chain".into()), 10).await.unwrap();
    let labels: Vec<_> = done.iter().map(|x| x.outcome).collect();
    assert_eq!(labels, vec!["completed", "completed"], "{done:?}");
    assert_eq!(done[0].id, chain);
    // Within its limit.
    enqueue(d, "c2", Action::Chain, in_queue("chain")).await;
    assert_eq!(p.process(Some("chain".into()), 1).await.unwrap().len(), 1);
    h.shutdown().await;
}

/// On PostgreSQL, a cancel made through another process's driver reaches the handler by
/// `NOTIFY` at once (the heartbeat, the fallback, is set to a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_another_process_arrives_by_notify() {
    let db = postgres().await;
    // Two listening drivers, as two processes would have; their listeners connect in the
    // background, so wait until a broadcast crosses before starting.
    let d = &connect_pg(db.url(), true);
    let other = connect_pg(db.url(), true);
    let mut heard = d.broadcasts().subscribe();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        other.broadcasts().publish("warm-up".into());
        if tokio::time::timeout(Duration::from_millis(200), heard.recv())
            .await
            .is_ok()
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no broadcast crossed");
    }
    let cfg = RuntimeConfig {
        heartbeat_interval: Duration::from_secs(60),
        lease: Duration::from_secs(300),
        ..config("xp", 2)
    };
    let (h, mut rx) = start(d, cfg);
    let id = enqueue(d, "far", Action::AwaitCancel, in_queue("xp")).await;
    assert_eq!(recv(&mut rx).await, "far");
    admin::cancel(&other, "cli:root", vec![id]).await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(3), recv(&mut rx))
            .await
            .expect("told within 3 s"),
        "far-stopped"
    );
    h.shutdown().await;
    assert_eq!(job(d, id).await.status, JobState::Cancelled);
}
