//! Live progress: every persisted change of a document's status or percentage is also
//! broadcast, for the HTTP layer's event streams.
//!
//! The database row is the truth (a reader that connects late reads it); the broadcast only
//! saves readers from polling. A slow subscriber that falls behind skips events
//! (`RecvError::Lagged`) and should re-read the row.

use chrono::{DateTime, Utc};
use docket_core::{DocumentRow, DocumentStatus};
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

/// One change of a document's progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// The broadcast of progress events in this process.
#[derive(Debug, Clone)]
pub struct ProgressHub {
    tx: broadcast::Sender<ProgressEvent>,
}

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
        }
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ProgressEvent> {
        self.tx.subscribe()
    }

    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, event: ProgressEvent) {
        let _ = self.tx.send(event);
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
