//! docket's vocabulary, shared by the queue engine and every storage driver.
//!
//! This crate does no I/O. It names the things the queue stores ([`JobRow`], [`JobAttempt`],
//! [`CronSchedule`] …), the states a job moves through ([`JobState`]), and the one seam between
//! the engine and storage: the [`Driver`] and [`Executor`] traits, whose methods are noun-first
//! (`job_insert_many`, `job_get_available`, `leader_attempt_elect`) and take one params struct
//! each, so that a new field never changes a signature. The document store ([`DocumentRow`],
//! [`DocumentText`], [`ChunkRow`]) goes through the same seam (`document_*`, `chunk_*`).
//!
//! Every driver behaviour is specified once, in `docket-conformance`, and run against each
//! driver.

mod alert;
mod clock;
mod document;
mod driver;
mod error;
mod insert;
mod job;
mod params;
mod search;
mod session;

pub use alert::*;
pub use clock::{Clock, ManualClock, SystemClock};
pub use document::*;
pub use driver::{
    Broadcasts, DocumentStore, Driver, Executor, MonitorStore, QueueDriver, QueueExecutor,
    SessionStore, Transaction, Wakeups,
};
pub use error::{Error, Result};
pub use insert::{JobInsertStatements, insert_jobs};
pub use job::*;
pub use params::*;
pub use search::*;
pub use session::*;

/// Largest payload, in bytes of JSON, accepted by an enqueue.
///
/// Jobs carry references (document ids, storage keys), not documents: a payload this large is a
/// bug in the caller, and refusing it protects the hot table.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Lowest job priority.
pub const PRIORITY_MIN: i16 = 0;
/// Highest job priority.
pub const PRIORITY_MAX: i16 = 10;
