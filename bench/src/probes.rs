//! `cpra-bench probes`: CPRA's probes against a local target, side by side in the same run with
//! `wrk` (HTTP kinds) and Prometheus `blackbox_exporter` (driven through its `/probe` endpoint).
//!
//! Method: one target for everyone, nginx started by this command on 127.0.0.1 with a private
//! config (or the mock fleet's healthy server when nginx is not installed, said in the output).
//! Each side runs for `--seconds` with `--in-flight` concurrent checks, one after the other. We
//! measure checks per second, client CPU per check (CPRA: the shard thread's own rusage; wrk:
//! the child's rusage from wait4; blackbox_exporter: its /proc/<pid>/stat, so the load driver's
//! CPU is not counted), and latency percentiles. A summary is printed, then one JSON line.
//! Missing peers are reported as `null`, never a failure.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use cpra_net::http::{HttpClient, HttpConfig, HttpSpec, PlainHttp, TlsConfigCache};
use cpra_net::tcp::{self, TcpConfig};
use cpra_net::Deadline;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::fleet;
use crate::process_group::Group;

/// Longest run accepted: a benchmark, not a soak test.
const MAX_SECONDS: u64 = 300;
/// Most concurrent checks: above the engine's per-shard probe-task bound, enough to saturate.
const MAX_IN_FLIGHT: usize = 4096;
/// Most load-driver threads for blackbox_exporter: each is a blocking client; more would only
/// compete with the exporter for the 2 cores.
const MAX_BLACKBOX_DRIVERS: usize = 64;
/// Each check's timeout in the benchmark: generous, a benchmark check should never time out.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a started server (nginx, blackbox_exporter) may take to accept connections.
const STARTUP_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// HTTP/1.1 GET with `Connection: close` (a new connection per check).
    HttpClose,
    /// HTTP/1.1 GET on a kept-alive connection per target.
    HttpKeepalive,
    /// TCP connect.
    Tcp,
    /// HTTPS GET, a new connection and TLS handshake per check.
    Https,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::HttpClose => "http-close",
            Kind::HttpKeepalive => "http-keepalive",
            Kind::Tcp => "tcp",
            Kind::Https => "https",
        }
    }
}

/// `probes` subcommand arguments.
#[derive(Args, Debug, Clone)]
pub struct ProbesArgs {
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Seconds each side runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent checks (CPRA tasks, wrk connections, blackbox drivers up to 64).
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// Skip the peers (CPRA only).
    #[arg(long)]
    pub no_peers: bool,
    /// `http-close` only: CPRA builds each check's config per check from a borrowed monitor
    /// config, its request rendered into a reused buffer (`HttpClient::check_plain`), as the
    /// engine does for plain `http://` monitors; without it, one config compiled per task.
    #[arg(long)]
    pub plain: bool,
}

/// Figures for one side.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub checks: u64,
    pub errors: u64,
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    /// Allocations (the whole process's) over the run, CPRA only: per check in the output.
    pub allocations: Option<u64>,
}

impl Figures {
    fn checks_per_sec(&self) -> f64 {
        self.checks as f64 / self.seconds.max(1e-9)
    }
    fn cpu_us_per_check(&self) -> f64 {
        self.cpu_seconds * 1e6 / (self.checks.max(1) as f64)
    }
    fn checks_per_cpu_second(&self) -> f64 {
        self.checks as f64 / self.cpu_seconds.max(1e-9)
    }
    fn to_json(&self) -> Value {
        json!({
            "checks": self.checks,
            "errors": self.errors,
            "checks_per_sec": round1(self.checks_per_sec()),
            "client_cpu_us_per_check": round1(self.cpu_us_per_check()),
            "checks_per_cpu_second": round1(self.checks_per_cpu_second()),
            "p50_us": self.p50_us,
            "p90_us": self.p90_us,
            "p99_us": self.p99_us,
            "allocations_per_check": self.allocations.map(|a| round2(a as f64 / self.checks.max(1) as f64)),
        })
    }
    fn line(&self, who: &str) -> String {
        let allocations = match self.allocations {
            Some(a) => format!("  allocs/check {:.2}", a as f64 / self.checks.max(1) as f64),
            None => String::new(),
        };
        format!(
            "{who:<18} {:>10.0} checks/s {:>9.1} µs CPU/check  p50 {:>7} µs  p90 {:>7} µs  p99 {:>7} µs  errors {}{allocations}",
            self.checks_per_sec(),
            self.cpu_us_per_check(),
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.errors
        )
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until_accepting(addr: SocketAddr) -> bool {
    let until = Instant::now() + STARTUP_WAIT;
    while Instant::now() < until {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The benchmark target: nginx (preferred) or the mock fleet.
enum Target {
    Nginx { _child: Group, _dir: tempfile::TempDir, http: SocketAddr, https: SocketAddr },
    Fleet { http: fleet::Server, https: fleet::Server },
}

impl Target {
    fn start(cert: &fleet::FleetCert) -> Target {
        if let Some(nginx) = which("nginx") {
            match start_nginx(&nginx, cert) {
                Ok(t) => return t,
                Err(e) => eprintln!("nginx did not start ({e}); using the mock fleet's server"),
            }
        } else {
            eprintln!("nginx not installed; using the mock fleet's healthy server as the target");
        }
        Target::Fleet {
            http: fleet::spawn(fleet::Behaviour::Healthy),
            https: fleet::spawn_https(cert),
        }
    }
    fn name(&self) -> &'static str {
        match self {
            Target::Nginx { .. } => "nginx",
            Target::Fleet { .. } => "mock-fleet",
        }
    }
    fn http(&self) -> SocketAddr {
        match self {
            Target::Nginx { http, .. } => *http,
            Target::Fleet { http, .. } => http.addr,
        }
    }
    fn https(&self) -> SocketAddr {
        match self {
            Target::Nginx { https, .. } => *https,
            Target::Fleet { https, .. } => https.addr,
        }
    }
}

fn start_nginx(nginx: &Path, cert: &fleet::FleetCert) -> Result<Target, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (http_port, https_port) = (free_port(), free_port());
    std::fs::write(dir.path().join("cert.pem"), &cert.cert_pem).map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("key.pem"), &cert.key_pem).map_err(|e| e.to_string())?;
    let d = dir.path().display();
    // One worker: the other core is the client's. No logging, a tiny fixed answer, keep-alive
    // without a request cap so keep-alive runs measure the client, not reconnects.
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 8192; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 60s;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
           uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{http_port} backlog=4096;\n\
             listen 127.0.0.1:{https_port} ssl backlog=4096;\n\
             ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n\
             location / {{ return 200 \"healthy\"; }}\n  }}\n}}\n"
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let child = Group::spawn(
        Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .map_err(|e| e.to_string())?;
    let http: SocketAddr = ([127, 0, 0, 1], http_port).into();
    let https: SocketAddr = ([127, 0, 0, 1], https_port).into();
    if !wait_until_accepting(http) || !wait_until_accepting(https) {
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        return Err(format!("not accepting after {STARTUP_WAIT:?}: {log}"));
    }
    Ok(Target::Nginx { _child: child, _dir: dir, http, https })
}

fn thread_cpu_seconds() -> f64 {
    // SAFETY: `rusage` is plain integers (and timevals of integers), for which all-zero bytes
    // are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage(2) only writes the struct it is given, which is valid and writable for
    // the call; RUSAGE_THREAD (Linux) is the calling thread's usage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    rusage_seconds(&ru)
}

fn rusage_seconds(ru: &libc::rusage) -> f64 {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn percentiles(h: &Histogram<u64>) -> (u64, u64, u64) {
    (h.value_at_quantile(0.5), h.value_at_quantile(0.9), h.value_at_quantile(0.99))
}

/// CPRA: one glommio shard, `in_flight` tasks, each checking in a loop until the time is up.
fn run_cpra(kind: Kind, target: &Target, seconds: u64, in_flight: usize, plain: bool) -> Figures {
    let addr = match kind {
        Kind::Https => target.https(),
        _ => target.http(),
    };
    let mut cache = TlsConfigCache::default();
    // One config per task: distinct host names make distinct keep-alive pool keys, as
    // `in_flight` monitors of one site would be.
    let configs: Vec<HttpConfig> = (0..in_flight)
        .map(|i| {
            let host = if kind == Kind::HttpKeepalive {
                format!("m{i}.localhost")
            } else {
                "localhost".into()
            };
            let mut spec = HttpSpec::get(addr, &host, "/");
            spec.keep_alive = kind == Kind::HttpKeepalive;
            spec.tls = kind == Kind::Https;
            spec.tls_options.insecure_skip_verify = true;
            HttpConfig::compile(&spec, &mut cache).expect("bench spec compiles")
        })
        .collect();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
        .io_memory(64 << 10)
        .spawn(move || async move {
            let client = Rc::new(HttpClient::new());
            let hist =
                Rc::new(RefCell::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap()));
            let errors = Rc::new(std::cell::Cell::new(0u64));
            let allocations0 = crate::counting_alloc::allocations();
            let cpu0 = thread_cpu_seconds();
            let start = Instant::now();
            let end = start + Duration::from_secs(seconds);
            let tasks: Vec<_> = configs
                .into_iter()
                .map(|cfg| {
                    let (client, hist, errors) = (client.clone(), hist.clone(), errors.clone());
                    glommio::spawn_local(async move {
                        let tcp_cfg = TcpConfig { addr };
                        let plain_cfg = PlainHttp {
                            addr,
                            host: "localhost",
                            method: "GET",
                            path: "/",
                            headers: &[],
                            expected_status: &[],
                            retries: 0,
                        };
                        while Instant::now() < end {
                            let o = match kind {
                                Kind::Tcp => tcp::check(&tcp_cfg, CHECK_TIMEOUT).await,
                                Kind::HttpClose if plain => client
                                    .check_plain(&plain_cfg, Deadline::after(CHECK_TIMEOUT))
                                    .await
                                    .expect("bench spec renders"),
                                _ => client.check(&cfg, CHECK_TIMEOUT).await,
                            };
                            if o.is_success() {
                                let _ = hist.borrow_mut().record(u64::from(o.latency_us.max(1)));
                            } else {
                                errors.set(errors.get() + 1);
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
            let elapsed = start.elapsed().as_secs_f64();
            let cpu = thread_cpu_seconds() - cpu0;
            let allocations = crate::counting_alloc::allocations() - allocations0;
            let h = hist.borrow();
            let (p50_us, p90_us, p99_us) = percentiles(&h);
            Figures {
                checks: h.len(),
                errors: errors.get(),
                seconds: elapsed,
                cpu_seconds: cpu,
                p50_us,
                p90_us,
                p99_us,
                allocations: Some(allocations),
            }
        })
        .expect("start shard")
        .join()
        .expect("shard run")
}

/// wrk against the same target; CPU from the child's rusage (wait4).
fn run_wrk(kind: Kind, target: &Target, seconds: u64, in_flight: usize) -> Result<Figures, String> {
    let wrk = which("wrk").ok_or("wrk not installed")?;
    let url = match kind {
        Kind::Https => format!("https://{}/", target.https()),
        _ => format!("http://{}/", target.http()),
    };
    let mut cmd = Command::new(wrk);
    cmd.args(["-t1", &format!("-c{in_flight}"), &format!("-d{seconds}s"), "--latency"]);
    if kind != Kind::HttpKeepalive {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(&url).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| format!("wrk: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("wrk: no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: `rusage` is plain integers (and timevals of integers), for which all-zero bytes
    // are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: wait4(2) only writes `status` and `ru`, both valid and writable for the call.
    // `pid` is our own child, not yet reaped (`child` is never waited on), so the call cannot
    // reap an unrelated process that reused the pid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if rc != pid {
        return Err("wrk: wait4 failed".into());
    }
    std::mem::forget(child); // already reaped by wait4
    let elapsed = started.elapsed().as_secs_f64();
    let out = reader.join().unwrap_or_default();
    parse_wrk(&out, rusage_seconds(&ru), elapsed.min(seconds as f64 + 0.5))
        .ok_or_else(|| format!("wrk: could not parse its output:\n{out}"))
}

/// Parses wrk's `--latency` output: total requests, errors, latency percentiles.
pub fn parse_wrk(out: &str, cpu_seconds: f64, wall_seconds: f64) -> Option<Figures> {
    let mut f = Figures { cpu_seconds, ..Figures::default() };
    let mut duration = None;
    for line in out.lines() {
        let t = line.trim();
        if let Some(rest) = t.split_once(" requests in ") {
            f.checks = rest.0.trim().parse().ok()?;
            duration = rest.1.split(',').next().and_then(parse_wrk_duration_s);
        } else if let Some(p) = t.strip_prefix("50%") {
            f.p50_us = parse_wrk_duration_s(p.trim()).map(|s| (s * 1e6) as u64)?;
        } else if let Some(p) = t.strip_prefix("90%") {
            f.p90_us = parse_wrk_duration_s(p.trim()).map(|s| (s * 1e6) as u64)?;
        } else if let Some(p) = t.strip_prefix("99%") {
            f.p99_us = parse_wrk_duration_s(p.trim()).map(|s| (s * 1e6) as u64)?;
        } else if let Some(rest) = t.strip_prefix("Socket errors:") {
            f.errors += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(rest) = t.strip_prefix("Non-2xx or 3xx responses:") {
            f.errors += rest.trim().parse::<u64>().unwrap_or(0);
        }
    }
    f.seconds = duration.unwrap_or(wall_seconds);
    (f.checks > 0).then_some(f)
}

fn parse_wrk_duration_s(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.trim().parse().ok()?;
    Some(match unit.trim() {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return None,
    })
}

fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`; utime and stime are the 14th and 15th fields overall.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf(3) takes no pointers and only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks)
}

/// blackbox_exporter: started with a private config, driven through `/probe` by blocking
/// keep-alive clients; its own CPU from /proc, latency from its `probe_duration_seconds`.
fn run_blackbox(
    kind: Kind,
    target: &Target,
    seconds: u64,
    in_flight: usize,
) -> Result<Figures, String> {
    let exe = which("prometheus-blackbox-exporter")
        .or_else(|| which("blackbox_exporter"))
        .ok_or("blackbox_exporter not installed")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let conf = "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n\
                \x20 https_insecure:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n      tls_config:\n        insecure_skip_verify: true\n\
                \x20 tcp_connect:\n    prober: tcp\n    timeout: 5s\n    tcp:\n      preferred_ip_protocol: ip4\n";
    let conf_path = dir.path().join("blackbox.yml");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let port = free_port();
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Group::spawn(
        Command::new(&exe)
            .arg(format!("--config.file={}", conf_path.display()))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .map_err(|e| format!("blackbox_exporter: {e}"))?;
    if !wait_until_accepting(listen) {
        return Err("blackbox_exporter did not start accepting".into());
    }
    let (module, probe_target) = match kind {
        Kind::HttpClose | Kind::HttpKeepalive => ("http_2xx", format!("http://{}/", target.http())),
        Kind::Https => ("https_insecure", format!("https://{}/", target.https())),
        Kind::Tcp => ("tcp_connect", target.http().to_string()),
    };
    let request = format!(
        "GET /probe?module={module}&target={probe_target} HTTP/1.1\r\nHost: {listen}\r\n\r\n"
    );
    let drivers = in_flight.clamp(1, MAX_BLACKBOX_DRIVERS);
    let stop = Arc::new(AtomicBool::new(false));
    let results =
        Arc::new(Mutex::new((Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap(), 0u64)));
    let pid = child.id();
    let cpu0 = proc_cpu_seconds(pid).ok_or("blackbox_exporter: cannot read /proc stat")?;
    let start = Instant::now();
    let threads: Vec<_> = (0..drivers)
        .map(|_| {
            let (stop, results, request) = (stop.clone(), results.clone(), request.clone());
            std::thread::spawn(move || {
                let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let mut errors = 0u64;
                'conn: while !stop.load(Ordering::Relaxed) {
                    let Ok(stream) = TcpStream::connect(listen) else {
                        errors += 1;
                        continue;
                    };
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    while !stop.load(Ordering::Relaxed) {
                        if writer.write_all(request.as_bytes()).is_err() {
                            continue 'conn;
                        }
                        match read_probe_response(&mut reader) {
                            Some((true, secs)) => {
                                let _ = local.record(((secs * 1e6) as u64).max(1));
                            }
                            Some((false, _)) => errors += 1,
                            None => {
                                errors += 1;
                                continue 'conn;
                            }
                        }
                    }
                }
                let mut r = results.lock().unwrap();
                r.0.add(&local).unwrap();
                r.1 += errors;
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let cpu = proc_cpu_seconds(pid).unwrap_or(cpu0) - cpu0;
    let elapsed = start.elapsed().as_secs_f64();
    for t in threads {
        let _ = t.join();
    }
    drop(child);
    let r = results.lock().unwrap();
    if r.0.is_empty() {
        return Err(format!("blackbox_exporter: no successful probe ({} errors)", r.1));
    }
    let (p50_us, p90_us, p99_us) = percentiles(&r.0);
    Ok(Figures {
        checks: r.0.len(),
        errors: r.1,
        seconds: elapsed,
        cpu_seconds: cpu,
        p50_us,
        p90_us,
        p99_us,
        allocations: None,
    })
}

/// Reads one `/probe` response; returns (probe_success, probe_duration_seconds).
fn read_probe_response(reader: &mut impl BufRead) -> Option<(bool, f64)> {
    let mut content_length = 0usize;
    let mut chunked = false;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().ok()?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            let start = body.len();
            body.resize(start + size + 2, 0);
            reader.read_exact(&mut body[start..]).ok()?;
            body.truncate(start + size);
            if size == 0 {
                break;
            }
        }
    } else {
        body.resize(content_length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    let body = String::from_utf8_lossy(&body);
    let metric = |name: &str| {
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
    };
    Some((metric("probe_success")? == 1.0, metric("probe_duration_seconds").unwrap_or(0.0)))
}

fn ratio(a: f64, b: f64) -> Value {
    if b > 0.0 && a.is_finite() {
        json!(round2(a / b))
    } else {
        Value::Null
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs the benchmark; prints the summary, then one JSON line.
pub fn run(args: &ProbesArgs) -> Result<(), String> {
    if args.seconds == 0 || args.seconds > MAX_SECONDS {
        return Err(format!("--seconds must be 1..={MAX_SECONDS}"));
    }
    if args.in_flight == 0 || args.in_flight > MAX_IN_FLIGHT {
        return Err(format!("--in-flight must be 1..={MAX_IN_FLIGHT}"));
    }
    let cert = fleet::FleetCert::localhost();
    let target = Target::start(&cert);
    let kind = args.kind;
    println!(
        "probes --kind {} --seconds {} --in-flight {}: target {} (http {}, https {})",
        kind.name(),
        args.seconds,
        args.in_flight,
        target.name(),
        target.http(),
        target.https()
    );
    if args.plain && kind != Kind::HttpClose {
        return Err("--plain is for --kind http-close (a plain check closes its connection)".into());
    }
    let cpra = run_cpra(kind, &target, args.seconds, args.in_flight, args.plain);
    println!("{}", cpra.line("cpra"));
    let peer = |name: &str, r: Result<Figures, String>| match r {
        Ok(f) => {
            println!("{}", f.line(name));
            Some(f)
        }
        Err(e) => {
            println!("{name:<18} not measured: {e}");
            None
        }
    };
    let wrk = if args.no_peers {
        None
    } else if kind == Kind::Tcp {
        println!("{:<18} not measured: wrk does not do bare TCP connects", "wrk");
        None
    } else {
        peer("wrk", run_wrk(kind, &target, args.seconds, args.in_flight))
    };
    let blackbox = if args.no_peers {
        None
    } else {
        peer("blackbox_exporter", run_blackbox(kind, &target, args.seconds, args.in_flight))
    };

    let cpra_cpc = cpra.cpu_us_per_check();
    let ratios = json!({
        // > 1: CPRA spends less CPU per check than wrk.
        "wrk_cpu_per_check_over_cpra": wrk.as_ref().map_or(Value::Null, |w| ratio(w.cpu_us_per_check(), cpra_cpc)),
        // >= 0.9 is the keep-alive target.
        "cpra_rate_over_wrk": wrk.as_ref().map_or(Value::Null, |w| ratio(cpra.checks_per_sec(), w.checks_per_sec())),
        // >= 10 is the target on every kind.
        "cpra_checks_per_cpu_s_over_blackbox": blackbox.as_ref().map_or(Value::Null, |b| ratio(cpra.checks_per_cpu_second(), b.checks_per_cpu_second())),
        "cpra_rate_over_blackbox": blackbox.as_ref().map_or(Value::Null, |b| ratio(cpra.checks_per_sec(), b.checks_per_sec())),
    });
    println!("ratios: {ratios}");
    let line = json!({
        "bench": "probes",
        "kind": kind.name(),
        "seconds": args.seconds,
        "in_flight": args.in_flight,
        "target": target.name(),
        "plain": args.plain,
        "checks_per_sec": round1(cpra.checks_per_sec()),
        "client_cpu_us_per_check": round1(cpra_cpc),
        "p50_us": cpra.p50_us,
        "p90_us": cpra.p90_us,
        "p99_us": cpra.p99_us,
        "cpra": cpra.to_json(),
        "wrk": wrk.as_ref().map_or(Value::Null, Figures::to_json),
        "blackbox_exporter": blackbox.as_ref().map_or(Value::Null, Figures::to_json),
        "ratios": ratios,
    });
    println!("{line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_latency_output() {
        let out = "Running 2s test @ http://127.0.0.1:80/\n  1 threads and 8 connections\n\
  Latency Distribution\n     50%  151.00us\n     75%  200.00us\n     90%    1.20ms\n     99%    3.00ms\n\
  40000 requests in 2.00s, 5.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n\
Requests/sec:  20000.00\n";
        let f = parse_wrk(out, 1.0, 2.1).unwrap();
        assert_eq!((f.checks, f.errors, f.p50_us, f.p90_us, f.p99_us), (40000, 3, 151, 1200, 3000));
        assert_eq!(f.seconds, 2.0);
        assert_eq!(f.cpu_us_per_check(), 25.0);
    }

    #[test]
    fn parses_a_blackbox_probe_response() {
        let body = "# HELP probe_success x\nprobe_success 1\nprobe_duration_seconds 0.0012\n";
        let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let mut r = BufReader::new(resp.as_bytes());
        assert_eq!(read_probe_response(&mut r), Some((true, 0.0012)));
        let resp = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        let mut r = BufReader::new(resp.as_bytes());
        assert_eq!(read_probe_response(&mut r), Some((true, 0.0012)));
    }
}
