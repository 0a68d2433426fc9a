//! How an insert's rows become [`JobInsertResult`]s: the same on every backend.
//!
//! A driver runs two statements, [`JobInsertStatements::insert`] (insert what no live job's
//! unique key stops; return the rows inserted) and [`JobInsertStatements::holders`] (the job
//! holding each key); [`insert_jobs`] decides everything else: which input each row belongs to,
//! which inputs were duplicates and of which job, and what happens when a duplicate's holder
//! is gone by the time it is read (it finished and was deleted in between): the key is free
//! again, so those inputs are inserted again, as if they had come a moment later.

use std::collections::HashMap;
use std::future::Future;

use crate::{Error, JobInsertParams, JobInsertResult, Result};

/// How many times inputs whose holder vanished are inserted again before giving up.
const MAX_ROUNDS: usize = 3;

/// A driver's two statements for [`insert_jobs`].
pub trait JobInsertStatements: Send {
    /// Inserts the jobs in one statement, skipping each job whose unique key a live job
    /// (queued, running or retrying) holds, this batch's earlier jobs included. Returns
    /// `(id, unique_key)` of each row inserted, in any order.
    fn insert(
        &mut self,
        jobs: &[&JobInsertParams],
    ) -> impl Future<Output = Result<Vec<(i64, Option<String>)>>> + Send;

    /// The job holding each key: the live one if any, else the newest. Keys no job holds are
    /// left out.
    fn holders(
        &mut self,
        keys: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, i64>>> + Send;
}

/// Inserts jobs (already validated) through a driver's statements: results in input order,
/// each the new job's id, or, marked duplicate, the id of the live job that holds its key.
pub async fn insert_jobs<S: JobInsertStatements>(
    statements: &mut S,
    jobs: &[JobInsertParams],
) -> Result<Vec<JobInsertResult>> {
    let mut results: Vec<Option<JobInsertResult>> = vec![None; jobs.len()];
    let mut pending: Vec<usize> = (0..jobs.len()).collect();
    for _ in 0..MAX_ROUNDS {
        let batch: Vec<&JobInsertParams> = pending.iter().map(|&i| &jobs[i]).collect();
        let inserted = statements.insert(&batch).await?;
        let ids = pair_inserted(&batch, inserted)?;
        let mut duplicates = Vec::new();
        for (&i, id) in pending.iter().zip(ids) {
            match id {
                Some(id) => {
                    results[i] = Some(JobInsertResult {
                        id,
                        duplicate: false,
                    })
                }
                None => duplicates.push(i),
            }
        }
        if duplicates.is_empty() {
            break;
        }
        let key = |i: usize| jobs[i].unique_key.as_deref().unwrap_or_default();
        let mut keys: Vec<&str> = duplicates.iter().map(|&i| key(i)).collect();
        keys.sort_unstable();
        keys.dedup();
        let holders = statements.holders(&keys).await?;
        pending.clear();
        for i in duplicates {
            match holders.get(key(i)) {
                Some(&id) => {
                    results[i] = Some(JobInsertResult {
                        id,
                        duplicate: true,
                    })
                }
                None => pending.push(i),
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| {
                Error::Database(
                    format!(
                        "unique key {:?}: the job holding it vanished {MAX_ROUNDS} times in a row",
                        jobs[i].unique_key.as_deref().unwrap_or_default()
                    )
                    .into(),
                )
            })
        })
        .collect()
}

/// Which input each inserted row belongs to: `Some(id)` for an input inserted, `None` for a
/// duplicate. Ids grow in input order within one statement, and of several inputs sharing a
/// key only the first can be inserted, so walking the inputs beside the rows sorted by id
/// pairs them: an input whose key does not match the next row was a duplicate.
fn pair_inserted(
    jobs: &[&JobInsertParams],
    mut inserted: Vec<(i64, Option<String>)>,
) -> Result<Vec<Option<i64>>> {
    let mismatch = || Error::Database("inserted jobs do not match the input".into());
    inserted.sort_unstable_by_key(|r| r.0);
    let mut rows = inserted.into_iter().peekable();
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let key = job.unique_key.as_deref();
        match rows.next_if(|(_, k)| k.as_deref() == key) {
            Some((id, _)) => out.push(Some(id)),
            None if key.is_some() => out.push(None),
            None => return Err(mismatch()),
        }
    }
    if rows.next().is_some() {
        return Err(mismatch());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde_json::json;

    use super::*;

    /// A table of live keys, as the statements would find it; `vanish` holders are deleted
    /// right after each insert (a holder that finishes and is cleaned up in between).
    #[derive(Default)]
    struct Table {
        next_id: i64,
        live: BTreeMap<String, i64>,
        vanish: usize,
        inserts: usize,
    }

    impl JobInsertStatements for Table {
        async fn insert(
            &mut self,
            jobs: &[&JobInsertParams],
        ) -> Result<Vec<(i64, Option<String>)>> {
            self.inserts += 1;
            let mut rows = Vec::new();
            for j in jobs {
                if let Some(k) = &j.unique_key
                    && self.live.contains_key(k)
                {
                    continue;
                }
                self.next_id += 1;
                if let Some(k) = &j.unique_key {
                    self.live.insert(k.clone(), self.next_id);
                }
                rows.push((self.next_id, j.unique_key.clone()));
            }
            // The database returns rows in any order.
            rows.reverse();
            Ok(rows)
        }

        async fn holders(&mut self, keys: &[&str]) -> Result<HashMap<String, i64>> {
            if self.vanish > 0 {
                self.vanish -= 1;
                self.live.clear();
            }
            Ok(keys
                .iter()
                .filter_map(|k| Some((k.to_string(), *self.live.get(*k)?)))
                .collect())
        }
    }

    fn job(key: Option<&str>) -> JobInsertParams {
        let mut j = JobInsertParams::new("k", json!({}));
        j.unique_key = key.map(str::to_owned);
        j
    }

    fn r(id: i64, duplicate: bool) -> JobInsertResult {
        JobInsertResult { id, duplicate }
    }

    #[tokio::test]
    async fn rows_pair_with_inputs_and_duplicates_name_their_holder() {
        let mut t = Table::default();
        t.live.insert("held".into(), 100);
        let jobs = [
            job(Some("a")),
            job(None),
            job(Some("a")),
            job(Some("held")),
            job(None),
        ];
        let res = insert_jobs(&mut t, &jobs).await.unwrap();
        assert_eq!(
            res,
            vec![
                r(1, false),
                r(2, false),
                r(1, true),
                r(100, true),
                r(3, false)
            ]
        );
        assert_eq!(t.inserts, 1);
    }

    #[tokio::test]
    async fn a_holder_that_vanished_frees_the_key_and_the_input_is_inserted() {
        let mut t = Table::default();
        t.live.insert("k".into(), 100);
        t.next_id = 100;
        t.vanish = 1;
        let jobs = [job(Some("k")), job(Some("k")), job(None)];
        let res = insert_jobs(&mut t, &jobs).await.unwrap();
        // Round one inserted the job without a key; both keyed inputs went round again, where
        // the first took the key and the second became its duplicate.
        assert_eq!(res, vec![r(102, false), r(102, true), r(101, false)]);
        assert_eq!(t.inserts, 2);
    }

    #[tokio::test]
    async fn holders_that_keep_vanishing_are_an_error_not_a_made_up_id() {
        let mut t = Table::default();
        t.live.insert("k".into(), 7);
        t.vanish = usize::MAX;
        // Every round: the insert is stopped by a live holder, which is gone when read.
        struct Stubborn(Table);
        impl JobInsertStatements for Stubborn {
            async fn insert(
                &mut self,
                _: &[&JobInsertParams],
            ) -> Result<Vec<(i64, Option<String>)>> {
                self.0.inserts += 1;
                Ok(Vec::new())
            }
            async fn holders(&mut self, keys: &[&str]) -> Result<HashMap<String, i64>> {
                self.0.holders(keys).await
            }
        }
        let mut s = Stubborn(t);
        let e = insert_jobs(&mut s, &[job(Some("k"))]).await.unwrap_err();
        assert!(e.to_string().contains("vanished"), "{e}");
        assert_eq!(s.0.inserts, MAX_ROUNDS);
    }

    #[tokio::test]
    async fn rows_that_match_no_input_are_refused() {
        struct Wrong;
        impl JobInsertStatements for Wrong {
            async fn insert(
                &mut self,
                _: &[&JobInsertParams],
            ) -> Result<Vec<(i64, Option<String>)>> {
                Ok(vec![(1, Some("other".into()))])
            }
            async fn holders(&mut self, _: &[&str]) -> Result<HashMap<String, i64>> {
                Ok(HashMap::new())
            }
        }
        assert!(insert_jobs(&mut Wrong, &[job(None)]).await.is_err());
    }
}
