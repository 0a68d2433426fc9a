//! The worker runtime.
//!
//! ```text
//!  wake-ups ─┐
//!            ▼
//!   producer (one per queue) ──claim batch of free slots──▶ job tasks ──▶ completer ──▶ DB
//!            ▲                                              (semaphore)    (batched)
//!            └──────────── a slot frees ◀─────────────────────┘
//!   heartbeat: the worker row, i.e. every running job's lease; checks the running claims
//!   elector: leader only → maintenance (rescuer, cron scheduler)
//! ```
//!
//! **Claims.** Every claim carries a token; every write that ends the attempt presents it, so
//! an old claim can never finish a newer one. A running attempt whose claim ends elsewhere
//! (an operator cancels or retries the job, the rescuer takes it back) is told through its
//! [`JobContext::cancelled`] token: at once when a broadcast says so (PostgreSQL `NOTIFY`
//! across processes), and at the latest at the next heartbeat, which asks the database which
//! of the running claims are gone. A handler that ignores its token is dropped after
//! `cancel_grace`.
//!
//! **Leases.** A heartbeat that hangs gets one interval. A worker that has not renewed its
//! lease for `lease - 1.5 × heartbeat_interval` stops claiming and cancels its running attempts
//! before the lease lapses, rather than keep working on jobs the rescuer is about to hand to
//! someone else; once a heartbeat gets through it hands those jobs back (released, unless the
//! rescuer took them first) and claims again.
//!
//! Claims and completions are batched adaptively, with no tuning: a producer claims as many
//! jobs as it has free slots (up to `claim_batch`), and the completer writes whatever has
//! finished since its last write in one statement. Idle, each call carries one job and adds
//! no delay; under load, batches grow by themselves.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_core::{
    Clock, CompletionOutcome, DEFAULT_QUEUE, Error, JobCompletion, JobGetAvailableParams, JobRow,
    QueueDriver, QueueExecutor, Result,
};
use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::complete::{complete, write_completions};
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

mod complete;
mod lease;
mod process;

pub use process::{PROCESS_BUDGET, Processed, Processor};

use crate::job::{JobContext, JobError, Workers};
use crate::leader::Elector;
use crate::maintenance::{CleanupWorker, Maintenance, MaintenanceConfig};
use crate::retry::Backoff;

/// A queue this runtime works, and how many of its jobs may run at once in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The queue's name.
    pub name: String,
    /// Jobs of this queue running at once in this process. Default 100.
    pub concurrency: usize,
}

impl QueueConfig {
    /// `name` with the default concurrency.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            concurrency: 100,
        }
    }
}

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// This process's worker id; default `<host>-<pid>-<random>`.
    pub worker_id: Option<String>,
    /// The queues to work. Default: `default`, concurrency 100.
    pub queues: Vec<QueueConfig>,
    /// An idle producer looks for work this often even without a wake-up (the fallback when
    /// `LISTEN` is unavailable). Default 1 s.
    pub poll_interval: Duration,
    /// How often the worker renews its lease. Default 5 s; at most half of `lease`.
    pub heartbeat_interval: Duration,
    /// This worker's lease, written with every heartbeat: once it lapses unrenewed, every
    /// reader (the rescuer, `stuck_jobs`, the dashboard, the CLI) holds the worker dead and the
    /// rescuer takes its running jobs back. A worker that cannot renew for
    /// `lease - 1.5 × heartbeat_interval` stops claiming and cancels its running attempts
    /// first. Must exceed `heartbeat_interval` with room for a slow database. Default 30 s.
    pub lease: Duration,
    /// Most jobs claimed per statement. Default 1,000.
    pub claim_batch: usize,
    /// Most attempts finalised per statement. Default 2,000.
    pub complete_batch: usize,
    /// On shutdown, running jobs get this long to finish before they are released for
    /// another worker to run. Default 30 s.
    pub shutdown_grace: Duration,
    /// Take part in leader election and, when elected, run maintenance. `None`: never lead.
    pub maintenance: Option<MaintenanceConfig>,
    /// The leader's term. Default 15 s: a dead leader is replaced within that.
    pub leader_ttl: Duration,
    /// A running attempt whose claim ended elsewhere (cancelled, retried, rescued) is told
    /// through its cancellation token and dropped if it has not returned this long after.
    /// Default 10 s.
    pub cancel_grace: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            worker_id: None,
            queues: vec![QueueConfig::new(DEFAULT_QUEUE)],
            poll_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(5),
            lease: Duration::from_secs(30),
            claim_batch: 1000,
            complete_batch: 2000,
            shutdown_grace: Duration::from_secs(30),
            maintenance: Some(MaintenanceConfig::default()),
            leader_ttl: Duration::from_secs(15),
            cancel_grace: Duration::from_secs(10),
        }
    }
}

impl RuntimeConfig {
    /// Reports every problem at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.queues.is_empty() {
            problems.push("at least one queue is needed".to_owned());
        }
        for q in &self.queues {
            if q.name.is_empty() || q.name == docket_core::ALL_QUEUES {
                problems.push(format!("invalid queue name {:?}", q.name));
            }
            if q.concurrency == 0 {
                problems.push(format!(
                    "queue {:?}: concurrency must be at least 1",
                    q.name
                ));
            }
        }
        if self.poll_interval.is_zero() {
            problems.push("poll_interval must be positive".to_owned());
        }
        if self.heartbeat_interval.is_zero() {
            problems.push("heartbeat_interval must be positive".to_owned());
        }
        if self.lease.as_millis() < 1 || self.lease > Duration::from_secs(86_400) {
            problems.push("lease must be between 1ms and 1 day".to_owned());
        } else if self.heartbeat_interval * 2 > self.lease {
            problems.push(format!(
                "heartbeat_interval ({:?}) must be under half the lease ({:?})",
                self.heartbeat_interval, self.lease
            ));
        }
        if let Some(m) = &self.maintenance
            && m.rescuer.max_rescues < 1
        {
            problems.push("max_rescues must be at least 1".to_owned());
        }
        if self.claim_batch == 0 || self.complete_batch == 0 {
            problems.push("claim_batch and complete_batch must be positive".to_owned());
        }
        if self.leader_ttl < Duration::from_millis(300) {
            problems.push("leader_ttl must be at least 300ms".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(problems.join("; ")))
        }
    }
}

/// Starts runtimes.
#[derive(Debug)]
pub struct Runtime;

struct Inner<D: QueueDriver> {
    driver: D,
    workers: Workers<D>,
    worker_id: Arc<str>,
    clock: Arc<dyn Clock>,
    config: RuntimeConfig,
    completions: mpsc::UnboundedSender<JobCompletion>,
    /// Cancelled when running jobs must stop now (grace period over).
    hard: CancellationToken,
    jobs: TaskTracker,
    /// The attempts running in this process, by job id: their claim and their token.
    running: Mutex<HashMap<i64, RunningClaim>>,
}

/// A running attempt's claim, and the token that tells its handler to stop.
struct RunningClaim {
    token: Uuid,
    cancel: CancellationToken,
    /// Set when the attempt was stopped because the lease could not be renewed (not because
    /// the claim ended elsewhere): the job is then handed back.
    fenced: Arc<std::sync::atomic::AtomicBool>,
}

/// The broadcast that tells every process to check some of its running claims now (a cancel
/// or retry happened); followed by a JSON array of job ids.
pub const CLAIMS_CHANGED_TAG: &str = "docket.claims_changed:";

/// A started runtime. Dropping it does not stop it: call [`RuntimeHandle::shutdown`].
#[derive(Debug)]
pub struct RuntimeHandle {
    worker_id: String,
    processor: Processor,
    soft: CancellationToken,
    done: tokio::task::JoinHandle<()>,
    leading: watch::Receiver<bool>,
}

impl RuntimeHandle {
    /// This process's worker id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Whether this process currently leads maintenance.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// A receiver that changes when leadership does.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stops claiming, lets running jobs finish within the grace period, releases the rest
    /// for other workers, writes every completion, and returns when all is done.
    pub async fn shutdown(self) {
        self.soft.cancel();
        let _ = self.done.await;
    }

    /// A token that starts the shutdown when cancelled (for signal handlers).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.soft.clone()
    }

    /// Runs a batch of due jobs now, in the caller's task (see [`Processor`]).
    pub fn processor(&self) -> Processor {
        self.processor.clone()
    }

    /// Waits until the runtime has stopped (after its token was cancelled).
    pub async fn stopped(self) {
        let _ = self.done.await;
    }
}

impl Runtime {
    /// Starts working `config.queues` with `workers`. The built-in cleanup handler is added.
    pub fn start<D: QueueDriver>(
        driver: D,
        mut workers: Workers<D>,
        config: RuntimeConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<RuntimeHandle> {
        config.validate()?;
        let cleaner = config.maintenance.clone().unwrap_or_default().cleaner;
        workers.register(CleanupWorker::new(cleaner, clock.clone()));
        let maintenance = config
            .maintenance
            .as_ref()
            .map(|m| Maintenance::new(driver.clone(), m, clock.clone()))
            .transpose()?
            .map(|mut m| {
                m.rescuer.set_backoffs(workers.backoffs());
                m
            });

        let worker_id = config.worker_id.clone().unwrap_or_else(default_worker_id);
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            driver,
            workers,
            worker_id: Arc::from(worker_id.as_str()),
            clock,
            config,
            completions: tx,
            hard: CancellationToken::new(),
            jobs: TaskTracker::new(),
            running: Mutex::new(HashMap::new()),
        });
        let soft = CancellationToken::new();
        let (leading_tx, leading) = watch::channel(false);
        let processor = Processor::of(inner.clone(), soft.clone());
        let done = tokio::spawn(run(inner, rx, soft.clone(), maintenance, leading_tx));
        Ok(RuntimeHandle {
            worker_id,
            processor,
            soft,
            done,
            leading,
        })
    }
}

fn default_worker_id() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &tag[..6])
}

/// The runtime's life, start to finish.
async fn run<D: QueueDriver>(
    inner: Arc<Inner<D>>,
    completions: mpsc::UnboundedReceiver<JobCompletion>,
    soft: CancellationToken,
    maintenance: Option<Maintenance<D>>,
    leading: watch::Sender<bool>,
) {
    let span = tracing::info_span!("docket.worker", worker_id = %inner.worker_id);
    async move {
        // The heartbeat outlives the producers: running jobs keep their lease until they end.
        let beat_stop = CancellationToken::new();
        let (registered_tx, registered) = watch::channel(false);
        let heartbeat = tokio::spawn(lease::heartbeat(inner.clone(), beat_stop.clone(), registered_tx));

        let flush_stop = CancellationToken::new();
        let completer = tokio::spawn(complete(inner.clone(), completions, flush_stop.clone()));
        let listener = tokio::spawn(lease::listen_claims(inner.clone(), beat_stop.clone()));

        let elector = maintenance.map(|m| {
            let e = Elector {
                driver: inner.driver.clone(),
                leader_id: inner.worker_id.to_string(),
                ttl: inner.config.leader_ttl,
                maintenance: Arc::new(m),
                leading,
            };
            tokio::spawn(e.run(soft.clone()))
        });

        let producers: Vec<_> = inner
            .config
            .queues
            .clone()
            .into_iter()
            .map(|q| tokio::spawn(produce(inner.clone(), q, soft.clone(), registered.clone())))
            .collect();
        tracing::info!(queues = ?inner.config.queues.iter().map(|q| &q.name).collect::<Vec<_>>(), "worker started");

        soft.cancelled().await;
        tracing::info!("shutting down: no new claims");
        for p in producers {
            let _ = p.await;
        }
        inner.jobs.close();
        if tokio::time::timeout(inner.config.shutdown_grace, inner.jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = inner.jobs.len(),
                "grace period over: releasing unfinished jobs for other workers"
            );
            inner.hard.cancel();
            inner.jobs.wait().await;
        }
        flush_stop.cancel();
        let _ = completer.await;
        if let Some(e) = elector {
            let _ = e.await;
        }
        beat_stop.cancel();
        let _ = heartbeat.await;
        let _ = listener.await;
        let gone = async {
            let mut c = inner.driver.conn().await?;
            c.worker_delete(&inner.worker_id).await
        };
        if let Err(e) = gone.await {
            tracing::warn!(error = %e, "could not delete the worker row");
        }
        tracing::info!("worker stopped");
    }
    .instrument(span)
    .await
}

/// Grows on repeated errors, so that an unreachable database is not hammered.
struct ErrorBackoff(Duration);

impl ErrorBackoff {
    fn new() -> Self {
        Self(Duration::from_millis(50))
    }
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        d
    }
    fn reset(&mut self) {
        self.0 = Duration::from_millis(50);
    }
}

async fn produce<D: QueueDriver>(
    inner: Arc<Inner<D>>,
    queue: QueueConfig,
    stop: CancellationToken,
    mut registered: watch::Receiver<bool>,
) {
    // Claim nothing before our worker row exists: the rescuer would take the jobs back.
    tokio::select! {
        _ = stop.cancelled() => return,
        r = registered.wait_for(|r| *r) => if r.is_err() { return },
    }
    let slots = Arc::new(Semaphore::new(queue.concurrency));
    let finished = Arc::new(AtomicU64::new(0));
    let mut rate = Rate::new(finished.clone());
    // Claimed jobs waiting for a slot, with when they were claimed.
    let mut buffer: VecDeque<(std::time::Instant, JobRow)> = VecDeque::new();
    let wakeups = inner.driver.wakeups();
    let mut backoff = ErrorBackoff::new();
    loop {
        if stop.is_cancelled() {
            release(&inner, buffer.drain(..).map(|(_, j)| j));
            return;
        }
        if !*registered.borrow() {
            // The lease could not be renewed: claim nothing until it is.
            release(&inner, buffer.drain(..).map(|(_, j)| j));
            tokio::select! {
                _ = stop.cancelled() => {}
                r = registered.wait_for(|r| *r) => if r.is_err() { return },
            }
            continue;
        }
        dispatch(&inner, &slots, &mut buffer, &finished);
        // Claimed ahead at a pace that did not last (fast jobs gave way to slow ones): hand
        // the jobs back rather than hoard them while other workers idle.
        let stale = buffer
            .iter()
            .take_while(|(at, _)| at.elapsed() > PREFETCH_MAX_WAIT)
            .count();
        if stale > 0 {
            release(&inner, buffer.drain(..stale).map(|(_, j)| j));
        }
        // Registered before the claim: a wake-up that lands during the claim is not lost.
        let notified = wakeups.notify().notified();
        let free = slots.available_permits();
        // Prefetch what this process finishes in a short horizon: fast jobs are claimed in
        // large batches (few statements, few commits), slow ones exactly as slots free up.
        let prefetch = rate.per_sec() * PREFETCH_HORIZON.as_secs_f64();
        let prefetch = (prefetch as usize).min(inner.config.claim_batch);
        let want = (free + prefetch)
            .saturating_sub(buffer.len())
            .min(inner.config.claim_batch);
        let min_claim = ((queue.concurrency + prefetch) / 4).max(1);
        // A small claim is worth its round trip only when nothing else is in hand.
        if want == 0 || (want < min_claim && (free == 0 || !buffer.is_empty())) {
            wait_for_slot(&stop, &slots, !buffer.is_empty()).await;
            continue;
        }
        let claimed = async {
            let mut c = inner.driver.conn().await?;
            c.job_get_available(JobGetAvailableParams {
                worker_id: inner.worker_id.to_string(),
                queue: queue.name.clone(),
                limit: i32::try_from(want).unwrap_or(i32::MAX),
                now: inner.clock.now_for_db(),
            })
            .await
        };
        let jobs = match claimed.await {
            Ok(jobs) => {
                backoff.reset();
                jobs
            }
            Err(e) => {
                tracing::warn!(queue = %queue.name, error = %e, "claim failed; backing off");
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(backoff.next()) => {}
                }
                continue;
            }
        };
        let got = jobs.len();
        let now = std::time::Instant::now();
        buffer.extend(jobs.into_iter().map(|j| (now, j)));
        if stop.is_cancelled() {
            continue; // released at the top of the loop, not started
        }
        dispatch(&inner, &slots, &mut buffer, &finished);
        if got == want {
            continue; // there may be more
        }
        if !buffer.is_empty() {
            wait_for_slot(&stop, &slots, true).await;
            continue;
        }
        // The queue is empty: wait for a wake-up or a poll tick.
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = notified => {}
            _ = tokio::time::sleep(inner.config.poll_interval) => {}
        }
    }
}

/// Waits for a slot to free up, or for shutdown; with jobs in hand, at most
/// [`PREFETCH_MAX_WAIT`], so that stale ones can be handed back.
async fn wait_for_slot(stop: &CancellationToken, slots: &Semaphore, holding: bool) {
    tokio::select! {
        _ = stop.cancelled() => {}
        p = slots.acquire() => drop(p),
        _ = tokio::time::sleep(PREFETCH_MAX_WAIT), if holding => {}
    }
}

/// Starts claimed jobs in the free slots.
fn dispatch<D: QueueDriver>(
    inner: &Arc<Inner<D>>,
    slots: &Arc<Semaphore>,
    buffer: &mut VecDeque<(std::time::Instant, JobRow)>,
    finished: &Arc<AtomicU64>,
) {
    while !buffer.is_empty() {
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            return;
        };
        let (_, job) = buffer.pop_front().expect("not empty");
        spawn_job(inner, job, permit, finished.clone());
    }
}

/// Hands claimed jobs that never started back to the queue, uncounted.
fn release<D: QueueDriver>(inner: &Inner<D>, jobs: impl Iterator<Item = JobRow>) {
    let now = inner.clock.now();
    for job in jobs {
        let _ = inner.completions.send(JobCompletion {
            id: job.id,
            claim_token: job.claim_token.unwrap_or_default(),
            attempt: job.attempts,
            worker_id: inner.worker_id.to_string(),
            started_at: now,
            finished_at: now,
            outcome: CompletionOutcome::Released,
        });
    }
}

/// How far ahead a producer claims, in time at its current pace.
const PREFETCH_HORIZON: Duration = Duration::from_millis(50);

/// A job claimed ahead that has waited this long for a slot goes back to the queue.
const PREFETCH_MAX_WAIT: Duration = Duration::from_millis(500);

/// Jobs finished per second, smoothed.
struct Rate {
    finished: Arc<AtomicU64>,
    last_count: u64,
    last_at: std::time::Instant,
    per_sec: f64,
}

impl Rate {
    fn new(finished: Arc<AtomicU64>) -> Self {
        Self {
            finished,
            last_count: 0,
            last_at: std::time::Instant::now(),
            per_sec: 0.0,
        }
    }

    fn per_sec(&mut self) -> f64 {
        let elapsed = self.last_at.elapsed();
        if elapsed >= Duration::from_millis(50) {
            let count = self.finished.load(Ordering::Relaxed);
            let now = (count - self.last_count) as f64 / elapsed.as_secs_f64();
            self.per_sec = 0.5 * self.per_sec + 0.5 * now;
            self.last_count = count;
            self.last_at = std::time::Instant::now();
        }
        self.per_sec
    }
}

fn spawn_job<D: QueueDriver>(
    inner: &Arc<Inner<D>>,
    job: JobRow,
    permit: OwnedSemaphorePermit,
    finished: Arc<AtomicU64>,
) {
    let inner2 = inner.clone();
    inner.jobs.spawn(async move {
        if let Some(c) = execute(&inner2, job).await {
            // The receiver lives until every job task has ended.
            let _ = inner2.completions.send(c);
        }
        drop(permit);
        finished.fetch_add(1, Ordering::Relaxed);
    });
}

/// How an attempt ended, for the runtime.
enum Ended {
    /// Write this completion.
    Outcome(CompletionOutcome),
    /// The handler completed the job inside its own transaction.
    SelfCompleted,
    /// The claim ended elsewhere (cancelled, retried, rescued): nothing to write.
    ClaimLost,
}

/// Runs one attempt; returns its completion, or `None` when there is nothing to write (the
/// handler completed the job inside its own transaction, or the claim ended elsewhere).
async fn execute<D: QueueDriver>(inner: &Inner<D>, job: JobRow) -> Option<JobCompletion> {
    execute_labelled(inner, job).await.0
}

/// [`execute`], with the attempt's outcome label (`completed`, `retry`, `failed`, `snoozed`,
/// `released` or `cancelled`).
async fn execute_labelled<D: QueueDriver>(
    inner: &Inner<D>,
    job: JobRow,
) -> (Option<JobCompletion>, &'static str) {
    let started_at = inner.clock.now();
    let timer = std::time::Instant::now();
    let span = tracing::info_span!(
        "docket.job.execute",
        job_id = job.id,
        job_type = %job.job_type,
        queue = %job.queue,
        attempt = job.attempts,
    );
    let token = job.claim_token.unwrap_or_default();
    let cancel = inner.hard.child_token();
    let fenced = Arc::new(std::sync::atomic::AtomicBool::new(false));
    inner
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            job.id,
            RunningClaim {
                token,
                cancel: cancel.clone(),
                fenced: fenced.clone(),
            },
        );
    let job = Arc::new(job);
    let ended = async {
        let Some(w) = inner.workers.get(&job.job_type) else {
            return Ended::Outcome(CompletionOutcome::Failed {
                error: format!("no handler registered for job kind {:?}", job.job_type),
            });
        };
        let ctx = JobContext::new(
            job.clone(),
            inner.driver.clone(),
            inner.worker_id.clone(),
            cancel.clone(),
        );
        let finalised = ctx.finalised_flag();
        let timeout = w.timeout();
        let work = AssertUnwindSafe(w.work(ctx, job.payload.clone())).catch_unwind();
        tokio::pin!(work);
        // Biased: a handler that returns as soon as it is told to stop has not finished its
        // work; the cancellation decides what becomes of the attempt.
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            r = tokio::time::timeout(timeout, &mut work) => Some(r),
        };
        let Some(result) = result else {
            if inner.hard.is_cancelled() {
                return Ended::Outcome(CompletionOutcome::Released);
            }
            // The claim ended elsewhere, or the lease is about to lapse: the handler was told
            // through its token and gets the grace period to stop; then it is dropped.
            tracing::info!("claim ended: stopping the handler");
            let stopped = tokio::select! {
                r = tokio::time::timeout(inner.config.cancel_grace, &mut work) => r.is_ok(),
                // A hard stop does not wait out the grace period.
                _ = inner.hard.cancelled() => false,
            };
            if !stopped {
                tracing::warn!(
                    grace = ?inner.config.cancel_grace,
                    "handler ignored its cancellation: dropped"
                );
            }
            return if finalised.load(Ordering::Acquire) {
                Ended::SelfCompleted
            } else if fenced.load(Ordering::Acquire) {
                // Stopped because the lease could not be renewed, not because the claim
                // ended: hand the job back (written once the database answers again; refused
                // if the rescuer took it meanwhile), or it would stay running under a worker
                // that heartbeats again.
                Ended::Outcome(CompletionOutcome::Released)
            } else {
                Ended::ClaimLost
            };
        };
        let err = match result {
            Ok(Ok(Ok(()))) => {
                if finalised.load(Ordering::Acquire) {
                    return Ended::SelfCompleted;
                }
                tracing::debug!("job completed");
                return Ended::Outcome(CompletionOutcome::Completed);
            }
            Ok(Ok(Err(e))) => e,
            Ok(Err(panic)) => {
                JobError::retryable(format!("handler panicked: {}", panic_message(&panic)))
            }
            Err(_) => JobError::retryable(format!("timed out after {timeout:?}")),
        };
        Ended::Outcome(failure(&job, err, &w.backoff(), inner.clock.now()))
    }
    .instrument(span)
    .await;
    {
        let mut running = inner.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(&job.id).is_some_and(|c| c.token == token) {
            running.remove(&job.id);
        }
    }
    let label = match &ended {
        Ended::SelfCompleted | Ended::Outcome(CompletionOutcome::Completed) => "completed",
        Ended::ClaimLost => "cancelled",
        Ended::Outcome(CompletionOutcome::Retry { .. }) => "retry",
        Ended::Outcome(CompletionOutcome::Failed { .. }) => "failed",
        Ended::Outcome(CompletionOutcome::Snoozed { .. }) => "snoozed",
        Ended::Outcome(CompletionOutcome::Released) => "released",
    };
    metrics::counter!(
        "docket_job_attempts_total",
        "job_type" => job.job_type.clone(),
        "outcome" => label,
    )
    .increment(1);
    metrics::histogram!("docket_job_attempt_duration_seconds", "job_type" => job.job_type.clone())
        .record(timer.elapsed().as_secs_f64());
    let Ended::Outcome(outcome) = ended else {
        return (None, label);
    };
    let completion = JobCompletion {
        id: job.id,
        claim_token: token,
        attempt: job.attempts,
        worker_id: inner.worker_id.to_string(),
        started_at,
        finished_at: inner.clock.now(),
        outcome,
    };
    (Some(completion), label)
}

/// Retry or dead-letter a failed attempt.
fn failure(
    job: &JobRow,
    err: JobError,
    backoff: &Backoff,
    now: DateTime<Utc>,
) -> CompletionOutcome {
    // PostgreSQL text cannot hold NUL: one such message would make every batch it rides in
    // fail.
    let error = err.message().replace('\0', "\u{FFFD}");
    if err.is_snooze() {
        let delay = err.retry_after_delay().unwrap_or_default();
        tracing::info!(reason = %error, snooze_ms = delay.as_millis() as u64, "job snoozed");
        return CompletionOutcome::Snoozed {
            run_at: add_delay(now, delay),
            reason: format!("snoozed: {error}"),
        };
    }
    if err.is_permanent() {
        tracing::warn!(%error, "job failed permanently");
        return CompletionOutcome::Failed { error };
    }
    if job.attempts >= job.max_attempts {
        tracing::warn!(%error, "job failed; attempts exhausted");
        return CompletionOutcome::Failed {
            error: format!("{error} (attempt {} of {})", job.attempts, job.max_attempts),
        };
    }
    let delay = err
        .retry_after_delay()
        .unwrap_or_else(|| backoff.delay(job.attempts));
    let run_at = add_delay(now, delay);
    tracing::info!(%error, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
    CompletionOutcome::Retry { run_at, error }
}

fn add_delay(now: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
