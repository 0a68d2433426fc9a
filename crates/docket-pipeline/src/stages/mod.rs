//! The five stage handlers.
//!
//! Every stage follows one shape: check the job still belongs to the document's current
//! generation (a re-processed or deleted document makes older jobs no-ops), mark the
//! document as in this stage, do the work, then in **one transaction** write the outputs,
//! move the document on, enqueue the next stage and complete this job. Outputs are keyed by
//! document and generation and replaced, never appended, so running a stage twice leaves the
//! same rows.
//!
//! A stage that fails for good (a permanent error, or its last attempt) fails the document
//! with the stage and the reason, and enqueues the failure notification.

use std::time::{Duration, Instant};

use docket_core::{
    ChunkListParams, ChunkReplaceParams, DocumentActivateParams, DocumentFailParams, DocumentRow,
    DocumentStageParams, DocumentStatus, DocumentStore, DocumentText, Driver, GenerationKey,
    Transaction,
};
use docket_parse::{Format, Parsed, Section};
use docket_queue::retry::Backoff;
use docket_queue::{JobArgs, JobContext, JobError, Worker, Workers};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Pipeline;
use crate::blob::BlobError;
use crate::progress::ProgressEvent;

mod embed;

use embed::embed_progress;

/// A pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Text extraction.
    Parse,
    /// Splitting into chunks.
    Chunk,
    /// Embedding the chunks.
    Embed,
    /// Making the new chunks searchable.
    Complete,
    /// Webhooks and email.
    Notify,
}

impl Stage {
    /// The stage's name, as stored in `documents.stage`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Chunk => "chunk",
            Stage::Embed => "embed",
            Stage::Complete => "complete",
            Stage::Notify => "notify",
        }
    }

    /// The document status while this stage runs.
    pub fn status(self) -> DocumentStatus {
        match self {
            Stage::Parse => DocumentStatus::Parsing,
            Stage::Chunk => DocumentStatus::Chunking,
            Stage::Embed => DocumentStatus::Embedding,
            Stage::Complete => DocumentStatus::Completing,
            Stage::Notify => DocumentStatus::Notifying,
        }
    }

    /// The progress a document has when this stage starts.
    pub fn start_progress(self) -> i16 {
        match self {
            Stage::Parse => 5,
            Stage::Chunk => 20,
            Stage::Embed => 30,
            Stage::Complete => 90,
            Stage::Notify => 95,
        }
    }

    /// The stage that runs for a document in `status`, for repairs.
    pub fn for_status(status: DocumentStatus) -> Option<Stage> {
        Some(match status {
            DocumentStatus::Queued | DocumentStatus::Parsing => Stage::Parse,
            DocumentStatus::Chunking => Stage::Chunk,
            DocumentStatus::Embedding => Stage::Embed,
            DocumentStatus::Completing => Stage::Complete,
            DocumentStatus::Notifying => Stage::Notify,
            DocumentStatus::Completed | DocumentStatus::Failed | DocumentStatus::Cancelled => {
                return None;
            }
        })
    }

    /// The unique key of this stage's job for one generation of a document: one live job
    /// per document, generation and stage.
    pub fn unique_key(self, document_id: Uuid, generation: i32) -> String {
        format!("document:{document_id}:{generation}:{}", self.name())
    }
}

/// The arguments of every stage job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageArgs {
    /// The document.
    pub document_id: Uuid,
    /// The generation the job was enqueued for.
    pub generation: i32,
    /// For notify jobs: whether this notifies a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<bool>,
    /// Whether this generation re-embeds a document for a new embedder ([`crate::reindex`]):
    /// its jobs run at priority 0, below uploads, and its completion notifies no one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reembed: bool,
}

macro_rules! stage_job {
    ($name:ident, $kind:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
        #[serde(transparent)]
        pub struct $name(pub StageArgs);

        impl JobArgs for $name {
            const KIND: &'static str = $kind;
        }
    };
}

stage_job!(
    ParseJob,
    "docket.parse",
    "Extract text from a document's bytes."
);
stage_job!(
    ChunkJob,
    "docket.chunk",
    "Split a document's text into chunks."
);
stage_job!(EmbedJob, "docket.embed", "Embed a document's chunks.");
stage_job!(
    CompleteJob,
    "docket.complete",
    "Make a document's new chunks searchable."
);
stage_job!(
    NotifyJob,
    "docket.notify",
    "Send a document's webhook and email."
);

pub(crate) fn register<D: Driver>(p: &Pipeline<D>, workers: &mut Workers<D>) {
    let secs = Duration::from_secs;
    // A parse attempt outlives the parser's own bound, so that the bound, not the job
    // timeout, reports a hostile file (permanently).
    let parse = p
        .inner
        .parse
        .isolation
        .as_ref()
        .map_or(secs(60), |i| i.timeout)
        + secs(30);
    let backoff = p.inner.stages.backoff();
    workers.register(ParseWorker(p.clone(), parse, backoff.clone()));
    workers.register(ChunkWorker(p.clone(), secs(600), backoff.clone()));
    workers.register(EmbedWorker(p.clone(), secs(3600), backoff.clone()));
    workers.register(CompleteWorker(p.clone(), secs(300), backoff.clone()));
    workers.register(NotifyWorker(p.clone(), secs(120), backoff));
}

pub(crate) fn stage_params(
    doc: &DocumentRow,
    status: DocumentStatus,
    stage: &str,
    progress: i16,
    timing: Option<(String, i64)>,
) -> DocumentStageParams {
    DocumentStageParams {
        id: doc.id,
        generation: doc.generation,
        status,
        stage: Some(stage.to_owned()),
        progress,
        timing,
        now: None,
    }
}

fn ms(since: Instant) -> i64 {
    since.elapsed().as_millis() as i64
}

/// Every chunk of `doc`'s current generation, in order.
async fn generation_chunks<T: DocumentStore>(
    tx: &mut T,
    doc: &DocumentRow,
) -> Result<Vec<docket_core::ChunkRow>, JobError> {
    tx.chunk_list(ChunkListParams {
        document_id: doc.id,
        generation: Some(doc.generation),
        limit: i64::MAX,
        offset: 0,
    })
    .await
    .map_err(db)
}

/// A database error in a stage: when the database is unreachable (restarting, connections
/// cut) or aborted the transaction to settle a deadlock, the job is not at fault, so it is
/// tried again in a few seconds without spending an attempt; any other database error is an
/// ordinary retryable failure.
fn db(e: docket_core::Error) -> JobError {
    if e.is_unavailable() || e.is_conflict() {
        JobError::snooze(format!("database unavailable: {e}"), DATABASE_RETRY)
    } else {
        JobError::retryable(e)
    }
}

/// How soon a stage that lost the database runs again.
const DATABASE_RETRY: Duration = Duration::from_secs(3);

impl<D: Driver> Pipeline<D> {
    /// Loads the document and marks it as in `stage`; `None` when the job is stale (the
    /// document was deleted or re-processed since).
    async fn begin_stage(
        &self,
        args: &StageArgs,
        stage: Stage,
    ) -> Result<Option<DocumentRow>, JobError> {
        let mut c = self.inner.driver.conn().await.map_err(db)?;
        let Some(doc) = c.document_get(args.document_id).await.map_err(db)? else {
            tracing::info!(document_id = %args.document_id, "document is gone; nothing to do");
            return Ok(None);
        };
        if doc.generation != args.generation {
            tracing::info!(
                document_id = %doc.id,
                job_generation = args.generation,
                generation = doc.generation,
                "document was re-processed; this job is stale"
            );
            return Ok(None);
        }
        let progress = doc.progress.max(stage.start_progress());
        let moved = c
            .document_set_stage(&stage_params(
                &doc,
                stage.status(),
                stage.name(),
                progress,
                None,
            ))
            .await
            .map_err(db)?;
        if !moved {
            return Ok(None);
        }
        // The previous stage usually announced this very state as it handed over: say it
        // once.
        let unchanged = doc.status == stage.status()
            && doc.stage.as_deref() == Some(stage.name())
            && doc.progress == progress;
        if !unchanged {
            self.inner.hub.emit(
                doc.id,
                doc.generation,
                stage.status(),
                stage.name(),
                progress,
                None,
            );
        }
        Ok(Some(doc))
    }

    /// Enqueues `stage` for `doc` in `tx` and completes this job in the same transaction:
    /// both commit, or neither (when this attempt's claim was lost meanwhile). Whether they
    /// committed.
    async fn enqueue_and_complete(
        &self,
        ctx: &JobContext<D>,
        mut tx: D::Tx,
        stage: Stage,
        doc: &DocumentRow,
        reembed: bool,
    ) -> Result<bool, JobError> {
        self.enqueue_in(&mut tx, stage, doc, None, reembed)
            .await
            .map_err(db)?;
        if !ctx.complete_in(&mut tx).await.map_err(db)? {
            tx.rollback().await.map_err(db)?;
            return Ok(false);
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    /// Moves the document to `next` inside `tx`: records this stage's timing, enqueues the
    /// next stage and completes the job. Commits; `false` when the job was no longer ours.
    async fn advance(
        &self,
        ctx: &JobContext<D>,
        mut tx: D::Tx,
        doc: &DocumentRow,
        (done, next): (Stage, Stage),
        started: Instant,
        reembed: bool,
    ) -> Result<bool, JobError> {
        let moved = tx
            .document_set_stage(&stage_params(
                doc,
                next.status(),
                next.name(),
                next.start_progress(),
                Some((format!("{}_ms", done.name()), ms(started))),
            ))
            .await
            .map_err(db)?;
        if !moved {
            tx.rollback().await.map_err(db)?;
            return Ok(false);
        }
        if !self
            .enqueue_and_complete(ctx, tx, next, doc, reembed)
            .await?
        {
            return Ok(false);
        }
        self.inner.hub.emit(
            doc.id,
            doc.generation,
            next.status(),
            next.name(),
            next.start_progress(),
            None,
        );
        Ok(true)
    }

    /// Runs a stage body; a failure that ends the document (permanent, or on the last
    /// attempt) records the stage and reason on it and enqueues the failure notification.
    async fn guarded<F>(
        &self,
        ctx: &JobContext<D>,
        args: &StageArgs,
        stage: Stage,
        body: F,
    ) -> Result<(), JobError>
    where
        F: Future<Output = Result<(), JobError>>,
    {
        let started = Instant::now();
        let result = body.await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(e) if e.is_snooze() => "snoozed",
            Err(e) if e.is_permanent() || ctx.job().attempts >= ctx.job().max_attempts => "failed",
            Err(_) => "retry",
        };
        metrics::histogram!(
            "docket_stage_duration_seconds",
            "stage" => stage.name(),
            "outcome" => outcome,
        )
        .record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            let job = ctx.job();
            let last = job.attempts >= job.max_attempts;
            // A notification that cannot be delivered does not fail a processed document.
            if stage != Stage::Notify
                && !e.is_snooze()
                && (e.is_permanent() || last)
                && let Err(db_err) = self.fail_document(args, stage, e.message()).await
            {
                tracing::warn!(error = %db_err, "could not record the document's failure");
            }
        }
        result
    }

    /// Marks the document failed at `stage` and enqueues the failure notification.
    pub(crate) async fn fail_document(
        &self,
        args: &StageArgs,
        stage: Stage,
        reason: &str,
    ) -> docket_core::Result<()> {
        let mut tx = self.inner.driver.begin().await?;
        let failed = tx
            .document_fail(&DocumentFailParams {
                id: args.document_id,
                generation: args.generation,
                stage: stage.name().to_owned(),
                error: reason.to_owned(),
                now: None,
            })
            .await?;
        if !failed {
            return tx.rollback().await;
        }
        let doc = tx.document_get(args.document_id).await?;
        if let Some(doc) = &doc
            && stage != Stage::Notify
            && self.inner.notifier.wants_failed(doc)
        {
            self.enqueue_in(&mut tx, Stage::Notify, doc, Some(true), false)
                .await?;
        }
        tx.commit().await?;
        if let Some(doc) = doc {
            self.inner.hub.publish(ProgressEvent::of(&doc));
        }
        Ok(())
    }

    async fn parse(&self, ctx: &JobContext<D>, args: &StageArgs) -> Result<(), JobError> {
        let started = Instant::now();
        let Some(doc) = self.begin_stage(args, Stage::Parse).await? else {
            return Ok(());
        };
        let bytes = self
            .inner
            .blobs
            .get(&doc.storage_key)
            .await
            .map_err(|e| match e {
                BlobError::NotFound(_) => {
                    JobError::permanent("the original file is missing from the blob store")
                }
                e => JobError::retryable(e),
            })?;
        let format =
            docket_parse::detect(&bytes, doc.filename.as_deref(), doc.content_type.as_deref())
                .map_err(JobError::permanent)?;
        let limits = self.inner.parse.limits;
        let parsed = match &self.inner.parse.isolation {
            Some(iso) => docket_parse::parse_isolated(iso, bytes.to_vec(), format, &limits).await,
            None => {
                ctx.run_blocking(move || docket_parse::parse(&bytes, format, &limits))
                    .await?
            }
        }
        .map_err(|e| {
            // The file's own faults are permanent; a parser that could not start is not.
            if e.is_permanent() {
                JobError::permanent(e)
            } else {
                JobError::retryable(e)
            }
        })?;
        let sections = serde_json::to_value(&parsed.sections)
            .map_err(|e| JobError::permanent(format!("cannot encode sections: {e}")))?;
        let mut tx = self.inner.driver.begin().await.map_err(db)?;
        tx.document_text_upsert(&DocumentText {
            document_id: doc.id,
            generation: doc.generation,
            format: format.name().to_owned(),
            text: parsed.text,
            sections,
        })
        .await
        .map_err(db)?;
        self.advance(
            ctx,
            tx,
            &doc,
            (Stage::Parse, Stage::Chunk),
            started,
            args.reembed,
        )
        .await?;
        Ok(())
    }

    async fn chunk(&self, ctx: &JobContext<D>, args: &StageArgs) -> Result<(), JobError> {
        let started = Instant::now();
        let Some(doc) = self.begin_stage(args, Stage::Chunk).await? else {
            return Ok(());
        };
        let text = {
            let mut c = self.inner.driver.conn().await.map_err(db)?;
            c.document_text_get(GenerationKey::new(doc.id, doc.generation))
                .await
                .map_err(db)?
        };
        let Some(text) = text else {
            // The parse output is gone (it should not be): parse again.
            tracing::warn!(document_id = %doc.id, "parsed text missing; parsing again");
            let tx = self.inner.driver.begin().await.map_err(db)?;
            self.enqueue_and_complete(ctx, tx, Stage::Parse, &doc, args.reembed)
                .await?;
            return Ok(());
        };
        let parsed = Parsed {
            format: text
                .format
                .parse::<Format>()
                .map_err(|_| JobError::permanent(format!("unknown format {:?}", text.format)))?,
            sections: serde_json::from_value::<Vec<Section>>(text.sections)
                .map_err(|e| JobError::permanent(format!("bad stored sections: {e}")))?,
            text: text.text,
        };
        let chunker = self.inner.chunker.clone();
        let chunks = ctx.run_blocking(move || chunker.chunk(&parsed)).await?;
        if chunks.is_empty() {
            return Err(JobError::permanent("the document has no text to index"));
        }
        let mut tx = self.inner.driver.begin().await.map_err(db)?;
        tx.chunk_replace(ChunkReplaceParams {
            document_id: doc.id,
            generation: doc.generation,
            chunks: &chunks,
        })
        .await
        .map_err(db)?;
        self.advance(
            ctx,
            tx,
            &doc,
            (Stage::Chunk, Stage::Embed),
            started,
            args.reembed,
        )
        .await?;
        Ok(())
    }

    async fn complete(&self, ctx: &JobContext<D>, args: &StageArgs) -> Result<(), JobError> {
        let started = Instant::now();
        let Some(doc) = self.begin_stage(args, Stage::Complete).await? else {
            return Ok(());
        };
        let mut tx = self.inner.driver.begin().await.map_err(db)?;
        let (embedded, total) = tx
            .chunk_count_embedded(GenerationKey::new(doc.id, doc.generation))
            .await
            .map_err(db)?;
        let fingerprint = &self.inner.embedder.identity().fingerprint;
        if embedded < total || doc.generation_embedder.as_ref() != Some(fingerprint) {
            // Not every chunk has its vector, or not from this embedder: embed first.
            tracing::warn!(document_id = %doc.id, embedded, total, "chunks left to embed");
            tx.document_set_stage(&stage_params(
                &doc,
                DocumentStatus::Embedding,
                Stage::Embed.name(),
                embed_progress(embedded, total),
                None,
            ))
            .await
            .map_err(db)?;
            self.enqueue_and_complete(ctx, tx, Stage::Embed, &doc, args.reembed)
                .await?;
            return Ok(());
        }
        let tokens: i64 = generation_chunks(&mut tx, &doc)
            .await?
            .iter()
            .map(|c| c.token_count as i64)
            .sum();
        let notify = !args.reembed && self.inner.notifier.wants_completed(&doc);
        let (status, progress) = if notify {
            (DocumentStatus::Notifying, Stage::Notify.start_progress())
        } else {
            (DocumentStatus::Completed, 100)
        };
        let activated = tx
            .document_activate(&DocumentActivateParams {
                id: doc.id,
                generation: doc.generation,
                chunk_count: total as i32,
                token_count: tokens,
                embedder: Some(self.inner.embedder.name().to_owned()),
                embedder_fingerprint: Some(fingerprint.clone()),
                chunker_fingerprint: Some(self.inner.chunker.fingerprint().to_owned()),
                timing: Some(("complete_ms".to_owned(), ms(started))),
                status,
                progress,
                now: None,
            })
            .await
            .map_err(db)?;
        if !activated {
            tx.rollback().await.map_err(db)?;
            return Ok(());
        }
        if notify {
            self.enqueue_in(&mut tx, Stage::Notify, &doc, None, false)
                .await
                .map_err(db)?;
        }
        if !ctx.complete_in(&mut tx).await.map_err(db)? {
            tx.rollback().await.map_err(db)?;
            return Ok(());
        }
        tx.commit().await.map_err(db)?;
        self.inner.hub.emit(
            doc.id,
            doc.generation,
            status,
            if notify { "notify" } else { "complete" },
            progress,
            None,
        );
        Ok(())
    }

    async fn notify(&self, ctx: &JobContext<D>, args: &StageArgs) -> Result<(), JobError> {
        let started = Instant::now();
        let failure = args.failed.unwrap_or(false);
        let doc = {
            let mut c = self.inner.driver.conn().await.map_err(db)?;
            c.document_get(args.document_id).await.map_err(db)?
        };
        let Some(doc) = doc else { return Ok(()) };
        if doc.generation != args.generation {
            return Ok(());
        }
        let sent = self.inner.notifier.deliver(&doc, failure).await;
        let job = ctx.job();
        let last = job.attempts >= job.max_attempts;
        if let Err(e) = &sent
            && !last
            && e.is_retryable()
        {
            return Err(e.to_job_error());
        }
        if let Err(e) = &sent {
            tracing::warn!(document_id = %doc.id, error = %e, "notification not delivered");
        }
        if failure {
            return sent.map_err(|e| JobError::permanent(e.to_string()));
        }
        let mut tx = self.inner.driver.begin().await.map_err(db)?;
        let moved = tx
            .document_set_stage(&stage_params(
                &doc,
                DocumentStatus::Completed,
                Stage::Notify.name(),
                100,
                Some(("notify_ms".to_owned(), ms(started))),
            ))
            .await
            .map_err(db)?;
        // A delivery that failed leaves the job to fail with its error (below), so the job
        // is completed together with the document only when the delivery succeeded.
        if !moved || (sent.is_ok() && !ctx.complete_in(&mut tx).await.map_err(db)?) {
            tx.rollback().await.map_err(db)?;
            return Ok(());
        }
        tx.commit().await.map_err(db)?;
        self.inner.hub.emit(
            doc.id,
            doc.generation,
            DocumentStatus::Completed,
            Stage::Notify.name(),
            100,
            None,
        );
        // The document is done either way; an undelivered notification stays visible as this
        // job's error.
        sent.map_err(|e| JobError::permanent(e.to_string()))
    }
}

macro_rules! stage_worker {
    ($worker:ident, $args:ident, $stage:expr, $method:ident) => {
        /// A stage's handler, its attempt timeout and its backoff.
        struct $worker<D: Driver>(Pipeline<D>, Duration, Backoff);

        impl<D: Driver> Worker<D> for $worker<D> {
            type Args = $args;

            async fn work(&self, ctx: JobContext<D>, args: $args) -> Result<(), JobError> {
                let p = &self.0;
                p.guarded(&ctx, &args.0, $stage, p.$method(&ctx, &args.0))
                    .await
            }

            fn timeout(&self) -> Duration {
                self.1
            }

            fn backoff(&self) -> Backoff {
                self.2.clone()
            }
        }
    };
}

stage_worker!(ParseWorker, ParseJob, Stage::Parse, parse);
stage_worker!(ChunkWorker, ChunkJob, Stage::Chunk, chunk);
stage_worker!(EmbedWorker, EmbedJob, Stage::Embed, embed);
stage_worker!(CompleteWorker, CompleteJob, Stage::Complete, complete);
stage_worker!(NotifyWorker, NotifyJob, Stage::Notify, notify);
