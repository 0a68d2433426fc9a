//! The built-in alerts over HTTP (docs/alerting.md).
//!
//! | route | scope | |
//! |---|---|---|
//! | `GET /v1/alerts` | read | alerts, newest first, each marked silenced or not, and the silences in force; `state` (`open`, default, `resolved` or `all`), `rule`, `before`, `limit` |
//! | `POST /v1/alerts/silences` | admin | `{rule, subject?, for_secs, reason?}`: nobody is told about the rule's alerts (of that subject) meanwhile |
//! | `DELETE /v1/alerts/silences/{id}` | admin | ends a silence now |

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use docket_core::{AlertListParams, Driver};
use docket_pipeline::Pipeline;
use docket_pipeline::alerts::ops;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Actor;
use crate::params::{Int, JsonObject, QueryInt, QueryParams};
use crate::{ApiError, AppState};

pub(crate) fn routes<D: Driver>() -> Router<AppState<D>> {
    Router::new()
        .route("/v1/alerts", get(list::<D>))
        .route("/v1/alerts/silences", post(silence::<D>))
        .route("/v1/alerts/silences/{id}", delete(unsilence::<D>))
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, m.into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    rule: Option<String>,
    before: Option<QueryInt>,
    limit: Option<QueryInt>,
}

async fn list<D: Driver>(
    State(p): State<Pipeline<D>>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.map_or(100, |n| n.0);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("limit must be between 1 and 1000"));
    }
    let open = match q.state.as_deref().unwrap_or("open") {
        "open" => Some(true),
        "resolved" => Some(false),
        "all" => None,
        other => {
            return Err(invalid(format!(
                "state must be open, resolved or all (got {other:?})"
            )));
        }
    };
    let view = ops::list(
        p.driver(),
        &AlertListParams {
            open,
            rule: q.rule,
            before_id: q.before.map(|n| n.0),
            limit,
        },
    )
    .await?;
    let next = (view.alerts.len() as i64 == limit)
        .then(|| view.alerts.last().map(|a| a.alert.id))
        .flatten();
    Ok(Json(json!({
        "alerts": view.alerts,
        "silences": view.silences,
        "next_before": next,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    rule: String,
    subject: Option<String>,
    for_secs: Int,
    #[serde(default)]
    reason: Option<String>,
}

async fn silence<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    JsonObject(body): JsonObject<SilenceBody>,
) -> Result<Response, ApiError> {
    let secs = u64::try_from(body.for_secs.0).map_err(|_| invalid("for_secs must be positive"))?;
    let who = crate::actions::actor_name(&actor);
    let row = ops::silence(
        p.driver(),
        &who,
        &body.rule,
        body.subject,
        Duration::from_secs(secs),
        body.reason.as_deref().unwrap_or(""),
    )
    .await
    .map_err(|e| match e {
        docket_core::Error::Invalid(m) => invalid(m),
        e => e.into(),
    })?;
    Ok((StatusCode::CREATED, Json(json!({ "silence": row }))).into_response())
}

async fn unsilence<D: Driver>(
    State(p): State<Pipeline<D>>,
    actor: Option<Extension<Actor>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let who = crate::actions::actor_name(&actor);
    if ops::unsilence(p.driver(), &who, id).await? {
        Ok(Json(json!({ "ended": id })).into_response())
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no silence {id} in force"),
        ))
    }
}
