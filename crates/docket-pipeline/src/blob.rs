//! Where the original bytes of each document live.
//!
//! [`BlobStore`] is the seam; [`ObjectStoreBlobs`] implements it over an `object_store`
//! backend: a local folder (`file:///path`, the default) or an S3-compatible bucket
//! (`s3://bucket/prefix`), chosen by [`ObjectStoreBlobs::open`] from `[storage]`. Writes are
//! atomic (a reader never sees half a file; large files go up as a multipart upload that
//! becomes visible only when complete), and keys are per document
//! (`documents/<id>/original`), so deleting a document deletes exactly its bytes and the
//! sweep ([`crate::orphans`]) can tell whose an original is.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, ObjectStore, PutMultipartOptions, PutOptions,
    PutPayload, RetryConfig, StaticCredentialProvider,
};
use uuid::Uuid;

use crate::config::{S3Config, StorageConfig};

/// A blob store failure.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob under that key.
    #[error("blob {0} not found")]
    NotFound(String),
    /// The store failed (I/O, network) or could not be reached.
    #[error("blob store: {0}")]
    Store(String),
    /// The storage settings are wrong.
    #[error("storage settings: {0}")]
    Config(String),
}

/// A stored blob, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobMeta {
    /// Its key.
    pub key: String,
    /// When it was last written.
    pub last_modified: DateTime<Utc>,
    /// Its size in bytes.
    pub size: u64,
}

/// Stores documents' original bytes.
pub trait BlobStore: Send + Sync + 'static {
    /// Writes `bytes` under `key`, replacing what was there; all or nothing.
    fn put(&self, key: &str, bytes: Bytes) -> BoxFuture<'_, Result<(), BlobError>>;
    /// Reads the blob under `key`.
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Bytes, BlobError>>;
    /// Deletes the blob under `key`; deleting a missing blob is not an error.
    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), BlobError>>;
    /// The blobs whose keys start with `prefix` (a whole path segment: `documents`), in no
    /// particular order.
    fn list(&self, prefix: &str) -> BoxStream<'static, Result<BlobMeta, BlobError>>;
    /// Whether the store answers (for `/readyz`): an error says why not.
    fn check(&self) -> BoxFuture<'_, Result<(), BlobError>>;
    /// Where the blobs are, for logs and status (`file:///…`, `s3://bucket/prefix`), without
    /// credentials.
    fn describe(&self) -> String;
}

/// The folder of documents' originals: every key [`original_key`] makes is under it.
pub const ORIGINALS_PREFIX: &str = "documents";

/// The key of a document's original bytes.
pub fn original_key(document_id: Uuid) -> String {
    format!("{ORIGINALS_PREFIX}/{document_id}/original")
}

/// The document whose original `key` is ([`original_key`]'s inverse); `None` for a key it
/// did not make.
pub fn original_document(key: &str) -> Option<Uuid> {
    let rest = key.strip_prefix(ORIGINALS_PREFIX)?.strip_prefix('/')?;
    let (id, tail) = rest.split_once('/')?;
    (tail == "original").then(|| Uuid::parse_str(id).ok())?
}

/// A [`BlobStore`] over an `object_store` backend.
#[derive(Debug, Clone)]
pub struct ObjectStoreBlobs {
    store: Arc<dyn ObjectStore>,
    /// Larger blobs go up in parts of this size; `None`: always in one request.
    part_bytes: Option<usize>,
    describe: String,
}

/// What `[storage]` names.
enum Resolved {
    /// A local folder (created when opened).
    Folder(std::path::PathBuf),
    /// A store ready to use.
    Store(ObjectStoreBlobs),
}

/// S3's smallest part (but the last).
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

impl ObjectStoreBlobs {
    /// Wraps any `object_store` backend.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        let describe = store.to_string();
        Self {
            store,
            part_bytes: None,
            describe,
        }
    }

    /// A folder on local disk, created if missing.
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Self, BlobError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| BlobError::Store(format!("cannot create {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| BlobError::Store(e.to_string()))?
            .with_automatic_cleanup(true);
        let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        Ok(Self {
            describe: format!("file://{}", shown.display()),
            ..Self::new(Arc::new(fs))
        })
    }

    /// The store `[storage]` names: `url` (`file:///path` or `s3://bucket/prefix`), else the
    /// folder `blob_dir`. The usual AWS environment variables fill what `[storage.s3]` leaves
    /// unset.
    pub fn open(config: &StorageConfig) -> Result<Self, BlobError> {
        Self::open_with_env(config, |name| std::env::var(name).ok())
    }

    /// [`ObjectStoreBlobs::open`], with the environment read through `env`.
    pub fn open_with_env(
        config: &StorageConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BlobError> {
        match Self::resolve(config, env)? {
            Resolved::Folder(dir) => Self::local(dir),
            Resolved::Store(s) => Ok(s),
        }
    }

    /// Checks `[storage]` without touching anything (no folder created, no request made): a
    /// bad URL or missing credentials, found at start.
    pub fn check_settings(
        config: &StorageConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), BlobError> {
        Self::resolve(config, env).map(|_| ())
    }

    fn resolve(
        config: &StorageConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, BlobError> {
        let Some(url) = config.url.as_deref() else {
            return Ok(Resolved::Folder(config.blob_dir.clone()));
        };
        let parsed = url::Url::parse(url)
            .map_err(|e| BlobError::Config(format!("storage.url {url:?}: {e}")))?;
        match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| {
                    BlobError::Config(format!(
                        "storage.url {url:?}: a file URL names an absolute path (file:///var/lib/docket/blobs)"
                    ))
                })?;
                Ok(Resolved::Folder(dir))
            }
            "s3" => {
                let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
                    BlobError::Config(format!(
                        "storage.url {url:?}: name the bucket (s3://bucket/prefix)"
                    ))
                })?;
                let prefix = parsed.path().trim_matches('/').to_owned();
                Self::s3(bucket, &prefix, &config.s3, env).map(Resolved::Store)
            }
            other => Err(BlobError::Config(format!(
                "storage.url {url:?}: the scheme must be file or s3 (got {other})"
            ))),
        }
    }

    fn s3(
        bucket: &str,
        prefix: &str,
        c: &S3Config,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BlobError> {
        let or_env = |set: &Option<String>, names: &[&str]| {
            set.clone()
                .or_else(|| names.iter().find_map(|n| env(n).filter(|v| !v.is_empty())))
        };
        let endpoint = or_env(&c.endpoint, &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]);
        let region = or_env(&c.region, &["AWS_REGION", "AWS_DEFAULT_REGION"])
            .unwrap_or_else(|| "us-east-1".to_owned());
        let key_id = or_env(&c.access_key_id, &["AWS_ACCESS_KEY_ID"]);
        let secret = or_env(&c.secret_access_key, &["AWS_SECRET_ACCESS_KEY"]);
        let token = or_env(&c.session_token, &["AWS_SESSION_TOKEN"]);
        if c.part_bytes < MIN_PART_BYTES {
            return Err(BlobError::Config(format!(
                "storage.s3.part_bytes ({}) must be at least {MIN_PART_BYTES} (5 MiB, S3's smallest part)",
                c.part_bytes
            )));
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&region)
            .with_virtual_hosted_style_request(!c.path_style.unwrap_or(endpoint.is_some()))
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: c.max_retries,
                retry_timeout: Duration::from_millis(c.retry_timeout_ms),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_millis(c.timeout_ms))
                    .with_connect_timeout(Duration::from_millis(c.connect_timeout_ms))
                    .with_allow_http(
                        endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("http://")),
                    ),
            );
        if let Some(e) = &endpoint {
            b = b.with_endpoint(e);
        }
        match (key_id, secret) {
            (Some(key_id), Some(secret_key)) => {
                // Given keys are the only credentials: nothing falls back to a metadata
                // endpoint.
                b = b.with_credentials(Arc::new(StaticCredentialProvider::new(AwsCredential {
                    key_id,
                    secret_key,
                    token,
                })));
            }
            (None, None) if c.instance_credentials => {
                // The host's own credentials (instance metadata, a container role, a web
                // identity), as the AWS SDKs find them.
                for (var, key) in [
                    (
                        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                        object_store::aws::AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
                    ),
                    (
                        "AWS_WEB_IDENTITY_TOKEN_FILE",
                        object_store::aws::AmazonS3ConfigKey::WebIdentityTokenFile,
                    ),
                    (
                        "AWS_ROLE_ARN",
                        object_store::aws::AmazonS3ConfigKey::RoleArn,
                    ),
                ] {
                    if let Some(v) = env(var) {
                        b = b.with_config(key, v);
                    }
                }
            }
            (None, None) => {
                return Err(BlobError::Config(
                    "s3 storage needs credentials: set storage.s3.access_key_id and \
                     storage.s3.secret_access_key (or AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY), or storage.s3.instance_credentials = true to use \
                     the host's role"
                        .into(),
                ));
            }
            _ => {
                return Err(BlobError::Config(
                    "s3 storage: set both the access key id and the secret access key".into(),
                ));
            }
        }
        let s3 = b
            .build()
            .map_err(|e| BlobError::Config(format!("s3://{bucket}: {e}")))?;
        let describe = match (prefix.is_empty(), &endpoint) {
            (true, None) => format!("s3://{bucket}"),
            (false, None) => format!("s3://{bucket}/{prefix}"),
            (true, Some(e)) => format!("s3://{bucket} at {e}"),
            (false, Some(e)) => format!("s3://{bucket}/{prefix} at {e}"),
        };
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(Self {
            store,
            part_bytes: Some(c.part_bytes as usize),
            describe,
        })
    }

    /// Uploads `bytes` in parts of `part` (slices of the one buffer, never copied), a few at
    /// once; a failed part aborts the upload, so nothing is left half-written.
    async fn put_in_parts(&self, path: &Path, bytes: Bytes, part: usize) -> Result<(), BlobError> {
        let key = path.as_ref().to_owned();
        let mut upload = self
            .store
            .put_multipart_opts(path, PutMultipartOptions::default())
            .await
            .map_err(|e| map(&key, e))?;
        let parts: Vec<_> = (0..bytes.len())
            .step_by(part)
            .map(|at| {
                upload.put_part(PutPayload::from(
                    bytes.slice(at..(at + part).min(bytes.len())),
                ))
            })
            .collect();
        let sent = futures::stream::iter(parts)
            .buffer_unordered(PARTS_IN_FLIGHT)
            .fold(Ok(()), |acc, r| async move { acc.and(r) })
            .await;
        let done = match sent {
            Ok(()) => upload.complete().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(key, error = %abort, "could not abort a failed multipart upload");
            }
            return Err(map(&key, e));
        }
        Ok(())
    }
}

fn map(key: &str, e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_owned()),
        e => BlobError::Store(e.to_string()),
    }
}

impl BlobStore for ObjectStoreBlobs {
    fn put(&self, key: &str, bytes: Bytes) -> BoxFuture<'_, Result<(), BlobError>> {
        let key = key.to_owned();
        Box::pin(async move {
            let path = Path::from(key.as_str());
            if let Some(part) = self.part_bytes.filter(|p| bytes.len() > *p) {
                return self.put_in_parts(&path, bytes, part).await;
            }
            self.store
                .put_opts(&path, PutPayload::from(bytes), PutOptions::default())
                .await
                .map(|_| ())
                .map_err(|e| map(&key, e))
        })
    }

    fn get(&self, key: &str) -> BoxFuture<'_, Result<Bytes, BlobError>> {
        let key = key.to_owned();
        Box::pin(async move {
            let got = self
                .store
                .get_opts(&Path::from(key.as_str()), GetOptions::default())
                .await
                .map_err(|e| map(&key, e))?;
            got.bytes().await.map_err(|e| map(&key, e))
        })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), BlobError>> {
        let key = key.to_owned();
        Box::pin(async move {
            let paths = futures::stream::iter([Ok(Path::from(key.as_str()))]).boxed();
            let mut results = self.store.delete_stream(paths);
            while let Some(r) = results.next().await {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(map(&key, e)),
                }
            }
            Ok(())
        })
    }

    fn list(&self, prefix: &str) -> BoxStream<'static, Result<BlobMeta, BlobError>> {
        let prefix = Path::from(prefix);
        self.store
            .list(Some(&prefix))
            .map(|r| {
                r.map(|m| BlobMeta {
                    key: m.location.to_string(),
                    last_modified: m.last_modified,
                    size: m.size,
                })
                .map_err(|e| BlobError::Store(e.to_string()))
            })
            .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BlobError>> {
        // Listing the top level (one small request: the `documents` folder, not its contents)
        // fails where the store is unreachable, the bucket is missing or the credentials are
        // refused; an empty store lists nothing, without error.
        Box::pin(async move {
            self.store
                .list_with_delimiter(None)
                .await
                .map(|_| ())
                .map_err(|e| BlobError::Store(e.to_string()))
        })
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_keys_name_their_document() {
        let id = Uuid::now_v7();
        assert_eq!(original_document(&original_key(id)), Some(id));
        for other in [
            "documents",
            "documents/x/original",
            &format!("documents/{id}/other"),
            &format!("documents/{id}"),
            &format!("elsewhere/{id}/original"),
            &format!("documents/{id}/original/more"),
        ] {
            assert_eq!(original_document(other), None, "{other}");
        }
    }

    fn s3(url: &str, s3: S3Config) -> Result<ObjectStoreBlobs, BlobError> {
        let config = StorageConfig {
            url: Some(url.to_owned()),
            s3,
            ..StorageConfig::default()
        };
        ObjectStoreBlobs::open_with_env(&config, |_| None)
    }

    #[test]
    fn s3_without_credentials_is_refused_rather_than_asking_a_metadata_endpoint() {
        let e = s3("s3://bucket/prefix", S3Config::default()).unwrap_err();
        assert!(e.to_string().contains("needs credentials"), "{e}");
        let e = s3(
            "s3://bucket",
            S3Config {
                access_key_id: Some("k".into()),
                ..S3Config::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");
    }

    #[test]
    fn settings_and_environment_name_the_bucket() {
        let keys = S3Config {
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            endpoint: Some("http://127.0.0.1:9".into()),
            ..S3Config::default()
        };
        let b = s3("s3://bucket/some/prefix/", keys.clone()).unwrap();
        assert_eq!(
            b.describe(),
            "s3://bucket/some/prefix at http://127.0.0.1:9"
        );
        for bad in [
            "s3:///prefix",
            "ftp://x/y",
            "not a url",
            "file://relative/path",
        ] {
            assert!(
                matches!(s3(bad, keys.clone()), Err(BlobError::Config(_))),
                "{bad}"
            );
        }
        let small = S3Config {
            part_bytes: 1024,
            ..keys
        };
        assert!(matches!(s3("s3://b", small), Err(BlobError::Config(_))));
        // The environment fills what the settings leave unset.
        let config = StorageConfig {
            url: Some("s3://b".into()),
            ..StorageConfig::default()
        };
        let env = |n: &str| match n {
            "AWS_ACCESS_KEY_ID" => Some("k".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("s".to_owned()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9".to_owned()),
            _ => None,
        };
        let b = ObjectStoreBlobs::open_with_env(&config, env).unwrap();
        assert_eq!(b.describe(), "s3://b at http://127.0.0.1:9");
    }
}
