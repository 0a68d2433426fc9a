//! docket's driver conformance suite.
//!
//! Every behaviour a storage driver owes the engine is written here **once**, as a generic
//! async function over a [`harness::TestDb`] (a fresh, migrated database of one backend), and
//! run against every backend by [`driver_test_suite!`], which expands to one `#[tokio::test]`
//! per behaviour. A public async function at the start of a line in `src/suite/` *is* a
//! behaviour: the build script lists them into the macro, so there is no list to keep.
//!
//! ```text
//! // crates/docket-conformance/tests/sqlite.rs
//! docket_conformance::driver_test_suite!(docket_conformance::harness::sqlite());
//! ```
//!
//! Tests of the layers above the drivers (the runtime, the pipeline, the HTTP API) run on both
//! backends through [`both_backends`], the one attribute every test file uses for that.
//!
//! The reference semantics are PostgreSQL's SQL (`crates/docket-postgres/queries/`) and the
//! doc comments of `docket_core`'s [`Executor`](docket_core::Executor) and params structs.
//! Tests never sleep: every call where time matters is given an explicit `now` (or explicit
//! `started_at`/`finished_at`).

pub mod harness;
mod peer;
pub mod s3;
pub mod smtp;
mod suite;

pub use suite::*;

/// Runs a test function on PostgreSQL and on SQLite: see [`docket_test_macros::both_backends`].
pub use docket_test_macros::both_backends;

include!(concat!(env!("OUT_DIR"), "/suite.rs"));
