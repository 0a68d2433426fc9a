//! Live progress: every persisted change of a document's status or percentage is also
//! broadcast, for the HTTP layer's event streams.
//!
//! A hub made [`ProgressHub::over`] the driver's [`Broadcasts`] hears the changes made by
//! every process sharing the database (PostgreSQL carries them by `NOTIFY`), so that a
//! `docket serve` streams the progress of documents that `docket worker` processes work on.
//!
//! The database row is the truth (a reader that connects late reads it); the broadcast only
//! saves readers from polling. A slow subscriber that falls behind skips events
//! (`RecvError::Lagged`) and should re-read the row.

use chrono::{DateTime, Utc};
use docket_core::{Broadcasts, DocumentRow, DocumentStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// One change of a document's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// The document.
    pub document_id: Uuid,
    /// Its processing generation (bumped by re-processing).
    pub generation: i32,
    /// Its status.
    pub status: DocumentStatus,
    /// The stage running or last run.
    pub stage: Option<String>,
    /// 0–100.
    pub progress: i16,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// When the change was made.
    pub at: DateTime<Utc>,
}

impl ProgressEvent {
    /// The event describing a document row as it is.
    pub fn of(doc: &DocumentRow) -> Self {
        Self {
            document_id: doc.id,
            generation: doc.generation,
            status: doc.status,
            stage: doc.stage.clone(),
            progress: doc.progress,
            error: doc.error.clone(),
            at: doc.updated_at,
        }
    }

    /// Whether the document will make no more progress.
    pub fn is_final(&self) -> bool {
        self.status.is_terminal()
    }
}

/// The broadcast of progress events.
#[derive(Debug, Clone)]
pub struct ProgressHub {
    tx: broadcast::Sender<ProgressEvent>,
    /// Where events go when they are carried between processes.
    bus: Option<Broadcasts>,
}

/// Marks progress events among the driver's broadcasts.
const TAG: &str = "progress ";

/// Longest error message carried in an event (the document row holds all of it).
const MAX_ERROR_CHARS: usize = 1000;

impl Default for ProgressHub {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl ProgressHub {
    /// A hub keeping up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
            bus: None,
        }
    }

    /// A hub whose events travel through `broadcasts`: it hears every process that shares
    /// the database, its own events included. Must be called within a Tokio runtime (it
    /// spawns the task that reads the broadcasts; the task ends when the driver's
    /// broadcasts close).
    pub fn over(broadcasts: Broadcasts) -> Self {
        let hub = Self {
            bus: Some(broadcasts.clone()),
            ..Self::new(1024)
        };
        let tx = hub.tx.clone();
        let mut rx = broadcasts.subscribe();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(m) => {
                        let Some(json) = m.strip_prefix(TAG) else {
                            continue;
                        };
                        match serde_json::from_str::<ProgressEvent>(json) {
                            Ok(e) => {
                                let _ = tx.send(e);
                            }
                            Err(e) => tracing::debug!(error = %e, "unreadable progress broadcast"),
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "progress forwarder fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        hub
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ProgressEvent> {
        self.tx.subscribe()
    }

    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, mut event: ProgressEvent) {
        match &self.bus {
            Some(bus) => {
                if let Some(err) = &mut event.error
                    && err.chars().count() > MAX_ERROR_CHARS
                {
                    *err = err.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
                }
                match serde_json::to_string(&event) {
                    Ok(json) => bus.publish(format!("{TAG}{json}")),
                    Err(_) => {
                        let _ = self.tx.send(event);
                    }
                }
            }
            None => {
                let _ = self.tx.send(event);
            }
        }
    }

    /// Publishes a progress change without re-reading the row.
    pub fn emit(
        &self,
        document_id: Uuid,
        generation: i32,
        status: DocumentStatus,
        stage: &str,
        progress: i16,
        error: Option<String>,
    ) {
        self.publish(ProgressEvent {
            document_id,
            generation,
            status,
            stage: Some(stage.to_owned()),
            progress,
            error,
            at: Utc::now(),
        });
    }
}
