//! Enqueueing.

use chrono::{DateTime, Utc};
use docket_core::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, JobInsertManyParams, JobInsertParams, JobInsertResult,
    QueueDriver, QueueExecutor, Result,
};
use uuid::Uuid;

use crate::job::JobArgs;

/// Per-insert options; unset fields take the kind's defaults ([`JobArgs::insert_opts`]), then
/// docket's (queue `default`, priority 0, 4 attempts, due now, no unique key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InsertOpts {
    /// The queue.
    pub queue: Option<String>,
    /// 0–10, higher first. User uploads use 5; backfills lower.
    pub priority: Option<i16>,
    /// Attempts before the job is dead-lettered.
    pub max_attempts: Option<i32>,
    /// Run no earlier than this.
    pub run_at: Option<DateTime<Utc>>,
    /// Deduplication key.
    pub unique_key: Option<String>,
    /// The document the job works on.
    pub document_id: Option<Uuid>,
}

impl InsertOpts {
    /// `self`, with its unset fields taken from `base`.
    fn or(self, base: InsertOpts) -> InsertOpts {
        InsertOpts {
            queue: self.queue.or(base.queue),
            priority: self.priority.or(base.priority),
            max_attempts: self.max_attempts.or(base.max_attempts),
            run_at: self.run_at.or(base.run_at),
            unique_key: self.unique_key.or(base.unique_key),
            document_id: self.document_id.or(base.document_id),
        }
    }
}

/// Builds the row to insert for `args`.
pub fn insert_params<A: JobArgs>(args: &A, opts: InsertOpts) -> Result<JobInsertParams> {
    let o = opts.or(args.insert_opts());
    Ok(JobInsertParams {
        job_type: A::KIND.to_owned(),
        queue: o.queue.unwrap_or_else(|| DEFAULT_QUEUE.to_owned()),
        priority: o.priority.unwrap_or(0),
        payload: serde_json::to_value(args)?,
        max_attempts: o.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
        run_at: o.run_at,
        unique_key: o.unique_key,
        document_id: o.document_id,
    })
}

/// Enqueues typed jobs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client<D: QueueDriver> {
    driver: D,
}

impl<D: QueueDriver> Client<D> {
    /// A client over `driver`.
    pub fn new(driver: D) -> Self {
        Self { driver }
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// Enqueues one job.
    pub async fn insert<A: JobArgs>(&self, args: &A, opts: InsertOpts) -> Result<JobInsertResult> {
        let mut conn = self.driver.conn().await?;
        insert_with(&mut conn, args, opts).await
    }

    /// Enqueues one job inside the caller's transaction: it becomes visible, and workers are
    /// woken, only when the transaction commits.
    pub async fn insert_tx<A: JobArgs>(
        &self,
        tx: &mut D::Tx,
        args: &A,
        opts: InsertOpts,
    ) -> Result<JobInsertResult> {
        insert_with(tx, args, opts).await
    }

    /// Enqueues many jobs in one statement.
    pub async fn insert_many<A: JobArgs>(
        &self,
        jobs: impl IntoIterator<Item = (A, InsertOpts)>,
    ) -> Result<Vec<JobInsertResult>> {
        let jobs = jobs
            .into_iter()
            .map(|(a, o)| insert_params(&a, o))
            .collect::<Result<Vec<_>>>()?;
        self.insert_raw(jobs).await
    }

    /// Enqueues rows built by the caller (any kind, for tools and benchmarks).
    pub async fn insert_raw(&self, jobs: Vec<JobInsertParams>) -> Result<Vec<JobInsertResult>> {
        let mut conn = self.driver.conn().await?;
        conn.job_insert_many(JobInsertManyParams { jobs }).await
    }
}

async fn insert_with<A: JobArgs, E: QueueExecutor>(
    exec: &mut E,
    args: &A,
    opts: InsertOpts,
) -> Result<JobInsertResult> {
    let p = insert_params(args, opts)?;
    let mut out = exec
        .job_insert_many(JobInsertManyParams { jobs: vec![p] })
        .await?;
    Ok(out.remove(0))
}
