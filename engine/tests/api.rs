//! The control plane against a real `cpra run` child on loopback: `/healthz`, `/readyz`,
//! `/metrics` (parsed, and checked by `promtool` where it is installed), and hostile clients.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);
/// How often a test looks again for a condition it waits for (bounded by [`BOUND`]).
const POLL: Duration = Duration::from_millis(50);

/// A `cpra run` child, killed and reaped when dropped (also on a failed assertion).
struct Cpra {
    child: Child,
    addr: SocketAddr,
    /// Everything the child wrote to stderr so far (read by a thread, so the pipe never fills).
    stderr: Arc<Mutex<String>>,
}

impl Cpra {
    /// Runs `manifest` with the API on a port the system picks, read from the start line.
    fn start(dir: &tempfile::TempDir, manifest: &str, extra: &[&str]) -> Cpra {
        Cpra::start_on(dir, manifest, 1, extra)
    }

    /// [`Cpra::start`] on `shards` shards.
    fn start_on(dir: &tempfile::TempDir, manifest: &str, shards: usize, extra: &[&str]) -> Cpra {
        let path = dir.path().join("fleet.yaml");
        std::fs::write(&path, manifest).unwrap();
        let mut child = Command::new(CPRA)
            .args(["run", path.to_str().unwrap(), "--listen", "127.0.0.1:0", "--data-dir", "none"])
            .args(["--shards", &shards.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (listening, stderr) = support::capture_listening(&mut child, BOUND);
        let mut cpra = Cpra { child, addr: "127.0.0.1:1".parse().unwrap(), stderr };
        match listening {
            Some(addr) => cpra.addr = addr,
            None => panic!("no listen line; stderr:\n{}", cpra.stderr()),
        }
        cpra
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `/readyz` answers 200.
    fn wait_ready(&self) {
        let end = Instant::now() + BOUND;
        while get(self.addr, "/readyz").0 != 200 {
            assert!(Instant::now() < end, "never ready; stderr:\n{}", self.stderr());
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Cpra {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status and body (the client says `Connection: close`, so the body ends at EOF).
fn request(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: cpra\r\nConnection: close\r\n\r\n"))
}

/// A TCP target that accepts every connection (and closes it): a listener that never accepts
/// would fill its backlog and turn "up" monitors into timeouts. The thread ends with the test
/// process.
fn up_target() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let accepting = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        for stream in accepting.incoming() {
            drop(stream);
        }
    });
    listener
}

/// A manifest with one monitor of each state the test can make: up (a listener the test
/// holds), down (a refused port), disabled.
fn fleet(up: &TcpListener) -> String {
    let port = up.local_addr().unwrap().port();
    format!(
        "version: \"1\"\nmonitors:\n\
         \x20 - name: up\n    pulse_check: {{type: tcp, interval: 100ms, timeout: 1s, config: {{host: 127.0.0.1, port: {port}}}}}\n\
         \x20 - name: down\n    pulse_check: {{type: tcp, interval: 100ms, timeout: 1s, config: {{host: 127.0.0.1, port: 1}}}}\n\
         \x20 - name: off\n    enabled: false\n    pulse_check: {{type: tcp, interval: 100ms, config: {{host: 127.0.0.1, port: 1}}}}\n"
    )
}

/// The value of the one sample of `name` whose labels include every pair of `labels`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    match matching.as_slice() {
        [] => None,
        many => Some(
            many.iter()
                .map(|s| match &s.value {
                    prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v) => *v,
                    _ => f64::NAN,
                })
                .sum(),
        ),
    }
}

fn histogram_count(scrape: &prometheus_parse::Scrape, name: &str) -> u64 {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name)
        .and_then(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count as u64).max()
            }
            _ => None,
        })
        .unwrap_or(0)
}

fn parse(body: &str) -> prometheus_parse::Scrape {
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("a Prometheus text exposition")
}

/// `promtool check metrics` on `body`, where promtool is installed (Debian's `prometheus`
/// package; CI installs it). Without it the Rust parser above is the only check.
fn promtool_check(body: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool is not installed: /metrics checked by prometheus-parse only");
        return;
    };
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool: {said}\n{body}");
}

#[test]
fn health_readiness_and_metrics_tell_what_the_engine_does() {
    let up = up_target();
    let dir = tempfile::tempdir().unwrap();
    let cpra = Cpra::start(&dir, &fleet(&up), &[]);
    cpra.wait_ready();
    assert_eq!(get(cpra.addr, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(get(cpra.addr, "/readyz"), (200, "ready\n".to_string()));

    // Until both monitors have a result and their checks are in the histograms.
    let end = Instant::now() + BOUND;
    let (body, scrape) = loop {
        let (status, body) = get(cpra.addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        let scrape = parse(&body);
        let counted = |result| sample(&scrape, "cpra_checks_total", &[("result", result)]);
        let done = counted("success").unwrap_or(0.0) >= 1.0
            && counted("failure").unwrap_or(0.0) >= 1.0
            && sample(&scrape, "cpra_monitors", &[("state", "unknown")]) == Some(0.0)
            && histogram_count(&scrape, "cpra_check_duration_seconds") >= 2
            && histogram_count(&scrape, "cpra_schedule_lateness_seconds") >= 2;
        if done {
            break (body, scrape);
        }
        assert!(Instant::now() < end, "the checks never showed:\n{body}\n{}", cpra.stderr());
        std::thread::sleep(POLL);
    };
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(sample(&scrape, "cpra_build_info", &[("version", version)]), Some(1.0));
    for (state, n) in [("up", 1.0), ("down", 1.0), ("unknown", 0.0), ("disabled", 1.0)] {
        assert_eq!(sample(&scrape, "cpra_monitors", &[("state", state)]), Some(n), "{state}");
    }
    let refused = sample(&scrape, "cpra_check_failures_total", &[("kind", "connect_refused")]);
    assert!(refused.unwrap() >= 1.0, "{body}");
    assert_eq!(sample(&scrape, "cpra_check_failures_total", &[("kind", "dns")]), Some(0.0));
    assert_eq!(
        sample(&scrape, "cpra_check_failures_total", &[("shard", "0")]),
        sample(&scrape, "cpra_checks_total", &[("result", "failure")]),
        "failures by kind add up to the failed checks"
    );
    for reason in ["ring_full", "missed_slot"] {
        assert!(sample(&scrape, "cpra_checks_delayed_total", &[("reason", reason)]).is_some());
    }
    // The down monitor opened an incident; no notifier, so no deliveries.
    assert_eq!(sample(&scrape, "cpra_incidents_open", &[]), Some(1.0), "{body}");
    let red = [("colour", "red"), ("outcome", "sent")];
    assert_eq!(sample(&scrape, "cpra_alerts_total", &red), Some(0.0));
    assert_eq!(sample(&scrape, "cpra_interventions_total", &[("result", "failed")]), Some(0.0));
    assert_eq!(sample(&scrape, "cpra_shard_running", &[("shard", "0")]), Some(1.0));
    promtool_check(&body);

    // What is not an endpoint is 404; an endpoint asked the wrong way says so.
    assert_eq!(get(cpra.addr, "/api/v1/monitors/nope").0, 404);
    assert_eq!(get(cpra.addr, "/api/v1/monitors/up/explode").0, 404);
    assert_eq!(get(cpra.addr, "/nope").0, 404);
    assert_eq!(get(cpra.addr, "/").0, 200, "the dashboard");
    let post =
        "POST /metrics HTTP/1.1\r\nHost: cpra\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(request(cpra.addr, post).0, 405);
    let huge = "POST /healthz HTTP/1.1\r\nHost: cpra\r\nContent-Length: 1000000\r\n\r\n";
    assert_eq!(request(cpra.addr, huge).0, 413);
    // OpenMetrics for a scraper that asks for it (Prometheus does).
    let om = "GET /metrics HTTP/1.1\r\nHost: cpra\r\nAccept: application/openmetrics-text; version=1.0.0\r\nConnection: close\r\n\r\n";
    let (status, body) = request(cpra.addr, om);
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE cpra_checks counter") && body.ends_with("# EOF\n"), "{body}");
}

#[test]
fn hostile_clients_are_closed_and_cost_the_others_nothing() {
    let up = up_target();
    let dir = tempfile::tempdir().unwrap();
    let cpra = Cpra::start(&dir, &fleet(&up), &[]);
    cpra.wait_ready();
    let addr = cpra.addr;

    // Slowloris: a header line now and then, never the end of the head.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: cpra\r\n").unwrap();
    let trickle = {
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            let end = Instant::now() + BOUND;
            while Instant::now() < end && slow.write_all(b"X-Slow: 1\r\n").is_ok() {
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    // A 1 MiB header, sent by a thread (the server stops reading long before the end).
    let mut big = TcpStream::connect(addr).unwrap();
    let flood = {
        let mut big = big.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut head = b"GET /healthz HTTP/1.1\r\nHost: cpra\r\nX-Big: ".to_vec();
            head.resize(head.len() + (1 << 20), b'a');
            head.extend_from_slice(b"\r\n\r\n");
            let _ = big.write_all(&head);
        })
    };
    // Meanwhile the API answers others at once.
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(get(addr, "/metrics").0, 200);

    for (what, stream) in [("1 MiB header", &mut big), ("slowloris", &mut slow)] {
        stream.set_read_timeout(Some(BOUND)).unwrap();
        let mut raw = Vec::new();
        // A reset (the server closed with bytes unread) is a closed connection too.
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        if !text.is_empty() {
            let status: u16 = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            assert!((400..500).contains(&status), "{what}: {text}");
        }
    }
    flood.join().unwrap();
    trickle.join().unwrap();
    assert_eq!(get(addr, "/healthz").0, 200, "{}", cpra.stderr());
}

#[test]
fn two_hundred_concurrent_requests_are_all_served() {
    const CLIENTS: usize = 200;
    let up = up_target();
    let dir = tempfile::tempdir().unwrap();
    let cpra = Cpra::start(&dir, &fleet(&up), &[]);
    cpra.wait_ready();
    let addr = cpra.addr;
    let start = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                let path = ["/metrics", "/healthz", "/api/v1/monitors?limit=1000"][i % 3];
                start.wait();
                get(addr, path).0
            })
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
}

#[test]
fn an_address_in_use_stops_the_start_and_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.yaml");
    std::fs::write(&path, fleet(&taken)).unwrap();
    let out = Command::new(CPRA)
        .args(["run", path.to_str().unwrap(), "--shards", "1", "--listen", &addr])
        .args(["--data-dir", "none"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
    assert!(stderr.contains("--listen none"), "{stderr}");
}

#[test]
fn the_api_ends_with_the_engine() {
    let up = up_target();
    let dir = tempfile::tempdir().unwrap();
    let mut cpra = Cpra::start(&dir, &fleet(&up), &["--duration", "2s"]);
    cpra.wait_ready();
    // A kept-alive connection does not keep the process alive.
    let mut idle = TcpStream::connect(cpra.addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: cpra\r\n\r\n").unwrap();
    let end = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = cpra.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < end, "still running; stderr:\n{}", cpra.stderr());
        std::thread::sleep(POLL);
    };
    assert_eq!(status.code(), Some(0), "{}", cpra.stderr());
    assert!(TcpStream::connect(cpra.addr).is_err(), "still listening");
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Every page of a list, following `next` to the end: (monitors, the totals each page said).
fn walk(addr: SocketAddr, query: &str) -> (Vec<serde_json::Value>, Vec<u64>) {
    let mut monitors = Vec::new();
    let mut totals = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let path = match &cursor {
            None => format!("/api/v1/monitors?{query}"),
            Some(c) => format!("/api/v1/monitors?{query}&cursor={c}"),
        };
        let (status, body) = get(addr, &path);
        assert_eq!(status, 200, "{path}: {body}");
        let page = json(&body);
        totals.push(page["total"].as_u64().unwrap());
        monitors.extend(page["monitors"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return (monitors, totals),
        }
    }
    panic!("paging never ended");
}

#[test]
fn the_monitor_list_pages_through_every_shard_in_id_order() {
    const N: usize = 230;
    let up = up_target();
    let port = up.local_addr().unwrap().port();
    let mut yaml = String::from("version: \"1\"\nmonitors:\n");
    for i in 0..N {
        // Every 3rd is down (refused), every 10th disabled, every 4th in group eu.
        let target_port = if i % 3 == 0 { 1 } else { port };
        let enabled = i % 10 != 9;
        let groups = if i % 4 == 0 { "[eu, all]" } else { "[all]" };
        yaml.push_str(&format!(
            "  - name: m{i:03}\n    enabled: {enabled}\n    pulse_check: {{type: tcp, interval: 100ms, timeout: 1s, groups: {groups}, config: {{host: 127.0.0.1, port: {target_port}}}}}\n"
        ));
    }
    let disabled = (0..N).filter(|i| i % 10 == 9).count();
    let down = (0..N).filter(|i| i % 3 == 0 && i % 10 != 9).count();
    let dir = tempfile::tempdir().unwrap();
    let shards = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let cpra = Cpra::start_on(&dir, &yaml, shards, &[]);
    cpra.wait_ready();
    // Until every enabled monitor has a result.
    let end = Instant::now() + BOUND;
    loop {
        let (_, body) = get(cpra.addr, "/api/v1/monitors?state=unknown&limit=1");
        if json(&body)["total"] == 0 {
            break;
        }
        assert!(Instant::now() < end, "never all checked: {body}\n{}", cpra.stderr());
        std::thread::sleep(POLL);
    }

    // All of them, 100 a page, in id order, each once; every page says the same total.
    let (all, totals) = walk(cpra.addr, "limit=100");
    assert_eq!(totals, vec![N as u64; 3]);
    let ids: Vec<&str> = all.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), N);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "not in id order, or repeated: {ids:?}");

    // Filters: state, name, group; each walked to the end, its total the rows it gave.
    let (downs, totals) = walk(cpra.addr, "state=down&limit=7");
    assert_eq!(downs.len(), down);
    assert!(totals.iter().all(|&t| t == down as u64));
    for m in &downs {
        assert_eq!(m["state"], "down", "{m}");
        assert_eq!(m["type"], "tcp");
        assert_eq!(m["failure"]["kind"], "connect_refused", "{m}");
        assert!(m["incident_id"].is_string(), "an open incident: {m}");
        assert!(m["last_check"].as_str().unwrap().ends_with('Z'), "{m}");
        assert!(m["latency_ms"].is_number());
    }
    let (offs, _) = walk(cpra.addr, "state=disabled");
    assert_eq!(offs.len(), disabled);
    assert!(offs.iter().all(|m| m["last_check"].is_null() && m["failure"].is_null()));
    let (ups, _) = walk(cpra.addr, "state=up&limit=1000");
    assert_eq!(ups.len(), N - down - disabled);
    assert!(ups.iter().all(|m| m["failure"].is_null() && m["incident_id"].is_null()));
    let (named, totals) = walk(cpra.addr, "q=m01&limit=3");
    let names: Vec<&str> = named.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, (10..20).map(|i| format!("m{i:03}")).collect::<Vec<_>>());
    assert!(totals.iter().all(|&t| t == 10));
    let (eu, _) = walk(cpra.addr, "group=eu&limit=50");
    assert_eq!(eu.len(), N.div_ceil(4));
    assert!(eu.iter().all(|m| m["groups"] == serde_json::json!(["eu", "all"])));

    // In state order (the dashboard's): down first, then up, then disabled, each by id; the
    // cursor carries the state across the pages.
    let (by_state, totals) = walk(cpra.addr, "order=state&limit=7");
    assert!(totals.iter().all(|&t| t == N as u64), "{totals:?}");
    let rank = |m: &serde_json::Value| match m["state"].as_str().unwrap() {
        "down" => 0,
        "unknown" => 1,
        "up" => 2,
        _ => 3,
    };
    let keys: Vec<(u8, &str)> =
        by_state.iter().map(|m| (rank(m), m["id"].as_str().unwrap())).collect();
    assert_eq!(keys.len(), N);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "not down first, or repeated: {keys:?}");
    assert_eq!(keys.iter().filter(|k| k.0 == 0).count(), down);
    let (named, totals) = walk(cpra.addr, "order=state&q=m01&limit=4");
    assert_eq!(named.len(), 10);
    assert!(totals.iter().all(|&t| t == 10));
    assert!(named.iter().all(|m| m["state_since"].as_str().unwrap().ends_with('Z')));
    let (status, body) = get(cpra.addr, "/api/v1/monitors?order=sideways");
    assert_eq!((status, json(&body)["error"].as_str().unwrap().contains("order")), (400, true));

    // The dashboard's header: the fleet by state, silenced ones and open incidents.
    let (status, body) = get(cpra.addr, "/api/v1/summary");
    assert_eq!(status, 200, "{body}");
    let summary = json(&body);
    assert_eq!(summary["monitors"], N);
    assert_eq!(summary["down"], down);
    assert_eq!(summary["up"], N - down - disabled);
    assert_eq!(summary["disabled"], disabled);
    assert_eq!((summary["unknown"].as_u64(), summary["silenced"].as_u64()), (Some(0), Some(0)));
    assert_eq!(summary["incidents_open"], down);
    // One monitor's incidents, from its shard only.
    let (status, body) = get(cpra.addr, "/api/v1/incidents?monitor=m000");
    assert_eq!(status, 200, "{body}");
    let incidents = json(&body);
    assert_eq!(incidents["total"], 1, "{body}");
    assert_eq!(incidents["incidents"][0]["id"], "m000#1");
    let (_, body) = get(cpra.addr, "/api/v1/incidents?monitor=m001");
    assert_eq!(json(&body)["total"], 0, "an up monitor has none: {body}");

    // The group's monitors as series: one per checked monitor, valued by its state.
    let (status, body) = get(cpra.addr, "/metrics/monitors?group=eu");
    assert_eq!(status, 200, "{body}");
    let scrape = parse(&body);
    let series: Vec<_> = scrape.samples.iter().filter(|s| s.metric == "cpra_monitor_up").collect();
    let eu_checked: Vec<_> = eu.iter().filter(|m| m["state"] != "disabled").collect();
    assert_eq!(series.len(), eu_checked.len(), "{body}");
    for m in eu_checked {
        let name = m["name"].as_str().unwrap();
        let up = if m["state"] == "up" { 1.0 } else { 0.0 };
        let labels = [("monitor", name), ("group", "eu")];
        assert_eq!(sample(&scrape, "cpra_monitor_up", &labels), Some(up), "{name}");
        assert!(sample(&scrape, "cpra_monitor_latency_seconds", &labels).is_some(), "{name}");
    }
    let matching = sample(&scrape, "cpra_monitor_series_matching", &[]);
    assert_eq!(matching, Some(eu.len() as f64));
    assert_eq!(sample(&scrape, "cpra_monitor_series_truncated", &[]), Some(0.0));
    promtool_check(&body);
    assert_eq!(get(cpra.addr, "/metrics/monitors").0, 400, "a group is required");

    // What a client gets wrong is a 400 that says what.
    let (status, body) = get(cpra.addr, "/api/v1/monitors?state=sideways");
    assert_eq!(status, 400);
    assert!(json(&body)["error"].as_str().unwrap().contains("state"), "{body}");
    assert_eq!(get(cpra.addr, "/api/v1/monitors?cursor=%25%25").0, 400);
    assert_eq!(get(cpra.addr, "/api/v1/monitors?limit=0").0, 400);
}

#[test]
fn alerts_and_interventions_are_counted_by_colour_and_result() {
    use cpra_engine::demo::scripted::ScriptedServer;
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/web", &[], 503));
    receiver.script(|s| {
        s.statuses("/alerts", &[], 200);
        s.statuses("/restart", &[], 200);
    });
    let alerts = receiver.url("/alerts");
    let yaml = format!(
        "version: \"1\"\nmonitors:\n  - name: web\n    pulse_check:\n      type: http\n      interval: 100ms\n      timeout: 2s\n      config: {{url: \"{}\", retries: 0}}\n    intervention:\n      action: webhook\n      target: {{url: \"{}\", method: POST, timeout: 2s}}\n    codes:\n      red: {{notify: webhook, config: {{url: \"{alerts}\"}}}}\n      yellow: {{notify: webhook, config: {{url: \"{alerts}\"}}}}\n      cyan: {{notify: webhook, config: {{url: \"{alerts}\"}}}}\n",
        target.url("/web"),
        receiver.url("/restart"),
    );
    let dir = tempfile::tempdir().unwrap();
    let cpra = Cpra::start(&dir, &yaml, &[]);
    cpra.wait_ready();
    let end = Instant::now() + BOUND;
    loop {
        let (_, body) = get(cpra.addr, "/metrics");
        let scrape = parse(&body);
        let sent = sample(&scrape, "cpra_alerts_total", &[("outcome", "sent")]).unwrap();
        let succeeded = sample(&scrape, "cpra_interventions_total", &[("result", "succeeded")]);
        if sent >= 1.0 && succeeded.unwrap() >= 1.0 {
            // Published a little after delivery: never more than the receiver has seen.
            let delivered = receiver.requests(Some("/alerts")).len() as f64;
            assert!(sent <= delivered, "{sent} sent, {delivered} received");
            let by_colour: f64 = ["yellow", "red", "cyan", "green", "gray"]
                .iter()
                .map(|c| {
                    sample(&scrape, "cpra_alerts_total", &[("colour", c), ("outcome", "sent")])
                        .unwrap()
                })
                .sum();
            assert_eq!(by_colour, sent);
            assert_eq!(
                sample(&scrape, "cpra_alerts_total", &[("outcome", "undelivered")]),
                Some(0.0)
            );
            assert!(
                sample(&scrape, "cpra_check_failures_total", &[("kind", "status")]).unwrap() >= 1.0
            );
            promtool_check(&body);
            break;
        }
        assert!(
            Instant::now() < end,
            "no alert or intervention counted:\n{body}\n{}",
            cpra.stderr()
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn names_with_quotes_cannot_break_or_forge_series() {
    let up = up_target();
    let port = up.local_addr().unwrap().port();
    let yaml = format!(
        "version: \"1\"\nmonitors:\n  - name: \"say \\\"hi\\\"}} 1\\ncpra_forged 1 \\\\ bye\"\n    pulse_check: {{type: tcp, interval: 100ms, groups: ['g\"1'], config: {{host: 127.0.0.1, port: {port}}}}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let cpra = Cpra::start(&dir, &yaml, &[]);
    cpra.wait_ready();
    let end = Instant::now() + BOUND;
    loop {
        let (status, body) = get(cpra.addr, "/metrics/monitors?group=g%221");
        assert_eq!(status, 200, "{body}");
        // prometheus-parse does not read escaped quotes in labels: lines are checked here,
        // the exposition as a whole by promtool.
        let up: Vec<&str> = body.lines().filter(|l| l.starts_with("cpra_monitor_up{")).collect();
        if let [line] = up.as_slice() {
            let escaped = r#"{monitor="say \"hi\"} 1\ncpra_forged 1 \\ bye","#;
            assert!(line.contains(escaped) && line.ends_with("group=\"g\\\"1\"} 1"), "{line}");
            assert!(!body.lines().any(|l| l.starts_with("cpra_forged")), "{body}");
            promtool_check(&body);
            break;
        }
        assert!(Instant::now() < end, "never checked:\n{body}\n{}", cpra.stderr());
        std::thread::sleep(POLL);
    }
}
