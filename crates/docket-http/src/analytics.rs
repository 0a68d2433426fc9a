//! Analytics over HTTP: what the hourly rollups and failure reasons hold
//! ([`docket_pipeline::analytics`]).
//!
//! | route | scope | |
//! |---|---|---|
//! | `GET /v1/analytics` | read | `days` (1–90, default 14), `kind`: per-day counts and timings per kind, the hourly rows, and the failure reasons seen in those days, most attempts first |

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, DurationRound, Utc};
use docket_core::{
    AttemptRollupRow, Driver, FailureReasonListParams, FailureReasonRow, MonitorStore,
    RollupListParams,
};
use docket_pipeline::Pipeline;
use docket_pipeline::analytics;
use serde::{Deserialize, Serialize};

use crate::params::{QueryInt, QueryParams};
use crate::{ApiError, AppState};

pub(crate) fn routes<D: Driver>() -> Router<AppState<D>> {
    Router::new().route("/v1/analytics", get(show::<D>))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    days: Option<QueryInt>,
    kind: Option<String>,
}

/// What the dashboard's Analytics page and `GET /v1/analytics` show.
#[derive(Debug, Serialize)]
pub(crate) struct View {
    /// The first day shown (midnight UTC).
    pub(crate) since: DateTime<Utc>,
    /// Analytics are complete up to here (the last hour rolled up).
    pub(crate) rolled_until: Option<DateTime<Utc>>,
    /// Per day and kind.
    pub(crate) daily: Vec<analytics::DailyRow>,
    /// The hourly rows.
    pub(crate) hourly: Vec<AttemptRollupRow>,
    /// Failure reasons seen since `since`, most attempts first (up to 50).
    pub(crate) failure_reasons: Vec<FailureReasonRow>,
}

/// The last `days` days (today included), of one kind or all.
pub(crate) async fn read<D: Driver>(
    p: &Pipeline<D>,
    days: i64,
    kind: Option<String>,
) -> docket_core::Result<View> {
    let since = Utc::now()
        .duration_trunc(chrono::Duration::days(1))
        .unwrap_or_else(|_| Utc::now())
        - chrono::Duration::days(days - 1);
    let mut c = p.driver().conn().await?;
    let hours = c
        .analytics_rollup_list(&RollupListParams {
            since: Some(since),
            job_type: kind.clone(),
        })
        .await?;
    let reasons = c
        .failure_reason_list(&FailureReasonListParams {
            job_type: kind,
            seen_since: Some(since),
            limit: 50,
        })
        .await?;
    let rolled_until = c.analytics_cursor().await?;
    Ok(View {
        since,
        rolled_until,
        daily: analytics::daily(&hours),
        hourly: hours,
        failure_reasons: reasons,
    })
}

async fn show<D: Driver>(
    State(p): State<Pipeline<D>>,
    QueryParams(q): QueryParams<Query>,
) -> Result<Response, ApiError> {
    let days = q.days.map_or(14, |n| n.0);
    if !(1..=90).contains(&days) {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "days must be between 1 and 90".into(),
        ));
    }
    Ok(Json(read(&p, days, q.kind).await?).into_response())
}
