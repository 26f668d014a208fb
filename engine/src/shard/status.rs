//! The fleet's status as the status line and the API read it: per-shard gauges and counts,
//! written by the shard alone (published a few times a second), read by any thread.
//!
//! What it is for: "monitors up/down/unknown, alerts sent, undelivered" without locks. What
//! it is not for: check counts (the runtime's `counters` has them) or metrics formats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One shard's published status.
#[derive(Debug, Default)]
pub struct ShardStatus {
    up: AtomicU64,
    down: AtomicU64,
    unknown: AtomicU64,
    alerts_queued: AtomicU64,
    alerts_sent: AtomicU64,
    alerts_undelivered: AtomicU64,
    interventions: AtomicU64,
}

/// A plain copy of the status, one shard's or the sum of all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// Monitors whose last check succeeded.
    pub up: u64,
    /// Monitors whose last check failed.
    pub down: u64,
    /// Monitors not checked yet (or disabled).
    pub unknown: u64,
    pub alerts_queued: u64,
    pub alerts_sent: u64,
    pub alerts_undelivered: u64,
    pub interventions: u64,
}

impl StatusSnapshot {
    pub fn merge(&mut self, o: &StatusSnapshot) {
        self.up += o.up;
        self.down += o.down;
        self.unknown += o.unknown;
        self.alerts_queued += o.alerts_queued;
        self.alerts_sent += o.alerts_sent;
        self.alerts_undelivered += o.alerts_undelivered;
        self.interventions += o.interventions;
    }
}

impl ShardStatus {
    /// Single writer (the shard): relaxed stores suffice.
    pub fn publish(&self, s: &StatusSnapshot) {
        self.up.store(s.up, Ordering::Relaxed);
        self.down.store(s.down, Ordering::Relaxed);
        self.unknown.store(s.unknown, Ordering::Relaxed);
        self.alerts_queued.store(s.alerts_queued, Ordering::Relaxed);
        self.alerts_sent.store(s.alerts_sent, Ordering::Relaxed);
        self.alerts_undelivered.store(s.alerts_undelivered, Ordering::Relaxed);
        self.interventions.store(s.interventions, Ordering::Relaxed);
    }

    pub fn read(&self) -> StatusSnapshot {
        StatusSnapshot {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
            unknown: self.unknown.load(Ordering::Relaxed),
            alerts_queued: self.alerts_queued.load(Ordering::Relaxed),
            alerts_sent: self.alerts_sent.load(Ordering::Relaxed),
            alerts_undelivered: self.alerts_undelivered.load(Ordering::Relaxed),
            interventions: self.interventions.load(Ordering::Relaxed),
        }
    }
}

/// Every shard's status, indexed by shard.
#[derive(Clone, Debug)]
pub struct FleetStatus(Arc<[ShardStatus]>);

impl FleetStatus {
    pub fn new(shards: usize) -> FleetStatus {
        FleetStatus((0..shards).map(|_| ShardStatus::default()).collect())
    }

    pub fn shard(&self, shard: usize) -> &ShardStatus {
        &self.0[shard]
    }

    pub fn read(&self) -> StatusSnapshot {
        let mut total = StatusSnapshot::default();
        for s in self.0.iter() {
            total.merge(&s.read());
        }
        total
    }
}
