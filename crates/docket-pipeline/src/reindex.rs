//! Embedder identity and re-embedding.
//!
//! Every embedder has a fingerprint ([`docket_embed::EmbedderIdentity`]), recorded with each
//! document's active generation. Search ranks only the documents whose vectors the running
//! embedder made; [`EmbedderReport`] counts the others (the *stale* documents) and says why.
//!
//! Re-embedding moves stale documents to the running embedder as durable work: one
//! [`ReindexArgs`] job (at most one live, priority 0) starts new generations a window at a
//! time ([`docket_core::DocumentStore::document_reembed`]): each holds a copy of the active
//! text, and of its chunks when the running chunker made them (else it is chunked again; the
//! original is never parsed again). Their stage jobs run at priority 0, below every upload,
//! and the complete stage switches each document to its new vectors atomically; until then
//! its old generation stays stored (though search, which ranks only the running embedder's
//! vectors, does not rank it). A crash loses nothing: started generations are ordinary stage
//! jobs, and the reindex job is rescued and carries on with the documents still stale.

use std::time::{Duration, Instant};

use docket_core::{
    DocumentReembedParams, DocumentStatus, DocumentStore, Driver, EmbedderAdoptParams,
    EmbedderCount, QueueExecutor, Transaction,
};
use docket_embed::EmbedderSpec;
use docket_queue::{InsertOpts, JobArgs, JobContext, JobError, Worker, Workers, insert_params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::stages::Stage;
use crate::{Pipeline, PipelineError};

/// The re-embedding job's arguments (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReindexArgs {}

impl JobArgs for ReindexArgs {
    const KIND: &'static str = "docket.reindex";
}

/// The unique key of the re-embedding job: one live at a time.
pub const REINDEX_KEY: &str = "docket.reindex";

/// How many documents re-embed at once.
const WINDOW: i64 = 16;

/// How long a search may reuse an [`EmbedderReport`].
const REPORT_TTL: Duration = Duration::from_secs(2);

/// Where the searchable documents stand with the running embedder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedderReport {
    /// The running embedder's name (`provider:model`).
    pub name: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// What the fingerprint is made of.
    pub spec: EmbedderSpec,
    /// Searchable documents whose vectors it made.
    pub current_documents: i64,
    /// Searchable documents that search cannot rank: another embedder made their vectors.
    pub stale_documents: i64,
    /// Of those, how many are being processed again now (re-embedding or reprocessing).
    pub reembedding_documents: i64,
    /// The stale documents by the embedder that made them, with why.
    pub stale: Vec<StaleEmbedder>,
}

/// Stale documents of one other embedder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaleEmbedder {
    /// The embedder that made their vectors (`None`: not recorded).
    pub embedder: Option<String>,
    /// Its fingerprint (`None`: made before fingerprints were recorded).
    pub fingerprint: Option<String>,
    /// How many documents.
    pub documents: i64,
    /// Why search leaves them out, and what fixes it.
    pub reason: String,
}

impl EmbedderReport {
    fn new(spec: &docket_embed::EmbedderIdentity, counts: Vec<EmbedderCount>) -> Self {
        let mut report = EmbedderReport {
            name: spec.name.clone(),
            fingerprint: spec.fingerprint.clone(),
            spec: spec.spec.clone(),
            current_documents: 0,
            stale_documents: 0,
            reembedding_documents: 0,
            stale: Vec::new(),
        };
        for c in counts {
            if c.embedder_fingerprint.as_deref() == Some(spec.fingerprint.as_str()) {
                report.current_documents += c.documents;
                continue;
            }
            report.stale_documents += c.documents;
            if !c.finished {
                report.reembedding_documents += c.documents;
            }
            if let Some(s) = report
                .stale
                .iter_mut()
                .find(|s| s.fingerprint == c.embedder_fingerprint && s.embedder == c.embedder)
            {
                s.documents += c.documents;
                continue;
            }
            let made_by = match (&c.embedder, &c.embedder_fingerprint) {
                (Some(name), Some(fp)) => format!("{name} ({fp})"),
                (Some(name), None) => format!("{name}, before embedders were fingerprinted"),
                (None, _) => "an unrecorded embedder".to_owned(),
            };
            report.stale.push(StaleEmbedder {
                embedder: c.embedder,
                fingerprint: c.embedder_fingerprint,
                documents: c.documents,
                reason: format!(
                    "their vectors were made by {made_by}, not by the running {} ({}); \
                     `docket reindex` re-embeds them",
                    spec.name, spec.fingerprint
                ),
            });
        }
        report
    }
}

/// What [`Pipeline::start_reindex`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReindexStarted {
    /// The re-embedding job.
    pub job_id: i64,
    /// `false` when one was already live (its id is returned).
    pub created: bool,
    /// Stale documents when it was asked for.
    pub stale_documents: i64,
}

struct ReindexWorker<D: Driver>(Pipeline<D>);

impl<D: Driver> Worker<D> for ReindexWorker<D> {
    type Args = ReindexArgs;

    async fn work(&self, ctx: JobContext<D>, _args: ReindexArgs) -> Result<(), JobError> {
        self.0.reembed_all(&ctx).await
    }

    /// A large store takes hours; a worker that dies hands the job on (it starts with the
    /// documents still stale).
    fn timeout(&self) -> Duration {
        Duration::from_secs(24 * 3600)
    }
}

pub(crate) fn register<D: Driver>(p: &Pipeline<D>, workers: &mut Workers<D>) {
    workers.register(ReindexWorker(p.clone()));
}

impl<D: Driver> Pipeline<D> {
    /// Where the searchable documents stand with the running embedder (read now).
    pub async fn embedder_report(&self) -> Result<EmbedderReport, PipelineError> {
        let counts = {
            let mut c = self.inner.driver.conn().await?;
            c.document_embedders().await?
        };
        let report = EmbedderReport::new(self.inner.embedder.identity(), counts);
        *self.inner.report.lock().expect("report lock") = Some((Instant::now(), report.clone()));
        Ok(report)
    }

    /// [`Pipeline::embedder_report`], reused for up to two seconds (for searches).
    pub async fn embedder_report_cached(&self) -> Result<EmbedderReport, PipelineError> {
        if let Some((at, report)) = &*self.inner.report.lock().expect("report lock")
            && at.elapsed() < REPORT_TTL
        {
            return Ok(report.clone());
        }
        self.embedder_report().await
    }

    /// Gives documents whose vectors were made before fingerprints were recorded the running
    /// embedder's fingerprint when their embedder has its name (the same provider and model),
    /// so that an upgrade does not make every document stale. Returns how many.
    pub async fn adopt_unfingerprinted(&self) -> Result<u64, PipelineError> {
        let identity = self.inner.embedder.identity();
        let mut c = self.inner.driver.conn().await?;
        let adopted = c
            .document_embedder_adopt(&EmbedderAdoptParams {
                embedder: identity.name.clone(),
                embedder_fingerprint: identity.fingerprint.clone(),
            })
            .await?;
        if adopted > 0 {
            tracing::info!(
                documents = adopted,
                embedder = %identity.name,
                fingerprint = %identity.fingerprint,
                "recorded the running embedder's fingerprint for documents its name made"
            );
        }
        Ok(adopted)
    }

    /// Enqueues the re-embedding job (one at a time: a live one is returned instead).
    pub async fn start_reindex(&self) -> Result<ReindexStarted, PipelineError> {
        let report = self.embedder_report().await?;
        let params = insert_params(
            &ReindexArgs {},
            InsertOpts {
                queue: Some(self.inner.stages.queue.clone()),
                priority: Some(0),
                max_attempts: Some(self.inner.stages.max_attempts),
                unique_key: Some(REINDEX_KEY.to_owned()),
                ..InsertOpts::default()
            },
        )?;
        let mut c = self.inner.driver.conn().await?;
        let inserted = c
            .job_insert_many(docket_core::JobInsertManyParams { jobs: vec![params] })
            .await?
            .pop()
            .ok_or_else(|| docket_core::Error::Decode("no insert result".into()))?;
        Ok(ReindexStarted {
            job_id: inserted.id,
            created: !inserted.duplicate,
            stale_documents: report.stale_documents,
        })
    }

    /// Starts re-embedding up to `limit` stale documents with ids above `after` (oldest
    /// first), with their stage jobs, in one transaction. Returns their ids, in order.
    pub async fn reembed_page(
        &self,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Vec<Uuid>, PipelineError> {
        let mut tx = self.inner.driver.begin().await?;
        let docs = tx
            .document_reembed(&DocumentReembedParams {
                embedder_fingerprint: self.inner.embedder.identity().fingerprint.clone(),
                chunker_fingerprint: self.inner.chunker.fingerprint().to_owned(),
                limit,
                after,
                now: None,
            })
            .await?;
        for doc in &docs {
            let stage = if doc.status == DocumentStatus::Embedding {
                Stage::Embed
            } else {
                Stage::Chunk
            };
            self.enqueue_in(&mut tx, stage, doc, None, true).await?;
        }
        tx.commit().await?;
        for doc in &docs {
            self.inner
                .hub
                .publish(crate::progress::ProgressEvent::of(doc));
        }
        Ok(docs.iter().map(|d| d.id).collect())
    }

    /// The re-embedding job: keeps up to [`WINDOW`] documents re-embedding, walking the stale
    /// ones once in id order, until none is left to start and none is in flight. A document
    /// whose re-embedding fails stays stale (and counted) until a person looks; the next run
    /// tries it again.
    async fn reembed_all(&self, ctx: &JobContext<D>) -> Result<(), JobError> {
        let db = |e: PipelineError| match e {
            PipelineError::Db(e) if e.is_unavailable() => {
                JobError::snooze(format!("database unavailable: {e}"), Duration::from_secs(3))
            }
            e => JobError::retryable(e),
        };
        let started = Instant::now();
        let mut cursor: Option<Uuid> = None;
        let mut exhausted = false;
        let mut documents = 0usize;
        loop {
            if ctx.cancelled().is_cancelled() {
                // Shutting down (or cancelled): a later run carries on from the stale ones.
                return Err(JobError::snooze(
                    "re-embedding stopped; it carries on where it was",
                    Duration::from_secs(1),
                ));
            }
            let report = self.embedder_report().await.map_err(db)?;
            let room = WINDOW - report.reembedding_documents;
            if !exhausted && room > 0 {
                let ids = self.reembed_page(room, cursor).await.map_err(db)?;
                documents += ids.len();
                match ids.last() {
                    Some(last) => cursor = Some(*last),
                    None => exhausted = true,
                }
            }
            if exhausted && report.reembedding_documents == 0 {
                tracing::info!(
                    documents,
                    stale_left = report.stale_documents,
                    seconds = started.elapsed().as_secs(),
                    "re-embedding finished"
                );
                return Ok(());
            }
            tokio::select! {
                _ = ctx.cancelled().cancelled() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
}
