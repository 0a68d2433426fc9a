//! The [`MonitorStore`] part of the executor: alerts, silences and attempt counts.

use std::ops::DerefMut;

use docket_core::*;
use sqlx::SqliteConnection;

use crate::exec::{SqliteExec, check_limit, map_err};
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
}
