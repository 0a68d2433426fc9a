//! Where the original bytes of each document live.
//!
//! [`BlobStore`] is the seam; [`ObjectStoreBlobs`] implements it over any `object_store`
//! backend — a local folder by default ([`ObjectStoreBlobs::local`]); an S3-compatible bucket
//! is one more constructor away. Writes are atomic (a reader never sees half a file), and
//! keys are per document (`documents/<id>/original`), so deleting a document deletes exactly
//! its bytes.

use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, PutOptions, PutPayload};
use uuid::Uuid;

/// A blob store failure.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob under that key.
    #[error("blob {0} not found")]
    NotFound(String),
    /// The store failed (I/O, network).
    #[error("blob store: {0}")]
    Store(String),
}

/// Stores documents' original bytes.
pub trait BlobStore: Send + Sync + 'static {
    /// Writes `bytes` under `key`, replacing what was there.
    fn put(&self, key: &str, bytes: Bytes) -> BoxFuture<'_, Result<(), BlobError>>;
    /// Reads the blob under `key`.
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Bytes, BlobError>>;
    /// Deletes the blob under `key`; deleting a missing blob is not an error.
    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), BlobError>>;
}

/// The key of a document's original bytes.
pub fn original_key(document_id: Uuid) -> String {
    format!("documents/{document_id}/original")
}

/// A [`BlobStore`] over an `object_store` backend.
#[derive(Debug, Clone)]
pub struct ObjectStoreBlobs {
    store: Arc<dyn ObjectStore>,
}

impl ObjectStoreBlobs {
    /// Wraps any `object_store` backend.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// A folder on local disk, created if missing.
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Self, BlobError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| BlobError::Store(format!("cannot create {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| BlobError::Store(e.to_string()))?
            .with_automatic_cleanup(true);
        Ok(Self::new(Arc::new(fs)))
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
            self.store
                .put_opts(
                    &Path::from(key.as_str()),
                    PutPayload::from(bytes),
                    PutOptions::default(),
                )
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
}
