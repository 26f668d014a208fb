//! Awaiting a future under the check's one deadline, on the shard's glommio timer.
//!
//! For the probes of this part (udp, dns, icmp, docker, grpc). The tcp/http helper keeps its
//! own `deadline.rs`; the two are the same idea and can be merged into one when integrated.
//! Not for: anything that blocks (nothing here does), or retries (the caller decides those).

use std::future::Future;
use std::time::{Duration, Instant};

/// Runs `fut` until it finishes or `deadline` passes; `None` when the deadline won.
/// The losing future is dropped, which cancels its io_uring operation in glommio.
pub(crate) async fn within<T>(deadline: Instant, fut: impl Future<Output = T>) -> Option<T> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return None;
    }
    let work = async { Some(fut.await) };
    let timer = async {
        glommio::timer::sleep(remaining).await;
        None
    };
    futures_lite::future::or(work, timer).await
}

/// Microseconds since `start`, saturating into the `u32` an `Outcome` carries (71 minutes).
pub(crate) fn elapsed_us(start: Instant) -> u32 {
    u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// The instant `timeout` after `start`, saturating far in the future instead of panicking on an
/// absurd timeout from a manifest.
pub(crate) fn deadline_after(start: Instant, timeout: Duration) -> Instant {
    start.checked_add(timeout).unwrap_or_else(|| start + Duration::from_secs(86_400 * 365))
}
