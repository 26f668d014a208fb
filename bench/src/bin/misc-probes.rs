//! `misc-probes`: CPRA's icmp and dns probes against a loopback target, then Prometheus
//! `blackbox_exporter` probing the same target through its `/probe` endpoint, in one run, with
//! the ratios. Prints a human summary and, last, one JSON line.
//!
//! ```sh
//! cargo run --release -p cpra-bench --bin misc-probes -- --kind icmp --seconds 10 --in-flight 64
//! cargo run --release -p cpra-bench --bin misc-probes -- --kind dns  --seconds 10 --in-flight 64
//! cargo run --release -p cpra-bench --bin misc-probes -- --kind grpc --seconds 10 --in-flight 16
//! ```
//!
//! Method: CPRA runs `in_flight` checks at a time on one glommio shard for `seconds`; its CPU is
//! the shard thread's (`getrusage(RUSAGE_THREAD)`), so the target's work is not counted.
//! blackbox_exporter then runs for the same time, driven by `in_flight` keep-alive HTTP
//! clients calling `/probe`; its CPU is read from `/proc/<pid>/stat` (the driver's is not
//! counted). ICMP's target is the kernel's loopback; DNS's is a minimal UDP server thread in
//! this process that answers every A query with 127.0.0.1; gRPC's is an h2c health server in
//! this process (a thread per connection, as both clients open one per check). The phases run one after the other
//! so they never share the target or the cores. Everything is on 127.0.0.1; both phases are
//! bounded by `--seconds`. Needs root (raw ICMP) and `prometheus-blackbox-exporter` on PATH
//! (Debian package of that name; skipped with a message when absent).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use cpra_net::{dns, grpc, icmp};
use hdrhistogram::Histogram;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Largest `--in-flight`: more concurrent probes than this on one shard only measures queueing.
const MAX_IN_FLIGHT: usize = 1024;
/// Longest run, so a typo cannot tie up the shared machine.
const MAX_SECONDS: u64 = 120;
/// Per-check timeout: generous, loopback answers in microseconds.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Parser, Debug)]
struct Args {
    /// icmp, dns or grpc
    #[arg(long)]
    kind: String,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Path of the blackbox_exporter binary.
    #[arg(long, default_value = "prometheus-blackbox-exporter")]
    blackbox: String,
}

#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    checks: u64,
    failures: u64,
    seconds: f64,
    cpu_us: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl Figures {
    fn per_sec(&self) -> f64 {
        self.checks as f64 / self.seconds
    }
    fn cpu_us_per_check(&self) -> f64 {
        self.cpu_us / self.checks.max(1) as f64
    }
    fn checks_per_cpu_sec(&self) -> f64 {
        self.checks as f64 / (self.cpu_us / 1e6).max(1e-9)
    }
    fn json(&self) -> String {
        format!(
            "{{\"checks\":{},\"failures\":{},\"checks_per_sec\":{:.1},\"client_cpu_us_per_check\":{:.2},\"checks_per_cpu_sec\":{:.1},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
            self.checks,
            self.failures,
            self.per_sec(),
            self.cpu_us_per_check(),
            self.checks_per_cpu_sec(),
            self.p50_us,
            self.p99_us,
            self.max_us
        )
    }
}

fn thread_cpu_us() -> f64 {
    // SAFETY: `rusage` is plain integers (and timevals of integers), for which all-zero bytes
    // are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage(2) only writes the struct it is given, valid and writable for the call.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn process_cpu_us(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf(3) takes no pointers and only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz * 1e6
}

/// A minimal DNS responder: answers every query with one A record 127.0.0.1 by patching the
/// query in place (QR, ANCOUNT) and appending the record. Runs until `stop`.
fn dns_target(stop: Arc<AtomicBool>) -> (SocketAddr, std::thread::JoinHandle<u64>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let addr = socket.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let mut answered = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
            if n < 12 || n + 16 > buf.len() {
                continue;
            }
            buf[2] |= 0x80; // QR: response
            buf[3] = 0x80; // RA, RCODE 0
            buf[6..8].copy_from_slice(&1u16.to_be_bytes()); // ANCOUNT
            buf[8..12].fill(0); // no authority/additional (drops a client's EDNS OPT)
                                // Cut anything after the question (an OPT record), keeping name + type + class.
            let mut end = 12;
            while end < n && buf[end] != 0 {
                end += usize::from(buf[end]) + 1;
            }
            end += 5;
            if end > n {
                continue;
            }
            let answer = [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1];
            buf[end..end + 16].copy_from_slice(&answer);
            let _ = socket.send_to(&buf[..end + 16], from);
            answered += 1;
        }
        answered
    });
    (addr, handle)
}

/// A minimal h2c gRPC health server: a thread per connection (each check opens its own),
/// sends SETTINGS, acknowledges the client's, and answers the first request on each stream
/// with SERVING (HEADERS, DATA, trailers), then waits for the client to close.
fn grpc_target(stop: Arc<AtomicBool>) -> (SocketAddr, std::thread::JoinHandle<u64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut enc = fluke_hpack::Encoder::new();
    let headers =
        enc.encode([(&b":status"[..], &b"200"[..]), (b"content-type", b"application/grpc")]);
    let trailers = enc.encode([(&b"grpc-status"[..], &b"0"[..])]);
    // The encoder indexed these headers: every connection's decoder is fresh, so the reply
    // must be encoded by a fresh encoder too, which is what these bytes are.
    let frame = |kind: u8, flags: u8, stream: u32, payload: &[u8]| {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    };
    let reply = Arc::new((headers, trailers));
    let handle = std::thread::spawn(move || {
        let mut served = 0u64;
        let served_count = Arc::new(AtomicU64::new(0));
        while !stop.load(Ordering::Relaxed) {
            let (mut conn, _) = match listener.accept() {
                Ok(c) => c,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            };
            served += 1;
            let reply = Arc::clone(&reply);
            let count = Arc::clone(&served_count);
            std::thread::spawn(move || {
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_nodelay(true);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut preface = [0u8; 24];
                if conn.read_exact(&mut preface).is_err() {
                    return;
                }
                let mut out = frame(0x4, 0, 0, &[]);
                let _ = conn.write_all(&out);
                loop {
                    let mut h = [0u8; 9];
                    if conn.read_exact(&mut h).is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                    let mut p = vec![0u8; len];
                    if conn.read_exact(&mut p).is_err() {
                        return;
                    }
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                    match (h[3], h[4]) {
                        (0x4, flags) if flags & 1 == 0 => {
                            let _ = conn.write_all(&frame(0x4, 1, 0, &[]));
                        }
                        (0x0, flags) if flags & 1 != 0 => {
                            out.clear();
                            out.extend_from_slice(&frame(0x1, 0x4, stream, &reply.0));
                            out.extend_from_slice(&frame(
                                0x0,
                                0,
                                stream,
                                &[0, 0, 0, 0, 2, 0x08, 1],
                            ));
                            out.extend_from_slice(&frame(0x1, 0x5, stream, &reply.1));
                            let _ = conn.write_all(&out);
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            });
        }
        served
    });
    (addr, handle)
}

enum Probe {
    Icmp(icmp::IcmpConfig),
    Dns(dns::DnsConfig),
    Grpc(grpc::GrpcConfig),
}

fn run_cpra(probe: Probe, seconds: u64, in_flight: usize) -> Result<Figures, String> {
    glommio::LocalExecutorBuilder::default()
        .io_memory(64 << 10)
        .spawn(move || async move {
            let client = Rc::new(icmp::IcmpClient::new());
            if matches!(probe, Probe::Icmp(_)) {
                if let Some(problem) = client.permission_problem() {
                    return Err(problem.to_owned());
                }
            }
            let probe = Rc::new(probe);
            let end = Instant::now() + Duration::from_secs(seconds);
            let cpu0 = thread_cpu_us();
            let t0 = Instant::now();
            let mut tasks = Vec::with_capacity(in_flight);
            for _ in 0..in_flight {
                let (client, probe) = (Rc::clone(&client), Rc::clone(&probe));
                tasks.push(glommio::spawn_local(async move {
                    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                    let (mut checks, mut failures) = (0u64, 0u64);
                    while Instant::now() < end {
                        let outcome = match &*probe {
                            Probe::Icmp(cfg) => client.check(cfg, CHECK_TIMEOUT).await,
                            Probe::Dns(cfg) => dns::check(cfg, CHECK_TIMEOUT).await,
                            Probe::Grpc(cfg) => grpc::check(cfg, CHECK_TIMEOUT).await,
                        };
                        checks += 1;
                        failures += u64::from(!outcome.is_success());
                        let _ = hist.record(u64::from(outcome.latency_us.max(1)));
                    }
                    (checks, failures, hist)
                }));
            }
            let mut total = Figures::default();
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            for task in tasks {
                let (c, f, h) = task.await;
                total.checks += c;
                total.failures += f;
                hist.add(h).unwrap();
            }
            total.seconds = t0.elapsed().as_secs_f64();
            total.cpu_us = thread_cpu_us() - cpu0;
            total.p50_us = hist.value_at_quantile(0.5);
            total.p99_us = hist.value_at_quantile(0.99);
            total.max_us = hist.max();
            Ok(total)
        })
        .unwrap()
        .join()
        .unwrap()
}

struct Blackbox {
    child: Child,
    port: u16,
    _dir: std::path::PathBuf,
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start_blackbox(bin: &str, dns_query: &str) -> Result<Blackbox, String> {
    let dir = std::env::temp_dir().join(format!("cpra-bb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = format!(
        "modules:\n  icmp:\n    prober: icmp\n    timeout: 2s\n    icmp:\n      preferred_ip_protocol: ip4\n  dns:\n    prober: dns\n    timeout: 2s\n    dns:\n      query_name: \"{dns_query}\"\n      query_type: A\n      preferred_ip_protocol: ip4\n      transport_protocol: udp\n  grpc:\n    prober: grpc\n    timeout: 2s\n    grpc:\n      preferred_ip_protocol: ip4\n      tls: false\n"
    );
    let config_path = dir.join("blackbox.yml");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().unwrap().port()
    };
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start {bin}: {e} (apt-get install prometheus-blackbox-exporter)")
        })?;
    let bb = Blackbox { child, port, _dir: dir };
    // Wait (bounded) for it to listen.
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(bb);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("blackbox_exporter did not start listening within 5 s".into())
}

/// One keep-alive client calling `/probe` until `end`; returns (probes, failures, histogram).
fn drive_blackbox(port: u16, path: String, end: Instant) -> (u64, u64, Histogram<u64>) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut probes, mut failures) = (0u64, 0u64);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_nodelay(true).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let mut buf = vec![0u8; 256 * 1024];
    while Instant::now() < end {
        let t = Instant::now();
        conn.write_all(request.as_bytes()).unwrap();
        // Read one response: headers, then Content-Length bytes.
        let mut filled = 0;
        let body_end = loop {
            let n = conn.read(&mut buf[filled..]).unwrap();
            assert!(n > 0, "blackbox_exporter closed the connection");
            filled += n;
            let text = &buf[..filled];
            if let Some(h) = text.windows(4).position(|w| w == b"\r\n\r\n") {
                let headers = String::from_utf8_lossy(&text[..h]).to_ascii_lowercase();
                let len = headers
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .expect("blackbox_exporter response without Content-Length");
                if filled >= h + 4 + len {
                    break h + 4 + len;
                }
            }
        };
        let _ = hist.record((t.elapsed().as_micros() as u64).max(1));
        probes += 1;
        let body = &buf[..body_end];
        if !body.windows(15).any(|w| w == b"probe_success 1") {
            failures += 1;
        }
        buf.copy_within(body_end..filled, 0);
    }
    (probes, failures, hist)
}

fn run_blackbox(args: &Args, target: &str, dns_query: &str) -> Result<Figures, String> {
    let bb = start_blackbox(&args.blackbox, dns_query)?;
    let pid = bb.child.id();
    let path = format!("/probe?module={}&target={target}", args.kind);
    // Warm up (first probes load config, resolve, open sockets).
    let _ = drive_blackbox(bb.port, path.clone(), Instant::now() + Duration::from_millis(300));
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let cpu0 = process_cpu_us(pid);
    let t0 = Instant::now();
    let drivers: Vec<_> = (0..args.in_flight)
        .map(|_| {
            let path = path.clone();
            let port = bb.port;
            std::thread::spawn(move || drive_blackbox(port, path, end))
        })
        .collect();
    let mut total = Figures::default();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for d in drivers {
        let (p, f, h) = d.join().map_err(|_| "a blackbox driver thread panicked".to_owned())?;
        total.checks += p;
        total.failures += f;
        hist.add(h).unwrap();
    }
    total.seconds = t0.elapsed().as_secs_f64();
    total.cpu_us = process_cpu_us(pid) - cpu0;
    total.p50_us = hist.value_at_quantile(0.5);
    total.p99_us = hist.value_at_quantile(0.99);
    total.max_us = hist.max();
    Ok(total)
}

fn main() {
    cpra_engine::allocator::set_policy();
    let args = Args::parse();
    if args.seconds == 0
        || args.seconds > MAX_SECONDS
        || args.in_flight == 0
        || args.in_flight > MAX_IN_FLIGHT
    {
        eprintln!("--seconds must be 1..={MAX_SECONDS} and --in-flight 1..={MAX_IN_FLIGHT}");
        std::process::exit(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let (probe, target, dns_server) = match args.kind.as_str() {
        "icmp" => {
            let cfg = icmp::IcmpConfig::new(icmp::LOOPBACK, 1).unwrap();
            (Probe::Icmp(cfg), "127.0.0.1".to_owned(), None)
        }
        "dns" => {
            let (addr, handle) = dns_target(Arc::clone(&stop));
            let cfg = dns::DnsConfig::new(addr, "bench.cpra.test", dns::DnsRecord::A).unwrap();
            (Probe::Dns(cfg), addr.to_string(), Some(handle))
        }
        "grpc" => {
            let (addr, handle) = grpc_target(Arc::clone(&stop));
            let cfg = grpc::GrpcConfig::new(addr, &addr.to_string(), "").unwrap();
            (Probe::Grpc(cfg), addr.to_string(), Some(handle))
        }
        other => {
            eprintln!("unknown --kind {other}: expected icmp, dns or grpc");
            std::process::exit(2);
        }
    };
    let cpra = match run_cpra(probe, args.seconds, args.in_flight) {
        Ok(f) => f,
        Err(problem) => {
            eprintln!("cannot run CPRA's {} probe here: {problem}", args.kind);
            std::process::exit(1);
        }
    };
    let blackbox = run_blackbox(&args, &target, "bench.cpra.test");
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = dns_server {
        answered.store(h.join().unwrap_or(0), Ordering::Relaxed);
    }

    println!(
        "misc-probes --kind {} --seconds {} --in-flight {}",
        args.kind, args.seconds, args.in_flight
    );
    let line = |name: &str, f: &Figures| {
        println!(
            "  {name:<16} {:>10.0} checks/s  {:>8.2} us CPU/check  {:>10.0} checks/CPU-s  p50 {} us  p99 {} us  max {} us  failures {}",
            f.per_sec(),
            f.cpu_us_per_check(),
            f.checks_per_cpu_sec(),
            f.p50_us,
            f.p99_us,
            f.max_us,
            f.failures
        )
    };
    line("cpra", &cpra);
    let (bb_json, ratio_json) = match &blackbox {
        Ok(bb) => {
            line("blackbox_exporter", bb);
            let cpu_ratio = bb.cpu_us_per_check() / cpra.cpu_us_per_check().max(1e-9);
            let rate_ratio = cpra.per_sec() / bb.per_sec().max(1e-9);
            println!(
                "  cpra vs blackbox_exporter: {cpu_ratio:.1}x fewer CPU-us per check, {rate_ratio:.1}x the checks per second"
            );
            (
                bb.json(),
                format!("{{\"cpu_per_check_blackbox_over_cpra\":{cpu_ratio:.2},\"rate_cpra_over_blackbox\":{rate_ratio:.2}}}"),
            )
        }
        Err(e) => {
            println!("  blackbox_exporter: skipped ({e})");
            ("null".to_owned(), "null".to_owned())
        }
    };
    if args.kind != "icmp" {
        println!(
            "  ({} target answered {} queries/connections in all)",
            args.kind,
            answered.load(Ordering::Relaxed)
        );
    }
    println!(
        "{{\"bench\":\"misc-probes\",\"kind\":\"{}\",\"seconds\":{},\"in_flight\":{},\"cpra\":{},\"blackbox_exporter\":{},\"ratios\":{}}}",
        args.kind,
        args.seconds,
        args.in_flight,
        cpra.json(),
        bb_json,
        ratio_json
    );
}
