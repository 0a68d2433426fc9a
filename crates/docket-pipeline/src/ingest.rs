//! Documents announced by a storage service: "object created" events in the shapes that
//! Supabase Storage database webhooks and S3 event notifications (and S3-compatible stores
//! such as MinIO) send.
//!
//! An event is verified (Standard Webhooks: HMAC-SHA256 over `"{id}.{timestamp}.{body}"`,
//! with a timestamp tolerance), read, and turned into one durable `docket.ingest_object` job
//! per object; the webhook is answered at once. The job fetches the object from the
//! configured object URL (through the SSRF-guarded [`Fetcher`]) and submits it as a
//! document, retrying with backoff while the store is unreachable.
//!
//! The same event delivered twice makes one document: while the first job lives, the second
//! finds it by its unique key (`storage:<bucket>/<key>@<etag>`) and is not enqueued; after it
//! finished, the second fetch brings identical bytes, and identical bytes find the existing
//! document.

use std::collections::BTreeMap;
use std::time::Duration;

use docket_core::{DocumentSource, Driver};
use docket_notify::{VerifyError, WebhookHeaders, WebhookSigner};
use docket_queue::{InsertOpts, JobArgs, JobContext, JobError, Worker, Workers};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fetch::{FetchError, Fetcher};
use crate::{NewDocument, Pipeline, PipelineError};

/// The storage webhook's configuration.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageWebhookConfig {
    /// The signing secret shared with the sender (`whsec_<base64>` or raw).
    pub secret: String,
    /// How far a `webhook-timestamp` may be from now, in seconds. Default 300.
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// Where an announced object is fetched from: `{bucket}` and `{key}` are replaced by the
    /// event's (each path segment of the key percent-encoded), e.g.
    /// `https://<project>.supabase.co/storage/v1/object/{bucket}/{key}`.
    pub object_url: String,
    /// Headers sent with each fetch, e.g. `Authorization = "Bearer <service key>"`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Priority of the documents' jobs (user uploads through a storage bucket: 5).
    #[serde(default = "default_priority")]
    pub priority: i16,
    /// How long after an event its object is first fetched, milliseconds: storage may
    /// announce an object a moment before it answers for it. Default 2000.
    #[serde(default = "default_start_delay_ms")]
    pub start_delay_ms: u64,
    /// For how long after the event an object that answers `404` is taken for not ready yet
    /// and fetched again (a few tries, each a little later), seconds; after that a `404`
    /// fails the job with the reason. Default 60.
    #[serde(default = "default_not_ready_secs")]
    pub not_ready_secs: u64,
}

impl std::fmt::Debug for StorageWebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageWebhookConfig")
            .field("secret", &"<secret>")
            .field("tolerance_secs", &self.tolerance_secs)
            .field("object_url", &self.object_url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("priority", &self.priority)
            .field("start_delay_ms", &self.start_delay_ms)
            .field("not_ready_secs", &self.not_ready_secs)
            .finish()
    }
}

impl StorageWebhookConfig {
    /// Checks the secret, the object URL template, the headers and the priority.
    pub fn validate(&self) -> Result<(), String> {
        WebhookSigner::new(&self.secret).map_err(|e| format!("storage_webhook.secret: {e}"))?;
        if !self.object_url.contains("{key}") {
            return Err(format!(
                "storage_webhook.object_url {:?} must contain {{key}}",
                self.object_url
            ));
        }
        let probe = self
            .object_url
            .replace("{bucket}", "b")
            .replace("{key}", "k");
        if !(probe.starts_with("http://") || probe.starts_with("https://")) {
            return Err(format!(
                "storage_webhook.object_url {:?} must be an http(s) URL",
                self.object_url
            ));
        }
        for (k, v) in &self.headers {
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("storage_webhook.headers {k:?}: {e}"))?;
            reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| format!("storage_webhook.headers {k:?}: {e}"))?;
        }
        if !(docket_core::PRIORITY_MIN..=docket_core::PRIORITY_MAX).contains(&self.priority) {
            return Err("storage_webhook.priority must be between 0 and 10".into());
        }
        Ok(())
    }
}

fn default_tolerance() -> u64 {
    300
}

fn default_priority() -> i16 {
    5
}

fn default_start_delay_ms() -> u64 {
    2000
}

fn default_not_ready_secs() -> u64 {
    60
}

/// The wait before fetching a not-ready object again: twice the start delay on the first
/// `404`, doubling, at least a second and at most 30 s, never past the end of the window.
fn not_ready_wait(start_delay: Duration, tries: u32, left: Duration) -> Duration {
    let base = start_delay.max(Duration::from_secs(1));
    let wait = base.saturating_mul(2u32.saturating_pow(tries.min(8)));
    wait.min(Duration::from_secs(30))
        .min(left.max(Duration::from_millis(100)))
}

/// One object an event announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCreated {
    /// The bucket.
    pub bucket: String,
    /// The object's key (its path in the bucket), decoded.
    pub key: String,
    /// Its entity tag or version, when the event carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Its size in bytes, when the event carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Its media type, when the event carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// What a storage event announced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageEvent {
    /// Objects created.
    pub created: Vec<ObjectCreated>,
    /// Records that were not object creations (updates, deletions, test events).
    pub ignored: usize,
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The signature or timestamp did not verify.
    #[error("webhook signature: {0}")]
    Signature(#[from] VerifyError),
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    Malformed(String),
    /// JSON of neither known shape.
    #[error("{0}")]
    Unrecognised(String),
    /// The jobs could not be enqueued.
    #[error(transparent)]
    Db(#[from] docket_core::Error),
}

/// Reads a Supabase Storage or S3 event notification.
pub fn parse_event(body: &[u8]) -> Result<StorageEvent, WebhookError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if let Some(records) = v.get("Records") {
        let records = records.as_array().ok_or_else(|| {
            WebhookError::Unrecognised("an S3 event's Records must be an array".into())
        })?;
        let mut event = StorageEvent::default();
        for (i, r) in records.iter().enumerate() {
            let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
            // "ObjectCreated:Put", or "s3:ObjectCreated:Put" as MinIO spells it.
            if !name.trim_start_matches("s3:").starts_with("ObjectCreated:") {
                event.ignored += 1;
                continue;
            }
            let s3 = r.get("s3");
            let bucket = s3
                .and_then(|s| s.pointer("/bucket/name"))
                .and_then(Value::as_str);
            let key = s3
                .and_then(|s| s.pointer("/object/key"))
                .and_then(Value::as_str);
            let (Some(bucket), Some(key)) = (bucket, key) else {
                return Err(WebhookError::Unrecognised(format!(
                    "S3 record {i} has no s3.bucket.name or s3.object.key"
                )));
            };
            let object = s3.and_then(|s| s.get("object"));
            let etag = object
                .and_then(|o| o.get("versionId").or_else(|| o.get("eTag")))
                .and_then(Value::as_str)
                .map(|s| s.trim_matches('"').to_owned());
            event.created.push(ObjectCreated {
                bucket: bucket.to_owned(),
                key: s3_key(key),
                etag,
                size: object.and_then(|o| o.get("size")).and_then(Value::as_u64),
                content_type: object
                    .and_then(|o| o.get("contentType"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
        return Ok(event);
    }
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(StorageEvent {
            created: Vec::new(),
            ignored: 1,
        });
    }
    if let Some(kind) = v.get("type").and_then(Value::as_str) {
        let table = v.get("table").and_then(Value::as_str).unwrap_or("");
        let schema = v.get("schema").and_then(Value::as_str).unwrap_or("");
        if table != "objects" || schema != "storage" {
            return Err(WebhookError::Unrecognised(format!(
                "a database webhook for {schema}.{table}; expected storage.objects"
            )));
        }
        if kind != "INSERT" {
            return Ok(StorageEvent {
                created: Vec::new(),
                ignored: 1,
            });
        }
        let record = v.get("record").ok_or_else(|| {
            WebhookError::Unrecognised("a storage.objects INSERT without a record".into())
        })?;
        let bucket = record.get("bucket_id").and_then(Value::as_str);
        let key = record.get("name").and_then(Value::as_str);
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(WebhookError::Unrecognised(
                "the record has no bucket_id or name".into(),
            ));
        };
        let meta = record.get("metadata");
        let text = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
        return Ok(StorageEvent {
            created: vec![ObjectCreated {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                etag: text("eTag")
                    .map(|s| s.trim_matches('"').to_owned())
                    .or_else(|| record.get("id").and_then(Value::as_str).map(str::to_owned)),
                size: meta.and_then(|m| m.get("size")).and_then(Value::as_u64),
                content_type: text("mimetype").map(str::to_owned),
            }],
            ignored: 0,
        });
    }
    Err(WebhookError::Unrecognised(
        "neither an S3 event notification (Records) nor a Supabase storage.objects webhook (type, table, record)"
            .into(),
    ))
}

/// S3 event keys are form-encoded: `+` is a space, `%XX` a byte.
fn s3_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) =>
            {
                out.push(h * 16 + l);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-encodes each path segment of `s`, keeping the `/` between them.
fn encode_path(s: &str) -> String {
    s.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The ingest job's arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestArgs {
    /// The announced object.
    pub object: ObjectCreated,
}

impl JobArgs for IngestArgs {
    const KIND: &'static str = "docket.ingest_object";
}

/// One object accepted from an event.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The ingest job.
    pub job_id: Option<i64>,
    /// Whether a live job already held this object (a redelivered event).
    pub duplicate: bool,
}

/// Verifies storage events, enqueues their objects, and runs the jobs that fetch them.
#[derive(Clone)]
pub struct StorageIngest<D: Driver> {
    pipeline: Pipeline<D>,
    fetcher: Fetcher,
    signer: WebhookSigner,
    config: StorageWebhookConfig,
}

impl<D: Driver> std::fmt::Debug for StorageIngest<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageIngest")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<D: Driver> StorageIngest<D> {
    /// Checks the configuration (secret, object URL template, headers).
    pub fn new(
        pipeline: Pipeline<D>,
        fetcher: Fetcher,
        config: StorageWebhookConfig,
    ) -> Result<Self, String> {
        config.validate()?;
        let signer = WebhookSigner::new(&config.secret)
            .map_err(|e| format!("storage_webhook.secret: {e}"))?;
        Ok(Self {
            pipeline,
            fetcher,
            signer,
            config,
        })
    }

    /// Registers the ingest job's handler.
    pub fn register(&self, workers: &mut Workers<D>) {
        workers.register(IngestWorker(self.clone()));
    }

    /// Verifies a delivery and enqueues one ingest job per created object.
    pub async fn receive(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
    ) -> Result<(Vec<Accepted>, usize), WebhookError> {
        let now = chrono::Utc::now().timestamp();
        self.signer.verify(
            headers,
            body,
            now,
            Duration::from_secs(self.config.tolerance_secs),
        )?;
        let event = parse_event(body)?;
        let client = docket_queue::Client::new(self.pipeline.driver().clone());
        let queue = self.pipeline.inner.stages.queue.clone();
        let mut accepted = Vec::with_capacity(event.created.len());
        for object in event.created {
            let key = format!(
                "storage:{}/{}@{}",
                object.bucket,
                object.key,
                object.etag.as_deref().unwrap_or("-")
            );
            let opts = InsertOpts {
                queue: Some(queue.clone()),
                priority: Some(self.config.priority),
                unique_key: Some(key),
                run_at: Some(
                    chrono::Utc::now()
                        + chrono::Duration::milliseconds(self.config.start_delay_ms as i64),
                ),
                ..InsertOpts::default()
            };
            let res = client
                .insert(
                    &IngestArgs {
                        object: object.clone(),
                    },
                    opts,
                )
                .await?;
            tracing::info!(
                bucket = %object.bucket,
                key = %object.key,
                job_id = res.id,
                duplicate = res.duplicate,
                "storage object announced"
            );
            accepted.push(Accepted {
                bucket: object.bucket,
                key: object.key,
                job_id: Some(res.id),
                duplicate: res.duplicate,
            });
        }
        Ok((accepted, event.ignored))
    }

    /// The URL an object is fetched from.
    pub fn object_url(&self, object: &ObjectCreated) -> String {
        self.config
            .object_url
            .replace("{bucket}", &encode_path(&object.bucket))
            .replace("{key}", &encode_path(&object.key))
    }

    /// Fetches and submits an object. `announced` is when its event was accepted (the job's
    /// creation) and `not_ready` how many `404`s it has answered so far.
    async fn ingest(
        &self,
        object: &ObjectCreated,
        announced: chrono::DateTime<chrono::Utc>,
        not_ready: u32,
    ) -> Result<(), JobError> {
        let url = self.object_url(object);
        let headers: Vec<(String, String)> = self
            .config
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let fetched = self.fetcher.get(&url, &headers).await.map_err(|e| {
            let msg = format!("fetching {}/{}: {e}", object.bucket, object.key);
            let window = Duration::from_secs(self.config.not_ready_secs);
            let since = (chrono::Utc::now() - announced)
                .to_std()
                .unwrap_or_default();
            match e {
                // Announced but not there yet: held back (no attempt spent) within the window.
                FetchError::Status(404) if since < window => JobError::snooze(
                    format!(
                        "{msg}: not ready yet ({} s after the event)",
                        since.as_secs()
                    ),
                    not_ready_wait(
                        Duration::from_millis(self.config.start_delay_ms),
                        not_ready,
                        window - since,
                    ),
                ),
                FetchError::Status(404) => JobError::permanent(format!(
                    "{msg}: still not found {} s after the event",
                    since.as_secs()
                )),
                e if e.is_transient() => JobError::retryable(msg),
                _ => JobError::permanent(msg),
            }
        })?;
        let filename = object
            .key
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let sub = self
            .pipeline
            .submit(NewDocument {
                bytes: fetched.bytes,
                filename,
                content_type: object.content_type.clone().or(fetched.content_type),
                source: Some(DocumentSource::Webhook),
                callback_url: None,
                metadata: Some(serde_json::json!({
                    "storage": { "bucket": object.bucket, "key": object.key, "etag": object.etag }
                })),
                priority: self.config.priority,
                reprocess: false,
            })
            .await
            .map_err(|e| match e {
                PipelineError::TooLarge { .. } | PipelineError::Empty => {
                    JobError::permanent(format!("{}/{}: {e}", object.bucket, object.key))
                }
                other => JobError::retryable(other),
            })?;
        tracing::info!(
            document_id = %sub.document.id,
            created = sub.created,
            "storage object ingested"
        );
        Ok(())
    }
}

struct IngestWorker<D: Driver>(StorageIngest<D>);

impl<D: Driver> Worker<D> for IngestWorker<D> {
    type Args = IngestArgs;

    async fn work(&self, ctx: JobContext<D>, args: IngestArgs) -> Result<(), JobError> {
        let job = ctx.job();
        // Each 404 within the window was a snooze, recorded as a released attempt with its
        // reason: count them for the next wait.
        let not_ready = {
            use docket_core::QueueExecutor as _;
            let mut c = ctx.driver().conn().await.map_err(JobError::retryable)?;
            c.job_attempt_list(job.id)
                .await
                .map_err(JobError::retryable)?
                .iter()
                .filter(|a| {
                    a.error
                        .as_deref()
                        .is_some_and(|e| e.contains("not ready yet"))
                })
                .count() as u32
        };
        self.0.ingest(&args.object, job.created_at, not_ready).await
    }

    fn timeout(&self) -> Duration {
        // The fetch is bounded by its own limit; the submit takes a moment more.
        self.0.fetcher.timeout() + Duration::from_secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_notifications() {
        let body = br#"{"Records":[
            {"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
             "s3":{"bucket":{"name":"docs"},"object":{"key":"reports/Q3+summary%282%29.pdf","size":1024,"eTag":"\"abc123\""}}},
            {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"docs"},"object":{"key":"old.pdf"}}},
            {"eventName":"s3:ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"docs"},"object":{"key":"big.pdf","versionId":"v7"}}}
        ]}"#;
        let e = parse_event(body).unwrap();
        assert_eq!(e.ignored, 1);
        assert_eq!(
            e.created,
            vec![
                ObjectCreated {
                    bucket: "docs".into(),
                    key: "reports/Q3 summary(2).pdf".into(),
                    etag: Some("abc123".into()),
                    size: Some(1024),
                    content_type: None,
                },
                ObjectCreated {
                    bucket: "docs".into(),
                    key: "big.pdf".into(),
                    etag: Some("v7".into()),
                    size: None,
                    content_type: None,
                },
            ]
        );
        let test_event = br#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"docs"}"#;
        assert_eq!(parse_event(test_event).unwrap().ignored, 1);
    }

    #[test]
    fn supabase_database_webhooks() {
        let body = br#"{"type":"INSERT","table":"objects","schema":"storage",
            "record":{"id":"5f0c","bucket_id":"uploads","name":"user-1/notes.md",
                      "metadata":{"eTag":"\"e1\"","size":42,"mimetype":"text/markdown"}},
            "old_record":null}"#;
        let e = parse_event(body).unwrap();
        assert_eq!(
            e.created,
            vec![ObjectCreated {
                bucket: "uploads".into(),
                key: "user-1/notes.md".into(),
                etag: Some("e1".into()),
                size: Some(42),
                content_type: Some("text/markdown".into()),
            }]
        );
        let delete = br#"{"type":"DELETE","table":"objects","schema":"storage","record":null,"old_record":{"id":"1"}}"#;
        assert_eq!(
            parse_event(delete).unwrap(),
            StorageEvent {
                created: vec![],
                ignored: 1
            }
        );
        let other = br#"{"type":"INSERT","table":"users","schema":"public","record":{}}"#;
        assert!(matches!(
            parse_event(other),
            Err(WebhookError::Unrecognised(_))
        ));
    }

    #[test]
    fn bad_bodies() {
        assert!(matches!(
            parse_event(b"{not json"),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            parse_event(b"[1,2]"),
            Err(WebhookError::Unrecognised(_))
        ));
        assert!(matches!(
            parse_event(br#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{}}]}"#),
            Err(WebhookError::Unrecognised(_))
        ));
        assert!(matches!(
            parse_event(br#"{"Records":{}}"#),
            Err(WebhookError::Unrecognised(_))
        ));
    }

    #[test]
    fn object_keys_are_encoded_per_segment() {
        assert_eq!(encode_path("a b/c?d#e/é"), "a%20b/c%3Fd%23e/%C3%A9");
        assert_eq!(s3_key("a%2"), "a%2");
        assert_eq!(s3_key("100%25+done"), "100% done");
    }
}
