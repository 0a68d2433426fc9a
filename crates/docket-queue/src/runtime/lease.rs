//! Leases and claims: the heartbeat that renews this worker's lease (and stops the worker
//! before a lease it cannot renew lapses), and the checks that tell running handlers their
//! claim ended elsewhere (a broadcast at once, every heartbeat as the fallback).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use docket_core::{
    Error, JobClaimsLostParams, QueueDriver, QueueExecutor, Result, WorkerHeartbeatParams,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{CLAIMS_CHANGED_TAG, Inner};

impl<D: QueueDriver> Inner<D> {
    /// The running claims (of `only`, when given).
    fn claims(&self, only: Option<&[i64]>) -> Vec<(i64, Uuid)> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .iter()
            .filter(|(id, _)| only.is_none_or(|o| o.contains(id)))
            .map(|(id, c)| (*id, c.token))
            .collect()
    }

    /// Tells the handlers of these claims (if still running under them) to stop.
    fn cancel_claims(&self, lost: &[(i64, Uuid)]) -> usize {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for (id, token) in lost {
            if let Some(c) = running.get(id)
                && c.token == *token
            {
                c.cancel.cancel();
                n += 1;
            }
        }
        n
    }

    /// Tells every running handler to stop (the lease is about to lapse).
    fn cancel_all(&self) -> usize {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        for c in running.values() {
            c.fenced.store(true, Ordering::Release);
            c.cancel.cancel();
        }
        running.len()
    }

    /// Asks the database which running claims (of `only`, when given) ended elsewhere, and
    /// cancels those.
    async fn check_claims(&self, only: Option<&[i64]>) -> Result<usize> {
        let claims = self.claims(only);
        if claims.is_empty() {
            return Ok(0);
        }
        let tokens: HashMap<i64, Uuid> = claims.iter().copied().collect();
        let lost = {
            let mut c = self.driver.control_conn().await?;
            c.job_claims_lost(JobClaimsLostParams { claims }).await?
        };
        let lost: Vec<(i64, Uuid)> = lost
            .into_iter()
            .filter_map(|id| tokens.get(&id).map(|t| (id, *t)))
            .collect();
        let n = self.cancel_claims(&lost);
        if n > 0 {
            tracing::info!(
                jobs = ?lost.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                "claims ended elsewhere (cancelled, retried or rescued): stopping their handlers"
            );
        }
        Ok(n)
    }
}

pub(super) async fn heartbeat<D: QueueDriver>(
    inner: Arc<Inner<D>>,
    stop: CancellationToken,
    registered: watch::Sender<bool>,
) {
    let params = WorkerHeartbeatParams {
        id: inner.worker_id.to_string(),
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: i32::try_from(std::process::id()).unwrap_or(0),
        queues: inner.config.queues.iter().map(|q| q.name.clone()).collect(),
        lease: chrono::Duration::from_std(inner.config.lease).unwrap_or(chrono::Duration::MAX),
        now: None,
    };
    let interval = inner.config.heartbeat_interval;
    // Past this without a renewal, the lease may lapse before the next try (a try takes up
    // to one interval, and tries come every fifth of one): stop first.
    let fence_after = inner.config.lease.saturating_sub(interval * 3 / 2);
    let mut failing = false;
    let mut renewed: Option<std::time::Instant> = None;
    let mut fenced = false;
    loop {
        let beat = async {
            let mut c = inner.driver.control_conn().await?;
            c.worker_heartbeat(WorkerHeartbeatParams {
                now: inner.clock.now_for_db(),
                ..params.clone()
            })
            .await
        };
        // A beat that hangs (a stalled connection) must not hold the lease hostage.
        let beat = match tokio::time::timeout(interval, beat).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable(
                format!("heartbeat took longer than {interval:?}").into(),
            )),
        };
        match beat {
            Ok(()) => {
                if failing {
                    tracing::info!("heartbeat restored");
                }
                if fenced {
                    tracing::info!("lease renewed: claiming again");
                }
                failing = false;
                fenced = false;
                renewed = Some(std::time::Instant::now());
                registered.send_replace(true);
                // The fallback for broadcasts that never arrived (no LISTEN, a lost
                // connection): claims that ended elsewhere stop within one interval.
                match tokio::time::timeout(interval, inner.check_claims(None)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "could not check running claims"),
                    Err(_) => tracing::debug!("checking running claims timed out"),
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "heartbeat failed; retrying");
                }
                failing = true;
                if !fenced && renewed.is_some_and(|at| at.elapsed() >= fence_after) {
                    fenced = true;
                    registered.send_replace(false);
                    let running = inner.cancel_all();
                    tracing::error!(
                        running,
                        lease = ?inner.config.lease,
                        "could not renew the lease in time: stopped claiming and cancelled the \
                         running jobs, which the rescuer will hand to another worker"
                    );
                }
            }
        }
        // Retry a failed beat sooner, so a short outage does not cost the lease.
        let wait = if failing { interval / 5 } else { interval };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Hears that claims changed elsewhere (a cancel, a retry) and checks the affected running
/// claims at once, instead of at the next heartbeat.
pub(super) async fn listen_claims<D: QueueDriver>(inner: Arc<Inner<D>>, stop: CancellationToken) {
    let mut rx = inner.driver.broadcasts().subscribe();
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return,
            m = rx.recv() => m,
        };
        let ids: Vec<i64> = match message {
            Ok(m) => match m.strip_prefix(CLAIMS_CHANGED_TAG) {
                Some(json) => serde_json::from_str(json).unwrap_or_default(),
                None => continue,
            },
            // Missed some: check every claim.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                let _ = inner.check_claims(None).await;
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if inner.claims(Some(&ids)).is_empty() {
            continue;
        }
        if let Err(e) = inner.check_claims(Some(&ids)).await {
            tracing::debug!(error = %e, "could not check running claims");
        }
    }
}
