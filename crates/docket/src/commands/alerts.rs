//! `docket alerts`: the built-in alerts (docs/alerting.md). Talks to the database directly, so
//! it works when no server is up.

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use docket_core::{AlertListParams, AlertState, Driver};
use docket_pipeline::alerts::ops::{self, AlertView, AlertsView};

use super::admin::Output;
use super::table::{Table, ago, at, left};
use crate::backend::Backend;
use crate::config::Config;
use crate::out::{Usage, out, outln};
use crate::with_driver;

/// `docket alerts …`
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts open now (firing or pending), and the silences in force.
    List(Output),
    /// Past and present alerts, newest first.
    History {
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Tell nobody about a rule's alerts (of one subject, with --subject) for a while; they are
    /// still evaluated and recorded.
    Silence {
        /// The rule (`docket alerts list` shows them; docs/alerting.md lists them all).
        rule: String,
        /// Only alerts about this subject, e.g. `queue=default`.
        #[arg(long)]
        subject: Option<String>,
        /// How long: `90s`, `30m`, `2h`, `1d` (one minute to 30 days).
        #[arg(long = "for", value_parser = parse_duration)]
        for_: Duration,
        /// Why, for the audit trail and the dashboard.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End a silence now.
    Unsilence {
        /// The silence's id (`docket alerts list` shows it).
        id: i64,
    },
}

/// `90s`, `30m`, `2h`, `1d`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a length such as 30m, 2h or 1d"))?;
    let secs = match unit {
        "s" => 1,
        "m" | "" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

/// `docket alerts …`
pub async fn alerts(config: Config, cmd: AlertsCommand) -> anyhow::Result<ExitCode> {
    let b = Backend::open_now(&config).await?;
    with_driver!(b, |d| alerts_with(d, cmd).await)
}

async fn alerts_with<D: Driver>(d: D, cmd: AlertsCommand) -> anyhow::Result<ExitCode> {
    let list = |open, rule, limit| AlertListParams {
        open,
        rule,
        before_id: None,
        limit,
    };
    match cmd {
        AlertsCommand::List(o) => {
            let view = ops::list(&d, &list(Some(true), None, 1000)).await?;
            show(o, &view, true)?;
        }
        AlertsCommand::History { rule, limit, out } => {
            if !(1..=1000).contains(&limit) {
                return Err(Usage("--limit must be between 1 and 1000".into()).into());
            }
            let view = ops::list(&d, &list(None, rule, limit)).await?;
            show(out, &view, false)?;
        }
        AlertsCommand::Silence {
            rule,
            subject,
            for_,
            reason,
        } => {
            let row = ops::silence(
                &d,
                &super::admin::cli_actor(),
                &rule,
                subject,
                for_,
                &reason,
            )
            .await
            .map_err(|e| match e {
                docket_core::Error::Invalid(m) => anyhow::Error::new(Usage(m)),
                e => e.into(),
            })?;
            let what = match &row.subject {
                Some(s) => format!("{} ({s})", row.rule),
                None => row.rule.clone(),
            };
            outln!(
                "silenced {what} until {} (silence {})",
                at(row.until),
                row.id
            )?;
        }
        AlertsCommand::Unsilence { id } => {
            if ops::unsilence(&d, &super::admin::cli_actor(), id).await? {
                outln!("ended silence {id}")?;
            } else {
                outln!("no silence {id} in force")?;
                return Ok(ExitCode::from(3));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(o: Output, view: &AlertsView, open: bool) -> anyhow::Result<()> {
    if o.json {
        return outln!("{}", serde_json::to_string_pretty(view)?);
    }
    out!("{}", table(view, open, Utc::now()))
}

fn state(a: &AlertView) -> String {
    match (a.alert.state, a.silenced) {
        (AlertState::Firing, true) => "firing (silenced)".to_owned(),
        (s, _) => s.to_string(),
    }
}

/// The alerts (and, for open ones, the silences) as tables.
fn table(view: &AlertsView, open: bool, now: DateTime<Utc>) -> String {
    let mut s = String::new();
    if view.alerts.is_empty() {
        s.push_str(if open {
            "no alert open\n"
        } else {
            "no alert recorded\n"
        });
    } else {
        let mut t = Table::new(&[
            left("ID"),
            left("RULE"),
            left("SUBJECT"),
            left("STATE"),
            left("SEVERITY"),
            left("SINCE"),
            left("SUMMARY"),
        ]);
        for a in &view.alerts {
            let since = match a.alert.state {
                AlertState::Pending => a.alert.pending_at,
                AlertState::Firing => a.alert.firing_at.unwrap_or(a.alert.pending_at),
                AlertState::Resolved => a.alert.resolved_at.unwrap_or(a.alert.evaluated_at),
            };
            t.row(vec![
                a.alert.id.to_string(),
                a.alert.rule.clone(),
                a.alert.subject.clone(),
                state(a),
                a.alert.severity.clone(),
                ago(since, now),
                a.alert.summary.clone(),
            ]);
        }
        s.push_str(&t.render());
    }
    if open && !view.silences.is_empty() {
        s.push('\n');
        let mut t = Table::new(&[
            left("SILENCE"),
            left("RULE"),
            left("SUBJECT"),
            left("UNTIL"),
            left("BY"),
            left("REASON"),
        ]);
        for x in &view.silences {
            t.row(vec![
                x.id.to_string(),
                x.rule.clone(),
                x.subject.clone().unwrap_or_else(|| "(all)".to_owned()),
                at(x.until),
                x.actor.clone(),
                x.reason.clone(),
            ]);
        }
        s.push_str(&t.render());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_parse_with_their_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("h").is_err());
    }
}
