//! Wake-ups across processes by `LISTEN/NOTIFY`, coalesced.
//!
//! A `NOTIFY` serialises on a global lock at commit: one per enqueue would cap one-call
//! enqueue at a third of what the server commits otherwise. So an enqueue only *pokes* the
//! [`Notifier`]; one task sends a single `NOTIFY` for all pokes that arrived while the previous
//! one was in flight. Every committed insert is followed by a `NOTIFY` sent after its commit,
//! so no wake-up is lost, and an idle queue still wakes within one round trip.

use std::sync::Arc;
use std::time::Duration;

use docket_core::{Broadcasts, Wakeups};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc};

use crate::{BROADCAST_CHANNEL, NOTIFY_CHANNEL};

/// Unread broadcasts a slow subscriber may fall behind by.
const BROADCAST_CAPACITY: usize = 4096;

/// PostgreSQL refuses `NOTIFY` payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7999;

/// Pokes the sender task; dropping the last clone stops both tasks.
#[derive(Clone, Debug)]
pub(crate) struct Notifier {
    poke: Arc<Notify>,
    _guard: Arc<TaskGuard>,
}

#[derive(Debug)]
struct TaskGuard(Vec<tokio::task::JoinHandle<()>>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl Notifier {
    /// Starts the wake-up sender and, with `listen`, the listener; broadcasts cross processes
    /// only when listening (without it they stay in this process).
    pub(crate) fn start(pool: PgPool, wakeups: Wakeups, listen: bool) -> (Broadcasts, Self) {
        let poke = Arc::new(Notify::new());
        let mut tasks = vec![tokio::spawn(send_loop(
            pool.clone(),
            poke.clone(),
            wakeups.clone(),
        ))];
        let broadcasts = if listen {
            let (broadcasts, outbound) = Broadcasts::carried(BROADCAST_CAPACITY);
            // Tags this driver's broadcasts so that its listener skips them: its own
            // subscribers heard them when they were published.
            let origin: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
            tasks.push(tokio::spawn(broadcast_loop(
                pool.clone(),
                outbound,
                origin.clone(),
            )));
            tasks.push(tokio::spawn(listen_loop(
                pool,
                wakeups,
                broadcasts.clone(),
                origin,
            )));
            broadcasts
        } else {
            Broadcasts::local(BROADCAST_CAPACITY)
        };
        let notifier = Self {
            poke,
            _guard: Arc::new(TaskGuard(tasks)),
        };
        (broadcasts, notifier)
    }

    /// Jobs were committed: make sure a `NOTIFY` follows.
    pub(crate) fn poke(&self) {
        // notify_one stores a permit when the sender is busy: pokes during a send coalesce
        // into exactly one more send.
        self.poke.notify_one();
    }
}

async fn send_loop(pool: PgPool, poke: Arc<Notify>, local: Wakeups) {
    loop {
        poke.notified().await;
        // Workers in this process need no round trip through the server.
        local.wake();
        let sent = sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            // Other processes fall back to polling until the database is back.
            tracing::debug!(error = %e, "notify failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Sends broadcasts to other processes in order, one `NOTIFY` each, as `origin:message`.
async fn broadcast_loop(
    pool: PgPool,
    mut outbound: mpsc::UnboundedReceiver<String>,
    origin: Arc<str>,
) {
    while let Some(message) = outbound.recv().await {
        let payload = format!("{origin}:{message}");
        if payload.len() > MAX_PAYLOAD {
            tracing::warn!(
                bytes = message.len(),
                "broadcast too large for NOTIFY; delivered in this process only"
            );
            continue;
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(BROADCAST_CHANNEL)
            .bind(&payload)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            // Other processes miss it; their readers re-read the tables.
            tracing::debug!(error = %e, "broadcast notify failed");
        }
    }
}

async fn listen_loop(pool: PgPool, wakeups: Wakeups, broadcasts: Broadcasts, origin: Arc<str>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(&pool, &wakeups, &broadcasts, &origin).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, "listen connection lost; polling until it is back");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn listen_once(
    pool: &PgPool,
    wakeups: &Wakeups,
    broadcasts: &Broadcasts,
    origin: &str,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Returning errors instead of reconnecting silently lets us wake workers after an
    // outage: inserts made meanwhile were never announced to us.
    listener.ignore_pool_close_event(false);
    listener
        .listen_all([NOTIFY_CHANNEL, BROADCAST_CHANNEL])
        .await?;
    wakeups.wake();
    loop {
        match listener.try_recv().await? {
            Some(n) if n.channel() == BROADCAST_CHANNEL => match n.payload().split_once(':') {
                Some((from, _)) if from == origin => {}
                Some((_, message)) => broadcasts.deliver(Arc::from(message)),
                None => tracing::debug!("broadcast without an origin ignored"),
            },
            Some(_) => wakeups.wake(),
            None => {
                // The connection dropped and will be re-established by the next call.
                wakeups.wake();
                return Ok(());
            }
        }
    }
}
