//! docket's driver conformance suite.
//!
//! Every behaviour a storage driver owes the engine is written here **once**, as a generic
//! async function over a [`harness::TestDb`] (a fresh, migrated database of one backend), and
//! run against every backend by [`driver_test_suite!`], which expands to one `#[tokio::test]`
//! per behaviour:
//!
//! ```text
//! // crates/docket-conformance/tests/sqlite.rs
//! docket_conformance::driver_test_suite!(docket_conformance::harness::sqlite());
//! ```
//!
//! The reference semantics are PostgreSQL's SQL (`crates/docket-postgres/queries/`) and the
//! doc comments of `docket_core`'s [`Executor`](docket_core::Executor) and params structs. Tests never sleep: every
//! call where time matters is given an explicit `now` (or explicit `started_at`/`finished_at`).

pub mod harness;
mod suite;

pub use suite::*;

/// Expands to one `#[tokio::test]` per conformance behaviour, each running the behaviour on a
/// fresh database made by `$make` (an expression evaluating to a future of a
/// [`harness::TestDb`], e.g. `docket_conformance::harness::postgres()`).
///
/// The crate invoking it needs `tokio` (with the `macros` and `rt-multi-thread` features) as a
/// dependency.
#[macro_export]
macro_rules! driver_test_suite {
    ($make:expr) => {
        $crate::driver_test_suite!(@current_thread ($make)
            driver_basics,
            insert_one,
            insert_many,
            insert_validation,
            unique_keys,
            claim_order_and_limit,
            claim_named_queue_only,
            pause_resume,
            complete_outcomes,
            guarded_finalisation,
            completion_by_another_worker_is_refused,
            attempt_list_oldest_first,
            manual_retry,
            cancel,
            rescue,
            claim_tokens_guard_every_end,
            claims_lost,
            run_now_and_discard,
            audit_trail,
            rescue_decisions,
            document_cancel_sticks,
            stuck_jobs_follow_worker_lease,
            delete_finished,
            job_stats,
            job_activity,
            job_throughput,
            failures_outlive_a_retry,
            job_list,
            workers,
            leader,
            cron_schedules_and_runs,
            cron_run_enqueue_job_fields,
            cron_run_enqueue_recorded_occurrence,
            cron_run_duplicate_job,
            cron_run_invalid_recorded,
            cron_schedule_due_at_now,
            cron_run_manual_refused_while_live,
            cron_run_manual_concurrent,
            transaction_commit_visibility,
            transaction_rollback,
            wakeups,
            broadcasts,
            monitoring_views,
            document_insert_get,
            document_list,
            document_stage_updates,
            document_progress_only_rises,
            document_fail_records_stage,
            document_text_upsert_replaces,
            chunk_replace_is_idempotent,
            chunk_embeddings_round_trip,
            chunk_vectors_page_active_only,
            document_activate_swaps_generations,
            document_reprocess_keeps_old_chunks,
            document_delete_cascades,
            document_stuck_detection,
            document_validation,
            vector_search_optional,
        );
        $crate::driver_test_suite!(@multi_thread ($make)
            concurrent_claims,
        );
    };
    (@current_thread ($make:expr) $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let db = $make.await;
                $crate::$name(&db).await;
            }
        )+
    };
    (@multi_thread ($make:expr) $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = $make.await;
                $crate::$name(&db).await;
            }
        )+
    };
}
