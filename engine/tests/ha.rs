//! High availability through a real Alertmanager cluster: two Alertmanagers clustered on
//! loopback, two `cpra run` replicas of the same slice sending every code to both, a failing
//! target, and a webhook receiver behind Alertmanager. The receiver must get one notification
//! per alert (four copies of each were posted: two replicas times two Alertmanagers), and the
//! resolution still arrives after one replica is killed with SIGKILL.
//!
//! Needs Debian's `prometheus-alertmanager` (or `alertmanager` on the PATH); without it the
//! test says so and passes without running (`.ci/run` installs it).

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::{Recorded, ScriptedServer};

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);
/// How long an Alertmanager waits for the peer before it to notify, per position in the
/// cluster (`--cluster.peer-timeout`, 15 s by default), shortened for the test.
const PEER_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an Alertmanager flushes an alert group after its first notification (Alertmanager's
/// `group_interval`, 5 m by default), shortened for the test but kept well above
/// PEER_TIMEOUT: the second member sends what it saw at a flush PEER_TIMEOUT later unless the
/// first member's notification log says it was sent; a change that lands inside that wait
/// (the alert resolved) makes it send the firing it held. With flushes 10 s apart and the
/// target healed 2 s after a flush, the resolution lands outside every such wait.
const GROUP_INTERVAL: Duration = Duration::from_secs(10);

/// The Alertmanager binary: Debian installs it as `prometheus-alertmanager`.
fn alertmanager() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["prometheus-alertmanager", "alertmanager"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A child process, killed (SIGKILL) and reaped when dropped, also on a failed assertion.
struct Guard(Option<Child>);

impl Guard {
    /// SIGKILL and reap, now.
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then reap.
    fn terminate(&mut self) {
        if let Some(mut child) = self.0.take() {
            // SAFETY: kill(2) takes no pointers. The pid is our child, not yet reaped (it is
            // waited for just below), so it cannot have been reused by another process.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port free now on 127.0.0.1, for a child that must be told its address. The listener is
/// dropped before the child binds it: another process could take it meanwhile (unlikely; a
/// failure then is an address in use, reported by the child).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The status and body of a GET, `None` while nothing listens.
fn fetch(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(BOUND)).ok()?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()))
}

fn get(addr: SocketAddr, path: &str) -> Option<u16> {
    fetch(addr, path).map(|(status, _)| status)
}

/// Firing alerts an Alertmanager has received (`alertmanager_alerts_received_total`).
fn firing_received(addr: SocketAddr) -> u64 {
    let Some((_, body)) = fetch(addr, "/metrics") else { return 0 };
    body.lines()
        .filter(|l| l.starts_with("alertmanager_alerts_received_total{") && l.contains("firing"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Whether the Alertmanager at `addr` sees both members and has settled (`/api/v2/status`).
fn cluster_formed(addr: SocketAddr) -> bool {
    let Some((200, body)) = fetch(addr, "/api/v2/status") else { return false };
    let Ok(status) = serde_json::from_str::<serde_json::Value>(&body) else { return false };
    let cluster = &status["cluster"];
    cluster["status"] == "ready" && cluster["peers"].as_array().is_some_and(|p| p.len() == 2)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + BOUND;
    while !done() {
        assert!(Instant::now() < end, "{what}: not within {BOUND:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts one clustered Alertmanager: its web API on `web`, its gossip on `cluster`, peering
/// with `peer`.
fn start_alertmanager(
    bin: &Path,
    dir: &Path,
    n: usize,
    web: u16,
    cluster: u16,
    peer: u16,
) -> Guard {
    let storage = dir.join(format!("am{n}"));
    std::fs::create_dir_all(&storage).unwrap();
    let log = std::fs::File::create(dir.join(format!("am{n}.log"))).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .arg(format!("--cluster.listen-address=127.0.0.1:{cluster}"))
        .arg(format!("--cluster.peer=127.0.0.1:{peer}"))
        .arg(format!("--cluster.peer-timeout={}ms", PEER_TIMEOUT.as_millis()))
        // Gossip and sync fast, so the notification log is shared in milliseconds and the
        // cluster settles in about a second.
        .args(["--cluster.gossip-interval=50ms", "--cluster.pushpull-interval=1s"])
        .args(["--cluster.probe-interval=200ms", "--cluster.settle-timeout=5s"])
        .arg("--log.level=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start alertmanager");
    Guard(Some(child))
}

/// Starts a `cpra run` replica; returns it once its control plane is ready.
fn start_cpra(manifest: &Path, data_dir: &Path, replica: u32) -> (Guard, Arc<Mutex<String>>) {
    let mut child = Command::new(CPRA)
        .args(["run", manifest.to_str().unwrap(), "--listen", "127.0.0.1:0", "--shards", "1"])
        .args(["--data-dir", data_dir.to_str().unwrap(), "--fsync", "never"])
        .args(["--replica", &replica.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (listening, stderr) = support::capture_listening(&mut child, BOUND);
    let guard = Guard(Some(child));
    let addr: SocketAddr = match listening {
        Some(addr) => addr,
        None => panic!("replica {replica}: no listen line:\n{}", stderr.lock().unwrap()),
    };
    wait_until("cpra ready", || get(addr, "/readyz") == Some(200));
    (guard, stderr)
}

/// Each alert the receiver was notified of, by its labels: (firing, resolved) counts.
fn notified(requests: &[Recorded]) -> BTreeMap<String, (usize, usize)> {
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in requests {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        for alert in body["alerts"].as_array().unwrap() {
            let labels = alert["labels"].to_string();
            let counts = seen.entry(labels).or_default();
            match alert["status"].as_str() {
                Some("firing") => counts.0 += 1,
                Some("resolved") => counts.1 += 1,
                other => panic!("status {other:?} in {body}"),
            }
        }
    }
    seen
}

#[test]
fn an_alertmanager_cluster_notifies_once_per_alert_from_two_replicas_and_after_one_is_killed() {
    let Some(bin) = alertmanager() else {
        eprintln!(
            "SKIPPED: no prometheus-alertmanager (or alertmanager) on the PATH; install \
             Debian's prometheus-alertmanager to run this test (.ci/run does)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    receiver.script(|s| s.statuses("/hook", &[], 200));
    let target = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/web", &[], 503));

    // One group per alert (monitor and colour), each notified on its own; nothing repeats
    // within the test.
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [monitor_id, color]\n  group_wait: 1s\n  \
             group_interval: {}s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
             webhook_configs:\n      - url: {}\n        send_resolved: true\n",
            GROUP_INTERVAL.as_secs(),
            receiver.url("/hook")
        ),
    )
    .unwrap();
    let (web, cluster) = ([free_port(), free_port()], [free_port(), free_port()]);
    let mut ams: Vec<Guard> = (0..2)
        .map(|n| start_alertmanager(&bin, dir.path(), n, web[n], cluster[n], cluster[1 - n]))
        .collect();
    for port in web {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_until("alertmanager ready", || get(addr, "/-/ready") == Some(200));
        // Ready is not clustered: until each has the other as a peer, both notify (on a
        // loaded machine the join took longer than the first alert, and every alert came
        // twice).
        wait_until("alertmanager cluster formed", || cluster_formed(addr));
    }

    let manifest = dir.path().join("fleet.yaml");
    std::fs::write(
        &manifest,
        format!(
            "endpoints:\n  am-0: {{type: alertmanager, config: {{url: \"http://127.0.0.1:{}\"}}}}\n  \
             am-1: {{type: alertmanager, config: {{url: \"http://127.0.0.1:{}\"}}}}\n\
             notification_groups:\n  alertmanagers: [am-0, am-1]\n\
             monitors:\n  - name: web\n    pulse_check:\n      type: http\n      interval: 200ms\n      \
             timeout: 150ms\n      config: {{url: \"{}\"}}\n    codes:\n      \
             yellow: {{notify_group: alertmanagers}}\n      red: {{notify_group: alertmanagers}}\n      \
             green: {{notify_group: alertmanagers}}\n",
            web[0],
            web[1],
            target.url("/web")
        ),
    )
    .unwrap();
    let (mut a, a_log) = start_cpra(&manifest, &dir.path().join("data-a"), 0);
    let (mut b, b_log) = start_cpra(&manifest, &dir.path().join("data-b"), 1);

    // Unhealthy 1: the first failure queues yellow and red; each replica posts both to both
    // Alertmanagers.
    let firing = |requests: &[Recorded]| {
        let seen = notified(requests);
        seen.len() == 2 && seen.values().all(|&(firing, _)| firing >= 1)
    };
    let first = receiver.wait_for(Some("/hook"), BOUND, firing);
    assert!(
        firing(&first),
        "no yellow and red notified: {:?}\nam0:\n{}\nreplica 0:\n{}\nreplica 1:\n{}",
        notified(&first),
        std::fs::read_to_string(dir.path().join("am0.log")).unwrap_or_default(),
        a_log.lock().unwrap(),
        b_log.lock().unwrap()
    );

    // Each Alertmanager received yellow and red from each replica: four firing alerts,
    // notified once between them.
    for port in web {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_until("both replicas' alerts received", || firing_received(addr) >= 4);
    }

    // The second Alertmanager sends what it saw at the flush only after PEER_TIMEOUT, if the
    // first one's notification has not reached it by then. Let that wait pass before the
    // target heals (see GROUP_INTERVAL): a resolution inside it makes the second send the
    // firing it held, Alertmanager's at-least-once, not a failure of de-duplication.
    std::thread::sleep(PEER_TIMEOUT * 2);

    // One replica dies without a word; the other alone sees the target heal and sends green.
    a.kill();
    target.script(|s| s.statuses("/web", &[], 200));
    let resolved = |requests: &[Recorded]| {
        let seen = notified(requests);
        seen.len() == 2 && seen.values().all(|&(_, resolved)| resolved >= 1)
    };
    let all = receiver.wait_for(Some("/hook"), BOUND, resolved);
    assert!(resolved(&all), "no resolution after the kill: {:?}", notified(&all));
    // The second Alertmanager notifies only if the first has not, after PEER_TIMEOUT: wait
    // that long twice over for a duplicate to show (a wait for something that must not
    // happen; a slow machine can only make it miss a duplicate, never fail a good run).
    std::thread::sleep(PEER_TIMEOUT * 2);
    b.terminate();
    for am in &mut ams {
        am.terminate();
    }
    let requests = receiver.requests(Some("/hook"));
    let seen = notified(&requests);
    assert_eq!(seen.len(), 2, "{seen:?}");
    // On a failure, what each Alertmanager did (its notifications and cluster view).
    let story =
        || {
            let mut text = String::new();
            for r in &requests {
                text.push_str(&format!("posted: {}\n", String::from_utf8_lossy(&r.body)));
            }
            for n in 0..2 {
                let log = std::fs::read_to_string(dir.path().join(format!("am{n}.log")));
                for line in log.unwrap_or_default().lines().filter(|l| {
                    l.contains("Notify") || l.contains("cluster") || l.contains("nflog")
                }) {
                    text.push_str(&format!("am{n}: {line}\n"));
                }
            }
            text
        };
    for (labels, counts) in &seen {
        assert_eq!(
            *counts,
            (1, 1),
            "{labels}: notified (firing, resolved) {counts:?} times\n{}",
            story()
        );
        let labels: serde_json::Value = serde_json::from_str(labels).unwrap();
        assert_eq!(labels["monitor_id"], "web");
        assert_eq!(labels["alertname"], "CPRAMonitor");
    }
    // Each replica said which copy it is in its start line.
    assert!(a_log.lock().unwrap().contains("node=0/1 replica=0"), "{}", a_log.lock().unwrap());
    assert!(b_log.lock().unwrap().contains("node=0/1 replica=1"), "{}", b_log.lock().unwrap());
}
