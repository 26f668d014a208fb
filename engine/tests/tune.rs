//! `cpra tune` as a user runs it: the real binary on this host (check only: nothing here
//! runs `--apply`, which would change the machine's sysctls; its plan is tested as a pure
//! function in `tune::tests`).

use std::process::Command;

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");

#[test]
fn every_line_is_a_status_a_finding_and_the_exit_code_follows_the_fails() {
    let out = Command::new(CPRA).args(["tune", "--steal-seconds", "0"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 14, "{stdout}");
    for line in &lines {
        // A problem always says how to fix it.
        let ok = line.starts_with("OK    ")
            || ((line.starts_with("WARN  ") || line.starts_with("FAIL  "))
                && line.contains("  (")
                && line.ends_with(')'));
        assert!(ok, "not `STATUS  what  (fix)`: {line}");
    }
    for what in [
        "RLIMIT_NOFILE",
        "RLIMIT_MEMLOCK",
        "io_uring",
        "ip_local_port_range",
        "tcp_tw_reuse",
        "somaxconn",
        "nf_conntrack",
        "NIC interrupts",
        "governor",
        "transparent huge pages",
        "steal time",
        "clocksource",
    ] {
        assert!(stdout.contains(what), "no {what} line: {stdout}");
    }
    let failed = lines.iter().any(|l| l.starts_with("FAIL"));
    assert_eq!(out.status.code(), Some(if failed { 1 } else { 0 }), "{stdout}");
}

#[test]
fn tune_checks_against_a_settings_file_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("runtime.yaml");
    std::fs::write(&good, "shards: 1\nin_flight_per_shard: 20000\n").unwrap();
    let out = Command::new(CPRA)
        .args(["tune", "--steal-seconds", "0", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("1 shard(s) × (20000 checks + 32 deliveries in flight)"), "{stdout}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "shards: 1\nring_depth: deep\n").unwrap();
    let out = Command::new(CPRA).args(["tune", "--config"]).arg(&bad).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("{}:2:13: ring_depth: deep: not a whole number", bad.display())),
        "{stdout}"
    );
}

#[test]
fn tune_config_refuses_what_it_cannot_size_for() {
    let out = Command::new(CPRA).args(["tune", "config", "--cores", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--cores 0: expected 1 to 1024"));
    let out = Command::new(CPRA)
        .args(["tune", "config", "--cores", "4", "--memory", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // This machine's own configuration loads as settings.
    let out = Command::new(CPRA).args(["tune", "config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    cpra_engine::settings::parse("tune config", &text).unwrap();
}
