//! Any OpenAI-compatible `/v1/embeddings` endpoint: OpenAI itself, Ollama, vLLM, Hugging
//! Face TEI, LiteLLM and the like.
//!
//! [`OpenAiEmbedder`] sends `POST {base_url}/embeddings` with
//! `{"model", "input": [...], "encoding_format": "float"}` (plus `"dimensions"` when
//! [`OpenAiConfig::send_dimensions`] is set), reads `data[].embedding` in `data[].index`
//! order, checks the count and the length of every vector against
//! [`OpenAiConfig::dimensions`], and L2-normalises them.
//!
//! # Token counts
//!
//! The provider's tokenizer is not available here, so tokens are **estimated**,
//! conservatively (over rather than under): ASCII characters count a quarter token each,
//! CJK characters (Han, kana, Hangul) a whole token, other non-ASCII characters half a token;
//! the sum is rounded up and never fewer than the number of whitespace-separated words. For
//! English this is the familiar "about four characters per token". The estimate sizes chunks
//! ([`Embedder::count_tokens`]), rejects over-long inputs before they are sent
//! ([`OpenAiConfig::max_input_tokens`]), packs requests
//! ([`OpenAiConfig::max_tokens_per_request`]) and feeds the tokens-per-minute limiter.
//!
//! # Requests
//!
//! One [`Embedder::embed`] call is split into requests of at most
//! [`OpenAiConfig::max_batch`] inputs and at most [`OpenAiConfig::max_tokens_per_request`]
//! estimated tokens, sent one after another. Empty (or whitespace-only) inputs are not sent:
//! providers reject them, and they embed to the zero vector.
//!
//! # Rate limits
//!
//! With [`OpenAiConfig::requests_per_minute`] and/or [`OpenAiConfig::tokens_per_minute`] set,
//! requests are paced before they are sent (a GCRA-style schedule shared by every call on
//! the embedder): requests are spaced `60 s / requests_per_minute` apart, and a request of
//! `n` tokens pushes the next one back by `n × 60 s / tokens_per_minute`. This never bursts,
//! so it stays under the provider's limits at the cost of a little throughput.
//!
//! # Failures
//!
//! | response | what happens |
//! | --- | --- |
//! | `429` | waits for `Retry-After` (or `retry-after-ms`; seconds or an HTTP date) in the call when that is at most 5 s and a retry is left; otherwise [`EmbedError::Unavailable`] with that wait. Other calls on the embedder hold back until then too. |
//! | `5xx`, `408`, timeouts, connection errors, malformed bodies | retried in the call up to [`OpenAiConfig::max_retries`] times with exponential backoff (100 ms, 200 ms, 400 ms … at most 2 s, plus jitter); then the call fails with [`EmbedError::Transient`] and counts as a failure for the circuit breaker; when that failure leaves the breaker open, [`EmbedError::Unavailable`] instead (see below) |
//! | other `4xx` (bad input, bad key, unknown model) | [`EmbedError::Permanent`] with the provider's error message |
//! | vectors of the wrong length | [`EmbedError::Permanent`]: the model or `dimensions` is misconfigured |
//!
//! # Circuit breaker
//!
//! After [`OpenAiConfig::breaker_threshold`] consecutive calls that failed transiently the
//! breaker opens: for [`OpenAiConfig::breaker_cooldown_ms`], [`Embedder::ready`] returns
//! `Err(remaining)` and [`Embedder::embed`] returns [`EmbedError::Unavailable`] without
//! sending anything. After the cooldown one trial call goes through (half-open): its success
//! closes the breaker, its failure opens it for another cooldown. A transient failure that
//! leaves the breaker open (the call that opens it, a failed trial, a call that was already
//! under way when it opened) is returned as [`EmbedError::Unavailable`] for the rest of the
//! cooldown, not [`EmbedError::Transient`]: the provider is down, so callers hold the work
//! back instead of spending attempts on it, however long the outage lasts. An answer that is not a
//! transient failure (a success, a `4xx`, wrong dimensions) counts as a success: the provider
//! is up. A call that ends rate-limited ([`EmbedError::Unavailable`]) counts as neither, and a
//! half-open trial that ends that way (or is cancelled) hands the trial on to the next call.
//!
//! # Metrics
//!
//! Every [`Embedder::embed`] call is recorded through the `metrics` facade with
//! `provider="openai"`: `docket_embed_requests_total{provider,outcome}` (`ok`, `unavailable`,
//! `transient`, `permanent`), `docket_embed_batch_duration_seconds{provider}`, and
//! `docket_embed_breaker_open{provider}`, 1 while the breaker is not closed (open, or
//! half-open awaiting its trial), 0 once a call closes it.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;

use crate::{BoxFuture, EmbedError, Embedder, l2_normalize};

mod breaker;
mod config;
mod limiter;
mod wire;

use breaker::{Breaker, TrialGuard};
pub use config::OpenAiConfig;
use limiter::Limiter;
pub use wire::estimate_tokens;
use wire::{RequestBody, ResponseBody, backoff, error_chain, error_message, retry_after};

/// The longest `429` wait spent inside a call; longer ones become [`EmbedError::Unavailable`].
const MAX_INLINE_RATE_LIMIT_WAIT: Duration = Duration::from_secs(5);
/// The wait a `429` without any `Retry-After` asks for once retries are spent.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

/// The circuit breaker's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cooldown ends.
    Open,
    /// The cooldown has ended: the next call (or the one in flight) is the trial that decides
    /// whether the breaker closes or opens again.
    HalfOpen,
}

/// Counters since the embedder was built, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenAiStats {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    /// Requests answered with usable embeddings.
    pub successes: u64,
    /// `429` answers.
    pub rate_limited: u64,
    /// `5xx` and `408` answers.
    pub server_errors: u64,
    /// Timeouts and connection errors.
    pub transport_errors: u64,
    /// `2xx` answers whose body could not be used.
    pub malformed: u64,
    /// Requests that failed permanently (`4xx` other than `408`/`429`, wrong dimensions).
    pub permanent_errors: u64,
    /// Calls refused without sending because the breaker was open.
    pub breaker_rejections: u64,
    /// Times the breaker opened.
    pub breaker_opens: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    successes: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    malformed: AtomicU64,
    permanent_errors: AtomicU64,
    breaker_rejections: AtomicU64,
    breaker_opens: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// An OpenAI-compatible embeddings client: see the [module docs](self).
pub struct OpenAiEmbedder {
    config: OpenAiConfig,
    name: String,
    identity: crate::EmbedderIdentity,
    endpoint: String,
    client: reqwest::Client,
    max_tokens_per_request: usize,
    limiter: Mutex<Limiter>,
    breaker: Mutex<Breaker>,
    counters: Counters,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbedder {
    /// Checks `config` and builds the HTTP client; sends nothing. Its name is
    /// `openai:{model}`.
    pub fn new(config: OpenAiConfig) -> Result<Self, EmbedError> {
        let invalid = |what: &str| {
            Err(EmbedError::Permanent(format!(
                "invalid openai embedder config: {what}"
            )))
        };
        let base = config.base_url.trim().trim_end_matches('/');
        match reqwest::Url::parse(base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(_) => return invalid("base_url must be http:// or https://"),
            Err(e) => return invalid(&format!("base_url {base:?}: {e}")),
        }
        if config.model.trim().is_empty() {
            return invalid("model is empty");
        }
        if config.dimensions == 0 {
            return invalid("dimensions must be positive");
        }
        if config.max_batch == 0 {
            return invalid("max_batch must be positive");
        }
        if config.max_input_tokens == 0 || config.max_tokens_per_request == 0 {
            return invalid("max_input_tokens and max_tokens_per_request must be positive");
        }
        if config.requests_per_minute == Some(0) || config.tokens_per_minute == Some(0) {
            return invalid("requests_per_minute and tokens_per_minute must be positive when set");
        }
        if config.timeout_ms == 0 {
            return invalid("timeout_ms must be positive");
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| EmbedError::Permanent(format!("cannot build HTTP client: {e}")))?;
        let max_tokens_per_request = match config.tokens_per_minute {
            Some(tpm) => config.max_tokens_per_request.min(tpm as usize),
            None => config.max_tokens_per_request,
        };
        Ok(OpenAiEmbedder {
            name: format!("openai:{}", config.model),
            identity: crate::EmbedderIdentity::new(
                format!("openai:{}", config.model),
                crate::EmbedderSpec {
                    provider: "openai".into(),
                    model: config.model.clone(),
                    // An API names no revision: a provider that changes a model under the same
                    // name changes it for everyone.
                    revision: None,
                    dimensions: config.dimensions,
                    pooling: "provider".into(),
                    normalized: true,
                    max_input_tokens: config.max_input_tokens,
                    precision: None,
                },
            ),
            endpoint: format!("{base}/embeddings"),
            client,
            max_tokens_per_request,
            limiter: Mutex::new(Limiter::new(
                config.requests_per_minute,
                config.tokens_per_minute,
                Instant::now(),
            )),
            breaker: Mutex::new(Breaker::new(
                config.breaker_threshold,
                Duration::from_millis(config.breaker_cooldown_ms),
            )),
            counters: Counters::default(),
            config,
        })
    }

    /// The configuration this embedder was built with.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// The circuit breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        lock(&self.breaker).state(Instant::now())
    }

    /// A snapshot of the request and error counters.
    pub fn stats(&self) -> OpenAiStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OpenAiStats {
            requests: get(&c.requests),
            successes: get(&c.successes),
            rate_limited: get(&c.rate_limited),
            server_errors: get(&c.server_errors),
            transport_errors: get(&c.transport_errors),
            malformed: get(&c.malformed),
            permanent_errors: get(&c.permanent_errors),
            breaker_rejections: get(&c.breaker_rejections),
            breaker_opens: get(&c.breaker_opens),
        }
    }

    async fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        // (index in `texts`, estimated tokens) of every input to send.
        let mut pending: Vec<(usize, usize)> = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            if text.trim().is_empty() {
                out[i] = vec![0.0; self.config.dimensions];
                continue;
            }
            let tokens = estimate_tokens(text);
            if tokens > self.config.max_input_tokens {
                return Err(EmbedError::Permanent(format!(
                    "input {i} has about {tokens} tokens, more than max_input_tokens ({})",
                    self.config.max_input_tokens
                )));
            }
            pending.push((i, tokens));
        }
        if pending.is_empty() {
            return Ok(out);
        }

        let trial = self.admit()?;
        let result = self.send_all(texts, &pending, &mut out).await;
        if let Err(EmbedError::Unavailable { .. }) = result {
            // Rate-limited: says nothing about the provider's health. Dropping the guard
            // hands a half-open trial on to the next call.
            return result.map(|()| out);
        }
        let failed = matches!(result, Err(EmbedError::Transient(_)));
        let (opened, down_for) = {
            let mut breaker = lock(&self.breaker);
            let now = Instant::now();
            let opened = breaker.record(trial.is_trial, failed, now);
            (opened, breaker.ready(now).err())
        };
        trial.finish();
        if opened {
            bump(&self.counters.breaker_opens);
            tracing::warn!(
                endpoint = %self.endpoint,
                model = %self.config.model,
                cooldown_ms = self.config.breaker_cooldown_ms,
                "embedding provider circuit breaker opened"
            );
        }
        match (result, down_for) {
            // The failure that opened the breaker (or a failed half-open trial, or one that
            // ended while the breaker was already open): the provider is down, so the work
            // is held back rather than spending an attempt.
            (Err(EmbedError::Transient(message)), Some(wait)) => Err(EmbedError::Unavailable {
                message: format!("{message} (circuit breaker open)"),
                retry_after: wait,
            }),
            (result, _) => result.map(|()| out),
        }
    }

    /// Lets a call through the breaker, or refuses it with `Unavailable`.
    fn admit(&self) -> Result<TrialGuard<'_>, EmbedError> {
        let admitted = lock(&self.breaker).admit(Instant::now());
        match admitted {
            Ok(is_trial) => Ok(TrialGuard {
                breaker: &self.breaker,
                is_trial,
                done: false,
            }),
            Err(wait) => {
                bump(&self.counters.breaker_rejections);
                Err(EmbedError::Unavailable {
                    message: format!("circuit breaker open for {}", self.endpoint),
                    retry_after: wait,
                })
            }
        }
    }

    async fn send_all(
        &self,
        texts: &[String],
        pending: &[(usize, usize)],
        out: &mut [Vec<f32>],
    ) -> Result<(), EmbedError> {
        let mut start = 0;
        while start < pending.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < pending.len()
                && end - start < self.config.max_batch
                && (end == start || tokens + pending[end].1 <= self.max_tokens_per_request)
            {
                tokens += pending[end].1;
                end += 1;
            }
            let batch = &pending[start..end];
            let inputs: Vec<&str> = batch.iter().map(|&(i, _)| texts[i].as_str()).collect();
            let vectors = self.send_with_retries(&inputs, tokens).await?;
            for (&(i, _), v) in batch.iter().zip(vectors) {
                out[i] = v;
            }
            start = end;
        }
        Ok(())
    }

    async fn send_with_retries(
        &self,
        inputs: &[&str],
        tokens: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut retries = 0u32;
        loop {
            // Waits for the pacing schedule and for any rest a `429` asked for.
            let reserved = lock(&self.limiter).reserve(tokens, Instant::now());
            let wait = reserved.map_err(|blocked| EmbedError::Unavailable {
                message: format!("{} asked for a pause (429)", self.endpoint),
                retry_after: blocked,
            })?;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
                // Another call may have been told to pause (`429`) while this one waited for
                // its slot: take a new one after the pause.
                if lock(&self.limiter).blocked_for(Instant::now()).is_some() {
                    continue;
                }
            }
            bump(&self.counters.requests);
            let failure = match self.send_once(inputs).await {
                Ok(vectors) => {
                    bump(&self.counters.successes);
                    return Ok(vectors);
                }
                Err(f) => f,
            };
            match failure {
                Failure::Permanent(message) => {
                    bump(&self.counters.permanent_errors);
                    return Err(EmbedError::Permanent(message));
                }
                Failure::RateLimited {
                    message,
                    retry_after,
                } => {
                    bump(&self.counters.rate_limited);
                    let wait =
                        retry_after.unwrap_or_else(|| backoff(retries).max(Duration::from_secs(1)));
                    lock(&self.limiter).block_until(Instant::now() + wait);
                    if wait <= MAX_INLINE_RATE_LIMIT_WAIT && retries < self.config.max_retries {
                        // The limiter makes the retry (and every other call) wait it out.
                        tracing::debug!(endpoint = %self.endpoint, wait_ms = wait.as_millis() as u64, "rate-limited; waiting");
                        retries += 1;
                        continue;
                    }
                    return Err(EmbedError::Unavailable {
                        message,
                        retry_after: retry_after.unwrap_or(DEFAULT_RATE_LIMIT_WAIT),
                    });
                }
                Failure::Retryable { kind, message } => {
                    bump(match kind {
                        RetryKind::Server => &self.counters.server_errors,
                        RetryKind::Transport => &self.counters.transport_errors,
                        RetryKind::Malformed => &self.counters.malformed,
                    });
                    if retries < self.config.max_retries {
                        let wait = backoff(retries);
                        tracing::warn!(
                            endpoint = %self.endpoint,
                            retry = retries + 1,
                            wait_ms = wait.as_millis() as u64,
                            error = %message,
                            "embedding request failed; retrying"
                        );
                        retries += 1;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(EmbedError::Transient(message));
                }
            }
        }
    }

    async fn send_once(&self, inputs: &[&str]) -> Result<Vec<Vec<f32>>, Failure> {
        let body = RequestBody {
            model: &self.config.model,
            input: inputs,
            encoding_format: "float",
            dimensions: self
                .config
                .send_dimensions
                .then_some(self.config.dimensions),
        };
        let mut request = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_failure(&e))?;

        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::RateLimited {
                message: format!("429 from {}: {}", self.endpoint, error_message(&bytes)),
                retry_after: retry_after(&headers, SystemTime::now()),
            });
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            return Err(Failure::Retryable {
                kind: RetryKind::Server,
                message: format!("{status} from {}: {}", self.endpoint, error_message(&bytes)),
            });
        }
        if !status.is_success() {
            return Err(Failure::Permanent(format!(
                "{status} from {}: {}",
                self.endpoint,
                error_message(&bytes)
            )));
        }
        self.parse(&bytes, inputs.len())
    }

    fn parse(&self, bytes: &[u8], expected: usize) -> Result<Vec<Vec<f32>>, Failure> {
        let malformed = |what: String| Failure::Retryable {
            kind: RetryKind::Malformed,
            message: format!("malformed response from {}: {what}", self.endpoint),
        };
        let body: ResponseBody =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if body.data.len() != expected {
            return Err(malformed(format!(
                "{} embeddings for {expected} inputs",
                body.data.len()
            )));
        }
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; expected];
        for item in body.data {
            let slot = vectors
                .get_mut(item.index)
                .ok_or_else(|| malformed(format!("index {} out of range", item.index)))?;
            if slot.is_some() {
                return Err(malformed(format!("index {} repeated", item.index)));
            }
            if item.embedding.len() != self.config.dimensions {
                return Err(Failure::Permanent(format!(
                    "{} returned {}-dimensional vectors for model {}, expected {} (check `dimensions`)",
                    self.endpoint,
                    item.embedding.len(),
                    self.config.model,
                    self.config.dimensions
                )));
            }
            let mut v = item.embedding;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(malformed(format!(
                    "non-finite value in embedding {}",
                    item.index
                )));
            }
            l2_normalize(&mut v);
            *slot = Some(v);
        }
        // Every slot is filled: `expected` distinct in-range indices were seen.
        Ok(vectors.into_iter().flatten().collect())
    }

    fn transport_failure(&self, e: &reqwest::Error) -> Failure {
        let what = if e.is_timeout() {
            format!("timed out after {} ms", self.config.timeout_ms)
        } else if e.is_connect() {
            format!("cannot connect: {}", error_chain(e))
        } else {
            error_chain(e)
        };
        Failure::Retryable {
            kind: RetryKind::Transport,
            message: format!("request to {} failed: {what}", self.endpoint),
        }
    }
}

impl Embedder for OpenAiEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> &crate::EmbedderIdentity {
        &self.identity
    }

    fn dimensions(&self) -> usize {
        self.config.dimensions
    }

    fn max_input_tokens(&self) -> usize {
        self.config.max_input_tokens
    }

    /// A conservative estimate: see the [module docs](self#token-counts).
    fn count_tokens(&self, text: &str) -> usize {
        estimate_tokens(text)
    }

    fn batch_size(&self) -> usize {
        self.config.max_batch
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.embed_texts(texts).await;
            record_call("openai", started, &result);
            let open = f64::from(u8::from(self.breaker_state() != BreakerState::Closed));
            metrics::gauge!("docket_embed_breaker_open", "provider" => "openai").set(open);
            result
        })
    }

    /// `Err(wait)` while the breaker is open or the provider has asked (with a `429`) for
    /// more than a few seconds' rest.
    fn ready(&self) -> Result<(), Duration> {
        let now = Instant::now();
        lock(&self.breaker).ready(now)?;
        match lock(&self.limiter).blocked_for(now) {
            Some(wait) if wait > MAX_INLINE_RATE_LIMIT_WAIT => Err(wait),
            _ => Ok(()),
        }
    }
}

/// Records one finished [`Embedder::embed`] call of `provider`: its outcome and how long it
/// took.
pub(crate) fn record_call<T>(
    provider: &'static str,
    started: Instant,
    result: &Result<T, EmbedError>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(EmbedError::Unavailable { .. }) => "unavailable",
        Err(EmbedError::Transient(_)) => "transient",
        Err(EmbedError::Permanent(_)) => "permanent",
    };
    metrics::counter!(
        "docket_embed_requests_total",
        "provider" => provider,
        "outcome" => outcome,
    )
    .increment(1);
    metrics::histogram!("docket_embed_batch_duration_seconds", "provider" => provider)
        .record(started.elapsed().as_secs_f64());
}

enum Failure {
    Permanent(String),
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    Retryable {
        kind: RetryKind,
        message: String,
    },
}

enum RetryKind {
    Server,
    Transport,
    Malformed,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address nothing listens on: connecting fails at once.
    fn dead_endpoint() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}/v1")
    }

    #[tokio::test]
    async fn an_outage_is_unavailable_once_the_breaker_opens() {
        let cooldown = Duration::from_millis(300);
        let e = OpenAiEmbedder::new(OpenAiConfig {
            max_retries: 0,
            breaker_threshold: 2,
            breaker_cooldown_ms: cooldown.as_millis() as u64,
            ..OpenAiConfig::new(dead_endpoint(), "m", 4)
        })
        .unwrap();
        let texts = vec!["x".to_owned()];
        let unavailable_for_a_cooldown = |r: Result<Vec<Vec<f32>>, EmbedError>| match r {
            Err(EmbedError::Unavailable { retry_after, .. }) => {
                retry_after > cooldown / 2 && retry_after <= cooldown
            }
            _ => false,
        };

        // Below the threshold: an ordinary transient failure, worth another attempt.
        let r = e.embed(&texts).await;
        assert!(matches!(r, Err(EmbedError::Transient(_))), "{r:?}");
        assert_eq!(e.breaker_state(), BreakerState::Closed);
        // The failure that opens the breaker: the provider is down, hold the work back.
        let r = e.embed(&texts).await;
        assert!(unavailable_for_a_cooldown(r.clone()), "{r:?}");
        assert_eq!(e.breaker_state(), BreakerState::Open);
        // Open: refused without sending.
        assert!(matches!(
            e.embed(&texts).await,
            Err(EmbedError::Unavailable { .. })
        ));
        assert_eq!(e.stats().requests, 2);

        // A failed half-open trial: down for another cooldown.
        tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
        let r = e.embed(&texts).await;
        assert!(unavailable_for_a_cooldown(r.clone()), "{r:?}");
        assert_eq!(e.breaker_state(), BreakerState::Open);
        assert_eq!((e.stats().requests, e.stats().breaker_opens), (3, 2));
    }

    #[tokio::test]
    async fn a_call_waiting_for_its_slot_honours_a_pause_asked_of_another() {
        use axum::http::{StatusCode as Status, header};
        use axum::response::IntoResponse;
        use std::sync::Arc;

        // Answers the first request with `429`, `Retry-After: 1`, and every other with a
        // vector; records when each arrived.
        let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let seen = arrivals.clone();
        let app = axum::Router::new().route(
            "/v1/embeddings",
            axum::routing::post(move || {
                let seen = seen.clone();
                async move {
                    let first = {
                        let mut seen = lock(&seen);
                        seen.push(Instant::now());
                        seen.len() == 1
                    };
                    if first {
                        (
                            Status::TOO_MANY_REQUESTS,
                            [(header::RETRY_AFTER, "1")],
                            "{}",
                        )
                            .into_response()
                    } else {
                        (
                            Status::OK,
                            [(header::CONTENT_TYPE, "application/json")],
                            r#"{"data":[{"embedding":[1.0,0.0,0.0,0.0],"index":0}]}"#,
                        )
                            .into_response()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        // Requests 200 ms apart: the second call waits for its slot while the first is told
        // to pause for a second.
        let e = OpenAiEmbedder::new(OpenAiConfig {
            requests_per_minute: Some(300),
            ..OpenAiConfig::new(format!("http://{addr}/v1"), "m", 4)
        })
        .unwrap();
        let (a, b) = (vec!["a".to_owned()], vec!["b".to_owned()]);
        let (ra, rb) = tokio::join!(e.embed(&a), e.embed(&b));
        assert!(ra.is_ok() && rb.is_ok(), "{ra:?} {rb:?}");
        let arrivals = lock(&arrivals).clone();
        assert_eq!(arrivals.len(), 3);
        for &at in &arrivals[1..] {
            assert!(
                at - arrivals[0] >= Duration::from_secs(1),
                "a request came {:?} after a 429 asking for 1 s",
                at - arrivals[0]
            );
        }
    }
}
