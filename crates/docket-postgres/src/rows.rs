//! Decoding rows into docket's vocabulary.

use docket_core::{
    AlertRow, AlertSilenceRow, AttemptErrorGroup, AttemptRollupRow, AuditRow, ChunkRow,
    ChunkVector, CronRun, CronSchedule, DocumentRow, DocumentText, Error, FailureReasonRow,
    JobActivityRow, JobAttempt, JobAttemptCountRow, JobRow, JobStatRow, QueueRow, Result,
    StuckJobRow, WorkerRow, decode_vector,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

fn parse<T: std::str::FromStr<Err = Error>>(row: &PgRow, col: &str) -> Result<T> {
    let s: &str = row.try_get(col).map_err(decode)?;
    s.parse()
}

pub(crate) fn decode(e: sqlx::Error) -> Error {
    Error::Decode(e.to_string())
}

pub(crate) fn job(row: &PgRow) -> Result<JobRow> {
    let g = |e| decode(e);
    Ok(JobRow {
        id: row.try_get("id").map_err(g)?,
        job_type: row.try_get("job_type").map_err(g)?,
        queue: row.try_get("queue").map_err(g)?,
        status: parse(row, "status")?,
        priority: row.try_get("priority").map_err(g)?,
        payload: row.try_get("payload").map_err(g)?,
        attempts: row.try_get("attempts").map_err(g)?,
        max_attempts: row.try_get("max_attempts").map_err(g)?,
        run_at: row.try_get("run_at").map_err(g)?,
        locked_by: row.try_get("locked_by").map_err(g)?,
        locked_at: row.try_get("locked_at").map_err(g)?,
        last_error: row.try_get("last_error").map_err(g)?,
        unique_key: row.try_get("unique_key").map_err(g)?,
        document_id: row.try_get("document_id").map_err(g)?,
        created_at: row.try_get("created_at").map_err(g)?,
        started_at: row.try_get("started_at").map_err(g)?,
        completed_at: row.try_get("completed_at").map_err(g)?,
        updated_at: row.try_get("updated_at").map_err(g)?,
        claim_token: row.try_get("claim_token").map_err(g)?,
        rescues: row.try_get("rescues").map_err(g)?,
    })
}

pub(crate) fn audit(row: &PgRow) -> Result<AuditRow> {
    let g = |e| decode(e);
    Ok(AuditRow {
        id: row.try_get("id").map_err(g)?,
        at: row.try_get("at").map_err(g)?,
        actor: row.try_get("actor").map_err(g)?,
        action: row.try_get("action").map_err(g)?,
        target: row.try_get("target").map_err(g)?,
        job_ids: row.try_get("job_ids").map_err(g)?,
        detail: row.try_get("detail").map_err(g)?,
    })
}

pub(crate) fn attempt(row: &PgRow) -> Result<JobAttempt> {
    Ok(JobAttempt {
        id: row.try_get("id").map_err(decode)?,
        job_id: row.try_get("job_id").map_err(decode)?,
        attempt: row.try_get("attempt").map_err(decode)?,
        worker_id: row.try_get("worker_id").map_err(decode)?,
        started_at: row.try_get("started_at").map_err(decode)?,
        finished_at: row.try_get("finished_at").map_err(decode)?,
        outcome: parse(row, "outcome")?,
        error: row.try_get("error").map_err(decode)?,
        duration_ms: row.try_get("duration_ms").map_err(decode)?,
    })
}

pub(crate) fn queue(row: &PgRow) -> Result<QueueRow> {
    Ok(QueueRow {
        name: row.try_get("name").map_err(decode)?,
        paused_at: row.try_get("paused_at").map_err(decode)?,
        updated_at: row.try_get("updated_at").map_err(decode)?,
    })
}

pub(crate) fn worker(row: &PgRow) -> Result<WorkerRow> {
    Ok(WorkerRow {
        id: row.try_get("id").map_err(decode)?,
        hostname: row.try_get("hostname").map_err(decode)?,
        pid: row.try_get("pid").map_err(decode)?,
        queues: row.try_get("queues").map_err(decode)?,
        started_at: row.try_get("started_at").map_err(decode)?,
        heartbeat_at: row.try_get("heartbeat_at").map_err(decode)?,
        lease_ms: row.try_get("lease_ms").map_err(decode)?,
        dead: row.try_get("dead").map_err(decode)?,
    })
}

pub(crate) fn stuck_job(row: &PgRow) -> Result<StuckJobRow> {
    let job = job(row)?;
    let read_at: chrono::DateTime<chrono::Utc> = row.try_get("read_at").map_err(decode)?;
    let running_for_ms = job
        .started_at
        .map_or(0, |t| (read_at - t).num_milliseconds().max(0));
    Ok(StuckJobRow {
        job,
        worker_heartbeat_at: row.try_get("worker_heartbeat_at").map_err(decode)?,
        worker_lease_ms: row.try_get("worker_lease_ms").map_err(decode)?,
        running_for_ms,
    })
}

pub(crate) fn schedule(row: &PgRow) -> Result<CronSchedule> {
    Ok(CronSchedule {
        name: row.try_get("name").map_err(decode)?,
        expression: row.try_get("expression").map_err(decode)?,
        timezone: row.try_get("timezone").map_err(decode)?,
        job_type: row.try_get("job_type").map_err(decode)?,
        queue: row.try_get("queue").map_err(decode)?,
        payload: row.try_get("payload").map_err(decode)?,
        priority: row.try_get("priority").map_err(decode)?,
        enabled: row.try_get("enabled").map_err(decode)?,
        missed_policy: parse(row, "missed_policy")?,
        next_run_at: row.try_get("next_run_at").map_err(decode)?,
        last_run_at: row.try_get("last_run_at").map_err(decode)?,
    })
}

pub(crate) fn cron_run(row: &PgRow) -> Result<CronRun> {
    Ok(CronRun {
        id: row.try_get("id").map_err(decode)?,
        schedule_name: row.try_get("schedule_name").map_err(decode)?,
        scheduled_for: row.try_get("scheduled_for").map_err(decode)?,
        job_id: row.try_get("job_id").map_err(decode)?,
        status: row.try_get("status").map_err(decode)?,
        started_at: row.try_get("started_at").map_err(decode)?,
        finished_at: row.try_get("finished_at").map_err(decode)?,
        message: row.try_get("message").map_err(decode)?,
        created_at: row.try_get("created_at").map_err(decode)?,
    })
}

pub(crate) fn stat(row: &PgRow) -> Result<JobStatRow> {
    Ok(JobStatRow {
        job_type: row.try_get("job_type").map_err(decode)?,
        queue: row.try_get("queue").map_err(decode)?,
        status: parse(row, "status")?,
        count: row.try_get("count").map_err(decode)?,
        oldest_created_at: row.try_get("oldest_created_at").map_err(decode)?,
    })
}

pub(crate) fn throughput(row: &PgRow) -> Result<docket_core::JobThroughputRow> {
    Ok(docket_core::JobThroughputRow {
        minute: row.try_get("minute").map_err(decode)?,
        completed: row.try_get("completed").map_err(decode)?,
        failed: row.try_get("failed").map_err(decode)?,
    })
}

pub(crate) fn activity(row: &PgRow) -> Result<JobActivityRow> {
    Ok(JobActivityRow {
        job_type: row.try_get("job_type").map_err(decode)?,
        queue: row.try_get("queue").map_err(decode)?,
        completed_last_minute: row.try_get("completed_last_minute").map_err(decode)?,
        failed_last_minute: row.try_get("failed_last_minute").map_err(decode)?,
        completed_last_hour: row.try_get("completed_last_hour").map_err(decode)?,
        failed_last_hour: row.try_get("failed_last_hour").map_err(decode)?,
        oldest_due_at: row.try_get("oldest_due_at").map_err(decode)?,
    })
}

fn json_list(row: &PgRow, col: &str) -> Result<Vec<String>> {
    let v: serde_json::Value = row.try_get(col).map_err(decode)?;
    serde_json::from_value(v).map_err(|e| Error::Decode(format!("column {col}: {e}")))
}

pub(crate) fn document(row: &PgRow) -> Result<DocumentRow> {
    Ok(DocumentRow {
        id: row.try_get("id").map_err(decode)?,
        source: parse(row, "source")?,
        filename: row.try_get("filename").map_err(decode)?,
        content_type: row.try_get("content_type").map_err(decode)?,
        size_bytes: row.try_get("size_bytes").map_err(decode)?,
        sha256: row.try_get("sha256").map_err(decode)?,
        storage_key: row.try_get("storage_key").map_err(decode)?,
        status: parse(row, "status")?,
        progress: row.try_get("progress").map_err(decode)?,
        stage: row.try_get("stage").map_err(decode)?,
        error: row.try_get("error").map_err(decode)?,
        error_stage: row.try_get("error_stage").map_err(decode)?,
        timings: row.try_get("timings").map_err(decode)?,
        callback_url: row.try_get("callback_url").map_err(decode)?,
        metadata: row.try_get("metadata").map_err(decode)?,
        priority: row.try_get("priority").map_err(decode)?,
        generation: row.try_get("generation").map_err(decode)?,
        active_generation: row.try_get("active_generation").map_err(decode)?,
        chunk_count: row.try_get("chunk_count").map_err(decode)?,
        token_count: row.try_get("token_count").map_err(decode)?,
        embedder: row.try_get("embedder").map_err(decode)?,
        embedder_fingerprint: row.try_get("embedder_fingerprint").map_err(decode)?,
        chunker_fingerprint: row.try_get("chunker_fingerprint").map_err(decode)?,
        generation_embedder: row.try_get("generation_embedder").map_err(decode)?,
        created_at: row.try_get("created_at").map_err(decode)?,
        updated_at: row.try_get("updated_at").map_err(decode)?,
        completed_at: row.try_get("completed_at").map_err(decode)?,
    })
}

pub(crate) fn text(row: &PgRow) -> Result<DocumentText> {
    Ok(DocumentText {
        document_id: row.try_get("document_id").map_err(decode)?,
        generation: row.try_get("generation").map_err(decode)?,
        format: row.try_get("format").map_err(decode)?,
        text: row.try_get("text").map_err(decode)?,
        sections: row.try_get("sections").map_err(decode)?,
    })
}

pub(crate) fn chunk(row: &PgRow) -> Result<ChunkRow> {
    Ok(ChunkRow {
        id: row.try_get("id").map_err(decode)?,
        document_id: row.try_get("document_id").map_err(decode)?,
        generation: row.try_get("generation").map_err(decode)?,
        chunk_index: row.try_get("chunk_index").map_err(decode)?,
        text: row.try_get("text").map_err(decode)?,
        char_start: row.try_get("char_start").map_err(decode)?,
        char_end: row.try_get("char_end").map_err(decode)?,
        token_count: row.try_get("token_count").map_err(decode)?,
        heading_path: json_list(row, "heading_path")?,
        page: row.try_get("page").map_err(decode)?,
        has_embedding: row.try_get("has_embedding").map_err(decode)?,
    })
}

pub(crate) fn vector(row: &PgRow) -> Result<ChunkVector> {
    let bytes: Vec<u8> = row.try_get("embedding").map_err(decode)?;
    Ok(ChunkVector {
        id: row.try_get("id").map_err(decode)?,
        document_id: row.try_get("document_id").map_err(decode)?,
        embedding: decode_vector(&bytes)?,
    })
}

pub(crate) fn alert(row: &PgRow) -> Result<AlertRow> {
    let g = |e| decode(e);
    Ok(AlertRow {
        id: row.try_get("id").map_err(g)?,
        rule: row.try_get("rule").map_err(g)?,
        subject: row.try_get("subject").map_err(g)?,
        state: parse(row, "state")?,
        severity: row.try_get("severity").map_err(g)?,
        summary: row.try_get("summary").map_err(g)?,
        figures: row.try_get("figures").map_err(g)?,
        pending_at: row.try_get("pending_at").map_err(g)?,
        firing_at: row.try_get("firing_at").map_err(g)?,
        resolved_at: row.try_get("resolved_at").map_err(g)?,
        notified_at: row.try_get("notified_at").map_err(g)?,
        evaluated_at: row.try_get("evaluated_at").map_err(g)?,
    })
}

pub(crate) fn alert_silence(row: &PgRow) -> Result<AlertSilenceRow> {
    let g = |e| decode(e);
    Ok(AlertSilenceRow {
        id: row.try_get("id").map_err(g)?,
        rule: row.try_get("rule").map_err(g)?,
        subject: row.try_get("subject").map_err(g)?,
        created_at: row.try_get("created_at").map_err(g)?,
        until: row.try_get("until").map_err(g)?,
        actor: row.try_get("actor").map_err(g)?,
        reason: row.try_get("reason").map_err(g)?,
    })
}

pub(crate) fn attempt_count(row: &PgRow) -> Result<JobAttemptCountRow> {
    let g = |e| decode(e);
    Ok(JobAttemptCountRow {
        job_type: row.try_get("job_type").map_err(g)?,
        queue: row.try_get("queue").map_err(g)?,
        outcome: parse(row, "outcome")?,
        snoozed: row.try_get("snoozed").map_err(g)?,
        count: row.try_get("count").map_err(g)?,
    })
}

pub(crate) fn rollup(row: &PgRow) -> Result<AttemptRollupRow> {
    let g = |e| decode(e);
    Ok(AttemptRollupRow {
        hour: row.try_get("hour").map_err(g)?,
        job_type: row.try_get("job_type").map_err(g)?,
        queue: row.try_get("queue").map_err(g)?,
        outcome: parse(row, "outcome")?,
        attempts: row.try_get("attempts").map_err(g)?,
        total_ms: row.try_get("total_ms").map_err(g)?,
        p50_ms: row.try_get("p50_ms").map_err(g)?,
        p95_ms: row.try_get("p95_ms").map_err(g)?,
        p99_ms: row.try_get("p99_ms").map_err(g)?,
        max_ms: row.try_get("max_ms").map_err(g)?,
    })
}

pub(crate) fn error_group(row: &PgRow) -> Result<AttemptErrorGroup> {
    let g = |e| decode(e);
    Ok(AttemptErrorGroup {
        job_type: row.try_get("job_type").map_err(g)?,
        error: row.try_get("error").map_err(g)?,
        count: row.try_get("count").map_err(g)?,
        first_at: row.try_get("first_at").map_err(g)?,
        last_at: row.try_get("last_at").map_err(g)?,
        last_job_id: row.try_get("last_job_id").map_err(g)?,
    })
}

pub(crate) fn failure_reason(row: &PgRow) -> Result<FailureReasonRow> {
    let g = |e| decode(e);
    Ok(FailureReasonRow {
        job_type: row.try_get("job_type").map_err(g)?,
        reason: row.try_get("reason").map_err(g)?,
        example: row.try_get("example").map_err(g)?,
        count: row.try_get("count").map_err(g)?,
        first_seen: row.try_get("first_seen").map_err(g)?,
        last_seen: row.try_get("last_seen").map_err(g)?,
        example_job_ids: row.try_get("example_job_ids").map_err(g)?,
    })
}
