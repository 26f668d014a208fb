//! Reload orders the control plane sends a shard, and the ring they travel on.
//!
//! What it is for: one bounded ring per shard (`crossbeam_queue::ArrayQueue`, in the
//! shard's [`ShardShared`](crate::counters::ShardShared)) carrying a [`ShardReload`]: the
//! new plan and only this shard's adds, removes and changes. The shard takes it between two
//! dispatch rounds (so within `IDLE_POLL_MS`), applies it to its core and handler, and counts
//! it applied; the control plane waits for that count. What it is not for: deciding what
//! changed (`reload::diff`) or reading the manifest (`reload`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::limits::RELOAD_RING;
use crate::plan::Plan;
use crate::table::MonitorSpec;

/// What one shard changes on a reload. Monitors are named by their index in the old plan
/// (`cold`), which the shard knows; new ones by their spec in the new plan.
#[derive(Debug)]
pub struct ShardReload {
    /// The new plan: every monitor the shard keeps reads its config here from now on.
    pub plan: Arc<Plan>,
    /// Old indexes of this shard's monitors that are gone.
    pub removed: Vec<u32>,
    /// (old index, new spec) of this shard's monitors whose config changed.
    pub changed: Vec<(u32, MonitorSpec)>,
    /// (old index, new index) of unchanged monitors whose place in the file moved.
    pub moved: Vec<(u32, u32)>,
    /// New monitors routed to this shard (`cold` = their index in the new plan).
    pub added: Vec<MonitorSpec>,
}

/// A shard's ring of reload orders, and how many it has applied.
pub struct ReloadRing {
    orders: ArrayQueue<Box<ShardReload>>,
    applied: AtomicU64,
}

impl Default for ReloadRing {
    fn default() -> Self {
        ReloadRing { orders: ArrayQueue::new(RELOAD_RING), applied: AtomicU64::new(0) }
    }
}

impl ReloadRing {
    /// Queues an order; gives it back when the ring is full (the shard is not taking them).
    pub fn push(&self, order: ShardReload) -> Result<(), Box<ShardReload>> {
        self.orders.push(Box::new(order))
    }

    /// The next order, on the shard.
    pub fn pop(&self) -> Option<Box<ShardReload>> {
        self.orders.pop()
    }

    /// Orders waiting.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Called by the shard once an order is applied.
    pub fn applied_one(&self) {
        self.applied.fetch_add(1, Ordering::Release);
    }

    /// Orders applied since start.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }
}
