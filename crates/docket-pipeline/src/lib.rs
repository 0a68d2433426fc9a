//! The document pipeline: **parse → chunk → embed → complete → notify**, each stage a durable
//! job that writes its outputs, completes itself and enqueues the next stage in one
//! transaction, so a crash never leaves a document without a live job.
//!
//! [`Pipeline`] is the entry point: [`Pipeline::submit`] stores a document and enqueues its
//! first stage, [`Pipeline::register`] adds the stage handlers to a runtime, and
//! [`Pipeline::search`] ranks chunks by cosine similarity.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use docket_core::{
    DocumentInsertParams, DocumentReprocessParams, DocumentRow, DocumentSource, DocumentStore,
    Driver, Transaction,
};
use docket_embed::Embedder;
use docket_parse::{Isolation, Limits};
use docket_queue::{InsertOpts, JobArgs, Workers, insert_params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub mod alerts;
pub mod analytics;
pub mod ann;
pub mod batcher;
pub mod blob;
pub mod chunk;
pub mod config;
pub mod fetch;
pub mod ingest;
pub mod notify;
pub mod orphans;
pub mod progress;
pub mod reindex;
pub mod search;
pub mod stages;
pub mod stuck;

use batcher::EmbedBatcher;
use blob::{BlobError, BlobStore};
use chunk::Chunker;
use notify::Notifier;
use progress::{ProgressEvent, ProgressHub};
pub use search::{SearchHit, SearchMode};
use stages::{ParseJob, Stage};

/// What went wrong outside a job (submitting, searching, deleting).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file is larger than `storage.max_file_bytes`.
    #[error("file is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is empty.
    #[error("file is empty")]
    Empty,
    /// No such document.
    #[error("document {0} not found")]
    NotFound(Uuid),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] docket_core::Error),
    /// The embedding provider failed.
    #[error(transparent)]
    Embed(#[from] docket_embed::EmbedError),
    /// The in-process vector index failed.
    #[error("vector index: {0}")]
    SearchIndex(String),
}

/// How the pipeline's parse stage is bounded.
#[derive(Debug, Clone)]
pub struct ParseSettings {
    /// Size bounds.
    pub limits: Limits,
    /// The child process that parses, bounded in time and memory; `None` parses in-process.
    pub isolation: Option<Isolation>,
}

/// Everything the pipeline runs with.
pub struct PipelineParts<D: Driver> {
    /// The database.
    pub driver: D,
    /// Where originals live.
    pub blobs: Arc<dyn BlobStore>,
    /// The embedding provider.
    pub embedder: Arc<dyn Embedder>,
    /// Parse bounds.
    pub parse: ParseSettings,
    /// Chunk sizes.
    pub chunk: config::ChunkConfig,
    /// Stage settings.
    pub stages: config::StagesConfig,
    /// Largest accepted file.
    pub max_file_bytes: u64,
    /// Webhooks and email.
    pub notifier: Notifier,
    /// Where progress events go.
    pub progress: ProgressHub,
}

/// A new document.
#[derive(Debug, Clone, Default)]
pub struct NewDocument {
    /// The file's bytes.
    pub bytes: Bytes,
    /// Its name, as given.
    pub filename: Option<String>,
    /// Its declared media type, as given.
    pub content_type: Option<String>,
    /// How it arrived.
    pub source: Option<DocumentSource>,
    /// Where to post the completion webhook.
    pub callback_url: Option<String>,
    /// Caller's metadata (a JSON object).
    pub metadata: Option<serde_json::Value>,
    /// Job priority, 0–10 (user uploads: 5).
    pub priority: i16,
    /// Process again even when identical bytes were seen before.
    pub reprocess: bool,
}

/// What [`Pipeline::submit`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    /// The document.
    pub document: DocumentRow,
    /// `false` when identical bytes already had a document, which is returned instead.
    pub created: bool,
}

pub(crate) struct Inner<D: Driver> {
    pub(crate) driver: D,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) batcher: EmbedBatcher,
    pub(crate) chunker: Chunker,
    pub(crate) parse: ParseSettings,
    pub(crate) stages: config::StagesConfig,
    pub(crate) max_file_bytes: u64,
    pub(crate) notifier: Notifier,
    pub(crate) hub: ProgressHub,
    /// Whether the database's vector index for this embedder exists (pgvector).
    pub(crate) vector_index: tokio::sync::OnceCell<bool>,
    /// The last [`reindex::EmbedderReport`] and when it was made, for searches.
    pub(crate) report: std::sync::Mutex<Option<(std::time::Instant, reindex::EmbedderReport)>>,
    /// docket's own vector index, once [`Pipeline::start_search_index`] made one.
    pub(crate) ann: std::sync::OnceLock<Arc<ann::VectorIndex>>,
}

/// The document pipeline. Cheap to clone.
pub struct Pipeline<D: Driver> {
    pub(crate) inner: Arc<Inner<D>>,
}

impl<D: Driver> Clone for Pipeline<D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// The sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl<D: Driver> Pipeline<D> {
    /// Builds the pipeline; starts the embedding batcher on the current runtime.
    pub fn new(parts: PipelineParts<D>) -> Result<Self, chunk::ChunkerError> {
        let chunker = Chunker::new(
            parts.embedder.clone(),
            parts.chunk.max_tokens,
            parts.chunk.overlap_tokens,
        )?;
        let batcher = EmbedBatcher::start(
            parts.embedder.clone(),
            Duration::from_millis(parts.stages.embed_linger_ms),
            parts.stages.embed_concurrency,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                driver: parts.driver,
                blobs: parts.blobs,
                embedder: parts.embedder,
                batcher,
                chunker,
                parse: parts.parse,
                stages: parts.stages,
                max_file_bytes: parts.max_file_bytes,
                notifier: parts.notifier,
                hub: parts.progress,
                vector_index: tokio::sync::OnceCell::new(),
                report: std::sync::Mutex::new(None),
                ann: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Adds the five stage handlers to `workers`.
    pub fn register(&self, workers: &mut Workers<D>) {
        stages::register(self, workers);
        stuck::register(self, workers);
        reindex::register(self, workers);
    }

    /// The progress broadcast.
    pub fn progress(&self) -> &ProgressHub {
        &self.inner.hub
    }

    /// The embedding provider.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.inner.embedder
    }

    /// What the embedding batcher's model calls have done since the last call of this (for
    /// benchmarks: the figures of one phase).
    pub fn take_embed_stats(&self) -> batcher::BatcherStats {
        self.inner.batcher.take_stats()
    }

    /// The chunker.
    pub fn chunker(&self) -> &Chunker {
        &self.inner.chunker
    }

    /// Where originals live.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.inner.blobs
    }

    /// The database.
    pub fn driver(&self) -> &D {
        &self.inner.driver
    }

    /// Stores a document and enqueues its parse stage. Identical bytes find the existing
    /// document (`created: false`) unless `reprocess` is set, in which case that document is
    /// processed again.
    pub async fn submit(&self, new: NewDocument) -> Result<Submitted, PipelineError> {
        let size = new.bytes.len() as u64;
        if size > self.inner.max_file_bytes {
            return Err(PipelineError::TooLarge {
                size,
                limit: self.inner.max_file_bytes,
            });
        }
        if size == 0 {
            return Err(PipelineError::Empty);
        }
        let sha256 = sha256_hex(&new.bytes);
        let existing = {
            let mut c = self.inner.driver.conn().await?;
            c.document_find_by_sha256(&sha256).await?
        };
        if let Some(doc) = existing {
            if !new.reprocess {
                return Ok(Submitted {
                    document: doc,
                    created: false,
                });
            }
            let document = self.reprocess(doc.id).await?;
            return Ok(Submitted {
                document,
                created: false,
            });
        }
        let id = Uuid::now_v7();
        let storage_key = blob::original_key(id);
        // The bytes go first: a crash after this leaves an orphan blob, never a document
        // without its bytes.
        self.inner
            .blobs
            .put(&storage_key, new.bytes.clone())
            .await?;
        let mut tx = self.inner.driver.begin().await?;
        let doc = tx
            .document_insert(&DocumentInsertParams {
                id,
                source: new.source.unwrap_or(DocumentSource::Upload),
                filename: new.filename,
                content_type: new.content_type,
                size_bytes: size as i64,
                sha256,
                storage_key: storage_key.clone(),
                callback_url: new.callback_url,
                metadata: new.metadata.unwrap_or_else(|| serde_json::json!({})),
                priority: new.priority,
                now: None,
            })
            .await?;
        if doc.id != id {
            // The same bytes arrived concurrently and won: keep theirs.
            tx.rollback().await?;
            self.inner.blobs.delete(&storage_key).await?;
            if new.reprocess {
                let document = self.reprocess(doc.id).await?;
                return Ok(Submitted {
                    document,
                    created: false,
                });
            }
            return Ok(Submitted {
                document: doc,
                created: false,
            });
        }
        self.enqueue_in(&mut tx, Stage::Parse, &doc, None, false)
            .await?;
        tx.commit().await?;
        self.inner.hub.publish(ProgressEvent::of(&doc));
        Ok(Submitted {
            document: doc,
            created: true,
        })
    }

    /// Processes a document again from its original bytes. Its current chunks stay
    /// searchable until the new ones replace them.
    pub async fn reprocess(&self, id: Uuid) -> Result<DocumentRow, PipelineError> {
        // It rewrites the document and its jobs while a stage may be working on them: on
        // PostgreSQL the two can deadlock, and the database then aborts one; run it again.
        let mut tries = 0;
        loop {
            match self.reprocess_once(id).await {
                Err(PipelineError::Db(e)) if e.is_conflict() && tries < 4 => {
                    tries += 1;
                    tracing::debug!(document_id = %id, error = %e, "re-process gave way; again");
                    tokio::time::sleep(std::time::Duration::from_millis(20 * tries)).await;
                }
                other => return other,
            }
        }
    }

    async fn reprocess_once(&self, id: Uuid) -> Result<DocumentRow, PipelineError> {
        let mut tx = self.inner.driver.begin().await?;
        let Some(doc) = tx
            .document_reprocess(&DocumentReprocessParams { id, now: None })
            .await?
        else {
            tx.rollback().await?;
            return Err(PipelineError::NotFound(id));
        };
        self.enqueue_in(&mut tx, Stage::Parse, &doc, None, false)
            .await?;
        tx.commit().await?;
        self.inner.hub.publish(ProgressEvent::of(&doc));
        Ok(doc)
    }

    /// Cancels jobs (an operator's action, recorded under `actor`): a running handler is
    /// told at once, and a stage job's document is cancelled with it (and the document's
    /// other live jobs), so nothing revives it but a reprocess.
    pub async fn cancel_jobs(
        &self,
        actor: &str,
        ids: Vec<i64>,
    ) -> Result<docket_queue::admin::ActionOutcome, PipelineError> {
        let o = docket_queue::admin::cancel(&self.inner.driver, actor, ids).await?;
        self.announce_documents(&o.documents).await;
        Ok(o)
    }

    /// Cancels a document and every live job of its pipeline (an operator's action, recorded
    /// under `actor`). `None` when it is gone; no documents in the outcome when it had
    /// already finished.
    pub async fn cancel_document(
        &self,
        actor: &str,
        id: Uuid,
    ) -> Result<Option<docket_queue::admin::ActionOutcome>, PipelineError> {
        let o = docket_queue::admin::cancel_document(&self.inner.driver, actor, id).await?;
        if let Some(o) = &o {
            self.announce_documents(&o.documents).await;
        }
        Ok(o)
    }

    /// Tells progress listeners where these documents stand now.
    async fn announce_documents(&self, ids: &[Uuid]) {
        for id in ids {
            let doc = async {
                let mut c = self.inner.driver.conn().await?;
                c.document_get(*id).await
            };
            if let Ok(Some(doc)) = doc.await {
                self.inner.hub.publish(ProgressEvent::of(&doc));
            }
        }
    }

    /// Deletes a document, its chunks and its original bytes.
    pub async fn delete(&self, id: Uuid) -> Result<bool, PipelineError> {
        let doc = {
            let mut c = self.inner.driver.conn().await?;
            c.document_get(id).await?
        };
        let Some(doc) = doc else {
            return Ok(false);
        };
        let deleted = {
            let mut c = self.inner.driver.conn().await?;
            c.document_delete(id).await?
        };
        // Rows first: a crash between the two leaves an orphan blob, never a document whose
        // bytes are gone. An original that cannot be deleted now is the sweep's to delete
        // ([`orphans`]): the document is gone either way.
        if let Err(e) = self.inner.blobs.delete(&doc.storage_key).await {
            tracing::warn!(
                document_id = %id,
                key = doc.storage_key,
                error = %e,
                "could not delete the original; the orphan sweep will"
            );
        }
        Ok(deleted)
    }

    /// Inserts the job for `stage` of `doc` inside `tx` (a duplicate of a live job is a
    /// no-op).
    pub(crate) async fn enqueue_in<T: Transaction>(
        &self,
        tx: &mut T,
        stage: Stage,
        doc: &DocumentRow,
        failed: Option<bool>,
        reembed: bool,
    ) -> docket_core::Result<()> {
        let opts = InsertOpts {
            queue: Some(self.inner.stages.queue.clone()),
            // Re-embedding runs below every upload.
            priority: Some(if reembed {
                0
            } else {
                doc.priority.clamp(0, 10)
            }),
            max_attempts: Some(self.inner.stages.max_attempts),
            unique_key: Some(stage.unique_key(doc.id, doc.generation)),
            document_id: Some(doc.id),
            ..InsertOpts::default()
        };
        let args = stages::StageArgs {
            document_id: doc.id,
            generation: doc.generation,
            failed,
            reembed,
        };
        let params = match stage {
            Stage::Parse => insert_params(&ParseJob(args), opts)?,
            Stage::Chunk => insert_params(&stages::ChunkJob(args), opts)?,
            Stage::Embed => insert_params(&stages::EmbedJob(args), opts)?,
            Stage::Complete => insert_params(&stages::CompleteJob(args), opts)?,
            Stage::Notify => insert_params(&stages::NotifyJob(args), opts)?,
        };
        tx.job_insert_many(docket_core::JobInsertManyParams { jobs: vec![params] })
            .await?;
        Ok(())
    }
}

/// Every stage job kind, for listings and metrics.
pub const STAGE_KINDS: [&str; 5] = [
    ParseJob::KIND,
    stages::ChunkJob::KIND,
    stages::EmbedJob::KIND,
    stages::CompleteJob::KIND,
    stages::NotifyJob::KIND,
];
