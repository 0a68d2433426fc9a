//! docket's queue engine, generic over the storage [`Driver`](docket_core::Driver).
//!
//! - [`Client`] enqueues jobs (one, many, or inside the caller's transaction) and carries the
//!   operator's controls (retry, cancel, pause, resume).
//! - [`Runtime`] works jobs: one producer per queue claims batches sized to its free slots,
//!   handlers run as tasks, a completer finalises finished attempts in batches, a heartbeat
//!   keeps the worker's lease, and an elector decides which process runs maintenance.
//! - [`maintenance`] holds the leader's services: the rescuer, the cron scheduler and the
//!   cleaner, each with documented defaults and a `run_once` that tests drive directly.
//!
//! - [`admin`] holds the operator's actions (retry, run now, cancel, discard, pause, resume),
//!   each recorded in the audit trail.
//!
//! The engine never names a concrete driver.

pub mod admin;
mod client;
pub mod cron;
mod job;
mod leader;
pub mod maintenance;
pub mod retry;
mod runtime;

pub use client::{Client, InsertOpts, insert_params};
pub use job::{JobArgs, JobContext, JobError, Worker, Workers};
pub use runtime::{
    CLAIMS_CHANGED_TAG, PROCESS_BUDGET, Processed, Processor, QueueConfig, Runtime, RuntimeConfig,
    RuntimeHandle,
};
