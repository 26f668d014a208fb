//! One shard: everything one core owns, and the loop that runs it.
//!
//! What it is for: running a shard's monitors on time on one pinned glommio executor. A
//! [`Shard`] is created on its own thread and owns, for that core alone: the [`ShardCore`]
//! (the table of monitors, the timing wheel, the job ring, counters and the lateness
//! histogram), the probe that runs a check, the result handler that owns what follows a
//! check (in production [`Monitors`]: the state machine's states, the compiled checks and
//! the action queue), the shard's clock and its three task queues. What it is not for:
//! starting threads or routing monitors to shards (`runtime`), or what a check does and what
//! its outcome means (the probe and the handler).
//!
//! Following one check: the dispatcher (`Shard::dispatch_loop`) moves due monitors from the
//! wheel into the ring ([`ShardCore::dispatch_due`]); a probe task takes the job and runs the
//! probe (`Monitors::run_check` -> `cpra-net`); the outcome goes to the handler, which feeds the
//! state machine (`state::transition`) and queues the alerts it returns (`alert::render`,
//! `actions`); then the monitor goes back into the wheel ([`ShardCore::complete`]).
//!
//! Why the loop is shaped this way: a glommio task switch costs far more than a check with a
//! fast probe, so there is no task per check. The dispatcher moves every due monitor into
//! the ring in one round and parks; each probe task drains the ring in a loop, polling the
//! probe's future inline, and only parks when the ring is empty. A probe task whose check
//! blocks (real I/O) hands the rest of the ring to a parked peer at that moment, so slow
//! checks overlap while instant ones cost no switch at all.

pub mod control;
pub mod core;
pub mod monitors;
pub mod policies;
pub mod queries;
pub mod reload;
pub mod status;
pub mod target;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use glommio::{Latency, Shares, TaskQueueHandle};
use hdrhistogram::Histogram;

pub use self::core::{ScheduleChange, ShardCore, LOCAL_RESOURCE_RETRY_MS};
pub use monitors::{AlertObserver, Monitors, WallClock};
pub use status::{FleetStatus, StatusSnapshot};

use crate::clock::Clock;
use crate::counters::{CountersSnapshot, ShardShared};
use crate::probe::{Probe, ResultHandler};
use crate::ring::Job;

/// The longest an idle dispatcher sleeps before looking at the stop flag and histogram
/// requests again: 50 ms bounds how late a stop or a metrics read is served, at a cost of 20
/// wake-ups a second (an idle shard still does not spin).
pub const IDLE_POLL_MS: u64 = 50;

/// How many jobs ahead of the one being run a probe task hints the result handler to
/// prefetch (`ResultHandler::prefetch`): enough to cover a memory miss (~100 ns) with the
/// ~10-40 ns a fast check takes, small enough that the lines are still cached when used.
pub const PREFETCH_AHEAD: usize = 8;

/// The probes queue's share of a busy core. With the actions' and background shares below,
/// checks get 1000/1300 (77%) of the CPU while a burst of deliveries competes with them, and
/// all of it when nothing else runs: a burst of alerts slows delivery more than the checks.
pub const PROBE_SHARES: usize = 1000;
/// Alert deliveries and interventions: enough (19%) that a burst drains in seconds.
pub const ACTION_SHARES: usize = 250;
/// Status publishing and maintenance windows (later: journal compaction, stats): a few
/// cheap wake-ups a second need little (4%).
pub const BACKGROUND_SHARES: usize = 50;
/// How long a shard waits, at stop, for its probe tasks to end on the running executor
/// before it leaves them to the executor's teardown: parked tasks end at once, cancelled ones
/// as soon as they are run, so one second is only reached if the executor stalls.
pub const EXIT_WAIT: Duration = Duration::from_secs(1);

/// The shard's task queues: probes (the dispatcher and the probe tasks), actions (alert
/// deliveries, interventions) and background (status, maintenance windows). Separate queues
/// with explicit shares, so glommio's scheduler, not the order tasks were spawned in,
/// decides who runs when the core is busy.
#[derive(Clone, Copy, Debug)]
pub struct TaskQueues {
    pub probes: TaskQueueHandle,
    pub actions: TaskQueueHandle,
    pub background: TaskQueueHandle,
}

impl TaskQueues {
    /// Creates the queues on the current executor (the shard's thread).
    pub fn create() -> TaskQueues {
        let ex = glommio::executor();
        TaskQueues {
            // Not `Latency::Matters`: a 1 ms latency makes glommio 0.9 preempt every
            // millisecond, and its run loop can then park with a queue still runnable
            // (`run_task_queues` reads "preempted before running anything" as "nothing to
            // run"; fixed upstream after 0.9), which stalled a shard at stop in our
            // scheduler benchmark. Shares alone decide between the queues until then.
            probes: ex.create_task_queue(
                Shares::Static(PROBE_SHARES),
                Latency::NotImportant,
                "probes",
            ),
            actions: ex.create_task_queue(
                Shares::Static(ACTION_SHARES),
                Latency::NotImportant,
                "actions",
            ),
            background: ex.create_task_queue(
                Shares::Static(BACKGROUND_SHARES),
                Latency::NotImportant,
                "background",
            ),
        }
    }
}

/// Spawns `future` into `queue` of the current executor. The queues live as long as the
/// executor (nothing removes them), so spawning into one cannot fail.
pub fn spawn_into<T: 'static>(
    future: impl Future<Output = T> + 'static,
    queue: TaskQueueHandle,
) -> glommio::Task<T> {
    glommio::spawn_local_into(future, queue).expect("a shard's task queues are never removed")
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

/// Everything one shard owns. Created on the shard's thread and touched only there (`Rc`,
/// `RefCell`, `Cell`: nothing here is shared with another core except `shared`, the
/// counters it publishes, and `stop`, the flag it reads).
pub struct Shard<P, H, C> {
    config: ShardConfig,
    /// Table, wheel, job ring, counters, lateness.
    core: RefCell<ShardCore>,
    /// Runs a check (in production: the monitor's pulse through `cpra-net`).
    probe: P,
    /// What follows a check (in production: the state machine's states and the action queue).
    handler: RefCell<H>,
    clock: C,
    queues: TaskQueues,
    /// Counters published for other threads, lock-free.
    shared: Arc<ShardShared>,
    stop: Arc<AtomicBool>,
    /// The time of the current round, so a batch of instant checks reads the clock once.
    now_us: Cell<u64>,
    /// Wakers of parked probe tasks (a stack: the most recently parked is warmest in cache),
    /// each with its task's "parked" flag. Capacity is the number of probe tasks, so pushing
    /// never reallocates.
    parked: RefCell<Vec<(Waker, Rc<Cell<bool>>)>>,
    /// Probe tasks able to take a job now (not parked, not blocked in a probe).
    available: Cell<u32>,
    /// The probe tasks started so far. They are started as checks need them, up to
    /// `max_in_flight`, and kept until the shard exits: each holds a whole check's future
    /// (tens of KiB: the largest probe's buffers), so starting all of them up front cost
    /// hundreds of MiB per shard for a fleet that never has that many checks in flight.
    probe_tasks: RefCell<Vec<glommio::Task<()>>>,
    /// This shard, for starting probe tasks from `&self`.
    me: std::rc::Weak<Self>,
    dispatcher: RefCell<Option<Waker>>,
    dispatcher_notified: Cell<bool>,
    /// The dispatcher sleeps until this ms; 0 = it waits for any completion (ring full,
    /// or stopping).
    dispatcher_wake_ms: Cell<u64>,
    exiting: Cell<bool>,
}

impl<P: Probe, H: ResultHandler, C: Clock> Shard<P, H, C> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: ShardConfig,
        core: ShardCore,
        probe: P,
        handler: H,
        clock: C,
        queues: TaskQueues,
        shared: Arc<ShardShared>,
        stop: Arc<AtomicBool>,
    ) -> Rc<Self> {
        let tasks = config.max_in_flight;
        Rc::new_cyclic(|me| Shard {
            config,
            core: RefCell::new(core),
            probe,
            handler: RefCell::new(handler),
            now_us: Cell::new(clock.now_us()),
            clock,
            queues,
            shared,
            stop,
            parked: RefCell::new(Vec::with_capacity(tasks as usize)),
            available: Cell::new(0),
            probe_tasks: RefCell::new(Vec::with_capacity(tasks as usize)),
            me: me.clone(),
            dispatcher: RefCell::new(None),
            dispatcher_notified: Cell::new(false),
            dispatcher_wake_ms: Cell::new(0),
            exiting: Cell::new(false),
        })
    }

    /// Runs the shard until `stop` is set, then lets checks in flight finish within the grace
    /// period, then what the handler started (alert deliveries) within the same period.
    pub async fn run(self: Rc<Self>) -> ShardReport {
        spawn_into(self.clone().dispatch_loop(), self.queues.probes).await;
        // Then what the handler started, within its own grace period: the drain future is
        // the handler's, so no handler borrow is held while it runs.
        let grace_ms = self.config.grace_ms;
        let drain = self.handler.borrow_mut().drain(grace_ms);
        if let Some(drain) = drain {
            let limit = glommio::timer::sleep(Duration::from_millis(grace_ms));
            futures_lite::future::or(drain, limit).await;
        }
        self.exiting.set(true);
        while !self.parked.borrow().is_empty() {
            self.wake_one_parked();
        }
        // Every probe task ends here, on the running executor: a parked one returns, one
        // still blocked in a check (abandoned at the end of the grace period) is cancelled.
        // Left to the executor's teardown instead, their futures (and with the last of them
        // the handler, whose sockets and tasks need a live executor to close) would be
        // dropped where glommio cannot run anything, and abort the process.
        // Bounded by a timer, which also wakes the executor should it park with work left.
        let probe_tasks = std::mem::take(&mut *self.probe_tasks.borrow_mut());
        let end_tasks = async {
            for task in probe_tasks {
                task.cancel().await;
            }
        };
        futures_lite::future::or(end_tasks, glommio::timer::sleep(EXIT_WAIT)).await;
        let core = self.core.borrow();
        self.shared.publish(core.counters());
        ShardReport {
            shard: self.config.shard,
            counters: *core.counters(),
            lateness_us: core.lateness_us().clone(),
            abandoned: core.in_flight(),
        }
    }

    /// Dispatches due monitors until `stop`, then stops scheduling and waits (within the
    /// grace period) for the checks in flight.
    async fn dispatch_loop(self: Rc<Self>) {
        let mut timer = glommio::timer::Timer::new(Duration::ZERO);
        while !self.stop.load(Ordering::Relaxed) {
            let now_us = self.clock.now_us();
            self.now_us.set(now_us);
            let now_ms = now_us / 1000;
            let (room, next_due_ms) = {
                while let Some(order) = self.shared.reload.pop() {
                    // Between rounds, so no job of this round is half-way: checks in flight
                    // end on their old config (a removed monitor's is not rescheduled).
                    let mut core = self.core.borrow_mut();
                    self.handler.borrow_mut().reload(&order, &mut core, now_ms);
                    drop(core);
                    self.shared.reload.applied_one();
                }
                let mut core = self.core.borrow_mut();
                {
                    let mut handler = self.handler.borrow_mut();
                    while let Some(change) = handler.take_schedule_change() {
                        core.schedule(change, now_ms);
                    }
                }
                core.dispatch_due(now_us);
                self.shared.publish(core.counters());
                self.shared.serve_lateness(core.lateness_us());
                self.shared.serve_duration(core.duration_us());
                self.shared.beat(now_ms);
                (core.has_room(), core.next_due_ms())
            };
            if self.available.get() == 0 && !self.core.borrow().ring_is_empty() {
                self.wake_one_parked();
            }
            let idle_limit_ms = now_ms + IDLE_POLL_MS;
            let wake_ms = match next_due_ms {
                _ if !room => 0,
                Some(t) => t.min(idle_limit_ms),
                None => idle_limit_ms,
            };
            self.dispatcher_wake_ms.set(wake_ms);
            let sleep_us = if wake_ms == 0 {
                IDLE_POLL_MS * 1000
            } else {
                (wake_ms * 1000).saturating_sub(self.clock.now_us())
            };
            if sleep_us > 0 {
                self.dispatcher_wait(&mut timer, sleep_us).await;
            } else {
                // Due again already: let the probe tasks run before the next round.
                glommio::yield_if_needed().await;
            }
        }

        // Stop: start nothing more, let what runs finish within the grace period.
        self.core.borrow_mut().stop_scheduling();
        self.dispatcher_wake_ms.set(0);
        let grace_end_us = self.clock.now_us() + self.config.grace_ms * 1000;
        loop {
            let in_flight = self.core.borrow().in_flight();
            let now_us = self.clock.now_us();
            if in_flight == 0 || now_us >= grace_end_us {
                break;
            }
            let sleep_us = (grace_end_us - now_us).min(IDLE_POLL_MS * 1000);
            self.dispatcher_wait(&mut timer, sleep_us).await;
        }
    }

    /// The rate-limited warning for checks delayed by a local resource (cold: at most once per
    /// `LOCAL_RESOURCE_WARN_EVERY_MS`).
    #[cold]
    fn warn_local_resource(&self, count: u64, outcome: &cpra_net::Outcome) {
        let why = match outcome.detail {
            cpra_net::Detail::Errno(errno) => std::io::Error::from_raw_os_error(errno).to_string(),
            _ => "no local resource".to_owned(),
        };
        tracing::warn!(
            shard = self.config.shard,
            delayed = count,
            "{count} checks could not open a socket ({why}); not counted as failures, each \
             runs again within {LOCAL_RESOURCE_RETRY_MS} ms. If this persists, raise the \
             file-descriptor limit (`ulimit -n`, LimitNOFILE= in a systemd unit)"
        );
    }

    /// Gives the ring one more probe task: a parked one, or else a new one while fewer than
    /// `max_in_flight` exist.
    fn wake_one_parked(&self) {
        let popped = self.parked.borrow_mut().pop();
        if let Some((waker, parked)) = popped {
            parked.set(false);
            self.available.set(self.available.get() + 1);
            waker.wake();
        } else if !self.exiting.get() {
            self.start_probe_task();
        }
    }

    fn start_probe_task(&self) {
        let mut tasks = self.probe_tasks.borrow_mut();
        if tasks.len() >= self.config.max_in_flight as usize {
            return;
        }
        if let Some(me) = self.me.upgrade() {
            // Available from now: its first poll takes a job or parks.
            self.available.set(self.available.get() + 1);
            tasks.push(spawn_into(me.probe_task(), self.queues.probes));
        }
    }

    fn wake_dispatcher(&self) {
        if let Some(waker) = self.dispatcher.borrow_mut().take() {
            self.dispatcher_notified.set(true);
            waker.wake();
        }
    }

    /// Sleeps until `sleep_us` has passed or a probe task wakes the dispatcher.
    async fn dispatcher_wait(&self, timer: &mut glommio::timer::Timer, sleep_us: u64) {
        timer.reset(Duration::from_micros(sleep_us));
        poll_fn(|cx| {
            if self.dispatcher_notified.replace(false) {
                return Poll::Ready(());
            }
            let mut slot = self.dispatcher.borrow_mut();
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
            std::pin::Pin::new(&mut *timer).poll(cx).map(|_| ())
        })
        .await;
        *self.dispatcher.borrow_mut() = None;
        self.dispatcher_notified.set(false);
    }

    async fn probe_task(self: Rc<Self>) {
        let parked = Rc::new(Cell::new(false));
        while let Some(job) = self.next_job(&parked).await {
            self.run_check(&job).await;
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
        let next_ms = if outcome.is_local_resource() {
            // No verdict on the target: the handler (and its state machine) never sees it.
            let delayed = self.core.borrow_mut().complete_delayed(job, now_ms);
            if let Some(count) = delayed.warn {
                self.warn_local_resource(count, &outcome);
            }
            delayed.retry_at_ms
        } else {
            self.handler.borrow_mut().on_outcome(job, &outcome, now_ms);
            let mut core = self.core.borrow_mut();
            core.record_outcome(job, &outcome);
            core.complete(job, now_ms)
        };
        let wake_ms = self.dispatcher_wake_ms.get();
        if wake_ms == 0 || next_ms.is_some_and(|t| t < wake_ms) {
            self.wake_dispatcher();
        }
        blocked
    }
}
