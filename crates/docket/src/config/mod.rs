//! Configuration: a TOML file, overridden by `DOCKET_*` environment variables, overridden by
//! flags. Unknown keys are errors; every problem is reported at once.
//!
//! Environment variables name a key by its path, sections separated by a double underscore:
//! `DOCKET_DATABASE_URL` sets `database_url`, `DOCKET_WORKER__CONCURRENCY` sets
//! `worker.concurrency`. Values are read as TOML (`10`, `true`, `["a","b"]`), or as a plain
//! string when they do not parse.

use std::time::Duration;

use anyhow::bail;
use docket_embed::EmbedConfig;
use docket_pipeline::analytics::AnalyticsConfig;
use docket_pipeline::config::{ChunkConfig, ParseConfig, StagesConfig, StorageConfig};
use docket_pipeline::notify::NotifyConfig;
use docket_queue::QueueConfig;
use docket_queue::RuntimeConfig;
use docket_queue::maintenance::{CleanerConfig, MaintenanceConfig, RescuerConfig, SchedulerConfig};
use serde::{Deserialize, Serialize};

mod load;

/// The default database: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://docket.db";

/// Everything docket reads at start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://PATH` (default `sqlite://docket.db`) or `postgres://USER@HOST:PORT/DB`.
    pub database_url: String,
    /// Apply migrations at start of `serve` and `worker`. Default true.
    pub migrate_on_start: bool,
    /// Logging.
    pub log: LogConfig,
    /// The worker runtime.
    pub worker: WorkerConfig,
    /// Maintenance (run by the elected leader).
    pub maintenance: MaintenanceSection,
    /// PostgreSQL connection settings.
    pub postgres: PostgresConfig,
    /// Where original files are kept.
    pub storage: StorageConfig,
    /// The parse stage's bounds.
    pub parse: ParseConfig,
    /// Chunk sizes.
    pub chunk: ChunkConfig,
    /// The embedding provider (`provider = "hashing" | "local" | "openai"`) and what a change
    /// of it does.
    pub embed: EmbedSection,
    /// Webhooks and email.
    pub notify: NotifyConfig,
    /// How pipeline stages run.
    pub pipeline: StagesConfig,
    /// The HTTP API of `docket serve`.
    pub http: HttpConfig,
    /// Fetching documents by URL (and storage objects): the SSRF guard and its bounds.
    pub fetch: docket_pipeline::fetch::FetchConfig,
    /// The storage "object created" webhook (`POST /v1/webhooks/storage`); off when unset.
    pub storage_webhook: Option<docket_pipeline::ingest::StorageWebhookConfig>,
    /// The built-in alert rules and where their notices go.
    pub alerts: docket_pipeline::alerts::AlertsConfig,
}

/// `[embed]`: the provider's own keys (`provider = …` and its settings), and
/// `reembed_on_change`.
///
/// Without `provider`, the default is `local` with the all-MiniLM-L6-v2 model, used only when
/// its files are on disk already (`embed.model` is a folder holding them, or `docket models
/// pull` put them in the cache): the default never downloads anything. While they are not
/// there, `serve` and `worker` embed with `hashing` and say so (see
/// [`crate::pipeline::choose_embedder`]). Settings only `hashing` has (`embed.dimensions`)
/// choose `hashing` on their own.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedSection {
    /// The provider: the one `provider` names, else `local` with the default model (see
    /// `explicit`), or `hashing` when only its settings are given.
    pub provider: EmbedConfig,
    /// Whether the provider was chosen (`provider` set in the file, the environment or a
    /// flag, or settings only `hashing` has). When not, a `local` provider is used only if its
    /// files are already on disk, and stands aside for `hashing` (with a warning) otherwise.
    pub explicit: bool,
    /// At start, when documents have vectors another embedder made, enqueue their
    /// re-embedding (`docket reindex`). Default true.
    pub reembed_on_change: bool,
}

/// Keys of `[embed]` that only the `hashing` provider has: given without `provider`, they
/// choose it (as they did when `hashing` was the default).
const HASHING_ONLY_KEYS: [&str; 1] = ["dimensions"];

impl Default for EmbedSection {
    fn default() -> Self {
        Self {
            provider: EmbedConfig::Local(docket_embed::local::LocalConfig::default()),
            explicit: false,
            reembed_on_change: true,
        }
    }
}

impl Serialize for EmbedSection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut table = toml::Table::try_from(&self.provider).map_err(serde::ser::Error::custom)?;
        if !self.explicit {
            // Shown as given: without a provider (its settings load back as the default's).
            table.remove("provider");
        }
        table.insert(
            "reembed_on_change".into(),
            toml::Value::Boolean(self.reembed_on_change),
        );
        table.serialize(s)
    }
}

/// The provider's settings, read as its own settings type so that a problem names its key
/// (`embed.batch_size`), which reading through the `provider`-tagged enum loses. On error: the
/// key at fault and what is wrong.
fn provider_config(mut table: toml::Table) -> Result<EmbedConfig, (String, String)> {
    fn read<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, (String, String)> {
        serde_path_to_error::deserialize::<_, T>(table).map_err(|e| {
            let mut key = String::from("embed");
            for segment in e.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Map { key: k } => {
                        key.push('.');
                        key.push_str(k);
                    }
                    _ => break,
                }
            }
            let message = e.inner().message().trim().to_owned();
            if let Some(field) = load::unknown_field(&message)
                && !key.ends_with(&format!(".{field}"))
            {
                key.push('.');
                key.push_str(&field);
            }
            (key, message)
        })
    }
    let provider = match table.remove("provider") {
        Some(toml::Value::String(p)) => p,
        other => {
            let got = other.map_or_else(|| "nothing".to_owned(), |v| v.to_string());
            return Err((
                "embed.provider".into(),
                format!("must be a string (got {got})"),
            ));
        }
    };
    match provider.as_str() {
        "hashing" => read(table).map(EmbedConfig::Hashing),
        "local" => read(table).map(EmbedConfig::Local),
        "openai" => read(table).map(EmbedConfig::Openai),
        other => Err((
            "embed.provider".into(),
            format!("unknown provider {other:?}; one of hashing, local, openai"),
        )),
    }
}

impl<'de> Deserialize<'de> for EmbedSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let reembed_on_change = match table.remove("reembed_on_change") {
            None => true,
            Some(toml::Value::Boolean(b)) => b,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "embed.reembed_on_change must be true or false (got {other})"
                )));
            }
        };
        // Without `provider`: settings only `hashing` has choose it; any others are the
        // default provider's (`local`).
        let explicit = if table.contains_key("provider") {
            true
        } else if HASHING_ONLY_KEYS.iter().any(|k| table.contains_key(*k)) {
            table.insert("provider".into(), toml::Value::String("hashing".into()));
            true
        } else {
            table.insert("provider".into(), toml::Value::String("local".into()));
            false
        };
        let hint = if explicit {
            ""
        } else {
            " (without embed.provider, these are the settings of the default provider, local; \
             set embed.provider to use another)"
        };
        let provider = provider_config(table)
            .map_err(|(key, message)| D::Error::custom(format!("{key}: {message}{hint}")))?;
        Ok(Self {
            provider,
            explicit,
            reembed_on_change,
        })
    }
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address `docket serve` listens on (the API, the dashboard, `/metrics`), and `docket
    /// worker` (`/metrics`, `/healthz`, `/readyz`): give each process on one host its own.
    /// Default `127.0.0.1:8080`.
    pub listen: String,
    /// Accepted API keys (`{ name, sha256, scopes }`); with none, the API is open and may
    /// listen on loopback only.
    pub keys: Vec<docket_http::auth::ApiKey>,
    /// Failed authentications (a wrong bearer key, a wrong key in the dashboard's login form)
    /// allowed per client address within `auth_failure_window_secs`; past it, that address
    /// gets `429` until the window ends. 0: no limit. Default 10.
    pub auth_failure_limit: u32,
    /// The window of `auth_failure_limit`, in seconds. Default 60.
    pub auth_failure_window_secs: u64,
    /// Behind a proxy or load balancer, the header that carries the client's address (its
    /// last entry is used: the one the proxy added), e.g. `x-forwarded-for`. Unset: the
    /// connection's address.
    pub client_ip_header: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            keys: Vec::new(),
            auth_failure_limit: 10,
            auth_failure_window_secs: 60,
            client_ip_header: None,
        }
    }
}

impl HttpConfig {
    /// The configured keys, with the failure limit; `None` without keys.
    pub fn api_keys(&self) -> anyhow::Result<Option<docket_http::auth::ApiKeys>> {
        let keys = docket_http::auth::ApiKeys::new(&self.keys).map_err(anyhow::Error::msg)?;
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(keys.with_failure_limit(
            docket_http::auth::FailureLimit::new(
                self.auth_failure_limit,
                std::time::Duration::from_secs(self.auth_failure_window_secs.max(1)),
                self.client_ip_header.clone(),
            ),
        )))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            migrate_on_start: true,
            log: LogConfig::default(),
            worker: WorkerConfig::default(),
            maintenance: MaintenanceSection::default(),
            postgres: PostgresConfig::default(),
            storage: StorageConfig::default(),
            parse: ParseConfig::default(),
            chunk: ChunkConfig::default(),
            embed: EmbedSection::default(),
            notify: NotifyConfig::default(),
            pipeline: StagesConfig::default(),
            http: HttpConfig::default(),
            fetch: Default::default(),
            storage_webhook: None,
            alerts: Default::default(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (default) or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` (default) or `docket_queue=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".to_owned(),
            level: "info,sqlx=warn".to_owned(),
        }
    }
}

/// `[worker]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Run workers in this process (and take part in maintenance). Default true; `false` (or
    /// `docket serve --no-workers`) makes `serve` an API and dashboard only, with `docket
    /// worker` processes doing the work.
    pub enabled: bool,
    /// Queues to work. Default `["default"]`.
    pub queues: Vec<String>,
    /// Jobs running at once per queue in this process. Default 100.
    pub concurrency: usize,
    /// Per-queue overrides of `concurrency`, e.g. `{ embed = 4 }`.
    pub queue_concurrency: std::collections::BTreeMap<String, usize>,
    /// Idle polling interval, milliseconds (the fallback when LISTEN is off). Default 1000.
    pub poll_interval_ms: u64,
    /// Heartbeat interval, milliseconds. Default 5000.
    pub heartbeat_interval_ms: u64,
    /// Most jobs claimed per statement. Default 1000.
    pub claim_batch: usize,
    /// Most completions written per statement. Default 2000.
    pub complete_batch: usize,
    /// Seconds running jobs get to finish on shutdown. Default 30.
    pub shutdown_grace_secs: u64,
    /// Milliseconds a running job whose claim ended elsewhere (cancelled, retried, rescued)
    /// gets to stop after its cancellation token fires, before it is dropped. Default 10000.
    pub cancel_grace_ms: u64,
    /// Worker id; default `<host>-<pid>-<random>`.
    pub id: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let r = RuntimeConfig::default();
        Self {
            enabled: true,
            queues: vec![docket_core::DEFAULT_QUEUE.to_owned()],
            concurrency: 100,
            queue_concurrency: Default::default(),
            poll_interval_ms: r.poll_interval.as_millis() as u64,
            heartbeat_interval_ms: r.heartbeat_interval.as_millis() as u64,
            claim_batch: r.claim_batch,
            complete_batch: r.complete_batch,
            shutdown_grace_secs: r.shutdown_grace.as_secs(),
            cancel_grace_ms: r.cancel_grace.as_millis() as u64,
            id: None,
        }
    }
}

/// `[maintenance]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceSection {
    /// Take part in leader election. Default true.
    pub enabled: bool,
    /// Leader term, milliseconds. Default 15000.
    pub leader_ttl_ms: u64,
    /// This process's worker lease, milliseconds, written with each heartbeat (also when
    /// `enabled` is false): once it lapses unrenewed the worker is dead, shown so, and its jobs
    /// are rescued. Default 30000.
    pub lease_ms: u64,
    /// Rescuer interval, milliseconds. Default 5000.
    pub rescue_interval_ms: u64,
    /// A job whose worker died this many times in a row while running it is dead-lettered.
    /// Default 3.
    pub max_rescues: i32,
    /// Completed jobs kept, days. Default 7.
    pub completed_retention_days: f64,
    /// Failed jobs kept, days. Default 30.
    pub failed_retention_days: f64,
    /// Cleanup schedule. Default `0 2 * * *`.
    pub cleanup_cron: String,
    /// Its time zone. Default `UTC`.
    pub cleanup_timezone: String,
    /// Queue of the cleanup job; some worker must work it. Default `default`.
    pub cleanup_queue: String,
    /// Hourly attempt rollups and failure reasons kept, days: long after the job rows are
    /// cleaned. Default 90.
    pub analytics_retention_days: f64,
}

impl Default for MaintenanceSection {
    fn default() -> Self {
        let r = RescuerConfig::default();
        let c = CleanerConfig::default();
        let s = SchedulerConfig::default();
        Self {
            enabled: true,
            leader_ttl_ms: RuntimeConfig::default().leader_ttl.as_millis() as u64,
            lease_ms: RuntimeConfig::default().lease.as_millis() as u64,
            rescue_interval_ms: r.interval.as_millis() as u64,
            max_rescues: r.max_rescues,
            completed_retention_days: c.completed_retention.as_secs_f64() / 86_400.0,
            failed_retention_days: c.failed_retention.as_secs_f64() / 86_400.0,
            cleanup_cron: s.cleanup_expression,
            cleanup_timezone: s.cleanup_timezone,
            cleanup_queue: s.cleanup_queue,
            analytics_retention_days: AnalyticsConfig::default().retention.as_secs_f64() / 86_400.0,
        }
    }
}

/// `[postgres]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Pool size. Default 10.
    pub max_connections: u32,
    /// Receive wake-ups by LISTEN; turn off behind transaction-mode poolers. Default true.
    pub listen: bool,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            listen: true,
        }
    }
}

impl Config {
    /// Checks values; reports every problem at once.
    pub fn validate(&self) -> anyhow::Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("invalid configuration:\n  - {}", problems.join("\n  - "))
        }
    }

    /// What is wrong with these values, one line per problem.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            problems.push(format!(
                "database_url must start with sqlite: or postgres:// (got {:?})",
                mask_url(&self.database_url)
            ));
        }
        if let Err(e) = self.alerts.resolve() {
            problems.extend(e.split("; ").map(str::to_owned));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problems.push(format!(
                "log.format must be text or json (got {:?})",
                self.log.format
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            problems.push(format!("log.level {:?}: {e}", self.log.level));
        }
        let before = problems.len();
        self.worker_problems(&mut problems);
        // The runtime's own checks, where the keys' checks above found nothing.
        if problems.len() == before
            && let Err(e) = self
                .runtime()
                .and_then(|r| r.validate().map_err(Into::into))
        {
            problems.push(format!("worker: {e}"));
        }
        if let Err(e) = docket_queue::cron::CronExpr::parse(
            "maintenance.cleanup_cron",
            &self.maintenance.cleanup_cron,
            &self.maintenance.cleanup_timezone,
        ) {
            problems.push(e.to_string());
        }
        let (done, failed) = (
            self.maintenance.completed_retention_days,
            self.maintenance.failed_retention_days,
        );
        if !(done > 0.0 && failed >= done && failed <= 36_500.0) {
            problems.push(format!(
                "maintenance.completed_retention_days ({done}) must be positive, and \
                 maintenance.failed_retention_days ({failed}) at least as long and at most 36500"
            ));
        }
        let kept = self.maintenance.analytics_retention_days;
        if !(kept > 0.0 && kept <= 36_500.0) {
            problems.push(format!(
                "maintenance.analytics_retention_days ({kept}) must be positive and at most 36500"
            ));
        }
        if let Err(e) = self.storage_check() {
            problems.push(e.to_string());
        }
        if self.chunk.max_tokens == 0 || self.chunk.overlap_tokens >= self.chunk.max_tokens {
            problems.push(format!(
                "chunk.overlap_tokens ({}) must be below chunk.max_tokens ({}), which must be \
                 above 0",
                self.chunk.overlap_tokens, self.chunk.max_tokens
            ));
        }
        if self.parse.timeout_ms == 0 || self.parse.memory_mb < 64 {
            problems
                .push("parse.timeout_ms must be positive and parse.memory_mb at least 64".into());
        }
        if self.pipeline.max_attempts < 1 || self.pipeline.embed_page == 0 {
            problems.push("pipeline.max_attempts and pipeline.embed_page must be positive".into());
        }
        if self.pipeline.backoff_ms.is_empty() {
            problems.push("pipeline.backoff_ms needs at least one step, e.g. [60000]".into());
        }
        if let Err(e) = docket_notify::WebhookSender::new(&self.notify.webhook) {
            problems.push(format!("notify.webhook: {e}"));
        } else if let Err(e) = docket_pipeline::notify::Notifier::new(&self.notify) {
            problems.push(format!("notify.email: {e}"));
        }
        match self.http.listen.parse::<std::net::SocketAddr>() {
            Err(_) => problems.push(format!(
                "http.listen must be an address and port such as 127.0.0.1:8080 (got {:?})",
                self.http.listen
            )),
            Ok(addr) if !addr.ip().is_loopback() && self.http.keys.is_empty() => {
                problems.push(format!(
                    "http.listen {addr} is reachable from other hosts, so http.keys must hold \
                     at least one API key"
                ))
            }
            Ok(_) => {}
        }
        if let Err(e) = docket_http::auth::ApiKeys::new(&self.http.keys) {
            problems.push(format!("http.keys: {e}"));
        }
        if self.fetch.timeout_secs == 0 || self.fetch.max_redirects > 20 {
            problems.push(
                "fetch.timeout_secs must be positive and fetch.max_redirects at most 20".into(),
            );
        }
        if let Some(Err(e)) = self.storage_webhook.as_ref().map(|w| w.validate()) {
            problems.push(e);
        }
        if self.postgres.max_connections < 2 {
            problems.push("postgres.max_connections must be at least 2".to_owned());
        }
        problems
    }

    /// The worker and lease settings, each named by its key.
    fn worker_problems(&self, problems: &mut Vec<String>) {
        let (w, m) = (&self.worker, &self.maintenance);
        let mut check = |ok: bool, problem: String| {
            if !ok {
                problems.push(problem);
            }
        };
        check(
            !w.queues.is_empty(),
            "worker.queues must name at least one queue".into(),
        );
        for q in &w.queues {
            check(
                !q.is_empty() && q != docket_core::ALL_QUEUES,
                format!("worker.queues: {q:?} is not a queue name"),
            );
        }
        check(
            w.concurrency >= 1,
            format!(
                "worker.concurrency must be at least 1 (got {})",
                w.concurrency
            ),
        );
        for (q, n) in &w.queue_concurrency {
            check(
                *n >= 1,
                format!("worker.queue_concurrency.{q} must be at least 1 (got {n})"),
            );
        }
        check(
            w.poll_interval_ms >= 1,
            "worker.poll_interval_ms must be positive".into(),
        );
        check(
            w.heartbeat_interval_ms >= 1 && w.heartbeat_interval_ms * 2 <= m.lease_ms,
            format!(
                "worker.heartbeat_interval_ms ({}) must be positive and at most half of \
                 maintenance.lease_ms ({})",
                w.heartbeat_interval_ms, m.lease_ms
            ),
        );
        check(
            (1..=86_400_000).contains(&m.lease_ms),
            format!(
                "maintenance.lease_ms must be between 1 and 86400000 (got {})",
                m.lease_ms
            ),
        );
        check(
            m.max_rescues >= 1,
            format!(
                "maintenance.max_rescues must be at least 1 (got {})",
                m.max_rescues
            ),
        );
        check(
            w.claim_batch >= 1 && w.complete_batch >= 1,
            "worker.claim_batch and worker.complete_batch must be positive".into(),
        );
        check(
            m.leader_ttl_ms >= 300,
            format!(
                "maintenance.leader_ttl_ms must be at least 300 (got {})",
                m.leader_ttl_ms
            ),
        );
    }

    /// The runtime settings these values describe.
    pub fn runtime(&self) -> anyhow::Result<RuntimeConfig> {
        let w = &self.worker;
        let m = &self.maintenance;
        let ms = Duration::from_millis;
        let days = |d: f64| Duration::try_from_secs_f64(d * 86_400.0).unwrap_or_default();
        Ok(RuntimeConfig {
            worker_id: w.id.clone(),
            queues: w
                .queues
                .iter()
                .map(|q| QueueConfig {
                    name: q.clone(),
                    concurrency: w.queue_concurrency.get(q).copied().unwrap_or(w.concurrency),
                })
                .collect(),
            poll_interval: ms(w.poll_interval_ms),
            heartbeat_interval: ms(w.heartbeat_interval_ms),
            lease: ms(m.lease_ms),
            claim_batch: w.claim_batch,
            complete_batch: w.complete_batch,
            shutdown_grace: Duration::from_secs(w.shutdown_grace_secs),
            maintenance: m.enabled.then(|| MaintenanceConfig {
                rescuer: RescuerConfig {
                    interval: ms(m.rescue_interval_ms),
                    max_rescues: m.max_rescues,
                    ..Default::default()
                },
                cleaner: CleanerConfig {
                    completed_retention: days(m.completed_retention_days),
                    failed_retention: days(m.failed_retention_days),
                    ..Default::default()
                },
                scheduler: SchedulerConfig {
                    cleanup_expression: m.cleanup_cron.clone(),
                    cleanup_timezone: m.cleanup_timezone.clone(),
                    cleanup_queue: m.cleanup_queue.clone(),
                    builtin: vec![
                        docket_pipeline::stuck::sweep_schedule(&self.pipeline.queue),
                        docket_pipeline::analytics::analytics_schedule(&self.pipeline.queue),
                        docket_pipeline::orphans::orphans_schedule(&self.pipeline.queue),
                    ],
                    ..Default::default()
                },
            }),
            leader_ttl: ms(m.leader_ttl_ms),
            cancel_grace: ms(w.cancel_grace_ms),
        })
    }

    /// Whether `[storage]` names a store that can be opened (without reaching it or creating
    /// anything): a bad URL or missing credentials are found at start.
    fn storage_check(&self) -> Result<(), docket_pipeline::blob::BlobError> {
        docket_pipeline::blob::ObjectStoreBlobs::check_settings(&self.storage, |name| {
            std::env::var(name).ok()
        })
    }

    /// The analytics job's settings.
    pub fn analytics(&self) -> AnalyticsConfig {
        AnalyticsConfig {
            retention: Duration::from_secs_f64(
                self.maintenance
                    .analytics_retention_days
                    .clamp(0.0, 36_500.0)
                    * 86_400.0,
            ),
            ..Default::default()
        }
    }

    /// The configuration as TOML, with secrets (database password) masked.
    pub fn to_masked_toml(&self) -> String {
        let mut c = self.clone();
        c.database_url = mask_url(&c.database_url);
        let stars = |s: &mut Option<String>| {
            if s.is_some() {
                *s = Some("****".to_owned());
            }
        };
        stars(&mut c.storage.s3.secret_access_key);
        stars(&mut c.storage.s3.session_token);
        stars(&mut c.notify.webhook.secret);
        stars(&mut c.alerts.webhook.secret);
        if let Some(url) = &mut c.notify.email.smtp_url {
            *url = mask_url(url);
        }
        if let EmbedConfig::Openai(o) = &mut c.embed.provider {
            stars(&mut o.api_key);
        }
        if let Some(w) = &mut c.storage_webhook {
            w.secret = "****".to_owned();
            for v in w.headers.values_mut() {
                *v = "****".to_owned();
            }
        }
        toml::to_string_pretty(&c).unwrap_or_default()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
