//! Originals no document references: the sweep that deletes them.
//!
//! An original is written before its document's row (so a document never lacks its bytes),
//! and deleted after the row; a crash between the two, or a delete the store refused, leaves
//! an original that nothing references. Every hour (the built-in schedule
//! [`ORPHANS_SCHEDULE`], once across all processes) a job lists the stored originals and
//! deletes those whose document does not exist, once they are older than the grace period
//! (`storage.orphan_grace_secs`, default 1 h): an upload between writing its bytes and
//! committing its row is younger than that. Keys that are not an original's
//! ([`crate::blob::original_key`]) are never touched.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_core::{
    Clock, CronScheduleSpec, DocumentStore, Driver, MAX_IDS_PRESENT, MissedRunPolicy,
};
use docket_queue::{JobArgs, JobContext, JobError, Worker, Workers};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::blob::{BlobStore, ORIGINALS_PREFIX, original_document};
use crate::{Pipeline, PipelineError};

/// The job kind and the name of its built-in schedule.
pub const ORPHANS_SCHEDULE: &str = "docket.sweep_originals";

/// The built-in schedule: hourly at 35 past, in `queue`.
pub fn orphans_schedule(queue: &str) -> CronScheduleSpec {
    CronScheduleSpec {
        name: ORPHANS_SCHEDULE.to_owned(),
        expression: "35 * * * *".to_owned(),
        timezone: "UTC".to_owned(),
        job_type: ORPHANS_SCHEDULE.to_owned(),
        queue: queue.to_owned(),
        payload: serde_json::json!({}),
        priority: 0,
        enabled: true,
        missed_policy: MissedRunPolicy::Skip,
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepReport {
    /// Originals listed.
    pub listed: u64,
    /// Orphans deleted.
    pub deleted: u64,
    /// Orphans younger than the grace period, left for a later sweep.
    pub young: u64,
    /// Orphans whose delete failed (left for the next sweep).
    pub failed: u64,
}

/// Deletes the originals under `blobs` whose documents do not exist and that were last
/// written before `now - grace`.
pub async fn sweep_once<D: Driver>(
    driver: &D,
    blobs: &dyn BlobStore,
    grace: Duration,
    now: DateTime<Utc>,
) -> Result<SweepReport, PipelineError> {
    let cutoff = now - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut report = SweepReport::default();
    let mut listed = blobs.list(ORIGINALS_PREFIX);
    let mut page: Vec<(Uuid, String, DateTime<Utc>)> = Vec::new();
    let mut done = false;
    while !done {
        match listed.next().await.transpose()? {
            Some(meta) => {
                report.listed += 1;
                if let Some(id) = original_document(&meta.key) {
                    page.push((id, meta.key, meta.last_modified));
                }
            }
            None => done = true,
        }
        if page.len() >= MAX_IDS_PRESENT || (done && !page.is_empty()) {
            sweep_page(
                driver,
                blobs,
                std::mem::take(&mut page),
                cutoff,
                &mut report,
            )
            .await?;
        }
    }
    Ok(report)
}

async fn sweep_page<D: Driver>(
    driver: &D,
    blobs: &dyn BlobStore,
    page: Vec<(Uuid, String, DateTime<Utc>)>,
    cutoff: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<(), PipelineError> {
    let ids: Vec<Uuid> = page.iter().map(|(id, _, _)| *id).collect();
    let present: std::collections::HashSet<Uuid> = {
        let mut c = driver.conn().await?;
        c.document_ids_present(&ids).await?.into_iter().collect()
    };
    for (id, key, written) in page {
        if present.contains(&id) {
            continue;
        }
        if written > cutoff {
            report.young += 1;
            continue;
        }
        match blobs.delete(&key).await {
            Ok(()) => {
                report.deleted += 1;
                tracing::info!(key, document_id = %id, "deleted an original no document references");
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!(key, error = %e, "could not delete an orphaned original");
            }
        }
    }
    Ok(())
}

/// The sweep job's arguments (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SweepOriginalsArgs {}

impl JobArgs for SweepOriginalsArgs {
    const KIND: &'static str = ORPHANS_SCHEDULE;
}

struct SweepOriginalsWorker<D: Driver> {
    pipeline: Pipeline<D>,
    grace: Duration,
    clock: Arc<dyn Clock>,
}

impl<D: Driver> Worker<D> for SweepOriginalsWorker<D> {
    type Args = SweepOriginalsArgs;

    async fn work(&self, _ctx: JobContext<D>, _: SweepOriginalsArgs) -> Result<(), JobError> {
        let p = &self.pipeline;
        let report = sweep_once(p.driver(), p.blobs().as_ref(), self.grace, self.clock.now())
            .await
            .map_err(JobError::retryable)?;
        tracing::info!(
            listed = report.listed,
            deleted = report.deleted,
            young = report.young,
            failed = report.failed,
            "swept originals"
        );
        if report.failed > 0 {
            return Err(JobError::retryable(format!(
                "{} orphaned originals could not be deleted",
                report.failed
            )));
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(3600)
    }
}

/// Registers the sweep's handler: originals without a document go once older than `grace`.
pub fn register<D: Driver>(
    pipeline: &Pipeline<D>,
    workers: &mut Workers<D>,
    grace: Duration,
    clock: Arc<dyn Clock>,
) {
    workers.register(SweepOriginalsWorker {
        pipeline: pipeline.clone(),
        grace,
        clock,
    });
}
