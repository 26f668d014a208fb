//! `cpra-bench api`: does API traffic delay checks? A real `cpra run` child on a generated
//! fleet (default 1 M tcp monitors, all to a listener this bench holds on 127.0.0.1), with its
//! control plane on a loopback port; the schedule lateness p99 is read from `/metrics`
//! (`cpra_schedule_lateness_seconds`, the difference of two scrapes around each window, so
//! start-up is excluded) in two kinds of window, interleaved in one run:
//! - A: no API load;
//! - B: `--rate` requests per second from one client thread at a fixed rate: list pages
//!   (`/api/v1/monitors?limit=100`, walking the cursors), single monitors
//!   (`/api/v1/monitors/{id}`) and `/metrics`.
//!
//! Reported: lateness p50/p99 of A and of B, the ratio of the p99s (the goal: at most
//! 1.1), and the API requests' own latency. The last line printed is one JSON object.
//!
//! The p99s come from the exposition's fixed buckets (0.5 ms, 1 ms, 2.5 ms, 5 ms, 10 ms, ...),
//! interpolated linearly inside the bucket as Prometheus' `histogram_quantile` does: the
//! figure an operator would see, at that resolution.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The most monitors a run accepts (what `cpra gen` and a 2-core machine's memory bear).
const MAX_MONITORS: u32 = 10_000_000;
/// The longest window accepted, and the most rounds, so a typo cannot hold a shared machine.
const MAX_PHASE_SECONDS: u64 = 120;
const MAX_ROUNDS: u32 = 10;
/// The most API requests per second: one blocking client thread, one connection each.
const MAX_RATE: u32 = 2_000;
/// How long the child may take to load and schedule the fleet (1 M monitors: seconds).
const READY_DEADLINE: Duration = Duration::from_secs(120);
/// Time after readiness before the first window: the scrapes bracket each window anyway, this
/// only lets the first slots after loading (late by the load itself) drain.
const SETTLE: Duration = Duration::from_secs(5);
/// One API request's bound: a request past it is counted as failed, not waited for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Ids kept from the list pages for the single-monitor requests.
const KEPT_IDS: usize = 1_000;

#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// Monitors in the generated fleet (tcp checks to a listener on 127.0.0.1).
    #[arg(long, default_value_t = 1_000_000)]
    monitors: u32,
    /// Check interval of every monitor (Go duration): checks/s = monitors / interval.
    #[arg(long, default_value = "300s")]
    interval: String,
    /// API requests per second in the loaded windows.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Rounds; each is one unloaded and one loaded window.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Length of each window, seconds.
    #[arg(long, default_value_t = 20)]
    phase_seconds: u64,
    /// Shards of the child (`cpra run --shards`); 0 = all cores.
    #[arg(long, default_value_t = 0)]
    shards: usize,
    /// The `cpra` binary; default the one next to this benchmark.
    #[arg(long)]
    cpra: Option<PathBuf>,
}

/// The `cpra run` child; killed by its pid and reaped when dropped (also on error or panic).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cpra_binary(args: &ApiArgs) -> Result<PathBuf, String> {
    if let Some(p) = &args.cpra {
        return Ok(p.clone());
    }
    let me = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let p = me.with_file_name("cpra");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found; build it (cargo build --release -p cpra-engine) or pass --cpra",
            p.display()
        ))
    }
}

/// A tcp target that accepts every connection and closes it, so every check succeeds. The
/// thread ends with the process.
fn start_target() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("target: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("target: {e}"))?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    Ok(addr)
}

/// One request on its own connection (`Connection: close`): status and body.
fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(|e| e.to_string())?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: cpra\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| format!("GET {path}: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("GET {path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// The cumulative lateness buckets of one scrape: (upper bound in seconds, count ≤ bound).
type Buckets = Vec<(f64, u64)>;

fn scrape_lateness(addr: SocketAddr) -> Result<Buckets, String> {
    let (status, body) = get(addr, "/metrics")?;
    if status != 200 {
        return Err(format!("/metrics answered {status}"));
    }
    let mut buckets = Buckets::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("cpra_schedule_lateness_seconds_bucket{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else { continue };
        let Some(le) = labels.split(',').find_map(|l| l.strip_prefix("le=\"")) else { continue };
        let le = le.trim_end_matches('"');
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().map_err(|_| format!("le {le}"))?
        };
        let count = value.split_whitespace().next().and_then(|v| v.parse::<f64>().ok());
        buckets.push((bound, count.ok_or_else(|| format!("bucket value in `{line}`"))? as u64));
    }
    if buckets.is_empty() {
        return Err("no cpra_schedule_lateness_seconds_bucket in /metrics".into());
    }
    Ok(buckets)
}

/// What one window measured: the lateness buckets' difference between its two scrapes.
struct Window {
    buckets: Buckets,
}

impl Window {
    fn between(before: &Buckets, after: &Buckets) -> Window {
        let buckets =
            after.iter().zip(before).map(|(&(b, a), &(_, c))| (b, a.saturating_sub(c))).collect();
        Window { buckets }
    }
    fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |b| b.1)
    }
    fn add(&mut self, other: &Window) {
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
        } else {
            for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
                a.1 += b.1;
            }
        }
    }
    /// The q-quantile in seconds, linear inside its bucket (Prometheus' `histogram_quantile`).
    fn quantile(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = q * total as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for &(bound, cumulative) in &self.buckets {
            if cumulative as f64 >= rank {
                if bound.is_infinite() {
                    return lower;
                }
                let inside = (cumulative - below).max(1) as f64;
                return lower + (bound - lower) * (rank - below as f64) / inside;
            }
            lower = bound;
            below = cumulative;
        }
        lower
    }
}

/// The API load: one thread sending `rate` requests per second on a fixed schedule (a late
/// request does not make the next ones burst: they keep their own slots).
struct Load {
    latency_us: [Histogram<u64>; 3],
    failed: u64,
    sent: u64,
}

const KINDS: [&str; 3] = ["list", "monitor", "metrics"];

fn run_load(
    addr: SocketAddr,
    rate: u32,
    stop: &AtomicBool,
    ids: &mut Vec<String>,
    cursor: &mut Option<String>,
) -> Load {
    let new = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut load = Load { latency_us: [new(), new(), new()], failed: 0, sent: 0 };
    let period = Duration::from_secs(1) / rate;
    let start = Instant::now();
    let mut n: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + period * n;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // Half list pages, four in ten single monitors, one in ten /metrics.
        let kind = match n % 10 {
            0..=4 => 0,
            5..=8 if !ids.is_empty() => 1,
            5..=8 => 0,
            _ => 2,
        };
        let path = match kind {
            0 => match cursor.as_deref() {
                Some(c) => format!("/api/v1/monitors?limit=100&cursor={}", encode(c)),
                None => "/api/v1/monitors?limit=100".to_string(),
            },
            1 => format!("/api/v1/monitors/{}", encode(&ids[(n as usize * 7919) % ids.len()])),
            _ => "/metrics".to_string(),
        };
        let t = Instant::now();
        let answer = get(addr, &path);
        let us = t.elapsed().as_micros() as u64;
        load.sent += 1;
        match answer {
            Ok((200, body)) => {
                load.latency_us[kind].saturating_record(us.max(1));
                if kind == 0 {
                    take_page(&body, ids, cursor);
                }
            }
            _ => load.failed += 1,
        }
        n += 1;
    }
    load
}

/// Keeps the page's ids (bounded) and its `next` cursor (back to the first page at the end).
fn take_page(body: &str, ids: &mut Vec<String>, cursor: &mut Option<String>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else { return };
    *cursor = v["next"].as_str().map(str::to_string);
    if let Some(rows) = v["monitors"].as_array() {
        for row in rows {
            if let Some(id) = row["id"].as_str() {
                if ids.len() >= KEPT_IDS {
                    ids.remove(0);
                }
                ids.push(id.to_string());
            }
        }
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn start_cpra(args: &ApiArgs, dir: &std::path::Path) -> Result<(Running, SocketAddr), String> {
    let cpra = cpra_binary(args)?;
    let target = start_target()?;
    let manifest = dir.join("fleet.yaml");
    let gen = Command::new(&cpra)
        .args(["gen", "--monitors", &args.monitors.to_string(), "--mix", "tcp=1"])
        .args(["--target", &target.to_string(), "--interval", &args.interval, "--output"])
        .arg(&manifest)
        .status()
        .map_err(|e| format!("{} gen: {e}", cpra.display()))?;
    if !gen.success() {
        return Err(format!("cpra gen failed ({gen})"));
    }
    let mut child = Running(
        Command::new(&cpra)
            .arg("run")
            .arg(&manifest)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                "none",
                "--shards",
                &args.shards.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{} run: {e}", cpra.display()))?,
    );
    let stderr = child.0.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    // Reads stderr to its end (the status line every 5 s must not fill the pipe).
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("control plane: listening on http://").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            } else if line.contains("error") {
                eprintln!("cpra: {line}");
            }
        }
    });
    let started = Instant::now();
    let addr: SocketAddr = rx
        .recv_timeout(READY_DEADLINE)
        .map_err(|_| "cpra run printed no `control plane: listening on` line".to_string())?
        .parse()
        .map_err(|e| format!("listen address: {e}"))?;
    loop {
        if matches!(get(addr, "/readyz"), Ok((200, _))) {
            break;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            return Err(format!("cpra run ended ({status}) before it was ready"));
        }
        if started.elapsed() > READY_DEADLINE {
            return Err(format!("cpra run not ready within {READY_DEADLINE:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "api: cpra ready {:.1} s after start, control plane on {addr}",
        started.elapsed().as_secs_f64()
    );
    Ok((child, addr))
}

fn interval_secs(s: &str) -> Option<f64> {
    cpra_engine::manifest::duration::parse_go_duration(s).ok().map(|ns| ns as f64 / 1e9)
}

pub fn run(args: &ApiArgs) -> i32 {
    match measure(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("api: {e}");
            1
        }
    }
}

fn measure(args: &ApiArgs) -> Result<(), String> {
    if args.monitors == 0
        || args.monitors > MAX_MONITORS
        || !(1..=MAX_PHASE_SECONDS).contains(&args.phase_seconds)
        || !(1..=MAX_ROUNDS).contains(&args.rounds)
        || !(1..=MAX_RATE).contains(&args.rate)
    {
        return Err(format!(
            "need 1..={MAX_MONITORS} monitors, 1..={MAX_PHASE_SECONDS} s windows, 1..={MAX_ROUNDS} rounds, 1..={MAX_RATE} requests/s"
        ));
    }
    let interval =
        interval_secs(&args.interval).ok_or_else(|| format!("--interval '{}'", args.interval))?;
    let checks_per_sec = f64::from(args.monitors) / interval;
    println!(
        "api: {} tcp monitors every {} ({checks_per_sec:.0} checks/s, all to 127.0.0.1), {} rounds of {} s unloaded + {} s at {} API requests/s",
        args.monitors, args.interval, args.rounds, args.phase_seconds, args.phase_seconds, args.rate
    );
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let (child, addr) = start_cpra(args, dir.path())?;
    std::thread::sleep(SETTLE);
    let window = Duration::from_secs(args.phase_seconds);
    let (mut unloaded, mut loaded) = (Window { buckets: vec![] }, Window { buckets: vec![] });
    let (mut a_p99s, mut b_p99s) = (vec![], vec![]);
    let new = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut latency_us = [new(), new(), new()];
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut ids = Vec::with_capacity(KEPT_IDS);
    let mut cursor = None;
    for round in 0..args.rounds {
        // A then B in even rounds, B then A in odd ones, so a drift in the host's load over
        // the run falls on both alike.
        for loaded_window in [round % 2 == 1, round % 2 == 0] {
            let before = scrape_lateness(addr)?;
            let w = if loaded_window {
                let stop = AtomicBool::new(false);
                let load = std::thread::scope(|s| {
                    let client =
                        s.spawn(|| run_load(addr, args.rate, &stop, &mut ids, &mut cursor));
                    std::thread::sleep(window);
                    stop.store(true, Ordering::Relaxed);
                    client.join().expect("the load thread does not panic")
                });
                let after = scrape_lateness(addr)?;
                for (all, one) in latency_us.iter_mut().zip(&load.latency_us) {
                    all.add(one).expect("same bounds");
                }
                sent += load.sent;
                failed += load.failed;
                Window::between(&before, &after)
            } else {
                std::thread::sleep(window);
                Window::between(&before, &scrape_lateness(addr)?)
            };
            let p99 = w.quantile(0.99);
            println!(
                "  round {} {}: {} checks, lateness p50 {:.2} ms, p99 {:.2} ms",
                round + 1,
                if loaded_window { "B (API load)" } else { "A (no load)  " },
                w.count(),
                w.quantile(0.5) * 1e3,
                p99 * 1e3
            );
            if loaded_window {
                b_p99s.push(p99);
                loaded.add(&w);
            } else {
                a_p99s.push(p99);
                unloaded.add(&w);
            }
        }
    }
    drop(child);
    let (a, b) = (unloaded.quantile(0.99), loaded.quantile(0.99));
    let ratio = if a > 0.0 { b / a } else { f64::NAN };
    let mut all = new();
    for h in &latency_us {
        all.add(h).expect("same bounds");
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    println!(
        "lateness p99: A (no API load) {:.2} ms, B ({} requests/s) {:.2} ms, B/A {ratio:.2} (goal <= 1.1); p50 A {:.2} ms, B {:.2} ms",
        a * 1e3,
        args.rate,
        b * 1e3,
        unloaded.quantile(0.5) * 1e3,
        loaded.quantile(0.5) * 1e3
    );
    println!(
        "API requests: {sent} sent, {failed} failed; latency p50 {:.2} ms, p99 {:.2} ms (list p99 {:.2} ms, monitor p99 {:.2} ms, metrics p99 {:.2} ms)",
        ms(&all, 0.5),
        ms(&all, 0.99),
        ms(&latency_us[0], 0.99),
        ms(&latency_us[1], 0.99),
        ms(&latency_us[2], 0.99),
    );
    let round3 = |x: f64| (x * 1e6).round() / 1e3;
    let json = serde_json::json!({
        "bench": "api",
        "monitors": args.monitors,
        "interval": args.interval,
        "checks_per_sec": checks_per_sec.round(),
        "api_requests_per_sec": args.rate,
        "rounds": args.rounds,
        "window_s": args.phase_seconds,
        "lateness_p99_ms": { "unloaded": round3(a), "loaded": round3(b) },
        "lateness_p99_ms_per_round": {
            "unloaded": a_p99s.iter().map(|&x| round3(x)).collect::<Vec<_>>(),
            "loaded": b_p99s.iter().map(|&x| round3(x)).collect::<Vec<_>>(),
        },
        "ratio": (ratio * 100.0).round() / 100.0,
        "api_latency_ms": { "p50": ms(&all, 0.5), "p99": ms(&all, 0.99) },
        "api_latency_p99_ms": {
            KINDS[0]: ms(&latency_us[0], 0.99),
            KINDS[1]: ms(&latency_us[1], 0.99),
            KINDS[2]: ms(&latency_us[2], 0.99),
        },
        "api_requests": { "sent": sent, "failed": failed },
    });
    println!("{json}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        // 100 samples: 90 at or below 1 ms, 10 between 1 and 2.5 ms.
        let w = Window { buckets: vec![(0.001, 90), (0.0025, 100), (f64::INFINITY, 100)] };
        assert!((w.quantile(0.99) - 0.00235).abs() < 1e-9, "{}", w.quantile(0.99));
        assert!((w.quantile(0.5) - 0.001 * 50.0 / 90.0).abs() < 1e-9);
    }

    #[test]
    fn a_window_is_the_difference_of_two_scrapes() {
        let before = vec![(0.001, 10), (f64::INFINITY, 12)];
        let after = vec![(0.001, 15), (f64::INFINITY, 30)];
        let w = Window::between(&before, &after);
        assert_eq!(w.buckets, vec![(0.001, 5), (f64::INFINITY, 18)]);
        assert_eq!(w.count(), 18);
    }

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(encode("a b/c-1"), "a%20b%2Fc-1");
    }
}
