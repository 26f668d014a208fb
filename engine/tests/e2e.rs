//! End to end: the real engine (runtime, shards, state machine, actions) against real
//! loopback servers. A scripted HTTP target answers per path; a receiver records every
//! notification and intervention. Intervals are tens of ms; every wait is bounded (a bound
//! for a broken test, never a timing assertion).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpra_engine::demo::scripted::{Recorded, Route, ScriptedServer};
use cpra_engine::manifest::{load_str, LoadOptions};
use cpra_engine::plan::{start_plan, Plan, PlanConfig, RunningPlan};
use cpra_engine::runtime::RuntimeConfig;
use cpra_engine::shard::WallClock;

/// Longest any wait below may take before the test gives up: far beyond what the runs
/// need (tens of checks of tens of ms, alert retries of a few seconds).
const BOUND: Duration = Duration::from_secs(40);
const INTERVAL: &str = "20ms";

struct Run {
    running: Option<RunningPlan>,
    /// (monitor name, colour) of every alert queued, in order.
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Run {
    fn start(yaml: &str, max_in_flight: u32, wall_clock: Option<WallClock>) -> Run {
        let (monitors, report) = load_str(yaml, None, &LoadOptions::default());
        assert!(report.is_valid(), "{:?}", report.problems.kept);
        let plan = Arc::new(Plan { monitors, registry: report.registry });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let observer = {
            let seen = seen.clone();
            Arc::new(move |a: &cpra_engine::alert::RenderedAlert| {
                seen.lock().unwrap().push((a.monitor.clone(), a.colour.as_str().to_string()));
            })
        };
        let config = PlanConfig {
            runtime: RuntimeConfig {
                shards: 1,
                max_in_flight,
                grace_ms: 20_000,
                ..Default::default()
            },
            // Retry pauses of a few ms instead of seconds: the schedule is the same, the test short.
            actions: Some(Arc::new(|c: &mut cpra_engine::actions::ActionsConfig| {
                c.retry.first_pause_ms = 20;
                c.intervention_retry_pause = Duration::from_millis(10);
            })),
            observer: Some(observer),
            wall_clock,
            journal: None,
            cooldown_ms: None,
        };
        let running = start_plan(plan, config).expect("engine starts");
        Run { running: Some(running), seen }
    }

    fn colours(&self, monitor: &str) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|(m, _)| m == monitor).map(|(_, c)| c.clone()).collect()
    }

    /// Waits until `monitor`'s colours end with `last` (or the bound passes).
    fn wait_colour(&self, monitor: &str, last: &str) -> Vec<String> {
        let end = std::time::Instant::now() + BOUND;
        loop {
            let c = self.colours(monitor);
            if c.last().is_some_and(|l| l == last) || std::time::Instant::now() > end {
                return c;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(&mut self) -> cpra_engine::runtime::RunReport {
        self.running.take().unwrap().runtime.stop_and_join().expect("clean stop")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(p) = self.running.take() {
            let _ = p.runtime.stop_and_join();
        }
    }
}

/// One http monitor named `name` checking `target/name`, alerting every colour to
/// `receiver/alerts`; `extra` is more YAML for the monitor (indented 4).
fn monitor(
    name: &str,
    target: &ScriptedServer,
    receiver: &ScriptedServer,
    policy: &str,
    extra: &str,
) -> String {
    let alerts = receiver.url("/alerts");
    format!(
        r#"  - name: {name}
    pulse_check:
      type: http
      interval: {INTERVAL}
      timeout: 2s
{policy}
      config: {{url: "{url}"}}
{extra}
    codes:
      red: {{notify: webhook, config: {{url: "{alerts}"}}}}
      yellow: {{notify: webhook, config: {{url: "{alerts}"}}}}
      green: {{notify: webhook, config: {{url: "{alerts}"}}}}
      cyan: {{notify: webhook, config: {{url: "{alerts}"}}}}
      gray: {{notify: webhook, config: {{url: "{alerts}"}}}}
"#,
        url = target.url(&format!("/{name}")),
    )
}

fn thresholds(unhealthy: u32, healthy: u32) -> String {
    format!("      unhealthy_threshold: {unhealthy}\n      healthy_threshold: {healthy}")
}

fn webhook_intervention(receiver: &ScriptedServer, path: &str) -> String {
    format!(
        "    intervention:\n      action: webhook\n      target: {{url: \"{}\", method: POST, timeout: 2s}}",
        receiver.url(path)
    )
}

fn manifest(monitors: &[String]) -> String {
    format!("version: \"1\"\nmonitors:\n{}", monitors.concat())
}

/// Lets `n` more checks of `path` reach the target, so a test sees that nothing else follows.
fn more_checks(target: &ScriptedServer, path: &str, n: usize) {
    let before = target.requests(Some(path)).len();
    let seen = target.wait_for(Some(path), BOUND, |r| r.len() >= before + n);
    // `wait_for` also returns when the bound passes: without this, a monitor that stopped
    // being checked would pass every "nothing more was sent" assertion that follows.
    assert!(
        seen.len() >= before + n,
        "{path}: {} checks within {BOUND:?}, wanted {before} + {n}",
        seen.len()
    );
}

/// The colours the receiver got for `monitor`, in arrival order, once it has `n` of them.
fn delivered(receiver: &ScriptedServer, monitor: &str, n: usize) -> Vec<String> {
    let of_monitor = |r: &[Recorded]| -> Vec<String> {
        r.iter()
            .filter(|x| (200..300).contains(&x.status))
            .filter_map(|x| serde_json::from_slice::<serde_json::Value>(&x.body).ok())
            .filter(|v| v["monitor"] == monitor)
            .map(|v| v["color"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    of_monitor(&receiver.wait_for(Some("/alerts"), BOUND, |r| of_monitor(r).len() >= n))
}

fn servers() -> (ScriptedServer, ScriptedServer) {
    (ScriptedServer::start().unwrap(), ScriptedServer::start().unwrap())
}

#[test]
fn scenario_1_threshold_red_then_green_after_two_successes() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/s1", &[503, 503, 503, 503], 200));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let run = Run::start(
        &manifest(&[monitor("s1", &target, &receiver, &thresholds(3, 2), "")]),
        64,
        None,
    );
    assert_eq!(run.wait_colour("s1", "green"), ["yellow", "red", "green"]);
    more_checks(&target, "/s1", 5);
    assert_eq!(run.colours("s1"), ["yellow", "red", "green"]);
    assert_eq!(delivered(&receiver, "s1", 3), ["yellow", "red", "green"]);
}

#[test]
fn scenario_2_intervention_succeeds_then_verified_green() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/s2", &[503, 503], 503));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let yaml = manifest(&[monitor(
        "s2",
        &target,
        &receiver,
        &thresholds(2, 2),
        &webhook_intervention(&receiver, "/restart"),
    )]);
    // The target keeps failing until the intervention request arrives.
    let target = Arc::new(target);
    {
        let t2 = target.clone();
        receiver.script(move |s| {
            s.set(
                "/restart",
                Route::Hook(Box::new(move |_r: &Recorded, _| {
                    t2.script(|ts| ts.statuses("/s2", &[], 200));
                    200
                })),
            )
        });
    }
    let run = Run::start(&yaml, 64, None);
    assert_eq!(run.wait_colour("s2", "green"), ["yellow", "cyan", "green"]);
    more_checks(&target, "/s2", 5);
    assert_eq!(run.colours("s2"), ["yellow", "cyan", "green"]);
    assert_eq!(delivered(&receiver, "s2", 3), ["yellow", "cyan", "green"]);
    assert_eq!(receiver.requests(Some("/restart")).len(), 1, "one intervention per incident");
}

#[test]
fn scenario_3_failure_during_verification_is_red_then_green() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/s3", &[], 503));
    receiver.script(|s| {
        s.statuses("/alerts", &[], 200);
        s.statuses("/restart", &[], 200);
    });
    let yaml = manifest(&[monitor(
        "s3",
        &target,
        &receiver,
        &thresholds(2, 2),
        &webhook_intervention(&receiver, "/restart"),
    )]);
    let run = Run::start(&yaml, 64, None);
    // Still failing after the intervention succeeded: the first check that counts is red.
    assert_eq!(run.wait_colour("s3", "red"), ["yellow", "cyan", "red"]);
    target.script(|s| s.statuses("/s3", &[], 200));
    assert_eq!(run.wait_colour("s3", "green"), ["yellow", "cyan", "red", "green"]);
    more_checks(&target, "/s3", 5);
    assert_eq!(run.colours("s3"), ["yellow", "cyan", "red", "green"]);
}

/// `intervention.retries: 2`: the restart endpoint fails twice, then works; the engine sees
/// one intervention that succeeded (cyan), never the failures in between (no red).
#[test]
fn intervention_retries_turn_two_failures_and_a_success_into_one_success() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/s9", &[], 503));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let intervention = format!(
        "    intervention:\n      action: webhook\n      retries: 2\n      target: {{url: \"{}\", method: POST, timeout: 2s}}",
        receiver.url("/restart")
    );
    let yaml = manifest(&[monitor("s9", &target, &receiver, &thresholds(2, 2), &intervention)]);
    let target = Arc::new(target);
    {
        let t2 = target.clone();
        let calls = std::sync::atomic::AtomicU32::new(0);
        receiver.script(move |s| {
            s.set(
                "/restart",
                Route::Hook(Box::new(move |_r: &Recorded, _| {
                    if calls.fetch_add(1, Ordering::Relaxed) < 2 {
                        return 500;
                    }
                    t2.script(|ts| ts.statuses("/s9", &[], 200));
                    200
                })),
            )
        });
    }
    let run = Run::start(&yaml, 64, None);
    assert_eq!(run.wait_colour("s9", "green"), ["yellow", "cyan", "green"]);
    assert_eq!(receiver.requests(Some("/restart")).len(), 3);
}

#[test]
fn scenario_4_intervention_fails_red_then_green() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/s4", &[], 503));
    receiver.script(|s| {
        s.statuses("/alerts", &[], 200);
        s.statuses("/restart", &[], 500);
    });
    let yaml = manifest(&[monitor(
        "s4",
        &target,
        &receiver,
        &thresholds(2, 2),
        &webhook_intervention(&receiver, "/restart"),
    )]);
    let run = Run::start(&yaml, 64, None);
    assert_eq!(run.wait_colour("s4", "red"), ["yellow", "red"]);
    target.script(|s| s.statuses("/s4", &[], 200));
    assert_eq!(run.wait_colour("s4", "green"), ["yellow", "red", "green"]);
    more_checks(&target, "/s4", 5);
    assert_eq!(run.colours("s4"), ["yellow", "red", "green"]);
    assert_eq!(receiver.requests(Some("/restart")).len(), 1);
}

#[test]
fn scenario_5_a_blip_is_yellow_then_green() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/s5", &[503], 200));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let run = Run::start(
        &manifest(&[monitor("s5", &target, &receiver, &thresholds(3, 2), "")]),
        64,
        None,
    );
    assert_eq!(run.wait_colour("s5", "green"), ["yellow", "green"]);
    more_checks(&target, "/s5", 5);
    assert_eq!(run.colours("s5"), ["yellow", "green"]);
}

/// The default is one attempt per check (no `retries`, as in the Go CPRA): a target answering
/// 500 once is a failed check, so a yellow, even with every policy field left out.
#[test]
fn a_500_then_200_raises_yellow_with_default_settings() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/d", &[500], 200));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let run = Run::start(&manifest(&[monitor("d", &target, &receiver, "", "")]), 64, None);
    assert_eq!(run.wait_colour("d", "green"), ["yellow", "red", "green"]);
    // One request per check: the 500 was not retried away.
    let statuses: Vec<u16> = target.requests(Some("/d")).iter().take(2).map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200]);
}

#[test]
fn scenario_6_unhealthy_one_is_yellow_and_red_in_order() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/s6", &[], 503));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let run = Run::start(
        &manifest(&[monitor("s6", &target, &receiver, &thresholds(1, 2), "")]),
        64,
        None,
    );
    assert_eq!(run.wait_colour("s6", "red"), ["yellow", "red"]);
    more_checks(&target, "/s6", 5);
    assert_eq!(run.colours("s6"), ["yellow", "red"], "red once per incident");
}

#[test]
fn scenario_8_maintenance_window_gray_only_then_red_after_it() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/s8", &[], 503));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    // A virtual wall clock: inside the window (every minute, 30 s long) from the start.
    let minute_ms = 60_000 * 29_000_000i64;
    let wall = Arc::new(AtomicI64::new(minute_ms + 1_000));
    let clock: WallClock = {
        let wall = wall.clone();
        Arc::new(move || wall.load(Ordering::SeqCst))
    };
    let extra = "    maintenance:\n      - {cron: \"* * * * *\", duration: 30s}";
    let run = Run::start(
        &manifest(&[monitor("s8", &target, &receiver, &thresholds(3, 2), extra)]),
        64,
        Some(clock),
    );
    assert_eq!(run.wait_colour("s8", "gray"), ["gray"]);
    more_checks(&target, "/s8", 6);
    assert_eq!(run.colours("s8"), ["gray"], "failures inside the window queue nothing");
    wall.store(minute_ms + 40_000, Ordering::SeqCst);
    assert_eq!(run.wait_colour("s8", "red"), ["gray", "red"]);
    more_checks(&target, "/s8", 5);
    assert_eq!(run.colours("s8"), ["gray", "red"]);
}

#[test]
fn a_one_off_maintenance_window_holds_alerts_until_its_end_then_is_gone() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/s8b", &[], 503));
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    // 2026-03-01T02:00:00Z and 02:30:00Z; the virtual wall clock starts inside the window.
    let (start_ms, end_ms) = (1_772_330_400_000i64, 1_772_332_200_000i64);
    let wall = Arc::new(AtomicI64::new(start_ms + 1_000));
    let clock: WallClock = {
        let wall = wall.clone();
        Arc::new(move || wall.load(Ordering::SeqCst))
    };
    let extra = "    maintenance:\n      - {start: \"2026-03-01T03:00:00+01:00\", end: \"2026-03-01T02:30:00Z\"}";
    let run = Run::start(
        &manifest(&[monitor("s8b", &target, &receiver, &thresholds(3, 2), extra)]),
        64,
        Some(clock),
    );
    assert_eq!(run.wait_colour("s8b", "gray"), ["gray"]);
    more_checks(&target, "/s8b", 6);
    assert_eq!(run.colours("s8b"), ["gray"], "failures inside the window queue nothing");
    // The window ends: the failing monitor goes red, and no window comes back.
    wall.store(end_ms, Ordering::SeqCst);
    assert_eq!(run.wait_colour("s8b", "red"), ["gray", "red"]);
    more_checks(&target, "/s8b", 5);
    assert_eq!(run.colours("s8b"), ["gray", "red"]);
}

#[test]
fn a_notifier_answering_503_twice_gets_three_attempts_and_the_alert_once() {
    let (target, receiver) = servers();
    target.script(|s| s.statuses("/n1", &[], 503));
    receiver.script(|s| s.statuses("/alerts", &[503, 503], 200));
    // Only a red code: one alert.
    let yaml = format!(
        "version: \"1\"\nmonitors:\n  - name: n1\n    pulse_check:\n      type: http\n      interval: {INTERVAL}\n      timeout: 2s\n      unhealthy_threshold: 1\n      config: {{url: \"{}\"}}\n    codes:\n      red: {{notify: webhook, config: {{url: \"{}\"}}}}\n",
        target.url("/n1"),
        receiver.url("/alerts")
    );
    let mut run = Run::start(&yaml, 64, None);
    let got = receiver.wait_for(Some("/alerts"), BOUND, |r| r.iter().any(|x| x.status == 200));
    more_checks(&target, "/n1", 5);
    let report = run.stop();
    let got_after = receiver.requests(Some("/alerts"));
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got_after.iter().map(|r| r.status).collect::<Vec<_>>(), [503, 503, 200]);
    assert!(got_after.iter().all(|r| r.body_str().contains("\"red\"")), "{got_after:?}");
    assert_eq!(run.colours("n1"), ["red"]);
    assert!(report.counters.checks_completed > 0);
}

#[test]
fn a_ring_of_one_with_a_thousand_monitors_strands_none() {
    const N: usize = 1_000;
    let target = ScriptedServer::start().unwrap();
    let mut monitors = String::new();
    for i in 0..N {
        target.script(|s| s.statuses(&format!("/m{i}"), &[], 200));
        monitors.push_str(&format!(
            "  - name: m{i}\n    pulse_check:\n      type: http\n      interval: 50ms\n      timeout: 2s\n      config: {{url: \"{}\"}}\n",
            target.url(&format!("/m{i}"))
        ));
    }
    let run = Run::start(&format!("version: \"1\"\nmonitors:\n{monitors}"), 1, None);
    // Every monitor must come round at least twice, however long a ring of one takes.
    let all_twice = |r: &[Recorded]| {
        let mut per = vec![0u32; N];
        for x in r {
            if let Ok(i) = x.path[2..].parse::<usize>() {
                per[i] += 1;
            }
        }
        per.iter().all(|&c| c >= 2)
    };
    let seen = target.wait_for(None, Duration::from_secs(120), all_twice);
    assert!(all_twice(&seen), "a monitor was stranded");
    drop(run);
}

#[test]
fn a_stop_during_a_burst_of_alerts_delivers_them_before_exit() {
    const N: usize = 40;
    let (target, receiver) = servers();
    // A slow receiver: the burst is still being delivered when the stop comes.
    receiver.script(|s| {
        s.set("/alerts", Route::Slow { delay: Duration::from_millis(400), status: 200 })
    });
    let mut monitors = Vec::new();
    for i in 0..N {
        let name = format!("b{i}");
        target.script(|s| s.statuses(&format!("/{name}"), &[], 503));
        monitors.push(monitor(&name, &target, &receiver, &thresholds(1, 2), ""));
    }
    let mut run = Run::start(&manifest(&monitors), 64, None);
    // Stop as soon as every monitor queued its yellow and red.
    let end = std::time::Instant::now() + BOUND;
    while run.seen.lock().unwrap().len() < 2 * N && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(run.seen.lock().unwrap().len(), 2 * N);
    let delivered_at_stop = receiver.requests(Some("/alerts")).len();
    run.stop();
    let delivered = receiver.requests(Some("/alerts")).len();
    assert!(delivered_at_stop < 2 * N, "the burst was already delivered: the test proves nothing");
    assert_eq!(delivered, 2 * N, "every queued alert delivered before exit");
}
