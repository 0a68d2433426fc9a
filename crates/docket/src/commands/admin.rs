//! Operator commands that talk to the database directly: they work when no server is up.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use docket_core::{
    ALL_QUEUES, AuditListParams, CronRunListParams, Driver, JobDiscardParams, JobListParams,
    JobListStuckParams, JobRetryParams, JobRunNowParams, JobState, QueueExecutor, SystemClock,
    WorkerListParams,
};
use docket_queue::maintenance::{ManualRun, Scheduler, SchedulerConfig};
use serde::Serialize;

use chrono::{DateTime, Utc};

use super::views;
use crate::backend::Backend;
use crate::config::Config;
use crate::out::{out, outln};
use crate::with_driver;

/// Output format.
#[derive(Debug, Args, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `docket jobs …`
/// A job state named on the command line (a bad one is a usage error: exit 2).
fn parse_state(s: &str) -> Result<JobState, String> {
    s.parse().map_err(|_| {
        let all: Vec<&str> = JobState::ALL.iter().map(|st| st.as_str()).collect();
        format!("not a job state; one of {}", all.join(", "))
    })
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Counts by kind, queue and state (the job_queue_stats view).
    Stats(Output),
    /// Jobs, newest first.
    List {
        /// Only this state (repeatable): queued, running, retrying, completed, failed,
        /// cancelled.
        #[arg(long, value_parser = parse_state)]
        state: Vec<JobState>,
        /// Only this kind (repeatable).
        #[arg(long)]
        kind: Vec<String>,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[command(flatten)]
        out: Output,
    },
    /// One job with its attempts.
    Get {
        /// The job id.
        id: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Dead-lettered jobs.
    Failed {
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Running jobs whose worker's lease has lapsed (by the lease each worker wrote), with the
    /// worker, its last heartbeat and how long each has run.
    Stuck(Output),
    /// Retry failed or cancelled jobs: these ids, or every one matching the filters.
    Retry {
        /// Job ids.
        ids: Vec<i64>,
        /// Every failed or cancelled job of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Every failed or cancelled job of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Every failed or cancelled job (needed when no id or filter is given).
        #[arg(long)]
        all: bool,
    },
    /// Run queued, scheduled or retrying jobs now, spending no attempt: these ids, or every
    /// one matching the filters.
    RunNow {
        /// Job ids.
        ids: Vec<i64>,
        /// Every such job of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Every such job of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Every queued, scheduled or retrying job (needed when no id or filter is given).
        #[arg(long)]
        all: bool,
    },
    /// Discard dead letters (failed jobs) for good: these ids, or every one matching the
    /// filters.
    Discard {
        /// Job ids.
        ids: Vec<i64>,
        /// Every failed job of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Every failed job of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Every failed job (needed when no id or filter is given).
        #[arg(long)]
        all: bool,
    },
    /// Cancel jobs that have not finished (and the documents they work on).
    Cancel {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Operator actions (retry, run now, cancel, discard, pause, resume, cron run, reprocess,
    /// delete), newest first, with who did them.
    Audit {
        /// Only this action.
        #[arg(long)]
        action: Option<String>,
        /// Only actions that changed this job.
        #[arg(long)]
        job: Option<i64>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[command(flatten)]
        out: Output,
    },
}

/// Who runs this command, for the audit trail: `cli:<user>`.
pub(crate) fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

/// Prints what an action did, each refusal with its reason; exit 3 when it left a named job as
/// it was.
fn report(verb: &str, o: &docket_queue::admin::ActionOutcome) -> anyhow::Result<ExitCode> {
    outln!("{verb} {} job(s)", o.changed.len())?;
    if !o.documents.is_empty() {
        outln!("cancelled {} document(s)", o.documents.len())?;
    }
    for r in &o.refused {
        eprintln!("job {}: not {verb}: {}", r.id, r.reason);
    }
    Ok(if o.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// A selection needs ids, a filter, or `--all` (which takes nothing else).
fn selection(
    ids: &[i64],
    kind: &Option<String>,
    queue: &Option<String>,
    all: bool,
) -> anyhow::Result<()> {
    let usage = |m: &str| Err(crate::out::Usage(m.to_owned()).into());
    if ids.is_empty() && kind.is_none() && queue.is_none() && !all {
        return usage("name job ids, a --kind or --queue filter, or --all");
    }
    if all && (!ids.is_empty() || kind.is_some() || queue.is_some()) {
        return usage("--all takes no ids or filters");
    }
    Ok(())
}

/// `docket queues …`
#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// Stop claiming jobs of a queue (all queues with `--all`).
    Pause {
        /// The queue.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        queue: Option<String>,
        /// Every queue.
        #[arg(long)]
        all: bool,
    },
    /// Resume a paused queue (or the global switch with `--all`).
    Resume {
        /// The queue.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        queue: Option<String>,
        /// The global switch.
        #[arg(long)]
        all: bool,
    },
    /// Paused queues, workers (live or dead, by each one's lease) and the leader.
    Status(Output),
}

/// `docket cron …`
#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Schedules with their next run.
    List(Output),
    /// Recent runs, newest first.
    History {
        /// Only this schedule.
        name: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Enqueue one run of a schedule now; exits 3, enqueuing nothing, while a run of it is
    /// queued, running or retrying.
    Run {
        /// The schedule.
        name: String,
    },
}

async fn open(config: &Config) -> anyhow::Result<Backend> {
    Backend::open_now(config).await
}

/// `docket migrate`
pub async fn migrate(config: Config) -> anyhow::Result<ExitCode> {
    let b = open(&config).await?;
    outln!("migrations applied ({})", b.name())?;
    Ok(ExitCode::SUCCESS)
}

fn print<T: Serialize>(
    out: Output,
    rows: &[T],
    table: impl FnOnce(&[T], DateTime<Utc>) -> String,
) -> anyhow::Result<()> {
    if out.json {
        outln!("{}", serde_json::to_string_pretty(rows)?)
    } else {
        out!("{}", table(rows, Utc::now()))
    }
}

/// `docket jobs …`
pub async fn jobs(config: Config, cmd: JobsCommand) -> anyhow::Result<ExitCode> {
    // A usage error says so before anything touches the database.
    if let JobsCommand::Retry {
        ids,
        kind,
        queue,
        all,
    }
    | JobsCommand::RunNow {
        ids,
        kind,
        queue,
        all,
    }
    | JobsCommand::Discard {
        ids,
        kind,
        queue,
        all,
    } = &cmd
    {
        selection(ids, kind, queue, *all)?;
    }
    let b = open(&config).await?;
    with_driver!(b, |d| jobs_with(d, cmd).await)
}

async fn jobs_with<D: Driver>(d: D, cmd: JobsCommand) -> anyhow::Result<ExitCode> {
    let mut c = d.conn().await?;
    match cmd {
        JobsCommand::Stats(out) => {
            let rows = c.job_stats().await?;
            print(out, &rows, views::stats)?;
        }
        JobsCommand::List {
            state,
            kind,
            queue,
            limit,
            out,
        } => {
            let rows = c
                .job_list(JobListParams {
                    states: state,
                    job_types: kind,
                    queue,
                    limit,
                    ..Default::default()
                })
                .await?;
            print(out, &rows, views::jobs)?;
        }
        JobsCommand::Get { id, out } => {
            let Some(job) = c.job_get(id).await? else {
                eprintln!("no job {id}");
                return Ok(ExitCode::from(3));
            };
            let attempts = c.job_attempt_list(id).await?;
            if out.json {
                let v = serde_json::json!({ "job": job, "attempts": attempts });
                outln!("{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                out!("{}", views::job(&job, &attempts, Utc::now()))?;
            }
        }
        JobsCommand::Failed { limit, out } => {
            let rows = c
                .job_list(JobListParams {
                    states: vec![JobState::Failed],
                    limit,
                    ..Default::default()
                })
                .await?;
            print(out, &rows, views::jobs)?;
        }
        JobsCommand::Stuck(out) => {
            let rows = c
                .job_list_stuck(JobListStuckParams {
                    now: None,
                    limit: 10_000,
                })
                .await?;
            print(out, &rows, views::stuck)?;
        }
        JobsCommand::Retry {
            ids,
            kind,
            queue,
            all,
        } => {
            selection(&ids, &kind, &queue, all)?;
            drop(c);
            let params = JobRetryParams {
                ids,
                job_type: kind,
                queue,
                now: None,
            };
            let o = docket_queue::admin::retry(&d, &cli_actor(), params).await?;
            return report("retried", &o);
        }
        JobsCommand::RunNow {
            ids,
            kind,
            queue,
            all,
        } => {
            selection(&ids, &kind, &queue, all)?;
            drop(c);
            let params = JobRunNowParams {
                ids,
                job_type: kind,
                queue,
                now: None,
            };
            let o = docket_queue::admin::run_now(&d, &cli_actor(), params).await?;
            return report("run now", &o);
        }
        JobsCommand::Discard {
            ids,
            kind,
            queue,
            all,
        } => {
            selection(&ids, &kind, &queue, all)?;
            drop(c);
            let params = JobDiscardParams {
                ids,
                job_type: kind,
                queue,
            };
            let o = docket_queue::admin::discard(&d, &cli_actor(), params).await?;
            return report("discarded", &o);
        }
        JobsCommand::Cancel { ids } => {
            drop(c);
            let o = docket_queue::admin::cancel(&d, &cli_actor(), ids).await?;
            return report("cancelled", &o);
        }
        JobsCommand::Audit {
            action,
            job,
            limit,
            out,
        } => {
            let rows = c
                .audit_list(AuditListParams {
                    action,
                    job_id: job,
                    before_id: None,
                    limit,
                })
                .await?;
            print(out, &rows, views::audit)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `docket queues …`
pub async fn queues(config: Config, cmd: QueuesCommand) -> anyhow::Result<ExitCode> {
    let b = open(&config).await?;
    with_driver!(b, |d| queues_with(d, cmd).await)
}

async fn queues_with<D: Driver>(d: D, cmd: QueuesCommand) -> anyhow::Result<ExitCode> {
    let mut c = d.conn().await?;
    let target = |queue: Option<String>, all: bool| -> anyhow::Result<String> {
        match (queue, all) {
            (Some(q), false) => Ok(q),
            (None, true) => Ok(ALL_QUEUES.to_owned()),
            _ => Err(crate::out::Usage("name one queue, or --all".into()).into()),
        }
    };
    match cmd {
        QueuesCommand::Pause { queue, all } => {
            let name = target(queue, all)?;
            drop(c);
            docket_queue::admin::set_paused(&d, &cli_actor(), &name, true).await?;
            outln!("paused {name}")?;
        }
        QueuesCommand::Resume { queue, all } => {
            let name = target(queue, all)?;
            drop(c);
            docket_queue::admin::set_paused(&d, &cli_actor(), &name, false).await?;
            outln!("resumed {name}")?;
        }
        QueuesCommand::Status(out) => {
            let queues = c.queue_list().await?;
            let workers = c.worker_list(WorkerListParams::default()).await?;
            let leader = c.leader_get(None).await?;
            if out.json {
                let v =
                    serde_json::json!({ "queues": queues, "workers": workers, "leader": leader });
                outln!("{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                let leader = leader.as_ref();
                out!("{}", views::queues(&queues, &workers, leader, Utc::now()))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `docket cron …`
pub async fn cron(config: Config, cmd: CronCommand) -> anyhow::Result<ExitCode> {
    let b = open(&config).await?;
    with_driver!(b, |d| cron_with(d, cmd).await)
}

async fn cron_with<D: Driver>(d: D, cmd: CronCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CronCommand::List(out) => {
            let rows = d.conn().await?.cron_schedule_list().await?;
            print(out, &rows, views::schedules)?;
        }
        CronCommand::History { name, limit, out } => {
            let mut c = d.conn().await?;
            if let Some(name) = &name
                && !c
                    .cron_schedule_list()
                    .await?
                    .iter()
                    .any(|s| &s.name == name)
            {
                anyhow::bail!("no cron schedule named {name:?} (docket cron list shows them)");
            }
            let rows = c
                .cron_run_list(CronRunListParams {
                    schedule_name: name,
                    limit,
                })
                .await?;
            print(out, &rows, views::runs)?;
        }
        CronCommand::Run { name } => {
            let s = Scheduler::new(d.clone(), SchedulerConfig::default(), Arc::new(SystemClock))?;
            match s.run_now(&name).await? {
                ManualRun::Enqueued(run) => {
                    let jobs: Vec<i64> = run.job_id.into_iter().collect();
                    let detail = serde_json::json!({ "run": run.id });
                    docket_queue::admin::record(
                        &d,
                        &cli_actor(),
                        "cron_run",
                        Some(name.clone()),
                        &jobs,
                        detail,
                    )
                    .await?;
                    outln!(
                        "enqueued run {} of {name} (job {})",
                        run.id,
                        run.job_id
                            .map(|j| j.to_string())
                            .unwrap_or_else(|| "-".into())
                    )?
                }
                ManualRun::Live => {
                    outln!("nothing enqueued: a run of {name} is already live")?;
                    return Ok(ExitCode::from(3));
                }
                ManualRun::NoSuchSchedule => anyhow::bail!("no cron schedule named {name:?}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
