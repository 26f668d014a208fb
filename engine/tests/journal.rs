//! The journal across crashes and restarts: a real `cpra run` child, killed with SIGKILL (or
//! stopped with SIGTERM) at chosen moments and started again on the same data dir, against a
//! real target and a real webhook receiver on loopback.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::{Recorded, Route, ScriptedServer, Scripts};

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
        Run::spawn(manifest, data, shards, cooldown, None)
    }

    /// As [`Run::start`], its log (JSON lines) written to `log`.
    fn start_logged(
        manifest: &std::path::Path,
        data: &std::path::Path,
        log: &std::path::Path,
    ) -> Run {
        Run::spawn(manifest, data, 1, "1s", Some(log))
    }

    fn spawn(
        manifest: &std::path::Path,
        data: &std::path::Path,
        shards: usize,
        cooldown: &str,
        log: Option<&std::path::Path>,
    ) -> Run {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let child = Command::new(CPRA)
            .args(["run", manifest.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
            .args(["--shards", &shards.to_string(), "--grace", "5s", "--listen", "none"])
            .args(["--cooldown", cooldown, "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(stderr)
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
        .map(|r| colour_and_id(r.body_str()))
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

/// The incident ids a run opened, from its JSON log ("incident opened" lines).
fn opened_in(log: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut ids = Vec::new();
    for line in text.lines() {
        // A SIGKILL may cut the last line short.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let fields = &v["fields"];
        if fields["message"] == "incident opened" {
            let monitor = fields["monitor"].as_str().unwrap();
            ids.push(format!("{monitor}#{}", fields["incident_seq"]));
        }
    }
    ids
}

/// The colour and incident id of a webhook request's body.
fn colour_and_id(body: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_owned();
    (s("color"), s("incident_id"))
}

/// Every incident id of `monitor` in `got`, by number.
fn seqs_of(monitor: &str, got: &[(String, String)]) -> std::collections::BTreeSet<u32> {
    let prefix = format!("{monitor}#");
    got.iter().filter_map(|(_, id)| id.strip_prefix(&prefix)?.parse().ok()).collect()
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
    // The receiver refuses the first attempt of every red (503: retried), so each red has to
    // be delivered by a retry, in the same run or, if a kill comes first, after the restart.
    let mut refused = std::collections::HashSet::new();
    receiver.script(|s| {
        s.set(
            "/alerts",
            Route::Hook(Box::new(move |request: &Recorded, _: &mut Scripts| {
                let (colour, id) = colour_and_id(request.body_str());
                if colour == "red" && refused.insert(id) {
                    503
                } else {
                    200
                }
            })),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&dir, &names, &target, &receiver);
    let data = dir.path().join("data");

    // Per run: what the receiver had got before it started, and the incidents it opened.
    let mut runs = Vec::new();
    for kill in 0..KILLS {
        let before = receiver.requests(Some("/alerts"));
        let log = dir.path().join(format!("run-{kill}.log"));
        let run = Run::start_logged(&path, &data, &log);
        // A different moment each time: after 1 to 4 new requests to the receiver.
        let wait = 1 + kill % 4;
        wait_until("alerts", || receiver.requests(Some("/alerts")).len() >= before.len() + wait);
        run.signal(libc::SIGKILL);
        runs.push((alerts(&before, false), opened_in(&log)));
    }
    // The last run sees the fleet healthy.
    for n in names {
        target.script(|s| s.statuses(&format!("/{n}"), &[], 200));
    }
    let run = Run::start(&path, &data, 1);
    for n in names {
        more_checks(&target, n, 5);
    }
    // Every incident that got a yellow or a red gets a green for that id, and every alert the
    // receiver refused is delivered in the end (the last of them may still be on their way).
    let done = |got: &[(String, String)], tried: &[(String, String)]| {
        let announced = got.iter().filter(|(c, _)| c == "yellow" || c == "red");
        announced.clone().all(|(_, id)| got.contains(&pair("green", id)))
            && tried.iter().all(|a| got.contains(a))
    };
    let tried = || alerts(&receiver.requests(Some("/alerts")), false);
    let end = Instant::now() + BOUND;
    while !done(&delivered(&receiver), &tried()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (got, tried) = (delivered(&receiver), tried());
    let refusals = receiver.requests(Some("/alerts")).iter().filter(|r| r.status == 503).count();
    drop(run);
    for (colour, id) in got.iter().filter(|(c, _)| c == "yellow" || c == "red") {
        assert!(got.contains(&pair("green", id)), "{colour} {id} without its green: {got:?}");
    }
    // Each red delivered at least once: every red was refused once, so this is each red
    // retried until it got through, across the kills.
    for a in &tried {
        assert!(got.contains(a), "{a:?} was tried but never delivered: {got:?}");
    }
    let reds = got.iter().filter(|(c, _)| c == "red").count();
    assert!(reds > 0, "no incident opened: the test proves nothing");
    assert!(refusals > 0, "no red was refused: the test proves nothing");
    // No id reused: a run never opens an incident under an id whose red or green the receiver
    // already had (a red means that incident was opened and kept; a green, that it ended).
    // (A run may open an id it opened before the kill when that opening was not yet durable:
    // nothing of it had reached the receiver, so the id names one incident there.)
    for (k, (before, opened)) in runs.iter().enumerate() {
        for id in opened {
            let seen = before.iter().find(|(c, i)| i == id && (c == "red" || c == "green"));
            assert!(seen.is_none(), "run {k} opened {id} again after the receiver got {seen:?}");
        }
    }
    // Ids per monitor are consecutive from 1: none skipped, so none swallowed by a cooldown.
    for n in names {
        let seqs = seqs_of(n, &got);
        let want: std::collections::BTreeSet<u32> = (1..=seqs.len() as u32).collect();
        assert_eq!(seqs, want, "{n}: ids not consecutive from 1: {got:?}");
    }
}
