//! End-to-end: the `cpra` binary on real files (validate's exit codes and outputs, gen's
//! output validating cleanly).

mod support;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cpra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpra"))
        .args(args)
        .args(support::isolated(args))
        .output()
        .expect("run cpra")
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_example_fleet_validates() {
    let fleet = repo_file("docs/examples/fleet.yaml");
    let o = cpra(&["validate", fleet.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("valid: 8 monitors, 0 errors, 0 warnings"), "{}", stdout(&o));
}

/// A Go CPRA manifest with every notify kind and every intervention action loads with no
/// error and no warning, and keeps covering every kind and action CPRA knows.
#[test]
fn a_go_manifest_with_every_notifier_and_intervention_validates_strictly() {
    use cpra_engine::manifest::{
        load_path, CodeTarget, LoadOptions, INTERVENTION_ACTIONS, NOTIFY_KINDS,
    };
    let file = repo_file("engine/tests/fixtures/go-every-notifier-and-intervention.yaml");
    let o = cpra(&["validate", "--strict", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("valid: 5 monitors, 0 errors, 0 warnings"), "{}", stdout(&o));
    let mut monitors = Vec::new();
    let report = load_path(&file, &LoadOptions::default(), |m| monitors.push(m)).unwrap();
    let mut kinds: std::collections::BTreeSet<&str> =
        report.registry.endpoints.iter().map(|(_, n)| n.kind()).collect();
    for m in &monitors {
        for code in m.codes.by_colour.iter().flatten() {
            if let CodeTarget::Notify(n) = &code.target {
                kinds.insert(n.kind());
            }
        }
    }
    let all: std::collections::BTreeSet<&str> = NOTIFY_KINDS.into_iter().collect();
    assert_eq!(kinds, all);
    let actions: std::collections::BTreeSet<&str> = monitors
        .iter()
        .filter_map(|m| m.intervention.as_ref())
        .map(|i| i.action.action_name())
        .collect();
    assert_eq!(actions, INTERVENTION_ACTIONS.into_iter().collect());
}

#[test]
fn invalid_manifest_exits_1_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "monitors:\n  - name: web\n    pulse_check:\n      type: htp\n      config: {url: x}\n  - name: db\n    pulse_check: {type: tcp, interval: 5, config: {host: h, port: 1}}\n",
    )
    .unwrap();
    let o = cpra(&["validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(
            "bad.yaml:4:13: monitor 'web': unknown pulse type 'htp' at monitors[0].pulse_check.type"
        ),
        "{out}"
    );
    assert!(out.contains("did you mean 'http'?"), "{out}");
    assert!(out.contains("monitor 'db'"), "{out}");
    assert!(out.contains("2 errors"), "{out}");

    // --json: one object per problem, then a summary.
    let o = cpra(&["validate", "--json", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<serde_json::Value> =
        stdout(&o).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["class"], "unknown_type");
    assert_eq!(lines[0]["line"], 4);
    assert_eq!(lines[0]["column"], 13);
    assert_eq!(lines[0]["monitor"], "web");
    assert_eq!(lines[0]["path"], "monitors[0].pulse_check.type");
    assert_eq!(lines[1]["class"], "bad_duration");
    assert_eq!(lines[2]["summary"], true);
    assert_eq!(lines[2]["errors"], 2);
}

#[test]
fn unknown_fields_are_errors_unless_lenient() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    std::fs::write(
        &path,
        r#"{"monitors": [{"name": "a", "colour": "red", "pulse_check": {"type": "tcp", "config": {"host": "h", "port": 1}}}]}"#,
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let o = cpra(&["validate", file]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(":1:29: monitor 'a': unknown field 'colour'"), "{}", stdout(&o));
    let o = cpra(&["validate", "--lenient", file]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("warning: "), "{}", stdout(&o));
    // The old flag still parses, as a no-op, and is not advertised.
    assert_eq!(cpra(&["validate", "--strict", file]).status.code(), Some(1));
    let help = stdout(&cpra(&["validate", "--help"]));
    assert!(help.contains("--lenient"), "{help}");
    assert!(!help.contains("  --strict"), "listed as an option: {help}");
    assert!(help.contains("--strict is still accepted and does nothing"), "{help}");
}

#[test]
fn unreadable_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let fleet = repo_file("docs/examples/fleet.yaml");
    let o = cpra(&["validate", fleet.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("cannot read"), "{}", stdout(&o));
    // Garbage bytes are a syntax problem (exit 1), not a crash.
    let junk = dir.path().join("junk.yaml");
    std::fs::write(&junk, [0xffu8, 0x00, b'{', b'[', b':', 0x80]).unwrap();
    assert_eq!(cpra(&["validate", junk.to_str().unwrap()]).status.code(), Some(1));
}

#[test]
fn gen_output_validates_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["yaml", "json"] {
        let path = dir.path().join(format!("gen.{format}"));
        let o = cpra(&[
            "gen",
            "--monitors",
            "500",
            "--format",
            format,
            "--target",
            "127.0.0.1:8080",
            "--target",
            "127.0.0.1:9090",
            "--mix",
            "http=80,tcp=10,icmp=10",
            "--interval",
            "30s",
            "--seed",
            "7",
            "--output",
            path.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let v = cpra(&["validate", path.to_str().unwrap()]);
        assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
        assert!(stdout(&v).contains("500 monitors, 0 errors, 0 warnings"), "{}", stdout(&v));
    }
    // Same seed, same output; to stdout when no --output.
    let a = cpra(&["gen", "--monitors", "20", "--seed", "3"]);
    let b = cpra(&["gen", "--monitors", "20", "--seed", "3"]);
    assert_eq!(a.stdout, b.stdout);
    assert!(stdout(&a).contains("svc-00000019"));
    // Bad options are usage errors.
    assert_eq!(cpra(&["gen", "--monitors", "1", "--mix", "htp=1"]).status.code(), Some(2));
    assert_eq!(cpra(&["gen", "--monitors", "1", "--target", "nohost"]).status.code(), Some(2));
    assert_eq!(cpra(&["gen", "--monitors", "1", "--interval", "5"]).status.code(), Some(2));
}

#[test]
fn help_lists_the_commands() {
    let o = cpra(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("validate") && out.contains("gen"), "{out}");
    assert_eq!(cpra(&[]).status.code(), Some(2));
}

/// Runs `cpra args`, reaping it with `wait4` to read its own peak RSS (KiB); gives up after a
/// bound that only a broken build reaches (the child is then killed and the test fails).
// Reaped by `wait4` below (to read its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn cpra_with_peak_rss(args: &[&str]) -> (i32, String, i64) {
    use std::io::Read;
    use std::process::Stdio;
    /// Kills the child if the test panics before it was reaped.
    struct Reap(std::process::Child, bool);
    impl Drop for Reap {
        fn drop(&mut self) {
            if !self.1 {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let child = Command::new(env!("CARGO_BIN_EXE_cpra"))
        .args(args)
        .args(support::isolated(args))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cpra");
    let mut child = Reap(child, false);
    let pid = child.0.id() as libc::pid_t;
    let bound = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (status, rss_kib) = loop {
        let mut status = 0;
        // SAFETY: an all-zero `rusage` is a valid value of this plain-integer struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `status` and `usage` are live locals the call writes into; `pid` is our own
        // child, not yet reaped (std never waits on it: we never call `wait`).
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(rc >= 0, "wait4: {}", std::io::Error::last_os_error());
        if rc == pid {
            child.1 = true;
            break (status, usage.ru_maxrss);
        }
        assert!(std::time::Instant::now() < bound, "cpra {args:?} still running after the bound");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(libc::WIFEXITED(status), "cpra {args:?} did not exit: status {status}");
    (libc::WEXITSTATUS(status), stderr, rss_kib)
}

/// Most memory a refused command line may take: the binary and its runtime, nothing sized by
/// the refused number.
const REFUSED_PEAK_RSS_KIB: i64 = 50 * 1024;

#[test]
fn absurd_shard_counts_are_refused_before_anything_is_allocated() {
    let fleet = repo_file("docs/examples/fleet.yaml");
    let fleet = fleet.to_str().unwrap();
    for n in ["18446744073709551615", "4294967296", "10000000", "1025"] {
        let (code, stderr, rss) = cpra_with_peak_rss(&["run", fleet, "--shards", n]);
        assert_eq!(code, 2, "--shards {n}: {stderr}");
        let want = format!("error: --shards {n}: more than 1024, the most CPRA runs");
        assert!(stderr.starts_with(&want), "{stderr}");
        assert!(rss < REFUSED_PEAK_RSS_KIB, "--shards {n}: peak RSS {rss} KiB");
    }
    let (code, stderr, _) = cpra_with_peak_rss(&["demo", "--shards", "4294967296"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--shards 4294967296: more than 1024"), "{stderr}");
}

#[test]
fn more_shards_than_online_cores_are_refused_with_exit_2() {
    let cores = std::thread::available_parallelism().unwrap().get();
    if cores >= 1024 {
        return; // the bound above speaks first
    }
    let fleet = repo_file("docs/examples/fleet.yaml");
    let more = (cores + 1).to_string();
    let (code, stderr, _) =
        cpra_with_peak_rss(&["run", fleet.to_str().unwrap(), "--shards", &more]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("more than the {cores} online cores")), "{stderr}");
}

#[test]
fn numbers_too_large_for_their_type_are_refused_by_the_parser_with_exit_2() {
    let o = cpra(&["run", "x.yaml", "--shards", "99999999999999999999999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("'--shards <SHARDS>'"));
    let o = cpra(&["gen", "--monitors", "-1"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn grace_and_duration_past_their_bounds_are_refused() {
    let fleet = repo_file("docs/examples/fleet.yaml");
    let fleet = fleet.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["run", fleet, "--grace", "2h"], "error: --grace 2h: longer than 1h"),
        (&["run", fleet, "--grace", "99999999999h"], "error: --grace 99999999999h: longer than 1h"),
        (&["run", fleet, "--duration", "8785h"], "error: --duration 8785h: longer than 8784h"),
        (&["demo", "--duration", "9000h"], "error: --duration 9000h: longer than 8784h"),
        (&["run", fleet, "--grace", "5"], "error: --grace: "),
    ];
    for (args, want) in cases {
        let (code, stderr, rss) = cpra_with_peak_rss(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.starts_with(want), "{args:?}: {stderr}");
        assert!(rss < REFUSED_PEAK_RSS_KIB, "{args:?}: peak RSS {rss} KiB");
    }
}

#[test]
fn gen_numbers_past_their_bounds_are_refused() {
    let (code, stderr, rss) = cpra_with_peak_rss(&["gen", "--monitors", "18446744073709551615"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("error: --monitors 18446744073709551615: more than 100000000"),
        "{stderr}"
    );
    assert!(rss < REFUSED_PEAK_RSS_KIB, "peak RSS {rss} KiB");
    let (code, stderr, _) = cpra_with_peak_rss(&["gen", "--monitors", "1", "--interval", "745h"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--interval '745h': must be from 1ms to 744h"), "{stderr}");
    // The seed is any u64: a seed, not a size.
    let o = cpra(&["gen", "--monitors", "1", "--seed", "18446744073709551615"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a_truncated_or_corrupt_gz_is_unreadable_exit_2_for_validate_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = std::fs::read(repo_file("docs/examples/fleet.yaml")).unwrap();
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
        enc.write_all(&yaml).unwrap();
        enc.finish().unwrap();
    }
    let whole = dir.path().join("fleet.yaml.gz");
    std::fs::write(&whole, &gz).unwrap();
    assert_eq!(cpra(&["validate", whole.to_str().unwrap()]).status.code(), Some(0));
    let truncated = dir.path().join("truncated.yaml.gz");
    std::fs::write(&truncated, &gz[..gz.len() / 2]).unwrap();
    let corrupt = dir.path().join("corrupt.yaml.gz");
    // The first deflate block's header made a reserved block type: the decoder fails at once
    // (corruption that first decodes into text is a syntax error there, exit 1).
    let mut bad = gz.clone();
    bad[10..20].fill(0xff);
    std::fs::write(&corrupt, &bad).unwrap();
    for file in [&truncated, &corrupt] {
        let f = file.to_str().unwrap();
        let o = cpra(&["validate", f]);
        assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
        assert!(stdout(&o).contains("cannot read input"), "{}", stdout(&o));
        let o = cpra(&["validate", "--json", f]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stdout(&o).contains("\"class\":\"unreadable\""), "{}", stdout(&o));
        let o = cpra(&["run", f, "--duration", "1s"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not starting"), "{stderr}");
    }
}
