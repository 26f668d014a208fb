//! The fleet's status as the status line and the API read it: per-shard gauges and counts,
//! written by the shard alone (published a few times a second), read by any thread.
//!
//! What it is for: "monitors up/down/unknown/disabled, incidents open, alerts sent and
//! undelivered by colour, interventions by result" without locks. What it is not for: check
//! counts (the runtime's `counters` has them) or metrics formats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::colour::Colour;

/// One shard's published status.
#[derive(Debug, Default)]
pub struct ShardStatus {
    up: AtomicU64,
    down: AtomicU64,
    unknown: AtomicU64,
    disabled: AtomicU64,
    incidents_open: AtomicU64,
    alerts_queued: AtomicU64,
    alerts_sent: [AtomicU64; Colour::COUNT],
    alerts_undelivered: [AtomicU64; Colour::COUNT],
    alerts_silenced: [AtomicU64; Colour::COUNT],
    alerts_deduplicated: AtomicU64,
    alerts_cancelled: AtomicU64,
    interventions: AtomicU64,
    interventions_succeeded: AtomicU64,
    interventions_failed: AtomicU64,
    interventions_unknown: AtomicU64,
}

/// A plain copy of the status, one shard's or the sum of all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// Monitors whose last check succeeded.
    pub up: u64,
    /// Monitors whose last check failed.
    pub down: u64,
    /// Enabled monitors not checked yet.
    pub unknown: u64,
    /// Monitors the manifest disables (never checked).
    pub disabled: u64,
    /// Incidents opened and not closed yet.
    pub incidents_open: u64,
    pub alerts_queued: u64,
    /// Deliveries that reached their receiver, all colours.
    pub alerts_sent: u64,
    /// Deliveries given up on, all colours.
    pub alerts_undelivered: u64,
    /// `alerts_sent` by colour, indexed `Colour::index`.
    pub alerts_sent_by_colour: [u64; Colour::COUNT],
    /// `alerts_undelivered` by colour, indexed `Colour::index`.
    pub alerts_undelivered_by_colour: [u64; Colour::COUNT],
    /// Deliveries held back because the monitor was silenced (through the API), by colour.
    pub alerts_silenced_by_colour: [u64; Colour::COUNT],
    /// Deliveries queued while the same one (endpoint, monitor, colour, send time) was already
    /// on its way, so not sent twice: `alerts_queued` = sent + undelivered + deduplicated +
    /// cancelled + those still in flight.
    pub alerts_deduplicated: u64,
    /// Deliveries dropped before they were sent (their monitor disabled, changed or removed).
    pub alerts_cancelled: u64,
    /// Interventions started.
    pub interventions: u64,
    pub interventions_succeeded: u64,
    pub interventions_failed: u64,
    /// Interventions whose request went out and got no answer.
    pub interventions_unknown: u64,
}

fn add_each(total: &mut [u64], other: &[u64]) {
    for (t, o) in total.iter_mut().zip(other) {
        *t += o;
    }
}

impl StatusSnapshot {
    pub fn merge(&mut self, o: &StatusSnapshot) {
        self.up += o.up;
        self.down += o.down;
        self.unknown += o.unknown;
        self.disabled += o.disabled;
        self.incidents_open += o.incidents_open;
        self.alerts_queued += o.alerts_queued;
        self.alerts_sent += o.alerts_sent;
        self.alerts_undelivered += o.alerts_undelivered;
        add_each(&mut self.alerts_sent_by_colour, &o.alerts_sent_by_colour);
        add_each(&mut self.alerts_undelivered_by_colour, &o.alerts_undelivered_by_colour);
        add_each(&mut self.alerts_silenced_by_colour, &o.alerts_silenced_by_colour);
        self.alerts_deduplicated += o.alerts_deduplicated;
        self.alerts_cancelled += o.alerts_cancelled;
        self.interventions += o.interventions;
        self.interventions_succeeded += o.interventions_succeeded;
        self.interventions_failed += o.interventions_failed;
        self.interventions_unknown += o.interventions_unknown;
    }

    /// Every monitor, whatever its state.
    pub fn monitors(&self) -> u64 {
        self.up + self.down + self.unknown + self.disabled
    }
}

fn store_each(cells: &[AtomicU64], values: &[u64]) {
    for (cell, &v) in cells.iter().zip(values) {
        cell.store(v, Ordering::Relaxed);
    }
}

impl ShardStatus {
    /// Single writer (the shard): relaxed stores suffice.
    pub fn publish(&self, s: &StatusSnapshot) {
        self.up.store(s.up, Ordering::Relaxed);
        self.down.store(s.down, Ordering::Relaxed);
        self.unknown.store(s.unknown, Ordering::Relaxed);
        self.disabled.store(s.disabled, Ordering::Relaxed);
        self.incidents_open.store(s.incidents_open, Ordering::Relaxed);
        self.alerts_queued.store(s.alerts_queued, Ordering::Relaxed);
        store_each(&self.alerts_sent, &s.alerts_sent_by_colour);
        store_each(&self.alerts_undelivered, &s.alerts_undelivered_by_colour);
        store_each(&self.alerts_silenced, &s.alerts_silenced_by_colour);
        self.alerts_deduplicated.store(s.alerts_deduplicated, Ordering::Relaxed);
        self.alerts_cancelled.store(s.alerts_cancelled, Ordering::Relaxed);
        self.interventions.store(s.interventions, Ordering::Relaxed);
        self.interventions_succeeded.store(s.interventions_succeeded, Ordering::Relaxed);
        self.interventions_failed.store(s.interventions_failed, Ordering::Relaxed);
        self.interventions_unknown.store(s.interventions_unknown, Ordering::Relaxed);
    }

    pub fn read(&self) -> StatusSnapshot {
        let sent: [u64; Colour::COUNT] =
            std::array::from_fn(|i| self.alerts_sent[i].load(Ordering::Relaxed));
        let undelivered: [u64; Colour::COUNT] =
            std::array::from_fn(|i| self.alerts_undelivered[i].load(Ordering::Relaxed));
        StatusSnapshot {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
            unknown: self.unknown.load(Ordering::Relaxed),
            disabled: self.disabled.load(Ordering::Relaxed),
            incidents_open: self.incidents_open.load(Ordering::Relaxed),
            alerts_queued: self.alerts_queued.load(Ordering::Relaxed),
            alerts_sent: sent.iter().sum(),
            alerts_undelivered: undelivered.iter().sum(),
            alerts_sent_by_colour: sent,
            alerts_undelivered_by_colour: undelivered,
            alerts_silenced_by_colour: std::array::from_fn(|i| {
                self.alerts_silenced[i].load(Ordering::Relaxed)
            }),
            alerts_deduplicated: self.alerts_deduplicated.load(Ordering::Relaxed),
            alerts_cancelled: self.alerts_cancelled.load(Ordering::Relaxed),
            interventions: self.interventions.load(Ordering::Relaxed),
            interventions_succeeded: self.interventions_succeeded.load(Ordering::Relaxed),
            interventions_failed: self.interventions_failed.load(Ordering::Relaxed),
            interventions_unknown: self.interventions_unknown.load(Ordering::Relaxed),
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

    pub fn shards(&self) -> usize {
        self.0.len()
    }

    pub fn read(&self) -> StatusSnapshot {
        let mut total = StatusSnapshot::default();
        for s in self.0.iter() {
            total.merge(&s.read());
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_status_sums_colours_and_merges_shards() {
        let fleet = FleetStatus::new(2);
        let mut s = StatusSnapshot { up: 2, disabled: 1, incidents_open: 1, ..Default::default() };
        s.alerts_sent_by_colour[Colour::Red.index()] = 3;
        s.alerts_sent_by_colour[Colour::Green.index()] = 1;
        s.alerts_undelivered_by_colour[Colour::Yellow.index()] = 2;
        fleet.shard(0).publish(&s);
        fleet.shard(1).publish(&s);
        let total = fleet.read();
        assert_eq!(total.monitors(), 6);
        assert_eq!(total.incidents_open, 2);
        assert_eq!((total.alerts_sent, total.alerts_undelivered), (8, 4));
        assert_eq!(total.alerts_sent_by_colour[Colour::Red.index()], 6);
    }
}
