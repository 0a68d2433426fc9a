//! Request and token pacing for the OpenAI-compatible client.

use std::time::{Duration, Instant};

use super::MAX_INLINE_RATE_LIMIT_WAIT;

/// Paces requests (GCRA without burst) and holds them back after a `429`.
pub(super) struct Limiter {
    request_interval: Option<Duration>,
    token_interval: Option<Duration>,
    next_request: Instant,
    next_token: Instant,
    blocked_until: Option<Instant>,
}

impl Limiter {
    pub(super) fn new(rpm: Option<u32>, tpm: Option<u32>, now: Instant) -> Self {
        let per = |n: u32| Duration::from_secs(60) / n;
        Limiter {
            request_interval: rpm.map(per),
            token_interval: tpm.map(|n| Duration::from_secs_f64(60.0 / f64::from(n))),
            next_request: now,
            next_token: now,
            blocked_until: None,
        }
    }

    /// Reserves a slot for a request of `tokens`: `Ok(wait before sending)`, or
    /// `Err(remaining)` when a `429` asked for a longer rest than is worth waiting in a call.
    pub(super) fn reserve(&mut self, tokens: usize, now: Instant) -> Result<Duration, Duration> {
        if let Some(blocked) = self.blocked_for(now)
            && blocked > MAX_INLINE_RATE_LIMIT_WAIT
        {
            return Err(blocked);
        }
        let mut start = now.max(self.blocked_until.unwrap_or(now));
        if let Some(interval) = self.request_interval {
            start = start.max(self.next_request);
            self.next_request = start + interval;
        }
        if let Some(interval) = self.token_interval {
            start = start.max(self.next_token);
            self.next_token = start + interval.mul_f64(tokens as f64);
        }
        Ok(start.saturating_duration_since(now))
    }

    pub(super) fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }

    pub(super) fn blocked_for(&self, now: Instant) -> Option<Duration> {
        self.blocked_until.filter(|&b| b > now).map(|b| b - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_spaces_requests_and_tokens() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Some(120), None, t0);
        assert_eq!(l.reserve(10, t0), Ok(Duration::ZERO));
        assert_eq!(l.reserve(10, t0), Ok(Duration::from_millis(500)));
        assert_eq!(l.reserve(10, t0), Ok(Duration::from_millis(1000)));

        let mut l = Limiter::new(None, Some(600), t0);
        assert_eq!(l.reserve(5, t0), Ok(Duration::ZERO));
        let w = l.reserve(5, t0).unwrap();
        assert!(
            w.abs_diff(Duration::from_millis(500)) < Duration::from_millis(1),
            "{w:?}"
        );

        let mut l = Limiter::new(None, None, t0);
        l.block_until(t0 + Duration::from_secs(2));
        assert_eq!(l.reserve(1, t0), Ok(Duration::from_secs(2)));
        l.block_until(t0 + Duration::from_secs(60));
        assert_eq!(l.reserve(1, t0), Err(Duration::from_secs(60)));
    }
}
