//! What the pipeline's integration tests share: the parse corpus and a runtime working a
//! pipeline's jobs.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use docket_core::{Driver, SystemClock};
use docket_embed::{BoxFuture, EmbedError, Embedder, EmbedderIdentity};
use docket_parse::Limits;
use docket_pipeline::blob::{BlobStore, ObjectStoreBlobs};
use docket_pipeline::config::{ChunkConfig, StagesConfig};
use docket_pipeline::notify::Notifier;
use docket_pipeline::progress::ProgressHub;
use docket_pipeline::{ParseSettings, Pipeline, PipelineParts};
use docket_queue::{Runtime, RuntimeConfig, RuntimeHandle, Workers};

/// A file of the parse corpus.
pub fn corpus(name: &str) -> Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docket-parse/tests/corpus")
        .join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A pipeline over `driver` with `embedder`, originals in `blobs` (processes of one
/// deployment share it), small chunks (64 tokens, 8 overlapping), 4 chunks per embedding page,
/// files up to 1 MiB.
pub fn pipeline<D: Driver>(
    driver: &D,
    blobs: &std::path::Path,
    embedder: Arc<dyn Embedder>,
    notifier: Notifier,
) -> Pipeline<D> {
    let stages = StagesConfig {
        embed_page: 4,
        ..StagesConfig::default()
    };
    pipeline_with(driver, blobs, embedder, notifier, stages)
}

/// [`pipeline`] with other stage settings.
pub fn pipeline_with<D: Driver>(
    driver: &D,
    blobs: &std::path::Path,
    embedder: Arc<dyn Embedder>,
    notifier: Notifier,
    stages: StagesConfig,
) -> Pipeline<D> {
    pipeline_in(
        driver,
        Arc::new(ObjectStoreBlobs::local(blobs).unwrap()),
        embedder,
        notifier,
        stages,
    )
}

/// [`pipeline`] with originals in `blobs`, whatever kind of store it is.
pub fn pipeline_on<D: Driver>(
    driver: &D,
    blobs: Arc<dyn BlobStore>,
    embedder: Arc<dyn Embedder>,
    notifier: Notifier,
) -> Pipeline<D> {
    let stages = StagesConfig {
        embed_page: 4,
        ..StagesConfig::default()
    };
    pipeline_in(driver, blobs, embedder, notifier, stages)
}

fn pipeline_in<D: Driver>(
    driver: &D,
    blobs: Arc<dyn BlobStore>,
    embedder: Arc<dyn Embedder>,
    notifier: Notifier,
    stages: StagesConfig,
) -> Pipeline<D> {
    Pipeline::new(PipelineParts {
        driver: driver.clone(),
        blobs,
        embedder,
        parse: ParseSettings {
            limits: Limits::default(),
            isolation: None,
        },
        chunk: ChunkConfig {
            max_tokens: 64,
            overlap_tokens: 8,
        },
        stages,
        max_file_bytes: 1024 * 1024,
        notifier,
        progress: ProgressHub::default(),
    })
    .unwrap()
}

/// The hashing embedder (lexical, 384 dimensions).
pub fn hashing() -> Arc<dyn Embedder> {
    Arc::new(docket_embed::hashing::HashingEmbedder::new(
        docket_embed::hashing::HashingConfig::default(),
    ))
}

/// A runtime working `p`'s stage jobs: quick polls and heartbeats, no maintenance.
pub fn start<D: Driver>(p: &Pipeline<D>) -> RuntimeHandle {
    let mut workers = Workers::new();
    p.register(&mut workers);
    start_with(p, workers)
}

/// [`start`] with these handlers.
pub fn start_with<D: Driver>(p: &Pipeline<D>, workers: Workers<D>) -> RuntimeHandle {
    Runtime::start(
        p.driver().clone(),
        workers,
        RuntimeConfig {
            worker_id: Some(format!("test-{}", uuid::Uuid::new_v4().simple())),
            poll_interval: Duration::from_millis(50),
            heartbeat_interval: Duration::from_millis(200),
            shutdown_grace: Duration::from_millis(500),
            maintenance: None,
            ..Default::default()
        },
        Arc::new(SystemClock),
    )
    .unwrap()
}

/// What a [`Faulty`] embedder does with one call.
pub enum Fault {
    /// Answers as the wrapped embedder does.
    Pass,
    /// Says the provider is down (retry in 100 ms).
    Unavailable,
    /// Never answers: a process stuck in the middle of embedding.
    Stall,
}

/// Fault injection: an embedder that is another one, except for the calls `fault` picks by
/// their number (from 0).
pub struct Faulty {
    pub inner: Arc<dyn Embedder>,
    pub calls: AtomicUsize,
    pub fault: fn(usize) -> Fault,
    /// Texts per call (the wrapped embedder's unless [`Faulty::batched`] says).
    pub batch: usize,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Embedder>, fault: fn(usize) -> Fault) -> Arc<Self> {
        let batch = inner.batch_size();
        Self::batched(inner, batch, fault)
    }

    /// [`Faulty::new`] taking at most `batch` texts a call, so that a document's chunks
    /// span several calls.
    pub fn batched(inner: Arc<dyn Embedder>, batch: usize, fault: fn(usize) -> Fault) -> Arc<Self> {
        Arc::new(Faulty {
            inner,
            calls: AtomicUsize::new(0),
            fault,
            batch,
        })
    }

    /// How many calls it has had.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Embedder for Faulty {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn identity(&self) -> &EmbedderIdentity {
        self.inner.identity()
    }
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    fn max_input_tokens(&self) -> usize {
        self.inner.max_input_tokens()
    }
    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }
    fn batch_size(&self) -> usize {
        self.batch
    }
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        match (self.fault)(self.calls.fetch_add(1, Ordering::SeqCst)) {
            Fault::Pass => self.inner.embed(texts),
            Fault::Unavailable => Box::pin(async {
                Err(EmbedError::Unavailable {
                    message: "provider down (test)".into(),
                    retry_after: Duration::from_millis(100),
                })
            }),
            Fault::Stall => Box::pin(std::future::pending()),
        }
    }
}
