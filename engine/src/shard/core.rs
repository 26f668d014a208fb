//! The synchronous heart of a shard: its table, timing wheel, job ring and counters, driven
//! with explicit times.
//!
//! What it is for: every scheduling rule of a shard (first slot spread by id hash, fixed-rate
//! slots, missed slots rolled forward, a full ring that delays and never loses, one check in
//! flight per monitor, a check without a local resource tried again shortly), tested under a
//! virtual clock. What it is not for: tasks, sockets or
//! the state machine (the [`Shard`](super::Shard) drives this core from its tasks).

use hdrhistogram::Histogram;

use cpra_net::Outcome;

use crate::counters::{new_duration_histogram, new_lateness_histogram, CountersSnapshot};
use crate::limits::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use crate::ring::{Job, JobRing};
use crate::schedule::{deadline_ms, first_slot_ms, next_slot_ms};
use crate::table::{MonitorSpec, Table, TableError};
use crate::wheel::Wheel;

/// How soon a check that could not run for want of a local resource (no file descriptor,
/// buffer or local port) runs again. 100 ms: long enough for checks in flight to finish and
/// give their sockets back (loopback checks take well under that, slow ones free theirs as
/// they end), short enough that the monitor is checked well within any usual interval. The
/// regular slot is taken instead when it comes sooner.
pub const LOCAL_RESOURCE_RETRY_MS: u64 = 100;

/// The shortest time between two warnings about checks delayed for want of a local resource:
/// the first delay is logged at once, later ones at most this often, with the count since the
/// last warning (a shard out of descriptors would otherwise log thousands of lines a second).
pub const LOCAL_RESOURCE_WARN_EVERY_MS: u64 = 10_000;

/// What [`ShardCore::complete_delayed`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delayed {
    /// When the monitor runs again; `None` when it is not rescheduled (stopping, disabled).
    pub retry_at_ms: Option<u64>,
    /// `Some(n)`: warn now, for the `n` checks delayed since the last warning (this one
    /// included); `None`: a warning was given less than [`LOCAL_RESOURCE_WARN_EVERY_MS`] ago.
    pub warn: Option<u64>,
}

/// The synchronous state of one shard. Times are passed in, never read.
pub struct ShardCore {
    table: Table,
    wheel: Wheel,
    ring: JobRing,
    max_in_flight: u32,
    in_flight: u32,
    counters: CountersSnapshot,
    lateness_us: Histogram<u64>,
    /// Each completed check's duration (the outcome's latency).
    duration_us: Histogram<u64>,
    stopping: bool,
    /// When the last local-resource warning was given, and the delays counted since.
    last_local_warn_ms: Option<u64>,
    delayed_since_warn: u64,
    /// Monitors disabled while their check was in flight: not rescheduled when it ends,
    /// unless enabled meanwhile (then the check's end reschedules them, not `enable`, so one
    /// check per monitor stays in flight). At most the checks in flight.
    draining: Vec<u32>,
}

/// What [`ShardCore::schedule`] is asked (control requests, applied by the dispatcher).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleChange {
    /// Stop checking the monitor.
    Disable { monitor: u32 },
    /// Check it again every `interval_ms`, the first time at once.
    Enable { monitor: u32, interval_ms: u32 },
    /// Run its next check at once; the fixed rate goes on from that check.
    CheckNow { monitor: u32 },
}

impl ShardCore {
    /// Loads `specs` at `load_ms`: each enabled monitor's first slot is spread over its
    /// interval by its id hash. Allocates everything the shard will need.
    pub fn new(
        specs: &[MonitorSpec],
        load_ms: u64,
        max_in_flight: u32,
    ) -> Result<ShardCore, TableError> {
        let table = Table::new(specs)?;
        let mut wheel = Wheel::new(specs.len() as u32, load_ms);
        for (idx, spec) in specs.iter().enumerate() {
            if table.is_enabled(idx as u32) {
                wheel.insert(idx as u32, first_slot_ms(load_ms, spec.id_hash, spec.interval_ms));
            }
        }
        let counters = CountersSnapshot { monitors: specs.len() as u64, ..Default::default() };
        Ok(ShardCore {
            table,
            wheel,
            ring: JobRing::new(max_in_flight),
            max_in_flight,
            in_flight: 0,
            counters,
            lateness_us: new_lateness_histogram(),
            duration_us: new_duration_histogram(),
            stopping: false,
            last_local_warn_ms: None,
            delayed_since_warn: 0,
            draining: Vec::with_capacity(max_in_flight as usize),
        })
    }

    /// Starts every monitor due at `now_us` while fewer than `max_in_flight` checks are in
    /// flight, pushing its job to the ring. A monitor that finds the ring full stays due in
    /// the wheel (its slot unchanged) and goes at the next round: never lost, never doubled.
    /// Returns how many checks were started.
    pub fn dispatch_due(&mut self, now_us: u64) -> u32 {
        if self.stopping {
            return 0;
        }
        let now_ms = now_us / 1000;
        let mut started = 0;
        while self.in_flight < self.max_in_flight {
            let Some(monitor) = self.wheel.poll(now_ms) else {
                break;
            };
            if let Some(upcoming) = self.wheel.upcoming() {
                self.table.prefetch(upcoming);
            }
            let scheduled_ms = self.wheel.when_ms(monitor);
            let sched = self.table.get_mut(monitor);
            debug_assert!(sched.interval_ms != 0, "disabled monitor {monitor} was in the wheel");
            sched.generation = sched.generation.wrapping_add(1);
            let job = Job {
                monitor,
                cold: sched.cold,
                generation: sched.generation,
                scheduled_ms,
                deadline_ms: deadline_ms(now_ms, sched.timeout_ms),
            };
            let pushed = self.ring.push(job);
            assert!(pushed.is_ok(), "ring full below max_in_flight");
            self.in_flight += 1;
            started += 1;
            self.lateness_us.saturating_record(now_us.saturating_sub(scheduled_ms * 1000));
        }
        if self.in_flight == self.max_in_flight && self.wheel.has_due(now_ms) {
            self.counters.ring_full_delays += 1;
        }
        self.counters.checks_started += u64::from(started);
        self.counters.in_flight = u64::from(self.in_flight);
        started
    }

    /// The next job for a probe task.
    pub fn take_job(&mut self) -> Option<Job> {
        self.ring.pop()
    }

    /// A job waiting in the ring, `ahead` places behind the next one.
    pub fn peek_job(&self, ahead: usize) -> Option<&Job> {
        self.ring.peek(ahead)
    }

    /// Records the end of `job` at `now_ms` and puts its monitor back in the wheel at the next
    /// fixed-rate slot, counting the slots that passed meanwhile. Returns that slot, or `None`
    /// when the monitor is not rescheduled (stopping, or disabled meanwhile).
    pub fn complete(&mut self, job: &Job, now_ms: u64) -> Option<u64> {
        assert!(self.in_flight > 0, "completion with nothing in flight");
        debug_assert!(
            !self.wheel.contains(job.monitor),
            "monitor {} in flight and in the wheel",
            job.monitor
        );
        debug_assert_eq!(self.table.get(job.monitor).generation, job.generation);
        self.in_flight -= 1;
        self.counters.checks_completed += 1;
        self.counters.in_flight = u64::from(self.in_flight);
        self.drained(job.monitor);
        let interval_ms = self.table.get(job.monitor).interval_ms;
        if interval_ms == 0 {
            self.landed_disabled(job.monitor);
        }
        if self.stopping || interval_ms == 0 {
            return None;
        }
        let (next_ms, missed) = next_slot_ms(job.scheduled_ms, interval_ms, now_ms);
        self.counters.missed_slots += missed;
        self.wheel.insert(job.monitor, next_ms);
        Some(next_ms)
    }

    /// Records the end of `job` at `now_ms` without a verdict: the check could not run for want
    /// of a local resource (`FailureKind::LocalResource`), which says nothing about the
    /// target. The monitor goes back into the wheel [`LOCAL_RESOURCE_RETRY_MS`] later, or at
    /// its next regular slot if that is sooner; the check is counted as delayed, not
    /// completed, and no slot is counted missed. Also decides whether to warn (rate-limited).
    pub fn complete_delayed(&mut self, job: &Job, now_ms: u64) -> Delayed {
        assert!(self.in_flight > 0, "completion with nothing in flight");
        debug_assert!(!self.wheel.contains(job.monitor), "monitor {} doubled", job.monitor);
        self.in_flight -= 1;
        self.counters.checks_delayed_local_resource += 1;
        self.counters.in_flight = u64::from(self.in_flight);
        self.delayed_since_warn += 1;
        let warn = match self.last_local_warn_ms {
            Some(last) if now_ms < last.saturating_add(LOCAL_RESOURCE_WARN_EVERY_MS) => None,
            _ => {
                self.last_local_warn_ms = Some(now_ms);
                Some(std::mem::take(&mut self.delayed_since_warn))
            }
        };
        self.drained(job.monitor);
        let interval_ms = self.table.get(job.monitor).interval_ms;
        if interval_ms == 0 {
            self.landed_disabled(job.monitor);
        }
        if self.stopping || interval_ms == 0 {
            return Delayed { retry_at_ms: None, warn };
        }
        let (regular_ms, _) = next_slot_ms(job.scheduled_ms, interval_ms, now_ms);
        let retry_at_ms = regular_ms.min(now_ms + LOCAL_RESOURCE_RETRY_MS);
        self.wheel.insert(job.monitor, retry_at_ms);
        Delayed { retry_at_ms: Some(retry_at_ms), warn }
    }

    /// Counts a completed check's result and duration (before `complete`, for the same job).
    /// A job whose monitor a reload removed (before or while it ran) has its result dropped:
    /// not counted. The same table line `complete` reads next, so no extra miss.
    pub fn record_outcome(&mut self, job: &Job, outcome: &Outcome) {
        if self.table.is_removed(job.monitor) {
            return;
        }
        self.counters.count_result(outcome.failure);
        self.duration_us.saturating_record(u64::from(outcome.latency_us));
    }

    /// When the wheel next has work (see `Wheel::next_due_ms`); `None` when idle or stopping.
    pub fn next_due_ms(&self) -> Option<u64> {
        if self.stopping {
            return None;
        }
        self.wheel.next_due_ms()
    }

    pub fn has_room(&self) -> bool {
        self.in_flight < self.max_in_flight
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    pub fn ring_is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Stops starting checks; checks in flight complete but are not rescheduled.
    pub fn stop_scheduling(&mut self) {
        self.stopping = true;
    }

    pub fn counters(&self) -> &CountersSnapshot {
        &self.counters
    }

    /// Lateness (actual start minus scheduled slot), µs.
    pub fn lateness_us(&self) -> &Histogram<u64> {
        &self.lateness_us
    }

    pub fn duration_us(&self) -> &Histogram<u64> {
        &self.duration_us
    }

    /// Whether the monitor waits in the wheel (i.e. is not in flight).
    pub fn is_waiting(&self, monitor: u32) -> bool {
        self.wheel.contains(monitor)
    }

    /// Stops scheduling one monitor (disabled on reload or through the API): out of the
    /// wheel at once, or not rescheduled when its in-flight check ends.
    pub fn disable(&mut self, monitor: u32) {
        let was_waiting = self.wheel.cancel(monitor);
        if !was_waiting && self.table.is_enabled(monitor) && !self.draining.contains(&monitor) {
            // Enabled and not waiting: its check is in flight (or it stops with the shard).
            self.draining.push(monitor);
        }
        self.table.disable(monitor);
    }

    /// Makes room for `more` monitors added at run time, at most one wheel rebuild for a
    /// reload's whole batch (free slots are taken first).
    pub fn reserve(&mut self, more: usize) {
        let needed = self.table.len() + more.saturating_sub(self.table.free_slots());
        self.wheel.grow(needed as u32);
    }

    /// Adds a monitor at `now_ms` (a reload): in a free slot when there is one, its first
    /// check spread over its interval by its id hash, as at start. Returns its slot.
    pub fn add_monitor(&mut self, spec: &MonitorSpec, now_ms: u64) -> Result<u32, TableError> {
        let slot = self.table.add(spec)?;
        self.wheel.grow(self.table.len() as u32);
        debug_assert!(!self.wheel.contains(slot), "new slot {slot} already in the wheel");
        if self.table.is_enabled(slot) && !self.stopping {
            self.wheel.insert(slot, first_slot_ms(now_ms, spec.id_hash, spec.interval_ms));
        }
        self.counters.monitors += 1;
        self.check_invariants();
        Ok(slot)
    }

    /// Removes a monitor (a reload): out of the wheel at once; a check in flight on it ends
    /// without being rescheduled, and its slot is reused only after that.
    pub fn remove_monitor(&mut self, monitor: u32) {
        let in_flight = self.flying(monitor);
        self.wheel.cancel(monitor);
        self.table.remove(monitor);
        if !in_flight {
            self.table.release(monitor);
        }
        self.counters.monitors -= 1;
        self.check_invariants();
    }

    /// Changes a monitor's schedule (a reload changed its config). It keeps its place in the
    /// wheel: the slot already due is taken, the new interval counts from it. A monitor
    /// enabled by the change starts within its new interval; one disabled stops.
    pub fn update_monitor(
        &mut self,
        monitor: u32,
        spec: &MonitorSpec,
        now_ms: u64,
    ) -> Result<(), TableError> {
        let was_enabled = self.table.is_enabled(monitor);
        Table::check(spec)?;
        if was_enabled && !spec.enabled {
            self.disable(monitor);
        }
        self.table.update(monitor, spec)?;
        if !was_enabled && spec.enabled {
            // In flight (disabled during its check): rescheduled as usual when it ends.
            let in_flight = self.draining.contains(&monitor);
            if !in_flight && !self.stopping {
                let first_ms = first_slot_ms(now_ms, spec.id_hash, spec.interval_ms);
                self.wheel.insert(monitor, first_ms);
            }
        }
        self.check_invariants();
        Ok(())
    }

    /// Whether a check on `monitor` is in flight. An enabled monitor is always either in the
    /// wheel or in flight; a disabled one is in flight only if it was disabled while its
    /// check ran, which `draining` remembers (so no per-monitor flag is needed on the hot
    /// path).
    fn flying(&self, monitor: u32) -> bool {
        !self.wheel.contains(monitor)
            && (self.table.is_enabled(monitor) || self.draining.contains(&monitor))
    }

    /// What every run-time add, remove and change leaves true, in O(1) (a reload may make a
    /// million of them): the wheel can hold every slot, and the live count is the monitors'.
    /// The full cross-check of table and wheel is [`ShardCore::assert_consistent`].
    fn check_invariants(&self) {
        assert!(self.wheel.capacity() as usize >= self.table.len());
        assert_eq!(self.table.live() as u64, self.counters.monitors);
        assert!(self.table.live() + self.table.free_slots() <= self.table.len());
    }

    /// Table and wheel agree slot by slot: every monitor in the wheel is live and enabled,
    /// and no free slot is in the wheel. O(slots): for tests and after a reload's batch.
    pub fn assert_consistent(&self) {
        self.check_invariants();
        for m in 0..self.table.len() as u32 {
            if self.wheel.contains(m) {
                assert!(self.table.is_enabled(m), "disabled monitor {m} in the wheel");
                assert!(!self.table.is_removed(m), "removed monitor {m} in the wheel");
            }
        }
    }

    /// The check of `monitor` ended: it no longer drains.
    fn drained(&mut self, monitor: u32) {
        if !self.draining.is_empty() {
            if let Some(i) = self.draining.iter().position(|&m| m == monitor) {
                self.draining.swap_remove(i);
            }
        }
    }

    /// A check ended on a monitor that is no longer scheduled (cold path): a removed one's
    /// slot becomes reusable.
    #[cold]
    fn landed_disabled(&mut self, monitor: u32) {
        if self.table.is_removed(monitor) {
            self.table.release(monitor);
        }
    }

    /// The number of the last check started on slot `monitor` (its monitor's state numbers
    /// checks the same way).
    pub fn generation(&self, monitor: u32) -> crate::state::Generation {
        crate::state::Generation::new(self.table.get(monitor).generation as u16)
    }

    /// Slots in the table (live and free).
    pub fn slots(&self) -> usize {
        self.table.len()
    }

    /// Applies a control request at `now_ms`. Returns whether it changed anything: enabling
    /// an enabled monitor, or checking now one whose check is in flight or that is
    /// disabled, changes nothing.
    pub fn schedule(&mut self, change: ScheduleChange, now_ms: u64) -> bool {
        let monitor = match change {
            ScheduleChange::Disable { monitor }
            | ScheduleChange::Enable { monitor, .. }
            | ScheduleChange::CheckNow { monitor } => monitor,
        };
        // A request that raced a reload removing its monitor: the slot is nobody's now.
        if self.stopping || self.table.is_removed(monitor) {
            return false;
        }
        match change {
            ScheduleChange::Disable { monitor } => {
                let was = self.table.is_enabled(monitor);
                self.disable(monitor);
                was
            }
            ScheduleChange::Enable { monitor, interval_ms } => {
                if self.table.is_enabled(monitor)
                    || !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval_ms)
                {
                    return false;
                }
                self.table.enable(monitor, interval_ms);
                if !self.draining.contains(&monitor) {
                    self.wheel.insert(monitor, now_ms);
                }
                true
            }
            ScheduleChange::CheckNow { monitor } => {
                if !self.wheel.cancel(monitor) {
                    return false;
                }
                self.wheel.insert(monitor, now_ms);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, VirtualClock};

    fn specs(n: u32, interval_ms: u32) -> Vec<MonitorSpec> {
        (0..n)
            .map(|i| MonitorSpec {
                id_hash: u64::from(i),
                interval_ms,
                timeout_ms: 50,
                enabled: true,
                cold: 1000 + i,
            })
            .collect()
    }

    #[test]
    fn first_check_is_at_load_plus_hash_phase_then_fixed_rate() {
        let spec = MonitorSpec {
            id_hash: 1_030,
            interval_ms: 100,
            timeout_ms: 20,
            enabled: true,
            cold: 7,
        };
        let clock = VirtualClock::new(5_000_000);
        let mut core = ShardCore::new(&[spec], clock.now_ms(), 4).unwrap();
        clock.advance_ms(29);
        assert_eq!(core.dispatch_due(clock.now_us()), 0);
        clock.advance_ms(1);
        assert_eq!(core.dispatch_due(clock.now_us()), 1);
        let job = core.take_job().unwrap();
        assert_eq!(
            job,
            Job { monitor: 0, cold: 7, generation: 1, scheduled_ms: 5_030, deadline_ms: 5_050 }
        );
        // Finishes on time: next slot one interval after the scheduled one.
        clock.advance_ms(3);
        assert_eq!(core.complete(&job, clock.now_ms()), Some(5_130));
        assert_eq!(core.counters().missed_slots, 0);
    }

    #[test]
    fn a_slow_check_misses_slots_without_a_burst_and_is_never_doubled() {
        let spec = MonitorSpec {
            id_hash: 30,
            interval_ms: 100,
            timeout_ms: 1_000,
            enabled: true,
            cold: 0,
        };
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&[spec], 0, 4).unwrap();
        clock.advance_ms(30);
        assert_eq!(core.dispatch_due(clock.now_us()), 1);
        let job = core.take_job().unwrap();
        // While it runs, its slots at 130 and 230 come and go: nothing is dispatched.
        for _ in 0..245 {
            clock.advance_ms(1);
            assert_eq!(core.dispatch_due(clock.now_us()), 0);
        }
        assert_eq!(clock.now_ms(), 275);
        assert_eq!(core.complete(&job, clock.now_ms()), Some(330));
        assert_eq!(core.counters().missed_slots, 2);
        // One check at 330, not three in a row.
        clock.advance_ms(55);
        assert_eq!(core.dispatch_due(clock.now_us()), 1);
        let job = core.take_job().unwrap();
        assert_eq!((job.scheduled_ms, job.generation), (330, 2));
        assert_eq!(core.dispatch_due(clock.now_us()), 0);
    }

    #[test]
    fn lateness_is_start_minus_slot() {
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&specs(1, 1_000), 0, 1).unwrap();
        clock.advance_us(2_750);
        assert_eq!(core.dispatch_due(clock.now_us()), 1);
        assert_eq!(core.lateness_us().len(), 1);
        assert!(core.lateness_us().equivalent(core.lateness_us().max(), 2_750));
    }

    #[test]
    fn disabled_monitors_are_never_scheduled() {
        let mut all = specs(3, 10);
        all[1].enabled = false;
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&all, 0, 8).unwrap();
        clock.advance_ms(20);
        assert_eq!(core.dispatch_due(clock.now_us()), 2);
        let mut seen = vec![core.take_job().unwrap().monitor, core.take_job().unwrap().monitor];
        seen.sort();
        assert_eq!(seen, vec![0, 2]);
        assert!(!core.is_waiting(1));
    }

    /// A check that finds no file descriptor is no verdict: it runs again shortly (or at its
    /// next slot, when sooner), counts as delayed and not completed, and is warned about at
    /// once and then at most every `LOCAL_RESOURCE_WARN_EVERY_MS`.
    #[test]
    fn a_check_without_a_local_resource_runs_again_shortly_and_warns_rate_limited() {
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&specs(2, 60_000), 0, 4).unwrap();
        clock.advance_ms(1);
        assert_eq!(core.dispatch_due(clock.now_us()), 2, "id hashes 0 and 1: due at 0 and 1 ms");
        let (a, b) = (core.take_job().unwrap(), core.take_job().unwrap());
        clock.advance_ms(4);
        let first = core.complete_delayed(&a, clock.now_ms());
        assert_eq!(
            first,
            Delayed { retry_at_ms: Some(5 + LOCAL_RESOURCE_RETRY_MS), warn: Some(1) }
        );
        let second = core.complete_delayed(&b, clock.now_ms());
        assert_eq!(second.warn, None, "warned 0 ms ago");
        let c = core.counters();
        assert_eq!((c.checks_delayed_local_resource, c.checks_completed, c.in_flight), (2, 0, 0));
        assert_eq!(c.missed_slots, 0);
        // Nothing runs before the retry; at it, both run again, as new checks.
        clock.advance_ms(LOCAL_RESOURCE_RETRY_MS - 1);
        assert_eq!(core.dispatch_due(clock.now_us()), 0);
        clock.advance_ms(1);
        assert_eq!(core.dispatch_due(clock.now_us()), 2);
        let (a2, b2) = (core.take_job().unwrap(), core.take_job().unwrap());
        assert_eq!(
            (a2.generation, a2.scheduled_ms),
            (a.generation + 1, 5 + LOCAL_RESOURCE_RETRY_MS)
        );
        // Delayed again within the warning interval: counted, not warned.
        assert_eq!(core.complete_delayed(&a2, clock.now_ms()).warn, None);
        // The next warning, after the interval, carries the count since the last one.
        clock.advance_ms(LOCAL_RESOURCE_WARN_EVERY_MS);
        assert_eq!(core.complete_delayed(&b2, clock.now_ms()).warn, Some(3));
        // A resource back: a normal completion keeps the fixed rate from the retried slot.
        clock.advance_ms(1);
        core.dispatch_due(clock.now_us());
        let a3 = core.take_job().unwrap();
        assert!(core.complete(&a3, clock.now_ms()).is_some());
        let c = core.counters();
        assert_eq!(
            c.checks_started,
            c.checks_completed + c.checks_delayed_local_resource + c.in_flight
        );
    }

    #[test]
    fn a_delayed_check_takes_its_regular_slot_when_that_comes_first() {
        let clock = VirtualClock::new(0);
        // Interval 30 ms, shorter than the retry pause: the next slot (30) comes first.
        let mut core = ShardCore::new(&specs(1, 30), 0, 1).unwrap();
        assert_eq!(core.dispatch_due(clock.now_us()), 1);
        let job = core.take_job().unwrap();
        clock.advance_ms(2);
        assert_eq!(core.complete_delayed(&job, clock.now_ms()).retry_at_ms, Some(30));
        // Stopping: not rescheduled.
        clock.advance_ms(28);
        core.dispatch_due(clock.now_us());
        let job = core.take_job().unwrap();
        core.stop_scheduling();
        assert_eq!(core.complete_delayed(&job, clock.now_ms()).retry_at_ms, None);
        assert!(!core.is_waiting(0));
    }

    #[test]
    fn a_disabled_monitor_leaves_the_wheel_and_an_enabled_one_runs_at_once() {
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&specs(1, 1_000), 0, 4).unwrap();
        assert!(core.schedule(ScheduleChange::Disable { monitor: 0 }, 0));
        assert!(!core.is_waiting(0));
        for _ in 0..3 {
            clock.advance_ms(1_000);
            assert_eq!(core.dispatch_due(clock.now_us()), 0, "disabled: not checked");
        }
        let enable = ScheduleChange::Enable { monitor: 0, interval_ms: 1_000 };
        assert!(core.schedule(enable, clock.now_ms()));
        assert!(!core.schedule(enable, clock.now_ms()), "already enabled");
        assert_eq!(core.dispatch_due(clock.now_us()), 1, "checked at once");
        let job = core.take_job().unwrap();
        assert_eq!(core.complete(&job, clock.now_ms()), Some(4_000));
    }

    #[test]
    fn disabled_and_enabled_again_during_a_check_keeps_one_check_in_flight() {
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&specs(1, 100), 0, 4).unwrap();
        assert_eq!(core.dispatch_due(clock.now_us()), 1);
        let job = core.take_job().unwrap();
        core.schedule(ScheduleChange::Disable { monitor: 0 }, 0);
        core.schedule(ScheduleChange::Enable { monitor: 0, interval_ms: 100 }, 0);
        assert!(!core.is_waiting(0), "not doubled while its check runs");
        assert_eq!(core.dispatch_due(clock.now_us()), 0);
        clock.advance_ms(10);
        assert_eq!(core.complete(&job, clock.now_ms()), Some(100), "rescheduled by the end");
        // Disabled during a check and left so: not rescheduled.
        clock.advance_ms(90);
        assert_eq!(core.dispatch_due(clock.now_us()), 1);
        let job = core.take_job().unwrap();
        core.schedule(ScheduleChange::Disable { monitor: 0 }, clock.now_ms());
        assert_eq!(core.complete(&job, clock.now_ms()), None);
        assert!(!core.is_waiting(0));
    }

    #[test]
    fn check_now_moves_the_next_check_to_now_and_the_rate_follows() {
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&specs(1, 60_000), 0, 4).unwrap();
        assert_eq!(core.dispatch_due(clock.now_us()), 1);
        let job = core.take_job().unwrap();
        assert!(!core.schedule(ScheduleChange::CheckNow { monitor: 0 }, 0), "in flight");
        clock.advance_ms(5);
        assert_eq!(core.complete(&job, clock.now_ms()), Some(60_000));
        clock.advance_ms(1_000);
        assert!(core.schedule(ScheduleChange::CheckNow { monitor: 0 }, clock.now_ms()));
        assert_eq!(core.dispatch_due(clock.now_us()), 1);
        let job = core.take_job().unwrap();
        assert_eq!(job.scheduled_ms, 1_005);
        assert_eq!(core.complete(&job, clock.now_ms()), Some(61_005));
        core.schedule(ScheduleChange::Disable { monitor: 0 }, clock.now_ms());
        assert!(!core.schedule(ScheduleChange::CheckNow { monitor: 0 }, clock.now_ms()));
    }

    /// The Go version lost monitors where a full queue met a pending state. Here: a ring of
    /// one slot, 1000 monitors due every 100 ms, and a shard that can only run a few checks
    /// per tick. Every monitor must stay either in the wheel or in flight (exactly one of
    /// the two), never be dispatched twice at once, and every one must run again once the
    /// pressure is gone.
    #[test]
    fn a_full_ring_never_strands_or_doubles_a_monitor() {
        const N: u32 = 1_000;
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&specs(N, 100), 0, 1).unwrap();
        let mut in_flight: Option<Job> = None;
        let mut last_generation = vec![0u32; N as usize];
        let mut runs = vec![0u32; N as usize];
        let check_invariants = |core: &ShardCore, in_flight: &Option<Job>| {
            for m in 0..N {
                let flying = in_flight.is_some_and(|j| j.monitor == m);
                assert!(core.is_waiting(m) != flying, "monitor {m} stranded or doubled");
            }
        };
        // Overload: 10 monitors are due per ms, the shard completes 3 checks per tick.
        for tick in 0..2_000u64 {
            clock.advance_ms(1);
            for _ in 0..3 {
                if let Some(job) = in_flight.take() {
                    core.complete(&job, clock.now_ms());
                }
                core.dispatch_due(clock.now_us());
                assert!(core.dispatch_due(clock.now_us()) == 0, "more than the ring holds");
                if let Some(job) = core.take_job() {
                    assert_eq!(job.generation, last_generation[job.monitor as usize] + 1);
                    last_generation[job.monitor as usize] = job.generation;
                    assert!(job.scheduled_ms <= clock.now_ms());
                    in_flight = Some(job);
                }
            }
            if tick % 97 == 0 {
                check_invariants(&core, &in_flight);
            }
        }
        assert!(core.counters().ring_full_delays > 0);
        assert!(core.counters().missed_slots > 0);
        // Pressure gone: as many rounds per tick as needed. Within two intervals every
        // monitor runs again.
        for _ in 0..200 {
            clock.advance_ms(1);
            loop {
                if let Some(job) = in_flight.take() {
                    core.complete(&job, clock.now_ms());
                }
                core.dispatch_due(clock.now_us());
                match core.take_job() {
                    Some(job) => {
                        runs[job.monitor as usize] += 1;
                        in_flight = Some(job);
                    }
                    None => break,
                }
            }
        }
        check_invariants(&core, &in_flight);
        assert!(runs.iter().all(|&r| r >= 1), "a monitor was stranded");
        let c = core.counters();
        assert_eq!(c.checks_started, c.checks_completed + c.in_flight);
    }

    fn spec(id_hash: u64, interval_ms: u32) -> MonitorSpec {
        MonitorSpec { id_hash, interval_ms, timeout_ms: 50, enabled: true, cold: id_hash as u32 }
    }

    /// Runs every due check at once and completes it at the same ms; returns the monitors
    /// that ran.
    fn run_due(core: &mut ShardCore, clock: &VirtualClock) -> Vec<u32> {
        core.dispatch_due(clock.now_us());
        let mut ran = Vec::new();
        while let Some(job) = core.take_job() {
            ran.push(job.monitor);
            core.complete(&job, clock.now_ms());
        }
        ran
    }

    #[test]
    fn a_monitor_added_at_run_time_starts_within_one_interval_at_its_hash_phase() {
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&specs(2, 100), 0, 4).unwrap();
        clock.advance_ms(1_000);
        core.reserve(1);
        let added = core.add_monitor(&spec(1_030, 100), clock.now_ms()).unwrap();
        assert_eq!(added, 2, "no free slot: a new one");
        assert_eq!(core.counters().monitors, 3);
        let mut first = None;
        for _ in 0..100 {
            clock.advance_ms(1);
            if run_due(&mut core, &clock).contains(&added) && first.is_none() {
                first = Some(clock.now_ms());
            }
        }
        assert_eq!(first, Some(1_030), "load time + id_hash % interval, as at start");
        // Fixed rate from there.
        clock.advance_ms(70);
        assert!(run_due(&mut core, &clock).contains(&added));
        assert_eq!(clock.now_ms(), 1_170);
    }

    #[test]
    fn a_removed_monitor_stops_and_its_slot_is_reused() {
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&specs(3, 10), 0, 8).unwrap();
        clock.advance_ms(20);
        run_due(&mut core, &clock);
        core.remove_monitor(1);
        assert_eq!(core.counters().monitors, 2);
        for _ in 0..50 {
            clock.advance_ms(1);
            assert!(!run_due(&mut core, &clock).contains(&1));
        }
        core.reserve(1);
        let slot = core.add_monitor(&spec(7, 10), clock.now_ms()).unwrap();
        assert_eq!((slot, core.slots()), (1, 3), "the removed slot, no growth");
        let mut ran = false;
        for _ in 0..10 {
            clock.advance_ms(1);
            ran |= run_due(&mut core, &clock).contains(&1);
        }
        assert!(ran, "the new monitor in the reused slot runs within its interval");
    }

    #[test]
    fn a_monitor_removed_in_flight_is_not_rescheduled_and_its_slot_waits_for_the_check() {
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&specs(2, 10), 0, 8).unwrap();
        clock.advance_ms(1);
        assert_eq!(core.dispatch_due(clock.now_us()), 2);
        let (a, b) = (core.take_job().unwrap(), core.take_job().unwrap());
        let job = if a.monitor == 0 { a } else { b };
        let other = if a.monitor == 0 { b } else { a };
        core.remove_monitor(0);
        // Added while the removed monitor's check runs: a new slot, not the busy one.
        core.reserve(1);
        assert_eq!(core.add_monitor(&spec(9, 10), clock.now_ms()).unwrap(), 2);
        clock.advance_ms(3);
        assert_eq!(core.complete(&job, clock.now_ms()), None, "not rescheduled");
        assert!(core.complete(&other, clock.now_ms()).is_some());
        assert!(!core.is_waiting(0));
        // Now free: the next add takes it.
        assert_eq!(core.add_monitor(&spec(11, 10), clock.now_ms()).unwrap(), 0);
        assert_eq!(core.slots(), 3);
        let c = core.counters();
        assert_eq!((c.checks_started, c.checks_completed, c.monitors), (2, 2, 3));
    }

    #[test]
    fn a_changed_monitor_keeps_its_slot_then_runs_at_its_new_interval() {
        let clock = VirtualClock::new(0);
        let mut core = ShardCore::new(&[spec(0, 100)], 0, 4).unwrap();
        assert_eq!(run_due(&mut core, &clock), vec![0]);
        clock.advance_ms(50);
        core.update_monitor(0, &MonitorSpec { interval_ms: 30, ..spec(0, 30) }, clock.now_ms())
            .unwrap();
        // The slot already planned (100) is kept; the new interval counts from it.
        let mut runs = Vec::new();
        for _ in 0..120 {
            clock.advance_ms(1);
            if !run_due(&mut core, &clock).is_empty() {
                runs.push(clock.now_ms());
            }
        }
        assert_eq!(runs, vec![100, 130, 160]);
        // Disabled by a change: stops; enabled again: back within an interval.
        core.update_monitor(0, &MonitorSpec { enabled: false, ..spec(0, 30) }, clock.now_ms())
            .unwrap();
        clock.advance_ms(100);
        assert!(run_due(&mut core, &clock).is_empty());
        core.update_monitor(0, &spec(0, 30), clock.now_ms()).unwrap();
        clock.advance_ms(30);
        assert_eq!(run_due(&mut core, &clock), vec![0]);
    }

    /// Reload after reload adding and removing monitors: the table never grows past the
    /// most monitors live at once, every live enabled monitor stays either waiting or in
    /// flight, and no removed one runs.
    #[test]
    fn churn_keeps_memory_bounded_and_no_monitor_stranded() {
        const LIVE: u64 = 64;
        let clock = VirtualClock::new(0);
        let initial: Vec<MonitorSpec> = (0..LIVE).map(|i| spec(i, 20)).collect();
        let mut core = ShardCore::new(&initial, 0, 4).unwrap();
        let mut live: Vec<(u32, u64)> = (0..LIVE as u32).map(|i| (i, u64::from(i))).collect();
        let mut in_flight: Vec<Job> = Vec::new();
        let mut next_hash = LIVE;
        for round in 0..400u64 {
            clock.advance_ms(1);
            // Half the checks in flight end each ms.
            let ending = in_flight.len() / 2;
            for job in in_flight.drain(..ending) {
                core.complete(&job, clock.now_ms());
            }
            core.dispatch_due(clock.now_us());
            while let Some(job) = core.take_job() {
                assert!(live.iter().any(|&(slot, _)| slot == job.monitor), "a removed monitor ran");
                in_flight.push(job);
            }
            // Every 5 ms a reload: 3 removed, 3 added.
            if round % 5 == 0 {
                for _ in 0..3 {
                    let (slot, _) = live.remove((round as usize * 7) % live.len());
                    core.remove_monitor(slot);
                }
                core.reserve(3);
                for _ in 0..3 {
                    let slot = core.add_monitor(&spec(next_hash, 20), clock.now_ms()).unwrap();
                    assert!(live.iter().all(|&(s, _)| s != slot), "slot {slot} given twice");
                    live.push((slot, next_hash));
                    next_hash += 1;
                }
            }
            assert!(core.slots() as u64 <= LIVE + 3 * 4, "slots {} grew", core.slots());
            core.assert_consistent();
            for &(slot, _) in &live {
                let flying = in_flight.iter().any(|j| j.monitor == slot);
                assert!(core.is_waiting(slot) != flying, "monitor {slot} stranded or doubled");
            }
        }
        assert_eq!(core.counters().monitors, LIVE);
    }
}
