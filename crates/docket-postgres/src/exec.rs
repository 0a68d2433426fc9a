//! The [`QueueExecutor`] half of the executor (the document store is in `documents.rs`),
//! written once for pooled connections and transactions.

use std::collections::HashMap;
use std::ops::DerefMut;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use docket_core::*;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use crate::notify::Notifier;
use crate::rows;
use crate::vector::{self, VectorSupport};

/// A PostgreSQL executor over a pooled connection or a transaction (`C`).
pub struct PgExec<C> {
    pub(crate) conn: C,
    pub(crate) notifier: Notifier,
    pub(crate) vector: Arc<VectorSupport>,
    pub(crate) in_tx: bool,
    pub(crate) inserted: bool,
}

impl<C> std::fmt::Debug for PgExec<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgExec")
            .field("in_tx", &self.in_tx)
            .finish()
    }
}

impl<C> PgExec<C> {
    pub(crate) fn new(
        conn: C,
        notifier: Notifier,
        vector: Arc<VectorSupport>,
        in_tx: bool,
    ) -> Self {
        Self {
            conn,
            notifier,
            vector,
            in_tx,
            inserted: false,
        }
    }

    /// The underlying connection or transaction, for the caller's own SQL.
    pub fn inner(&mut self) -> &mut C {
        &mut self.conn
    }

    /// Jobs were inserted: announce them now, or at commit inside a transaction.
    fn announce(&mut self) {
        if self.in_tx {
            self.inserted = true;
        } else {
            self.notifier.poke();
        }
    }
}

/// Classifies a sqlx error: connection trouble is [`Error::Unavailable`] (retry later).
pub(crate) fn map_err(e: sqlx::Error) -> Error {
    let unavailable = match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // 08: connection exception; 57P01-03: admin shutdown, crash shutdown, cannot
            // connect now.
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    };
    // 40P01 deadlock_detected, 40001 serialization_failure: this transaction was chosen to
    // give way.
    let conflict = matches!(&e, sqlx::Error::Database(db)
        if db.code().is_some_and(|c| matches!(c.as_ref(), "40P01" | "40001")));
    if unavailable {
        Error::Unavailable(Box::new(e))
    } else if conflict {
        Error::Conflict(Box::new(e))
    } else {
        Error::Database(Box::new(e))
    }
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

impl<C> PgExec<C>
where
    C: DerefMut<Target = PgConnection> + Send,
{
    /// pgvector's schema prefix where the vector path is usable, detected on first use when
    /// the driver has not migrated.
    pub(crate) async fn pgvector(&mut self) -> Result<Option<Arc<str>>> {
        if let Some(known) = self.vector.get() {
            return Ok(known);
        }
        let found = vector::detect(&mut self.conn, false).await?;
        self.vector.set(found.clone());
        Ok(found)
    }
}

impl<C> Transaction for PgExec<C>
where
    C: DerefMut<Target = PgConnection> + Send + TxControl,
{
    async fn commit(self) -> Result<()> {
        let Self {
            conn,
            notifier,
            inserted,
            ..
        } = self;
        conn.commit_tx().await.map_err(map_err)?;
        if inserted {
            notifier.poke();
        }
        Ok(())
    }

    async fn rollback(self) -> Result<()> {
        self.conn.rollback_tx().await.map_err(map_err)
    }
}

/// Commit and rollback for the transaction type; sealed to this crate.
pub trait TxControl: Sized {
    #[allow(missing_docs)]
    fn commit_tx(self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    #[allow(missing_docs)]
    fn rollback_tx(self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl TxControl for sqlx::Transaction<'static, sqlx::Postgres> {
    fn commit_tx(self) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        self.commit()
    }
    fn rollback_tx(self) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        self.rollback()
    }
}

impl<C> QueueExecutor for PgExec<C>
where
    C: DerefMut<Target = PgConnection> + Send,
{
    async fn job_insert_many(
        &mut self,
        params: JobInsertManyParams,
    ) -> Result<Vec<JobInsertResult>> {
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        for j in &params.jobs {
            j.validate()?;
        }
        let mut statements = InsertStatements {
            conn: &mut self.conn,
            inserted: false,
        };
        let results = insert_jobs(&mut statements, &params.jobs).await?;
        if statements.inserted {
            self.announce();
        }
        Ok(results)
    }

    async fn job_get_available(&mut self, params: JobGetAvailableParams) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(include_str!("../queries/job_get_available.sql"))
            .bind(&params.worker_id)
            .bind(&params.queue)
            .bind(i64::from(params.limit.max(0)))
            .bind(params.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        let mut jobs = rows.iter().map(rows::job).collect::<Result<Vec<_>>>()?;
        jobs.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.run_at.cmp(&b.run_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(jobs)
    }

    async fn job_complete_many(&mut self, params: JobCompleteManyParams) -> Result<Vec<i64>> {
        let c = params.completions;
        if c.is_empty() {
            return Ok(Vec::new());
        }
        let n = c.len();
        let mut id = Vec::with_capacity(n);
        let mut attempt = Vec::with_capacity(n);
        let mut status = Vec::with_capacity(n);
        let mut run_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut last_error: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut delta = Vec::with_capacity(n);
        let mut worker = Vec::with_capacity(n);
        let mut started = Vec::with_capacity(n);
        let mut finished = Vec::with_capacity(n);
        let mut outcome = Vec::with_capacity(n);
        let mut token = Vec::with_capacity(n);
        let mut completed_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut error: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut rescues_reset = Vec::with_capacity(n);
        for x in &c {
            let t = x.outcome.transition(x.finished_at);
            id.push(x.id);
            attempt.push(x.attempt);
            worker.push(x.worker_id.as_str());
            started.push(x.started_at);
            finished.push(x.finished_at);
            token.push(x.claim_token);
            status.push(t.status.as_str());
            run_at.push(t.run_at);
            last_error.push(t.last_error);
            delta.push(t.attempts_delta);
            outcome.push(t.attempt_outcome.as_str());
            completed_at.push(t.completed_at);
            error.push(t.attempt_error);
            rescues_reset.push(t.rescues_reset);
        }
        let done = sqlx::query_scalar(include_str!("../queries/job_complete_many.sql"))
            .bind(&id)
            .bind(&attempt)
            .bind(&status)
            .bind(&run_at)
            .bind(&last_error)
            .bind(&delta)
            .bind(&worker)
            .bind(&started)
            .bind(&finished)
            .bind(&outcome)
            .bind(&token)
            .bind(&completed_at)
            .bind(&error)
            .bind(&rescues_reset)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        if outcome.contains(&AttemptOutcome::Released.as_str()) {
            // Released jobs are due at once, for any worker.
            self.announce();
        }
        Ok(done)
    }

    async fn job_get(&mut self, id: i64) -> Result<Option<JobRow>> {
        sqlx::query("SELECT * FROM processing_jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(rows::job)
            .transpose()
    }

    async fn job_list(&mut self, params: JobListParams) -> Result<Vec<JobRow>> {
        let states: Vec<&str> = params.states.iter().map(|s| s.as_str()).collect();
        sqlx::query(include_str!("../queries/job_list.sql"))
            .bind(&states)
            .bind(&params.job_types)
            .bind(&params.queue)
            .bind(params.document_id)
            .bind(params.before_id)
            .bind(params.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::job)
            .collect()
    }

    async fn job_attempt_list(&mut self, job_id: i64) -> Result<Vec<JobAttempt>> {
        sqlx::query("SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY id")
            .bind(job_id)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::attempt)
            .collect()
    }

    async fn job_retry(&mut self, params: JobRetryParams) -> Result<Vec<i64>> {
        let ids: Vec<i64> = sqlx::query_scalar(include_str!("../queries/job_retry.sql"))
            .bind(&params.ids)
            .bind(&params.job_type)
            .bind(&params.queue)
            .bind(params.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        if !ids.is_empty() {
            self.announce();
        }
        Ok(ids)
    }

    async fn job_cancel(&mut self, params: JobCancelParams) -> Result<Vec<i64>> {
        sqlx::query_scalar(include_str!("../queries/job_cancel.sql"))
            .bind(&params.ids)
            .bind(params.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)
    }

    async fn job_list_stuck(&mut self, params: JobListStuckParams) -> Result<Vec<StuckJobRow>> {
        sqlx::query(include_str!("../queries/job_list_stuck.sql"))
            .bind(params.now)
            .bind(params.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::stuck_job)
            .collect()
    }

    async fn job_rescue_many(&mut self, params: JobRescueManyParams) -> Result<JobRescueResult> {
        if params.rescues.is_empty() {
            return Ok(JobRescueResult::default());
        }
        let r = &params.rescues;
        let rows = sqlx::query(include_str!("../queries/job_rescue.sql"))
            .bind(r.iter().map(|x| x.id).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.claim_token).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.attempt).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.worker_id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.started_at).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.run_at).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.error.as_str()).collect::<Vec<_>>())
            .bind(params.now)
            .bind(r.iter().map(|x| x.max_attempts).collect::<Vec<_>>())
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        let mut out = JobRescueResult::default();
        for r in rows {
            let status: &str = r.get("status");
            let id: i64 = r.get("id");
            if status == "failed" {
                out.failed.push(id);
            } else {
                out.requeued.push(id);
            }
        }
        out.requeued.sort_unstable();
        out.failed.sort_unstable();
        if !out.requeued.is_empty() {
            self.announce();
        }
        Ok(out)
    }

    async fn job_claims_lost(&mut self, params: JobClaimsLostParams) -> Result<Vec<i64>> {
        if params.claims.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, tokens): (Vec<i64>, Vec<Uuid>) = params.claims.into_iter().unzip();
        sqlx::query_scalar(include_str!("../queries/job_claims_lost.sql"))
            .bind(&ids)
            .bind(&tokens)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)
    }

    async fn job_run_now(&mut self, params: JobRunNowParams) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = sqlx::query_scalar(include_str!("../queries/job_run_now.sql"))
            .bind(&params.ids)
            .bind(&params.job_type)
            .bind(&params.queue)
            .bind(params.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        ids.sort_unstable();
        if !ids.is_empty() {
            self.announce();
        }
        Ok(ids)
    }

    async fn job_discard(&mut self, params: JobDiscardParams) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = sqlx::query_scalar(include_str!("../queries/job_discard.sql"))
            .bind(&params.ids)
            .bind(&params.job_type)
            .bind(&params.queue)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn audit_insert(&mut self, params: AuditInsertParams) -> Result<AuditRow> {
        let row = sqlx::query(include_str!("../queries/audit_insert.sql"))
            .bind(params.now)
            .bind(&params.actor)
            .bind(&params.action)
            .bind(&params.target)
            .bind(&params.job_ids)
            .bind(&params.detail)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows::audit(&row)
    }

    async fn audit_list(&mut self, params: AuditListParams) -> Result<Vec<AuditRow>> {
        sqlx::query(include_str!("../queries/audit_list.sql"))
            .bind(&params.action)
            .bind(params.job_id)
            .bind(params.before_id)
            .bind(params.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::audit)
            .collect()
    }

    async fn job_delete_finished(&mut self, params: JobDeleteFinishedParams) -> Result<u64> {
        sqlx::query(include_str!("../queries/job_delete_finished.sql"))
            .bind(params.completed_before)
            .bind(params.failed_before)
            .bind(params.limit)
            .execute(&mut *self.conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(map_err)
    }

    async fn job_stats(&mut self) -> Result<Vec<JobStatRow>> {
        sqlx::query("SELECT * FROM job_queue_stats ORDER BY job_type, queue, status")
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::stat)
            .collect()
    }

    async fn job_activity(&mut self, params: JobActivityParams) -> Result<Vec<JobActivityRow>> {
        sqlx::query(include_str!("../queries/job_activity.sql"))
            .bind(params.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::activity)
            .collect()
    }

    async fn job_throughput(
        &mut self,
        params: JobThroughputParams,
    ) -> Result<Vec<JobThroughputRow>> {
        sqlx::query(include_str!("../queries/job_throughput.sql"))
            .bind(params.since)
            .bind(params.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::throughput)
            .collect()
    }

    async fn queue_set_paused(&mut self, params: QueueSetPausedParams) -> Result<QueueRow> {
        let row = sqlx::query(include_str!("../queries/queue_set_paused.sql"))
            .bind(&params.name)
            .bind(params.paused)
            .bind(params.now)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        if !params.paused {
            self.announce();
        }
        rows::queue(&row)
    }

    async fn queue_list(&mut self) -> Result<Vec<QueueRow>> {
        sqlx::query("SELECT * FROM docket_queues ORDER BY name")
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::queue)
            .collect()
    }

    async fn worker_heartbeat(&mut self, params: WorkerHeartbeatParams) -> Result<()> {
        sqlx::query(include_str!("../queries/worker_heartbeat.sql"))
            .bind(&params.id)
            .bind(&params.hostname)
            .bind(params.pid)
            .bind(&params.queues)
            .bind(params.now)
            .bind(params.lease.num_milliseconds())
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn worker_delete(&mut self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM docket_workers WHERE id = $1")
            .bind(id)
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn worker_list(&mut self, params: WorkerListParams) -> Result<Vec<WorkerRow>> {
        sqlx::query(include_str!("../queries/worker_list.sql"))
            .bind(params.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::worker)
            .collect()
    }

    async fn worker_delete_stale(&mut self, params: WorkerDeleteStaleParams) -> Result<u64> {
        sqlx::query(include_str!("../queries/worker_delete_stale.sql"))
            .bind(params.now)
            .execute(&mut *self.conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(map_err)
    }

    async fn leader_attempt_elect(&mut self, params: LeaderElectParams) -> Result<bool> {
        let row: Option<String> =
            sqlx::query_scalar(include_str!("../queries/leader_attempt_elect.sql"))
                .bind(&params.leader_id)
                .bind(secs(params.ttl))
                .bind(params.now)
                .fetch_optional(&mut *self.conn)
                .await
                .map_err(map_err)?;
        Ok(row.is_some())
    }

    async fn leader_resign(&mut self, leader_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM docket_leader WHERE name = 'default' AND leader_id = $1")
            .bind(leader_id)
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn leader_get(&mut self, now: Option<DateTime<Utc>>) -> Result<Option<LeaderRow>> {
        let row = sqlx::query(
            "SELECT leader_id, elected_at, expires_at FROM docket_leader \
             WHERE name = 'default' AND expires_at > coalesce($1::timestamptz, now())",
        )
        .bind(now)
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(map_err)?;
        row.map(|r| -> Result<LeaderRow> {
            Ok(LeaderRow {
                leader_id: r.try_get("leader_id").map_err(rows::decode)?,
                elected_at: r.try_get("elected_at").map_err(rows::decode)?,
                expires_at: r.try_get("expires_at").map_err(rows::decode)?,
            })
        })
        .transpose()
    }

    async fn cron_schedule_upsert(&mut self, p: CronScheduleUpsertParams) -> Result<CronSchedule> {
        let row = sqlx::query(include_str!("../queries/cron_schedule_upsert.sql"))
            .bind(&p.spec.name)
            .bind(&p.spec.expression)
            .bind(&p.spec.timezone)
            .bind(&p.spec.job_type)
            .bind(&p.spec.queue)
            .bind(&p.spec.payload)
            .bind(p.spec.priority)
            .bind(p.spec.enabled)
            .bind(p.spec.missed_policy.as_str())
            .bind(p.next_run_at)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows::schedule(&row)
    }

    async fn cron_schedule_list(&mut self) -> Result<Vec<CronSchedule>> {
        sqlx::query("SELECT * FROM cron_schedules ORDER BY name")
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::schedule)
            .collect()
    }

    async fn cron_schedule_due(&mut self, p: CronScheduleDueParams) -> Result<CronScheduleDue> {
        let found = sqlx::query(include_str!("../queries/cron_schedule_due.sql"))
            .bind(p.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        // One row per due schedule, or one clock row with no schedule when none is due.
        let now = match found.first() {
            Some(row) => row.try_get("due_at").map_err(rows::decode)?,
            None => return Err(Error::Decode("cron_schedule_due returned no row".into())),
        };
        let mut schedules = Vec::with_capacity(found.len());
        for row in &found {
            let name: Option<String> = row.try_get("name").map_err(rows::decode)?;
            if name.is_some() {
                schedules.push(rows::schedule(row)?);
            }
        }
        Ok(CronScheduleDue { now, schedules })
    }

    async fn cron_run_enqueue(&mut self, p: CronRunEnqueueParams) -> Result<Option<CronRun>> {
        let job = p.job();
        if let Some(job) = job {
            job.validate()?;
        }
        let enqueue = sqlx::query(include_str!("../queries/cron_run_enqueue.sql"))
            .bind(&p.schedule_name)
            .bind(p.scheduled_for)
            .bind(p.next_run_at)
            .bind(p.expected_next_run_at)
            .bind(job.map(|j| &j.job_type))
            .bind(job.map(|j| &j.queue))
            .bind(job.map(|j| j.priority))
            .bind(job.map(|j| &j.payload))
            .bind(job.map(|j| j.max_attempts))
            .bind(job.and_then(|j| j.unique_key.as_ref()))
            .bind(&p.message)
            .bind(job.and_then(|j| j.run_at))
            .bind(job.and_then(|j| j.document_id))
            .bind(p.jobless_status());
        let row = if p.expected_next_run_at.is_some() {
            enqueue
                .fetch_optional(&mut *self.conn)
                .await
                .map_err(map_err)?
        } else {
            // A manual run checks that no run is live. The check must see runs that other
            // transactions committed while this one waited, so it runs in a statement of its
            // own after the schedule's row lock is granted (a savepoint inside the caller's
            // transaction, else a transaction of its own).
            let mut tx = self.conn.deref_mut().begin().await.map_err(map_err)?;
            let locked: Option<String> =
                sqlx::query_scalar(include_str!("../queries/cron_schedule_lock.sql"))
                    .bind(&p.schedule_name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
            if locked.is_none() {
                return Ok(None);
            }
            let row = enqueue.fetch_optional(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            row
        };
        let run = row.as_ref().map(rows::cron_run).transpose()?;
        if run.as_ref().is_some_and(|r| r.job_id.is_some()) {
            self.announce();
        }
        Ok(run)
    }

    async fn cron_run_list(&mut self, p: CronRunListParams) -> Result<Vec<CronRun>> {
        sqlx::query(
            "SELECT * FROM cron_runs WHERE ($1::text IS NULL OR schedule_name = $1) \
             ORDER BY scheduled_for DESC, id DESC LIMIT $2",
        )
        .bind(&p.schedule_name)
        .bind(p.limit)
        .fetch_all(&mut *self.conn)
        .await
        .map_err(map_err)?
        .iter()
        .map(rows::cron_run)
        .collect()
    }

    async fn cron_run_sync(&mut self) -> Result<u64> {
        sqlx::query(include_str!("../queries/cron_run_sync.sql"))
            .execute(&mut *self.conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(map_err)
    }
}

/// The two statements of an insert; [`insert_jobs`] decides the results.
struct InsertStatements<'a> {
    conn: &'a mut PgConnection,
    /// Whether any row was inserted (then the workers are told).
    inserted: bool,
}

impl JobInsertStatements for InsertStatements<'_> {
    async fn insert(&mut self, jobs: &[&JobInsertParams]) -> Result<Vec<(i64, Option<String>)>> {
        let n = jobs.len();
        let mut job_type = Vec::with_capacity(n);
        let mut queue = Vec::with_capacity(n);
        let mut priority = Vec::with_capacity(n);
        let mut payload = Vec::with_capacity(n);
        let mut max_attempts = Vec::with_capacity(n);
        let mut run_at = Vec::with_capacity(n);
        let mut unique_key = Vec::with_capacity(n);
        let mut document_id: Vec<Option<Uuid>> = Vec::with_capacity(n);
        for j in jobs {
            job_type.push(j.job_type.as_str());
            queue.push(j.queue.as_str());
            priority.push(j.priority);
            payload.push(&j.payload);
            max_attempts.push(j.max_attempts);
            run_at.push(j.run_at);
            unique_key.push(j.unique_key.as_deref());
            document_id.push(j.document_id);
        }
        let rows: Vec<(i64, Option<String>)> =
            sqlx::query_as(include_str!("../queries/job_insert_many.sql"))
                .bind(&job_type)
                .bind(&queue)
                .bind(&priority)
                .bind(&payload)
                .bind(&max_attempts)
                .bind(&run_at)
                .bind(&unique_key)
                .bind(&document_id)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(map_err)?;
        self.inserted |= !rows.is_empty();
        Ok(rows)
    }

    async fn holders(&mut self, keys: &[&str]) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as(include_str!("../queries/job_find_by_unique_key.sql"))
                .bind(keys)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(map_err)?;
        Ok(rows.into_iter().collect())
    }
}
