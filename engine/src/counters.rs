//! Per-shard counters, written by the shard alone and read by any thread without locks.
//!
//! What it is for: the numbers an operator and the benchmark need (checks started and
//! completed, missed slots, ring-full delays, in-flight, lateness). The shard counts in plain
//! integers on its hot path and publishes them to atomics once per dispatch round (a single
//! writer, so a relaxed store suffices); readers load the atomics. The lateness histogram is
//! too big for atomics: a reader raises a request flag and the shard hands a copy over through
//! a one-slot `crossbeam_queue::ArrayQueue` at its next round; copies are merged when read.
//! What it is not for: metrics export formats (the API does that).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;

use crate::limits::LATENESS_MAX_US;

/// Three significant digits: 0.1% error on a percentile, about 100 KiB per histogram.
const LATENESS_SIGFIG: u8 = 3;

/// A new, empty lateness histogram (µs).
pub fn new_lateness_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENESS_MAX_US, LATENESS_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Plain counter values: a shard's local tally, a published snapshot, or a merge of shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    pub monitors: u64,
    pub checks_started: u64,
    pub checks_completed: u64,
    /// Slots skipped because the monitor's previous check was still running or the shard
    /// was late (never replayed).
    pub missed_slots: u64,
    /// Dispatch rounds that stopped with monitors still due because the ring was full.
    pub ring_full_delays: u64,
    /// Checks started and not yet completed (a gauge).
    pub in_flight: u64,
    /// Checks that could not run for want of a local resource (no file descriptor, buffer,
    /// memory or local port: `FailureKind::LocalResource`) and were put back to run again
    /// shortly. Not completed, never a failure: the state machine does not see them.
    pub checks_delayed_local_resource: u64,
}

impl CountersSnapshot {
    pub fn merge(&mut self, other: &CountersSnapshot) {
        self.monitors += other.monitors;
        self.checks_started += other.checks_started;
        self.checks_completed += other.checks_completed;
        self.missed_slots += other.missed_slots;
        self.ring_full_delays += other.ring_full_delays;
        self.in_flight += other.in_flight;
        self.checks_delayed_local_resource += other.checks_delayed_local_resource;
    }
}

/// What a shard shares with other threads: published counters and the histogram hand-over.
pub struct ShardShared {
    monitors: AtomicU64,
    checks_started: AtomicU64,
    checks_completed: AtomicU64,
    missed_slots: AtomicU64,
    ring_full_delays: AtomicU64,
    in_flight: AtomicU64,
    checks_delayed_local_resource: AtomicU64,
    lateness_requested: AtomicBool,
    /// One slot: a reader asks, the shard answers once; a second request before the first
    /// copy is taken finds the slot full and the shard skips it (the reader still gets one).
    lateness_reply: ArrayQueue<Histogram<u64>>,
}

impl Default for ShardShared {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardShared {
    pub fn new() -> ShardShared {
        ShardShared {
            monitors: AtomicU64::new(0),
            checks_started: AtomicU64::new(0),
            checks_completed: AtomicU64::new(0),
            missed_slots: AtomicU64::new(0),
            ring_full_delays: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            checks_delayed_local_resource: AtomicU64::new(0),
            lateness_requested: AtomicBool::new(false),
            lateness_reply: ArrayQueue::new(1),
        }
    }

    /// Called by the shard only (single writer).
    pub fn publish(&self, c: &CountersSnapshot) {
        self.monitors.store(c.monitors, Ordering::Relaxed);
        self.checks_started.store(c.checks_started, Ordering::Relaxed);
        self.checks_completed.store(c.checks_completed, Ordering::Relaxed);
        self.missed_slots.store(c.missed_slots, Ordering::Relaxed);
        self.ring_full_delays.store(c.ring_full_delays, Ordering::Relaxed);
        self.in_flight.store(c.in_flight, Ordering::Relaxed);
        self.checks_delayed_local_resource
            .store(c.checks_delayed_local_resource, Ordering::Relaxed);
    }

    /// Any thread, no locks.
    pub fn read(&self) -> CountersSnapshot {
        CountersSnapshot {
            monitors: self.monitors.load(Ordering::Relaxed),
            checks_started: self.checks_started.load(Ordering::Relaxed),
            checks_completed: self.checks_completed.load(Ordering::Relaxed),
            missed_slots: self.missed_slots.load(Ordering::Relaxed),
            ring_full_delays: self.ring_full_delays.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            checks_delayed_local_resource: self
                .checks_delayed_local_resource
                .load(Ordering::Relaxed),
        }
    }

    /// Reader side: ask the shard for a copy of its lateness histogram.
    pub fn request_lateness(&self) {
        self.lateness_requested.store(true, Ordering::Release);
    }

    /// Reader side: the copy, once the shard has handed it over.
    pub fn take_lateness(&self) -> Option<Histogram<u64>> {
        self.lateness_reply.pop()
    }

    /// Shard side: answer a pending request (allocates a copy: only on request).
    pub fn serve_lateness(&self, histogram: &Histogram<u64>) {
        if self.lateness_requested.swap(false, Ordering::Acquire) {
            let _ = self.lateness_reply.push(histogram.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_counters_are_read_from_another_thread_and_merge() {
        let shared = std::sync::Arc::new(ShardShared::new());
        let writer = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let c = CountersSnapshot {
                    checks_started: 7,
                    checks_completed: 5,
                    in_flight: 2,
                    ..Default::default()
                };
                shared.publish(&c);
            })
        };
        writer.join().unwrap();
        let mut total = shared.read();
        total.merge(&shared.read());
        assert_eq!(total.checks_started, 14);
        assert_eq!(total.in_flight, 4);
    }

    #[test]
    fn lateness_is_handed_over_only_on_request() {
        let shared = ShardShared::new();
        let mut h = new_lateness_histogram();
        h.record(250).unwrap();
        shared.serve_lateness(&h);
        assert!(shared.take_lateness().is_none());
        shared.request_lateness();
        shared.serve_lateness(&h);
        let copy = shared.take_lateness().unwrap();
        assert_eq!(copy.len(), 1);
        assert!(copy.equivalent(copy.max(), 250));
    }
}
