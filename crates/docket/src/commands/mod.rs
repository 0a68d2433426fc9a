//! One module per group of subcommands.

pub mod admin;
pub mod bench;
pub mod run;
