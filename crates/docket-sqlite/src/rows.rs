//! Decoding rows into docket's vocabulary, and the storage encodings of times, JSON and UUIDs.

use chrono::{DateTime, Duration, Utc};
use docket_core::{
    AlertRow, AlertSilenceRow, AttemptErrorGroup, AttemptRollupRow, AuditRow, ChunkRow,
    ChunkVector, CronRun, CronSchedule, DocumentRow, DocumentText, Error, FailureReasonRow,
    JobActivityRow, JobAttempt, JobAttemptCountRow, JobRow, JobStatRow, LeaderRow, QueueRow,
    Result, SessionRow, StuckJobRow, WorkerRow, decode_vector,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

/// A time as stored: microseconds since the Unix epoch, UTC.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// `now`, or the process clock, as stored.
pub(crate) fn now_micros(now: Option<DateTime<Utc>>) -> i64 {
    micros(now.unwrap_or_else(Utc::now))
}

/// A duration in microseconds, saturating (a lease of centuries is not an error).
pub(crate) fn duration_micros(d: Duration) -> i64 {
    d.num_microseconds().unwrap_or(if d < Duration::zero() {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// A UUID as stored: hyphenated, lower-case text.
pub(crate) fn uuid_text(u: Uuid) -> String {
    u.hyphenated().to_string()
}

fn decode(col: &str, e: sqlx::Error) -> Error {
    Error::Decode(format!("column {col}: {e}"))
}

fn get<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(col).map_err(|e| decode(col, e))
}

fn time_from(col: &str, v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| Error::Decode(format!("column {col}: time {v} is out of range")))
}

fn time(row: &SqliteRow, col: &str) -> Result<DateTime<Utc>> {
    time_from(col, get(row, col)?)
}

fn time_opt(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    get::<Option<i64>>(row, col)?
        .map(|v| time_from(col, v))
        .transpose()
}

fn parse<T: std::str::FromStr<Err = Error>>(row: &SqliteRow, col: &str) -> Result<T> {
    let s: &str = get(row, col)?;
    s.parse()
}

fn json(row: &SqliteRow, col: &str) -> Result<serde_json::Value> {
    let s: &str = get(row, col)?;
    serde_json::from_str(s).map_err(|e| Error::Decode(format!("column {col}: {e}")))
}

fn string_list(row: &SqliteRow, col: &str) -> Result<Vec<String>> {
    let s: &str = get(row, col)?;
    serde_json::from_str(s).map_err(|e| Error::Decode(format!("column {col}: {e}")))
}

fn uuid_opt(row: &SqliteRow, col: &str) -> Result<Option<Uuid>> {
    get::<Option<&str>>(row, col)?
        .map(|s| Uuid::parse_str(s).map_err(|e| Error::Decode(format!("column {col}: {e}"))))
        .transpose()
}

pub(crate) fn job(row: &SqliteRow) -> Result<JobRow> {
    Ok(JobRow {
        id: get(row, "id")?,
        job_type: get(row, "job_type")?,
        queue: get(row, "queue")?,
        status: parse(row, "status")?,
        priority: get(row, "priority")?,
        payload: json(row, "payload")?,
        attempts: get(row, "attempts")?,
        max_attempts: get(row, "max_attempts")?,
        run_at: time(row, "run_at")?,
        locked_by: get(row, "locked_by")?,
        locked_at: time_opt(row, "locked_at")?,
        last_error: get(row, "last_error")?,
        unique_key: get(row, "unique_key")?,
        document_id: uuid_opt(row, "document_id")?,
        created_at: time(row, "created_at")?,
        started_at: time_opt(row, "started_at")?,
        completed_at: time_opt(row, "completed_at")?,
        updated_at: time(row, "updated_at")?,
        claim_token: uuid_opt(row, "claim_token")?,
        rescues: get(row, "rescues")?,
    })
}

pub(crate) fn session(row: &SqliteRow) -> Result<SessionRow> {
    Ok(SessionRow {
        token_sha256: get(row, "token_sha256")?,
        key_name: get(row, "key_name")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

pub(crate) fn audit(row: &SqliteRow) -> Result<AuditRow> {
    let job_ids: String = get(row, "job_ids")?;
    Ok(AuditRow {
        id: get(row, "id")?,
        at: time(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        job_ids: serde_json::from_str(&job_ids)
            .map_err(|e| Error::Decode(format!("audit job_ids: {e}")))?,
        detail: json(row, "detail")?,
    })
}

pub(crate) fn attempt(row: &SqliteRow) -> Result<JobAttempt> {
    Ok(JobAttempt {
        id: get(row, "id")?,
        job_id: get(row, "job_id")?,
        attempt: get(row, "attempt")?,
        worker_id: get(row, "worker_id")?,
        started_at: time(row, "started_at")?,
        finished_at: time(row, "finished_at")?,
        outcome: parse(row, "outcome")?,
        error: get(row, "error")?,
        duration_ms: get(row, "duration_ms")?,
    })
}

pub(crate) fn queue(row: &SqliteRow) -> Result<QueueRow> {
    Ok(QueueRow {
        name: get(row, "name")?,
        paused_at: time_opt(row, "paused_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(crate) fn worker(row: &SqliteRow) -> Result<WorkerRow> {
    Ok(WorkerRow {
        id: get(row, "id")?,
        hostname: get(row, "hostname")?,
        pid: get(row, "pid")?,
        queues: string_list(row, "queues")?,
        started_at: time(row, "started_at")?,
        heartbeat_at: time(row, "heartbeat_at")?,
        lease_ms: get(row, "lease_ms")?,
        dead: get::<i64>(row, "dead")? != 0,
    })
}

pub(crate) fn stuck_job(row: &SqliteRow) -> Result<StuckJobRow> {
    let job = job(row)?;
    let read_at = time(row, "read_at")?;
    let running_for_ms = job
        .started_at
        .map_or(0, |t| (read_at - t).num_milliseconds().max(0));
    Ok(StuckJobRow {
        job,
        worker_heartbeat_at: time_opt(row, "worker_heartbeat_at")?,
        worker_lease_ms: get(row, "worker_lease_ms")?,
        running_for_ms,
    })
}

pub(crate) fn leader(row: &SqliteRow) -> Result<LeaderRow> {
    Ok(LeaderRow {
        leader_id: get(row, "leader_id")?,
        elected_at: time(row, "elected_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

pub(crate) fn schedule(row: &SqliteRow) -> Result<CronSchedule> {
    Ok(CronSchedule {
        name: get(row, "name")?,
        expression: get(row, "expression")?,
        timezone: get(row, "timezone")?,
        job_type: get(row, "job_type")?,
        queue: get(row, "queue")?,
        payload: json(row, "payload")?,
        priority: get(row, "priority")?,
        enabled: get(row, "enabled")?,
        missed_policy: parse(row, "missed_policy")?,
        next_run_at: time(row, "next_run_at")?,
        last_run_at: time_opt(row, "last_run_at")?,
    })
}

pub(crate) fn cron_run(row: &SqliteRow) -> Result<CronRun> {
    Ok(CronRun {
        id: get(row, "id")?,
        schedule_name: get(row, "schedule_name")?,
        scheduled_for: time(row, "scheduled_for")?,
        job_id: get(row, "job_id")?,
        status: get(row, "status")?,
        started_at: time_opt(row, "started_at")?,
        finished_at: time_opt(row, "finished_at")?,
        message: get(row, "message")?,
        created_at: time(row, "created_at")?,
    })
}

pub(crate) fn stat(row: &SqliteRow) -> Result<JobStatRow> {
    Ok(JobStatRow {
        job_type: get(row, "job_type")?,
        queue: get(row, "queue")?,
        status: parse(row, "status")?,
        count: get(row, "count")?,
        oldest_created_at: time_opt(row, "oldest_created_at")?,
    })
}

pub(crate) fn throughput(row: &SqliteRow) -> Result<docket_core::JobThroughputRow> {
    Ok(docket_core::JobThroughputRow {
        minute: time(row, "minute")?,
        completed: get(row, "completed")?,
        failed: get(row, "failed")?,
    })
}

pub(crate) fn activity(row: &SqliteRow) -> Result<JobActivityRow> {
    Ok(JobActivityRow {
        job_type: get(row, "job_type")?,
        queue: get(row, "queue")?,
        completed_last_minute: get(row, "completed_last_minute")?,
        failed_last_minute: get(row, "failed_last_minute")?,
        completed_last_hour: get(row, "completed_last_hour")?,
        failed_last_hour: get(row, "failed_last_hour")?,
        oldest_due_at: time_opt(row, "oldest_due_at")?,
    })
}

fn uuid(row: &SqliteRow, col: &str) -> Result<Uuid> {
    let s: &str = get(row, col)?;
    Uuid::parse_str(s).map_err(|e| Error::Decode(format!("column {col}: {e}")))
}

pub(crate) fn document(row: &SqliteRow) -> Result<DocumentRow> {
    Ok(DocumentRow {
        id: uuid(row, "id")?,
        source: parse(row, "source")?,
        filename: get(row, "filename")?,
        content_type: get(row, "content_type")?,
        size_bytes: get(row, "size_bytes")?,
        sha256: get(row, "sha256")?,
        storage_key: get(row, "storage_key")?,
        status: parse(row, "status")?,
        progress: get(row, "progress")?,
        stage: get(row, "stage")?,
        error: get(row, "error")?,
        error_stage: get(row, "error_stage")?,
        timings: json(row, "timings")?,
        callback_url: get(row, "callback_url")?,
        metadata: json(row, "metadata")?,
        priority: get(row, "priority")?,
        generation: get(row, "generation")?,
        active_generation: get(row, "active_generation")?,
        chunk_count: get(row, "chunk_count")?,
        token_count: get(row, "token_count")?,
        embedder: get(row, "embedder")?,
        embedder_fingerprint: get(row, "embedder_fingerprint")?,
        chunker_fingerprint: get(row, "chunker_fingerprint")?,
        generation_embedder: get(row, "generation_embedder")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        completed_at: time_opt(row, "completed_at")?,
    })
}

pub(crate) fn text(row: &SqliteRow) -> Result<DocumentText> {
    Ok(DocumentText {
        document_id: uuid(row, "document_id")?,
        generation: get(row, "generation")?,
        format: get(row, "format")?,
        text: get(row, "text")?,
        sections: json(row, "sections")?,
    })
}

pub(crate) fn chunk(row: &SqliteRow) -> Result<ChunkRow> {
    Ok(ChunkRow {
        id: get(row, "id")?,
        document_id: uuid(row, "document_id")?,
        generation: get(row, "generation")?,
        chunk_index: get(row, "chunk_index")?,
        text: get(row, "text")?,
        char_start: get(row, "char_start")?,
        char_end: get(row, "char_end")?,
        token_count: get(row, "token_count")?,
        heading_path: string_list(row, "heading_path")?,
        page: get(row, "page")?,
        has_embedding: get(row, "has_embedding")?,
    })
}

pub(crate) fn vector(row: &SqliteRow) -> Result<ChunkVector> {
    let bytes: &[u8] = get(row, "embedding")?;
    Ok(ChunkVector {
        id: get(row, "id")?,
        document_id: uuid(row, "document_id")?,
        embedding: decode_vector(bytes)?,
    })
}

/// Bytes as lower-case hex: how a blob travels inside a JSON batch (`unhex` reads it back).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

pub(crate) fn alert(row: &SqliteRow) -> Result<AlertRow> {
    Ok(AlertRow {
        id: get(row, "id")?,
        rule: get(row, "rule")?,
        subject: get(row, "subject")?,
        state: parse(row, "state")?,
        severity: get(row, "severity")?,
        summary: get(row, "summary")?,
        figures: json(row, "figures")?,
        pending_at: time(row, "pending_at")?,
        firing_at: time_opt(row, "firing_at")?,
        resolved_at: time_opt(row, "resolved_at")?,
        notified_at: time_opt(row, "notified_at")?,
        evaluated_at: time(row, "evaluated_at")?,
    })
}

pub(crate) fn alert_silence(row: &SqliteRow) -> Result<AlertSilenceRow> {
    Ok(AlertSilenceRow {
        id: get(row, "id")?,
        rule: get(row, "rule")?,
        subject: get(row, "subject")?,
        created_at: time(row, "created_at")?,
        until: time(row, "until")?,
        actor: get(row, "actor")?,
        reason: get(row, "reason")?,
    })
}

pub(crate) fn attempt_count(row: &SqliteRow) -> Result<JobAttemptCountRow> {
    Ok(JobAttemptCountRow {
        job_type: get(row, "job_type")?,
        queue: get(row, "queue")?,
        outcome: parse(row, "outcome")?,
        snoozed: get(row, "snoozed")?,
        count: get(row, "count")?,
    })
}

pub(crate) fn rollup(row: &SqliteRow) -> Result<AttemptRollupRow> {
    Ok(AttemptRollupRow {
        hour: time(row, "hour")?,
        job_type: get(row, "job_type")?,
        queue: get(row, "queue")?,
        outcome: parse(row, "outcome")?,
        attempts: get(row, "attempts")?,
        total_ms: get(row, "total_ms")?,
        p50_ms: get(row, "p50_ms")?,
        p95_ms: get(row, "p95_ms")?,
        p99_ms: get(row, "p99_ms")?,
        max_ms: get(row, "max_ms")?,
    })
}

pub(crate) fn error_group(row: &SqliteRow) -> Result<AttemptErrorGroup> {
    Ok(AttemptErrorGroup {
        job_type: get(row, "job_type")?,
        error: get(row, "error")?,
        count: get(row, "count")?,
        first_at: time(row, "first_at")?,
        last_at: time(row, "last_at")?,
        last_job_id: get(row, "last_job_id")?,
    })
}

pub(crate) fn failure_reason(row: &SqliteRow) -> Result<FailureReasonRow> {
    let ids: String = get(row, "example_job_ids")?;
    Ok(FailureReasonRow {
        job_type: get(row, "job_type")?,
        reason: get(row, "reason")?,
        example: get(row, "example")?,
        count: get(row, "count")?,
        first_seen: time(row, "first_seen")?,
        last_seen: time(row, "last_seen")?,
        example_job_ids: serde_json::from_str(&ids)
            .map_err(|e| Error::Decode(format!("example_job_ids: {e}")))?,
    })
}
