//! The `local` provider: a BERT-family sentence-embedding model (by default
//! `sentence-transformers/all-MiniLM-L6-v2`) run in-process on the CPU.
//!
//! The model is a folder holding `config.json`, `tokenizer.json` and `model.safetensors`
//! (plus, optionally, sentence-transformers' `sentence_bert_config.json` and
//! `1_Pooling/config.json`), or a Hugging Face hub repository id whose files are downloaded
//! once into a cache folder ([`pull`] fetches them ahead of time, resumable and checked
//! against the hub's SHA-256; [`present_model_dir`] tells whether they are on disk without a
//! request). Vectors are mean-pooled over the tokens and L2-normalised, as
//! sentence-transformers does for the MiniLM family.
//!
//! The encoder is a hand-written BERT forward pass (see `model.rs`): candle's matrix multiply
//! for the dense layers, fused kernels for the rest, and sequences packed without padding.

mod count;
mod hub;
mod int8;
mod kernels;
mod model;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokenizers::{PostProcessor, Tokenizer, TruncationParams};

pub use hub::{DownloadProgress, Downloaded, Pulled};

use crate::{BoxFuture, EmbedError, Embedder, l2_normalize};

/// Configuration of the `local` provider (`[embed] provider = "local"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// A folder holding the model files, or a Hugging Face hub repository id.
    pub model: String,
    /// The hub revision (branch, tag or commit) to download.
    pub revision: String,
    /// The hub's base URL; when left at its default, the `HF_ENDPOINT` environment variable
    /// overrides it.
    pub hub_url: String,
    /// Where downloaded models are kept. Default: `$HF_HOME/docket`, else
    /// `$XDG_CACHE_HOME/docket/models`, else `~/.cache/docket/models`.
    pub cache_dir: Option<PathBuf>,
    /// Truncate inputs at this many tokens (special tokens included). Capped by the model's
    /// own limit: `max_seq_length` from `sentence_bert_config.json` when present, else its
    /// position-embedding count.
    pub max_tokens: Option<usize>,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Worker threads for inference. Default: the number of CPUs available.
    pub threads: Option<usize>,
    /// The dense layers' arithmetic: `f32` (the model's own) or `int8` (weights quantised
    /// at load, activations per row; faster where the CPU has AVX-512 VNNI, slightly less
    /// exact, and a different embedder: switching re-embeds).
    pub precision: Precision,
}

/// [`LocalConfig::precision`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout.
    #[default]
    F32,
    /// 8-bit integer matrix multiplies in the dense layers.
    Int8,
}

impl Precision {
    /// What the embedder's identity records: nothing for the model's own arithmetic.
    pub fn label(self) -> Option<String> {
        match self {
            Precision::F32 => None,
            Precision::Int8 => Some("int8".into()),
        }
    }

    /// The kernel the dense layers' products run on in this process: `"f32"` (the `gemm`
    /// crate), or for `int8` `"amx"`, `"avx512-vnni"` or `"portable"`, whichever this CPU
    /// (and, for AMX, the operating system) offers first. The vectors are the same on each
    /// int8 kernel: they compute the same integers.
    pub fn kernel(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8 => int8::kernel_name(),
        }
    }
}

/// The default model.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The default hub URL.
pub const DEFAULT_HUB_URL: &str = "https://huggingface.co";

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            model: DEFAULT_MODEL.into(),
            revision: "main".into(),
            hub_url: DEFAULT_HUB_URL.into(),
            cache_dir: None,
            max_tokens: None,
            batch_size: 32,
            threads: None,
            precision: Precision::F32,
        }
    }
}

#[derive(Deserialize)]
struct SbertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize, Default)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

struct Inner {
    model: model::Bert,
    /// Truncates at `max_len`, no padding (sequences are packed).
    tokenizer: Tokenizer,
    /// No truncation or padding: counts tokens.
    counter: count::TokenCounter,
    pool: rayon::ThreadPool,
}

/// The `local` provider. Cheap to share: inference runs on its own thread pool, off the
/// async runtime.
pub struct LocalEmbedder {
    name: String,
    identity: crate::EmbedderIdentity,
    dimensions: usize,
    max_input_tokens: usize,
    batch_size: usize,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("name", &self.name)
            .field("dimensions", &self.dimensions)
            .field("max_input_tokens", &self.max_input_tokens)
            .finish_non_exhaustive()
    }
}

fn permanent(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Permanent(e.to_string())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, EmbedError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| permanent(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(permanent(format!("{}: {e}", path.display()))),
    }
}

impl LocalEmbedder {
    /// Loads the model (downloading it first when `config.model` is not a folder). Errors
    /// are [`EmbedError::Permanent`] for a model that cannot work (missing or malformed
    /// files, unsupported architecture) and [`EmbedError::Transient`] for a failed download.
    pub async fn load(config: LocalConfig) -> Result<Self, EmbedError> {
        let (dir, name) = match source(&config)? {
            Source::Folder(dir, name) => (dir, name),
            Source::Hub(name) => (hub::ensure(&config).await?, name),
        };
        Self::load_from(dir, name, config).await
    }

    /// Loads the model only when its files are on disk already (`config.model` is a folder
    /// holding them, or a hub id whose files are in the cache): this never downloads.
    /// `Ok(None)` when the files are not there; errors as [`LocalEmbedder::load`].
    pub async fn load_present(config: LocalConfig) -> Result<Option<Self>, EmbedError> {
        let Some(dir) = present_model_dir(&config) else {
            return Ok(None);
        };
        let name = match source(&config)? {
            Source::Folder(_, name) | Source::Hub(name) => name,
        };
        Self::load_from(dir, name, config).await.map(Some)
    }

    async fn load_from(
        dir: PathBuf,
        name: String,
        config: LocalConfig,
    ) -> Result<Self, EmbedError> {
        let threads = config
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        tokio::task::spawn_blocking(move || {
            Self::load_dir(&dir, format!("local:{name}"), &config, threads)
        })
        .await
        .map_err(|e| permanent(format!("model loading panicked: {e}")))?
    }

    fn load_dir(
        dir: &Path,
        name: String,
        config: &LocalConfig,
        threads: usize,
    ) -> Result<Self, EmbedError> {
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            if !dir.join(f).is_file() {
                return Err(permanent(format!(
                    "model folder {} has no {f} (expected config.json, tokenizer.json and model.safetensors)",
                    dir.display()
                )));
            }
        }
        let cfg: model::BertConfig = read_json(&dir.join("config.json"))?
            .ok_or_else(|| permanent(format!("{} has no config.json", dir.display())))?;
        if let Some(pooling) = read_json::<PoolingConfig>(&dir.join("1_Pooling/config.json"))?
            && (pooling.pooling_mode_cls_token
                || pooling.pooling_mode_max_tokens
                || pooling.pooling_mode_mean_sqrt_len_tokens
                || !pooling.pooling_mode_mean_tokens)
        {
            return Err(permanent(
                "only mean pooling is supported (1_Pooling/config.json asks for another)",
            ));
        }
        let sbert_max = read_json::<SbertConfig>(&dir.join("sentence_bert_config.json"))?
            .and_then(|c| c.max_seq_length);
        let model = model::Bert::load(&dir.join("model.safetensors"), cfg, config.precision)
            .map_err(permanent)?;
        let model_max = sbert_max.unwrap_or(usize::MAX).min(model.max_positions());
        let max_len = config.max_tokens.unwrap_or(model_max).min(model_max);

        let mut counter = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| permanent(format!("{}: {e}", dir.join("tokenizer.json").display())))?;
        counter.with_padding(None);
        counter.with_truncation(None).map_err(permanent)?;
        let specials = counter
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_len <= specials {
            return Err(permanent(format!(
                "max_tokens {max_len} leaves no room for text"
            )));
        }
        let mut tokenizer = counter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..TruncationParams::default()
            }))
            .map_err(permanent)?;
        if counter.get_vocab_size(true) > model.vocab_size() {
            return Err(permanent(format!(
                "tokenizer has {} tokens but the model only {} embeddings",
                counter.get_vocab_size(true),
                model.vocab_size()
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("docket-embed-{i}"))
            .build()
            .map_err(permanent)?;
        let weights = file_sha256(&dir.join("model.safetensors"))?;
        let identity = crate::EmbedderIdentity::new(
            name.clone(),
            crate::EmbedderSpec {
                provider: "local".into(),
                model: name.trim_start_matches("local:").to_owned(),
                revision: Some(weights),
                dimensions: model.hidden_size(),
                pooling: "mean".into(),
                normalized: true,
                max_input_tokens: max_len - specials,
                precision: config.precision.label(),
            },
        );
        tracing::info!(%name, dir = %dir.display(), max_len, threads, precision = ?config.precision, kernel = config.precision.kernel(), fingerprint = %identity.fingerprint, "local embedding model loaded");
        Ok(LocalEmbedder {
            name,
            identity,
            dimensions: model.hidden_size(),
            max_input_tokens: max_len - specials,
            batch_size: config.batch_size.max(1),
            inner: Arc::new(Inner {
                model,
                tokenizer,
                counter: count::TokenCounter::new(counter),
                pool,
            }),
        })
    }
}

/// Where `config.model` names its files.
enum Source {
    /// A folder, and the name the embedder takes from it.
    Folder(PathBuf, String),
    /// A hub repository, and the name the embedder takes from it (`all-MiniLM-L6-v2`).
    Hub(String),
}

fn source(config: &LocalConfig) -> Result<Source, EmbedError> {
    let local = Path::new(&config.model);
    if local.is_dir() {
        let mut name = local
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model");
        if name == "model" {
            // e.g. a Python package's `<package>/model` folder.
            if let Some(parent) = local
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
            {
                name = parent;
            }
        }
        Ok(Source::Folder(local.to_path_buf(), name.to_string()))
    } else if looks_like_repo_id(&config.model) {
        let name = config
            .model
            .rsplit('/')
            .next()
            .unwrap_or(&config.model)
            .to_string();
        Ok(Source::Hub(name))
    } else {
        Err(permanent(format!(
            "model `{}` is neither a folder nor a hub repository id",
            config.model
        )))
    }
}

/// The folder holding the model's files when they are all on disk already, found without
/// any request: `config.model` itself when it is such a folder, else the cache folder of a
/// hub id (`{cache_dir}/{model with / replaced by --}/{revision}`). `None` when the files
/// (`config.json`, `tokenizer.json`, `model.safetensors`) are not all there.
pub fn present_model_dir(config: &LocalConfig) -> Option<PathBuf> {
    let dir = match source(config).ok()? {
        Source::Folder(dir, _) => dir,
        Source::Hub(_) => hub::model_dir(config).ok()?,
    };
    hub::complete(&dir).then_some(dir)
}

/// The folder a hub model is cached in, whether or not it is there yet:
/// `{cache_dir}/{model with / replaced by --}/{revision}`, the cache folder defaulting to
/// `$HF_HOME/docket`, else `$XDG_CACHE_HOME/docket/models`, else `~/.cache/docket/models`.
pub fn cache_folder(config: &LocalConfig) -> Result<PathBuf, EmbedError> {
    if !looks_like_repo_id(&config.model) {
        return Err(permanent(format!(
            "model `{}` is not a hub repository id (owner/name)",
            config.model
        )));
    }
    hub::model_dir(config)
}

/// The folder under which hub models are cached (`cache_dir`, else its default).
pub fn cache_root(config: &LocalConfig) -> PathBuf {
    config
        .cache_dir
        .clone()
        .unwrap_or_else(hub::default_cache_dir)
}

/// The hub the model comes from: `hub_url`, or `HF_ENDPOINT` when `hub_url` is left at its
/// default; without a trailing slash.
pub fn hub_base_url(config: &LocalConfig) -> String {
    hub::hub_url(config)
}

/// Downloads the hub model `config.model` (at `config.revision`) into the cache: every file
/// not there yet, each streamed into a `.part` file, resumed where an earlier attempt broke
/// off, checked against the SHA-256 the hub names for it, and moved into place only when
/// complete. `progress` is told how it goes. Errors: [`EmbedError::Permanent`] for a model
/// that is not a hub id or that the hub does not have, [`EmbedError::Transient`] for a
/// download that failed (run again: it resumes) or failed its checksum (deleted).
pub async fn pull(
    config: &LocalConfig,
    progress: &mut dyn DownloadProgress,
) -> Result<Pulled, EmbedError> {
    cache_folder(config)?;
    hub::fetch(config, progress).await
}

/// The SHA-256 of a file, lowercase hex, read in 1 MiB blocks (what the hub names for its
/// large files, and what pins a local model's weights).
pub fn file_sha256(path: &Path) -> Result<String, EmbedError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).map_err(|e| permanent(format!("{}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| permanent(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `owner/name` (or `name`) with the characters the hub allows.
fn looks_like_repo_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    !s.is_empty()
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

impl Inner {
    fn embed_blocking(
        &self,
        texts: &[String],
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| permanent(format!("tokenization failed: {e}")))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        // Longest first, so each batch holds similar lengths (balanced attention work);
        // results go back into input order.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = vec![Vec::new(); ids.len()];
        self.pool.install(|| -> Result<(), EmbedError> {
            for batch in order.chunks(batch_size) {
                let seqs: Vec<&[u32]> = batch.iter().map(|&i| ids[i]).collect();
                let vecs = self.model.embed(&seqs).map_err(EmbedError::Transient)?;
                for (&i, mut v) in batch.iter().zip(vecs) {
                    l2_normalize(&mut v);
                    out[i] = v;
                }
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl Embedder for LocalEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> &crate::EmbedderIdentity {
        &self.identity
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_input_tokens(&self) -> usize {
        self.max_input_tokens
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner.counter.count(text)
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            if texts.is_empty() {
                return Ok(Vec::new());
            }
            let started = std::time::Instant::now();
            let inner = Arc::clone(&self.inner);
            let texts = texts.to_vec();
            let batch_size = self.batch_size;
            let result =
                tokio::task::spawn_blocking(move || inner.embed_blocking(&texts, batch_size))
                    .await
                    .map_err(|e| EmbedError::Transient(format!("embedding task failed: {e}")))
                    .and_then(|r| r);
            crate::openai::record_call("local", started, &result);
            result
        })
    }
}
