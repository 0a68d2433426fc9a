//! The pipeline's configuration sections.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[storage]`: where original files are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Folder for original bytes (created if missing).
    pub blob_dir: PathBuf,
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            blob_dir: PathBuf::from("docket-blobs"),
            max_file_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[parse]`: the parse stage's bounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ParseConfig {
    /// Run parsers in a child process bounded by `timeout_ms` and `memory_mb` (recommended;
    /// in-process parsing is bounded by size only).
    pub isolate: bool,
    /// A parse running longer is killed and the document fails.
    pub timeout_ms: u64,
    /// Address-space limit of the parser process, in MiB.
    pub memory_mb: u64,
    /// Largest extracted text, in bytes.
    pub max_text_bytes: u64,
    /// Largest total a compressed container (DOCX, XLSX) may expand to, in bytes.
    pub max_unzipped_bytes: u64,
}

impl Default for ParseConfig {
    fn default() -> Self {
        Self {
            isolate: true,
            timeout_ms: 60_000,
            memory_mb: 1024,
            max_text_bytes: 32 * 1024 * 1024,
            max_unzipped_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `[chunk]`: chunk sizes, in the embedding model's tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChunkConfig {
    /// Largest chunk (capped at what the embedding model accepts).
    pub max_tokens: usize,
    /// Tokens shared with the neighbouring chunk.
    pub overlap_tokens: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            overlap_tokens: 32,
        }
    }
}

/// `[pipeline]`: how stages run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StagesConfig {
    /// The queue stage jobs go to.
    pub queue: String,
    /// Attempts per stage job before the document fails.
    pub max_attempts: i32,
    /// Chunks per embed round trip to the database (progress moves after each).
    pub embed_page: usize,
    /// How long the embedding batcher waits to fill a batch, in milliseconds.
    pub embed_linger_ms: u64,
    /// Embedding calls in flight at once (1 suits an in-process model).
    pub embed_concurrency: usize,
    /// A document with no live job and no change for this long is repaired (the sweep runs
    /// every minute as the built-in `docket.sweep_documents` schedule).
    pub stuck_after_ms: u64,
    /// Milliseconds a stage job waits before its next attempt, after a failure or after its
    /// worker died (the last step repeats; ±10 % jitter). Default 1, 5 and 15 minutes.
    pub backoff_ms: Vec<u64>,
}

impl Default for StagesConfig {
    fn default() -> Self {
        Self {
            queue: "default".into(),
            max_attempts: 4,
            embed_page: 256,
            embed_linger_ms: 5,
            embed_concurrency: 1,
            stuck_after_ms: 300_000,
            backoff_ms: vec![60_000, 300_000, 900_000],
        }
    }
}

impl StagesConfig {
    /// The stages' backoff.
    pub fn backoff(&self) -> docket_queue::retry::Backoff {
        docket_queue::retry::Backoff {
            steps: self
                .backoff_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            jitter: 0.10,
        }
    }

    /// `stuck_after_ms` as a duration.
    pub fn stuck_after(&self) -> Duration {
        Duration::from_millis(self.stuck_after_ms)
    }
}
