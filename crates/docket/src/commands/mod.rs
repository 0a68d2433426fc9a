//! One module per group of subcommands.

pub mod admin;
pub mod alerts;
pub mod bench;
pub mod bench_http;
pub mod bench_pipeline;
pub mod bench_retrieval;
pub mod bench_search;
pub(crate) mod bench_stats;
pub mod client;
pub mod drill;
pub mod models;
pub mod reindex;
pub mod run;
mod sse;
pub(crate) mod table;
pub(crate) mod views;
