//! The control requests against a real `cpra run` child on loopback: the token (401, 403),
//! a monitor's detail, disable and enable, check now, silence, acknowledge and the incidents.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::ScriptedServer;
use serde_json::Value;

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);
/// How often a test looks again for a condition it waits for (bounded by [`BOUND`]).
const POLL: Duration = Duration::from_millis(50);
const TOKEN: &str = "t0ken-for-the-test";

/// A `cpra run` child, killed and reaped when dropped (also on a failed assertion).
struct Cpra {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Cpra {
    /// Runs `manifest` with the API on a port the system picks; `token`: given through
    /// `CPRA_API_TOKEN`. Without `--data-dir` in `extra`, runs without one.
    fn start(dir: &tempfile::TempDir, manifest: &str, token: Option<&str>, extra: &[&str]) -> Cpra {
        let path = dir.path().join("fleet.yaml");
        std::fs::write(&path, manifest).unwrap();
        let mut command = Command::new(CPRA);
        command
            .args(["run", path.to_str().unwrap(), "--listen", "127.0.0.1:0", "--shards", "2"])
            .args(extra)
            .env_remove("CPRA_API_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(token) = token {
            command.env("CPRA_API_TOKEN", token);
        }
        // Off the default data dir (shared by every test run in this directory, and locked).
        if !extra.contains(&"--data-dir") {
            command.args(["--data-dir", "none"]);
        }
        let mut child = command.spawn().unwrap();
        let (listening, stderr) = support::capture_listening(&mut child, BOUND);
        let mut cpra = Cpra { child, addr: "127.0.0.1:1".parse().unwrap(), stderr };
        match listening {
            Some(addr) => cpra.addr = addr,
            None => panic!("no listen line; stderr:\n{}", cpra.stderr()),
        }
        // Ready, and every shard answering its ring: on a loaded host a shard may take
        // seconds after /readyz to answer its first question (then the API says 503).
        let end = Instant::now() + BOUND;
        while cpra.get("/readyz").0 != 200 || cpra.get("/api/v1/monitors").0 != 200 {
            assert!(Instant::now() < end, "never ready; stderr:\n{}", cpra.stderr());
            std::thread::sleep(POLL);
        }
        cpra
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn request(&self, head: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(BOUND)).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: cpra\r\nConnection: close\r\n\r\n"))
    }

    /// A POST with `body`, and `Authorization: Bearer token` when given.
    fn post_as(&self, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        self.request(&format!(
            "POST {path} HTTP/1.1\r\nHost: cpra\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    }

    /// A POST with the right token that must succeed; its JSON answer.
    fn post(&self, path: &str, body: &str) -> Value {
        let (status, answer) = self.post_as(path, Some(TOKEN), body);
        assert_eq!(status, 200, "{path}: {answer}\n{}", self.stderr());
        serde_json::from_str(&answer).unwrap()
    }

    fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until `pred` holds of `GET path`'s JSON; returns it.
    fn wait_json(&self, path: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + BOUND;
        loop {
            let value = self.get_json(path);
            if pred(&value) {
                return value;
            }
            assert!(Instant::now() < end, "{what}: {value}\n{}", self.stderr());
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

/// An http monitor named `name` on `url`, every 100 ms, with `codes` (YAML flow mapping).
fn http_monitor(name: &str, url: &str, codes: &str) -> String {
    format!(
        "  - name: {name}\n    pulse_check:\n      type: http\n      interval: 100ms\n      timeout: 2s\n      config: {{url: \"{url}\"}}\n    codes: {codes}\n"
    )
}

#[test]
fn writes_need_the_token_and_reads_do_not() {
    let target = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/web", &[], 200));
    let yaml =
        format!("version: \"1\"\nmonitors:\n{}", http_monitor("web", &target.url("/web"), "{}"));
    let dir = tempfile::tempdir().unwrap();

    let open = Cpra::start(&dir, &yaml, None, &[]);
    let (status, body) = open.post_as("/api/v1/monitors/web/disable", Some(TOKEN), "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--api-token-file") && body.contains("CPRA_API_TOKEN"), "{body}");
    assert_eq!(open.get("/api/v1/monitors/web").0, 200, "reads stay open");
    drop(open);

    let guarded = Cpra::start(&dir, &yaml, Some(TOKEN), &[]);
    for token in [None, Some("wrong"), Some("t0ken-for-the-tes")] {
        let (status, body) = guarded.post_as("/api/v1/monitors/web/check", token, "");
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(!body.contains(TOKEN));
    }
    let (status, _) = guarded.post_as("/api/v1/monitors/web/check", Some(TOKEN), "");
    assert_eq!(status, 200);
    assert_eq!(guarded.get("/api/v1/monitors/web/check").0, 405, "a write is a POST");
    assert!(!guarded.stderr().contains(TOKEN), "the token in a log line");
    drop(guarded);

    // From a file, the same; an unreadable file is named and stops the start.
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let from_file = Cpra::start(&dir, &yaml, None, &["--api-token-file", file.to_str().unwrap()]);
    assert_eq!(from_file.post_as("/api/v1/monitors/web/check", Some(TOKEN), "").0, 200);
    assert_eq!(from_file.post_as("/api/v1/monitors/web/check", Some("x"), "").0, 401);
    drop(from_file);
    let missing = dir.path().join("no-such-token");
    let out = Command::new(CPRA)
        .args(["run", dir.path().join("fleet.yaml").to_str().unwrap(), "--listen", "none"])
        .args(["--api-token-file", missing.to_str().unwrap()])
        .args(["--data-dir", "none"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-token") && stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn disable_stops_checks_enable_resumes_them_and_check_now_runs_one() {
    let target = ScriptedServer::start().unwrap();
    target.script(|s| {
        s.statuses("/web", &[], 200);
        s.statuses("/clock", &[], 200);
    });
    let hourly = format!(
        "  - name: hourly\n    pulse_check:\n      type: http\n      interval: 1h\n      timeout: 2s\n      config: {{url: \"{}\"}}\n",
        target.url("/hourly")
    );
    let yaml = format!(
        "version: \"1\"\nmonitors:\n{}{}{hourly}",
        http_monitor("web", &target.url("/web"), "{}"),
        http_monitor("clock", &target.url("/clock"), "{}"),
    );
    let dir = tempfile::tempdir().unwrap();
    let cpra = Cpra::start(&dir, &yaml, Some(TOKEN), &[]);
    target.wait_for(Some("/web"), BOUND, |r| !r.is_empty());

    // The detail: the list's object plus the recent results, newest first.
    let detail = cpra.wait_json("/api/v1/monitors/web", "two results", |v| {
        v["recent"].as_array().is_some_and(|r| r.len() >= 2)
    });
    assert_eq!((detail["id"].as_str(), detail["state"].as_str()), (Some("web"), Some("up")));
    let recent = detail["recent"].as_array().unwrap();
    assert!(recent.len() <= cpra_engine::limits::RECENT_RESULTS);
    assert_eq!(recent[0]["success"], Value::Bool(true));
    assert!(recent[0]["at"].as_str().unwrap() >= recent[1]["at"].as_str().unwrap());
    assert!(recent[0]["kind"].is_null() && recent[0]["latency_ms"].is_number());
    assert_eq!(cpra.get("/api/v1/monitors/nope").0, 404);
    assert_eq!(cpra.post_as("/api/v1/monitors/nope/disable", Some(TOKEN), "").0, 404);

    // Disabled: answered with the new state, counted as disabled, and no longer checked
    // (at most the check in flight when it was disabled ends), while another monitor goes on.
    let state = cpra.post("/api/v1/monitors/web/disable", "");
    assert_eq!(state["state"], "disabled");
    let at_disable = target.requests(Some("/web")).len();
    let clock_at_disable = target.requests(Some("/clock")).len();
    target.wait_for(Some("/clock"), BOUND, |r| r.len() >= clock_at_disable + 10);
    let after = target.requests(Some("/web")).len();
    assert!(after <= at_disable + 1, "checked while disabled: {at_disable} -> {after}");
    let list = cpra.get_json("/api/v1/monitors?state=disabled");
    assert_eq!(list["total"], 1, "{list}");
    let end = Instant::now() + BOUND;
    while !cpra.get("/metrics").1.contains("cpra_monitors{state=\"disabled\"} 1") {
        assert!(Instant::now() < end, "disabled not counted in /metrics");
        std::thread::sleep(POLL);
    }
    assert_eq!(cpra.post_as("/api/v1/monitors/web/check", Some(TOKEN), "").0, 409);

    // Enabled: checked again.
    assert_ne!(cpra.post("/api/v1/monitors/web/enable", "")["state"], "disabled");
    target.wait_for(Some("/web"), BOUND, |r| r.len() >= after + 3);

    // Check now: the hourly monitor is asked at once.
    let before = target.requests(Some("/hourly")).len();
    cpra.post("/api/v1/monitors/hourly/check", "");
    let seen = target.wait_for(Some("/hourly"), BOUND, |r| r.len() > before);
    assert!(seen.len() > before, "check now sent no request");
}

#[test]
fn a_silence_holds_alerts_back_and_an_ack_shows_in_the_incidents() {
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/web", &[], 200));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let alerts = receiver.url("/alerts");
    let hook = format!("{{notify: webhook, config: {{url: \"{alerts}\"}}}}");
    let codes = format!("{{yellow: {hook}, red: {hook}, cyan: {hook}, green: {hook}}}");
    let yaml =
        format!("version: \"1\"\nmonitors:\n{}", http_monitor("web", &target.url("/web"), &codes));
    let dir = tempfile::tempdir().unwrap();
    let cpra = Cpra::start(&dir, &yaml, Some(TOKEN), &[]);

    let (status, body) = cpra.post_as("/api/v1/monitors/web/silence", Some(TOKEN), "{}");
    assert_eq!(status, 400, "{body}");
    let silenced = cpra.post("/api/v1/monitors/web/silence", r#"{"for":"1h"}"#);
    assert!(silenced["silenced_until"].is_string(), "{silenced}");

    // Down while silenced: the incident opens, its alerts are held back (logged), none sent.
    target.script(|s| s.statuses("/web", &[], 503));
    let down = cpra
        .wait_json("/api/v1/monitors/web", "an open incident", |v| v["incident_id"].is_string());
    let incident = down["incident_id"].as_str().unwrap().to_string();
    let end = Instant::now() + BOUND;
    while !cpra.stderr().contains("alert held back") {
        assert!(Instant::now() < end, "no alert held back:\n{}", cpra.stderr());
        std::thread::sleep(POLL);
    }
    assert!(receiver.requests(Some("/alerts")).is_empty(), "an alert sent while silenced");
    let end = Instant::now() + BOUND;
    let held = "cpra_alerts_total{colour=\"red\",outcome=\"silenced\"} 1";
    while !cpra.get("/metrics").1.contains(held) {
        assert!(Instant::now() < end, "the held red not counted:\n{}", cpra.get("/metrics").1);
        std::thread::sleep(POLL);
    }

    // Unsilenced: the incident is listed open; acknowledged, it says by whom, and the cyan
    // code's notifier is told.
    let lifted = cpra.post("/api/v1/monitors/web/unsilence", "");
    assert!(lifted["silenced_until"].is_null());
    let open = cpra.get_json("/api/v1/incidents?open=true");
    assert_eq!(open["incidents"][0]["id"], incident.as_str(), "{open}");
    assert!(open["incidents"][0]["acknowledged_by"].is_null());
    assert_eq!(open["total"], 1, "{open}");
    // The answer is bounded: `limit` rows at most, `total` says how many matched.
    let none_closed = cpra.get_json("/api/v1/incidents?open=false&limit=1");
    assert_eq!(none_closed["incidents"].as_array().map(Vec::len), Some(0), "{none_closed}");
    assert_eq!(cpra.get("/api/v1/incidents?limit=0").0, 400);
    let escaped = incident.replace('#', "%23");
    let acked = cpra.post(&format!("/api/v1/incidents/{escaped}/ack"), r#"{"by":"alice"}"#);
    assert_eq!(acked["acknowledged_by"], "alice");
    let open = cpra.get_json("/api/v1/incidents?open=true");
    assert_eq!(open["incidents"][0]["acknowledged_by"], "alice", "{open}");
    assert_eq!(cpra.post_as("/api/v1/incidents/web%23999/ack", Some(TOKEN), "").0, 409);
    assert_eq!(cpra.post_as("/api/v1/incidents/nope%231/ack", Some(TOKEN), "").0, 404);
    let sent = receiver.wait_for(Some("/alerts"), BOUND, |r| !r.is_empty());
    assert_eq!(sent.len(), 1, "only the acknowledgement");
    let body = sent[0].body_str();
    assert!(body.contains("ACKNOWLEDGED") && body.contains("alice"), "{body}");

    // Recovered: the green goes out (the episode was announced, if held back), and the
    // incident is closed.
    target.script(|s| s.statuses("/web", &[], 200));
    let sent = receiver.wait_for(Some("/alerts"), BOUND, |r| r.len() >= 2);
    assert!(sent.len() >= 2, "no alert after the silence:\n{}", cpra.stderr());
    assert!(sent[1].body_str().contains("RECOVER"), "{}", sent[1].body_str());
    let closed = cpra.wait_json("/api/v1/incidents?open=false", "a closed incident", |v| {
        v["incidents"].as_array().is_some_and(|a| !a.is_empty())
    });
    assert_eq!(closed["incidents"][0]["id"], incident.as_str());
    assert!(closed["incidents"][0]["closed_at"].is_string());
    assert_eq!(closed["incidents"][0]["acknowledged_by"], "alice");
}

#[test]
fn disable_silence_and_ack_survive_a_kill_through_the_journal() {
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    target.script(|s| {
        s.statuses("/off", &[], 200);
        s.statuses("/quiet", &[], 200);
        s.statuses("/down", &[], 503);
    });
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let hook = format!("{{notify: webhook, config: {{url: \"{}\"}}}}", receiver.url("/alerts"));
    let codes = format!("{{red: {hook}, cyan: {hook}}}");
    let yaml = format!(
        "version: \"1\"\nmonitors:\n{}{}{}",
        http_monitor("off", &target.url("/off"), "{}"),
        http_monitor("quiet", &target.url("/quiet"), &codes),
        http_monitor("down", &target.url("/down"), &codes),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--data-dir", data.to_str().unwrap()];

    let cpra = Cpra::start(&dir, &yaml, Some(TOKEN), &args);
    let down = cpra
        .wait_json("/api/v1/monitors/down", "an open incident", |v| v["incident_id"].is_string());
    let incident = down["incident_id"].as_str().unwrap().to_string();
    assert_eq!(cpra.post("/api/v1/monitors/off/disable", "")["state"], "disabled");
    let silenced = cpra.post("/api/v1/monitors/quiet/silence", r#"{"for":"1h"}"#);
    let until = silenced["silenced_until"].as_str().unwrap().to_string();
    let escaped = incident.replace('#', "%23");
    let acked = cpra.post(&format!("/api/v1/incidents/{escaped}/ack"), r#"{"by":"alice"}"#);
    assert_eq!(acked["acknowledged_by"], "alice");
    // Answered means durable: killed at once, with SIGKILL.
    drop(cpra);
    let off_at_kill = target.requests(Some("/off")).len();

    let cpra = Cpra::start(&dir, &yaml, Some(TOKEN), &args);
    // Disabled: shown and counted as such.
    assert_eq!(cpra.get_json("/api/v1/monitors/off")["state"], "disabled");
    assert_eq!(cpra.get_json("/api/v1/monitors?state=disabled")["total"], 1);
    let end = Instant::now() + BOUND;
    while !cpra.get("/metrics").1.contains("cpra_monitors{state=\"disabled\"} 1") {
        assert!(Instant::now() < end, "disabled not counted in /metrics");
        std::thread::sleep(POLL);
    }
    // Silenced until the same time.
    assert_eq!(cpra.get_json("/api/v1/monitors/quiet")["silenced_until"], until.as_str());
    // The incident goes on, still acknowledged, listed open once.
    let open = cpra.get_json("/api/v1/incidents?open=true");
    let incidents = open["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{open}");
    assert_eq!(incidents[0]["id"], incident.as_str());
    assert_eq!(incidents[0]["acknowledged_by"], "alice", "{open}");
    assert!(incidents[0]["opened_at"].is_string(), "{open}");
    let down = cpra.wait_json("/api/v1/monitors/down", "checked after the restart", |v| {
        v["last_check"].is_string()
    });
    assert_eq!(down["incident_id"], incident.as_str());
    // A second ack of it is not news (no second acknowledgement sent).
    let again = cpra.post(&format!("/api/v1/incidents/{escaped}/ack"), r#"{"by":"bob"}"#);
    assert_eq!(again["acknowledged_by"], "alice");

    // The silence holds: 'quiet' goes down, its alerts are held back.
    let quiet_alerts = |r: &ScriptedServer| {
        r.requests(Some("/alerts")).iter().filter(|q| q.body_str().contains("quiet")).count()
    };
    assert_eq!(quiet_alerts(&receiver), 0);
    target.script(|s| s.statuses("/quiet", &[], 503));
    cpra.wait_json("/api/v1/monitors/quiet", "quiet's incident", |v| v["incident_id"].is_string());
    let end = Instant::now() + BOUND;
    while !cpra.stderr().contains("alert held back") {
        assert!(Instant::now() < end, "no alert held back:\n{}", cpra.stderr());
        std::thread::sleep(POLL);
    }
    // The disabled monitor's target heard nothing since the kill, while the others were
    // checked many times.
    let quiet_now = target.requests(Some("/quiet")).len();
    target.wait_for(Some("/quiet"), BOUND, |r| r.len() >= quiet_now + 10);
    assert_eq!(target.requests(Some("/off")).len(), off_at_kill, "checked while disabled");
    assert_eq!(quiet_alerts(&receiver), 0, "an alert sent while silenced");
}
