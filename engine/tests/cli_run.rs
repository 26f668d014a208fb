//! `cpra run` as a user runs it: the real binary, real files, a real receiver on loopback.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::{Route, ScriptedServer};

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_invalid_manifest_is_refused_with_its_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "bad.yaml",
        "version: \"1\"\nmonitors:\n  - name: web\n    pulse_check:\n      type: htp\n      config: {url: \"http://127.0.0.1:1/\"}\n",
    );
    let out = Command::new(CPRA)
        .args(["run", path.to_str().unwrap(), "--duration", "1s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.yaml: monitor 'web'") && stderr.contains("line 5"), "{stderr}");
    assert!(stderr.contains("not starting"), "{stderr}");
}

#[test]
fn a_missing_file_is_exit_2() {
    let out = Command::new(CPRA).args(["run", "/nonexistent/cpra.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn sigterm_during_a_burst_of_alerts_delivers_them_before_exit() {
    const N: usize = 20;
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    // Slow enough that the burst is still being delivered when SIGTERM comes.
    receiver.script(|s| {
        s.set("/alerts", Route::Slow { delay: Duration::from_millis(500), status: 200 })
    });
    let mut yaml = String::from("version: \"1\"\nmonitors:\n");
    for i in 0..N {
        target.script(|s| s.statuses(&format!("/m{i}"), &[], 503));
        yaml.push_str(&format!(
            "  - name: m{i}\n    pulse_check:\n      type: http\n      interval: 50ms\n      timeout: 1s\n      config: {{url: \"{}\", retries: 0}}\n    codes:\n      red: {{notify: webhook, config: {{url: \"{}\"}}}}\n",
            target.url(&format!("/m{i}")),
            receiver.url("/alerts")
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "fleet.yaml", &yaml);
    let child = Command::new(CPRA)
        .args([
            "run",
            path.to_str().unwrap(),
            "--shards",
            "1",
            "--grace",
            "20s",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every monitor has failed at least once: its red is queued (unhealthy defaults to 1).
    let end = Instant::now() + BOUND;
    for i in 0..N {
        target.wait_for(
            Some(&format!("/m{i}")),
            end.saturating_duration_since(Instant::now()),
            |r| !r.is_empty(),
        );
    }
    let at_signal = receiver.requests(Some("/alerts")).len();
    // SAFETY: kill(2) takes no pointers. The pid is our child, not yet reaped (it is waited
    // for below), so it cannot have been reused by another process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let delivered = receiver.requests(Some("/alerts"));
    assert!(at_signal < N, "the burst was delivered before the signal: the test proves nothing");
    assert_eq!(delivered.len(), N, "{stderr}");
    assert!(stderr.contains("\"level\":\"INFO\""), "json logs: {stderr}");
}

#[test]
fn a_monitor_the_engine_cannot_run_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "unrunnable.yaml",
        "version: \"1\"\nmonitors:\n  - name: web\n    pulse_check:\n      type: http\n      config: {url: \"http://127.0.0.1:99999/\"}\n",
    );
    let out = Command::new(CPRA)
        .args(["run", path.to_str().unwrap(), "--duration", "1s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unrunnable.yaml:3: monitor web") && stderr.contains("port"),
        "{stderr}"
    );
}

#[test]
fn a_short_run_stops_by_itself_and_reports() {
    let target = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/ok", &[], 200));
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "ok.yaml",
        &format!(
            "version: \"1\"\nmonitors:\n  - name: web\n    pulse_check:\n      type: http\n      interval: 50ms\n      timeout: 40ms\n      config: {{url: \"{}\"}}\n",
            target.url("/ok")
        ),
    );
    let out = Command::new(CPRA)
        .args(["run", path.to_str().unwrap(), "--duration", "3s", "--shards", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The final status line and summary (how many checks ran depends on the machine's load).
    assert!(stderr.contains("monitors 1 up "), "{stderr}");
    assert!(stderr.contains("stopped: ") && stderr.contains("0 undelivered"), "{stderr}");
}
