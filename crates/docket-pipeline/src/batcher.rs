//! Batches embedding requests across documents.
//!
//! Every embed job hands its chunks to one [`EmbedBatcher`]; a background task gathers
//! requests until it holds a full model batch (or a short linger passes) and runs them as one
//! call. Many small documents then fill the model's batches instead of each running a nearly
//! empty one. Calls in flight are bounded (`concurrency`: 1 for an in-process model, which
//! already uses every core; a few for a remote API).

use std::sync::Arc;
use std::time::Duration;

use docket_embed::{EmbedError, Embedder};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>;

struct Request {
    texts: Vec<String>,
    reply: Reply,
}

/// A handle to the batching task; cheap to clone. The task ends when every handle is gone.
#[derive(Clone)]
pub struct EmbedBatcher {
    tx: mpsc::Sender<Request>,
}

impl EmbedBatcher {
    /// Starts the batching task on the current runtime.
    pub fn start(embedder: Arc<dyn Embedder>, linger: Duration, concurrency: usize) -> Self {
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(run(
            embedder,
            rx,
            linger,
            Arc::new(Semaphore::new(concurrency.max(1))),
        ));
        Self { tx }
    }

    /// Embeds `texts`, batched with whatever else is waiting.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { texts, reply })
            .await
            .map_err(|_| EmbedError::Transient("embedding batcher stopped".into()))?;
        rx.await
            .map_err(|_| EmbedError::Transient("embedding batch was dropped".into()))?
    }
}

async fn run(
    embedder: Arc<dyn Embedder>,
    mut rx: mpsc::Receiver<Request>,
    linger: Duration,
    permits: Arc<Semaphore>,
) {
    let batch_size = embedder.batch_size().max(1);
    while let Some(first) = rx.recv().await {
        let mut pending = vec![first];
        let mut count = pending[0].texts.len();
        let deadline = Instant::now() + linger;
        while count < batch_size {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(r) => {
                        count += r.texts.len();
                        pending.push(r);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let embedder = embedder.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut texts = Vec::with_capacity(count);
            let mut replies = Vec::with_capacity(pending.len());
            for r in pending {
                replies.push((r.texts.len(), r.reply));
                texts.extend(r.texts);
            }
            let result = embed_all(&*embedder, &texts, batch_size).await;
            distribute(replies, result);
        });
    }
}

/// Embeds in model-sized batches.
async fn embed_all(
    embedder: &dyn Embedder,
    texts: &[String],
    batch_size: usize,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(batch_size) {
        out.extend(embedder.embed(batch).await?);
    }
    Ok(out)
}

fn distribute(replies: Vec<(usize, Reply)>, result: Result<Vec<Vec<f32>>, EmbedError>) {
    match result {
        Ok(vectors) => {
            let mut vectors = vectors.into_iter();
            for (n, reply) in replies {
                let _ = reply.send(Ok(vectors.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            for (_, reply) in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
