//! Several `cpra run` nodes on one manifest (`--node-index/--node-count`): real children,
//! a real target on loopback that records which node sent each check.
//!
//! Each monitor's URL ends with `${CPRA_TEST_NODE}`, which each child expands from its own
//! environment, so the path a check arrives on names the node that made it: the test sees
//! exactly who checks what, with no timing involved.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::ScriptedServer;

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);
const MONITORS: usize = 60;

/// A `cpra run` node, killed and reaped when dropped (also on a failed assertion).
struct Node {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Node {
    fn start(manifest: &std::path::Path, index: usize, count: usize, tag: &str) -> Node {
        let mut child = Command::new(CPRA)
            .args(["run", manifest.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(["--data-dir", "none", "--shards", "1"])
            .args(["--node-index", &index.to_string(), "--node-count", &count.to_string()])
            .env("CPRA_TEST_NODE", format!("{tag}{index}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (listening, stderr) = support::capture_listening(&mut child, BOUND);
        let mut node = Node { child, addr: "127.0.0.1:1".parse().unwrap(), stderr };
        match listening {
            Some(addr) => node.addr = addr,
            None => panic!("no listen line; stderr:\n{}", node.stderr()),
        }
        node
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `GET /api/v1/node` once the node is ready.
    fn slice(&self) -> serde_json::Value {
        let end = Instant::now() + BOUND;
        while get(self.addr, "/readyz").0 != 200 {
            assert!(Instant::now() < end, "never ready; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        let (status, body) = get(self.addr, "/api/v1/node");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: cpra\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// `cpra placement FILE --node-count N`: monitor id -> node.
fn placement(manifest: &std::path::Path, count: usize) -> BTreeMap<String, usize> {
    let out = Command::new(CPRA)
        .args(["placement", manifest.to_str().unwrap(), "--node-count", &count.to_string()])
        // The manifest needs it set; placement does not depend on it.
        .env("CPRA_TEST_NODE", "any")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let owners: BTreeMap<String, usize> = stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut fields = l.split('\t');
            let node = fields.next().unwrap().parse().unwrap();
            (fields.next().unwrap().to_string(), node)
        })
        .collect();
    assert_eq!(owners.len(), MONITORS, "{stdout}");
    let sizes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("# node ")).collect();
    assert_eq!(sizes.len(), count, "{stdout}");
    owners
}

/// Runs `count` nodes tagged `tag` until every monitor has been checked three times; returns
/// monitor id -> the nodes whose checks reached its target.
fn run_nodes(
    manifest: &std::path::Path,
    target: &ScriptedServer,
    count: usize,
    tag: &str,
) -> BTreeMap<String, BTreeSet<usize>> {
    let nodes: Vec<Node> = (0..count).map(|i| Node::start(manifest, i, count, tag)).collect();
    let mut held = 0;
    for (i, node) in nodes.iter().enumerate() {
        let slice = node.slice();
        assert_eq!(slice["index"], i, "{slice}");
        assert_eq!(slice["count"], count, "{slice}");
        assert_eq!(slice["replica"], 0, "{slice}");
        held += slice["monitors"].as_u64().unwrap();
        let (_, metrics) = get(node.addr, "/metrics");
        let info = format!("cpra_node_info{{index=\"{i}\",count=\"{count}\",replica=\"0\"}} 1");
        assert!(metrics.contains(&info), "{metrics}");
    }
    assert_eq!(held, MONITORS as u64, "the slices hold the fleet between them");
    let prefix = format!("/{tag}");
    let checked = |requests: &[cpra_engine::demo::scripted::Recorded]| {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in requests.iter().filter(|r| r.path.contains(&prefix)) {
            *counts.entry(r.path.split('/').nth(1).unwrap()).or_default() += 1;
        }
        counts.len() == MONITORS && counts.values().all(|&n| n >= 3)
    };
    let requests = target.wait_for(None, BOUND, checked);
    assert!(checked(&requests), "not every monitor was checked three times");
    for (i, node) in nodes.iter().enumerate() {
        // The start line is logged once the API serves the fleet: checks have run since.
        let start = "cli::run: running";
        let line = node.stderr().lines().find(|l| l.contains(start)).map(str::to_owned);
        let line = line.unwrap_or_else(|| panic!("no start line:\n{}", node.stderr()));
        assert!(line.contains(&format!("node={i}/{count} replica=0")), "{line}");
    }
    drop(nodes);
    let mut seen: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.path.contains(&prefix)) {
        // `/m07/a1`: monitor m07, checked by node 1.
        let mut parts = r.path.split('/').skip(1);
        let id = parts.next().unwrap().to_string();
        let node = parts.next().unwrap().strip_prefix(tag).unwrap().parse().unwrap();
        seen.entry(id).or_default().insert(node);
    }
    seen
}

#[test]
fn three_nodes_check_every_monitor_exactly_once_and_a_fourth_takes_only_what_it_wins() {
    let target = ScriptedServer::start().unwrap();
    let mut yaml = String::from("version: \"1\"\nmonitors:\n");
    for i in 0..MONITORS {
        yaml.push_str(&format!(
            "  - name: m{i:02}\n    pulse_check:\n      type: http\n      interval: 200ms\n      timeout: 150ms\n      config: {{url: \"{}/m{i:02}/${{CPRA_TEST_NODE}}\"}}\n",
            target.url("")
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("fleet.yaml");
    std::fs::write(&manifest, yaml).unwrap();

    let three = placement(&manifest, 3);
    let seen = run_nodes(&manifest, &target, 3, "a");
    assert_eq!(seen.len(), MONITORS);
    for (id, nodes) in &seen {
        assert_eq!(nodes.len(), 1, "{id} checked by nodes {nodes:?}");
        assert_eq!(nodes.first(), Some(&three[id]), "{id}: not where cpra placement said");
    }

    let four = placement(&manifest, 4);
    let seen = run_nodes(&manifest, &target, 4, "b");
    let mut moved = 0;
    for (id, nodes) in &seen {
        assert_eq!(nodes.len(), 1, "{id} checked by nodes {nodes:?}");
        let now = *nodes.first().unwrap();
        assert_eq!(now, four[id], "{id}: not where cpra placement said");
        if now != three[id] {
            assert_eq!(now, 3, "{id} moved from node {} to node {now}, an old node", three[id]);
            moved += 1;
        }
    }
    assert!(moved > 0 && moved < MONITORS, "{moved} of {MONITORS} moved to the fourth node");
}

#[test]
fn placement_names_one_monitors_node_and_refuses_what_is_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("fleet.yaml");
    std::fs::write(
        &manifest,
        "monitors:\n  - name: web 1\n    id: web-1\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(CPRA)
            .args(["placement", manifest.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, _) = run(&["--node-count", "3", "--monitor", "web 1"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, "web 1\tweb-1\tnode 0 of 3\n");
    let (code, out, _) = run(&["--node-count", "3", "--monitor", "web-1"]);
    assert_eq!((code, out.as_str()), (Some(0), "web 1\tweb-1\tnode 0 of 3\n"));
    let (code, _, err) = run(&["--node-count", "3", "--monitor", "db"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no monitor named or with the id 'db'"), "{err}");
    let (code, _, err) = run(&["--node-count", "0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--node-count 0"), "{err}");
}

#[test]
fn run_refuses_an_index_past_the_count_and_an_invalid_manifest_on_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("fleet.yaml");
    std::fs::write(&manifest, "monitors:\n  - name: web\n    pulse_check: {type: htp}\n").unwrap();
    let out = Command::new(CPRA)
        .args(["run", manifest.to_str().unwrap(), "--listen", "none", "--data-dir", "none"])
        .args(["--node-index", "3", "--node-count", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--node-index 3: past the last node of --node-count 3"), "{stderr}");
    // The one monitor is on one node only, yet its error stops every node alike.
    for index in 0..3 {
        let out = Command::new(CPRA)
            .args(["run", manifest.to_str().unwrap(), "--listen", "none", "--data-dir", "none"])
            .args(["--node-index", &index.to_string(), "--node-count", "3"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "node {index}: {stderr}");
        assert!(stderr.contains("monitor 'web'"), "node {index}: {stderr}");
    }
}
