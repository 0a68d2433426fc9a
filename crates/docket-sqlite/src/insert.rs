//! Job inserts on SQLite: the two statements [`docket_core::insert_jobs`] needs.

use std::collections::HashMap;

use docket_core::*;
use sqlx::SqliteConnection;

use crate::exec::map_err;
use crate::rows::{micros, uuid_text};

/// The two statements of an insert; [`docket_core::insert_jobs`] decides the results.
struct InsertStatements<'a> {
    conn: &'a mut SqliteConnection,
    now: i64,
}

impl JobInsertStatements for InsertStatements<'_> {
    async fn insert(&mut self, jobs: &[&JobInsertParams]) -> Result<Vec<(i64, Option<String>)>> {
        // One JSON array stands in for PostgreSQL's unnest: one statement per batch, not one
        // per job (each statement is a round trip to sqlx's SQLite thread).
        let input: Vec<_> = jobs
            .iter()
            .map(|j| {
                (
                    j.job_type.as_str(),
                    j.queue.as_str(),
                    j.priority,
                    &j.payload,
                    j.max_attempts,
                    j.run_at.map(micros),
                    j.unique_key.as_deref(),
                    j.document_id.map(uuid_text),
                )
            })
            .collect();
        sqlx::query_as(sql!("job_insert_many"))
            .bind(json_text!(&input)?)
            .bind(self.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)
    }

    async fn holders(&mut self, keys: &[&str]) -> Result<HashMap<String, i64>> {
        Ok(
            sqlx::query_as::<_, (String, Option<i64>)>(sql!("job_find_by_unique_key"))
                .bind(json_text!(&keys)?)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(map_err)?
                .into_iter()
                .filter_map(|(key, id)| Some((key, id?)))
                .collect(),
        )
    }
}

/// Inserts jobs (already validated): see [`docket_core::insert_jobs`].
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    jobs: &[JobInsertParams],
    now: i64,
) -> Result<Vec<JobInsertResult>> {
    insert_jobs(&mut InsertStatements { conn, now }, jobs).await
}
