//! The seam between a shard and the checks it runs, and two test probes.
//!
//! What it is for: the shard calls `Probe::check` for each job on its own thread and hands the
//! `Outcome` to a `ResultHandler` owned by the same shard. The real probes live in `cpra-net`
//! and are wired in by the integrator; `NoopProbe` and `SleepProbe` exist for tests and the
//! scheduler benchmark. What it is not for: network code.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use cpra_net::Outcome;

use crate::ring::Job;
use crate::table::MonitorSpec;

/// What a shard's factories learn about the shard they are building for.
pub struct ShardInfo<'a> {
    /// The shard's index, `0..shards`.
    pub shard: usize,
    pub shards: usize,
    /// The shard's monitors, in table order: `Job::monitor` indexes this slice.
    pub monitors: &'a [MonitorSpec],
    /// The instant the shard's clock counts from (`Job` times are ms since then), so work the
    /// handler starts on its own (timers, deliveries) reads the same clock.
    pub epoch: std::time::Instant,
    /// The shard's task queues: work the handler starts on its own goes into `actions` or
    /// `background`, never into the probes' queue.
    pub queues: crate::shard::TaskQueues,
}

/// Runs one check. Created on the shard's thread, used only there, so its futures need not be
/// `Send` (glommio is thread-per-core).
// `async fn` in a public trait: callers cannot add a `Send` bound, which is the point here.
#[allow(async_fn_in_trait)]
pub trait Probe: 'static {
    /// Must end by `job.deadline_ms` (the probe's own timeouts enforce it).
    async fn check(&self, job: &Job) -> Outcome;
}

/// Consumes outcomes on the shard that produced them: the integrator puts the state machine
/// (`Vec<MonitorState>`, 32 bytes each) and the action queue here.
pub trait ResultHandler: 'static {
    fn on_outcome(&mut self, job: &Job, outcome: &Outcome, now_ms: u64);

    /// Called once when the shard stops, after the checks in flight have finished (or the
    /// grace period ended): the work the handler started (alerts being delivered) gets a
    /// future that the shard awaits, bounded by `grace_ms`, before it exits.
    fn drain(&mut self, grace_ms: u64) -> Option<Pin<Box<dyn Future<Output = ()>>>> {
        let _ = grace_ms;
        None
    }

    /// A hint that `job`'s outcome will be handled soon: a handler whose per-monitor state is
    /// large and cold (a million monitors due once a second) can prefetch it here, so the
    /// cache miss overlaps with the checks before it. The shard calls it a few jobs ahead.
    fn prefetch(&self, _job: &Job) {}

    /// Applies a reload order to this shard: the handler knows which of its monitors the
    /// order names and changes `core` (adds, removes, schedule changes) to match. A handler
    /// that does not support reload leaves everything as it is.
    fn reload(
        &mut self,
        _order: &crate::shard::reload::ShardReload,
        _core: &mut crate::shard::ShardCore,
        _now_ms: u64,
    ) {
    }

    /// A scheduling change asked of the shard from outside (the API's disable, enable, check
    /// now), which the dispatcher applies to its core before its next round.
    fn take_schedule_change(&mut self) -> Option<crate::shard::ScheduleChange> {
        None
    }
}

/// Completes at once with success: measures the runtime itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopProbe;

impl Probe for NoopProbe {
    async fn check(&self, _job: &Job) -> Outcome {
        Outcome::success(0)
    }
}

/// Succeeds after a fixed delay (a glommio timer): holds checks in flight like a slow target.
#[derive(Clone, Copy, Debug)]
pub struct SleepProbe(pub Duration);

impl Probe for SleepProbe {
    async fn check(&self, _job: &Job) -> Outcome {
        glommio::timer::sleep(self.0).await;
        Outcome::success(self.0.as_micros().min(u128::from(u32::MAX)) as u32)
    }
}
