//! `Actions` against local servers that speak the real protocols on loopback: HTTP receivers
//! with scripted statuses, a unix-socket server answering the Docker Engine API's restart
//! call, an HTTP server answering the Kubernetes PATCH, an SMTP server, a stand-in
//! `systemctl`. They are stand-ins because no Docker engine, cluster, PagerDuty or mail
//! relay runs where the tests run; each speaks the wire protocol the real one does.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use glommio::LocalExecutorBuilder;

use super::*;
use crate::alert::RenderedAlert;
use crate::colour::Colour;
use crate::manifest::Headers;

/// Bound on any wait in these tests: far above what they need; only a broken build hits it.
const WAIT: Duration = Duration::from_secs(20);

fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    LocalExecutorBuilder::default().spawn(f).unwrap().join().unwrap();
}

fn fast_config() -> ActionsConfig {
    let mut c = ActionsConfig::with_monotonic_clock();
    // Same schedule shape as production, a hundred times faster.
    c.retry = RetryPolicy { max_attempts: 3, first_pause_ms: 20, jitter_permille: 200 };
    c.attempt_timeout = Duration::from_secs(5);
    c.wall_clock_ms = || 1_700_000_000_123;
    c.intervention_retry_pause = Duration::from_millis(10);
    // No test reads the process's AWS variables or ~/.aws: each gives its own.
    c.aws = aws::Sources { env: Arc::new(|_| None) };
    c
}

fn alert(colour: Colour, not_before_ms: u64) -> Rc<RenderedAlert> {
    let mut a = super::payload::tests::alert(colour);
    a.not_before_ms = not_before_ms;
    Rc::new(a)
}

/// One request as a receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What a receiver does with the next request.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// A status with this body (a service's own answer document).
    Answer(u16, &'static str),
    /// Read the request, then close without answering.
    Close,
}

/// An HTTP/1.1 server on 127.0.0.1 that records every request and answers from a script
/// (then 200). Stops when dropped.
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

fn read_request<S: Read>(stream: S) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Seen { method, path, headers, body })
}

fn answer<S: Write>(mut stream: S, reply: Reply) {
    match reply {
        Reply::Status(s) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {s} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
        }
        Reply::Answer(s, body) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {s} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Reply::Close => {}
    }
}

impl Receiver {
    fn start(script: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            let mut script = script.into_iter();
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(WAIT)).unwrap();
                        if let Some(req) = read_request(&stream) {
                            seen2.lock().unwrap().push(req);
                            answer(&stream, script.next().unwrap_or(Reply::Status(200)));
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Receiver { port, seen, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn webhook(url: String) -> Arc<Notify> {
    Arc::new(Notify::Webhook { url, method: "POST".into(), headers: Arc::new(Headers::new()) })
}

#[test]
fn receiver_503_twice_then_200_gets_three_attempts_and_the_alert_once() {
    let rx = Receiver::start(vec![Reply::Status(503), Reply::Status(503)]);
    let url = rx.url("/hook");
    let counters = Arc::new(Mutex::new(ActionCounters::default()));
    let c2 = counters.clone();
    run(move || async move {
        let actions = Actions::new(fast_config());
        actions.queue_alert(7, &[webhook(url)], alert(Colour::Red, 0));
        actions.drain(WAIT).await;
        *c2.lock().unwrap() = actions.counters();
    });
    let seen = rx.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.method == "POST" && s.path == "/hook"));
    assert!(seen.windows(2).all(|w| w[0].body == w[1].body));
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["color"], "red");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    let c = *counters.lock().unwrap();
    assert_eq!((c.queued, c.sent, c.retried, c.undelivered), (1, 1, 2, 0));
}

#[test]
fn permanent_and_exhausted_failures_are_recorded_undelivered() {
    let bad = Receiver::start(vec![Reply::Status(400)]);
    let down = Receiver::start(vec![Reply::Status(500); 5]);
    let (bad_url, down_url) = (bad.url("/"), down.url("/"));
    let out = Arc::new(Mutex::new((ActionCounters::default(), Vec::new())));
    let out2 = out.clone();
    run(move || async move {
        let actions = Actions::new(fast_config());
        actions.queue_alert(1, &[webhook(bad_url), webhook(down_url)], alert(Colour::Red, 0));
        actions.drain(WAIT).await;
        *out2.lock().unwrap() = (actions.counters(), actions.recent_undelivered());
    });
    let (c, undelivered) = out.lock().unwrap().clone();
    assert_eq!((c.queued, c.sent, c.undelivered), (2, 0, 2));
    assert_eq!(bad.seen().len(), 1);
    assert_eq!(down.seen().len(), 3);
    let mut reasons: Vec<String> = undelivered.iter().map(|u| u.reason.clone()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        ["receiver answered HTTP 400", "receiver answered HTTP 500 (gave up after 3 attempts)"]
    );
    assert!(undelivered.iter().all(|u| u.monitor_id == "checkout-api" && u.notifier == "webhook"));
}

#[test]
fn unreachable_receiver_is_retried_then_undelivered() {
    // A port that was just free: connection refused, before anything was sent.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Arc::new(Mutex::new(ActionCounters::default()));
    let out2 = out.clone();
    run(move || async move {
        let actions = Actions::new(fast_config());
        let n = Arc::new(Notify::Slack { hook: format!("http://127.0.0.1:{port}/x") });
        actions.queue_alert(1, &[n], alert(Colour::Yellow, 0));
        actions.drain(WAIT).await;
        *out2.lock().unwrap() = actions.counters();
    });
    let c = *out.lock().unwrap();
    assert_eq!((c.retried, c.undelivered, c.sent), (2, 1, 0));
}

#[test]
fn a_receiver_that_never_answers_is_not_retried() {
    // Accepts, reads, never answers: the request was sent, so a repeat could duplicate it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = Arc::new(Mutex::new((ActionCounters::default(), Vec::new())));
    let out2 = out.clone();
    run(move || async move {
        let mut config = fast_config();
        config.attempt_timeout = Duration::from_millis(200);
        let actions = Actions::new(config);
        actions.queue_alert(
            1,
            &[webhook(format!("http://127.0.0.1:{port}/"))],
            alert(Colour::Red, 0),
        );
        actions.drain(WAIT).await;
        *out2.lock().unwrap() = (actions.counters(), actions.recent_undelivered());
    });
    drop(listener);
    let (c, undelivered) = out.lock().unwrap().clone();
    assert_eq!((c.sent, c.retried, c.undelivered), (0, 0, 1));
    assert!(undelivered[0].reason.contains("it may have been delivered"), "{undelivered:?}");
}

#[test]
fn dedup_cancel_and_queue_bound() {
    let rx = Receiver::start(vec![]);
    let url = rx.url("/");
    let out = Arc::new(Mutex::new(Vec::new()));
    let out2 = out.clone();
    run(move || async move {
        let mut config = fast_config();
        config.max_queued = 3;
        let clock = config.clock.clone();
        let actions = Actions::new(config);
        let endpoint = webhook(url);
        let later = clock.now_ms() + 60_000;
        // The same (endpoint, monitor, colour, not_before) twice: queued once.
        actions.queue_alert(1, std::slice::from_ref(&endpoint), alert(Colour::Red, later));
        actions.queue_alert(1, std::slice::from_ref(&endpoint), alert(Colour::Red, later));
        // Another episode's alert (different not_before) is not a duplicate.
        actions.queue_alert(1, std::slice::from_ref(&endpoint), alert(Colour::Red, later + 1));
        actions.queue_alert(2, std::slice::from_ref(&endpoint), alert(Colour::Red, later));
        // The queue holds 3: the fourth is recorded undelivered, not dropped silently.
        actions.queue_alert(3, std::slice::from_ref(&endpoint), alert(Colour::Red, later));
        out2.lock().unwrap().push((actions.counters(), actions.pending()));
        actions.cancel_alerts(1);
        out2.lock().unwrap().push((actions.counters(), actions.pending()));
        actions.cancel_alerts(2);
        actions.drain(WAIT).await;
        out2.lock().unwrap().push((actions.counters(), actions.pending()));
        let reasons: Vec<String> =
            actions.recent_undelivered().into_iter().map(|u| u.reason).collect();
        assert_eq!(reasons, ["delivery queue full"]);
    });
    let snapshots = out.lock().unwrap().clone();
    let (c, pending) = snapshots[0];
    assert_eq!((c.queued, c.deduplicated, c.undelivered, pending), (4, 1, 1, 3));
    let (c, pending) = snapshots[1];
    assert_eq!((c.cancelled, pending), (2, 1));
    let (c, pending) = snapshots[2];
    assert_eq!((c.cancelled, c.sent, pending), (3, 0, 0));
    assert!(rx.seen().is_empty());
}

/// Incidents that follow each other within one cooldown: the state machine (under a virtual
/// clock that stands still at the actions' now) delays the later incidents' yellow, red and
/// green to the end of the cooldown, all at the same moment; each is still its own alert and
/// reaches the receiver with its own incident id. (Before the incident was part of the
/// delivery's identity, #3's alerts were dropped as copies of #2's.)
#[test]
fn alerts_of_incidents_due_at_one_moment_are_each_delivered() {
    use crate::alert::{render, MonitorInfo};
    use crate::state::{transition, Effect, Event, MonitorState, Policy};
    let rx = Receiver::start(vec![]);
    let url = rx.url("/");
    run(move || async move {
        let config = fast_config();
        let now = config.clock.now_ms();
        let actions = Actions::new(config);
        let endpoints = [webhook(url)];
        let policy = Policy {
            unhealthy: 1,
            healthy: 1,
            cooldown_ms: [1_000; Colour::COUNT],
            ..Policy::default()
        };
        let info = MonitorInfo { id: "web", name: "web", target: "http://web", intervention: None };
        let mut state = MonitorState::new();
        let mut queued = 0;
        // Three incidents (F then S each); the second and third fall in the first one's cooldown.
        for ok in [false, true, false, true, false, true] {
            let generation = state.begin_check(state.generation().next());
            let event = if ok {
                Event::CheckSucceeded { generation, warning: None }
            } else {
                Event::CheckFailed { generation, kind: cpra_net::FailureKind::ConnectRefused }
            };
            for effect in &transition(&mut state, &policy, event, now) {
                if let Some(alert) = render(effect, &info, None) {
                    assert!(matches!(effect, Effect::Alert { .. }));
                    queued += 1;
                    actions.queue_alert(1, &endpoints, Rc::new(alert));
                }
            }
        }
        assert_eq!(queued, 9, "a yellow, a red and a green per incident");
        actions.drain(WAIT).await;
        assert_eq!(actions.counters().deduplicated, 0);
    });
    let mut got: Vec<(String, String)> = rx
        .seen()
        .iter()
        .map(|s| {
            let v: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
            (v["incident_id"].as_str().unwrap().to_owned(), v["color"].as_str().unwrap().to_owned())
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = (1..=3)
        .flat_map(|n| ["green", "red", "yellow"].map(|c| (format!("web#{n}"), c.to_owned())))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_monitors_alerts_reach_an_endpoint_in_order_retries_included() {
    // Yellow's first attempt gets 503; red, queued right after, must wait for yellow's retry.
    let rx = Receiver::start(vec![Reply::Status(503)]);
    let url = rx.url("/");
    let other = rx.url("/other");
    run(move || async move {
        let actions = Actions::new(fast_config());
        let endpoint = webhook(url);
        actions.queue_alert(1, std::slice::from_ref(&endpoint), alert(Colour::Yellow, 0));
        actions.queue_alert(1, std::slice::from_ref(&endpoint), alert(Colour::Red, 0));
        actions.drain(WAIT).await;
        assert_eq!(actions.counters().sent, 2);
        assert!(actions.lanes.borrow().is_empty(), "idle lanes are forgotten");
        // Another monitor does not wait for this one.
        actions.queue_alert(2, &[webhook(other)], alert(Colour::Red, 0));
        actions.drain(WAIT).await;
    });
    let colours: Vec<String> = rx
        .seen()
        .iter()
        .map(|s| serde_json::from_slice::<serde_json::Value>(&s.body).unwrap()["color"].to_string())
        .collect();
    assert_eq!(colours, ["\"yellow\"", "\"yellow\"", "\"red\"", "\"red\""]);
}

#[test]
fn an_alert_waits_for_its_not_before_time() {
    // Ordering, not timing: the alert due in 1 s arrives after the one due now.
    let rx = Receiver::start(vec![]);
    let url = rx.url("/");
    run(move || async move {
        let config = fast_config();
        let now = config.clock.now_ms();
        let actions = Actions::new(config);
        actions.queue_alert(1, &[webhook(url.clone())], alert(Colour::Green, now + 1_000));
        actions.queue_alert(2, &[webhook(url)], alert(Colour::Red, now));
        actions.drain(WAIT).await;
        assert_eq!(actions.counters().sent, 2);
    });
    let colours: Vec<String> = rx
        .seen()
        .iter()
        .map(|s| serde_json::from_slice::<serde_json::Value>(&s.body).unwrap()["color"].to_string())
        .collect();
    assert_eq!(colours, ["\"red\"", "\"green\""]);
}

#[test]
fn endpoints_come_from_the_code_or_its_group() {
    let text = r#"
endpoints:
  slack-ops:
    type: slack
    config: { hook: "http://127.0.0.1:1/a" }
  file:
    type: log
    config: { file: /tmp/x.log }
notification_groups:
  ops: [slack-ops, file]
monitors:
  - name: web
    pulse_check:
      type: tcp
      interval: 1s
      timeout: 1s
      config: { host: 127.0.0.1, port: 1 }
    codes:
      red: { notify_group: ops }
      yellow: { notify: log, config: { file: /tmp/y.log } }
      green: { notify: log, dispatch: false, config: { file: /tmp/y.log } }
"#;
    let (monitors, report) = crate::manifest::load_str(
        text,
        Some(crate::manifest::Format::Yaml),
        &crate::manifest::LoadOptions::default(),
    );
    assert_eq!(monitors.len(), 1, "{:?}", report.problems);
    let codes = &monitors[0].codes;
    let kinds =
        |c| endpoints_for(codes, c, &report.registry).iter().map(|n| n.kind()).collect::<Vec<_>>();
    assert_eq!(kinds(Colour::Red), ["slack", "log"]);
    assert_eq!(kinds(Colour::Yellow), ["log"]);
    assert!(kinds(Colour::Green).is_empty());
    assert!(kinds(Colour::Gray).is_empty());
}

#[test]
fn drain_records_what_it_could_not_deliver() {
    let rx = Receiver::start(vec![]);
    let url = rx.url("/");
    let out = Arc::new(Mutex::new(Vec::new()));
    let out2 = out.clone();
    run(move || async move {
        let config = fast_config();
        let now = config.clock.now_ms();
        let actions = Actions::new(config);
        actions.queue_alert(1, &[webhook(url.clone())], alert(Colour::Red, now));
        actions.queue_alert(2, &[webhook(url)], alert(Colour::Red, now + 3_600_000));
        actions.drain(Duration::from_millis(300)).await;
        *out2.lock().unwrap() = vec![(actions.counters(), actions.recent_undelivered())];
    });
    let (c, undelivered) = out.lock().unwrap()[0].clone();
    assert_eq!((c.sent, c.undelivered), (1, 1));
    assert_eq!(undelivered[0].reason, "shut down before delivery");
    assert_eq!((undelivered[0].monitor, undelivered[0].monitor_id.as_str()), (2, "checkout-api"));
    assert_eq!(rx.seen().len(), 1);
}

#[test]
fn in_flight_bound_still_delivers_everything() {
    let rx = Receiver::start(vec![]);
    let url = rx.url("/");
    let out = Arc::new(Mutex::new(ActionCounters::default()));
    let out2 = out.clone();
    run(move || async move {
        let mut config = fast_config();
        config.max_in_flight = 1;
        let actions = Actions::new(config);
        for m in 0..20 {
            actions.queue_alert(m, &[webhook(url.clone())], alert(Colour::Yellow, 0));
        }
        actions.drain(WAIT).await;
        *out2.lock().unwrap() = actions.counters();
    });
    assert_eq!(out.lock().unwrap().sent, 20);
    assert_eq!(rx.seen().len(), 20);
}

#[test]
fn log_notifier_appends_json_lines_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/cpra/alerts.jsonl");
    let file = path.to_str().unwrap().to_owned();
    run(move || async move {
        let actions = Actions::new(fast_config());
        let n = Arc::new(Notify::Log { file: Some(file) });
        actions.queue_alert(1, std::slice::from_ref(&n), alert(Colour::Yellow, 0));
        actions.queue_alert(1, &[n], alert(Colour::Red, 0));
        actions.drain(WAIT).await;
        assert_eq!(actions.counters().sent, 2);
    });
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    let mut colours: Vec<&str> = lines.iter().map(|l| l["color"].as_str().unwrap()).collect();
    colours.sort();
    assert_eq!(colours, ["red", "yellow"]);
    assert!(lines.iter().all(|l| l["monitor_id"] == "checkout-api"
        && l["incident_id"] == "checkout-api#3"
        && l["timestamp"] == "2023-11-14T22:13:20.123Z"));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn every_http_notifier_reaches_its_receiver_through_the_url_override() {
    let rx = Receiver::start(vec![]);
    let u = |p: &str| rx.url(p);
    let endpoints = vec![
        Arc::new(Notify::Slack { hook: u("/slack") }),
        Arc::new(Notify::Discord { webhook_url: u("/discord") }),
        Arc::new(Notify::Mattermost { webhook_url: u("/mm"), channel: None, username: None }),
        Arc::new(Notify::Teams { webhook_url: u("/teams") }),
        Arc::new(Notify::Telegram {
            bot_token: "1:a".into(),
            chat_id: "9".into(),
            url: Some(u("")),
        }),
        Arc::new(Notify::Opsgenie { api_key: "k".into(), url: Some(u("/v2/alerts")) }),
        Arc::new(Notify::Pagerduty { routing_key: "r".into(), url: Some(u("/v2/enqueue")) }),
        Arc::new(Notify::Alertmanager { url: u("") }),
    ];
    run(move || async move {
        let actions = Actions::new(fast_config());
        actions.queue_alert(1, &endpoints, alert(Colour::Red, 0));
        actions.drain(WAIT).await;
        assert_eq!(actions.counters().sent, 8);
    });
    let mut paths: Vec<String> = rx.seen().into_iter().map(|s| s.path).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/api/v2/alerts",
            "/bot1:a/sendMessage",
            "/discord",
            "/mm",
            "/slack",
            "/teams",
            "/v2/alerts",
            "/v2/enqueue"
        ]
    );
    let opsgenie = rx.seen().into_iter().find(|s| s.path == "/v2/alerts").unwrap();
    assert_eq!(opsgenie.header("authorization"), Some("GenieKey k"));
}

#[test]
fn an_opsgenie_incident_alert_is_created_then_closed_on_recovery() {
    let rx = Receiver::start(vec![]);
    let endpoints =
        vec![Arc::new(Notify::Opsgenie { api_key: "k".into(), url: Some(rx.url("/v2/alerts")) })];
    run(move || async move {
        let actions = Actions::new(fast_config());
        actions.queue_alert(1, &endpoints, alert(Colour::Red, 0));
        actions.drain(WAIT).await;
        actions.queue_alert(1, &endpoints, alert(Colour::Green, 0));
        actions.drain(WAIT).await;
        assert_eq!(actions.counters().sent, 2);
    });
    let seen = rx.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/v2/alerts", "/v2/alerts/cpra:checkout-api%233/close?identifierType=alias"]
    );
    assert!(seen
        .iter()
        .all(|s| s.method == "POST" && s.header("authorization") == Some("GenieKey k")));
    let created: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(created["alias"], "cpra:checkout-api#3");
}

// ---------------------------------------------------------------- interventions

/// Runs one intervention and returns its result (or `None` if `done` was never called).
fn intervene(
    customise: impl FnOnce(&mut ActionsConfig) + Send + 'static,
    action: InterventionAction,
) -> Option<InterventionResult> {
    intervene_with(customise, Intervention { action, retries: None, max_failures: None })
}

/// [`intervene`] with the whole `intervention` block (`retries`).
fn intervene_with(
    customise: impl FnOnce(&mut ActionsConfig) + Send + 'static,
    action: Intervention,
) -> Option<InterventionResult> {
    let out = Arc::new(Mutex::new(None));
    let out2 = out.clone();
    run(move || async move {
        let mut config = fast_config();
        customise(&mut config);
        let actions = Actions::new(config);
        let result = Rc::new(Cell::new(None));
        let r2 = result.clone();
        actions.start_intervention(4, &action, Box::new(move |r| r2.set(Some(r))));
        let start = std::time::Instant::now();
        while result.get().is_none() && start.elapsed() < WAIT {
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        *out2.lock().unwrap() = result.get();
    });
    let r = *out.lock().unwrap();
    r
}

/// A unix-socket server answering the Docker Engine API's restart call with `reply`, once.
fn docker_engine(socket: &Path, reply: Reply) -> thread::JoinHandle<Option<Seen>> {
    let listener = UnixListener::bind(socket).unwrap();
    thread::spawn(move || {
        let (stream, _) = listener.accept().ok()?;
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let seen = read_request(&stream)?;
        answer(&stream, reply);
        Some(seen)
    })
}

#[test]
fn docker_restart_over_the_unix_socket() {
    for (reply, want) in [
        (Reply::Status(204), InterventionResult::Succeeded),
        (Reply::Status(404), InterventionResult::Failed),
        (Reply::Close, InterventionResult::Unknown),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let engine = docker_engine(&socket, reply);
        let action =
            InterventionAction::Docker { container: "web-1".into(), timeout_ms: Some(5_000) };
        assert_eq!(intervene(move |c| c.docker_socket = socket, action), Some(want));
        let seen = engine.join().unwrap().unwrap();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("POST", "/containers/web-1/restart?t=5")
        );
    }
    // No engine at all: the restart certainly did not happen.
    let action = InterventionAction::Docker { container: "web-1".into(), timeout_ms: None };
    let no_engine = |c: &mut ActionsConfig| c.docker_socket = "/nonexistent/docker.sock".into();
    assert_eq!(intervene(no_engine, action), Some(InterventionResult::Failed));
}

#[test]
fn webhook_intervention_outcomes() {
    for (reply, want) in [
        (Reply::Status(202), InterventionResult::Succeeded),
        (Reply::Status(500), InterventionResult::Failed),
        (Reply::Close, InterventionResult::Unknown),
    ] {
        let rx = Receiver::start(vec![reply]);
        let action = InterventionAction::Webhook {
            url: rx.url("/restart?svc=web"),
            method: "post".into(),
            headers: Arc::new(vec![("X-Key".into(), "k".into())]),
            body: Some("{\"svc\":\"web\"}".into()),
            timeout_ms: Some(5_000),
        };
        assert_eq!(intervene(|_| {}, action), Some(want), "{reply:?}");
        let seen = rx.seen();
        assert_eq!(seen.len(), 1, "an intervention is one attempt");
        assert_eq!(seen[0].path, "/restart?svc=web");
        assert_eq!(seen[0].header("x-key"), Some("k"));
        assert_eq!(seen[0].body, b"{\"svc\":\"web\"}");
    }
}

#[test]
fn kubernetes_rollout_restart_and_scale_patch_the_api_server() {
    let dir = tempfile::tempdir().unwrap();
    for (replicas, path, content_type) in [
        (
            None,
            "/apis/apps/v1/namespaces/shop/deployments/web",
            "application/strategic-merge-patch+json",
        ),
        (
            Some(4),
            "/apis/apps/v1/namespaces/shop/deployments/web/scale",
            "application/merge-patch+json",
        ),
    ] {
        let api = Receiver::start(vec![Reply::Status(200)]);
        let kubeconfig = dir.path().join("config");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{}\n\
                 contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
                 current-context: x\nusers:\n- name: u\n  user:\n    token: tok\n",
                api.port
            ),
        )
        .unwrap();
        let action = InterventionAction::Kubernetes {
            namespace: "shop".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            replicas,
            kubeconfig_path: Some(kubeconfig.to_str().unwrap().into()),
            timeout_ms: Some(5_000),
        };
        assert_eq!(intervene(|_| {}, action), Some(InterventionResult::Succeeded));
        let seen = api.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("PATCH", path));
        assert_eq!(seen[0].header("content-type"), Some(content_type));
        assert_eq!(seen[0].header("authorization"), Some("Bearer tok"));
        let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
        match replicas {
            Some(n) => assert_eq!(body["spec"]["replicas"], n),
            None => assert_eq!(
                body["spec"]["template"]["metadata"]["annotations"]
                    ["kubectl.kubernetes.io/restartedAt"],
                "2023-11-14T22:13:20.123Z"
            ),
        }
    }
    // A kubeconfig that does not exist: failed, with nothing sent.
    let action = InterventionAction::Kubernetes {
        namespace: "shop".into(),
        kind: "deployment".into(),
        name: "web".into(),
        replicas: None,
        kubeconfig_path: Some("/nonexistent/kubeconfig".into()),
        timeout_ms: None,
    };
    assert_eq!(intervene(|_| {}, action), Some(InterventionResult::Failed));
}

#[test]
fn systemd_runs_systemctl_off_the_shard_thread() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (exit, want) in [(0, InterventionResult::Succeeded), (3, InterventionResult::Failed)] {
        // A stand-in systemctl: records its arguments, exits with `exit`.
        let script = dir.path().join(format!("systemctl-{exit}"));
        let record = dir.path().join(format!("args-{exit}"));
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" > {}\nexit {exit}\n", record.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let action = InterventionAction::Systemd {
            unit: "nginx.service".into(),
            mode: Some("reload".into()),
            timeout_ms: None,
        };
        assert_eq!(intervene(move |c| c.systemctl = script, action), Some(want));
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "reload-or-restart nginx.service\n");
    }
}

#[test]
fn a_cancelled_intervention_never_reports() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let _listener = UnixListener::bind(&socket).unwrap(); // accepts, never answers
    let called = Arc::new(AtomicBool::new(false));
    let called2 = called.clone();
    run(move || async move {
        let mut config = fast_config();
        config.docker_socket = socket;
        let actions = Actions::new(config);
        let action = Intervention {
            action: InterventionAction::Docker { container: "web".into(), timeout_ms: None },
            retries: None,
            max_failures: None,
        };
        actions.start_intervention(
            1,
            &action,
            Box::new(move |_| called2.store(true, Ordering::Relaxed)),
        );
        glommio::timer::sleep(Duration::from_millis(20)).await;
        actions.cancel_intervention(1);
        glommio::timer::sleep(Duration::from_millis(20)).await;
        assert_eq!(actions.counters().interventions_started, 1);
    });
    assert!(!called.load(Ordering::Relaxed));
}

// ---------------------------------------------------------------- email

/// How the stub SMTP server treats STARTTLS.
#[derive(Clone)]
enum StartTls {
    NotOffered,
    /// Offered; after `220` the stub records the first byte the client sends and hangs up.
    OfferedNoCert,
    /// Offered and completed with this server config.
    Offered(Arc<rustls::ServerConfig>),
}

fn read_line(s: &mut impl Read) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if s.read(&mut byte).ok()? == 0 || line.len() > 64 * 1024 {
            return None;
        }
        line.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// One SMTP conversation on `s`, recording commands and the message. Returns true when the
/// client asked for STARTTLS (and got `220`).
fn converse(
    s: &mut (impl Read + Write),
    offer_starttls: bool,
    commands: &mut Vec<String>,
    message: &mut String,
) -> bool {
    while let Some(line) = read_line(s) {
        let line = line.trim_end().to_owned();
        commands.push(line.clone());
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" if offer_starttls => b"250-stub.local\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            "EHLO" => b"250-stub.local\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n",
            "STARTTLS" => {
                s.write_all(b"220 go ahead\r\n").unwrap();
                return true;
            }
            "AUTH" => b"235 ok\r\n",
            "MAIL" | "RCPT" => b"250 ok\r\n",
            "DATA" => {
                s.write_all(b"354 go\r\n").unwrap();
                while let Some(l) = read_line(s) {
                    if l == ".\r\n" {
                        break;
                    }
                    message.push_str(&l);
                }
                b"250 queued\r\n"
            }
            "QUIT" => {
                s.write_all(b"221 bye\r\n").unwrap();
                return false;
            }
            _ => b"500 what\r\n",
        };
        s.write_all(reply).unwrap();
        s.flush().unwrap();
    }
    false
}

/// A one-connection SMTP server on 127.0.0.1. Returns the commands it received and the
/// message.
fn smtp_server(starttls: StartTls) -> (u16, thread::JoinHandle<(Vec<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut commands = Vec::new();
        let mut message = String::new();
        stream.write_all(b"220 stub.local ESMTP\r\n").unwrap();
        let offer = !matches!(starttls, StartTls::NotOffered);
        if converse(&mut stream, offer, &mut commands, &mut message) {
            match starttls {
                StartTls::Offered(config) => {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    commands.push("-- tls --".into());
                    converse(&mut tls, false, &mut commands, &mut message);
                }
                _ => {
                    // The client now speaks TLS: note its first byte (a handshake record).
                    let mut first = [0u8; 1];
                    stream.read_exact(&mut first).unwrap();
                    commands.push(format!("tls record 0x{:02x}", first[0]));
                }
            }
        }
        (commands, message)
    });
    (port, handle)
}

fn email(port: u16, allow_insecure: bool, username: Option<&str>) -> Arc<Notify> {
    Arc::new(Notify::Email {
        server: format!("127.0.0.1:{port}"),
        from: "cpra@example.com".into(),
        to: vec!["ops@example.com".into(), "dev@example.com".into()],
        subject: None,
        allow_insecure,
        username: username.map(Into::into),
        password: Some("pw".into()),
    })
}

fn send_one(endpoint: Arc<Notify>) -> (ActionCounters, Vec<Undelivered>) {
    send_one_with(endpoint, None)
}

fn send_one_with(
    endpoint: Arc<Notify>,
    ca_file: Option<std::path::PathBuf>,
) -> (ActionCounters, Vec<Undelivered>) {
    let out = Arc::new(Mutex::new((ActionCounters::default(), Vec::new())));
    let out2 = out.clone();
    run(move || async move {
        let mut config = fast_config();
        config.extra_ca_file = ca_file;
        let actions = Actions::new(config);
        actions.queue_alert(1, &[endpoint], alert(Colour::Red, 0));
        actions.drain(WAIT).await;
        *out2.lock().unwrap() = (actions.counters(), actions.recent_undelivered());
    });
    let r = out.lock().unwrap().clone();
    r
}

#[test]
fn email_through_a_real_smtp_conversation() {
    let (port, server) = smtp_server(StartTls::NotOffered);
    let (c, _) = send_one(email(port, true, Some("alice")));
    let (commands, message) = server.join().unwrap();
    assert_eq!(c.sent, 1);
    assert_eq!(
        commands,
        [
            "EHLO cpra",
            "AUTH PLAIN AGFsaWNlAHB3",
            "MAIL FROM:<cpra@example.com>",
            "RCPT TO:<ops@example.com>",
            "RCPT TO:<dev@example.com>",
            "DATA",
            "QUIT"
        ]
    );
    assert!(
        message.starts_with("From: cpra@example.com\r\nTo: ops@example.com, dev@example.com\r\n")
    );
    assert!(message.contains("Subject: [CPRA] CRITICAL ALERT: Checkout API\r\n"));
    assert!(message.contains("\r\n\r\nCRITICAL ALERT: Checkout API\r\nStatus: FAILED"));
}

#[test]
fn email_requires_starttls_unless_allow_insecure() {
    // No STARTTLS offered and not allowed in clear: refused, not retried, nothing sent.
    let (port, server) = smtp_server(StartTls::NotOffered);
    let (c, undelivered) = send_one(email(port, false, Some("alice")));
    drop(server); // the server thread ends when the client hangs up
    assert_eq!((c.sent, c.undelivered, c.retried), (0, 1, 0));
    assert!(undelivered[0].reason.contains("does not offer STARTTLS"), "{undelivered:?}");

    // STARTTLS offered: the client upgrades before anything else (here the stub cannot
    // finish the handshake, so the delivery ends undelivered after its retries).
    let (port, server) = smtp_server(StartTls::OfferedNoCert);
    let endpoint = email(port, false, None);
    let (c, _) = send_one(endpoint);
    assert_eq!(c.sent, 0);
    let (commands, _) = server.join().unwrap();
    assert_eq!(commands[..2], ["EHLO cpra".to_owned(), "STARTTLS".to_owned()]);
    assert_eq!(commands[2], "tls record 0x16");
}

#[test]
fn email_over_starttls_with_auth() {
    // A self-signed certificate for 127.0.0.1, trusted through `extra_ca_file`.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("relay-ca.pem");
    std::fs::write(&ca, cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls_pki_types::CertificateDer::from(cert.der().to_vec())],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let (port, server) = smtp_server(StartTls::Offered(Arc::new(config)));
    let (c, undelivered) = send_one_with(email(port, false, Some("alice")), Some(ca));
    let (commands, message) = server.join().unwrap();
    assert_eq!(c.sent, 1, "{undelivered:?}");
    assert_eq!(
        commands,
        [
            "EHLO cpra",
            "STARTTLS",
            "-- tls --",
            "EHLO cpra",
            "AUTH PLAIN AGFsaWNlAHB3",
            "MAIL FROM:<cpra@example.com>",
            "RCPT TO:<ops@example.com>",
            "RCPT TO:<dev@example.com>",
            "DATA",
            "QUIT"
        ]
    );
    assert!(message.contains("Subject: [CPRA] CRITICAL ALERT: Checkout API\r\n"));
}

#[test]
fn configs_are_checked_before_start() {
    assert!(check_endpoint(&Notify::Slack { hook: "https://hooks.slack.com/x".into() }).is_ok());
    let err = check_endpoint(&Notify::Slack { hook: "hooks.slack.com/x".into() }).unwrap_err();
    assert!(err.starts_with("slack: invalid URL: relative URL without a base"), "{err}");
    let err = check_endpoint(&Notify::Alertmanager { url: "ftp://am:9093".into() }).unwrap_err();
    assert!(err.contains("scheme `ftp`"), "{err}");
    let email = Notify::Email {
        server: "smtp:587".into(),
        from: "a@x".into(),
        to: vec![],
        subject: None,
        allow_insecure: false,
        username: None,
        password: None,
    };
    let want = format!("`to` needs 1 to {}", crate::limits::MAX_EMAIL_RECIPIENTS);
    assert!(check_endpoint(&email).unwrap_err().contains(&want));
    let bad_server = Notify::Email {
        server: "smtp:port".into(),
        from: "a@x".into(),
        to: vec!["b@x".into()],
        subject: None,
        allow_insecure: false,
        username: None,
        password: None,
    };
    assert!(check_endpoint(&bad_server).unwrap_err().contains("not host[:port]"));
    assert!(check_endpoint(&Notify::Log { file: None }).is_ok());
    assert!(check_intervention(&InterventionAction::Systemd {
        unit: "x".into(),
        mode: Some("stop".into()),
        timeout_ms: None,
    })
    .unwrap_err()
    .contains("mode `stop`"));
    assert!(check_intervention(&InterventionAction::Docker {
        container: "web".into(),
        timeout_ms: None
    })
    .is_ok());
}

// ---------------------------------------------------------------- paging and SMS notifiers

/// Delivers `alert` to `endpoint` and returns the counters and undelivered records.
fn deliver_one(endpoint: Notify, alert: Rc<RenderedAlert>) -> (ActionCounters, Vec<Undelivered>) {
    let out = Arc::new(Mutex::new((ActionCounters::default(), Vec::new())));
    let out2 = out.clone();
    let alert = (*alert).clone();
    run(move || async move {
        let actions = Actions::new(fast_config());
        actions.queue_alert(1, &[Arc::new(endpoint)], Rc::new(alert));
        actions.drain(WAIT).await;
        *out2.lock().unwrap() = (actions.counters(), actions.recent_undelivered());
    });
    let r = out.lock().unwrap().clone();
    r
}

fn form(seen: &Seen) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&seen.body).into_owned().collect()
}

#[test]
fn victorops_posts_to_its_keys_and_resolves_by_entity_id() {
    // Splunk On-Call's REST endpoint answers 200 {"result":"success","entity_id":...}.
    let rx = Receiver::start(vec![
        Reply::Answer(200, r#"{"result":"success","entity_id":"cpra:checkout-api#3"}"#),
        Reply::Answer(200, r#"{"result":"success","entity_id":"cpra:checkout-api#3"}"#),
    ]);
    let endpoint = || Notify::Victorops {
        rest_endpoint_key: "rest-secret".into(),
        routing_key: "ops".into(),
        message_type: None,
        entity_id: None,
        url: Some(rx.url("/integrations/generic/20131114/alert")),
    };
    for colour in [Colour::Red, Colour::Green] {
        let (c, _) = deliver_one(endpoint(), alert(colour, 0));
        assert_eq!(c.sent, 1);
    }
    let seen = rx.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.path == "/integrations/generic/20131114/alert/rest-secret/ops"));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    let body = |i: usize| serde_json::from_slice::<serde_json::Value>(&seen[i].body).unwrap();
    assert_eq!(
        (body(0)["message_type"].as_str(), body(1)["message_type"].as_str()),
        (Some("CRITICAL"), Some("RECOVERY"))
    );
    assert_eq!(body(0)["entity_id"], body(1)["entity_id"]);
}

#[test]
fn pushover_sends_a_form_and_a_refusal_is_final() {
    // Pushover answers 200 {"status":1,...}; a bad token 400 {"status":0,"errors":[...]}.
    let rx = Receiver::start(vec![
        Reply::Answer(200, r#"{"status":1,"request":"647d2300-702c-4b38-8b2f-d56326ae460b"}"#),
        Reply::Answer(
            400,
            r#"{"token":"invalid","errors":["application token is invalid"],"status":0}"#,
        ),
    ]);
    let endpoint = || Notify::Pushover {
        app_token: "po-secret".into(),
        user_key: "uQiRzpo4DXghDmr9QzzfQu27cmVRsG".into(),
        title: None,
        priority: 2,
        retry_s: None,
        expire_s: Some(600),
        sound: Some("siren".into()),
        url: Some(rx.url("/1/messages.json")),
    };
    let (c, _) = deliver_one(endpoint(), alert(Colour::Red, 0));
    assert_eq!(c.sent, 1);
    let (c, undelivered) = deliver_one(endpoint(), alert(Colour::Red, 0));
    assert_eq!((c.sent, c.retried, c.undelivered), (0, 0, 1));
    assert_eq!(undelivered[0].reason, "receiver answered HTTP 400");
    let seen = rx.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/1/messages.json"));
    assert_eq!(seen[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    let f = form(&seen[0]);
    let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        (get("token"), get("priority"), get("retry"), get("expire"), get("sound")),
        (Some("po-secret"), Some("2"), Some("60"), Some("600"), Some("siren"))
    );
    assert!(get("message").unwrap().starts_with("CRITICAL ALERT: Checkout API"));
}

#[test]
fn datadog_posts_an_event_with_its_key_headers() {
    // The events API answers 202 {"status":"ok",...}.
    let rx = Receiver::start(vec![Reply::Answer(202, r#"{"status":"ok","event":{"id":1}}"#)]);
    let endpoint = Notify::Datadog {
        api_key: "dd-secret".into(),
        app_key: Some("dd-app-secret".into()),
        site: None,
        tags: vec!["env:prod".into()],
        url: Some(rx.url("/api/v1/events")),
    };
    let (c, _) = deliver_one(endpoint, alert(Colour::Yellow, 0));
    assert_eq!(c.sent, 1);
    let seen = rx.seen();
    assert_eq!(seen[0].path, "/api/v1/events");
    assert_eq!(seen[0].header("dd-api-key"), Some("dd-secret"));
    assert_eq!(seen[0].header("dd-application-key"), Some("dd-app-secret"));
    let v: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(v["alert_type"], "warning");
    assert_eq!(v["tags"], serde_json::json!(["env:prod", "monitor:Checkout API"]));
    assert_eq!(v["aggregation_key"], "checkout-api#3");
}

#[test]
fn twilio_sends_one_sms_per_recipient_and_a_retry_skips_those_accepted() {
    // Messages API: 201 Created per message; the second recipient's first try gets a 503.
    let created = r#"{"sid":"SM1","status":"queued"}"#;
    let rx = Receiver::start(vec![
        Reply::Answer(201, created),
        Reply::Status(503),
        Reply::Answer(201, created),
    ]);
    let endpoint = Notify::Twilio {
        account_sid: "AC0123".into(),
        auth_token: "tw-secret".into(),
        from: "+15550000000".into(),
        to: vec!["+15551111111".into(), "+15552222222".into()],
        url: Some(rx.url("")),
    };
    let (c, _) = deliver_one(endpoint, alert(Colour::Red, 0));
    assert_eq!((c.sent, c.retried, c.undelivered), (1, 1, 0));
    let seen = rx.seen();
    let to: Vec<String> =
        seen.iter().map(|s| form(s).into_iter().find(|(k, _)| k == "To").unwrap().1).collect();
    assert_eq!(to, ["+15551111111", "+15552222222", "+15552222222"]);
    for s in &seen {
        assert_eq!(s.path, "/2010-04-01/Accounts/AC0123/Messages.json");
        assert_eq!(s.header("content-type"), Some("application/x-www-form-urlencoded"));
        let basic = s.header("authorization").unwrap().strip_prefix("Basic ").unwrap();
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD.decode(basic).unwrap();
        assert_eq!(decoded, b"AC0123:tw-secret");
    }
}

#[test]
fn an_unreachable_paging_service_is_undelivered_without_its_secret_in_the_reason() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = Notify::Victorops {
        rest_endpoint_key: "rest-secret".into(),
        routing_key: "ops".into(),
        message_type: None,
        entity_id: None,
        url: Some(format!("http://127.0.0.1:{port}/alert")),
    };
    let (c, undelivered) = deliver_one(endpoint, alert(Colour::Red, 0));
    assert_eq!((c.sent, c.undelivered), (0, 1));
    assert!(!undelivered[0].reason.contains("rest-secret"), "{undelivered:?}");
}

// ---------------------------------------------------------------- aws, retries, systemd timeout

const EC2_OK: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RebootInstancesResponse \
    xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>59dbff89-35bd-4eac-99ed-be587\
    </requestId><return>true</return></RebootInstancesResponse>";
const EC2_NOT_FOUND: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
    <Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-0123456789abcdef0' does \
    not exist</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID>\
    </Response>";
const EC2_UNAVAILABLE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors>\
    <Error><Code>Unavailable</Code><Message>The server is overloaded</Message></Error></Errors>\
    <RequestID>r</RequestID></Response>";

fn aws_env(vars: &[(&str, &str)]) -> aws::Sources {
    let vars: std::collections::HashMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    aws::Sources { env: Arc::new(move |k| vars.get(k).cloned()) }
}

fn reboot(endpoint: String, retries: Option<u32>) -> Intervention {
    reboot_within(endpoint, retries, 5_000)
}

fn reboot_within(endpoint: String, retries: Option<u32>, timeout_ms: u64) -> Intervention {
    Intervention {
        action: InterventionAction::Aws {
            region: "eu-west-1".into(),
            operation: aws::REBOOT_INSTANCE.into(),
            instance_id: "i-0123456789abcdef0".into(),
            endpoint: Some(endpoint),
            timeout_ms: Some(timeout_ms),
        },
        retries,
        max_failures: None,
    }
}

/// The parts of a SigV4 `Authorization` header: credential scope and signed headers, and
/// that the signature is 64 hex digits.
fn sigv4_parts(auth: &str) -> (String, String) {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").unwrap_or_else(|| panic!("{auth}"));
    let mut credential = String::new();
    let mut signed = String::new();
    for part in rest.split(", ") {
        let (k, v) = part.split_once('=').unwrap();
        match k {
            "Credential" => credential = v.to_owned(),
            "SignedHeaders" => signed = v.to_owned(),
            "Signature" => {
                assert!(v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()), "{v}")
            }
            other => panic!("unexpected {other} in {auth}"),
        }
    }
    (credential, signed)
}

#[test]
fn aws_reboots_with_env_credentials_signed_for_ec2_in_the_region() {
    let ec2 = Receiver::start(vec![Reply::Answer(200, EC2_OK)]);
    let env = aws_env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_SESSION_TOKEN", "env-session"),
    ]);
    let result = intervene_with(move |c| c.aws = env, reboot(ec2.url("/"), None));
    assert_eq!(result, Some(InterventionResult::Succeeded));
    let seen = ec2.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!((s.method.as_str(), s.path.as_str()), ("POST", "/"));
    assert_eq!(
        s.body,
        b"Action=RebootInstances&InstanceId.1=i-0123456789abcdef0&Version=2016-11-15"
    );
    let date = s.header("x-amz-date").unwrap();
    assert!(date.len() == 16 && date.ends_with('Z') && date.as_bytes()[8] == b'T', "{date}");
    assert_eq!(s.header("x-amz-security-token"), Some("env-session"));
    let (credential, signed) = sigv4_parts(s.header("authorization").unwrap());
    assert_eq!(credential, format!("AKIDENV/{}/eu-west-1/ec2/aws4_request", &date[..8]));
    assert_eq!(signed, "content-type;host;x-amz-date;x-amz-security-token");
}

#[test]
fn aws_an_ec2_error_fails_and_a_silent_endpoint_is_unknown_and_not_retried() {
    let env = || aws_env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let ec2 = Receiver::start(vec![Reply::Answer(400, EC2_NOT_FOUND)]);
    let e = env();
    let result = intervene_with(move |c| c.aws = e, reboot(ec2.url("/"), None));
    assert_eq!(result, Some(InterventionResult::Failed));
    assert!(ec2.seen()[0].header("x-amz-security-token").is_none());
    // Read, then closed without an answer: the reboot may have happened; retries do not
    // apply to an unknown outcome.
    let silent = Receiver::start(vec![Reply::Close, Reply::Close, Reply::Close]);
    let e = env();
    let result = intervene_with(move |c| c.aws = e, reboot(silent.url("/"), Some(2)));
    assert_eq!(result, Some(InterventionResult::Unknown));
    assert_eq!(silent.seen().len(), 1);
}

#[test]
fn aws_a_failed_reboot_is_retried_as_many_times_as_retries_says() {
    let env = || aws_env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let ec2 = Receiver::start(vec![
        Reply::Answer(503, EC2_UNAVAILABLE),
        Reply::Answer(503, EC2_UNAVAILABLE),
        Reply::Answer(200, EC2_OK),
    ]);
    let e = env();
    let result = intervene_with(move |c| c.aws = e, reboot(ec2.url("/"), Some(2)));
    assert_eq!(result, Some(InterventionResult::Succeeded));
    assert_eq!(ec2.seen().len(), 3);
    let down = Receiver::start(vec![Reply::Answer(503, EC2_UNAVAILABLE); 4]);
    let e = env();
    let result = intervene_with(move |c| c.aws = e, reboot(down.url("/"), Some(1)));
    assert_eq!(result, Some(InterventionResult::Failed));
    assert_eq!(down.seen().len(), 2);
}

#[test]
fn aws_credentials_from_the_shared_file_profile() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n\
         [ops]\naws_access_key_id = AKIAOPS\naws_secret_access_key = o\n",
    )
    .unwrap();
    let ec2 = Receiver::start(vec![Reply::Answer(200, EC2_OK)]);
    let env =
        aws_env(&[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()), ("AWS_PROFILE", "ops")]);
    let result = intervene_with(move |c| c.aws = env, reboot(ec2.url("/"), None));
    assert_eq!(result, Some(InterventionResult::Succeeded));
    let (credential, signed) = sigv4_parts(ec2.seen()[0].header("authorization").unwrap());
    assert!(credential.starts_with("AKIAOPS/"), "{credential}");
    assert_eq!(signed, "content-type;host;x-amz-date");
}

#[test]
fn aws_credentials_from_imdsv2_token_then_role() {
    // One loopback server stands in for the metadata service and EC2, in the order the
    // intervention calls them: token PUT, role list, role credentials, then RebootInstances.
    let rx = Receiver::start(vec![
        Reply::Answer(200, "imds-token-1"),
        Reply::Answer(200, "cpra-role\n"),
        Reply::Answer(
            200,
            r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":"imds-secret","Token":"imds-session","Expiration":"2030-01-01T00:00:00Z"}"#,
        ),
        Reply::Answer(200, EC2_OK),
    ]);
    let env = aws_env(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &rx.url(""))]);
    let result = intervene_with(move |c| c.aws = env, reboot(rx.url("/"), None));
    assert_eq!(result, Some(InterventionResult::Succeeded));
    let seen = rx.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("PUT", "/latest/api/token"));
    assert!(seen[0].header("x-aws-ec2-metadata-token-ttl-seconds").is_some());
    assert_eq!(seen[1].path, "/latest/meta-data/iam/security-credentials/");
    assert_eq!(seen[2].path, "/latest/meta-data/iam/security-credentials/cpra-role");
    for s in &seen[1..3] {
        assert_eq!(s.header("x-aws-ec2-metadata-token"), Some("imds-token-1"));
    }
    assert_eq!(seen[3].header("x-amz-security-token"), Some("imds-session"));
    let (credential, _) = sigv4_parts(seen[3].header("authorization").unwrap());
    assert!(credential.starts_with("ASIAIMDS/"), "{credential}");
}

#[test]
fn aws_without_any_credentials_fails_without_calling_ec2() {
    let ec2 = Receiver::start(vec![]);
    let env = aws_env(&[("AWS_EC2_METADATA_DISABLED", "true")]);
    let result = intervene_with(move |c| c.aws = env, reboot(ec2.url("/"), Some(1)));
    assert_eq!(result, Some(InterventionResult::Failed));
    assert!(ec2.seen().is_empty());
}

/// A stand-in systemctl that appends a line to `record` per run, then runs `then`.
fn systemctl_script(
    dir: &Path,
    name: &str,
    then: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join(name);
    let record = dir.join(format!("{name}.runs"));
    std::fs::write(&script, format!("#!/bin/sh\necho run >> {}\n{then}\n", record.display()))
        .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, record)
}

fn systemd(timeout_ms: Option<u64>, retries: Option<u32>) -> Intervention {
    Intervention {
        action: InterventionAction::Systemd { unit: "web.service".into(), mode: None, timeout_ms },
        retries,
        max_failures: None,
    }
}

#[test]
fn systemd_retries_a_failure_but_not_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let runs = |record: &Path| std::fs::read_to_string(record).unwrap_or_default().lines().count();
    // Exits 1 each time: failed, tried 1 + 2 times.
    let (script, record) = systemctl_script(dir.path(), "failing", "exit 1");
    let result = intervene_with(move |c| c.systemctl = script, systemd(None, Some(2)));
    assert_eq!(result, Some(InterventionResult::Failed));
    assert_eq!(runs(&record), 3);
    // Hangs past its 100 ms timeout: killed, unknown, and not run again.
    let (script, record) = systemctl_script(dir.path(), "hanging", "exec sleep 30");
    let result = intervene_with(move |c| c.systemctl = script, systemd(Some(100), Some(2)));
    assert_eq!(result, Some(InterventionResult::Unknown));
    assert_eq!(runs(&record), 1);
}

/// A TLS server config with a self-signed certificate for 127.0.0.1, and that certificate's
/// PEM (to trust it, or not).
fn self_signed_server() -> (Arc<rustls::ServerConfig>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls_pki_types::CertificateDer::from(cert.der().to_vec())],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    (Arc::new(config), cert.pem())
}

/// An EC2 stand-in over TLS (a private cloud's endpoint behind an internal CA, trusted through
/// `extra_ca_file`): answers one request, returns what it saw.
fn tls_ec2(
    reply: &'static str,
) -> (u16, std::path::PathBuf, tempfile::TempDir, thread::JoinHandle<String>) {
    let (config, pem) = self_signed_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("cloud-ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let seen = read_request(&mut tls).unwrap();
        answer(&mut tls, Reply::Answer(200, reply));
        tls.conn.send_close_notify();
        let _ = tls.flush();
        format!("{} {} {}", seen.method, seen.path, seen.header("authorization").unwrap_or(""))
    });
    (port, ca, dir, server)
}

#[test]
fn aws_reaches_an_https_endpoint_behind_an_internal_ca() {
    let (port, ca, _dir, server) = tls_ec2(EC2_OK);
    let env = aws_env(&[("AWS_ACCESS_KEY_ID", "AKIDTLS"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let result = intervene_with(
        move |c| {
            c.aws = env;
            c.extra_ca_file = Some(ca);
        },
        reboot(format!("https://127.0.0.1:{port}/"), None),
    );
    assert_eq!(result, Some(InterventionResult::Succeeded));
    let seen = server.join().unwrap();
    assert!(seen.starts_with("POST / AWS4-HMAC-SHA256 Credential=AKIDTLS/"), "{seen}");
}

/// A TCP server on 127.0.0.1 that runs `serve` on each connection it accepts, each on its
/// own thread, and counts them. `serve` gets the stop flag and returns once it is set (or after twice
/// [`WAIT`], so that a test of a client that never lets go still ends). Stopped and joined
/// when dropped.
struct StandIn {
    port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl StandIn {
    fn start(serve: impl Fn(std::net::TcpStream, &AtomicBool) + Send + Sync + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (accepted2, stop2) = (accepted.clone(), stop.clone());
        let serve = Arc::new(serve);
        let thread = thread::spawn(move || {
            let mut connections = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        accepted2.fetch_add(1, Ordering::Relaxed);
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(WAIT)).unwrap();
                        let (serve, stop) = (serve.clone(), stop2.clone());
                        connections.push(thread::spawn(move || serve(stream, &stop)));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
            for c in connections {
                let _ = c.join();
            }
        });
        StandIn { port, accepted, stop, thread: Some(thread) }
    }

    fn https(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until `stop` is set, or twice [`WAIT`] at most.
fn hold_until(stop: &AtomicBool) {
    let start = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < 2 * WAIT {
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn aws_an_endpoint_that_never_answers_the_tls_handshake_fails_within_its_timeout() {
    // Accepts the connection, reads the ClientHello, never answers: the attempt ends at its
    // own 300 ms timeout, not sent (so failed, and retried), and frees the blocking thread.
    let mute = StandIn::start(|stream, stop| {
        hold_until(stop);
        drop(stream);
    });
    let env = aws_env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let result = intervene_with(move |c| c.aws = env, reboot_within(mute.https(), Some(1), 300));
    assert_eq!(result, Some(InterventionResult::Failed));
    assert_eq!(mute.accepted(), 2);
}

#[test]
fn aws_an_untrusted_certificate_fails_and_is_retried() {
    // A real TLS server whose certificate no trusted root signed (no extra_ca_file): the
    // handshake fails before the request is handed to TLS, so nothing was sent.
    let (config, _pem) = self_signed_server();
    let untrusted = StandIn::start(move |tcp, _| {
        let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
        let mut tcp = tcp;
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                break;
            }
        }
    });
    let env = aws_env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let result = intervene_with(move |c| c.aws = env, reboot(untrusted.https(), Some(1)));
    assert_eq!(result, Some(InterventionResult::Failed));
    assert_eq!(untrusted.accepted(), 2);
}

#[test]
fn aws_an_answer_trickling_past_the_deadline_is_unknown_timed_out() {
    // Reads the request, sends a head promising more than the answer bound, then a byte every
    // half millisecond: every read gets something, only the deadline ends the attempt.
    let trickle = || {
        StandIn::start(|stream, stop| {
            let mut stream = stream;
            if read_request(&stream).is_none() {
                return;
            }
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
            let start = std::time::Instant::now();
            let mut ok = stream.write_all(head.as_bytes()).is_ok();
            while ok && !stop.load(Ordering::Relaxed) && start.elapsed() < 2 * WAIT {
                ok = stream.write_all(b"x").is_ok();
                thread::sleep(Duration::from_micros(500));
            }
        })
    };
    let server = trickle();
    let url = format!("http://127.0.0.1:{}/", server.port);
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_millis(300);
        let _ = tx.send(aws::exchange(&url, "POST", &[], b"x", deadline, None));
    });
    assert_eq!(rx.recv_timeout(WAIT), Ok(Err(aws::Exchange::Unknown("timed out".into()))));
    drop(server);
    // The same through the intervention: unknown (the request went out), not retried.
    let server = trickle();
    let env = aws_env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let result = intervene_with(move |c| c.aws = env, reboot_within(url, Some(2), 300));
    assert_eq!(result, Some(InterventionResult::Unknown));
    assert_eq!(server.accepted(), 1);
}

#[test]
fn aws_a_step_past_every_deadline_loses_the_race_as_unknown() {
    // A credentials file that is a FIFO nobody writes: opening it blocks the way a hung name
    // lookup does, where no socket deadline reaches. The shard stops waiting at the attempt's
    // timeout plus AWS_RACE_MARGIN. A second intervention queued behind it on the blocking
    // thread is unknown too, and once the step is released it does not call EC2 late: its
    // deadline ran from when it was queued.
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("credentials");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let stuck = aws_env(&[
        ("AWS_SHARED_CREDENTIALS_FILE", fifo.to_str().unwrap()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let keyed = aws_env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let ec2 = Receiver::start(vec![Reply::Answer(200, EC2_OK)]);
    let late = reboot_within(ec2.url("/"), None, 300);
    let out = Arc::new(Mutex::new(None));
    let out2 = out.clone();
    run(move || async move {
        let started = |aws: aws::Sources, action: &Intervention| {
            let mut config = fast_config();
            config.aws = aws;
            let actions = Actions::new(config);
            let result = Rc::new(Cell::new(None));
            let r2 = result.clone();
            actions.start_intervention(4, action, Box::new(move |r| r2.set(Some(r))));
            (actions, result)
        };
        let first = started(stuck, &reboot_within("http://127.0.0.1:9/".into(), Some(2), 300));
        let second = started(keyed, &late);
        let start = std::time::Instant::now();
        while (first.1.get().is_none() || second.1.get().is_none()) && start.elapsed() < WAIT {
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        // A writer that closes at once: the stuck open returns and its read sees the end.
        let _ = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo);
        // One blocking thread takes jobs in order: this one runs after both attempts ended.
        let next = glommio::executor().spawn_blocking(|| true);
        let freed = glommio::timer::timeout(WAIT, async { Ok(next.await) }).await.unwrap_or(false);
        *out2.lock().unwrap() = Some((first.1.get(), second.1.get(), freed));
    });
    let r = out.lock().unwrap().take();
    let unknown = Some(InterventionResult::Unknown);
    assert_eq!(r, Some((unknown, unknown, true)));
    assert!(ec2.seen().is_empty(), "the queued attempt called EC2 after its deadline");
}

/// A clock whose next reading is set by the test: a delivery computes its sleep from the
/// reading it gets when its task starts.
struct SetClock(Cell<u64>);

impl crate::clock::Clock for SetClock {
    fn now_us(&self) -> u64 {
        self.0.get()
    }
}

#[test]
fn alerts_due_at_the_same_moment_arrive_in_queue_order() {
    // A red held by its cooldown and the green that resolves it share a send time. Their
    // timers are computed from different readings of the clock (the green's later), so the
    // green's fires first; it must still wait for the red, or a paging service is told
    // "resolved" before "triggered" and keeps the incident open.
    let rx = Receiver::start(vec![]);
    let url = rx.url("/");
    run(move || async move {
        let clock = Rc::new(SetClock(Cell::new(0)));
        let mut config = fast_config();
        config.clock = clock.clone();
        let actions = Actions::new(config);
        let endpoint = webhook(url);
        actions.queue_alert(1, std::slice::from_ref(&endpoint), alert(Colour::Red, 60));
        // The red's task reads 0 ms: it sleeps 60 ms.
        glommio::executor().yield_task_queue_now().await;
        clock.0.set(55_000);
        // The green's task reads 55 ms: it sleeps 5 ms and wakes first.
        actions.queue_alert(1, std::slice::from_ref(&endpoint), alert(Colour::Green, 60));
        glommio::executor().yield_task_queue_now().await;
        clock.0.set(1_000_000);
        actions.drain(WAIT).await;
        assert_eq!(actions.counters().sent, 2);
    });
    let colours: Vec<String> = rx
        .seen()
        .iter()
        .map(|s| serde_json::from_slice::<serde_json::Value>(&s.body).unwrap()["color"].to_string())
        .collect();
    assert_eq!(colours, ["\"red\"", "\"green\""]);
}
