//! The server setup the HTTP tests share.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use docket_core::Driver;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_pipeline::blob::ObjectStoreBlobs;
use docket_pipeline::config::{ChunkConfig, StagesConfig};
use docket_pipeline::notify::Notifier;
use docket_pipeline::progress::ProgressHub;
use docket_pipeline::{ParseSettings, Pipeline, PipelineParts};

/// A pipeline over `driver` with the hashing embedder, small chunks, files up to half of
/// `max_body`, and progress carried by the driver's broadcasts.
pub fn pipeline<D: Driver>(driver: &D, blobs: &Path, max_body: usize) -> Pipeline<D> {
    Pipeline::new(PipelineParts {
        driver: driver.clone(),
        blobs: Arc::new(ObjectStoreBlobs::local(blobs).unwrap()),
        embedder: Arc::new(HashingEmbedder::new(HashingConfig::default())),
        parse: ParseSettings {
            limits: docket_parse::Limits::default(),
            isolation: None,
        },
        chunk: ChunkConfig {
            max_tokens: 32,
            overlap_tokens: 4,
        },
        stages: StagesConfig::default(),
        max_file_bytes: max_body as u64 / 2,
        notifier: Notifier::none(),
        progress: ProgressHub::over(driver.broadcasts()),
    })
    .unwrap()
}

/// Serves `app` on a fresh loopback port; its base URL.
pub async fn listen(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
