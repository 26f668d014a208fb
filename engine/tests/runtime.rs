//! Real shards on real pinned glommio executors, briefly, with test probes. Bounded in time by
//! generous deadlines on *progress* (never a speed threshold): each test waits until the
//! shards have done a given amount of work, then stops them.

use std::collections::HashMap;
use std::future::pending;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpra_engine::probe::{NoopProbe, Probe, ResultHandler, ShardInfo, SleepProbe};
use cpra_engine::ring::Job;
use cpra_engine::runtime::{online_cores, shard_of, Runtime, RuntimeConfig};
use cpra_engine::table::MonitorSpec;
use cpra_net::Outcome;

/// The longest a test waits for progress before failing: far beyond what the work needs
/// even on a loaded 2-core machine, so it only trips when something is stuck.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(60);

/// (shard, cold, generation, scheduled_ms) of every completed check.
type Log = Arc<Mutex<Vec<(usize, u32, u32, u64)>>>;

struct Recorder {
    shard: usize,
    log: Log,
}

impl ResultHandler for Recorder {
    fn on_outcome(&mut self, job: &Job, outcome: &Outcome, _now_ms: u64) {
        assert!(outcome.is_success());
        self.log.lock().unwrap().push((self.shard, job.cold, job.generation, job.scheduled_ms));
    }
}

fn recorder(log: &Log) -> impl Fn(&ShardInfo) -> Recorder + Send + Sync + 'static {
    let log = log.clone();
    move |info: &ShardInfo| Recorder { shard: info.shard, log: log.clone() }
}

fn specs(n: u32, interval_ms: u32) -> Vec<MonitorSpec> {
    (0..n)
        .map(|i| MonitorSpec {
            id_hash: u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            interval_ms,
            timeout_ms: 1_000,
            enabled: true,
            cold: i,
        })
        .collect()
}

fn shards() -> usize {
    online_cores().min(2)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PROGRESS_DEADLINE, "no progress: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether every enabled monitor has completed at least `n` checks.
fn checked_at_least(log: &Log, all: &[MonitorSpec], n: u32) -> bool {
    let log = log.lock().unwrap();
    let mut seen: HashMap<u32, u32> = HashMap::new();
    for &(_, cold, _, _) in log.iter() {
        *seen.entry(cold).or_default() += 1;
    }
    all.iter().filter(|s| s.enabled).all(|s| seen.get(&s.cold).is_some_and(|&c| c >= n))
}

/// Per monitor, the generations seen must be 1, 2, 3, ... in order: one check at a time,
/// none lost, none doubled; and each on the shard its hash routes it to.
fn assert_orderly(log: &Log, all: &[MonitorSpec], shards: usize, min_checks: usize) {
    let log = log.lock().unwrap();
    let mut per_monitor: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    for &(shard, cold, generation, scheduled_ms) in log.iter() {
        let spec = &all[cold as usize];
        assert!(spec.enabled, "disabled monitor {cold} was checked");
        assert_eq!(shard, shard_of(spec.id_hash, shards), "monitor {cold} on the wrong shard");
        per_monitor.entry(cold).or_default().push((generation, scheduled_ms));
    }
    for spec in all.iter().filter(|s| s.enabled) {
        let checks = per_monitor.get(&spec.cold).map(Vec::as_slice).unwrap_or(&[]);
        assert!(checks.len() >= min_checks, "monitor {} ran {} times", spec.cold, checks.len());
        for (i, pair) in checks.windows(2).enumerate() {
            assert_eq!(pair[0].0 + 1, pair[1].0, "monitor {} generation gap at {i}", spec.cold);
            // Fixed rate: consecutive slots are whole intervals apart.
            let gap_ms = pair[1].1 - pair[0].1;
            assert!(gap_ms > 0 && gap_ms % u64::from(spec.interval_ms) == 0);
        }
    }
}

#[test]
fn shards_run_every_monitor_in_order_on_its_own_shard() {
    let mut all = specs(300, 10);
    all[7].enabled = false;
    all[123].enabled = false;
    let log: Log = Arc::default();
    let config = RuntimeConfig { shards: shards(), ..Default::default() };
    let runtime =
        Runtime::start(config, all.clone(), |_: &ShardInfo| NoopProbe, recorder(&log)).unwrap();
    assert_eq!(runtime.shards(), shards());
    // Counters are readable from this thread while the shards run.
    wait_until("every monitor checked 3 times", || checked_at_least(&log, &all, 3));
    assert_eq!(runtime.counters().monitors, 300);
    let lateness = runtime.lateness_us(PROGRESS_DEADLINE);
    assert!(!lateness.is_empty());
    let report = runtime.stop_and_join().unwrap();
    assert_eq!(report.counters.checks_started, report.counters.checks_completed);
    assert_eq!(report.counters.in_flight, 0);
    assert!(report.shards.iter().all(|s| s.abandoned == 0));
    assert_eq!(report.lateness_us.len(), report.counters.checks_started);
    assert_orderly(&log, &all, shards(), 3);
}

#[test]
fn a_tiny_ring_with_slow_probes_delays_but_strands_nothing() {
    // Two checks in flight per shard, each taking 2 ms, 100 monitors due every 5 ms: far
    // more work than capacity, so the ring is full most of the time.
    let all = specs(100, 5);
    let log: Log = Arc::default();
    let config = RuntimeConfig { shards: shards(), max_in_flight: 2, ..Default::default() };
    let probe = |_: &ShardInfo| SleepProbe(Duration::from_millis(2));
    let runtime = Runtime::start(config, all.clone(), probe, recorder(&log)).unwrap();
    wait_until("every monitor checked twice", || checked_at_least(&log, &all, 2));
    for c in runtime.shard_counters() {
        assert!(c.in_flight <= 2);
    }
    let report = runtime.stop_and_join().unwrap();
    assert!(report.counters.ring_full_delays > 0);
    assert!(report.counters.missed_slots > 0);
    assert_eq!(report.counters.checks_started, report.counters.checks_completed);
    assert_orderly(&log, &all, shards(), 2);
}

#[test]
fn stop_lets_in_flight_checks_finish() {
    let all = specs(20, 1);
    let log: Log = Arc::default();
    let config = RuntimeConfig { shards: shards(), ..Default::default() };
    let probe = |_: &ShardInfo| SleepProbe(Duration::from_millis(30));
    let runtime = Runtime::start(config, all, probe, recorder(&log)).unwrap();
    wait_until("checks in flight", || runtime.counters().in_flight > 0);
    let report = runtime.stop_and_join().unwrap();
    assert!(report.counters.checks_started > 0);
    assert_eq!(report.counters.checks_started, report.counters.checks_completed);
    assert!(report.shards.iter().all(|s| s.abandoned == 0));
    assert_eq!(log.lock().unwrap().len() as u64, report.counters.checks_completed);
}

/// A probe that never answers (a bug in a probe, or a deadline not enforced).
struct Hang;

impl Probe for Hang {
    async fn check(&self, _job: &Job) -> Outcome {
        pending().await
    }
}

#[test]
fn the_grace_period_bounds_shutdown() {
    let all = specs(5, 1);
    let log: Log = Arc::default();
    let config = RuntimeConfig { shards: 1, grace_ms: 50, ..Default::default() };
    let runtime = Runtime::start(config, all, |_: &ShardInfo| Hang, recorder(&log)).unwrap();
    wait_until("all 5 checks in flight", || runtime.counters().in_flight == 5);
    let report = runtime.stop_and_join().unwrap();
    assert_eq!(report.shards[0].abandoned, 5);
    assert_eq!(report.counters.checks_completed, 0);
}

#[test]
fn a_bad_interval_is_refused_before_any_thread_starts() {
    let mut all = specs(3, 10);
    all[2].interval_ms = 0;
    let log: Log = Arc::default();
    let err =
        Runtime::start(RuntimeConfig::default(), all, |_: &ShardInfo| NoopProbe, recorder(&log))
            .err()
            .unwrap();
    assert!(err.to_string().contains("monitor #2"), "{err}");
}

/// A probe that leaves a stale waker behind: each check wakes the task that ran the previous
/// one (now parked, or running another check), as a timer or socket of a finished real check
/// can. The shard must take such spurious wake-ups in its stride: it once double-counted a
/// parked task and underflowed `available` (seen with real HTTP probes hitting timeouts in
/// `cpra demo`; this stand-in exercises the path but did not reproduce that panic reliably).
struct StrayWakeProbe {
    stale: std::cell::RefCell<Option<std::task::Waker>>,
}

impl Probe for StrayWakeProbe {
    async fn check(&self, _job: &Job) -> Outcome {
        if let Some(w) = self.stale.borrow_mut().take() {
            w.wake();
        }
        let mut first = true;
        std::future::poll_fn(|cx| {
            *self.stale.borrow_mut() = Some(cx.waker().clone());
            if first {
                // Block once, so the task parks and peers take over the ring.
                first = false;
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            std::task::Poll::Ready(())
        })
        .await;
        Outcome::success(1)
    }
}

#[test]
fn spurious_wakeups_of_parked_probe_tasks_are_harmless() {
    let log: Log = Arc::default();
    let config = RuntimeConfig { shards: 1, max_in_flight: 3, ..RuntimeConfig::default() };
    let runtime = Runtime::start(
        config,
        specs(64, 2),
        |_: &ShardInfo| StrayWakeProbe { stale: std::cell::RefCell::new(None) },
        recorder(&log),
    )
    .unwrap();
    wait_until("20000 checks", || log.lock().unwrap().len() >= 20_000);
    let report = runtime.stop_and_join().unwrap();
    assert_eq!(report.counters.checks_started, report.counters.checks_completed);
}

#[test]
fn sigterm_stops_the_runtime_and_in_flight_checks_finish() {
    let all = specs(50, 1);
    let log: Log = Arc::default();
    let config = RuntimeConfig { shards: 1, handle_signals: true, ..Default::default() };
    let probe = |_: &ShardInfo| SleepProbe(Duration::from_millis(5));
    let runtime = Runtime::start(config, all, probe, recorder(&log)).unwrap();
    wait_until("checks in flight", || runtime.counters().in_flight > 0);
    // The handler only sets the stop flag (signal-hook), so the test process survives.
    // SAFETY: raise(3) takes no pointers; SIGTERM's handler (installed by the runtime through
    // signal-hook) only sets an atomic flag, which is async-signal-safe.
    assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
    let stop = runtime.stop_handle();
    wait_until("the signal sets the stop flag", || stop.is_stopped());
    let report = runtime.join().unwrap();
    assert!(report.counters.checks_completed > 0);
    assert_eq!(report.counters.checks_started, report.counters.checks_completed);
}

/// Checks run in the shard's probes queue, and work the handler starts goes where it is
/// sent (the actions queue), never into the probes' queue by accident: that is what keeps a
/// burst of deliveries from taking the CPU the checks need.
#[test]
fn checks_and_handler_work_run_in_their_own_task_queues() {
    /// (queue a check ran in, queue the handler's spawned work ran in, the shard's queues).
    type Seen = Arc<Mutex<Vec<(usize, usize, [usize; 3])>>>;
    struct QueueProbe;
    impl Probe for QueueProbe {
        async fn check(&self, _job: &Job) -> Outcome {
            Outcome::success(glommio::executor().current_task_queue().index() as u32)
        }
    }
    struct QueueHandler {
        seen: Seen,
        queues: cpra_engine::shard::TaskQueues,
    }
    impl ResultHandler for QueueHandler {
        fn on_outcome(&mut self, _job: &Job, outcome: &Outcome, _now_ms: u64) {
            let (seen, q) = (self.seen.clone(), self.queues);
            let probe_queue = outcome.latency_us as usize;
            let work = async move {
                let here = glommio::executor().current_task_queue().index();
                let queues = [q.probes.index(), q.actions.index(), q.background.index()];
                seen.lock().unwrap().push((probe_queue, here, queues));
            };
            cpra_engine::shard::spawn_into(work, self.queues.actions).detach();
        }
    }
    let seen: Seen = Arc::default();
    // What a handler spawns on its own while being built (as the ICMP client spawns its
    // reply reader) runs in the probes queue.
    let built_in: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let handler = {
        let (seen, built_in) = (seen.clone(), built_in.clone());
        move |info: &ShardInfo| {
            let (built_in, probes) = (built_in.clone(), info.queues.probes.index());
            glommio::spawn_local(async move {
                let here = glommio::executor().current_task_queue().index();
                built_in.lock().unwrap().push((here, probes));
            })
            .detach();
            QueueHandler { seen: seen.clone(), queues: info.queues }
        }
    };
    let config = RuntimeConfig { shards: 1, ..Default::default() };
    let runtime =
        Runtime::start(config, specs(4, 10), |_: &ShardInfo| QueueProbe, handler).unwrap();
    wait_until("handler work ran 8 times", || seen.lock().unwrap().len() >= 8);
    runtime.stop_and_join().unwrap();
    assert_eq!(built_in.lock().unwrap().len(), 1);
    for &(here, probes) in built_in.lock().unwrap().iter() {
        assert_eq!(here, probes, "work spawned while building ran outside the probes queue");
    }
    for &(probe_queue, here, [probes, actions, background]) in seen.lock().unwrap().iter() {
        assert!(probes != actions && actions != background && probes != background);
        assert_eq!(probe_queue, probes, "a check ran outside the probes queue");
        assert_eq!(here, actions, "handler work ran outside the actions queue");
    }
}
