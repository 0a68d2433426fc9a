//! The [`MonitorStore`] part of the executor: alerts, silences and attempt counts.

use std::ops::DerefMut;

use docket_core::*;
use sqlx::SqliteConnection;

use crate::exec::{SqliteExec, atomic, check_limit, commit, map_err};
use crate::rows::{self, micros, now_micros};

impl<C> MonitorStore for SqliteExec<C>
where
    C: DerefMut<Target = SqliteConnection> + Send,
{
    async fn alert_open(&mut self, p: &AlertOpenParams) -> Result<AlertRow> {
        let row = sqlx::query(sql!("alert_open"))
            .bind(p.rule.as_str())
            .bind(p.subject.as_str())
            .bind(p.state.as_str())
            .bind(p.severity.as_str())
            .bind(p.summary.as_str())
            .bind(json_text!(&p.figures)?)
            .bind(micros(p.now))
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        if let Some(row) = row {
            return rows::alert(&row);
        }
        let row = sqlx::query(sql!("alert_open_get"))
            .bind(p.rule.as_str())
            .bind(p.subject.as_str())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?
            .ok_or_else(|| Error::Invalid("the open alert closed during the insert".into()))?;
        rows::alert(&row)
    }

    async fn alert_update(&mut self, p: &AlertUpdateParams) -> Result<Option<AlertRow>> {
        let row = sqlx::query(sql!("alert_update"))
            .bind(p.id)
            .bind(p.from.as_str())
            .bind(p.to.as_str())
            .bind(p.summary.as_str())
            .bind(json_text!(&p.figures)?)
            .bind(p.notified)
            .bind(micros(p.now))
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::alert).transpose()
    }

    async fn alert_list(&mut self, p: &AlertListParams) -> Result<Vec<AlertRow>> {
        if !check_limit(p.limit)? {
            return Ok(Vec::new());
        }
        sqlx::query(sql!("alert_list"))
            .bind(p.open)
            .bind(p.rule.as_deref())
            .bind(p.before_id)
            .bind(p.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::alert)
            .collect()
    }

    async fn alert_silence_insert(&mut self, p: &AlertSilenceParams) -> Result<AlertSilenceRow> {
        let row = sqlx::query(sql!("alert_silence_insert"))
            .bind(p.rule.as_str())
            .bind(p.subject.as_deref())
            .bind(now_micros(p.now))
            .bind(micros(p.until))
            .bind(p.actor.as_str())
            .bind(p.reason.as_str())
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows::alert_silence(&row)
    }

    async fn alert_silence_list(
        &mut self,
        now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<AlertSilenceRow>> {
        sqlx::query(sql!("alert_silence_list"))
            .bind(now_micros(now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::alert_silence)
            .collect()
    }

    async fn alert_silence_end(
        &mut self,
        id: i64,
        now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<bool> {
        let done = sqlx::query(sql!("alert_silence_end"))
            .bind(id)
            .bind(now_micros(now))
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn job_attempt_counts(
        &mut self,
        p: &JobAttemptCountsParams,
    ) -> Result<Vec<JobAttemptCountRow>> {
        sqlx::query(sql!("job_attempt_counts"))
            .bind(micros(p.since))
            .bind(now_micros(p.now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::attempt_count)
            .collect()
    }

    async fn job_attempt_rollup(
        &mut self,
        p: &AttemptWindowParams,
    ) -> Result<Vec<AttemptRollupRow>> {
        sqlx::query(sql!("job_attempt_rollup"))
            .bind(micros(p.since))
            .bind(micros(p.until))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::rollup)
            .collect()
    }

    async fn job_attempt_errors(
        &mut self,
        p: &AttemptWindowParams,
    ) -> Result<Vec<AttemptErrorGroup>> {
        sqlx::query(sql!("job_attempt_errors"))
            .bind(micros(p.since))
            .bind(micros(p.until))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::error_group)
            .collect()
    }

    async fn analytics_cursor(&mut self) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let v: Option<i64> = sqlx::query_scalar(sql!("analytics_cursor"))
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        v.map(|v| {
            chrono::DateTime::from_timestamp_micros(v)
                .ok_or_else(|| Error::Decode(format!("rolled_until {v} is out of range")))
        })
        .transpose()
    }

    async fn analytics_store(&mut self, p: &AnalyticsStoreParams) -> Result<()> {
        let mut tx = atomic(&mut self.conn).await?;
        for r in &p.rollup {
            sqlx::query(sql!("analytics_rollup_upsert"))
                .bind(micros(r.hour))
                .bind(r.job_type.as_str())
                .bind(r.queue.as_str())
                .bind(r.outcome.as_str())
                .bind(r.attempts)
                .bind(r.total_ms)
                .bind(r.p50_ms)
                .bind(r.p95_ms)
                .bind(r.p99_ms)
                .bind(r.max_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        for f in &p.reasons {
            sqlx::query(sql!("failure_reason_upsert"))
                .bind(f.job_type.as_str())
                .bind(f.reason.as_str())
                .bind(f.example.as_str())
                .bind(f.count)
                .bind(micros(f.first_seen))
                .bind(micros(f.last_seen))
                .bind(json_text!(&f.example_job_ids)?)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        sqlx::query(sql!("analytics_cursor_set"))
            .bind(micros(p.rolled_until))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        commit(tx).await
    }

    async fn analytics_prune(&mut self, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        let mut n = 0;
        for q in [
            sql!("analytics_prune_rollup"),
            sql!("analytics_prune_reasons"),
        ] {
            n += sqlx::query(q)
                .bind(micros(before))
                .execute(&mut *self.conn)
                .await
                .map_err(map_err)?
                .rows_affected();
        }
        Ok(n)
    }

    async fn analytics_rollup_list(
        &mut self,
        p: &RollupListParams,
    ) -> Result<Vec<AttemptRollupRow>> {
        sqlx::query(sql!("analytics_rollup_list"))
            .bind(p.since.map(micros))
            .bind(p.job_type.as_deref())
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::rollup)
            .collect()
    }

    async fn consistency_report(&mut self) -> Result<ConsistencyReport> {
        use sqlx::Row as _;
        let row = sqlx::query(sql!("consistency_report"))
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        let n = |col: &str| -> Result<i64> { row.try_get::<i64, _>(col).map_err(map_err) };
        let attempts_by_outcome: Vec<(String, i64)> = sqlx::query_as(
            "SELECT outcome, count(*) FROM job_attempts GROUP BY outcome ORDER BY outcome",
        )
        .fetch_all(&mut *self.conn)
        .await
        .map_err(map_err)?;
        ConsistencyReport::from_counts(n, attempts_by_outcome)
    }

    async fn failure_reason_list(
        &mut self,
        p: &FailureReasonListParams,
    ) -> Result<Vec<FailureReasonRow>> {
        if !check_limit(p.limit)? {
            return Ok(Vec::new());
        }
        sqlx::query(sql!("failure_reason_list"))
            .bind(p.job_type.as_deref())
            .bind(p.seen_since.map(micros))
            .bind(p.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::failure_reason)
            .collect()
    }
}
