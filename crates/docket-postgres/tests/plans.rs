//! Query plans that must not depend on luck with statistics.

use docket_conformance::harness::{TestDb, postgres};
use docket_core::{Driver, Executor, JobInsertManyParams, JobInsertParams};

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
    sqlx::query("ANALYZE processing_jobs")
        .execute(d.pool())
        .await
        .unwrap();
    let sql = include_str!("../queries/job_complete_many.sql");
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN {}",
        sql.replace("$1::int8[]", "'{1,2}'::int8[]")
            .replace("$2::int4[]", "'{1,1}'::int4[]")
            .replace("$3::text[]", "'{completed,completed}'::text[]")
            .replace("$4::timestamptz[]", "'{NULL,NULL}'::timestamptz[]")
            .replace("$5::text[]", "'{NULL,NULL}'::text[]")
            .replace("$6::int4[]", "'{0,0}'::int4[]")
            .replace("$7::text[]", "'{w,w}'::text[]")
            .replace("$8::timestamptz[]", "ARRAY[now(), now()]")
            .replace("$9::timestamptz[]", "ARRAY[now(), now()]")
            .replace("$10::text[]", "'{completed,completed}'::text[]")
            .replace("$11::uuid[]", "ARRAY[gen_random_uuid(), gen_random_uuid()]")
            .replace("$12::timestamptz[]", "ARRAY[now(), now()]")
            .replace("$13::text[]", "'{NULL,NULL}'::text[]")
            .replace("$14::bool[]", "'{true,true}'::bool[]")
    ))
    .fetch_all(d.pool())
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("processing_jobs_pkey"), "{plan}");
    assert!(!plan.contains("processing_jobs_running_idx"), "{plan}");
}
