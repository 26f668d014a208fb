//! Hot reload against a real `cpra run` child on loopback: by `POST /api/v1/reload` and by
//! SIGHUP, adding, removing and changing monitors, leaving a down one unchanged (no second
//! page), and refusing a bad manifest while the old fleet runs on; the reload is a write,
//! so it needs the API token; a monitor added in a removed one's slot inherits nothing of it,
//! and a restart on the same data dir does not bring back an incident a reload closed.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::{Recorded, ScriptedServer};

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
const TOKEN: &str = "t0ken-for-the-reload-test";

/// A `cpra run` child, killed and reaped when dropped (also on a failed assertion).
struct Cpra {
    child: Child,
    addr: SocketAddr,
    manifest: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl Cpra {
    /// Runs `manifest` (written to `dir/fleet.yaml`) with its journal in `dir/data`, the API
    /// on a port the system picks and [`TOKEN`] as its token.
    fn start(dir: &tempfile::TempDir, manifest: &str, shards: usize) -> Cpra {
        let path = dir.path().join("fleet.yaml");
        std::fs::write(&path, manifest).unwrap();
        Cpra::run(&path, &dir.path().join("data"), shards)
    }

    /// Runs the manifest at `path` as it is, with its journal in `data`.
    fn run(path: &Path, data: &Path, shards: usize) -> Cpra {
        let mut child = Command::new(CPRA)
            .args(["run", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(["--data-dir", data.to_str().unwrap()])
            .args(["--shards", &shards.to_string()])
            .env("CPRA_API_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (listening, stderr) = support::capture_listening(&mut child, BOUND);
        let manifest = path.to_path_buf();
        let mut cpra = Cpra { child, addr: "127.0.0.1:1".parse().unwrap(), manifest, stderr };
        match listening {
            Some(addr) => cpra.addr = addr,
            None => panic!("no listen line; stderr:\n{}", cpra.stderr()),
        }
        // Ready, and every shard answering its ring (a loaded host may take seconds more).
        let end = Instant::now() + BOUND;
        while request(cpra.addr, "GET", "/readyz").0 != 200
            || request(cpra.addr, "GET", "/api/v1/monitors").0 != 200
        {
            assert!(Instant::now() < end, "never ready; stderr:\n{}", cpra.stderr());
            std::thread::sleep(POLL);
        }
        cpra
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn rewrite(&self, manifest: &str) {
        // Written beside and renamed, as an editor or a deploy does: never read half-written.
        let tmp = self.manifest.with_extension("new");
        std::fs::write(&tmp, manifest).unwrap();
        std::fs::rename(&tmp, &self.manifest).unwrap();
    }

    fn post_reload(&self) -> (u16, serde_json::Value) {
        self.post("/api/v1/reload", "")
    }

    /// A POST with the token and `body`; its status and JSON answer.
    fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, body) = request_as(self.addr, "POST", path, Some(TOKEN), body);
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{e}: {body}; stderr:\n{}", self.stderr()));
        (status, json)
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = request(self.addr, "GET", path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Stops the run as a service manager does (SIGTERM) and waits for it to exit.
    fn stop(mut self) {
        // SAFETY: kill(2) takes no pointers; the pid is our child, not yet reaped (waited for
        // below), so it cannot name another process.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "a graceful stop exits 0:\n{}", self.stderr());
    }

    fn hangup(&self) {
        // SAFETY: kill(2) takes no pointers; the pid is our child, not yet reaped (Drop
        // reaps it), so it cannot have been reused.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) }, 0);
    }

    /// Waits until stderr has `n` lines containing `what`.
    fn wait_log(&self, what: &str, n: usize) {
        let end = Instant::now() + BOUND;
        while self.stderr().matches(what).count() < n {
            assert!(Instant::now() < end, "no {what:?} in stderr:\n{}", self.stderr());
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

fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    request_as(addr, method, path, None, "")
}

/// A request with `Authorization: Bearer token` when given.
fn request_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: cpra\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// An http monitor `name` checking `target` at `path` every 100 ms, paging every colour to
/// `receiver/alerts`.
fn monitor(name: &str, target: &ScriptedServer, path: &str, receiver: &ScriptedServer) -> String {
    let alerts = receiver.url("/alerts");
    format!(
        r#"  - name: {name}
    pulse_check:
      type: http
      interval: 100ms
      timeout: 2s
      unhealthy_threshold: 1
      healthy_threshold: 1
      config: {{url: "{url}"}}
    codes:
      red: {{notify: webhook, config: {{url: "{alerts}"}}}}
      green: {{notify: webhook, config: {{url: "{alerts}"}}}}
"#,
        url = target.url(path),
    )
}

fn manifest(monitors: &[String]) -> String {
    format!("version: \"1\"\nmonitors:\n{}", monitors.concat())
}

/// Waits until `path` got `n` more requests than it has now (bounded).
fn more_checks(target: &ScriptedServer, path: &str, n: usize) {
    let before = target.requests(Some(path)).len();
    let seen = target.wait_for(Some(path), BOUND, |r| r.len() >= before + n);
    assert!(seen.len() >= before + n, "{path}: {} checks, wanted {before} + {n}", seen.len());
}

/// The colours delivered for `monitor`, in order.
fn colours(receiver: &ScriptedServer, monitor: &str) -> Vec<String> {
    colours_in(&receiver.requests(Some("/alerts")), monitor)
}

fn colours_in(requests: &[Recorded], monitor: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|x| (200..300).contains(&x.status))
        .filter_map(|x| serde_json::from_slice::<serde_json::Value>(&x.body).ok())
        .filter(|v| v["monitor"] == monitor)
        .map(|v| v["color"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn servers() -> (ScriptedServer, ScriptedServer) {
    let (target, receiver) = (ScriptedServer::start().unwrap(), ScriptedServer::start().unwrap());
    target.script(|s| {
        for path in ["/keep", "/v1", "/v2", "/new", "/sighup"] {
            s.statuses(path, &[], 200);
        }
        s.statuses("/down", &[], 500);
        s.statuses("/gone", &[], 500);
    });
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    (target, receiver)
}

/// After `reload`, a monitor that no longer exists gets at most the check already under way
/// and then nothing: `path`'s count is the same across five checks of a kept monitor.
fn stopped(target: &ScriptedServer, path: &str) {
    more_checks(target, "/keep", 3);
    let settled = target.requests(Some(path)).len();
    more_checks(target, "/keep", 5);
    assert_eq!(target.requests(Some(path)).len(), settled, "{path} still checked");
}

#[test]
fn post_reload_adds_removes_and_changes_and_keeps_a_down_monitor_paged_once() {
    let (target, receiver) = servers();
    let dir = tempfile::tempdir().unwrap();
    let old = manifest(&[
        monitor("keep", &target, "/keep", &receiver),
        monitor("gone", &target, "/gone", &receiver),
        monitor("moving", &target, "/v1", &receiver),
        monitor("down", &target, "/down", &receiver),
    ]);
    // Two shards: orders are routed by id hash, as at start.
    let cpra = Cpra::start(&dir, &old, 2);
    // Both failing monitors paged red once.
    receiver.wait_for(Some("/alerts"), BOUND, |r| {
        colours_in(r, "down") == ["red"] && colours_in(r, "gone") == ["red"]
    });
    assert_eq!(colours(&receiver, "down"), ["red"], "stderr:\n{}", cpra.stderr());
    more_checks(&target, "/v1", 1);

    // `new` added (first in the file, so every kept monitor moves), `gone` removed, `moving`
    // changed (new path), `keep` and `down` as they were.
    cpra.rewrite(&manifest(&[
        monitor("new", &target, "/new", &receiver),
        monitor("keep", &target, "/keep", &receiver),
        monitor("moving", &target, "/v2", &receiver),
        monitor("down", &target, "/down", &receiver),
    ]));
    let (status, answer) = cpra.post_reload();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, serde_json::json!({"added": 1, "removed": 1, "changed": 1, "unchanged": 2}));
    // Added: its target starts receiving checks. Changed: the new path is requested.
    more_checks(&target, "/new", 3);
    more_checks(&target, "/v2", 3);
    // Removed, and the changed monitor's old path: no longer requested.
    stopped(&target, "/gone");
    stopped(&target, "/v1");
    // The removed monitor's incident closed silently (logged, no green sent).
    cpra.wait_log("incident closed silently", 1);
    assert_eq!(colours(&receiver, "gone"), ["red"]);
    // Unchanged and still down: checked on, never paged again.
    more_checks(&target, "/down", 5);
    assert_eq!(colours(&receiver, "down"), ["red"], "re-paged after the reload");
    // The list shows the new fleet.
    let (_, list) = request(cpra.addr, "GET", "/api/v1/monitors");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let mut ids: Vec<&str> =
        list["monitors"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["down", "keep", "moving", "new"]);
    // A write: without the token (or with a wrong one) nothing is reloaded.
    assert_eq!(request(cpra.addr, "POST", "/api/v1/reload").0, 401);
    assert_eq!(request_as(cpra.addr, "POST", "/api/v1/reload", Some("wrong"), "").0, 401);
    // GET is not a reload.
    assert_eq!(request(cpra.addr, "GET", "/api/v1/reload").0, 405);
}

#[test]
fn sighup_reloads_and_a_bad_manifest_is_refused_while_the_old_fleet_runs_on() {
    let (target, receiver) = servers();
    let dir = tempfile::tempdir().unwrap();
    let keep = monitor("keep", &target, "/keep", &receiver);
    let cpra = Cpra::start(&dir, &manifest(std::slice::from_ref(&keep)), 1);
    more_checks(&target, "/keep", 1);

    // SIGHUP adds a monitor.
    cpra.rewrite(&manifest(&[keep.clone(), monitor("added", &target, "/sighup", &receiver)]));
    cpra.hangup();
    cpra.wait_log("manifest reloaded", 1);
    more_checks(&target, "/sighup", 3);

    // A bad manifest: by POST, 400 with the problem's place; by SIGHUP, logged. Nothing
    // changes: both monitors go on being checked.
    let bad = format!(
        "{}  - name: broken\n    pulse_check:\n      type: nonsense\n      config: {{}}\n",
        manifest(std::slice::from_ref(&keep))
    );
    cpra.rewrite(&bad);
    let (status, answer) = cpra.post_reload();
    assert_eq!(status, 400, "{answer}");
    let problems = answer["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    let first = &problems[0];
    assert!(first["file"].as_str().unwrap().ends_with("fleet.yaml"), "{answer}");
    assert!(first["line"].as_u64().unwrap() > 0, "{answer}");
    assert!(first["column"].as_u64().is_some(), "{answer}");
    assert!(first["message"].as_str().unwrap().contains("broken"), "{answer}");
    cpra.hangup();
    cpra.wait_log("reload refused", 1);
    more_checks(&target, "/keep", 3);
    more_checks(&target, "/sighup", 3);
}

/// A monitor silenced, down with an open incident, then removed by a reload; another added by
/// a second reload takes its slot on the one shard and inherits nothing: no silence, no
/// results, no incident. Restarted on the same data dir with the removed monitor back in the
/// file, its old incident stays closed: the monitor, still down, opens a new one and pages.
#[test]
fn a_reused_slot_starts_clean_and_a_removed_monitors_incident_stays_closed_after_a_restart() {
    let (target, receiver) = servers();
    let dir = tempfile::tempdir().unwrap();
    let keep = monitor("keep", &target, "/keep", &receiver);
    let old = manifest(&[keep.clone(), monitor("old", &target, "/down", &receiver)]);
    let cpra = Cpra::start(&dir, &old, 1);
    receiver.wait_for(Some("/alerts"), BOUND, |r| colours_in(r, "old") == ["red"]);
    let (status, silenced) = cpra.post("/api/v1/monitors/old/silence", r#"{"for":"1h"}"#);
    assert_eq!(status, 200, "{silenced}");
    assert!(silenced["silenced_until"].is_string(), "{silenced}");
    let before = cpra.get("/api/v1/monitors/old");
    assert_eq!(before["incident_id"], "old#1", "{before}");
    assert!(!before["recent"].as_array().unwrap().is_empty(), "{before}");

    cpra.rewrite(&manifest(std::slice::from_ref(&keep)));
    let (status, answer) = cpra.post_reload();
    assert_eq!((status, answer["removed"].as_u64()), (200, Some(1)), "{answer}");
    stopped(&target, "/down");
    cpra.rewrite(&manifest(&[keep.clone(), monitor("fresh", &target, "/new", &receiver)]));
    let (status, answer) = cpra.post_reload();
    assert_eq!((status, answer["added"].as_u64()), (200, Some(1)), "{answer}");
    let seen = target.wait_for(Some("/new"), BOUND, |r| r.len() >= 3);
    assert!(seen.len() >= 3, "the added monitor is not checked; stderr:\n{}", cpra.stderr());

    let fresh = cpra.get("/api/v1/monitors/fresh");
    assert_eq!(fresh["state"], "up", "{fresh}");
    assert!(fresh["silenced_until"].is_null(), "the old monitor's silence leaked: {fresh}");
    assert!(fresh["incident_id"].is_null(), "{fresh}");
    let recent = fresh["recent"].as_array().unwrap();
    assert!(!recent.is_empty(), "{fresh}");
    // The old monitor only ever failed; every result shown is the new one's success.
    assert!(recent.iter().all(|r| r["success"] == true), "the old results leaked: {fresh}");
    let incidents = cpra.get("/api/v1/incidents");
    let listed = incidents["incidents"].as_array().unwrap();
    assert!(listed.iter().all(|i| i["monitor"] != "fresh"), "{incidents}");
    assert!(
        listed.iter().all(|i| i["closed_at"].is_string()),
        "an incident left open: {incidents}"
    );
    assert_eq!(colours(&receiver, "fresh"), Vec::<String>::new(), "stderr:\n{}", cpra.stderr());
    let path = cpra.manifest.clone();
    cpra.stop();

    // The removed monitor is back in the file and still down: its incident was closed by the
    // reload, so a new one opens and pages red, instead of the old one going on silently (as
    // an open incident does across a restart, tests/journal.rs). The journal forgot the
    // removed monitor's state, silence and cooldowns (`Record::Removed`); its incident numbers
    // go on, so no id is used twice.
    std::fs::write(&path, &old).unwrap();
    let cpra = Cpra::run(&path, &dir.path().join("data"), 1);
    receiver.wait_for(Some("/alerts"), BOUND, |r| colours_in(r, "old").len() >= 2);
    assert_eq!(colours(&receiver, "old"), ["red", "red"], "stderr:\n{}", cpra.stderr());
    let back = cpra.get("/api/v1/monitors/old");
    assert_eq!(
        (&back["state"], back["silenced_until"].is_null()),
        (&"down".into(), true),
        "{back}"
    );
    let open = cpra.get("/api/v1/incidents?open=true");
    assert_eq!(open["incidents"].as_array().unwrap().len(), 1, "{open}");
}

/// A monitor removed by a reload and added back by another in the same run goes on numbering
/// its incidents: its next incident is `old#2`, never `old#1` again (a paging service may
/// still hold that one open under its dedup key).
#[test]
fn a_monitor_added_back_in_the_same_run_does_not_reuse_an_incident_id() {
    let (target, receiver) = servers();
    let dir = tempfile::tempdir().unwrap();
    let keep = monitor("keep", &target, "/keep", &receiver);
    let old = monitor("old", &target, "/down", &receiver);
    let cpra = Cpra::start(&dir, &manifest(&[keep.clone(), old.clone()]), 1);
    receiver.wait_for(Some("/alerts"), BOUND, |r| colours_in(r, "old") == ["red"]);
    cpra.rewrite(&manifest(std::slice::from_ref(&keep)));
    let (status, answer) = cpra.post_reload();
    assert_eq!((status, answer["removed"].as_u64()), (200, Some(1)), "{answer}");
    cpra.rewrite(&manifest(&[keep, old]));
    let (status, answer) = cpra.post_reload();
    assert_eq!((status, answer["added"].as_u64()), (200, Some(1)), "{answer}");
    let seen = receiver.wait_for(Some("/alerts"), BOUND, |r| colours_in(r, "old").len() >= 2);
    let reds: Vec<String> = seen
        .iter()
        .filter(|x| (200..300).contains(&x.status))
        .filter_map(|x| serde_json::from_slice::<serde_json::Value>(&x.body).ok())
        .filter(|v| v["monitor"] == "old" && v["color"] == "red")
        .map(|v| v["incident_id"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(reds, ["old#1", "old#2"], "stderr:\n{}", cpra.stderr());
}
