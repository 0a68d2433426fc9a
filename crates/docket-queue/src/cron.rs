//! Cron expressions read in a time zone.

use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use docket_core::Error;

/// A parsed expression and its time zone.
#[derive(Debug, Clone)]
pub struct CronExpr {
    cron: croner::Cron,
    tz: Tz,
}

impl CronExpr {
    /// Parses a 5-field (or 6-field, with seconds first) expression and an IANA time zone;
    /// `name` only labels the error.
    pub fn parse(name: &str, expression: &str, timezone: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidCron {
            name: name.to_owned(),
            reason,
        };
        let cron = croner::Cron::from_str(expression)
            .map_err(|e| invalid(format!("expression {expression:?}: {e}")))?;
        let tz = Tz::from_str(timezone)
            .map_err(|_| invalid(format!("unknown time zone {timezone:?}")))?;
        let expr = Self { cron, tz };
        // An expression that never fires (31 February) is as wrong as one that does not parse.
        expr.next_after(Utc::now())
            .ok_or_else(|| invalid(format!("expression {expression:?} never fires")))?;
        Ok(expr)
    }

    /// The first occurrence strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Occurrences fall on whole seconds; croner would carry the fraction of `t` over.
        let t = t.trunc_subsecs(0);
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The most recent occurrence at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let t = t.trunc_subsecs(0);
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The occurrences in `(after, until]`, at most `cap` of them, and whether more were left
    /// out.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        cap: usize,
    ) -> (Vec<DateTime<Utc>>, bool) {
        let mut out = Vec::new();
        let mut t = after;
        while let Some(n) = self.next_after(t) {
            if n > until {
                return (out, false);
            }
            if out.len() == cap {
                return (out, true);
            }
            out.push(n);
            t = n;
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn daily_at_two_in_a_time_zone() {
        let e = CronExpr::parse("c", "0 2 * * *", "Europe/Paris").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        // 02:00 in Paris in summer is 00:00 UTC.
        assert_eq!(
            e.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 7, 2, 0, 0, 0).unwrap())
        );
    }

    #[test]
    fn latest_occurrence_is_found_without_walking_forward() {
        let e = CronExpr::parse("c", "* * * * *", "UTC").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 30).unwrap();
        assert_eq!(
            e.latest_at_or_before(t),
            Some(Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap())
        );
        let on = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(e.latest_at_or_before(on), Some(on), "inclusive");
    }

    #[test]
    fn occurrences_fall_on_whole_seconds() {
        let e = CronExpr::parse("c", "0 2 * * *", "UTC").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap()
            + chrono::Duration::microseconds(700_781);
        assert_eq!(
            e.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 7, 2, 2, 0, 0).unwrap())
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_with_a_reason() {
        for (expr, tz) in [
            ("61 * * * *", "UTC"),
            ("not cron", "UTC"),
            ("* * * * *", "Mars/Olympus"),
            ("0 0 31 2 *", "UTC"),
        ] {
            let err = CronExpr::parse("nightly", expr, tz).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("nightly"), "{msg}");
        }
    }

    #[test]
    fn between_lists_and_caps() {
        let e = CronExpr::parse("c", "*/15 * * * *", "UTC").unwrap();
        let a = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let (v, more) = e.between(a, a + chrono::Duration::hours(1), 10);
        assert_eq!(v.len(), 4);
        assert!(!more);
        let (v, more) = e.between(a, a + chrono::Duration::hours(1), 2);
        assert_eq!(v.len(), 2);
        assert!(more);
    }
}
