//! Per-shard counters, written by the shard alone and read by any thread without locks.
//!
//! What it is for: the numbers an operator and the benchmark need (checks started and
//! completed, failures by kind, missed slots, ring-full delays, in-flight, lateness, check
//! durations). The shard counts in plain integers on its hot path and publishes them to
//! atomics once per dispatch round (a single writer, so a relaxed store suffices); readers
//! load the atomics. The histograms are too big for atomics: a reader raises a request flag
//! and the shard hands a copy over through a one-slot `crossbeam_queue::ArrayQueue` at its
//! next round; copies are merged when read. A shard also says whether it is running.
//! What it is not for: metrics export formats (the API does that).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use cpra_net::FailureKind;
use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;

use crate::limits::{CHECK_DURATION_MAX_US, LATENESS_MAX_US};

/// Three significant digits: 0.1% error on a percentile, about 100 KiB per histogram.
const HISTOGRAM_SIGFIG: u8 = 3;

/// The number of failure kinds: the length of every per-kind table (indexed `kind as usize`).
pub const FAILURE_KINDS: usize = FailureKind::ALL.len();

/// A new, empty lateness histogram (µs).
pub fn new_lateness_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENESS_MAX_US, HISTOGRAM_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// A new, empty check-duration histogram (µs, the `Outcome`'s latency).
pub fn new_duration_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, CHECK_DURATION_MAX_US, HISTOGRAM_SIGFIG)
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
    /// Completed checks that failed (the rest of `checks_completed` succeeded).
    pub checks_failed: u64,
    /// Failed checks by kind, indexed `FailureKind as usize` (the order of `FailureKind::ALL`).
    pub failures: [u64; FAILURE_KINDS],
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
        self.checks_failed += other.checks_failed;
        for (total, n) in self.failures.iter_mut().zip(other.failures) {
            *total += n;
        }
    }

    /// Counts one completed check's result (the shard's hot path: plain adds, no allocation).
    pub fn count_result(&mut self, failure: Option<FailureKind>) {
        if let Some(kind) = failure {
            self.checks_failed += 1;
            self.failures[kind as usize] += 1;
        }
    }

    /// Failed checks of `kind`.
    pub fn failures_of(&self, kind: FailureKind) -> u64 {
        self.failures[kind as usize]
    }
}

/// One histogram handed over on request: a reader asks, the shard answers once at its next
/// round; a second request before the first copy is taken finds the slot full and the shard
/// skips it (the reader still gets one).
struct HandOver {
    requested: AtomicBool,
    reply: ArrayQueue<Histogram<u64>>,
}

impl HandOver {
    fn new() -> HandOver {
        HandOver { requested: AtomicBool::new(false), reply: ArrayQueue::new(1) }
    }

    fn request(&self) {
        self.requested.store(true, Ordering::Release);
    }

    fn take(&self) -> Option<Histogram<u64>> {
        self.reply.pop()
    }

    /// Allocates a copy: only on request.
    fn serve(&self, histogram: &Histogram<u64>) {
        if self.requested.swap(false, Ordering::Acquire) {
            let _ = self.reply.push(histogram.clone());
        }
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
    checks_failed: AtomicU64,
    failures: [AtomicU64; FAILURE_KINDS],
    lateness: HandOver,
    duration: HandOver,
    /// Set while the shard's task runs; cleared when it ends, also by a panic (see
    /// [`RunningGuard`]), so the API's `/healthz` sees a dead shard.
    running: AtomicBool,
    /// The shard clock's ms (since the runtime's epoch) at its last dispatch round: a shard
    /// that runs but no longer goes round (wedged) stops moving it.
    heartbeat_ms: AtomicU64,
    /// Reload orders from the control plane (bounded; see `shard::reload`).
    pub reload: crate::shard::reload::ReloadRing,
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
            checks_failed: AtomicU64::new(0),
            failures: std::array::from_fn(|_| AtomicU64::new(0)),
            lateness: HandOver::new(),
            duration: HandOver::new(),
            running: AtomicBool::new(false),
            heartbeat_ms: AtomicU64::new(0),
            reload: Default::default(),
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
        self.checks_failed.store(c.checks_failed, Ordering::Relaxed);
        for (cell, &n) in self.failures.iter().zip(&c.failures) {
            cell.store(n, Ordering::Relaxed);
        }
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
            checks_failed: self.checks_failed.load(Ordering::Relaxed),
            failures: std::array::from_fn(|i| self.failures[i].load(Ordering::Relaxed)),
        }
    }

    /// Reader side: ask the shard for a copy of its lateness histogram.
    pub fn request_lateness(&self) {
        self.lateness.request();
    }

    /// Reader side: the copy, once the shard has handed it over.
    pub fn take_lateness(&self) -> Option<Histogram<u64>> {
        self.lateness.take()
    }

    /// Shard side: answer a pending request (allocates a copy: only on request).
    pub fn serve_lateness(&self, histogram: &Histogram<u64>) {
        self.lateness.serve(histogram);
    }

    /// Reader side: ask the shard for a copy of its check-duration histogram.
    pub fn request_duration(&self) {
        self.duration.request();
    }

    /// Reader side: the copy, once the shard has handed it over.
    pub fn take_duration(&self) -> Option<Histogram<u64>> {
        self.duration.take()
    }

    /// Shard side: answer a pending request (allocates a copy: only on request).
    pub fn serve_duration(&self, histogram: &Histogram<u64>) {
        self.duration.serve(histogram);
    }

    /// Shard side: a dispatch round ran at `now_ms` (shard clock).
    pub fn beat(&self, now_ms: u64) {
        self.heartbeat_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The shard clock's ms at the shard's last dispatch round.
    pub fn heartbeat_ms(&self) -> u64 {
        self.heartbeat_ms.load(Ordering::Relaxed)
    }

    /// Whether the shard's task is running (set by [`RunningGuard`]).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

/// Marks a shard running for as long as it lives: held by the shard's task, dropped when the
/// task ends or unwinds from a panic.
pub struct RunningGuard(Arc<ShardShared>);

impl RunningGuard {
    pub fn new(shared: Arc<ShardShared>) -> RunningGuard {
        shared.running.store(true, Ordering::Relaxed);
        RunningGuard(shared)
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Relaxed);
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

    #[test]
    fn failures_are_counted_by_kind_published_and_merged() {
        // `kind as usize` indexes the tables: it must be the kind's place in `ALL`.
        for (i, kind) in FailureKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "{kind}");
        }
        let mut c = CountersSnapshot::default();
        c.count_result(None);
        c.count_result(Some(FailureKind::Timeout));
        c.count_result(Some(FailureKind::Timeout));
        c.count_result(Some(FailureKind::Dns));
        let shared = ShardShared::new();
        shared.publish(&c);
        let mut total = shared.read();
        total.merge(&c);
        assert_eq!(total.checks_failed, 6);
        assert_eq!(total.failures_of(FailureKind::Timeout), 4);
        assert_eq!(total.failures_of(FailureKind::Dns), 2);
        assert_eq!(total.failures_of(FailureKind::Status), 0);
    }

    #[test]
    fn a_shard_is_running_while_its_guard_lives_even_through_a_panic() {
        let shared = std::sync::Arc::new(ShardShared::new());
        assert!(!shared.is_running());
        let guard = RunningGuard::new(shared.clone());
        assert!(shared.is_running());
        drop(guard);
        assert!(!shared.is_running());
        let panicking = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let _guard = RunningGuard::new(shared);
                panic!("a shard fails");
            })
        };
        assert!(panicking.join().is_err());
        assert!(!shared.is_running());
    }

    #[test]
    fn durations_are_handed_over_apart_from_lateness() {
        let shared = ShardShared::new();
        let mut d = new_duration_histogram();
        d.record(1_500).unwrap();
        shared.request_duration();
        shared.serve_lateness(&new_lateness_histogram());
        assert!(shared.take_lateness().is_none(), "lateness was not asked for");
        shared.serve_duration(&d);
        assert_eq!(shared.take_duration().unwrap().len(), 1);
    }
}
