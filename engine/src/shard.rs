//! One shard: the per-core loop wheel -> ring -> probe -> result handler -> reschedule.
//!
//! What it is for: running a shard's monitors on time on one pinned glommio executor.
//! `ShardCore` is the synchronous heart (table, wheel, ring, counters) driven with explicit
//! times, so every scheduling rule is tested under a virtual clock; `run_shard` wraps it in
//! one dispatcher task and a fixed set of probe tasks. What it is not for: starting threads
//! or routing monitors (that is `runtime`).
//!
//! Why the loop is shaped this way: a glommio task switch costs far more than a check with a
//! fast probe, so there is no task per check. The dispatcher moves every due monitor into
//! the ring in one round and parks; each probe task drains the ring in a loop, polling the
//! probe's future inline, and only parks when the ring is empty. A probe task whose check
//! blocks (real I/O) hands the rest of the ring to a parked peer at that moment, so slow
//! checks overlap while instant ones cost no switch at all.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::clock::Clock;
use crate::counters::{new_lateness_histogram, CountersSnapshot, ShardShared};
use crate::probe::{Probe, ResultHandler};
use crate::ring::{Job, JobRing};
use crate::schedule::{deadline_ms, first_slot_ms, next_slot_ms};
use crate::table::{MonitorSpec, Table, TableError};
use crate::wheel::Wheel;

/// The longest an idle dispatcher sleeps before looking at the stop flag and histogram
/// requests again: 50 ms bounds how late a stop or a metrics read is served, at a cost of 20
/// wake-ups a second (an idle shard still does not spin).
pub const IDLE_POLL_MS: u64 = 50;

/// How many jobs ahead of the one being run a probe task hints the result handler to
/// prefetch (`ResultHandler::prefetch`): enough to cover a memory miss (~100 ns) with the
/// ~10-40 ns a fast check takes, small enough that the lines are still cached when used.
pub const PREFETCH_AHEAD: usize = 8;

/// The synchronous state of one shard. Times are passed in, never read.
pub struct ShardCore {
    table: Table,
    wheel: Wheel,
    ring: JobRing,
    max_in_flight: u32,
    in_flight: u32,
    counters: CountersSnapshot,
    lateness_us: Histogram<u64>,
    stopping: bool,
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
            stopping: false,
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
        let interval_ms = self.table.get(job.monitor).interval_ms;
        if self.stopping || interval_ms == 0 {
            return None;
        }
        let (next_ms, missed) = next_slot_ms(job.scheduled_ms, interval_ms, now_ms);
        self.counters.missed_slots += missed;
        self.wheel.insert(job.monitor, next_ms);
        Some(next_ms)
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

    /// Whether the monitor waits in the wheel (i.e. is not in flight).
    pub fn is_waiting(&self, monitor: u32) -> bool {
        self.wheel.contains(monitor)
    }

    /// Stops scheduling one monitor (disabled on reload): out of the wheel at once, or not
    /// rescheduled when its in-flight check ends.
    pub fn disable(&mut self, monitor: u32) {
        self.wheel.cancel(monitor);
        self.table.disable(monitor);
    }
}

/// What a shard returns when it stops.
#[derive(Debug)]
pub struct ShardReport {
    pub shard: usize,
    pub counters: CountersSnapshot,
    pub lateness_us: Histogram<u64>,
    /// Checks still running when the grace period ended (abandoned).
    pub abandoned: u32,
}

/// Settings a shard runs with.
#[derive(Clone, Copy, Debug)]
pub struct ShardConfig {
    pub shard: usize,
    pub max_in_flight: u32,
    /// How long checks in flight at stop may take to finish.
    pub grace_ms: u64,
}

/// Everything the shard's tasks share (all on one thread).
struct Local<P, H, C> {
    core: RefCell<ShardCore>,
    probe: P,
    handler: RefCell<H>,
    clock: C,
    /// The time of the current round, so a batch of instant checks reads the clock once.
    now_us: Cell<u64>,
    /// Wakers of parked probe tasks (a stack: the most recently parked is warmest in cache),
    /// each with its task's "parked" flag. Capacity is the number of probe tasks, so pushing
    /// never reallocates.
    parked: RefCell<Vec<(Waker, Rc<Cell<bool>>)>>,
    /// Probe tasks able to take a job now (not parked, not blocked in a probe).
    available: Cell<u32>,
    dispatcher: RefCell<Option<Waker>>,
    dispatcher_notified: Cell<bool>,
    /// The dispatcher sleeps until this ms; 0 = it waits for any completion (ring full,
    /// or stopping).
    dispatcher_wake_ms: Cell<u64>,
    exiting: Cell<bool>,
}

impl<P: Probe, H: ResultHandler, C: Clock> Local<P, H, C> {
    fn wake_one_parked(&self) {
        let popped = self.parked.borrow_mut().pop();
        if let Some((waker, parked)) = popped {
            parked.set(false);
            self.available.set(self.available.get() + 1);
            waker.wake();
        }
    }

    fn wake_dispatcher(&self) {
        if let Some(waker) = self.dispatcher.borrow_mut().take() {
            self.dispatcher_notified.set(true);
            waker.wake();
        }
    }

    /// The next job, parking while the ring is empty; `None` when the shard exits.
    ///
    /// A parked task can be polled without `wake_one_parked` having woken it: a timer or
    /// socket its last check registered may still fire (real probes do this). `parked` (the
    /// task's own flag, set while its waker is in the stack) makes such a spurious poll a
    /// no-op, or, if a job is waiting, takes the task out of the stack before it runs the job,
    /// so `available` stays exact.
    async fn next_job(&self, parked: &Rc<Cell<bool>>) -> Option<Job> {
        poll_fn(|cx| {
            let job = self.core.borrow_mut().take_job();
            if parked.get() {
                if job.is_none() && !self.exiting.get() {
                    return Poll::Pending;
                }
                let mut stack = self.parked.borrow_mut();
                if let Some(i) = stack.iter().position(|(_, p)| Rc::ptr_eq(p, parked)) {
                    stack.swap_remove(i);
                }
                parked.set(false);
                self.available.set(self.available.get() + 1);
            }
            if let Some(job) = job {
                return Poll::Ready(Some(job));
            }
            if self.exiting.get() {
                return Poll::Ready(None);
            }
            let mut stack = self.parked.borrow_mut();
            debug_assert!(stack.len() < stack.capacity(), "a probe task parked twice");
            stack.push((cx.waker().clone(), parked.clone()));
            parked.set(true);
            self.available.set(self.available.get() - 1);
            Poll::Pending
        })
        .await
    }

    /// Runs one check. The future is polled inline; if it blocks, this task stops being
    /// available and a parked peer takes over the ring.
    async fn run_check(&self, job: &Job) -> bool {
        if let Some(ahead) = self.core.borrow().peek_job(PREFETCH_AHEAD) {
            self.handler.borrow().prefetch(ahead);
        }
        let mut check = std::pin::pin!(self.probe.check(job));
        let mut blocked = false;
        let outcome = poll_fn(|cx| match check.as_mut().poll(cx) {
            Poll::Ready(outcome) => {
                if blocked {
                    self.available.set(self.available.get() + 1);
                }
                Poll::Ready(outcome)
            }
            Poll::Pending => {
                if !blocked {
                    blocked = true;
                    self.available.set(self.available.get() - 1);
                    if self.available.get() == 0 && !self.core.borrow().ring_is_empty() {
                        self.wake_one_parked();
                    }
                }
                Poll::Pending
            }
        })
        .await;
        let now_us = if blocked {
            let now_us = self.clock.now_us();
            self.now_us.set(now_us);
            now_us
        } else {
            self.now_us.get()
        };
        let now_ms = now_us / 1000;
        self.handler.borrow_mut().on_outcome(job, &outcome, now_ms);
        let next_ms = self.core.borrow_mut().complete(job, now_ms);
        let wake_ms = self.dispatcher_wake_ms.get();
        if wake_ms == 0 || next_ms.is_some_and(|t| t < wake_ms) {
            self.wake_dispatcher();
        }
        blocked
    }
}

async fn probe_task<P: Probe, H: ResultHandler, C: Clock>(local: Rc<Local<P, H, C>>) {
    let parked = Rc::new(Cell::new(false));
    while let Some(job) = local.next_job(&parked).await {
        local.run_check(&job).await;
    }
}

/// Sleeps until `sleep_us` has passed or a probe task wakes the dispatcher.
async fn dispatcher_wait<P, H, C>(
    local: &Local<P, H, C>,
    timer: &mut glommio::timer::Timer,
    sleep_us: u64,
) {
    timer.reset(Duration::from_micros(sleep_us));
    poll_fn(|cx| {
        if local.dispatcher_notified.replace(false) {
            return Poll::Ready(());
        }
        let mut slot = local.dispatcher.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
        std::pin::Pin::new(&mut *timer).poll(cx).map(|_| ())
    })
    .await;
    *local.dispatcher.borrow_mut() = None;
    local.dispatcher_notified.set(false);
}

/// Runs a shard on the current glommio executor until `stop` is set, then lets checks in
/// flight finish within the grace period.
pub async fn run_shard<P: Probe, H: ResultHandler, C: Clock>(
    config: ShardConfig,
    core: ShardCore,
    probe: P,
    handler: H,
    clock: C,
    shared: Arc<ShardShared>,
    stop: Arc<AtomicBool>,
) -> ShardReport {
    let tasks = config.max_in_flight;
    let local = Rc::new(Local {
        core: RefCell::new(core),
        probe,
        handler: RefCell::new(handler),
        now_us: Cell::new(clock.now_us()),
        clock,
        parked: RefCell::new(Vec::with_capacity(tasks as usize)),
        available: Cell::new(tasks),
        dispatcher: RefCell::new(None),
        dispatcher_notified: Cell::new(false),
        dispatcher_wake_ms: Cell::new(0),
        exiting: Cell::new(false),
    });
    for _ in 0..tasks {
        glommio::spawn_local(probe_task(local.clone())).detach();
    }
    let mut timer = glommio::timer::Timer::new(Duration::ZERO);

    while !stop.load(Ordering::Relaxed) {
        let now_us = local.clock.now_us();
        local.now_us.set(now_us);
        let now_ms = now_us / 1000;
        let (room, next_due_ms) = {
            let mut core = local.core.borrow_mut();
            core.dispatch_due(now_us);
            shared.publish(core.counters());
            shared.serve_lateness(core.lateness_us());
            (core.has_room(), core.next_due_ms())
        };
        if local.available.get() == 0 && !local.core.borrow().ring_is_empty() {
            local.wake_one_parked();
        }
        let idle_limit_ms = now_ms + IDLE_POLL_MS;
        let wake_ms = match next_due_ms {
            _ if !room => 0,
            Some(t) => t.min(idle_limit_ms),
            None => idle_limit_ms,
        };
        local.dispatcher_wake_ms.set(wake_ms);
        let sleep_us = if wake_ms == 0 {
            IDLE_POLL_MS * 1000
        } else {
            (wake_ms * 1000).saturating_sub(local.clock.now_us())
        };
        if sleep_us > 0 {
            dispatcher_wait(&local, &mut timer, sleep_us).await;
        } else {
            // Due again already: let the probe tasks run before the next round.
            glommio::yield_if_needed().await;
        }
    }

    // Stop: start nothing more, let what runs finish within the grace period.
    local.core.borrow_mut().stop_scheduling();
    local.dispatcher_wake_ms.set(0);
    let grace_end_us = local.clock.now_us() + config.grace_ms * 1000;
    loop {
        let in_flight = local.core.borrow().in_flight();
        let now_us = local.clock.now_us();
        if in_flight == 0 || now_us >= grace_end_us {
            break;
        }
        let sleep_us = (grace_end_us - now_us).min(IDLE_POLL_MS * 1000);
        dispatcher_wait(&local, &mut timer, sleep_us).await;
    }
    // Then what the handler started (alerts in delivery), within its own grace period: the
    // drain future is the handler's, so no handler borrow is held while it runs.
    let drain = local.handler.borrow_mut().drain(config.grace_ms);
    if let Some(drain) = drain {
        let limit = glommio::timer::sleep(Duration::from_millis(config.grace_ms));
        futures_lite::future::or(drain, limit).await;
    }
    local.exiting.set(true);
    while !local.parked.borrow().is_empty() {
        local.wake_one_parked();
    }
    let core = local.core.borrow();
    shared.publish(core.counters());
    ShardReport {
        shard: config.shard,
        counters: *core.counters(),
        lateness_us: core.lateness_us().clone(),
        abandoned: core.in_flight(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::VirtualClock;

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
}
