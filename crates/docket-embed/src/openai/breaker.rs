//! The OpenAI-compatible client's circuit breaker: closed, open for a cool-down after
//! repeated failures, then half-open for one trial call.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{BreakerState, lock};

#[derive(Debug, Clone, Copy)]
pub(super) enum BreakerInner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

pub(super) struct Breaker {
    inner: BreakerInner,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    pub(super) fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            inner: BreakerInner::Closed { failures: 0 },
            threshold,
            cooldown,
        }
    }

    /// How long callers should wait while a half-open trial is in flight.
    pub(super) fn trial_wait(&self) -> Duration {
        self.cooldown
            .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    pub(super) fn state(&self, now: Instant) -> BreakerState {
        match self.inner {
            BreakerInner::Closed { .. } => BreakerState::Closed,
            BreakerInner::Open { until } if now < until => BreakerState::Open,
            BreakerInner::Open { .. } | BreakerInner::HalfOpen => BreakerState::HalfOpen,
        }
    }

    pub(super) fn ready(&self, now: Instant) -> Result<(), Duration> {
        match self.inner {
            BreakerInner::Closed { .. } => Ok(()),
            BreakerInner::Open { until } if now < until => Err(until - now),
            BreakerInner::Open { .. } => Ok(()),
            BreakerInner::HalfOpen => Err(self.trial_wait()),
        }
    }

    /// `Ok(is_trial)` to let a call through, `Err(wait)` to refuse it.
    pub(super) fn admit(&mut self, now: Instant) -> Result<bool, Duration> {
        match self.inner {
            BreakerInner::Closed { .. } => Ok(false),
            BreakerInner::Open { until } if now < until => Err(until - now),
            BreakerInner::Open { .. } => {
                self.inner = BreakerInner::HalfOpen;
                Ok(true)
            }
            BreakerInner::HalfOpen => Err(self.trial_wait()),
        }
    }

    /// Records a finished call; true when this opened the breaker.
    pub(super) fn record(&mut self, is_trial: bool, failed: bool, now: Instant) -> bool {
        if !failed {
            self.inner = BreakerInner::Closed { failures: 0 };
            return false;
        }
        match self.inner {
            BreakerInner::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if self.threshold > 0 && failures >= self.threshold {
                    self.inner = BreakerInner::Open {
                        until: now + self.cooldown,
                    };
                    true
                } else {
                    self.inner = BreakerInner::Closed { failures };
                    false
                }
            }
            BreakerInner::HalfOpen if is_trial => {
                self.inner = BreakerInner::Open {
                    until: now + self.cooldown,
                };
                true
            }
            // A call that started before the breaker opened, or while another call is the
            // trial: the state already reflects the failures.
            BreakerInner::Open { .. } | BreakerInner::HalfOpen => false,
        }
    }

    /// A trial call that ended without a result (its future was dropped): let the next call
    /// be the trial.
    pub(super) fn abandon_trial(&mut self, now: Instant) {
        if let BreakerInner::HalfOpen = self.inner {
            self.inner = BreakerInner::Open { until: now };
        }
    }
}

/// Hands the half-open trial back if a trial call is dropped before it records its outcome.
pub(super) struct TrialGuard<'a> {
    pub(super) breaker: &'a Mutex<Breaker>,
    pub(super) is_trial: bool,
    pub(super) done: bool,
}

impl TrialGuard<'_> {
    pub(super) fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.is_trial && !self.done {
            lock(self.breaker).abandon_trial(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_half_opens_and_closes() {
        let t0 = Instant::now();
        let cooldown = Duration::from_secs(10);
        let mut b = Breaker::new(2, cooldown);
        assert_eq!(b.admit(t0), Ok(false));
        assert!(!b.record(false, true, t0));
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert!(b.record(false, true, t0));
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(b.ready(t0), Err(cooldown));
        assert_eq!(
            b.admit(t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(9))
        );

        let t1 = t0 + cooldown;
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        assert_eq!(b.ready(t1), Ok(()));
        assert_eq!(b.admit(t1), Ok(true));
        assert!(b.admit(t1).is_err(), "only one trial at a time");
        assert!(b.record(true, true, t1), "a failed trial reopens");
        assert_eq!(b.state(t1), BreakerState::Open);

        let t2 = t1 + cooldown;
        assert_eq!(b.admit(t2), Ok(true));
        b.abandon_trial(t2);
        assert_eq!(b.admit(t2), Ok(true), "an abandoned trial is handed on");
        assert!(!b.record(true, false, t2));
        assert_eq!(b.state(t2), BreakerState::Closed);

        let mut off = Breaker::new(0, cooldown);
        for _ in 0..100 {
            assert!(!off.record(false, true, t0));
        }
        assert_eq!(off.state(t0), BreakerState::Closed);
    }
}
