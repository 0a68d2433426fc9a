//! Built-in alerting: rules the maintenance leader evaluates every minute, the alerts they open
//! and close (`docket_alerts`, see [`docket_core::AlertRow`]), and their deliveries.
//!
//! The rules mirror the Prometheus rules shipped in `deploy/prometheus/docket-alerts.yml`
//! (same conditions, thresholds and `for` durations), reading the database instead of
//! `/metrics`, so that they see every process:
//!
//! | rule | Prometheus alert | fires when | threshold | `for` |
//! |---|---|---|---|---|
//! | `dead_letters` | `DocketDeadLetters` | jobs were dead-lettered in the last `window_secs` (600) | 1 | 0 |
//! | `dead_letters_high` | `DocketDeadLettersHigh` | more dead letters than the threshold | 100 | 0 |
//! | `oldest_due_job` | `DocketOldestDueJobWaiting` | a running queue's oldest due job has waited longer (s) | 1200 | 300 |
//! | `stage_failing` | `DocketStageFailing` | a stage's failed share of attempts over `window_secs` (900), out of `min_attempts` (5) | 0.5 | 0 |
//! | `embed_provider_failing` | `DocketEmbedProviderFailing` | the breaker is open, or the embed stage's failed share over `window_secs` (300), out of `min_attempts` (5) | 0.5 | 120 |
//! | `queue_without_worker` | `DocketQueueWithoutWorker` | a running queue has due jobs and no live worker | — | 300 |
//! | `queue_paused` | `DocketQueuePaused` | a queue has been paused longer (s) | 3600 | 0 |
//! | `documents_stuck` | `DocketDocumentsStuck` | more stuck documents than the threshold | 0 | 900 |

mod deliver;
mod engine;
pub mod ops;
mod rules;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use deliver::{
    ALERT_NOTIFY_KIND, AlertDelivery, AlertEmailConfig, AlertNotifyArgs, AlertWebhookConfig,
    WebhookFormat,
};
pub use engine::{AlertEvent, AlertNotice, Alerts, Evaluation};
pub use rules::Finding;

/// `[alerts]`: the built-in rules and how often they are evaluated and repeated.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate the rules at all. Default true.
    pub enabled: bool,
    /// Seconds between evaluations. Default 60.
    pub interval_secs: u64,
    /// Seconds between reminders while an alert keeps firing. Default 14,400 (4 hours).
    pub repeat_secs: u64,
    /// The dashboard's address as people reach it (`https://docket.example.com`), for the links
    /// in deliveries; without it, links are paths.
    pub dashboard_url: Option<String>,
    /// Where notices are posted.
    pub webhook: AlertWebhookConfig,
    /// Who is mailed notices.
    pub email: AlertEmailConfig,
    /// Per-rule settings, by rule name; rules not named keep their defaults.
    pub rules: BTreeMap<String, RuleSettings>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 60,
            repeat_secs: 4 * 3600,
            dashboard_url: None,
            webhook: AlertWebhookConfig::default(),
            email: AlertEmailConfig::default(),
            rules: BTreeMap::new(),
        }
    }
}

/// `[alerts.rules.NAME]`: what a rule's defaults become. Every key is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSettings {
    /// Evaluate this rule. Default true.
    pub enabled: Option<bool>,
    /// The rule's threshold: a count, seconds, or a share (0–1), as the rule says.
    pub threshold: Option<f64>,
    /// Seconds the condition must hold before the alert fires.
    pub for_secs: Option<u64>,
    /// The window counted over (rules that count over one).
    pub window_secs: Option<u64>,
    /// The fewest attempts in the window for a share to count (rules that take a share).
    pub min_attempts: Option<u64>,
    /// Seconds between reminders while it fires (default: `alerts.repeat_secs`).
    pub repeat_secs: Option<u64>,
    /// `dead_letters` only: seconds to gather new dead letters into one notice; 0 (default)
    /// tells of each evaluation's new ones at once.
    pub digest_secs: Option<u64>,
}

/// A built-in rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// New dead letters.
    DeadLetters,
    /// Too many dead letters.
    DeadLettersHigh,
    /// A queue's oldest due job waits too long.
    OldestDueJob,
    /// A stage fails too often.
    StageFailing,
    /// The embedding provider fails, or its breaker is open.
    EmbedProviderFailing,
    /// A queue with due jobs has no live worker.
    QueueWithoutWorker,
    /// A queue stays paused.
    QueuePaused,
    /// Documents are stuck.
    DocumentsStuck,
}

/// A rule's settings after defaults and configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Its threshold.
    pub threshold: f64,
    /// How long the condition must hold.
    pub for_: Duration,
    /// The window it counts over.
    pub window: Duration,
    /// The fewest attempts for a share to count.
    pub min_attempts: u64,
    /// Between reminders.
    pub repeat: Duration,
    /// `dead_letters`: how long new dead letters gather before a notice.
    pub digest: Duration,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 8] = [
        Rule::DeadLetters,
        Rule::DeadLettersHigh,
        Rule::OldestDueJob,
        Rule::StageFailing,
        Rule::EmbedProviderFailing,
        Rule::QueueWithoutWorker,
        Rule::QueuePaused,
        Rule::DocumentsStuck,
    ];

    /// The name used in configuration, the `alerts` table, the API and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::DeadLetters => "dead_letters",
            Rule::DeadLettersHigh => "dead_letters_high",
            Rule::OldestDueJob => "oldest_due_job",
            Rule::StageFailing => "stage_failing",
            Rule::EmbedProviderFailing => "embed_provider_failing",
            Rule::QueueWithoutWorker => "queue_without_worker",
            Rule::QueuePaused => "queue_paused",
            Rule::DocumentsStuck => "documents_stuck",
        }
    }

    /// The rule of a name.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The alert of the same meaning in `deploy/prometheus/docket-alerts.yml`.
    pub fn prometheus_alert(self) -> &'static str {
        match self {
            Rule::DeadLetters => "DocketDeadLetters",
            Rule::DeadLettersHigh => "DocketDeadLettersHigh",
            Rule::OldestDueJob => "DocketOldestDueJobWaiting",
            Rule::StageFailing => "DocketStageFailing",
            Rule::EmbedProviderFailing => "DocketEmbedProviderFailing",
            Rule::QueueWithoutWorker => "DocketQueueWithoutWorker",
            Rule::QueuePaused => "DocketQueuePaused",
            Rule::DocumentsStuck => "DocketDocumentsStuck",
        }
    }

    /// `page`: work has stopped moving, or fails now; `ticket`: something waits for a person
    /// but gets no worse by the minute.
    pub fn severity(self) -> &'static str {
        match self {
            Rule::DeadLetters | Rule::DeadLettersHigh | Rule::QueuePaused => "ticket",
            _ => "page",
        }
    }

    /// The dashboard page to look at (a path below the dashboard's root), as the Prometheus
    /// rule's `dashboard` annotation links it; `subject` narrows it where the page filters.
    pub fn dashboard_path(self, subject: &str) -> String {
        let value = |key: &str| {
            subject
                .strip_prefix(key)
                .and_then(|v| v.strip_prefix('='))
                .map(url_escape)
        };
        match self {
            Rule::DeadLetters | Rule::DeadLettersHigh => "/ui/jobs/failed".to_owned(),
            Rule::OldestDueJob | Rule::QueueWithoutWorker | Rule::QueuePaused => {
                "/ui/queues".to_owned()
            }
            Rule::StageFailing => match value("stage") {
                Some(stage) => format!("/ui/jobs?kind=docket.{stage}"),
                None => "/ui/jobs".to_owned(),
            },
            Rule::EmbedProviderFailing => "/ui/jobs?kind=docket.embed".to_owned(),
            Rule::DocumentsStuck => "/ui/documents".to_owned(),
        }
    }

    /// The defaults, as in the table of the module docs.
    pub fn defaults(self, repeat: Duration) -> RuleConfig {
        let secs = Duration::from_secs;
        let (threshold, for_, window, min_attempts) = match self {
            Rule::DeadLetters => (1.0, 0, 600, 0),
            Rule::DeadLettersHigh => (100.0, 0, 0, 0),
            Rule::OldestDueJob => (1200.0, 300, 0, 0),
            Rule::StageFailing => (0.5, 0, 900, 5),
            Rule::EmbedProviderFailing => (0.5, 120, 300, 5),
            Rule::QueueWithoutWorker => (0.0, 300, 0, 0),
            Rule::QueuePaused => (3600.0, 0, 0, 0),
            Rule::DocumentsStuck => (0.0, 900, 0, 0),
        };
        RuleConfig {
            enabled: true,
            threshold,
            for_: secs(for_),
            window: secs(window),
            min_attempts,
            repeat,
            digest: Duration::ZERO,
        }
    }

    fn takes_window(self) -> bool {
        matches!(
            self,
            Rule::DeadLetters | Rule::StageFailing | Rule::EmbedProviderFailing
        )
    }

    fn takes_share(self) -> bool {
        matches!(self, Rule::StageFailing | Rule::EmbedProviderFailing)
    }
}

/// Percent-encodes what is not unreserved in a URL query value.
fn url_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl AlertsConfig {
    /// Every rule's settings: its defaults, then `[alerts.rules.NAME]`. Errors name each
    /// unknown rule and each key a rule does not take.
    pub fn resolve(&self) -> Result<BTreeMap<Rule, RuleConfig>, String> {
        let mut problems = Vec::new();
        if self.interval_secs == 0 {
            problems.push("alerts.interval_secs must be at least 1".to_owned());
        }
        problems.extend(self.webhook.check().err());
        problems.extend(self.email.check().err());
        for name in self.rules.keys() {
            if Rule::from_name(name).is_none() {
                let known: Vec<_> = Rule::ALL.iter().map(|r| r.name()).collect();
                problems.push(format!(
                    "alerts.rules.{name}: no such rule (the rules: {})",
                    known.join(", ")
                ));
            }
        }
        let repeat = Duration::from_secs(self.repeat_secs);
        let mut out = BTreeMap::new();
        for rule in Rule::ALL {
            let mut c = rule.defaults(repeat);
            if let Some(s) = self.rules.get(rule.name()) {
                let key = |k: &str| format!("alerts.rules.{}.{k}", rule.name());
                if let Some(v) = s.enabled {
                    c.enabled = v;
                }
                if let Some(v) = s.threshold {
                    if rule == Rule::QueueWithoutWorker {
                        problems.push(format!("{}: this rule has no threshold", key("threshold")));
                    } else if !v.is_finite() || v < 0.0 || (rule.takes_share() && v > 1.0) {
                        let range = if rule.takes_share() {
                            "0 to 1"
                        } else {
                            "0 or more"
                        };
                        problems.push(format!("{}: {v} is not {range}", key("threshold")));
                    }
                    c.threshold = v;
                }
                if let Some(v) = s.for_secs {
                    c.for_ = Duration::from_secs(v);
                }
                if let Some(v) = s.window_secs {
                    if !rule.takes_window() {
                        problems.push(format!(
                            "{}: this rule counts over no window",
                            key("window_secs")
                        ));
                    } else if v == 0 {
                        problems.push(format!("{}: must be at least 1", key("window_secs")));
                    }
                    c.window = Duration::from_secs(v);
                }
                if let Some(v) = s.min_attempts {
                    if !rule.takes_share() {
                        problems.push(format!("{}: this rule takes no share", key("min_attempts")));
                    }
                    c.min_attempts = v;
                }
                if let Some(v) = s.repeat_secs {
                    c.repeat = Duration::from_secs(v);
                }
                if let Some(v) = s.digest_secs {
                    if rule != Rule::DeadLetters {
                        problems.push(format!(
                            "{}: only dead_letters gathers a digest",
                            key("digest_secs")
                        ));
                    }
                    c.digest = Duration::from_secs(v);
                }
            }
            out.insert(rule, c);
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_mirror_the_prometheus_rules() {
        let rules = AlertsConfig::default().resolve().expect("defaults resolve");
        let r = |rule| rules[&rule].clone();
        assert_eq!(r(Rule::OldestDueJob).threshold, 1200.0);
        assert_eq!(r(Rule::OldestDueJob).for_, Duration::from_secs(300));
        assert_eq!(r(Rule::DeadLettersHigh).threshold, 100.0);
        assert_eq!(r(Rule::StageFailing).window, Duration::from_secs(900));
        assert_eq!(r(Rule::EmbedProviderFailing).for_, Duration::from_secs(120));
        assert_eq!(r(Rule::QueuePaused).threshold, 3600.0);
        assert_eq!(r(Rule::DocumentsStuck).for_, Duration::from_secs(900));
        assert!(
            rules
                .values()
                .all(|c| c.enabled && c.repeat == Duration::from_secs(14_400))
        );
        // Every rule has a Prometheus twin in the shipped file, under its name.
        let shipped = include_str!("../../../../deploy/prometheus/docket-alerts.yml");
        for rule in Rule::ALL {
            assert!(
                shipped.contains(&format!("alert: {}", rule.prometheus_alert())),
                "{} has no Prometheus twin",
                rule.name()
            );
            assert_eq!(Rule::from_name(rule.name()), Some(rule));
        }
    }

    #[test]
    fn settings_override_defaults_and_mistakes_are_named() {
        let mut c = AlertsConfig::default();
        c.rules.insert(
            "oldest_due_job".into(),
            RuleSettings {
                threshold: Some(60.0),
                for_secs: Some(0),
                ..Default::default()
            },
        );
        c.rules.insert(
            "queue_paused".into(),
            RuleSettings {
                enabled: Some(false),
                ..Default::default()
            },
        );
        let rules = c.resolve().expect("valid");
        assert_eq!(rules[&Rule::OldestDueJob].threshold, 60.0);
        assert_eq!(rules[&Rule::OldestDueJob].for_, Duration::ZERO);
        assert!(!rules[&Rule::QueuePaused].enabled);

        c.rules
            .insert("dead_leters".into(), RuleSettings::default());
        c.rules.insert(
            "stage_failing".into(),
            RuleSettings {
                threshold: Some(1.5),
                ..Default::default()
            },
        );
        c.rules.insert(
            "queue_paused".into(),
            RuleSettings {
                window_secs: Some(60),
                ..Default::default()
            },
        );
        c.email.severities = vec!["pager".into()];
        let e = c.resolve().expect_err("four mistakes");
        assert!(
            e.contains("alerts.email.severities: \"pager\" is not a severity"),
            "{e}"
        );
        assert!(e.contains("alerts.rules.dead_leters: no such rule"), "{e}");
        assert!(
            e.contains("alerts.rules.stage_failing.threshold: 1.5 is not 0 to 1"),
            "{e}"
        );
        assert!(e.contains("alerts.rules.queue_paused.window_secs"), "{e}");
    }
}
