//! The lexical `hashing` embedder.

use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_embed::{EmbedConfig, Embedder};

fn embedder() -> HashingEmbedder {
    HashingEmbedder::new(HashingConfig::default())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(v: &[f32]) -> f32 {
    dot(v, v).sqrt()
}

async fn embed(e: &HashingEmbedder, texts: &[&str]) -> Vec<Vec<f32>> {
    let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    e.embed(&texts).await.expect("hashing never fails")
}

#[tokio::test]
async fn describes_itself() {
    let e = embedder();
    assert_eq!(e.name(), "hashing:384");
    assert_eq!(e.dimensions(), 384);
    assert_eq!(e.max_input_tokens(), 256);
    assert!(e.batch_size() > 0);
    assert_eq!(e.ready(), Ok(()));
    assert_eq!(e.count_tokens("Hello, world! It's 2024."), 5);
    assert_eq!(e.count_tokens("  \n\t.,;"), 0);
}

#[tokio::test]
async fn is_deterministic_and_normalised() {
    let e = embedder();
    let texts = [
        "The quick brown fox jumps over the lazy dog.",
        "Ünïcode straße, 東京 and more",
        "x",
    ];
    let a = embed(&e, &texts).await;
    let b = embed(&HashingEmbedder::new(HashingConfig::default()), &texts).await;
    assert_eq!(a, b);
    assert_eq!(a.len(), 3);
    for v in &a {
        assert_eq!(v.len(), 384);
        assert!((norm(v) - 1.0).abs() < 1e-5, "norm {}", norm(v));
    }
    assert_eq!(a[0], e.embed_one(texts[0]));
}

#[tokio::test]
async fn ignores_case_and_punctuation() {
    let e = embedder();
    let v = embed(&e, &["Hello, World!", "hello world", "HELLO   world..."]).await;
    assert_eq!(v[0], v[1]);
    assert_eq!(v[1], v[2]);
}

#[tokio::test]
async fn texts_sharing_words_score_higher_than_unrelated_ones() {
    let e = embedder();
    let v = embed(
        &e,
        &[
            "The invoice is due at the end of the month and payment goes by bank transfer.",
            "Payment of the invoice is due by bank transfer at the end of each month.",
            "Photosynthesis converts sunlight, water and carbon dioxide into glucose in plants.",
        ],
    )
    .await;
    let similar = dot(&v[0], &v[1]);
    let unrelated = dot(&v[0], &v[2]);
    assert!(similar > 0.5, "similar {similar}");
    assert!(unrelated < 0.2, "unrelated {unrelated}");
    assert!(similar > unrelated + 0.3);
}

#[tokio::test]
async fn word_order_counts_through_bigrams() {
    let e = embedder();
    let v = embed(&e, &["dog bites man", "man bites dog", "dog bites man"]).await;
    let same = dot(&v[0], &v[2]);
    let reordered = dot(&v[0], &v[1]);
    assert!((same - 1.0).abs() < 1e-5);
    assert!(reordered < 0.9 && reordered > 0.3, "reordered {reordered}");
}

#[tokio::test]
async fn term_frequency_is_sublinear() {
    let e = embedder();
    // Features: apple ×4, banana ×1, "apple apple" ×3, "apple banana" ×1.
    let v = e.embed_one("apple apple apple apple banana");
    let mut weights: Vec<f32> = v.iter().filter(|x| **x != 0.0).map(|x| x.abs()).collect();
    weights.sort_by(f32::total_cmp);
    assert_eq!(weights.len(), 4, "{weights:?}");
    let unit = weights[0];
    let want = [1.0, 1.0, 1.0 + 3f32.ln(), 1.0 + 4f32.ln()];
    for (w, want) in weights.iter().zip(want) {
        assert!((w / unit - want).abs() < 1e-5, "{weights:?}");
    }
}

#[tokio::test]
async fn dimensions_are_configurable() {
    let e = HashingEmbedder::new(HashingConfig {
        dimensions: 64,
        max_tokens: 10,
    });
    assert_eq!(e.name(), "hashing:64");
    assert_eq!(e.dimensions(), 64);
    assert_eq!(e.max_input_tokens(), 10);
    let v = embed(&e, &["some words to hash"]).await;
    assert_eq!(v[0].len(), 64);
    assert!((norm(&v[0]) - 1.0).abs() < 1e-5);

    // Zero dimensions would make every vector empty: treated as one bucket.
    let one = HashingEmbedder::new(HashingConfig {
        dimensions: 0,
        max_tokens: 0,
    });
    assert_eq!(one.dimensions(), 1);
    assert_eq!(embed(&one, &["a"]).await[0].len(), 1);
}

#[tokio::test]
async fn long_inputs_are_truncated_to_max_tokens() {
    let e = HashingEmbedder::new(HashingConfig {
        dimensions: 128,
        max_tokens: 3,
    });
    let v = embed(
        &e,
        &["alpha beta gamma", "alpha beta gamma delta epsilon zeta"],
    )
    .await;
    assert_eq!(v[0], v[1]);
}

#[tokio::test]
async fn empty_text_is_the_zero_vector() {
    let e = embedder();
    let v = embed(&e, &["", "   ", "?!—…", "word"]).await;
    for zero in &v[..3] {
        assert_eq!(zero.len(), 384);
        assert!(zero.iter().all(|&x| x == 0.0));
    }
    assert_eq!(dot(&v[0], &v[3]), 0.0);
    assert!(embed(&e, &[]).await.is_empty());
}

#[tokio::test]
async fn large_batches_match_small_ones() {
    // Big enough to go through the blocking pool.
    let e = embedder();
    let text = "lorem ipsum dolor sit amet consectetur adipiscing elit ".repeat(40);
    let texts: Vec<String> = (0..200).map(|i| format!("{text} document {i}")).collect();
    let big = e.embed(&texts).await.unwrap();
    assert_eq!(big.len(), 200);
    for (t, v) in texts.iter().zip(&big).step_by(37) {
        assert_eq!(&e.embed_one(t), v);
    }
}

/// Stored vectors must stay comparable with new ones: a change to tokenisation, hashing,
/// bucketing or weighting changes these values and fails this test. Change them only with a
/// plan to re-embed stored documents.
#[tokio::test]
async fn known_vector_is_stable() {
    let e = embedder();
    let v = e.embed_one("The quick brown fox");
    let mut top: Vec<(usize, f32)> = v
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, x)| x != 0.0)
        .collect();
    top.sort_by_key(|&(i, _)| i);
    let pinned: &[(usize, f32)] = PINNED;
    assert_eq!(top.len(), pinned.len(), "{top:?}");
    for ((i, x), (pi, px)) in top.iter().zip(pinned) {
        assert_eq!(i, pi, "{top:?}");
        assert!((x - px).abs() < 1e-6, "{top:?}");
    }
}

/// Non-zero buckets of `hashing:384` for "The quick brown fox" (4 words + 3 bigrams, each
/// weight 1, so each ±1/√7 unless two features share a bucket).
const PINNED: &[(usize, f32)] = &[
    (30, 0.377_964_5),
    (42, 0.377_964_5),
    (94, -0.377_964_5),
    (114, 0.377_964_5),
    (283, -0.377_964_5),
    (305, -0.377_964_5),
    (368, -0.377_964_5),
];

#[test]
fn config_deserialises_with_defaults() {
    let c: EmbedConfig = serde_json::from_str(r#"{"provider":"hashing"}"#).unwrap();
    assert_eq!(c, EmbedConfig::Hashing(HashingConfig::default()));
    let c: EmbedConfig =
        serde_json::from_str(r#"{"provider":"hashing","dimensions":128}"#).unwrap();
    assert_eq!(
        c,
        EmbedConfig::Hashing(HashingConfig {
            dimensions: 128,
            max_tokens: 256
        })
    );
    assert!(serde_json::from_str::<EmbedConfig>(r#"{"provider":"hashing","dims":128}"#).is_err());
    assert_eq!(
        EmbedConfig::default(),
        EmbedConfig::Hashing(HashingConfig::default())
    );
}

#[tokio::test]
async fn builds_from_config() {
    let e = docket_embed::build(&EmbedConfig::Hashing(HashingConfig {
        dimensions: 32,
        max_tokens: 8,
    }))
    .await
    .unwrap();
    assert_eq!(e.name(), "hashing:32");
    assert_eq!(
        e.embed(&["hi there".to_string()]).await.unwrap()[0].len(),
        32
    );
}
