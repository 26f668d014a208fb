//! Deadline arithmetic for one check: the monitor's `timeout` bounds everything (resolution,
//! connect, handshake, request, response, retries and the pauses between them).
//!
//! What it is for: pure functions over instants so that the rules can be tested with a virtual
//! clock (callers pass `now`), and [`within`], the one place a probe races its work against
//! glommio's timer. What it is not for: scheduling (the engine's wheel does that).

use std::future::Future;
use std::time::{Duration, Instant};

/// The longest pause between two attempts of one check. Go CPRA's rule: short enough that a
/// retry still fits in a typical 1-5 s timeout, long enough that a momentarily overloaded
/// target gets a breath.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_millis(50);

/// The end of one check, fixed when the check starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    start: Instant,
    end: Instant,
}

impl Deadline {
    /// A deadline `timeout` after `start`.
    pub fn new(start: Instant, timeout: Duration) -> Self {
        // A timeout too large for the clock saturates to "far away" rather than panicking.
        let end = start.checked_add(timeout).unwrap_or(start + Duration::from_secs(86_400 * 365));
        debug_assert!(end >= start);
        Deadline { start, end }
    }

    /// A deadline starting now.
    pub fn after(timeout: Duration) -> Self {
        Self::new(Instant::now(), timeout)
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn end(&self) -> Instant {
        self.end
    }

    /// Time left at `now` (zero once passed).
    pub fn remaining_at(&self, now: Instant) -> Duration {
        self.end.saturating_duration_since(now)
    }

    /// Time left now.
    pub fn remaining(&self) -> Duration {
        self.remaining_at(Instant::now())
    }

    pub fn expired_at(&self, now: Instant) -> bool {
        now >= self.end
    }

    /// Microseconds since the start at `now`, saturating into the `Outcome::latency_us` field.
    pub fn elapsed_us_at(&self, now: Instant) -> u32 {
        saturating_us(now.saturating_duration_since(self.start))
    }

    /// Microseconds since the start, now.
    pub fn elapsed_us(&self) -> u32 {
        self.elapsed_us_at(Instant::now())
    }
}

/// Runs `work` until it finishes or the deadline passes, whichever comes first; `None` means
/// the deadline passed and `work` was dropped (which closes any socket it held). Must run on a
/// glommio executor (it uses the shard's timer, so it never blocks the thread).
pub async fn within<F: Future>(deadline: &Deadline, work: F) -> Option<F::Output> {
    until(deadline.end(), work).await
}

/// [`within`] for a bare end instant (a probe that splits its deadline into shorter ones,
/// like one ICMP echo among `count`).
pub async fn until<F: Future>(end: Instant, work: F) -> Option<F::Output> {
    let remaining = end.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return None;
    }
    futures_lite::future::or(async { Some(work.await) }, async {
        glommio::timer::Timer::new(remaining).await;
        None
    })
    .await
}

/// A duration in whole microseconds, saturating at `u32::MAX` (~71 minutes, far above any
/// allowed timeout).
pub fn saturating_us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The pause before the next attempt: `min(50 ms, remaining / attempts_left / 2)`, so the
/// pauses never eat more than half of what is left for the attempts still allowed.
/// `attempts_left` is the number of attempts still to make (>= 1 when a retry is planned);
/// zero means no retry and gives no pause.
pub fn retry_pause(remaining: Duration, attempts_left: u32) -> Duration {
    if attempts_left == 0 {
        return Duration::ZERO;
    }
    let share = remaining / attempts_left / 2;
    let pause = share.min(RETRY_PAUSE_MAX);
    debug_assert!(pause <= remaining);
    pause
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_counts_down_and_saturates() {
        let t0 = Instant::now();
        let d = Deadline::new(t0, Duration::from_millis(100));
        assert_eq!(d.remaining_at(t0), Duration::from_millis(100));
        assert_eq!(d.remaining_at(t0 + Duration::from_millis(40)), Duration::from_millis(60));
        assert_eq!(d.remaining_at(t0 + Duration::from_millis(400)), Duration::ZERO);
        assert!(!d.expired_at(t0 + Duration::from_millis(99)));
        assert!(d.expired_at(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn elapsed_is_in_microseconds_and_saturates() {
        let t0 = Instant::now();
        let d = Deadline::new(t0, Duration::from_secs(1));
        assert_eq!(d.elapsed_us_at(t0 + Duration::from_micros(1234)), 1234);
        assert_eq!(d.elapsed_us_at(t0 + Duration::from_secs(10_000)), u32::MAX);
    }

    #[test]
    fn retry_pause_follows_the_go_rule() {
        // Plenty of time: capped at 50 ms.
        assert_eq!(retry_pause(Duration::from_secs(5), 2), Duration::from_millis(50));
        // Little time: half the per-attempt share.
        assert_eq!(retry_pause(Duration::from_millis(80), 2), Duration::from_millis(20));
        assert_eq!(retry_pause(Duration::from_millis(80), 1), Duration::from_millis(40));
        // Nothing left, or no attempt left: no pause.
        assert_eq!(retry_pause(Duration::ZERO, 3), Duration::ZERO);
        assert_eq!(retry_pause(Duration::from_secs(1), 0), Duration::ZERO);
    }

    #[test]
    fn pauses_never_exceed_half_the_remaining_time() {
        for ms in [0u64, 1, 7, 99, 100, 101, 250, 5_000] {
            for left in 1..5 {
                let r = Duration::from_millis(ms);
                assert!(retry_pause(r, left) * 2 <= r, "{ms} ms, {left} left");
            }
        }
    }
}
