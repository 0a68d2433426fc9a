//! The blob store, one suite on both kinds of storage: a local folder and an S3-compatible
//! bucket (a real S3 server on loopback). Each behaviour below runs as `NAME::file` and
//! `NAME::s3`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use docket_conformance::harness::{TestDb, sqlite};
use docket_conformance::s3::{ACCESS_KEY_ID, S3Server, SECRET_ACCESS_KEY};
use docket_core::{DocumentStore, QueueDriver};
use docket_pipeline::blob::{BlobError, BlobMeta, BlobStore, ObjectStoreBlobs, original_key};
use docket_pipeline::config::{S3Config, StorageConfig};
use docket_pipeline::notify::Notifier;
use docket_pipeline::orphans::sweep_once;
use docket_pipeline::{NewDocument, PipelineError};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

mod common;

/// A store of one kind, and what keeps it alive (the folder, the server).
struct Store {
    blobs: Arc<ObjectStoreBlobs>,
    _keep: Box<dyn std::any::Any + Send>,
}

/// S3 settings for `endpoint`, with small parts so that a few MiB make a multipart upload.
fn s3_settings(endpoint: &str) -> S3Config {
    S3Config {
        endpoint: Some(endpoint.to_owned()),
        access_key_id: Some(ACCESS_KEY_ID.into()),
        secret_access_key: Some(SECRET_ACCESS_KEY.into()),
        part_bytes: 5 * 1024 * 1024,
        max_retries: 1,
        retry_timeout_ms: 2_000,
        connect_timeout_ms: 1_000,
        ..S3Config::default()
    }
}

fn open(url: &str, s3: S3Config) -> ObjectStoreBlobs {
    let config = StorageConfig {
        url: Some(url.to_owned()),
        s3,
        ..StorageConfig::default()
    };
    ObjectStoreBlobs::open_with_env(&config, |_| None).unwrap()
}

async fn file_store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    Store {
        blobs: Arc::new(open(url.as_str(), S3Config::default())),
        _keep: Box::new(dir),
    }
}

async fn s3_store() -> Store {
    let server = S3Server::start(&["docket-blobs"]).await;
    let blobs = open(
        "s3://docket-blobs/tenant-a",
        s3_settings(&server.endpoint()),
    );
    Store {
        blobs: Arc::new(blobs),
        _keep: Box::new(server),
    }
}

/// Runs `async fn NAME(store: Store)` on both kinds of storage.
macro_rules! both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file() {
                super::$name(super::file_store().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                super::$name(super::s3_store().await).await
            }
        }
    };
}

async fn listed(blobs: &dyn BlobStore) -> Vec<BlobMeta> {
    let mut all: Vec<BlobMeta> = blobs.list("documents").map(|m| m.unwrap()).collect().await;
    all.sort_by(|a, b| a.key.cmp(&b.key));
    all
}

/// Bytes that never repeat within a part: a part sent twice or out of order shows.
fn numbered(len: usize) -> Bytes {
    let mut v = Vec::with_capacity(len + 8);
    let mut n: u64 = 0;
    while v.len() < len {
        v.extend_from_slice(&n.to_le_bytes());
        n += 1;
    }
    v.truncate(len);
    Bytes::from(v)
}

both_stores!(round_trip_list_and_delete);
/// Put, get, replace, list (with sizes and times), delete (twice), and a missing key.
async fn round_trip_list_and_delete(store: Store) {
    let b = store.blobs.as_ref();
    b.check().await.expect("an empty store is ready");
    assert!(listed(b).await.is_empty());
    let (k1, k2) = (
        original_key(uuid::Uuid::now_v7()),
        original_key(uuid::Uuid::now_v7()),
    );
    let before = Utc::now() - chrono::Duration::seconds(5);
    b.put(&k1, Bytes::from_static(b"first")).await.unwrap();
    b.put(&k2, Bytes::from_static(b"second")).await.unwrap();
    b.put(&k1, Bytes::from_static(b"first, again"))
        .await
        .unwrap();
    assert_eq!(
        b.get(&k1).await.unwrap(),
        Bytes::from_static(b"first, again")
    );
    let all = listed(b).await;
    let mut want = vec![(k1.clone(), 12), (k2.clone(), 6)];
    want.sort();
    assert_eq!(
        all.iter()
            .map(|m| (m.key.clone(), m.size))
            .collect::<Vec<_>>(),
        want
    );
    for m in &all {
        assert!(
            m.last_modified > before && m.last_modified < Utc::now() + chrono::Duration::seconds(5),
            "{m:?}"
        );
    }
    b.check().await.unwrap();
    b.delete(&k1).await.unwrap();
    b.delete(&k1)
        .await
        .expect("deleting a missing blob is not an error");
    assert!(matches!(b.get(&k1).await, Err(BlobError::NotFound(_))));
    assert_eq!(listed(b).await.len(), 1);
}

both_stores!(large_files_arrive_whole);
/// A file of several parts (13 MiB and an odd byte; parts of 5 MiB on S3) reads back byte
/// for byte.
async fn large_files_arrive_whole(store: Store) {
    let b = store.blobs.as_ref();
    let bytes = numbered(13 * 1024 * 1024 + 1);
    let key = original_key(uuid::Uuid::now_v7());
    b.put(&key, bytes.clone()).await.unwrap();
    let back = b.get(&key).await.unwrap();
    assert_eq!(back.len(), bytes.len());
    assert!(back == bytes, "the bytes read back differ");
    assert_eq!(listed(b).await[0].size, bytes.len() as u64);
}

/// Deletes fail (fault injection); the rest is the store underneath.
struct FailingDeletes(Arc<ObjectStoreBlobs>);

impl BlobStore for FailingDeletes {
    fn put(&self, key: &str, bytes: Bytes) -> BoxFuture<'_, Result<(), BlobError>> {
        self.0.put(key, bytes)
    }
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Bytes, BlobError>> {
        self.0.get(key)
    }
    fn delete(&self, _key: &str) -> BoxFuture<'_, Result<(), BlobError>> {
        Box::pin(async { Err(BlobError::Store("injected: the store refused".into())) })
    }
    fn list(&self, prefix: &str) -> BoxStream<'static, Result<BlobMeta, BlobError>> {
        self.0.list(prefix)
    }
    fn check(&self) -> BoxFuture<'_, Result<(), BlobError>> {
        self.0.check()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

both_stores!(orphans_are_swept_once_past_the_grace_period);
/// The state a crash between writing an original and storing its document leaves (the
/// bytes, no row), and a document deleted while the store refused the delete: the sweep
/// leaves both while they are younger than the grace period, then deletes them; referenced
/// originals and keys docket did not make stay.
async fn orphans_are_swept_once_past_the_grace_period(store: Store) {
    let db = sqlite().await;
    let driver = db.driver().clone();
    let refusing = Arc::new(FailingDeletes(store.blobs.clone()));
    let p = common::pipeline_on(
        &driver,
        refusing.clone(),
        common::hashing(),
        Notifier::none(),
    );
    let kept = submit(&p, b"# Kept\n\nreferenced").await;
    let deleted = submit(&p, b"# Deleted\n\nthe store refuses its delete").await;
    assert!(p.delete(deleted).await.unwrap(), "the document goes anyway");
    assert!(
        store.blobs.get(&original_key(deleted)).await.is_ok(),
        "its original stayed"
    );
    // What `submit` writes before the row, had it crashed there.
    let crashed = uuid::Uuid::now_v7();
    store
        .blobs
        .put(
            &original_key(crashed),
            Bytes::from_static(b"bytes without a row"),
        )
        .await
        .unwrap();
    store
        .blobs
        .put(
            "documents/notes.txt",
            Bytes::from_static(b"not an original"),
        )
        .await
        .unwrap();
    let blobs: &dyn BlobStore = store.blobs.as_ref();
    let grace = Duration::from_secs(3600);

    let now = Utc::now();
    let r = sweep_once(&driver, blobs, grace, now).await.unwrap();
    assert_eq!(
        (r.listed, r.deleted, r.young, r.failed),
        (4, 0, 2, 0),
        "{r:?}"
    );
    let later = now + chrono::Duration::hours(2);
    // A delete the store refuses leaves the orphan for the next sweep, and says so.
    let r = sweep_once(&driver, refusing.as_ref(), grace, later)
        .await
        .unwrap();
    assert_eq!(
        (r.listed, r.deleted, r.young, r.failed),
        (4, 0, 0, 2),
        "{r:?}"
    );
    let r = sweep_once(&driver, blobs, grace, later).await.unwrap();
    assert_eq!(
        (r.listed, r.deleted, r.young, r.failed),
        (4, 2, 0, 0),
        "{r:?}"
    );
    let left: Vec<String> = listed(blobs).await.into_iter().map(|m| m.key).collect();
    let mut want = vec![original_key(kept), "documents/notes.txt".to_owned()];
    want.sort();
    assert_eq!(left, want);
    let mut c = driver.conn().await.unwrap();
    assert!(c.document_get(kept).await.unwrap().is_some());
}

async fn submit<D: docket_core::Driver>(
    p: &docket_pipeline::Pipeline<D>,
    text: &'static [u8],
) -> uuid::Uuid {
    p.submit(NewDocument {
        bytes: Bytes::from_static(text),
        filename: Some("notes.md".into()),
        ..NewDocument::default()
    })
    .await
    .unwrap()
    .document
    .id
}

/// A bucket nothing answers for: `check` says why, and a write fails within the retry
/// budget, as an unavailable store (the API answers 503 for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bucket_fails_fast_and_says_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let b = open("s3://docket-gone/x", s3_settings(&endpoint));
    let started = std::time::Instant::now();
    let e = b.check().await.unwrap_err();
    assert!(matches!(e, BlobError::Store(_)), "{e}");
    let e = b
        .put(
            &original_key(uuid::Uuid::now_v7()),
            Bytes::from_static(b"x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BlobError::Store(_)), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // Through the pipeline: the upload fails as unavailable storage, and no row is written.
    let db = sqlite().await;
    let driver = db.driver().clone();
    let p = common::pipeline_on(&driver, Arc::new(b), common::hashing(), Notifier::none());
    let r = p
        .submit(NewDocument {
            bytes: Bytes::from_static(b"# Nowhere"),
            ..NewDocument::default()
        })
        .await;
    assert!(
        matches!(r, Err(PipelineError::Blob(BlobError::Store(_)))),
        "{r:?}"
    );
    let mut c = driver.conn().await.unwrap();
    let docs = c
        .document_list(&docket_core::DocumentListParams {
            status: None,
            source: None,
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(docs.is_empty(), "{docs:?}");
}
