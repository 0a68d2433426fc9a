//! The `openai` provider's configuration (`[embed] provider = "openai"`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Configuration of the `openai` provider.
///
/// Only `base_url`, `model` and `dimensions` are required. `Debug` never shows the API key.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API root, ending in `/v1`: `https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1` (Ollama), … Requests go to `{base_url}/embeddings`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set; never logged.
    #[serde(default)]
    pub api_key: Option<String>,
    /// The model name the provider knows, e.g. `text-embedding-3-small`, `nomic-embed-text`.
    pub model: String,
    /// The expected vector length; every response is checked against it.
    pub dimensions: usize,
    /// Send `"dimensions"` in the request, asking the model to shorten its vectors
    /// (OpenAI's `text-embedding-3-*`). Most other servers reject the field. Default false.
    #[serde(default)]
    pub send_dimensions: bool,
    /// The most inputs in one request; default 64.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// The most (estimated) tokens one input may have; default 8191.
    #[serde(default = "default_max_input_tokens")]
    pub max_input_tokens: usize,
    /// The most (estimated) tokens in one request; default 300000. Lowered to
    /// `tokens_per_minute` when that is smaller.
    #[serde(default = "default_max_tokens_per_request")]
    pub max_tokens_per_request: usize,
    /// Paces requests to at most this many a minute; unlimited when unset.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Paces requests to at most this many (estimated) tokens a minute; unlimited when unset.
    #[serde(default)]
    pub tokens_per_minute: Option<u32>,
    /// Timeout of one HTTP request, connecting and reading the whole body included;
    /// default 30000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// In-call retries after a `5xx`, a timeout, a connection error or a malformed body (and
    /// after a short `429`); default 2.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Consecutive transiently failed calls that open the circuit breaker; default 5. Zero
    /// turns the breaker off.
    #[serde(default = "default_breaker_threshold")]
    pub breaker_threshold: u32,
    /// How long an open breaker refuses calls before letting a trial through; default 30000.
    #[serde(default = "default_breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
}

fn default_max_batch() -> usize {
    64
}
fn default_max_input_tokens() -> usize {
    8191
}
fn default_max_tokens_per_request() -> usize {
    300_000
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_max_retries() -> u32 {
    2
}
fn default_breaker_threshold() -> u32 {
    5
}
fn default_breaker_cooldown_ms() -> u64 {
    30_000
}

impl OpenAiConfig {
    /// A configuration with every optional setting at its default.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>, dimensions: usize) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            dimensions,
            send_dimensions: false,
            max_batch: default_max_batch(),
            max_input_tokens: default_max_input_tokens(),
            max_tokens_per_request: default_max_tokens_per_request(),
            requests_per_minute: None,
            tokens_per_minute: None,
            timeout_ms: default_timeout_ms(),
            max_retries: default_max_retries(),
            breaker_threshold: default_breaker_threshold(),
            breaker_cooldown_ms: default_breaker_cooldown_ms(),
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("dimensions", &self.dimensions)
            .field("send_dimensions", &self.send_dimensions)
            .field("max_batch", &self.max_batch)
            .field("max_input_tokens", &self.max_input_tokens)
            .field("max_tokens_per_request", &self.max_tokens_per_request)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("tokens_per_minute", &self.tokens_per_minute)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cooldown_ms", &self.breaker_cooldown_ms)
            .finish()
    }
}
