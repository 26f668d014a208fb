//! The thread-per-core runtime: one pinned glommio executor per shard, monitors partitioned
//! by a stable hash, a stop handle and lock-free counters for the control plane.
//!
//! Placement an operator can predict: a monitor goes to shard `id_hash % shards`
//! ([`shard_of`]), where `id_hash` is the stable hash of its id computed by the loader; the
//! same id and shard count always give the same shard. Shards are pinned one per CPU, spread
//! over the machine (`PoolPlacement::MaxSpread`).
//!
//! What it is for: starting shards, routing monitors to them, stopping them (programmatically
//! or on SIGINT/SIGTERM) and reading their counters. What it is not for: a manifest (`plan`
//! starts one on the runtime), what a shard does with its monitors (`shard`), what a check
//! does (`probe`) or what a result means (`ResultHandler`). The process exit code is the
//! caller's.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement, PoolThreadHandles};
use hdrhistogram::Histogram;

use crate::clock::{Clock, MonotonicClock};
use crate::counters::{new_lateness_histogram, CountersSnapshot, RunningGuard, ShardShared};
use crate::limits::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_RING_DEPTH, IO_MEMORY_BYTES, MAX_IN_FLIGHT_LIMIT, MAX_SHARDS,
};
use crate::probe::{Probe, ResultHandler, ShardInfo};
use crate::shard::{spawn_into, Shard, ShardConfig, ShardCore, ShardReport, TaskQueues};
use crate::table::MonitorSpec;

/// How long checks in flight at shutdown may take to finish by default: longer than any sane
/// check timeout, short enough that a service manager's stop does not escalate to SIGKILL
/// (systemd's default is 90 s).
pub const DEFAULT_GRACE_MS: u64 = 10_000;

/// How long `start` waits for every executor to come up before giving up: executor start is
/// milliseconds; a minute means something is badly wrong (the host is swapping).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A shard that took longer than this to build its monitors starts its schedule again from
/// when it is ready ([`schedule_from_start`]): what came due in 100 ms is at most a tenth of a
/// second's checks at once, which the in-flight bound absorbs; rebuilding the wheel costs
/// about as long for half a million monitors, so below this it is not worth it.
const START_LAG_REBUILD_MS: u64 = 100;

/// The shard a monitor lives on: `id_hash % shards`.
pub fn shard_of(id_hash: u64, shards: usize) -> usize {
    assert!(shards > 0);
    (id_hash % shards as u64) as usize
}

/// The number of CPUs this process may run on (the default shard count).
pub fn online_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The shards to start for `requested` (0: one per online core, at most [`MAX_SHARDS`]), or
/// why not: more than [`MAX_SHARDS`], or more than the online cores (shards are pinned one
/// per core). Called before anything is sized by the count.
pub fn shard_count(requested: usize) -> Result<usize, String> {
    if requested > MAX_SHARDS {
        return Err(format!("{requested} shards: CPRA runs at most {MAX_SHARDS} (one per core)"));
    }
    let cores = online_cores();
    if requested > cores {
        return Err(format!(
            "{requested} shards but only {cores} online cores: shards are pinned one per core"
        ));
    }
    Ok(if requested == 0 { cores.min(MAX_SHARDS) } else { requested })
}

/// How each shard's glommio executor is built (`cpra run --config`, engine/src/settings.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutorSettings {
    /// Depth of each of the executor's io_uring rings.
    pub ring_depth: usize,
    /// io_uring memory (registered buffers; locked memory).
    pub io_memory_bytes: usize,
    /// How long an idle shard spins before it sleeps in the kernel; 0: it does not spin.
    pub spin_before_park_us: u64,
}

impl Default for ExecutorSettings {
    fn default() -> Self {
        ExecutorSettings {
            ring_depth: DEFAULT_RING_DEPTH,
            io_memory_bytes: IO_MEMORY_BYTES,
            spin_before_park_us: 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Shards (pinned executors); 0 = one per online core.
    pub shards: usize,
    /// Checks in flight per shard (ring capacity and probe tasks).
    pub max_in_flight: u32,
    /// How long in-flight checks may take to finish after a stop.
    pub grace_ms: u64,
    /// Stop on SIGINT and SIGTERM (set in the `cpra` binary; tests use the stop handle).
    pub handle_signals: bool,
    /// The core of each shard (shard k on `cores[k]`); empty: glommio spreads the shards
    /// over the machine's topology.
    pub cores: Vec<usize>,
    pub executor: ExecutorSettings,
    /// Resolver threads `plan::start_plan` starts beside the shards.
    pub resolver_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: 0,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            grace_ms: DEFAULT_GRACE_MS,
            handle_signals: false,
            cores: Vec::new(),
            executor: ExecutorSettings::default(),
            resolver_threads: cpra_net::resolver::ResolverConfig::default().threads,
        }
    }
}

/// Why the runtime could not start or run.
#[derive(Debug)]
pub enum RuntimeError {
    Config(String),
    /// A monitor spec was refused (names the monitor).
    Monitor(String),
    /// An executor failed to start; the message says what to do.
    Start(String),
    Signal(std::io::Error),
    /// A shard thread panicked or failed.
    Shard(String),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::Config(m) => write!(f, "invalid runtime settings: {m}"),
            RuntimeError::Monitor(m) => write!(f, "{m}"),
            RuntimeError::Start(m) => write!(f, "{m}"),
            RuntimeError::Signal(e) => write!(f, "cannot install SIGINT/SIGTERM handlers: {e}"),
            RuntimeError::Shard(m) => write!(f, "a shard failed: {m}"),
        }
    }
}

impl std::error::Error for RuntimeError {}

/// The shard's schedule as it starts dispatching at `now_ms`: the core built at `load_ms`
/// when a shard took longer than [`START_LAG_REBUILD_MS`] to build its monitors is built again
/// from `now_ms`. Otherwise every first slot that came due while the shard was being built
/// (a million monitors take the shards a second) would go at once: up to `max_in_flight`
/// checks in flight together, each with its task and buffers (118 MiB at a million monitors
/// on two shards), and an ICMP burst whose replies are lost, which pages falsely.
fn schedule_from_start(
    core: ShardCore,
    specs: &[MonitorSpec],
    load_ms: u64,
    now_ms: u64,
    max_in_flight: u32,
) -> ShardCore {
    if now_ms.saturating_sub(load_ms) <= START_LAG_REBUILD_MS {
        return core;
    }
    drop(core);
    // The same specs built at `load_ms` before any thread started, so this cannot fail.
    ShardCore::new(specs, now_ms, max_in_flight).expect("specs validated at load")
}

/// Turns an executor start failure into advice. io_uring rings are locked memory: under a
/// low `RLIMIT_MEMLOCK` the ring setup fails with ENOMEM/EPERM.
pub fn start_error_message(detail: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    // glommio checks the limit itself and says `MemLockLimit(current/needed)` in bytes.
    let memlock = lower.contains("memlock")
        || lower.contains("cannot allocate memory")
        || lower.contains("out of memory")
        || lower.contains("enomem")
        || lower.contains("os error 12")
        || lower.contains("operation not permitted")
        || lower.contains("os error 1)");
    if memlock {
        format!(
            "cannot start a shard executor: {detail}. io_uring needs locked memory \
             (RLIMIT_MEMLOCK, about 512 KiB per shard with {IO_MEMORY_BYTES} bytes of io_memory): \
             check `ulimit -l`, raise it with `ulimit -l unlimited` or \
             LimitMEMLOCK=infinity in the systemd unit (memlock in /etc/security/limits.conf), \
             or run fewer shards with --shards"
        )
    } else {
        format!("cannot start a shard executor: {detail}")
    }
}

/// The CPU the calling thread runs on (where a pinned thread always runs).
fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments and only reads the running CPU.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

/// Stops a runtime: from a test, a `--duration` timer, or a signal handler.
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A running set of shards.
pub struct Runtime {
    handles: PoolThreadHandles<ShardReport>,
    shared: Vec<Arc<ShardShared>>,
    stop: StopHandle,
    shards: usize,
    epoch: Instant,
}

/// The merged result of a run.
#[derive(Debug)]
pub struct RunReport {
    pub shards: Vec<ShardReport>,
    pub counters: CountersSnapshot,
    pub lateness_us: Histogram<u64>,
}

impl Runtime {
    /// Partitions `monitors` over the shards, starts one pinned executor per shard and returns
    /// once all are running. `probe` and `handler` are called on each shard's own thread to
    /// build that shard's probe and result handler.
    pub fn start<P, H, PF, HF>(
        config: RuntimeConfig,
        monitors: Vec<MonitorSpec>,
        probe: PF,
        handler: HF,
    ) -> Result<Runtime, RuntimeError>
    where
        P: Probe,
        H: ResultHandler,
        PF: Fn(&ShardInfo) -> P + Send + Sync + 'static,
        HF: Fn(&ShardInfo) -> H + Send + Sync + 'static,
    {
        Self::start_with(config, monitors, move |info: &ShardInfo| (probe(info), handler(info)))
    }

    /// Like [`Runtime::start`], with one factory building a shard's probe and handler
    /// together, so the two can share shard-local state (an `Rc`) created on the shard.
    pub fn start_with<P, H, F>(
        config: RuntimeConfig,
        monitors: Vec<MonitorSpec>,
        factory: F,
    ) -> Result<Runtime, RuntimeError>
    where
        P: Probe,
        H: ResultHandler,
        F: Fn(&ShardInfo) -> (P, H) + Send + Sync + 'static,
    {
        let shards = shard_count(config.shards).map_err(RuntimeError::Config)?;
        if !config.cores.is_empty() && config.cores.len() != shards {
            return Err(RuntimeError::Config(format!(
                "{} cores given for {shards} shards: one core per shard",
                config.cores.len()
            )));
        }
        if config.max_in_flight == 0 || config.max_in_flight > MAX_IN_FLIGHT_LIMIT {
            return Err(RuntimeError::Config(format!(
                "max_in_flight {} must be in 1..={MAX_IN_FLIGHT_LIMIT}",
                config.max_in_flight
            )));
        }
        let mut parts: Vec<Vec<MonitorSpec>> = vec![Vec::new(); shards];
        for spec in monitors {
            parts[shard_of(spec.id_hash, shards)].push(spec);
        }
        // Build every shard's core here, before any thread starts, so a bad spec is reported
        // with its monitor and nothing has to be torn down.
        let epoch = Instant::now();
        let clock = MonotonicClock::new(epoch);
        let load_ms = clock.now_ms();
        let mut cores = Vec::with_capacity(shards);
        for part in &parts {
            let core = ShardCore::new(part, load_ms, config.max_in_flight)
                .map_err(|e| RuntimeError::Monitor(e.to_string()))?;
            cores.push(Some(core));
        }
        let stop = StopHandle::default();
        if config.handle_signals {
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, stop.0.clone())
                    .map_err(RuntimeError::Signal)?;
            }
        }
        let shared: Vec<Arc<ShardShared>> =
            (0..shards).map(|_| Arc::new(ShardShared::new())).collect();
        // Start-up hand-over (once per shard, so a mutex is fine): shard k takes part k.
        let handover =
            Arc::new(Mutex::new((parts.into_iter().map(Some).collect::<Vec<_>>(), cores)));
        let next_shard = Arc::new(AtomicUsize::new(0));
        let cores: Arc<[usize]> = config.cores.clone().into();
        let (started_tx, started_rx) = mpsc::channel::<usize>();
        let factory = Arc::new(factory);
        let fut_gen = {
            let shared = shared.clone();
            let factory = factory.clone();
            let stop = stop.0.clone();
            let started_tx = Mutex::new(started_tx);
            let started_tx = Arc::new(started_tx);
            move || {
                let (shard, specs, core) = {
                    let mut h = handover.lock().expect("hand-over lock");
                    // Pinned to one core, a shard is the one the settings put there, so the
                    // start line's "shard k on core c" holds; unpinned, in start order.
                    let on_core =
                        current_cpu().and_then(|cpu| cores.iter().position(|&c| c == cpu));
                    let shard = match on_core {
                        Some(k) if h.0[k].is_some() => k,
                        _ => loop {
                            let k = next_shard.fetch_add(1, Ordering::Relaxed) % h.0.len();
                            if h.0[k].is_some() {
                                break k;
                            }
                        },
                    };
                    (
                        shard,
                        h.0[shard].take().expect("shard part"),
                        h.1[shard].take().expect("shard core"),
                    )
                };
                let shared = shared[shard].clone();
                let started_tx = started_tx.lock().expect("start channel").clone();
                async move {
                    let queues = TaskQueues::create();
                    // Built inside the probes queue, so what the probe and handler spawn on
                    // their own while being built (the ICMP reply reader) runs there too.
                    let build = async move {
                        let epoch = clock.epoch();
                        let info = ShardInfo { shard, shards, monitors: &specs, epoch, queues };
                        let built = factory(&info);
                        (built, specs)
                    };
                    let ((probe, handler), specs) = spawn_into(build, queues.probes).await;
                    let core = schedule_from_start(
                        core,
                        &specs,
                        load_ms,
                        clock.now_ms(),
                        config.max_in_flight,
                    );
                    drop(specs);
                    // Running from before the start is reported until the task ends or panics.
                    let _running = RunningGuard::new(shared.clone());
                    let _ = started_tx.send(shard);
                    let shard_config = ShardConfig {
                        shard,
                        max_in_flight: config.max_in_flight,
                        grace_ms: config.grace_ms,
                    };
                    Shard::new(shard_config, core, probe, handler, clock, queues, shared, stop)
                        .run()
                        .await
                }
            }
        };
        let placement = if config.cores.is_empty() {
            PoolPlacement::MaxSpread(shards, None)
        } else {
            let online = CpuSet::online()
                .map_err(|e| RuntimeError::Start(format!("cannot read the CPU topology: {e}")))?;
            PoolPlacement::Custom(
                config.cores.iter().map(|&c| online.clone().filter(|l| l.cpu == c)).collect(),
            )
        };
        let mut builder = LocalExecutorPoolBuilder::new(placement)
            .name("cpra-shard")
            .io_memory(config.executor.io_memory_bytes)
            .ring_depth(config.executor.ring_depth);
        if config.executor.spin_before_park_us > 0 {
            builder = builder
                .spin_before_park(Duration::from_micros(config.executor.spin_before_park_us));
        }
        let handles = builder
            .on_all_shards(fut_gen)
            .map_err(|e| RuntimeError::Start(start_error_message(&e.to_string())))?;
        let runtime = Runtime { handles, shared, stop, shards, epoch };
        match runtime.wait_started(&started_rx) {
            Ok(()) => Ok(runtime),
            Err(timeout) => {
                // Some executor never came up: stop the others and report the real error.
                runtime.stop.stop();
                let detail = runtime
                    .handles
                    .join_all()
                    .into_iter()
                    .find_map(|r| r.err().map(|e| e.to_string()))
                    .unwrap_or(timeout);
                Err(RuntimeError::Start(start_error_message(&detail)))
            }
        }
    }

    /// Waits for every shard to report it is running. `Err` (with what is known) when a
    /// thread ended first or start-up timed out.
    fn wait_started(&self, started_rx: &mpsc::Receiver<usize>) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut started = 0;
        while started < self.shards {
            match started_rx.recv_timeout(Duration::from_millis(10)) {
                Ok(_) => started += 1,
                Err(_) if Instant::now() > deadline => {
                    return Err(format!("executors did not start within {START_TIMEOUT:?}"));
                }
                Err(_) => {
                    if self.handles.handles().iter().any(|h| h.is_finished()) {
                        return Err("an executor thread exited during start-up".into());
                    }
                }
            }
        }
        Ok(())
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The instant all shards count time from (`Job` times are ms since then).
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Whether a shard thread has ended (after a stop, or because it failed): a caller
    /// waiting on the stop flag should stop and `join` to learn why.
    pub fn shard_exited(&self) -> bool {
        self.handles.handles().iter().any(|h| h.is_finished())
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Each shard's published counters (lock-free reads; at most one dispatch round old).
    pub fn shard_counters(&self) -> Vec<CountersSnapshot> {
        self.shared.iter().map(|s| s.read()).collect()
    }

    /// What each shard publishes (counters, histogram hand-overs, whether it runs), for
    /// readers on other threads (the API).
    pub fn shared(&self) -> &[Arc<ShardShared>] {
        &self.shared
    }

    /// All shards' counters merged.
    pub fn counters(&self) -> CountersSnapshot {
        let mut total = CountersSnapshot::default();
        for s in &self.shared {
            total.merge(&s.read());
        }
        total
    }

    /// The shards' lateness histograms merged, asking each for a copy; shards that do not
    /// answer within `timeout` (busy, or stopped) are left out.
    pub fn lateness_us(&self, timeout: Duration) -> Histogram<u64> {
        for s in &self.shared {
            s.request_lateness();
        }
        let deadline = Instant::now() + timeout;
        let mut merged = new_lateness_histogram();
        let mut answered = vec![false; self.shared.len()];
        while answered.iter().any(|a| !a) && Instant::now() < deadline {
            for (i, s) in self.shared.iter().enumerate() {
                if let Some(h) = s.take_lateness() {
                    merged.add(&h).expect("same bounds");
                    answered[i] = true;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        merged
    }

    /// Waits for the shards to end (after a stop or a signal) and merges their reports.
    pub fn join(self) -> Result<RunReport, RuntimeError> {
        let mut shards = Vec::with_capacity(self.shards);
        let mut failures = Vec::new();
        for result in self.handles.join_all() {
            match result {
                Ok(report) => shards.push(report),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if !failures.is_empty() {
            return Err(RuntimeError::Shard(failures.join("; ")));
        }
        shards.sort_by_key(|r| r.shard);
        let mut counters = CountersSnapshot::default();
        let mut lateness_us = new_lateness_histogram();
        for r in &shards {
            counters.merge(&r.counters);
            lateness_us.add(&r.lateness_us).expect("same bounds");
        }
        Ok(RunReport { shards, counters, lateness_us })
    }

    /// Stops and joins.
    pub fn stop_and_join(self) -> Result<RunReport, RuntimeError> {
        self.stop.stop();
        self.join()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_slow_to_build_spreads_its_first_checks_from_when_it_is_ready() {
        let interval_ms = 10_000;
        let specs: Vec<MonitorSpec> = (0..1000u32)
            .map(|i| MonitorSpec {
                id_hash: u64::from(i) * 7919,
                interval_ms,
                timeout_ms: 1000,
                enabled: true,
                cold: i,
            })
            .collect();
        let built = || ShardCore::new(&specs, 0, 4096).unwrap();
        let phase_within = |ms: u64| {
            specs.iter().filter(|s| s.id_hash % u64::from(interval_ms) <= ms).count() as u32
        };
        // Ready 50 ms after load: the schedule built at load stands.
        let mut quick = schedule_from_start(built(), &specs, 0, 50, 4096);
        assert_eq!(quick.dispatch_due(50_000), phase_within(50));
        // Ready 3 s after load: without the rebuild, the 30 % of first slots that came due
        // meanwhile would all go at once; with it, only those whose phase is 0.
        assert_eq!(built().dispatch_due(3_000_000), phase_within(3_000));
        let mut slow = schedule_from_start(built(), &specs, 0, 3_000, 4096);
        let at_once = slow.dispatch_due(3_000_000);
        assert_eq!(at_once, phase_within(0));
        assert!(at_once < 10, "{at_once}");
        // And every monitor still has its first check within one interval of being ready.
        let mut started = at_once;
        for ms in 3_001..3_000 + u64::from(interval_ms) {
            started += slow.dispatch_due(ms * 1000);
        }
        assert_eq!(started, specs.len() as u32);
    }

    #[test]
    fn placement_is_id_hash_mod_shards() {
        assert_eq!(shard_of(0, 4), 0);
        assert_eq!(shard_of(7, 4), 3);
        assert_eq!(shard_of(u64::MAX, 3), (u64::MAX % 3) as usize);
    }

    #[test]
    fn memlock_failures_say_which_limit_and_how_to_raise_it() {
        let m = start_error_message("io_uring_setup: Cannot allocate memory (os error 12)");
        assert!(m.contains("RLIMIT_MEMLOCK"), "{m}");
        assert!(m.contains("ulimit -l"), "{m}");
        assert!(m.contains("LimitMEMLOCK="), "{m}");
        // What glommio 0.9 really says under `ulimit -l 64` (seen as a non-root user).
        let m = start_error_message("IO error occurred: MemLockLimit(65536/524288)");
        assert!(m.contains("RLIMIT_MEMLOCK") && m.contains("ulimit -l"), "{m}");
        let other = start_error_message("no such CPU");
        assert!(!other.contains("RLIMIT_MEMLOCK"));
    }
}
