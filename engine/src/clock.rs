//! Where a shard's time comes from.
//!
//! What it is for: one seam so scheduling can be driven by a virtual clock in tests and by the
//! monotonic clock in production. Times are µs since an epoch shared by all shards of a
//! runtime (so "ms of the shard's clock" means the same on every shard). What it is not for:
//! wall-clock dates (cron, maintenance windows use chrono at the edges).

use std::cell::Cell;
use std::time::Instant;

pub trait Clock: 'static {
    /// Microseconds since the clock's epoch; never decreases.
    fn now_us(&self) -> u64;

    fn now_ms(&self) -> u64 {
        self.now_us() / 1000
    }
}

/// The real clock: `Instant` since the runtime started.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    epoch: Instant,
}

impl MonotonicClock {
    pub fn new(epoch: Instant) -> MonotonicClock {
        MonotonicClock { epoch }
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The instant `ms` of this clock stands for (a job's deadline, for glommio's timers).
    pub fn instant_at_ms(&self, ms: u64) -> Instant {
        self.epoch + std::time::Duration::from_millis(ms)
    }
}

impl Clock for MonotonicClock {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// A clock that moves only when told to: for tests of time-dependent logic, without sleeps.
#[derive(Debug, Default)]
pub struct VirtualClock {
    now_us: Cell<u64>,
}

impl VirtualClock {
    pub fn new(start_us: u64) -> VirtualClock {
        VirtualClock { now_us: Cell::new(start_us) }
    }

    pub fn advance_us(&self, by_us: u64) {
        self.now_us.set(self.now_us.get() + by_us);
    }

    pub fn advance_ms(&self, by_ms: u64) {
        self.advance_us(by_ms * 1000);
    }
}

impl Clock for VirtualClock {
    fn now_us(&self) -> u64 {
        self.now_us.get()
    }
}
