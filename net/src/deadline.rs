//! Deadline arithmetic for one check: the monitor's `timeout` bounds everything (resolution,
//! connect, handshake, request, response, retries and the pauses between them).
//!
//! What it is for: pure functions over instants so that the rules can be tested with a virtual
//! clock (callers pass `now`), and [`within`], the one place a probe races its work against
//! glommio's timer. What it is not for: scheduling (the engine's wheel does that).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
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
    until_from(end, Instant::now(), work).await
}

/// [`until`] for a caller that has just read the clock (`now`): one clock read fewer per check.
/// The shard's timer is armed only if `work` has to wait, and only once per race; a `now` a
/// few microseconds old makes that timer fire as much later, never earlier.
pub async fn until_from<F: Future>(end: Instant, now: Instant, work: F) -> Option<F::Output> {
    if now >= end {
        return None;
    }
    let work = std::pin::pin!(work);
    Race { work, end, started: now, armed: None }.await
}

/// `work` raced against one glommio timer. Not `futures_lite::future::or` over a `Timer`:
/// glommio's `Timer` re-registers itself in the reactor's timer tree (and reads the clock) on
/// every poll, and it would be created (an `Rc`) even for work that never waits. Here the timer
/// is created on the first poll that finds `work` pending and registered once; later polls
/// (woken by `work`'s socket) compare the clock with `end` instead, and poll the timer again
/// only if the task's waker changed.
struct Race<'a, F> {
    work: Pin<&'a mut F>,
    end: Instant,
    /// The caller's clock reading, standing for "now" when the timer is armed.
    started: Instant,
    /// The registered timer and the waker it will wake.
    armed: Option<(glommio::timer::Timer, Waker)>,
}

impl<F: Future> Future for Race<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(out) = this.work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match &mut this.armed {
            Some((timer, waker)) => {
                if !waker.will_wake(cx.waker()) {
                    // Polled from another task: move the registration to its waker.
                    waker.clone_from(cx.waker());
                    if Pin::new(timer).poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                } else if Instant::now() >= this.end {
                    return Poll::Ready(None);
                }
            }
            None => {
                let mut timer = glommio::timer::Timer::new(this.end - this.started);
                if Pin::new(&mut timer).poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                this.armed = Some((timer, cx.waker().clone()));
            }
        }
        Poll::Pending
    }
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
    fn a_race_returns_the_work_or_none_at_the_deadline_after_wakes_from_the_work() {
        let (done, never, woken) = crate::test_executor::run(|| async {
            let now = Instant::now();
            let done = until(now + Duration::from_secs(5), async { 7 }).await;
            // Work that wakes its task many times before the deadline and never finishes:
            // each wake polls the race again without ending it early.
            let ticks = std::cell::Cell::new(0u32);
            let work = async {
                loop {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                    ticks.set(ticks.get() + 1);
                }
            };
            let start = Instant::now();
            let never: Option<()> = until(start + Duration::from_millis(100), work).await;
            assert!(start.elapsed() >= Duration::from_millis(100));
            (done, never, ticks.get())
        });
        assert_eq!(done, Some(7));
        assert_eq!(never, None);
        assert!(woken > 1, "{woken}");
    }

    #[test]
    fn a_race_past_its_end_does_not_start_the_work() {
        let started = crate::test_executor::run(|| async {
            let now = Instant::now();
            let started = std::rc::Rc::new(std::cell::Cell::new(false));
            let s = started.clone();
            let out = until_from(now, now, async move { s.set(true) }).await;
            assert_eq!(out, None);
            started.get()
        });
        assert!(!started);
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
