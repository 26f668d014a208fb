//! `cpra run` under a low file-descriptor limit: the real binary as a child whose
//! `RLIMIT_NOFILE` is set before it starts, a slow but healthy target and a webhook receiver
//! on loopback. Out of descriptors, CPRA must delay checks, never page.

mod support;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cpra_engine::demo::scripted::{Route, ScriptedServer};

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);

/// Kills and reaps the child by its pid if the test ends early (a failed assertion).
struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Waits (at most [`BOUND`]) for the child to exit; returns its exit code and stderr.
    /// Stderr is read as it comes, so a chatty child never blocks on a full pipe.
    fn wait(mut self) -> (Option<i32>, String) {
        let mut stderr = self.0.as_mut().and_then(|c| c.stderr.take()).expect("piped stderr");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let end = Instant::now() + BOUND;
        let status = loop {
            if let Some(status) = self.0.as_mut().expect("a child").try_wait().unwrap() {
                break status;
            }
            // The guard kills and reaps the child when this panics.
            assert!(Instant::now() < end, "cpra did not stop within {BOUND:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        self.0 = None;
        (status.code(), reader.join().unwrap())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `cpra args` with `RLIMIT_NOFILE` at `limit` (soft and hard, so CPRA cannot raise
/// it) and `taken` descriptors already open on /dev/null, inherited from the parent as a
/// program started by a careless supervisor would inherit them: they take the lowest
/// numbers, which is what the limit bounds.
fn cpra_under_limit(args: &[&str], limit: u64, taken: usize) -> ChildGuard {
    let null = std::fs::File::open("/dev/null").unwrap();
    let null_fd = null.as_raw_fd();
    let mut command = Command::new(CPRA);
    command.args(args).args(support::isolated(args)).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and calls only dup(2) and
    // setrlimit(2), which are async-signal-safe and touch no memory shared with the parent.
    unsafe {
        command.pre_exec(move || {
            for _ in 0..taken {
                // dup gives the lowest free number, without close-on-exec: it survives exec.
                if libc::dup(null_fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let child = command.spawn().unwrap();
    drop(null);
    ChildGuard(Some(child))
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// 500 http monitors on a healthy target that answers in 300 ms, under a limit of 128 with 80
/// descriptors already taken: the budget allows 51 checks in flight, only about 40 sockets
/// can be opened, so checks find no descriptor. None of them is a failure: no monitor is
/// down, no alert is sent, and the delayed checks are counted and warned about.
#[test]
fn out_of_descriptors_checks_are_delayed_and_nothing_pages() {
    const MONITORS: usize = 500;
    let target = ScriptedServer::start().unwrap();
    target
        .script(|s| s.set("/slow", Route::Slow { delay: Duration::from_millis(300), status: 200 }));
    let receiver = ScriptedServer::start().unwrap();
    receiver.script(|s| s.statuses("/alerts", &[], 200));
    let mut yaml = String::from("version: \"1\"\nmonitors:\n");
    for i in 0..MONITORS {
        yaml.push_str(&format!(
            "  - name: m{i}\n    pulse_check:\n      type: http\n      interval: 2s\n      timeout: 1500ms\n      config: {{url: \"{}\", retries: 0}}\n    codes:\n      red: {{notify: webhook, config: {{url: \"{}\"}}}}\n      yellow: {{notify: webhook, config: {{url: \"{1}\"}}}}\n",
            target.url("/slow"),
            receiver.url("/alerts")
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "fleet.yaml", &yaml);
    let child = cpra_under_limit(
        &[
            "run",
            path.to_str().unwrap(),
            "--shards",
            "1",
            "--duration",
            "4s",
            "--grace",
            "5s",
            // The journal's descriptors are part of the budget: keep it on.
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--fsync",
            "never",
        ],
        128,
        80,
    );
    let (code, stderr) = child.wait();
    assert_eq!(code, Some(0), "{stderr}");
    // The budget, said once at start: 128 - 29 (process) - 34 (shard) = 65, 16 to deliveries.
    assert_eq!(
        stderr.matches("fd limit 128: at most 49 checks in flight per shard").count(),
        1,
        "{stderr}"
    );
    // The last status line: nothing down. Some monitors may not have been checked yet.
    let status = stderr.lines().rev().find(|l| l.starts_with("monitors ")).expect("status line");
    assert!(status.contains(" down 0 "), "{status}\n{stderr}");
    assert!(!status.contains(" up 0 "), "the target was never reached: {stderr}");
    // Delayed, counted, warned about (rate-limited: once at the first delay in a 4 s run).
    let stopped = stderr.lines().find(|l| l.starts_with("stopped: ")).expect("summary");
    let delayed: u64 = stopped
        .rsplit(", ")
        .next()
        .and_then(|s| s.strip_suffix(" delayed for want of a local resource"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no delayed count in {stopped}"));
    assert!(delayed > 0, "no check found the limit: the test proves nothing\n{stderr}");
    assert_eq!(
        stderr.matches("could not open a socket (Too many open files").count(),
        1,
        "{stderr}"
    );
    assert!(stopped.contains(" 0 alerts queued, 0 sent, 0 undelivered"), "{stopped}");
    assert_eq!(receiver.requests(None).len(), 0, "alerts reached the receiver\n{stderr}");
}

#[test]
fn a_limit_too_low_for_a_minimal_budget_refuses_to_start_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "one.yaml",
        "monitors:\n  - name: web\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n",
    );
    let child = cpra_under_limit(
        &["run", path.to_str().unwrap(), "--shards", "1", "--duration", "1s", "--data-dir", "none"],
        40,
        0,
    );
    let (code, stderr) = child.wait();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: not starting: the file-descriptor limit (RLIMIT_NOFILE) is 40"),
        "{stderr}"
    );
    assert!(stderr.contains("needs at least 83") && stderr.contains("ulimit -n 83"), "{stderr}");
}
