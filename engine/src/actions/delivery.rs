//! The identity of a queued delivery (for dedup and cancel) and the record of one that was
//! given up on.

use std::sync::Arc;

use crate::colour::Colour;
use crate::manifest::Notify;

/// What makes two queued deliveries the same (STATE_MACHINE.md, Alerts): the endpoint, the
/// monitor, the colour and `not_before_ms`. Not (monitor, colour) alone: two greens of two
/// episodes can both be waiting, with different `not_before_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DedupKey {
    /// The endpoint's identity: its address. Endpoints are interned by the manifest loader,
    /// so the same endpoint block is the same `Arc` for every monitor that names it.
    pub endpoint: usize,
    pub monitor: u32,
    pub colour: Colour,
    pub not_before_ms: u64,
    /// The endpoint's kind, for logs.
    pub notifier: &'static str,
}

impl DedupKey {
    pub fn new(endpoint: &Arc<Notify>, monitor: u32, colour: Colour, not_before_ms: u64) -> Self {
        DedupKey {
            endpoint: Arc::as_ptr(endpoint) as usize,
            monitor,
            colour,
            not_before_ms,
            notifier: endpoint.kind(),
        }
    }
}

/// A delivery given up on: logged, counted, and kept (the last few) for the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undelivered {
    /// The delivery's job id (the `job_id` of log lines).
    pub job: u64,
    /// The monitor's index on its shard.
    pub monitor: u32,
    /// Empty when the record was made at shutdown without the alert at hand.
    pub monitor_id: String,
    pub colour: Colour,
    pub notifier: &'static str,
    pub reason: String,
}
