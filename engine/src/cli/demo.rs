//! `cpra demo [--duration 30s] [--shards N]`: the main job on a built-in fleet, for a fresh
//! machine with no network. Starts loopback targets (healthy, failing, flapping, slow and
//! hostile), a webhook receiver that fails now and then, and an intervention endpoint that
//! brings a target back; writes the manifest to a temporary directory; runs the engine and
//! shows each alert as it is queued (colour, monitor, summary) and the status line.
//!
//! What it is for: seeing CPRA work in one command. What it is not for: benchmarks (the
//! bench crate) or tests (engine/tests).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::run::{init_logging, load, run_plan_status, LogFormat, RunConfig};
use super::{flags, EXIT_OK, EXIT_UNREADABLE};
use crate::alert::RenderedAlert;
use crate::colour::Colour;
use crate::demo::fleet::{spawn, Behaviour, Server};
use crate::demo::scripted::{Route, ScriptedServer};
use crate::limits::MAX_RUN_DURATION_MS;
use crate::manifest::LoadOptions;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to run (Go duration).
    #[arg(long, value_name = "D", default_value = "30s")]
    pub duration: String,
    /// Shards; 0 = one per online core.
    #[arg(long, default_value_t = 0)]
    pub shards: usize,
    /// Keep the generated manifest here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The demo's loopback servers; they stop when dropped.
pub struct DemoFleet {
    /// Targets and the intervention endpoint (`/restart`), scripted per path.
    pub targets: Arc<ScriptedServer>,
    /// The webhook receiver (`/alerts`): every fifth request answers 503 (retried).
    pub receiver: ScriptedServer,
    pub silent: Server,
    pub huge_header: Server,
    pub reset_mid_response: Server,
    /// A port with nothing listening (connection refused).
    pub closed_port: u16,
}

/// Flapping: 4 failures, then 8 successes, round and round.
const FLAP_PERIOD: u64 = 12;
const FLAP_FAILURES: u64 = 4;

impl DemoFleet {
    pub fn start() -> std::io::Result<DemoFleet> {
        let targets = Arc::new(ScriptedServer::start()?);
        let receiver = ScriptedServer::start()?;
        let flaps = Arc::new(AtomicU64::new(0));
        targets.script(|s| {
            s.statuses("/healthy", &[], 200);
            s.statuses("/failing", &[], 503);
            s.set(
                "/flapping",
                Route::Hook(Box::new(move |_, _| {
                    let n = flaps.fetch_add(1, Ordering::Relaxed) % FLAP_PERIOD;
                    if n < FLAP_FAILURES {
                        500
                    } else {
                        200
                    }
                })),
            );
            s.set("/slow", Route::Slow { delay: Duration::from_millis(1_500), status: 200 });
            // Broken until the intervention restarts it.
            s.statuses("/checkout", &[], 503);
            s.set(
                "/restart",
                Route::Hook(Box::new(|_, scripts| {
                    scripts.statuses("/checkout", &[], 200);
                    200
                })),
            );
        });
        let deliveries = AtomicU64::new(0);
        receiver.script(|s| {
            s.set(
                "/alerts",
                Route::Hook(Box::new(move |_, _| {
                    if deliveries.fetch_add(1, Ordering::Relaxed) % 5 == 4 {
                        503
                    } else {
                        200
                    }
                })),
            )
        });
        // Bind then drop: the port is free and nothing listens on it.
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Ok(DemoFleet {
            targets,
            receiver,
            silent: spawn(Behaviour::Silent),
            huge_header: spawn(Behaviour::HugeHeader),
            reset_mid_response: spawn(Behaviour::ResetMidResponse),
            closed_port,
        })
    }
}

/// The demo manifest for `fleet`; `alert_log` is the log notifier's file; `icmp` adds a ping
/// of 127.0.0.1.
pub fn demo_manifest(fleet: &DemoFleet, alert_log: &str, icmp: bool) -> String {
    let t = |p: &str| fleet.targets.url(p);
    let webhook = fleet.receiver.url("/alerts");
    let codes = format!(
        "    codes:\n      red: {{notify: webhook, config: {{url: \"{webhook}\"}}}}\n      yellow: {{notify: log, config: {{file: \"{alert_log}\"}}}}\n      cyan: {{notify: webhook, config: {{url: \"{webhook}\"}}}}\n      green: {{notify: webhook, config: {{url: \"{webhook}\"}}}}\n"
    );
    let http = |name: &str, url: &str, timeout: &str| {
        format!(
            "  - name: {name}\n    pulse_check:\n      type: http\n      interval: 1s\n      timeout: {timeout}\n      unhealthy_threshold: 2\n      healthy_threshold: 2\n      config: {{url: \"{url}\"}}\n{codes}"
        )
    };
    let mut out = String::from(
        "# Generated by `cpra demo`: a small fleet on loopback.\nversion: \"1\"\nmonitors:\n",
    );
    out.push_str(&http("healthy-api", &t("/healthy"), "800ms"));
    out.push_str(&http("failing-api", &t("/failing"), "800ms"));
    out.push_str(&http("flapping-api", &t("/flapping"), "800ms"));
    out.push_str(&http("slow-api", &t("/slow"), "800ms"));
    out.push_str(&http("silent-server", &format!("http://{}/", fleet.silent.addr), "800ms"));
    out.push_str(&http("huge-header", &format!("http://{}/", fleet.huge_header.addr), "800ms"));
    out.push_str(&http(
        "reset-mid-response",
        &format!("http://{}/", fleet.reset_mid_response.addr),
        "800ms",
    ));
    out.push_str(&format!(
        "  - name: checkout-api\n    pulse_check:\n      type: http\n      interval: 1s\n      timeout: 800ms\n      unhealthy_threshold: 3\n      healthy_threshold: 2\n      config: {{url: \"{}\"}}\n    intervention:\n      action: webhook\n      target: {{url: \"{}\", method: POST, timeout: 2s}}\n{codes}",
        t("/checkout"),
        t("/restart")
    ));
    out.push_str(&format!(
        "  - name: database-port\n    pulse_check:\n      type: tcp\n      interval: 1s\n      timeout: 500ms\n      config: {{host: 127.0.0.1, port: {}}}\n{codes}",
        fleet.targets.addr.port()
    ));
    out.push_str(&format!(
        "  - name: cache-port-closed\n    pulse_check:\n      type: tcp\n      interval: 1s\n      timeout: 500ms\n      config: {{host: 127.0.0.1, port: {}}}\n{codes}",
        fleet.closed_port
    ));
    if icmp {
        out.push_str(&format!(
            "  - name: loopback-ping\n    pulse_check:\n      type: icmp\n      interval: 1s\n      timeout: 500ms\n      config: {{host: 127.0.0.1}}\n{codes}"
        ));
    }
    out
}

/// ANSI colour of an alert colour (on a terminal).
fn ansi(colour: Colour) -> &'static str {
    match colour {
        Colour::Red => "\x1b[1;31m",
        Colour::Yellow => "\x1b[1;33m",
        Colour::Green => "\x1b[1;32m",
        Colour::Cyan => "\x1b[1;36m",
        Colour::Gray => "\x1b[1;90m",
    }
}

/// One alert as the demo shows it: `[  3.2s] RED     failing-api  CRITICAL ALERT: ...`.
pub fn alert_line(a: &RenderedAlert, elapsed: Duration, colour: bool) -> String {
    let name = a.colour.as_str().to_ascii_uppercase();
    let (on, off) = if colour { (ansi(a.colour), "\x1b[0m") } else { ("", "") };
    format!(
        "[{:>6.1}s] {on}{name:<6}{off} {:<20} {}: {}",
        elapsed.as_secs_f64(),
        a.monitor,
        a.title,
        a.summary
    )
}

/// Why ICMP monitors cannot run here, if they cannot: the same sockets the ICMP probe tries
/// (raw, then an unprivileged ping socket), opened and closed at once.
fn icmp_problem() -> Option<&'static str> {
    for kind in [libc::SOCK_RAW, libc::SOCK_DGRAM] {
        // SAFETY: socket(2) takes no pointers and touches no memory of ours; a valid result is
        // a descriptor only we hold, closed right below.
        let fd = unsafe { libc::socket(libc::AF_INET, kind, libc::IPPROTO_ICMP) };
        if fd >= 0 {
            // SAFETY: `fd` was just returned by socket(2) and nothing else holds it, so
            // closing it cannot close a descriptor someone else uses.
            unsafe { libc::close(fd) };
            return None;
        }
    }
    Some(cpra_net::icmp::PERMISSION_HELP)
}

pub fn run(args: &DemoArgs) -> i32 {
    // Alerts and the status line are the demo's output; logs only for warnings, unless
    // RUST_LOG says otherwise. Not the deliveries cut off by the stop (alerts waiting for
    // their cooldown, one line each): the summary at the end counts them.
    init_logging(LogFormat::Human, "warn,cpra_engine::actions=error");
    if let Err(e) = crate::hangup::catch() {
        tracing::warn!("{e}");
    }
    let numbers = flags::duration_ms("--duration", &args.duration, MAX_RUN_DURATION_MS)
        .and_then(|ms| Ok((Duration::from_millis(ms), flags::shards(args.shards)?)));
    let duration = match numbers {
        Ok((duration, _)) => duration,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let fleet = match DemoFleet::start() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot start the demo fleet on 127.0.0.1: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("cpra-demo-{}", std::process::id())),
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return EXIT_UNREADABLE;
    }
    let icmp_problem = icmp_problem();
    let alert_log = dir.join("alerts.log");
    let manifest = demo_manifest(&fleet, &alert_log.display().to_string(), icmp_problem.is_none());
    let path = dir.join("demo.yaml");
    if let Err(e) = std::fs::write(&path, &manifest) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return EXIT_UNREADABLE;
    }
    let mut out = std::io::stdout();
    let colour = out.is_terminal();
    let _ = writeln!(out, "cpra demo: a small fleet on 127.0.0.1 for {}", args.duration);
    let _ = writeln!(out, "  manifest:      {}", path.display());
    let _ = writeln!(out, "  yellow alerts: log notifier -> {}", alert_log.display());
    let _ = writeln!(
        out,
        "  other alerts:  webhook -> {} (answers 503 every fifth time; CPRA retries)",
        fleet.receiver.url("/alerts")
    );
    let _ = writeln!(out, "  checkout-api is broken until its webhook intervention restarts it");
    if let Some(problem) = icmp_problem {
        let _ = writeln!(out, "  note: ICMP monitor left out: {problem}");
    }
    let _ = writeln!(out);
    let plan = match load(&path, &LoadOptions::default(), &mut std::io::stderr()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let started = Instant::now();
    let raised = Arc::new(AtomicU64::new(0));
    let raised_seen = raised.clone();
    let observer = Arc::new(move |a: &RenderedAlert| {
        raised_seen.fetch_add(1, Ordering::Relaxed);
        // Shards print from their own threads: one write per line keeps lines whole.
        let mut line = alert_line(a, started.elapsed(), colour);
        // The runtime's clock starts just after `started`, so this slightly overstates the
        // wait: fine for a hint.
        let held_ms = a.not_before_ms.saturating_sub(started.elapsed().as_millis() as u64);
        if held_ms >= 1_000 {
            line.push_str(&format!(" (cooldown: sent in {} s)", held_ms / 1_000));
        }
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    });
    let config = RunConfig {
        shards: args.shards,
        duration: Some(duration),
        grace_ms: 5_000,
        observer: Some(observer),
        // A demo's incidents are throwaway: nothing is kept, and nothing is left in the
        // working directory.
        journal: None,
        // The demo is a short look at the engine, not a node to watch.
        listen: None,
        reload_from: None,
        api_token: None,
        cooldown_ms: None,
        node: crate::placement::Node::SINGLE,
        ..RunConfig::default()
    };
    let mut last = None;
    let code = run_plan_status(Arc::new(plan), &config, &mut std::io::stdout(), &mut last);
    if code == EXIT_OK && args.dir.is_none() {
        let _ = writeln!(
            out,
            "(manifest and alert log left in {}; the targets stopped with the demo, so \
             `cpra validate {}` still reads the manifest, but a run of it finds them gone)",
            dir.display(),
            path.display()
        );
    }
    let Some(status) = last else { return code };
    let webhook = fleet.receiver.requests(Some("/alerts"));
    let summary = Summary {
        raised: raised.load(Ordering::Relaxed),
        status,
        webhook_requests: webhook.len() as u64,
        webhook_503: webhook.iter().filter(|r| r.status == 503).count() as u64,
        log_lines: std::fs::read_to_string(&alert_log).map_or(0, |t| t.lines().count() as u64),
        restarts: fleet.targets.requests(Some("/restart")).len() as u64,
    };
    for line in summary.lines() {
        let _ = writeln!(out, "{line}");
    }
    code
}

/// What the demo did, from the engine's own counts and what its receivers got.
struct Summary {
    /// Alerts the state machine raised (the lines printed above).
    raised: u64,
    status: crate::shard::StatusSnapshot,
    webhook_requests: u64,
    webhook_503: u64,
    /// Lines in the log notifier's file (one per yellow delivered).
    log_lines: u64,
    restarts: u64,
}

impl Summary {
    /// The demo's last lines: every alert accounted for. Each code of the demo has one
    /// notifier, so an alert raised is one delivery queued.
    fn lines(&self) -> Vec<String> {
        let s = &self.status;
        let mut out = vec![format!(
            "summary: {} alerts raised; {} delivered ({} to the webhook in {} requests, {} of \
             them a 503 that CPRA retried; {} to the log file)",
            self.raised,
            s.alerts_sent,
            self.webhook_requests - self.webhook_503,
            self.webhook_requests,
            self.webhook_503,
            self.log_lines
        )];
        let mut rest = Vec::new();
        if s.alerts_undelivered > 0 {
            rest.push(format!(
                "{} still waiting for their {}-minute cooldown (or a retry) when the demo \
                 stopped",
                s.alerts_undelivered,
                crate::state::DEFAULT_COOLDOWN_MS / 60_000
            ));
        }
        if s.alerts_deduplicated > 0 {
            rest.push(format!(
                "{} de-duplicated (the same alert was already on its way)",
                s.alerts_deduplicated
            ));
        }
        if s.alerts_cancelled > 0 {
            rest.push(format!("{} cancelled", s.alerts_cancelled));
        }
        if !rest.is_empty() {
            out.push(format!("         not delivered: {}", rest.join("; ")));
        }
        out.push(format!(
            "         checkout-api: restarted {} time(s) by its webhook intervention",
            self.restarts
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load_str, LoadOptions};

    #[test]
    fn the_demo_manifest_is_valid() {
        let fleet = DemoFleet::start().unwrap();
        for icmp in [false, true] {
            let text = demo_manifest(&fleet, "/tmp/cpra-demo-test/alerts.log", icmp);
            let (monitors, report) = load_str(&text, None, &LoadOptions::default());
            assert!(report.is_valid(), "{:?}", report.problems.kept);
            assert_eq!(report.problems.warnings, 0, "{:?}", report.problems.kept);
            assert_eq!(monitors.len(), 10 + usize::from(icmp));
        }
    }

    #[test]
    fn the_summary_accounts_for_every_alert_raised() {
        let status = crate::shard::StatusSnapshot {
            alerts_queued: 21,
            alerts_sent: 17,
            alerts_undelivered: 3,
            alerts_deduplicated: 1,
            ..Default::default()
        };
        let summary = Summary {
            raised: 21,
            status,
            webhook_requests: 11,
            webhook_503: 2,
            log_lines: 8,
            restarts: 1,
        };
        let lines = summary.lines();
        assert_eq!(
            lines[0],
            "summary: 21 alerts raised; 17 delivered (9 to the webhook in 11 requests, 2 of them \
             a 503 that CPRA retried; 8 to the log file)"
        );
        assert!(lines[1].contains("3 still waiting") && lines[1].contains("1 de-duplicated"));
        // Raised = delivered + not delivered; delivered = webhook + log.
        let s = &summary.status;
        assert_eq!(summary.raised, s.alerts_sent + s.alerts_undelivered + s.alerts_deduplicated);
        assert_eq!(s.alerts_sent, 9 + summary.log_lines);
    }

    #[test]
    fn alert_lines_name_colour_monitor_and_summary() {
        let a = RenderedAlert {
            colour: Colour::Red,
            title: "CRITICAL ALERT",
            status: "FAILED",
            severity: crate::alert::Severity::Critical,
            reason: crate::state::Reason::ThresholdReached,
            monitor: "failing-api".into(),
            monitor_id: "failing-api".into(),
            incident_id: Some("failing-api#1".into()),
            incident_seq: Some(1),
            summary: "2 consecutive failures".into(),
            action: String::new(),
            next_steps: Vec::new(),
            not_before_ms: 0,
        };
        let line = alert_line(&a, Duration::from_millis(3_200), false);
        assert_eq!(
            line,
            "[   3.2s] RED    failing-api          CRITICAL ALERT: 2 consecutive failures"
        );
        assert!(alert_line(&a, Duration::ZERO, true).contains("\x1b[1;31mRED"));
    }
}
