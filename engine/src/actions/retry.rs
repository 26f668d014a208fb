//! When to try a delivery again: a pure schedule over the runtime clock's milliseconds, so it
//! is tested with a virtual clock.
//!
//! docs/state-machine.md: a transport error before the request was fully sent, a 429 or a 5xx is
//! retried, at most 3 attempts per endpoint, about 2 s then 4 s apart, with jitter. Anything
//! else (another 4xx, a connection broken after the request was sent, which may have been
//! delivered) is final.

use crate::limits::MAX_DELIVERY_ATTEMPTS;

/// The result of one delivery attempt, as the sender classifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    /// Worth another attempt (the receiver did not take it, and a repeat cannot duplicate it).
    Retryable(String),
    /// Final: retrying would not help or could deliver twice.
    Permanent(String),
}

/// The retry rule. `Default` is the production one; tests shrink `first_pause_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per endpoint, first included ([`MAX_DELIVERY_ATTEMPTS`] by default).
    pub max_attempts: u32,
    /// Pause before the second attempt; each later pause doubles it (2 s, 4 s).
    pub first_pause_ms: u64,
    /// Jitter, in thousandths of the pause, added or removed at random (±20 % by default) so
    /// the retries of a burst do not hit a recovering receiver all at once.
    pub jitter_permille: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: MAX_DELIVERY_ATTEMPTS,
            first_pause_ms: 2_000,
            jitter_permille: 200,
        }
    }
}

impl RetryPolicy {
    /// The pause after attempt `attempt` (1-based) failed, before `attempt + 1`; `rand` is
    /// any 64-bit random value (the jitter).
    pub fn pause_ms(&self, attempt: u32, rand: u64) -> u64 {
        debug_assert!(attempt >= 1);
        let base = self.first_pause_ms.saturating_mul(1 << (attempt - 1).min(16));
        let span = base.saturating_mul(self.jitter_permille) / 1000;
        if span == 0 {
            return base;
        }
        // Uniform in [base - span, base + span].
        base - span + rand % (2 * span + 1)
    }
}

/// What to do after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again at this time (runtime clock ms).
    RetryAt(u64),
    /// Record undelivered with this reason.
    GiveUp(String),
}

/// One delivery's progress through its attempts.
#[derive(Clone, Debug)]
pub struct Schedule {
    policy: RetryPolicy,
    attempts: u32,
    rng: u64,
}

impl Schedule {
    /// `seed` makes the jitter deterministic per delivery (its job id).
    pub fn new(policy: RetryPolicy, seed: u64) -> Schedule {
        assert!(policy.max_attempts >= 1);
        Schedule { policy, attempts: 0, rng: seed ^ 0x9e37_79b9_7f4a_7c15 }
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// SplitMix64: the jitter needs no quality beyond spreading retries.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Records an attempt that ended at `now_ms` with `result`, and says what comes next.
    pub fn next(&mut self, result: &AttemptResult, now_ms: u64) -> Next {
        self.attempts += 1;
        debug_assert!(self.attempts <= self.policy.max_attempts);
        match result {
            AttemptResult::Delivered => Next::Delivered,
            AttemptResult::Permanent(reason) => Next::GiveUp(reason.clone()),
            AttemptResult::Retryable(reason) if self.attempts >= self.policy.max_attempts => {
                Next::GiveUp(format!("{reason} (gave up after {} attempts)", self.attempts))
            }
            AttemptResult::Retryable(_) => {
                let rand = self.random();
                Next::RetryAt(now_ms + self.policy.pause_ms(self.attempts, rand))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, VirtualClock};

    fn retryable() -> AttemptResult {
        AttemptResult::Retryable("HTTP 503".into())
    }

    /// Runs attempts with the given results on a virtual clock, each attempt taking 100 ms;
    /// returns the start time of each attempt and the final decision.
    fn run(policy: RetryPolicy, results: &[AttemptResult], seed: u64) -> (Vec<u64>, Next) {
        let clock = VirtualClock::new(0);
        let mut schedule = Schedule::new(policy, seed);
        let mut starts = Vec::new();
        for result in results {
            starts.push(clock.now_ms());
            clock.advance_ms(100);
            match schedule.next(result, clock.now_ms()) {
                Next::RetryAt(at) => clock.advance_ms(at - clock.now_ms()),
                other => return (starts, other),
            }
        }
        panic!("the schedule asked for more attempts than results given");
    }

    #[test]
    fn two_retries_about_two_then_four_seconds_apart() {
        for seed in 0..200 {
            let (starts, last) = run(
                RetryPolicy::default(),
                &[retryable(), retryable(), AttemptResult::Delivered],
                seed,
            );
            assert_eq!(last, Next::Delivered);
            assert_eq!(starts.len(), 3);
            let first_gap = starts[1] - starts[0] - 100;
            let second_gap = starts[2] - starts[1] - 100;
            assert!((1_600..=2_400).contains(&first_gap), "{first_gap}");
            assert!((3_200..=4_800).contains(&second_gap), "{second_gap}");
        }
    }

    #[test]
    fn jitter_spreads_pauses() {
        let p = RetryPolicy::default();
        let pauses: std::collections::HashSet<u64> = (0..50).map(|r| p.pause_ms(1, r)).collect();
        assert!(pauses.len() > 10);
        let exact = RetryPolicy { jitter_permille: 0, ..p };
        assert_eq!((exact.pause_ms(1, 7), exact.pause_ms(2, 7)), (2_000, 4_000));
    }

    #[test]
    fn at_most_three_attempts() {
        let (starts, last) =
            run(RetryPolicy::default(), &[retryable(), retryable(), retryable()], 1);
        assert_eq!(starts.len(), 3);
        assert_eq!(last, Next::GiveUp("HTTP 503 (gave up after 3 attempts)".into()));
    }

    #[test]
    fn permanent_failure_is_not_retried() {
        let (starts, last) =
            run(RetryPolicy::default(), &[AttemptResult::Permanent("HTTP 400".into())], 1);
        assert_eq!(starts, [0]);
        assert_eq!(last, Next::GiveUp("HTTP 400".into()));
    }
}
