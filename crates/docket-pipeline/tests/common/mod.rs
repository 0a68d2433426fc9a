//! What the pipeline's integration tests share: the parse corpus and a runtime working a
//! pipeline's jobs.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use docket_core::{Driver, SystemClock};
use docket_pipeline::Pipeline;
use docket_queue::{Runtime, RuntimeConfig, RuntimeHandle, Workers};

/// A file of the parse corpus.
pub fn corpus(name: &str) -> Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docket-parse/tests/corpus")
        .join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A runtime working `p`'s stage jobs: quick polls and heartbeats, no maintenance.
pub fn start<D: Driver>(p: &Pipeline<D>) -> RuntimeHandle {
    let mut workers = Workers::new();
    p.register(&mut workers);
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
