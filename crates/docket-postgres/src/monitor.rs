//! The [`MonitorStore`] part of the executor: alerts, silences and attempt counts.

use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use docket_core::*;
use sqlx::{Connection, PgConnection};

use crate::exec::{PgExec, map_err};
use crate::rows;

impl<C> MonitorStore for PgExec<C>
where
    C: DerefMut<Target = PgConnection> + Send,
{
    async fn alert_open(&mut self, p: &AlertOpenParams) -> Result<AlertRow> {
        let row = sqlx::query(include_str!("../queries/alert_open.sql"))
            .bind(&p.rule)
            .bind(&p.subject)
            .bind(p.state.as_str())
            .bind(&p.severity)
            .bind(&p.summary)
            .bind(&p.figures)
            .bind(p.now)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        if let Some(row) = row {
            return rows::alert(&row);
        }
        let row = sqlx::query(include_str!("../queries/alert_open_get.sql"))
            .bind(&p.rule)
            .bind(&p.subject)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?
            .ok_or_else(|| Error::Invalid("the open alert closed during the insert".into()))?;
        rows::alert(&row)
    }

    async fn alert_update(&mut self, p: &AlertUpdateParams) -> Result<Option<AlertRow>> {
        let row = sqlx::query(include_str!("../queries/alert_update.sql"))
            .bind(p.id)
            .bind(p.from.as_str())
            .bind(p.to.as_str())
            .bind(&p.summary)
            .bind(&p.figures)
            .bind(p.notified)
            .bind(p.now)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::alert).transpose()
    }

    async fn alert_list(&mut self, p: &AlertListParams) -> Result<Vec<AlertRow>> {
        if p.limit < 0 {
            return Err(Error::Invalid(format!("limit {} is negative", p.limit)));
        }
        sqlx::query(include_str!("../queries/alert_list.sql"))
            .bind(p.open)
            .bind(&p.rule)
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
        let row = sqlx::query(include_str!("../queries/alert_silence_insert.sql"))
            .bind(&p.rule)
            .bind(&p.subject)
            .bind(p.now)
            .bind(p.until)
            .bind(&p.actor)
            .bind(&p.reason)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows::alert_silence(&row)
    }

    async fn alert_silence_list(
        &mut self,
        now: Option<DateTime<Utc>>,
    ) -> Result<Vec<AlertSilenceRow>> {
        sqlx::query(include_str!("../queries/alert_silence_list.sql"))
            .bind(now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::alert_silence)
            .collect()
    }

    async fn alert_silence_end(&mut self, id: i64, now: Option<DateTime<Utc>>) -> Result<bool> {
        let done = sqlx::query(include_str!("../queries/alert_silence_end.sql"))
            .bind(id)
            .bind(now)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn job_attempt_counts(
        &mut self,
        p: &JobAttemptCountsParams,
    ) -> Result<Vec<JobAttemptCountRow>> {
        sqlx::query(include_str!("../queries/job_attempt_counts.sql"))
            .bind(p.since)
            .bind(p.now)
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
        sqlx::query(include_str!("../queries/job_attempt_rollup.sql"))
            .bind(p.since)
            .bind(p.until)
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
        sqlx::query(include_str!("../queries/job_attempt_errors.sql"))
            .bind(p.since)
            .bind(p.until)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::error_group)
            .collect()
    }

    async fn analytics_cursor(&mut self) -> Result<Option<DateTime<Utc>>> {
        sqlx::query_scalar(include_str!("../queries/analytics_cursor.sql"))
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)
    }

    async fn analytics_store(&mut self, p: &AnalyticsStoreParams) -> Result<()> {
        let mut tx = self.conn.begin().await.map_err(map_err)?;
        for r in &p.rollup {
            sqlx::query(include_str!("../queries/analytics_rollup_upsert.sql"))
                .bind(r.hour)
                .bind(&r.job_type)
                .bind(&r.queue)
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
            sqlx::query(include_str!("../queries/failure_reason_upsert.sql"))
                .bind(&f.job_type)
                .bind(&f.reason)
                .bind(&f.example)
                .bind(f.count)
                .bind(f.first_seen)
                .bind(f.last_seen)
                .bind(&f.example_job_ids)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        sqlx::query(include_str!("../queries/analytics_cursor_set.sql"))
            .bind(p.rolled_until)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn analytics_prune(&mut self, before: DateTime<Utc>) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(include_str!("../queries/analytics_prune.sql"))
            .bind(before)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(n as u64)
    }

    async fn analytics_rollup_list(
        &mut self,
        p: &RollupListParams,
    ) -> Result<Vec<AttemptRollupRow>> {
        sqlx::query(include_str!("../queries/analytics_rollup_list.sql"))
            .bind(p.since)
            .bind(&p.job_type)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::rollup)
            .collect()
    }

    async fn consistency_report(&mut self) -> Result<ConsistencyReport> {
        use sqlx::Row as _;
        let row = sqlx::query(include_str!("../queries/consistency_report.sql"))
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
        if p.limit < 0 {
            return Err(Error::Invalid(format!("limit {} is negative", p.limit)));
        }
        sqlx::query(include_str!("../queries/failure_reason_list.sql"))
            .bind(&p.job_type)
            .bind(p.seen_since)
            .bind(p.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::failure_reason)
            .collect()
    }
}
