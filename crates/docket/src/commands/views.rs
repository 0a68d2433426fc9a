//! What the operator commands print for a person (`--json` prints the rows themselves): the
//! times, workers and heartbeats an operator looks for, in aligned tables with headers.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use docket_core::{
    AuditRow, CronRun, CronSchedule, JobAttempt, JobRow, JobStatRow, JobState, LeaderRow, QueueRow,
    StuckJobRow, WorkerRow,
};

use super::table::{Table, ago, at, duration_ms, left, right};

fn or_dash(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

/// Where a job stands in time: when it is due (a retry's backoff: "due in 4m"), since when it
/// runs, or when it ended.
fn when(j: &JobRow, now: DateTime<Utc>) -> String {
    match j.status {
        JobState::Queued | JobState::Retrying => format!("due {}", ago(j.run_at, now)),
        JobState::Running => j.locked_at.map_or_else(
            || "running".to_owned(),
            |t| format!("started {}", ago(t, now)),
        ),
        JobState::Completed | JobState::Failed | JobState::Cancelled => j
            .completed_at
            .map_or_else(|| "ended".to_owned(), |t| format!("ended {}", ago(t, now))),
    }
}

/// `jobs list`, `jobs failed`.
pub(crate) fn jobs(rows: &[JobRow], now: DateTime<Utc>) -> String {
    if rows.is_empty() {
        return "no jobs\n".to_owned();
    }
    let mut t = Table::new(&[
        right("ID"),
        left("KIND"),
        left("QUEUE"),
        left("STATE"),
        right("PRI"),
        right("TRIES"),
        left("CREATED"),
        left("WHEN"),
        left("WORKER"),
        left("LAST ERROR"),
    ]);
    for j in rows {
        t.row(vec![
            j.id.to_string(),
            j.job_type.clone(),
            j.queue.clone(),
            j.status.to_string(),
            j.priority.to_string(),
            format!("{}/{}", j.attempts, j.max_attempts),
            ago(j.created_at, now),
            when(j, now),
            or_dash(j.locked_by.clone()),
            j.last_error.clone().unwrap_or_default(),
        ]);
    }
    t.render()
}

/// `jobs get`: every field of the job, then its attempts.
pub(crate) fn job(j: &JobRow, attempts: &[JobAttempt], now: DateTime<Utc>) -> String {
    let when = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| format!("{} ({})", at(t), ago(t, now)),
        )
    };
    let mut s = String::new();
    let mut field = |name: &str, value: String| {
        let _ = writeln!(s, "{name:<13} {value}");
    };
    field("id", j.id.to_string());
    field("kind", j.job_type.clone());
    field("queue", j.queue.clone());
    field("state", j.status.to_string());
    field("priority", j.priority.to_string());
    field("tries", format!("{} of {}", j.attempts, j.max_attempts));
    field("created", when(Some(j.created_at)));
    let due = match j.status {
        JobState::Retrying => "next retry",
        JobState::Queued => "due",
        _ => "last due",
    };
    field(due, when(Some(j.run_at)));
    field("started", when(j.started_at));
    if j.status == JobState::Running {
        field("worker", or_dash(j.locked_by.clone()));
        field("claimed", when(j.locked_at));
    }
    field("finished", when(j.completed_at));
    field("updated", when(Some(j.updated_at)));
    if j.rescues > 0 {
        field("rescues", j.rescues.to_string());
    }
    if let Some(d) = j.document_id {
        field("document", d.to_string());
    }
    if let Some(k) = &j.unique_key {
        field("unique key", k.clone());
    }
    if let Some(e) = &j.last_error {
        field("last error", e.clone());
    }
    field("payload", j.payload.to_string());
    if attempts.is_empty() {
        s.push_str("\nno attempts yet\n");
        return s;
    }
    let mut t = Table::new(&[
        right("ATTEMPT"),
        left("STARTED"),
        left("WORKER"),
        left("OUTCOME"),
        right("TOOK"),
        left("ERROR"),
    ]);
    for a in attempts {
        t.row(vec![
            a.attempt.to_string(),
            at(a.started_at),
            a.worker_id.clone(),
            a.outcome.as_str().to_owned(),
            duration_ms(a.duration_ms),
            a.error.clone().unwrap_or_default(),
        ]);
    }
    s.push('\n');
    s.push_str(&t.render());
    s
}

/// `jobs stuck`: each job with its worker, the worker's last heartbeat and lease, and how
/// long the job has run.
pub(crate) fn stuck(rows: &[StuckJobRow], now: DateTime<Utc>) -> String {
    if rows.is_empty() {
        return "no stuck jobs: every running job's worker is within its lease\n".to_owned();
    }
    let mut t = Table::new(&[
        right("ID"),
        left("KIND"),
        left("QUEUE"),
        right("TRIES"),
        left("WORKER"),
        left("LAST HEARTBEAT"),
        right("LEASE"),
        right("RUNNING FOR"),
    ]);
    for r in rows {
        let j = &r.job;
        t.row(vec![
            j.id.to_string(),
            j.job_type.clone(),
            j.queue.clone(),
            format!("{}/{}", j.attempts, j.max_attempts),
            or_dash(j.locked_by.clone()),
            r.worker_heartbeat_at
                .map_or_else(|| "never (no worker row)".to_owned(), |t| ago(t, now)),
            r.worker_lease_ms
                .map_or_else(|| "-".to_owned(), duration_ms),
            duration_ms(r.running_for_ms),
        ]);
    }
    t.render() + "the leader's rescuer requeues these; `docket jobs cancel ID` stops one for good\n"
}

/// `jobs stats`.
pub(crate) fn stats(rows: &[JobStatRow], now: DateTime<Utc>) -> String {
    if rows.is_empty() {
        return "no jobs\n".to_owned();
    }
    let mut t = Table::new(&[
        left("KIND"),
        left("QUEUE"),
        left("STATE"),
        right("COUNT"),
        left("OLDEST"),
    ]);
    for r in rows {
        t.row(vec![
            r.job_type.clone(),
            r.queue.clone(),
            r.status.to_string(),
            r.count.to_string(),
            r.oldest_created_at
                .map_or_else(|| "-".to_owned(), |t| ago(t, now)),
        ]);
    }
    t.render()
}

/// `jobs audit`.
pub(crate) fn audit(rows: &[AuditRow], now: DateTime<Utc>) -> String {
    if rows.is_empty() {
        return "no operator action recorded\n".to_owned();
    }
    let mut t = Table::new(&[
        left("WHEN"),
        left("AGO"),
        left("WHO"),
        left("ACTION"),
        left("TARGET"),
        left("JOBS"),
    ]);
    for a in rows {
        let jobs: Vec<String> = a.job_ids.iter().map(i64::to_string).collect();
        t.row(vec![
            at(a.at),
            ago(a.at, now),
            a.actor.clone(),
            a.action.clone(),
            or_dash(a.target.clone()),
            jobs.join(","),
        ]);
    }
    t.render()
}

/// `queues status`: the queues (paused or not, since when), then the workers.
pub(crate) fn queues(
    queues: &[QueueRow],
    workers: &[WorkerRow],
    leader: Option<&LeaderRow>,
    now: DateTime<Utc>,
) -> String {
    let mut s = String::new();
    if queues.is_empty() {
        s.push_str("no queue has been paused\n");
    } else {
        let mut t = Table::new(&[left("QUEUE"), left("STATE"), left("SINCE")]);
        for q in queues {
            let (state, since) = match q.paused_at {
                Some(p) => ("paused", ago(p, now)),
                None => ("running", ago(q.updated_at, now)),
            };
            let name = if q.name == docket_core::ALL_QUEUES {
                format!("{} (every queue)", q.name)
            } else {
                q.name.clone()
            };
            t.row(vec![name, state.to_owned(), since]);
        }
        s.push_str(&t.render());
    }
    s.push('\n');
    if workers.is_empty() {
        s.push_str("no workers\n");
        return s;
    }
    let mut t = Table::new(&[
        left("WORKER"),
        left("STATE"),
        left("HOST"),
        right("PID"),
        left("QUEUES"),
        left("STARTED"),
        left("LAST HEARTBEAT"),
        right("LEASE"),
    ]);
    for w in workers {
        let mut state = if w.dead { "dead" } else { "live" }.to_owned();
        if leader.is_some_and(|l| l.leader_id == w.id) {
            state.push_str(", leader");
        }
        t.row(vec![
            w.id.clone(),
            state,
            w.hostname.clone(),
            w.pid.to_string(),
            w.queues.join(","),
            ago(w.started_at, now),
            ago(w.heartbeat_at, now),
            duration_ms(w.lease_ms),
        ]);
    }
    s.push_str(&t.render());
    s
}

/// `cron list`.
pub(crate) fn schedules(rows: &[CronSchedule], now: DateTime<Utc>) -> String {
    if rows.is_empty() {
        return "no schedules\n".to_owned();
    }
    let mut t = Table::new(&[
        left("NAME"),
        left("EXPRESSION"),
        left("TZ"),
        left("NEXT RUN"),
        left("LAST RUN"),
        left("KIND"),
        left("QUEUE"),
        left("ENABLED"),
    ]);
    for r in rows {
        t.row(vec![
            r.name.clone(),
            r.expression.clone(),
            r.timezone.clone(),
            ago(r.next_run_at, now),
            r.last_run_at
                .map_or_else(|| "-".to_owned(), |t| ago(t, now)),
            r.job_type.clone(),
            r.queue.clone(),
            if r.enabled { "yes" } else { "no" }.to_owned(),
        ]);
    }
    t.render()
}

/// `cron history`.
pub(crate) fn runs(rows: &[CronRun], now: DateTime<Utc>) -> String {
    if rows.is_empty() {
        return "no runs\n".to_owned();
    }
    let mut t = Table::new(&[
        right("RUN"),
        left("SCHEDULE"),
        left("FOR"),
        left("STATUS"),
        right("JOB"),
        left("FINISHED"),
        left("MESSAGE"),
    ]);
    for r in rows {
        t.row(vec![
            r.id.to_string(),
            r.schedule_name.clone(),
            format!("{} ({})", at(r.scheduled_for), ago(r.scheduled_for, now)),
            r.status.clone(),
            r.job_id.map_or_else(|| "-".to_owned(), |j| j.to_string()),
            r.finished_at
                .map_or_else(|| "-".to_owned(), |t| ago(t, now)),
            r.message.clone().unwrap_or_default(),
        ]);
    }
    t.render()
}
