//! What the engine tests share: a test job kind whose handler does what its arguments say
//! and reports each attempt on a channel, and helpers to start runtimes and wait on jobs.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use docket_core::*;
use docket_queue::retry::Backoff;
use docket_queue::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Arguments of the test job: what to do, and a label to report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub label: String,
    #[serde(default)]
    pub action: Action,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum Action {
    #[default]
    Ok,
    Retryable,
    Permanent,
    Sleep(u64),
    Panic,
    /// Busy the CPU this long on the blocking pool, then report `<label>-done`.
    Spin(u64),
    /// Enqueue a follow-up job (in the same queue) and complete this one in the same
    /// transaction.
    Chain,
    /// Wait until told to stop (the job's cancellation token), then report `<label>-stopped`
    /// and fail, as a handler cut short does.
    AwaitCancel,
}

impl JobArgs for Task {
    const KIND: &'static str = "test.task";
}

/// Reports each attempt's label on a channel; timeouts and backoff are short.
pub struct TaskWorker(pub mpsc::UnboundedSender<String>);

impl<D: Driver> Worker<D> for TaskWorker {
    type Args = Task;

    async fn work(&self, ctx: JobContext<D>, t: Task) -> Result<(), JobError> {
        let _ = self.0.send(t.label.clone());
        match t.action {
            Action::Ok => Ok(()),
            Action::Retryable => Err(JobError::retryable("flaky")),
            Action::Permanent => Err(JobError::permanent("corrupt input")),
            Action::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            Action::Panic => panic!("boom"),
            Action::Spin(ms) => {
                ctx.run_blocking(move || {
                    let until = std::time::Instant::now() + Duration::from_millis(ms);
                    let mut x = 0u64;
                    while std::time::Instant::now() < until {
                        x = x.wrapping_mul(31).wrapping_add(1);
                    }
                    std::hint::black_box(x);
                })
                .await?;
                let _ = self.0.send(format!("{}-done", t.label));
                Ok(())
            }
            Action::Chain => {
                let mut tx = ctx.driver().begin().await?;
                let next = insert_params(
                    &Task {
                        label: format!("{}-next", t.label),
                        action: Action::Ok,
                    },
                    InsertOpts {
                        queue: Some(ctx.job().queue.clone()),
                        ..InsertOpts::default()
                    },
                )?;
                tx.job_insert_many(JobInsertManyParams { jobs: vec![next] })
                    .await?;
                if ctx.complete_in(&mut tx).await? {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                Ok(())
            }
            Action::AwaitCancel => {
                ctx.cancelled().cancelled().await;
                let _ = self.0.send(format!("{}-stopped", t.label));
                Err(JobError::retryable("stopped: told to"))
            }
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(2_500)
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            steps: vec![Duration::from_millis(10)],
            jitter: 0.0,
        }
    }
}

pub fn fast_config() -> RuntimeConfig {
    RuntimeConfig {
        worker_id: Some(format!("test-{}", uuid::Uuid::new_v4().simple())),
        poll_interval: Duration::from_millis(50),
        heartbeat_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_millis(200),
        maintenance: None,
        ..Default::default()
    }
}

pub fn start<D: Driver>(
    d: &D,
    config: RuntimeConfig,
) -> (RuntimeHandle, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut w = Workers::new();
    w.register(TaskWorker(tx));
    let h = Runtime::start(d.clone(), w, config, Arc::new(SystemClock)).unwrap();
    (h, rx)
}

pub async fn enqueue<D: Driver>(d: &D, label: &str, action: Action, opts: InsertOpts) -> i64 {
    Client::new(d.clone())
        .insert(
            &Task {
                label: label.into(),
                action,
            },
            opts,
        )
        .await
        .unwrap()
        .id
}

pub async fn recv(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a handler ran in time")
        .expect("channel open")
}

pub async fn job<D: Driver>(d: &D, id: i64) -> JobRow {
    d.conn().await.unwrap().job_get(id).await.unwrap().unwrap()
}

/// Waits (polling, bounded) until job `id` reaches `state`.
pub async fn until_state<D: Driver>(d: &D, id: i64, state: JobState) -> JobRow {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let j = job(d, id).await;
        if j.status == state {
            return j;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} stuck in {} (wanted {state})",
            j.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn outcomes<D: Driver>(d: &D, id: i64) -> Vec<AttemptOutcome> {
    d.conn()
        .await
        .unwrap()
        .job_attempt_list(id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect()
}
