//! `cpra run` as a user runs it: the real binary, real files, a real receiver on loopback.

mod support;
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
    assert!(stderr.contains("bad.yaml:5:13: monitor 'web'"), "{stderr}");
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
            "  - name: m{i}\n    pulse_check:\n      type: http\n      interval: 50ms\n      timeout: 1s\n      config: {{url: \"{}\"}}\n    codes:\n      red: {{notify: webhook, config: {{url: \"{}\"}}}}\n",
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
            "--listen",
            "none",
            "--shards",
            "1",
            "--grace",
            "20s",
            "--log-format",
            "json",
            "--data-dir",
            "none",
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

/// One manifest per kind of problem `cpra run` refuses, each once: (file name, text, the
/// text the problem's position is at, the monitor named (None: a problem outside
/// `monitors`), what the message says).
const KINDS: &[(&str, &str, &str, Option<&str>, &str)] = &[
    (
        "dns_expect_of_the_wrong_type.yaml",
        "monitors:\n  - name: ns\n    pulse_check: {type: dns, config: {host: example.com, server: 127.0.0.1, record_type: AAAA, expect: 10.0.0.1}}\n",
        "10.0.0.1}",
        Some("ns"),
        "expect: `10.0.0.1` is not an IPv6 address (record_type AAAA)",
    ),
    (
        "dns_unknown_record_type.yaml",
        "monitors:\n  - name: ns\n    pulse_check: {type: dns, config: {host: example.com, server: 127.0.0.1, record_type: PTR}}\n",
        "PTR",
        Some("ns"),
        "unknown DNS record type 'PTR'",
    ),
    (
        "expected_header_bad_regex.yaml",
        "monitors:\n  - name: api\n    pulse_check: {type: http, config: {url: \"http://127.0.0.1:1/\", expected_headers: {X-Version: \"/(/\"}}}\n",
        "\"/(/\"",
        Some("api"),
        "expected value of header 'X-Version' is a bad regular expression",
    ),
    (
        "grpc_tls_option_without_tls.yaml",
        "monitors:\n  - name: rpc\n    pulse_check: {type: grpc, config: {host: 127.0.0.1, port: 1, insecure_skip_verify: true}}\n",
        "true}",
        Some("rpc"),
        "insecure_skip_verify: only used over TLS, and this grpc pulse is h2c",
    ),
    (
        "cooldown_too_long.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n    codes:\n      red: {notify: log, cooldown: 9h}\n",
        "9h",
        Some("web"),
        "cooldown: 9h is longer than 8h, the longest cooldown CPRA keeps",
    ),
    (
        "maintenance_ends_before_it_starts.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n    maintenance:\n      - {start: \"2026-03-01T04:00:00Z\", end: \"2026-03-01T03:00:00Z\"}\n",
        "\"2026-03-01T03",
        Some("web"),
        "end: the window ends (2026-03-01T03:00:00.000Z) before it starts (2026-03-01T04:00:00.000Z)",
    ),
    (
        "slack_hook_without_scheme.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n    codes:\n      red: {notify: slack, config: {hook: hooks.slack.com/services/T0/B0/x}}\n",
        "hooks.slack.com",
        Some("web"),
        "hook: not a URL: it has no scheme",
    ),
    (
        "interval_745h.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, interval: 745h, config: {host: 127.0.0.1, port: 1}}\n",
        "745h",
        Some("web"),
        "interval: 745h is outside what the scheduler runs (1ms to 744h)",
    ),
    (
        "timeout_745h.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, interval: 744h, timeout: 745h, config: {host: 127.0.0.1, port: 1}}\n",
        "745h",
        Some("web"),
        "timeout: 745h is longer than the longest allowed (744h)",
    ),
    (
        "header_crlf.yaml",
        "monitors:\n  - name: web\n    pulse_check:\n      type: http\n      config:\n        url: \"http://127.0.0.1:1/\"\n        headers: {X-Token: \"a\\r\\nX-Evil: 1\"}\n",
        "\"a\\r",
        Some("web"),
        "header 'X-Token': header value has a line break (CR or LF)",
    ),
    (
        "header_name.yaml",
        "monitors:\n  - name: web\n    pulse_check:\n      type: http\n      config: {url: \"http://127.0.0.1:1/\", headers: [\"X Token: 1\"]}\n",
        "\"X Token",
        Some("web"),
        "header name 'X Token' is not an HTTP token",
    ),
    (
        "missing_ca_file.yaml",
        "monitors:\n  - name: web\n    pulse_check:\n      type: http\n      config: {url: \"https://127.0.0.1:1/\", ca_file: /nonexistent/ca.pem}\n",
        "/nonexistent",
        Some("web"),
        "ca_file: cannot use it: ca_file /nonexistent/ca.pem: No such file",
    ),
    (
        "probe_url.yaml",
        "monitors:\n  - name: web\n    pulse_check:\n      type: http\n      config: {url: \"http://127.0.0.1:99999/\"}\n",
        "\"http://127.0.0.1:99999",
        Some("web"),
        "url: not a valid URL: invalid port number",
    ),
    (
        "webhook_url.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n    codes:\n      red: {notify: webhook, config: {url: \"ftp://127.0.0.1/hook\"}}\n",
        "\"ftp:",
        Some("web"),
        "url: URL scheme 'ftp' is not http or https",
    ),
    (
        "endpoint_url.yaml",
        "endpoints:\n  pager: {type: alertmanager, config: {url: \"http://[::1/\"}}\nmonitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
        "\"http://[",
        None,
        "url: not a valid URL: invalid IPv6 address",
    ),
    (
        "email_address.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n    codes:\n      red: {notify: email, config: {server: \"127.0.0.1:25\", from: \"cpra <a@b>\", to: [c@d]}}\n",
        "\"cpra <",
        Some("web"),
        "from: 'cpra <a@b>' is not a mail address",
    ),
    (
        "intervention_unit.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n    intervention: {action: systemd, target: {unit: \"-x.service\"}}\n",
        "\"-x.service",
        Some("web"),
        "unit: systemd unit `-x.service` is not a unit name",
    ),
    (
        "intervention_kubernetes.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n    intervention: {action: kubernetes, target: {kind: cronjob, name: web}}\n",
        "cronjob",
        Some("web"),
        "kind: kubernetes kind `cronjob`: use deployment, statefulset or daemonset",
    ),
    (
        "dns_server.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: dns, config: {host: example.com, server: ns1.example.com}}\n",
        "ns1.example.com",
        Some("web"),
        "server: dns server `ns1.example.com` must be an IP address",
    ),
    (
        "docker_container.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: docker, config: {container: \"web/1\"}}\n",
        "\"web/1",
        Some("web"),
        "container: invalid container name \"web/1\"",
    ),
    (
        "tls_days.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tls, config: {host: 127.0.0.1, warn_days: 5, critical_days: 10}}\n",
        "10}",
        Some("web"),
        "critical_days (10) is more than warn_days (5)",
    ),
    (
        "misspelt_interval.yaml",
        "monitors:\n  - name: web\n    pulse_check:\n      type: tcp\n      intervall: 5s\n      config: {host: 127.0.0.1, port: 1}\n",
        "intervall",
        Some("web"),
        "unknown field 'intervall' at monitors[0].pulse_check.intervall; did you mean 'interval'?",
    ),
    (
        "misspelt_status.json",
        "{\"monitors\": [\n  {\"name\": \"web\", \"pulse_check\": {\"type\": \"http\", \"config\": {\"url\": \"http://127.0.0.1:1/\", \"expected_staus\": [200]}}}\n]}\n",
        "\"expected_staus",
        Some("web"),
        "unknown field 'expected_staus' at monitors[0].pulse_check.config.expected_staus; did you mean 'expected_status'?",
    ),
    (
        "duplicate_key.yaml",
        "monitors:\n  - name: web\n    pulse_check:\n      type: tcp\n      config: {host: 127.0.0.1, port: 1, port: 2}\n",
        "port: 2",
        Some("web"),
        "key 'port' is given twice in one mapping (first at line 5, column 33)",
    ),
    (
        "second_monitors_key.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\nversion: \"1\"\nmonitors:\n  - name: db\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 2}}\n",
        "monitors:\n  - name: db",
        None,
        "top-level field 'monitors' is given twice (first at line 1, column 1)",
    ),
    (
        "second_yaml_document.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n---\nmonitors:\n  - name: db\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 2}}\n",
        "---",
        None,
        "a second YAML document starts here",
    ),
    (
        "second_json_document.json",
        "{\"monitors\": [{\"name\": \"web\", \"pulse_check\": {\"type\": \"tcp\", \"config\": {\"host\": \"127.0.0.1\", \"port\": 1}}}]}\n{\"monitors\": []}\n",
        "{\"monitors\": []}",
        None,
        "unexpected '{' after the end of the document",
    ),
    (
        "trailing_json_data.json",
        "{\"monitors\": [{\"name\": \"web\", \"pulse_check\": {\"type\": \"tcp\", \"config\": {\"host\": \"127.0.0.1\", \"port\": 1}}}]} trailing\n",
        "trailing",
        None,
        "unexpected 't' after the end of the document",
    ),
    (
        // An empty second document is one too, named at its `---`.
        "empty_second_yaml_document.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n---\n",
        "---",
        None,
        "a second YAML document starts here",
    ),
    (
        // Decoded by the direct JSON path, which leaves a key given twice to the general one.
        "duplicate_key.json",
        "{\"monitors\": [{\"name\": \"web\", \"pulse_check\": {\"type\": \"tcp\", \"config\": {\"host\": \"127.0.0.1\", \"port\": 1, \"port\": 2}}}]}\n",
        "\"port\": 2",
        Some("web"),
        "key 'port' is given twice in one mapping (first at line 1, column 94)",
    ),
    (
        "duplicate_endpoint.yaml",
        "endpoints:\n  hook: {type: webhook, config: {url: \"http://127.0.0.1:1/a\"}}\n  hook: {type: webhook, config: {url: \"http://127.0.0.1:1/b\"}}\nmonitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
        "hook: {type: webhook, config: {url: \"http://127.0.0.1:1/b",
        None,
        "endpoint 'hook' is defined twice (first at line 2, column 3)",
    ),
    (
        "duplicate_group.yaml",
        "endpoints:\n  hook: {type: webhook, config: {url: \"http://127.0.0.1:1/a\"}}\nnotification_groups:\n  oncall: [hook]\n  oncall: []\nmonitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
        "oncall: []",
        None,
        "notification group 'oncall' is defined twice (first at line 4, column 3)",
    ),
    (
        "endpoint_twice_in_a_group.yaml",
        "endpoints:\n  hook: {type: webhook, config: {url: \"http://127.0.0.1:1/a\"}}\nnotification_groups:\n  oncall: [hook, hook]\nmonitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
        "hook]",
        None,
        "endpoint 'hook' is listed twice in group 'oncall' (first at line 4, column 12)",
    ),
    (
        // Billion laughs: a4 stands for 111,111 nodes, past one alias's bound.
        "alias_bomb.yaml",
        "x-a0: &a0 [x, x, x, x, x, x, x, x, x, x]\nx-a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\nx-a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]\nx-a3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]\nx-a4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]\nmonitors:\n  - name: web\n    tags: *a4\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
        "*a4",
        None,
        "alias to an anchored block of more than 65536 values, the most one alias may stand for",
    ),
];

/// The 1-based line and column (in characters) where `marker` first starts in `text`.
fn position_of(text: &str, marker: &str) -> (usize, usize) {
    let at = text.find(marker).unwrap_or_else(|| panic!("no {marker:?} in the text"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn cpra(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(CPRA).args(args).args(support::isolated(args)).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn validate_and_run_agree_on_every_kind_of_problem() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, marker, monitor, message) in KINDS {
        let path = write(&dir, name, text);
        let file = path.to_str().unwrap();
        let (line, column) = position_of(text, marker);
        let monitor = monitor.map(|m| format!("monitor '{m}': ")).unwrap_or_default();
        let expected = format!("error: {file}:{line}:{column}: {monitor}{message}");

        let (code, report, _) = cpra(&["validate", file]);
        assert_eq!(code, Some(1), "{name}: {report}");
        assert!(report.lines().any(|l| l.starts_with(&expected)), "{name}: {expected}\n{report}");
        assert!(report.contains(": INVALID: "), "{name}: {report}");

        // `run` prints the same report and refuses to start, with the same exit code.
        let (run_code, _, run_err) = cpra(&["run", file, "--duration", "1s"]);
        assert_eq!(run_code, code, "{name}: {run_err}");
        let refusal =
            "error: not starting: fix the errors above (`cpra validate` shows them too)\n";
        assert_eq!(run_err, format!("{report}{refusal}"), "{name}");
    }
}

#[test]
fn lenient_makes_a_misspelt_field_a_warning_for_validate_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "misspelt.yaml",
        "monitors:\n  - name: web\n    enabled: false\n    pulse_check: {type: tcp, intervall: 5s, config: {host: 127.0.0.1, port: 1}}\n",
    );
    let file = path.to_str().unwrap();
    let (code, report, _) = cpra(&["validate", "--lenient", file]);
    assert_eq!(code, Some(0), "{report}");
    let warning = format!("warning: {file}:4:30: monitor 'web': unknown field 'intervall'");
    assert!(report.starts_with(&warning), "{report}");
    assert!(report.contains("valid: 1 monitors, 0 errors, 1 warnings"), "{report}");

    let (run_code, _, run_err) = cpra(&[
        "run",
        "--lenient",
        file,
        "--duration",
        "1s",
        "--listen",
        "none",
        "--data-dir",
        "none",
    ]);
    assert_eq!(run_code, Some(0), "{run_err}");
    assert!(run_err.contains("unknown field 'intervall'") && run_err.contains("stopped: "));

    // Without it, both refuse; the old --strict is accepted and changes nothing.
    assert_eq!(cpra(&["validate", file]).0, Some(1));
    assert_eq!(cpra(&["validate", "--strict", file]).0, Some(1));
    assert_eq!(cpra(&["run", "--strict", file, "--duration", "1s"]).0, Some(1));
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
        .args([
            "run",
            path.to_str().unwrap(),
            "--duration",
            "3s",
            "--shards",
            "1",
            "--listen",
            "none",
            "--data-dir",
            "none",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The final status line and summary (how many checks ran depends on the machine's load).
    assert!(stderr.contains("monitors 1 up "), "{stderr}");
    assert!(stderr.contains("stopped: ") && stderr.contains("0 undelivered"), "{stderr}");
}

/// A child `cpra` killed and reaped if the test ends early (a failed assertion).
struct ChildGuard(Option<std::process::Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "one.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
    );
    let data = dir.path().join("data");
    let file = path.to_str().unwrap();
    let data_arg = data.to_str().unwrap();
    let mut first = ChildGuard(Some(
        Command::new(CPRA)
            .args(["run", file, "--shards", "1", "--data-dir", data_arg, "--fsync", "never"])
            .args(["--listen", "none"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let pid = first.0.as_ref().unwrap().id();
    // The first holds the lock once its pid is in the lock file (it writes it after locking).
    let started = Instant::now();
    while std::fs::read_to_string(data.join("lock")).unwrap_or_default().trim() != pid.to_string() {
        assert!(started.elapsed() < BOUND, "the first run never took the data dir");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, _, stderr) =
        cpra(&["run", file, "--shards", "1", "--data-dir", data_arg, "--listen", "none"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: not starting: the data dir {data_arg} is in use by process {pid}"
        )),
        "{stderr}"
    );
    assert!(data.join("shard-0").is_dir());
    if let Some(mut c) = first.0.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }

    // Killed, the first leaves no stale lock: the kernel dropped it with the process.
    let (code, _, stderr) = cpra(&[
        "run",
        file,
        "--shards",
        "1",
        "--data-dir",
        data_arg,
        "--fsync",
        "never",
        "--duration",
        "1s",
        "--listen",
        "none",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains(&format!("data dir {data_arg}: never synced")), "{stderr}");
}

#[test]
fn data_dir_none_runs_without_persistence_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "one.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
    );
    let out = Command::new(CPRA)
        .args(["run", path.to_str().unwrap(), "--shards", "1", "--duration", "1s"])
        .args(["--data-dir", "none", "--listen", "none"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("no data dir (--data-dir none)"), "{stderr}");
    assert!(!dir.path().join("cpra-data").exists());
}

#[test]
fn the_default_data_dir_is_cpra_data_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "one.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
    );
    let out = Command::new(CPRA)
        .args(["run", path.to_str().unwrap(), "--shards", "1", "--duration", "1s"])
        .args(["--fsync", "never", "--listen", "none"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(dir.path().join("cpra-data/shard-0").is_dir(), "{stderr}");
    assert!(dir.path().join("cpra-data/lock").is_file());
}

#[test]
fn sighup_is_logged_and_the_run_goes_on_until_sigterm() {
    use std::io::BufRead;
    let target = ScriptedServer::start().unwrap();
    target.script(|s| s.statuses("/up", &[], 200));
    let yaml = format!(
        "version: \"1\"\nmonitors:\n  - name: up\n    pulse_check:\n      type: http\n      interval: 50ms\n      timeout: 1s\n      config: {{url: \"{}\"}}\n",
        target.url("/up")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "fleet.yaml", &yaml);
    let mut child = Command::new(CPRA)
        .args(["run", path.to_str().unwrap(), "--shards", "1", "--listen", "none"])
        .args(["--data-dir", "none"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut guard = ChildGuard(Some(child));
    let pid = guard.0.as_ref().unwrap().id() as i32;
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let wait_line = |what: &str| -> String {
        let end = Instant::now() + BOUND;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {what:?} within the bound: {e}"),
            }
        }
    };
    wait_line("running");
    // SAFETY: kill(2) takes no pointers; the pid is our child, not yet reaped (the guard
    // reaps it), so it cannot have been reused.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    wait_line("manifest reloaded");
    // Still running and still checking: more checks reach the target after the hangup.
    let after_hup = target.requests(Some("/up")).len();
    let seen = target.wait_for(Some("/up"), BOUND, |r| r.len() >= after_hup + 3);
    assert!(seen.len() >= after_hup + 3, "no checks after SIGHUP");
    assert!(guard.0.as_mut().unwrap().try_wait().unwrap().is_none(), "SIGHUP ended the run");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = guard.0.take().unwrap().wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// docs/operations.md: a low `RLIMIT_MEMLOCK` stops the start with advice, for root too (the
/// test runs as whoever runs the suite; as root it proves root is not exempt).
#[test]
fn a_low_memlock_limit_stops_the_start_with_advice() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "fleet.yaml",
        "monitors:\n  - name: t\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
    );
    let mut cmd = Command::new(CPRA);
    cmd.args([
        "run",
        path.to_str().unwrap(),
        "--shards",
        "1",
        "--duration",
        "1s",
        "--listen",
        "none",
        "--data-dir",
        "none",
    ]);
    // SAFETY: between fork and exec the closure only calls setrlimit(2), which is
    // async-signal-safe, on a stack-allocated struct.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 64 * 1024, rlim_max: 64 * 1024 };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RLIMIT_MEMLOCK") && stderr.contains("ulimit -l"), "{stderr}");
}
