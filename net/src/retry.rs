//! `retries` for every pulse but http: a check that fails fast is tried again, all attempts
//! inside the one deadline of the check.
//!
//! What it is for: the manifest's `retries` (0 by default: one attempt), applied the same way
//! to tcp, udp, dns, grpc, tls and docker checks by wrapping their single-attempt `check`. The
//! http client keeps its own loop (it retries only idempotent methods and retryable statuses,
//! and reuses its buffer across attempts); icmp turns retries into more echoes (a lost echo is
//! its only transient failure). What it is not for: alert deliveries (the engine's actions
//! have their own retry policy) or anything across checks (thresholds do that).

use std::future::Future;
use std::time::Duration;

use crate::deadline::{retry_pause, Deadline};
use crate::limits::MAX_ATTEMPTS;
use crate::outcome::{FailureKind, Outcome};

/// Whether another attempt inside the same check could end differently. A timeout has used
/// the deadline up; a missing privilege, an unsupported feature, a certificate or a bound
/// crossed are the same on the next attempt; a local resource (no descriptor, buffer or port)
/// is not the target's doing, and the shard tries the whole check again shortly instead
/// (`LOCAL_RESOURCE_RETRY_MS`), after other checks have given theirs back. Everything else (refused, reset, a protocol
/// error, an unhealthy status, a DNS error code, a failed handshake) may be a blip.
pub fn retryable(kind: FailureKind) -> bool {
    !matches!(
        kind,
        FailureKind::Timeout
            | FailureKind::ConnectTimeout
            | FailureKind::Permission
            | FailureKind::Unsupported
            | FailureKind::Certificate
            | FailureKind::TooLarge
            | FailureKind::Assertion
            | FailureKind::LocalResource
    )
}

/// Attempts one check makes for `retries` (the first plus the retries), at most
/// [`MAX_ATTEMPTS`].
pub fn attempts(retries: u32) -> u32 {
    retries.saturating_add(1).min(MAX_ATTEMPTS)
}

/// Runs `attempt` (given the time left) once, and again after a short pause while it fails in
/// a [`retryable`] way, retries remain and time is left; all of it within `timeout`. The
/// outcome is the last attempt's, with the latency of the whole check. Must run on a glommio
/// executor (the pause is the shard's timer).
pub async fn with_retries<F, Fut>(retries: u32, timeout: Duration, mut attempt: F) -> Outcome
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let deadline = Deadline::after(timeout);
    let mut attempts_left = attempts(retries);
    debug_assert!((1..=MAX_ATTEMPTS).contains(&attempts_left));
    let mut retried = false;
    loop {
        attempts_left -= 1;
        let mut outcome = attempt(deadline.remaining()).await;
        let again = attempts_left > 0 && outcome.failure.is_some_and(retryable);
        let pause =
            if again { retry_pause(deadline.remaining(), attempts_left) } else { Duration::ZERO };
        if pause.is_zero() {
            // One attempt keeps the probe's own measure; after retries the check took longer.
            if retried {
                outcome.latency_us = deadline.elapsed_us();
            }
            return outcome;
        }
        glommio::timer::Timer::new(pause).await;
        retried = true;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::outcome::Detail;
    use crate::test_executor::run;

    #[test]
    fn only_failures_that_can_change_are_retried() {
        let retried: Vec<_> = FailureKind::ALL.into_iter().filter(|k| retryable(*k)).collect();
        assert_eq!(
            retried,
            [
                FailureKind::Dns,
                FailureKind::ConnectRefused,
                FailureKind::Tls,
                FailureKind::Status,
                FailureKind::Protocol,
                FailureKind::Connection,
            ]
        );
    }

    #[test]
    fn attempts_are_one_plus_retries_up_to_the_bound() {
        assert_eq!(attempts(0), 1);
        assert_eq!(attempts(1), 2);
        assert_eq!(attempts(u32::MAX), MAX_ATTEMPTS);
    }

    /// A scripted attempt: fails with `kind` the first `failures` times, then succeeds.
    fn scripted(retries: u32, failures: u32, kind: FailureKind) -> (Outcome, u32) {
        run(move || async move {
            let made = Cell::new(0u32);
            let o = with_retries(retries, Duration::from_secs(5), |_| {
                made.set(made.get() + 1);
                let n = made.get();
                async move {
                    if n <= failures {
                        Outcome::failure(kind, 1, Detail::None)
                    } else {
                        Outcome::success(1)
                    }
                }
            })
            .await;
            (o, made.get())
        })
    }

    #[test]
    fn no_retries_is_one_attempt() {
        let (o, made) = scripted(0, 1, FailureKind::ConnectRefused);
        assert_eq!(o.failure, Some(FailureKind::ConnectRefused));
        assert_eq!(made, 1);
    }

    #[test]
    fn a_retry_turns_one_fast_failure_into_a_success() {
        let (o, made) = scripted(1, 1, FailureKind::Protocol);
        assert!(o.is_success(), "{o:?}");
        assert_eq!(made, 2);
    }

    #[test]
    fn a_timeout_is_not_retried() {
        let (o, made) = scripted(2, 1, FailureKind::Timeout);
        assert_eq!(o.failure, Some(FailureKind::Timeout));
        assert_eq!(made, 1);
    }
}
