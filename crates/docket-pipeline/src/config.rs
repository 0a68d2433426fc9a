//! The pipeline's configuration sections.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[storage]`: where original files are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where originals live: `file:///path` (a folder) or `s3://bucket/prefix` (an
    /// S3-compatible bucket, see [`S3Config`]). Unset: the folder `blob_dir`.
    pub url: Option<String>,
    /// Folder for original bytes when `url` is unset (created if missing).
    pub blob_dir: PathBuf,
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
    /// Originals that no document references are deleted by the leader's hourly sweep once
    /// they are older than this (a crash between writing an original and storing its
    /// document, or a delete of the original that failed). Seconds; default 3600.
    pub orphan_grace_secs: u64,
    /// The bucket's endpoint, region and credentials, for `s3://` URLs.
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: None,
            blob_dir: PathBuf::from("docket-blobs"),
            max_file_bytes: 64 * 1024 * 1024,
            orphan_grace_secs: 3600,
            s3: S3Config::default(),
        }
    }
}

/// `[storage.s3]`: how an `s3://` bucket is reached. Where a key is unset, the usual AWS
/// environment variable stands in (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, `AWS_REGION`
/// or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The S3 API's base URL (MinIO, R2, Supabase Storage, a local test server); unset: AWS.
    pub endpoint: Option<String>,
    /// The bucket's region. Default `us-east-1`.
    pub region: Option<String>,
    /// Address the bucket in the path (`https://host/bucket/key`) rather than the host name
    /// (`https://bucket.host/key`). Default: on when `endpoint` is set (what MinIO and most
    /// S3-compatible servers need), off for AWS.
    pub path_style: Option<bool>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key (masked by `docket config`).
    pub secret_access_key: Option<String>,
    /// A session token, for temporary credentials (masked by `docket config`).
    pub session_token: Option<String>,
    /// Without keys, take credentials from the host (the instance metadata service, a
    /// container role, a web identity). Off by default: without keys and without this, the
    /// configuration is refused, so nothing ever asks a metadata endpoint by accident.
    pub instance_credentials: bool,
    /// Each request's time limit, in milliseconds. Default 30,000.
    pub timeout_ms: u64,
    /// Connecting's time limit, in milliseconds. Default 5,000.
    pub connect_timeout_ms: u64,
    /// Retries of a request that failed in a way that may pass (a connection error, a 5xx,
    /// a throttle). Default 3.
    pub max_retries: usize,
    /// No retry starts later than this after the first try, in milliseconds. Default 15,000.
    pub retry_timeout_ms: u64,
    /// Files larger than this go up in parts of this size (a multipart upload), in bytes; at
    /// least 5 MiB (S3's smallest part). Default 8 MiB.
    pub part_bytes: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: None,
            path_style: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            instance_credentials: false,
            timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            max_retries: 3,
            retry_timeout_ms: 15_000,
            part_bytes: 8 * 1024 * 1024,
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
