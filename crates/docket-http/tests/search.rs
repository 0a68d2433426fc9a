//! Search when the embedder changes, over a real socket on both backends: a server with
//! another embedder than the one that made the stored vectors ranks none of them and says
//! so (the answer, `/readyz`, `/metrics`, `GET /v1/reindex`); `POST /v1/reindex` (admin)
//! starts one durable re-embedding job, recorded in the audit trail; afterwards search finds
//! the documents again. And the search request's bounds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_http::auth::{ApiKey, ApiKeys, Scope};
use docket_pipeline::config::StagesConfig;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const MAX_BODY: usize = 256 * 1024;

mod common;

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docket-parse/tests/corpus")
        .join(name);
    std::fs::read(path).unwrap()
}

fn key(name: &str, secret: &str, scopes: &[Scope]) -> ApiKey {
    use sha2::Digest;
    ApiKey {
        name: name.into(),
        sha256: format!("{:x}", sha2::Sha256::digest(secret.as_bytes())),
        scopes: scopes.to_vec(),
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn search(&self, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, "/v1/search", "read-key", Some(body))
            .await
    }

    async fn reindex_status(&self) -> Value {
        let (status, body) = self
            .call(reqwest::Method::GET, "/v1/reindex", "read-key", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

#[both_backends]
async fn search_ranks_one_embedder_and_reindex_moves_the_rest(db: impl TestDb) {
    let keys = || {
        ApiKeys::new(&[
            key("reader", "read-key", &[Scope::Read, Scope::Ingest]),
            key("operator", "admin-key", &[Scope::Admin]),
        ])
        .unwrap()
    };
    let http = reqwest::Client::new();

    // The first server (the default lexical embedder) ingests two documents.
    let first = common::serve(db.driver(), MAX_BODY, Some(keys())).await;
    let c = Client {
        http: http.clone(),
        base: first.base.clone(),
    };
    let mut ids = Vec::new();
    for name in ["guide.md", "notes.txt"] {
        let form = Form::new().part("file", Part::bytes(corpus(name)).file_name(name));
        let r = http
            .post(format!("{}/v1/documents", first.base))
            .bearer_auth("read-key")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.unwrap();
        ids.push(body["document"]["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let (_, d) = c
                    .call(
                        reqwest::Method::GET,
                        &format!("/v1/documents/{id}"),
                        "read-key",
                        None,
                    )
                    .await;
                if d["status"] == "completed" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("completes");
    }
    let (status, found) = c
        .search(json!({"query": "installation steps", "k": 5, "mode": "vector"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["mode"], "vector");
    let old_fingerprint = found["embedder"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(found["stale_documents"], 0);
    assert!(!found["hits"].as_array().unwrap().is_empty());
    assert!(
        found["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["embedder_fingerprint"] == old_fingerprint.as_str())
    );
    first.runtime.shutdown().await;

    // The second: another embedder (as many dimensions, another input limit).
    let other = Arc::new(HashingEmbedder::new(HashingConfig {
        dimensions: 384,
        max_tokens: 100,
    }));
    let second =
        common::serve_using(db.driver(), MAX_BODY, Some(keys()), other, |_, _, _| {}).await;
    let c = Client {
        http: http.clone(),
        base: second.base.clone(),
    };
    let (status, found) = c
        .search(json!({"query": "installation steps", "k": 5, "mode": "vector"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        found["hits"],
        json!([]),
        "no vector of another embedder is ranked"
    );
    // Hybrid (the default) still finds them by their words, and says how each hit was found.
    let (_, hybrid) = c
        .search(json!({"query": "installation steps", "k": 5}))
        .await;
    assert_eq!(hybrid["mode"], "hybrid");
    let hits = hybrid["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{hybrid}");
    for h in hits {
        assert!(
            h["text_rank"].as_u64().is_some() && h["vector_rank"].is_null(),
            "{h}"
        );
        assert!(h["embedder_fingerprint"].is_null(), "{h}");
        assert_eq!(h["filename"], "guide.md", "{h}");
    }
    assert_eq!(hybrid["stale_documents"], 2);
    assert_eq!(found["stale_documents"], 2);
    assert_ne!(found["embedder"]["fingerprint"], old_fingerprint.as_str());
    let stale = &found["stale"][0];
    assert_eq!(
        (&stale["fingerprint"], &stale["documents"]),
        (&json!(old_fingerprint), &json!(2))
    );
    assert!(
        stale["reason"].as_str().unwrap().contains("docket reindex"),
        "{stale}"
    );
    let (status, ready) = c.call(reqwest::Method::GET, "/readyz", "", None).await;
    assert_eq!(
        (status, &ready["embedder"]["stale_documents"]),
        (StatusCode::OK, &json!(2)),
        "{ready}"
    );
    let metrics = http
        .get(format!("{}/metrics", second.base))
        .bearer_auth("read-key")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# TYPE docket_documents_stale_embedder gauge"),
        "{metrics}"
    );
    let status_before = c.reindex_status().await;
    assert_eq!(status_before["embedder"]["stale_documents"], 2);
    assert_eq!(status_before["embedder"]["current_documents"], 0);

    // Starting it needs the admin scope; one job at a time (held while the queue is paused).
    let (status, _) = c
        .call(reqwest::Method::POST, "/v1/reindex", "read-key", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let queue = StagesConfig::default().queue;
    let (status, _) = c
        .call(
            reqwest::Method::POST,
            &format!("/v1/queues/{queue}/pause"),
            "admin-key",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, started) = c
        .call(reqwest::Method::POST, "/v1/reindex", "admin-key", None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(
        (&started["created"], &started["stale_documents"]),
        (&json!(true), &json!(2))
    );
    let (status, again) = c
        .call(reqwest::Method::POST, "/v1/reindex", "admin-key", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (&again["created"], &again["job_id"]),
        (&json!(false), &started["job_id"])
    );
    let (_, audit) = c
        .call(
            reqwest::Method::GET,
            "/v1/audit?action=reindex",
            "admin-key",
            None,
        )
        .await;
    let entries = audit["actions"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "recorded once: {audit}");
    assert_eq!(entries[0]["actor"], "key:operator");
    let (status, _) = c
        .call(
            reqwest::Method::POST,
            &format!("/v1/queues/{queue}/resume"),
            "admin-key",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let done = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let s = c.reindex_status().await;
            if s["embedder"]["stale_documents"] == 0 && s["job"]["state"] == "completed" {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("re-embedded");
    assert_eq!(done["embedder"]["current_documents"], 2);
    assert_eq!(done["job"]["id"], started["job_id"]);
    let (_, found) = c
        .search(json!({"query": "installation steps", "k": 5}))
        .await;
    assert_eq!(found["stale_documents"], 0);
    let hits = found["hits"].as_array().unwrap();
    assert!(
        hits.iter()
            .any(|h| h["vector_rank"].as_u64().is_some() && h["text_rank"].as_u64().is_some()),
        "found by both rankings once re-embedded: {found}"
    );
    for (mode, by) in [("text", "text_rank"), ("vector", "vector_rank")] {
        let (_, one) = c
            .search(json!({"query": "installation steps", "k": 3, "mode": mode}))
            .await;
        let hits = one["hits"].as_array().unwrap();
        assert!(!hits.is_empty() && hits.len() <= 3, "{one}");
        for (i, h) in hits.iter().enumerate() {
            assert_eq!(h[by], i + 1, "{mode}: ranked by its own list: {one}");
        }
    }

    // Filters by file name and metadata.
    let docs_of = |v: &Value| -> Vec<String> {
        let mut d: Vec<String> = v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["filename"].as_str().unwrap().to_owned())
            .collect();
        d.sort();
        d.dedup();
        d
    };
    let (_, both) = c.search(json!({"query": "the", "k": 50})).await;
    assert_eq!(docs_of(&both), ["guide.md", "notes.txt"], "{both}");
    let (_, notes) = c
        .search(json!({"query": "the", "k": 50, "filename": "NOTES"}))
        .await;
    assert_eq!(docs_of(&notes), ["notes.txt"], "{notes}");
    let (_, all) = c
        .search(json!({"query": "the", "k": 50, "metadata": {}}))
        .await;
    assert_eq!(docs_of(&all), ["guide.md", "notes.txt"], "{all}");
    let (_, none) = c
        .search(json!({"query": "the", "k": 50, "metadata": {"team": "ops"}}))
        .await;
    assert_eq!(none["hits"], json!([]), "{none}");

    // The request's bounds.
    for (body, says) in [
        (
            json!({"query": "x", "k": 0}),
            "k must be between 1 and 1000",
        ),
        (
            json!({"query": "x", "k": 1001}),
            "k must be between 1 and 1000",
        ),
        (
            json!({"query": "x", "k": -3}),
            "k must be between 1 and 1000",
        ),
        (json!({"query": "   "}), "query must not be empty"),
        (json!({"query": "x", "mode": "fuzzy"}), "unknown variant"),
        (
            json!({"query": "x", "metadata": ["ops"]}),
            "metadata must be a JSON object",
        ),
        (
            json!({"query": "x", "filename": ""}),
            "filename must not be empty",
        ),
        (json!({"query": "x", "filter": {}}), "unknown field"),
    ] {
        let (status, e) = c.search(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert!(
            e["error"].as_str().unwrap_or_default().contains(says),
            "{body}: {e}"
        );
    }
    let (status, _) = c.search(json!({"query": "x", "k": 1000})).await;
    assert_eq!(status, StatusCode::OK);
    second.runtime.shutdown().await;
}
