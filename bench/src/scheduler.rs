//! `cpra-bench scheduler`: the thread-per-core runtime (wheel + ring + probe tasks) against a
//! straightforward baseline (a binary heap of due times, one glommio task spawned per check),
//! on the same monitors, the same shards and the same probe, in one run.
//!
//! Two workloads, each run by both schedulers:
//! - on time: `--monitors` due every `--interval` for `--seconds`: lateness percentiles
//!   (actual start minus scheduled slot), missed slots, allocations per check, RSS;
//! - saturated: the same monitors due every 1 ms for `--saturate-seconds`, so there is always
//!   more work than capacity: dispatches per second is then the scheduler's capacity with the
//!   full loop (wheel, ring, probe, a state-machine-sized result handler, reschedule).
//!
//! Figures are taken over a window after a warm-up (the first slots are spread over one
//! interval). The last line printed is one JSON object.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpra_engine::clock::{Clock, MonotonicClock};
use cpra_engine::counters::new_lateness_histogram;
use cpra_engine::limits::{DEFAULT_MAX_IN_FLIGHT, IO_MEMORY_BYTES};
use cpra_engine::probe::{NoopProbe, Probe, ResultHandler, ShardInfo, SleepProbe};
use cpra_engine::ring::Job;
use cpra_engine::runtime::{online_cores, shard_of, Runtime, RuntimeConfig};
use cpra_engine::schedule::{deadline_ms, first_slot_ms, next_slot_ms};
use cpra_engine::table::{prefetch_line, MonitorSpec, HOT_BYTES_PER_MONITOR};
use cpra_net::Outcome;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use hdrhistogram::Histogram;

use cpra_bench::counting_alloc::allocations;

/// The interval of the saturated workload: every monitor is due again as soon as its check
/// ends, so the scheduler never waits for time.
const SATURATED_INTERVAL_MS: u32 = 1;
/// Warm-up before the saturated window: long enough for the first round of 1 ms slots.
const SATURATED_WARMUP: Duration = Duration::from_millis(500);
/// The most monitors a run accepts: 10 M is the issue's scale target; 50 M bounds memory
/// (about 6 GiB with the bench's own copies) on a 24 GiB machine.
const MAX_MONITORS: u32 = 50_000_000;
/// The longest run accepted, so a typo cannot hold a shared machine for hours.
const MAX_SECONDS: u64 = 600;
/// How long a scheduler may take to load its monitors and complete its first check before
/// the run is abandoned (10 M monitors load in seconds; minutes means something is wrong).
const FIRST_CHECK_DEADLINE: Duration = Duration::from_secs(120);

/// Waits until `completed()` is non-zero, so warm-up starts once the scheduler runs (loading
/// millions of monitors takes a while, differently for each scheduler).
fn wait_first_check(completed: impl Fn() -> u64) -> Result<(), String> {
    let start = Instant::now();
    while completed() == 0 {
        if start.elapsed() > FIRST_CHECK_DEADLINE {
            return Err(format!("no check completed within {FIRST_CHECK_DEADLINE:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Monitors in the fleet.
    #[arg(long, default_value_t = 1_000_000)]
    monitors: u32,
    /// Length of the on-time run (per scheduler), seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Check interval of every monitor in the on-time run: 1s, 500ms, 2m.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// noop (completes at once) or sleep:<duration> (holds checks in flight).
    #[arg(long, default_value = "noop", value_parser = parse_probe)]
    probe: ProbeKind,
    /// Shards (pinned cores); default all online cores.
    #[arg(long)]
    shards: Option<usize>,
    /// Checks in flight per shard, for both schedulers.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: u32,
    /// Length of the saturated run (per scheduler), seconds.
    #[arg(long, default_value_t = 3)]
    saturate_seconds: u64,
    /// Run CPRA's on-time workload only (for profiling); prints no JSON line.
    #[arg(long)]
    profile_only: bool,
}

#[derive(Clone, Copy, Debug)]
enum ProbeKind {
    Noop,
    Sleep(Duration),
}

impl ProbeKind {
    fn name(&self) -> String {
        match self {
            ProbeKind::Noop => "noop".into(),
            ProbeKind::Sleep(d) => format!("sleep:{}ms", d.as_millis()),
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("'{s}': expected a number then ms, s or m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("'{s}': unit must be ms, s or m")),
    }
}

fn parse_probe(s: &str) -> Result<ProbeKind, String> {
    match s {
        "noop" => Ok(ProbeKind::Noop),
        _ => match s.strip_prefix("sleep:") {
            Some(d) => Ok(ProbeKind::Sleep(parse_duration(d)?)),
            None => Err(format!("'{s}': expected noop or sleep:<duration> (e.g. sleep:5ms)")),
        },
    }
}

/// The result handler of the benchmark: per-monitor work of the size and shape of a state
/// transition (a 32-byte state read and written, thresholds compared, alerts counted), until
/// the integrator swaps in the real state machine.
struct StateSim {
    states: Vec<SimState>,
    alerts: u64,
    stale: u64,
}

/// 32 bytes, like the state machine's hot state.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct SimState {
    consecutive_failures: u16,
    pulse_failures: u16,
    recovery_streak: u16,
    verify_remaining: u16,
    verification_after: u32,
    generation: u32,
    flags: u32,
    last_alert_ms: [u32; 3],
}

const _: () = assert!(std::mem::size_of::<SimState>() == 32);
const RECOVERING: u32 = 1;
const INCIDENT: u32 = 2;
const UNHEALTHY: u16 = 3;
const HEALTHY: u16 = 2;

impl StateSim {
    fn new(monitors: usize) -> StateSim {
        StateSim { states: vec![SimState::default(); monitors], alerts: 0, stale: 0 }
    }
}

impl ResultHandler for StateSim {
    fn prefetch(&self, job: &Job) {
        if let Some(state) = self.states.get(job.monitor as usize) {
            prefetch_line(state);
        }
    }

    fn on_outcome(&mut self, job: &Job, outcome: &Outcome, now_ms: u64) {
        let s = &mut self.states[job.monitor as usize];
        if job.generation <= s.generation {
            self.stale += 1;
            return;
        }
        s.generation = job.generation;
        if outcome.is_success() {
            s.consecutive_failures = 0;
            s.pulse_failures = 0;
            if s.flags & RECOVERING != 0 {
                s.recovery_streak += 1;
                if s.recovery_streak >= HEALTHY {
                    s.flags &= !(RECOVERING | INCIDENT);
                    s.recovery_streak = 0;
                    s.last_alert_ms[2] = now_ms as u32;
                    self.alerts += 1;
                }
            }
        } else {
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            s.pulse_failures = s.pulse_failures.saturating_add(1);
            s.recovery_streak = 0;
            s.flags |= RECOVERING;
            if s.pulse_failures == 1 {
                s.last_alert_ms[0] = now_ms as u32;
                self.alerts += 1;
            }
            if s.pulse_failures >= UNHEALTHY {
                s.pulse_failures = 0;
                if s.flags & INCIDENT == 0 {
                    s.flags |= INCIDENT;
                    s.last_alert_ms[1] = now_ms as u32;
                    self.alerts += 1;
                }
            }
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn workload(monitors: u32, interval_ms: u32) -> Vec<MonitorSpec> {
    (0..monitors)
        .map(|i| MonitorSpec {
            id_hash: splitmix64(u64::from(i)),
            interval_ms,
            timeout_ms: 5_000,
            enabled: true,
            cold: i,
        })
        .collect()
}

/// What one scheduler did over one measurement window.
struct Window {
    checks: u64,
    secs: f64,
    missed: u64,
    allocations: u64,
    lateness_us: Histogram<u64>,
    rss_bytes: u64,
    /// CPU time the process used in the window (the main thread only sleeps, so this is the
    /// shards' time): on a shared machine, checks per CPU-second is the fair capacity figure.
    cpu_secs: f64,
    /// What the host did to us in the window, so a lateness tail can be attributed.
    noise: HostNoise,
}

/// Host interference over a window: the share of CPU time the hypervisor gave to other
/// guests (steal), and how often the kernel preempted this process's threads (involuntary
/// context switches). A shard that is preempted cannot start a check on time, whatever the
/// scheduler does, so the lateness tail is read beside these.
#[derive(Clone, Copy, Debug, Default)]
struct HostNoise {
    steal_pct: f64,
    preemptions: u64,
}

/// Cumulative (steal, total) jiffies of all CPUs, from the first line of /proc/stat.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    (fields.get(7).copied().unwrap_or(0), fields.iter().sum())
}

/// Involuntary context switches of every thread of this process so far.
fn preemptions() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

/// A reading of the host's interference counters; `since` gives the window's figures.
#[derive(Clone, Copy)]
struct NoiseMark {
    steal: u64,
    total: u64,
    preemptions: u64,
}

impl NoiseMark {
    fn now() -> NoiseMark {
        let (steal, total) = cpu_jiffies();
        NoiseMark { steal, total, preemptions: preemptions() }
    }

    fn since(self, start: NoiseMark) -> HostNoise {
        let total = self.total.saturating_sub(start.total).max(1);
        HostNoise {
            steal_pct: self.steal.saturating_sub(start.steal) as f64 * 100.0 / total as f64,
            preemptions: self.preemptions.saturating_sub(start.preemptions),
        }
    }
}

impl Window {
    fn rate(&self) -> f64 {
        self.checks as f64 / self.secs
    }

    fn rate_per_cpu_sec(&self) -> f64 {
        self.checks as f64 / self.cpu_secs.max(1e-9)
    }

    fn allocations_per_check(&self) -> f64 {
        self.allocations as f64 / (self.checks.max(1)) as f64
    }
}

/// User + system CPU time of the whole process, seconds.
fn process_cpu_secs() -> f64 {
    // SAFETY: `rusage` is plain integers (and timevals of integers), for which all-zero bytes
    // are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage(2) only writes the struct it is given, valid and writable for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs CPRA's runtime on `specs` and measures the window after `warmup`.
fn run_cpra<P: Probe>(
    specs: Vec<MonitorSpec>,
    shards: usize,
    max_in_flight: u32,
    warmup: Duration,
    window: Duration,
    probe: impl Fn(&ShardInfo) -> P + Send + Sync + 'static,
) -> Result<Window, String> {
    let config = RuntimeConfig { shards, max_in_flight, ..Default::default() };
    let runtime =
        Runtime::start(config, specs, probe, |info: &ShardInfo| StateSim::new(info.monitors.len()))
            .map_err(|e| e.to_string())?;
    wait_first_check(|| runtime.counters().checks_completed)?;
    std::thread::sleep(warmup);
    let read_timeout = Duration::from_secs(5);
    let h0 = runtime.lateness_us(read_timeout);
    let c0 = runtime.counters();
    let a0 = allocations();
    let cpu0 = process_cpu_secs();
    let n0 = NoiseMark::now();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let c1 = runtime.counters();
    let a1 = allocations();
    let cpu_secs = process_cpu_secs() - cpu0;
    let noise = NoiseMark::now().since(n0);
    let secs = t0.elapsed().as_secs_f64();
    let rss = rss_bytes();
    let mut lateness_us = runtime.lateness_us(read_timeout);
    lateness_us.subtract(&h0).map_err(|e| e.to_string())?;
    runtime.stop_and_join().map_err(|e| e.to_string())?;
    Ok(Window {
        checks: c1.checks_completed - c0.checks_completed,
        secs,
        missed: c1.missed_slots - c0.missed_slots,
        allocations: a1 - a0,
        lateness_us,
        rss_bytes: rss,
        cpu_secs,
        noise,
    })
}

/// Per-shard counters of the baseline, written by its shard.
#[derive(Default)]
struct BaselineShared {
    completed: AtomicU64,
    missed: AtomicU64,
}

/// The baseline's state on one shard.
struct BaselineShard<P> {
    heap: RefCell<BinaryHeap<Reverse<(u64, u32)>>>,
    specs: Vec<MonitorSpec>,
    generation: RefCell<Vec<u32>>,
    in_flight: Cell<u32>,
    probe: P,
    handler: RefCell<StateSim>,
    clock: MonotonicClock,
    shared: Arc<BaselineShared>,
    completed: Cell<u64>,
    missed: Cell<u64>,
}

/// A straightforward scheduler: pop every due monitor off a binary heap and spawn a task for
/// its check; the task runs the probe and the handler and pushes the next slot back.
async fn baseline_shard<P: Probe>(
    specs: Vec<MonitorSpec>,
    probe: P,
    clock: MonotonicClock,
    max_in_flight: u32,
    shared: Arc<BaselineShared>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Histogram<u64> {
    let load_ms = clock.now_ms();
    let heap = specs
        .iter()
        .enumerate()
        .map(|(i, s)| Reverse((first_slot_ms(load_ms, s.id_hash, s.interval_ms), i as u32)))
        .collect();
    let n = specs.len();
    let me = Rc::new(BaselineShard {
        heap: RefCell::new(heap),
        handler: RefCell::new(StateSim::new(n)),
        generation: RefCell::new(vec![0; n]),
        specs,
        in_flight: Cell::new(0),
        probe,
        clock,
        shared,
        completed: Cell::new(0),
        missed: Cell::new(0),
    });
    let mut lateness_us = new_lateness_histogram();
    while !stop.load(Ordering::Relaxed) {
        let now_us = me.clock.now_us();
        let now_ms = now_us / 1000;
        let mut spawned = 0u32;
        while me.in_flight.get() < max_in_flight {
            let Some(&Reverse((due_ms, m))) = me.heap.borrow().peek() else { break };
            if due_ms > now_ms {
                break;
            }
            me.heap.borrow_mut().pop();
            let generation = {
                let mut g = me.generation.borrow_mut();
                g[m as usize] += 1;
                g[m as usize]
            };
            let spec = me.specs[m as usize];
            let job = Job {
                monitor: m,
                cold: spec.cold,
                generation,
                scheduled_ms: due_ms,
                deadline_ms: deadline_ms(now_ms, spec.timeout_ms),
            };
            if measuring.load(Ordering::Relaxed) {
                lateness_us.saturating_record(now_us.saturating_sub(due_ms * 1000));
            }
            me.in_flight.set(me.in_flight.get() + 1);
            spawned += 1;
            let task_me = me.clone();
            glommio::spawn_local(async move {
                let outcome = task_me.probe.check(&job).await;
                let now_ms = task_me.clock.now_ms();
                task_me.handler.borrow_mut().on_outcome(&job, &outcome, now_ms);
                let (next_ms, missed) = next_slot_ms(job.scheduled_ms, spec.interval_ms, now_ms);
                task_me.heap.borrow_mut().push(Reverse((next_ms, job.monitor)));
                task_me.in_flight.set(task_me.in_flight.get() - 1);
                task_me.completed.set(task_me.completed.get() + 1);
                task_me.missed.set(task_me.missed.get() + missed);
            })
            .detach();
        }
        me.shared.completed.store(me.completed.get(), Ordering::Relaxed);
        me.shared.missed.store(me.missed.get(), Ordering::Relaxed);
        if spawned > 0 {
            // Let the spawned checks run.
            futures_lite::future::yield_now().await;
        } else if me.in_flight.get() >= max_in_flight {
            glommio::timer::sleep(Duration::from_micros(100)).await;
        } else {
            let next_ms = me.heap.borrow().peek().map(|r| r.0 .0);
            let sleep_ms = next_ms.map_or(50, |t| t.saturating_sub(now_ms).min(50));
            if sleep_ms == 0 {
                futures_lite::future::yield_now().await;
            } else {
                let wake_us = (now_ms + sleep_ms) * 1000;
                glommio::timer::sleep(Duration::from_micros(
                    wake_us.saturating_sub(me.clock.now_us()),
                ))
                .await;
            }
        }
    }
    lateness_us
}

/// Runs the baseline on `specs` (same partitioning as CPRA) and measures the same window.
fn run_baseline<P: Probe>(
    specs: Vec<MonitorSpec>,
    shards: usize,
    max_in_flight: u32,
    warmup: Duration,
    window: Duration,
    probe: impl Fn() -> P + Send + Sync + 'static,
) -> Result<Window, String> {
    let mut parts: Vec<Option<Vec<MonitorSpec>>> = vec![Some(Vec::new()); shards];
    for s in specs {
        parts[shard_of(s.id_hash, shards)].as_mut().expect("part").push(s);
    }
    let parts = Arc::new(Mutex::new(parts));
    let shared: Arc<Vec<Arc<BaselineShared>>> =
        Arc::new((0..shards).map(|_| Arc::default()).collect());
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let clock = MonotonicClock::new(Instant::now());
    let probe = Arc::new(probe);
    let fut_gen = {
        let (shared, measuring, stop) = (shared.clone(), measuring.clone(), stop.clone());
        move || {
            let shard = next.fetch_add(1, Ordering::Relaxed);
            let specs = parts.lock().expect("parts")[shard].take().expect("part");
            let shared = shared[shard].clone();
            async move {
                baseline_shard(specs, probe(), clock, max_in_flight, shared, measuring, stop).await
            }
        }
    };
    let handles = LocalExecutorPoolBuilder::new(PoolPlacement::MaxSpread(shards, None))
        .name("baseline")
        .io_memory(IO_MEMORY_BYTES)
        .on_all_shards(fut_gen)
        .map_err(|e| e.to_string())?;
    let read = |f: fn(&BaselineShared) -> u64| shared.iter().map(|s| f(s)).sum::<u64>();
    let first = wait_first_check(|| read(|s| s.completed.load(Ordering::Relaxed)));
    if let Err(e) = first {
        stop.store(true, Ordering::Relaxed);
        handles.join_all();
        return Err(format!("baseline: {e}"));
    }
    std::thread::sleep(warmup);
    measuring.store(true, Ordering::Relaxed);
    let (c0, m0, a0) = (
        read(|s| s.completed.load(Ordering::Relaxed)),
        read(|s| s.missed.load(Ordering::Relaxed)),
        allocations(),
    );
    let cpu0 = process_cpu_secs();
    let n0 = NoiseMark::now();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let cpu_secs = process_cpu_secs() - cpu0;
    let noise = NoiseMark::now().since(n0);
    let (c1, m1, a1) = (
        read(|s| s.completed.load(Ordering::Relaxed)),
        read(|s| s.missed.load(Ordering::Relaxed)),
        allocations(),
    );
    measuring.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let rss = rss_bytes();
    stop.store(true, Ordering::Relaxed);
    let mut lateness_us = new_lateness_histogram();
    for r in handles.join_all() {
        lateness_us.add(r.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    Ok(Window {
        checks: c1 - c0,
        secs,
        missed: m1 - m0,
        allocations: a1 - a0,
        lateness_us,
        rss_bytes: rss,
        cpu_secs,
        noise,
    })
}

fn run_both(
    args: &Args,
    shards: usize,
    interval_ms: u32,
    warmup: Duration,
    window: Duration,
) -> Result<(Window, Window), String> {
    let max = args.max_in_flight;
    let cpra = match args.probe {
        ProbeKind::Noop => run_cpra(
            workload(args.monitors, interval_ms),
            shards,
            max,
            warmup,
            window,
            |_: &ShardInfo| NoopProbe,
        )?,
        ProbeKind::Sleep(d) => run_cpra(
            workload(args.monitors, interval_ms),
            shards,
            max,
            warmup,
            window,
            move |_: &ShardInfo| SleepProbe(d),
        )?,
    };
    let baseline = match args.probe {
        ProbeKind::Noop => {
            run_baseline(workload(args.monitors, interval_ms), shards, max, warmup, window, || {
                NoopProbe
            })?
        }
        ProbeKind::Sleep(d) => run_baseline(
            workload(args.monitors, interval_ms),
            shards,
            max,
            warmup,
            window,
            move || SleepProbe(d),
        )?,
    };
    Ok((cpra, baseline))
}

fn pct_us(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

fn describe(name: &str, w: &Window) {
    println!(
        "  {name:<9} {:>10.0} checks/s ({:>10.0} per CPU-second, {:.2} CPUs busy)  lateness p50 {} us, p99 {} us, p99.9 {} us, max {} us  missed {}  allocs/check {:.4}  rss {} MiB  host: steal {:.1}%, {} preemptions",
        w.rate(),
        w.rate_per_cpu_sec(),
        w.cpu_secs / w.secs,
        pct_us(&w.lateness_us, 0.5),
        pct_us(&w.lateness_us, 0.99),
        pct_us(&w.lateness_us, 0.999),
        w.lateness_us.max(),
        w.missed,
        w.allocations_per_check(),
        w.rss_bytes >> 20,
        w.noise.steal_pct,
        w.noise.preemptions,
    );
}

pub fn run(args: Args) -> i32 {
    let shards = args.shards.unwrap_or_else(online_cores);
    let interval_ms = args.interval.as_millis();
    if !(1..=u128::from(u32::MAX)).contains(&interval_ms) {
        eprintln!("scheduler: --interval must be between 1ms and 49 days");
        return 2;
    }
    let interval_ms = interval_ms as u32;
    if args.monitors == 0
        || args.monitors > MAX_MONITORS
        || args.seconds == 0
        || args.seconds > MAX_SECONDS
        || args.saturate_seconds > MAX_SECONDS
    {
        eprintln!("scheduler: need 1..={MAX_MONITORS} monitors and 1..={MAX_SECONDS} seconds");
        return 2;
    }
    // Warm up for one interval (the first slots are spread over it) plus half a second, but
    // keep at least half of the run for the measurement window.
    let total = Duration::from_secs(args.seconds);
    let warmup = (args.interval + Duration::from_millis(500)).min(total / 2);
    let window = total - warmup;
    println!(
        "scheduler: {} monitors every {} ms on {shards} shards, probe {}, max {} in flight per shard",
        args.monitors,
        interval_ms,
        args.probe.name(),
        args.max_in_flight
    );
    println!(
        "on time ({:.1} s warm-up, {:.1} s window):",
        warmup.as_secs_f64(),
        window.as_secs_f64()
    );
    if args.profile_only {
        let specs = workload(args.monitors, interval_ms);
        let max = args.max_in_flight;
        return match run_cpra(specs, shards, max, warmup, window, |_: &ShardInfo| NoopProbe) {
            Ok(w) => {
                describe("cpra", &w);
                0
            }
            Err(e) => {
                eprintln!("scheduler: {e}");
                1
            }
        };
    }
    let (on_time, base_on_time) = match run_both(&args, shards, interval_ms, warmup, window) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return 1;
        }
    };
    describe("cpra", &on_time);
    describe("baseline", &base_on_time);
    let sat_window = Duration::from_secs(args.saturate_seconds.max(1));
    println!(
        "saturated (every monitor due every {SATURATED_INTERVAL_MS} ms; {:.1} s warm-up, {:.1} s window):",
        SATURATED_WARMUP.as_secs_f64(),
        sat_window.as_secs_f64()
    );
    let (saturated, base_saturated) =
        match run_both(&args, shards, SATURATED_INTERVAL_MS, SATURATED_WARMUP, sat_window) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("scheduler: {e}");
                return 1;
            }
        };
    describe("cpra", &saturated);
    describe("baseline", &base_saturated);
    let dispatches_per_sec = saturated.rate();
    let baseline_dispatches_per_sec = base_saturated.rate();
    let ratio = dispatches_per_sec / baseline_dispatches_per_sec.max(1.0);
    println!(
        "capacity per CPU-second of shard time (fair on a shared machine): cpra {:.2} M/s, baseline {:.2} M/s, {:.1}x",
        saturated.rate_per_cpu_sec() / 1e6,
        base_saturated.rate_per_cpu_sec() / 1e6,
        saturated.rate_per_cpu_sec() / base_saturated.rate_per_cpu_sec().max(1.0),
    );
    println!(
        "capacity: {:.2} M dispatches/s ({:.2} M per core), {:.1}x the baseline; hot bytes per monitor {HOT_BYTES_PER_MONITOR}; \
         allocations per check in steady state: {:.4} on time, {:.4} saturated",
        dispatches_per_sec / 1e6,
        dispatches_per_sec / shards as f64 / 1e6,
        ratio,
        on_time.allocations_per_check(),
        saturated.allocations_per_check(),
    );
    let h = &on_time.lateness_us;
    // Written by hand to keep the issue's key order (serde_json's map sorts keys).
    let json = format!(
        concat!(
            r#"{{"bench":"scheduler","monitors":{},"shards":{},"probe":{},"dispatches_per_sec":{},"#,
            r#""dispatches_per_sec_per_core":{},"lateness_us":{{"p50":{},"p99":{},"p999":{},"max":{}}},"#,
            r#""missed_slots":{},"hot_bytes_per_monitor":{},"rss_bytes":{},"baseline_dispatches_per_sec":{},"#,
            r#""ratio_vs_baseline":{},"allocations_per_check":{{"on_time":{},"saturated":{}}},"#,
            r#""host_noise":{{"steal_pct":{},"preemptions":{}}}}}"#
        ),
        args.monitors,
        shards,
        serde_json::Value::from(args.probe.name()),
        dispatches_per_sec.round() as u64,
        (dispatches_per_sec / shards as f64).round() as u64,
        pct_us(h, 0.5),
        pct_us(h, 0.99),
        pct_us(h, 0.999),
        h.max(),
        on_time.missed,
        HOT_BYTES_PER_MONITOR,
        on_time.rss_bytes,
        baseline_dispatches_per_sec.round() as u64,
        (ratio * 100.0).round() / 100.0,
        (on_time.allocations_per_check() * 1e4).round() / 1e4,
        (saturated.allocations_per_check() * 1e4).round() / 1e4,
        (on_time.noise.steal_pct * 10.0).round() / 10.0,
        on_time.noise.preemptions,
    );
    debug_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok(), "{json}");
    println!("{json}");
    0
}
