//! What `cpra run` shows, with the real binary against real servers on loopback: a secret
//! from the environment reaches the target it is meant for and nothing else (not stderr, not
//! a notifier's body), and a manifest cannot split, forge or colour a log line.

mod support;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::ScriptedServer;

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);
const TOKEN: &str = "tok-5ecr3t-e2e-7c1f";

/// A child `cpra` that is killed and reaped if the test ends early (a failed assertion).
struct Running {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    reader: Option<JoinHandle<()>>,
}

impl Running {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut command = Command::new(CPRA);
        command
            .args(args)
            .args(support::isolated(args))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG");
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        // Raw lines, split at LF only: a line a manifest split would show as two here.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { return };
                if tx.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                    return;
                }
            }
        });
        Running { child: Some(child), lines, seen: Vec::new(), reader: Some(reader) }
    }

    /// Waits (at most [`BOUND`]) for a stderr line for which `pred` holds.
    fn wait_for_line(&mut self, pred: impl Fn(&str) -> bool) {
        if self.seen.iter().any(|l| pred(l)) {
            return;
        }
        let end = Instant::now() + BOUND;
        while let Ok(line) = self.lines.recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            let hit = pred(&line);
            self.seen.push(line);
            if hit {
                return;
            }
        }
        panic!("no such line within {BOUND:?}:\n{}", self.seen.join("\n"));
    }

    /// SIGTERM, then the exit code and every stderr line.
    fn stop(mut self) -> (Option<i32>, Vec<String>) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) takes no pointers; the pid is our child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        self.seen.extend(self.lines.try_iter());
        (status.code(), std::mem::take(&mut self.seen))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A target that answers every request 500 and keeps each request head as it came.
struct FailingTarget {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FailingTarget {
    fn start() -> FailingTarget {
        FailingTarget::answering(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
    }

    /// A server that answers every request with `reply` (its body read first, so a close
    /// never resets the connection under the answer).
    fn answering(reply: &'static [u8]) -> FailingTarget {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (heads, stop) = (heads.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => break,
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let length = text
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length.min(64 * 1024)];
                    let _ = stream.read_exact(&mut body);
                    heads.lock().unwrap().push(text);
                    let _ = stream.write_all(reply);
                }
            })
        };
        FailingTarget { port, heads, stop, thread: Some(thread) }
    }
}

impl Drop for FailingTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A failing probe whose URL and `Authorization` header carry a token from the environment:
/// the target gets the token, while stderr and the bodies sent to a webhook, Slack and
/// PagerDuty show the URL with `token=***`.
#[test]
fn a_secret_from_the_environment_reaches_the_target_and_no_log_or_alert() {
    let target = FailingTarget::start();
    let receiver = ScriptedServer::start().unwrap();
    for path in ["/hook", "/slack", "/pd"] {
        receiver.script(|s| s.statuses(path, &[], 200));
    }
    let yaml = format!(
        "endpoints:\n\
         \x20 hook: {{type: webhook, config: {{url: \"{hook}\"}}}}\n\
         \x20 chat: {{type: slack, config: {{hook: \"{slack}\"}}}}\n\
         \x20 pager: {{type: pagerduty, config: {{routing_key: rk, url: \"{pd}\"}}}}\n\
         notification_groups: {{oncall: [hook, chat, pager]}}\n\
         monitors:\n\
         \x20 - name: api\n\
         \x20   pulse_check:\n\
         \x20     type: http\n\
         \x20     interval: 100ms\n\
         \x20     timeout: 2s\n\
         \x20     config:\n\
         \x20       url: \"http://127.0.0.1:{port}/health?token=${{CPRA_E2E_TOKEN}}\"\n\
         \x20       headers: {{Authorization: \"Bearer ${{CPRA_E2E_TOKEN}}\"}}\n\
         \x20   codes: {{red: {{notify_group: oncall}}}}\n",
        hook = receiver.url("/hook"),
        slack = receiver.url("/slack"),
        pd = receiver.url("/pd"),
        port = target.port,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "fleet.yaml", &yaml);
    let mut run = Running::start(&["run", &path, "--shards", "1"], &[("CPRA_E2E_TOKEN", TOKEN)]);
    let end = Instant::now() + BOUND;
    for path in ["/hook", "/slack", "/pd"] {
        let got =
            receiver.wait_for(Some(path), end.saturating_duration_since(Instant::now()), |r| {
                !r.is_empty()
            });
        assert!(!got.is_empty(), "no alert to {path}");
    }
    run.wait_for_line(|l| l.contains("CRITICAL ALERT"));
    let (code, lines) = run.stop();
    let stderr = lines.join("\n");
    assert_eq!(code, Some(0), "{stderr}");

    let heads = target.heads.lock().unwrap().clone();
    assert!(!heads.is_empty());
    assert!(
        heads[0].starts_with(&format!("GET /health?token={TOKEN} HTTP/1.1\r\n")),
        "the request on the wire keeps the real value: {}",
        heads[0]
    );
    assert!(heads[0].contains(&format!("Authorization: Bearer {TOKEN}\r\n")), "{}", heads[0]);

    let shown = format!("http://127.0.0.1:{}/health?token=***", target.port);
    assert!(!stderr.contains(TOKEN), "the token is in stderr:\n{stderr}");
    assert!(stderr.contains(&shown), "the alert names the masked URL:\n{stderr}");
    for r in receiver.requests(None) {
        let body = r.body_str();
        assert!(!body.contains(TOKEN), "the token is in the body sent to {}: {body}", r.path);
        assert!(body.contains(&shown), "{}: {body}", r.path);
    }
}

/// The loader refuses credentials in a probe's URL (so they never reach a check); the
/// refusal does not repeat them, nor a value from the environment it quotes.
#[test]
fn a_refused_manifest_does_not_print_its_secrets() {
    let yaml = "monitors:\n\
        \x20 - name: api\n\
        \x20   pulse_check:\n\
        \x20     type: http\n\
        \x20     interval: \"${CPRA_E2E_TOKEN}\"\n\
        \x20     config: {url: \"http://user:PASSWORD-e2e@127.0.0.1:1/?token=${CPRA_E2E_TOKEN}\"}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "fleet.yaml", yaml);
    for args in [vec!["run", &path], vec!["validate", &path]] {
        let out = Command::new(CPRA)
            .args(&args)
            .args(support::isolated(&args))
            .env("CPRA_E2E_TOKEN", TOKEN)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("credentials in the URL are not supported"), "{text}");
        assert!(text.contains("'***' is not a duration"), "{text}");
        assert!(!text.contains("PASSWORD-e2e") && !text.contains(TOKEN), "{text}");
    }
}

/// A monitor whose name is a log line of its own: CR LF, a forged level, a colour escape.
const HOSTILE_NAME_YAML: &str = "monitors:\n\
    \x20 - name: \"evil\\r\\nINFO forged line \\e[31mred\"\n\
    \x20   pulse_check: {type: tcp, interval: 100ms, timeout: 1s, config: {host: 127.0.0.1, port: 1}}\n\
    \x20   codes: {red: {notify: log}}\n";

/// Without a terminal (stderr is a pipe here) the human log has no escape byte at all, and
/// the name's CR LF and ESC are written escaped, inside the line that names it.
#[test]
fn a_hostile_monitor_name_cannot_split_forge_or_colour_a_human_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "fleet.yaml", HOSTILE_NAME_YAML);
    let mut run = Running::start(&["run", &path, "--shards", "1"], &[]);
    run.wait_for_line(|l| l.contains("CRITICAL ALERT"));
    let (code, lines) = run.stop();
    let stderr = lines.join("\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains('\x1b'), "an escape byte in stderr:\n{stderr:?}");
    assert!(!stderr.contains('\r'), "a CR in stderr:\n{stderr:?}");
    assert!(lines.iter().all(|l| !l.starts_with("INFO forged")), "a forged line:\n{stderr}");
    assert!(
        stderr.contains(r"monitor=evil\r\nINFO forged line \u{1b}[31mred"),
        "the name, escaped:\n{stderr}"
    );
    assert!(stderr.contains("stopped:"), "{stderr}");
}

/// With `--log-format json` every line on stderr is one JSON object: the engine's events, the
/// alert log, and the lines `run` prints itself (`stopping`, the status line, `stopped`).
#[test]
fn with_json_logs_every_stderr_line_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "fleet.yaml", HOSTILE_NAME_YAML);
    let mut run = Running::start(&["run", &path, "--shards", "1", "--log-format", "json"], &[]);
    run.wait_for_line(|l| l.contains("CRITICAL ALERT"));
    let (code, lines) = run.stop();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    let values: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    let messages: Vec<String> = values
        .iter()
        .map(|v| v["fields"]["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    for word in ["stopping:", "monitors 1 up", "stopped:"] {
        assert!(messages.iter().any(|m| m.starts_with(word) || m.contains(word)), "{word}");
    }
    // The log notifier's alert is its own JSON object, not a string inside another event.
    let alert = values
        .iter()
        .find(|v| v["type"] == "code")
        .unwrap_or_else(|| panic!("no alert line:\n{}", lines.join("\n")));
    assert_eq!(alert["color"], "red");
    assert!(alert["message"].as_str().unwrap().contains("CRITICAL ALERT"), "{alert}");
    assert!(alert.get("fields").is_none(), "{alert}");

    // A refused manifest's problems too, each as an error.
    let bad = write(&dir, "bad.yaml", "monitors:\n  - name: a\n    pulse_check: {type: htp}\n");
    let out = Command::new(CPRA)
        .args(["run", &bad, "--log-format", "json", "--listen", "none", "--data-dir", "none"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().count() >= 2, "{stderr}");
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v["level"] == "ERROR" || v["level"] == "INFO", "{line}");
    }
    assert!(stderr.contains("not starting"), "{stderr}");
}

/// The aws intervention in a real `cpra run`: the credentials come from the process's
/// environment, the EC2 stand-in sees a request signed with them for EC2 in the region, the
/// success is a cyan alert, and neither the secret key nor the session token is ever logged.
#[test]
fn an_aws_intervention_signs_with_the_process_credentials_and_never_logs_them() {
    const SECRET: &str = "aws-secret-e2e-9f3b";
    const SESSION: &str = "aws-session-e2e-41aa";
    let ec2 = FailingTarget::answering(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: 147\r\n\
          Connection: close\r\n\r\n<RebootInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/\
          2016-11-15/\"><requestId>1</requestId><return>true</return></RebootInstancesResponse>\n\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "monitors:\n  - name: batch\n    pulse_check: {{type: tcp, interval: 100ms, timeout: 1s, \
         config: {{host: 127.0.0.1, port: 1}}}}\n    intervention:\n      action: aws\n      \
         target: {{region: eu-north-1, instance_id: i-0123456789abcdef0, endpoint: \
         \"http://127.0.0.1:{}/\", timeout: 5s}}\n    codes: {{cyan: {{notify: log}}}}\n",
        ec2.port
    );
    let path = write(&dir, "fleet.yaml", &yaml);
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDE2E"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", SESSION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let mut run = Running::start(&["run", &path, "--shards", "1"], &env);
    run.wait_for_line(|l| l.contains("INTERVENTION SUCCESS"));
    let (code, lines) = run.stop();
    let stderr = lines.join("\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains(SECRET) && !stderr.contains(SESSION), "{stderr}");
    let heads = ec2.heads.lock().unwrap().clone();
    let head = &heads[0];
    assert!(head.starts_with("POST / HTTP/1.1\r\n"), "{head}");
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    let date = header("x-amz-date");
    assert_eq!(header("x-amz-security-token"), SESSION);
    let auth = header("authorization");
    let scope = format!("Credential=AKIDE2E/{}/eu-north-1/ec2/aws4_request, ", &date[..8]);
    assert!(auth.starts_with(&format!("AWS4-HMAC-SHA256 {scope}")), "{auth}");
    assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "));
}
