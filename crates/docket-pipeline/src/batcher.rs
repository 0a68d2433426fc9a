//! Batches embedding requests across documents.
//!
//! Every embed job hands its chunks to one [`EmbedBatcher`]; a background task gathers
//! requests until it holds a full model batch (or a short linger passes) and runs them as one
//! call. Many small documents then fill the model's batches instead of each running a nearly
//! empty one. Calls in flight are bounded (`concurrency`: 1 for an in-process model, which
//! already uses every core; a few for a remote API).

use std::sync::{Arc, Mutex};
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
    stats: Arc<Mutex<BatcherStats>>,
}

/// What the batcher's model calls have done since the last [`EmbedBatcher::take_stats`]: for
/// benchmarks, which take the figures of one phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatcherStats {
    /// Model batches run.
    pub calls: u64,
    /// Texts embedded.
    pub texts: u64,
    /// Time spent inside embedder calls.
    pub busy: Duration,
    /// When the first call started.
    pub first_start: Option<Instant>,
    /// When the latest call ended.
    pub last_end: Option<Instant>,
}

impl EmbedBatcher {
    /// Starts the batching task on the current runtime.
    pub fn start(embedder: Arc<dyn Embedder>, linger: Duration, concurrency: usize) -> Self {
        let (tx, rx) = mpsc::channel(256);
        let stats = Arc::new(Mutex::new(BatcherStats::default()));
        tokio::spawn(run(
            embedder,
            rx,
            linger,
            Arc::new(Semaphore::new(concurrency.max(1))),
            stats.clone(),
        ));
        Self { tx, stats }
    }

    /// What the model calls have done since the last call of this, which starts the count
    /// again.
    pub fn take_stats(&self) -> BatcherStats {
        std::mem::take(&mut *self.stats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Embeds `texts`, batched with whatever else is waiting.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.submit(texts).await?.vectors().await
    }

    /// Hands `texts` to the batcher and returns at once with the vectors to come, so that
    /// the caller can do other work (write the previous page, list the next) while the model
    /// runs. Dropping the [`Pending`] discards the vectors.
    pub async fn submit(&self, texts: Vec<String>) -> Result<Pending, EmbedError> {
        if texts.is_empty() {
            return Ok(Pending(None));
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { texts, reply })
            .await
            .map_err(|_| EmbedError::Transient("embedding batcher stopped".into()))?;
        Ok(Pending(Some(rx)))
    }
}

/// Vectors being made ([`EmbedBatcher::submit`]).
pub struct Pending(Option<oneshot::Receiver<Result<Vec<Vec<f32>>, EmbedError>>>);

impl Pending {
    /// Waits for the vectors, in the order of the texts.
    pub async fn vectors(self) -> Result<Vec<Vec<f32>>, EmbedError> {
        match self.0 {
            None => Ok(Vec::new()),
            Some(rx) => rx
                .await
                .map_err(|_| EmbedError::Transient("embedding batch was dropped".into()))?,
        }
    }
}

async fn run(
    embedder: Arc<dyn Embedder>,
    mut rx: mpsc::Receiver<Request>,
    linger: Duration,
    permits: Arc<Semaphore>,
    stats: Arc<Mutex<BatcherStats>>,
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
        let stats = stats.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut texts = Vec::with_capacity(count);
            let mut replies = Vec::with_capacity(pending.len());
            for r in pending {
                replies.push((r.texts.len(), r.reply));
                texts.extend(r.texts);
            }
            let started = Instant::now();
            embed_and_reply(&*embedder, &texts, replies, batch_size).await;
            let ended = Instant::now();
            let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
            s.calls += texts.len().div_ceil(batch_size) as u64;
            s.texts += texts.len() as u64;
            s.busy += ended - started;
            s.first_start.get_or_insert(started);
            s.last_end = Some(ended);
        });
    }
}

/// Embeds `texts` in model-sized batches, answering each request (`(texts, reply)`, in the
/// order of `texts`) as soon as its last text is embedded, so that the first pages of a large
/// gathering are written while the model works on the rest. A failed batch, or one answered
/// with the wrong number of vectors, fails every request not yet answered.
async fn embed_and_reply(
    embedder: &dyn Embedder,
    texts: &[String],
    replies: Vec<(usize, Reply)>,
    batch_size: usize,
) {
    let mut replies = replies.into_iter().peekable();
    let mut done: Vec<Vec<f32>> = Vec::new();
    for batch in texts.chunks(batch_size) {
        let result = match embedder.embed(batch).await {
            Ok(v) if v.len() == batch.len() => Ok(v),
            Ok(v) => Err(EmbedError::Transient(format!(
                "the embedding provider returned {} vectors for {} texts",
                v.len(),
                batch.len()
            ))),
            Err(e) => Err(e),
        };
        match result {
            Ok(vectors) => done.extend(vectors),
            Err(e) => {
                for (_, reply) in replies {
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
        }
        while replies.peek().is_some_and(|(n, _)| *n <= done.len()) {
            let (n, reply) = replies.next().expect("peeked");
            let rest = done.split_off(n);
            let _ = reply.send(Ok(std::mem::replace(&mut done, rest)));
        }
    }
}
