//! The embed stage: the chunks' vectors, a page at a time, with progress; the vector index
//! of the database (pgvector) made once per process.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use docket_core::{
    ChunkInsert, ChunkListUnembeddedParams, ChunkReplaceParams, ChunkRow, DocumentProgressParams,
    DocumentStatus, DocumentStore, Driver, GenerationKey, Transaction,
};
use docket_embed::EmbedError;
use docket_queue::{JobContext, JobError};

use super::{Stage, StageArgs, db, generation_chunks};
use crate::Pipeline;
use crate::batcher::Pending;

impl<D: Driver> Pipeline<D> {
    /// The embed stage: see the [module docs](self).
    pub(super) async fn embed(
        &self,
        ctx: &JobContext<D>,
        args: &StageArgs,
    ) -> Result<(), JobError> {
        let started = Instant::now();
        if let Err(wait) = self.inner.embedder.ready() {
            return Err(JobError::snooze(
                "the embedding provider is unavailable (circuit open)",
                wait,
            ));
        }
        let Some(doc) = self.begin_stage(args, Stage::Embed).await? else {
            return Ok(());
        };
        self.ensure_vector_index().await;
        let (mut done, total) = {
            let mut c = self.inner.driver.conn().await.map_err(db)?;
            c.chunk_count_embedded(GenerationKey::new(doc.id, doc.generation))
                .await
                .map_err(db)?
        };
        let fingerprint = &self.inner.embedder.identity().fingerprint;
        if done > 0 && doc.generation_embedder.as_ref() != Some(fingerprint) {
            // This generation's vectors so far were made by another embedder (the process
            // restarted with a new one): they go, so that a generation never mixes two
            // embedders. Each page below records this embedder with its vectors.
            tracing::warn!(document_id = %doc.id, embedded = done, "vectors of another embedder are made again");
            let mut tx = self.inner.driver.begin().await.map_err(db)?;
            let chunks: Vec<ChunkInsert> = generation_chunks(&mut tx, &doc)
                .await?
                .into_iter()
                .map(ChunkRow::into_insert)
                .collect();
            tx.chunk_replace(ChunkReplaceParams {
                document_id: doc.id,
                generation: doc.generation,
                chunks: &chunks,
            })
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            done = 0;
        }
        let page = embed_page(self.inner.stages.embed_page, total);
        // Pages in flight: behind the page whose vectors are awaited and written next, the
        // batcher already holds at least a model batch's worth of chunks (at least a page),
        // so the model has its next batch while the database works, and the small pages of
        // several documents still fill a batch.
        let ahead = (self.inner.embedder.batch_size() as i64).max(page);
        let mut inflight: VecDeque<(Vec<ChunkRow>, Pending)> = VecDeque::new();
        let mut listed_all = false;
        loop {
            if ctx.cancelled().is_cancelled() {
                return Err(JobError::retryable("stopped while embedding"));
            }
            let held: i64 = inflight.iter().map(|(c, _)| c.len() as i64).sum();
            let behind = held - inflight.front().map_or(0, |(c, _)| c.len() as i64);
            if !listed_all && behind < ahead {
                // The chunks still without vectors, past those in flight.
                let skip: HashSet<i64> = inflight
                    .iter()
                    .flat_map(|(c, _)| c.iter().map(|c| c.id))
                    .collect();
                let want = ahead - behind + if inflight.is_empty() { page } else { 0 };
                let mut rows = {
                    let mut c = self.inner.driver.conn().await.map_err(db)?;
                    c.chunk_list_unembedded(ChunkListUnembeddedParams {
                        document_id: doc.id,
                        generation: doc.generation,
                        limit: held + want,
                    })
                    .await
                    .map_err(db)?
                };
                rows.retain(|c| !skip.contains(&c.id));
                listed_all = (rows.len() as i64) < want;
                let mut rows = rows.into_iter().peekable();
                while rows.peek().is_some() {
                    let next: Vec<ChunkRow> = rows.by_ref().take(page as usize).collect();
                    let texts: Vec<String> = next.iter().map(|c| c.text.clone()).collect();
                    let pending = self
                        .inner
                        .batcher
                        .submit(texts)
                        .await
                        .map_err(embed_error)?;
                    inflight.push_back((next, pending));
                }
            }
            let Some((chunks, pending)) = inflight.pop_front() else {
                break;
            };
            // One vector per chunk: the batcher fails a page whose model call answered with
            // another count.
            let vectors = pending.vectors().await.map_err(embed_error)?;
            done += chunks.len() as i64;
            let progress = embed_progress(done, total);
            let pairs: Vec<(i64, Vec<f32>)> = chunks.iter().map(|c| c.id).zip(vectors).collect();
            let mut tx = self.inner.driver.begin().await.map_err(db)?;
            tx.chunk_set_embeddings(&pairs).await.map_err(db)?;
            tx.document_set_progress(&DocumentProgressParams {
                id: doc.id,
                generation: doc.generation,
                progress,
                // In the transaction of the vectors: the marker never claims a vector it did
                // not see written.
                generation_embedder: Some(fingerprint.clone()),
                now: None,
            })
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            self.inner.hub.emit(
                doc.id,
                doc.generation,
                DocumentStatus::Embedding,
                Stage::Embed.name(),
                progress,
                None,
            );
        }
        let tx = self.inner.driver.begin().await.map_err(db)?;
        self.advance(
            ctx,
            tx,
            &doc,
            (Stage::Embed, Stage::Complete),
            started,
            args.reembed,
        )
        .await?;
        Ok(())
    }

    /// Creates the vector index for this embedder's dimension where the database has one
    /// (pgvector), once per process.
    async fn ensure_vector_index(&self) {
        let dims = self.inner.embedder.dimensions() as i32;
        let ensured = self
            .inner
            .vector_index
            .get_or_try_init(|| async {
                let mut c = self.inner.driver.conn().await?;
                c.vector_index_ensure(dims).await
            })
            .await;
        match ensured {
            Ok(true) => {}
            Ok(false) => {} // portable vectors only
            Err(e) => tracing::warn!(error = %e, "could not create the vector index"),
        }
    }
}

/// Chunks per embedding page: at most `configured`, and at most a twelfth of the document,
/// so that progress moves through the stage's 60 points in steps of at most 5 (documents of
/// fewer than 12 chunks move a chunk at a time).
fn embed_page(configured: usize, total: i64) -> i64 {
    (configured.max(1) as i64).min((total / 12).max(1))
}

/// Embedding moves progress from 30 to 90.
pub(super) fn embed_progress(done: i64, total: i64) -> i16 {
    if total <= 0 {
        return 90;
    }
    (30 + (60 * done.min(total) / total)) as i16
}

fn embed_error(e: EmbedError) -> JobError {
    match e {
        EmbedError::Unavailable {
            message,
            retry_after,
        } => JobError::snooze(
            format!("embedding provider unavailable: {message}"),
            retry_after,
        ),
        EmbedError::Permanent(m) => JobError::permanent(format!("embedding failed: {m}")),
        EmbedError::Transient(m) => JobError::retryable(format!("embedding failed: {m}")),
    }
}
