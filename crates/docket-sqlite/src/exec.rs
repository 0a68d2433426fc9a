//! The [`QueueExecutor`] half of the storage operations (the document store is in
//! `documents.rs`), implemented once for a pooled connection and a transaction.

use std::collections::HashSet;
use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use docket_core::*;
use sqlx::{Connection, Sqlite, SqliteConnection};

use crate::insert::insert;
use crate::rows::{self, duration_micros, micros, now_micros, uuid_text};

macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!("../queries/", $name, ".sql"))
    };
}

/// Maps a sqlx error: connection trouble (I/O, the pool, a lock another process held past
/// the busy timeout) is [`Error::Unavailable`], the rest [`Error::Database`].
pub(crate) fn map_err(e: sqlx::Error) -> Error {
    if is_unavailable(&e) {
        Error::Unavailable(Box::new(e))
    } else {
        Error::Database(Box::new(e))
    }
}

/// Whether the same call may succeed later, with nothing written now.
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            // Primary result codes: SQLITE_BUSY (5), SQLITE_LOCKED (6), SQLITE_IOERR (10),
            // SQLITE_CANTOPEN (14). sqlx reports the extended code; its low byte is the
            // primary one.
            let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            matches!(code & 0xff, 5 | 6 | 10 | 14)
        }
        _ => false,
    }
}

pub(crate) fn check_limit(limit: i64) -> Result<bool> {
    if limit < 0 {
        return Err(Error::Invalid(format!("limit {limit} is negative")));
    }
    Ok(limit > 0)
}

/// A value as JSON text (payloads, and the arrays that stand in for PostgreSQL's).
macro_rules! json_text {
    ($v:expr) => {
        serde_json::to_string($v).map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))
    };
}

/// A connection ([`docket_core::QueueDriver::conn`]) or a transaction
/// ([`docket_core::QueueDriver::begin`]) of the SQLite driver: every storage operation, run on `C`.
///
/// Dropping a transaction without committing it rolls it back.
pub struct SqliteExec<C> {
    pub(crate) conn: C,
    pub(crate) wakeups: Wakeups,
    /// Whether `conn` is the caller's transaction: wake-ups then wait for its commit.
    pub(crate) in_tx: bool,
    /// Jobs became due inside the transaction; wake workers after the commit.
    pub(crate) wake_on_commit: bool,
}

impl<C> std::fmt::Debug for SqliteExec<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteExec")
            .field("in_tx", &self.in_tx)
            .finish_non_exhaustive()
    }
}

impl<C> SqliteExec<C> {
    pub(crate) fn new(conn: C, wakeups: Wakeups, in_tx: bool) -> Self {
        Self {
            conn,
            wakeups,
            in_tx,
            wake_on_commit: false,
        }
    }

    /// The underlying connection or transaction, to run the caller's own SQL next to the
    /// queue's (in the same transaction, for a transaction).
    pub fn inner(&mut self) -> &mut C {
        &mut self.conn
    }

    /// Jobs became claimable: wake workers now, or after the commit.
    fn jobs_due(&mut self) {
        if self.in_tx {
            self.wake_on_commit = true;
        } else {
            self.wakeups.wake();
        }
    }
}

/// A scope that applies whole or not at all: a savepoint inside a transaction, else an
/// `IMMEDIATE` transaction (which takes the write lock at once, so that another process
/// sharing the file is waited for instead of failing the lock upgrade). Dropped without
/// `commit`, it rolls back.
pub(crate) async fn atomic(conn: &mut SqliteConnection) -> Result<sqlx::Transaction<'_, Sqlite>> {
    if conn.is_in_transaction() {
        conn.begin().await
    } else {
        conn.begin_with("BEGIN IMMEDIATE").await
    }
    .map_err(map_err)
}

pub(crate) async fn commit(tx: sqlx::Transaction<'_, Sqlite>) -> Result<()> {
    tx.commit().await.map_err(map_err)
}

impl<C> QueueExecutor for SqliteExec<C>
where
    C: DerefMut<Target = SqliteConnection> + Send,
{
    async fn job_insert_many(
        &mut self,
        params: JobInsertManyParams,
    ) -> Result<Vec<JobInsertResult>> {
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        for job in &params.jobs {
            job.validate()?;
        }
        // One statement inserts the batch, atomically; the read of duplicates' holders that
        // may follow needs no transaction around it.
        let results = insert(&mut self.conn, &params.jobs, now_micros(None)).await?;
        if results.iter().any(|r| !r.duplicate) {
            self.jobs_due();
        }
        Ok(results)
    }

    async fn job_get_available(&mut self, params: JobGetAvailableParams) -> Result<Vec<JobRow>> {
        // As on PostgreSQL, a limit below one claims nothing (SQLite would read a negative
        // LIMIT as none).
        if params.limit < 1 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql!("job_get_available"))
            .bind(params.worker_id.as_str())
            .bind(params.queue.as_str())
            .bind(params.limit)
            .bind(now_micros(params.now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        let mut jobs = rows.iter().map(rows::job).collect::<Result<Vec<_>>>()?;
        jobs.sort_unstable_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.run_at.cmp(&b.run_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(jobs)
    }

    async fn job_complete_many(&mut self, params: JobCompleteManyParams) -> Result<Vec<i64>> {
        // Two completions of one claim: the first wins, as if they were applied in turn (the
        // second would find the job no longer running).
        let mut seen = HashSet::with_capacity(params.completions.len());
        let completions: Vec<&JobCompletion> = params
            .completions
            .iter()
            .filter(|c| seen.insert((c.id, c.claim_token)))
            .collect();
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        // One JSON array stands in for PostgreSQL's unnest: two statements per batch, not two
        // per completion.
        let input: Vec<_> = completions
            .iter()
            .map(|c| {
                // The positions job_complete_attempts.sql and job_complete.sql read.
                let t = c.outcome.transition(c.finished_at);
                serde_json::json!([
                    c.id,
                    c.attempt,
                    t.status.as_str(),
                    t.run_at.map(micros),
                    t.last_error,
                    t.attempts_delta,
                    t.completed_at.map(micros),
                    micros(c.finished_at),
                    c.worker_id,
                    micros(c.started_at),
                    t.attempt_outcome.as_str(),
                    t.attempt_error,
                    uuid_text(c.claim_token),
                    t.rescues_reset,
                ])
            })
            .collect();
        let input = json_text!(&input)?;

        let mut tx = atomic(&mut self.conn).await?;
        let applied: HashSet<i64> = sqlx::query_scalar(sql!("job_complete_attempts"))
            .bind(input.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?
            .into_iter()
            .collect();
        if applied.is_empty() {
            commit(tx).await?;
            return Ok(Vec::new());
        }
        let done = sqlx::query(sql!("job_complete"))
            .bind(input.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() != applied.len() as u64 {
            // Both statements apply the same guard in one transaction; a mismatch is a bug.
            return Err(Error::Database(
                format!(
                    "completion recorded {} attempts but finalised {} jobs",
                    applied.len(),
                    done.rows_affected()
                )
                .into(),
            ));
        }
        commit(tx).await?;

        // Input order.
        let mut out = Vec::with_capacity(applied.len());
        let mut released = false;
        for c in completions {
            if applied.contains(&c.id) {
                released |= c.outcome == CompletionOutcome::Released;
                out.push(c.id);
            }
        }
        if released {
            self.jobs_due();
        }
        Ok(out)
    }

    async fn job_get(&mut self, id: i64) -> Result<Option<JobRow>> {
        let row = sqlx::query(sql!("job_get"))
            .bind(id)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::job).transpose()
    }

    async fn job_list(&mut self, params: JobListParams) -> Result<Vec<JobRow>> {
        if !check_limit(params.limit)? {
            return Ok(Vec::new());
        }
        let states: Vec<&str> = params.states.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(sql!("job_list"))
            .bind(json_text!(&states)?)
            .bind(json_text!(&params.job_types)?)
            .bind(params.queue.as_deref())
            .bind(params.document_id.map(uuid_text))
            .bind(params.before_id)
            .bind(params.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::job).collect()
    }

    async fn job_attempt_list(&mut self, job_id: i64) -> Result<Vec<JobAttempt>> {
        let rows = sqlx::query(sql!("job_attempt_list"))
            .bind(job_id)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::attempt).collect()
    }

    async fn job_retry(&mut self, params: JobRetryParams) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = sqlx::query_scalar(sql!("job_retry"))
            .bind(json_text!(&params.ids)?)
            .bind(params.job_type.as_deref())
            .bind(params.queue.as_deref())
            .bind(now_micros(params.now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        ids.sort_unstable();
        if !ids.is_empty() {
            self.jobs_due();
        }
        Ok(ids)
    }

    async fn job_cancel(&mut self, params: JobCancelParams) -> Result<Vec<i64>> {
        if params.ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = json_text!(&params.ids)?;
        let now = now_micros(params.now);
        let mut tx = atomic(&mut self.conn).await?;
        sqlx::query(sql!("job_cancel_attempts"))
            .bind(ids.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut cancelled: Vec<i64> = sqlx::query_scalar(sql!("job_cancel"))
            .bind(ids.as_str())
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        commit(tx).await?;
        cancelled.sort_unstable();
        Ok(cancelled)
    }

    async fn job_list_stuck(&mut self, params: JobListStuckParams) -> Result<Vec<StuckJobRow>> {
        if !check_limit(params.limit)? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql!("job_list_stuck"))
            .bind(now_micros(params.now))
            .bind(params.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::stuck_job).collect()
    }

    async fn job_rescue_many(&mut self, params: JobRescueManyParams) -> Result<JobRescueResult> {
        if params.rescues.is_empty() {
            return Ok(JobRescueResult::default());
        }
        let now = now_micros(params.now);
        let input: Vec<_> = params
            .rescues
            .iter()
            .map(|r| {
                serde_json::json!([
                    r.id,
                    r.claim_token.map(uuid_text),
                    r.attempt,
                    r.worker_id,
                    micros(r.started_at),
                    r.status.as_str(),
                    micros(r.run_at),
                    r.error,
                    r.max_attempts,
                ])
            })
            .collect();
        let input = json_text!(&input)?;
        let mut tx = atomic(&mut self.conn).await?;
        sqlx::query(sql!("job_rescue_attempts"))
            .bind(input.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let rescued: Vec<(i64, String)> = sqlx::query_as(sql!("job_rescue"))
            .bind(input.as_str())
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        commit(tx).await?;
        let mut result = JobRescueResult::default();
        for (id, status) in rescued {
            if status == JobState::Failed.as_str() {
                result.failed.push(id);
            } else {
                result.requeued.push(id);
            }
        }
        result.requeued.sort_unstable();
        result.failed.sort_unstable();
        if !result.requeued.is_empty() {
            self.jobs_due();
        }
        Ok(result)
    }

    async fn job_claims_lost(&mut self, params: JobClaimsLostParams) -> Result<Vec<i64>> {
        if params.claims.is_empty() {
            return Ok(Vec::new());
        }
        let claims: Vec<(i64, String)> = params
            .claims
            .iter()
            .map(|(id, t)| (*id, uuid_text(*t)))
            .collect();
        sqlx::query_scalar(sql!("job_claims_lost"))
            .bind(json_text!(&claims)?)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)
    }

    async fn job_run_now(&mut self, params: JobRunNowParams) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = sqlx::query_scalar(sql!("job_run_now"))
            .bind(json_text!(&params.ids)?)
            .bind(params.job_type.as_deref())
            .bind(params.queue.as_deref())
            .bind(now_micros(params.now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        ids.sort_unstable();
        if !ids.is_empty() {
            self.jobs_due();
        }
        Ok(ids)
    }

    async fn job_discard(&mut self, params: JobDiscardParams) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = sqlx::query_scalar(sql!("job_discard"))
            .bind(json_text!(&params.ids)?)
            .bind(params.job_type.as_deref())
            .bind(params.queue.as_deref())
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn audit_insert(&mut self, params: AuditInsertParams) -> Result<AuditRow> {
        let detail = if params.detail.is_null() {
            serde_json::json!({})
        } else {
            params.detail.clone()
        };
        let row = sqlx::query(sql!("audit_insert"))
            .bind(now_micros(params.now))
            .bind(params.actor.as_str())
            .bind(params.action.as_str())
            .bind(params.target.as_deref())
            .bind(json_text!(&params.job_ids)?)
            .bind(json_text!(&detail)?)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows::audit(&row)
    }

    async fn audit_list(&mut self, params: AuditListParams) -> Result<Vec<AuditRow>> {
        if !check_limit(params.limit)? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql!("audit_list"))
            .bind(params.action.as_deref())
            .bind(params.job_id)
            .bind(params.before_id)
            .bind(params.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::audit).collect()
    }

    async fn job_delete_finished(&mut self, params: JobDeleteFinishedParams) -> Result<u64> {
        if !check_limit(params.limit)? {
            return Ok(0);
        }
        let done = sqlx::query(sql!("job_delete_finished"))
            .bind(micros(params.completed_before))
            .bind(micros(params.failed_before))
            .bind(params.limit)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn job_stats(&mut self) -> Result<Vec<JobStatRow>> {
        let rows = sqlx::query(sql!("job_stats"))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::stat).collect()
    }

    async fn job_activity(&mut self, params: JobActivityParams) -> Result<Vec<JobActivityRow>> {
        let rows = sqlx::query(sql!("job_activity"))
            .bind(now_micros(params.now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::activity).collect()
    }

    async fn job_throughput(
        &mut self,
        params: docket_core::JobThroughputParams,
    ) -> Result<Vec<docket_core::JobThroughputRow>> {
        let rows = sqlx::query(sql!("job_throughput"))
            .bind(rows::micros(params.since))
            .bind(now_micros(params.now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::throughput).collect()
    }

    async fn queue_set_paused(&mut self, params: QueueSetPausedParams) -> Result<QueueRow> {
        let row = sqlx::query(sql!("queue_set_paused"))
            .bind(params.name.as_str())
            .bind(params.paused)
            .bind(now_micros(params.now))
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        let queue = rows::queue(&row)?;
        if !params.paused {
            // Jobs waiting in a resumed queue are due at once.
            self.jobs_due();
        }
        Ok(queue)
    }

    async fn queue_list(&mut self) -> Result<Vec<QueueRow>> {
        let rows = sqlx::query(sql!("queue_list"))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::queue).collect()
    }

    async fn worker_heartbeat(&mut self, params: WorkerHeartbeatParams) -> Result<()> {
        sqlx::query(sql!("worker_heartbeat"))
            .bind(params.id.as_str())
            .bind(params.hostname.as_str())
            .bind(params.pid)
            .bind(json_text!(&params.queues)?)
            .bind(now_micros(params.now))
            .bind(params.lease.num_milliseconds())
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn worker_delete(&mut self, id: &str) -> Result<()> {
        sqlx::query(sql!("worker_delete"))
            .bind(id)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn worker_list(&mut self, params: WorkerListParams) -> Result<Vec<WorkerRow>> {
        let rows = sqlx::query(sql!("worker_list"))
            .bind(now_micros(params.now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::worker).collect()
    }

    async fn worker_delete_stale(&mut self, params: WorkerDeleteStaleParams) -> Result<u64> {
        let done = sqlx::query(sql!("worker_delete_stale"))
            .bind(now_micros(params.now))
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn leader_attempt_elect(&mut self, params: LeaderElectParams) -> Result<bool> {
        let leader: Option<String> = sqlx::query_scalar(sql!("leader_attempt_elect"))
            .bind(params.leader_id.as_str())
            .bind(duration_micros(params.ttl))
            .bind(now_micros(params.now))
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(leader.is_some())
    }

    async fn leader_resign(&mut self, leader_id: &str) -> Result<()> {
        sqlx::query(sql!("leader_resign"))
            .bind(leader_id)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn leader_get(&mut self, now: Option<DateTime<Utc>>) -> Result<Option<LeaderRow>> {
        let row = sqlx::query(sql!("leader_get"))
            .bind(now_micros(now))
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::leader).transpose()
    }

    async fn cron_schedule_upsert(
        &mut self,
        params: CronScheduleUpsertParams,
    ) -> Result<CronSchedule> {
        let row = sqlx::query(sql!("cron_schedule_upsert"))
            .bind(params.spec.name.as_str())
            .bind(params.spec.expression.as_str())
            .bind(params.spec.timezone.as_str())
            .bind(params.spec.job_type.as_str())
            .bind(params.spec.queue.as_str())
            .bind(json_text!(&params.spec.payload)?)
            .bind(params.spec.priority)
            .bind(params.spec.enabled)
            .bind(params.spec.missed_policy.as_str())
            .bind(micros(params.next_run_at))
            .bind(now_micros(None))
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows::schedule(&row)
    }

    async fn cron_schedule_list(&mut self) -> Result<Vec<CronSchedule>> {
        let rows = sqlx::query(sql!("cron_schedule_list"))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::schedule).collect()
    }

    async fn cron_schedule_due(
        &mut self,
        params: CronScheduleDueParams,
    ) -> Result<CronScheduleDue> {
        let now = params.now.unwrap_or_else(Utc::now);
        let rows = sqlx::query(sql!("cron_schedule_due"))
            .bind(micros(now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(CronScheduleDue {
            now,
            schedules: rows.iter().map(rows::schedule).collect::<Result<_>>()?,
        })
    }

    async fn cron_run_enqueue(&mut self, params: CronRunEnqueueParams) -> Result<Option<CronRun>> {
        let job = params.job();
        if let Some(job) = job {
            job.validate()?;
        }
        let now = now_micros(None);
        let scheduled_for = micros(params.scheduled_for);
        let mut tx = atomic(&mut self.conn).await?;

        // 1. Advance the schedule, unless someone already did (or it is gone).
        let gate: Option<String> = sqlx::query_scalar(sql!("cron_run_gate"))
            .bind(params.schedule_name.as_str())
            .bind(scheduled_for)
            .bind(micros(params.next_run_at))
            .bind(params.expected_next_run_at.map(micros))
            .bind(now)
            .bind(job.is_some())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if gate.is_none() {
            return Ok(None);
        }

        // 1b. A manual run is refused while a run of the schedule is live.
        if params.expected_next_run_at.is_none() {
            let live: bool = sqlx::query_scalar(sql!("cron_run_live"))
                .bind(params.schedule_name.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
            if live {
                return Ok(None);
            }
        }

        // 2. An occurrence already recorded is not enqueued twice; the schedule still moves on.
        let recorded: bool = sqlx::query_scalar(sql!("cron_run_exists"))
            .bind(params.schedule_name.as_str())
            .bind(scheduled_for)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if recorded {
            commit(tx).await?;
            return Ok(None);
        }

        // 3. The job, unless skipped; a live job holding its unique key leaves the run without
        // one.
        let job_id = match job {
            Some(job) => {
                let res = insert(&mut tx, std::slice::from_ref(job), now).await?;
                res.first().filter(|r| !r.duplicate).map(|r| r.id)
            }
            None => None,
        };

        // 4. The run row.
        // A live job already holding the key means this occurrence runs there: 'duplicate',
        // a final state, not an 'enqueued' that no job would ever move on.
        let status = match (job, job_id) {
            (None, _) => params.jobless_status(),
            (Some(_), None) => "duplicate",
            (Some(_), Some(_)) => "enqueued",
        };
        let row = sqlx::query(sql!("cron_run_insert"))
            .bind(params.schedule_name.as_str())
            .bind(scheduled_for)
            .bind(job_id)
            .bind(status)
            .bind(params.message.as_deref())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            // Cannot happen while this scope holds the write lock; undo the job if it did.
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        };
        let run = rows::cron_run(&row)?;
        commit(tx).await?;
        if job_id.is_some() {
            self.jobs_due();
        }
        Ok(Some(run))
    }

    async fn cron_run_list(&mut self, params: CronRunListParams) -> Result<Vec<CronRun>> {
        if !check_limit(params.limit)? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql!("cron_run_list"))
            .bind(params.schedule_name.as_deref())
            .bind(params.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::cron_run).collect()
    }

    async fn cron_run_sync(&mut self) -> Result<u64> {
        let done = sqlx::query(sql!("cron_run_sync"))
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

impl Transaction for SqliteExec<sqlx::Transaction<'static, Sqlite>> {
    async fn commit(self) -> Result<()> {
        self.conn.commit().await.map_err(map_err)?;
        if self.wake_on_commit {
            self.wakeups.wake();
        }
        Ok(())
    }

    async fn rollback(self) -> Result<()> {
        self.conn.rollback().await.map_err(map_err)
    }
}
