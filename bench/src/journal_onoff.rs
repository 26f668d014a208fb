//! `cpra-bench journal --mode onoff`: checks per second of the real engine with the journal
//! off and on, in one run, on a loopback fleet where 1% of monitors flap (the goal:
//! on >= 0.95x off).
//!
//! Method: the real path (`plan::start_plan`: the shards' `Monitors` handler, the state
//! machine, the actions and, when on, the journal with group commit every 10 ms) checks a
//! fleet of TCP monitors on 127.0.0.1 whose interval asks for more checks than the shards can
//! do, so the figure is the engine's throughput, not the fleet's schedule. 99% of monitors
//! connect to a listener that always accepts; 1% to one that is open for `FLAP_MS`, then
//! closed (connections refused) for as long, so those monitors open and close incidents
//! (thresholds 2 and 2) and page a local webhook receiver (default 5-minute cooldowns).
//! Rounds alternate off/on and on/off; each run warms up, then counts completed checks over
//! its window (one uncounted run first); the figure per side is the median over rounds. Every listener, receiver and
//! data dir this starts is stopped or removed before it returns.

use std::io::BufWriter;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::ScriptedServer;
use cpra_engine::manifest::{load_path, LoadOptions};
use cpra_engine::plan::{start_plan, Plan, PlanConfig};
use cpra_engine::runtime::RuntimeConfig;
use cpra_engine::store::{recover, DataDir, Fsync, DEFAULT_FSYNC_INTERVAL_MS};

/// How long the flapping listener stays open, then closed: long enough for the thresholds (2
/// checks) to trip each way many times over in a round.
const FLAP_MS: u64 = 1_000;
/// Most monitors, rounds and seconds accepted: a benchmark, bounded in time and memory.
pub const MAX_ONOFF_MONITORS: usize = 100_000;
pub const MAX_ONOFF_ROUNDS: usize = 20;
pub const MAX_ONOFF_SECONDS: u64 = 60;
/// The listeners' accept backlog: the engine connects thousands of times a second, and a full
/// backlog drops handshakes, which would fail healthy monitors (the kernel caps it at
/// `net.core.somaxconn`).
const BACKLOG: i32 = 4096;
/// Before each window: the shards start, every monitor gets its first checks.
const WARMUP: Duration = Duration::from_secs(1);

/// What the on/off comparison is asked for.
#[derive(Clone, Copy)]
pub struct OnOff {
    pub monitors: usize,
    pub rounds: usize,
    pub seconds: u64,
    pub shards: usize,
    pub interval_ms: u64,
}

/// A listener on 127.0.0.1 that accepts and drops every connection, on its own thread;
/// `flap` closes it for `FLAP_MS` every `FLAP_MS`.
struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds `addr` with a [`BACKLOG`]-deep accept queue.
fn bind(addr: &str) -> std::io::Result<TcpListener> {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind(addr)?;
    // SAFETY: listen(2) on a socket we own and keep open; it takes no pointers. Calling it
    // again on a listening socket only changes its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(listener)
}

impl Listener {
    fn start(flap: bool) -> Result<Listener, String> {
        let first = bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = first.local_addr().map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("onoff-listener".into())
            .spawn(move || {
                let mut listener = Some(first);
                let mut since = Instant::now();
                while !stopped.load(Ordering::Relaxed) {
                    if flap && since.elapsed() >= Duration::from_millis(FLAP_MS) {
                        since = Instant::now();
                        listener = match listener.take() {
                            Some(_) => None,
                            // std sets SO_REUSEADDR: the port can be bound again at once.
                            None => bind(&addr.to_string()).ok(),
                        };
                    }
                    match &listener {
                        Some(l) => {
                            // Blocking, woken by the stop's own connection; the flapping one
                            // polls, to close on time.
                            let _ = l.set_nonblocking(flap);
                            let mut any = false;
                            while let Ok((stream, _)) = l.accept() {
                                drop(stream);
                                any = true;
                                if flap && since.elapsed() >= Duration::from_millis(FLAP_MS) {
                                    break;
                                }
                                if stopped.load(Ordering::Relaxed) {
                                    break;
                                }
                            }
                            if !any {
                                std::thread::sleep(Duration::from_micros(200));
                            }
                        }
                        None => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Listener { addr, stop, thread: Some(thread) })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes a blocking accept (refused when the flapping one is closed: it polls).
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn manifest(
    path: &Path,
    o: &OnOff,
    up: SocketAddr,
    flap: SocketAddr,
    hook: &str,
) -> Result<(), String> {
    use std::io::Write;
    let mut out = BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    let mut w = || -> std::io::Result<()> {
        writeln!(out, "version: \"1\"\nmonitors:")?;
        for i in 0..o.monitors {
            // 1 in 100 flaps, spread over the fleet (and so over the shards).
            let port = if i % 100 == 50 { flap.port() } else { up.port() };
            writeln!(
                out,
                "  - name: m-{i}\n    pulse_check: {{type: tcp, interval: {}ms, timeout: 1s, \
                 unhealthy_threshold: 2, healthy_threshold: 2, config: {{host: 127.0.0.1, port: {port}}}}}\n    \
                 codes: {{yellow: {hook}, red: {hook}, green: {hook}}}",
                o.interval_ms
            )?;
        }
        out.flush()
    };
    w().map_err(|e| e.to_string())
}

/// One run of the fleet: checks per second over the window, and the journal's bytes.
fn one_run(plan: &Arc<Plan>, o: &OnOff, data: Option<&Path>) -> Result<(f64, u64), String> {
    let mut config = PlanConfig {
        runtime: RuntimeConfig { shards: o.shards, ..Default::default() },
        actions: None,
        observer: None,
        wall_clock: None,
        journal: None,
        cooldown_ms: None,
    };
    let dir = match data {
        None => None,
        Some(path) => {
            let _ = std::fs::remove_dir_all(path);
            let dir = DataDir::open(path, o.shards)?;
            let fsync = Fsync::EveryMs(DEFAULT_FSYNC_INTERVAL_MS);
            let (recovery, _) = recover(&dir, plan, o.shards, fsync)?;
            config.journal = Some(Arc::new(recovery));
            Some(dir)
        }
    };
    let running = start_plan(plan.clone(), config).map_err(|e| e.to_string())?;
    std::thread::sleep(WARMUP);
    let before = running.runtime.counters().checks_completed;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(o.seconds));
    let checks = running.runtime.counters().checks_completed - before;
    let secs = started.elapsed().as_secs_f64();
    running.runtime.stop_and_join().map_err(|e| e.to_string())?;
    let bytes = data.map_or(0, super::journal::dir_bytes);
    drop(dir);
    Ok((checks as f64 / secs, bytes))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn run(o: &OnOff, work: &Path) -> Result<serde_json::Value, String> {
    if o.monitors == 0 || o.monitors > MAX_ONOFF_MONITORS {
        return Err(format!("--onoff-monitors: 1 to {MAX_ONOFF_MONITORS}"));
    }
    if o.rounds == 0 || o.rounds > MAX_ONOFF_ROUNDS {
        return Err(format!("--rounds: 1 to {MAX_ONOFF_ROUNDS}"));
    }
    if o.seconds == 0 || o.seconds > MAX_ONOFF_SECONDS {
        return Err(format!("--seconds: 1 to {MAX_ONOFF_SECONDS}"));
    }
    let up = Listener::start(false)?;
    let flap = Listener::start(true)?;
    let receiver = ScriptedServer::start().map_err(|e| e.to_string())?;
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let hook = format!("{{notify: webhook, config: {{url: \"{}\"}}}}", receiver.url("/alerts"));
    let path = work.join("onoff.yaml");
    manifest(&path, o, up.addr, flap.addr, &hook)?;
    let mut monitors = Vec::new();
    let report = load_path(&path, &LoadOptions::default(), |m| monitors.push(m))
        .map_err(|e| e.error.to_string())?;
    let plan = Arc::new(Plan { monitors, registry: report.registry });
    let data = work.join("onoff-data");

    // Not counted: the first run of a process pays for what later ones find ready (page
    // faults, the kernel's socket caches).
    one_run(&plan, &OnOff { seconds: 1, ..*o }, None)?;
    let (mut off, mut on, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..o.rounds {
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for journal in order {
            let (rate, b) = one_run(&plan, o, journal.then_some(data.as_path()))?;
            eprintln!(
                "journal onoff: round {} journal {}: {rate:.0} checks/s",
                round + 1,
                if journal { "on" } else { "off" }
            );
            if journal {
                on.push(rate);
                bytes.push(b as f64);
            } else {
                off.push(rate);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&data);
    let alerts = receiver.requests(Some("/alerts")).len();
    let (off_m, on_m) = (median(off.clone()), median(on.clone()));
    let ratio = on_m / off_m;
    println!(
        "journal onoff: {} TCP monitors (1% flapping), {} shard(s), {} rounds of {} s: journal off \
         {off_m:.0} checks/s, on (fsync every {DEFAULT_FSYNC_INTERVAL_MS} ms) {on_m:.0} checks/s \
         (median); on/off {ratio:.3} (goal >= 0.95); {alerts} alerts delivered in all",
        o.monitors, o.shards, o.rounds, o.seconds
    );
    Ok(serde_json::json!({
        "monitors": o.monitors,
        "flapping": o.monitors / 100,
        "shards": o.shards,
        "interval_ms": o.interval_ms,
        "rounds": o.rounds,
        "seconds": o.seconds,
        "off_checks_per_s": off,
        "on_checks_per_s": on,
        "off_median": off_m,
        "on_median": on_m,
        "ratio": ratio,
        "journal_bytes_after_run": median(bytes),
        "alerts_delivered": alerts,
    }))
}
