//! Stuck documents: not finished, yet with no live job to move them on.
//!
//! Chaining in one transaction means this should not happen; the sweep is the safety net for
//! what chaining cannot prevent (a stage job cancelled or deleted by hand, a stage that timed
//! out on its last attempt, a bug). It runs as the built-in cron schedule
//! [`SWEEP_SCHEDULE`] (every minute, once across all nodes), and for each stuck document:
//!
//! - if the stage's latest job was dead-lettered, the document fails with that job's error
//!   (a notification that could not be delivered completes it instead: it *was* processed);
//! - otherwise it re-enqueues the stage the document's status names.

use std::time::Duration;

use chrono::Utc;
use docket_core::{
    CronScheduleSpec, DocumentRow, DocumentStatus, DocumentStore, Driver, JobListParams, JobState,
    MissedRunPolicy, QueueExecutor, StuckDocumentsParams, Transaction,
};
use docket_queue::{JobArgs, JobContext, JobError, Worker, Workers};
use serde::{Deserialize, Serialize};

use crate::Pipeline;
use crate::stages::{Stage, StageArgs, stage_params};

/// The name of the built-in schedule that sweeps for stuck documents.
pub const SWEEP_SCHEDULE: &str = "docket.sweep_documents";

/// What was done for one stuck document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Repair {
    /// The document.
    pub document_id: uuid::Uuid,
    /// Its status when found.
    pub status: DocumentStatus,
    /// What was done.
    pub action: RepairAction,
}

/// How a stuck document was repaired.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "detail")]
pub enum RepairAction {
    /// The stage's job was enqueued again.
    Requeued(String),
    /// The stage's job had been dead-lettered: the document failed with its error.
    Failed(String),
    /// Its notification had been dead-lettered: the document completed.
    Completed,
}

/// The sweep job's arguments (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SweepArgs {}

impl JobArgs for SweepArgs {
    const KIND: &'static str = "docket.sweep_documents";
}

/// The built-in schedule: every minute, in `queue`.
pub fn sweep_schedule(queue: &str) -> CronScheduleSpec {
    CronScheduleSpec {
        name: SWEEP_SCHEDULE.to_owned(),
        expression: "* * * * *".to_owned(),
        timezone: "UTC".to_owned(),
        job_type: SweepArgs::KIND.to_owned(),
        queue: queue.to_owned(),
        payload: serde_json::json!({}),
        priority: 0,
        enabled: true,
        missed_policy: MissedRunPolicy::Skip,
    }
}

struct SweepWorker<D: Driver>(Pipeline<D>);

impl<D: Driver> Worker<D> for SweepWorker<D> {
    type Args = SweepArgs;

    async fn work(&self, _ctx: JobContext<D>, _args: SweepArgs) -> Result<(), JobError> {
        let after = self.0.inner.stages.stuck_after();
        let repairs = self
            .0
            .repair_stuck(after)
            .await
            .map_err(JobError::retryable)?;
        if !repairs.is_empty() {
            tracing::warn!(count = repairs.len(), "repaired stuck documents");
        }
        Ok(())
    }
}

pub(crate) fn register<D: Driver>(p: &Pipeline<D>, workers: &mut Workers<D>) {
    workers.register(SweepWorker(p.clone()));
}

impl<D: Driver> Pipeline<D> {
    /// Finds documents with no live job whose last change is older than `idle`, and repairs
    /// them (see the module docs).
    pub async fn repair_stuck(&self, idle: Duration) -> docket_core::Result<Vec<Repair>> {
        let stuck = self.list_stuck(idle, 500).await?;
        let mut repairs = Vec::with_capacity(stuck.len());
        for doc in stuck {
            if let Some(r) = self.repair_one(&doc).await? {
                tracing::warn!(document_id = %doc.id, status = doc.status.as_str(), action = ?r.action, "stuck document");
                repairs.push(r);
            }
        }
        Ok(repairs)
    }

    /// The documents the sweep would repair now: not finished, no live job, and no change for
    /// `pipeline.stuck_after_ms`; the longest unchanged first, at most `limit`. The sweep runs
    /// every minute, so one listed here for longer means the sweep is not running or cannot
    /// repair it.
    pub async fn stuck_documents(&self, limit: i64) -> docket_core::Result<Vec<DocumentRow>> {
        self.list_stuck(self.inner.stages.stuck_after(), limit)
            .await
    }

    async fn list_stuck(
        &self,
        idle: Duration,
        limit: i64,
    ) -> docket_core::Result<Vec<DocumentRow>> {
        let cutoff = Utc::now()
            - chrono::Duration::from_std(idle).unwrap_or_else(|_| chrono::Duration::days(1));
        let mut c = self.inner.driver.conn().await?;
        c.document_list_stuck(&StuckDocumentsParams {
            updated_before: cutoff,
            limit,
        })
        .await
    }

    async fn repair_one(&self, doc: &DocumentRow) -> docket_core::Result<Option<Repair>> {
        let Some(stage) = Stage::for_status(doc.status) else {
            return Ok(None);
        };
        let kind = stage_kind(stage);
        let jobs = {
            let mut c = self.inner.driver.conn().await?;
            c.job_list(JobListParams {
                job_types: vec![kind.to_owned()],
                document_id: Some(doc.id),
                limit: 1,
                ..JobListParams::default()
            })
            .await?
        };
        let this_generation = jobs
            .first()
            .filter(|j| j.payload.get("generation") == Some(&doc.generation.into()));
        // A re-embedding keeps its low priority and silence when its stage is enqueued again.
        let reembed = this_generation
            .and_then(|j| j.payload.get("reembed"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let args = StageArgs {
            document_id: doc.id,
            generation: doc.generation,
            failed: None,
            reembed,
        };
        let dead = this_generation.filter(|j| j.status == JobState::Failed);
        let action = match (dead, stage) {
            (Some(_), Stage::Notify) => {
                let mut c = self.inner.driver.conn().await?;
                c.document_set_stage(&stage_params(
                    doc,
                    DocumentStatus::Completed,
                    stage.name(),
                    100,
                    None,
                ))
                .await?;
                RepairAction::Completed
            }
            (Some(job), _) => {
                let reason = job
                    .last_error
                    .clone()
                    .unwrap_or_else(|| format!("the {} stage failed", stage.name()));
                self.fail_document(&args, stage, &reason).await?;
                RepairAction::Failed(reason)
            }
            (None, _) => {
                let mut tx = self.inner.driver.begin().await?;
                self.enqueue_in(&mut tx, stage, doc, None, reembed).await?;
                tx.commit().await?;
                RepairAction::Requeued(stage.name().to_owned())
            }
        };
        Ok(Some(Repair {
            document_id: doc.id,
            status: doc.status,
            action,
        }))
    }
}

fn stage_kind(stage: Stage) -> &'static str {
    use crate::stages::*;
    match stage {
        Stage::Parse => ParseJob::KIND,
        Stage::Chunk => ChunkJob::KIND,
        Stage::Embed => EmbedJob::KIND,
        Stage::Complete => CompleteJob::KIND,
        Stage::Notify => NotifyJob::KIND,
    }
}
