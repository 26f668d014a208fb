//! The content of an alert, rendered once for every notifier: title, status and severity per
//! colour, the monitor, the incident id, a one-line summary of what happened, the recommended
//! action and next steps, as plain text, as structured fields (serde) and as the JSON log line
//! of Go CPRA.
//!
//! What it is for: turning an [`Effect::Alert`](crate::state::Effect) plus the monitor's names
//! and the check's [`Outcome`] into words. What it is not for: deciding whether or when an
//! alert goes out (`state.rs`), or sending it (the notifiers, which format these fields for
//! their own APIs). Rendering allocates, which is fine: it runs once per alert, not per check.

use std::fmt::Write as _;

use cpra_net::{Outcome, Warning};
use serde::Serialize;

use crate::colour::Colour;
use crate::state::{Effect, Reason};

/// How urgent an alert is, as receivers (PagerDuty, Alertmanager) name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The fixed words of a colour (the table in docs/state-machine.md, the same as Go CPRA's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColourWords {
    pub title: &'static str,
    pub status: &'static str,
    pub severity: Severity,
}

pub const fn words(colour: Colour) -> ColourWords {
    let (title, status, severity) = match colour {
        Colour::Yellow => ("DEGRADED ALERT", "DEGRADED", Severity::Warning),
        Colour::Red => ("CRITICAL ALERT", "FAILED", Severity::Critical),
        Colour::Cyan => ("INTERVENTION SUCCESS", "RESTORED", Severity::Info),
        Colour::Green => ("RECOVERY NOTICE", "RECOVERED", Severity::Info),
        Colour::Gray => ("MAINTENANCE MODE", "MAINTENANCE", Severity::Info),
    };
    ColourWords { title, status, severity }
}

/// The process-wide incident id: the monitor id and its monitor-local episode number
/// (`MonitorState::incident_seq`), e.g. `checkout-api#3`. Unambiguous because the number after
/// the last `#` is all digits. Stable across restarts as long as the store keeps the state.
pub fn incident_id(monitor_id: &str, incident_seq: u32) -> String {
    format!("{monitor_id}#{incident_seq}")
}

/// What the renderer needs to know about the monitor, borrowed from its cold config.
#[derive(Clone, Copy, Debug)]
pub struct MonitorInfo<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// What the check is aimed at, as people know it: a URL or `host:port`.
    pub target: &'a str,
    /// A few words on the intervention, e.g. `docker restart web-1`, if one is configured.
    pub intervention: Option<&'a str>,
}

/// One alert in words, for every notifier. Serializes to its structured fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RenderedAlert {
    #[serde(rename = "color")]
    pub colour: Colour,
    pub title: &'static str,
    pub status: &'static str,
    pub severity: Severity,
    pub reason: Reason,
    /// The monitor's name.
    pub monitor: String,
    pub monitor_id: String,
    /// `None` for gray (a maintenance window is not an incident).
    pub incident_id: Option<String>,
    /// The monitor-local number in `incident_id`: with the colour and `not_before_ms`, what
    /// tells two alerts of one monitor apart (`actions::DedupKey`). Not a payload field.
    #[serde(skip)]
    pub incident_seq: Option<u32>,
    /// One line that says what happened.
    pub summary: String,
    /// The recommended action, one line.
    pub action: String,
    pub next_steps: Vec<String>,
    /// Earliest send time, ms on the runtime's clock (the cooldown may have delayed it).
    pub not_before_ms: u64,
}

/// Renders an [`Effect::Alert`]; `None` for any other effect. `outcome` is the outcome of the
/// check that caused the alert (the shard keeps the last one per monitor), if there was one.
pub fn render(
    effect: &Effect,
    monitor: &MonitorInfo<'_>,
    outcome: Option<&Outcome>,
) -> Option<RenderedAlert> {
    let Effect::Alert { colour, reason, incident_seq, consecutive_failures, not_before_ms } =
        *effect
    else {
        return None;
    };
    let (action, next_steps) = advice(reason, monitor, outcome);
    let summary = summary(reason, consecutive_failures, monitor, outcome);
    Some(rebuild(colour, reason, monitor, incident_seq, summary, action, next_steps, not_before_ms))
}

/// An alert from its rendered texts: what [`render`] builds, and an alert rendered before a
/// restart, rebuilt from what the journal kept (its wording is the colour's).
#[allow(clippy::too_many_arguments)]
pub fn rebuild(
    colour: Colour,
    reason: Reason,
    monitor: &MonitorInfo<'_>,
    incident_seq: Option<u32>,
    summary: String,
    action: String,
    next_steps: Vec<String>,
    not_before_ms: u64,
) -> RenderedAlert {
    let w = words(colour);
    RenderedAlert {
        colour,
        title: w.title,
        status: w.status,
        severity: w.severity,
        reason,
        monitor: monitor.name.to_owned(),
        monitor_id: monitor.id.to_owned(),
        incident_id: incident_seq.map(|seq| incident_id(monitor.id, seq)),
        incident_seq,
        summary,
        action,
        next_steps,
        not_before_ms,
    }
}

/// `3 consecutive failures`, `1 failure`.
fn failures(n: u16) -> String {
    match n {
        1 => "1 failure".to_owned(),
        n => format!("{n} consecutive failures"),
    }
}

/// The one-line summary: what happened, with the check's own message.
fn summary(reason: Reason, n: u16, monitor: &MonitorInfo<'_>, outcome: Option<&Outcome>) -> String {
    let target = monitor.target;
    let what = match outcome {
        Some(o) => o.describe(target),
        None => target.to_owned(),
    };
    match reason {
        Reason::FirstFailure | Reason::ThresholdReached => format!("{}: {what}", failures(n)),
        Reason::VerificationFailed => {
            format!("check failed after a successful intervention: {what}")
        }
        Reason::InterventionFailed => format!("intervention failed after {}: {what}", failures(n)),
        Reason::InterventionOutcomeUnknown => {
            format!("intervention outcome unknown (not retried) after {}: {what}", failures(n))
        }
        Reason::InterventionSucceeded => match monitor.intervention {
            Some(iv) => format!("intervention succeeded ({iv}); verifying {target}"),
            None => format!("intervention succeeded; verifying {target}"),
        },
        Reason::Recovered => format!("recovered: {what}"),
        Reason::WarningRaised => what,
        Reason::WarningCleared => format!("warning cleared: {what}"),
        Reason::MaintenanceStarted => format!("maintenance window started for {target}"),
        Reason::Acknowledged => format!("incident acknowledged: {target}"),
    }
}

/// The recommended action and the next steps for a reason.
fn advice(
    reason: Reason,
    monitor: &MonitorInfo<'_>,
    outcome: Option<&Outcome>,
) -> (String, Vec<String>) {
    let target = monitor.target;
    let steps = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match reason {
        Reason::FirstFailure => (
            "Watch it: one failed check is not an incident yet".to_owned(),
            vec![
                format!("Check {target} and its recent changes"),
                "CPRA keeps checking; a CRITICAL ALERT follows if failures reach the threshold"
                    .to_owned(),
            ],
        ),
        Reason::ThresholdReached => (
            format!("Investigate and restore {target} now"),
            vec![
                format!("Confirm the failure from another host: {target}"),
                "Check the service's logs, resources and recent deploys".to_owned(),
                "A RECOVERY NOTICE follows when checks pass again".to_owned(),
            ],
        ),
        Reason::VerificationFailed => (
            format!("The intervention did not fix {target}: restore it by hand"),
            steps(&[
                "Check whether the intervention's effect was undone (crash loop, bad config)",
                "Check the service's logs and recent deploys",
            ]),
        ),
        Reason::InterventionFailed => (
            format!("The automatic intervention failed: restore {target} by hand"),
            steps(&[
                "Read the intervention's error in the CPRA log",
                "Check the service's logs and host",
            ]),
        ),
        Reason::InterventionOutcomeUnknown => (
            "Check whether the intervention ran before acting: it is not retried".to_owned(),
            steps(&[
                "Look at the target's logs for the intervention (restart, webhook call)",
                "Restore the service by hand if it did not run",
            ]),
        ),
        Reason::InterventionSucceeded => (
            "No action needed now; find the root cause later".to_owned(),
            steps(&["CPRA verifies with the next checks; a CRITICAL ALERT follows if they fail"]),
        ),
        Reason::Recovered => {
            ("No action needed".to_owned(), steps(&["Review what caused the incident"]))
        }
        Reason::WarningRaised => match outcome.and_then(|o| o.warning) {
            Some(Warning::CertificateExpiring { .. }) => (
                format!("Renew the certificate of {target} before it expires"),
                steps(&[
                    "Check the certificate's automatic renewal",
                    "Deploy the renewed certificate",
                ]),
            ),
            Some(Warning::Slow { .. }) => (
                format!("Investigate why {target} answers slowly"),
                steps(&["Check the service's load and its dependencies"]),
            ),
            None => (format!("Investigate the warning on {target}"), Vec::new()),
        },
        Reason::WarningCleared => ("No action needed".to_owned(), Vec::new()),
        Reason::MaintenanceStarted => (
            "No action needed during maintenance".to_owned(),
            steps(&[
                "Checks keep running; no other alert is sent until the window ends",
                "A failure that persists after the window alerts at once",
            ]),
        ),
        Reason::Acknowledged => (
            "Someone is on it: no action needed from others".to_owned(),
            steps(&["A RECOVERY NOTICE follows when checks pass again"]),
        ),
    }
}

/// The acknowledgement of incident `incident_seq` by `by` (through the API): sent like a cyan
/// alert, worded as an acknowledgement.
pub fn acknowledgement(
    monitor: &MonitorInfo<'_>,
    incident_seq: u32,
    by: &str,
    now_ms: u64,
) -> RenderedAlert {
    let id = incident_id(monitor.id, incident_seq);
    let (action, next_steps) = advice(Reason::Acknowledged, monitor, None);
    RenderedAlert {
        colour: Colour::Cyan,
        title: "INCIDENT ACKNOWLEDGED",
        status: "ACKNOWLEDGED",
        severity: Severity::Info,
        reason: Reason::Acknowledged,
        monitor: monitor.name.to_owned(),
        monitor_id: monitor.id.to_owned(),
        summary: format!("incident {id} acknowledged by {by}: {}", monitor.target),
        incident_id: Some(id),
        incident_seq: Some(incident_seq),
        action,
        next_steps,
        not_before_ms: now_ms,
    }
}

impl RenderedAlert {
    /// One line for chat and logs: `CRITICAL ALERT: checkout-api: 3 consecutive failures: ...`.
    pub fn headline(&self) -> String {
        format!("{}: {}: {}", self.title, self.monitor, self.summary)
    }

    /// The plain-text body for email, chat and webhooks that take text.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}: {}", self.title, self.monitor);
        let _ = write!(
            out,
            "Status: {} | Severity: {} | Monitor id: {}",
            self.status,
            self.severity.as_str(),
            self.monitor_id
        );
        if let Some(id) = &self.incident_id {
            let _ = write!(out, " | Incident: {id}");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", self.summary);
        let _ = writeln!(out, "Action: {}", self.action);
        if !self.next_steps.is_empty() {
            let _ = writeln!(out, "Next steps:");
            for step in &self.next_steps {
                let _ = writeln!(out, "- {step}");
            }
        }
        out
    }

    /// The JSON log line: Go CPRA's fields (`timestamp, type: "code", monitor, job_id, color,
    /// status, severity, summary, action, next_steps, message`) plus `monitor_id` and
    /// `incident_id`. `timestamp_ms` is Unix time in ms (rendered RFC 3339, UTC); `job_id` is
    /// the id of the delivery job (the outbox entry) this line reports on.
    pub fn log_line(&self, timestamp_ms: i64, job_id: &str) -> String {
        #[derive(Serialize)]
        struct LogLine<'a> {
            timestamp: String,
            #[serde(rename = "type")]
            kind: &'static str,
            monitor: &'a str,
            job_id: &'a str,
            color: Colour,
            status: &'static str,
            severity: Severity,
            summary: &'a str,
            action: &'a str,
            next_steps: &'a [String],
            message: String,
            monitor_id: &'a str,
            incident_id: Option<&'a str>,
        }
        let timestamp = chrono::DateTime::from_timestamp_millis(timestamp_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let line = LogLine {
            timestamp,
            kind: "code",
            monitor: &self.monitor,
            job_id,
            color: self.colour,
            status: self.status,
            severity: self.severity,
            summary: &self.summary,
            action: &self.action,
            next_steps: &self.next_steps,
            message: self.headline(),
            monitor_id: &self.monitor_id,
            incident_id: self.incident_id.as_deref(),
        };
        // Serializing plain strings and enums into a String cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use cpra_net::{Detail, FailureKind};

    use super::*;
    use crate::colour::ColourSet;
    use crate::state::{transition, Event, MonitorState, Policy};

    const MONITOR: MonitorInfo<'static> = MonitorInfo {
        id: "checkout-api",
        name: "Checkout API",
        target: "10.0.0.5:443",
        intervention: Some("docker restart checkout"),
    };

    #[test]
    fn an_acknowledgement_names_the_incident_and_who() {
        let a = acknowledgement(&MONITOR, 3, "alice", 42);
        assert_eq!(
            (a.colour, a.title, a.reason),
            (Colour::Cyan, "INCIDENT ACKNOWLEDGED", Reason::Acknowledged)
        );
        assert_eq!(a.incident_id.as_deref(), Some("checkout-api#3"));
        assert_eq!(a.summary, "incident checkout-api#3 acknowledged by alice: 10.0.0.5:443");
        assert_eq!(a.not_before_ms, 42);
    }

    fn alert(colour: Colour, reason: Reason, n: u16) -> Effect {
        let incident_seq = (colour != Colour::Gray).then_some(3);
        Effect::Alert { colour, reason, incident_seq, consecutive_failures: n, not_before_ms: 42 }
    }

    #[test]
    fn colour_table_matches_the_design() {
        let table = [
            (Colour::Yellow, "DEGRADED ALERT", "DEGRADED", "warning"),
            (Colour::Red, "CRITICAL ALERT", "FAILED", "critical"),
            (Colour::Cyan, "INTERVENTION SUCCESS", "RESTORED", "info"),
            (Colour::Green, "RECOVERY NOTICE", "RECOVERED", "info"),
            (Colour::Gray, "MAINTENANCE MODE", "MAINTENANCE", "info"),
        ];
        for (colour, title, status, severity) in table {
            let w = words(colour);
            assert_eq!((w.title, w.status, w.severity.as_str()), (title, status, severity));
        }
    }

    #[test]
    fn red_summary_says_what_happened() {
        let refused = Outcome::failure(FailureKind::ConnectRefused, 300, Detail::None);
        let a = render(&alert(Colour::Red, Reason::ThresholdReached, 3), &MONITOR, Some(&refused))
            .unwrap();
        assert_eq!(a.summary, "3 consecutive failures: connect refused to 10.0.0.5:443");
        assert_eq!(a.incident_id.as_deref(), Some("checkout-api#3"));
        assert_eq!(
            a.headline(),
            "CRITICAL ALERT: Checkout API: 3 consecutive failures: connect refused to 10.0.0.5:443"
        );
        let text = a.text();
        assert!(text.starts_with("CRITICAL ALERT: Checkout API\nStatus: FAILED | Severity: critical | Monitor id: checkout-api | Incident: checkout-api#3\n3 consecutive failures"), "{text}");
        assert!(
            text.contains("\nAction: Investigate and restore 10.0.0.5:443 now\nNext steps:\n- "),
            "{text}"
        );
    }

    #[test]
    fn every_reason_renders_a_nonempty_summary_and_action() {
        let reasons = [
            (Colour::Yellow, Reason::FirstFailure),
            (Colour::Red, Reason::ThresholdReached),
            (Colour::Red, Reason::VerificationFailed),
            (Colour::Red, Reason::InterventionFailed),
            (Colour::Red, Reason::InterventionOutcomeUnknown),
            (Colour::Cyan, Reason::InterventionSucceeded),
            (Colour::Green, Reason::Recovered),
            (Colour::Yellow, Reason::WarningRaised),
            (Colour::Green, Reason::WarningCleared),
            (Colour::Gray, Reason::MaintenanceStarted),
        ];
        let timeout = Outcome::failure(FailureKind::Timeout, 5_000_000, Detail::None);
        for (colour, reason) in reasons {
            for outcome in [None, Some(&timeout)] {
                let a = render(&alert(colour, reason, 1), &MONITOR, outcome).unwrap();
                assert!(!a.summary.is_empty() && !a.action.is_empty(), "{reason:?}");
                assert!(!a.summary.contains('\n') && !a.action.contains('\n'), "{reason:?}");
                assert_eq!(a.incident_id.is_none(), colour == Colour::Gray);
            }
        }
        assert!(render(&Effect::CancelQueuedAlerts, &MONITOR, None).is_none());
    }

    #[test]
    fn certificate_warning_says_when_it_expires() {
        let mut ok = Outcome::success(20_000);
        ok.warning = Some(Warning::CertificateExpiring { days_left: 9 });
        let a =
            render(&alert(Colour::Yellow, Reason::WarningRaised, 0), &MONITOR, Some(&ok)).unwrap();
        assert_eq!(a.summary, "certificate for 10.0.0.5:443 expires in 9 days");
        assert_eq!(a.action, "Renew the certificate of 10.0.0.5:443 before it expires");
    }

    #[test]
    fn log_line_has_the_go_fields_plus_ids() {
        let refused = Outcome::failure(FailureKind::ConnectRefused, 300, Detail::None);
        let a = render(&alert(Colour::Red, Reason::ThresholdReached, 3), &MONITOR, Some(&refused))
            .unwrap();
        let line = a.log_line(1_700_000_000_123, "job-77");
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "timestamp",
            "type",
            "monitor",
            "job_id",
            "color",
            "status",
            "severity",
            "summary",
            "action",
            "next_steps",
            "message",
            "monitor_id",
            "incident_id",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["type"], "code");
        assert_eq!(v["monitor"], "Checkout API");
        assert_eq!(v["job_id"], "job-77");
        assert_eq!(v["color"], "red");
        assert_eq!(v["status"], "FAILED");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["summary"], "3 consecutive failures: connect refused to 10.0.0.5:443");
        assert_eq!(v["monitor_id"], "checkout-api");
        assert_eq!(v["incident_id"], "checkout-api#3");
        assert!(v["next_steps"].as_array().is_some_and(|s| !s.is_empty()));
        assert_eq!(v["message"], a.headline());
    }

    #[test]
    fn structured_fields_serialize() {
        let a =
            render(&alert(Colour::Gray, Reason::MaintenanceStarted, 0), &MONITOR, None).unwrap();
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["color"], "gray");
        assert_eq!(v["title"], "MAINTENANCE MODE");
        assert_eq!(v["reason"], "maintenance_started");
        assert_eq!(v["incident_id"], serde_json::Value::Null);
    }

    #[test]
    fn from_state_machine_effects_to_words() {
        // The whole path a shard takes: event -> effects -> rendered alerts.
        let policy = Policy { unhealthy: 1, dispatch: ColourSet::ALL, ..Policy::default() };
        let mut state = MonitorState::new();
        let outcome = Outcome::failure(FailureKind::Status, 1000, Detail::HttpStatus(503));
        let generation = state.begin_check(state.generation().next());
        let event = Event::CheckFailed { generation, kind: FailureKind::Status };
        let fx = transition(&mut state, &policy, event, 5_000);
        let monitor = MonitorInfo { target: "https://shop.example/health", ..MONITOR };
        let rendered: Vec<String> = fx
            .iter()
            .filter_map(|e| render(e, &monitor, Some(&outcome)))
            .map(|a| a.headline())
            .collect();
        assert_eq!(
            rendered,
            [
                "DEGRADED ALERT: Checkout API: 1 failure: unexpected status from https://shop.example/health (HTTP 503)",
                "CRITICAL ALERT: Checkout API: 1 failure: unexpected status from https://shop.example/health (HTTP 503)",
            ]
        );
    }
}
