//! Table-driven backoff.

use std::time::Duration;

use rand::Rng;

/// Delays between attempts: the n-th retry waits `steps[n-1]` (the last step repeats),
/// scaled by a random factor in `1 ± jitter` so that a burst of failures does not retry in
/// lockstep.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Delay before each retry, in order.
    pub steps: Vec<Duration>,
    /// Fraction of random spread, 0.0–1.0.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 60 s, 300 s, 900 s, ±10 %: with the default 4 attempts, a job is dead-lettered about
    /// 21 minutes after its first failure.
    fn default() -> Self {
        Self {
            steps: vec![
                Duration::from_secs(60),
                Duration::from_secs(300),
                Duration::from_secs(900),
            ],
            jitter: 0.10,
        }
    }
}

impl Backoff {
    /// The delay before the attempt after `attempt` (1-based: the delay after the first
    /// failure is `delay(1)`).
    pub fn delay(&self, attempt: i32) -> Duration {
        let Some(last) = self.steps.last() else {
            return Duration::ZERO;
        };
        let idx = usize::try_from(attempt.max(1) - 1).unwrap_or(0);
        let base = *self.steps.get(idx).unwrap_or(last);
        if self.jitter <= 0.0 {
            return base;
        }
        let f = rand::rng().random_range(1.0 - self.jitter..=1.0 + self.jitter);
        base.mul_f64(f.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_then_last_repeats_within_jitter() {
        let b = Backoff::default();
        for (attempt, base) in [(1, 60.0), (2, 300.0), (3, 900.0), (7, 900.0)] {
            for _ in 0..50 {
                let d = b.delay(attempt).as_secs_f64();
                assert!(
                    d >= base * 0.9 - 1e-9 && d <= base * 1.1 + 1e-9,
                    "{attempt}: {d}"
                );
            }
        }
    }

    #[test]
    fn no_jitter_is_exact() {
        let b = Backoff {
            steps: vec![Duration::from_secs(2)],
            jitter: 0.0,
        };
        assert_eq!(b.delay(5), Duration::from_secs(2));
    }
}
