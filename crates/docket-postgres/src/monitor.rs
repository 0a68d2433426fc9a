//! The [`MonitorStore`] part of the executor: alerts, silences and attempt counts.

use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use docket_core::*;
use sqlx::PgConnection;

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
}
