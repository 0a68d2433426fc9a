//! Originals in an S3-compatible bucket: a real `docket serve` storing them on a real S3
//! server on loopback, and one whose bucket cannot be reached.

use std::time::{Duration, Instant};

use docket_conformance::s3::{ACCESS_KEY_ID, S3Server, SECRET_ACCESS_KEY};
use docket_pipeline::blob::{BlobStore, ObjectStoreBlobs};
use docket_pipeline::config::{S3Config, StorageConfig};
use futures::StreamExt;

mod common;
mod serve;

use serve::*;

fn s3_section(bucket_url: &str, endpoint: &str) -> String {
    format!(
        "[storage]\nurl = \"{bucket_url}\"\n[storage.s3]\nendpoint = \"{endpoint}\"\n\
         access_key_id = \"{ACCESS_KEY_ID}\"\nsecret_access_key = \"{SECRET_ACCESS_KEY}\"\n\
         max_retries = 1\nretry_timeout_ms = 2000\nconnect_timeout_ms = 1000\n"
    )
}

/// The bucket as docket sees it, to look inside.
fn bucket(url: &str, endpoint: &str) -> ObjectStoreBlobs {
    ObjectStoreBlobs::open_with_env(
        &StorageConfig {
            url: Some(url.to_owned()),
            s3: S3Config {
                endpoint: Some(endpoint.to_owned()),
                access_key_id: Some(ACCESS_KEY_ID.into()),
                secret_access_key: Some(SECRET_ACCESS_KEY.into()),
                ..S3Config::default()
            },
            ..StorageConfig::default()
        },
        |_| None,
    )
    .unwrap()
}

async fn keys(b: &ObjectStoreBlobs) -> Vec<String> {
    let mut keys: Vec<String> = b.list("documents").map(|m| m.unwrap().key).collect().await;
    keys.sort();
    keys
}

/// With `storage.url = "s3://…"`, an upload's original goes to the bucket (under the
/// prefix), the document completes from it, deleting the document deletes it, `/readyz`
/// names the bucket's store as ready and `docket config` masks the secret.
#[test]
fn originals_are_stored_in_the_bucket_and_deleted_with_their_document() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = rt.block_on(S3Server::start(&["docket-e2e"]));
    let config = s3_section("s3://docket-e2e/originals", &s3.endpoint());
    let s = Server::start(&config);
    let md = corpus("guide.md");
    let r = s.cli(&["submit", path(&md), "--wait", "--json"]);
    assert_eq!(r.code, 0, "{r}\n--- server\n{}", s.log());
    let doc = &r.json()[0];
    assert_eq!(doc["status"], "completed", "{r}");
    let id = doc["id"].as_str().unwrap().to_owned();

    let prefixed = bucket("s3://docket-e2e/originals", &s3.endpoint());
    let key = format!("documents/{id}/original");
    assert_eq!(rt.block_on(keys(&prefixed)), vec![key.clone()]);
    let stored = rt.block_on(prefixed.get(&key)).unwrap();
    assert_eq!(stored.as_ref(), std::fs::read(&md).unwrap().as_slice());
    // Under the prefix: the bucket's root holds nothing else.
    let root = bucket("s3://docket-e2e", &s3.endpoint());
    assert!(rt.block_on(keys(&root)).is_empty());
    assert!(!s.dir.path().join("docket-blobs").exists() && !s.dir.path().join("blobs").exists());

    let client = reqwest::Client::new();
    let ready = rt
        .block_on(client.get(format!("{}/readyz", s.url)).send())
        .unwrap();
    assert_eq!(ready.status(), 200);
    let gone = rt
        .block_on(client.delete(format!("{}/v1/documents/{id}", s.url)).send())
        .unwrap();
    assert!(gone.status().is_success(), "{}", gone.status());
    assert!(
        rt.block_on(keys(&prefixed)).is_empty(),
        "the original went with its document"
    );

    let shown = run(s.dir.path(), &["config"]);
    assert_eq!(shown.code, 0, "{shown}");
    assert!(
        shown.stdout.contains("s3://docket-e2e/originals"),
        "{shown}"
    );
    assert!(!shown.stdout.contains(SECRET_ACCESS_KEY), "{shown}");
}

/// A bucket that cannot be reached: `/readyz` answers 503 saying so, an upload answers 503,
/// and nothing is written (no document).
#[test]
fn an_unreachable_bucket_makes_readyz_and_uploads_answer_503() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = Server::start(&s3_section("s3://docket-gone/originals", &endpoint));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let ready = rt
        .block_on(client.get(format!("{}/readyz", s.url)).send())
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body = rt.block_on(ready.text()).unwrap();
    assert!(
        body.contains("object storage unavailable") && body.contains("s3://docket-gone"),
        "{body}"
    );

    let started = Instant::now();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"# Notes\n\nkept nowhere".to_vec()).file_name("notes.md"),
    );
    let up = rt
        .block_on(
            client
                .post(format!("{}/v1/documents", s.url))
                .multipart(form)
                .send(),
        )
        .unwrap();
    assert_eq!(up.status(), 503);
    let body = rt.block_on(up.text()).unwrap();
    assert!(body.contains("error"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the upload waited {:?}",
        started.elapsed()
    );
    let listed = rt
        .block_on(client.get(format!("{}/v1/documents", s.url)).send())
        .unwrap();
    let listed: serde_json::Value = rt.block_on(listed.json()).unwrap();
    assert_eq!(listed["documents"], serde_json::json!([]), "{listed}");
}
