//! The state machine: findings in, alerts opened, fired, repeated and resolved, notices out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use docket_core::{
    AlertListParams, AlertOpenParams, AlertRow, AlertSilenceRow, AlertState, AlertUpdateParams,
    Clock, Driver, JobInsertManyParams, MonitorStore, QueueExecutor, Transaction,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::deliver::{ALERT_NOTIFY_KIND, AlertNotifyArgs};
use super::rules::{Finding, findings};
use super::{AlertsConfig, Rule, RuleConfig};
use crate::Pipeline;

/// Why someone is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// It started firing.
    Firing,
    /// It still fires: a reminder after the repeat interval, or (`dead_letters`) new ones.
    Repeat,
    /// It stopped firing.
    Resolved,
}

impl AlertEvent {
    /// `firing`, `repeat`, `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Firing => "firing",
            AlertEvent::Repeat => "repeat",
            AlertEvent::Resolved => "resolved",
        }
    }
}

/// Someone is to be told about an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertNotice {
    /// Why.
    pub event: AlertEvent,
    /// The alert, as of this evaluation.
    pub alert: AlertRow,
}

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// When it evaluated.
    pub at: Option<DateTime<Utc>>,
    /// Conditions that held.
    pub findings: Vec<Finding>,
    /// Alerts that changed state, with their new rows.
    pub transitions: Vec<AlertRow>,
    /// Notices sent on (one delivery job each, when any channel is configured).
    pub notices: Vec<AlertNotice>,
    /// Alerts firing after it.
    pub firing: usize,
}

/// The built-in rules over one pipeline's database.
pub struct Alerts<D: Driver> {
    pipeline: Pipeline<D>,
    rules: BTreeMap<Rule, RuleConfig>,
    interval: Duration,
    clock: Arc<dyn Clock>,
    channels: bool,
    dashboard_url: String,
}

impl<D: Driver> std::fmt::Debug for Alerts<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("rules", &self.rules)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The key of the figure that holds a rule's counter as of the last notice.
const NOTIFIED_COUNTER: &str = "counter_at_notice";

impl<D: Driver> Alerts<D> {
    /// Validates `config`. `channels`: whether any delivery (webhook or email) is configured;
    /// without one, alerts are recorded and shown but nobody is sent anything.
    pub fn new(
        pipeline: Pipeline<D>,
        config: &AlertsConfig,
        channels: bool,
        clock: Arc<dyn Clock>,
    ) -> docket_core::Result<Self> {
        let rules = config.resolve().map_err(docket_core::Error::Invalid)?;
        Ok(Self {
            pipeline,
            rules,
            interval: Duration::from_secs(config.interval_secs.max(1)),
            clock,
            channels,
            dashboard_url: config
                .dashboard_url
                .as_deref()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_owned(),
        })
    }

    /// The rules' settings.
    pub fn rules(&self) -> &BTreeMap<Rule, RuleConfig> {
        &self.rules
    }

    /// One evaluation: reads the figures, then opens, fires, repeats and resolves alerts, and
    /// enqueues a delivery job per notice in the transaction that records it.
    pub async fn evaluate_once(&self) -> docket_core::Result<Evaluation> {
        // As stored (microseconds), so that a row this evaluation opened is known by its time.
        let now = self.clock.now().trunc_subsecs(6);
        let found = findings(&self.pipeline, &self.rules, now).await?;
        let (open, silences) = {
            let mut c = self.pipeline.inner.driver.conn().await?;
            let open = c
                .alert_list(&AlertListParams {
                    open: Some(true),
                    limit: 10_000,
                    ..Default::default()
                })
                .await?;
            (open, c.alert_silence_list(Some(now)).await?)
        };
        let mut open: HashMap<(String, String), AlertRow> = open
            .into_iter()
            .map(|a| ((a.rule.clone(), a.subject.clone()), a))
            .collect();
        let silenced = |rule: &str, subject: &str| -> bool {
            silences
                .iter()
                .any(|s: &AlertSilenceRow| s.covers(rule, subject, now))
        };

        let mut eval = Evaluation {
            at: Some(now),
            ..Default::default()
        };
        for f in &found {
            let cfg = &self.rules[&f.rule];
            let mut figures = f.figures.clone();
            // Silenced, or nobody to tell: recorded, not told (told once that changes).
            let quiet = silenced(f.rule.name(), &f.subject) || !self.channels;
            match open.remove(&(f.rule.name().to_owned(), f.subject.clone())) {
                None => {
                    let firing = cfg.for_.is_zero();
                    if let (Some(counter), true) = (f.counter, firing && !quiet) {
                        figures[NOTIFIED_COUNTER] = counter.into();
                    }
                    let mut tx = self.pipeline.inner.driver.begin().await?;
                    let row = tx
                        .alert_open(&AlertOpenParams {
                            rule: f.rule.name().to_owned(),
                            subject: f.subject.clone(),
                            state: if firing {
                                AlertState::Firing
                            } else {
                                AlertState::Pending
                            },
                            severity: f.rule.severity().to_owned(),
                            summary: f.summary.clone(),
                            figures,
                            now,
                        })
                        .await?;
                    if row.pending_at == now && row.state == AlertState::Firing && !quiet {
                        // Told at once: stamp it, with its delivery, in one transaction.
                        let told = self.notify(&mut tx, &row, AlertEvent::Firing, now).await?;
                        eval.notices.push(AlertNotice {
                            event: AlertEvent::Firing,
                            alert: told.clone(),
                        });
                        eval.transitions.push(told);
                    } else if row.pending_at == now {
                        eval.transitions.push(row);
                    }
                    tx.commit().await?;
                }
                Some(a) => {
                    let held = (now - a.pending_at).to_std().unwrap_or(Duration::ZERO);
                    let (to, event) = match a.state {
                        AlertState::Pending if held >= cfg.for_ => {
                            (AlertState::Firing, Some(AlertEvent::Firing))
                        }
                        AlertState::Pending => (AlertState::Pending, None),
                        _ => (AlertState::Firing, self.repeat_due(&a, f, cfg, now)),
                    };
                    let event = event.filter(|_| !quiet);
                    let previous = a.figures.get(NOTIFIED_COUNTER).cloned();
                    match (event, f.counter, previous) {
                        (Some(_), Some(counter), _) => figures[NOTIFIED_COUNTER] = counter.into(),
                        (None, _, Some(p)) => figures[NOTIFIED_COUNTER] = p,
                        _ => {}
                    }
                    let update = AlertUpdateParams {
                        id: a.id,
                        from: a.state,
                        to,
                        summary: f.summary.clone(),
                        figures,
                        notified: false,
                        now,
                    };
                    self.apply(&mut eval, update, event, a.state != to).await?;
                }
            }
        }
        // Conditions that no longer hold (or rules switched off): resolve.
        for a in open.into_values() {
            let told = a.notified_at.is_some() && a.state == AlertState::Firing;
            let event = (told && self.channels && !silenced(&a.rule, &a.subject))
                .then_some(AlertEvent::Resolved);
            let update = AlertUpdateParams {
                id: a.id,
                from: a.state,
                to: AlertState::Resolved,
                summary: a.summary.clone(),
                figures: a.figures.clone(),
                notified: false,
                now,
            };
            self.apply(&mut eval, update, event, true).await?;
        }
        eval.firing = {
            let mut c = self.pipeline.inner.driver.conn().await?;
            c.alert_list(&AlertListParams {
                open: Some(true),
                limit: 10_000,
                ..Default::default()
            })
            .await?
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .count()
        };
        eval.findings = found;
        Ok(eval)
    }

    /// Whether a firing alert calls for a reminder now.
    fn repeat_due(
        &self,
        a: &AlertRow,
        f: &Finding,
        cfg: &RuleConfig,
        now: DateTime<Utc>,
    ) -> Option<AlertEvent> {
        let since_notice = a
            .notified_at
            .map(|t| (now - t).to_std().unwrap_or(Duration::ZERO));
        let Some(since) = since_notice else {
            // Fired while silenced (or with nobody to tell): tell now.
            return Some(AlertEvent::Firing);
        };
        if let Some(counter) = f.counter {
            let told = a.figures.get(NOTIFIED_COUNTER).and_then(|v| v.as_i64());
            if told.is_some_and(|t| counter > t) && since >= cfg.digest {
                return Some(AlertEvent::Repeat);
            }
        }
        (!cfg.repeat.is_zero() && since >= cfg.repeat).then_some(AlertEvent::Repeat)
    }

    /// Applies an update, with its notice (and delivery) in the same transaction.
    async fn apply(
        &self,
        eval: &mut Evaluation,
        mut update: AlertUpdateParams,
        event: Option<AlertEvent>,
        transition: bool,
    ) -> docket_core::Result<()> {
        let mut tx = self.pipeline.inner.driver.begin().await?;
        update.notified = event.is_some();
        let Some(row) = tx.alert_update(&update).await? else {
            // Another evaluation moved it first.
            return tx.rollback().await;
        };
        if let Some(event) = event {
            self.enqueue(&mut tx, &row, event).await?;
            eval.notices.push(AlertNotice {
                event,
                alert: row.clone(),
            });
        }
        tx.commit().await?;
        if transition {
            eval.transitions.push(row);
        }
        Ok(())
    }

    async fn notify(
        &self,
        tx: &mut D::Tx,
        row: &AlertRow,
        event: AlertEvent,
        now: DateTime<Utc>,
    ) -> docket_core::Result<AlertRow> {
        let row = tx
            .alert_update(&AlertUpdateParams {
                id: row.id,
                from: row.state,
                to: row.state,
                summary: row.summary.clone(),
                figures: row.figures.clone(),
                notified: true,
                now,
            })
            .await?
            .unwrap_or_else(|| row.clone());
        self.enqueue(tx, &row, event).await?;
        Ok(row)
    }

    async fn enqueue(
        &self,
        tx: &mut D::Tx,
        row: &AlertRow,
        event: AlertEvent,
    ) -> docket_core::Result<()> {
        let rule = Rule::from_name(&row.rule);
        let link = format!(
            "{}{}",
            self.dashboard_url,
            rule.map(|r| r.dashboard_path(&row.subject))
                .unwrap_or_else(|| "/ui/alerts".to_owned())
        );
        let args = AlertNotifyArgs::new(row, event, link);
        let mut job = docket_core::JobInsertParams::new(
            ALERT_NOTIFY_KIND,
            serde_json::to_value(&args)
                .map_err(|e| docket_core::Error::Invalid(format!("alert notice: {e}")))?,
        );
        job.queue = self.pipeline.inner.stages.queue.clone();
        job.priority = docket_core::PRIORITY_MAX;
        tx.job_insert_many(JobInsertManyParams { jobs: vec![job] })
            .await?;
        Ok(())
    }

    /// Evaluates every interval while this process leads maintenance (`leading`), until
    /// `stop`. Errors are logged and the next interval tries again.
    pub async fn run(&self, mut leading: watch::Receiver<bool>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
                changed = leading.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            }
            if !*leading.borrow() {
                continue;
            }
            match self.evaluate_once().await {
                Ok(e) => {
                    for t in &e.transitions {
                        tracing::info!(rule = %t.rule, subject = %t.subject, state = %t.state, summary = %t.summary, "alert");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "alert evaluation failed"),
            }
        }
    }
}
