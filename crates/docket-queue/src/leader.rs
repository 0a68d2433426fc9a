//! Leader election: exactly one process runs maintenance.
//!
//! ```text
//!            elect ok                      renew ok
//! follower ───────────▶ leader ◀───────────────┐
//!    ▲                    │ └──────────────────┘
//!    └── renew failed / ──┘
//!        error / shutdown (resign)
//! ```
//!
//! The leadership is a row (`docket_leader`) with a term that lapses unless renewed. A
//! candidate takes it when it is free or lapsed; the holder renews it every third of the term.
//! A leader that cannot renew (database unreachable) stops its services at once, before its
//! term can lapse and another node take over. A leader that dies is replaced within one term.
//! On shutdown the leader resigns, so a successor takes over at its next attempt.

use std::sync::Arc;
use std::time::Duration;

use docket_core::{LeaderElectParams, QueueDriver, QueueExecutor, Result};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::maintenance::{Maintenance, chrono_dur};

/// Campaigns for leadership and runs maintenance while leading.
pub(crate) struct Elector<D: QueueDriver> {
    pub(crate) driver: D,
    pub(crate) leader_id: String,
    pub(crate) ttl: Duration,
    pub(crate) maintenance: Arc<Maintenance<D>>,
    pub(crate) leading: watch::Sender<bool>,
}

impl<D: QueueDriver> Elector<D> {
    async fn attempt(&self) -> Result<bool> {
        let mut conn = self.driver.control_conn().await?;
        conn.leader_attempt_elect(LeaderElectParams {
            leader_id: self.leader_id.clone(),
            ttl: chrono_dur(self.ttl),
            now: None,
        })
        .await
    }

    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut services: Option<(CancellationToken, tokio::task::JoinHandle<()>)> = None;
        loop {
            // A renewal that hangs must not keep the services running past the term: after a
            // third of it, count it as lost.
            let leads = match tokio::time::timeout(self.ttl / 3, self.attempt()).await {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "leader election failed");
                    false
                }
                Err(_) => {
                    tracing::warn!("leader election timed out");
                    false
                }
            };
            if services
                .as_ref()
                .is_some_and(|(_, join)| join.is_finished())
            {
                // The services ended on their own (a panic): leading without them would stop
                // maintenance for the whole cluster.
                tracing::error!("maintenance services stopped unexpectedly; restarting them");
                stop_services(&mut services).await;
            }
            match (leads, services.is_some()) {
                (true, false) => {
                    tracing::info!(leader_id = %self.leader_id, "became maintenance leader");
                    let token = stop.child_token();
                    let m = self.maintenance.clone();
                    let t = token.clone();
                    services = Some((token, tokio::spawn(async move { m.run(t).await })));
                }
                (false, true) => {
                    tracing::warn!(leader_id = %self.leader_id, "lost maintenance leadership");
                    stop_services(&mut services).await;
                }
                _ => {}
            }
            self.leading.send_replace(leads);
            let wait = if leads { self.ttl / 3 } else { self.ttl / 2 };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let was_leading = services.is_some();
        stop_services(&mut services).await;
        if was_leading {
            let resigned = async {
                let mut c = self.driver.conn().await?;
                c.leader_resign(&self.leader_id).await
            };
            if let Err(e) = resigned.await {
                tracing::warn!(error = %e, "could not resign leadership; it lapses on its own");
            }
        }
        self.leading.send_replace(false);
    }
}

async fn stop_services(s: &mut Option<(CancellationToken, tokio::task::JoinHandle<()>)>) {
    if let Some((token, join)) = s.take() {
        token.cancel();
        let _ = join.await;
    }
}
