//! What each rule sees: one pass of reads, and the findings (conditions that hold) they make.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use docket_core::{
    ALL_QUEUES, AttemptOutcome, Driver, JobActivityParams, JobAttemptCountRow,
    JobAttemptCountsParams, JobState, JobThroughputParams, MonitorStore, QueueExecutor,
    WorkerListParams,
};
use serde_json::json;

use super::{Rule, RuleConfig};
use crate::Pipeline;

/// A rule's condition, holding now for one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// What it is about (`queue=default`, `stage=embed`, `provider=…`), or empty.
    pub subject: String,
    /// One line a person can act on.
    pub summary: String,
    /// The figures behind it.
    pub figures: serde_json::Value,
    /// A count that calls for a new notice when it rises past its value at the last one
    /// (`dead_letters`: the dead letters in all).
    pub counter: Option<i64>,
}

/// The stage kinds, by stage name.
const STAGES: [&str; 5] = ["parse", "chunk", "embed", "complete", "notify"];

/// The most stuck documents counted (the figure reads "1000 or more" past it).
const STUCK_COUNT_LIMIT: i64 = 1000;

/// Seconds, written for people: `45 s`, `25 min`, `3.5 h`.
pub(super) fn human_secs(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.0} s")
    } else if secs < 7200.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

fn chrono(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Failed and counted attempts of some kinds: (failing, counted, snoozed).
fn shares<'a>(
    rows: impl Iterator<Item = &'a JobAttemptCountRow>,
    snoozes_fail: bool,
) -> (i64, i64, i64) {
    let (mut failing, mut counted, mut snoozed) = (0, 0, 0);
    for r in rows {
        match r.outcome {
            AttemptOutcome::Completed => counted += r.count,
            AttemptOutcome::Retried | AttemptOutcome::Failed | AttemptOutcome::Rescued => {
                failing += r.count;
                counted += r.count;
            }
            AttemptOutcome::Released if r.snoozed => {
                snoozed += r.count;
                if snoozes_fail {
                    failing += r.count;
                    counted += r.count;
                }
            }
            AttemptOutcome::Released | AttemptOutcome::Cancelled => {}
        }
    }
    (failing, counted, snoozed)
}

/// Reads what the enabled rules need, once, and returns every condition that holds at `now`.
pub(super) async fn findings<D: Driver>(
    pipeline: &Pipeline<D>,
    rules: &BTreeMap<Rule, RuleConfig>,
    now: DateTime<Utc>,
) -> docket_core::Result<Vec<Finding>> {
    let on = |r: Rule| rules.get(&r).filter(|c| c.enabled);
    let mut out = Vec::new();
    let mut c = pipeline.inner.driver.conn().await?;

    let stats = c.job_stats().await?;
    let dead: i64 = stats
        .iter()
        .filter(|s| s.status == JobState::Failed)
        .map(|s| s.count)
        .sum();
    if let Some(r) = on(Rule::DeadLetters) {
        let new: i64 = c
            .job_throughput(JobThroughputParams {
                since: now - chrono(r.window),
                now: Some(now),
            })
            .await?
            .iter()
            .map(|m| m.failed)
            .sum();
        if new as f64 >= r.threshold.max(1.0) {
            out.push(Finding {
                rule: Rule::DeadLetters,
                subject: String::new(),
                summary: format!(
                    "{new} job(s) dead-lettered in the last {} ({dead} dead letter(s) in all)",
                    human_secs(secs(r.window))
                ),
                figures: json!({"new": new, "window_secs": r.window.as_secs(), "dead_letters": dead}),
                counter: Some(dead),
            });
        }
    }
    if let Some(r) = on(Rule::DeadLettersHigh)
        && dead as f64 > r.threshold
    {
        out.push(Finding {
            rule: Rule::DeadLettersHigh,
            subject: String::new(),
            summary: format!(
                "{dead} dead letters wait for a person (more than {})",
                r.threshold
            ),
            figures: json!({"dead_letters": dead, "threshold": r.threshold}),
            counter: None,
        });
    }

    // Queues: paused ones, due jobs, live workers.
    let queues = c.queue_list().await?;
    let all_paused = queues
        .iter()
        .any(|q| q.name == ALL_QUEUES && q.paused_at.is_some());
    let paused: BTreeSet<&str> = queues
        .iter()
        .filter(|q| q.paused_at.is_some())
        .map(|q| q.name.as_str())
        .collect();
    if let Some(r) = on(Rule::QueuePaused) {
        for q in &queues {
            let Some(at) = q.paused_at else { continue };
            let for_secs = (now - at).num_milliseconds() as f64 / 1000.0;
            if for_secs > r.threshold {
                let what = if q.name == ALL_QUEUES {
                    "every queue is paused (the switch `*`)".to_owned()
                } else {
                    format!("queue {} is paused", q.name)
                };
                out.push(Finding {
                    rule: Rule::QueuePaused,
                    subject: format!("queue={}", q.name),
                    summary: format!("{what}, for {} now", human_secs(for_secs)),
                    figures: json!({"queue": q.name, "paused_at": at, "paused_secs": for_secs.round()}),
                    counter: None,
                });
            }
        }
    }
    if on(Rule::OldestDueJob).is_some() || on(Rule::QueueWithoutWorker).is_some() {
        let activity = c.job_activity(JobActivityParams { now: Some(now) }).await?;
        let mut oldest: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
        for a in &activity {
            if let Some(at) = a.oldest_due_at {
                let e = oldest.entry(a.queue.as_str()).or_insert(at);
                *e = (*e).min(at);
            }
        }
        let due = stats
            .iter()
            .filter(|s| matches!(s.status, JobState::Queued | JobState::Retrying));
        let workers = c.worker_list(WorkerListParams { now: Some(now) }).await?;
        let served: BTreeSet<&str> = workers
            .iter()
            .filter(|w| !w.dead)
            .flat_map(|w| w.queues.iter().map(String::as_str))
            .collect();
        for (queue, at) in oldest {
            if all_paused || paused.contains(queue) {
                continue;
            }
            let waited = (now - at).num_milliseconds() as f64 / 1000.0;
            let waiting: i64 = due
                .clone()
                .filter(|s| s.queue == queue)
                .map(|s| s.count)
                .sum();
            if let Some(r) = on(Rule::OldestDueJob)
                && waited > r.threshold
            {
                out.push(Finding {
                    rule: Rule::OldestDueJob,
                    subject: format!("queue={queue}"),
                    summary: format!(
                        "queue {queue}: the oldest due job has waited {} (more than {}); {waiting} job(s) waiting",
                        human_secs(waited),
                        human_secs(r.threshold)
                    ),
                    figures: json!({"queue": queue, "oldest_due_secs": waited.round(), "waiting": waiting, "threshold_secs": r.threshold}),
                    counter: None,
                });
            }
            if on(Rule::QueueWithoutWorker).is_some() && !served.contains(queue) {
                out.push(Finding {
                    rule: Rule::QueueWithoutWorker,
                    subject: format!("queue={queue}"),
                    summary: format!(
                        "queue {queue} has due jobs ({waiting} waiting, the oldest for {}) and no live worker serves it",
                        human_secs(waited)
                    ),
                    figures: json!({"queue": queue, "waiting": waiting, "oldest_due_secs": waited.round(), "live_workers": workers.iter().filter(|w| !w.dead).count()}),
                    counter: None,
                });
            }
        }
    }

    // Attempts over a window: stages, and the embedding provider.
    if let Some(r) = on(Rule::StageFailing) {
        let counts = c
            .job_attempt_counts(&JobAttemptCountsParams {
                since: now - chrono(r.window),
                now: Some(now),
            })
            .await?;
        for stage in STAGES {
            let kind = format!("docket.{stage}");
            let (failing, counted, _) = shares(counts.iter().filter(|x| x.job_type == kind), false);
            if counted > 0
                && counted as u64 >= r.min_attempts
                && failing as f64 / counted as f64 > r.threshold
            {
                let share = failing as f64 / counted as f64;
                out.push(Finding {
                    rule: Rule::StageFailing,
                    subject: format!("stage={stage}"),
                    summary: format!(
                        "stage {stage}: {failing} of {counted} attempts failed over the last {} ({:.0} %)",
                        human_secs(secs(r.window)),
                        share * 100.0
                    ),
                    figures: json!({"stage": stage, "failed": failing, "attempts": counted, "share": share, "window_secs": r.window.as_secs()}),
                    counter: None,
                });
            }
        }
    }
    if let Some(r) = on(Rule::EmbedProviderFailing) {
        let embedder = pipeline.inner.embedder.name().to_owned();
        let counts = c
            .job_attempt_counts(&JobAttemptCountsParams {
                since: now - chrono(r.window),
                now: Some(now),
            })
            .await?;
        let (failing, counted, snoozed) =
            shares(counts.iter().filter(|x| x.job_type == "docket.embed"), true);
        let waiting: i64 = stats
            .iter()
            .filter(|s| {
                s.job_type == "docket.embed"
                    && matches!(s.status, JobState::Queued | JobState::Retrying)
            })
            .map(|s| s.count)
            .sum();
        let breaker_open = pipeline.inner.embedder.ready().is_err();
        let share = if counted > 0 {
            failing as f64 / counted as f64
        } else {
            0.0
        };
        let calls_failing = counted as u64 >= r.min_attempts.max(1) && share > r.threshold;
        if breaker_open || calls_failing {
            let why = if breaker_open {
                "its circuit breaker is open".to_owned()
            } else {
                format!(
                    "{failing} of {counted} embed attempts failed or were held back over the last {}",
                    human_secs(secs(r.window))
                )
            };
            out.push(Finding {
                rule: Rule::EmbedProviderFailing,
                subject: format!("provider={embedder}"),
                summary: format!(
                    "embedding provider {embedder} failing: {why}; {waiting} job(s) waiting for it"
                ),
                figures: json!({
                    "provider": embedder,
                    "cause": if breaker_open { "breaker_open" } else { "calls_failing" },
                    "breaker_open": breaker_open,
                    "failed": failing,
                    "held_back": snoozed,
                    "attempts": counted,
                    "share": share,
                    "waiting": waiting,
                    "window_secs": r.window.as_secs(),
                }),
                counter: None,
            });
        }
    }
    drop(c);

    if let Some(r) = on(Rule::DocumentsStuck) {
        let stuck = pipeline.stuck_documents(STUCK_COUNT_LIMIT).await?;
        let n = stuck.len() as i64;
        if n as f64 > r.threshold {
            let more = if n >= STUCK_COUNT_LIMIT {
                " or more"
            } else {
                ""
            };
            out.push(Finding {
                rule: Rule::DocumentsStuck,
                subject: String::new(),
                summary: format!(
                    "{n}{more} document(s) stuck: unfinished, with no live job, unchanged for {}",
                    human_secs(secs(pipeline.inner.stages.stuck_after()))
                ),
                figures: json!({"stuck": n, "oldest": stuck.iter().map(|d| d.updated_at).min()}),
                counter: None,
            });
        }
    }
    Ok(out)
}
