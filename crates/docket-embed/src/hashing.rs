//! A dependency-free **lexical** embedder (feature hashing).
//!
//! [`HashingEmbedder`] lets a fresh install embed and search documents with no model and no
//! network. It is *not* a semantic model: two texts come out similar when they share words
//! (and word pairs), not when they mean the same thing. "car" and "automobile" are as
//! unrelated to it as "car" and "banana". Use the `local` or `openai` provider for meaning.
//!
//! # How a text becomes a vector
//!
//! 1. The text is split into words on every character that is not alphanumeric (Unicode
//!    aware), and each word is lowercased. Inputs longer than
//!    [`HashingConfig::max_tokens`] words are truncated to their first `max_tokens` words,
//!    the way a model truncates at its context length.
//! 2. The features are the words (unigrams) and each pair of adjacent words (bigrams), so
//!    word order counts a little.
//! 3. Each feature is hashed with FNV-1a (64-bit) followed by a 64-bit finaliser. The hash
//!    picks a bucket (`hash % dimensions`) and a sign (the top bit), which keeps collisions
//!    from piling up in one direction.
//! 4. A feature seen `tf` times adds `±(1 + ln tf)` (sublinear term frequency) to its bucket.
//! 5. The vector is L2-normalised.
//!
//! The hash is fixed by this module, not by the standard library, so a vector is the same on
//! every platform, process and version: stored vectors stay comparable with new ones. (The
//! tests pin a known vector so a change is caught.)
//!
//! A text with no words at all (empty, whitespace or punctuation only) embeds to the **zero
//! vector**, which has cosine similarity 0 with everything: it cannot be normalised, and
//! matching it to anything would be noise.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{BoxFuture, EmbedError, Embedder, EmbedderIdentity, EmbedderSpec, l2_normalize};

/// Above this many bytes of input in one call, embedding runs on tokio's blocking pool so a
/// large batch does not stall the async workers.
const BLOCKING_THRESHOLD_BYTES: usize = 256 * 1024;

/// Configuration of the `hashing` provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HashingConfig {
    /// Length of every vector (the number of hash buckets); default 384. Zero is treated as 1.
    pub dimensions: usize,
    /// The most words one input may have; longer inputs are truncated. Default 256. Zero is
    /// treated as 1.
    pub max_tokens: usize,
}

impl Default for HashingConfig {
    fn default() -> Self {
        HashingConfig {
            dimensions: 384,
            max_tokens: 256,
        }
    }
}

/// The lexical feature-hashing embedder: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct HashingEmbedder {
    dimensions: usize,
    max_tokens: usize,
    name: String,
    identity: EmbedderIdentity,
}

impl HashingEmbedder {
    /// An embedder with `config`'s dimensions and word limit. Its name is
    /// `hashing:{dimensions}`.
    pub fn new(config: HashingConfig) -> Self {
        let dimensions = config.dimensions.max(1);
        let max_tokens = config.max_tokens.max(1);
        let name = format!("hashing:{dimensions}");
        let identity = EmbedderIdentity::new(
            name.clone(),
            EmbedderSpec {
                provider: "hashing".into(),
                model: "fnv1a-words-and-pairs".into(),
                // The scheme's version: bump it with any change to how a text becomes a vector.
                revision: Some("1".into()),
                dimensions,
                pooling: "feature-hashing".into(),
                normalized: true,
                max_input_tokens: max_tokens,
                precision: None,
            },
        );
        HashingEmbedder {
            dimensions,
            max_tokens,
            name,
            identity,
        }
    }

    /// Embeds one text synchronously: the same vector [`Embedder::embed`] returns for it.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let words: Vec<String> = words(text).take(self.max_tokens).collect();
        let mut counts: HashMap<u64, u32> = HashMap::with_capacity(words.len() * 2);
        for (i, word) in words.iter().enumerate() {
            *counts.entry(feature_hash(&[word.as_bytes()])).or_default() += 1;
            if let Some(next) = words.get(i + 1) {
                // A space never occurs inside a word, so a bigram cannot hash like a unigram.
                *counts
                    .entry(feature_hash(&[word.as_bytes(), b" ", next.as_bytes()]))
                    .or_default() += 1;
            }
        }
        let mut vector = vec![0.0f32; self.dimensions];
        for (hash, tf) in counts {
            let weight = 1.0 + (tf as f32).ln();
            let bucket = (hash % self.dimensions as u64) as usize;
            if hash >> 63 == 1 {
                vector[bucket] -= weight;
            } else {
                vector[bucket] += weight;
            }
        }
        l2_normalize(&mut vector);
        vector
    }

    fn embed_all(&self, texts: &[String]) -> Vec<Vec<f32>> {
        texts.iter().map(|t| self.embed_one(t)).collect()
    }
}

impl Embedder for HashingEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> &EmbedderIdentity {
        &self.identity
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_input_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The number of words, as the embedder splits them.
    fn count_tokens(&self, text: &str) -> usize {
        word_spans(text).count()
    }

    fn batch_size(&self) -> usize {
        256
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let bytes: usize = texts.iter().map(String::len).sum();
            if bytes < BLOCKING_THRESHOLD_BYTES {
                return Ok(self.embed_all(texts));
            }
            let this = self.clone();
            let owned = texts.to_vec();
            tokio::task::spawn_blocking(move || this.embed_all(&owned))
                .await
                .map_err(|e| EmbedError::Transient(format!("hashing embedder task failed: {e}")))
        })
    }

    fn ready(&self) -> Result<(), Duration> {
        Ok(())
    }
}

/// The raw word spans of `text`: maximal runs of alphanumeric characters.
fn word_spans(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// The lowercased words of `text`.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    word_spans(text).map(str::to_lowercase)
}

/// The feature hash: FNV-1a 64 over the concatenation of `parts`, then the MurmurHash3
/// 64-bit finaliser so every output bit depends on every input bit (FNV alone leaves the
/// high bits, which give the sign, poorly mixed).
fn feature_hash(parts: &[&[u8]]) -> u64 {
    fmix64(fnv1a64(parts))
}

/// FNV-1a, 64-bit, over the concatenation of `parts`.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// MurmurHash3's 64-bit finaliser.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_reference_values() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fmix64_is_murmur3s_finaliser() {
        assert_eq!(fmix64(0), 0);
        assert_eq!(feature_hash(&[b"a"]), fmix64(0xaf63_dc4c_8601_ec8c));
    }

    #[test]
    fn bigram_parts_hash_like_their_concatenation() {
        assert_eq!(
            feature_hash(&[b"new", b" ", b"york"]),
            feature_hash(&[b"new york"])
        );
        assert_ne!(feature_hash(&[b"new york"]), feature_hash(&[b"newyork"]));
    }

    #[test]
    fn words_split_on_non_alphanumerics_and_lowercase() {
        let w: Vec<String> = words("Hello, WORLD! Ünïcode—straße 42x").collect();
        assert_eq!(w, ["hello", "world", "ünïcode", "straße", "42x"]);
    }
}
