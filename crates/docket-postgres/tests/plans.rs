//! Query plans that must not depend on luck with statistics.

use docket_conformance::harness::{TestDb, postgres};
use docket_core::{
    DocumentInsertParams, DocumentSource, DocumentStore, JobInsertManyParams, JobInsertParams,
    QueueDriver, QueueExecutor,
};
use docket_postgres::PgDriver;

/// Updates the planner's statistics of `tables`.
async fn analyze(d: &PgDriver, tables: &[&str]) {
    for table in tables {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(d.pool())
            .await
            .unwrap();
    }
}

/// The plan of `sql` with each placeholder of `args` replaced by its literal, as one text.
async fn plan(d: &PgDriver, sql: &str, args: &[(&str, &str)]) -> String {
    let sql = args.iter().fold(sql.to_owned(), |sql, (param, literal)| {
        sql.replace(param, literal)
    });
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {sql}"))
        .fetch_all(d.pool())
        .await
        .unwrap();
    plan.join("\n")
}

/// After ANALYZE has seen no running job (a drained queue), the planner believes almost none
/// are running. The completion statement must still reach its rows by primary key: a plan
/// that walks the running jobs for every input row turned a 2,000-row completion into a
/// minute-long statement once 80,000 jobs were running.
#[tokio::test]
async fn completion_reaches_rows_by_primary_key_whatever_the_statistics() {
    let db = postgres().await;
    let d = db.driver();
    let jobs = (0..1000)
        .map(|_| JobInsertParams::new("k", serde_json::json!({})))
        .collect();
    d.conn()
        .await
        .unwrap()
        .job_insert_many(JobInsertManyParams { jobs })
        .await
        .unwrap();
    analyze(d, &["processing_jobs"]).await;
    let plan = plan(
        d,
        include_str!("../queries/job_complete_many.sql"),
        &[
            ("$1::int8[]", "'{1,2}'::int8[]"),
            ("$2::int4[]", "'{1,1}'::int4[]"),
            ("$3::text[]", "'{completed,completed}'::text[]"),
            ("$4::timestamptz[]", "'{NULL,NULL}'::timestamptz[]"),
            ("$5::text[]", "'{NULL,NULL}'::text[]"),
            ("$6::int4[]", "'{0,0}'::int4[]"),
            ("$7::text[]", "'{w,w}'::text[]"),
            ("$8::timestamptz[]", "ARRAY[now(), now()]"),
            ("$9::timestamptz[]", "ARRAY[now(), now()]"),
            ("$10::text[]", "'{completed,completed}'::text[]"),
            ("$11::uuid[]", "ARRAY[gen_random_uuid(), gen_random_uuid()]"),
            ("$12::timestamptz[]", "ARRAY[now(), now()]"),
            ("$13::text[]", "'{NULL,NULL}'::text[]"),
            ("$14::bool[]", "'{true,true}'::bool[]"),
        ],
    )
    .await;
    assert!(plan.contains("processing_jobs_pkey"), "{plan}");
    assert!(!plan.contains("processing_jobs_running_idx"), "{plan}");
}

/// A claim reads only due jobs: with many jobs waiting for later (snoozed through a provider
/// outage), it reaches the due ones by the claim index's range on `run_at`, one priority at a
/// time, instead of walking past every waiting job.
#[tokio::test]
async fn claims_read_only_due_jobs() {
    let db = postgres().await;
    let d = db.driver();
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let jobs = (0..20_000)
        .map(|_| {
            let mut j = JobInsertParams::new("k", serde_json::json!({}));
            j.priority = 5;
            j.run_at = Some(later);
            j
        })
        .collect();
    let mut c = d.conn().await.unwrap();
    c.job_insert_many(JobInsertManyParams { jobs })
        .await
        .unwrap();
    c.job_insert_many(JobInsertManyParams {
        jobs: vec![JobInsertParams::new("k", serde_json::json!({}))],
    })
    .await
    .unwrap();
    drop(c);
    analyze(d, &["processing_jobs"]).await;
    let sql = include_str!("../queries/job_get_available.sql")
        .replace("$1", "'w'")
        .replace("$2", "'default'")
        .replace("$3", "10")
        .replace("$4::timestamptz", "NULL::timestamptz");
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
        .fetch_all(d.pool())
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(!plan.contains("Seq Scan on processing_jobs"), "{plan}");
    assert!(plan.contains("processing_jobs_fetch_idx"), "{plan}");
    // The waiting jobs are never read: nothing is filtered out of the index range.
    for line in plan
        .lines()
        .filter(|l| l.contains("Rows Removed by Filter"))
    {
        let n: u64 = line.rsplit(' ').next().unwrap().trim().parse().unwrap();
        assert!(n < 100, "{line}\n{plan}");
    }
}

/// The exact vector scan (no pgvector, no index built yet) pages through the chunks by primary
/// key, whatever the statistics say. As a join with `documents` (or with the generation check
/// as a subquery), statistics that saw one document holding many chunks (a bulk load) let the
/// planner read and sort every chunk for each page: 3.4 s a page at a million chunks.
#[tokio::test]
async fn vector_pages_walk_the_primary_key_whatever_the_statistics() {
    let db = postgres().await;
    let d = db.driver();
    // Statistics that saw one document and many chunks, as after a bulk load.
    let id = uuid::Uuid::now_v7();
    d.conn()
        .await
        .unwrap()
        .document_insert(&DocumentInsertParams {
            id,
            source: DocumentSource::Upload,
            filename: None,
            content_type: None,
            size_bytes: 1,
            sha256: "0".repeat(64),
            storage_key: format!("plans/{id}"),
            callback_url: None,
            metadata: serde_json::json!({}),
            priority: 5,
            now: None,
        })
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO document_chunks \
           (document_id, generation, chunk_index, text, char_start, char_end, token_count, \
            embedding) \
         SELECT $1, 1, i, 'chunk', 0, 5, 1, '\\x0000803f'::bytea \
         FROM generate_series(1, 50000) AS i",
    )
    .bind(id)
    .execute(d.pool())
    .await
    .unwrap();
    analyze(d, &["documents", "document_chunks"]).await;
    let plan = plan(
        d,
        include_str!("../queries/chunk_vectors_page.sql"),
        &[
            ("$1::uuid[]", "NULL::uuid[]"),
            ("$2", "0"),
            ("$3", "2048"),
            ("$4::text", "'hashing-0123456789abcdef'::text"),
        ],
    )
    .await;
    assert!(plan.contains("document_chunks_pkey"), "{plan}");
    assert!(!plan.contains("Seq Scan on document_chunks"), "{plan}");
}

/// docket's connections run without JIT compilation (a 297 ms compile served a 9 ms page of
/// the exact vector scan), unless the URL's `options` says otherwise.
#[tokio::test]
async fn connections_run_without_jit_unless_the_url_says() {
    let db = postgres().await;
    let jit = |d: PgDriver| async move {
        let v: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(d.pool())
            .await
            .unwrap();
        v
    };
    assert_eq!(jit(db.driver().clone()).await, "off");
    let url = docket_conformance::harness::pg_base_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let on =
        docket_conformance::harness::connect_pg(&format!("{url}{sep}options=-c%20jit%3Don"), false);
    assert_eq!(jit(on).await, "on");
}
